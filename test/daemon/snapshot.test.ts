/**
 * The status document as a function of the parts' states: stand-in parts give each field, so every
 * rule of the assembly (the uplink while nothing is built, paused means down, copies not views,
 * the LAN block only in router mode) is checked without a running daemon.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Session } from '../../src/daemon/bring-up.js';
import { type SnapshotOwn, type SnapshotParts, statusSnapshot } from '../../src/daemon/snapshot.js';
import type { LanStatus } from '../../src/daemon/status.js';
import { emptyCounters } from '../../src/daemon/supervisor.js';
import type { UplinkMode } from '../../src/daemon/uplink-mode.js';
import { WKP } from './fakes.js';

const T0 = 1_000_000;

function stand(o: { state?: SnapshotParts['lifecycle']['state']; lan?: boolean } = {}): SnapshotParts {
  return {
    lifecycle: { state: o.state ?? 'waiting-uplink', since: T0 + 2_500, entered: { starting: 1 } as never },
    changes: { counts: { 'uplink-changed': 2 } },
    pref64: { describe: () => ({ routers: [], refused: [] }) },
    modes: { last: undefined },
    sides: { ipv4: undefined, uplink: undefined },
    dp: { offload: () => null, counters: () => emptyCounters() },
    addr: {
      status: () => ({
        mode: 'optimistic',
        result: 'none',
        attempts: 0,
        duplicates: [],
        blockedRounds: 0,
        retryInSec: null,
        skipped: null,
      }),
      attemptsTotal: 3,
    },
    health: { status: () => ({ state: 'unknown' }) as never },
    lan: o.lan ? { status: () => ({ serving: false }) as unknown as LanStatus } : undefined,
  };
}

const own = (o: Partial<SnapshotOwn> = {}): SnapshotOwn => ({
  now: T0 + 10_999,
  startedAt: T0,
  pid: 4242,
  reason: 'no IPv6 default route; waiting',
  session: undefined,
  seenUplink: undefined,
  errors: 1,
  ...o,
});

const session: Session = {
  uplink: { index: 2, name: 'eth0', up: true, mtu: 1500 },
  pref64: WKP,
  source: 'ra',
  prefix64: '2001:db8:1::',
  clat4: '192.0.0.4',
  clat6: '2001:db8:1::c001',
  mtu: 1472,
  mode: { mode: 1, announce: 'anycast', how: 'random in the on-link /64', whyNot: [] } as unknown as UplinkMode,
};

describe('statusSnapshot', () => {
  test('nothing built: the identity is null, the times are whole seconds, the counters are the parts’', () => {
    const s = statusSnapshot(stand(), own());
    assert.equal(s.state, 'waiting-uplink');
    assert.equal(s.reason, 'no IPv6 default route; waiting');
    assert.equal(s.pid, 4242);
    assert.equal(s.uptimeSec, 10);
    assert.equal(s.stateSinceSec, 8);
    assert.equal(s.uplink, null);
    for (const k of ['pref64', 'pref64Source', 'clat4', 'clat6', 'prefix64', 'tun', 'routeMetric', 'mtu'] as const)
      assert.equal(s[k], null, k);
    assert.equal(s.uplinkMode, null);
    assert.equal(s.dadAttempts, 3);
    assert.equal(s.errors, 1);
    assert.deepEqual(s.changes, { 'uplink-changed': 2 });
    assert.equal('lan' in s, false, 'no LAN block without router mode');
  });

  test('the uplink last seen stands in while nothing is built (a copy)', () => {
    const seen = { name: 'eth0', ifindex: 2, up: false };
    const s = statusSnapshot(stand(), own({ seenUplink: seen }));
    assert.deepEqual(s.uplink, seen);
    assert.notEqual(s.uplink, seen);
  });

  test('a session gives the identity; paused shows its uplink down', () => {
    const running = statusSnapshot(stand({ state: 'running' }), own({ session, reason: null }));
    assert.deepEqual(running.uplink, { name: 'eth0', ifindex: 2, up: true });
    assert.equal(running.pref64, '64:ff9b::/96');
    assert.equal(running.pref64Source, 'ra');
    assert.equal(running.clat4, '192.0.0.4');
    assert.equal(running.clat6, '2001:db8:1::c001');
    assert.equal(running.prefix64, '2001:db8:1::/64');
    assert.equal(running.mtu, 1472);
    assert.equal(running.uplinkMode?.mode, 1);
    const paused = statusSnapshot(stand({ state: 'paused' }), own({ session }));
    assert.equal(paused.uplink?.up, false);
  });

  test('the TUN and its route metric come from the IPv4 side', () => {
    const p = stand({ state: 'running' });
    const q: SnapshotParts = { ...p, sides: { ipv4: { name: 'v4-eth0', metric: 2048 } as never, uplink: undefined } };
    const s = statusSnapshot(q, own({ session }));
    assert.equal(s.tun, 'v4-eth0');
    assert.equal(s.routeMetric, 2048);
  });

  test('changes and transitions are copies: the document does not move with the daemon', () => {
    const p = stand();
    const s = statusSnapshot(p, own());
    p.changes.counts['uplink-changed'] = 5;
    (p.lifecycle.entered as Record<string, number>).starting = 9;
    assert.equal(s.changes['uplink-changed'], 2);
    assert.equal((s.transitions as Record<string, number>).starting, 1);
  });

  test('router mode adds the LAN block', () => {
    const s = statusSnapshot(stand({ lan: true }), own());
    assert.deepEqual(s.lan, { serving: false });
  });
});
