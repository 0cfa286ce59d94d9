/**
 * IPv4-embedded IPv6 addresses (RFC 6052 §2.2):
 *
 *   +--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
 *   |PL| 0-------------32--40--48--56--64--72--80--88--96--104---------|
 *   +--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
 *   |32|     prefix    |v4(32)         | u | suffix                    |
 *   |40|     prefix        |v4(24)     | u |(8)| suffix                |
 *   |48|     prefix            |v4(16) | u | (16)  | suffix            |
 *   |56|     prefix                |(8)| u |  v4(24)    | suffix        |
 *   |64|     prefix                    | u |   v4(32)      | suffix    |
 *   |96|     prefix                                    |    v4(32)     |
 *   +--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
 *
 * Bits 64..71 (byte 8, the "u" octet) are skipped and must be zero.
 */
import { AddressError } from '../errors.js';
import type { Prefix6 } from './prefix.js';

export const RFC6052_LENGTHS: readonly number[] = [32, 40, 48, 56, 64, 96];

/** The byte offsets inside the IPv6 address that hold IPv4 bytes 0..3, for each prefix length. */
const POSITIONS: Readonly<Record<number, readonly [number, number, number, number]>> = {
  32: [4, 5, 6, 7],
  40: [5, 6, 7, 9],
  48: [6, 7, 9, 10],
  56: [7, 9, 10, 11],
  64: [9, 10, 11, 12],
  96: [12, 13, 14, 15],
};

/** The byte offsets holding IPv4 bytes 0..3 for prefix length `len`. Throws for a length RFC 6052 does not allow. */
export function rfc6052Positions(len: number): readonly [number, number, number, number] {
  const p = POSITIONS[len];
  if (!p) throw new AddressError(`RFC 6052 prefix length must be 32, 40, 48, 56, 64 or 96, not ${len}`);
  return p;
}

/** Checks a prefix for use as an RFC 6052 prefix: a legal length and a zero u-octet. Throws {@link AddressError}. */
export function validateRfc6052Prefix(p: Prefix6): void {
  rfc6052Positions(p.len);
  if (p.len > 64 && p.addr[8] !== 0) {
    throw new AddressError('RFC 6052 prefix must have bits 64..71 (the u octet) set to zero');
  }
}

/** Writes prefix ‖ IPv4 into `out` at `off` (suffix and u octet zero). */
export function embed(prefix: Prefix6, v4: number, out: Uint8Array = new Uint8Array(16), off = 0): Uint8Array {
  const pos = rfc6052Positions(prefix.len);
  for (let i = 0; i < 16; i++) out[off + i] = 0;
  const n = prefix.len >>> 3;
  for (let i = 0; i < n; i++) out[off + i] = prefix.addr[i];
  out[off + pos[0]] = v4 >>> 24;
  out[off + pos[1]] = (v4 >>> 16) & 0xff;
  out[off + pos[2]] = (v4 >>> 8) & 0xff;
  out[off + pos[3]] = v4 & 0xff;
  return out;
}

/** Reads the IPv4 address embedded at `off` of `b` for prefix length `len` (no prefix check). */
export function extract(b: Uint8Array, off: number, len: number): number {
  const pos = rfc6052Positions(len);
  return ((b[off + pos[0]] << 24) | (b[off + pos[1]] << 16) | (b[off + pos[2]] << 8) | b[off + pos[3]]) >>> 0;
}
