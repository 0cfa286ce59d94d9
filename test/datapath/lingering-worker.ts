/**
 * A datapath worker whose thread outlives its stop: the real worker entry, plus a BroadcastChannel
 * that keeps the thread's event loop alive until the test posts 'release' on it. Until then it
 * answers 'ping' with 'alive', so the test can tell the thread was neither ended nor terminated.
 */
import { BroadcastChannel, isMainThread } from 'node:worker_threads';

/** The channel's name, shared with datapath-ns.test.ts. */
export const LINGER_CHANNEL = 'clatd-lingering-worker';

// `node --test dist/test` also runs this file on its own: then there is nothing to do.
if (!isMainThread) {
  const ch = new BroadcastChannel(LINGER_CHANNEL);
  ch.onmessage = (e) => {
    const m = (e as MessageEvent).data;
    if (m === 'ping') ch.postMessage('alive');
    if (m === 'release') ch.close();
  };
  await import('../../src/datapath/worker.js');
}
