/**
 * Running the lab's tools: one-shot commands (optionally inside a network namespace) and long-lived
 * processes that the lab started and therefore kills by PID. This is lab tooling, not the daemon's
 * path: shelling out to `ip`, `sysctl` and friends is fine here.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { ClatdError } from '../core/errors.js';

/** A lab command that failed: names the command line and carries its output. */
export class LabError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_LAB');
    this.name = 'LabError';
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Resolve with the exit code instead of rejecting on a non-zero exit. */
  allowFail?: boolean;
  timeoutMs?: number;
  input?: string;
}

/**
 * PATH for the lab's children: the system directories first, because the daemons and `ip` live in
 * sbin folders that a non-login root shell (or CI) may not have on its PATH.
 */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const CHILD_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: `${SYSTEM_PATH}${process.env.PATH ? `:${process.env.PATH}` : ''}`,
};

/** The argv prefix that runs a command inside namespace `ns` (the root namespace when null). */
export function inNs(ns: string | null, argv: string[]): string[] {
  return ns === null ? argv : ['ip', 'netns', 'exec', ns, ...argv];
}

/** Runs `argv` to completion and returns its output; rejects with a LabError on failure. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20, encoding: 'utf8', env: CHILD_ENV },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        if (err && !opts.allowFail) {
          const why = err.killed ? 'timed out' : `exit ${String(err.code ?? err.signal)}`;
          reject(new LabError(`lab: \`${argv.join(' ')}\` failed (${why}): ${(stderr || stdout).trim()}`));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** A long-lived process the lab started; `stop()` kills exactly this PID. */
export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  /** Where its stdout and stderr go. */
  readonly logFile: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private done = false;

  constructor(name: string, child: ChildProcess, logFile: string) {
    this.name = name;
    this.child = child;
    this.logFile = logFile;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      });
      child.on('error', (e) => {
        appendFileSync(logFile, `\nspawn error: ${e.message}\n`);
        this.done = true;
        resolve({ code: -1, signal: null });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return !this.done;
  }

  /** Everything it wrote so far. */
  output(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Calls `onLine` for each line it writes from now on (and, with `fromStart`, those before). */
  follow(onLine: (line: string) => void, fromStart = true): () => void {
    let off = fromStart ? 0 : fileSize(this.logFile);
    let partial = '';
    const chunk = Buffer.alloc(64 * 1024);
    const poll = () => {
      let fd: number;
      try {
        fd = openSync(this.logFile, 'r');
      } catch {
        return;
      }
      try {
        for (let n = readSync(fd, chunk, 0, chunk.length, off); n > 0; n = readSync(fd, chunk, 0, chunk.length, off)) {
          off += n;
          partial += chunk.toString('utf8', 0, n);
        }
      } finally {
        closeSync(fd);
      }
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    };
    const t = setInterval(poll, 100);
    return () => {
      clearInterval(t);
      poll();
    };
  }

  /** Sends `signal` and waits up to `graceMs` for the exit, then SIGKILLs the same PID. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 2000): Promise<void> {
    if (this.done) return;
    this.child.kill(signal);
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    if ((await Promise.race([this.exited, timer])) === 'timeout' && !this.done) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/**
 * Starts `argv` in the background, in its own process group (so a terminal's Ctrl-C reaches only
 * the lab, which stops things in order), writing its output to `logFile`.
 */
export function start(name: string, argv: string[], logFile: string): Proc {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, fd], detached: true, env: CHILD_ENV });
    return new Proc(name, child, logFile);
  } finally {
    closeSync(fd);
  }
}

function fileSize(f: string): number {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `stepMs` until it returns a truthy value or `timeoutMs` passes (then null). */
export async function waitFor<T>(
  check: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs: number,
  stepMs = 100,
): Promise<T | null> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as T;
    if (Date.now() >= end) return null;
    await sleep(stepMs);
  }
}
