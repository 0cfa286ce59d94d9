/** The datapath's options, events and error, as its callers see them (datapath.ts). */
import { ClatdError } from '../core/errors.js';
import type { TranslatorConfig } from '../core/xlat/config.js';
import type { DatapathDevices } from './devices.js';
import type { Side } from './loop.js';
import type { LoopIo } from './loop-io.js';

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
