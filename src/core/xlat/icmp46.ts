/**
 * ICMPv4 → ICMPv6 (RFC 7915 §4.2): the type/code tables as data, the Packet Too Big MTU rule,
 * the Parameter Problem pointer table, and the RFC 4884 extension layout of a translated error.
 */
import { Icmp4Type, Icmp4Unreach } from '../hdr/icmpv4.js';

/** What to do with the rest-of-header of a translated ICMP message. */
export const enum Kind46 {
  /** No ICMPv6 counterpart: drop silently (RFC 7915 §4.2 "silently drop"). */
  Drop = 0,
  /** Echo / Echo Reply: identifier and sequence copied. */
  Info = 1,
  /** An error with an unused rest-of-header (RFC 4884 length in its first byte). */
  Error = 2,
  /** Packet Too Big: the MTU is computed by {@link ptbMtu46}. */
  PacketTooBig = 3,
  /** Parameter Problem: the pointer comes from {@link paramPointer46} (or is fixed, for 3/2). */
  ParamProblem = 4,
}

/** ICMPv6 types (RFC 4443). */
export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAM_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

/** Packs a table entry: kind, ICMPv6 type, ICMPv6 code. */
const e = (kind: Kind46, type: number, code: number) => (kind << 16) | (type << 8) | code;
const DROP = 0;

/**
 * Destination Unreachable (type 3), indexed by code — RFC 7915 §4.2:
 * 0, 1 → 1/0; 2 → Parameter Problem 4/1 pointing at Next Header; 3 → 1/4; 4 → Packet Too Big;
 * 5 → 1/0; 6, 7, 8 → 1/0; 9, 10 → 1/1; 11, 12 → 1/0; 13 → 1/1; 14 → drop; 15 → 1/1.
 */
const DEST_UNREACHABLE: readonly number[] = [
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 0),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 0),
  e(Kind46.ParamProblem, ICMPV6_PARAM_PROBLEM, 1),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 4),
  e(Kind46.PacketTooBig, ICMPV6_PACKET_TOO_BIG, 0),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 0),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 0),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 0),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 0),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 1),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 1),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 0),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 0),
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 1),
  DROP,
  e(Kind46.Error, ICMPV6_DEST_UNREACHABLE, 1),
];

/** The Next Header field of the IPv6 header: where 3/2 (protocol unreachable) points. */
export const POINTER_NEXT_HEADER = 6;

/**
 * The ICMPv6 translation of ICMPv4 `type`/`code` as a packed entry (read it with {@link kind46},
 * {@link type46}, {@link code46}), or 0 (= {@link Kind46.Drop}). RFC 7915 §4.2: Echo 8 → 128,
 * Echo Reply 0 → 129; Destination Unreachable per the table above; Time Exceeded 11 → 3 with the
 * code unchanged; Parameter Problem 12/0 and 12/2 → 4/0 with the pointer mapped, 12/1 dropped;
 * Information Request/Reply, Timestamp, Address Mask, Router Advertisement/Solicitation, Source
 * Quench, Redirect, Alternative Host Address and unknown types are dropped.
 */
export function map46(type: number, code: number): number {
  switch (type) {
    case Icmp4Type.Echo:
      return e(Kind46.Info, ICMPV6_ECHO_REQUEST, 0);
    case Icmp4Type.EchoReply:
      return e(Kind46.Info, ICMPV6_ECHO_REPLY, 0);
    case Icmp4Type.DestUnreachable:
      return code <= Icmp4Unreach.PrecedenceCutoff ? DEST_UNREACHABLE[code] : DROP;
    case Icmp4Type.TimeExceeded:
      return e(Kind46.Error, ICMPV6_TIME_EXCEEDED, code);
    case Icmp4Type.ParameterProblem:
      return code === 0 || code === 2 ? e(Kind46.ParamProblem, ICMPV6_PARAM_PROBLEM, 0) : DROP;
    default:
      return DROP;
  }
}

export function kind46(m: number): Kind46 {
  return m >>> 16;
}

export function type46(m: number): number {
  return (m >>> 8) & 0xff;
}

export function code46(m: number): number {
  return m & 0xff;
}

/**
 * RFC 7915 §4.2, Parameter Problem pointer table (IPv4 header byte → IPv6 header byte):
 * 0 → 0 (Version), 1 → 1 (TOS → Traffic Class), 2, 3 → 4 (Total Length → Payload Length),
 * 8 → 7 (TTL → Hop Limit), 9 → 6 (Protocol → Next Header), 12–15 → 8 (Source), 16–19 → 24
 * (Destination); Identification, Flags/Offset and Header Checksum (4–7, 10, 11) have no
 * counterpart. -1 = drop.
 */
const POINTERS: readonly number[] = [0, 1, 4, 4, -1, -1, -1, -1, 7, 6, -1, -1, 8, 8, 8, 8, 24, 24, 24, 24];

export function paramPointer46(ptr4: number): number {
  return ptr4 < POINTERS.length ? POINTERS[ptr4] : -1;
}

/** RFC 1191 §7, "Table 7-1: Common MTUs in the Internet": the plateaus, largest first. */
export const RFC1191_PLATEAUS: readonly number[] = [65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/** "IPv6 requires that every link in the Internet have an MTU of 1280 octets or greater" (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;

/**
 * The MTU of a Packet Too Big translated from Fragmentation Needed (RFC 7915 §4.2):
 * minimum(advertised MTU + 20, MTU of the IPv6 next hop, MTU of the IPv4 next hop + 20), never
 * below 1280. An advertised MTU of 0 comes from a router without RFC 1191: the greatest plateau
 * below the quoted packet's Total Length stands in for it.
 */
export function ptbMtu46(mtu4: number, quotedTotalLength: number, ipv6Mtu: number, ipv4Mtu: number): number {
  let m = mtu4;
  if (m === 0) {
    for (let i = 0; i < RFC1191_PLATEAUS.length; i++) {
      if (RFC1191_PLATEAUS[i] < quotedTotalLength) {
        m = RFC1191_PLATEAUS[i];
        break;
      }
    }
  }
  const r = Math.min(m + 20, ipv6Mtu, ipv4Mtu + 20);
  return Math.max(r, IPV6_MIN_MTU);
}

/**
 * Where the parts of a translated ICMP error go (RFC 4884 + RFC 4443 §2.4(c)): the caller fills
 * one of these per packet (reused, nothing allocated).
 */
export interface ErrorLayout46 {
  /** Bytes of the ICMPv4 payload that hold the quoted IPv4 packet (the rest is the extension). */
  quoted4: number;
  /** Bytes of the translated quoted packet written out (cut to fit, 8-byte aligned with an extension). */
  quoted6: number;
  /** Zero bytes after the quoted packet (RFC 4884 §4: the original datagram is at least 128 bytes). */
  pad: number;
  /** Extension bytes copied after the padding (0 = no extension). */
  ext: number;
  /** RFC 4884 length field of the ICMPv6 error, in 64-bit words. */
  lengthField: number;
}

export function newErrorLayout46(): ErrorLayout46 {
  return { quoted4: 0, quoted6: 0, pad: 0, ext: 0, lengthField: 0 };
}

/** Outer IPv6 header + ICMPv6 header. */
const OUT_HEADERS = 48;
/** RFC 4884 §4.1: the original datagram is padded to at least 128 bytes when an extension follows. */
const MIN_QUOTE = 128;

/**
 * Lays out a translated ICMPv4 error, given the ICMPv4 payload size `avail` (quoted packet plus
 * any extension), its RFC 4884 length in bytes `ipl4` (0 = no extension), `growth` (bytes the
 * quoted packet gains once translated: 40 − IHL, +8 with a Fragment header) and whether the
 * ICMPv6 type can carry an extension at all (Packet Too Big and Parameter Problem cannot).
 *
 * The whole ICMPv6 error stays within 1280 bytes (RFC 4443 §2.4(c)). Priority, as Jool does it:
 * headers and the first 128 bytes of the quote, then the extension (kept whole or removed whole),
 * then the rest of the quote, cut down to a multiple of 8 (ICMPv6 counts 64-bit words). A length
 * equal to the payload means "no extension". Returns false when the length is impossible
 * (larger than the payload).
 */
export function layoutError46(
  l: ErrorLayout46,
  avail: number,
  ipl4: number,
  growth: number,
  extensionAllowed: boolean,
): boolean {
  const room = IPV6_MIN_MTU - OUT_HEADERS;
  if (ipl4 === 0 || ipl4 === avail) {
    l.quoted4 = avail;
    l.quoted6 = Math.min(avail + growth, room);
    l.pad = 0;
    l.ext = 0;
    l.lengthField = 0;
    return true;
  }
  if (ipl4 > avail) return false;
  const ext = avail - ipl4;
  const whole = ipl4 + growth + ext;
  l.quoted4 = ipl4;
  if (!extensionAllowed || ext > room - MIN_QUOTE) {
    l.quoted6 = Math.min(whole - ext, room);
    l.pad = 0;
    l.ext = 0;
    l.lengthField = 0;
    return true;
  }
  const q = (Math.min(whole, room) - ext) & ~7;
  l.quoted6 = q;
  l.pad = q < MIN_QUOTE ? MIN_QUOTE - q : 0;
  l.ext = ext;
  l.lengthField = (q + l.pad) >>> 3;
  return true;
}
