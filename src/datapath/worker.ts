/**
 * The worker_threads entry of one datapath loop. The worker warms its packet path up (over
 * stand-ins of its devices, see warmup.ts), opens its own devices (a TUN queue, a packet socket in
 * the fanout group, a raw socket), and runs the loop; each wake-up is a {@link Waker}'s.
 *
 *   start ──▶ warm up ──▶ open devices ──▶ ready ──▶ running ◀──▶ paused
 *                              │                                  │
 *                              └─ failed ─▶ exit                  └─ stop: fds closed, stopped ─▶ exit
 *
 * The loop sleeps in a poll(2) of its own (PollSet: TUN queue, packet socket, and the control
 * eventfd the main thread signals), not in libuv. Why: after an idle gap every wake-up runs cold,
 * and the way from epoll through libuv and napi_make_callback into JS is part of that cost. With
 * ping at 100 packets/s (ftrace, one worker), the time from the wake-up to the TUN read fell from
 * 36 to 28 µs and a round trip through clatd from 245 to 212 µs (bench/README.md).
 *
 * Commands arrive as messages, announced on the control eventfd; the loop takes them with
 * receiveMessageOnPort between batches, so a new configuration applies atomically. Every
 * {@link TURN_MS} (when the main thread moves `init.turns`, or after that long idle) the loop gives
 * the event loop one turn (setImmediate), so V8's own tasks run and terminate() takes effect even
 * on an idle worker.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { Translator } from '../core/xlat/translator.js';
import { K } from '../sys/addon.js';
import { Errno, sysError } from '../sys/errors.js';
import { drainEventFd } from '../sys/eventfd.js';
import { PollSet } from '../sys/poll.js';
import { CounterWriter } from './counters.js';
import { closeFds, type OpenedDevices, offloadOptions, openDevices } from './devices.js';
import { DatapathLoop, type Side } from './loop.js';
import { type Command, errorData, type Report, TURN_MS, type WorkerInit } from './protocol.js';
import { CONTROL, ENDLESS, FOR_WORKER, PACKET, TUN, Waker } from './waker.js';
import { warmUp } from './warmup.js';

const port = parentPort;
if (port === null) throw new Error('src/datapath/worker.ts runs only as a worker thread');
const init = workerData as WorkerInit;
const turns = new Int32Array(init.turns);

function report(r: Report): void {
  port?.postMessage(r);
}

let dev: OpenedDevices;
/** openDevices was called: it, or `dev.close()`, now owns any adopted fds. */
let opening = false;
let loop: DatapathLoop;
let polls: PollSet;
let waker: Waker;
let stopped = false;

try {
  const translator = new Translator(init.translator);
  // Before the devices open, so no packet waits for it (see warmup.ts for why).
  // Started for input that waits on devices opened for it (`adopt`, a datapath started on input):
  // that input is served first, cold, and the warm-up follows; a Packet Too Big that started the
  // workers must not wait for a warm-up of seconds (the sender's PMTU discovery would stall).
  const serveFirst = init.adopt !== undefined;
  if (init.warmUp && !serveFirst) warmUp(translator, init.translator);
  opening = true;
  dev = openDevices(init.devices, init.fanoutGroup, init.adopt);
  try {
    const counters = new CounterWriter(init.counters);
    loop = new DatapathLoop(translator, dev.io, counters, {
      stride: init.stride,
      maxBatchesPerWake: init.maxBatchesPerWake,
      icmpErrorsPerSec: init.icmpErrorsPerSec,
      ...offloadOptions(dev.tun),
    });
    loop.paused = init.paused;
    loop.beforePublish = dev.syncCounters;
    loop.onClosed = sideClosed;
    polls = new PollSet([dev.tun.fd, dev.packet.fd, init.control], `datapath worker ${init.index}`);
    waker = new Waker(polls, loop, turns);
  } catch (e) {
    dev.close();
    throw e;
  }
  report({ type: 'ready', fds: dev.fds });
  if (serveFirst) {
    loop.drainBoth(true);
    loop.publish();
    if (init.warmUp) warmUp(translator, init.translator);
  }
  setImmediate(run);
} catch (e) {
  // Fds handed over are ours even when we fail before opening the devices (which closes them
  // itself when it fails, as `dev.close()` does after it).
  if (init.adopt && !opening) closeFds([init.adopt.tun, init.adopt.packet, init.adopt.raw]);
  report({ type: 'failed', error: errorData(e) });
  port.close();
}

/** One slice of the loop (see the file comment and Waker.slice). */
function run(): void {
  const seen = Atomics.load(turns, 0);
  // Commands sent before the loop first ran (or during the event-loop turn) announce themselves
  // on the eventfd as well; taking them here first only saves a wake-up.
  takeCommands();
  while (!stopped && waker.slice(seen, ENDLESS, TURN_MS) === FOR_WORKER) rareWake();
  if (stopped) return;
  // Once per slice (at most about TURN_MS apart): the kernel's drops in front of the packet
  // socket, which a busy loop reads only every few dozen wake-ups and an idle one never would.
  dev.packet.readKernelStats();
  loop.publish();
  setImmediate(run);
}

/** A wake-up the Waker hands back: a command on the control eventfd, or a side's fd gone. */
function rareWake(): void {
  const r = polls.revents;
  if (r[CONTROL] !== 0) {
    drainEventFd(init.control);
    takeCommands();
    if (stopped) return;
  }
  if (((r[TUN] | r[PACKET]) & K.POLLNVAL) !== 0 && (gone(TUN, 'tun') || gone(PACKET, 'packet'))) return;
  waker.serve();
}

/**
 * POLLNVAL: the side's fd is gone; it is given up (POLLERR and POLLHUP are left to the side's
 * read, which reports them as read errors). Returns true when it was.
 */
function gone(slot: number, side: Side): boolean {
  if ((polls.revents[slot] & K.POLLNVAL) === 0) return false;
  // The number is not ours any more: closing it at stop could close whatever holds it by then.
  const fd = polls.fds[slot] as number;
  (side === 'tun' ? dev.tun : dev.packet).forgetFd();
  sideClosed(side, sysError(Errno.EBADF, 'poll', `${side} fd ${fd} (datapath worker ${init.index})`), fd);
  return true;
}

function takeCommands(): void {
  for (let m = receiveMessageOnPort(port as NonNullable<typeof port>); m !== undefined; ) {
    onCommand(m.message as Command);
    if (stopped) return;
    m = receiveMessageOnPort(port as NonNullable<typeof port>);
  }
}

/** `forgotFd`: the side's fd number, when it is no longer the worker's (see gone). */
function sideClosed(side: Side, e: unknown, forgotFd?: number): void {
  polls.remove(side === 'tun' ? TUN : PACKET);
  // drainBoth reads both sides on every wake-up: it must skip this one from now on.
  if (side === 'tun') loop.tunClosed = true;
  else loop.packetClosed = true;
  report({ type: 'side-closed', side, error: errorData(e), forgotFd });
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
        stopped = true;
        dev.close();
        polls.close();
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
