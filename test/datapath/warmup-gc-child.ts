/**
 * Child of warmup.test.ts, run with `--expose-gc --trace-deopt --allow-natives-syntax`: warms a
 * translator up, collects garbage, reports which of the loop's functions are no longer optimised
 * (V8's own status bits, whatever its trace calls the cause), then drives the loop as a worker
 * does, over I/O objects of another class. The parent reads that report and V8's deoptimisation
 * trace.
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
// V8's status bits (runtime-test.cc): 16 optimised, 64 by TurboFan; a compile may still be
// finishing in the background, hence the wait, and installing it (done at the next stack check
// otherwise, which a loaded machine can delay past the check below).
const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;
const wait = new Function('%WaitForBackgroundOptimization(); %FinalizeOptimization()') as () => void;
const entries: Record<string, unknown> = {
  'DatapathLoop.drainBoth': DatapathLoop.prototype.drainBoth,
  'Translator.translate4': Translator.prototype.translate4,
  'Translator.translate6': Translator.prototype.translate6,
};
const notOptimised = () => Object.keys(entries).filter((k) => (status(entries[k]) & (16 | 64)) !== (16 | 64));
wait();
console.log(`--- not optimised before GC: [${notOptimised().join(', ')}]`);

// Full collections: whatever the warm-up left unreachable goes now.
for (let i = 0; i < 3; i++) gc();
console.log(`--- not optimised after GC: [${notOptimised().join(', ')}]`);

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
