/** ICMPv6 (RFC 4443) message types and header offsets, plus the RFC 4884 length field. */

export const ICMP6_DEST_UNREACH = 1;
export const ICMP6_PACKET_TOO_BIG = 2;
export const ICMP6_TIME_EXCEEDED = 3;
export const ICMP6_PARAM_PROBLEM = 4;
export const ICMP6_ECHO_REQUEST = 128;
export const ICMP6_ECHO_REPLY = 129;

/** Destination Unreachable code 1: administratively prohibited. */
export const ICMP6_DU_ADMIN_PROHIBITED = 1;
/** Parameter Problem code 0: erroneous header field. */
export const ICMP6_PP_HEADER = 0;

/** Length of the ICMPv6 header (type, code, checksum, 4 bytes of message body). */
export const ICMP6_HDR_LEN = 8;
/** Offset of the checksum in the ICMPv6 header. */
export const ICMP6_CSUM = 2;

/** RFC 4443 §2.1: types 0..127 are errors. */
export function isIcmp6Error(type: number): boolean {
  return type < 128;
}

/** RFC 4884 §4.5: Destination Unreachable and Time Exceeded carry a length (in 8-byte words) at byte 4. */
export function hasRfc4884Length6(type: number): boolean {
  return type === ICMP6_DEST_UNREACH || type === ICMP6_TIME_EXCEEDED;
}
