/**
 * Child of warmup.test.ts, run with `--expose-gc --trace-deopt`: warms a translator up, collects
 * garbage, then drives the loop as a worker does, over I/O objects of another class. The parent
 * reads V8's deoptimisation trace.
 */
import type { PacketBatch } from '../../src/core/batch.js';
import type { TranslatorConfig } from '../../src/core/xlat/config.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { CounterWriter, createCounterBuffer } from '../../src/datapath/counters.js';
import { DatapathLoop } from '../../src/datapath/loop.js';
import { warmUp } from '../../src/datapath/warmup.js';
import type { PacketIo } from '../../src/sys/io.js';

const config: TranslatorConfig = { pool6: '2001:db8:64::/96', eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }] };
const translator = new Translator(config);
warmUp(translator, config);

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
// Full collections: whatever the warm-up left unreachable goes now.
for (let i = 0; i < 3; i++) gc();

/** An idle device: nothing to read. */
class Quiet implements PacketIo {
  readonly fd = -1;
  readonly batchSize = 64;
  read(_into: PacketBatch, _headroom: number): number {
    return 0;
  }
  write(_from: PacketBatch): number {
    return 0;
  }
  close(): void {}
}
const q = new Quiet();
const loop = new DatapathLoop(translator, { tun: q, packet: q, raw: q }, new CounterWriter(createCounterBuffer()), {});
for (let i = 0; i < 100; i++) loop.drainBoth(true);
console.log('--- done');
