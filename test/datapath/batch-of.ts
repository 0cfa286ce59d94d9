/** A batch holding `packets`, one per slot, as a device's read leaves them (the tests' input). */
import { createBatch, type PacketBatch } from '../../src/core/batch.js';

export function batchOf(packets: Uint8Array[], stride = 2048): PacketBatch {
  const b = createBatch(packets.length, stride);
  packets.forEach((p, i) => {
    b.offs[i] = i * stride;
    b.lens[i] = p.length;
    b.data.set(p, i * stride);
  });
  b.count = packets.length;
  return b;
}
