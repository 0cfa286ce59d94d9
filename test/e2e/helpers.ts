/**
 * Shared set-up of the end-to-end tests: one lab per test file (built in `before`, always removed
 * in `after`), and for the daemon tests one `clatd run` in it. Not root: the tests skip saying so.
 * A missing Debian package: they fail in CI (CI=true) and skip elsewhere, naming the package. A
 * daemon that does not work: every test of the file fails with clatd's own words.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusSnapshot } from '../../src/daemon/status.js';
import {
  ADDR,
  type Capture,
  ensureDeps,
  Lab,
  type LabOptions,
  type Proc,
  sleep,
  waitFor,
} from '../../src/lab/index.js';
import { NEED_ROOT } from '../helpers/netns.js';
import { after, before, type TestContext } from '../helpers/suite.js';

export const IN_CI = process.env.CI === 'true';

export interface Suite {
  /** The lab, or null after `t.skip` (the caller returns). Throws when set-up failed. */
  ready(t: TestContext): Lab | null;
}

export function labSuite(opts: LabOptions = {}, then?: (lab: Lab) => Promise<void>): Suite {
  const s: { lab: Lab | null; skip: string | null; error: Error | null } = { lab: null, skip: null, error: null };
  before(async () => {
    if (NEED_ROOT) {
      s.skip = NEED_ROOT;
      return;
    }
    try {
      await ensureDeps((line) => process.stderr.write(`${line}\n`));
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      if (IN_CI) s.error = err;
      else s.skip = err.message;
      return;
    }
    s.lab = await Lab.create(opts);
    if (then) await then(s.lab);
  });
  after(async () => {
    await s.lab?.destroy();
  });
  return {
    ready(t) {
      if (s.error) throw s.error;
      if (s.skip) {
        t.skip(s.skip);
        return null;
      }
      assert.ok(s.lab, 'the lab was not built (see the before hook error)');
      return s.lab;
    },
  };
}

export interface ClatdSuite {
  /** The lab and the running clatd; fails the test with clatd's output when the daemon is not up. */
  ready(t: TestContext, opts?: { exitedOk?: boolean }): { lab: Lab; clatd: Proc } | null;
  /** The capture started on the router's LAN before clatd started (NS from :: and NA). */
  readonly ndCapture: Capture | null;
  readonly state: { clatd: Proc | null; why: string };
}

/**
 * A lab with `clatd run ARGS` in its host. `beforeClatd` runs after the lab is built and before clatd
 * starts (e.g. to hold an address on the neighbour). A capture of ND on the router's LAN runs from
 * before clatd's start, for the DAD tests.
 */
export function clatdSuite(
  opts: LabOptions = {},
  args: string[] = [],
  beforeClatd?: (lab: Lab) => Promise<string[] | undefined>,
): ClatdSuite {
  const state: { clatd: Proc | null; why: string; capture: Capture | null } = { clatd: null, why: '', capture: null };
  const base = labSuite(opts, async (lab) => {
    const extra = (await beforeClatd?.(lab)) ?? [];
    state.capture = await lab.capture(
      lab.names.router,
      lab.iface.routerBridge,
      'icmp6 and (ip6[40] == 135 or ip6[40] == 136)',
    );
    const r = await lab.startClatdAndWait([...args, ...extra]);
    state.clatd = r.proc;
    state.why = r.why;
    if (r.up) await sleep(300);
  });
  return {
    get ndCapture() {
      return state.capture;
    },
    get state() {
      return state;
    },
    ready(t, o) {
      const lab = base.ready(t);
      if (!lab) return null;
      if (!state.clatd || state.why) {
        assert.fail(
          `the daemon does not work in the lab yet, so this test cannot run: ${state.why || 'clatd not started'}`,
        );
      }
      if (!state.clatd.running && !o?.exitedOk) {
        assert.fail(
          `clatd run has exited during the tests:\n${state.clatd.output().trim().split('\n').slice(-15).join('\n')}`,
        );
      }
      return { lab, clatd: state.clatd };
    },
  };
}

/** The NAT64 address of IPv4 `v4` under the lab's current /96 prefix. */
export function nat64(lab: Lab, v4: string): string {
  return `${lab.pref64.split('/')[0]}${v4}`;
}

/** Ping statistics: how many replies out of how many sent. */
export function pingStats(out: string): { sent: number; received: number } {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  return m ? { sent: Number(m[1]), received: Number(m[2]) } : { sent: 0, received: 0 };
}

/** traceroute -n from `ns` to the IPv4-only server: each hop's address in order ('' for a silent hop). */
export async function traceroute(lab: Lab, ns: string): Promise<{ hops: string[]; out: string }> {
  const tr = await lab.exec(ns, ['traceroute', '-n', '-q', '1', '-w', '1', '-m', '8', ADDR.server], {
    allowFail: true,
  });
  const hops = tr.stdout
    .split('\n')
    .slice(1)
    .map((l) => /^\s*\d+\s+(\S+)/.exec(l)?.[1] ?? '');
  return { hops, out: tr.stdout };
}

/** What router mode may leave in the host namespace: clatd's nft tables, IPv4 forwarding, the TUN, the records. */
export async function lanLeftovers(lab: Lab): Promise<string[]> {
  const h = lab.names.host;
  const out: string[] = [];
  const tables = await lab.exec(h, ['nft', 'list', 'tables'], { allowFail: true });
  for (const l of tables.stdout.split('\n')) if (l.includes('clatd')) out.push(l.trim());
  for (const key of ['net.ipv4.conf.lan0.forwarding', 'net.ipv4.conf.all.forwarding', 'net.ipv4.ip_forward']) {
    const v = (await lab.exec(h, ['sysctl', '-n', key], { allowFail: true })).stdout.trim();
    if (v !== '0') out.push(`${key} = ${v}`);
  }
  const link = await lab.exec(h, ['ip', 'link', 'show', 'v4-eth0'], { allowFail: true });
  if (link.code === 0) out.push('link v4-eth0');
  for (const f of ['eth0:lan.host-settings.json', 'eth0.host-settings.json'])
    if (existsSync(join(lab.dir, 'run-clatd', f))) out.push(`record ${f}`);
  return out;
}

/**
 * Waits until clatd runs and serves the LAN, and `also` holds of its status (startClatdAndWait gives
 * up waiting for the state after 5 s, which a loaded machine's DAD and worker warm-up can take);
 * fails with clatd's words if not.
 */
export async function lanServed(
  lab: Lab,
  clatd: Proc,
  also: (s: StatusSnapshot) => boolean = () => true,
): Promise<void> {
  const ok = await waitFor(
    async () => {
      const s = await lab.clatdStatus(clatd);
      return s?.state === 'running' && s.lan?.serving === true && also(s);
    },
    20_000,
    200,
  );
  assert.ok(ok, `clatd does not serve the LAN:\n${clatd.output().trim().split('\n').slice(-15).join('\n')}`);
}

/** SIGTERM to `clatd` in router mode: it exits 0 within 5 s and leaves nothing in the host. */
export async function lanSigtermLeavesNothing(lab: Lab, clatd: Proc): Promise<void> {
  clatd.child.kill('SIGTERM');
  const ex = await Promise.race([clatd.exited, sleep(5000).then(() => null)]);
  assert.ok(ex, 'clatd did not exit within 5 s of SIGTERM');
  assert.equal(ex.code, 0, clatd.output().slice(-800));
  assert.deepEqual(await lanLeftovers(lab), []);
}

/**
 * Starts `clatd run ARGS` in router mode, waits until it serves the LAN (see lanServed) and has
 * made its changes, kills it with SIGKILL, and returns what it left in the host.
 */
export async function lanKill9Leftovers(
  lab: Lab,
  args: string[],
  also?: (s: StatusSnapshot) => boolean,
): Promise<string[]> {
  const first = await lab.startClatdAndWait(args);
  assert.ok(first.up, first.why);
  await lanServed(lab, first.proc, also);
  await waitFor(async () => (await lanLeftovers(lab)).length >= 3, 5000, 200);
  first.proc.child.kill('SIGKILL');
  await first.proc.exited;
  return lanLeftovers(lab);
}
