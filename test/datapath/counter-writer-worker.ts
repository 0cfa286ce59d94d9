/**
 * Worker for counters.test.ts: publishes `rounds` snapshots in which every counter equals the
 * round number times 2^32 + round (so a torn pair or a mixed snapshot is visible to the reader).
 */
import { isMainThread, workerData } from 'node:worker_threads';
import { COUNTER_SLOTS, CounterWriter } from '../../src/datapath/counters.js';

// `node --test dist/test` also runs this file on its own: then there is nothing to do.
if (!isMainThread) {
  const { buffer, rounds } = workerData as { buffer: SharedArrayBuffer; rounds: number };
  const w = new CounterWriter(buffer);
  for (let r = 1; r <= rounds; r++) {
    const v = r * 4294967296 + r;
    for (let i = 0; i < COUNTER_SLOTS; i++) w.acc[i] = v;
    w.publish();
  }
}
