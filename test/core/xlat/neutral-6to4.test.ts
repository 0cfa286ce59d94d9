/**
 * The 6→4 half of checksum neutrality (test/property/neutral-translation.test.ts has 4→6): with a
 * checksum-neutral CLAT address and a /32 or /96 pool6, the TCP/UDP checksum bytes of a packet
 * from a pool6 address to the CLAT pass through untouched (and valid); with /40../64 they stay
 * valid but, in general, change.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIPv4, parseIPv4 } from '../../../src/core/addr/ipv4.js';
import { formatIPv6 } from '../../../src/core/addr/ipv6.js';
import { parsePrefix6 } from '../../../src/core/addr/prefix.js';
import { embed } from '../../../src/core/addr/rfc6052.js';
import { generateClatAddress } from '../../../src/core/nd/neutral.js';
import { Translator } from '../../../src/core/xlat/translator.js';
import { checksumProblems, ipv6Packet, PROTO_TCP, PROTO_UDP } from '../../pkt/build.js';

const PREFIXES: Record<number, string> = {
  32: '2001:db8::/32',
  40: '2001:db8:100::/40',
  48: '2001:db8:122::/48',
  56: '2001:db8:122:300::/56',
  64: '2001:db8:122:344::/64',
  96: '2001:db8:64::/96',
};

const transport = fc.record({
  proto: fc.constantFrom(PROTO_UDP, PROTO_TCP),
  sport: fc.integer({ min: 1, max: 0xffff }),
  dport: fc.integer({ min: 1, max: 0xffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

for (const len of [32, 40, 48, 56, 64, 96]) {
  describe(`pool6 /${len}`, () => {
    const fully = len === 32 || len === 96;
    test(`6→4 to a neutral CLAT address: checksums valid${fully ? ' and untouched' : ''}`, () => {
      let changed = 0;
      fc.assert(
        fc.property(
          fc.integer({ min: 4, max: 7 }),
          fc.integer({ min: 0, max: 0xff }),
          fc.uint8Array({ minLength: 6, maxLength: 6 }),
          transport,
          (clat, host, uplink, l4) => {
            const v4 = `192.0.0.${clat}`;
            const p64 = new Uint8Array(16);
            p64.set([0x20, 0x01, ...uplink]);
            const v6 = generateClatAddress({ prefix64: `${formatIPv6(p64)}/64`, pref64: PREFIXES[len], ipv4: v4 });
            const t = new Translator({ pool6: PREFIXES[len], eam: [{ v4: `${v4}/32`, v6: `${v6}/128` }] });
            const remote4 = formatIPv4((parseIPv4('203.0.113.0') | host) >>> 0);
            const remote6 = formatIPv6(embed(parsePrefix6(PREFIXES[len]), parseIPv4(remote4)));
            const p6 = ipv6Packet({ src: remote6, dst: v6 }, { ...l4, sport: l4.sport, dport: l4.dport });
            const r = t.translate(p6);
            assert.equal(r.drop, undefined, `dropped: ${r.drop}`);
            const p4 = r.forward[0];
            assert.deepEqual(checksumProblems(p4), []);
            const at = l4.proto === PROTO_UDP ? 6 : 16;
            const before = (p6[40 + at] << 8) | p6[40 + at + 1];
            const after = (p4[20 + at] << 8) | p4[20 + at + 1];
            if (fully) assert.equal(after, before, 'checksum changed although the mapping is fully neutral');
            else if (after !== before) changed++;
          },
        ),
        { numRuns: 200 },
      );
      if (!fully) assert.ok(changed > 100, `only ${changed} of 200 checksums changed for /${len}`);
    });
  });
}
