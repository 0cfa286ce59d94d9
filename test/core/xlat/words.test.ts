/**
 * Word-at-a-time arena access (src/core/xlat/words.ts) against the byte-wise reference: copies
 * move exactly the bytes asked for, and sums give the same checksum as sum16 at every alignment,
 * length and initial value.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { finish, fold, sum16 } from '../../../src/core/checksum.js';
import { ArenaWords, copy, sumWords } from '../../../src/core/xlat/words.js';

const ARENA = 4096;

test('sumWords gives the checksum sum16 gives (folded value, zero-ness) at any offset', () => {
  const arena = new Uint8Array(ARENA);
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 1500 }),
      fc.nat({ max: 64 }),
      fc.nat({ max: 0x7ffff }),
      fc.boolean(),
      (data, shift, initial, zeros) => {
        if (zeros) data.fill(0);
        const off = 512 + shift;
        arena.set(data, off);
        const want = sum16(arena, off, data.length, initial);
        const got = sumWords(new ArenaWords(), arena, off, data.length, initial);
        assert.equal(fold(got), fold(want));
        assert.equal(finish(got), finish(want));
      },
    ),
    { numRuns: 500 },
  );
});

test('sumWords works on arrays that are not word-aligned views, and on short data', () => {
  const backing = new Uint8Array(300);
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 37 + 11) & 0xff;
  const odd = backing.subarray(1); // byteOffset 1: no word view
  for (const len of [0, 1, 2, 31, 32, 33, 200]) {
    assert.equal(fold(sumWords(new ArenaWords(), odd, 4, len, 0)), fold(sum16(odd, 4, len)), `len ${len}`);
    assert.equal(fold(sumWords(new ArenaWords(), backing, 4, len, 0)), fold(sum16(backing, 4, len)), `len ${len}`);
  }
});

test('copy moves exactly the bytes asked for, within one arena and between arrays', () => {
  fc.assert(
    fc.property(fc.nat({ max: 300 }), fc.nat({ max: 7 }), fc.nat({ max: 7 }), fc.boolean(), (len, a, b, same) => {
      const arena = new Uint8Array(2048);
      for (let i = 0; i < arena.length; i++) arena[i] = (i * 13 + 5) & 0xff;
      const other = same ? arena : new Uint8Array(2048);
      const from = 64 + a;
      const to = 1024 + b;
      const before = Uint8Array.from(other);
      copy(new ArenaWords(), arena, from, len, other, to);
      for (let i = 0; i < other.length; i++) {
        const want = i >= to && i < to + len ? arena[from + (i - to)] : before[i];
        assert.equal(other[i], want, `byte ${i}`);
      }
    }),
    { numRuns: 300 },
  );
});
