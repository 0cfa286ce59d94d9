/**
 * RFC 7915 §5: translating IPv6 into IPv4.
 *
 * One call reads one IPv6 packet and appends its results to the output batch: the IPv4
 * translation (Forward), an ICMPv6 error the translator generates (Back), or, when hairpinning
 * (RFC 7757 §4), the packet translated back into IPv6 (Back). Nothing allocates; the input must not
 * overlap the output slots.
 */
import { copyBytes, Disposition, type PacketBatch, slotStart } from '../batch.js';
import { adjust, finish, fold, sum16, sum32 } from '../checksum.js';
import {
  hasRfc4884Length6,
  ICMP6_DEST_UNREACH,
  ICMP6_DU_ADMIN_PROHIBITED,
  ICMP6_PACKET_TOO_BIG,
  ICMP6_PARAM_PROBLEM,
  ICMP6_PP_HEADER,
  ICMP6_TIME_EXCEEDED,
  isIcmp6Error,
} from '../hdr/icmpv6.js';
import { hopLimit6, IPV6_DST, IPV6_SRC, payloadLength6, trafficClass6 } from '../hdr/ipv6.js';
import { type Ipv6Chain, NH_HOP_BY_HOP, NH_ICMPV6, NH_TCP, NH_UDP, Walk, walkIpv6 } from '../hdr/ipv6-ext.js';
import type { ResolvedConfig } from './config.js';
import { Drop } from './drop.js';
import { hairpinBack } from './hairpin.js';
import { emitIcmp6Error } from './icmp-error.js';
import { icmp6to4TypeCode, layout4884, mapPointer64, NO_ICMP4, ptbMtu64 } from './icmp64.js';
import { M64_SUM6, M64_V4, M64_VIA_POOL6, mapAddress64 } from './mapping.js';
import type { XlatState } from './state.js';
import { copy, sumWords } from './words.js';

/** RFC 7915 §5.1: DF is set exactly when the IPv4 packet is larger than this. */
const DF_THRESHOLD = 1260;
/** Largest translated ICMPv4 error (RFC 1812 §4.3.2.3; what the Jool corpus expects). */
const ICMP4_ERROR_CAP = 576;

/**
 * Writes a 20-byte IPv4 header (no options) with its checksum. `idFlags` is from {@link idAndFlags};
 * `src` and `dst` may be signed. The checksum is summed from the field values rather than read back
 * from the bytes; every value is masked exactly as the byte stores truncate it.
 */
function writeIpv4Header(
  d: Uint8Array,
  o: number,
  tos: number,
  totalLen: number,
  idFlags: number,
  ttl: number,
  proto: number,
  src: number,
  dst: number,
): void {
  d[o] = 0x45;
  d[o + 1] = tos;
  d[o + 2] = totalLen >>> 8;
  d[o + 3] = totalLen;
  d[o + 4] = idFlags >>> 24;
  d[o + 5] = idFlags >>> 16;
  d[o + 6] = idFlags >>> 8;
  d[o + 7] = idFlags;
  d[o + 8] = ttl;
  d[o + 9] = proto;
  d[o + 10] = 0;
  d[o + 11] = 0;
  d[o + 12] = src >>> 24;
  d[o + 13] = src >>> 16;
  d[o + 14] = src >>> 8;
  d[o + 15] = src;
  d[o + 16] = dst >>> 24;
  d[o + 17] = dst >>> 16;
  d[o + 18] = dst >>> 8;
  d[o + 19] = dst;
  let s =
    0x4500 +
    (tos & 0xff) +
    (totalLen & 0xffff) +
    ((idFlags >>> 16) & 0xffff) +
    (idFlags & 0xffff) +
    ((ttl & 0xff) << 8) +
    (proto & 0xff) +
    (src >>> 16) +
    (src & 0xffff) +
    (dst >>> 16) +
    (dst & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  const cs = ~s & 0xffff;
  d[o + 10] = cs >>> 8;
  d[o + 11] = cs;
}

/**
 * RFC 7915 §5.1 and §5.1.1: Identification and the flags/offset word. With a Fragment header,
 * ID = its low 16 bits, DF = 0, MF and offset copied (an atomic fragment thus becomes DF=0 with that
 * ID, RFC 8021). Without one, DF = 1 exactly when the result exceeds 1260 bytes; such a packet is
 * atomic and gets ID 0 (RFC 6864 §4.1); smaller ones get a fresh ID.
 */
function idAndFlags(s: XlatState, ch: Ipv6Chain, totalLen: number, fresh: boolean): number {
  if (ch.fragOff >= 0) {
    return ((ch.fragId & 0xffff) << 16) | (ch.fragMore ? 0x2000 : 0) | (ch.fragOffset & 0x1fff);
  }
  if (totalLen > DF_THRESHOLD) return 0x4000;
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
    if (avail < 18) return false;
    const diff = fold((~fold(oldSum) & 0xffff) + fold(newSum));
    if (diff === 0 || diff === 0xffff) return true;
    const cs = adjustBy16((d[p + 16] << 8) | d[p + 17], diff);
    d[p + 16] = cs >>> 8;
    d[p + 17] = cs;
    return true;
  }
  if (proto === NH_UDP) {
    if (avail < 8) return false;
    const old = (d[p + 6] << 8) | d[p + 7];
    // A zero UDP checksum (RFC 6935 tunnels) means "none" in IPv4 as well: keep it.
    if (old === 0) return true;
    const diff = fold((~fold(oldSum) & 0xffff) + fold(newSum));
    if (diff === 0 || diff === 0xffff) return true;
    let cs = adjustBy16(old, diff);
    if (cs === 0) cs = 0xffff;
    d[p + 6] = cs >>> 8;
    d[p + 7] = cs;
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
  const old = (d[p] << 8) | d[p + 1];
  d[p] = typeCode4 >>> 8;
  d[p + 1] = typeCode4;
  const cs = adjust((d[p + 2] << 8) | d[p + 3], pseudo + old, typeCode4);
  d[p + 2] = cs >>> 8;
  d[p + 3] = cs;
}

function commit(out: PacketBatch, o: number, len: number): void {
  out.offs[out.count] = o;
  out.lens[out.count] = len;
  out.disp[out.count] = Disposition.Forward;
  out.count++;
}

export function translate6to4(s: XlatState, b: Uint8Array, off: number, len: number, out: PacketBatch): Drop {
  const c = s.config;
  const outer = s.outer;
  const mapped64 = s.mapped64;
  if (len < 40) return Drop.D64_TRUNCATED;
  if (b[off] >>> 4 !== 6) return Drop.BAD_VERSION;
  const plen = payloadLength6(b, off);
  // Payload Length 0 with a Hop-by-Hop header is a jumbogram (RFC 2675): not translatable.
  if (plen === 0 && b[off + 6] === NH_HOP_BY_HOP) return Drop.D64_BAD_LENGTH;
  if (40 + plen > len) return Drop.D64_BAD_LENGTH;
  const n = 40 + plen; // longer data (link padding) is trimmed
  const end = off + n;

  const w = walkIpv6(b, off, end, true, outer);
  if (w === Walk.TRUNCATED) return Drop.D64_TRUNCATED;

  // Addresses stay signed 32-bit values: an unsigned one above 2^31 would be a heap number.
  if (!mapAddress64(s, b, off + IPV6_DST)) return Drop.D64_DST_UNMAPPED;
  const dst = mapped64[M64_V4];
  const dstViaPool6 = mapped64[M64_VIA_POOL6] !== 0;
  s.dstSum6 = mapped64[M64_SUM6];

  // Source mapped before any error goes back: the translator answers only packets it would
  // translate. ICMPv6 errors are the exception (RFC 7915 §5.1 / RFC 6791): one from a router
  // without an IPv4 mapping gets a stand-in IPv4 source (RFC 7600 suggests 192.0.0.8).
  const proto = outer.proto;
  const l4 = outer.l4Off;
  const icmpError =
    w === Walk.OK && proto === NH_ICMPV6 && outer.fragOffset === 0 && end - l4 >= 1 && isIcmp6Error(b[l4]);
  let src: number;
  if (mapAddress64(s, b, off + IPV6_SRC)) {
    src = mapped64[M64_V4];
    s.srcSum6 = mapped64[M64_SUM6];
  } else {
    if (!icmpError || c.icmpSrcV4 === null) return Drop.D64_SRC_UNMAPPED;
    src = c.icmpSrcV4 | 0;
    s.srcSum6 = sum16(b, off + IPV6_SRC, 16);
  }

  if (w === Walk.AFTER_FRAGMENT) {
    // RFC 7915 §5.1: "SHOULD be dropped and logged"; answered like any untranslatable packet
    // (Destination Unreachable, administratively prohibited), as Jool does.
    emitIcmp6Error(c, b, off, n, ICMP6_DEST_UNREACH, ICMP6_DU_ADMIN_PROHIBITED, 0, out);
    return Drop.D64_BAD_EXT_HEADER;
  }
  if (w === Walk.SEGMENTS_LEFT) {
    // RFC 7915 §5.1: Parameter Problem code 0 pointing at the Segments Left field.
    emitIcmp6Error(c, b, off, n, ICMP6_PARAM_PROBLEM, ICMP6_PP_HEADER, outer.problemOff - off, out);
    return Drop.D64_SEGMENTS_LEFT;
  }

  const hop = hopLimit6(b, off);
  if (hop <= 1) {
    emitIcmp6Error(c, b, off, n, ICMP6_TIME_EXCEEDED, 0, 0, out);
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
    commit(out, o, r);
    return Drop.NONE;
  }
  return hairpinBack(s, out, o, r);
}

/**
 * Packet Too Big back to the sender (RFC 7915 §5.1: the IPv4 link cannot carry the result): the
 * MTU the IPv6 sender can use is the IPv4 link MTU plus the header size difference.
 */
function tooBig(c: ResolvedConfig, b: Uint8Array, off: number, end: number, out: PacketBatch): number {
  emitIcmp6Error(c, b, off, end - off, ICMP6_PACKET_TOO_BIG, 0, Math.max(1280, c.ipv4Mtu + 20), out);
  return -Drop.D64_TOO_BIG;
}

/** TCP, UDP and every other upper layer (passed through as is, RFC 7915 §5.1). Returns the length or −Drop. */
function translatePlain(s: XlatState, b: Uint8Array, off: number, end: number, out: PacketBatch, o: number): number {
  const c = s.config;
  const outer = s.outer;
  const l4 = outer.l4Off;
  const proto = outer.proto;
  const l4len = end - l4;
  const total = 20 + l4len;
  if (total > s.linkMtu) return tooBig(c, b, off, end, out);
  if (total > out.stride) return -Drop.OUTPUT_FULL;
  const d = out.data;
  if (outer.fragOffset === 0) {
    if (proto === NH_TCP && l4len < 20) return -Drop.D64_L4_TRUNCATED;
    if (proto === NH_UDP && l4len < 8) return -Drop.D64_L4_TRUNCATED;
  }
  copy(s.words, b, l4, end - l4, d, o + 20);
  if (outer.fragOffset === 0)
    fixTransport(d, o + 20, l4len, proto, s.srcSum6 + s.dstSum6, sum32(s.src4) + sum32(s.dst4));
  writeIpv4Header(d, o, tosOf(c, b, off), total, idAndFlags(s, outer, total, true), s.ttl, proto, s.src4, s.dst4);
  return total;
}

/** RFC 7915 §5.2, informational messages: echo only. Returns the length or −Drop. */
function translateIcmpInfo(s: XlatState, b: Uint8Array, off: number, end: number, out: PacketBatch, o: number): number {
  const c = s.config;
  const outer = s.outer;
  const l4 = outer.l4Off;
  const l4len = end - l4;
  if (l4len < 8) return -Drop.D64_L4_TRUNCATED;
  const tc4 = icmp6to4TypeCode(b[l4], b[l4 + 1]);
  if (tc4 === NO_ICMP4) return -Drop.D64_ICMP_UNTRANSLATABLE;
  const total = 20 + l4len;
  if (total > s.linkMtu) return tooBig(c, b, off, end, out);
  if (total > out.stride) return -Drop.OUTPUT_FULL;
  const d = out.data;
  copy(s.words, b, l4, end - l4, d, o + 20);
  // The IPv6 pseudo-header (RFC 8200 §8.1) from the address sums already made.
  fixEcho(d, o + 20, tc4, s.srcSum6 + s.dstSum6 + NH_ICMPV6 + (l4len >>> 16) + (l4len & 0xffff));
  writeIpv4Header(d, o, tosOf(c, b, off), total, idAndFlags(s, outer, total, true), s.ttl, 1, s.src4, s.dst4);
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
  if (icmpLen < 8 + 40) return -Drop.D64_ICMP_BAD_INNER;
  const type = b[l4];
  const code = b[l4 + 1];
  const tc4 = icmp6to4TypeCode(type, code);
  if (tc4 === NO_ICMP4) return -Drop.D64_ICMP_UNTRANSLATABLE;
  const body = ((b[l4 + 4] << 24) | (b[l4 + 5] << 16) | (b[l4 + 6] << 8) | b[l4 + 7]) >>> 0;

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
  const q = l4 + 8;
  let qEnd = end;
  let extLen = 0;
  if (hasRfc4884Length6(type) && b[l4 + 4] !== 0) {
    const qLen = b[l4 + 4] * 8;
    if (q + qLen < end) {
      qEnd = q + qLen;
      extLen = end - qEnd;
    }
  }

  // The quoted packet (§5.3).
  if (qEnd - q < 40 || b[q] >>> 4 !== 6) return -Drop.D64_ICMP_BAD_INNER;
  const inner = s.inner;
  const mapped64 = s.mapped64;
  const layout = s.errorLayout64;
  const iw = walkIpv6(b, q, qEnd, false, inner);
  if (iw !== Walk.OK) return -Drop.D64_ICMP_BAD_INNER;
  if (!mapAddress64(s, b, q + IPV6_SRC)) return -Drop.D64_ICMP_BAD_INNER;
  const isrc = mapped64[M64_V4];
  const isrcSum6 = mapped64[M64_SUM6];
  if (!mapAddress64(s, b, q + IPV6_DST)) return -Drop.D64_ICMP_BAD_INNER;
  const idst = mapped64[M64_V4];
  const idstSum6 = mapped64[M64_SUM6];
  const iproto = inner.proto;
  const il4 = inner.l4Off;
  // Lengths of the original inner packet (it may be cut short in the quote).
  const iorigL4 = payloadLength6(b, q) + 40 - (il4 - q);
  if (iorigL4 < 0) return -Drop.D64_ICMP_BAD_INNER;
  const iTotal = 20 + iorigL4;
  const quoted4 = 20 + (qEnd - il4);

  layout4884(quoted4, extLen, Math.min(ICMP4_ERROR_CAP, s.linkMtu), layout);
  const total = 28 + layout.field + layout.ext;
  if (total > out.stride) return -Drop.OUTPUT_FULL;
  const d = out.data;
  const m = o + 20; // ICMPv4 header
  const io = m + 8; // inner IPv4 header
  const copyL4 = layout.quoted - 20;
  if (copyL4 < 0) return -Drop.D64_ICMP_BAD_INNER;

  copyBytes(b, il4, copyL4, d, io + 20);
  for (let i = io + layout.quoted; i < io + layout.field; i++) d[i] = 0;
  if (layout.ext > 0) {
    const e = io + layout.field;
    copyBytes(b, qEnd, layout.ext, d, e);
  }

  // Inner transport header.
  if (inner.fragOffset === 0) {
    if (iproto === NH_ICMPV6) {
      if (copyL4 >= 1 && isIcmp6Error(d[io + 20])) return -Drop.D64_ICMP_ERROR_IN_ERROR;
      if (copyL4 >= 4) {
        const itc = icmp6to4TypeCode(d[io + 20], d[io + 21]);
        if (itc === NO_ICMP4) return -Drop.D64_ICMP_BAD_INNER;
        fixEcho(d, io + 20, itc, isrcSum6 + idstSum6 + NH_ICMPV6 + (iorigL4 >>> 16) + (iorigL4 & 0xffff));
      }
    } else {
      fixTransport(d, io + 20, copyL4, iproto, isrcSum6 + idstSum6, sum32(isrc) + sum32(idst));
    }
  }
  const iIdFlags = idAndFlags(s, inner, iTotal, false);
  writeIpv4Header(d, io, tosOf(c, b, q), iTotal, iIdFlags, b[q + 7], iproto === NH_ICMPV6 ? 1 : iproto, isrc, idst);

  // ICMPv4 header.
  d[m] = tc4 >>> 8;
  d[m + 1] = tc4;
  d[m + 2] = 0;
  d[m + 3] = 0;
  d[m + 4] = word >>> 24;
  d[m + 5] = layout.lengthWords !== 0 ? layout.lengthWords : word >>> 16;
  d[m + 6] = word >>> 8;
  d[m + 7] = word;
  const cs = finish(sumWords(s.words, d, m, total - 20, 0));
  d[m + 2] = cs >>> 8;
  d[m + 3] = cs;

  writeIpv4Header(d, o, tosOf(c, b, off), total, idAndFlags(s, outer, total, true), s.ttl, 1, s.src4, s.dst4);
  return total;
}
