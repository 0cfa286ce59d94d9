/**
 * A datapath worker that dies on command: the real worker entry, and an uncaught exception when
 * the main thread sends `pause` (for the crash test in datapath-ns.test.ts).
 */
import { isMainThread, parentPort } from 'node:worker_threads';

// `node --test dist/test` also runs this file on its own: then there is nothing to do.
if (!isMainThread) {
  await import('../../src/datapath/worker.js');
  parentPort?.on('message', (c: { type: string }) => {
    if (c.type === 'pause') throw new Error('injected crash');
  });
}
