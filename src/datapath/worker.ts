/**
 * The worker_threads entry of one datapath loop. The worker opens its own devices (a TUN queue, a
 * packet socket in the fanout group, a raw socket), polls them with uv_poll on its own event loop,
 * and obeys the main thread's commands between batches (a message handler runs only when no
 * batch does, so a new configuration applies atomically).
 *
 *   start ──▶ open devices ──▶ ready ──▶ polling ◀──▶ paused
 *                  │                        │
 *                  └─ failed ─▶ exit        └─ stop: polls off, fds closed, stopped ─▶ exit
 *
 * Stopping needs no wake-up trick: uv_poll never blocks in a system call, so the stop message is
 * handled on the next loop turn (syscall-layer.md, gotchas 1-2), and with the polls stopped and
 * the port closed nothing keeps the worker's loop alive.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Translator } from '../core/xlat/translator.js';
import { type PollHandle, pollReadable } from '../sys/poll.js';
import { CounterWriter } from './counters.js';
import { type OpenedDevices, openDevices } from './devices.js';
import { DatapathLoop, type Side } from './loop.js';
import { type Command, errorData, type Report, type WorkerInit } from './protocol.js';
import { warmUp } from './warmup.js';

const port = parentPort;
if (port === null) throw new Error('src/datapath/worker.ts runs only as a worker thread');
const init = workerData as WorkerInit;

function report(r: Report): void {
  port?.postMessage(r);
}

let dev: OpenedDevices;
let loop: DatapathLoop;
const polls: Partial<Record<Side, PollHandle>> = {};

try {
  const translator = new Translator(init.translator);
  // Before the devices open, so no packet waits for it (see warmup.ts for why).
  if (init.warmUp) warmUp(translator, init.translator);
  dev = openDevices(init.devices, init.fanoutGroup);
  try {
    const counters = new CounterWriter(init.counters);
    loop = new DatapathLoop(translator, dev.io, counters, {
      stride: init.stride,
      maxBatchesPerWake: init.maxBatchesPerWake,
    });
    loop.beforePublish = dev.syncCounters;
    loop.onClosed = sideClosed;
    const what = `worker ${init.index}`;
    polls.tun = pollReadable(dev.tun.fd, `TUN ${dev.tun.name} (${what})`, loop.tunReadable, (e) =>
      sideClosed('tun', e),
    );
    polls.packet = pollReadable(
      dev.packet.fd,
      `packet socket on ${dev.packet.ifname} (${what})`,
      loop.packetReadable,
      (e) => sideClosed('packet', e),
    );
  } catch (e) {
    stopPolls();
    dev.close();
    throw e;
  }
  report({ type: 'ready', fds: dev.fds });
  port.on('message', onCommand);
} catch (e) {
  report({ type: 'failed', error: errorData(e) });
  port.close();
}

function sideClosed(side: Side, e: unknown): void {
  polls[side]?.stop();
  report({ type: 'side-closed', side, error: errorData(e) });
}

function stopPolls(): void {
  polls.tun?.stop();
  polls.packet?.stop();
}

function onCommand(c: Command): void {
  let error: unknown;
  try {
    switch (c.type) {
      case 'reconfigure':
        // Built (and validated) before the swap: a bad configuration leaves the old one running.
        loop.setTranslator(new Translator(c.translator));
        if (c.filter) dev.packet.setFilter(c.filter);
        break;
      case 'pause':
        loop.paused = true;
        break;
      case 'resume':
        loop.paused = false;
        break;
      case 'stop':
        stopPolls();
        dev.close();
        report({ type: 'done', id: c.id, error: undefined });
        report({ type: 'stopped' });
        port?.close();
        return;
    }
  } catch (e) {
    error = e;
  }
  report({ type: 'done', id: c.id, error: error === undefined ? undefined : errorData(error) });
}
