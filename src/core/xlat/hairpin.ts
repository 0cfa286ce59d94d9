/**
 * EAM hairpinning (RFC 7757 §4): an IPv6 packet whose destination maps, through pool6, to an
 * IPv4 address that an EAM entry covers belongs to another IPv6 node behind this translator. The
 * IPv4 packet that 6→4 produced is translated straight back into IPv6 and sent back out of the
 * IPv6 side, instead of leaving on the IPv4 side where nobody would answer for it.
 *
 * The way back is the ordinary 4→6 translation with one change (RFC 7757 §4, and what Jool's
 * "intrinsic" mode puts on the wire): the addresses on the *sender's* side, the outer source and,
 * in an ICMP error, the quoted destination, take their pool6 (RFC 6052) form rather than their
 * EAM form, so that the receiver's reply is hairpinned the same way.
 */
import { embed } from '../addr/rfc6052.js';
import { Disposition, type PacketBatch } from '../batch.js';
import { adjust, finish, pseudoSum6, sum16 } from '../checksum.js';
import { ICMP_CHECKSUM, ICMP_HEADER_LENGTH, ICMP_REST, ICMP_TYPE, icmpSetChecksum } from '../hdr/icmp.js';
import { icmp4IsError } from '../hdr/icmpv4.js';
import { isIcmp6Error } from '../hdr/icmpv6.js';
import { IPV4_MIN_HEADER_LENGTH, ipv4Protocol, PROTO_ICMP } from '../hdr/ipv4.js';
import { IPV6_DST, IPV6_HDR_LEN, IPV6_SRC } from '../hdr/ipv6.js';
import { FRAG_HDR_LEN, NH_ICMPV6, NH_TCP, NH_UDP, Walk, walkIpv6 } from '../hdr/ipv6-ext.js';
import { TCP_CHECKSUM } from '../hdr/tcp.js';
import { UDP_CHECKSUM, UDP_HEADER_LENGTH } from '../hdr/udp.js';
import { translate4to6 } from './4to6.js';
import type { ResolvedConfig } from './config.js';
import { Drop } from './drop.js';
import type { XlatState } from './state.js';

/**
 * Translates the IPv4 packet at `out.data[o, o+len)` (built by 6→4, with the hop limit not yet
 * decremented) back into IPv6 and appends the result with disposition Back. `o` must lie in a
 * slot the 4→6 pass does not write (the caller uses the batch's last slot).
 */
export function hairpinBack(s: XlatState, out: PacketBatch, o: number, len: number): Drop {
  const c = s.config;
  const d = out.data;
  // Addresses as signed 32-bit values (embed reads them with >>>): a uint32 above 2^31 is no small
  // integer, and passing one to a function that is not inlined allocates a heap number.
  const src4 = (d[o + 12] << 24) | (d[o + 13] << 16) | (d[o + 14] << 8) | d[o + 15];
  // The quoted packet's destination, when this is an ICMPv4 error (6→4 makes only 3, 11 or 12).
  let quoted = false;
  let innerDst4 = 0;
  const m = o + IPV4_MIN_HEADER_LENGTH;
  if (
    ipv4Protocol(d, o) === PROTO_ICMP &&
    len >= IPV4_MIN_HEADER_LENGTH + ICMP_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH &&
    icmp4IsError(d[m + ICMP_TYPE])
  ) {
    const io = m + ICMP_HEADER_LENGTH;
    quoted = true;
    innerDst4 = (d[io + 16] << 24) | (d[io + 17] << 16) | (d[io + 18] << 8) | d[io + 19];
  }
  // The 4→6 pass may fragment (to lowestIpv6Mtu); its outputs must stay clear of slot `o`.
  const pieces = 1 + Math.ceil(len / (c.lowestIpv6Mtu - IPV6_HDR_LEN - FRAG_HDR_LEN));
  if (out.count + pieces >= out.capacity) return Drop.OUTPUT_FULL;
  const first = out.count;
  const r = translate4to6(s, d, o, len, out);
  // Keep only translations: an ICMPv4 error about the intermediate packet has nobody to go to.
  let k = first;
  for (let i = first; i < out.count; i++) {
    if (out.disp[i] !== Disposition.Forward) continue;
    out.offs[k] = out.offs[i];
    out.lens[k] = out.lens[i];
    out.disp[k] = Disposition.Back;
    if (c.pool6 !== null) toPool6Form(s, d, out.offs[k], out.lens[k], src4, quoted, innerDst4);
    k++;
  }
  out.count = k;
  if (k > first) return Drop.NONE;
  return r === Drop.NONE ? Drop.UNKNOWN : r;
}

/** Writes the pool6 form of `v4` (signed or unsigned 32 bits) over the IPv6 address at `d[at]`; returns the new address's sum. */
function rewrite(c: ResolvedConfig, d: Uint8Array, at: number, v4: number): number {
  embed(c.pool6 as NonNullable<ResolvedConfig['pool6']>, v4, d, at);
  return sum16(d, at, 16);
}

function fixL4(d: Uint8Array, p: number, avail: number, proto: number, oldSum: number, newSum: number): void {
  let at = -1;
  if (proto === NH_TCP && avail >= TCP_CHECKSUM + 2) at = p + TCP_CHECKSUM;
  else if (proto === NH_UDP && avail >= UDP_HEADER_LENGTH) at = p + UDP_CHECKSUM;
  else if (proto === NH_ICMPV6 && avail >= ICMP_REST) at = p + ICMP_CHECKSUM;
  if (at < 0) return;
  const old = (d[at] << 8) | d[at + 1];
  if (proto === NH_UDP && old === 0) return;
  let cs = adjust(old, oldSum, newSum);
  if (proto === NH_UDP && cs === 0) cs = 0xffff;
  d[at] = cs >>> 8;
  d[at + 1] = cs;
}

/**
 * Rewrites the outer source (and an ICMPv6 error's quoted destination) of the IPv6 packet at
 * `d[o, o+len)` into pool6 form, keeping every checksum right (hairpinning is rare: the ICMPv6
 * error checksum is simply recomputed).
 */
function toPool6Form(
  s: XlatState,
  d: Uint8Array,
  o: number,
  len: number,
  src4: number,
  quoted: boolean,
  innerDst4: number,
): void {
  const c = s.config;
  const chain = s.hairpinChain;
  const innerChain = s.hairpinInner;
  const end = o + len;
  if (walkIpv6(d, o, end, false, chain) !== Walk.OK) return;
  const oldS = sum16(d, o + IPV6_SRC, 16);
  const newS = rewrite(c, d, o + IPV6_SRC, src4);
  const l4 = chain.l4Off;
  const avail = end - l4;
  if (chain.fragOffset !== 0) return;
  if (chain.proto !== NH_ICMPV6 || avail < 1 || !isIcmp6Error(d[l4])) {
    fixL4(d, l4, avail, chain.proto, oldS, newS);
    return;
  }
  const q = l4 + ICMP_HEADER_LENGTH;
  if (quoted && end - q >= IPV6_HDR_LEN && walkIpv6(d, q, end, false, innerChain) === Walk.OK) {
    const oldD = sum16(d, q + IPV6_DST, 16);
    const newD = rewrite(c, d, q + IPV6_DST, innerDst4);
    if (innerChain.fragOffset === 0) fixL4(d, innerChain.l4Off, end - innerChain.l4Off, innerChain.proto, oldD, newD);
  }
  icmpSetChecksum(d, l4, 0);
  icmpSetChecksum(d, l4, finish(sum16(d, l4, avail, pseudoSum6(d, o + IPV6_SRC, o + IPV6_DST, NH_ICMPV6, avail))));
}
