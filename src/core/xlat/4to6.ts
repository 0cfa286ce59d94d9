/**
 * RFC 7915 §4: translating IPv4 into IPv6 — §4.1 the header, §4.2 ICMPv4 → ICMPv6, §4.3 the
 * packet inside an ICMP error, §4.4/§4.5 transport checksums. One function per section; the
 * entry point validates, maps the addresses, answers what must be answered, then writes the
 * result straight into the output batch (no allocation).
 *
 * The input `b[off, off+len)` must not overlap the output slots it is written to (the datapath's
 * input and output batches are different slots of one arena, moved with copyWithin).
 */
import * as batch from '../batch.js';
import { appendPacket, copyBytes, type PacketBatch, slotStart } from '../batch.js';
import { adjust, finish, fold, pseudoSum6, sum16 } from '../checksum.js';
import * as icmp from '../hdr/icmp.js';
import { icmpSetChecksum, icmpWriteHeader } from '../hdr/icmp.js';
import * as icmpv4 from '../hdr/icmpv4.js';
import { icmp4Code, icmp4IsError, icmp4Mtu, icmp4QuoteLength, icmp4Type } from '../hdr/icmpv4.js';
import * as ipv4 from '../hdr/ipv4.js';
import {
  ipv4Check,
  ipv4FlagsFragment,
  ipv4HasUnexpiredSourceRoute,
  ipv4HeaderLength,
  ipv4Id,
  ipv4Protocol,
  ipv4Src,
  ipv4Tos,
  ipv4TotalLength,
  ipv4Ttl,
} from '../hdr/ipv4.js';
import * as ipv6 from '../hdr/ipv6.js';
import { ipv6WriteHeader } from '../hdr/ipv6.js';
import * as ipv6ext from '../hdr/ipv6-ext.js';
import { fragWriteHeader } from '../hdr/ipv6-ext.js';
import * as tcp from '../hdr/tcp.js';
import * as udp from '../hdr/udp.js';
import type { ResolvedConfig } from './config.js';
import * as drop from './drop.js';
import { fragment46, fragmentCount46 } from './frag46.js';
import { emitIcmp4Error, ICMP4_ERRORS } from './icmp-error.js';
import * as icmp46 from './icmp46.js';
import { code46, kind46, layoutError46, map46, paramPointer46, ptbMtu46, type46 } from './icmp46.js';
import * as mapping from './mapping.js';
import { isMartian4Octet, mapAddress46, mapDelta } from './mapping.js';
import type { XlatState } from './state.js';
import { copy, sumWords } from './words.js';

/*
 * The other modules' constants this file uses, as module-local copies. V8 folds a module's own
 * `const` bindings into optimized code (and the members of an enum object held in one), but loads
 * an imported binding from its module cell and checks it for the temporal dead zone at every use
 * (a few instructions each; figures in bench/README.md).
 */
const { Disposition } = batch;
const { ICMP_CHECKSUM, ICMP_CODE, ICMP_TYPE } = icmp;
const { ICMPV4_HEADER_LENGTH, ICMPV4_POINTER, Icmp4Type } = icmpv4;
const {
  IPV4_DST,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IPV4_FRAGMENT_OFFSET_MASK,
  IPV4_MIN_HEADER_LENGTH,
  IPV4_SRC,
  Ipv4Invalid,
  PROTO_FRAGMENT,
  PROTO_ICMP,
  PROTO_ICMPV6,
  PROTO_TCP,
  PROTO_UDP,
} = ipv4;
const { IPV6_DST: V6_DST, IPV6_HDR_LEN: V6_HEADER, IPV6_SRC: V6_SRC } = ipv6;
const { FRAG_HDR_LEN: FRAG_HEADER } = ipv6ext;
const { TCP_CHECKSUM, TCP_MIN_HEADER_LENGTH } = tcp;
const { UDP_CHECKSUM, UDP_HEADER_LENGTH } = udp;
const { Drop } = drop;
type Drop = drop.Drop;
type Ipv4Invalid = ipv4.Ipv4Invalid;
const { ICMPV6_DEST_UNREACHABLE, ICMPV6_TIME_EXCEEDED, Kind46, POINTER_NEXT_HEADER } = icmp46;
const { MAP46_MAPPED, MAP46_MARTIAN } = mapping;

/** Why ipv4Check refused, as a drop reason. */
function invalidToDrop(v: Ipv4Invalid): Drop {
  switch (v) {
    case Ipv4Invalid.NotIpv4:
      return Drop.BAD_VERSION;
    case Ipv4Invalid.BadLength:
      return Drop.D46_BAD_LENGTH;
    case Ipv4Invalid.BadChecksum:
      return Drop.D46_BAD_HEADER_CHECKSUM;
    default:
      return Drop.D46_TRUNCATED;
  }
}

/** RFC 7915 §4.1 Traffic Class: copied from TOS, or 0 by policy. */
function trafficClass46(c: ResolvedConfig, tos: number): number {
  return c.trafficClass === 'zero' ? 0 : tos;
}

function protocol46(p: number): number {
  return p === PROTO_ICMP ? PROTO_ICMPV6 : p;
}

/**
 * IPv6 extension header numbers (RFC 8200 §4: Hop-by-Hop, Routing, Fragment, Destination
 * Options). §4.1 says to copy the Protocol field, but in the IPv6 Next Header these would have the
 * receiver parse the payload as that header, one the translator never checked (a way to smuggle
 * options or fragments past it). No IPv4 host sends these, so such packets are dropped.
 */
function isV6ExtensionNumber(p: number): boolean {
  return p === 0 || p === 43 || p === 44 || p === 60;
}

/**
 * RFC 7915 §4.4/§4.5: moves a TCP or UDP checksum at `d[at]` from the IPv4 pseudo-header
 * addresses to the IPv6 ones (RFC 1624), given the one's-complement difference `diff` that the
 * two address mappings make (the sum of their {@link mapDelta}s). Protocol and length appear in
 * both pseudo-headers and cancel. Checksum-neutral pairs (`diff` 0 or 0xffff) leave the field
 * untouched.
 */
function readdressChecksum(d: Uint8Array, at: number, diff: number, udp: boolean): void {
  if (diff === 0 || diff === 0xffff) return;
  let s = (~((d[at] << 8) | d[at + 1]) & 0xffff) + diff;
  s = (s & 0xffff) + (s >>> 16);
  let n = ~s & 0xffff;
  if (udp && n === 0) n = 0xffff; // RFC 768: a computed zero is sent as all ones.
  d[at] = n >>> 8;
  d[at + 1] = n;
}

/**
 * RFC 7915 §4.2, Echo / Echo Reply: new type, code 0, and a checksum that now covers the ICMPv6
 * pseudo-header (ICMPv4 has none). Updated incrementally, so a wrong checksum stays wrong by the
 * same amount. `d[q]` is the copied ICMP header, `addrSum` the sum of the two IPv6 addresses,
 * `l4len` the message length.
 */
function echo46(d: Uint8Array, q: number, addrSum: number, type6: number, l4len: number): void {
  const old = (d[q + ICMP_TYPE] << 8) | d[q + ICMP_CODE];
  d[q + ICMP_TYPE] = type6;
  d[q + ICMP_CODE] = 0;
  // The ICMPv6 pseudo-header (RFC 8200 §8.1): addresses, length, next header.
  const now = (type6 << 8) + addrSum + PROTO_ICMPV6 + (l4len >>> 16) + (l4len & 0xffff);
  icmpSetChecksum(d, q, adjust((d[q + ICMP_CHECKSUM] << 8) | d[q + ICMP_CHECKSUM + 1], old, now));
}

/** Translates the IPv4 packet at `b[off, off+len)` into `out` (RFC 7915 §4). */
export function translate4to6(s: XlatState, b: Uint8Array, off: number, len: number, out: PacketBatch): Drop {
  const c = s.config;
  const invalid = ipv4Check(b, off, len);
  if (invalid !== Ipv4Invalid.None) return invalidToDrop(invalid);
  const ihl = ipv4HeaderLength(b, off);
  const total = ipv4TotalLength(b, off); // bytes past Total Length are link padding: trimmed
  const ff = ipv4FlagsFragment(b, off);
  const df = (ff & IPV4_FLAG_DF) !== 0;
  const mf = (ff & IPV4_FLAG_MF) !== 0;
  const fragOffset = (ff & IPV4_FRAGMENT_OFFSET_MASK) << 3;
  const isFragment = mf || fragOffset !== 0;
  const proto = ipv4Protocol(b, off);
  if (isV6ExtensionNumber(proto)) return Drop.D46_PROTOCOL_IS_V6_EXT;
  // Protocol 58 (ICMPv6 inside IPv4), for the same reason: §4.1 would copy it into Next Header and
  // let an IPv4 sender inject ICMPv6 (Packet Too Big, Neighbor Discovery, ...) the translator never
  // checked. No IPv4 host sends it (tundra drops it too).
  if (proto === PROTO_ICMPV6) return Drop.D46_PROTOCOL_IS_ICMPV6;
  const l4 = off + ihl;
  const l4len = total - ihl;
  // A fragment reaching past 65535 bytes can never be reassembled, and its IPv6 offset would wrap.
  if (fragOffset + l4len > 0xffff) return Drop.D46_BAD_LENGTH;

  // The transport header is only in the first fragment (or the whole packet).
  let icmpType = -1;
  if (fragOffset === 0) {
    if (proto === PROTO_TCP && l4len < TCP_MIN_HEADER_LENGTH) return Drop.D46_L4_TRUNCATED;
    if (proto === PROTO_UDP && l4len < UDP_HEADER_LENGTH) return Drop.D46_L4_TRUNCATED;
    if (proto === PROTO_ICMP) {
      if (l4len < ICMPV4_HEADER_LENGTH) return Drop.D46_L4_TRUNCATED;
      icmpType = b[l4];
    }
  }
  if (proto === PROTO_ICMP && isFragment) return Drop.D46_FRAGMENTED_ICMP;
  const isError =
    icmpType === Icmp4Type.DestUnreachable ||
    icmpType === Icmp4Type.TimeExceeded ||
    icmpType === Icmp4Type.ParameterProblem;
  const i = out.count;
  if (i >= out.capacity) return Drop.OUTPUT_FULL;
  const o = slotStart(out, i);
  const d = out.data;

  // §4.1 addresses, written straight into the output header; the memo says which are martians
  // (see isMartian4Octet), never translated whatever the pool.
  // A martian destination: there is no unicast IPv6 packet to make of a loopback, multicast or
  // broadcast destination. Silently (no ICMP error), as RFC 7915 §4.1 asks for an illegal source.
  const rd = mapAddress46(s, b, off + IPV4_DST, d, o + V6_DST);
  if ((rd & MAP46_MARTIAN) !== 0) return Drop.D46_DST_MARTIAN;
  const dstDelta = s.memo46.lastDelta;
  const dstSum6 = s.memo46.lastSum6;
  // A martian source likewise (RFC 7915 §4.1: an illegal source such as 0.0.0.0 or 127.0.0.1
  // "SHOULD" be silently dropped; RFC 1812 §5.3.7). ICMPv4 errors are the exception, as in Jool (its
  // source check is off for errors) and as the Jool corpus requires (rfc7915/ha-1, ha-2: errors
  // from 127.0.0.1 and 0.0.0.0 are translated): an error must reach the IPv6 sender whatever
  // router it came from (in a CLAT the IPv4 side is the host's own stack, not a stranger). Its
  // destination is still checked above, and the packet it quotes below. An error from a router
  // with no IPv6 mapping still has to reach the host: it comes from the translator's own address
  // (the IPv6 analogue of RFC 6791).
  const rs = mapAddress46(s, b, off + IPV4_SRC, d, o + V6_SRC);
  if (!isError && (rs & MAP46_MARTIAN) !== 0) return Drop.D46_SRC_MARTIAN;
  if (c.eamSourcesOnly && !c.eam.has4(ipv4Src(b, off) | 0)) return Drop.D46_SRC_NOT_EAM;
  let srcDelta: number;
  let srcSum6: number;
  if ((rs & MAP46_MAPPED) !== 0) {
    srcDelta = s.memo46.lastDelta;
    srcSum6 = s.memo46.lastSum6;
  } else {
    if (!isError || c.ownV6 === null) return Drop.D46_SRC_UNMAPPED;
    d.set(c.ownV6, o + V6_SRC);
    srcDelta = mapDelta(ipv4Src(b, off) | 0, d, o + V6_SRC);
    srcSum6 = sum16(d, o + V6_SRC, 16);
  }
  if ((rd & MAP46_MAPPED) === 0) return Drop.D46_DST_UNMAPPED;
  const diff = fold(srcDelta + dstDelta);
  const addrSum = srcSum6 + dstSum6;

  // §4.1 Hop Limit: the translator "(as any router) MUST check for zero and send the ICMPv4 'TTL
  // Exceeded' ... error".
  const ttl = ipv4Ttl(b, off);
  if (ttl <= 1) {
    emitIcmp4Error(c, ICMP4_ERRORS.ttlExceeded, 0, b, off, total, out);
    return Drop.D46_TTL_EXPIRED;
  }
  // §4.1 Options are ignored, but "if an unexpired source route option is present, then the packet
  // MUST instead be discarded, and an ICMPv4 'Destination Unreachable, Source Route Failed' (Type
  // 3, Code 5) error message SHOULD be returned to the sender."
  if (ihl > IPV4_MIN_HEADER_LENGTH && ipv4HasUnexpiredSourceRoute(b, off)) {
    emitIcmp4Error(c, ICMP4_ERRORS.sourceRouteFailed, 0, b, off, total, out);
    return Drop.D46_SRC_ROUTE;
  }

  if (isError) return translateError46(s, b, off, ihl, total, out, o);

  let type6 = -1;
  if (proto === PROTO_ICMP) {
    const m = map46(icmpType, b[l4 + 1]);
    if (kind46(m) !== Kind46.Info) return Drop.D46_ICMP_UNTRANSLATABLE;
    type6 = type46(m);
  }

  // §4.5: "A stateless translator cannot compute the UDP checksum of fragmented packets, so when
  // [it] receives the first fragment of a fragmented UDP IPv4 packet and the checksum field is
  // zero, the translator SHOULD drop the packet"; unfragmented ones are computed unless configured
  // off. The refusal is answered with Communication Administratively Prohibited (as Jool does).
  let computeUdp = false;
  if (proto === PROTO_UDP && fragOffset === 0 && b[l4 + UDP_CHECKSUM] === 0 && b[l4 + UDP_CHECKSUM + 1] === 0) {
    if (isFragment || c.udpZeroChecksum === 'drop') {
      emitIcmp4Error(c, ICMP4_ERRORS.adminProhibited, 0, b, off, total, out);
      return Drop.D46_UDP_ZERO_CHECKSUM;
    }
    computeUdp = true;
  }

  // §4 / §4.1 size: with DF=1 the IPv6 link MTU is the limit and a packet over it is answered with
  // Fragmentation Needed (MTU less the 20 bytes the header grows); with DF=0 the translator
  // fragments to fit the smaller of lowest-ipv6-mtu and the link MTU.
  let outHeader = V6_HEADER + (isFragment ? FRAG_HEADER : 0);
  const outLen = outHeader + l4len;
  let fragmentTo = 0;
  if (df) {
    if (outLen > c.ipv6Mtu) {
      const mtu = c.ipv6Mtu - (V6_HEADER - IPV4_MIN_HEADER_LENGTH);
      emitIcmp4Error(c, ICMP4_ERRORS.fragmentationNeeded, mtu, b, off, total, out);
      return Drop.D46_TOO_BIG;
    }
  } else {
    const limit = Math.min(c.lowestIpv6Mtu, c.ipv6Mtu);
    if (outLen > limit) {
      fragmentTo = limit;
      outHeader = V6_HEADER + FRAG_HEADER;
    }
  }
  const payloadAt = o + outHeader;
  if (payloadAt + l4len > slotStart(out, i) + out.stride) return Drop.OUTPUT_FULL;
  let pieces = 1;
  if (fragmentTo !== 0) {
    pieces = fragmentCount46(l4len, fragmentTo);
    if (pieces === 0 || i + pieces > out.capacity) return Drop.D46_TOO_MANY_FRAGMENTS;
  }

  copy(s.words, b, l4, l4len, d, payloadAt);
  const next = protocol46(proto);
  const hop = ttl - 1;
  if (outHeader === V6_HEADER) {
    ipv6WriteHeader(d, o, trafficClass46(c, ipv4Tos(b, off)), l4len, next, hop);
  } else {
    ipv6WriteHeader(d, o, trafficClass46(c, ipv4Tos(b, off)), FRAG_HEADER + l4len, PROTO_FRAGMENT, hop);
    fragWriteHeader(d, o + V6_HEADER, next, fragOffset, mf, ipv4Id(b, off));
  }

  // §4.4/§4.5 transport checksums (first fragment or whole packet only; later fragments carry none).
  if (fragOffset === 0) {
    if (proto === PROTO_TCP) {
      readdressChecksum(d, payloadAt + TCP_CHECKSUM, diff, false);
    } else if (proto === PROTO_UDP) {
      if (computeUdp) {
        const sum = sumWords(s.words, d, payloadAt, l4len, pseudoSum6(d, o + V6_SRC, o + V6_DST, PROTO_UDP, l4len));
        const n = finish(sum);
        d[payloadAt + UDP_CHECKSUM] = n === 0 ? 0xff : n >>> 8;
        d[payloadAt + UDP_CHECKSUM + 1] = n === 0 ? 0xff : n;
      } else {
        readdressChecksum(d, payloadAt + UDP_CHECKSUM, diff, true);
      }
    } else if (proto === PROTO_ICMP) {
      echo46(d, payloadAt, addrSum, type6, l4len);
    }
  }

  if (fragmentTo === 0) {
    appendPacket(out, o, outHeader + l4len, Disposition.Forward);
  } else {
    fragment46(out, o, l4len, fragmentTo, fragOffset, mf);
  }
  return Drop.NONE;
}

/**
 * RFC 7915 §4.2 (errors) and §4.3: an ICMPv4 Destination Unreachable, Time Exceeded or Parameter
 * Problem becomes its ICMPv6 counterpart, and the IPv4 packet it quotes becomes an IPv6 packet
 * (addresses mapped, inner transport checksum updated, lengths translated, TTL untouched). The
 * result is cut to 1280 bytes (RFC 4443 §2.4(c)) and never fragmented; RFC 4884 extensions are
 * carried over (see layoutError46). The ICMPv6 checksum is computed afresh, so the ICMPv4 one is
 * verified first.
 */
function translateError46(
  s: XlatState,
  b: Uint8Array,
  off: number,
  ihl: number,
  total: number,
  out: PacketBatch,
  o: number,
): Drop {
  const c = s.config;
  const layout = s.errorLayout46;
  const p = off + ihl;
  const icmpLen = total - ihl;
  if (fold(sumWords(s.words, b, p, icmpLen, 0)) !== 0xffff) return Drop.D46_ICMP_BAD_CHECKSUM;
  const m = map46(icmp4Type(b, p), icmp4Code(b, p));
  const kind = kind46(m);
  if (kind === Kind46.Drop) return Drop.D46_ICMP_UNTRANSLATABLE;
  const type6 = type46(m);

  // The quoted IPv4 header must be whole.
  const q = p + ICMPV4_HEADER_LENGTH;
  const avail = icmpLen - ICMPV4_HEADER_LENGTH;
  if (avail < IPV4_MIN_HEADER_LENGTH || b[q] >>> 4 !== 4) return Drop.D46_ICMP_BAD_INNER;
  const iihl = ipv4HeaderLength(b, q);
  if (iihl < IPV4_MIN_HEADER_LENGTH || iihl > avail) return Drop.D46_ICMP_BAD_INNER;
  const itotal = ipv4TotalLength(b, q);
  const iff = ipv4FlagsFragment(b, q);
  const imf = (iff & IPV4_FLAG_MF) !== 0;
  const ifragOffset = (iff & IPV4_FRAGMENT_OFFSET_MASK) << 3;
  const iIsFragment = imf || ifragOffset !== 0;
  const iproto = ipv4Protocol(b, q);
  // Never sent by this side's hosts (the 6→4 direction cannot produce it either): not a real quote.
  if (isV6ExtensionNumber(iproto) || iproto === PROTO_ICMPV6) return Drop.D46_ICMP_BAD_INNER;
  // RFC 7915 §4.3 translates the inner header by §4.1's rules, and Jool applies its address
  // checks to the inner packet too: a quote with a martian address is about a packet this
  // translator would never have sent (6→4 drops it), so the error is not translated.
  if (isMartian4Octet(b[q + IPV4_SRC]) || isMartian4Octet(b[q + IPV4_DST])) return Drop.D46_ICMP_BAD_INNER;
  if (iproto === PROTO_ICMP && ifragOffset === 0 && avail > iihl && icmp4IsError(b[q + iihl])) {
    return Drop.D46_ICMP_ERROR_IN_ERROR;
  }

  // Rest of the ICMPv6 header.
  let rest = 0;
  if (kind === Kind46.PacketTooBig) {
    rest = ptbMtu46(icmp4Mtu(b, p), itotal, c.ipv6Mtu, c.ipv4Mtu);
  } else if (kind === Kind46.ParamProblem) {
    if (icmp4Type(b, p) === Icmp4Type.ParameterProblem) {
      rest = paramPointer46(b[p + ICMPV4_POINTER]);
      if (rest < 0) return Drop.D46_ICMP_UNTRANSLATABLE;
    } else {
      rest = POINTER_NEXT_HEADER;
    }
  }

  const ih6 = V6_HEADER + (iIsFragment ? FRAG_HEADER : 0);
  const carriesLength = type6 === ICMPV6_DEST_UNREACHABLE || type6 === ICMPV6_TIME_EXCEEDED;
  if (!layoutError46(layout, avail, icmp4QuoteLength(b, p), ih6 - iihl, carriesLength)) return Drop.D46_ICMP_BAD_INNER;
  if (layout.quoted4 < iihl) return Drop.D46_ICMP_BAD_INNER;

  const d = out.data;
  const io = o + V6_HEADER + ICMPV4_HEADER_LENGTH; // where the inner IPv6 packet goes
  if ((mapAddress46(s, b, q + IPV4_SRC, d, io + V6_SRC) & MAP46_MAPPED) === 0) return Drop.D46_ICMP_BAD_INNER;
  const isrcDelta = s.memo46.lastDelta;
  const isrcSum6 = s.memo46.lastSum6;
  if ((mapAddress46(s, b, q + IPV4_DST, d, io + V6_DST) & MAP46_MAPPED) === 0) return Drop.D46_ICMP_BAD_INNER;
  const idiff = fold(isrcDelta + s.memo46.lastDelta);
  const iaddrSum = isrcSum6 + s.memo46.lastSum6;

  const icmp6Len = ICMPV4_HEADER_LENGTH + layout.quoted6 + layout.pad + layout.ext;
  const totalOut = V6_HEADER + icmp6Len;
  if (totalOut > out.stride) return Drop.OUTPUT_FULL;

  // Inner packet: transport header and data, cut to fit; then padding and extension.
  const ipay = io + ih6;
  const copied = Math.min(layout.quoted4 - iihl, layout.quoted6 - ih6);
  copy(s.words, b, q + iihl, copied, d, ipay);
  d.fill(0, ipay + copied, io + layout.quoted6 + layout.pad);
  if (layout.ext !== 0) copyBytes(b, q + layout.quoted4, layout.ext, d, io + layout.quoted6 + layout.pad);

  // Inner IPv6 header: lengths from the quoted header (not from what was quoted), TTL untouched.
  const iplen = Math.max(0, itotal - iihl) + (iIsFragment ? FRAG_HEADER : 0);
  const inext = protocol46(iproto);
  if (iIsFragment) {
    ipv6WriteHeader(d, io, trafficClass46(c, ipv4Tos(b, q)), iplen & 0xffff, PROTO_FRAGMENT, ipv4Ttl(b, q));
    fragWriteHeader(d, io + V6_HEADER, inext, ifragOffset, imf, ipv4Id(b, q));
  } else {
    ipv6WriteHeader(d, io, trafficClass46(c, ipv4Tos(b, q)), iplen & 0xffff, inext, ipv4Ttl(b, q));
  }

  // Inner transport checksum, when its field was quoted.
  if (ifragOffset === 0) {
    if (iproto === PROTO_TCP) {
      if (copied >= TCP_CHECKSUM + 2) readdressChecksum(d, ipay + TCP_CHECKSUM, idiff, false);
    } else if (iproto === PROTO_UDP) {
      if (copied >= UDP_HEADER_LENGTH && (d[ipay + UDP_CHECKSUM] | d[ipay + UDP_CHECKSUM + 1]) !== 0) {
        readdressChecksum(d, ipay + UDP_CHECKSUM, idiff, true);
      }
    } else if (iproto === PROTO_ICMP && copied >= 4) {
      const im = map46(d[ipay], d[ipay + 1]);
      if (kind46(im) !== Kind46.Info) return Drop.D46_ICMP_UNTRANSLATABLE;
      echo46(d, ipay, iaddrSum, type46(im), Math.max(0, itotal - iihl));
    }
  }

  // Outer IPv6 + ICMPv6 header, checksum over the whole message.
  ipv6WriteHeader(d, o, trafficClass46(c, ipv4Tos(b, off)), icmp6Len, PROTO_ICMPV6, ipv4Ttl(b, off) - 1);
  const h = o + V6_HEADER;
  // RFC 4884 §4.2 (ICMPv6): the length, in 64-bit words, is the first byte of the rest of header.
  const rest6 = layout.lengthField !== 0 ? (layout.lengthField << 24) | (rest & 0xffffff) : rest;
  icmpWriteHeader(d, h, type6, code46(m), rest6);
  const ck = finish(sumWords(s.words, d, h, icmp6Len, pseudoSum6(d, o + V6_SRC, o + V6_DST, PROTO_ICMPV6, icmp6Len)));
  icmpSetChecksum(d, h, ck);
  appendPacket(out, o, totalOut, Disposition.Forward);
  return Drop.NONE;
}
