/**
 * An eBPF assembler (the instruction set of linux/bpf.h, as the kernel's verifier takes it): just
 * enough for the offload programs, with named labels for jumps (program-wide, or scoped to one
 * snippet instance: see `scope`). Pure TypeScript, no I/O: `encode`
 * gives the bytes that `BPF_PROG_LOAD` takes (8 bytes per instruction, little-endian host order;
 * a 64-bit immediate load takes two).
 *
 * Encoding (struct bpf_insn): u8 code, u8 dst_reg (low nibble) | src_reg (high nibble), s16 off,
 * s32 imm. Jump offsets count instructions after the next one.
 */
import { ClatdError } from '../core/errors.js';

/** Registers: r0 result, r1–r5 helper arguments (clobbered by calls), r6–r9 kept, r10 frame pointer. */
export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
export const R0 = 0;
export const R1 = 1;
export const R2 = 2;
export const R3 = 3;
export const R4 = 4;
export const R5 = 5;
export const R6 = 6;
export const R7 = 7;
export const R8 = 8;
export const R9 = 9;
export const FP = 10;

// Classes, sizes, modes, operations (linux/bpf.h, linux/bpf_common.h).
const LD = 0x00;
const LDX = 0x01;
const ST = 0x02;
const STX = 0x03;
const ALU = 0x04;
const JMP = 0x05;
const JMP32 = 0x06;
const ALU64 = 0x07;
const K = 0x00;
const X = 0x08;
const IMM = 0x00;
const MEM = 0x60;
const ATOMIC = 0xc0;
const DW = 0x18;
const END = 0xd0;
const TO_BE = 0x08;
const CALL = 0x80;
const EXIT = 0x90;
const PSEUDO_MAP_FD = 1;

export type Size = 'b' | 'h' | 'w' | 'dw';
const SIZE: Record<Size, number> = { w: 0x00, h: 0x08, b: 0x10, dw: 0x18 };

export type AluOp = 'add' | 'sub' | 'mul' | 'or' | 'and' | 'lsh' | 'rsh' | 'xor' | 'mov' | 'arsh';
const ALU_OP: Record<AluOp, number> = {
  add: 0x00,
  sub: 0x10,
  mul: 0x20,
  or: 0x40,
  and: 0x50,
  lsh: 0x60,
  rsh: 0x70,
  xor: 0xa0,
  mov: 0xb0,
  arsh: 0xc0,
};

/** Unsigned comparisons only, plus `set` (bits in common); `ne` / `eq` for equality. */
export type JmpOp = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le' | 'set';
const JMP_OP: Record<JmpOp, number> = { eq: 0x10, gt: 0x20, ge: 0x30, set: 0x40, ne: 0x50, lt: 0xa0, le: 0xb0 };

/**
 * A jump target's name: a program-wide name (an identifier), or one a LabelScope gave, which
 * carries its scope's unique prefix.
 */
export type Label = string;

/**
 * The labels of one snippet instance: `l('skip')` is its label `skip`. Each `Asm.scope` call gives
 * a new scope, so two uses of one snippet in a program never share a label; a name defined twice
 * within one scope is still an error.
 */
export type LabelScope = (name: string) => Label;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A program that cannot be encoded (unknown or repeated label, immediate out of range). */
export class EbpfAsmError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_EBPF_ASM');
    this.name = 'EbpfAsmError';
  }
}

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** Jump target, resolved into `off` by encode. */
  label?: Label;
}

function imm32(v: number): number {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff)
    throw new EbpfAsmError(`immediate ${v} is not 32 bits`);
  return v | 0;
}

function off16(v: number): number {
  if (!Number.isInteger(v) || v < -0x8000 || v > 0x7fff) throw new EbpfAsmError(`offset ${v} is not 16 bits`);
  return v;
}

export class Asm {
  readonly #insns: Insn[] = [];
  /** Label → index of the instruction slot it names (a 64-bit load counts two slots). */
  readonly #labels = new Map<Label, number>();
  /** Scope name → how many scopes of that name were given out (the next one's number). */
  readonly #scopes = new Map<string, number>();
  /** The labels scopes gave: the only names that may be other than identifiers. */
  readonly #scoped = new Set<Label>();
  #slots = 0;

  #push(i: Insn, slots = 1): this {
    this.#insns.push(i);
    this.#slots += slots;
    return this;
  }

  /**
   * A new label scope for one snippet instance, named `name#n` (n counts the scopes of that name),
   * so that its labels cannot meet a program-wide label or another scope's.
   */
  scope(name: string): LabelScope {
    if (!IDENTIFIER.test(name)) throw new EbpfAsmError(`scope name ${name} is not an identifier`);
    const n = this.#scopes.get(name) ?? 0;
    this.#scopes.set(name, n + 1);
    return (local: string): Label => {
      if (!IDENTIFIER.test(local)) throw new EbpfAsmError(`label name ${local} is not an identifier`);
      const label = `${name}#${n}.${local}`;
      this.#scoped.add(label);
      return label;
    };
  }

  /** Names the next instruction. */
  label(name: Label): this {
    if (!IDENTIFIER.test(name) && !this.#scoped.has(name)) {
      throw new EbpfAsmError(`label name ${name} is not an identifier`);
    }
    if (this.#labels.has(name)) throw new EbpfAsmError(`label ${name} defined twice`);
    this.#labels.set(name, this.#slots);
    return this;
  }

  /** 64-bit ALU with an immediate (sign-extended to 64 bits). */
  alu(op: AluOp, dst: Reg, imm: number): this {
    return this.#push({ code: ALU64 | ALU_OP[op] | K, dst, src: 0, off: 0, imm: imm32(imm) });
  }

  /** 64-bit ALU with a register. */
  aluReg(op: AluOp, dst: Reg, src: Reg): this {
    return this.#push({ code: ALU64 | ALU_OP[op] | X, dst, src, off: 0, imm: 0 });
  }

  /** 32-bit ALU with an immediate (the result is zero-extended). */
  alu32(op: AluOp, dst: Reg, imm: number): this {
    return this.#push({ code: ALU | ALU_OP[op] | K, dst, src: 0, off: 0, imm: imm32(imm) });
  }

  mov(dst: Reg, imm: number): this {
    return this.alu('mov', dst, imm);
  }

  movReg(dst: Reg, src: Reg): this {
    return this.aluReg('mov', dst, src);
  }

  /** Converts the low `bits` of `dst` from host (little-endian) to network order, zero-extending. */
  toBe(dst: Reg, bits: 16 | 32 | 64): this {
    return this.#push({ code: ALU | END | TO_BE, dst, src: 0, off: 0, imm: bits });
  }

  /** dst = *(size *)(src + off) */
  load(size: Size, dst: Reg, src: Reg, off: number): this {
    return this.#push({ code: LDX | MEM | SIZE[size], dst, src, off: off16(off), imm: 0 });
  }

  /** *(size *)(dst + off) = src */
  store(size: Size, dst: Reg, off: number, src: Reg): this {
    return this.#push({ code: STX | MEM | SIZE[size], dst, src, off: off16(off), imm: 0 });
  }

  /** *(size *)(dst + off) = imm */
  storeImm(size: Size, dst: Reg, off: number, imm: number): this {
    return this.#push({ code: ST | MEM | SIZE[size], dst, src: 0, off: off16(off), imm: imm32(imm) });
  }

  /** Atomic *(u64 *)(dst + off) += src. */
  atomicAdd64(dst: Reg, off: number, src: Reg): this {
    return this.#push({ code: STX | ATOMIC | DW, dst, src, off: off16(off), imm: 0 });
  }

  /** dst = the map whose fd is `fd` (the loader turns it into the map's address). */
  loadMap(dst: Reg, fd: number): this {
    this.#push({ code: LD | IMM | DW, dst, src: PSEUDO_MAP_FD, off: 0, imm: imm32(fd) }, 2);
    // The second half of a 64-bit load: all zero but the upper immediate.
    this.#insns.push({ code: 0, dst: 0, src: 0, off: 0, imm: 0 });
    return this;
  }

  /** if (dst op imm) goto label, comparing all 64 bits (imm sign-extended). */
  jmp(op: JmpOp, dst: Reg, imm: number, label: Label): this {
    return this.#push({ code: JMP | JMP_OP[op] | K, dst, src: 0, off: 0, imm: imm32(imm), label });
  }

  /** if (dst op src) goto label. */
  jmpReg(op: JmpOp, dst: Reg, src: Reg, label: Label): this {
    return this.#push({ code: JMP | JMP_OP[op] | X, dst, src, off: 0, imm: 0, label });
  }

  /** if ((u32)dst op (u32)imm) goto label: for comparing 32-bit words read from packets. */
  jmp32(op: JmpOp, dst: Reg, imm: number, label: Label): this {
    return this.#push({ code: JMP32 | JMP_OP[op] | K, dst, src: 0, off: 0, imm: imm32(imm), label });
  }

  goto(label: Label): this {
    return this.#push({ code: JMP | 0x00, dst: 0, src: 0, off: 0, imm: 0, label });
  }

  /** Calls kernel helper number `helper` (arguments in r1–r5, result in r0). */
  call(helper: number): this {
    return this.#push({ code: JMP | CALL, dst: 0, src: 0, off: 0, imm: helper });
  }

  exit(): this {
    return this.#push({ code: JMP | EXIT, dst: 0, src: 0, off: 0, imm: 0 });
  }

  /** Instruction slots so far. */
  get length(): number {
    return this.#slots;
  }

  /** The program as BPF_PROG_LOAD takes it. */
  encode(): Uint8Array {
    const out = new Uint8Array(this.#slots * 8);
    const v = new DataView(out.buffer);
    let slot = 0;
    for (const i of this.#insns) {
      let off = i.off;
      if (i.label !== undefined) {
        const at = this.#labels.get(i.label);
        if (at === undefined) throw new EbpfAsmError(`jump to unknown label ${i.label}`);
        off = off16(at - slot - 1);
      }
      v.setUint8(slot * 8, i.code);
      v.setUint8(slot * 8 + 1, (i.dst & 0xf) | ((i.src & 0xf) << 4));
      v.setInt16(slot * 8 + 2, off, true);
      v.setInt32(slot * 8 + 4, i.imm, true);
      slot++;
    }
    return out;
  }
}
