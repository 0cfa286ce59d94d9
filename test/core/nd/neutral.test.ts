import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIPv4, parseIPv4 } from '../../../src/core/addr/ipv4.js';
import { parseIPv6 } from '../../../src/core/addr/ipv6.js';
import { type Prefix6, parsePrefix6 } from '../../../src/core/addr/prefix.js';
import { embed, RFC6052_LENGTHS } from '../../../src/core/addr/rfc6052.js';
import { ClatAddressError } from '../../../src/core/nd/errors.js';
import {
  embeddedSum,
  generateClatAddress,
  generateClatAddressBytes,
  generateInPrefix,
  isChecksumNeutral,
  isFullyNeutralMapping,
  isReservedIid,
  neutralityHolds,
  prefixSum,
  remoteMappingDelta,
} from '../../../src/core/nd/neutral.js';
import { refSum } from './build.js';

const SAMPLE = '2401:fa00:480:13d:2a65:4e6a:7554:ae21';

/** One's-complement equality (0 and 0xffff are the same value). */
function same(a: number, b: number): boolean {
  return a % 0xffff === b % 0xffff;
}

function v4bytes(v: number): Uint8Array {
  return new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

/** Oracle: the address with the prefix bits only (independent of prefixSum). */
function prefixBits(p: Prefix6): Uint8Array {
  const b = new Uint8Array(16);
  for (let bit = 0; bit < p.len; bit++) if (p.addr[bit >> 3] & (0x80 >> (bit & 7))) b[bit >> 3] |= 0x80 >> (bit & 7);
  return b;
}

const arbPrefix64 = fc.uint8Array({ minLength: 8, maxLength: 8 });
/** A random RFC 6052 prefix of any allowed length with a zero u octet. */
const arbPref64 = fc
  .tuple(fc.constantFrom(...RFC6052_LENGTHS), fc.uint8Array({ minLength: 16, maxLength: 16 }))
  .map(([len, bytes]): Prefix6 => {
    const addr = new Uint8Array(16);
    addr.set(bytes.subarray(0, len / 8));
    addr[8] = 0;
    return { addr, len };
  });
const arbV4 = fc.integer({ min: 0, max: 0xffffffff });

describe('the Android sample address', () => {
  test('is neutral with 192.0.0.4 and 64:ff9b::/96; both sides sum to 0xc004', () => {
    assert.equal(isChecksumNeutral({ ipv6: SAMPLE, pref64: '64:ff9b::/96', ipv4: '192.0.0.4' }), true);
    assert.equal(refSum([parseIPv6(SAMPLE)]), 0xc004);
    assert.equal(refSum([v4bytes(parseIPv4('192.0.0.4'))]), 0xc004);
    // The well-known prefix sums to 0xffff, one's-complement zero.
    assert.equal(prefixSum(parsePrefix6('64:ff9b::/96')), 0xffff);
    assert.equal(refSum([parseIPv6(SAMPLE), parseIPv6('64:ff9b::')]), 0xc004);
  });

  test('is not neutral with a prefix that sums to something else, nor with another IPv4 address', () => {
    // 64:ff9b:1::/48 sums to 0x0001.
    assert.equal(prefixSum(parsePrefix6('64:ff9b:1::/48')), 0x0001);
    assert.equal(isChecksumNeutral({ ipv6: SAMPLE, pref64: '64:ff9b:1::/48', ipv4: '192.0.0.4' }), false);
    assert.equal(isChecksumNeutral({ ipv6: SAMPLE, pref64: '64:ff9b::/96', ipv4: '192.0.0.5' }), false);
  });

  test('the generator reproduces its bytes 11-12 (0x6a 0x75) whatever they start as', () => {
    const iid = parseIPv6(SAMPLE).subarray(8);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0, max: 0xff }), (b11, b12) => {
        const random = (b: Uint8Array) => {
          b.set(iid);
          b[3] = b11;
          b[4] = b12;
        };
        assert.equal(
          generateClatAddress({
            prefix64: '2401:fa00:480:13d::/64',
            pref64: '64:ff9b::/96',
            ipv4: '192.0.0.4',
            random,
          }),
          SAMPLE,
        );
      }),
    );
  });
});

describe('generated addresses', () => {
  test('are neutral, keep the /64 and never use a reserved IID, for every RFC 6052 length', () => {
    fc.assert(
      fc.property(arbPrefix64, arbPref64, arbV4, (p64, pref, v4) => {
        const prefix64 = new Uint8Array(16);
        prefix64.set(p64);
        const a = generateClatAddressBytes({ prefix64: { addr: prefix64, len: 64 }, pref64: pref, ipv4: v4 });
        assert.deepEqual(a.subarray(0, 8), p64);
        assert.equal(isReservedIid(a), false);
        // Independent oracle: word sums of the three byte strings.
        assert.ok(same(refSum([a, prefixBits(pref)]), refSum([v4bytes(v4)])));
        assert.equal(isChecksumNeutral({ ipv6: a, pref64: pref, ipv4: v4 }), true);
      }),
      { numRuns: 2000 },
    );
  });

  test('use the random source for the IID: 48 bits vary, 16 are fixed', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      seen.add(generateClatAddress({ prefix64: '2001:db8:1:2::/64', pref64: '64:ff9b::/96', ipv4: '192.0.0.4' }));
    }
    assert.equal(seen.size, 50);
    for (const s of seen) assert.ok(s.startsWith('2001:db8:1:2:'));
  });

  test('accept the /64 as any address inside it, or as 16 bytes; other lengths are refused', () => {
    const random = (b: Uint8Array) => b.fill(0x11);
    const a = generateClatAddress({
      prefix64: '2001:db8:1:2::abcd',
      pref64: '64:ff9b::/96',
      ipv4: '192.0.0.4',
      random,
    });
    const b = generateClatAddress({
      prefix64: '2001:db8:1:2:ffff::/64',
      pref64: '64:ff9b::/96',
      ipv4: '192.0.0.4',
      random,
    });
    const c = generateClatAddress({
      prefix64: parseIPv6('2001:db8:1:2::9'),
      pref64: '64:ff9b::/96',
      ipv4: '192.0.0.4',
      random,
    });
    assert.equal(a, b);
    assert.equal(a, c);
    assert.throws(
      () => generateClatAddress({ prefix64: '2001:db8:1::/48', pref64: '64:ff9b::/96', ipv4: '192.0.0.4' }),
      /must be a \/64/,
    );
    assert.throws(
      () => generateClatAddress({ prefix64: '2001:db8:1:2::/64', pref64: '64:ff9b::/80', ipv4: '192.0.0.4' }),
      /RFC 6052/,
    );
  });

  test('a draw that lands on a reserved IID is drawn again', () => {
    // Choose the IPv4 "address" so that the fix-up writes ff fe into bytes 11-12 of an IID that
    // starts 02 00 5e: the first draw is then 0200:5eff:fe12:3456, reserved (RFC 4291).
    const first = parseIPv6('2001:db8:1:2:200:5e00:12:3456');
    const have = refSum([first]); // bytes 11-12 are zero in `first`
    const v4 = (have + 0xfeff) % 0xffff; // target = have + bytes(ff fe) = have + 0xfeff
    const draws: Uint8Array[] = [first.slice(8), parseIPv6('::1111:2222:3333:4444').slice(8)];
    let calls = 0;
    const random = (b: Uint8Array) => b.set(draws[Math.min(calls++, 1)]);
    const a = generateClatAddressBytes({ prefix64: '2001:db8:1:2::/64', pref64: '64:ff9b::/96', ipv4: v4, random });
    assert.equal(calls, 2);
    assert.equal(isReservedIid(a), false);
    assert.equal(a[8], 0x11);
    // Confirm that the first draw really would have been reserved.
    const probe = first.slice();
    probe[11] = 0xff;
    probe[12] = 0xfe;
    assert.equal(isReservedIid(probe), true);
    assert.ok(same(refSum([probe, parseIPv6('64:ff9b::')]), refSum([v4bytes(v4)])));
  });

  test('a random source that only yields reserved IIDs is an error, not a hang', () => {
    const first = parseIPv6('2001:db8:1:2:200:5e00:12:3456');
    const v4 = (refSum([first]) + 0xfeff) % 0xffff;
    const random = (b: Uint8Array) => b.set(first.subarray(8));
    assert.throws(
      () => generateClatAddress({ prefix64: '2001:db8:1:2::/64', pref64: '64:ff9b::/96', ipv4: v4, random }),
      (e: unknown) => e instanceof ClatAddressError && e.code === 'ERR_CLATD_CLAT_ADDRESS',
    );
  });
});

test('reserved IIDs (RFC 5453 registry)', () => {
  const reserved = [
    '2001:db8:1:2::',
    '2001:db8:1:2:200:5eff:fe00:0',
    '2001:db8:1:2:200:5eff:fe00:5212',
    '2001:db8:1:2:200:5eff:fe00:5213',
    '2001:db8:1:2:200:5eff:fe00:5214',
    '2001:db8:1:2:200:5eff:feff:ffff',
    '2001:db8:1:2:fdff:ffff:ffff:ff80',
    '2001:db8:1:2:fdff:ffff:ffff:ffff',
  ];
  const fine = [
    '2001:db8:1:2::1',
    '2001:db8:1:2:200:5eff:fd00:0',
    '2001:db8:1:2:300:5eff:fe00:0',
    '2001:db8:1:2:200:5eff:ff00:0',
    '2001:db8:1:2:fdff:ffff:ffff:ff7f',
    '2001:db8:1:2:fdff:ffff:fffe:ffff',
    SAMPLE,
  ];
  for (const a of reserved) assert.equal(isReservedIid(parseIPv6(a)), true, a);
  for (const a of fine) assert.equal(isReservedIid(parseIPv6(a)), false, a);
});

describe('which mappings are fully neutral', () => {
  test('isFullyNeutralMapping is true for /32 and /96 only', () => {
    assert.deepEqual(
      RFC6052_LENGTHS.filter((l) => isFullyNeutralMapping(l)),
      [32, 96],
    );
    assert.throws(() => isFullyNeutralMapping(80), /RFC 6052/);
  });

  test('embeddedSum and prefixSum add up to the sum of the embedded address', () => {
    fc.assert(
      fc.property(arbPref64, arbV4, (pref, v4) => {
        const addr = embed(pref, v4);
        assert.ok(same(refSum([addr]), (prefixSum(pref) + embeddedSum(v4, pref.len)) % 0xffff));
      }),
    );
  });

  /** Pseudo-header address sums before (IPv4) and after (IPv6) translating clat4 → remote4. */
  function pseudoSums(clat6: Uint8Array, pref: Prefix6, clat4: number, remote4: number): [number, number] {
    return [refSum([v4bytes(clat4), v4bytes(remote4)]), refSum([clat6, embed(pref, remote4)])];
  }

  test('/32 and /96: with a generated address the whole translation is neutral for any remote address', () => {
    fc.assert(
      fc.property(
        arbPrefix64,
        arbPref64.filter((p) => p.len === 32 || p.len === 96),
        arbV4,
        arbV4,
        (p64, pref, clat4, remote4) => {
          const prefix64 = new Uint8Array(16);
          prefix64.set(p64);
          const clat6 = generateClatAddressBytes({ prefix64: { addr: prefix64, len: 64 }, pref64: pref, ipv4: clat4 });
          const [before, after] = pseudoSums(clat6, pref, clat4, remote4);
          assert.ok(same(before, after));
          assert.ok(same(remoteMappingDelta(remote4, pref.len), 0));
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('/40../64: the local part is neutral, the remote part is not in general and needs remoteMappingDelta', () => {
    for (const len of [40, 48, 56, 64]) {
      const pref = parsePrefix6(`2001:db8:6400::/${len}`);
      const clat4 = parseIPv4('192.0.0.4');
      const clat6 = generateClatAddressBytes({ prefix64: '2001:db8:1:2::/64', pref64: pref, ipv4: clat4 });
      // Local part: neutral, as for every length.
      assert.ok(neutralityHolds(refSum([clat6]), prefixSum(pref), refSum([v4bytes(clat4)])));
      // Remote part: 198.51.100.7 is a counterexample for each of these lengths.
      const remote4 = parseIPv4('198.51.100.7');
      const [before, after] = pseudoSums(clat6, pref, clat4, remote4);
      assert.ok(!same(before, after), `/${len} with ${formatIPv4(remote4)} should not be neutral`);
      // ... and the difference is exactly remoteMappingDelta.
      assert.ok(same(after, (before + remoteMappingDelta(remote4, len)) % 0xffff));
      // It is not never-neutral either: a remote address with equal bytes is neutral for /64
      // (the bytes sit one position off, so only a byte swap happens).
      if (len === 64) assert.ok(same(remoteMappingDelta(parseIPv4('198.198.198.198'), 64), 0));
    }
  });

  test('remoteMappingDelta always equals the real difference', () => {
    fc.assert(
      fc.property(arbPref64, arbV4, arbV4, (pref, clat4, remote4) => {
        const clat6 = generateClatAddressBytes({ prefix64: '2001:db8:1:2::/64', pref64: pref, ipv4: clat4 });
        const [before, after] = pseudoSums(clat6, pref, clat4, remote4);
        assert.ok(same(after, (before + remoteMappingDelta(remote4, pref.len)) % 0xffff));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('checksum-neutral addresses in any prefix of /32 to /96', () => {
  test('inside the prefix, neutral, random', () => {
    for (const p of [
      '2001:db8::/32',
      '2001:db8:99::/48',
      '2001:db8:99:1::/64',
      '2001:db8:99:1:2::/80',
      '2001:db8:99:1:2:3::/96',
      '2001:db8:99:1:2:40::/90',
    ]) {
      const prefix = parsePrefix6(p);
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const a = generateInPrefix({ prefix, pref64: '64:ff9b::/96', ipv4: '192.0.0.4' });
        seen.add(a);
        const b = parseIPv6(a);
        const full = prefix.len >>> 3;
        assert.deepEqual([...b.subarray(0, full)], [...prefix.addr.subarray(0, full)], `${a} in ${p}`);
        if (prefix.len & 7) {
          const mask = (0xff << (8 - (prefix.len & 7))) & 0xff;
          assert.equal(b[full] & mask, prefix.addr[full] & mask, `${a} in ${p}`);
        }
        assert.ok(isChecksumNeutral({ ipv6: a, pref64: '64:ff9b::/96', ipv4: '192.0.0.4' }), `${a} neutral`);
      }
      assert.ok(seen.size > 15, `random in ${p}`);
    }
  });

  test('a /64 gives the same address as the /64 generator for the same random bytes', () => {
    const bytes = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const random = (b: Uint8Array) => b.set(bytes.subarray(0, b.length));
    const o = { pref64: '64:ff9b::/96', ipv4: '192.0.0.4', random };
    assert.equal(
      generateInPrefix({ prefix: '2001:db8:1:2::/64', ...o }),
      generateClatAddress({ prefix64: '2001:db8:1:2::/64', ...o }),
    );
  });

  test('out of range lengths are refused', () => {
    assert.throws(
      () => generateInPrefix({ prefix: '2001:db8::/112', pref64: '64:ff9b::/96', ipv4: '192.0.0.4' }),
      /\/32 to \/96/,
    );
    assert.throws(
      () => generateInPrefix({ prefix: '2001::/16', pref64: '64:ff9b::/96', ipv4: '192.0.0.4' }),
      /\/32 to \/96/,
    );
  });

  test('a /96 never gives one of its top 128 addresses (RFC 2526): such a draw is repeated', () => {
    // With 192.0.109.216, host bits 96..111 all ones make the neutral pair 0xff80 or more.
    const o = { prefix: '2001:db8:99:1:2:3::/96', pref64: '64:ff9b::/96', ipv4: '192.0.109.216' };
    assert.throws(() => generateInPrefix({ ...o, random: (b) => b.fill(0xff) }), /reserved/);
    let i = 0;
    const a = generateInPrefix({ ...o, random: (b) => b.fill(i++ === 0 ? 0xff : 0x42) });
    const b = parseIPv6(a);
    assert.ok(b[12] === 0x42 && b[13] === 0x42, `${a}: the second draw`);
    assert.ok(isChecksumNeutral({ ipv6: a, pref64: o.pref64, ipv4: o.ipv4 }));
  });
});
