/**
 * One clatd per uplink (clatd@eth0 and clatd@wlan0): each takes another's TUN route for a CLAT,
 * not native IPv4; its IPv4 default route takes the uplink's place in the IPv6 default route
 * order, follows it live, and is withdrawn while its translation is paused. Over the fakes, and
 * SystemNet over a stub rtnetlink. test/daemon/multi-uplink-ns.test.ts shows it on real kernels.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatStatus } from '../../src/cli/status.js';
import {
  BASE_METRIC,
  type DefaultRoute6,
  ipv4RouteMetric,
  ipv6Order,
  uplinkPlace,
} from '../../src/daemon/route-order.js';
import { SystemNet } from '../../src/daemon/system/net.js';
import type { Route, Rtnl } from '../../src/sys/rtnetlink/index.js';
import { FakeNet, flush, started } from './fakes.js';

const r6 = (ifindex: number, metric: number, pref: DefaultRoute6['pref'] = 'medium'): DefaultRoute6 => ({
  ifindex,
  metric,
  pref,
});

describe('the IPv6 default route order', () => {
  test('lowest metric first, then router preference, then the kernel order; each uplink once', () => {
    assert.deepEqual(ipv6Order([r6(3, 600), r6(2, 100)]), [2, 3], 'NetworkManager: Ethernet 100, Wi-Fi 600');
    assert.deepEqual(ipv6Order([r6(2, 1024, 'low'), r6(3, 1024, 'high')]), [3, 2], 'RFC 4191 preference');
    assert.deepEqual(ipv6Order([r6(3, 1024), r6(2, 1024)]), [3, 2], 'equal: as the kernel lists them');
    assert.deepEqual(ipv6Order([r6(2, 100), r6(3, 600), r6(2, 700)]), [2, 3], 'a second route via eth0 counts once');
    assert.deepEqual(ipv6Order([]), []);
  });

  test('the metric: 2048 plus the place; an uplink without a route comes last; --route-metric wins', () => {
    const routes = [r6(3, 600), r6(2, 100)];
    assert.equal(BASE_METRIC, 2048);
    assert.equal(uplinkPlace(routes, 2), 0);
    assert.equal(ipv4RouteMetric(routes, 2), 2048);
    assert.equal(ipv4RouteMetric(routes, 3), 2049);
    assert.equal(ipv4RouteMetric(routes, 7), 2050, 'no IPv6 default route: after the others');
    assert.equal(ipv4RouteMetric([], 2), 2048, 'a single clatd keeps 2048');
    assert.equal(ipv4RouteMetric(routes, 3, 10), 10);
    assert.equal(ipv4RouteMetric(routes, 3, 0), 0, '0 is an explicit metric too');
  });
});

/** A route as rtnetlink decodes it, with only what SystemNet reads. */
function route(o: Partial<Route> & { family: 4 | 6 }): Route {
  return {
    dst: o.family === 4 ? '0.0.0.0' : '::',
    dstLen: 0,
    table: 254,
    protocol: 3,
    scope: 0,
    type: 1,
    flags: 0,
    ...o,
  } as Route;
}

function stubNet(routes: Route[]): SystemNet {
  const rtnl = { defaultRoutes: (family: 4 | 6) => routes.filter((r) => r.family === family) };
  return new SystemNet(rtnl as unknown as Rtnl);
}

describe('SystemNet: routes as the daemon sees them', () => {
  test("another clatd's TUN route (protocol 199, any TUN name) is not native IPv4; every other default route is", async () => {
    const net = stubNet([
      route({ family: 4, oif: 60, protocol: 199, priority: 2048 }), // v4-eth0 of clatd@eth0
      route({ family: 4, oif: 61, protocol: 199, priority: 2049 }), // v4-enp0s20-1a2b of another
    ]);
    assert.deepEqual(await net.defaultRoutes4(), []);
    const native = stubNet([
      route({ family: 4, oif: 60, protocol: 199, priority: 2048 }),
      route({ family: 4, oif: 2, protocol: 16, priority: 100, gateway: '192.0.2.1' }), // DHCP
      route({ family: 4, oif: 3, protocol: 4, priority: 0 }), // static
    ]);
    assert.deepEqual(
      (await native.defaultRoutes4()).map((r) => r.ifindex),
      [2, 3],
    );
  });

  test('IPv6 default routes: metric, RA preference, every next hop of a multipath route, in the kernel order; none without carrier', async () => {
    const net = stubNet([
      route({ family: 6, oif: 3, priority: 600, pref: 1 }),
      route({ family: 6, oif: 2, priority: 1024, pref: 3 }),
      route({
        family: 6,
        oif: 4,
        priority: 1024,
        nexthops: [
          { oif: 4, weight: 1 },
          { oif: 5, weight: 1 },
        ],
      }),
      route({ family: 6, oif: 6 }),
      route({ family: 6, oif: 7, priority: 50, flags: 16 }), // linkdown: no carrier
      route({ family: 6, oif: 8, priority: 50, flags: 1 }), // dead
    ]);
    assert.deepEqual(await net.defaultRoutes6(), [
      { ifindex: 3, metric: 600, pref: 'high' },
      { ifindex: 2, metric: 1024, pref: 'low' },
      { ifindex: 4, metric: 1024, pref: 'medium' },
      { ifindex: 5, metric: 1024, pref: 'medium' },
      { ifindex: 6, metric: 0, pref: 'medium' },
    ]);
  });
});

/** eth0 (2) and wlan0 (3), each with a global address and an IPv6 default route (100 and 600). */
function twoUplinks(): FakeNet {
  const net = FakeNet.typical();
  net.links_.push({ index: 3, name: 'wlan0', up: true, mtu: 1500 });
  net.addrs.push({ ifindex: 3, family: 6, address: '2001:db8:2::10', prefixLen: 64, scope: 'global' });
  net.routes6 = [r6(2, 100), r6(3, 600)];
  return net;
}

describe('the daemon on one of two uplinks', () => {
  test('clatd@wlan0 (second in the IPv6 order) takes 2049, follows the order live, and --route-metric wins', async () => {
    const net = twoUplinks();
    const w = await started({ pref64: '64:ff9b::/96', interface: 'wlan0' }, net);
    assert.equal(w.daemon.state, 'running');
    assert.ok(w.plumbing.ops.includes('createIpv4 v4-wlan0 192.0.0.4 mtu=1472 metric=2049'), w.plumbing.ops.join('\n'));

    // The host now prefers wlan0 for IPv6 (e.g. Ethernet unplugged, or its metric raised).
    net.routes6 = [r6(2, 800), r6(3, 600)];
    net.emit({ type: 'route', family: 6, removed: false });
    await flush(w.daemon);
    assert.equal(w.plumbing.ops.at(-1), 'setRoute 2048');
    assert.equal(w.daemon.changes['ipv4-route-metric'], 1);
    assert.ok(w.lines.some((l) => /IPv4 default route via v4-wlan0: metric 2049 -> 2048: wlan0 moved/.test(l)));
    // Nothing moves while the order stays.
    net.emit({ type: 'route', family: 6, removed: false });
    await flush(w.daemon);
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('setRoute')).length, 1);
    await w.daemon.stop();

    const e = await started({ pref64: '64:ff9b::/96', interface: 'wlan0', 'route-metric': '300' }, twoUplinks());
    assert.ok(e.plumbing.ops.includes('createIpv4 v4-wlan0 192.0.0.4 mtu=1472 metric=300'));
    e.net.routes6 = [r6(3, 50)];
    e.net.emit({ type: 'route', family: 6, removed: false });
    await flush(e.daemon);
    assert.ok(!e.plumbing.ops.some((o) => o.startsWith('setRoute')), 'an explicit metric stays');
    await e.daemon.stop();
  });

  test('its uplink down: the route is withdrawn while paused (IPv4 goes to the other CLAT) and comes back after', async () => {
    const net = twoUplinks();
    const w = await started({ pref64: '64:ff9b::/96', interface: 'eth0' }, net);
    assert.ok(w.plumbing.ops.includes('createIpv4 v4-eth0 192.0.0.4 mtu=1472 metric=2048'));
    net.links_[1].up = false;
    net.routes6 = [r6(3, 600)]; // the kernel takes the routes of a link that goes down
    net.emit({ type: 'link', ifindex: 2, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'paused');
    assert.equal(w.plumbing.ops.at(-1), 'setRoute withdrawn');
    assert.equal(w.daemon.changes['ipv4-route-withdrawn'], 1);
    assert.equal(w.daemon.status().routeMetric, null);
    assert.match(formatStatus(w.daemon.status()), /TUN +v4-eth0, MTU 1472, no IPv4 default route/);
    // Repairs while paused do not put it back.
    w.clock.advance(30_000);
    await flush(w.daemon);
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('setRoute')).length, 1);

    net.links_[1].up = true;
    net.routes6 = [r6(3, 600), r6(2, 100)];
    net.emit({ type: 'link', ifindex: 2, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('setRoute')).at(-1), 'setRoute 2048');
    assert.equal(w.daemon.changes['ipv4-route-restored'], 1);
    assert.equal(w.daemon.status().routeMetric, 2048);
    assert.match(formatStatus(w.daemon.status()), /TUN +v4-eth0, MTU 1472, IPv4 default route metric 2048/);
    await w.daemon.stop();
  });
});
