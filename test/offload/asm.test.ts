/** The eBPF assembler's encoding (checked against linux/bpf.h's layout) and its refusals. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Asm, EbpfAsmError, FP, R0, R1, R2, R3, R6 } from '../../src/offload/asm.js';
import { checkTransport, memHalf, memWord, PASS } from '../../src/offload/snippets.js';

function insn(b: Uint8Array, i: number): [number, number, number, number] {
  const v = new DataView(b.buffer, b.byteOffset);
  return [v.getUint8(i * 8), v.getUint8(i * 8 + 1), v.getInt16(i * 8 + 2, true), v.getInt32(i * 8 + 4, true)];
}

describe('eBPF assembler', () => {
  test('encodes code, registers (dst low nibble, src high), offset and immediate', () => {
    const a = new Asm();
    a.mov(R0, -1) // BPF_ALU64 | BPF_MOV | BPF_K
      .movReg(R6, R1) // BPF_ALU64 | BPF_MOV | BPF_X
      .load('h', R2, FP, -62) // BPF_LDX | BPF_MEM | BPF_H
      .storeImm('w', FP, -4, 7) // BPF_ST | BPF_MEM | BPF_W
      .toBe(R2, 16) // BPF_ALU | BPF_END | BPF_TO_BE
      .call(26)
      .exit();
    const b = a.encode();
    assert.deepEqual(insn(b, 0), [0xb7, 0x00, 0, -1]);
    assert.deepEqual(insn(b, 1), [0xbf, 0x16, 0, 0]);
    assert.deepEqual(insn(b, 2), [0x69, 0xa2, -62, 0]);
    assert.deepEqual(insn(b, 3), [0x62, 0x0a, -4, 7]);
    assert.deepEqual(insn(b, 4), [0xdc, 0x02, 0, 16]);
    assert.deepEqual(insn(b, 5), [0x85, 0x00, 0, 26]);
    assert.deepEqual(insn(b, 6), [0x95, 0x00, 0, 0]);
  });

  test('jumps count instructions after the next one; a 64-bit load takes two slots', () => {
    const a = new Asm();
    a.jmp32('ne', R2, 0x12345678, 'out') // 0
      .loadMap(R1, 5) // 1, 2
      .jmp('eq', R0, 0, 'out') // 3
      .mov(R0, 1) // 4
      .label('out')
      .exit(); // 5
    const b = a.encode();
    assert.equal(b.length, 6 * 8);
    assert.deepEqual(insn(b, 0), [0x56, 0x02, 4, 0x12345678]);
    assert.deepEqual(insn(b, 1), [0x18, 0x11, 0, 5]); // BPF_PSEUDO_MAP_FD in src
    assert.deepEqual(insn(b, 2), [0, 0, 0, 0]);
    assert.deepEqual(insn(b, 3), [0x15, 0x00, 1, 0]);
  });

  test('refuses unknown and repeated labels and immediates wider than 32 bits', () => {
    assert.throws(() => new Asm().goto('nowhere').encode(), EbpfAsmError);
    assert.throws(() => new Asm().label('x').label('x'), /defined twice/);
    assert.throws(() => new Asm().mov(R0, 2 ** 32), /not 32 bits/);
    assert.throws(() => new Asm().load('b', R0, FP, -40000), /not 16 bits/);
  });

  test('labels are scoped: a name twice in one scope is refused, the same name in two scopes is two labels', () => {
    const a = new Asm();
    const first = a.scope('snippet');
    const second = a.scope('snippet');
    a.jmp('eq', R0, 0, first('skip')) // 0
      .jmp('eq', R0, 0, second('skip')) // 1
      .mov(R0, 1) // 2
      .label(first('skip'))
      .jmp('eq', R0, 0, 'skip') // 3: a program-wide label of the same name is a third one
      .mov(R0, 2) // 4
      .label(second('skip'))
      .mov(R0, 3) // 5
      .label('skip')
      .exit(); // 6
    const b = a.encode();
    assert.equal(insn(b, 0)[2], 2);
    assert.equal(insn(b, 1)[2], 3);
    assert.equal(insn(b, 3)[2], 2);
    assert.notEqual(first('skip'), second('skip'));
    assert.throws(() => a.label(first('skip')), /defined twice/);
    assert.throws(() => a.label(second('skip')), /defined twice/);
    // Names that could pass for another scope's labels are refused.
    assert.throws(() => new Asm().label(first('skip')), /not an identifier/);
    assert.throws(() => a.scope('snippet#1'), /not an identifier/);
    assert.throws(() => first('a.b'), /not an identifier/);
  });

  test('one snippet used twice in a program keeps its labels apart', () => {
    const a = new Asm();
    for (let i = 0; i < 2; i++) checkTransport(a, { l4len: R3, l4At: -40, icmp: 1, echo: [8, 0] });
    a.mov(R0, 0).exit().label(PASS).mov(R0, 1).exit();
    assert.equal(a.encode().length, a.length * 8);
  });

  test('memory-order helpers: what a little-endian load of network-order bytes gives', () => {
    assert.equal(memWord(new Uint8Array([192, 0, 0, 1]), 0), 0x010000c0);
    assert.equal(memWord(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0), -1);
    assert.equal(memHalf(0x86dd), 0xdd86);
  });
});
