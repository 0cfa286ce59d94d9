/**
 * A classic BPF assembler (the `struct sock_filter` language of SO_ATTACH_FILTER) and the CLAT
 * receive filter built with it. Pure TypeScript, no I/O: the program is handed to the kernel as a
 * byte array by packet-socket.ts.
 *
 * Encoding (linux/filter.h): 8 bytes per instruction, in host byte order (little-endian on every
 * platform clatd runs on): u16 code, u8 jt, u8 jf, u32 k. Jump offsets count instructions after the
 * next one, forward only, at most 255.
 */
import { solicitedNode } from '../core/addr/ipv6.js';
import type { Prefix6 } from '../core/addr/prefix.js';

// Instruction classes and fields (linux/bpf_common.h).
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_LEN = 0x80;
export const BPF_MSH = 0xa0;
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
export const BPF_K = 0x00;
export const BPF_X = 0x08;
export const BPF_A = 0x10;
export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;

/** Loads with `k = SKF_NET_OFF + n` read byte n of the network (IPv6) header, whatever the link layer. */
export const SKF_NET_OFF = -0x100000;
/** Most instructions the kernel accepts in one program. */
export const BPF_MAXINSNS = 4096;
/** Size of one encoded instruction. */
export const BPF_INSN_LEN = 8;

export interface BpfInsn {
  code: number;
  jt: number;
  jf: number;
  /** Unsigned 32-bit. */
  k: number;
}

/** A jump target: a label name, or 0 for "the next instruction". */
export type Target = string | 0;

interface Pending {
  code: number;
  k: number;
  jt: Target;
  jf: Target;
}

/** Thrown for programs that cannot be encoded (unknown label, backward or too long jump). */
export class BpfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BpfError';
  }
}

/**
 * Builds a program instruction by instruction with named labels; `assemble()` resolves the labels
 * to the forward offsets cBPF wants.
 *
 *   const a = new BpfAssembler();
 *   a.ldh(12).jeq(0x86dd, 0, 'drop').ret(0xffffffff).label('drop').ret(0);
 */
export class BpfAssembler {
  readonly #insns: Pending[] = [];
  readonly #labels = new Map<string, number>();

  /** Marks the position of the next instruction. */
  label(name: string): this {
    if (this.#labels.has(name)) throw new BpfError(`label ${name} defined twice`);
    this.#labels.set(name, this.#insns.length);
    return this;
  }

  /** Any instruction; the helpers below cover the ones clatd uses. */
  insn(code: number, k = 0, jt: Target = 0, jf: Target = 0): this {
    this.#insns.push({ code, k: k >>> 0, jt, jf });
    return this;
  }

  /** A = u32 at absolute offset k (network byte order). */
  ldw(k: number): this {
    return this.insn(BPF_LD | BPF_W | BPF_ABS, k);
  }
  /** A = u16 at absolute offset k. */
  ldh(k: number): this {
    return this.insn(BPF_LD | BPF_H | BPF_ABS, k);
  }
  /** A = u8 at absolute offset k. */
  ldb(k: number): this {
    return this.insn(BPF_LD | BPF_B | BPF_ABS, k);
  }
  /** A = packet length. */
  ldlen(): this {
    return this.insn(BPF_LD | BPF_W | BPF_LEN);
  }
  /** A = k. */
  ldi(k: number): this {
    return this.insn(BPF_LD | BPF_IMM, k);
  }
  /** A &= k. */
  and(k: number): this {
    return this.insn(BPF_ALU | BPF_AND | BPF_K, k);
  }
  /** if (A == k) goto jt else goto jf. */
  jeq(k: number, jt: Target, jf: Target): this {
    return this.insn(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf);
  }
  /** if (A > k) goto jt else goto jf. */
  jgt(k: number, jt: Target, jf: Target): this {
    return this.insn(BPF_JMP | BPF_JGT | BPF_K, k, jt, jf);
  }
  /** if (A >= k) goto jt else goto jf. */
  jge(k: number, jt: Target, jf: Target): this {
    return this.insn(BPF_JMP | BPF_JGE | BPF_K, k, jt, jf);
  }
  /** if (A & k) goto jt else goto jf. */
  jset(k: number, jt: Target, jf: Target): this {
    return this.insn(BPF_JMP | BPF_JSET | BPF_K, k, jt, jf);
  }
  /** goto target (a 32-bit offset; cBPF still only allows forward jumps). */
  ja(target: string): this {
    return this.insn(BPF_JMP | BPF_JA, 0, target, 0);
  }
  /** Accept the first k bytes of the packet (0: drop it). */
  ret(k: number): this {
    return this.insn(BPF_RET | BPF_K, k);
  }

  /** The resolved instructions. */
  instructions(): BpfInsn[] {
    const out: BpfInsn[] = [];
    for (let pc = 0; pc < this.#insns.length; pc++) {
      const p = this.#insns[pc];
      if (p.code === (BPF_JMP | BPF_JA)) {
        out.push({ code: p.code, jt: 0, jf: 0, k: this.#offset(pc, p.jt, 0xffffffff) });
      } else if ((p.code & 0x07) === BPF_JMP) {
        out.push({ code: p.code, jt: this.#offset(pc, p.jt, 255), jf: this.#offset(pc, p.jf, 255), k: p.k });
      } else {
        out.push({ code: p.code, jt: 0, jf: 0, k: p.k });
      }
    }
    return out;
  }

  /** The program as the kernel's `struct sock_filter[]`. */
  assemble(): Uint8Array {
    return encode(this.instructions());
  }

  #offset(pc: number, target: Target, max: number): number {
    if (target === 0) return 0;
    const at = this.#labels.get(target);
    if (at === undefined) throw new BpfError(`undefined label ${target}`);
    const off = at - pc - 1;
    if (off < 0) throw new BpfError(`jump from ${pc} to ${target} goes backward`);
    if (off > max) throw new BpfError(`jump from ${pc} to ${target} is too long (${off})`);
    if (at >= this.#insns.length) throw new BpfError(`label ${target} is past the last instruction`);
    return off;
  }
}

/** Encodes instructions as `struct sock_filter` (host little-endian). */
export function encode(insns: readonly BpfInsn[]): Uint8Array {
  if (insns.length === 0 || insns.length > BPF_MAXINSNS) {
    throw new BpfError(`a program has 1 to ${BPF_MAXINSNS} instructions, not ${insns.length}`);
  }
  const out = new Uint8Array(insns.length * BPF_INSN_LEN);
  const v = new DataView(out.buffer);
  insns.forEach((insn, i) => {
    v.setUint16(i * 8, insn.code, true);
    v.setUint8(i * 8 + 2, insn.jt);
    v.setUint8(i * 8 + 3, insn.jf);
    v.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return out;
}

/** The inverse of {@link encode}. */
export function decode(program: Uint8Array): BpfInsn[] {
  if (program.length === 0 || program.length % BPF_INSN_LEN !== 0) {
    throw new BpfError(`a program is a multiple of ${BPF_INSN_LEN} bytes, not ${program.length}`);
  }
  const v = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const out: BpfInsn[] = [];
  for (let o = 0; o < program.length; o += 8) {
    out.push({ code: v.getUint16(o, true), jt: v.getUint8(o + 2), jf: v.getUint8(o + 3), k: v.getUint32(o + 4, true) });
  }
  return out;
}

const ICMPV6 = 58;
const ND_NEIGHBOR_SOLICIT = 135;
const ND_NEIGHBOR_ADVERT = 136;
/** ff02::1, where a node defending its address sends its NA (RFC 4861 §7.2.4, RFC 4862 §5.4.4). */
const ALL_NODES = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

function word(a: Uint8Array, i: number): number {
  return ((a[i] << 24) | (a[i + 1] << 16) | (a[i + 2] << 8) | a[i + 3]) >>> 0;
}

/** Emits: goto `onMatch` if the 16 bytes at network offset `off` equal `addr`, else goto `onMiss`. */
function matchAddr(a: BpfAssembler, off: number, addr: Uint8Array, onMatch: Target, onMiss: string): void {
  matchPrefix(a, off, { addr, len: 128 }, onMatch, onMiss);
}

/**
 * Emits: goto `onMatch` if the 16 bytes at network offset `off` lie in `prefix` (its first `len`
 * bits equal), else goto `onMiss`.
 */
function matchPrefix(a: BpfAssembler, off: number, prefix: Prefix6, onMatch: Target, onMiss: string): void {
  const words = Math.ceil(prefix.len / 32);
  if (words === 0) {
    if (onMatch !== 0) a.ja(onMatch);
    return;
  }
  for (let w = 0; w < words; w++) {
    const bits = Math.min(32, prefix.len - w * 32);
    const mask = bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    a.ldw(SKF_NET_OFF + off + w * 4);
    if (mask !== 0xffffffff) a.and(mask);
    a.jeq((word(prefix.addr, w * 4) & mask) >>> 0, w === words - 1 ? onMatch : 0, onMiss);
  }
}

/**
 * Emits the test for Neighbor Discovery messages about `target`: ICMPv6 without extension headers,
 * hop limit 255 (RFC 4861 §7.1.1, §7.1.2), one of `types`, target address `target`, and a
 * destination among `destinations`; goes to `accept` or `drop`.
 */
function matchNeighborMessage(
  a: BpfAssembler,
  target: Uint8Array,
  types: readonly number[],
  destinations: readonly Uint8Array[],
): void {
  a.ldb(SKF_NET_OFF + 6).jeq(ICMPV6, 0, 'drop');
  a.ldb(SKF_NET_OFF + 7).jeq(255, 0, 'drop');
  a.ldb(SKF_NET_OFF + 40);
  types.forEach((t, i) => {
    if (i + 1 < types.length) a.jeq(t, 'target', 0);
    else a.jeq(t, 0, 'drop');
  });
  if (types.length > 1) a.label('target');
  // The ND target follows the 4-byte ICMPv6 header and 4 reserved/flag bytes.
  matchAddr(a, 48, target, 0, 'drop');
  destinations.forEach((d, i) => {
    if (i > 0) a.label(`destination${i}`);
    matchAddr(a, 24, d, 'accept', i + 1 < destinations.length ? `destination${i + 1}` : 'drop');
  });
}

/** Emits the `accept` (the whole packet) and `drop` exits every filter here ends with. */
function acceptOrDrop(a: BpfAssembler): Uint8Array {
  a.label('accept');
  a.ret(0xffffffff);
  a.label('drop');
  a.ret(0);
  return a.assemble();
}

/**
 * The receive filter of the packet socket (after Android's clatd, which matches the destination only):
 * accepts
 *  1. every IPv6 packet whose destination is the CLAT address `clat` (the traffic to translate),
 *     or lies in one of `mapped` (router mode's LAN subnets mapped into a routed prefix);
 *  2. Neighbor Solicitations and Advertisements whose target is `clat`, sent to its solicited-node
 *     group or to all-nodes, with hop limit 255 (RFC 4861 §7.1.1, §7.1.2): what DAD must see
 *     (RFC 4862 §5.4.3, §5.4.4) — another node probing for, or defending, the same address;
 * and drops everything else in the kernel, before it is queued.
 *
 * Loads are relative to the network header (SKF_NET_OFF), so the same program works on Ethernet
 * and raw-IP uplinks. ND messages are recognised only without extension headers before ICMPv6,
 * which is how every stack sends them.
 */
export function clatReceiveFilter(clat: Uint8Array, mapped: readonly Prefix6[] = []): Uint8Array {
  if (clat.length !== 16) throw new BpfError('the CLAT address must be 16 bytes');
  const a = new BpfAssembler();
  matchAddr(a, 24, clat, 'accept', mapped.length ? 'mapped0' : 'nd');
  mapped.forEach((p, i) => {
    a.label(`mapped${i}`);
    matchPrefix(a, 24, p, 'accept', i + 1 < mapped.length ? `mapped${i + 1}` : 'nd');
  });
  a.label('nd');
  matchNeighborMessage(a, clat, [ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT], [solicitedNode(clat), ALL_NODES]);
  return acceptOrDrop(a);
}

/**
 * The filter of clatd's own neighbor responder (when it, not the kernel, answers for the CLAT
 * address `clat`): Neighbor Solicitations with hop limit 255 whose target is `clat`, sent to its
 * solicited-node group (address resolution, DAD) or to `clat` itself (unreachability probes).
 * Nothing else is queued, so the traffic to translate never reaches this socket.
 */
export function ndSolicitationFilter(clat: Uint8Array): Uint8Array {
  if (clat.length !== 16) throw new BpfError('the CLAT address must be 16 bytes');
  const a = new BpfAssembler();
  matchNeighborMessage(a, clat, [ND_NEIGHBOR_SOLICIT], [solicitedNode(clat), clat]);
  return acceptOrDrop(a);
}
