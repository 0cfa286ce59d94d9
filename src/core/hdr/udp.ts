/**
 * The UDP header (RFC 768) as free functions over `(bytes, offset)`.
 *
 *    0      7 8     15 16    23 24    31
 *   +--------+--------+--------+--------+
 *   |     Source      |   Destination   |
 *   |      Port       |      Port       |
 *   +--------+--------+--------+--------+
 *   |                 |                 |
 *   |     Length      |    Checksum     |
 *   +--------+--------+--------+--------+
 */

export const UDP_SRC_PORT = 0;
export const UDP_DST_PORT = 2;
export const UDP_LENGTH = 4;
export const UDP_CHECKSUM = 6;
export const UDP_HEADER_LENGTH = 8;

export function udpSrcPort(b: Uint8Array, off: number): number {
  return (b[off + UDP_SRC_PORT] << 8) | b[off + UDP_SRC_PORT + 1];
}

export function udpDstPort(b: Uint8Array, off: number): number {
  return (b[off + UDP_DST_PORT] << 8) | b[off + UDP_DST_PORT + 1];
}

export function udpLength(b: Uint8Array, off: number): number {
  return (b[off + UDP_LENGTH] << 8) | b[off + UDP_LENGTH + 1];
}

/** 0 means "no checksum" over IPv4 (RFC 768), which IPv6 forbids (RFC 8200 §8.1). */
export function udpChecksum(b: Uint8Array, off: number): number {
  return (b[off + UDP_CHECKSUM] << 8) | b[off + UDP_CHECKSUM + 1];
}

/** Stores a checksum; a computed 0 is sent as 0xffff ("all ones", RFC 768). */
export function udpSetChecksum(b: Uint8Array, off: number, c: number): void {
  const v = c === 0 ? 0xffff : c;
  b[off + UDP_CHECKSUM] = v >>> 8;
  b[off + UDP_CHECKSUM + 1] = v;
}
