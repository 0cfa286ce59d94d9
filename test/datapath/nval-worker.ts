/**
 * A datapath worker whose packet socket fd is closed under it: the real worker entry, with the fd
 * closed the moment the worker reports it ready (for the POLLNVAL tests in datapath-ns.test.ts).
 * The worker reports through its parentPort, so that is where that fault goes in. It also dies
 * on a `pause` command, as crashing-worker.ts does, for the crash clean-up after it.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { isMainThread, type MessagePort, parentPort } from 'node:worker_threads';
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
