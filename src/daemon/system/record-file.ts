/**
 * The small JSON records clatd keeps beside its control socket of what it changed on the host
 * (host-settings.ts, taken-addresses.ts): written atomically (a temporary file renamed over it),
 * so that a crash never leaves half a record, and deleted once nothing is left in it.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes `value` as the record `file` (0600, its folder made when missing). */
export function saveRecord(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/**
 * After a give-back: deletes the record when `empty`, else writes what is left, best effort (the
 * record on disk then still holds these, and perhaps some given back now: harmless).
 */
export function keepRecord(file: string, value: unknown, empty: boolean): void {
  if (empty) {
    rmSync(file, { force: true });
    return;
  }
  try {
    saveRecord(file, value);
  } catch {
    // See above.
  }
}
