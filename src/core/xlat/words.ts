/**
 * Word-at-a-time access to the datapath's arena: payload copies and checksum sums read and write
 * four bytes per access through an Int32Array view of the same memory, where a byte loop pays a
 * bounds check per byte and `copyWithin` a runtime call (tens of nanoseconds before it moves a
 * byte). Copies do not care about byte order (words are read and written through the same view);
 * sums correct for it at the end.
 *
 * The view is cached per translator in an {@link ArenaWords} (one arena per datapath loop), so
 * two translators in one thread never share it.
 */
import { copyBytes } from '../batch.js';
import { fold, sum16 } from '../checksum.js';

/** Above this many bytes `copyWithin` (a memmove) wins over the word loop. */
const WORD_COPY_MAX = 128;

/** Below this size, between different arrays, a byte loop beats `set` (which also makes a view). */
const SMALL_COPY = 64;

/** The arena the cached word view covers, and the view (empty when unusable). One per translator. */
export class ArenaWords {
  arena: Uint8Array | null = null;
  view: Int32Array = new Int32Array(0);
}

/**
 * The Int32Array over `b`'s bytes (word `i` is bytes `4i..4i+3`, native byte order), or an empty
 * one when `b` does not start on a 4-byte boundary. Made once per arena (the last one is kept in `a`).
 */
export function wordView(a: ArenaWords, b: Uint8Array): Int32Array {
  if (b !== a.arena) {
    a.arena = b;
    a.view = b.byteOffset % 4 === 0 ? new Int32Array(b.buffer, b.byteOffset, b.length >>> 2) : new Int32Array(0);
  }
  return a.view;
}

/**
 * Copies `len` bytes from `src[from]` to `dst[to]`; the ranges must not overlap. Allocation-free
 * when `src === dst` (the datapath's single arena); the view is made once per arena.
 */
export function copy(a: ArenaWords, src: Uint8Array, from: number, len: number, dst: Uint8Array, to: number): void {
  if (src !== dst || len > WORD_COPY_MAX || ((from ^ to) & 3) !== 0) {
    if (len > SMALL_COPY) copyBytes(src, from, len, dst, to);
    else for (let i = 0; i < len; i++) dst[to + i] = src[from + i];
    return;
  }
  const w = wordView(a, src);
  if (w.length === 0) {
    for (let i = 0; i < len; i++) dst[to + i] = src[from + i];
    return;
  }
  let s = from;
  let t = to;
  const end = from + len;
  while ((s & 3) !== 0 && s < end) dst[t++] = src[s++];
  const n = (end - s) >>> 2;
  const ws = s >>> 2;
  const wt = t >>> 2;
  for (let i = 0; i < n; i++) w[wt + i] = w[ws + i];
  s += n << 2;
  t += n << 2;
  while (s < end) dst[t++] = src[s++];
}

/** Native byte order is little-endian (a constant of the host): a word view sums byte-swapped 16-bit words. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Below this many bytes the byte-wise {@link sum16} is as fast. */
const WORD_SUM_MIN = 32;

/**
 * {@link sum16} of `b[off, off+len)` plus `initial`, four bytes per load when `b` has a word view
 * and `off` is aligned. The result may differ from sum16's as an integer but not as a checksum:
 * it is congruent modulo 0xffff and zero exactly when sum16's is, so `fold`, `finish` and
 * `adjust` give the same values. A sum taken in swapped byte order is the byte swap of the sum
 * (RFC 1071 §2 (B)), which is how the little-endian words are put right.
 */
export function sumWords(a: ArenaWords, b: Uint8Array, off: number, len: number, initial: number): number {
  if (len < WORD_SUM_MIN || (off & 3) !== 0) return sum16(b, off, len, initial);
  const w = wordView(a, b);
  if (w.length === 0) return sum16(b, off, len, initial);
  const n = len >>> 2;
  const k = off >>> 2;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const x = w[k + i];
    s += (x >>> 16) + (x & 0xffff);
  }
  s = fold(s);
  if (LITTLE_ENDIAN) s = ((s & 0xff) << 8) | (s >>> 8);
  return sum16(b, off + (n << 2), len & 3, initial + s);
}
