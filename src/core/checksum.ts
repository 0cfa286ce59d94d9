/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * Sums are kept unfolded in a JS number while accumulating (a packet of 64 KiB adds at most
 * 2^15 words of 0xffff, far below 2^53), and folded to 16 bits once at the end. A "sum" in this
 * module is the one's-complement sum of some data, *not* the complemented checksum field.
 */

/** Adds the 16-bit big-endian words of `b[off, off+len)` to `initial`; an odd last byte is padded with zero. */
export function sum16(b: Uint8Array, off: number, len: number, initial = 0): number {
  let s = initial;
  const end = off + (len & ~1);
  let i = off;
  // Unrolled by 4 words: the hot loop of every full checksum.
  for (; i + 8 <= end; i += 8) {
    s +=
      ((b[i] << 8) | b[i + 1]) +
      ((b[i + 2] << 8) | b[i + 3]) +
      ((b[i + 4] << 8) | b[i + 5]) +
      ((b[i + 6] << 8) | b[i + 7]);
  }
  for (; i < end; i += 2) s += (b[i] << 8) | b[i + 1];
  if (len & 1) s += b[end] << 8;
  return s;
}

/** Folds an unfolded sum to 16 bits with end-around carry. 0 and 0xffff are both kept as computed. */
export function fold(sum: number): number {
  // Two folds suffice below 2^32; larger sums (>2 GiB of data) cannot occur for one packet,
  // but one division keeps it exact for any safe integer.
  let s = sum;
  if (s > 0xffffffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The checksum field value for data whose (unfolded) sum is `sum`: the complement of the folded sum. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** Sum of a 32-bit value (an IPv4 address as an unsigned number) as two 16-bit words. */
export function sum32(v: number): number {
  return (v >>> 16) + (v & 0xffff);
}

/** Pseudo-header sum for IPv4 (RFC 768 / RFC 793): source, destination, zero+protocol, L4 length. */
export function pseudoSum4(src: number, dst: number, proto: number, l4len: number): number {
  return sum32(src) + sum32(dst) + proto + l4len;
}

/**
 * Pseudo-header sum for IPv6 (RFC 8200 §8.1): the 16-byte source and destination at `srcOff` and
 * `dstOff` of `b`, the upper-layer length and the next header value.
 */
export function pseudoSum6(b: Uint8Array, srcOff: number, dstOff: number, proto: number, l4len: number): number {
  return sum16(b, srcOff, 16, sum16(b, dstOff, 16, proto + (l4len >>> 16) + (l4len & 0xffff)));
}

/**
 * RFC 1624 eqn. 3: the new checksum field HC' = ~(~HC + ~m + m'), where `oldSum` and `newSum` are
 * (possibly unfolded) sums of the data that changed. Never returns 0x0000 for a nonzero input
 * unless the arithmetic says so; callers that must avoid 0 (UDP) map it themselves.
 */
export function adjust(checksum: number, oldSum: number, newSum: number): number {
  const s = (~checksum & 0xffff) + (~fold(oldSum) & 0xffff) + fold(newSum);
  return ~fold(s) & 0xffff;
}

/** The one's-complement difference `newSum - oldSum` as a 16-bit value to add with {@link adjustBy}. */
export function delta(oldSum: number, newSum: number): number {
  return fold((~fold(oldSum) & 0xffff) + fold(newSum));
}

/** Applies a precomputed {@link delta} to a checksum field. */
export function adjustBy(checksum: number, d: number): number {
  return ~fold((~checksum & 0xffff) + d) & 0xffff;
}
