/**
 * Messages between the main thread's {@link Datapath} and its workers. Plain data only (structured
 * clone); nothing here runs per packet: the packet path never crosses threads.
 */
import type { TranslatorConfig } from '../core/xlat/config.js';
import type { AdoptedDevices, DatapathDevices } from './devices.js';

/**
 * How often a worker gives its event loop one turn (setImmediate), so V8's own tasks run and
 * terminate() takes effect even on an idle worker. Each turn wakes an idle worker (measured: about
 * 0.6 ms of CPU each on this VM), so not often; V8's tasks can wait, and terminate() is only the
 * fallback for a worker that ignores its stop command. The main thread keeps this time (see
 * {@link WorkerInit.turns}); an idle worker's poll times out after it too.
 */
export const TURN_MS = 2000;

/** `workerData` of a datapath worker. */
export interface WorkerInit {
  index: number;
  devices: DatapathDevices;
  translator: TranslatorConfig;
  counters: SharedArrayBuffer;
  /** PACKET_FANOUT group id shared by all workers, or undefined for a single loop. */
  fanoutGroup: number | undefined;
  stride: number | undefined;
  maxBatchesPerWake: number | undefined;
  /** This loop's share of the ICMP error rate limit (errors per second and direction; 0: none). */
  icmpErrorsPerSec: number;
  /**
   * An eventfd the main thread owns and signals after each command it posts: the worker sleeps in
   * poll(2), not on its message port, and takes messages with receiveMessageOnPort when woken.
   */
  control: number;
  /**
   * One Int32, shared by all workers, that the main thread moves on (Atomics.add) every
   * {@link TURN_MS}: a worker that sees it move ends its slice and gives its event loop a turn.
   */
  turns: SharedArrayBuffer;
  /** Run the JIT warm-up (warmup.ts) before opening the devices. */
  warmUp: boolean;
  /** Start paused (input read and counted as `paused`) until a `resume` command. */
  paused: boolean;
  /**
   * The devices the main thread opened for this loop before starting it (a datapath that starts
   * its workers on input): the worker uses them instead of opening its own, so the packets that
   * woke it wait there for it. They are the worker's from the start: it closes them, also when it
   * fails.
   */
  adopt?: AdoptedDevices;
}

/** Main → worker. Each carries an id that the worker's `done` answer repeats. */
export type Command =
  | { type: 'reconfigure'; id: number; translator: TranslatorConfig; filter: Uint8Array | undefined }
  | { type: 'pause'; id: number }
  | { type: 'resume'; id: number }
  | { type: 'stop'; id: number };

/** An error as data (ClatdError codes survive the crossing). */
export interface ErrorData {
  name: string;
  message: string;
  code: string | undefined;
}

/** Worker → main. */
export type Report =
  /** Devices open and polls running; `fds` for clean-up should the worker die. */
  | { type: 'ready'; fds: number[] }
  /** Opening the devices failed; the worker exits next. */
  | { type: 'failed'; error: ErrorData }
  | { type: 'done'; id: number; error: ErrorData | undefined }
  /** An input side was given up (closed device, endless read errors); the other side goes on. */
  | {
      type: 'side-closed';
      side: 'tun' | 'packet';
      error: ErrorData;
      /** The side's fd number when poll found it invalid: no longer the worker's, never to be closed for it. */
      forgotFd?: number;
    }
  /** Everything closed; the worker exits next. */
  | { type: 'stopped' };

export function errorData(e: unknown): ErrorData {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, message: e.message, code: typeof code === 'string' ? code : undefined };
  }
  return { name: 'Error', message: String(e), code: undefined };
}
