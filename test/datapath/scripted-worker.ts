/**
 * A stand-in datapath worker for worker-handle.test.ts, scripted by `workerData.script`: `ready`
 * reports ready and answers commands (`pause` refused, `resume` also reports a side closed, `stop`
 * reports stopped and ends); `die` exits with code 3 before it is ready; `failed` reports that its
 * devices did not open, then ends.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Command, Report } from '../../src/datapath/protocol.js';

if (!isMainThread && parentPort) {
  const port = parentPort;
  const post = (r: Report) => port.postMessage(r);
  const script = (workerData as { script: string }).script;
  if (script === 'die') process.exit(3);
  if (script === 'failed') {
    post({ type: 'failed', error: { name: 'SysError', message: 'TUNSETIFF: EBUSY', code: 'ERR_CLATD_SYS' } });
    port.close();
  } else {
    post({ type: 'ready', fds: [] });
    port.on('message', (c: Command) => {
      if (c.type === 'pause') {
        post({ type: 'done', id: c.id, error: { name: 'Error', message: 'refused', code: 'ERR_TEST' } });
        return;
      }
      if (c.type === 'resume')
        post({ type: 'side-closed', side: 'tun', error: { name: 'Error', message: 'gone', code: undefined } });
      post({ type: 'done', id: c.id, error: undefined });
      if (c.type === 'stop') {
        post({ type: 'stopped' });
        port.close();
      }
    });
  }
}
