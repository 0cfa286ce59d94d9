/**
 * A scripted translator for the loop's plumbing tests: byte 1 of each input packet says what to
 * do, so a test states the translator's answer per packet and checks only what the loop does with
 * it (routing, counting, batching). The real translator is exercised in loop-real.test.ts.
 */
import { copyBytes, type PacketBatch } from '../../src/core/batch.js';
import { Drop } from '../../src/core/xlat/drop.js';
import type { PacketTranslator } from '../../src/datapath/loop-io.js';

export const enum Act {
  /** Copy the packet out as Forward (prefixed with 0xF0 so outputs are recognisable). */
  FORWARD = 0,
  /** Drop with the reason in byte 2. */
  DROP = 1,
  /** Append a Back packet (an "ICMP error") and return the reason in byte 2. */
  BACK = 2,
  /** Append byte 2 Forward packets (fragments). */
  FRAGMENTS = 3,
  /** Throw (a translator bug). */
  THROW = 4,
  /** Append one Forward packet, then throw (a bug after a partial output). */
  PARTIAL_THROW = 5,
}

/** A test packet: version nibble, action, argument, then a serial number (4 bytes) and padding. */
export function pkt(version: 4 | 6, act: Act, arg: number, serial: number, size = 64): Uint8Array {
  const b = new Uint8Array(size);
  b[0] = version << 4;
  b[1] = act;
  b[2] = arg;
  new DataView(b.buffer).setUint32(3, serial);
  return b;
}

export function serialOf(p: Uint8Array, skip = 0): number {
  return new DataView(p.buffer, p.byteOffset + skip).getUint32(3);
}

function append(out: PacketBatch, data: Uint8Array, off: number, len: number, disp: number): boolean {
  if (out.count >= out.capacity) return false;
  const i = out.count;
  const o = out.base + i * out.stride;
  out.data[o] = disp === 0 ? 0xf0 : 0xb0;
  copyBytes(data, off, len, out.data, o + 1);
  out.offs[i] = o;
  out.lens[i] = len + 1;
  out.disp[i] = disp;
  out.count++;
  return true;
}

export class ScriptedTranslator implements PacketTranslator {
  calls4 = 0;
  calls6 = 0;

  translate4(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop {
    this.calls4++;
    return this.#run(data, off, len, out);
  }

  translate6(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop {
    this.calls6++;
    return this.#run(data, off, len, out);
  }

  #run(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop {
    const arg = data[off + 2];
    switch (data[off + 1]) {
      case Act.FORWARD:
        return append(out, data, off, len, 0) ? Drop.NONE : Drop.OUTPUT_FULL;
      case Act.DROP:
        return arg as Drop;
      case Act.BACK:
        append(out, data, off, len, 1);
        return arg as Drop;
      case Act.FRAGMENTS:
        if (out.capacity - out.count < arg) return Drop.D46_TOO_MANY_FRAGMENTS;
        for (let k = 0; k < arg; k++) append(out, data, off, len, 0);
        return Drop.NONE;
      case Act.THROW:
        throw new Error('scripted translator bug');
      case Act.PARTIAL_THROW:
        append(out, data, off, len, 0);
        throw new Error('scripted translator bug after output');
      default:
        return Drop.UNKNOWN;
    }
  }
}
