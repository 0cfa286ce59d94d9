/**
 * The 4→6 offload program, on the TUN's tc egress: an IPv4 packet the host sends from the CLAT
 * address becomes IPv6 in place (RFC 7915 §4.1, the plain cases the plan names) and leaves by the
 * uplink through the kernel's neighbour code (bpf_redirect_neigh: the route and link-layer address
 * the kernel itself would use, or the next hop the daemon resolved: daemon/next-hop.ts), without ever reaching the TUN's queue. Everything else goes on
 * unchanged (TCX_NEXT) into the TUN and to the user-space datapath. TCP segmentation offload
 * super-packets (GSO) are translated whole when every segment will fit the IPv6 MTU.
 */
import {
  CSUM_DIFF,
  MAP_LOOKUP_ELEM,
  PROTO_IP_BE,
  PROTO_IPV6_BE,
  REDIRECT_NEIGH,
  SKB_CHANGE_HEAD,
  SKB_GSO_SIZE,
  SKB_LOAD_BYTES,
  SKB_STORE_BYTES,
} from './abi.js';
import { Asm, FP, R0, R1, R2, R3, R4, R5 } from './asm.js';
import type { OffloadPlan } from './plan.js';
import { rewrite } from './rewrite.js';
import {
  COUNTER_46,
  COUNTER_46_FAILED,
  COUNTER_KEY,
  checkTransport,
  countSkb,
  ends,
  FAILED,
  fold,
  ICMP_DIFF,
  IP_LEN,
  jumpIfMartian,
  jumpIfNonGlobal,
  L4_PROTO,
  loadHead,
  memHalf,
  memWord,
  OUT,
  PASS,
  PKT_LEN,
  SKB,
} from './snippets.js';

export interface Egress4Target {
  readonly mapFd: number;
  /** Where translated packets leave: the uplink. */
  readonly uplinkIfindex: number;
  /** Link header length in front of the IPv4 header: 0 on the TUN (14 in tests, on Ethernet). */
  readonly l2: number;
  /**
   * The next-hop map (NEXT_HOP_LEN bytes, one entry): given, translated packets go to the next hop
   * it holds while that is valid, sparing the kernel a route lookup per packet; else, and while
   * the entry is not valid, the kernel looks the route up for each packet.
   */
  readonly nextHopFd?: number;
}

/**
 * The next-hop map's one value, `struct bpf_redir_neigh` as bpf_redirect_neigh reads it: u32
 * nh_family (AF_INET6 when valid; anything else means "no next hop") and the 16-byte address.
 */
export const NEXT_HOP_LEN = 20;
export const AF_INET6 = 10;

// Stack slots (offsets from the frame pointer, below the snippets' COUNTER_KEY).
/** The IPv4 header and the first 8 bytes of the transport header, as loaded: IN_LEN bytes. */
const IN_HDR = -64;
const IN_LEN = 28;
/** Where in it the transport header starts (its first 8 bytes). */
const IN_L4 = IN_HDR + 20;
/** The IPv6 header being built: OUT_LEN bytes. */
const OUT_HDR = -112;
const OUT_LEN = 40;
/**
 * 12 bytes for one thing at a time: TCP's Data Offset byte (GSO sizing), the words of the
 * pseudo-header that join the ICMP checksum, the new echo type (rewrite), the Ethernet type.
 */
const SCRATCH = -128;
/** The input's IPv4 Total Length, from the header check on (IP_LEN). */
const TOTAL_LEN = IP_LEN;
const ETH_HLEN = 14;

export function buildEgress4(p: OffloadPlan, t: Egress4Target): Uint8Array {
  const L = t.l2;
  const a = new Asm();
  loadHead(a, { proto: PROTO_IP_BE, l2: L, at: IN_HDR, len: IN_LEN });
  // Version 4 without options, Total Length exactly the packet, not a fragment, TTL above 1.
  a.load('b', R2, FP, IN_HDR)
    .jmp('ne', R2, 0x45, PASS)
    .load('h', TOTAL_LEN, FP, IN_HDR + 2)
    .toBe(TOTAL_LEN, 16)
    .movReg(R2, PKT_LEN)
    .alu('sub', R2, L)
    .jmpReg('ne', TOTAL_LEN, R2, PASS)
    .load('h', R2, FP, IN_HDR + 6)
    .toBe(R2, 16)
    .alu('and', R2, 0x3fff)
    .jmp('ne', R2, 0, PASS)
    .load('b', R2, FP, IN_HDR + 8)
    .jmp('le', R2, 1, PASS)
    // A header checksum the core would accept.
    .mov(R1, 0)
    .mov(R2, 0)
    .movReg(R3, FP)
    .alu('add', R3, IN_HDR)
    .mov(R4, 20)
    .mov(R5, 0)
    .call(CSUM_DIFF);
  fold(a, R0, R2);
  a.jmp('ne', R0, 0xffff, PASS)
    // From the CLAT address (never martian: plan.ts), to an address under pool6 that is not
    // martian (the core drops those) nor the CLAT's own (that is hairpinning).
    .load('w', R2, FP, IN_HDR + 12)
    .jmp32('ne', R2, memWord(p.clat4, 0), PASS);
  jumpIfMartian(a, IN_HDR + 16, PASS);
  a.load('w', R2, FP, IN_HDR + 16).jmp32('eq', R2, memWord(p.clat4, 0), PASS);
  // To a further EAM entry's IPv4 prefix (stateless router mode's LAN): the core maps it by EAM.
  for (const x of p.otherEam4)
    a.load('w', R2, FP, IN_HDR + 16)
      .alu32('and', R2, memWord(x.mask, 0))
      .jmp32('eq', R2, memWord(x.addr, 0), PASS);
  if (p.wkpGlobalOnly) {
    a.toBe(R2, 32);
    jumpIfNonGlobal(a, R2, R3, PASS);
  }
  a.load('b', L4_PROTO, FP, IN_HDR + 9)
    .movReg(R3, TOTAL_LEN)
    .alu('sub', R3, 20);
  checkTransport(a, { l4len: R3, l4At: IN_L4, icmp: 1, echo: [8, 0] });
  // Sizes (RFC 7915 §4): with DF the result must fit the IPv6 MTU, without it the smaller
  // fragmentation limit (the core fragments above it). A GSO packet (TCP with DF only) is
  // judged by its segments: IPv6 header, TCP header and one segment's payload.
  a.load('w', R3, SKB, SKB_GSO_SIZE)
    .jmp('eq', R3, 0, 'whole')
    .jmp('ne', L4_PROTO, 6, PASS)
    .load('h', R2, FP, IN_HDR + 6)
    .toBe(R2, 16)
    .alu('and', R2, 0x4000)
    .jmp('eq', R2, 0, PASS)
    // TCP's Data Offset (byte 12 of its header; only 8 bytes of it were loaded).
    .movReg(R1, SKB)
    .mov(R2, L + 32)
    .movReg(R3, FP)
    .alu('add', R3, SCRATCH)
    .mov(R4, 1)
    .call(SKB_LOAD_BYTES)
    .jmp('ne', R0, 0, PASS)
    .load('w', R3, SKB, SKB_GSO_SIZE)
    .load('b', R2, FP, SCRATCH)
    .alu('rsh', R2, 4)
    .alu('lsh', R2, 2)
    .aluReg('add', R2, R3)
    .alu('add', R2, 40)
    .jmp('gt', R2, p.ipv6Mtu, PASS)
    .goto('fits')
    .label('whole')
    .movReg(R2, TOTAL_LEN)
    .alu('add', R2, 20)
    .load('h', R3, FP, IN_HDR + 6)
    .toBe(R3, 16)
    .alu('and', R3, 0x4000)
    .jmp('eq', R3, 0, 'nodf')
    .jmp('gt', R2, p.ipv6Mtu, PASS)
    .goto('fits')
    .label('nodf')
    .jmp('gt', R2, p.fragLimit, PASS)
    .label('fits');

  // The IPv6 header (RFC 7915 §4.1): Traffic Class from TOS, Flow Label 0, Hop Limit TTL − 1.
  if (p.trafficClassZero) {
    a.storeImm('h', FP, OUT_HDR, memHalf(0x6000));
  } else {
    a.load('b', R2, FP, IN_HDR + 1)
      .movReg(R3, R2)
      .alu('rsh', R3, 4)
      .alu('or', R3, 0x60)
      .store('b', FP, OUT_HDR, R3)
      .alu('and', R2, 0x0f)
      .alu('lsh', R2, 4)
      .store('b', FP, OUT_HDR + 1, R2);
  }
  a.storeImm('h', FP, OUT_HDR + 2, 0)
    .movReg(R2, TOTAL_LEN)
    .alu('sub', R2, 20)
    .toBe(R2, 16)
    .store('h', FP, OUT_HDR + 4, R2)
    .jmp('ne', L4_PROTO, 1, 'proto')
    .storeImm('b', FP, OUT_HDR + 6, 58)
    .goto('hop')
    .label('proto')
    .store('b', FP, OUT_HDR + 6, L4_PROTO)
    .label('hop')
    .load('b', R2, FP, IN_HDR + 8)
    .alu('sub', R2, 1)
    .store('b', FP, OUT_HDR + 7, R2);
  for (let k = 0; k < 4; k++) a.storeImm('w', FP, OUT_HDR + 8 + 4 * k, memWord(p.clat6, 4 * k));
  for (let k = 0; k < 3; k++) a.storeImm('w', FP, OUT_HDR + 24 + 4 * k, memWord(p.pool6, 4 * k));
  a.load('w', R2, FP, IN_HDR + 16).store('w', FP, OUT_HDR + 36, R2);

  // ICMP: what the IPv6 pseudo-header adds to the checksum (RFC 7915 §4.2): its constant part as
  // the seed, destination word, length and next header as the words.
  a.jmp('ne', L4_PROTO, 1, 'change')
    .load('w', R2, FP, IN_HDR + 16)
    .store('w', FP, SCRATCH, R2)
    .movReg(R2, TOTAL_LEN)
    .alu('sub', R2, 20)
    .toBe(R2, 32)
    .store('w', FP, SCRATCH + 4, R2)
    .storeImm('w', FP, SCRATCH + 8, memWord(new Uint8Array([0, 0, 0, 58]), 0))
    .mov(R1, 0)
    .mov(R2, 0)
    .movReg(R3, FP)
    .alu('add', R3, SCRATCH)
    .mov(R4, 12)
    .mov(R5, memHalf(p.pseudoConst6))
    .call(CSUM_DIFF)
    .movReg(ICMP_DIFF, R0)
    .label('change');
  rewrite(a, {
    proto: PROTO_IPV6_BE,
    l2: L,
    header: OUT_HDR,
    headerLen: OUT_LEN,
    delta: p.delta46,
    icmpIn: 1,
    typeAt: IN_L4,
    echo: [
      [8, 128],
      [0, 129],
    ],
    scratch: SCRATCH,
  });

  a.label(OUT);
  if (L === 0) {
    // bpf_redirect_neigh takes a packet with an Ethernet header in front (it pulls 14 bytes, then
    // writes the real one): a packet from the TUN has none, so it gets a zeroed one with the type.
    a.movReg(R1, SKB)
      .mov(R2, ETH_HLEN)
      .mov(R3, 0)
      .call(SKB_CHANGE_HEAD)
      .jmp('ne', R0, 0, FAILED)
      .storeImm('h', FP, SCRATCH, memHalf(0x86dd))
      .movReg(R1, SKB)
      .mov(R2, 12)
      .movReg(R3, FP)
      .alu('add', R3, SCRATCH)
      .mov(R4, 2)
      .mov(R5, 0)
      .call(SKB_STORE_BYTES)
      .jmp('ne', R0, 0, FAILED);
  }
  // Counted as the IPv4 input: no link header, the 20 bytes the header grew taken off.
  countSkb(a, t.mapFd, COUNTER_46, (L === 0 ? ETH_HLEN : L) + 20);
  if (t.nextHopFd === undefined) a.mov(R1, t.uplinkIfindex).mov(R2, 0).mov(R3, 0);
  else {
    // bpf_redirect_neigh(ifindex, params, plen, flags). Valid, the entry is copied to the stack
    // as the params (a copy the daemon cannot change under the helper); else they are NULL. The
    // IPv6 header built is in the packet by now: its slot is free.
    a.storeImm('w', FP, COUNTER_KEY, 0)
      .loadMap(R1, t.nextHopFd)
      .movReg(R2, FP)
      .alu('add', R2, COUNTER_KEY)
      .call(MAP_LOOKUP_ELEM)
      .mov(R2, 0)
      .mov(R3, 0)
      .jmp('eq', R0, 0, 'neigh')
      .load('w', R4, R0, 0)
      .jmp('ne', R4, AF_INET6, 'neigh');
    for (let k = 0; k < NEXT_HOP_LEN; k += 4) a.load('w', R4, R0, k).store('w', FP, OUT_HDR + k, R4);
    a.movReg(R2, FP).alu('add', R2, OUT_HDR).mov(R3, NEXT_HOP_LEN).label('neigh').mov(R1, t.uplinkIfindex);
  }
  a.mov(R4, 0).call(REDIRECT_NEIGH).exit();
  // (A failure after the link header was pushed counts it too: too rare to tell apart.)
  ends(a, t.mapFd, COUNTER_46_FAILED, L + 20);
  return a.encode();
}
