/**
 * A small classic BPF interpreter for tests: runs a program the way the kernel's socket filter
 * does for the instructions clatd emits (loads, ALU with K, jumps, ret), including loads relative
 * to the network header (SKF_NET_OFF). Test-only: the real filter runs in the kernel.
 */
import { decode } from '../../src/sys/bpf.js';

const SKF_NET_OFF = -0x100000;

/** Returns the filter's verdict (bytes to keep; 0 = drop) for `pkt` whose network header is at `netOff`. */
export function runFilter(program: Uint8Array, pkt: Uint8Array, netOff: number): number {
  const insns = decode(program);
  let a = 0;
  let x = 0;
  const mem = new Uint32Array(16);
  const load = (k: number, size: number): number | undefined => {
    let off = k | 0;
    if (off >= SKF_NET_OFF && off < SKF_NET_OFF + 0x100000) off = netOff + (off - SKF_NET_OFF);
    else if (off < 0) throw new Error(`unsupported negative offset ${k}`);
    if (off + size > pkt.length) return undefined;
    let v = 0;
    for (let i = 0; i < size; i++) v = (v << 8) | pkt[off + i];
    return v >>> 0;
  };
  for (let pc = 0; pc < insns.length; pc++) {
    const { code, jt, jf, k } = insns[pc];
    const cls = code & 0x07;
    switch (cls) {
      case 0x00: {
        // LD
        const mode = code & 0xe0;
        const size = [4, 2, 1][(code & 0x18) >> 3];
        if (mode === 0x00) a = k;
        else if (mode === 0x80) a = pkt.length;
        else if (mode === 0x60) a = mem[k];
        else {
          const v = load(mode === 0x40 ? x + k : k, size);
          if (v === undefined) return 0; // out of bounds: the kernel drops
          a = v;
        }
        break;
      }
      case 0x01:
        x = (code & 0xe0) === 0x00 ? k : (code & 0xe0) === 0x80 ? pkt.length : mem[k];
        break;
      case 0x02:
        mem[k] = a;
        break;
      case 0x03:
        mem[k] = x;
        break;
      case 0x04: {
        const v = code & 0x08 ? x : k;
        const op = code & 0xf0;
        if (op === 0x00) a = (a + v) >>> 0;
        else if (op === 0x10) a = (a - v) >>> 0;
        else if (op === 0x50) a = (a & v) >>> 0;
        else if (op === 0x40) a = (a | v) >>> 0;
        else if (op === 0x60) a = (a << v) >>> 0;
        else if (op === 0x70) a = a >>> v;
        else throw new Error(`unsupported ALU op ${code.toString(16)}`);
        break;
      }
      case 0x05: {
        const op = code & 0xf0;
        if (op === 0x00) {
          pc += k;
          break;
        }
        const v = code & 0x08 ? x : k;
        const cond = op === 0x10 ? a === v : op === 0x20 ? a > v : op === 0x30 ? a >= v : (a & v) !== 0;
        pc += cond ? jt : jf;
        break;
      }
      case 0x06:
        return code & 0x10 ? a : k;
      case 0x07:
        if (code & 0x80) a = x;
        else x = a;
        break;
    }
  }
  throw new Error('program ran off its end');
}
