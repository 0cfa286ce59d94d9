/**
 * The packet path's address mapping (word-wise EAM and pool6 lookups, signed 32-bit results)
 * against the plain byte-wise reference (`map6to4`, `EamTable.find4/find6`), on random
 * configurations of every RFC 6052 prefix length and EAM entries with IPv4 suffix bits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatIPv4 } from '../../../src/core/addr/ipv4.js';
import { formatIPv6 } from '../../../src/core/addr/ipv6.js';
import { sum16 } from '../../../src/core/checksum.js';
import { resolveConfig } from '../../../src/core/xlat/config.js';
import { map6to4, mapAddress64, NO_MAPPING } from '../../../src/core/xlat/mapping.js';
import { XlatState } from '../../../src/core/xlat/state.js';

const POOL6_LENGTHS = [32, 40, 48, 56, 64, 96];

/** An IPv6 prefix of `len` bits from random bytes (host bits cleared, u octet zero when covered). */
function prefix6(bytes: Uint8Array, len: number, rfc6052: boolean): string {
  const a = Uint8Array.from(bytes);
  for (let bit = len; bit < 128; bit++) a[bit >>> 3] &= ~(0x80 >>> (bit & 7));
  if (rfc6052 && len > 64) a[8] = 0;
  return `${formatIPv6(a)}/${len}`;
}

function prefix4(v: number, len: number): string {
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return `${formatIPv4((v & m) >>> 0)}/${len}`;
}

const bytes16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const eamEntry = fc
  .record({
    v4: fc.nat({ max: 0xffffffff }),
    v4len: fc.integer({ min: 16, max: 32 }),
    v6: bytes16,
    v6len: fc.integer({ min: 0, max: 128 }),
  })
  .filter((e) => e.v6len + (32 - e.v4len) <= 128);

test('mapAddress64 agrees with map6to4 (address, via pool6, word sum)', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...POOL6_LENGTHS),
      bytes16,
      fc.array(eamEntry, { maxLength: 3 }),
      fc.boolean(),
      fc.array(fc.tuple(fc.nat({ max: 4 }), bytes16), { minLength: 1, maxLength: 8 }),
      (plen, pbytes, eams, wkp, addrs) => {
        const pool6 = wkp ? '64:ff9b::/96' : prefix6(pbytes, plen, true);
        let c: ReturnType<typeof resolveConfig>;
        try {
          c = resolveConfig({
            pool6,
            wkpGlobalOnly: wkp,
            eam: eams.map((e) => ({ v4: prefix4(e.v4, e.v4len), v6: prefix6(e.v6, e.v6len, false) })),
          });
        } catch {
          return; // overlapping or otherwise refused tables are not what this test is about
        }
        for (const [kind, raw] of addrs) {
          // Steer some addresses into pool6 or an EAM prefix, keeping the random tail.
          const a = Uint8Array.from(raw);
          const src =
            kind === 0 && c.pool6 ? c.pool6 : kind === 1 && c.eam.entries.length > 0 ? c.eam.entries[0].v6 : null;
          if (src) {
            for (let bit = 0; bit < src.len; bit++) {
              const m = 0x80 >>> (bit & 7);
              a[bit >>> 3] = (a[bit >>> 3] & ~m) | (src.addr[bit >>> 3] & m);
            }
            if (kind === 0 && src.len < 96 && raw[0] & 1) a[8] = 0;
          }
          const b = new Uint8Array(40);
          b.set(a, 21); // an unaligned offset on purpose
          const want = map6to4(c, b, 21);
          const st = new XlatState(c);
          const ok = mapAddress64(st, b, 21);
          const mapped64 = st.mapped64;
          assert.equal(ok, want !== NO_MAPPING, formatIPv6(a));
          if (!ok) continue;
          assert.equal(mapped64.v4 >>> 0, want, formatIPv6(a));
          assert.equal(mapped64.viaPool6, c.eam.find6(b, 21) === undefined, formatIPv6(a));
          assert.equal(mapped64.sum6, sum16(b, 21, 16), formatIPv6(a));
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('EamTable.has4 agrees with find4, for signed and unsigned addresses', () => {
  fc.assert(
    fc.property(
      fc.array(eamEntry, { minLength: 1, maxLength: 4 }),
      fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 8 }),
      (eams, probes) => {
        let c: ReturnType<typeof resolveConfig>;
        try {
          c = resolveConfig({
            eam: eams.map((e) => ({ v4: prefix4(e.v4, e.v4len), v6: prefix6(e.v6, e.v6len, false) })),
          });
        } catch {
          return;
        }
        for (const v of [...probes, ...eams.map((e) => e.v4), 0xffffffff, 0x80000000]) {
          const want = c.eam.find4(v >>> 0) !== undefined;
          assert.equal(c.eam.has4(v >>> 0), want);
          assert.equal(c.eam.has4(v | 0), want);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('255.255.255.255 is a mapping like any other (its signed form is -1)', () => {
  const c = resolveConfig({ pool6: '64:ff9b::/96', wkpGlobalOnly: false });
  const b = new Uint8Array(16);
  b.set([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]);
  const st = new XlatState(c);
  assert.equal(mapAddress64(st, b, 0), true);
  assert.equal(st.mapped64.v4, -1);
  assert.equal(map6to4(c, b, 0), 0xffffffff);
});
