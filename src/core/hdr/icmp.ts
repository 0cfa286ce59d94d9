/**
 * The first eight bytes both ICMP versions share (RFC 792; RFC 4443 §2.1): type, code, checksum
 * and a 32-bit rest of header (identifier and sequence, MTU, pointer, or unused with the RFC 4884
 * length). {@link icmpWriteHeader} is the one writer of it, for ICMPv4 and ICMPv6 alike.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |     Type      |     Code      |          Checksum             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                         Rest of header                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

export const ICMP_TYPE = 0;
export const ICMP_CODE = 1;
export const ICMP_CHECKSUM = 2;
export const ICMP_REST = 4;
export const ICMP_HEADER_LENGTH = 8;

/** Writes type, code, a zero checksum and the 32-bit `rest` (signed or unsigned) at `off`. */
export function icmpWriteHeader(b: Uint8Array, off: number, type: number, code: number, rest: number): void {
  b[off + ICMP_TYPE] = type;
  b[off + ICMP_CODE] = code;
  b[off + ICMP_CHECKSUM] = 0;
  b[off + ICMP_CHECKSUM + 1] = 0;
  b[off + ICMP_REST] = rest >>> 24;
  b[off + ICMP_REST + 1] = rest >>> 16;
  b[off + ICMP_REST + 2] = rest >>> 8;
  b[off + ICMP_REST + 3] = rest;
}

/** Stores a finished checksum. */
export function icmpSetChecksum(b: Uint8Array, off: number, cs: number): void {
  b[off + ICMP_CHECKSUM] = cs >>> 8;
  b[off + ICMP_CHECKSUM + 1] = cs;
}
