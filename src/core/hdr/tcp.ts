/**
 * The TCP header (RFC 9293 §3.1) as free functions over `(bytes, offset)`. The translator only
 * touches the checksum; the rest is named for tests and tools.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |          Source Port          |       Destination Port        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                        Sequence Number                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Acknowledgment Number                      |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Data |       |C|E|U|A|P|R|S|F|                               |
 *   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |           Checksum            |         Urgent Pointer        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

export const TCP_SRC_PORT = 0;
export const TCP_DST_PORT = 2;
export const TCP_SEQ = 4;
export const TCP_ACK = 8;
export const TCP_DATA_OFFSET = 12;
export const TCP_FLAGS = 13;
export const TCP_WINDOW = 14;
export const TCP_CHECKSUM = 16;
export const TCP_URGENT = 18;
/** "The TCP header (even one including options) is an integer multiple of 32 bits" of at least 5 words. */
export const TCP_MIN_HEADER_LENGTH = 20;

export function tcpSrcPort(b: Uint8Array, off: number): number {
  return (b[off + TCP_SRC_PORT] << 8) | b[off + TCP_SRC_PORT + 1];
}

export function tcpDstPort(b: Uint8Array, off: number): number {
  return (b[off + TCP_DST_PORT] << 8) | b[off + TCP_DST_PORT + 1];
}

/** Header length in bytes (Data Offset × 4). */
export function tcpHeaderLength(b: Uint8Array, off: number): number {
  return (b[off + TCP_DATA_OFFSET] >>> 4) << 2;
}

export function tcpChecksum(b: Uint8Array, off: number): number {
  return (b[off + TCP_CHECKSUM] << 8) | b[off + TCP_CHECKSUM + 1];
}

export function tcpSetChecksum(b: Uint8Array, off: number, c: number): void {
  b[off + TCP_CHECKSUM] = c >>> 8;
  b[off + TCP_CHECKSUM + 1] = c;
}
