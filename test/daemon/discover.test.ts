import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { type DiscoverDeps, discover } from '../../src/daemon/discover.js';
import { FakeDns64, FakeIdentity, FakeNet } from './fakes.js';

function deps(net = FakeNet.typical(), ra?: string, dns?: string): DiscoverDeps & { dns64: FakeDns64 } {
  const dns64 = new FakeDns64();
  if (dns) dns64.answer = [parsePrefix6(dns)];
  return {
    net,
    dns64,
    identity: new FakeIdentity(),
    waitForRa: async () => (ra ? parsePrefix6(ra) : undefined),
    dadParams: async () => ({ transmits: 1, retransMs: 1000 }),
  };
}

describe('discover', () => {
  test('what run would choose, with the prefix source', async () => {
    const d = await discover(resolveConfig({}), deps(undefined, '2001:db8:64::/96', '64:ff9b::/96'), 100);
    assert.deepEqual(d.uplink, { name: 'eth0', ifindex: 2, how: 'IPv6 default route', up: true, mtu: 1500 });
    assert.equal(d.pref64, '2001:db8:64::/96');
    assert.equal(d.pref64Source, 'ra', 'the RA wins over DNS64');
    assert.equal(d.clat4, '192.0.0.4');
    assert.match(d.clat6Sample ?? '', /^2001:db8:1::/);
    assert.equal(d.prefix64, '2001:db8:1::/64');
    assert.equal(d.mtu, 1472);
    assert.deepEqual(d.dad, { mode: 'strict', transmits: 1, retransMs: 1000 });
    assert.match(d.verdict, /^translate: 192\.0\.0\.4 <-> 2001:db8:1::\S+ via 2001:db8:64::\/96/);
  });

  test('DNS64 when no RA brings a PREF64; notes say why', async () => {
    const d = await discover(resolveConfig({}), deps(undefined, undefined, '64:ff9b::/96'), 100);
    assert.equal(d.pref64Source, 'dns64');
    assert.match(d.notes.join('\n'), /no PREF64 option on eth0 within 100 ms/);
  });

  test('--pref64 is used as given; nothing is asked', async () => {
    const x = deps();
    const d = await discover(resolveConfig({ pref64: '2001:db8:64::/96' }), x, 100);
    assert.equal(d.pref64Source, 'flag');
    assert.equal(x.dns64.calls, 0);
  });

  test('without privileges: says what it could not check and why; a failing RA listener is one of them', async () => {
    const x = { ...deps(undefined, undefined, '64:ff9b::/96'), missingCaps: ['CAP_NET_ADMIN', 'CAP_NET_RAW'] };
    const d = await discover(resolveConfig({}), x, 100);
    assert.equal(d.pref64Source, 'dns64', 'what can be found still is');
    assert.deepEqual(d.unchecked, [
      'clatd run itself: it needs CAP_NET_ADMIN and CAP_NET_RAW, which this process lacks (run as root, or from clatd@.service)',
      'Router Solicitation: not sent (a raw socket needs CAP_NET_RAW), so only an RA the router sent by itself within 100 ms was seen',
    ]);
    x.waitForRa = async () => {
      throw new Error('bind(NETLINK_ROUTE): EPERM (operation not permitted)');
    };
    x.missingCaps = [];
    const e = await discover(resolveConfig({}), x, 100);
    assert.deepEqual(e.unchecked, [
      'Router Advertisements: cannot listen for them: bind(NETLINK_ROUTE): EPERM (operation not permitted)',
    ]);
    assert.equal(e.pref64Source, 'dns64');
    assert.deepEqual((await discover(resolveConfig({}), deps(), 0)).unchecked, [], 'privileged: nothing to say');
  });

  test('verdicts: no route, down, native IPv4, no prefix', async () => {
    const none = FakeNet.typical();
    none.default6 = undefined;
    assert.match((await discover(resolveConfig({}), deps(none), 0)).verdict, /no IPv6 default route/);
    const down = FakeNet.typical();
    down.links_[1].up = false;
    assert.match((await discover(resolveConfig({}), deps(down, '2001:db8:64::/96'), 0)).verdict, /eth0 is down/);
    const v4 = FakeNet.typical();
    v4.defaults4 = [2];
    const d = await discover(resolveConfig({ pref64: '64:ff9b::/96' }), deps(v4), 0);
    assert.equal(d.nativeIPv4, true);
    assert.match(d.verdict, /^idle: the host has a native IPv4 default route/);
    assert.match((await discover(resolveConfig({}), deps(), 0)).verdict, /no NAT64 prefix/);
    assert.match(
      (await discover(resolveConfig({ interface: 'wlan9' }), deps(), 0)).verdict,
      /interface wlan9 does not exist/,
    );
  });
});
