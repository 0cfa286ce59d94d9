/**
 * The datapath supervisor and the addressing step on their own, over the fakes: restart budget,
 * stale failure reports, counters kept across restarts; DAD verdicts and the blocked back-off.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { Addressing } from '../../src/daemon/addressing.js';
import { Logger } from '../../src/daemon/log.js';
import type { Ipv4Side, UplinkSide, XlatParams } from '../../src/daemon/ports.js';
import { DatapathSupervisor, MAX_DP_RESTARTS } from '../../src/daemon/supervisor.js';
import { FakeClock, FakeDad, FakeIdentity, FakeNet, FakePlumbing } from './fakes.js';

const params: XlatParams = {
  pref64: parsePrefix6('64:ff9b::/96'),
  clat4: '192.0.0.4',
  clat6: '2001:db8:1::c001',
  mtu: 1472,
  translator: {} as XlatParams['translator'],
};
const side = {} as UplinkSide;
const v4 = {} as Ipv4Side;

function supervisor() {
  const clock = new FakeClock();
  const plumbing = new FakePlumbing();
  const lines: string[] = [];
  const log = new Logger({ level: 'debug', write: (l) => lines.push(l) });
  const events: string[] = [];
  const s = new DatapathSupervisor({
    plumbing,
    log,
    now: () => clock.now(),
    onFailure: () => events.push('failure'),
    onRestart: (why) => events.push(`restart ${why}`),
    onGiveUp: (why) => events.push(`give up ${why}`),
  });
  return { s, clock, plumbing, lines, events };
}

describe('DatapathSupervisor', () => {
  test('a failure is reported once per datapath; a replaced datapath is stale', async () => {
    const w = supervisor();
    await w.s.run(side, v4, params);
    const first = w.plumbing.dp;
    first?.fail('worker 0 exited');
    first?.fail('worker 1 exited');
    assert.equal(w.s.failure, 'worker 0 exited');
    assert.deepEqual(w.events, ['failure', 'failure']);
    assert.equal(w.lines.filter((l) => / warn +datapath: /.test(l)).length, 1);
    assert.equal(await w.s.dropFailed(), true);
    await w.s.run(side, v4, params);
    first?.fail('late');
    assert.equal(w.s.failure, undefined);
    assert.ok(w.lines.some((l) => /a replaced datapath reported: late/.test(l)));
  });

  test(`the restart budget: ${MAX_DP_RESTARTS} restarts in 10 minutes, then it gives up; spread out they are fine`, async () => {
    const w = supervisor();
    for (let i = 0; i < MAX_DP_RESTARTS; i++) assert.equal(w.s.mayRestart(`failure ${i}`), true);
    assert.equal(w.s.mayRestart('one more'), false);
    assert.match(w.events.at(-1) ?? '', /give up the datapath failed 6 times within 10 minutes; last: one more/);
    w.clock.advance(600_000);
    assert.equal(w.s.mayRestart('later'), true);
  });

  test('counters survive restarts; a refused reconfiguration marks it failed', async () => {
    const w = supervisor();
    await w.s.run(side, v4, params);
    if (w.plumbing.dp) w.plumbing.dp.packets = 5;
    await w.s.stop();
    await w.s.run(side, v4, params);
    if (w.plumbing.dp) {
      w.plumbing.dp.packets = 2;
      w.plumbing.dp.refuse = 'worker 1 refused';
    }
    assert.equal(w.s.counters()['46'].packets, 7);
    await w.s.reconfigure(params);
    assert.match(w.s.failure ?? '', /reconfiguring it failed: worker 1 refused/);
    await w.s.close();
    assert.equal(w.s.running, false);
    assert.equal(w.s.counters()['46'].packets, 7);
  });
});

describe('Addressing', () => {
  function addressing() {
    const clock = new FakeClock();
    const net = FakeNet.typical();
    const dad = new FakeDad();
    const identity = new FakeIdentity();
    const lines: string[] = [];
    const log = new Logger({ level: 'debug', write: (l) => lines.push(l) });
    const a = new Addressing({ clock, net, dad, identity }, log, 'strict');
    const probe = () => {
      const draw = a.drawer(parsePrefix6('2001:db8:1::/64'), params.pref64, '192.0.0.4');
      a.begin('strict');
      return a.probe({
        uplink: net.links_[1],
        side,
        first: draw(),
        redraw: draw,
        mode: 'strict',
        params: { transmits: 1, retransMs: 1000 },
        onAddress: async () => {},
        signal: new AbortController().signal,
      });
    };
    return { a, clock, net, dad, lines, probe };
  }

  test('IPv4: --v4, else the first free address of 192.0.0.0/29', async () => {
    const w = addressing();
    assert.equal(await w.a.ipv4(undefined, '192.0.0.6'), '192.0.0.6');
    w.net.addrs.push({ ifindex: 2, family: 4, address: '192.0.0.4', prefixLen: 32, scope: 'global' });
    assert.equal(await w.a.ipv4(undefined, undefined), '192.0.0.5');
  });

  test('a round with every address answered for is blocked; the back-off doubles to 60 s and resets on success', async () => {
    const w = addressing();
    for (let i = 1; i <= 40; i++) w.dad.duplicates.add(`2001:db8:1::c0${i.toString(16).padStart(2, '0')}`);
    const waits: number[] = [];
    for (let round = 0; round < 6; round++) {
      const v = await w.probe();
      assert.equal(v.type, 'blocked');
      if (v.type === 'blocked') waits.push(v.retryInMs);
      assert.equal(w.a.blockedForMs(), waits.at(-1));
      w.clock.advance(v.type === 'blocked' ? v.retryInMs : 0);
    }
    assert.deepEqual(waits, [5000, 10000, 20000, 40000, 60000, 60000]);
    assert.equal(w.a.status().blockedRounds, 6);
    assert.equal(w.a.status().duplicates.length, 8, 'the last 8 duplicates are kept');
    w.dad.duplicates.clear();
    const ok = await w.probe();
    assert.equal(ok.type, 'unique');
    assert.equal(w.a.status().result, 'unique');
    assert.equal(w.a.status().blockedRounds, 0);
    assert.equal(w.a.blockedForMs(), 0);
  });

  test('an interrupted run is neither unique nor blocked', async () => {
    const w = addressing();
    w.dad.interruptNext = 'ENETDOWN';
    const v = await w.probe();
    assert.deepEqual(v, { type: 'interrupted', reason: 'ENETDOWN' });
    assert.equal(w.a.blockedForMs(), 0);
  });
});
