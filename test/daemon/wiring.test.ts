/**
 * The daemon's parts on their own, over the fakes: what each part's callbacks reach (the change
 * counters, the reconciler's hooks), where netlink events go, the order of taking things down,
 * and a stop that does not wait for ever on a step that hangs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FailedDad, Session } from '../../src/daemon/bring-up.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { Logger } from '../../src/daemon/log.js';
import type { DaemonDeps, LinkInfo } from '../../src/daemon/ports.js';
import { MAX_DP_RESTARTS } from '../../src/daemon/supervisor.js';
import { DaemonParts } from '../../src/daemon/wiring.js';
import { FakeClock, FakeDad, FakeDns64, FakeIdentity, FakeLan, FakeNet, FakePlumbing, turns, WKP } from './fakes.js';

const ETH0: LinkInfo = { index: 2, name: 'eth0', up: true, mtu: 1500 };

function parts(flags: Record<string, string | string[]> = { pref64: '64:ff9b::/96' }) {
  const cfg = resolveConfig(flags);
  const net = FakeNet.typical();
  net.links_.push({ index: 3, name: 'lan0', up: true, mtu: 1500 });
  const clock = new FakeClock();
  const lines: string[] = [];
  const log = new Logger({ level: 'debug', write: (l) => lines.push(l) });
  const plumbing = new FakePlumbing(net);
  const lan = new FakeLan();
  const deps: DaemonDeps = {
    net,
    dns64: new FakeDns64(),
    identity: new FakeIdentity(),
    dad: new FakeDad(),
    plumbing,
    clock,
    lan,
  };
  const calls: string[] = [];
  let session: Session | undefined;
  let step: () => Promise<void> = async () => {
    calls.push('step');
  };
  const p = new DaemonParts(cfg, deps, log, {
    cfg: () => cfg,
    session: () => session,
    kick: () => calls.push('kick'),
    fail: (why) => calls.push(`fail ${why}`),
    step: () => step(),
    undelivered: (clat6) => calls.push(`undelivered ${clat6}`),
    lateVerdict: (v: FailedDad) => calls.push(`late ${v.type}`),
    lateError: (e) => calls.push(`late error ${e.message}`),
    error: (event, msg) => calls.push(`error ${event} ${msg}`),
  });
  return {
    p,
    net,
    clock,
    lines,
    plumbing,
    lan,
    calls,
    setSession: (s: Session | undefined) => {
      session = s;
    },
    setStep: (f: () => Promise<void>) => {
      step = f;
    },
  };
}

describe('DaemonParts', () => {
  test('router mode only with --lan and a LAN port', () => {
    assert.equal(parts().p.lan, undefined);
    assert.ok(parts({ pref64: '64:ff9b::/96', interface: 'eth0', lan: ['lan0'] }).p.lan);
  });

  test('start: leftovers of an earlier clatd are removed and said, then netlink is watched', async () => {
    const w = parts();
    w.plumbing.leftovers = ['v4-eth0'];
    assert.equal(await w.p.start('eth0'), undefined);
    assert.ok(w.lines.some((l) => / warn +recovery: removed leftover of an earlier clatd: v4-eth0/.test(l)));
    assert.equal(w.net.watching, true);
    w.net.emit({ type: 'route', family: 6, removed: false });
    assert.deepEqual(w.calls, ['kick']);
    await w.p.windDown();
    assert.equal(w.net.watching, false, 'stopping ends the subscription');
  });

  test('start: a TUN held by another clatd is the reason not to start; other failures only a warning', async () => {
    const w = parts();
    w.plumbing.leftoversError = Object.assign(new Error('v4-eth0 is held by a running process'), {
      code: 'ERR_CLATD_TUN_IN_USE',
    });
    assert.equal(await w.p.start('eth0'), 'v4-eth0 is held by a running process');
    assert.equal(w.net.watching, false);
    const v = parts();
    v.plumbing.leftoversError = new Error('netlink said no');
    assert.equal(await v.p.start('eth0'), undefined);
    assert.ok(v.lines.some((l) => / warn +recovery: could not look for leftovers: netlink said no/.test(l)));
    assert.equal(v.net.watching, true);
  });

  test('the step loop runs the reconciler hook', async () => {
    const w = parts();
    w.p.steps.kick();
    await w.p.steps.settled();
    assert.deepEqual(w.calls, ['step']);
  });

  test('a datapath restart is counted as a change; a spent budget fails the daemon through the hook', () => {
    const w = parts();
    for (let i = 0; i < MAX_DP_RESTARTS; i++) assert.equal(w.p.dp.mayRestart('worker 0 exited'), true);
    assert.equal(w.p.changes.counts['datapath-restarted'], MAX_DP_RESTARTS);
    assert.equal(w.p.dp.mayRestart('worker 0 exited'), false);
    assert.equal(w.calls.length, 1);
    assert.match(w.calls[0] ?? '', /^fail the datapath failed 6 times within 10 minutes; last: worker 0 exited$/);
  });

  test('netlink events: a PREF64 option goes to the prefix tracker, a lost table to its owner, others kick', async () => {
    const w = parts();
    w.p.onEvent({ type: 'link', ifindex: 2, removed: false });
    assert.deepEqual(w.calls, ['kick']);
    assert.ok(w.lines.some((l) => / debug netlink: link changed/.test(l)));
    w.calls.length = 0;
    w.p.onEvent({ type: 'pref64', ifindex: 2, router: 'fe80::1', prefix: WKP, lifetime: 600 });
    assert.ok(w.calls.includes('kick'), 'the tracker kicks');
    assert.equal(w.p.pref64.describe().routers.length, 1);
    assert.equal(w.p.pref64.describe().routers[0]?.prefix, '64:ff9b::/96');
    // A lost nft table: the uplink side puts it back at the next step (sides.test covers the putting back).
    w.calls.length = 0;
    w.p.onEvent({ type: 'nft', table: 'clatd-eth0', by: 'nft (pid 200)' });
    assert.deepEqual(w.calls, ['kick']);
  });

  test('takeDown: the datapath stops before the sockets and the TUN it uses; says whether anything was built', async () => {
    const w = parts();
    const up = await w.p.sides.openUplink(ETH0, '2001:db8:1::c001', WKP, 'anycast');
    const v4 = await w.p.upkeep.ipv4Side(ETH0, '192.0.0.4', 1472);
    await w.p.dp.run(up, v4, {
      pref64: WKP,
      clat4: '192.0.0.4',
      clat6: '2001:db8:1::c001',
      mtu: 1472,
      translator: resolveConfig({ pref64: '64:ff9b::/96' }).translator,
    });
    w.plumbing.ops.length = 0;
    const first = await w.p.takeDown();
    assert.deepEqual(first, { did: true, failed: [] });
    assert.equal(w.plumbing.ops[0], 'stopDatapath');
    assert.deepEqual(w.plumbing.ops.slice(1).sort(), ['closeIpv4', 'closeUplink']);
    assert.deepEqual([...w.plumbing.live], []);
    assert.deepEqual(await w.p.takeDown(), { did: false, failed: [] });
  });

  test('windDown: a step that hangs gets STOP_WAIT_MS, then the LANs are cut off before the datapath closes', async () => {
    const w = parts({ pref64: '64:ff9b::/96', interface: 'eth0', lan: ['lan0'] });
    w.setStep(() => new Promise<void>(() => {}));
    w.p.steps.kick();
    let ended = false;
    const down = w.p.windDown().then((failed) => {
      ended = true;
      return failed;
    });
    await turns(5);
    assert.equal(ended, false, 'waits for the running step');
    w.clock.advance(1_199);
    await turns(5);
    assert.equal(ended, false);
    w.clock.advance(1);
    assert.deepEqual(await down, []);
    assert.equal(w.lan.closed, true);
    // No timer of the parts is left: nothing runs after the end.
    w.clock.advance(3_600_000);
    await turns(5);
  });

  test('windDown without a running step returns at once', async () => {
    const w = parts();
    assert.deepEqual(await w.p.windDown(), []);
    w.p.steps.kick();
    await turns(3);
    assert.deepEqual(w.calls, [], 'no step after the end');
  });
});
