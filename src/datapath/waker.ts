/**
 * One wake-up of a datapath worker: sleep in its PollSet (TUN queue, packet socket, control
 * eventfd), then serve the sides that woke. What is rare (a command on the control eventfd, a
 * side's fd gone) goes back to the worker.
 *
 * A class of its own, apart from worker.ts, so that the warm-up can run it over stand-in devices
 * with traffic: V8 then optimises the very code that runs on every wake-up, with every branch of it
 * taken. Left in the worker, it was interpreted for as long as the worker ran (priming ran it only
 * inlined into its own loop, and an idle poll never takes the packet branches).
 */
import { K } from '../sys/addon.js';
import type { PollSet } from '../sys/poll.js';
import type { DatapathLoop } from './loop.js';

/** PollSet slots of a worker. */
export const TUN = 0;
export const PACKET = 1;
export const CONTROL = 2;

/** {@link Waker.slice}'s `maxWakes` for a slice bounded by turns alone (a small integer, as the warm-up's 1 is). */
export const ENDLESS = 1 << 30;

/**
 * Results of {@link Waker.wake} and {@link Waker.slice}. QUIET: nothing woke the poll before its
 * timeout (wake), or the slice is over (slice).
 */
export const QUIET = 0;
/** The control eventfd is readable or a side's fd is gone: the worker deals with it, then calls {@link Waker.serve}. */
export const FOR_WORKER = 1;
/** A side woke and was drained (wake only). */
export const SERVED = 2;

export class Waker {
  /**
   * @param turns One Int32 the main thread moves on (Atomics.add) when the worker owes its event
   *   loop a turn; see {@link slice}. The warm-up's is its own and never moves.
   */
  constructor(
    readonly polls: PollSet,
    readonly loop: DatapathLoop,
    readonly turns: Int32Array,
  ) {}

  /**
   * Sleeps at most `timeoutMs`; drains the sides that woke, or returns {@link FOR_WORKER}.
   *
   * It asks first without sleeping. Input waiting already means traffic: whole batches. A wake-up
   * after a sleep is most likely for one packet (a ping, a DNS query, the start of a flow), and it
   * reads the TUN once, for one packet: a TUN has no batch read, so the batch is a read(2) per
   * packet and one more that finds the queue empty — a system call on the packet's way, several
   * µs when cold. Were more queued, the next wake-up's first poll finds them at once. The extra
   * poll comes after the work, when the worker is about to sleep anyway (measured in
   * bench/README.md, "Since `d38884b`").
   */
  wake(timeoutMs: number): number {
    let light = false;
    if (this.polls.wait(0) === 0) {
      if (this.polls.wait(timeoutMs) === 0) return QUIET;
      light = true;
    }
    const r = this.polls.revents;
    if (r[CONTROL] !== 0 || (((r[TUN] as number) | (r[PACKET] as number)) & K.POLLNVAL) !== 0) return FOR_WORKER;
    this.serve(light);
    return SERVED;
  }

  /**
   * The worker's slice: wake-ups until one is for the worker ({@link FOR_WORKER}), or, returning
   * {@link QUIET}, until `turns[0]` is no longer `seen` (the main thread asks for an event-loop
   * turn), a poll sleeps `idleMs` with nothing to do, or `maxWakes` (the warm-up's bound; the
   * worker's is {@link ENDLESS}) are done. No clock here: Date.now() is a call into V8's runtime
   * that allocates its result, on every wake-up — ~2 % of a worker's samples in a ping round
   * trip, and garbage in a loop that otherwise makes none. The main thread keeps the time instead
   * (one timer for all workers), and an Atomics.load is one memory read.
   * Here and not in the worker's own loop so that the warm-up optimises it, where the worker would
   * interpret it all along.
   */
  slice(seen: number, maxWakes: number, idleMs: number): number {
    for (let w = 0; w < maxWakes; w++) {
      if (Atomics.load(this.turns, 0) !== seen) return QUIET;
      const r = this.wake(idleMs);
      if (r !== SERVED) return r;
    }
    return QUIET;
  }

  /** Drains both sides when either woke, the one that woke first (see DatapathLoop.drainBoth). */
  serve(light = false): void {
    const r = this.polls.revents;
    if (r[TUN] !== 0 || r[PACKET] !== 0) this.loop.drainBoth(r[TUN] !== 0, light);
  }
}
