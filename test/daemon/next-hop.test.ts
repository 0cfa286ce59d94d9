/**
 * The fast path's next hop: which routes give one (a single gateway on the uplink) and which are
 * left to the kernel's per-packet lookup, and that a route or router change clears it in the event
 * handler itself, before the next step resolves it again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addressIn, chooseNextHop } from '../../src/daemon/next-hop.js';
import { FakeNet, flush, started, WKP } from './fakes.js';

describe('the fast path next hop', () => {
  test('a gateway on the uplink is the next hop; on-link, another interface, multipath, no route are not', () => {
    assert.deepEqual(chooseNextHop({ ifindex: 2, gateway: 'fe80::1', multipath: false }, 2).address, 'fe80::1');
    const none = [
      [{ ifindex: 2, multipath: false }, /on-link/],
      [{ ifindex: 5, gateway: 'fe80::1', multipath: false }, /leaves by ifindex 5/],
      [{ ifindex: 2, gateway: 'fe80::1', multipath: true }, /multipath/],
      [undefined, /no route/],
    ] as const;
    for (const [via, why] of none) {
      const c = chooseNextHop(via, 2);
      assert.equal(c.address, undefined);
      assert.match(c.why, why);
    }
    assert.equal(addressIn(WKP), '64:ff9b::1');
  });

  test('resolved from the CLAT address out of the uplink; a route event clears it at once, the next step sets the new one', async () => {
    const net = FakeNet.typical();
    net.via6 = { ifindex: 2, gateway: 'fe80::1', multipath: false };
    const w = await started({ pref64: '64:ff9b::/96' }, net);
    assert.equal(w.daemon.state, 'running');
    // Resolved by the bring-up itself.
    const dp = w.plumbing.dp;
    assert.ok(dp);
    const clat6 = w.daemon.status().clat6;
    assert.ok(net.viaAsked.includes(`64:ff9b::1 2 ${clat6}`), net.viaAsked.join('; '));
    assert.equal(dp.nextHops.at(-1), 'fe80::1');

    // The default route moves to another router: cleared in the handler, before any step.
    net.via6 = { ifindex: 2, gateway: 'fe80::2', multipath: false };
    net.emit({ type: 'route', family: 6, removed: false });
    assert.equal(dp.nextHops.at(-1), '');
    await flush(w.daemon);
    assert.equal(dp.nextHops.at(-1), 'fe80::2');

    // A router's neighbour entry changes: cleared, then resolved again (a multipath route now: none).
    net.via6 = { ifindex: 2, gateway: 'fe80::2', multipath: true };
    net.emit({ type: 'neigh', ifindex: 2, address: 'fe80::2', router: true, removed: false });
    assert.equal(dp.nextHops.at(-1), '');
    await flush(w.daemon);
    assert.equal(dp.nextHops.at(-1), '');

    // A third router; other neighbours' comings and goings change nothing; then on-link: none.
    net.via6 = { ifindex: 2, gateway: 'fe80::3', multipath: false };
    net.emit({ type: 'route', family: 6, removed: false });
    await flush(w.daemon);
    assert.equal(dp.nextHops.at(-1), 'fe80::3');
    // An address of the uplink's (a source-based rule may match it): cleared, resolved again.
    net.emit({ type: 'addr', ifindex: 2, family: 6, removed: false });
    assert.equal(dp.nextHops.at(-1), '');
    await flush(w.daemon);
    assert.equal(dp.nextHops.at(-1), 'fe80::3');
    const n = dp.nextHops.length;
    net.emit({ type: 'neigh', ifindex: 2, address: '2001:db8:1::77', router: false, removed: true });
    net.emit({ type: 'neigh', ifindex: 9, address: 'fe80::9', router: true, removed: false });
    await flush(w.daemon);
    assert.equal(dp.nextHops.length, n);
    net.via6 = { ifindex: 2, multipath: false };
    net.emit({ type: 'route', family: 6, removed: true });
    await flush(w.daemon);
    assert.equal(dp.nextHops.at(-1), '');
    await w.daemon.stop();
  });
});
