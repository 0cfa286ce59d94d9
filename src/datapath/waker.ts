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

/** {@link Waker.slice}'s `maxWakes` for a slice bounded by time alone (a small integer, as the warm-up's 1 is). */
export const ENDLESS = 1 << 30;

/** {@link Waker.wake} results. */
export const QUIET = 0;
/** The control eventfd is readable or a side's fd is gone: the worker deals with it, then calls {@link Waker.serve}. */
export const FOR_WORKER = 1;

export class Waker {
  constructor(
    readonly polls: PollSet,
    readonly loop: DatapathLoop,
  ) {}

  /** Sleeps at most `timeoutMs`; drains the sides that woke, or returns {@link FOR_WORKER}. */
  wake(timeoutMs: number): number {
    if (this.polls.wait(timeoutMs) === 0) return QUIET;
    const r = this.polls.revents;
    if (r[CONTROL] !== 0 || (((r[TUN] as number) | (r[PACKET] as number)) & K.POLLNVAL) !== 0) return FOR_WORKER;
    this.serve();
    return QUIET;
  }

  /**
   * The worker's slice: wake-ups until `endMs` (Date.now) or `maxWakes` of them (the warm-up's
   * bound; the worker's is {@link ENDLESS}), or until one is for the worker. Returns
   * {@link FOR_WORKER}, or {@link QUIET} when the slice is over; a clock that steps back before
   * `startMs` ends it too (Date.now is one V8 builtin; performance.now runs a lazy getter and a
   * brand check first, more code to bring back after an idle gap). Here and not in the worker's
   * own loop for the same reason as {@link wake}: so that the warm-up optimises it, where the
   * worker would interpret it all along.
   */
  slice(startMs: number, endMs: number, maxWakes: number): number {
    for (let w = 0; w < maxWakes; w++) {
      const now = Date.now();
      if (now >= endMs || now < startMs) return QUIET;
      if (this.wake(endMs - now) === FOR_WORKER) return FOR_WORKER;
    }
    return QUIET;
  }

  /** Drains both sides when either woke, the one that woke first (see DatapathLoop.drainBoth). */
  serve(): void {
    const r = this.polls.revents;
    if (r[TUN] !== 0 || r[PACKET] !== 0) this.loop.drainBoth(r[TUN] !== 0);
  }
}
