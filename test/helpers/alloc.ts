/**
 * What the no-allocation tests measure: garbage collections during a piece of work and how much the
 * young generation grew over it (an allocation-free path leaves both flat).
 */

import { PerformanceObserver, performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function newSpaceUsed(): number {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space') return s.space_used_size;
  throw new Error('no new_space in v8.getHeapSpaceStatistics()');
}

/** A full collection now (without --expose-gc on the command line). */
export function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Runs `rounds` rounds: garbage collections during them, and how much the young generation grew. */
export async function measureAllocation(
  rounds: number,
  round: (k: number) => void,
): Promise<{ gcs: number; grown: number }> {
  let gcs = 0;
  const obs = new PerformanceObserver((list) => {
    gcs += list.getEntries().filter((e) => e.startTime >= t0 && e.startTime <= t1).length;
  });
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  const before = newSpaceUsed();
  for (let k = 0; k < rounds; k++) round(k);
  const after = newSpaceUsed();
  const t1 = performance.now();
  // GC entries are delivered asynchronously.
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return { gcs, grown: after - before };
}
