/**
 * Crash trials: `clatd run` killed with SIGKILL at a chosen moment, then started again, in one
 * host/router namespace pair (test/helpers/clatd-run.ts). After each trial the host must look
 * exactly as it did before any clatd ran: the next start removes what the crashed one left, and its
 * own clean exit removes the rest.
 *
 *   host  veth-a 2001:db8:1::10/64 + SLAAC, default from the RA  <->  veth-b 2001:db8:1::1/64  router
 *         clatd (PREF64 from the RA), control dir in a temp folder      ra-sender: PREF64 A or B
 *                                                                        A::c000:201, B::c000:201 on lo
 *
 * A trial: start clatd with random flags (--dad strict|off, --offload auto|off, classic tc filters
 * forced or not), optionally drive an event (uplink down/up, a PREF64 change, SIGHUP), SIGKILL it
 * after a random delay inside the trial's phase, start a new clatd, wait for `running`, ping
 * 192.0.2.1 through it, stop it with SIGTERM (exit 0), and compare the host with the first snapshot.
 *
 * Used by test/daemon/crash-ns.test.ts (a few trials, one per phase) and bench/crash-fuzz.ts
 * (`npm run fuzz:crash`, 100 and more).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  assertPings,
  type LogLine,
  type Running,
  running,
  SERVER6,
  said,
  startClatd,
  startRaSender,
  withHostAndRouter,
} from './clatd-run.js';
import type { Netns, VethPair } from './netns.js';
import { CLI, ROOT } from './paths.js';

export const PHASES = ['startup', 'dad', 'running', 'flap', 'pref64', 'sighup', 'shutdown'] as const;
export type Phase = (typeof PHASES)[number];

const PREF_A = '2001:db8:64::/96';
const PREF_B = '2001:db8:65::/96';
const SERVER6_B = '2001:db8:65::c000:201';
const NO_TCX = ['--import', join(ROOT, 'dist', 'test', 'helpers', 'no-tcx.js')];

export interface TrialResult {
  n: number;
  phase: Phase;
  flags: string[];
  /** The daemon's last state transition before the kill (`to`), or `-` when none was logged. */
  killedIn: string;
  /** How long after the phase's anchor the kill was sent (ms). */
  delayMs: number;
  /** Whether the SIGKILL found the process still alive (a shutdown may have ended first). */
  killed: boolean;
  /** What the next start removed, from its `recovery` lines. */
  recovered: string[];
  ok: boolean;
  error?: string;
  ms: number;
}

/** Deterministic PRNG (mulberry32), so a failing trial can be replayed with its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Lifetimes and expiry timers count down, and the kernel lists some things in the order they came
 * back (addresses after a flap): neither is state clatd could leave behind. Lines sorted, trimmed.
 */
const timers = (s: string) =>
  s
    .replace(/\b(expires|valid_lft|preferred_lft) \S+/g, '$1 T')
    .replace(/\bage \S+/g, 'age T')
    .replace(/ {2,}/g, ' ')
    .split('\n')
    .map((l) => l.trimEnd())
    .sort()
    .join('\n');

/**
 * What clatd may touch on the host, as text per item: the nft ruleset, routes of every table and
 * the policy rules, links (TUNs included) and addresses, neighbor proxies, the uplink's qdiscs and
 * classic tc filters, the IPv4/IPv6 sysctls of every interface, and the files in the control dir.
 * (The kernel fast path's tcx links belong to the process's file descriptors; nothing is pinned.)
 */
export function snapshot(ns: Netns, controlDir: string): Record<string, string> {
  const x = (...a: string[]) => timers(ns.exec(...(a as [string, ...string[]])).trim());
  return {
    nft: x('nft', 'list', 'ruleset'),
    routes4: x('ip', '-4', 'route', 'show', 'table', 'all'),
    routes6: x('ip', '-6', 'route', 'show', 'table', 'all'),
    rules4: x('ip', '-4', 'rule', 'show'),
    rules6: x('ip', '-6', 'rule', 'show'),
    links: x('ip', '-o', 'link', 'show')
      .split('\n')
      .map((l) => l.replace(/\\\s+link\/.*$/, ''))
      .join('\n'),
    addrs: x('ip', '-o', 'addr', 'show'),
    neighProxy: x('ip', '-6', 'neigh', 'show', 'proxy'),
    qdiscs: x('tc', 'qdisc', 'show', 'dev', 'veth-a'),
    tcIngress: x('tc', 'filter', 'show', 'dev', 'veth-a', 'ingress'),
    tcEgress: x('tc', 'filter', 'show', 'dev', 'veth-a', 'egress'),
    sysctl: timers(
      ns
        .sh("sysctl -a 2>/dev/null | grep -E '^net\\.(ipv4|ipv6)\\.(conf|neigh)\\.|^net\\.ipv4\\.ip_forward' || true")
        .trim(),
    ),
    controlDir: readdirSync(controlDir).sort().join('\n'),
  };
}

/** The items of `now` that differ from `base`, with the lines each side has that the other has not. */
export function diff(base: Record<string, string>, now: Record<string, string>): string[] {
  const out: string[] = [];
  for (const k of Object.keys(base)) {
    if (base[k] === now[k]) continue;
    const a = new Set(base[k].split('\n'));
    const b = new Set((now[k] ?? '').split('\n'));
    const gone = [...a].filter((l) => !b.has(l)).map((l) => `  - ${l}`);
    const added = [...b].filter((l) => !a.has(l)).map((l) => `  + ${l}`);
    out.push(`${k}:\n${[...gone, ...added].join('\n')}`);
  }
  return out;
}

const alive = (c: Running) => c.child.exitCode === null && c.child.signalCode === null;
const dadProbing = (l: LogLine) => l.event === 'dad' && /^probing /.test(String(l.msg));

/** The uplink down and up again with its static address (the kernel flushed it). */
const FLAP = 'ip link set veth-a down; ip link set veth-a up; ip addr replace 2001:db8:1::10/64 dev veth-a nodad';

export interface TrialOptions {
  /** Trials to run; trial n's phase is `phases[n % phases.length]` unless `random`. */
  trials: number;
  seed?: number;
  phases?: readonly Phase[];
  /** Pick each trial's phase at random instead of in turn. */
  random?: boolean;
  /** Called after each trial (progress). */
  onTrial?: (r: TrialResult) => void;
}

/** Runs the trials in one namespace pair; never throws for a failed trial (see `ok`). */
export async function runCrashTrials(o: TrialOptions): Promise<{ results: TrialResult[]; baseline: string[] }> {
  const rand = rng(o.seed ?? 1);
  const phases = o.phases ?? PHASES;
  const results: TrialResult[] = [];
  let baselineText: string[] = [];
  await withHostAndRouter(async (p, dir) => {
    p.b.exec('ip', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
    p.b.exec('ip', 'addr', 'add', `${SERVER6_B}/128`, 'dev', 'lo');
    const ra = startRaSender(p, dir, 600);
    const control = join(dir, 'control');
    mkdirSync(control);
    const sock = join(control, 'veth-a.sock');
    // The RA's default route and SLAAC address before the first snapshot.
    await waitFor(() => /default/.test(p.a.exec('ip', '-6', 'route', 'show', 'default')), 10_000, 'the RA');
    await sleep(300);
    const base = snapshot(p.a, control);
    baselineText = Object.entries(base).map(([k, v]) => `${k}: ${v.split('\n').length} lines`);
    let pref = PREF_A;
    for (let n = 0; n < o.trials; n++) {
      const phase = o.random ? phases[Math.floor(rand() * phases.length)] : phases[n % phases.length];
      const t0 = Date.now();
      const r: TrialResult = {
        n,
        phase,
        flags: [],
        killedIn: '-',
        delayMs: 0,
        killed: false,
        recovered: [],
        ok: false,
        ms: 0,
      };
      try {
        pref = await trial(p, ra, sock, control, base, phase, rand, r, pref);
        r.ok = true;
      } catch (e) {
        r.error = (e as Error).message;
        // Put the host back for the next trial as a user would: `clatd cleanup`, the link up.
        p.a.tryExec('bash', '-c', `${FLAP}`);
        p.a.tryExec('node', CLI, 'cleanup', '--interface', 'veth-a', '--control', sock);
      }
      r.ms = Date.now() - t0;
      results.push(r);
      o.onTrial?.(r);
    }
    ra.sender.kill('SIGTERM');
  });
  return { results, baseline: baselineText };
}

async function waitFor(fn: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function trial(
  p: VethPair,
  ra: ReturnType<typeof startRaSender>,
  sock: string,
  control: string,
  base: Record<string, string>,
  phase: Phase,
  rand: () => number,
  r: TrialResult,
  pref: string,
): Promise<string> {
  const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)];
  const dad = phase === 'dad' ? 'strict' : pick(['strict', 'off']);
  const offload = pick(['auto', 'off']);
  const classicTc = offload === 'auto' && rand() < 0.5;
  r.flags = ['--dad', dad, '--offload', offload, ...(classicTc ? ['no-tcx'] : [])];
  const args = ['--interface', 'veth-a', '--control', sock, '--dad', dad, '--offload', offload];
  const within = (lo: number, hi: number) => Math.round(lo + rand() * (hi - lo));

  const first = startClatd(p.a, args, classicTc ? NO_TCX : []);
  try {
    return await crashAndRestart(p, ra, control, base, phase, r, pref, first, args, classicTc, within);
  } finally {
    if (alive(first)) {
      first.child.kill('SIGKILL');
      await first.exited;
    }
  }
}

async function crashAndRestart(
  p: VethPair,
  ra: ReturnType<typeof startRaSender>,
  control: string,
  base: Record<string, string>,
  phase: Phase,
  r: TrialResult,
  pref: string,
  first: Running,
  args: string[],
  classicTc: boolean,
  within: (lo: number, hi: number) => number,
): Promise<string> {
  let delay = 0;
  let flapped = false;
  const newPref = pref === PREF_A ? PREF_B : PREF_A;
  switch (phase) {
    case 'startup':
      // From the spawn to about when DAD (or, with --dad off, the datapath) begins.
      delay = within(0, 500);
      break;
    case 'dad':
      await first.waitFor(dadProbing, 15_000);
      delay = within(0, 1100);
      break;
    case 'running':
      await first.waitFor(running, 15_000);
      delay = within(0, 300);
      break;
    case 'flap':
      await first.waitFor(running, 15_000);
      p.a.sh(FLAP);
      flapped = true;
      delay = within(0, 2000);
      break;
    case 'pref64':
      await first.waitFor(running, 15_000);
      setRaPrefix(ra, newPref);
      delay = within(0, 1500);
      break;
    case 'sighup':
      await first.waitFor(running, 15_000);
      first.child.kill('SIGHUP');
      delay = within(0, 400);
      break;
    case 'shutdown':
      await first.waitFor(running, 15_000);
      first.child.kill('SIGTERM');
      delay = within(0, 40);
      break;
  }
  r.delayMs = delay;
  await sleep(delay);
  r.killedIn = String(first.lines.filter((l) => l.event === 'state').at(-1)?.to ?? '-');
  r.killed = alive(first);
  first.child.kill('SIGKILL');
  await first.exited;
  if (phase === 'pref64') pref = newPref;
  if (flapped) await waitFor(() => /default/.test(p.a.exec('ip', '-6', 'route', 'show', 'default')), 15_000, 'the RA');

  // The next start: it must come up, translate, and leave nothing when stopped.
  const second = startClatd(p.a, args, classicTc ? NO_TCX : []);
  try {
    await second.waitFor(running, 20_000);
    r.recovered = second.lines
      .filter((l) => l.event === 'recovery')
      .map((l) => String(l.msg).replace(/^removed leftover of an earlier clatd: /, ''));
    assertPings(p.a);
  } finally {
    if (alive(second)) second.child.kill('SIGTERM');
    // A clatd that does not stop is killed, so that the next trial can start.
    const t = setTimeout(() => alive(second) && second.child.kill('SIGKILL'), 10_000);
    await second.exited;
    clearTimeout(t);
  }
  const ex = await second.exited;
  if (ex.code !== 0) throw new Error(`the second clatd exited with ${ex.code ?? ex.signal}:\n${said(second.lines)}`);
  // What the kernel does on its own after a flap (the RA's route and SLAAC address back) may take
  // a moment; what clatd left does not go away by waiting.
  let d: string[] = [];
  for (let i = 0; i < 30; i++) {
    d = diff(base, snapshot(p.a, control));
    if (d.length === 0) return pref;
    await sleep(200);
  }
  throw new Error(`the host differs from the clean snapshot:\n${d.join('\n')}`);
}

/** The RA sender's PREF64 becomes `prefix` (its config rewritten, then SIGHUP). */
function setRaPrefix(ra: ReturnType<typeof startRaSender>, prefix: string): void {
  ra.ra.pref64 = prefix;
  writeFileSync(ra.cfg, JSON.stringify(ra.ra));
  ra.sender.kill('SIGHUP');
}

/** Trials per phase: run, passed, failed, and how many kills found the process already gone. */
export function summary(results: TrialResult[]): string {
  const rows = [['phase', 'trials', 'passed', 'failed', 'killed alive', 'killed in (state)']];
  for (const ph of PHASES) {
    const rs = results.filter((r) => r.phase === ph);
    if (rs.length === 0) continue;
    const states = new Map<string, number>();
    for (const r of rs) states.set(r.killedIn, (states.get(r.killedIn) ?? 0) + 1);
    rows.push([
      ph,
      String(rs.length),
      String(rs.filter((r) => r.ok).length),
      String(rs.filter((r) => !r.ok).length),
      String(rs.filter((r) => r.killed).length),
      [...states].map(([k, v]) => `${k} ${v}`).join(', '),
    ]);
  }
  const all = results;
  rows.push([
    'all',
    String(all.length),
    String(all.filter((r) => r.ok).length),
    String(all.filter((r) => !r.ok).length),
    String(all.filter((r) => r.killed).length),
    '',
  ]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => `| ${r.map((c, i) => c.padEnd(w[i])).join(' | ')} |`).join('\n');
}
