/**
 * `npm run bench:memory` (root): what the daemon holds in memory, reproducibly. Runs `clatd run`
 * in the namespace pair of the namespace tests (test/helpers/clatd-run.ts: host with clatd, router
 * with the server 192.0.2.1 as 2001:db8:64::c000:201), as the clatd bin runs it (its Node flags),
 * and prints for each mode:
 *
 * - idle: VmRSS and threads of the daemon `IDLE_SECS` after IPv4 works, and the status' own
 *   figures (`memory` in `clatd status --json`);
 * - flood: VmRSS after `FLOOD_SECS` of 64-byte UDP from the host to the server (iperf3 -b 0, the
 *   flood of `npm run bench`), and the packets the workers and the kernel translated;
 * - workers: with the fast path, the workers have not started; one packet that only they translate
 *   (an echo request with an IPv4 option) starts them: VmRSS `IDLE_SECS` later, and how long the
 *   start took (the daemon's log);
 * - anonymous memory (smaps_rollup) beside each RSS: what only this process holds; the rest is
 *   mapped files (Node's code), shared and clean.
 *
 *   MODES="fast workers" IDLE_SECS=10 FLOOD_SECS=60 REPS=1 NODE_FLAGS=<default: the daemon's>
 *   CLATD_ARGS="" SMAPS_DIR=<keep the idle daemon's smaps there> node dist/bench/memory.js [--json]
 *
 * `fast` is clatd as a user gets it (the kernel fast path on), `workers` the same with
 * `--offload off` (every packet through the worker path). NODE_FLAGS (space separated) replaces
 * the daemon's Node flags, e.g. to measure a V8 flag before it is made the default.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DAEMON_NODE_FLAGS } from '../src/options/node-flags.js';
import {
  type Running,
  running,
  SERVER6,
  setUp,
  startClatd,
  statusOf,
  withHostAndRouter,
} from '../test/helpers/clatd-run.js';
import type { Netns } from '../test/helpers/netns.js';

const env = (k: string, d: string) => process.env[k] ?? d;
const MODES = env('MODES', 'fast workers').split(/\s+/).filter(Boolean);
const IDLE_SECS = Number(env('IDLE_SECS', '10'));
const FLOOD_SECS = Number(env('FLOOD_SECS', '60'));
const REPS = Number(env('REPS', '1'));
const NODE_FLAGS =
  process.env.NODE_FLAGS === undefined ? [...DAEMON_NODE_FLAGS] : process.env.NODE_FLAGS.split(/\s+/).filter(Boolean);
const CLATD_ARGS = env('CLATD_ARGS', '').split(/\s+/).filter(Boolean);
const JSON_OUT = process.argv.includes('--json');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ProcMemory {
  rssKb: number;
  threads: number;
  anonKb: number;
  fileKb: number;
}

function procMemory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (text: string, name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  return {
    rssKb: field(status, 'VmRSS'),
    threads: field(status, 'Threads'),
    anonKb: field(rollup, 'Anonymous'),
    fileKb: field(status, 'RssFile'),
  };
}

interface Result {
  mode: string;
  rep: number;
  idle: ProcMemory;
  /** `memory` of `clatd status --json` when idle, if the build reports it. */
  status: unknown;
  flood: ProcMemory | null;
  floodPps: number;
  /** Fast path only: after one packet started the workers, and `IDLE_SECS` more. */
  workers: ProcMemory | null;
  /** How long the workers took to start (warm-up included), from the daemon's log. */
  workersStartMs: number;
  /** Packets the workers translated, 4→6, and the kernel's share. */
  translated46: number;
  offloaded46: number;
}

/** The daemon's pid: startClatd's child is node itself (ns.spawn execs it). */
function pidOf(c: Running): number {
  const pid = (c.child as ChildProcess).pid;
  if (pid === undefined) throw new Error('clatd has no pid');
  return pid;
}

function flood(host: Netns, router: Netns, secs: number): number {
  const server = router.spawn('iperf3', ['-s', '-1', '-B', SERVER6], { stdio: 'ignore' });
  try {
    spawnSync('sleep', ['0.3']);
    const r = spawnSync(
      'ip',
      ['netns', 'exec', host.name, 'iperf3', '-c', '192.0.2.1', '-u', '-l', '64', '-b', '0', '-t', String(secs), '-J'],
      { encoding: 'utf8', timeout: (secs + 20) * 1000 },
    );
    const sum = (JSON.parse(r.stdout || '{}') as { end?: { sum?: { packets: number; lost_packets: number } } }).end
      ?.sum;
    return sum ? (sum.packets - sum.lost_packets) / secs : Number.NaN;
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}

async function measure(mode: string, rep: number): Promise<Result> {
  let result: Result | undefined;
  await withHostAndRouter(async (p, dir) => {
    setUp(p);
    const sock = join(dir, 'c.sock');
    const args = ['--pref64', '2001:db8:64::/96', '--control', sock, '--dad', 'off', '--log-level', 'info'];
    if (mode === 'workers') args.push('--offload', 'off');
    const c = startClatd(p.a, [...args, ...CLATD_ARGS], NODE_FLAGS);
    try {
      await c.waitFor(running, 30_000);
      const ok = p.a.tryExec('ping', '-c', '3', '-i', '0.3', '-W', '3', '192.0.2.1');
      if (!/ [123] received/.test(ok.stdout)) throw new Error(`${mode}: no ping through clatd: ${ok.stdout}`);
      await sleep(IDLE_SECS * 1000);
      const pid = pidOf(c);
      const idle = procMemory(pid);
      // SMAPS_DIR=<dir>: keep the idle daemon's /proc/PID/smaps, to see which mappings hold the pages.
      if (process.env.SMAPS_DIR)
        writeFileSync(join(process.env.SMAPS_DIR, `smaps-${mode}-${rep}`), readFileSync(`/proc/${pid}/smaps`));
      const st = statusOf(p.a, sock);
      let floodMem: ProcMemory | null = null;
      let pps = Number.NaN;
      if (FLOOD_SECS > 0) {
        pps = flood(p.a, p.b, FLOOD_SECS);
        floodMem = procMemory(pid);
      }
      const after = statusOf(p.a, sock);
      // With the fast path the workers have not started: one packet only they translate (an
      // IPv4 option) starts them; what the process holds once they run and idle again.
      let workersMem: ProcMemory | null = null;
      let startMs = Number.NaN;
      if (mode === 'fast' && after.memory?.workerThreads === 0) {
        p.a.tryExec('ping', '-c', '1', '-R', '-W', '20', '192.0.2.1');
        const line = await c.waitFor((l) => /started in (\d+) ms/.test(String(l.msg)), 30_000);
        startMs = Number(/started in (\d+) ms/.exec(String(line.msg))?.[1]);
        await sleep(IDLE_SECS * 1000);
        workersMem = procMemory(pid);
      }
      result = {
        mode,
        rep,
        idle,
        status: st.memory ?? null,
        flood: floodMem,
        floodPps: pps,
        workers: workersMem,
        workersStartMs: startMs,
        translated46: after.counters['46'].translated ?? 0,
        offloaded46: after.counters['46'].offloaded ?? 0,
      };
    } finally {
      c.child.kill('SIGTERM');
      await c.exited;
    }
  });
  if (!result) throw new Error(`${mode}: no result`);
  return result;
}

const mb = (kb: number | undefined) => (kb === undefined ? '–' : (kb / 1024).toFixed(1));

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:memory builds network namespaces: run it as root');
  const rows: Result[] = [];
  for (let rep = 1; rep <= REPS; rep++) {
    for (const mode of MODES) {
      const r = await measure(mode, rep);
      rows.push(r);
      process.stderr.write(`[memory] ${JSON.stringify(r)}\n`);
    }
  }
  if (JSON_OUT) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const lines = [
    `node flags: ${NODE_FLAGS.join(' ') || '(none)'}${CLATD_ARGS.length ? `; clatd ${CLATD_ARGS.join(' ')}` : ''}`,
    '| mode | rep | idle RSS MB | threads | idle anon MB | flood RSS MB | flood anon MB | flood threads | flood pps | translated by workers | by kernel | workers started: RSS MB | anon MB | threads | start ms |',
    '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |',
  ];
  for (const r of rows) {
    const f = r.flood;
    lines.push(
      `| ${r.mode} | ${r.rep} | ${mb(r.idle.rssKb)} | ${r.idle.threads} | ${mb(r.idle.anonKb)} | ${mb(f?.rssKb)} | ${mb(f?.anonKb)} | ${f?.threads ?? '–'} | ${r.floodPps.toFixed(0)} | ${r.translated46 - r.offloaded46} | ${r.offloaded46} | ${mb(r.workers?.rssKb)} | ${mb(r.workers?.anonKb)} | ${r.workers?.threads ?? '–'} | ${Number.isFinite(r.workersStartMs) ? r.workersStartMs : '–'} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench:memory: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
