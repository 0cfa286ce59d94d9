/** Polling helpers for namespace tests (small sleeps, hard deadline). */
import { setTimeout as sleep } from 'node:timers/promises';

/** Calls `fn` every few milliseconds until it returns true; throws after `ms` with `what`. */
export async function until(what: string, fn: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Waits for a child process to exit and returns its exit code. */
export function exited(child: {
  once(ev: 'exit', cb: (code: number | null) => void): unknown;
}): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
