/**
 * The fixed IPv6 header (RFC 8200 §3) as offsets and accessors over a byte array: no objects,
 * so the packet path reads fields in place.
 */

/** Length of the fixed IPv6 header. */
export const IPV6_HDR_LEN = 40;
/** Offset of the 16-byte source address. */
export const IPV6_SRC = 8;
/** Offset of the 16-byte destination address. */
export const IPV6_DST = 24;

/** The 8-bit Traffic Class of the header at `off`. */
export function trafficClass6(b: Uint8Array, off: number): number {
  return ((b[off] & 0x0f) << 4) | (b[off + 1] >>> 4);
}

/** Payload Length: the bytes after the fixed header (extension headers included). */
export function payloadLength6(b: Uint8Array, off: number): number {
  return (b[off + 4] << 8) | b[off + 5];
}

export function nextHeader6(b: Uint8Array, off: number): number {
  return b[off + 6];
}

export function hopLimit6(b: Uint8Array, off: number): number {
  return b[off + 7];
}

/**
 * Writes a fixed IPv6 header at `off` with Traffic Class and Flow Label zero; source and
 * destination are left for the caller.
 */
export function writeIpv6Header(
  b: Uint8Array,
  off: number,
  payloadLen: number,
  nextHeader: number,
  hopLimit: number,
): void {
  b[off] = 0x60;
  b[off + 1] = 0;
  b[off + 2] = 0;
  b[off + 3] = 0;
  b[off + 4] = payloadLen >>> 8;
  b[off + 5] = payloadLen;
  b[off + 6] = nextHeader;
  b[off + 7] = hopLimit;
}
