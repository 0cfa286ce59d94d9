/**
 * Keeping a running CLAT matched, on its own over the fakes: a new MTU, a leased address put back
 * on the uplink, a failed datapath or a deleted TUN built again with the same addresses (within the
 * restart budget), the IPv4 side built once, and the translator's parameters.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Session } from '../../src/daemon/bring-up.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { Ipv4Route } from '../../src/daemon/ipv4-route.js';
import type { LanEam } from '../../src/daemon/lan-map.js';
import { Logger } from '../../src/daemon/log.js';
import { NextHopWatch } from '../../src/daemon/next-hop.js';
import { ChangeTracker } from '../../src/daemon/observe.js';
import type { LinkInfo } from '../../src/daemon/ports.js';
import { ClatSides } from '../../src/daemon/sides.js';
import { Lifecycle } from '../../src/daemon/state.js';
import { DatapathSupervisor, MAX_DP_RESTARTS } from '../../src/daemon/supervisor.js';
import { Upkeep } from '../../src/daemon/upkeep.js';
import { chooseUplinkMode, isWait, type UplinkMode } from '../../src/daemon/uplink-mode.js';
import { FakeClock, FakeNet, FakePlumbing, WKP } from './fakes.js';

const ETH0: LinkInfo = { index: 2, name: 'eth0', up: true, mtu: 1500 };

function mode(): UplinkMode {
  const m = chooseUplinkMode({
    uplink: 'eth0',
    addresses: [{ address: '2001:db8:1::10', prefixLen: 64 }],
    source: '2001:db8:1::10',
  });
  assert.ok(!isWait(m));
  return m;
}

/** A running CLAT over the fakes: uplink side, IPv4 side and a datapath, state `running`. */
async function running() {
  let cfg = resolveConfig({ pref64: '64:ff9b::/96' });
  const net = FakeNet.typical();
  const clock = new FakeClock();
  const plumbing = new FakePlumbing(net);
  const lines: string[] = [];
  const log = new Logger({ level: 'debug', write: (l) => lines.push(l) });
  const told: string[] = [];
  const changes = new ChangeTracker((_level, kind, msg) => told.push(`${kind}: ${msg}`));
  const gaveUp: string[] = [];
  const lifecycle = new Lifecycle(() => clock.now());
  const sides = new ClatSides(plumbing, log, (k, m) => changes.change(k, m));
  const dp = new DatapathSupervisor({
    plumbing,
    log,
    now: () => clock.now(),
    onFailure: () => {},
    onRestart: (why) => changes.change('datapath-restarted', why),
    onGiveUp: (why) => gaveUp.push(why),
  });
  const route = new Ipv4Route(net, (k, m) => changes.change(k, m));
  let eam: readonly LanEam[] | undefined;
  const session: Session = {
    uplink: ETH0,
    pref64: WKP,
    source: 'flag',
    prefix64: '2001:db8:1::',
    clat4: '192.0.0.4',
    clat6: '2001:db8:1::c001',
    mtu: 1472,
    mode: mode(),
  };
  let current: Session | undefined;
  const u = new Upkeep({
    nextHop: new NextHopWatch(net, dp, log),
    cfg: () => cfg,
    session: () => current,
    lanEam: () => eam,
    lifecycle,
    log,
    changes,
    sides,
    dp,
    route,
  });
  const up = await sides.openUplink(ETH0, session.clat6, WKP, 'anycast');
  const v4 = await u.ipv4Side(ETH0, session.clat4, session.mtu);
  await dp.run(up, v4, u.params(session));
  current = session;
  lifecycle.go('dad', 'test');
  lifecycle.go('running', 'test');
  plumbing.ops.length = 0;
  const observed = { mode: session.mode, leasePresent: false, mtu: session.mtu, source: session.source };
  return {
    u,
    session,
    observed,
    plumbing,
    lines,
    changes,
    told,
    gaveUp,
    lifecycle,
    sides,
    dp,
    setCfg: (c: typeof cfg) => {
      cfg = c;
    },
    setEam: (e: readonly LanEam[] | undefined) => {
      eam = e;
    },
  };
}

describe('Upkeep', () => {
  test('nothing changed: nothing done', async () => {
    const w = await running();
    assert.equal(await w.u.follow(ETH0, w.session, w.observed), true);
    assert.deepEqual(
      w.plumbing.ops.filter((o) => !o.startsWith('setRoute')),
      [],
    );
  });

  test('a new MTU: the TUN gets it, the datapath is told, a change is counted', async () => {
    const w = await running();
    assert.equal(await w.u.follow(ETH0, w.session, { ...w.observed, mtu: 1400 }), true);
    assert.deepEqual(w.plumbing.ops.slice(0, 2), ['setMtu 1400', `reconfigure ${w.session.clat6}`]);
    assert.equal(w.session.mtu, 1400);
    assert.equal(w.changes.counts['mtu-changed'], 1);
  });

  test('the prefix source is taken as told', async () => {
    const w = await running();
    await w.u.follow(ETH0, w.session, { ...w.observed, source: 'ra' });
    assert.equal(w.session.source, 'ra');
  });

  test('a failed datapath is started again with the same addresses, as a restart', async () => {
    const w = await running();
    w.plumbing.dp?.fail('worker 0 exited');
    assert.equal(await w.u.follow(ETH0, w.session, w.observed), true);
    assert.deepEqual(w.plumbing.ops.slice(0, 2), [
      'stopDatapath',
      `startDatapath ${w.session.clat4} ${w.session.clat6}`,
    ]);
    assert.equal(w.changes.counts['datapath-restarted'], 1);
    assert.ok(
      w.lines.some((l) => /translating again after a datapath restart: 192\.0\.0\.4 <-> 2001:db8:1::c001/.test(l)),
    );
    assert.equal(w.dp.running, true);
  });

  test('a deleted TUN is built again under its reason; a repair that throws is tried again under the same one', async () => {
    const w = await running();
    await w.sides.repair(true, () => w.dp.stop());
    w.u.lost('v4-eth0');
    w.plumbing.createIpv4Error = new Error('TUNSETIFF: EBUSY');
    await assert.rejects(w.u.follow(ETH0, w.session, w.observed), /EBUSY/);
    assert.equal(await w.u.follow(ETH0, w.session, w.observed), true);
    assert.deepEqual(
      w.told.filter((t) => t.startsWith('datapath-restarted')),
      ['datapath-restarted: v4-eth0 was deleted', 'datapath-restarted: v4-eth0 was deleted'],
    );
    assert.ok(w.plumbing.ops.includes('createIpv4 v4-eth0 192.0.0.4 mtu=1472 metric=2048'), w.plumbing.ops.join('\n'));
    assert.equal(w.dp.running, true);
  });

  test('the restart budget spent: follow says stop, nothing is started', async () => {
    const w = await running();
    for (let i = 0; i < MAX_DP_RESTARTS; i++) {
      w.plumbing.dp?.fail('worker 0 exited');
      assert.equal(await w.u.follow(ETH0, w.session, w.observed), true);
    }
    w.plumbing.dp?.fail('worker 0 exited');
    w.plumbing.ops.length = 0;
    assert.equal(await w.u.follow(ETH0, w.session, w.observed), false);
    assert.equal(w.gaveUp.length, 1);
    assert.ok(!w.plumbing.ops.some((o) => o.startsWith('startDatapath')));
  });

  test('not running (paused): a failed datapath waits for the next bring-up', async () => {
    const w = await running();
    w.lifecycle.go('paused', 'test');
    w.plumbing.dp?.fail('worker 0 exited');
    assert.equal(await w.u.follow(ETH0, w.session, w.observed), true);
    assert.deepEqual(w.plumbing.ops, []);
  });

  test('the IPv4 side is built once; a later MTU is applied to it', async () => {
    const w = await running();
    const a = w.sides.ipv4;
    const b = await w.u.ipv4Side(ETH0, '192.0.0.4', 1400);
    assert.equal(a, b);
    assert.deepEqual(w.plumbing.ops, ['setMtu 1400']);
  });

  test('params: the configuration of now, the LANs mappings only when there are some', async () => {
    const w = await running();
    assert.equal('lanEam' in w.u.params(w.session), false);
    w.setEam([]);
    assert.equal('lanEam' in w.u.params(w.session), false);
    const eam = [{ v4: '203.0.113.0', v6: '2001:db8:1::', len: 24 } as unknown as LanEam];
    w.setEam(eam);
    assert.equal(w.u.params(w.session).lanEam, eam);
    const next = resolveConfig({ pref64: '64:ff9b::/96' });
    w.setCfg(next);
    assert.equal(w.u.params(w.session).translator, next.translator);
  });
});
