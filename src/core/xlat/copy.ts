/**
 * Payload copies on the packet path. `copyWithin` is a runtime call (tens of nanoseconds before it
 * moves a byte) and a byte loop pays a bounds check per byte, so small copies inside one arena go
 * four bytes at a time through an Int32Array view of the same memory. Byte order does not matter:
 * words are read and written through the same view.
 */
import { copyBytes } from '../batch.js';

/** Above this many bytes `copyWithin` (a memmove) wins over the word loop. */
const WORD_COPY_MAX = 128;

/** Below this size, between different arrays, a byte loop beats `set` (which also makes a view). */
const SMALL_COPY = 64;

/** The arena the cached word view covers, and the view (empty when unusable). */
let viewOf: Uint8Array | null = null;
let words: Int32Array = new Int32Array(0);

/**
 * The Int32Array over `b`'s bytes (word `i` is bytes `4i..4i+3`, native byte order), or an empty
 * one when `b` does not start on a 4-byte boundary. Made once per arena (the last one is cached).
 */
export function wordView(b: Uint8Array): Int32Array {
  if (b !== viewOf) {
    viewOf = b;
    words = b.byteOffset % 4 === 0 ? new Int32Array(b.buffer, b.byteOffset, b.length >>> 2) : new Int32Array(0);
  }
  return words;
}

/**
 * Copies `len` bytes from `src[from]` to `dst[to]`; the ranges must not overlap. Allocation-free
 * when `src === dst` (the datapath's single arena); the view is made once per arena.
 */
export function copy(src: Uint8Array, from: number, len: number, dst: Uint8Array, to: number): void {
  if (src !== dst || len > WORD_COPY_MAX || ((from ^ to) & 3) !== 0) {
    if (len > SMALL_COPY) copyBytes(src, from, len, dst, to);
    else for (let i = 0; i < len; i++) dst[to + i] = src[from + i];
    return;
  }
  const w = wordView(src);
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
