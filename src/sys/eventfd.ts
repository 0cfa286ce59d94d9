/**
 * An eventfd (eventfd(2)): a counter in the kernel that a poll can wait on. clatd uses it to wake a
 * worker's loop from another thread (the fd number is valid process-wide) and to stop it.
 */
import { native } from './addon.js';
import { ClosedError, check, Errno, sysError } from './errors.js';
import { closeFd } from './poll.js';

export class EventFd {
  #fd: number;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** A new non-blocking eventfd with counter `initial`. */
  static create(initial = 0): EventFd {
    return new EventFd(check(native.eventfd(initial, 0), 'eventfd'));
  }

  get fd(): number {
    return this.#fd;
  }

  /** Adds `n` (default 1) to the counter, making the fd readable. Safe from any thread. */
  signal(n = 1): void {
    if (this.#fd < 0) throw new ClosedError('eventfd');
    const r = native.eventfdWrite(this.#fd, n);
    if (r < 0) throw sysError(-r, 'write', 'eventfd');
  }

  /** Reads and resets the counter: its value, or 0 when nothing was signalled. */
  drain(): number {
    if (this.#fd < 0) throw new ClosedError('eventfd');
    return drainEventFd(this.#fd);
  }

  /** Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
  }
}

/**
 * Adds to the counter of an eventfd known only by number (e.g. a worker's, handed over in
 * workerData). Returns false when the fd is closed.
 */
export function signalEventFd(fd: number, n = 1): boolean {
  const r = native.eventfdWrite(fd, n);
  if (r === -Errno.EBADF) return false;
  if (r < 0) throw sysError(-r, 'write', `eventfd ${fd}`);
  return true;
}

/** Reads and resets the counter of an eventfd known only by number: its value, or 0 when unsignalled. */
export function drainEventFd(fd: number): number {
  const r = native.eventfdRead(fd);
  if (r === -Errno.EAGAIN) return 0;
  if (r < 0) throw sysError(-r, 'read', `eventfd ${fd}`);
  return r;
}
