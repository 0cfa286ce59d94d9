/**
 * A datapath worker that dies on command: the real worker entry, and an uncaught exception when
 * it takes a `pause` from the main thread (for the crash test in datapath-ns.test.ts). The worker
 * takes its commands with receiveMessageOnPort, so that is where the fault goes in
 * (syncBuiltinESMExports carries the replacement to the worker's own ESM import).
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { isMainThread, type MessagePort } from 'node:worker_threads';

// `node --test dist/test` also runs this file on its own: then there is nothing to do.
if (!isMainThread) {
  const wt = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
  const receive = wt.receiveMessageOnPort;
  wt.receiveMessageOnPort = (p: MessagePort) => {
    const m = receive(p);
    if ((m?.message as { type?: string } | undefined)?.type === 'pause') throw new Error('injected crash');
    return m;
  };
  syncBuiltinESMExports();
  await import('../../src/datapath/worker.js');
}
