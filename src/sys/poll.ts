/**
 * Readiness callbacks on the calling thread's own event loop (uv_poll), for the main thread or a
 * worker. Level-triggered: the callback runs again on the next loop turn while the fd stays
 * readable, so a handler that reads a bounded batch and returns lets other fds and timers in.
 *
 * Never spins: a poll error (status < 0) stops the poll and reports through `onError`; a callback
 * that throws stops it too (the exception goes to 'uncaughtException'). A stopped poll keeps no
 * event loop alive, so a worker whose polls are stopped can exit.
 */
import { K, type NativePollHandle, native } from './addon.js';
import { bindArrays } from './binding.js';
import { type SysError, sysError } from './errors.js';

export interface PollHandle {
  readonly fd: number;
  readonly active: boolean;
  /** Idempotent; safe inside the callback. */
  stop(): void;
}

/**
 * The active polls of this thread by fd. A poll must stop before its fd closes: libuv keys its
 * watchers by fd number, so a stale watcher on a closed (and reused) number would swallow the
 * events of the next fd with that number. {@link closeFd} enforces the order.
 */
const active = new Map<number, Set<Poll>>();

class Poll implements PollHandle {
  readonly fd: number;
  #handle: NativePollHandle | undefined;

  constructor(fd: number, handle: NativePollHandle) {
    this.fd = fd;
    this.#handle = handle;
    const set = active.get(fd);
    if (set === undefined) active.set(fd, new Set([this]));
    else set.add(this);
  }

  get active(): boolean {
    return this.#handle !== undefined;
  }

  stop(): void {
    if (this.#handle === undefined) return;
    native.pollStop(this.#handle);
    this.#handle = undefined;
    const set = active.get(this.fd);
    set?.delete(this);
    if (set?.size === 0) active.delete(this.fd);
  }
}

/** Stops this thread's polls on `fd`, then closes it. What every device's close() uses. */
export function closeFd(fd: number): void {
  const set = active.get(fd);
  if (set !== undefined) for (const p of [...set]) p.stop();
  native.close(fd);
}

/**
 * Calls `onReadable()` whenever `fd` is readable. `what` names the fd in errors ("TUN v4-eth0").
 * `onError` receives poll failures (the poll is already stopped); without it they are thrown from
 * the loop.
 */
export function pollReadable(
  fd: number,
  what: string,
  onReadable: () => void,
  onError?: (err: SysError) => void,
): PollHandle {
  let poll: Poll | undefined;
  const r = native.pollStart(fd, K.UV_READABLE, (status: number) => {
    if (status < 0) {
      poll?.stop();
      const err = sysError(-status, 'uv_poll', what);
      if (onError) onError(err);
      else throw err;
      return;
    }
    try {
      onReadable();
    } catch (e) {
      poll?.stop(); // the shim has stopped it already; keep `active` truthful
      throw e;
    }
  });
  if (typeof r === 'number') throw sysError(-r, 'uv_poll_start', what);
  poll = new Poll(fd, r);
  return poll;
}

/**
 * A fixed set of fds that one thread sleeps on with a single blocking poll(2) (a datapath worker's
 * own loop; never the main thread, whose event loop must not block). Slot i is `fds[i]`; a removed
 * slot is -1, which poll(2) skips.
 */
export class PollSet {
  readonly fds: Int32Array;
  /** After {@link wait}: each slot's revents (POLLIN, POLLERR, POLLHUP, POLLNVAL), 0 when quiet. */
  readonly revents: Int32Array;
  /** The shim's set [fds, revents] (see binding.ts). */
  #id: number;

  constructor(
    fds: readonly number[],
    readonly what: string,
  ) {
    this.fds = Int32Array.from(fds);
    this.revents = new Int32Array(fds.length);
    this.#id = bindArrays(what, this.fds, this.revents);
  }

  /** Sleeps until a slot has events or `timeoutMs` passes: the count of slots with events (0: none). */
  wait(timeoutMs: number): number {
    const r = native.pollMany(this.#id, timeoutMs);
    if (r < 0) throw sysError(-r, 'poll', this.what);
    return r;
  }

  /** Stops watching slot `i` (idempotent). */
  remove(i: number): void {
    this.fds[i] = -1;
    this.revents[i] = 0;
  }

  /** Lets the shim drop the arrays; a wait after this throws. Idempotent. */
  close(): void {
    if (this.#id >= 0) native.unbind(this.#id);
    this.#id = -1;
  }
}
