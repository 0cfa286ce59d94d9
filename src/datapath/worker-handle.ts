/**
 * One datapath worker thread as the main thread sees it: its command channel (messages plus an
 * eventfd to wake its poll), its readiness, stop and exit, and the fds it holds should it die.
 */
import { Worker } from 'node:worker_threads';
import { EventFd } from '../sys/eventfd.js';
import { closeFds } from './devices.js';
import { DatapathError } from './options.js';
import type { Command, ErrorData, Report, WorkerInit } from './protocol.js';

export function toError(e: ErrorData): DatapathError {
  return new DatapathError(e.message, e.code);
}

/** Datapath worker threads of this process that have not exited (all datapaths). */
let liveWorkers = 0;

/** Datapath worker threads running in this process now (for status: each holds a V8 isolate). */
export function workerThreads(): number {
  return liveWorkers;
}

/** One worker thread and what the main thread knows about it. */
export class WorkerHandle {
  readonly worker: Worker;
  /** Signalled after each command: the worker sleeps in poll(2), not on its message port. */
  readonly control: EventFd;
  fds: number[] = [];
  /** It reported `stopped`: its fds are closed. */
  clean = false;
  exited = false;
  exitCode = 0;
  crash: Error | undefined;
  readonly exit: Promise<void>;
  /**
   * Resolves when the worker reports `stopped` (its loop ended, its fds closed) or exits,
   * whichever comes first: all that stop() waits for (see Datapath.#stop).
   */
  readonly stopped: Promise<void>;
  readonly ready: Promise<void>;
  readonly #pending = new Map<number, (e: ErrorData | undefined) => void>();

  constructor(
    readonly index: number,
    init: Omit<WorkerInit, 'control'>,
    url: URL,
    onReport: (w: WorkerHandle, r: Report) => void,
  ) {
    // Devices handed over are closed by the main thread too should the worker die without a word.
    if (init.adopt) this.fds = [init.adopt.tun, init.adopt.packet, init.adopt.raw];
    this.control = EventFd.create();
    try {
      this.worker = new Worker(url, { workerData: { ...init, control: this.control.fd } satisfies WorkerInit });
    } catch (e) {
      this.control.close();
      throw e;
    }
    liveWorkers++;
    let ready!: () => void;
    let failed!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      ready = res;
      failed = rej;
    });
    // Handled by start(); never an unhandled rejection if start() already gave up on this worker.
    this.ready.catch(() => {});
    let stopped!: () => void;
    this.stopped = new Promise<void>((res) => {
      stopped = res;
    });
    this.worker.on('message', (r: Report) => {
      if (r.type === 'ready') {
        this.fds = r.fds;
        ready();
      } else if (r.type === 'failed') {
        this.fds = []; // it closed whatever it had, devices handed over included
        failed(toError(r.error));
      } else if (r.type === 'stopped') {
        this.clean = true;
        stopped();
      } else if (r.type === 'done') {
        const cb = this.#pending.get(r.id);
        this.#pending.delete(r.id);
        cb?.(r.error);
      } else onReport(this, r);
    });
    this.worker.on('error', (e) => {
      this.crash = e;
    });
    this.exit = new Promise<void>((res) => {
      this.worker.once('exit', (code) => {
        liveWorkers--;
        this.exited = true;
        this.exitCode = code;
        failed(this.crash ?? new DatapathError(`datapath worker ${index} exited (code ${code}) before it was ready`));
        for (const cb of this.#pending.values()) cb(undefined);
        this.#pending.clear();
        // Never signalled again (send() checks `exited`), so the number cannot reach a reused fd.
        this.control.close();
        stopped();
        res();
      });
    });
  }

  /** Sends a command; resolves with the worker's answer (undefined error when it exits first). */
  send(c: Command): Promise<ErrorData | undefined> {
    if (this.exited) return Promise.resolve(undefined);
    return new Promise((res) => {
      this.#pending.set(c.id, res);
      this.worker.postMessage(c);
      this.control.signal();
    });
  }
}

/** Closes a dead worker's fds once (they are process-wide; a closed number may be reused later). */
export function closeFdsOf(w: WorkerHandle): void {
  if (w.fds.length === 0) return;
  const fds = w.fds;
  w.fds = [];
  closeFds(fds);
}
