/**
 * The IPv4 side's default route on a real kernel (SystemIpv4): added beside another clatd's route
 * of the same metric instead of failing with EEXIST, moved to a new metric with the new route in
 * place before the old one goes, withdrawn while paused (and not put back by a repair then), put
 * back by a repair when deleted from outside, and removed with the side, leaving others' alone.
 */
import assert from 'node:assert/strict';
import { SystemIpv4 } from '../../src/daemon/system/index.js';
import { openRtnl } from '../../src/sys/rtnetlink/index.js';
import { NEED_ROOT, type Netns, withNetns } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

/** The IPv4 default routes as `dev:metric`, in the kernel's order. */
function defaults(ns: Netns): string[] {
  return ns
    .exec('ip', '-4', 'route', 'show', 'default')
    .split('\n')
    .filter(Boolean)
    .map((l) => `${/dev (\S+)/.exec(l)?.[1]}:${/metric (\d+)/.exec(l)?.[1] ?? 0}`);
}

describe('SystemIpv4 default route', { skip: NEED_ROOT }, () => {
  test('beside another clatd at the same metric; moved, withdrawn, repaired, removed', async () => {
    await withNetns(async (ns) => {
      // Another instance's TUN route (a veth stands for its TUN), at the same metric.
      ns.sh(
        'ip link add v4-other type veth peer name v4-peer; ip link set v4-peer up; ip link set v4-other up; ip route add default dev v4-other proto 199 metric 2048',
      );
      const rtnl = ns.enter(() => openRtnl());
      try {
        const side = ns.enter(() => new SystemIpv4(rtnl, 'v4-test', '192.0.0.5', 1472, 2048));
        assert.deepEqual(defaults(ns), ['v4-other:2048', 'v4-test:2048']);
        assert.match(
          ns.exec('ip', '-4', 'route', 'show', 'default', 'dev', 'v4-test'),
          /proto 199 .*src 192\.0\.0\.5 .*advmss 1432/,
        );

        await side.setRoute(2049);
        assert.equal(side.metric, 2049);
        assert.deepEqual(defaults(ns), ['v4-other:2048', 'v4-test:2049']);

        await side.setRoute(undefined);
        assert.equal(side.metric, undefined);
        assert.deepEqual(defaults(ns), ['v4-other:2048']);
        assert.deepEqual(await side.repair(), [], 'withdrawn on purpose: not put back');
        assert.deepEqual(defaults(ns), ['v4-other:2048']);

        await side.setRoute(2047);
        assert.deepEqual(defaults(ns), ['v4-test:2047', 'v4-other:2048']);
        ns.exec('ip', 'route', 'del', 'default', 'dev', 'v4-test');
        assert.deepEqual(await side.repair(), ['default route']);
        assert.deepEqual(defaults(ns), ['v4-test:2047', 'v4-other:2048']);

        await side.setMtu(1400);
        assert.match(ns.exec('ip', '-4', 'route', 'show', 'default', 'dev', 'v4-test'), /metric 2047 .*advmss 1360/);
        assert.match(ns.exec('ip', '-4', 'route', 'show', 'default', 'dev', 'v4-other'), /metric 2048/);

        await side.close();
        assert.deepEqual(defaults(ns), ['v4-other:2048']);
        assert.equal(ns.tryExec('ip', 'link', 'show', 'v4-test').status, 1);
      } finally {
        rtnl.close();
      }
    });
  });
});
