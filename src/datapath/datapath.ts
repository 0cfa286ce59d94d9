/**
 * The datapath as the main thread sees it: N loops, each in its own worker thread (or one loop on
 * this thread with `workers: 0`), their counters, and their lifecycle.
 *
 *   Datapath.start() ──▶ running ◀──▶ paused
 *                          │             │
 *                          └──── stop() ─┴──▶ stopped (once stopped, always stopped)
 *
 * With `startOnInput`, start() opens every loop's devices on this thread and starts no worker
 * until one of them has input (or {@link Datapath.startWorkers}); until then commands only update
 * what the workers will start with. The workers take the devices over, with the packets queued on
 * them (test/daemon/lazy-workers-ns.test.ts sends one each way through workers not started yet).
 *
 * Control crosses to the workers as messages and applies between batches; packets never cross.
 * stop() is idempotent, resolves when every worker has ended its loop and closed its fds (or has
 * exited; a worker thread finishes exiting on its own afterwards), and closes the fds of a worker
 * that died without closing them itself.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { ClatdError } from '../core/errors.js';
import type { TranslatorConfig } from '../core/xlat/config.js';
import { Translator } from '../core/xlat/translator.js';
import { EventFd } from '../sys/eventfd.js';
import { PacketSocket } from '../sys/packet-socket.js';
import { type PollHandle, pollReadable } from '../sys/poll.js';
import { type CounterSnapshot, CounterWriter, createCounterBuffer, readCounters } from './counters.js';
import {
  type AdoptedDevices,
  closeFds,
  type DatapathDevices,
  type OpenedDevices,
  offloadOptions,
  openDevices,
  setQueueAttached,
  takeQueued,
} from './devices.js';
import { DatapathLoop, DEFAULT_ICMP_ERRORS_PER_SEC, type LoopIo, type Side } from './loop.js';
import { type Command, type ErrorData, type Report, TURN_MS, type WorkerInit } from './protocol.js';
import { warmUp } from './warmup.js';

/** The datapath could not start, or a worker refused a command. */
export class DatapathError extends ClatdError {
  /** The code of the underlying error (`ERR_CLATD_SYS`, `ERR_CLATD_CONFIG`...), when there was one. */
  readonly causeCode: string | undefined;
  constructor(message: string, causeCode?: string) {
    super(message, 'ERR_CLATD_DATAPATH');
    this.name = 'DatapathError';
    this.causeCode = causeCode;
  }
}

export interface DatapathOptions {
  /** The translator's configuration (validated here first: a ConfigError is thrown before anything starts). */
  translator: TranslatorConfig;
  /** Worker threads, one loop each. Default: os.availableParallelism(). 0: one loop on this thread. */
  workers?: number;
  /** Real devices, opened by each loop itself (see DatapathDevices). */
  devices?: DatapathDevices;
  /**
   * In-process mode only (`workers: 0`), instead of `devices`: ready PacketIo objects, e.g. the
   * test fakes. Polled by fd when `fd >= 0`, else through their `setReadableHandler`. The datapath
   * owns them: stop() closes them.
   */
  io?: LoopIo;
  /**
   * fds of the caller's own queues of the TUN (the one that keeps the device alive). Detached
   * (TUNSETQUEUE) while the datapath runs, so the kernel steers no flow to a queue nobody reads,
   * and attached again by stop().
   */
  detachQueues?: readonly number[];
  /** PACKET_FANOUT group id for the workers' packet sockets. Default: derived from the pid. */
  fanoutGroup?: number;
  /** Batch slot size (default: DEFAULT_STRIDE, room for any packet). */
  stride?: number;
  maxBatchesPerWake?: number;
  /**
   * Most ICMP errors the translator may send per second and direction, all loops together (each
   * loop gets its share); default {@link DEFAULT_ICMP_ERRORS_PER_SEC}, 0 for no limit.
   */
  icmpErrorsPerSec?: number;
  /**
   * Run the JIT warm-up (warmup.ts) in each loop before its devices open. Default: on with real
   * `devices`, off with ready `io` objects (tests).
   */
  warmUp?: boolean;
  /**
   * Start paused: the loops read and count input without translating until {@link Datapath.resume}
   * (the daemon starts the workers while DAD still checks the address they will send from).
   */
  paused?: boolean;
  /** How long stop() waits for a worker before terminating it. Default 3000 ms. */
  stopTimeoutMs?: number;
  /** The worker entry (default: ./worker.js beside this module). Tests use it to inject faults. */
  workerUrl?: URL;
  /** Things that happen on their own: a side given up, a worker that exited without being stopped. */
  onEvent?: (e: DatapathEvent) => void;
  /**
   * Start the worker threads only when a loop's devices have input (default: at once). Why: beside
   * the kernel fast path, which translates the plain packets, the workers may see nothing for
   * hours, and each idle worker holds about 15 MB (its V8 isolate; bench/README.md, "Memory").
   * start() opens every loop's devices here, synchronously (so a caller's namespace applies), and
   * polls them without reading; the packets that wake the workers wait in their queues while the
   * workers start (about 250 ms on the benchmark's busy 2-vCPU VM), and are served before the
   * warm-up (worker.ts). What a running loop would only count does not start them: Neighbor
   * Discovery for the CLAT address, and while paused any input (read and counted as paused, as a
   * paused loop does). A worker that fails to start then is reported as a `worker-exit` event.
   */
  startOnInput?: boolean;
}

/**
 * `worker` is the worker's index, or -1 for the in-process loop. `workers-started`: workers that
 * waited for input run now (`startOnInput`), `ms` after it came.
 */
export type DatapathEvent =
  | { type: 'side-closed'; worker: number; side: Side; error: DatapathError }
  | { type: 'worker-exit'; worker: number; exitCode: number; error: Error | undefined }
  | { type: 'workers-started'; workers: number; ms: number };

export type DatapathState = 'running' | 'paused' | 'stopped';

function toError(e: ErrorData): DatapathError {
  return new DatapathError(e.message, e.code);
}

/** Datapath worker threads of this process that have not exited (all datapaths). */
let liveWorkers = 0;

/** Datapath worker threads running in this process now (for status: each holds a V8 isolate). */
export function workerThreads(): number {
  return liveWorkers;
}

/** One worker thread and what the main thread knows about it. */
class WorkerHandle {
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

/** The loop of in-process mode and what it polls. */
interface InlineLoop {
  loop: DatapathLoop;
  io: LoopIo;
  dev: OpenedDevices | undefined;
  polls: Partial<Record<Side, PollHandle>>;
}

interface Readiness {
  setReadableHandler(h: (() => void) | undefined): void;
}

function hasReadiness(io: unknown): io is Readiness {
  return typeof (io as Partial<Readiness>).setReadableHandler === 'function';
}

/** What a datapath needs to start its workers later (see DatapathOptions.startOnInput). */
interface WorkerPlan {
  readonly o: DatapathOptions;
  readonly n: number;
  /** Updated by reconfigure() until the workers start: what they open and translate with. */
  devices: DatapathDevices;
  translator: TranslatorConfig;
  readonly fanoutGroup: number | undefined;
  readonly turns: SharedArrayBuffer;
}

/** Every loop's devices, opened on this thread and polled until the workers start. */
interface Waiting {
  readonly fds: AdoptedDevices[];
  readonly polls: PollHandle[];
}

export class Datapath {
  #state: DatapathState = 'running';
  readonly #buffers: SharedArrayBuffer[];
  readonly #workers: WorkerHandle[];
  readonly #inline: InlineLoop | undefined;
  readonly #detached: readonly number[];
  readonly #stopTimeoutMs: number;
  #nextId = 1;
  #queuesDetached = false;
  #started = false;
  #stopping: Promise<void> | undefined;
  #turnTimer: NodeJS.Timeout | undefined;
  #plan: WorkerPlan | undefined;
  #waiting: Waiting | undefined;
  #spawning: Promise<void> | undefined;
  /** What was taken off the loops' queues while the workers waited (takeQueued), per input direction. */
  readonly #waited = {
    '46': { packets: 0, bytes: 0, neighbor: 0, paused: 0 },
    '64': { packets: 0, bytes: 0, neighbor: 0, paused: 0 },
  };

  private constructor(
    buffers: SharedArrayBuffer[],
    workers: WorkerHandle[],
    inline: InlineLoop | undefined,
    detached: readonly number[],
    o: DatapathOptions,
  ) {
    this.#buffers = buffers;
    this.#workers = workers;
    this.#inline = inline;
    this.#detached = detached;
    this.#stopTimeoutMs = o.stopTimeoutMs ?? 3000;
    if (o.paused) this.#state = 'paused';
  }

  /**
   * Starts the loops; resolves once every one is polling (with `startOnInput`: once every loop's
   * devices are open), or rejects after cleaning up.
   */
  static async start(o: DatapathOptions): Promise<Datapath> {
    const translator = new Translator(o.translator); // validates: ConfigError before anything opens
    const n = o.workers ?? availableParallelism();
    if (!Number.isInteger(n) || n < 0) throw new DatapathError(`workers must be an integer >= 0, got ${n}`);
    if (n === 0) return Datapath.#startInline(o, translator);
    if (!o.devices)
      throw new DatapathError('worker threads need `devices` (in-memory `io` works only with workers: 0)');
    const buffers: SharedArrayBuffer[] = [];
    for (let i = 0; i < n; i++) buffers.push(createCounterBuffer());
    const dp = new Datapath(buffers, [], undefined, o.detachQueues ?? [], o);
    dp.#plan = {
      o,
      n,
      devices: o.devices,
      translator: o.translator,
      fanoutGroup: n > 1 ? (o.fanoutGroup ?? process.pid & 0xffff) : undefined,
      turns: new SharedArrayBuffer(4),
    };
    try {
      if (o.startOnInput) dp.#wait(dp.#plan);
      else await dp.#spawn(dp.#plan, undefined);
    } catch (e) {
      await dp.stop();
      if (e instanceof DatapathError) throw e;
      throw new DatapathError(`datapath start failed: ${(e as Error).message}`, (e as ClatdError).code);
    }
    return dp;
  }

  /**
   * Opens every loop's devices here and polls them; the first input starts the workers. Throws
   * with nothing left open.
   */
  #wait(plan: WorkerPlan): void {
    const waiting: Waiting = { fds: [], polls: [] };
    this.#waiting = waiting;
    for (let i = 0; i < plan.n; i++) {
      // Synchronously within start(): a caller may have moved this thread into a namespace for the call.
      const [tun, packet, raw] = openDevices(plan.devices, plan.fanoutGroup).fds as [number, number, number];
      waiting.fds.push({ tun, packet, raw });
    }
    // Input on any loop's queue starts them all (the kernel has spread the flows over them).
    const wake = () => void this.startWorkers();
    // A TUN packet is at most 64 KiB; counted whole as a loop would.
    const scratch = new Uint8Array(65536);
    const l2 = plan.devices.packet.linkHeaderLen ?? 14;
    const readable = (fd: number, linkHeaderLen: number | undefined) => () => {
      const t = takeQueued(fd, linkHeaderLen, this.#state === 'paused', scratch);
      const w = this.#waited;
      const dir = linkHeaderLen === undefined ? w['46'] : w['64'];
      dir.neighbor += t.neighbor;
      dir.paused += t.paused;
      dir.packets += t.neighbor + t.paused;
      dir.bytes += t.neighborBytes + t.pausedBytes;
      if (t.input) wake();
    };
    for (const d of waiting.fds) {
      waiting.polls.push(pollReadable(d.tun, `datapath TUN fd ${d.tun}`, readable(d.tun, undefined), wake));
      waiting.polls.push(pollReadable(d.packet, `datapath packet fd ${d.packet}`, readable(d.packet, l2), wake));
    }
    this.#detach();
  }

  /**
   * Starts the worker threads now, if they wait for input (`startOnInput`); resolves when they
   * run. Never throws: a worker that fails is reported as a `worker-exit` event.
   */
  startWorkers(): Promise<void> {
    const waiting = this.#waiting;
    const plan = this.#plan;
    if (waiting === undefined || plan === undefined) return this.#spawning ?? Promise.resolve();
    this.#waiting = undefined;
    for (const p of waiting.polls) p.stop();
    const t0 = performance.now();
    this.#spawning = this.#spawn(plan, waiting.fds).then(
      () => {
        if (!this.#stopping)
          plan.o.onEvent?.({ type: 'workers-started', workers: plan.n, ms: Math.round(performance.now() - t0) });
      },
      (e: unknown) => {
        if (this.#stopping) return;
        const err = e instanceof DatapathError ? e : new DatapathError((e as Error).message, (e as ClatdError).code);
        const dead = this.#workers.find((w) => w.exited || w.crash) ?? this.#workers[0];
        plan.o.onEvent?.({ type: 'worker-exit', worker: dead?.index ?? 0, exitCode: dead?.exitCode ?? 0, error: err });
      },
    );
    return this.#spawning;
  }

  /** Whether the worker threads wait for input (see `startOnInput`). */
  get waitingForInput(): boolean {
    return this.#waiting !== undefined;
  }

  /** Starts the workers (over `adopt`, the devices opened for them, when given) and waits until each one polls. */
  async #spawn(plan: WorkerPlan, adopt: AdoptedDevices[] | undefined): Promise<void> {
    const { o, n } = plan;
    const onReport = (w: WorkerHandle, r: Report) => {
      if (r.type === 'side-closed') {
        // A number the worker forgot is not closed for it should it crash (see closeFdsOf).
        if (r.forgotFd !== undefined) w.fds = w.fds.filter((fd) => fd !== r.forgotFd);
        o.onEvent?.({ type: 'side-closed', worker: w.index, side: r.side, error: toError(r.error) });
      }
    };
    const workers = this.#workers;
    for (let i = 0; i < n; i++) {
      const init: Omit<WorkerInit, 'control'> = {
        index: i,
        devices: plan.devices,
        translator: plan.translator,
        counters: this.#buffers[i] as SharedArrayBuffer,
        turns: plan.turns,
        fanoutGroup: plan.fanoutGroup,
        stride: o.stride,
        maxBatchesPerWake: o.maxBatchesPerWake,
        icmpErrorsPerSec: (o.icmpErrorsPerSec ?? DEFAULT_ICMP_ERRORS_PER_SEC) / n,
        warmUp: o.warmUp ?? o.devices !== undefined,
        paused: this.#state === 'paused',
        adopt: adopt?.[i],
      };
      let w: WorkerHandle;
      try {
        w = new WorkerHandle(i, init, o.workerUrl ?? new URL('./worker.js', import.meta.url), onReport);
      } catch (e) {
        // Not started: the devices opened for it and the ones after it are still ours alone.
        if (adopt) for (const d of adopt.slice(i)) closeFds([d.tun, d.packet, d.raw]);
        throw e;
      }
      workers.push(w);
      w.exit.then(() => {
        if (!w.clean) {
          // Died (or was terminated) with its devices open: close them here, never twice.
          closeFdsOf(w);
          // Reported only for a running datapath: a failure during start() rejects start() instead.
          if (this.#started && !this.#stopping)
            o.onEvent?.({ type: 'worker-exit', worker: i, exitCode: w.exitCode, error: w.crash });
        }
      });
    }
    await Promise.all(workers.map((w) => w.ready));
    if (this.#stopping) return; // stopped meanwhile (workers started on input): nothing more to start
    // A worker that was ready and died before the others were is a failed start too.
    const dead = workers.find((w) => w.exited);
    if (dead)
      throw new DatapathError(
        `datapath worker ${dead.index} exited during start (code ${dead.exitCode})${dead.crash ? `: ${dead.crash.message}` : ''}`,
      );
    this.#detach();
    this.#started = true;
    // The workers' clock (see TURN_MS); unref'd: it never keeps the process alive on its own.
    const moves = new Int32Array(plan.turns);
    this.#turnTimer = setInterval(() => Atomics.add(moves, 0, 1), TURN_MS).unref();
  }

  static async #startInline(o: DatapathOptions, translator: Translator): Promise<Datapath> {
    const buffer = createCounterBuffer();
    let dev: OpenedDevices | undefined;
    let io: LoopIo;
    if (o.io) io = o.io;
    else if (o.devices) {
      if (o.warmUp ?? true) warmUp(translator, o.translator);
      // Synchronously within start(): a caller may have moved this thread into a namespace for the call.
      dev = openDevices(o.devices, undefined);
      io = dev.io;
    } else throw new DatapathError('the datapath needs `devices` or (with workers: 0) `io`');
    const loop = new DatapathLoop(translator, io, new CounterWriter(buffer), {
      stride: o.stride,
      maxBatchesPerWake: o.maxBatchesPerWake,
      icmpErrorsPerSec: o.icmpErrorsPerSec,
      ...(dev ? offloadOptions(dev.tun) : {}),
    });
    loop.paused = o.paused ?? false;
    const inline: InlineLoop = { loop, io, dev, polls: {} };
    if (dev) loop.beforePublish = dev.syncCounters;
    const sideClosed = (side: Side, e: unknown) => {
      inline.polls[side]?.stop();
      if (side === 'tun' && hasReadiness(io.tun)) io.tun.setReadableHandler(undefined);
      if (side === 'packet' && hasReadiness(io.packet)) io.packet.setReadableHandler(undefined);
      const err = e instanceof Error ? e : new Error(String(e));
      o.onEvent?.({
        type: 'side-closed',
        worker: -1,
        side,
        error: new DatapathError(err.message, (err as ClatdError).code),
      });
    };
    loop.onClosed = sideClosed;
    try {
      for (const [side, pio, handler] of [
        ['tun', io.tun, loop.tunReadable],
        ['packet', io.packet, loop.packetReadable],
      ] as const) {
        if (pio.fd >= 0) {
          inline.polls[side] = pollReadable(pio.fd, `${side} fd ${pio.fd}`, handler, (e) => sideClosed(side, e));
        } else if (hasReadiness(pio)) pio.setReadableHandler(handler);
        else throw new DatapathError(`the ${side} PacketIo has no fd to poll and no setReadableHandler`);
      }
    } catch (e) {
      Datapath.#closeInline(inline);
      throw e;
    }
    const dp = new Datapath([buffer], [], inline, o.detachQueues ?? [], o);
    try {
      dp.#detach();
    } catch (e) {
      await dp.stop();
      throw e;
    }
    return dp;
  }

  static #closeInline(l: InlineLoop): void {
    l.polls.tun?.stop();
    l.polls.packet?.stop();
    for (const pio of [l.io.tun, l.io.packet]) if (hasReadiness(pio)) pio.setReadableHandler(undefined);
    if (l.dev) l.dev.close();
    else {
      l.io.tun.close();
      l.io.packet.close();
      l.io.raw.close();
    }
  }

  get state(): DatapathState {
    return this.#state;
  }

  /** Loops running: the worker count (0 while they wait for input), or 1 in process. */
  get loops(): number {
    return this.#inline ? 1 : this.#workers.length;
  }

  /**
   * A new translator configuration (new prefix, new CLAT address...) and, optionally, a new BPF
   * program for the packet sockets. Validated here first; each loop swaps it in between batches.
   */
  async reconfigure(config: TranslatorConfig, packetFilter?: Uint8Array): Promise<void> {
    this.#live('reconfigure');
    const t = new Translator(config);
    if (this.#inline) {
      this.#inline.loop.setTranslator(t);
      if (packetFilter) {
        const pkt = this.#inline.dev?.packet;
        if (!pkt) throw new DatapathError('reconfigure: a packet filter needs devices opened by the datapath');
        pkt.setFilter(packetFilter);
      }
      return;
    }
    const plan = this.#plan as WorkerPlan;
    // Workers started from now on open and translate with it; those started already are told.
    plan.translator = config;
    if (packetFilter) plan.devices = { ...plan.devices, packet: { ...plan.devices.packet, filter: packetFilter } };
    const waiting = this.#waiting;
    if (waiting) {
      // The sockets are the workers' to be: a wrapper here only sets their filter, and closes nothing.
      if (packetFilter)
        for (const d of waiting.fds) PacketSocket.overFd(d.packet, plan.devices.packet).setFilter(packetFilter);
      return;
    }
    await this.#command({ type: 'reconfigure', id: 0, translator: config, filter: packetFilter });
  }

  /** Input is read and counted as `paused`, not translated. */
  async pause(): Promise<void> {
    this.#live('pause');
    if (this.#inline) this.#inline.loop.paused = true;
    else if (!this.#waiting) await this.#command({ type: 'pause', id: 0 });
    this.#state = 'paused';
  }

  async resume(): Promise<void> {
    this.#live('resume');
    if (this.#inline) this.#inline.loop.paused = false;
    else if (!this.#waiting) await this.#command({ type: 'resume', id: 0 });
    this.#state = 'running';
  }

  /** Idempotent: every caller gets the same completion. Never throws. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  /** All loops' counters, summed. Keeps working after stop (the totals stay). */
  counters(): CounterSnapshot {
    // The in-process loop shares this thread: its low-rate counts (kernel drops) can be fresh.
    const inline = this.#inline;
    if (inline?.dev && this.#state !== 'stopped' && !this.#stopping) {
      inline.dev.packet.readKernelStats();
      inline.loop.publish();
    }
    const c = readCounters(this.#buffers);
    for (const dir of ['46', '64'] as const) {
      const w = this.#waited[dir];
      c[dir].packets += w.packets;
      c[dir].bytes += w.bytes;
      c[dir].neighbor += w.neighbor;
      c[dir].paused += w.paused;
    }
    return c;
  }

  /** Each loop's own counters (index = worker index), e.g. to see how flows spread. */
  loopCounters(): CounterSnapshot[] {
    return this.#buffers.map((b) => readCounters([b]));
  }

  async #stop(): Promise<void> {
    clearInterval(this.#turnTimer);
    if (this.#inline) Datapath.#closeInline(this.#inline);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting) {
      for (const p of waiting.polls) p.stop();
      for (const d of waiting.fds) closeFds([d.tun, d.packet, d.raw]);
    }
    await Promise.all(
      this.#workers.map(async (w) => {
        if (w.exited) return;
        void w.send({ type: 'stop', id: this.#nextId++ });
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<boolean>((res) => {
          timer = setTimeout(() => res(true), this.#stopTimeoutMs);
        });
        // Its report that the loop ended and its fds are closed is the end of what the datapath
        // owns. The thread's own exit comes later, once Node has torn down its environment and V8
        // isolate (under a flood, tens of milliseconds after the report, and more than the fd
        // closing itself): stop() does not wait for it, so the caller's teardown runs meanwhile.
        const tooLate = await Promise.race([w.stopped.then(() => false), late]);
        clearTimeout(timer);
        if (tooLate) {
          await w.worker.terminate();
          await w.exit;
        }
      }),
    );
    for (const w of this.#workers) if (!w.clean) closeFdsOf(w);
    this.#attach();
    this.#state = 'stopped';
  }

  async #command(c: Command): Promise<void> {
    const answers = await Promise.all(this.#workers.map((w) => w.send({ ...c, id: this.#nextId++ })));
    const bad = answers.find((a) => a !== undefined);
    if (bad) throw toError(bad);
  }

  #live(call: string): void {
    if (this.#state === 'stopped' || this.#stopping) throw new DatapathError(`${call}: the datapath is stopped`);
  }

  /** Throws SysError when a queue cannot be detached (not a multi-queue TUN fd?). */
  #detach(): void {
    if (this.#detached.length === 0 || this.#queuesDetached) return;
    this.#queuesDetached = true; // stop() re-attaches whatever was detached, even after a failure here
    for (const fd of this.#detached) setQueueAttached(fd, false);
  }

  #attach(): void {
    if (!this.#queuesDetached) return;
    this.#queuesDetached = false;
    for (const fd of this.#detached) {
      try {
        setQueueAttached(fd, true);
      } catch {
        // Closed by its owner already, or never detached: nothing to give back.
      }
    }
  }
}

/** Closes a dead worker's fds once (they are process-wide; a closed number may be reused later). */
function closeFdsOf(w: WorkerHandle): void {
  if (w.fds.length === 0) return;
  const fds = w.fds;
  w.fds = [];
  closeFds(fds);
}
