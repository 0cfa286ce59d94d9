/**
 * Random input into the 4→6 path (fast-check): it never throws, every outcome is a translation or
 * a known drop reason, outputs are well-formed, and nothing is read past the packet's end (the
 * same bytes followed by different junk translate identically).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createBatch, Disposition, type PacketBatch } from '../../../src/core/batch.js';
import { finish, sum16 } from '../../../src/core/checksum.js';
import { Drop } from '../../../src/core/xlat/drop.js';
import { Translator } from '../../../src/core/xlat/translator.js';
import { ipv4Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../pkt/build.js';

const t = new Translator({
  pool6: '2001:db8:64::/96',
  eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1:2::4/128' }],
  ownV4: '192.0.0.1',
  ownV6: '2001:db8:1:2::1',
  lowestIpv6Mtu: 1280,
});
const out = createBatch(64, 4096);

/** Runs translate4 on `p` placed in a buffer followed by `junk`; returns the outcome and a copy of the outputs. */
function run(p: Uint8Array, junk: Uint8Array): { drop: Drop; outs: string[] } {
  const buf = new Uint8Array(p.length + junk.length);
  buf.set(p);
  buf.set(junk, p.length);
  out.count = 0;
  const drop = t.translate4(buf, 0, p.length, out);
  return { drop, outs: snapshot(out) };
}

function snapshot(b: PacketBatch): string[] {
  const r: string[] = [];
  for (let i = 0; i < b.count; i++) {
    r.push(`${b.disp[i]}:${Buffer.from(b.data.subarray(b.offs[i], b.offs[i] + b.lens[i])).toString('hex')}`);
  }
  return r;
}

function checkOutcome(p: Uint8Array, junkA: Uint8Array, junkB: Uint8Array): void {
  const a = run(p, junkA);
  const b = run(p, junkB);
  assert.ok(a.drop >= Drop.NONE && a.drop < Drop.COUNT, `unknown drop ${a.drop}`);
  assert.notEqual(a.drop, Drop.UNKNOWN);
  assert.deepEqual(b, a, 'outcome depends on bytes past the packet');
  out.count = 0;
  const d = t.translate4(p, 0, p.length, out);
  assert.equal(d, a.drop);
  for (let i = 0; i < out.count; i++) {
    const o = out.data.subarray(out.offs[i], out.offs[i] + out.lens[i]);
    assert.ok(o.length > 0 && o.length <= out.stride);
    if (out.disp[i] === Disposition.Forward) {
      assert.equal(d, Drop.NONE, 'forwarded packets only on success');
      assert.equal(o[0] >>> 4, 6);
      assert.equal((o[4] << 8) | o[5], o.length - 40, 'IPv6 payload length');
    } else {
      assert.equal(o[0] >>> 4, 4);
      assert.ok(o.length <= 576);
    }
  }
  if (d === Drop.NONE) assert.ok(out.count > 0);
}

/** Fixes the IPv4 header checksum so mutated packets get past validation. */
function fixHeader(p: Uint8Array): Uint8Array {
  const ihl = (p[0] & 15) * 4;
  if (p.length < 20 || ihl < 20 || ihl > p.length) return p;
  p[10] = 0;
  p[11] = 0;
  const c = finish(sum16(p, 0, ihl));
  p[10] = c >>> 8;
  p[11] = c;
  return p;
}

const junk = fc.uint8Array({ minLength: 0, maxLength: 64 });

describe('4to6 on random input', () => {
  test('random bytes (version nibble 4) never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), junk, junk, (raw, j1, j2) => {
        if (raw.length) raw[0] = 0x40 | (raw[0] & 0x0f);
        checkOutcome(raw, j1, j2);
      }),
      { numRuns: 2000 },
    );
  });

  test('valid packets with random damage (header checksum repaired) never throw', () => {
    const base = fc.record({
      proto: fc.constantFrom(PROTO_UDP, PROTO_TCP, PROTO_ICMP),
      n: fc.integer({ min: 0, max: 1400 }),
      df: fc.boolean(),
      ttl: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(
        base,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.boolean(),
        junk,
        junk,
        (b, flips, wrapInError, j1, j2) => {
          let p = ipv4Packet(
            { src: '192.0.0.4', dst: '198.51.100.9', df: b.df, ttl: b.ttl },
            { proto: b.proto, sport: 1000, dport: 2000, payload: new Uint8Array(b.n) },
          );
          if (wrapInError) {
            // An ICMPv4 error (type/code and RFC 4884 length random below) quoting p.
            const e = new Uint8Array(28 + p.length);
            e.set([0x45, 0, e.length >>> 8, e.length & 0xff, 0, 0, 0, 0, 64, PROTO_ICMP], 0);
            e.set([198, 51, 100, 9, 192, 0, 0, 4, 3, 1], 12);
            e.set(p, 28);
            p = e;
          }
          for (const [pos, v] of flips) p[pos % p.length] = v;
          if (wrapInError) {
            const len = p.length - 20;
            p[22] = 0;
            p[23] = 0;
            const c = finish(sum16(p, 20, len));
            p[22] = c >>> 8;
            p[23] = c;
          }
          checkOutcome(fixHeader(p), j1, j2);
        },
      ),
      { numRuns: 1500 },
    );
  });
});
