/**
 * ICMP errors the translator itself originates (RFC 7915 §4 and §5: Time Exceeded, Packet Too
 * Big / Fragmentation Needed, Parameter Problem, ...), for both families. The error goes back to
 * the sender of the offending packet, from the translator's own address, and is appended to the
 * output batch with disposition Back.
 *
 * Header choices follow what Linux's icmp_send()/icmpv6_send() put on the wire (and what the
 * Jool corpus expects): TTL / Hop Limit = generatedTtl, TOS / Traffic Class 0, Flow Label 0,
 * IPv4 ID 0 with DF clear, and the offending packet quoted up to 576 bytes in total for ICMPv4
 * (RFC 1812 §4.3.2.3) and 1280 for ICMPv6 (RFC 4443 §2.4 (c)).
 */
import { appendPacket, copyBytes, Disposition, type PacketBatch, slotStart } from '../batch.js';
import { finish, pseudoSum6, sum16 } from '../checksum.js';
import { ICMP_HEADER_LENGTH, icmpSetChecksum, icmpWriteHeader } from '../hdr/icmp.js';
import { Icmp4Type, Icmp4Unreach, icmp4IsError } from '../hdr/icmpv4.js';
import {
  ICMP6_DEST_UNREACH,
  ICMP6_DU_ADMIN_PROHIBITED,
  ICMP6_PACKET_TOO_BIG,
  ICMP6_PARAM_PROBLEM,
  ICMP6_PP_HEADER,
  ICMP6_TIME_EXCEEDED,
  isIcmp6Error,
} from '../hdr/icmpv6.js';
import {
  IPV4_DST,
  IPV4_MIN_HEADER_LENGTH,
  IPV4_SRC,
  ipv4FragmentOffset,
  ipv4HeaderLength,
  ipv4Protocol,
  ipv4WriteHeader,
  PROTO_ICMP,
  PROTO_ICMPV6,
} from '../hdr/ipv4.js';
import { IPV6_DST, IPV6_HDR_LEN, IPV6_NEXT_HEADER, IPV6_SRC, ipv6WriteHeader } from '../hdr/ipv6.js';
import type { ResolvedConfig } from './config.js';

/** Largest ICMPv4 error, headers included (RFC 1812 §4.3.2.3). */
export const ICMP4_ERROR_MAX = 576;
/** Largest ICMPv6 error, headers included (RFC 4443 §2.4 (c)). */
export const ICMP6_ERROR_MAX = 1280;

/** Type and code of an ICMP error the translator originates. */
export interface IcmpErrorKind {
  readonly type: number;
  readonly code: number;
}

/** The ICMPv4 errors the 4→6 direction sends back (RFC 7915 §4.1, §4.5). */
export const ICMP4_ERRORS = {
  /** Time Exceeded in transit: TTL reached zero. */
  ttlExceeded: { type: Icmp4Type.TimeExceeded, code: 0 },
  /** Destination Unreachable, Source Route Failed: an unexpired source route. */
  sourceRouteFailed: { type: Icmp4Type.DestUnreachable, code: Icmp4Unreach.SourceRouteFailed },
  /** Destination Unreachable, Communication Administratively Prohibited (as Jool answers a refusal). */
  adminProhibited: { type: Icmp4Type.DestUnreachable, code: Icmp4Unreach.AdminProhibited },
  /** Destination Unreachable, Fragmentation Needed (the body carries the next-hop MTU). */
  fragmentationNeeded: { type: Icmp4Type.DestUnreachable, code: Icmp4Unreach.FragmentationNeeded },
} as const satisfies Record<string, IcmpErrorKind>;

/** The ICMPv6 errors the 6→4 direction sends back (RFC 7915 §5.1). */
export const ICMP6_ERRORS = {
  /** Time Exceeded, hop limit exceeded in transit. */
  hopLimitExceeded: { type: ICMP6_TIME_EXCEEDED, code: 0 },
  /** Destination Unreachable, administratively prohibited: an untranslatable packet. */
  adminProhibited: { type: ICMP6_DEST_UNREACH, code: ICMP6_DU_ADMIN_PROHIBITED },
  /** Parameter Problem, erroneous header field (the body is the pointer). */
  headerField: { type: ICMP6_PARAM_PROBLEM, code: ICMP6_PP_HEADER },
  /** Packet Too Big (the body is the MTU). */
  packetTooBig: { type: ICMP6_PACKET_TOO_BIG, code: 0 },
} as const satisfies Record<string, IcmpErrorKind>;

function isIcmp6ErrorOrUnanswerable(b: Uint8Array, off: number, len: number): boolean {
  // RFC 4443 §2.4 (e): never answer a multicast destination or an unspecified / multicast source.
  if (b[off + IPV6_DST] === 0xff || b[off + IPV6_SRC] === 0xff) return true;
  let zero = true;
  for (let i = IPV6_SRC; i < IPV6_DST; i++) if (b[off + i] !== 0) zero = false;
  if (zero) return true;
  // An ICMPv6 error directly after the fixed header is never answered with an error (§2.4 (e.1)).
  return b[off + IPV6_NEXT_HEADER] === PROTO_ICMPV6 && len > IPV6_HDR_LEN && isIcmp6Error(b[off + IPV6_HDR_LEN]);
}

/**
 * Appends ICMPv6 error `kind` about the IPv6 packet at `b[off, off+len)`, with `body` as the 32-bit
 * word after the checksum (MTU for Packet Too Big, pointer for Parameter Problem, else 0).
 * Returns true when an error was appended; false when there is no own IPv6 address, the batch is
 * full, or RFC 4443 §2.4 (e) forbids answering this packet.
 */
export function emitIcmp6Error(
  c: ResolvedConfig,
  kind: IcmpErrorKind,
  body: number,
  b: Uint8Array,
  off: number,
  len: number,
  out: PacketBatch,
): boolean {
  const own = c.ownV6;
  if (own === null || len < IPV6_HDR_LEN || out.count >= out.capacity) return false;
  if (isIcmp6ErrorOrUnanswerable(b, off, len)) return false;
  const headers = IPV6_HDR_LEN + ICMP_HEADER_LENGTH;
  const quote = Math.min(len, ICMP6_ERROR_MAX - headers, out.stride - headers);
  const d = out.data;
  const o = slotStart(out, out.count);
  const icmpLen = ICMP_HEADER_LENGTH + quote;
  ipv6WriteHeader(d, o, 0, icmpLen, PROTO_ICMPV6, c.generatedTtl);
  d.set(own, o + IPV6_SRC);
  for (let i = 0; i < 16; i++) d[o + IPV6_DST + i] = b[off + IPV6_SRC + i];
  const initial = pseudoSum6(d, o + IPV6_SRC, o + IPV6_DST, PROTO_ICMPV6, icmpLen);
  writeError(d, o + IPV6_HDR_LEN, kind, body, b, off, quote, initial);
  appendPacket(out, o, IPV6_HDR_LEN + icmpLen, Disposition.Back);
  return true;
}

/**
 * Appends ICMPv4 error `kind` about the IPv4 packet at `b[off, off+len)`, with `body` as the 32-bit
 * word after the checksum (Next-Hop MTU in its low 16 bits for Fragmentation Needed, pointer in
 * its top byte for Parameter Problem, else 0). Returns true when an error was appended; false
 * when there is no own IPv4 address, the batch is full, or RFC 1122 §3.2.2 forbids it (the packet
 * is an ICMP error, a non-first fragment, or from/to a broadcast, multicast or zero address).
 */
export function emitIcmp4Error(
  c: ResolvedConfig,
  kind: IcmpErrorKind,
  body: number,
  b: Uint8Array,
  off: number,
  len: number,
  out: PacketBatch,
): boolean {
  const own = c.ownV4;
  if (own === null || len < IPV4_MIN_HEADER_LENGTH || out.count >= out.capacity) return false;
  const ihl = ipv4HeaderLength(b, off);
  // Signed, not `>>> 0`: a uint32 above 2^31 is no small integer, and handing one to the header
  // writer would allocate a heap number per error.
  const src =
    (b[off + IPV4_SRC] << 24) | (b[off + IPV4_SRC + 1] << 16) | (b[off + IPV4_SRC + 2] << 8) | b[off + IPV4_SRC + 3];
  const dstTop = b[off + IPV4_DST];
  if (ipv4FragmentOffset(b, off) !== 0 || src === 0 || src >>> 28 >= 0xe || dstTop >= 0xe0) return false;
  if (ipv4Protocol(b, off) === PROTO_ICMP && len > ihl && icmp4IsError(b[off + ihl])) return false;
  const headers = IPV4_MIN_HEADER_LENGTH + ICMP_HEADER_LENGTH;
  const quote = Math.min(len, ICMP4_ERROR_MAX - headers, out.stride - headers);
  const total = headers + quote;
  const d = out.data;
  const o = slotStart(out, out.count);
  ipv4WriteHeader(d, o, 0, total, 0, c.generatedTtl, PROTO_ICMP, own | 0, src);
  writeError(d, o + IPV4_MIN_HEADER_LENGTH, kind, body, b, off, quote, 0);
  appendPacket(out, o, total, Disposition.Back);
  return true;
}

/**
 * The ICMP part of an error, the same in both families: the header with the 32-bit `body` word,
 * then `quote` bytes of the offending packet; the checksum starts from `initial` (the IPv6
 * pseudo-header sum, or 0 for ICMPv4).
 */
function writeError(
  d: Uint8Array,
  m: number,
  kind: IcmpErrorKind,
  body: number,
  b: Uint8Array,
  off: number,
  quote: number,
  initial: number,
): void {
  icmpWriteHeader(d, m, kind.type, kind.code, body);
  copyBytes(b, off, quote, d, m + ICMP_HEADER_LENGTH);
  icmpSetChecksum(d, m, finish(sum16(d, m, ICMP_HEADER_LENGTH + quote, initial)));
}
