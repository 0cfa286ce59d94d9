/**
 * A stand-in datapath worker that only watches the turn counter (WorkerInit.turns): ready at once,
 * it reports the first move of the counter as a `side-closed` report whose error says so (the one
 * report the main thread passes on as an event), and answers `stop` as the real worker does. For
 * the test that the main thread keeps the workers' time.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Command, Report, WorkerInit } from '../../src/datapath/protocol.js';

// `node --test dist/test` also runs this file on its own: then there is nothing to do.
if (!isMainThread && parentPort) {
  const port = parentPort;
  const report = (r: Report) => port.postMessage(r);
  const turns = new Int32Array((workerData as WorkerInit).turns);
  const seen = Atomics.load(turns, 0);
  const started = Date.now();
  const watch = setInterval(() => {
    if (Atomics.load(turns, 0) === seen) return;
    clearInterval(watch);
    const ms = Date.now() - started;
    report({
      type: 'side-closed',
      side: 'tun',
      error: { name: 'Turn', message: `moved after ${ms} ms`, code: undefined },
    });
  }, 50);
  port.on('message', (c: Command) => {
    if (c.type !== 'stop') return;
    clearInterval(watch);
    report({ type: 'done', id: c.id, error: undefined });
    report({ type: 'stopped' });
    port.close();
  });
  report({ type: 'ready', fds: [] });
}
