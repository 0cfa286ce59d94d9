import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { ipv4Mtu, tunName } from '../../src/daemon/ports.js';
import { TunInUseError, toNftNetEvent } from '../../src/daemon/system/index.js';
import { FakeNet, flush, LAB, started, turns, WKP, world } from './fakes.js';

describe('daemon start-up', () => {
  test('happy path with --pref64: receive side, then TUN and a paused datapath while DAD runs, then translate', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.dad.hold = true;
    await w.daemon.start();
    await turns(20); // not flush: DAD holds the step
    assert.equal(w.daemon.state, 'dad');
    assert.deepEqual(
      w.plumbing.ops.map((o) => o.split(' ')[0]),
      ['openUplink', 'createIpv4', 'startDatapath'],
    );
    assert.match(w.plumbing.ops[2], / paused$/, 'the workers start while DAD runs, sending nothing');
    assert.equal(w.plumbing.dp?.paused, true);
    w.dad.hold = false;
    w.dad.release();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.deepEqual(
      w.plumbing.ops.map((o) => o.split(' ')[0]),
      ['openUplink', 'createIpv4', 'startDatapath', 'dadPassed', 'resume'],
      'the address passed DAD as drawn: no reconfiguration; the side hears of it before translation resumes',
    );
    assert.equal(w.plumbing.dp?.paused, false);
    assert.equal(w.dad.probed.length, 1);
    assert.match(w.plumbing.ops[1], /^createIpv4 v4-eth0 192\.0\.0\.4 mtu=1472 metric=2048$/);
    const s = w.daemon.status();
    assert.equal(s.pref64, '64:ff9b::/96');
    assert.equal(s.pref64Source, 'flag');
    assert.equal(s.clat4, '192.0.0.4');
    assert.match(s.clat6 ?? '', /^2001:db8:1::/);
    assert.equal(s.prefix64, '2001:db8:1::/64');
    assert.equal(s.tun, 'v4-eth0');
    assert.equal(s.mtu, 1472);
    assert.equal(s.dad.result, 'unique');
    // Each start-up step is one log line with a stable event name.
    const events = w.lines.map((l) => /^\S+ \S+\s+(\S+)/.exec(l)?.[1]);
    for (const e of ['uplink:', 'pref64:', 'native-ipv4:', 'addresses:', 'receive:', 'dad:', 'ipv4:', 'translate:']) {
      assert.ok(events.includes(e), `missing ${e} in\n${w.lines.join('')}`);
    }
    await w.daemon.stop();
  });

  test('no IPv6 default route: waits, then starts when one appears', async () => {
    const net = FakeNet.typical();
    net.default6 = undefined;
    const w = await started({ pref64: '64:ff9b::/96' }, net);
    assert.equal(w.daemon.state, 'waiting-uplink');
    assert.match(w.daemon.status().reason ?? '', /no IPv6 default route/);
    net.default6 = 2;
    net.emit({ type: 'route', family: 6, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    await w.daemon.stop();
  });

  test('--interface that does not exist, is down, or has no global address: waits and says why', async () => {
    const net = FakeNet.typical();
    const w = await started({ pref64: '64:ff9b::/96', interface: 'wlan0' }, net);
    assert.match(w.daemon.status().reason ?? '', /interface wlan0 does not exist/);
    net.links_.push({ index: 3, name: 'wlan0', up: false, mtu: 1500 });
    net.emit({ type: 'link', ifindex: 3, removed: false });
    await flush(w.daemon);
    assert.match(w.daemon.status().reason ?? '', /wlan0 is down/);
    net.setLinkUp(3, true);
    await flush(w.daemon);
    assert.match(w.daemon.status().reason ?? '', /wlan0 has no global IPv6 address/);
    net.addrs.push({ ifindex: 3, family: 6, address: '2001:db8:2::5', prefixLen: 64, scope: 'global' });
    net.emit({ type: 'addr', ifindex: 3, family: 6, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().prefix64, '2001:db8:2::/64');
    await w.daemon.stop();
  });

  test('PREF64 from a Router Advertisement, expiry pauses, a new one resumes with a new address', async () => {
    const w = await started();
    assert.equal(w.daemon.state, 'waiting-prefix');
    w.net.emit({ type: 'pref64', ifindex: 2, prefix: LAB, lifetime: 600 });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().pref64Source, 'ra');
    const first = w.daemon.status().clat6;
    w.clock.advance(600_000);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'paused');
    assert.equal(w.plumbing.dp?.paused, true);
    assert.equal(w.daemon.changes['pref64-lost'], 1);
    w.net.emit({ type: 'pref64', ifindex: 2, prefix: WKP, lifetime: 600 });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().pref64, '64:ff9b::/96');
    assert.notEqual(w.daemon.status().clat6, first);
    assert.equal(w.plumbing.dp?.paused, false);
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('createIpv4')).length, 1, 'the TUN stays');
    await w.daemon.stop();
  });

  test('PREF64 change while running: re-addresses without restarting', async () => {
    const w = world();
    await w.daemon.start();
    w.net.emit({ type: 'pref64', ifindex: 2, prefix: LAB, lifetime: 600 });
    await flush(w.daemon);
    w.net.emit({ type: 'pref64', ifindex: 2, prefix: parsePrefix6('2001:db8:65::/96'), lifetime: 600 });
    await flush(w.daemon);
    // A router's change of its prefix is damped: the first one after 5 s.
    assert.equal(w.daemon.status().pref64, '2001:db8:64::/96');
    w.clock.advance(5_000);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().pref64, '2001:db8:65::/96');
    assert.equal(w.daemon.changes['pref64-changed'], 1);
    assert.equal(w.plumbing.dp?.params.pref64.addr[5], 0x65);
    await w.daemon.stop();
  });

  test('RFC 7050 when there is neither a flag nor an RA', async () => {
    const w = world({ 'dns64-server': ['2001:db8::53'] });
    w.dns64.answer = [LAB];
    await w.daemon.start();
    await flush(w.daemon);
    // A Router Solicitation first; DNS64 only after the RA had its head start.
    assert.deepEqual(w.net.solicited, [2]);
    assert.equal(w.dns64.calls, 0);
    assert.equal(w.daemon.state, 'waiting-prefix');
    w.clock.advance(1500);
    await flush(w.daemon);
    assert.equal(w.dns64.calls, 1);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().pref64Source, 'dns64');
    assert.ok(w.lines.some((l) => /pref64: NAT64 prefix 2001:db8:64::\/96 from DNS64/.test(l)));
    await w.daemon.stop();
  });

  test('--pref64-timeout: gives up with exit code 1', async () => {
    const w = await started({ 'pref64-timeout': '5' });
    assert.equal(w.daemon.state, 'waiting-prefix');
    w.clock.advance(5000);
    assert.equal(await w.daemon.done, 1);
    assert.equal(w.daemon.state, 'stopped');
    // The reason is said once, as an error; the transitions after it do not repeat it.
    const said = w.lines.filter((l) => /no NAT64 prefix found within --pref64-timeout 5s/.test(l));
    assert.equal(said.length, 1, said.join(''));
    assert.match(said[0], / error fail: no NAT64 prefix found within --pref64-timeout 5s\n$/);
    const states = w.lines.filter((l) => / state: /.test(l)).map((l) => l.replace(/^.* state: (.*) from=.*\n$/, '$1'));
    assert.deepEqual(states.slice(-3), ['waiting-prefix -> failed', 'failed -> stopping', 'stopping -> stopped']);
  });
});

describe('daemon live changes', () => {
  test('native IPv4 (auto mode): idle, up when it goes, torn down when it returns', async () => {
    const net = FakeNet.typical();
    net.defaults4 = [2];
    const w = await started({ pref64: '64:ff9b::/96' }, net);
    assert.equal(w.daemon.state, 'idle-native-ipv4');
    net.defaults4 = [];
    net.emit({ type: 'route', family: 4, removed: true });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    // Our own default route through the TUN is not native IPv4.
    net.defaults4 = [50];
    net.emit({ type: 'route', family: 4, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    net.defaults4 = [50, 2];
    net.emit({ type: 'route', family: 4, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'idle-native-ipv4');
    assert.deepEqual([...w.plumbing.live], []);
    assert.equal(w.daemon.changes['native-ipv4-appeared'], 1);
    assert.equal(w.daemon.changes['native-ipv4-gone'], 1);
    await w.daemon.stop();
  });

  test('--mode always ignores native IPv4', async () => {
    const net = FakeNet.typical();
    net.defaults4 = [2];
    const w = await started({ pref64: '64:ff9b::/96', mode: 'always' }, net);
    assert.equal(w.daemon.state, 'running');
    await w.daemon.stop();
  });

  test('the /64 changes: new address and DAD, the TUN stays', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    const before = w.daemon.status().clat6;
    w.net.addrs = w.net.addrs.filter((a) => a.address !== '2001:db8:1::10');
    w.net.addrs.push({ ifindex: 2, family: 6, address: '2001:db8:7::10', prefixLen: 64, scope: 'global' });
    w.net.emit({ type: 'addr', ifindex: 2, family: 6, removed: true });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.match(w.daemon.status().clat6 ?? '', /^2001:db8:7::/);
    assert.notEqual(w.daemon.status().clat6, before);
    assert.equal(w.daemon.changes['prefix64-changed'], 1);
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('createIpv4')).length, 1);
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('startDatapath')).length, 1);
    assert.ok(w.plumbing.ops.includes(`reconfigure ${w.daemon.status().clat6}`));
    assert.equal(w.dad.probed.length, 2);
    await w.daemon.stop();
  });

  test('uplink down pauses, up resumes with the same address after DAD, and the same datapath', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    const addr = w.daemon.status().clat6;
    const dp = w.plumbing.dp;
    w.net.setLinkUp(2, false);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'paused');
    assert.equal(w.daemon.changes['uplink-down'], 1);
    assert.ok(
      w.lines.some((l) => / warn +change: uplink eth0 is down/.test(l)),
      'a lost uplink is a warning',
    );
    assert.equal(dp?.paused, true, 'paused, not stopped: its workers stay warm');
    w.net.setLinkUp(2, true);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().clat6, addr);
    assert.equal(w.daemon.changes['uplink-up'], 1);
    assert.ok(w.lines.some((l) => / info +change: uplink eth0 is usable again/.test(l)));
    assert.deepEqual(w.dad.probed, [addr, addr]);
    assert.equal(w.plumbing.dp, dp);
    assert.equal(dp?.paused, false);
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('startDatapath')).length, 1);
    await w.daemon.stop();
  });

  test('uplink disappears: everything torn down, waits, comes back', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    const eth0 = w.net.links_.splice(1, 1)[0];
    w.net.default6 = undefined;
    w.net.emit({ type: 'link', ifindex: 2, removed: true });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'waiting-uplink');
    assert.deepEqual([...w.plumbing.live], []);
    assert.equal(w.daemon.changes['uplink-gone'], 1);
    assert.ok(w.lines.some((l) => / warn +change: uplink ifindex 2 is gone/.test(l)));
    w.net.links_.push(eth0);
    w.net.default6 = 2;
    w.net.emit({ type: 'link', ifindex: 2, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    await w.daemon.stop();
  });

  test('the default route moves to another uplink (Wi-Fi to Ethernet): torn down on the old, up on the new', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    w.net.links_.push({ index: 3, name: 'eth1', up: true, mtu: 1400 });
    w.net.addrs.push({ ifindex: 3, family: 6, address: '2001:db8:2::10', prefixLen: 64, scope: 'global' });
    w.plumbing.ops.length = 0;
    w.net.default6 = 3;
    w.net.emit({ type: 'route', family: 6, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    const st = w.daemon.status();
    assert.equal(st.uplink?.name, 'eth1');
    assert.equal(st.tun, 'v4-eth1');
    assert.match(st.clat6 ?? '', /^2001:db8:2:/);
    assert.equal(st.mtu, 1372);
    assert.deepEqual(
      w.plumbing.ops.slice(0, 3),
      ['stopDatapath', 'closeUplink', 'closeIpv4'],
      'the old side is gone before the new one is built',
    );
    assert.ok(w.plumbing.ops.some((o) => o.startsWith('openUplink eth1 2001:db8:2:')));
    assert.ok(w.plumbing.ops.includes('createIpv4 v4-eth1 192.0.0.4 mtu=1372 metric=2048'));
    assert.ok(
      w.lines.some((l) => /removed TUN, routes, sockets and nft table: uplink changed from eth0 to eth1/.test(l)),
    );
    await w.daemon.stop();
    assert.deepEqual([...w.plumbing.live], []);
  });

  test('a change that sends no event is seen by the 30 s check', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    w.net.pathMtu.set(2, 1280);
    w.clock.advance(29_000);
    await flush(w.daemon);
    assert.equal(w.daemon.status().mtu, 1472);
    w.clock.advance(1_000);
    await flush(w.daemon);
    assert.equal(w.daemon.status().mtu, 1252);
    await w.daemon.stop();
  });

  test('MTU change: TUN MTU updated live', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    w.net.pathMtu.set(2, 1400);
    w.net.emit({ type: 'link', ifindex: 2, removed: false });
    await flush(w.daemon);
    assert.ok(w.plumbing.ops.includes('setMtu 1372'));
    assert.equal(w.daemon.status().mtu, 1372);
    assert.equal(w.daemon.changes['mtu-changed'], 1);
    await w.daemon.stop();
  });
});

describe('daemon DAD', () => {
  test('a duplicate draws a new address, the receive side follows it', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.dad.duplicates.add('2001:db8:1::c001');
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().clat6, '2001:db8:1::c002');
    assert.ok(w.plumbing.ops.includes('retarget 2001:db8:1::c002'));
    // Only the address DAD passed may be answered for, and only after the side moved to it.
    const passed = w.plumbing.ops.filter((o) => o.startsWith('dadPassed'));
    assert.deepEqual(passed, ['dadPassed 2001:db8:1::c002']);
    assert.ok(w.plumbing.ops.indexOf(passed[0]) > w.plumbing.ops.indexOf('retarget 2001:db8:1::c002'));
    assert.equal(w.daemon.status().dad.duplicates.length, 1);
    assert.equal(w.daemon.changes['address-duplicate'], 1);
    // Warned once, with what answered; trying the next address is information.
    assert.equal(w.lines.filter((l) => / warn +dad: 2001:db8:1::c001 is in use on the link/.test(l)).length, 1);
    assert.ok(w.lines.some((l) => / info +change: 2001:db8:1::c001 is a duplicate; trying /.test(l)));
    await w.daemon.stop();
  });

  test('the receive side failing to follow a new address: the step is logged and retried', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.dad.duplicates.add('2001:db8:1::c001');
    w.plumbing.retargetError = new Error('setsockopt(IPV6_JOIN_ANYCAST) failed: ENOMEM');
    await w.daemon.start();
    await flush(w.daemon);
    assert.ok(w.lines.some((l) => /error step: setsockopt\(IPV6_JOIN_ANYCAST\) failed: ENOMEM/.test(l)));
    assert.equal(w.daemon.errors, 1);
    w.clock.advance(2_000);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.notEqual(w.daemon.status().clat6, '2001:db8:1::c001', 'the duplicate is not used');
    await w.daemon.stop();
    assert.deepEqual([...w.plumbing.live], []);
  });

  test('only duplicates: DAD is blocked, nothing is left up, clatd keeps running and backs off; it comes up once the answers stop', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    // Every address of the first two rounds is answered for.
    for (let i = 1; i <= 8; i++) w.dad.duplicates.add(`2001:db8:1::c00${i}`);
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'dad');
    assert.deepEqual([...w.plumbing.live], [], 'no CLAT without an address');
    let st = w.daemon.status();
    assert.equal(st.dad.result, 'blocked');
    assert.equal(st.dad.blockedRounds, 1);
    assert.equal(st.dad.retryInSec, 5);
    assert.deepEqual(
      st.dad.duplicates.map((d) => d.address),
      ['2001:db8:1::c001', '2001:db8:1::c002', '2001:db8:1::c003', '2001:db8:1::c004'],
      'every address of the round, the last included',
    );
    assert.match(st.reason ?? '', /DAD blocked: every address tried was answered for; next round in 5 s/);
    assert.ok(
      w.lines.some((l) =>
        / warn +dad: 2001:db8:1::c001 is in use on the link: Neighbor Advertisement from fe80::99/.test(l),
      ),
    );
    assert.ok(w.lines.some((l) => / warn +dad: DAD blocked: .*keeps running and tries new addresses in 5 s/.test(l)));
    // Other events do not start a round before the back-off ends.
    w.net.emit({ type: 'link', ifindex: 2, removed: false });
    await flush(w.daemon);
    assert.equal(w.dad.probed.length, 4);
    w.clock.advance(5_000);
    await flush(w.daemon);
    st = w.daemon.status();
    assert.equal(st.dad.blockedRounds, 2);
    assert.equal(st.dad.retryInSec, 10, 'the back-off doubles');
    assert.equal(w.dad.probed.length, 8);
    w.clock.advance(10_000);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running', 'the first round that passes brings the CLAT up');
    st = w.daemon.status();
    assert.equal(st.dad.result, 'unique');
    assert.equal(st.dad.blockedRounds, 0);
    assert.equal(st.clat6, '2001:db8:1::c009');
    await w.daemon.stop();
    assert.equal(await w.daemon.done, 0);
    assert.deepEqual([...w.plumbing.live], []);
  });

  test('DAD interrupted (the link fails under it): not a failure; tried again', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.dad.interruptNext = 'uv_poll DAD packet socket on eth0: EBADF';
    await w.daemon.start();
    await flush(w.daemon);
    assert.notEqual(w.daemon.state, 'stopped');
    assert.ok(
      w.lines.some((l) => /warn +dad: DAD interrupted: uv_poll DAD packet socket on eth0: EBADF; trying again/.test(l)),
    );
    w.clock.advance(2_000);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    // The TUN built for the interrupted attempt stays, and so does its address: the datapath
    // translates for the address the TUN holds, not for a second one drawn beside it.
    assert.equal(w.daemon.status().clat4, '192.0.0.4');
    assert.equal(w.plumbing.dp?.params.clat4, '192.0.0.4');
    await w.daemon.stop();
    assert.equal(await w.daemon.done, 0);
  });

  test('--v6 is used as given', async () => {
    const w = await started({ pref64: '64:ff9b::/96', v6: '2001:db8:1::1234', v4: '192.0.0.5' });
    assert.equal(w.daemon.status().clat6, '2001:db8:1::1234');
    assert.equal(w.daemon.status().clat4, '192.0.0.5');
    await w.daemon.stop();
  });

  test('a duplicate of a leased --v6 is not replaced: DAD is blocked and tried again after the back-off', async () => {
    const w = world({ pref64: '64:ff9b::/96', v6: '2001:db8:1::1234' });
    w.dad.duplicates.add('2001:db8:1::1234');
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'dad');
    assert.deepEqual(w.dad.probed, ['2001:db8:1::1234'], 'no other address drawn');
    assert.equal(w.daemon.status().dad.result, 'blocked');
    assert.equal(w.plumbing.live.size, 0, 'nothing built while the leased address is in use');
    w.dad.duplicates.clear();
    w.clock.advance(5_000);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().clat6, '2001:db8:1::1234');
    await w.daemon.stop();
  });

  test('the IPv4 address skips those in use', async () => {
    const net = FakeNet.typical();
    net.addrs.push({ ifindex: 2, family: 4, address: '192.0.0.4', prefixLen: 32, scope: 'global' });
    const w = await started({ pref64: '64:ff9b::/96' }, net);
    assert.equal(w.daemon.status().clat4, '192.0.0.5');
    await w.daemon.stop();
  });
});

describe('daemon DAD modes and reload', () => {
  test('--dad optimistic translates while DAD runs', async () => {
    const w = world({ pref64: '64:ff9b::/96', dad: 'optimistic' });
    w.dad.hold = true;
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().dad.result, 'optimistic');
    assert.ok(w.plumbing.ops.some((o) => o.startsWith('startDatapath')));
    assert.ok(!w.plumbing.ops.some((o) => o.startsWith('dadPassed')), 'translating, but not answered for yet');
    w.dad.release();
    await flush(w.daemon);
    assert.equal(w.daemon.status().dad.result, 'unique');
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('dadPassed')).length, 1);
    await w.daemon.stop();
  });

  test('optimistic: a new prefix during DAD abandons the old run', async () => {
    const w = world({ dad: 'optimistic' });
    w.dad.hold = true;
    await w.daemon.start();
    w.net.emit({ type: 'pref64', ifindex: 2, prefix: LAB, lifetime: 600 });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    w.net.emit({ type: 'pref64', ifindex: 2, prefix: WKP, lifetime: 600 });
    w.clock.advance(5_000); // the router's change of prefix is damped
    await flush(w.daemon);
    assert.equal(w.dad.probed.length, 2);
    w.dad.release();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().pref64, '64:ff9b::/96');
    assert.equal(w.daemon.status().dad.result, 'unique');
    assert.equal(w.daemon.status().clat6, w.dad.probed[1]);
    await w.daemon.stop();
    assert.equal(await w.daemon.done, 0);
  });

  test('--dad off sends the probes and moves on', async () => {
    const w = await started({ pref64: '64:ff9b::/96', dad: 'off' });
    assert.equal(w.daemon.status().dad.result, 'probes-sent');
    await w.daemon.stop();
  });

  test('reload: log level at once, a new --pref64 re-addresses, translator settings reconfigure', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    const first = w.daemon.status().clat6;
    w.daemon.reload(resolveConfig({ pref64: '2001:db8:64::/96', 'log-level': 'warn' }));
    await flush(w.daemon);
    assert.equal(w.daemon.log.level, 'warn');
    assert.equal(w.daemon.status().pref64, '2001:db8:64::/96');
    assert.notEqual(w.daemon.status().clat6, first);
    assert.equal(w.daemon.state, 'running');
    const n = w.plumbing.ops.filter((o) => o.startsWith('reconfigure')).length;
    w.daemon.reload(resolveConfig({ pref64: '2001:db8:64::/96', 'traffic-class': 'zero' }));
    await flush(w.daemon);
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('reconfigure')).length, n + 1);
    assert.equal(w.plumbing.dp?.params.translator.trafficClass, 'zero');
    assert.equal(w.daemon.changes.reload, 2);
    await w.daemon.stop();
  });
});

describe('nftables events as the daemon sees them', () => {
  test('own nft runs give none; others are named; lost events stand for any table', () => {
    const own = (pid: number) => pid === 100;
    const del = (pid?: number, proc?: string) =>
      ({ kind: 'deleted', table: 'clatd-eth0', objects: ['table'], pid, proc }) as const;
    assert.equal(toNftNetEvent(del(100, 'nft'), own), undefined);
    assert.deepEqual(toNftNetEvent(del(200, 'nft'), own), { type: 'nft', table: 'clatd-eth0', by: 'nft (pid 200)' });
    assert.deepEqual(toNftNetEvent(del(201), own), { type: 'nft', table: 'clatd-eth0', by: 'process (pid 201)' });
    assert.deepEqual(toNftNetEvent(del(), own), { type: 'nft', table: 'clatd-eth0', by: 'another process' });
    assert.deepEqual(toNftNetEvent({ kind: 'overrun' }, own), {
      type: 'nft',
      table: undefined,
      by: 'someone (nftables events were lost)',
    });
  });
});

describe('reload during a step', () => {
  test('a new --v4 while DAD of a new /64 is in flight: one orderly rebuild, nothing half-built', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    // A new /64: the step re-addresses and waits in DAD.
    w.dad.hold = true;
    w.net.addrs = w.net.addrs.filter((a) => a.address !== '2001:db8:1::10');
    w.net.addrs.push({ ifindex: 2, family: 6, address: '2001:db8:9::10', prefixLen: 64, scope: 'global' });
    w.net.emit({ type: 'addr', ifindex: 2, family: 6, removed: false });
    await turns(20); // not flush: the step waits in DAD until released
    assert.equal(w.daemon.state, 'dad');
    w.daemon.reload(resolveConfig({ pref64: '64:ff9b::/96', v4: '192.0.0.6' }));
    await turns(20);
    assert.equal(w.daemon.state, 'dad', 'the DAD in flight is not aborted (that failed the daemon)');
    w.dad.hold = false;
    w.dad.release();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    const st = w.daemon.status();
    assert.equal(st.clat4, '192.0.0.6');
    assert.match(st.clat6 ?? '', /^2001:db8:9:/);
    assert.deepEqual([...w.plumbing.live].sort(), ['datapath', 'ipv4', 'uplink']);
    assert.equal(w.plumbing.dp?.params.clat4, '192.0.0.6');
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('openUplink')).length, 2, 'one rebuild');
    await w.daemon.stop();
    assert.deepEqual([...w.plumbing.live], []);
  });
});

describe('daemon stop', () => {
  test('stop is idempotent and removes everything, datapath first', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    const a = w.daemon.stop('SIGTERM');
    const b = w.daemon.stop('SIGINT');
    assert.equal(a, b);
    await a;
    assert.equal(w.daemon.state, 'stopped');
    assert.equal(await w.daemon.done, 0);
    assert.deepEqual([...w.plumbing.live], []);
    const tail = w.plumbing.ops.slice(-3);
    assert.deepEqual(tail, ['stopDatapath', 'closeUplink', 'closeIpv4']);
    assert.equal(w.net.watching, false);
    await w.daemon.stop();
  });

  test('stop during DAD aborts it and removes the receive side, the TUN and the paused datapath', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.dad.hold = true;
    await w.daemon.start();
    await turns(20);
    assert.equal(w.daemon.state, 'dad');
    assert.ok(w.plumbing.live.has('datapath'));
    await w.daemon.stop();
    assert.equal(w.daemon.state, 'stopped');
    assert.deepEqual([...w.plumbing.live], []);
  });

  test('the datapath started during DAD fails: the step is retried and the CLAT comes up', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.plumbing.startDatapathError = new Error('datapath start failed: worker 0 exited during start (code 1)');
    await w.daemon.start();
    await flush(w.daemon);
    assert.ok(w.lines.some((l) => /error step: datapath start failed: worker 0 exited/.test(l)));
    assert.notEqual(w.daemon.state, 'running');
    w.clock.advance(2_000);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.deepEqual([...w.plumbing.live].sort(), ['datapath', 'ipv4', 'uplink']);
    assert.equal(w.plumbing.dp?.paused, false);
    await w.daemon.stop();
    assert.deepEqual([...w.plumbing.live], []);
  });

  test('leftovers of an earlier instance are removed and logged at start', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.plumbing.leftovers = ['link v4-eth0', 'nft table ip6 clatd-eth0'];
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.lines.filter((l) => / recovery: removed leftover/.test(l)).length, 2);
    await w.daemon.stop();
  });

  test('each transition is one log line and counted', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    await w.daemon.stop();
    const states = w.lines.filter((l) => / state: /.test(l)).map((l) => l.replace(/^.* state: ([^:]*):.*\n$/, '$1'));
    assert.deepEqual(states, ['starting -> dad', 'dad -> running', 'running -> stopping', 'stopping -> stopped']);
    assert.equal(w.daemon.status().transitions.running, 1);
  });
});

describe('helpers', () => {
  test('TUN name is cut to 15 bytes', () => {
    assert.equal(tunName('eth0'), 'v4-eth0');
    assert.equal(tunName('enp0s20f0u1u'), 'v4-enp0s20f0u1u', 'up to 12 bytes: as is');
    // Longer: 7 bytes and a hash of the whole name, so names sharing their start stay apart.
    const a = tunName('enp0s20f0u1u1');
    const b = tunName('enp0s20f0u1u2');
    assert.match(a, /^v4-enp0s20-[0-9a-f]{4}$/);
    assert.equal(a.length, 15);
    assert.notEqual(a, b);
    assert.equal(tunName('enp0s20f0u1u1'), a, 'stable: the next start finds the same name');
  });
  test('IPv4 MTU: clamp 1280..1528, minus 28', () => {
    assert.equal(ipv4Mtu(1500), 1472);
    assert.equal(ipv4Mtu(9000), 1500);
    assert.equal(ipv4Mtu(1000), 1252);
    assert.equal(ipv4Mtu(undefined), 1252);
  });
});

describe('datapath failures', () => {
  test('a failed datapath is replaced by a fresh one; counters keep counting; a stale report is ignored', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    const first = w.plumbing.dp;
    assert.ok(first);
    first.packets = 10;
    first.fail('worker 1 exited (code 1): boom');
    first.fail('worker 0 exited (code 1): boom');
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.notEqual(w.plumbing.dp, first);
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('startDatapath')).length, 2, 'one restart for two reports');
    assert.equal(w.daemon.changes['datapath-restarted'], 1);
    assert.ok(w.lines.some((l) => / warn +change: restarting the datapath: worker 1 exited/.test(l)));
    assert.equal(w.daemon.status().counters['46'].packets, 10, 'the old datapath counts are kept');
    // Not fatal (it is replaced): a warning, once.
    assert.equal(w.lines.filter((l) => / warn +datapath: /.test(l)).length, 1, 'the live report, logged once');
    // The replaced datapath reporting again changes nothing.
    first.fail('late report');
    await flush(w.daemon);
    assert.ok(w.lines.some((l) => /debug datapath: a replaced datapath reported: late report/.test(l)));
    assert.equal(w.plumbing.ops.filter((o) => o.startsWith('startDatapath')).length, 2);
    await w.daemon.stop();
  });

  test('a datapath that refuses new parameters is replaced by a fresh one holding them', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    const first = w.plumbing.dp;
    assert.ok(first);
    // Some workers may have taken the new parameters and some not: only a fresh datapath agrees.
    first.refuse = 'worker 1: setsockopt(SO_ATTACH_FILTER) failed: ENOMEM';
    w.daemon.reload(resolveConfig({ pref64: '64:ff9b::/96', 'traffic-class': 'zero' }));
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.notEqual(w.plumbing.dp, first);
    assert.equal(w.plumbing.dp?.params.translator.trafficClass, 'zero');
    assert.equal(w.daemon.changes['datapath-restarted'], 1);
    assert.ok(w.lines.some((l) => /restarting the datapath: reconfiguring it failed: worker 1/.test(l)));
    await w.daemon.stop();
  });

  test('the TUN deleted from outside: built again with the same addresses, no new DAD, and translating', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    const { clat4, clat6 } = w.daemon.status();
    const dads = w.daemon.dadAttempts;
    // `ip link del v4-eth0`: the link goes (with its route), the workers lose their queues.
    w.net.links_ = w.net.links_.filter((l) => l.index !== 50);
    w.plumbing.ops.length = 0;
    w.plumbing.dp?.fail('worker 0 lost its tun side: TUN v4-eth0 is closed');
    await flush(w.daemon);
    assert.deepEqual(w.plumbing.ops, [
      'stopDatapath',
      'closeIpv4',
      'createIpv4 v4-eth0 192.0.0.4 mtu=1472 metric=2048',
      `startDatapath ${clat4} ${clat6}`,
    ]);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.changes['tun-gone'], 1);
    assert.equal(w.daemon.changes['datapath-restarted'], 1);
    assert.equal(w.daemon.dadAttempts, dads, 'the IPv6 side is untouched: no new DAD');
    assert.ok(w.lines.some((l) => / warn +change: v4-eth0 was deleted; creating it again/.test(l)));
    await w.daemon.stop();
    assert.equal(w.plumbing.live.size, 0);
  });

  test('the TUN set down or its route deleted from outside: put back, and said so', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    w.plumbing.ops.length = 0;
    w.net.emit({ type: 'route', family: 4, removed: true });
    await flush(w.daemon);
    assert.deepEqual(w.plumbing.ops, [], 'nothing missing, nothing done');
    w.plumbing.ipv4Missing = ['the link was down', 'default route'];
    w.net.emit({ type: 'link', ifindex: 50, removed: false });
    await flush(w.daemon);
    assert.deepEqual(w.plumbing.ops, ['repairIpv4 the link was down, default route']);
    assert.ok(
      w.lines.some((l) =>
        / warn +change: v4-eth0 changed from outside; put back: the link was down, default route/.test(l),
      ),
    );
    assert.equal(w.daemon.changes['ipv4-restored'], 1);
    assert.equal(w.daemon.state, 'running');
    await w.daemon.stop();
  });

  test('a repair that fails is tried again by the next step, never left running without a datapath', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    w.net.links_ = w.net.links_.filter((l) => l.index !== 50);
    w.plumbing.createIpv4Error = new Error('TUNSETIFF v4-eth0: EBUSY (device or resource busy)');
    w.net.emit({ type: 'link', ifindex: 50, removed: true });
    await flush(w.daemon);
    assert.ok(w.lines.some((l) => /step: TUNSETIFF v4-eth0: EBUSY/.test(l)));
    assert.ok(!w.plumbing.live.has('datapath'));
    w.plumbing.startDatapathError = new Error('datapath start failed: worker 0 exited');
    w.clock.advance(2_000);
    await flush(w.daemon);
    assert.ok(w.plumbing.live.has('ipv4'), 'the TUN is back');
    assert.ok(!w.plumbing.live.has('datapath'));
    w.clock.advance(2_000);
    await flush(w.daemon);
    assert.ok(w.plumbing.live.has('datapath'), 'and the datapath on the third attempt');
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.changes['datapath-restarted'], 3);
    assert.ok(w.lines.some((l) => /translating again after a datapath restart/.test(l)));
    await w.daemon.stop();
  });

  test('the nft table deleted by someone else (flush ruleset) is put back; other tables are not ours', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    w.plumbing.ops.length = 0;
    w.net.emit({ type: 'nft', table: 'clatd-wlan0', by: 'nft (pid 77)' });
    await flush(w.daemon);
    assert.deepEqual(w.plumbing.ops, [], 'another uplink’s table');
    w.net.emit({ type: 'nft', table: 'clatd-eth0', by: 'nft (pid 78)' });
    await flush(w.daemon);
    assert.deepEqual(w.plumbing.ops, ['restoreFilter']);
    assert.ok(
      w.lines.some((l) => / warn +change: nft table ip6 clatd-eth0 was deleted by nft \(pid 78\); restored/.test(l)),
    );
    // Events lost: any table may be gone, so ours is put back.
    w.net.emit({ type: 'nft', table: undefined, by: 'someone (nftables events were lost)' });
    await flush(w.daemon);
    assert.deepEqual(w.plumbing.ops, ['restoreFilter', 'restoreFilter']);
    // A restore that fails is tried again by the next step.
    w.plumbing.restoreError = new Error('nft install clatd-eth0: nft -f - failed: Operation not permitted');
    w.net.emit({ type: 'nft', table: 'clatd-eth0', by: 'nft (pid 79)' });
    await flush(w.daemon);
    assert.ok(w.lines.some((l) => /step: nft install clatd-eth0/.test(l)));
    w.clock.advance(2_000);
    await flush(w.daemon);
    assert.equal(w.plumbing.ops.filter((o) => o === 'restoreFilter').length, 4);
    assert.equal(w.daemon.changes['nft-restored'], 3);
    // A change that left clatd's filter whole (or one of its own nft runs named by another PID,
    // as in a PID namespace) is not answered with a restore, which would loop.
    w.plumbing.filterIntact = true;
    w.net.emit({ type: 'nft', table: 'clatd-eth0', by: 'nft (pid 80)' });
    await flush(w.daemon);
    assert.equal(w.plumbing.ops.filter((o) => o === 'restoreFilter').length, 4);
    assert.ok(w.lines.some((l) => /nft \(pid 80\) changed nft table ip6 clatd-eth0; clatd's filter is intact/.test(l)));
    assert.equal(w.daemon.state, 'running');
    await w.daemon.stop();
  });

  test('a datapath that keeps failing ends the daemon with an error instead of looping', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    for (let i = 0; i < 6; i++) {
      w.plumbing.dp?.fail(`worker 0 lost its packet side: failure ${i}`);
      await flush(w.daemon);
    }
    assert.equal(await w.daemon.done, 1);
    assert.equal(w.daemon.state, 'stopped');
    const fatal = w.lines.filter((l) => /the datapath failed 6 times within 10 minutes/.test(l));
    assert.equal(fatal.length, 1, 'the restart budget spent: said once');
    assert.match(fatal[0], / error fail: the datapath failed 6 times within 10 minutes; last: .*failure 5/);
    assert.equal(w.plumbing.live.size, 0, 'everything taken down');
  });

  test('failures spread out in time are restarted every time', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    for (let i = 0; i < 8; i++) {
      w.plumbing.dp?.fail(`failure ${i}`);
      await flush(w.daemon);
      w.clock.advance(150_000);
      await flush(w.daemon);
    }
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.changes['datapath-restarted'], 8);
    await w.daemon.stop();
  });

  test('a failure while paused: the datapath is replaced when translation resumes', async () => {
    const w = world();
    await w.daemon.start();
    w.net.emit({ type: 'pref64', ifindex: 2, prefix: LAB, lifetime: 600 });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    w.clock.advance(600_000);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'paused');
    const old = w.plumbing.dp;
    old?.fail('worker 0 exited (code 1)');
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'paused');
    w.net.emit({ type: 'pref64', ifindex: 2, prefix: LAB, lifetime: 600 });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.notEqual(w.plumbing.dp, old);
    assert.equal(w.plumbing.dp?.paused, false);
    await w.daemon.stop();
  });
});

describe('a step that keeps failing', () => {
  test('backs off (2 s doubling to 60 s) whatever events arrive, and logs the same error once, then with its count', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.plumbing.createIpv4Always = new Error('TUNSETIFF v4-eth0: EACCES');
    await w.daemon.start();
    await flush(w.daemon);
    // A minute of fake time with netlink events every 100 ms (what a failing bring-up itself causes).
    for (let t = 0; t < 60_000; t += 100) {
      w.net.emit({ type: 'link', ifindex: 50, removed: true });
      w.clock.advance(100);
      await flush(w.daemon);
    }
    // Tries at 0, 2, 6, 14, 30 s (the next at 62 s): five bring-ups, five DAD probes at most.
    const tries = w.plumbing.ops.filter((o) => o.startsWith('createIpv4')).length;
    assert.equal(tries, 5);
    assert.ok(w.dad.probed.length <= tries, `${w.dad.probed.length} probes`);
    const errors = w.lines.filter((l) => / error +step: TUNSETIFF v4-eth0: EACCES/.test(l));
    assert.equal(errors.length, 5);
    assert.match(errors[4], /5 times in a row; next try in 32 s/);
    assert.equal(w.daemon.state !== 'stopped', true);
    // The failure clears: the next try brings the CLAT up and the count starts again.
    w.plumbing.createIpv4Always = undefined;
    w.clock.advance(32_000);
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    await w.daemon.stop();
  });
});

describe('another clatd on the uplink', () => {
  test('a TUN held by a running process ends the start with exit code 1 and touches nothing', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.plumbing.leftoversError = new TunInUseError('v4-eth0');
    await w.daemon.start();
    assert.equal(await w.daemon.done, 1);
    assert.ok(w.lines.some((l) => /v4-eth0 already exists and is held by a running process/.test(l)));
    assert.deepEqual(w.plumbing.ops, []);
  });

  test('other clean-up failures are only a warning', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.plumbing.leftoversError = new Error('netlink said no');
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.ok(w.lines.some((l) => /could not look for leftovers: netlink said no/.test(l)));
    await w.daemon.stop();
  });
});
