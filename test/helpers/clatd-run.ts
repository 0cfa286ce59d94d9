/**
 * `clatd run` as a process in a network namespace, for the namespace tests (test/daemon/*-ns and
 * netns tests): start it with JSON logs, wait for log lines, read its status, and check what it may
 * leave behind. The topology is the host/router veth pair of test/daemon/netns.test.ts:
 *
 *   host  veth-a 2001:db8:1::10/64, default via 2001:db8:1::1  <-> veth-b 2001:db8:1::1/64  router
 *                                                                   2001:db8:64::c000:201 on lo
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RA_SENDER_PY } from '../../src/lab/scripts.js';
import { type Netns, type VethPair, withVethPair } from './netns.js';
import { CLI } from './paths.js';

export const PREFIX = '2001:db8:64::/96';
export const SERVER6 = '2001:db8:64::c000:201';

export type LogLine = Record<string, unknown>;

export interface Running {
  child: ChildProcess;
  lines: LogLine[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  waitFor(pred: (l: LogLine) => boolean, ms?: number): Promise<LogLine>;
}

/**
 * `clatd run` in `ns` with JSON logs at debug level; its stderr lines are parsed into `lines`.
 * `node` flags go before the CLI (e.g. `--import` of test/helpers/no-tcx); `env` is added to ours;
 * `wrap` is a command that runs node (`setpriv …`, `unshare …`), which must exec it, so that the
 * child's pid stays node's.
 */
export function startClatd(
  ns: Netns,
  args: string[],
  node: string[] = [],
  env: NodeJS.ProcessEnv = {},
  wrap: string[] = [],
): Running {
  const argv = [...wrap, 'node', ...node, CLI, 'run', '--log-format', 'json', '--log-level', 'debug', ...args];
  const child = ns.spawn(argv[0], argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines: LogLine[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  let buf = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let l: LogLine;
      try {
        l = JSON.parse(text);
      } catch {
        l = { event: 'raw', msg: text };
      }
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.pred(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => {
      // CLATD_TEST_LOGS=<dir> keeps each run's log lines (JSON, one a line) for a look afterwards.
      const keep = process.env.CLATD_TEST_LOGS;
      if (keep) writeFileSync(join(keep, `clatd-${child.pid}.log`), lines.map((l) => JSON.stringify(l)).join('\n'));
      resolve({ code, signal, at: Date.now() });
    }),
  );
  return {
    child,
    lines,
    exited,
    waitFor(pred, ms = 10_000) {
      const found = lines.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          reject(new Error(`timed out; clatd said:\n${said(lines)}`));
        }, ms);
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
        void exited.then(() => {
          clearTimeout(t);
          reject(new Error(`clatd exited; it said:\n${said(lines)}`));
        });
      });
    },
  };
}

/** The log lines as `event: msg`, one a line (for assertion messages). */
export function said(lines: LogLine[]): string {
  return lines.map((l) => `${String(l.event)}: ${String(l.msg)}`).join('\n');
}

export const running = (l: LogLine) => l.event === 'state' && l.to === 'running';

/** What clatd may leave on the host: its TUN, routes tagged proto 199, nft tables named clatd-*. */
export function leftovers(ns: Netns): string[] {
  const out: string[] = [];
  if (ns.tryExec('ip', 'link', 'show', 'v4-veth-a').status === 0) out.push('link v4-veth-a');
  for (const fam of ['-4', '-6']) {
    const r = ns.exec('ip', fam, 'route', 'show', 'proto', '199').trim();
    if (r) out.push(`routes ${r}`);
  }
  const t = ns.exec('nft', 'list', 'tables').trim();
  if (/clatd-/.test(t)) out.push(`nft ${t}`);
  return out;
}

/** `clatd run ARGS` in `ns` (see startClatd), once it says it is running. */
export async function startRunning(ns: Netns, args: string[], node: string[] = []): Promise<Running> {
  const c = startClatd(ns, args, node);
  await c.waitFor(running);
  return c;
}

/** SIGTERM: clatd exits 0 and leaves nothing on the host (see leftovers). */
export async function stopLeavesNothing(ns: Netns, c: Running): Promise<void> {
  c.child.kill('SIGTERM');
  assert.equal((await c.exited).code, 0, said(c.lines));
  assert.deepEqual(leftovers(ns), []);
}

/** kill -9, as a crash does: clatd gets no chance to undo anything. */
export async function kill9(c: Running): Promise<void> {
  c.child.kill('SIGKILL');
  await c.exited;
}

/** UDP through the CLAT: an echo on the router's server address answers the host's IPv4 datagram. */
export async function assertUdpEcho(p: VethPair): Promise<void> {
  const echo = p.b.spawn(
    'python3',
    [
      '-c',
      `import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.bind(("${SERVER6}",7));s.settimeout(10);d,a=s.recvfrom(99);s.sendto(d,a)`,
    ],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 300));
  const udp = p.a.tryExec(
    'python3',
    '-c',
    'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(5);s.sendto(b"clat",("192.0.2.1",7));print(s.recv(99).decode())',
  );
  echo.kill();
  assert.equal(udp.stdout.trim(), 'clat', udp.stderr);
}

/** `clatd status --json` of the daemon whose control socket is `sock`, parsed. */
export function statusOf(ns: Netns, sock: string) {
  return JSON.parse(ns.exec('node', CLI, 'status', '--json', '--control', sock));
}

/**
 * IPv4 works through the CLAT: at least one of three pings is answered. The first may wait for the
 * router to resolve a new CLAT address, whose anycast NA the kernel delays by up to ~0.8 s.
 */
export function assertPings(ns: Netns): void {
  const r = ns.tryExec('ping', '-c', '3', '-i', '0.3', '-W', '3', '192.0.2.1');
  assert.match(r.stdout, / [123] received/, `${r.stdout}${r.stderr}`);
}

/** The router's server address for PREF64 and the host's IPv6 default route through the router. */
export function setUp(p: VethPair): void {
  p.b.exec('ip', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
  p.a.exec('ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:1::1', 'dev', 'veth-a');
}

/**
 * Router Advertisements with PREF64 from the router side (the lab's RA sender; Debian 12's radvd
 * cannot send PREF64), accepted on the host side. Rewrite `cfg` and send SIGHUP to change them.
 */
export function startRaSender(p: VethPair, dir: string, pref64LifetimeS: number) {
  const ra = {
    iface: 'veth-b',
    prefix: '2001:db8:1::',
    prefixLen: 64,
    routerLifetimeS: 600,
    intervalS: 4,
    rdnss: '2001:db8:1::1',
    pref64: PREFIX,
    pref64LifetimeS,
  };
  const cfg = join(dir, 'ra.json');
  writeFileSync(cfg, JSON.stringify(ra));
  writeFileSync(join(dir, 'ra.py'), RA_SENDER_PY);
  p.a.exec('sysctl', '-qw', 'net.ipv6.conf.veth-a.accept_ra=2');
  const sender = p.b.spawn('python3', [join(dir, 'ra.py'), cfg], { stdio: 'ignore' });
  return { ra, cfg, sender };
}

const VETH = { aAddr: '2001:db8:1::10/64', bAddr: '2001:db8:1::1/64', tag: 'clatd' };

/** The host/router veth pair of the drawing above and a temp folder for sockets and configs, both removed afterwards. */
export async function withHostAndRouter(fn: (p: VethPair, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'clatd-test-'));
  try {
    await withVethPair((p) => {
      // The router side forwards, as a router does: its Neighbor Advertisements then carry the
      // Router flag. Without it, the host's kernel takes an NA from the router as "router became
      // host" (RFC 4861 §7.2.5) and drops its RA default route until the next RA.
      p.b.exec('sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
      return fn(p, dir);
    }, VETH);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
