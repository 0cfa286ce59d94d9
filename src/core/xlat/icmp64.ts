/**
 * ICMPv6 → ICMPv4 mapping tables (RFC 7915 §5.2) as data, the Parameter Problem pointer map
 * (RFC 7915 §5.2, Figure 6), the Packet Too Big MTU rule, and the RFC 4884 layout of a translated
 * error (how much of the quoted packet and of the extension fit in 576 bytes).
 */
import { IPV4_MIN_MTU } from '../hdr/ipv4.js';

/** Sentinel for "no ICMPv4 counterpart: drop". */
export const NO_ICMP4 = -1;
/** Matches every code in {@link ERROR_TABLE}. */
const ANY = -1;

/**
 * RFC 7915 §5.2, ICMPv6 error messages: [v6 type, v6 code (or ANY), v4 type, v4 code (or ANY =
 * copy)]. Anything not listed (Destination Unreachable codes 5+, Parameter Problem codes 2+,
 * unknown error types) is silently dropped.
 */
const ERROR_TABLE: ReadonlyArray<readonly [number, number, number, number]> = [
  [1, 0, 3, 1], // no route to destination → host unreachable
  [1, 1, 3, 10], // administratively prohibited → communication with host administratively prohibited
  [1, 2, 3, 1], // beyond scope of source address → host unreachable
  [1, 3, 3, 1], // address unreachable → host unreachable
  [1, 4, 3, 3], // port unreachable → port unreachable
  [2, ANY, 3, 4], // packet too big → fragmentation needed and DF set
  [3, ANY, 11, ANY], // time exceeded, code unchanged
  [4, 0, 12, 0], // erroneous header field → parameter problem, pointer mapped
  [4, 1, 3, 2], // unrecognised next header → protocol unreachable
];

/** ICMPv6 informational messages that have a counterpart (RFC 7915 §5.2): echo request and reply. */
const INFO_TABLE: ReadonlyArray<readonly [number, number]> = [
  [128, 8],
  [129, 0],
];

/** (type << 8 | code) → (type4 << 8 | code4), or NO_ICMP4; built once from the tables above. */
const MAP = new Int32Array(256 * 256).fill(NO_ICMP4);
for (const [t6, c6, t4, c4] of ERROR_TABLE) {
  for (let code = 0; code < 256; code++) {
    if (c6 !== ANY && c6 !== code) continue;
    MAP[(t6 << 8) | code] = (t4 << 8) | (c4 === ANY ? code : c4);
  }
}
for (const [t6, t4] of INFO_TABLE) for (let code = 0; code < 256; code++) MAP[(t6 << 8) | code] = (t4 << 8) | code;

/**
 * The ICMPv4 type and code (as `type << 8 | code`) for an ICMPv6 type and code, or
 * {@link NO_ICMP4}. Echo codes are copied (RFC 7915 §5.2 "Code unchanged").
 */
export function icmp6to4TypeCode(type: number, code: number): number {
  return MAP[((type & 0xff) << 8) | (code & 0xff)];
}

/**
 * RFC 7915 §5.2 Figure 6: the IPv4 header byte for a Parameter Problem pointer into the IPv6
 * header, or -1 where IPv4 has no counterpart (Flow Label, or beyond the fixed header).
 */
const POINTER_MAP: readonly number[] = [
  0, // Version/Traffic Class
  1, // Traffic Class/Flow Label
  -1, // Flow Label
  -1, // Flow Label
  2, // Payload Length → Total Length
  2,
  9, // Next Header → Protocol
  8, // Hop Limit → Time to Live
  ...new Array<number>(16).fill(12), // Source Address
  ...new Array<number>(16).fill(16), // Destination Address
];

/** The IPv4 Parameter Problem pointer for IPv6 pointer `p`, or -1 (drop). */
export function mapPointer64(p: number): number {
  return p >= 0 && p < POINTER_MAP.length ? POINTER_MAP[p] : -1;
}

/**
 * RFC 7915 §5.2: the MTU of a translated Packet Too Big is
 * minimum(advertised MTU − 20, MTU of the IPv4 next hop, MTU of the IPv6 next hop − 20),
 * kept within the 16-bit Next-Hop MTU field of RFC 1191 and never below IPv4's minimum of 68
 * (RFC 791 §3.2): a PTB advertising less than 88 (below IPv6's own minimum of 1280, so bogus or
 * forged) would otherwise tell the IPv4 host to send datagrams no IPv4 link has to carry. RFC 7915
 * sets no floor; tundra clamps to 68 as well.
 */
export function ptbMtu64(advertised: number, ipv4Mtu: number, ipv6Mtu: number): number {
  const m = Math.min(advertised - 20, ipv4Mtu, ipv6Mtu - 20);
  return Math.max(IPV4_MIN_MTU, Math.min(m, 0xffff));
}

/** Bytes of the outer IPv4 and ICMPv4 headers in front of the quoted packet. */
const OUTER4 = 20 + 8;
/** RFC 4884 §4.1: with an extension, the original datagram field is at least 128 bytes. */
const MIN_ORIGINAL = 128;

/** Result of {@link layout4884}; one reusable instance. */
export class ErrorLayout {
  /** Bytes of the translated quoted packet to copy. */
  quoted = 0;
  /** Bytes of the original datagram field (quoted + zero padding). */
  field = 0;
  /** Bytes of the extension kept (0 = dropped or absent). */
  ext = 0;
  /** RFC 4884 length attribute in 32-bit words (0 without an extension). */
  lengthWords = 0;
}

/**
 * Fits a translated ICMPv4 error into `cap` bytes (576: RFC 1812 §4.3.2.3) with Jool's priorities
 * for RFC 4884 extensions: the headers and the first 128 bytes of the quoted packet first, then the
 * whole extension (dropped whole if it does not fit), then the rest of the quoted packet. With an
 * extension the quoted part is zero-padded to a 32-bit boundary and to at least 128 bytes (RFC 4884
 * §4.1), and the length attribute counts it.
 *
 * `quoted4` is the size of the translated quoted packet, `extLen` the extension size (0 = none).
 */
export function layout4884(quoted4: number, extLen: number, cap: number, l: ErrorLayout): ErrorLayout {
  const room = cap - OUTER4;
  if (extLen > 0 && MIN_ORIGINAL + extLen <= room) {
    const roomQ = (room - extLen) & ~3;
    const q = Math.min(quoted4, roomQ);
    l.quoted = q;
    l.field = Math.max(MIN_ORIGINAL, (q + 3) & ~3);
    if (l.field > roomQ) {
      l.field = roomQ;
      l.quoted = Math.min(q, roomQ);
    }
    l.ext = extLen;
    l.lengthWords = l.field >>> 2;
    return l;
  }
  l.quoted = Math.min(quoted4, Math.max(room, 0));
  l.field = l.quoted;
  l.ext = 0;
  l.lengthWords = 0;
  return l;
}
