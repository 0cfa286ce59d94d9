/**
 * The limit on the ICMP errors a loop originates (RFC 4443 §2.4(f): an IPv6 node MUST limit the
 * errors it sends; the same for ICMPv4): one token bucket per direction, [4→6, 6→4], refilled at
 * `perSec` up to `burst`. What a bucket refuses is discarded and counted by the loop.
 *
 * A clock reading allocates its result (performance.now and Date.now return a fresh heap number),
 * so the clock is read once per batch that generates an error, not once per error: a batch takes
 * microseconds, so this is as exact. Nothing else allocates after construction.
 */

/**
 * Default limit on the ICMP errors one loop generates, per direction: the token bucket of Linux's
 * own ICMP output (net.ipv4.icmp_msgs_per_sec 1000, icmp_msgs_burst 50).
 */
export const DEFAULT_ICMP_ERRORS_PER_SEC = 1000;
export const DEFAULT_ICMP_ERROR_BURST = 50;

/** A generated ICMP error (not a hairpinned packet, which is also sent Back): ICMPv4, or ICMPv6 type < 128. */
export function isIcmpError(d: Uint8Array, off: number, len: number): boolean {
  if (len < 1) return false;
  const v = d[off] >>> 4;
  if (v === 4) return len >= 20 && d[off + 9] === 1;
  return len >= 41 && d[off + 6] === 58 && d[off + 40] < 128;
}

export class IcmpErrorBudget {
  /** False when the limit is off (a rate of 0). */
  readonly limited: boolean;
  /** Tokens left and when they were last topped up, per direction. */
  readonly #tokens = new Float64Array(2);
  readonly #toppedAt = new Float64Array(2);
  readonly #perMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  /** The clock as read for the current batch, and whether it was. */
  readonly #clock = new Float64Array(1);
  #clockRead = false;

  /** `now`: milliseconds on a monotonic clock. */
  constructor(perSec: number, burst: number, now: () => number) {
    if (!(perSec >= 0) || !(burst >= 1)) throw new RangeError(`bad ICMP error limit: ${perSec}/s, burst ${burst}`);
    this.limited = perSec > 0;
    this.#perMs = perSec / 1000;
    this.#burst = burst;
    this.#now = now;
    const t = now();
    this.#tokens.fill(burst);
    this.#toppedAt.fill(t);
  }

  /** A new batch begins: the next error reads the clock again. */
  newBatch(): void {
    this.#clockRead = false;
  }

  /** Takes one token from direction `dir`'s bucket (0: 4→6, 1: 6→4); false when it is empty. */
  take(dir: number): boolean {
    if (!this.#clockRead) {
      this.#clock[0] = this.#now();
      this.#clockRead = true;
    }
    const now = this.#clock[0];
    const tokens = Math.min(this.#burst, this.#tokens[dir] + (now - this.#toppedAt[dir]) * this.#perMs);
    this.#toppedAt[dir] = now;
    if (tokens < 1) {
      this.#tokens[dir] = tokens;
      return false;
    }
    this.#tokens[dir] = tokens - 1;
    return true;
  }
}
