/**
 * Wire constants of IPv6 Neighbor Discovery (RFC 4861 §4.3, §4.4, §4.6) and the offsets this
 * module needs inside an IPv6 packet (RFC 8200 §3).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |     Type      |     Code      |          Checksum             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |R|S|O|                     Reserved (NS: all reserved)         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   +                       Target Address (16)                     +
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |   Options ...  (Type, Length in units of 8 octets, data)
 */
export const IPV6_HEADER_LEN = 40;
export const IP6_PAYLOAD_LEN = 4;
export const IP6_NEXT_HEADER = 6;
export const IP6_HOP_LIMIT = 7;
export const IP6_SRC = 8;
export const IP6_DST = 24;

export const PROTO_ICMPV6 = 58;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHER_HEADER_LEN = 14;

export const ND_NEIGHBOR_SOLICIT = 135;
export const ND_NEIGHBOR_ADVERT = 136;
/** RFC 4861 §7.1: ND messages are only accepted with, and always sent with, hop limit 255. */
export const ND_HOP_LIMIT = 255;
/** Type, code, checksum, flags/reserved and the target. */
export const ND_NS_NA_LEN = 24;
export const ND_TARGET = 8;

export const ND_OPT_SOURCE_LINKADDR = 1;
export const ND_OPT_TARGET_LINKADDR = 2;
/** RFC 3971 §5.3.2; reused by RFC 7527 Enhanced DAD. */
export const ND_OPT_NONCE = 14;
/** RFC 8781 §4. */
export const ND_OPT_PREF64 = 38;

/** The nonce Android and Linux send: 6 bytes, filling a one-unit option. */
export const DAD_NONCE_LEN = 6;
/** IPv6 header + NS + one Nonce option: 40 + 24 + 8 (Android's compile-time size). */
export const DAD_PACKET_LEN = IPV6_HEADER_LEN + ND_NS_NA_LEN + 8;
