/**
 * Properties of the whole translator on random valid packets (issue 2 proof): every output
 * checksum verifies, and 4→6→4 / 6→4→6 return the original addresses, protocol, ports and payload.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIPv4 } from '../../src/core/addr/ipv4.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { checksumProblems, ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../pkt/build.js';

const CLAT_V4 = '192.0.0.4';
const CLAT_V6 = '2001:db8:1:2::4';

const configs = [
  { name: 'network-specific /96', pool6: '2001:db8:64::/96', wkpGlobalOnly: true },
  { name: 'well-known /96 (labs)', pool6: '64:ff9b::/96', wkpGlobalOnly: false },
  { name: '/40', pool6: '2001:db8:100::/40', wkpGlobalOnly: true },
  { name: '/56', pool6: '2001:db8:122:300::/56', wkpGlobalOnly: true },
];

/** Remote IPv4 addresses from the documentation ranges (no special-purpose clash with the CLAT's own). */
const remote4 = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((x) => `192.0.2.${x}`),
  fc.integer({ min: 0, max: 255 }).map((x) => `198.51.100.${x}`),
  fc.integer({ min: 0, max: 255 }).map((x) => `203.0.113.${x}`),
);

const l4 = fc.record({
  proto: fc.constantFrom(PROTO_UDP, PROTO_TCP, PROTO_ICMP),
  sport: fc.integer({ min: 1, max: 0xffff }),
  dport: fc.integer({ min: 1, max: 0xffff }),
  payload: fc.uint8Array({ maxLength: 1200 }),
});

function fields(p: Uint8Array) {
  const v4 = p[0] >>> 4 === 4;
  const h = v4 ? (p[0] & 0xf) * 4 : 40;
  const proto = v4 ? p[9] : p[6];
  return {
    src: p.subarray(v4 ? 12 : 8, v4 ? 16 : 24),
    dst: p.subarray(v4 ? 16 : 24, v4 ? 20 : 40),
    proto,
    // ports (or ICMP id/seq) and payload; for ICMP the type changes with the family, so skip it
    rest: proto === PROTO_TCP ? p.subarray(h, h + 4) : p.subarray(h + 4),
    body: proto === PROTO_TCP ? p.subarray(h + 20) : p.subarray(h + 8),
  };
}

for (const cfg of configs) {
  describe(`translator round trips with pool6 ${cfg.name}`, () => {
    const t = new Translator({
      pool6: cfg.pool6,
      eam: [{ v4: `${CLAT_V4}/32`, v6: `${CLAT_V6}/128` }],
      wkpGlobalOnly: cfg.wkpGlobalOnly,
    });

    test('4→6→4 keeps addresses, ports and payload; every checksum verifies', () => {
      fc.assert(
        fc.property(remote4, l4, fc.boolean(), (dst, l, df) => {
          const p4 = ipv4Packet({ src: CLAT_V4, dst, ttl: 64, df }, l);
          const r6 = t.translate(p4);
          assert.equal(r6.drop, undefined, `4→6 dropped ${r6.drop}`);
          assert.ok(r6.forward.length >= 1);
          for (const p of r6.forward) assert.deepEqual(checksumProblems(p), []);
          if (r6.forward.length !== 1) return; // fragmented: reassembly is the receiver's job
          const r4 = t.translate(r6.forward[0]);
          assert.equal(r4.drop, undefined, `6→4 dropped ${r4.drop}`);
          assert.equal(r4.forward.length, 1);
          const back = r4.forward[0];
          assert.deepEqual(checksumProblems(back), []);
          const a = fields(p4);
          const b = fields(back);
          assert.deepEqual([...b.src], [...a.src]);
          assert.deepEqual([...b.dst], [...a.dst]);
          assert.equal(b.proto, a.proto);
          assert.deepEqual(b.rest, a.rest);
          assert.equal(back[8], 62, 'TTL decremented once per translation');
        }),
        { numRuns: 300 },
      );
    });

    test('6→4→6 keeps addresses, ports and payload; every checksum verifies', () => {
      fc.assert(
        fc.property(remote4, l4, (src4, l) => {
          // The remote's IPv6 address is its IPv4 address under pool6: take it from a 4→6 translation.
          const probe = t.translate(
            ipv4Packet(
              { src: CLAT_V4, dst: src4 },
              { proto: PROTO_UDP, sport: 1, dport: 1, payload: new Uint8Array(0) },
            ),
          );
          const remote6 = probe.forward[0].subarray(24, 40);
          const fixed = ipv6Packet({ src: formatV6(remote6), dst: CLAT_V6, hopLimit: 64 }, l);
          const r4 = t.translate(fixed);
          assert.equal(r4.drop, undefined, `6→4 dropped ${r4.drop}`);
          assert.equal(r4.forward.length, 1);
          assert.deepEqual(checksumProblems(r4.forward[0]), []);
          assert.equal(
            formatIPv4(
              ((r4.forward[0][12] << 24) | (r4.forward[0][13] << 16) | (r4.forward[0][14] << 8) | r4.forward[0][15]) >>>
                0,
            ),
            src4,
          );
          const r6 = t.translate(r4.forward[0]);
          assert.equal(r6.drop, undefined, `4→6 dropped ${r6.drop}`);
          assert.equal(r6.forward.length, 1);
          const back = r6.forward[0];
          assert.deepEqual(checksumProblems(back), []);
          const a = fields(fixed);
          const b = fields(back);
          assert.deepEqual([...b.src], [...a.src]);
          assert.deepEqual([...b.dst], [...a.dst]);
          assert.equal(b.proto, a.proto);
          assert.deepEqual(b.rest, a.rest);
        }),
        { numRuns: 300 },
      );
    });

    test('random bytes never throw, and end translated or dropped with a named reason', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 200 }),
          fc.constantFrom(0x45, 0x46, 0x4f, 0x60, 0x61, 0x00),
          (junk, first) => {
            const p = junk.length ? junk : new Uint8Array(1);
            p[0] = first;
            const r = t.translate(p);
            if (r.forward.length === 0 && r.back.length === 0)
              assert.ok(r.drop && r.drop !== 'unknown', `no output and drop=${r.drop}`);
          },
        ),
        { numRuns: 2000 },
      );
    });
  });
}

function formatV6(b: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i] << 8) | b[i + 1]).toString(16));
  return g.join(':');
}
