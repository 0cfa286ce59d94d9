/**
 * What the lab's parts (network building, router services, the clatd driver) use of the lab: its
 * names and run directory, a log, and running things in its namespaces. `Lab` is the one
 * implementation; the parts take this interface so that each needs only these, not each other.
 */
import type { Proc, RunOptions, RunResult } from './exec.js';
import type { LabNames } from './topology.js';

export interface LabContext {
  readonly names: LabNames;
  /** The run directory: configs, logs and captures of this lab. */
  readonly dir: string;
  /** Prints one set-up step (a no-op unless the lab was asked to log). */
  readonly log: (line: string) => void;
  /** Runs `argv` in namespace `ns` (null: the root namespace). */
  exec(ns: string | null, argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** Starts a long-lived process in `ns`, logged to the run directory and killed when the lab goes. */
  spawn(name: string, ns: string | null, argv: string[]): Proc;
  /** The running process started under `name`, if any. */
  findProc(name: string): Proc | undefined;
  /** Stops every process started under `name`. */
  stopProc(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** A probe (src/lab/probe.ts) run in `ns`; returns its JSON result. */
  probe(ns: string, args: string[], timeoutMs?: number): Promise<Record<string, unknown>>;
}
