/**
 * A datapath worker whose packet socket fd is closed under it: crashing-worker.ts (the real worker
 * entry, which dies on a `pause` command), with the fd closed the moment the worker reports it
 * ready (for the POLLNVAL tests in datapath-ns.test.ts). The worker reports through its
 * parentPort, so that is where this fault goes in.
 */
import { isMainThread, parentPort } from 'node:worker_threads';
import { native } from '../../src/sys/addon.js';

// `node --test dist/test` also runs this file on its own: then there is nothing to do.
if (!isMainThread && parentPort) {
  const port = parentPort;
  const post = port.postMessage.bind(port);
  port.postMessage = (m: unknown) => {
    post(m);
    const r = m as { type?: string; fds?: number[] };
    // fds: [TUN queue, packet socket, raw socket] (devices.ts).
    if (r.type === 'ready' && r.fds !== undefined) native.close(r.fds[1] as number);
  };
  await import('./crashing-worker.js');
}
