/**
 * A datapath worker that dies: the real worker entry, then an uncaught exception once its devices
 * are open and polled (for the crash test in datapath-ns.test.ts).
 */
import { isMainThread } from 'node:worker_threads';

// `node --test dist/test` also runs this file on its own: then there is nothing to do.
if (!isMainThread) {
  await import('../../src/datapath/worker.js');
  setTimeout(() => {
    throw new Error('injected crash');
  }, 200);
}
