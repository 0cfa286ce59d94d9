/**
 * The reconciler's loop: `kick()` marks the host as possibly changed; one step runs at a time, and
 * another follows as long as kicks arrived meanwhile. Around it:
 *
 * - a step every 30 s even without events: some changes send none (a path MTU learnt from an
 *   RA's MTU option, a DNS64 answer that ages), and a lost netlink event must not strand it;
 * - after a failed step, a retry whose delay doubles with each failure in a row (2 s up to 60 s),
 *   and kicks wait for it: what a failed bring-up itself created and removed sends netlink events,
 *   which would otherwise retry it at once — a new address, a DAD probe on the wire, log lines,
 *   many times a second. The same error is logged once, then with its count at each doubling.
 */
import type { Logger } from './log.js';
import type { Clock } from './ports.js';

export const RETRY_MS = 2_000;
export const RETRY_MAX_MS = 60_000;
export const PERIODIC_MS = 30_000;

export class StepLoop {
  #dirty = false;
  #loop?: Promise<void>;
  #closed = false;
  #retryTimer: unknown;
  #periodic: unknown;
  #failures = { message: '', count: 0 };
  /** No step before this time (ms): the back-off after a failed step. */
  #notBefore = 0;
  /** Steps that threw. */
  errors = 0;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly step: () => Promise<void>,
  ) {}

  /** Marks the host as possibly changed; the next step runs as soon as the current one ends. */
  kick(): void {
    if (this.#closed) return;
    this.#dirty = true;
    if (!this.#loop) {
      this.#loop = this.#run().finally(() => {
        this.#loop = undefined;
      });
    }
  }

  /** A step after `ms`, whatever else happens (one such timer at a time: the latest wins). */
  retryIn(ms: number): void {
    if (this.#closed) return;
    if (this.#retryTimer !== undefined) this.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = this.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      this.kick();
    }, ms);
  }

  /** The step running now, if any (resolves when it ends, never rejects). */
  get running(): Promise<void> | undefined {
    return this.#loop;
  }

  /** Waits until no step is running and none is pending (for tests). */
  async settled(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  /** No more steps or timers; a running step ends on its own. */
  close(): void {
    this.#closed = true;
    for (const t of [this.#retryTimer, this.#periodic]) if (t !== undefined) this.clock.clearTimeout(t);
    this.#retryTimer = undefined;
    this.#periodic = undefined;
  }

  async #run(): Promise<void> {
    while (this.#dirty && !this.#closed) {
      if (this.clock.now() < this.#notBefore) break;
      this.#dirty = false;
      try {
        await this.step();
        this.#failures = { message: '', count: 0 };
      } catch (e) {
        if (this.#closed) return;
        this.errors++;
        const delay = this.#failed(e as Error);
        this.#notBefore = this.clock.now() + delay;
        this.retryIn(delay);
      }
    }
    this.#armPeriodic();
  }

  #failed(e: Error): number {
    const f = this.#failures;
    f.count = f.message === e.message ? f.count + 1 : 1;
    f.message = e.message;
    const delay = Math.min(RETRY_MS * 2 ** (f.count - 1), RETRY_MAX_MS);
    if (f.count === 1) this.log.error('step', e.message, { code: (e as { code?: string }).code });
    else if (delay < RETRY_MAX_MS || f.count % 10 === 0)
      this.log.error('step', `${e.message} (${f.count} times in a row; next try in ${delay / 1000} s)`);
    return delay;
  }

  #armPeriodic(): void {
    if (this.#closed) return;
    if (this.#periodic !== undefined) this.clock.clearTimeout(this.#periodic);
    this.#periodic = this.clock.setTimeout(() => {
      this.#periodic = undefined;
      this.kick();
    }, PERIODIC_MS);
  }
}
