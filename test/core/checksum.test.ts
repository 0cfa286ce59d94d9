import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { adjust, adjustBy, delta, finish, fold, pseudoSum4, pseudoSum6, sum16 } from '../../src/core/checksum.js';

/** The slow reference: RFC 1071 word by word, folding as it goes (the oracle, after gVisor's tests). */
function reference(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) {
    s += (b[i] << 8) | (i + 1 < b.length ? b[i + 1] : 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

test('sum16 + finish match the reference on random data of every length and split', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (b, cut) => {
      const whole = finish(sum16(b, 0, b.length));
      assert.equal(whole, reference(b));
      const k = (cut % (b.length + 1)) & ~1; // an even split point keeps word alignment
      assert.equal(finish(sum16(b, k, b.length - k, sum16(b, 0, k))), whole);
    }),
  );
});

test('RFC 1624 incremental update equals a full recompute', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 8, maxLength: 200 }),
      fc.nat(),
      fc.integer({ min: 0, max: 0xffff }),
      (b, at, nv) => {
        const i = (at % (b.length >> 1)) * 2;
        const before = finish(sum16(b, 0, b.length));
        const old = (b[i] << 8) | b[i + 1];
        b[i] = nv >>> 8;
        b[i + 1] = nv & 0xff;
        const full = finish(sum16(b, 0, b.length));
        const inc = adjust(before, old, nv);
        // 0x0000 and 0xffff are the same one's-complement value (RFC 1624 §3).
        assert.equal(fold(inc) === 0xffff ? 0 : inc, fold(full) === 0xffff ? 0 : full);
        assert.equal(adjustBy(before, delta(old, nv)), inc);
      },
    ),
  );
});

test('pseudo-header sums equal sums over hand-built pseudo-headers', () => {
  const v4 = new Uint8Array([192, 0, 2, 1, 198, 51, 100, 2, 0, 17, 0, 20]);
  assert.equal(fold(pseudoSum4(0xc0000201, 0xc6336402, 17, 20)), fold(sum16(v4, 0, 12)));
  const b = new Uint8Array(40);
  for (let i = 0; i < 32; i++) b[i] = i * 7;
  const ph = new Uint8Array(40);
  ph.set(b.subarray(0, 32));
  ph[35] = 0x10; // length 0x10010
  ph[33] = 0x01;
  ph[39] = 6;
  assert.equal(fold(pseudoSum6(b, 0, 16, 6, 0x10010)), fold(sum16(ph, 0, 40)));
});
