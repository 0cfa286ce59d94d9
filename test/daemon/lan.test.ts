/**
 * Router mode's reconciler over fakes: the LANs are served while the CLAT runs and cut off while
 * it does not (paused, idle beside native IPv4, stopped), LAN interface and address changes are
 * followed without a restart, problems and configuration drops are said once with the fix, and
 * what clatd changed is given back.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveConfig } from '../../src/daemon/config.js';
import { ipv4Subnet, LAN_READ_MS } from '../../src/daemon/lan.js';
import { planReload } from '../../src/daemon/reload.js';
import { FakeNet, flush, started, world } from './fakes.js';

const FLAGS = { pref64: '64:ff9b::/96', interface: 'eth0', lan: ['lan0'] };

/** A typical host plus lan0 (ifindex 3, up, 203.0.113.1/24). */
function lanNet(): FakeNet {
  const net = FakeNet.typical();
  net.links_.push({ index: 3, name: 'lan0', up: true, mtu: 1500 });
  net.addrs.push({ ifindex: 3, family: 4, address: '203.0.113.1', prefixLen: 24, scope: 'global' });
  return net;
}

async function running(flags: Record<string, string | string[]> = FLAGS, net = lanNet()) {
  const w = await started(flags, net);
  assert.equal(w.daemon.state, 'running');
  return w;
}

const warns = (lines: string[], re: RegExp) => lines.filter((l) => / warn {2}/.test(l) && re.test(l));

describe('router mode (NAT44) over fakes', () => {
  test('config: --lan is repeatable, needs --interface, is not the uplink; a restart-only setting', () => {
    assert.deepEqual(resolveConfig({ interface: 'eth0', lan: ['lan0', 'lan1', 'lan0'] }).lan, ['lan0', 'lan1']);
    assert.deepEqual(resolveConfig({}).lan, []);
    assert.throws(() => resolveConfig({ lan: ['lan0'] }), /--lan needs --interface/);
    assert.throws(() => resolveConfig({ interface: 'eth0', lan: ['eth0'] }), /--lan names the uplink eth0/);
    assert.throws(() => resolveConfig({ interface: 'eth0', lan: ['a b'] }), /not a valid interface name/);
    assert.throws(() => resolveConfig({ interface: 'eth0', lan: ['v4-eth0'] }), /TUN/);
    const plan = planReload(resolveConfig(FLAGS), resolveConfig({ ...FLAGS, lan: ['lan1'] }));
    assert.deepEqual(plan.restart, ['lan']);
  });

  test('ipv4Subnet masks the host bits', () => {
    assert.equal(ipv4Subnet('203.0.113.77', 24), '203.0.113.0/24');
    assert.equal(ipv4Subnet('198.51.100.200', 25), '198.51.100.128/25');
    assert.equal(ipv4Subnet('192.0.2.9', 32), '192.0.2.9/32');
    assert.equal(ipv4Subnet('192.0.2.9', 0), '0.0.0.0/0');
  });

  test('running: served through the TUN with NAT44 into the CLAT address; forwarding on for the LAN and the TUN', async () => {
    const w = await running();
    assert.deepEqual(w.lan.plan, {
      serve: { tun: 'v4-eth0', clat4: '192.0.0.4', mtu: 1472 },
      lans: [{ name: 'lan0', subnets: ['203.0.113.0/24'] }],
    });
    assert.equal(w.lan.forwarding.get('lan0'), 1);
    assert.equal(w.lan.forwarding.get('v4-eth0'), 1);
    const s = w.daemon.status().lan;
    assert.ok(s);
    assert.equal(s.serving, true);
    assert.equal(s.masqueradeTo, '192.0.0.4');
    assert.equal(s.mss, 1432);
    assert.deepEqual(s.interfaces[0].subnets, ['203.0.113.0/24']);
    assert.equal(s.interfaces[0].problem, null);
    assert.ok(
      w.lines.some((l) => /serving LAN lan0 \(203\.0\.113\.0\/24\) through v4-eth0: NAT44 into 192\.0\.0\.4/.test(l)),
    );
    await w.daemon.stop();
  });

  test('before the CLAT runs, and without --lan: not served / no LAN side at all', async () => {
    const net = lanNet();
    net.default6 = undefined;
    const w = world({ ...FLAGS }, net);
    // The uplink has no global address: the CLAT waits.
    w.net.addrs = w.net.addrs.filter((a) => !(a.ifindex === 2 && a.scope === 'global'));
    await w.daemon.start();
    await flush(w.daemon);
    assert.notEqual(w.daemon.state, 'running');
    assert.equal(w.lan.plan?.serve, undefined, 'the table drops LAN traffic while waiting');
    assert.equal(w.lan.plan?.lans.length, 1);
    assert.equal(w.lan.forwarding.get('lan0') ?? 0, 0, 'no forwarding while not served');
    assert.equal(w.daemon.status().lan?.serving, false);
    await w.daemon.stop();

    const plain = await started({ pref64: '64:ff9b::/96' });
    assert.deepEqual(plain.lan.ops, []);
    assert.equal(plain.daemon.status().lan, undefined);
    await plain.daemon.stop();
  });

  test('uplink down: paused, LAN cut off and forwarding given back; up again: served again', async () => {
    const w = await running();
    w.net.setLinkUp(2, false);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'paused');
    assert.equal(w.lan.plan?.serve, undefined);
    assert.equal(w.lan.forwarding.get('lan0'), 0);
    assert.match(w.daemon.status().lan?.reason ?? '', /down/);
    w.net.setLinkUp(2, true);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.ok(w.lan.plan?.serve);
    assert.equal(w.lan.forwarding.get('lan0'), 1);
    await w.daemon.stop();
  });

  test('native IPv4 appears (--mode auto): idle, LAN cut off', async () => {
    const w = await running();
    w.net.defaults4 = [2];
    w.net.emit({ type: 'route', family: 4, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'idle-native-ipv4');
    assert.equal(w.lan.plan?.serve, undefined);
    assert.equal(w.daemon.status().lan?.serving, false);
    await w.daemon.stop();
  });

  test('the LAN address changes and the LAN goes down and up: followed without a restart', async () => {
    const w = await running();
    const before = w.plumbing.ops.length;
    w.net.addrs = w.net.addrs.filter((a) => a.ifindex !== 3);
    w.net.addrs.push({ ifindex: 3, family: 4, address: '198.51.100.129', prefixLen: 25, scope: 'global' });
    w.net.emit({ type: 'addr', ifindex: 3, family: 4, removed: false });
    await flush(w.daemon);
    assert.deepEqual(w.lan.plan?.lans, [{ name: 'lan0', subnets: ['198.51.100.128/25'] }]);
    assert.ok(w.lan.plan?.serve);
    assert.equal(w.plumbing.ops.length, before, 'the CLAT itself was not touched');
    w.net.setLinkUp(3, false);
    await flush(w.daemon);
    assert.match(w.daemon.status().lan?.interfaces[0].problem ?? '', /lan0 is down/);
    assert.equal(warns(w.lines, /lan0 is down/).length, 1);
    w.net.setLinkUp(3, true);
    await flush(w.daemon);
    assert.equal(w.daemon.status().lan?.interfaces[0].problem, null);
    assert.ok(w.lines.some((l) => /LAN lan0 is usable: 198\.51\.100\.128\/25/.test(l)));
    await w.daemon.stop();
  });

  test('a LAN without an IPv4 address, or missing: said once with the fix, served once it is fixed', async () => {
    const net = lanNet();
    net.addrs = net.addrs.filter((a) => a.ifindex !== 3);
    const w = await running({ ...FLAGS, lan: ['lan0', 'lan9'] }, net);
    assert.deepEqual(w.lan.plan?.lans, [
      { name: 'lan0', subnets: [] },
      { name: 'lan9', subnets: [] },
    ]);
    w.daemon.kick();
    await flush(w.daemon);
    w.clock.advance(30_000);
    await flush(w.daemon);
    assert.equal(warns(w.lines, /lan0 has no IPv4 address.*ip addr add 192\.168\.1\.1\/24 dev lan0/).length, 1);
    assert.equal(warns(w.lines, /lan9: no such interface/).length, 1);
    net.addrs.push({ ifindex: 3, family: 4, address: '203.0.113.1', prefixLen: 24, scope: 'global' });
    net.emit({ type: 'addr', ifindex: 3, family: 4, removed: false });
    await flush(w.daemon);
    assert.deepEqual(w.lan.plan?.lans[0], { name: 'lan0', subnets: ['203.0.113.0/24'] });
    await w.daemon.stop();
  });

  test('configuration drops are said once, with the fix; counters add up across a re-install', async () => {
    const w = await running();
    const zero = { 'no-address': 0, 'wrong-source': 0, elsewhere: 0, 'not-served': 0 };
    w.lan.traffic = {
      lan0: { packetsOut: 10, bytesOut: 1000, packetsIn: 9, bytesIn: 900, drops: { ...zero, 'wrong-source': 2 } },
    };
    w.clock.advance(LAN_READ_MS);
    await flush(w.daemon);
    const wrong = () =>
      warns(w.lines, /outside its subnets \(203\.0\.113\.0\/24\).*give it an address in 203\.0\.113\.0\/24/);
    assert.equal(wrong().length, 1);
    w.lan.traffic.lan0.drops['wrong-source'] = 7;
    w.clock.advance(LAN_READ_MS);
    await flush(w.daemon);
    assert.equal(wrong().length, 1, 'said once');
    const s = w.daemon.status().lan?.interfaces[0];
    assert.equal(s?.packetsOut, 10);
    assert.equal(s?.drops['wrong-source'], 7);
    // A new table (the address changed) starts its counters at 0: status keeps counting on.
    w.net.addrs.push({ ifindex: 3, family: 4, address: '192.0.2.1', prefixLen: 24, scope: 'global' });
    w.net.emit({ type: 'addr', ifindex: 3, family: 4, removed: false });
    await flush(w.daemon);
    w.lan.traffic = { lan0: { packetsOut: 5, bytesOut: 500, packetsIn: 5, bytesIn: 500, drops: { ...zero } } };
    w.clock.advance(LAN_READ_MS);
    await flush(w.daemon);
    const t = w.daemon.status().lan?.interfaces[0];
    assert.equal(t?.packetsOut, 15);
    assert.equal(t?.drops['wrong-source'], 7);
    await w.daemon.stop();
  });

  test('LAN packets while not served are said once per period, at info', async () => {
    const w = await running();
    w.net.setLinkUp(2, false);
    await flush(w.daemon);
    w.lan.traffic = {
      lan0: {
        packetsOut: 0,
        bytesOut: 0,
        packetsIn: 0,
        bytesIn: 0,
        drops: { 'no-address': 0, 'wrong-source': 0, elsewhere: 0, 'not-served': 3 },
      },
    };
    w.clock.advance(LAN_READ_MS);
    await flush(w.daemon);
    const said = w.lines.filter((l) => /while the CLAT does not translate \(uplink eth0 is down/.test(l));
    assert.equal(said.length, 1, w.lines.join(''));
    assert.match(said[0], / info {2}/);
    await w.daemon.stop();
  });

  test('the table deleted from outside (flush ruleset) and forwarding turned off: both put back', async () => {
    const w = await running();
    w.lan.plan = undefined;
    w.net.emit({ type: 'nft', table: 'clatd-eth0/lan', by: 'nft (pid 99)' });
    await flush(w.daemon);
    const plan = () => w.lan.plan; // read again: the assignment above narrowed it
    assert.ok(plan()?.serve, 'restored');
    assert.equal(w.daemon.changes['lan-nft-restored'], 1);
    w.lan.forwarding.set('lan0', 0);
    w.daemon.kick();
    await flush(w.daemon);
    assert.equal(w.lan.forwarding.get('lan0'), 1);
    assert.equal(w.daemon.changes['lan-forwarding-restored'], 1);
    // Another clatd table's deletion is not ours.
    const installs = w.lan.ops.filter((o) => o.startsWith('install')).length;
    w.net.emit({ type: 'nft', table: 'clatd-eth0', by: 'nft (pid 98)' });
    await flush(w.daemon);
    assert.equal(w.lan.ops.filter((o) => o.startsWith('install')).length, installs);
    await w.daemon.stop();
  });

  test('nft refusing the LAN table: the step fails, is logged and retried; forwarding stays off until it is in', async () => {
    const w = world(FLAGS, lanNet());
    w.lan.installError = new Error('nft install clatd-eth0/lan: nft -f - failed: Operation not supported');
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.lan.plan, undefined);
    assert.equal(w.lan.forwarding.get('lan0') ?? 0, 0, 'no forwarding without the table');
    assert.ok(
      w.lines.some((l) => / error /.test(l) && /Operation not supported/.test(l)),
      w.lines.join(''),
    );
    w.clock.advance(60_000);
    await flush(w.daemon);
    const plan = () => w.lan.plan; // read again: the assertion above narrowed it
    assert.ok(plan()?.serve, 'installed by a later step');
    assert.equal(w.lan.forwarding.get('lan0'), 1);
    await w.daemon.stop();
  });

  test('stop: forwarding given back (the host value), then the table removed', async () => {
    const net = lanNet();
    const w = world(FLAGS, net);
    w.lan.forwarding.set('lan0', 0);
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.lan.forwarding.get('lan0'), 1);
    await w.daemon.stop();
    assert.equal(w.lan.closed, true);
    assert.equal(w.lan.plan, undefined);
    assert.equal(w.lan.forwarding.get('lan0'), 0);
    assert.deepEqual(w.lan.ops.slice(-2), ['release', 'close']);
  });
});

describe('router mode in status text and metrics', () => {
  test('clatd status shows the LAN line; metrics have per-interface traffic and drops', async () => {
    const { formatStatus } = await import('../../src/cli/status.js');
    const { renderMetrics } = await import('../../src/daemon/metrics.js');
    const w = await running();
    const zero = { 'no-address': 0, 'wrong-source': 0, elsewhere: 0, 'not-served': 0 };
    w.lan.traffic = {
      lan0: { packetsOut: 3, bytesOut: 300, packetsIn: 4, bytesIn: 400, drops: { ...zero, elsewhere: 2 } },
    };
    w.clock.advance(LAN_READ_MS);
    await flush(w.daemon);
    const s = w.daemon.status();
    const text = formatStatus(s);
    assert.match(text, /LAN +served \(NAT44 into 192\.0\.0\.4, TCP MSS 1432\)/);
    assert.match(
      text,
      /lan0 up 203\.0\.113\.0\/24: out 3 packets 300 bytes, in 4 packets 400 bytes, dropped elsewhere 2/,
    );
    const m = renderMetrics(s);
    assert.match(m, /^clatd_lan_serving 1$/m);
    assert.match(m, /^clatd_lan_packets_total\{interface="lan0",direction="out"\} 3$/m);
    assert.match(m, /^clatd_lan_bytes_total\{interface="lan0",direction="in"\} 400$/m);
    assert.match(m, /^clatd_lan_drops_total\{interface="lan0",reason="elsewhere"\} 2$/m);
    assert.doesNotMatch(renderMetrics({ ...s, lan: undefined }), /clatd_lan_/);
    await w.daemon.stop();
  });
});
