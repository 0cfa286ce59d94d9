/**
 * The datapath's supervisor: starts it, hands it new parameters, pauses and resumes it, and
 * replaces it when it fails on its own (a worker crashed, a device side was given up) — within a
 * restart budget: one failure more than {@link MAX_DP_RESTARTS} within {@link DP_RESTART_WINDOW_MS}
 * ends the daemon with an error, for the service manager to restart it whole, instead of looping.
 *
 * Each datapath started has a generation; a failure report of an older one is stale and ignored.
 * Counters of every datapath retired stay in the totals.
 */
import type { Logger } from './log.js';
import { type NextHopChoice, NOT_RESOLVED } from './next-hop.js';
import type {
  Counters,
  DatapathHandle,
  DirectionCounters,
  Ipv4Side,
  PlumbingPort,
  UplinkSide,
  XlatParams,
} from './ports.js';

export const MAX_DP_RESTARTS = 5;
export const DP_RESTART_WINDOW_MS = 600_000;

export function emptyCounters(): Counters {
  const d = (): DirectionCounters => ({ packets: 0, bytes: 0, drops: {} });
  return { '46': d(), '64': d() };
}

/**
 * Sums two counter snapshots leaf by leaf (every number at the same path), so whatever the
 * datapath counts (per-direction totals, drop reasons, I/O errors) survives a datapath restart.
 */
export function addCounters(a: Counters, b: Counters): Counters {
  const sum = (x: unknown, y: unknown): unknown => {
    if (typeof x === 'number' || typeof y === 'number') return (Number(x) || 0) + (Number(y) || 0);
    const out: Record<string, unknown> = {};
    const xo = (x ?? {}) as Record<string, unknown>;
    const yo = (y ?? {}) as Record<string, unknown>;
    for (const k of new Set([...Object.keys(xo), ...Object.keys(yo)])) out[k] = sum(xo[k], yo[k]);
    return out;
  };
  return sum(a, b) as Counters;
}

export interface SupervisorOptions {
  plumbing: PlumbingPort;
  log: Logger;
  now: () => number;
  /** A failure was reported: the reconciler should run (it calls {@link DatapathSupervisor.replaceFailed}). */
  onFailure: () => void;
  /** Logs a restart as a live change. */
  onRestart: (why: string) => void;
  /** The restart budget is spent: the daemon must end with this reason. */
  onGiveUp: (why: string) => void;
}

export class DatapathSupervisor {
  readonly #o: SupervisorOptions;
  #dp: DatapathHandle | undefined;
  #nextHop: NextHopChoice = NOT_RESOLVED;
  /** Bumped for each datapath started or released: a failure report of an older one is ignored. */
  #gen = 0;
  /** Why the current datapath failed, until it is replaced. */
  #failure: string | undefined;
  /** When the datapath was restarted after failures (within the window). */
  #restarts: number[] = [];
  #counterBase: Counters = emptyCounters();
  /** True once the daemon is stopping: late reports are only logged. */
  #closing = false;

  constructor(o: SupervisorOptions) {
    this.#o = o;
  }

  get running(): boolean {
    return this.#dp !== undefined;
  }

  /** Why the current datapath failed, or undefined while it is healthy (or absent). */
  get failure(): string | undefined {
    return this.#failure;
  }

  /**
   * Starts a datapath (not yet the supervisor's: see {@link adopt}). `paused`: it reads and counts
   * its input and sends nothing until resumed.
   */
  start(uplink: UplinkSide, ipv4: Ipv4Side, params: XlatParams, paused = false): Promise<DatapathHandle> {
    const gen = ++this.#gen;
    this.#failure = undefined;
    return this.#o.plumbing.startDatapath({
      uplink,
      ipv4,
      params,
      paused,
      onFailure: (why) => this.#report(gen, why),
    });
  }

  /** Starts a datapath and makes it the supervised one. */
  async run(uplink: UplinkSide, ipv4: Ipv4Side, params: XlatParams): Promise<void> {
    this.#dp = await this.start(uplink, ipv4, params);
    this.#nextHop = NOT_RESOLVED;
  }

  /** Makes a datapath from {@link start} the supervised one; when `stale` (the daemon is stopping) it is stopped instead. */
  async adopt(dp: DatapathHandle, stale: boolean): Promise<void> {
    if (stale) await dp.stop();
    else {
      this.#dp = dp;
      // A new datapath starts with the kernel's lookup: its next hop is resolved for it anew.
      this.#nextHop = NOT_RESOLVED;
    }
  }

  /** The fast path's next hop as last set (next-hop.ts). */
  get nextHop(): NextHopChoice {
    return this.#nextHop;
  }

  /** Whether the running datapath has a kernel fast path, whose next hop is worth resolving. */
  get fastPath(): boolean {
    return this.#dp?.nextHop !== undefined;
  }

  /** Hands the next hop to the running datapath's fast path (a map write), if it has one. */
  setNextHop(c: NextHopChoice): void {
    this.#nextHop = c;
    this.#dp?.nextHop?.(c);
  }

  #report(gen: number, why: string): void {
    const { log } = this.#o;
    if (gen !== this.#gen || this.#closing) {
      log.debug('datapath', `a replaced datapath reported: ${why}`);
      return;
    }
    // The first report names the cause; the rest (other workers) usually follow from it. A warning:
    // the datapath is replaced; only a spent restart budget is fatal (an error, from the daemon).
    if (this.#failure === undefined) log.warn('datapath', why);
    else log.debug('datapath', why);
    this.#failure ??= why;
    this.#o.onFailure();
  }

  /**
   * Hands new parameters to the running datapath, if any. Never rejects: a datapath that refuses
   * them (a worker failing to swap its packet filter, or one stopping under us) may have some
   * workers on the new parameters and some on the old, so it is marked failed and the next step
   * replaces it by a fresh one started with the new parameters: all loops agree again.
   */
  async reconfigure(params: XlatParams): Promise<void> {
    const dp = this.#dp;
    if (!dp) return;
    const gen = this.#gen;
    // New addresses or prefix may take another route (source-based policy routing): the next
    // step resolves the next hop for them.
    if (this.#nextHop.address !== undefined) this.setNextHop({ why: 'addresses changed; next hop not resolved yet' });
    try {
      await dp.reconfigure(params);
    } catch (e) {
      if (gen !== this.#gen || this.#closing) return; // replaced or stopping already
      this.#failure ??= `reconfiguring it failed: ${(e as Error).message}`;
      this.#o.onFailure();
    }
  }

  async pause(): Promise<void> {
    await this.#dp?.pause();
  }

  async resume(): Promise<void> {
    await this.#dp?.resume();
  }

  /**
   * Counts one restart against the budget. False when the budget is spent: `onGiveUp` has been
   * called and nothing is to be restarted.
   */
  mayRestart(why: string): boolean {
    const now = this.#o.now();
    this.#restarts = this.#restarts.filter((t) => now - t < DP_RESTART_WINDOW_MS);
    if (this.#restarts.length >= MAX_DP_RESTARTS) {
      this.#o.onGiveUp(
        `the datapath failed ${MAX_DP_RESTARTS + 1} times within ${DP_RESTART_WINDOW_MS / 60_000} minutes; last: ${why}`,
      );
      return false;
    }
    this.#restarts.push(now);
    this.#o.onRestart(why);
    return true;
  }

  /** Stops a datapath that reported a failure, so the caller starts a fresh one; false when the budget is spent. */
  async dropFailed(): Promise<boolean> {
    if (!this.mayRestart(this.#failure ?? 'failed')) return false;
    await this.stop();
    return true;
  }

  /** Stops the supervised datapath (if any); its counts stay in the totals. */
  async stop(): Promise<void> {
    const dp = this.#release();
    if (dp) await this.#retire(dp);
  }

  /** Stops for good: later failure reports are only logged. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.stop();
  }

  #release(): DatapathHandle | undefined {
    const dp = this.#dp;
    this.#dp = undefined;
    this.#gen++;
    this.#failure = undefined;
    return dp;
  }

  async #retire(dp: DatapathHandle): Promise<void> {
    this.#counterBase = addCounters(this.#counterBase, dp.counters());
    await dp.stop();
  }

  /** Totals of every datapath so far, the running one included. */
  counters(): Counters {
    return this.#dp ? addCounters(this.#counterBase, this.#dp.counters()) : this.#counterBase;
  }

  /** The kernel fast path's state in words, or null without a datapath. */
  offload(): string | null {
    return this.#dp?.offload?.() ?? null;
  }
}
