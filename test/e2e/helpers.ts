/**
 * Shared set-up of the end-to-end tests: one lab per test file (built in `before`, always removed
 * in `after`), and for the daemon tests one `clatd run` in it. Not root: the tests skip saying so.
 * A missing Debian package: they fail in CI (CI=true) and skip elsewhere, naming the package. A
 * daemon that does not work: every test of the file fails with clatd's own words.
 */
import assert from 'node:assert/strict';
import { type Capture, ensureDeps, Lab, type LabOptions, type Proc, sleep } from '../../src/lab/index.js';
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
