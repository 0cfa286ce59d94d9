/**
 * The ICMPv4 header (RFC 792, with RFC 1191 and RFC 4884 fields) as free functions over
 * `(bytes, offset)`. Types and codes are named after the RFCs that define them: the vocabulary of
 * RFC 7915's translation tables.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |     Type      |     Code      |          Checksum             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Identifier / Pointer / -     |  Sequence / Next-Hop MTU / -  |   (rest of header)
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   Echo:            Identifier (4), Sequence Number (6)
 *   Frag. Needed:    unused (4), Length (5, RFC 4884), Next-Hop MTU (6, RFC 1191)
 *   Param. Problem:  Pointer (4), Length (5, RFC 4884)
 *   Dest. Unr. / Time Exceeded: unused (4), Length (5, RFC 4884)
 */

export const ICMPV4_TYPE = 0;
export const ICMPV4_CODE = 1;
export const ICMPV4_CHECKSUM = 2;
export const ICMPV4_ID = 4;
export const ICMPV4_SEQUENCE = 6;
export const ICMPV4_POINTER = 4;
/** RFC 4884 §4.1: length of the original datagram in 32-bit words. */
export const ICMPV4_LENGTH = 5;
export const ICMPV4_MTU = 6;
export const ICMPV4_HEADER_LENGTH = 8;

/** RFC 1122 §3.2.2: an error quotes the IP header and at least the first 8 data octets. */
export const ICMPV4_MIN_ERROR_QUOTE = 28;

/** ICMPv4 types (RFC 792 unless noted). */
export const enum Icmp4Type {
  EchoReply = 0,
  DestUnreachable = 3,
  SourceQuench = 4,
  Redirect = 5,
  Echo = 8,
  RouterAdvertisement = 9,
  RouterSolicitation = 10,
  TimeExceeded = 11,
  ParameterProblem = 12,
  Timestamp = 13,
  TimestampReply = 14,
}

/** Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1). */
export const enum Icmp4Unreach {
  Net = 0,
  Host = 1,
  Protocol = 2,
  Port = 3,
  FragmentationNeeded = 4,
  SourceRouteFailed = 5,
  NetUnknown = 6,
  HostUnknown = 7,
  HostIsolated = 8,
  NetProhibited = 9,
  HostProhibited = 10,
  NetTos = 11,
  HostTos = 12,
  AdminProhibited = 13,
  HostPrecedence = 14,
  PrecedenceCutoff = 15,
}

/** Time Exceeded codes. */
export const enum Icmp4TimeExceeded {
  Ttl = 0,
  Reassembly = 1,
}

/** Parameter Problem codes (RFC 792, RFC 1108). */
export const enum Icmp4ParamProblem {
  Pointer = 0,
  MissingOption = 1,
  BadLength = 2,
}

export function icmp4Type(b: Uint8Array, off: number): number {
  return b[off + ICMPV4_TYPE];
}

export function icmp4Code(b: Uint8Array, off: number): number {
  return b[off + ICMPV4_CODE];
}

export function icmp4Checksum(b: Uint8Array, off: number): number {
  return (b[off + ICMPV4_CHECKSUM] << 8) | b[off + ICMPV4_CHECKSUM + 1];
}

export function icmp4SetChecksum(b: Uint8Array, off: number, c: number): void {
  b[off + ICMPV4_CHECKSUM] = c >>> 8;
  b[off + ICMPV4_CHECKSUM + 1] = c;
}

/** Next-Hop MTU of a Fragmentation Needed message (RFC 1191 §4); 0 from routers that predate it. */
export function icmp4Mtu(b: Uint8Array, off: number): number {
  return (b[off + ICMPV4_MTU] << 8) | b[off + ICMPV4_MTU + 1];
}

/** RFC 4884 length of the quoted datagram, in bytes (the field counts 32-bit words). */
export function icmp4QuoteLength(b: Uint8Array, off: number): number {
  return b[off + ICMPV4_LENGTH] << 2;
}

/** True for the error types that quote a datagram (RFC 792): never answered with another error. */
export function icmp4IsError(type: number): boolean {
  return (
    type === Icmp4Type.DestUnreachable ||
    type === Icmp4Type.SourceQuench ||
    type === Icmp4Type.Redirect ||
    type === Icmp4Type.TimeExceeded ||
    type === Icmp4Type.ParameterProblem
  );
}
