import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseIPv4 } from '../../../src/core/addr/ipv4.js';
import { formatIPv6, parseIPv6 } from '../../../src/core/addr/ipv6.js';
import { formatPrefix6, type Prefix6 } from '../../../src/core/addr/prefix.js';
import { embed, RFC6052_LENGTHS } from '../../../src/core/addr/rfc6052.js';
import {
  findPref64Options,
  parsePref64Option,
  pref64FromDns64Answers,
  WKA_170,
  WKA_171,
} from '../../../src/core/nd/pref64.js';

/** RFC 8781 §4 option from its fields (independent of the parser). */
function pref64Option(prefix: string, plc: number, scaledLifetime: number, type = 38, length = 2): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = type;
  b[1] = length;
  const word = (scaledLifetime << 3) | plc;
  b[2] = word >>> 8;
  b[3] = word & 0xff;
  b.set(parseIPv6(prefix).subarray(0, 12), 4);
  return b;
}

describe('PREF64 option (RFC 8781)', () => {
  test('64:ff9b::/96 with a 600 s lifetime', () => {
    const r = parsePref64Option(pref64Option('64:ff9b::', 0, 75));
    assert.ok(r.ok);
    assert.equal(formatPrefix6(r.prefix), '64:ff9b::/96');
    assert.equal(r.lifetime, 600);
  });

  test('every PLC maps to its length; bits past the length are ignored', () => {
    const want = [96, 64, 56, 48, 40, 32];
    for (let plc = 0; plc < 6; plc++) {
      const r = parsePref64Option(pref64Option('2001:db8:aabb:ccdd:ee:ff11:2233:4455', plc, 1));
      assert.ok(r.ok, `PLC ${plc}`);
      assert.equal(r.prefix.len, want[plc]);
      const full = parseIPv6('2001:db8:aabb:ccdd:ee:ff11:2233:4455');
      for (let i = 0; i < 16; i++) assert.equal(r.prefix.addr[i], i < want[plc] / 8 ? full[i] : 0, `byte ${i}`);
    }
    assert.equal(
      formatPrefix6((parsePref64Option(pref64Option('2001:db8:aabb::', 5, 1)) as { prefix: Prefix6 }).prefix),
      '2001:db8::/32',
    );
  });

  test('lifetime is the scaled value times 8 s; 0 withdraws; the 13-bit maximum is 65528 s', () => {
    const get = (s: number) => {
      const r = parsePref64Option(pref64Option('64:ff9b::', 0, s));
      assert.ok(r.ok);
      return r.lifetime;
    };
    assert.equal(get(0), 0);
    assert.equal(get(1), 8);
    assert.equal(get(8191), 65528);
  });

  test('invalid options are rejected with a reason', () => {
    assert.deepEqual(parsePref64Option(pref64Option('64:ff9b::', 6, 1)), { ok: false, reason: 'bad-plc' });
    assert.deepEqual(parsePref64Option(pref64Option('64:ff9b::', 7, 1)), { ok: false, reason: 'bad-plc' });
    assert.deepEqual(parsePref64Option(pref64Option('64:ff9b::', 0, 1, 25)), { ok: false, reason: 'not-pref64' });
    assert.deepEqual(parsePref64Option(pref64Option('64:ff9b::', 0, 1, 38, 3)), { ok: false, reason: 'bad-length' });
    assert.deepEqual(parsePref64Option(pref64Option('64:ff9b::', 0, 1).subarray(0, 15)), {
      ok: false,
      reason: 'truncated',
    });
    assert.deepEqual(parsePref64Option(pref64Option('64:ff9b:0:0:100::', 0, 1)), {
      ok: false,
      reason: 'u-octet-nonzero',
    });
    // The u octet is outside a /64's prefix bits, so it does not matter there.
    assert.ok(parsePref64Option(pref64Option('64:ff9b:0:0:100::', 1, 1)).ok);
  });

  test('an options area: every PREF64 option is found; a zero length ends the walk', () => {
    const mtu = [5, 1, 0, 0, 0, 0, 0x05, 0xdc];
    const a = pref64Option('64:ff9b::', 0, 75);
    const b = pref64Option('2001:db8:64::', 2, 10);
    const bad = pref64Option('2001:db8:65::', 7, 10);
    const area = new Uint8Array([...mtu, ...a, ...bad, ...b, 14, 0, 1, 2]);
    const found = findPref64Options(area);
    assert.equal(found.length, 3);
    assert.ok(found[0].ok && formatPrefix6(found[0].prefix) === '64:ff9b::/96');
    assert.deepEqual(found[1], { ok: false, reason: 'bad-plc' });
    assert.ok(found[2].ok && formatPrefix6(found[2].prefix) === '2001:db8:64::/56');
  });

  test('fuzz: random bytes never throw, and results are well-formed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(100), fc.integer({ min: -5, max: 100 }), (b, off, len) => {
        for (const r of [parsePref64Option(b), parsePref64Option(b, off, len), ...findPref64Options(b, off, len)]) {
          if (r.ok) {
            assert.ok([32, 40, 48, 56, 64, 96].includes(r.prefix.len));
            assert.equal(r.lifetime % 8, 0);
            assert.ok(r.lifetime <= 65528);
          } else assert.ok(['truncated', 'not-pref64', 'bad-length', 'bad-plc', 'u-octet-nonzero'].includes(r.reason));
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('RFC 7050 discovery from AAAA answers', () => {
  test('the well-known prefix', () => {
    const r = pref64FromDns64Answers(['64:ff9b::c000:aa', '64:ff9b::c000:ab']);
    assert.deepEqual(r.prefixes.map(formatPrefix6), ['64:ff9b::/96']);
    assert.deepEqual(r.rejected, []);
  });

  test('every RFC 6052 length, from bytes or text, round-trips for random prefixes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...RFC6052_LENGTHS),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.boolean(),
        (len, raw, asText) => {
          const addr = new Uint8Array(16);
          addr.set(raw.subarray(0, len / 8));
          addr[8] = 0;
          const pref = { addr, len };
          const answers = [embed(pref, WKA_170), embed(pref, WKA_171)].map((a) => (asText ? formatIPv6(a) : a));
          const r = pref64FromDns64Answers(answers);
          assert.deepEqual(r.prefixes.map(formatPrefix6), [formatPrefix6(pref)]);
        },
      ),
    );
  });

  test('answers without the well-known addresses, bad text and wrong sizes are rejected', () => {
    const r = pref64FromDns64Answers([
      '2001:db8::1',
      'nonsense',
      new Uint8Array(4),
      '64:ff9b::c000:ac',
      '64:ff9b:0:0:100::c000:aa', // u octet set: not an RFC 6052 address
    ]);
    assert.deepEqual(r.prefixes, []);
    assert.deepEqual(
      r.rejected.map((x) => x.answer),
      ['2001:db8::1', 'nonsense', '4 bytes', '64:ff9b::c000:ac', '64:ff9b:0:0:100::c000:aa'],
    );
  });

  test('several prefixes come back in answer order, without duplicates', () => {
    const a = { addr: parseIPv6('2001:db8:64::'), len: 96 };
    const b = { addr: parseIPv6('2001:db8:6400::'), len: 40 };
    const r = pref64FromDns64Answers([
      embed(b, WKA_170),
      embed(a, WKA_171),
      embed(b, WKA_171),
      '2001:db8::1',
      embed(a, WKA_170),
    ]);
    assert.deepEqual(r.prefixes.map(formatPrefix6), ['2001:db8:6400::/40', '2001:db8:64::/96']);
    assert.equal(r.rejected.length, 1);
  });

  test('when the pattern also appears inside the prefix bits, the longest prefix wins', () => {
    // A /96 whose bytes 4..7 happen to read 192.0.0.170 (the /32 position).
    const pref = { addr: parseIPv6('2001:db8:c000:aa::'), len: 96 };
    const r = pref64FromDns64Answers([embed(pref, parseIPv4('192.0.0.171'))]);
    assert.deepEqual(r.prefixes.map(formatPrefix6), ['2001:db8:c000:aa::/96']);
  });
});
