/**
 * One worker thread as the main thread sees it, over a scripted stand-in worker: readiness, the
 * answers to commands, reports passed on, a clean stop, a worker that dies or fails before it is
 * ready, the count of live workers, and a dead worker's fds closed once.
 */
import assert from 'node:assert/strict';
import { fstatSync, openSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { Report, WorkerInit } from '../../src/datapath/protocol.js';
import { closeFdsOf, WorkerHandle, workerThreads } from '../../src/datapath/worker-handle.js';

const URL_ = new URL('./scripted-worker.js', import.meta.url);

function handle(script: string) {
  const reports: Report[] = [];
  const init = { script } as unknown as Omit<WorkerInit, 'control'>;
  const w = new WorkerHandle(0, init, URL_, (_w, r) => reports.push(r));
  return { w, reports };
}

describe('WorkerHandle', () => {
  test('ready, commands answered, other reports passed on, a clean stop', async () => {
    const before = workerThreads();
    const { w, reports } = handle('ready');
    assert.equal(workerThreads(), before + 1);
    await w.ready;
    assert.equal(await w.send({ type: 'resume', id: 1 }), undefined);
    assert.deepEqual(reports, [
      { type: 'side-closed', side: 'tun', error: { name: 'Error', message: 'gone', code: undefined } },
    ]);
    assert.deepEqual(await w.send({ type: 'pause', id: 2 }), { name: 'Error', message: 'refused', code: 'ERR_TEST' });
    await w.send({ type: 'stop', id: 3 });
    await w.stopped;
    assert.equal(w.clean, true);
    await w.exit;
    assert.equal(w.exited, true);
    assert.equal(workerThreads(), before);
    assert.equal(await w.send({ type: 'pause', id: 4 }), undefined, 'after the exit: answered at once');
  });

  test('a worker that dies before it is ready: ready rejects, exit and stopped resolve', async () => {
    const { w } = handle('die');
    await assert.rejects(w.ready, /datapath worker 0 exited \(code 3\) before it was ready/);
    await w.exit;
    await w.stopped;
    assert.equal(w.exitCode, 3);
    assert.equal(w.clean, false);
  });

  test('a worker whose devices did not open: its error, and no fds left to close for it', async () => {
    const { w } = handle('failed');
    await assert.rejects(w.ready, (e: Error & { causeCode?: string }) => {
      assert.equal(e.message, 'TUNSETIFF: EBUSY');
      assert.equal(e.causeCode, 'ERR_CLATD_SYS');
      return true;
    });
    assert.deepEqual(w.fds, []);
    await w.exit;
  });

  test("a dead worker's fds are closed once", async () => {
    const { w } = handle('die');
    await w.exit;
    const fds = [openSync('/dev/null', 'r'), openSync('/dev/null', 'r')];
    w.fds = [...fds];
    closeFdsOf(w);
    assert.deepEqual(w.fds, []);
    for (const fd of fds) assert.throws(() => fstatSync(fd), { code: 'EBADF' });
    closeFdsOf(w); // nothing left: a number reused meanwhile is not closed again
  });
});
