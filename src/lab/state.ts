/**
 * What a lab leaves on the machine, and how it is removed. Each lab writes a state file in its run
 * directory (namespaces, PIDs, its /etc/netns folder, the process that owns it, whether it was kept)
 * each time that changes, so whoever finds the lab later can remove all of it: `clatd lab --destroy`
 * for labs kept by `--shell`, the orphan sweep for labs whose process died (SIGKILL, a crash), and
 * this process itself at exit and on SIGINT/SIGTERM/SIGHUP.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHILD_ENV } from './exec.js';

const DIR_PREFIX = 'clatd-lab-';
const STATE_FILE = 'state.json';

/** Where a lab keeps its files; `clatd lab --destroy TAG` finds a kept lab through its state file. */
export function runDir(tag: string): string {
  return join(tmpdir(), `${DIR_PREFIX}${tag}`);
}

/** The state file's content. */
export interface LabState {
  tag: string;
  /** The process that built the lab; when it is gone and the lab was not kept, the lab is an orphan. */
  ownerPid?: number;
  kept?: boolean;
  namespaces: string[];
  pids: number[];
  netnsEtc: string | null;
}

/**
 * The state of a lab this process builds. Every change is written at once (once the run directory
 * exists), so a lab interrupted half-built is still found and removed whole.
 */
export class StateFile {
  readonly namespaces: string[] = [];
  netnsEtc: string | null = null;
  kept = false;

  /** `pids` gives the PIDs of the lab's processes that run now. */
  constructor(
    readonly tag: string,
    private readonly pids: () => number[],
  ) {}

  addNamespace(ns: string): void {
    this.namespaces.push(ns);
    this.save();
  }

  setNetnsEtc(dir: string): void {
    this.netnsEtc = dir;
    this.save();
  }

  /** Marks the lab as kept on purpose (`clatd lab --shell`): no orphan sweep removes it. */
  markKept(): void {
    this.kept = true;
    this.save();
  }

  snapshot(): LabState {
    return {
      tag: this.tag,
      ownerPid: process.pid,
      kept: this.kept,
      namespaces: [...this.namespaces],
      pids: this.pids(),
      netnsEtc: this.netnsEtc,
    };
  }

  save(): void {
    const dir = runDir(this.tag);
    if (existsSync(dir)) writeFileSync(join(dir, STATE_FILE), JSON.stringify(this.snapshot()));
  }

  /** Removes the namespaces, the /etc/netns folder and the run directory; processes are the caller's. */
  removeAll(): void {
    removeLab({ ...this.snapshot(), pids: [] });
  }
}

/** The saved state of the lab tagged `tag`, or null when it has none (or it cannot be read). */
export function readState(tag: string): LabState | null {
  try {
    return JSON.parse(readFileSync(join(runDir(tag), STATE_FILE), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

/** Kills `s.pids`, deletes the namespaces, the lab's /etc/netns folder and its run directory. */
export function removeLab(s: LabState): void {
  for (const pid of s.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (const ns of s.namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore', env: CHILD_ENV });
  if (s.netnsEtc?.startsWith('/etc/netns/clatd-')) rmSync(s.netnsEtc, { recursive: true, force: true });
  rmSync(runDir(s.tag), { recursive: true, force: true });
}

/** Removes a lab kept by `clatd lab --shell`: kills its processes by PID, deletes its namespaces. */
export function destroyKeptLab(tag: string): boolean {
  const s = readState(tag);
  if (s === null) return false;
  // A PID is only killed when it still runs inside one of the lab's own namespaces (PIDs recycle).
  s.pids = s.pids.filter((pid) => {
    const r = spawnSync('ip', ['netns', 'identify', String(pid)], { encoding: 'utf8', env: CHILD_ENV });
    return r.status === 0 && s.namespaces.includes(r.stdout.trim());
  });
  removeLab(s);
  return true;
}

/** The tags of labs kept on this machine by `--shell` (with `all`, also those of live processes). */
export function keptLabs(all = false): string[] {
  return readdirSync(tmpdir())
    .filter((f) => f.startsWith(DIR_PREFIX) && existsSync(join(tmpdir(), f, STATE_FILE)))
    .map((f) => f.slice(DIR_PREFIX.length))
    .filter((tag) => all || readState(tag)?.kept === true);
}

/** Whether a lab was left by a process that is gone, and not kept on purpose. */
export function isOrphan(s: LabState, alive: (pid: number) => boolean = processAlive): boolean {
  return !s.kept && s.ownerPid !== undefined && !alive(s.ownerPid);
}

/**
 * Removes labs whose creating process died without cleaning up (SIGKILL, a crash) and that were
 * not kept on purpose by `clatd lab --shell`.
 */
export function sweepOrphans(log: (s: string) => void = () => {}): void {
  for (const tag of keptLabs(true)) {
    const s = readState(tag);
    if (s === null || !isOrphan(s)) continue;
    log(`lab: removing lab ${tag} left by process ${s.ownerPid}, which is gone`);
    try {
      destroyKeptLab(tag);
    } catch {}
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---- removal when this process ends ------------------------------------------------------------

interface Removable {
  destroySync(): void;
}

const live = new Set<Removable>();
let handlersInstalled = false;

/**
 * Removes `lab` when this process exits, and (with `onSignal`) on SIGINT/SIGTERM/SIGHUP. `clatd
 * lab` handles its signals itself, to stop clatd before removing the network.
 */
export function removeAtExit(lab: Removable, onSignal: boolean): void {
  live.add(lab);
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const l of live) l.destroySync();
  });
  if (!onSignal) return;
  for (const [sig, n] of [
    ['SIGINT', 2],
    ['SIGTERM', 15],
    ['SIGHUP', 1],
  ] as const) {
    // Whoever else listens (node:test does) decides about exiting; with nobody, this one exits.
    const alone = process.listenerCount(sig) === 0;
    process.on(sig, () => {
      for (const l of live) l.destroySync();
      if (alone) process.exit(128 + n);
    });
  }
}

/** Leaves `lab` in place at exit (it was removed already, or kept on purpose). */
export function forgetAtExit(lab: Removable): void {
  live.delete(lab);
}
