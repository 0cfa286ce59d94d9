import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Drop, dropName } from '../../src/core/xlat/drop.js';
import {
  COUNTER_SLOTS,
  CounterWriter,
  createCounterBuffer,
  DIR46,
  DIR64,
  IO_BASE,
  IoSlot,
  readCounters,
  Slot,
} from '../../src/datapath/counters.js';
import { counterSync, KERNEL_STATS_EVERY } from '../../src/datapath/devices.js';
import type { PacketSocket } from '../../src/sys/packet-socket.js';
import type { Tun } from '../../src/sys/tun.js';

describe('counters', () => {
  test('publish then read gives the totals, exact beyond 2^32', () => {
    const buf = createCounterBuffer();
    const w = new CounterWriter(buf);
    w.acc[DIR46 + Slot.PACKETS_IN] = 5;
    w.acc[DIR46 + Slot.BYTES_IN] = 2 ** 40 + 12345;
    w.acc[DIR64 + Slot.DROP_BASE + Drop.D64_DST_UNMAPPED] = 7;
    w.acc[IO_BASE + IoSlot.RAW_WRITE_FAILED] = 3;
    // Not visible before publish: readers only ever see whole batches.
    assert.equal(readCounters([buf])['46'].packets, 0);
    w.publish();
    const c = readCounters([buf]);
    assert.equal(c['46'].packets, 5);
    assert.equal(c['46'].bytes, 2 ** 40 + 12345);
    assert.equal(c['64'].drops[dropName(Drop.D64_DST_UNMAPPED)], 7);
    assert.equal(c.io.rawWriteFailed, 3);
  });

  test('several workers are summed', () => {
    const bufs = [createCounterBuffer(), createCounterBuffer(), createCounterBuffer()];
    bufs.forEach((b, k) => {
      const w = new CounterWriter(b);
      w.acc[DIR64 + Slot.PACKETS_OUT] = k + 1;
      w.acc[DIR46 + Slot.DROP_BASE + Drop.D46_TTL_EXPIRED] = 10 * (k + 1);
      w.publish();
    });
    const c = readCounters(bufs);
    assert.equal(c['64'].packetsOut, 6);
    assert.equal(c['46'].drops.v4_ttl_expired, 60);
  });

  test('every drop reason has a slot, named once per direction it applies to', () => {
    const c = readCounters([createCounterBuffer()]);
    const names = new Set([...Object.keys(c['46'].drops), ...Object.keys(c['64'].drops)]);
    for (let d = 1; d < Drop.COUNT; d++) assert.ok(names.has(dropName(d)), dropName(d));
    assert.ok(!names.has('none'));
  });

  test('a new writer on a used buffer continues from its totals', () => {
    const buf = createCounterBuffer();
    const a = new CounterWriter(buf);
    a.acc[DIR46 + Slot.PACKETS_IN] = 2 ** 33 + 1;
    a.publish();
    const b = new CounterWriter(buf);
    b.acc[DIR46 + Slot.PACKETS_IN]++;
    b.publish();
    assert.equal(readCounters([buf])['46'].packets, 2 ** 33 + 2);
  });

  test('a writer that died mid-publication does not hang the reader', () => {
    const buf = createCounterBuffer();
    const w = new CounterWriter(buf);
    w.acc[DIR46 + Slot.PACKETS_IN] = 9;
    w.publish();
    Atomics.add(new Uint32Array(buf), 0, 1); // the sequence stays odd forever
    assert.equal(readCounters([buf])['46'].packets, 9);
  });

  test('a reader beside a busy writer thread never sees a torn or mixed snapshot', async () => {
    const buf = createCounterBuffer();
    const rounds = 20000;
    const worker = new Worker(new URL('./counter-writer-worker.js', import.meta.url), {
      workerData: { buffer: buf, rounds },
    });
    const done = new Promise<void>((resolve, reject) => {
      worker.once('exit', () => resolve());
      worker.once('error', reject);
    });
    let finished = false;
    done.then(() => {
      finished = true;
    });
    let reads = 0;
    while (!finished) {
      const c = readCounters([buf]);
      const v = c['46'].packets;
      const r = Math.floor(v / 4294967296);
      assert.equal(v, r * 4294967296 + r, 'a 64-bit value is whole');
      assert.equal(c['64'].bytesOut, v, 'all counters come from the same publication');
      assert.equal(c.io.csumCompleted, v);
      reads++;
      await new Promise((res) => setImmediate(res));
    }
    await done;
    assert.ok(reads > 0);
    assert.equal(readCounters([buf])['46'].packets, rounds * 4294967296 + rounds);
    assert.ok(COUNTER_SLOTS > 2 * Drop.COUNT);
  });

  test('counterSync folds the kernel drops in, reading them once every KERNEL_STATS_EVERY calls', () => {
    const tun = { errors: { readErrors: 0, writeErrors: 0, lastErrno: 0 } } as unknown as Tun;
    let reads = 0;
    const counters = { readErrors: 0, malformed: 0, csumCompleted: 0, kernelDrops: 0 };
    const packet = {
      counters,
      readKernelStats() {
        reads++;
        counters.kernelDrops += 10;
      },
    } as unknown as PacketSocket;
    const sync = counterSync(tun, packet);
    const buf = createCounterBuffer();
    const w = new CounterWriter(buf);
    for (let k = 1; k < KERNEL_STATS_EVERY; k++) sync(w.acc);
    assert.equal(reads, 0, 'no system call on the way of an ordinary publication');
    sync(w.acc);
    assert.equal(reads, 1);
    assert.equal(w.acc[IO_BASE + IoSlot.PACKET_KERNEL_DROPS], 10);
    // Drops read by someone else in between (the worker's once-per-turn read) are folded in too, once.
    counters.kernelDrops += 5;
    sync(w.acc);
    sync(w.acc);
    assert.equal(w.acc[IO_BASE + IoSlot.PACKET_KERNEL_DROPS], 15);
    w.publish();
    assert.equal(readCounters([buf]).io.packetKernelDrops, 15, 'in the snapshot status and metrics read');
  });
});
