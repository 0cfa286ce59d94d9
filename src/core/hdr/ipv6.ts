/**
 * The fixed IPv6 header (RFC 8200 §3) as offsets and accessors over a byte array: no objects,
 * so the packet path reads fields in place. {@link ipv6WriteHeader} is the one writer of it.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |Version| Traffic Class |           Flow Label                  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |         Payload Length        |  Next Header  |   Hop Limit   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Source Address (16 bytes)                  |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                 Destination Address (16 bytes)                |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

/** Length of the fixed IPv6 header. */
export const IPV6_HDR_LEN = 40;
/** Offsets of the fields after the first word. */
export const IPV6_PAYLOAD_LENGTH = 4;
export const IPV6_NEXT_HEADER = 6;
export const IPV6_HOP_LIMIT = 7;
/** Offset of the 16-byte source address. */
export const IPV6_SRC = 8;
/** Offset of the 16-byte destination address. */
export const IPV6_DST = 24;

/*
 * This file's own uses of the constants above go through module-local copies: V8 folds a module's
 * own `const` bindings into optimized code, but an exported binding is a module cell, loaded and
 * checked for the temporal dead zone at every use, in this module too.
 */
const PAYLOAD_LENGTH = IPV6_PAYLOAD_LENGTH;
const NEXT_HEADER = IPV6_NEXT_HEADER;
const HOP_LIMIT = IPV6_HOP_LIMIT;

/** The 8-bit Traffic Class of the header at `off`. */
export function trafficClass6(b: Uint8Array, off: number): number {
  return ((b[off] & 0x0f) << 4) | (b[off + 1] >>> 4);
}

/** Payload Length: the bytes after the fixed header (extension headers included). */
export function payloadLength6(b: Uint8Array, off: number): number {
  return (b[off + PAYLOAD_LENGTH] << 8) | b[off + PAYLOAD_LENGTH + 1];
}

export function nextHeader6(b: Uint8Array, off: number): number {
  return b[off + NEXT_HEADER];
}

export function hopLimit6(b: Uint8Array, off: number): number {
  return b[off + HOP_LIMIT];
}

/** Sets Payload Length (fragments are written from one header, then each gets its own length). */
export function ipv6SetPayloadLength(b: Uint8Array, off: number, payloadLen: number): void {
  b[off + PAYLOAD_LENGTH] = payloadLen >>> 8;
  b[off + PAYLOAD_LENGTH + 1] = payloadLen;
}

/**
 * Writes the first eight bytes of a fixed IPv6 header at `off`: version 6, `trafficClass`, Flow
 * Label 0 (RFC 7915 §4.1 "set to zero"; the translator's own packets have no flow either), the
 * lengths and hop limit. Source and destination are left for the caller, which writes or maps
 * them in place.
 */
export function ipv6WriteHeader(
  b: Uint8Array,
  off: number,
  trafficClass: number,
  payloadLen: number,
  nextHeader: number,
  hopLimit: number,
): void {
  b[off] = 0x60 | ((trafficClass >>> 4) & 0x0f);
  b[off + 1] = (trafficClass & 0x0f) << 4;
  b[off + 2] = 0;
  b[off + 3] = 0;
  b[off + PAYLOAD_LENGTH] = payloadLen >>> 8;
  b[off + PAYLOAD_LENGTH + 1] = payloadLen;
  b[off + NEXT_HEADER] = nextHeader;
  b[off + HOP_LIMIT] = hopLimit;
}
