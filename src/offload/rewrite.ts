/**
 * The second half both offload programs share: once a packet is known to be plain and its new
 * header is built on the stack, change the protocol, write the header and move the transport
 * checksum. From the protocol change on, the packet is changed: a helper failing after it jumps to
 * FAILED (drop and count) rather than pass a half-translated packet on. Ends by jumping to OUT.
 */
import {
  BPF_F_MARK_MANGLED_0,
  BPF_F_PSEUDO_HDR,
  BPF_F_RECOMPUTE_CSUM,
  CSUM_SIZE_2,
  L4_CSUM_REPLACE,
  SKB_CHANGE_PROTO,
  SKB_STORE_BYTES,
} from './abi.js';
import { type Asm, FP, R0, R1, R2, R3, R4, R5 } from './asm.js';
import { FAILED, ICMP_DIFF, L4_PROTO, memHalf, OUT, PASS, SKB } from './snippets.js';

export interface Rewrite {
  /** skb->protocol to change to (network order as the program sees it). */
  readonly proto: number;
  /** Link header length in front of the IP header. */
  readonly l2: number;
  /** The new IP header: where it is on the stack, and its length. */
  readonly header: number;
  readonly headerLen: number;
  /** What the address mapping adds to TCP/UDP checksums (0: checksum-neutral, nothing to do). */
  readonly delta: number;
  /** The input's ICMP protocol number (1 or 58), as L4_PROTO holds it. */
  readonly icmpIn: number;
  /** Stack offset of the input's ICMP type byte. */
  readonly typeAt: number;
  /** The two echo types: [input request, output request], [input reply, output reply]. */
  readonly echo: readonly [readonly [number, number], readonly [number, number]];
  /** A free stack word. */
  readonly scratch: number;
}

/**
 * Emits the rewrite. Expects SKB, L4_PROTO and, for ICMP, ICMP_DIFF (the pseudo-header's checksum
 * difference, as bpf_l4_csum_replace takes it).
 */
export function rewrite(a: Asm, w: Rewrite): void {
  const l4 = w.l2 + w.headerLen;
  const l = a.scope('rewrite');
  a.movReg(R1, SKB)
    .mov(R2, w.proto)
    .mov(R3, 0)
    .call(SKB_CHANGE_PROTO)
    .jmp('ne', R0, 0, PASS) // unchanged yet
    .movReg(R1, SKB)
    .mov(R2, w.l2)
    .movReg(R3, FP)
    .alu('add', R3, w.header)
    .mov(R4, w.headerLen)
    .mov(R5, BPF_F_RECOMPUTE_CSUM)
    .call(SKB_STORE_BYTES)
    .jmp('ne', R0, 0, FAILED)
    .jmp('eq', L4_PROTO, w.icmpIn, l('echo'));
  // TCP and UDP: the pseudo-header's addresses changed by a constant.
  if (w.delta !== 0) {
    for (const [proto, at, flags] of [
      [6, 16, BPF_F_PSEUDO_HDR],
      [17, 6, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0],
    ] as const) {
      a.jmp('ne', L4_PROTO, proto, l(`not${proto}`))
        .movReg(R1, SKB)
        .mov(R2, l4 + at)
        .mov(R3, 0)
        .mov(R4, memHalf(w.delta))
        .mov(R5, flags)
        .call(L4_CSUM_REPLACE)
        .jmp('ne', R0, 0, FAILED)
        .goto(OUT)
        .label(l(`not${proto}`));
    }
  }
  a.goto(OUT);

  // Echo: the pseudo-header difference, then the type. The type byte is stored without
  // recomputing skb->csum: its change and the checksum field's change cancel out in a
  // CHECKSUM_COMPLETE sum.
  a.label(l('echo'))
    .movReg(R1, SKB)
    .mov(R2, l4 + 2)
    .mov(R3, 0)
    .movReg(R4, ICMP_DIFF)
    .mov(R5, BPF_F_PSEUDO_HDR)
    .call(L4_CSUM_REPLACE)
    .jmp('ne', R0, 0, FAILED)
    .load('b', R2, FP, w.typeAt)
    .jmp('ne', R2, w.echo[0][0], l('reply'));
  for (const [i, [from, to]] of w.echo.entries()) {
    if (i === 1) a.label(l('reply'));
    a.movReg(R1, SKB)
      .mov(R2, l4 + 2)
      .mov(R3, memHalf(from << 8))
      .mov(R4, memHalf(to << 8))
      .mov(R5, CSUM_SIZE_2)
      .call(L4_CSUM_REPLACE)
      .jmp('ne', R0, 0, FAILED)
      .storeImm('b', FP, w.scratch, to)
      .movReg(R1, SKB)
      .mov(R2, l4)
      .movReg(R3, FP)
      .alu('add', R3, w.scratch)
      .mov(R4, 1)
      .mov(R5, 0)
      .call(SKB_STORE_BYTES)
      .jmp('ne', R0, 0, FAILED)
      .goto(OUT);
  }
}
