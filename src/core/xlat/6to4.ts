/**
 * RFC 7915 §5: translating IPv6 into IPv4.
 *
 * One call reads one IPv6 packet and appends its results to the output batch: the IPv4
 * translation (Forward), an ICMPv6 error the translator generates (Back), or, when hairpinning
 * (RFC 7757 §4), the packet translated back into IPv6 (Back). Nothing allocates; the input must not
 * overlap the output slots.
 */
import * as batch from '../batch.js';
import { appendPacket, copyBytes, type PacketBatch, slotStart } from '../batch.js';
import { adjust, finish, fold, sum16, sum32 } from '../checksum.js';
import * as icmp from '../hdr/icmp.js';
import { icmpSetChecksum, icmpWriteHeader } from '../hdr/icmp.js';
import * as icmpv6 from '../hdr/icmpv6.js';
import { hasRfc4884Length6, isIcmp6Error } from '../hdr/icmpv6.js';
import * as ipv4 from '../hdr/ipv4.js';
import { ipv4WriteHeader } from '../hdr/ipv4.js';
import * as ipv6 from '../hdr/ipv6.js';
import { hopLimit6, nextHeader6, payloadLength6, trafficClass6 } from '../hdr/ipv6.js';
import * as ipv6ext from '../hdr/ipv6-ext.js';
import { type Ipv6Chain, walkIpv6 } from '../hdr/ipv6-ext.js';
import * as tcp from '../hdr/tcp.js';
import * as udp from '../hdr/udp.js';
import type { ResolvedConfig } from './config.js';
import * as drop from './drop.js';
import { hairpinBack } from './hairpin.js';
import { emitIcmp6Error, ICMP6_ERRORS } from './icmp-error.js';
import * as icmp46 from './icmp46.js';
import * as icmp64 from './icmp64.js';
import { icmp6to4TypeCode, layout4884, mapPointer64, ptbMtu64 } from './icmp64.js';
import { isMartian4, mapAddress64 } from './mapping.js';
import type { XlatState } from './state.js';
import { copy, sumWords } from './words.js';

/*
 * The other modules' constants this file uses, as module-local copies. V8 folds a module's own
 * `const` bindings into optimized code (and the members of an enum object held in one), but loads
 * an imported binding from its module cell and checks it for the temporal dead zone at every use.
 */
const { Disposition } = batch;
const { ICMP_CHECKSUM, ICMP_CODE, ICMP_HEADER_LENGTH, ICMP_REST, ICMP_TYPE } = icmp;
const { ICMP6_PACKET_TOO_BIG, ICMP6_PARAM_PROBLEM, ICMP6_PP_HEADER } = icmpv6;
const { IPV4_FLAG_DF, IPV4_FLAG_MF, IPV4_FRAGMENT_OFFSET_MASK, IPV4_MIN_HEADER_LENGTH, PROTO_ICMP } = ipv4;
const { IPV6_DST, IPV6_HDR_LEN, IPV6_SRC } = ipv6;
const { NH_HOP_BY_HOP, NH_ICMPV6, NH_TCP, NH_UDP, Walk } = ipv6ext;
const { TCP_CHECKSUM, TCP_MIN_HEADER_LENGTH } = tcp;
const { UDP_CHECKSUM, UDP_HEADER_LENGTH } = udp;
const { Drop } = drop;
type Drop = drop.Drop;
const { IPV6_MIN_MTU } = icmp46;
const { NO_ICMP4 } = icmp64;

/** Fixed header sizes: the IPv6 header a packet loses, the IPv4 header (no options) it gains. */
const V6 = IPV6_HDR_LEN;
const V4 = IPV4_MIN_HEADER_LENGTH;

/** RFC 7915 §5.1: DF is set exactly when the IPv4 packet is larger than this. */
const DF_THRESHOLD = 1260;
/** Largest translated ICMPv4 error (RFC 1812 §4.3.2.3; what the Jool corpus expects). */
const ICMP4_ERROR_CAP = 576;

/**
 * RFC 7915 §5.1 and §5.1.1: Identification and the flags/offset word. With a Fragment header,
 * ID = its low 16 bits, DF = 0, MF and offset copied (an atomic fragment thus becomes DF=0 with that
 * ID, RFC 8021). Without one, DF = 1 exactly when the result exceeds 1260 bytes; such a packet is
 * atomic and gets ID 0 (RFC 6864 §4.1); smaller ones get a fresh ID.
 */
function idAndFlags(s: XlatState, ch: Ipv6Chain, totalLen: number, fresh: boolean): number {
  if (ch.fragOff >= 0) {
    return (
      ((ch.fragId & 0xffff) << 16) | (ch.fragMore ? IPV4_FLAG_MF : 0) | (ch.fragOffset & IPV4_FRAGMENT_OFFSET_MASK)
    );
  }
  if (totalLen > DF_THRESHOLD) return IPV4_FLAG_DF;
  if (!fresh) return 0;
  s.nextId = (s.nextId + 1) & 0xffff;
  return s.nextId << 16;
}

function tosOf(c: ResolvedConfig, b: Uint8Array, off: number): number {
  return c.trafficClass === 'zero' ? 0 : trafficClass6(b, off);
}

/**
 * RFC 7915 §5.5: adjusts the TCP or UDP checksum at `d[p]` (a header of `avail` bytes) for the
 * pseudo-header change from sum `oldSum` to `newSum`. Incremental (RFC 1624), so a wrong checksum
 * stays wrong by the same amount; untouched when the change is checksum-neutral (the difference
 * is 0 in one's complement, 0x0000 or 0xffff). Returns false when the checksum field is not in
 * the data.
 */
function fixTransport(d: Uint8Array, p: number, avail: number, proto: number, oldSum: number, newSum: number): boolean {
  if (proto === NH_TCP) {
    if (avail < TCP_CHECKSUM + 2) return false;
    const diff = fold((~fold(oldSum) & 0xffff) + fold(newSum));
    if (diff === 0 || diff === 0xffff) return true;
    const cs = adjustBy16((d[p + TCP_CHECKSUM] << 8) | d[p + TCP_CHECKSUM + 1], diff);
    d[p + TCP_CHECKSUM] = cs >>> 8;
    d[p + TCP_CHECKSUM + 1] = cs;
    return true;
  }
  if (proto === NH_UDP) {
    if (avail < UDP_HEADER_LENGTH) return false;
    const old = (d[p + UDP_CHECKSUM] << 8) | d[p + UDP_CHECKSUM + 1];
    // A zero UDP checksum (RFC 6935 tunnels) means "none" in IPv4 as well: keep it.
    if (old === 0) return true;
    const diff = fold((~fold(oldSum) & 0xffff) + fold(newSum));
    if (diff === 0 || diff === 0xffff) return true;
    let cs = adjustBy16(old, diff);
    if (cs === 0) cs = 0xffff;
    d[p + UDP_CHECKSUM] = cs >>> 8;
    d[p + UDP_CHECKSUM + 1] = cs;
    return true;
  }
  return true;
}

/**
 * RFC 1624 eqn. 3 with the difference `diff` (16 bits, from a folded sum) already known: the same
 * result as `adjust(checksum, oldSum, newSum)` when `diff` is their one's-complement difference.
 */
function adjustBy16(checksum: number, diff: number): number {
  let s = (~checksum & 0xffff) + diff;
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * RFC 7915 §5.2, informational: Echo Request/Reply become ICMPv4 8/0 with the checksum adjusted
 * incrementally: the IPv6 pseudo-header (sum `pseudo`) leaves it and the type changes.
 */
function fixEcho(d: Uint8Array, p: number, typeCode4: number, pseudo: number): void {
  const old = (d[p + ICMP_TYPE] << 8) | d[p + ICMP_CODE];
  d[p + ICMP_TYPE] = typeCode4 >>> 8;
  d[p + ICMP_CODE] = typeCode4;
  icmpSetChecksum(d, p, adjust((d[p + ICMP_CHECKSUM] << 8) | d[p + ICMP_CHECKSUM + 1], pseudo + old, typeCode4));
}

export function translate6to4(s: XlatState, b: Uint8Array, off: number, len: number, out: PacketBatch): Drop {
  const c = s.config;
  const outer = s.outer;
  const mapped64 = s.mapped64;
  if (len < V6) return Drop.D64_TRUNCATED;
  if (b[off] >>> 4 !== 6) return Drop.BAD_VERSION;
  const plen = payloadLength6(b, off);
  // Payload Length 0 with a Hop-by-Hop header is a jumbogram (RFC 2675): not translatable.
  if (plen === 0 && nextHeader6(b, off) === NH_HOP_BY_HOP) return Drop.D64_BAD_LENGTH;
  if (V6 + plen > len) return Drop.D64_BAD_LENGTH;
  const n = V6 + plen; // longer data (link padding) is trimmed
  const end = off + n;

  const w = walkIpv6(b, off, end, true, outer);
  if (w === Walk.TRUNCATED) return Drop.D64_TRUNCATED;

  // Addresses stay signed 32-bit values: an unsigned one above 2^31 would be a heap number.
  if (!mapAddress64(s, b, off + IPV6_DST)) return Drop.D64_DST_UNMAPPED;
  const dst = mapped64.v4;
  // Martian IPv4 addresses decoded from pool6 or EAM are never translated, whatever the pool
  // (see isMartian4Octet), and silently (RFC 7915 §5.1 sends no error for untranslatable addresses).
  if (isMartian4(dst)) return Drop.D64_DST_MARTIAN;
  const dstViaPool6 = mapped64.viaPool6;
  s.dstSum6 = mapped64.sum6;

  // Source mapped before any error goes back: the translator answers only packets it would
  // translate. ICMPv6 errors are the exception (RFC 7915 §5.1 / RFC 6791): one from a router
  // without an IPv4 mapping gets a stand-in IPv4 source (RFC 7600 suggests 192.0.0.8).
  const proto = outer.proto;
  const l4 = outer.l4Off;
  const icmpError =
    w === Walk.OK && proto === NH_ICMPV6 && outer.fragOffset === 0 && end - l4 >= 1 && isIcmp6Error(b[l4]);
  let src: number;
  if (mapAddress64(s, b, off + IPV6_SRC)) {
    src = mapped64.v4;
    // Also for ICMPv6 errors, unlike 4→6 (and Jool, whose check is off for errors both ways): this
    // side is the untrusted network, where a pool6 source decoding to 127.0.0.1 or 0.0.0.0 is
    // forged, and no RFC or corpus case asks for an error from one to reach the host so.
    if (isMartian4(src)) return Drop.D64_SRC_MARTIAN;
    s.srcSum6 = mapped64.sum6;
  } else {
    if (!icmpError || c.icmpSrcV4 === null) return Drop.D64_SRC_UNMAPPED;
    src = c.icmpSrcV4 | 0;
    s.srcSum6 = sum16(b, off + IPV6_SRC, 16);
  }

  // Next Header 1 (ICMPv4 inside IPv6) would be copied into Protocol (§5.1) and reach the IPv4
  // host as an ICMPv4 message nobody checked, e.g. a forged Fragmentation Needed: the mirror of
  // IPv4 Protocol 58. No IPv6 host sends it. Dropped silently, before any error is generated.
  if (w === Walk.OK && proto === PROTO_ICMP) return Drop.D64_NEXT_HEADER_IS_ICMPV4;

  if (w === Walk.AFTER_FRAGMENT) {
    // RFC 7915 §5.1: "SHOULD be dropped and logged"; answered like any untranslatable packet
    // (Destination Unreachable, administratively prohibited), as Jool does.
    emitIcmp6Error(c, ICMP6_ERRORS.adminProhibited, 0, b, off, n, out);
    return Drop.D64_BAD_EXT_HEADER;
  }
  if (w === Walk.SEGMENTS_LEFT) {
    // RFC 7915 §5.1: Parameter Problem code 0 pointing at the Segments Left field.
    emitIcmp6Error(c, ICMP6_ERRORS.headerField, outer.problemOff - off, b, off, n, out);
    return Drop.D64_SEGMENTS_LEFT;
  }

  const hop = hopLimit6(b, off);
  if (hop <= 1) {
    emitIcmp6Error(c, ICMP6_ERRORS.hopLimitExceeded, 0, b, off, n, out);
    return Drop.D64_HOP_LIMIT_EXPIRED;
  }

  let hairpin = false;
  if (dstViaPool6 && c.eam.size !== 0 && c.eam.has4(dst)) {
    if (!c.hairpin) return Drop.D64_HAIRPIN_OFF;
    hairpin = true;
  }
  // A hairpinned packet is built in the batch's last slot and translated back from there.
  if (hairpin && out.count + 1 >= out.capacity) return Drop.OUTPUT_FULL;
  const target = hairpin ? out.capacity - 1 : out.count;
  const o = slotStart(out, target);
  if (!hairpin && out.count >= out.capacity) return Drop.OUTPUT_FULL;
  // The hairpinned copy keeps the hop limit: the 4→6 pass decrements it once for both.
  const ttl = hairpin ? hop : hop - 1;
  s.linkMtu = hairpin ? 0xffff : c.ipv4Mtu;
  s.src4 = src;
  s.dst4 = dst;
  s.ttl = ttl;

  let r: number;
  if (proto === NH_ICMPV6) {
    if (outer.isFragment) return Drop.D64_FRAGMENTED_ICMP;
    r = icmpError ? translateIcmpError(s, b, off, end, out, o) : translateIcmpInfo(s, b, off, end, out, o);
  } else {
    r = translatePlain(s, b, off, end, out, o);
  }
  if (r < 0) return -r as Drop;
  if (!hairpin) {
    appendPacket(out, o, r, Disposition.Forward);
    return Drop.NONE;
  }
  return hairpinBack(s, out, o, r);
}

/**
 * Packet Too Big back to the sender (RFC 7915 §5.1: the IPv4 link cannot carry the result): the
 * MTU the IPv6 sender can use is the IPv4 link MTU plus the header size difference.
 */
function tooBig(c: ResolvedConfig, b: Uint8Array, off: number, end: number, out: PacketBatch): number {
  emitIcmp6Error(c, ICMP6_ERRORS.packetTooBig, Math.max(IPV6_MIN_MTU, c.ipv4Mtu + V6 - V4), b, off, end - off, out);
  return -Drop.D64_TOO_BIG;
}

/** TCP, UDP and every other upper layer (passed through as is, RFC 7915 §5.1). Returns the length or −Drop. */
function translatePlain(s: XlatState, b: Uint8Array, off: number, end: number, out: PacketBatch, o: number): number {
  const c = s.config;
  const outer = s.outer;
  const l4 = outer.l4Off;
  const proto = outer.proto;
  const l4len = end - l4;
  const total = V4 + l4len;
  if (total > s.linkMtu) return tooBig(c, b, off, end, out);
  if (total > out.stride) return -Drop.OUTPUT_FULL;
  const d = out.data;
  if (outer.fragOffset === 0) {
    if (proto === NH_TCP && l4len < TCP_MIN_HEADER_LENGTH) return -Drop.D64_L4_TRUNCATED;
    if (proto === NH_UDP && l4len < UDP_HEADER_LENGTH) return -Drop.D64_L4_TRUNCATED;
  }
  copy(s.words, b, l4, l4len, d, o + V4);
  if (outer.fragOffset === 0)
    fixTransport(d, o + V4, l4len, proto, s.srcSum6 + s.dstSum6, sum32(s.src4) + sum32(s.dst4));
  ipv4WriteHeader(d, o, tosOf(c, b, off), total, idAndFlags(s, outer, total, true), s.ttl, proto, s.src4, s.dst4);
  return total;
}

/** RFC 7915 §5.2, informational messages: echo only. Returns the length or −Drop. */
function translateIcmpInfo(s: XlatState, b: Uint8Array, off: number, end: number, out: PacketBatch, o: number): number {
  const c = s.config;
  const outer = s.outer;
  const l4 = outer.l4Off;
  const l4len = end - l4;
  if (l4len < ICMP_HEADER_LENGTH) return -Drop.D64_L4_TRUNCATED;
  const tc4 = icmp6to4TypeCode(b[l4 + ICMP_TYPE], b[l4 + ICMP_CODE]);
  if (tc4 === NO_ICMP4) return -Drop.D64_ICMP_UNTRANSLATABLE;
  const total = V4 + l4len;
  if (total > s.linkMtu) return tooBig(c, b, off, end, out);
  if (total > out.stride) return -Drop.OUTPUT_FULL;
  const d = out.data;
  copy(s.words, b, l4, l4len, d, o + V4);
  // The IPv6 pseudo-header (RFC 8200 §8.1) from the address sums already made.
  fixEcho(d, o + V4, tc4, s.srcSum6 + s.dstSum6 + NH_ICMPV6 + (l4len >>> 16) + (l4len & 0xffff));
  ipv4WriteHeader(d, o, tosOf(c, b, off), total, idAndFlags(s, outer, total, true), s.ttl, PROTO_ICMP, s.src4, s.dst4);
  return total;
}

/**
 * RFC 7915 §5.2 and §5.3, error messages: type/code mapped, the quoted IPv6 packet translated
 * (addresses, lengths, inner checksums; TTL untouched), RFC 4884 extension kept where it fits, the
 * whole cut to 576 bytes, and the ICMPv4 checksum computed afresh. Returns the length or −Drop.
 */
function translateIcmpError(
  s: XlatState,
  b: Uint8Array,
  off: number,
  end: number,
  out: PacketBatch,
  o: number,
): number {
  const c = s.config;
  const outer = s.outer;
  const l4 = outer.l4Off;
  const icmpLen = end - l4;
  if (icmpLen < ICMP_HEADER_LENGTH + V6) return -Drop.D64_ICMP_BAD_INNER;
  const type = b[l4 + ICMP_TYPE];
  const code = b[l4 + ICMP_CODE];
  const tc4 = icmp6to4TypeCode(type, code);
  if (tc4 === NO_ICMP4) return -Drop.D64_ICMP_UNTRANSLATABLE;
  const r = l4 + ICMP_REST;
  const body = ((b[r] << 24) | (b[r + 1] << 16) | (b[r + 2] << 8) | b[r + 3]) >>> 0;

  // The ICMPv4 word after the checksum.
  let word = 0;
  if (type === ICMP6_PACKET_TOO_BIG) {
    word = ptbMtu64(body, c.ipv4Mtu, c.ipv6Mtu);
  } else if (type === ICMP6_PARAM_PROBLEM && code === ICMP6_PP_HEADER) {
    const p = mapPointer64(body);
    if (p < 0) return -Drop.D64_ICMP_UNTRANSLATABLE;
    word = p << 24;
  }

  // RFC 4884: the quoted packet and an optional extension behind it.
  const q = l4 + ICMP_HEADER_LENGTH;
  let qEnd = end;
  let extLen = 0;
  if (hasRfc4884Length6(type) && b[r] !== 0) {
    const qLen = b[r] * 8; // RFC 4884 §4.5: the ICMPv6 length counts 64-bit words
    if (q + qLen < end) {
      qEnd = q + qLen;
      extLen = end - qEnd;
    }
  }

  // The quoted packet (§5.3).
  if (qEnd - q < V6 || b[q] >>> 4 !== 6) return -Drop.D64_ICMP_BAD_INNER;
  const inner = s.inner;
  const mapped64 = s.mapped64;
  const layout = s.errorLayout64;
  const iw = walkIpv6(b, q, qEnd, false, inner);
  if (iw !== Walk.OK) return -Drop.D64_ICMP_BAD_INNER;
  // RFC 7915 §5.3 translates the inner header by §5.1's rules, and Jool applies its address checks
  // to the inner packet too: a quote holding a martian (or an ICMPv4 packet, Next Header 1) is
  // about a packet this translator would never have sent, so the error is not translated.
  if (!mapAddress64(s, b, q + IPV6_SRC)) return -Drop.D64_ICMP_BAD_INNER;
  const isrc = mapped64.v4;
  const isrcSum6 = mapped64.sum6;
  if (!mapAddress64(s, b, q + IPV6_DST)) return -Drop.D64_ICMP_BAD_INNER;
  const idst = mapped64.v4;
  const idstSum6 = mapped64.sum6;
  if (isMartian4(isrc) || isMartian4(idst)) return -Drop.D64_ICMP_BAD_INNER;
  const iproto = inner.proto;
  if (iproto === PROTO_ICMP) return -Drop.D64_ICMP_BAD_INNER;
  const il4 = inner.l4Off;
  // Lengths of the original inner packet (it may be cut short in the quote).
  const iorigL4 = payloadLength6(b, q) + V6 - (il4 - q);
  if (iorigL4 < 0) return -Drop.D64_ICMP_BAD_INNER;
  const iTotal = V4 + iorigL4;
  const quoted4 = V4 + (qEnd - il4);

  layout4884(quoted4, extLen, Math.min(ICMP4_ERROR_CAP, s.linkMtu), layout);
  const total = V4 + ICMP_HEADER_LENGTH + layout.field + layout.ext;
  if (total > out.stride) return -Drop.OUTPUT_FULL;
  const d = out.data;
  const m = o + V4; // ICMPv4 header
  const io = m + ICMP_HEADER_LENGTH; // inner IPv4 header
  const il4Out = io + V4; // inner transport header
  const copyL4 = layout.quoted - V4;
  if (copyL4 < 0) return -Drop.D64_ICMP_BAD_INNER;

  copyBytes(b, il4, copyL4, d, il4Out);
  for (let i = io + layout.quoted; i < io + layout.field; i++) d[i] = 0;
  if (layout.ext > 0) {
    const e = io + layout.field;
    copyBytes(b, qEnd, layout.ext, d, e);
  }

  // Inner transport header.
  if (inner.fragOffset === 0) {
    if (iproto === NH_ICMPV6) {
      if (copyL4 >= 1 && isIcmp6Error(d[il4Out + ICMP_TYPE])) return -Drop.D64_ICMP_ERROR_IN_ERROR;
      if (copyL4 >= ICMP_REST) {
        const itc = icmp6to4TypeCode(d[il4Out + ICMP_TYPE], d[il4Out + ICMP_CODE]);
        if (itc === NO_ICMP4) return -Drop.D64_ICMP_BAD_INNER;
        fixEcho(d, il4Out, itc, isrcSum6 + idstSum6 + NH_ICMPV6 + (iorigL4 >>> 16) + (iorigL4 & 0xffff));
      }
    } else {
      fixTransport(d, il4Out, copyL4, iproto, isrcSum6 + idstSum6, sum32(isrc) + sum32(idst));
    }
  }
  const iIdFlags = idAndFlags(s, inner, iTotal, false);
  const iproto4 = iproto === NH_ICMPV6 ? PROTO_ICMP : iproto;
  ipv4WriteHeader(d, io, tosOf(c, b, q), iTotal, iIdFlags, hopLimit6(b, q), iproto4, isrc, idst);

  // ICMPv4 header; RFC 4884 §4.1: the length, in 32-bit words, is the second byte of the rest.
  const rest4 = layout.lengthWords !== 0 ? (word & ~0xff0000) | (layout.lengthWords << 16) : word;
  icmpWriteHeader(d, m, tc4 >>> 8, tc4 & 0xff, rest4);
  icmpSetChecksum(d, m, finish(sumWords(s.words, d, m, total - V4, 0)));

  ipv4WriteHeader(d, o, tosOf(c, b, off), total, idAndFlags(s, outer, total, true), s.ttl, PROTO_ICMP, s.src4, s.dst4);
  return total;
}
