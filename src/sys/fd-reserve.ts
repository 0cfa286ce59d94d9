/**
 * Spare file descriptors, held from start-up so that clean-up never fails for lack of fds. Once
 * slow control clients used up the fd limit, `nft` could not be started (EMFILE) and the daemon's
 * teardown left its nftables table and proxy_delay=0 behind.
 *
 * A few fds on /dev/null are opened at start. A step that fails with EMFILE or ENFILE closes them,
 * tries once more with that many free, and opens them again; the steps that use this are
 * synchronous (spawnSync of `nft`, a /proc/sys write), so no other code on this thread can take
 * the freed fds in between, and the child's fds are closed again by the time they are reopened.
 *
 * Raising the soft RLIMIT_NOFILE to the hard limit would not help: Node already does that at start
 * (a process started with 64:4096 runs with 4096:4096), and the attack reached the hard limit.
 */
import { closeSync, openSync } from 'node:fs';

/**
 * Measured on Node 20: `spawnSync('nft', …)` with stdin, stdout and stderr piped needs 13 free fds
 * (its own event loop, a socket pair per pipe, libuv's exec-status and signal pipes); a /proc/sys
 * write needs 1. 32 leaves room for other libuv versions at a negligible share of any fd limit.
 */
export const RESERVED_FDS = 32;

const held: number[] = [];

/** Opens /dev/null until `n` fds are held (fewer if the limit is reached first); returns how many are. */
export function reserveFds(n = RESERVED_FDS): number {
  while (held.length < n) {
    try {
      held.push(openSync('/dev/null', 'r'));
    } catch {
      break;
    }
  }
  return held.length;
}

/** Closes every held fd; returns how many there were. */
export function releaseFds(): number {
  const n = held.length;
  for (const fd of held.splice(0)) closeSync(fd);
  return n;
}

/** How many spare fds are held now. */
export function reservedFds(): number {
  return held.length;
}

/** Whether `e` is a failure for lack of fds: EMFILE (this process) or ENFILE (the system). */
export function isFdShortage(e: unknown): boolean {
  if (e === null || typeof e !== 'object') return false;
  const { code, errnoName } = e as { code?: unknown; errnoName?: unknown };
  return [code, errnoName].some((c) => c === 'EMFILE' || c === 'ENFILE');
}

/**
 * Runs `attempt` (synchronous); if it throws for lack of fds, or `failedForFds` says its result
 * is such a failure, runs it again with the spare fds closed, then reserves them again. Without
 * spare fds it is one plain attempt.
 */
export function withSpareFds<T>(attempt: () => T, failedForFds: (r: T) => boolean = () => false): T {
  try {
    const r = attempt();
    if (held.length === 0 || !failedForFds(r)) return r;
  } catch (e) {
    if (held.length === 0 || !isFdShortage(e)) throw e;
  }
  const n = releaseFds();
  try {
    return attempt();
  } finally {
    reserveFds(n);
  }
}
