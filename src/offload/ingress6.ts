/**
 * The 6→4 offload program, on the uplink's tc ingress: an IPv6 packet from the NAT64 prefix to
 * the CLAT address becomes IPv4 in place (RFC 7915 §5.1, the plain cases the plan names) and is
 * redirected into the TUN's receive path, as if the user-space datapath had written it there.
 * Everything else goes on unchanged (TCX_NEXT) to the packet socket and the user-space datapath.
 * The packet's fields are read from a copy on the stack (bpf_skb_load_bytes), so no packet bounds
 * reasoning is needed; the checksums are moved with the kernel's helpers, which keep
 * CHECKSUM_PARTIAL and CHECKSUM_COMPLETE packets right too.
 */
import {
  BPF_F_INGRESS,
  CSUM_DIFF,
  GET_PRANDOM_U32,
  PACKET_HOST,
  PROTO_IP_BE,
  PROTO_IPV6_BE,
  REDIRECT,
  SKB_PKT_TYPE,
} from './abi.js';
import { Asm, FP, R0, R1, R2, R3, R4, R5 } from './asm.js';
import type { OffloadPlan } from './plan.js';
import { rewrite } from './rewrite.js';
import {
  COUNTER_64,
  COUNTER_64_FAILED,
  checkTransport,
  countSkb,
  ends,
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

export interface Ingress6Target {
  /** The counters (snippets.ts). */
  readonly mapFd: number;
  /** Where translated packets go: the TUN, as received. */
  readonly tunIfindex: number;
  /** Link header length in front of the IPv6 header: 14 on Ethernet. */
  readonly l2: number;
}

// Stack slots (offsets from the frame pointer, below the snippets' COUNTER_KEY).
/** The IPv6 header and the first 8 bytes of the transport header, as loaded: IN_LEN bytes. */
const IN_HDR = -64;
const IN_LEN = 48;
/** Where in it the transport header starts (its first 8 bytes). */
const IN_L4 = IN_HDR + 40;
/** The IPv4 header being built: OUT_LEN bytes. */
const OUT_HDR = -88;
const OUT_LEN = 20;
/**
 * 12 bytes for one thing at a time: the words of the pseudo-header that leave the ICMP checksum,
 * the new echo type (rewrite).
 */
const SCRATCH = -104;
/** The input's IPv6 Payload Length, from the header check on (IP_LEN). */
const PAYLOAD_LEN = IP_LEN;
const DF_THRESHOLD = 1260;

export function buildIngress6(p: OffloadPlan, t: Ingress6Target): Uint8Array {
  const L = t.l2;
  const a = new Asm();
  loadHead(a, { proto: PROTO_IPV6_BE, l2: L, at: IN_HDR, len: IN_LEN });
  a.load('w', R2, SKB, SKB_PKT_TYPE)
    .jmp('ne', R2, PACKET_HOST, PASS)
    // Version 6, and exactly Payload Length after the header (no link padding, no jumbogram).
    .load('b', R2, FP, IN_HDR)
    .alu('and', R2, 0xf0)
    .jmp('ne', R2, 0x60, PASS)
    .load('h', PAYLOAD_LEN, FP, IN_HDR + 4)
    .toBe(PAYLOAD_LEN, 16)
    .movReg(R2, PKT_LEN)
    .alu('sub', R2, L + 40)
    .jmpReg('ne', PAYLOAD_LEN, R2, PASS);
  // To the CLAT address, from inside the NAT64 prefix.
  for (let k = 0; k < 4; k++) a.load('w', R2, FP, IN_HDR + 24 + 4 * k).jmp32('ne', R2, memWord(p.clat6, 4 * k), PASS);
  for (let k = 0; k < 3; k++) a.load('w', R2, FP, IN_HDR + 8 + 4 * k).jmp32('ne', R2, memWord(p.pool6, 4 * k), PASS);
  // The IPv4 source in the prefix's last 32 bits: not martian (the core drops those).
  jumpIfMartian(a, IN_HDR + 20, PASS);
  a.load('b', R2, FP, IN_HDR + 7).jmp('le', R2, 1, PASS);
  if (p.wkpGlobalOnly) {
    a.load('w', R2, FP, IN_HDR + 20).toBe(R2, 32);
    jumpIfNonGlobal(a, R2, R3, PASS);
  }
  // Next Header straight after the fixed header: TCP, UDP with a checksum, or an echo.
  a.load('b', L4_PROTO, FP, IN_HDR + 6);
  checkTransport(a, { l4len: PAYLOAD_LEN, l4At: IN_L4, icmp: 58, echo: [128, 129] });
  a.movReg(R2, PAYLOAD_LEN).alu('add', R2, 20).jmp('gt', R2, p.ipv4Mtu, PASS);

  // The IPv4 header (RFC 7915 §5.1).
  a.storeImm('b', FP, OUT_HDR, 0x45);
  if (p.trafficClassZero) {
    a.storeImm('b', FP, OUT_HDR + 1, 0);
  } else {
    a.load('b', R2, FP, IN_HDR)
      .alu('and', R2, 0x0f)
      .alu('lsh', R2, 4)
      .load('b', R3, FP, IN_HDR + 1)
      .alu('rsh', R3, 4)
      .aluReg('or', R2, R3)
      .store('b', FP, OUT_HDR + 1, R2);
  }
  a.movReg(R2, PAYLOAD_LEN)
    .alu('add', R2, 20)
    .toBe(R2, 16)
    .store('h', FP, OUT_HDR + 2, R2)
    // DF exactly above 1260 bytes, with ID 0; smaller packets get a fresh ID (the core counts,
    // this takes a random one: both satisfy RFC 6864).
    .movReg(R2, PAYLOAD_LEN)
    .alu('add', R2, 20)
    .jmp('gt', R2, DF_THRESHOLD, 'df')
    .call(GET_PRANDOM_U32)
    .store('h', FP, OUT_HDR + 4, R0)
    .storeImm('h', FP, OUT_HDR + 6, 0)
    .goto('ttl')
    .label('df')
    .storeImm('h', FP, OUT_HDR + 4, 0)
    .storeImm('h', FP, OUT_HDR + 6, memHalf(0x4000))
    .label('ttl')
    .load('b', R2, FP, IN_HDR + 7)
    .alu('sub', R2, 1)
    .store('b', FP, OUT_HDR + 8, R2)
    .jmp('ne', L4_PROTO, 58, 'proto')
    .storeImm('b', FP, OUT_HDR + 9, 1)
    .goto('addrs')
    .label('proto')
    .store('b', FP, OUT_HDR + 9, L4_PROTO)
    .label('addrs')
    .storeImm('h', FP, OUT_HDR + 10, 0)
    .load('w', R2, FP, IN_HDR + 20)
    .store('w', FP, OUT_HDR + 12, R2)
    .storeImm('w', FP, OUT_HDR + 16, memWord(p.clat4, 0))
    .mov(R1, 0)
    .mov(R2, 0)
    .movReg(R3, FP)
    .alu('add', R3, OUT_HDR)
    .mov(R4, 20)
    .mov(R5, 0)
    .call(CSUM_DIFF);
  fold(a, R0, R2);
  a.alu('xor', R0, 0xffff).store('h', FP, OUT_HDR + 10, R0);

  // ICMP: what taking the IPv6 pseudo-header out of the checksum subtracts (RFC 7915 §5.2):
  // its constant part as the seed, source word, length and next header as the words.
  a.jmp('ne', L4_PROTO, 58, 'change')
    .load('w', R2, FP, IN_HDR + 20)
    .store('w', FP, SCRATCH, R2)
    .movReg(R2, PAYLOAD_LEN)
    .toBe(R2, 32)
    .store('w', FP, SCRATCH + 4, R2)
    .storeImm('w', FP, SCRATCH + 8, memWord(new Uint8Array([0, 0, 0, 58]), 0))
    .movReg(R1, FP)
    .alu('add', R1, SCRATCH)
    .mov(R2, 12)
    .mov(R3, 0)
    .mov(R4, 0)
    .mov(R5, memHalf(~p.pseudoConst6 & 0xffff))
    .call(CSUM_DIFF)
    .movReg(ICMP_DIFF, R0)
    .label('change');
  rewrite(a, {
    proto: PROTO_IP_BE,
    l2: L,
    header: OUT_HDR,
    headerLen: OUT_LEN,
    delta: p.delta64,
    icmpIn: 58,
    typeAt: IN_L4,
    echo: [
      [128, 8],
      [129, 0],
    ],
    scratch: SCRATCH,
  });

  // Counted as the IPv6 input: no link header, the 20 bytes the header shrank put back.
  a.label(OUT);
  countSkb(a, t.mapFd, COUNTER_64, L - 20);
  a.mov(R1, t.tunIfindex).mov(R2, BPF_F_INGRESS).call(REDIRECT).exit();
  ends(a, t.mapFd, COUNTER_64_FAILED, L - 20);
  return a.encode();
}
