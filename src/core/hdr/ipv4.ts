/**
 * The IPv4 header (RFC 791 §3.1) as free functions over `(bytes, offset)`: no wrapper object per
 * packet. Callers validate once with {@link ipv4Check} and then trust the getters, which do not
 * bounds-check (an out-of-range Uint8Array read yields `undefined`, which bit operators turn into 0).
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |Version|  IHL  |Type of Service|          Total Length         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |         Identification        |Flags|      Fragment Offset    |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Time to Live |    Protocol   |         Header Checksum       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                       Source Address                          |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Destination Address                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Options                    |    Padding    |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import { readIPv4 } from '../addr/ipv4.js';
import { finish, fold, sum16 } from '../checksum.js';

export const IPV4_VERSION_IHL = 0;
export const IPV4_TOS = 1;
export const IPV4_TOTAL_LENGTH = 2;
export const IPV4_ID = 4;
export const IPV4_FLAGS_FRAGMENT = 6;
export const IPV4_TTL = 8;
export const IPV4_PROTOCOL = 9;
export const IPV4_CHECKSUM = 10;
export const IPV4_SRC = 12;
export const IPV4_DST = 16;
export const IPV4_OPTIONS = 20;

/** "The minimum value for a correct header is 5" 32-bit words (RFC 791 §3.1, IHL). */
export const IPV4_MIN_HEADER_LENGTH = 20;
/** "Every internet module must be able to forward a datagram of 68 octets" (RFC 791 §3.2). */
export const IPV4_MIN_MTU = 68;
/** "Every internet destination must be able to receive a datagram of 576 octets" (RFC 791 §3.2). */
export const IPV4_MIN_REASSEMBLY = 576;

/** Flags and Fragment Offset word: Don't Fragment, More Fragments, and the offset in 8-octet units. */
export const IPV4_FLAG_DF = 0x4000;
export const IPV4_FLAG_MF = 0x2000;
export const IPV4_FRAGMENT_OFFSET_MASK = 0x1fff;

/** Option types (RFC 791 §3.1; copied flag included). */
export const IPV4_OPT_END = 0;
export const IPV4_OPT_NOP = 1;
export const IPV4_OPT_LSRR = 131;
export const IPV4_OPT_SSRR = 137;

/** Protocol numbers the translator cares about (IANA "Assigned Internet Protocol Numbers"). */
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_FRAGMENT = 44;
export const PROTO_ICMPV6 = 58;

/*
 * This file's own uses of the constants above go through module-local copies: V8 folds a module's
 * own `const` bindings into optimized code, but an exported binding is a module cell, loaded and
 * checked for the temporal dead zone at every use, in this module too.
 */
const TOS = IPV4_TOS;
const TOTAL_LENGTH = IPV4_TOTAL_LENGTH;
const ID = IPV4_ID;
const FLAGS_FRAGMENT = IPV4_FLAGS_FRAGMENT;
const FRAGMENT_OFFSET_MASK = IPV4_FRAGMENT_OFFSET_MASK;
const FLAG_MF = IPV4_FLAG_MF;
const TTL = IPV4_TTL;
const PROTOCOL = IPV4_PROTOCOL;
const SRC = IPV4_SRC;
const DST = IPV4_DST;
const MIN_HEADER_LENGTH = IPV4_MIN_HEADER_LENGTH;
const CHECKSUM = IPV4_CHECKSUM;
const OPTIONS = IPV4_OPTIONS;
const OPT_END = IPV4_OPT_END;
const OPT_NOP = IPV4_OPT_NOP;
const OPT_LSRR = IPV4_OPT_LSRR;
const OPT_SSRR = IPV4_OPT_SSRR;

export function ipv4Version(b: Uint8Array, off: number): number {
  return b[off] >>> 4;
}

/** Header length in bytes (IHL × 4). */
export function ipv4HeaderLength(b: Uint8Array, off: number): number {
  return (b[off] & 0x0f) << 2;
}

export function ipv4Tos(b: Uint8Array, off: number): number {
  return b[off + TOS];
}

export function ipv4TotalLength(b: Uint8Array, off: number): number {
  return (b[off + TOTAL_LENGTH] << 8) | b[off + TOTAL_LENGTH + 1];
}

export function ipv4Id(b: Uint8Array, off: number): number {
  return (b[off + ID] << 8) | b[off + ID + 1];
}

/** The whole Flags + Fragment Offset word. */
export function ipv4FlagsFragment(b: Uint8Array, off: number): number {
  return (b[off + FLAGS_FRAGMENT] << 8) | b[off + FLAGS_FRAGMENT + 1];
}

export function ipv4DontFragment(b: Uint8Array, off: number): boolean {
  return (b[off + FLAGS_FRAGMENT] & 0x40) !== 0;
}

export function ipv4MoreFragments(b: Uint8Array, off: number): boolean {
  return (b[off + FLAGS_FRAGMENT] & 0x20) !== 0;
}

/** Fragment offset in bytes. */
export function ipv4FragmentOffset(b: Uint8Array, off: number): number {
  return (ipv4FlagsFragment(b, off) & FRAGMENT_OFFSET_MASK) << 3;
}

/** True for any fragment: MF set or a non-zero offset. */
export function ipv4IsFragment(b: Uint8Array, off: number): boolean {
  return (ipv4FlagsFragment(b, off) & (FLAG_MF | FRAGMENT_OFFSET_MASK)) !== 0;
}

export function ipv4Ttl(b: Uint8Array, off: number): number {
  return b[off + TTL];
}

export function ipv4Protocol(b: Uint8Array, off: number): number {
  return b[off + PROTOCOL];
}

export function ipv4Src(b: Uint8Array, off: number): number {
  return readIPv4(b, off + SRC);
}

export function ipv4Dst(b: Uint8Array, off: number): number {
  return readIPv4(b, off + DST);
}

/** True when the header checksum verifies (the one's-complement sum of the header is 0xffff). */
export function ipv4ChecksumOk(b: Uint8Array, off: number): boolean {
  const ihl = ipv4HeaderLength(b, off);
  if (ihl !== MIN_HEADER_LENGTH) return fold(sum16(b, off, ihl)) === 0xffff;
  // The usual header without options, unrolled: the even bytes are the high halves of the words.
  const hi =
    b[off] +
    b[off + 2] +
    b[off + 4] +
    b[off + 6] +
    b[off + 8] +
    b[off + 10] +
    b[off + 12] +
    b[off + 14] +
    b[off + 16] +
    b[off + 18];
  const lo =
    b[off + 1] +
    b[off + 3] +
    b[off + 5] +
    b[off + 7] +
    b[off + 9] +
    b[off + 11] +
    b[off + 13] +
    b[off + 15] +
    b[off + 17] +
    b[off + 19];
  return fold((hi << 8) + lo) === 0xffff;
}

/** Recomputes and stores the header checksum. */
export function ipv4SetChecksum(b: Uint8Array, off: number): void {
  b[off + CHECKSUM] = 0;
  b[off + CHECKSUM + 1] = 0;
  const c = finish(sum16(b, off, ipv4HeaderLength(b, off)));
  b[off + CHECKSUM] = c >>> 8;
  b[off + CHECKSUM + 1] = c;
}

/** Why {@link ipv4Check} refused a header. */
export const enum Ipv4Invalid {
  None = 0,
  /** Shorter than 20 bytes, IHL < 5, or IHL beyond the data. */
  Truncated,
  /** Total Length below the header length or above the bytes received. */
  BadLength,
  BadChecksum,
  NotIpv4,
}

/**
 * Validates the header of a packet of `len` received bytes (after gVisor's `IPv4.IsValid`): version,
 * IHL ≥ 5, IHL ≤ Total Length ≤ len, header checksum. Bytes past Total Length are link padding
 * and are ignored by the caller.
 */
export function ipv4Check(b: Uint8Array, off: number, len: number): Ipv4Invalid {
  if (len < MIN_HEADER_LENGTH) return Ipv4Invalid.Truncated;
  if (ipv4Version(b, off) !== 4) return Ipv4Invalid.NotIpv4;
  const ihl = ipv4HeaderLength(b, off);
  if (ihl < MIN_HEADER_LENGTH || ihl > len) return Ipv4Invalid.Truncated;
  const total = ipv4TotalLength(b, off);
  if (total < ihl || total > len) return Ipv4Invalid.BadLength;
  if (!ipv4ChecksumOk(b, off)) return Ipv4Invalid.BadChecksum;
  return Ipv4Invalid.None;
}

/**
 * True when the options hold a Loose or Strict Source Route whose pointer has not passed its end
 * (RFC 791 §3.1: the route is exhausted when the pointer exceeds the length). Malformed options
 * end the scan without a match.
 */
export function ipv4HasUnexpiredSourceRoute(b: Uint8Array, off: number): boolean {
  const end = off + ipv4HeaderLength(b, off);
  let i = off + OPTIONS;
  while (i < end) {
    const t = b[i];
    if (t === OPT_END) return false;
    if (t === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return false;
    const olen = b[i + 1];
    if (olen < 2) return false;
    if (t === OPT_LSRR || t === OPT_SSRR) return i + 2 < end && b[i + 2] <= olen;
    i += olen;
  }
  return false;
}

/**
 * Writes a 20-byte header without options at `off`, checksum included: the one IPv4 header
 * writer. `idFlags` is Identification in the top 16 bits and Flags + Fragment Offset in the low 16
 * (0 for the translator's own ICMP errors: ID 0, DF clear, as RFC 7915 lets the sender choose);
 * `src` and `dst` may be signed. The checksum is summed from the field values rather than read
 * back from the bytes; every value is masked exactly as the byte stores truncate it.
 */
export function ipv4WriteHeader(
  b: Uint8Array,
  off: number,
  tos: number,
  totalLength: number,
  idFlags: number,
  ttl: number,
  protocol: number,
  src: number,
  dst: number,
): void {
  b[off] = 0x45;
  b[off + TOS] = tos;
  b[off + TOTAL_LENGTH] = totalLength >>> 8;
  b[off + TOTAL_LENGTH + 1] = totalLength;
  b[off + ID] = idFlags >>> 24;
  b[off + ID + 1] = idFlags >>> 16;
  b[off + FLAGS_FRAGMENT] = idFlags >>> 8;
  b[off + FLAGS_FRAGMENT + 1] = idFlags;
  b[off + TTL] = ttl;
  b[off + PROTOCOL] = protocol;
  b[off + SRC] = src >>> 24;
  b[off + SRC + 1] = src >>> 16;
  b[off + SRC + 2] = src >>> 8;
  b[off + SRC + 3] = src;
  b[off + DST] = dst >>> 24;
  b[off + DST + 1] = dst >>> 16;
  b[off + DST + 2] = dst >>> 8;
  b[off + DST + 3] = dst;
  let s =
    0x4500 +
    (tos & 0xff) +
    (totalLength & 0xffff) +
    ((idFlags >>> 16) & 0xffff) +
    (idFlags & 0xffff) +
    ((ttl & 0xff) << 8) +
    (protocol & 0xff) +
    (src >>> 16) +
    (src & 0xffff) +
    (dst >>> 16) +
    (dst & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  const cs = ~s & 0xffff;
  b[off + CHECKSUM] = cs >>> 8;
  b[off + CHECKSUM + 1] = cs;
}
