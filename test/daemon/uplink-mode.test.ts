/**
 * How the CLAT gets its IPv6 address (src/daemon/uplink-mode.ts; the generator for a routed prefix is
 * tested in test/core/nd/neutral.test.ts): the choice in order with every
 * "why not", bad input, and the daemon over the fakes in each mode (what it builds, takes off and
 * gives back, what status and discover say).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatStatus } from '../../src/cli/status.js';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { discover } from '../../src/daemon/discover.js';
import { HEALTH_SAMPLE_MS } from '../../src/daemon/health.js';
import { renderMetrics } from '../../src/daemon/metrics.js';
import {
  chooseUplinkMode,
  describeMode,
  isWait,
  randomUla,
  type UplinkMode,
  UplinkModes,
} from '../../src/daemon/uplink-mode.js';
import { UsageError } from '../../src/options/args.js';
import { FakeDns64, FakeIdentity, FakeNet, flush, started, world } from './fakes.js';

const SLAAC = { address: '2001:db8:1::10', prefixLen: 64 };
const LEASE = { address: '2001:db8:1::a5', prefixLen: 128 };

function chosen(m: ReturnType<typeof chooseUplinkMode>): UplinkMode {
  assert.ok(!isWait(m), `expected a mode, got: ${isWait(m) ? m.wait : ''}`);
  return m as UplinkMode;
}

/** A host whose only global address is a DHCPv6 lease: 2001:db8:1::a5/128 on eth0. */
function leaseOnly(): FakeNet {
  const net = FakeNet.typical();
  net.addrs = net.addrs.filter((a) => a.address !== '2001:db8:1::10');
  net.addrs.push({ ifindex: 2, family: 6, address: '2001:db8:1::a5', prefixLen: 128, scope: 'global' });
  return net;
}

describe('the choice of address mode', () => {
  test('1: a prefix on the uplink covers the /64 of the source: random there, anycast', () => {
    const m = chosen(chooseUplinkMode({ uplink: 'eth0', addresses: [SLAAC], source: SLAAC.address }));
    assert.equal(m.mode, 1);
    assert.equal(m.announce, 'anycast');
    assert.equal(m.drawIn && `${m.drawIn.len}`, '64');
    assert.deepEqual(m.whyNot, []);
    assert.ok(m.dad && m.redraw && !m.take);
  });

  test('2: only a /128 in the /64: clatd answers, and says why not 1', () => {
    const m = chosen(chooseUplinkMode({ uplink: 'eth0', addresses: [LEASE], source: LEASE.address }));
    assert.equal(m.mode, 2);
    assert.equal(m.announce, 'respond');
    assert.ok(m.dad && m.redraw);
    assert.equal(m.whyNot.length, 1);
    assert.equal(m.whyNot[0].mode, 1);
    assert.match(
      m.whyNot[0].why,
      /eth0 has no prefix covering 2001:db8:1::\/64, only 2001:db8:1::a5\/128: the kernel accepts an anycast join only inside a prefix configured on the device/,
    );
  });

  test('2: a prefix longer than /64 does not cover the /64 either', () => {
    const m = chosen(
      chooseUplinkMode({
        uplink: 'eth0',
        addresses: [{ address: '2001:db8:1::10', prefixLen: 80 }],
        source: '2001:db8:1::10',
      }),
    );
    assert.equal(m.mode, 2);
  });

  test('2: the kernel refused the anycast join in this /64 anyway', () => {
    const m = chosen(
      chooseUplinkMode({
        uplink: 'eth0',
        addresses: [SLAAC],
        source: SLAAC.address,
        anycastRefused: { prefix64: '2001:db8:1::', reason: 'setsockopt(IPV6_JOIN_ANYCAST): EADDRNOTAVAIL' },
      }),
    );
    assert.equal(m.mode, 2);
    assert.match(m.whyNot[0].why, /the kernel refused the anycast join in 2001:db8:1::\/64: .*EADDRNOTAVAIL/);
    // A refusal in another /64 does not count here.
    const other = chosen(
      chooseUplinkMode({
        uplink: 'eth0',
        addresses: [SLAAC],
        source: SLAAC.address,
        anycastRefused: { prefix64: '2001:db8:2::', reason: 'x' },
      }),
    );
    assert.equal(other.mode, 1);
  });

  test('no source address: wait', () => {
    const m = chooseUplinkMode({ uplink: 'eth0', addresses: [] });
    assert.ok(isWait(m));
    assert.match(m.wait, /uplink eth0 has no usable source address/);
  });

  test('3: --v6-prefix: random in the routed prefix, announce none, no DAD, why not 1 and 2', () => {
    const m = chosen(
      chooseUplinkMode({
        uplink: 'eth0',
        addresses: [SLAAC],
        source: SLAAC.address,
        v6Prefix: parsePrefix6('2001:db8:99::/96'),
      }),
    );
    assert.equal(m.mode, 3);
    assert.equal(m.announce, 'none');
    assert.equal(m.drawIn?.len, 96);
    assert.ok(!m.dad && !m.redraw && !m.take);
    assert.deepEqual(
      m.whyNot.map((w) => w.mode),
      [1, 2],
    );
    for (const w of m.whyNot) assert.match(w.why, /--v6-prefix 2001:db8:99::\/96 given/);
    assert.match(
      describeMode(m),
      /^address mode 3 \(routed prefix \(--v6-prefix\)\): random in 2001:db8:99::\/96.*no DAD.*; not 1: .*; not 2: /,
    );
  });

  test('3: a --v6-prefix that overlaps a prefix on the uplink waits, with the reason', () => {
    const m = chooseUplinkMode({
      uplink: 'eth0',
      addresses: [SLAAC],
      source: SLAAC.address,
      v6Prefix: parsePrefix6('2001:db8:1::/64'),
    });
    assert.ok(isWait(m));
    assert.match(m.wait, /--v6-prefix 2001:db8:1::\/64 overlaps a prefix on eth0 \(2001:db8:1::10\/64\)/);
    // One inside the /64 overlaps too; a /128 lease is no prefix on the link.
    assert.ok(
      isWait(chooseUplinkMode({ uplink: 'eth0', addresses: [SLAAC], v6Prefix: parsePrefix6('2001:db8:1:0:1::/80') })),
    );
    assert.ok(
      !isWait(chooseUplinkMode({ uplink: 'eth0', addresses: [LEASE], v6Prefix: parsePrefix6('2001:db8:1::/64') })),
    );
  });

  test('4: --v6 configured as a /128 lease: taken off, clatd answers (no prefix covers it)', () => {
    const m = chosen(
      chooseUplinkMode({
        uplink: 'eth0',
        addresses: [SLAAC, { address: '2001:db8:2::7', prefixLen: 128 }],
        v6: '2001:db8:2::7',
      }),
    );
    assert.equal(m.mode, 4);
    assert.equal(m.announce, 'respond');
    assert.equal(m.address, '2001:db8:2::7');
    assert.ok(m.take && m.dad && !m.redraw);
    assert.deepEqual(
      m.whyNot.map((w) => [w.mode, w.why]),
      [
        [1, '--v6 given: the network leased that address to this host; a random one would not be delivered'],
        [2, '--v6 given: the network leased that address to this host; a random one would not be delivered'],
        [3, 'no --v6-prefix'],
      ],
    );
  });

  test('4: --v6 configured inside a SLAAC /64: taken off, joined as anycast', () => {
    const m = chosen(chooseUplinkMode({ uplink: 'eth0', addresses: [SLAAC, LEASE], v6: LEASE.address }));
    assert.equal(m.announce, 'anycast');
    assert.ok(m.take);
    assert.match(m.how, /taken off eth0 while clatd runs/);
  });

  test('4: --v6 not configured but inside an on-link prefix: not taken, anycast', () => {
    const m = chosen(chooseUplinkMode({ uplink: 'eth0', addresses: [SLAAC], v6: '2001:db8:1::77' }));
    assert.equal(m.announce, 'anycast');
    assert.ok(!m.take);
  });

  test('4: an address clatd holds (taken off earlier) still counts as configured', () => {
    const m = chosen(chooseUplinkMode({ uplink: 'eth0', addresses: [], held: [LEASE], v6: LEASE.address }));
    assert.equal(m.announce, 'respond');
    assert.ok(m.take);
  });

  test('4: --v6 outside every prefix of the uplink: one clear reason to wait', () => {
    const m = chooseUplinkMode({ uplink: 'eth0', addresses: [SLAAC], v6: '2001:db8:77::1' });
    assert.ok(isWait(m));
    assert.equal(
      m.wait,
      '--v6 2001:db8:77::1 is outside every prefix of eth0 (2001:db8:1::10/64), so the network would not deliver it here; ' +
        'give an address the network leased to this host, or --v6-prefix for a prefix routed to it',
    );
  });
});

describe('mode 5: the host address, shared', () => {
  const ULA = randomUla(new Uint8Array([1, 2, 3, 4, 5]));

  test('a random ULA /64: fd, the 40-bit ID, subnet 0', () => {
    assert.equal(`${ULA.len}`, '64');
    assert.deepEqual([...ULA.addr.subarray(0, 8)], [0xfd, 1, 2, 3, 4, 5, 0, 0]);
  });

  test('--v6 shared: the source address shared, the CLAT address private, no DAD, why not 1-4', () => {
    const m = chosen(
      chooseUplinkMode({ uplink: 'eth0', addresses: [SLAAC], source: SLAAC.address, v6: 'shared', privatePrefix: ULA }),
    );
    assert.equal(m.mode, 5);
    assert.equal(m.announce, 'shared');
    assert.equal(m.shared, SLAAC.address);
    assert.equal(m.drawIn, ULA);
    assert.ok(!m.dad && !m.redraw && !m.take);
    assert.deepEqual(
      m.whyNot.map((w) => `${w.mode} ${w.why}`),
      ['1 --v6 shared given', '2 --v6 shared given', '3 --v6 shared given', '4 --v6 shared given'],
    );
    assert.match(
      describeMode(m),
      /^address mode 5 \(the host's own address, shared \(NAT66\)\): shares 2001:db8:1::10/,
    );
  });

  test('--v6 shared with no global address yet: waits with the reason', () => {
    for (const o of [
      { addresses: [], source: undefined },
      { addresses: [], source: '2001:db8:1::10' },
    ]) {
      const m = chooseUplinkMode({ uplink: 'eth0', ...o, v6: 'shared', privatePrefix: ULA });
      assert.ok(isWait(m));
      assert.equal(m.wait, '--v6 shared: eth0 has no global IPv6 address yet to share');
    }
  });

  test("the last resort: nothing came back to mode 2's address in this /64: mode 5 with why not 1-4", () => {
    const undelivered = { prefix64: '2001:db8:1::', reason: 'no packet in 60 s' };
    const m = chosen(
      chooseUplinkMode({ uplink: 'eth0', addresses: [LEASE], source: LEASE.address, undelivered, privatePrefix: ULA }),
    );
    assert.equal(m.mode, 5);
    assert.equal(m.shared, LEASE.address);
    assert.deepEqual(
      m.whyNot.map((w) => w.mode),
      [1, 2, 3, 4],
    );
    assert.match(m.whyNot[0].why, /eth0 has no prefix covering 2001:db8:1::\/64/);
    assert.equal(m.whyNot[1].why, 'a random address in 2001:db8:1::/64 was not delivered: no packet in 60 s');
    assert.equal(m.whyNot[2].why, 'no --v6-prefix');
    assert.equal(m.whyNot[3].why, 'no --v6');
    // Another /64 than the one that failed: mode 2 again.
    const other = { prefix64: '2001:db8:2::', reason: 'x' };
    assert.equal(
      chosen(
        chooseUplinkMode({
          uplink: 'eth0',
          addresses: [LEASE],
          source: LEASE.address,
          undelivered: other,
          privatePrefix: ULA,
        }),
      ).mode,
      2,
    );
  });

  test('a SLAAC host stays in mode 1 whatever comes back (a PLAT that is down looks the same)', () => {
    const undelivered = { prefix64: '2001:db8:1::', reason: 'no packet in 60 s' };
    const m = chosen(
      chooseUplinkMode({ uplink: 'eth0', addresses: [SLAAC], source: SLAAC.address, undelivered, privatePrefix: ULA }),
    );
    assert.equal(m.mode, 1);
    const modes = new UplinkModes(ULA);
    modes.choose({ uplink: 'eth0', addresses: [SLAAC], source: SLAAC.address });
    assert.equal(modes.undelivered('2001:db8:1::c0a8:1', 'x'), false);
    assert.equal(chosen(modes.choose({ uplink: 'eth0', addresses: [SLAAC], source: SLAAC.address })).mode, 1);
  });

  test('UplinkModes: mode 2 undelivered gives mode 5 while the addresses stay; a new address tries mode 2 again', () => {
    const modes = new UplinkModes(ULA);
    const lease = { uplink: 'eth0', addresses: [LEASE], source: LEASE.address };
    assert.equal(chosen(modes.choose(lease)).mode, 2);
    assert.equal(modes.undelivered('2001:db8:1::c0a8:1', 'nothing back'), true);
    assert.equal(chosen(modes.choose(lease)).mode, 5);
    const renewed = { ...lease, addresses: [LEASE, { address: '2001:db8:1::a6', prefixLen: 128 }] };
    assert.equal(chosen(modes.choose(renewed)).mode, 2);
  });

  test('two runs draw in different private prefixes', () => {
    assert.notDeepEqual(new UplinkModes().privatePrefix.addr, new UplinkModes().privatePrefix.addr);
    assert.equal(new UplinkModes().privatePrefix.addr[0], 0xfd);
  });
});

describe('bad input', () => {
  const usage = (fn: () => unknown, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof UsageError && re.test((e as Error).message));

  test('--v6-prefix: a prefix of /32 to /96, without host bits, global unicast', () => {
    assert.equal(resolveConfig({ 'v6-prefix': '2001:db8:99::/64' }).v6Prefix?.len, 64);
    assert.equal(resolveConfig({ 'v6-prefix': '2001:db8:99::/96' }).v6Prefix?.len, 96);
    usage(() => resolveConfig({ 'v6-prefix': '2001:db8:99::/112' }), /--v6-prefix must be \/32 to \/96 .*got \/112/);
    usage(() => resolveConfig({ 'v6-prefix': '2001::/24' }), /--v6-prefix must be \/32 to \/96 .*got \/24/);
    usage(() => resolveConfig({ 'v6-prefix': '2001:db8:99::5/64' }), /--v6-prefix is not a prefix: .*host bits/);
    usage(() => resolveConfig({ 'v6-prefix': '2001:db8:99::' }), /--v6-prefix must be a prefix with its length/);
    usage(() => resolveConfig({ 'v6-prefix': 'nonsense/64' }), /--v6-prefix is not a prefix/);
    usage(() => resolveConfig({ 'v6-prefix': 'fe80::/64' }), /--v6-prefix must be a global unicast prefix/);
    usage(() => resolveConfig({ 'v6-prefix': 'ff02::/64' }), /--v6-prefix must be a global unicast prefix/);
  });

  test('--v6 shared is accepted; a near miss is still an address error', () => {
    assert.equal(resolveConfig({ v6: 'shared' }).v6, 'shared');
    assert.throws(() => resolveConfig({ v6: 'shard' }), /must be an IPv6 address, got "shard"/);
  });

  test('--v6 and --v6-prefix together: one clear error', () => {
    usage(
      () => resolveConfig({ v6: '2001:db8:1::5', 'v6-prefix': '2001:db8:99::/64' }),
      /--v6-prefix and --v6 exclude each other/,
    );
  });

  test('in the config file, the error names the file and key', () => {
    usage(
      () => resolveConfig({}, { 'v6-prefix': '2001:db8:99::/120' }, '/etc/clatd/clatd.toml'),
      /^clatd run: \/etc\/clatd\/clatd\.toml: key "v6-prefix" must be \/32 to \/96/,
    );
  });
});

describe('the daemon in each address mode (fakes)', () => {
  test('mode 1 on a SLAAC host: anycast, the status says so', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    assert.equal(w.daemon.state, 'running');
    assert.deepEqual(w.plumbing.announced, ['anycast']);
    const st = w.daemon.status();
    assert.deepEqual(
      { mode: st.uplinkMode?.mode, announce: st.uplinkMode?.announce, why: st.uplinkMode?.why },
      { mode: 1, announce: 'anycast', why: [] },
    );
    assert.ok(w.lines.some((l) => /address mode 1 \(on-link \/64, anycast\): random in 2001:db8:1::\/64/.test(l)));
    await w.daemon.stop();
  });

  test('mode 2 on a host with only a /128 lease: respond, with why not 1, in log, status and status text', async () => {
    const w = await started({ pref64: '64:ff9b::/96' }, leaseOnly());
    assert.equal(w.daemon.state, 'running');
    assert.deepEqual(w.plumbing.announced, ['respond'], 'never tries the anycast join the kernel would refuse');
    const st = w.daemon.status();
    assert.equal(st.uplinkMode?.mode, 2);
    assert.match(st.clat6 ?? '', /^2001:db8:1::c0/);
    assert.match(st.uplinkMode?.why[0].why ?? '', /only 2001:db8:1::a5\/128/);
    const logged = w.lines.filter((l) => /address mode 2/.test(l));
    assert.equal(logged.length, 1);
    assert.match(logged[0], /not 1: eth0 has no prefix covering 2001:db8:1::\/64/);
    const text = formatStatus(st);
    assert.match(text, /mode +2, on-link \/64, clatd answers neighbor solicitations/);
    assert.match(text, /not 1: eth0 has no prefix covering/);
    await w.daemon.stop();
  });

  test('mode 1 refused by the kernel (EADDRNOTAVAIL): one warning, then mode 2 with the reason; no loop', async () => {
    const w = world({ pref64: '64:ff9b::/96' });
    w.plumbing.refuseAnycast = true;
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.deepEqual(w.plumbing.announced, ['respond']);
    const st = w.daemon.status();
    assert.equal(st.uplinkMode?.mode, 2);
    assert.match(
      st.uplinkMode?.why[0].why ?? '',
      /the kernel refused the anycast join in 2001:db8:1::\/64: .*EADDRNOTAVAIL/,
    );
    assert.equal(w.lines.filter((l) => /refused the anycast join/.test(l) && /WARN|warn/.test(l)).length, 1);
    assert.equal(w.daemon.errors, 0);
    // A new address on the uplink ends the refusal: mode 1 is tried again.
    w.plumbing.refuseAnycast = false;
    w.net.addrs.push({ ifindex: 2, family: 6, address: '2001:db8:1::11', prefixLen: 64, scope: 'global' });
    w.net.emit({ type: 'addr', ifindex: 2, family: 6, removed: false });
    await flush(w.daemon);
    assert.equal(w.daemon.status().uplinkMode?.mode, 1);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.changes['address-mode-changed'], 1);
    assert.deepEqual(w.plumbing.announced, ['respond', 'anycast']);
    assert.deepEqual([...w.plumbing.live].sort(), ['datapath', 'ipv4', 'uplink'], 'one of each, the old side closed');
    await w.daemon.stop();
  });

  test('mode 3: drawn in the routed prefix, nothing announced, DAD skipped with the reason', async () => {
    const w = await started({ pref64: '64:ff9b::/96', 'v6-prefix': '2001:db8:99::/96' });
    assert.equal(w.daemon.state, 'running');
    assert.deepEqual(w.plumbing.announced, ['none']);
    assert.deepEqual(w.dad.probed, [], 'no DAD probe');
    const st = w.daemon.status();
    assert.match(st.clat6 ?? '', /^2001:db8:99::d0/);
    assert.equal(st.uplinkMode?.mode, 3);
    assert.equal(st.dad.result, 'skipped');
    assert.match(st.dad.skipped ?? '', /routed to this host: no other node on the link uses it/);
    assert.ok(w.lines.some((l) => /DAD skipped: /.test(l)));
    assert.match(formatStatus(st), /DAD +skipped: /);
    assert.match(renderMetrics(st), /^clatd_address_mode\{mode="3",announce="none"\} 1$/m);
    await w.daemon.stop();
  });

  test('mode 4: the /128 lease is taken off, served, and given back on stop', async () => {
    const net = leaseOnly();
    const w = await started({ pref64: '64:ff9b::/96', v6: '2001:db8:1::a5' }, net);
    assert.equal(w.daemon.state, 'running');
    assert.ok(!net.addrs.some((a) => a.address === '2001:db8:1::a5'), 'taken off the uplink');
    assert.ok(
      w.plumbing.ops.indexOf('takeAddress 2001:db8:1::a5/128') <
        w.plumbing.ops.findIndex((o) => o.startsWith('openUplink')),
    );
    assert.deepEqual(w.plumbing.announced, ['respond']);
    assert.deepEqual(w.dad.probed, ['2001:db8:1::a5']);
    const st = w.daemon.status();
    assert.equal(st.clat6, '2001:db8:1::a5');
    assert.equal(st.uplinkMode?.mode, 4);
    // Taken off, the host keeps its uplink (the held address still counts as its own).
    w.net.emit({ type: 'addr', ifindex: 2, family: 6, removed: true });
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    // A DHCPv6 client puts it back: taken off again, with a warning.
    net.addrs.push({ ifindex: 2, family: 6, address: '2001:db8:1::a5', prefixLen: 128, scope: 'global' });
    w.net.emit({ type: 'addr', ifindex: 2, family: 6, removed: false });
    await flush(w.daemon);
    assert.ok(!net.addrs.some((a) => a.address === '2001:db8:1::a5'), 'taken off again');
    assert.equal(w.daemon.changes['address-retaken'], 1);
    assert.equal(w.daemon.state, 'running');
    await w.daemon.stop();
    assert.ok(
      net.addrs.some((a) => a.address === '2001:db8:1::a5' && a.prefixLen === 128),
      'given back',
    );
    assert.equal(w.plumbing.taken.size, 0);
  });

  test('mode 4 inside a SLAAC /64: anycast', async () => {
    const net = FakeNet.typical();
    net.addrs.push({ ifindex: 2, family: 6, address: '2001:db8:1::a5', prefixLen: 128, scope: 'global' });
    const w = await started({ pref64: '64:ff9b::/96', v6: '2001:db8:1::a5' }, net);
    assert.deepEqual(w.plumbing.announced, ['anycast']);
    assert.equal(w.plumbing.taken.size, 1);
    await w.daemon.stop();
    assert.equal(w.plumbing.taken.size, 0);
  });

  test('--v6 outside every prefix: waits with the reason in status, logged once, builds nothing', async () => {
    const w = await started({ pref64: '64:ff9b::/96', v6: '2001:db8:77::1' });
    for (let i = 0; i < 3; i++) {
      w.net.emit({ type: 'route', family: 6, removed: false });
      await flush(w.daemon);
    }
    assert.equal(w.daemon.state, 'waiting-uplink');
    assert.match(w.daemon.status().reason ?? '', /--v6 2001:db8:77::1 is outside every prefix of eth0/);
    assert.equal(w.lines.filter((l) => /is outside every prefix/.test(l)).length, 1);
    assert.equal(w.plumbing.live.size, 0);
    assert.equal(w.daemon.errors, 0);
    await w.daemon.stop();
  });

  test('mode 5 with --v6 shared: the private address, announce shared, DAD skipped, status says mode 5', async () => {
    const w = await started({ pref64: '64:ff9b::/96', v6: 'shared' });
    assert.equal(w.daemon.state, 'running');
    assert.deepEqual(w.plumbing.announced, ['shared']);
    const st = w.daemon.status();
    assert.equal(st.uplinkMode?.mode, 5);
    assert.equal(st.uplinkMode?.announce, 'shared');
    assert.match(st.clat6 ?? '', /^fd/);
    assert.equal(st.dad?.result, 'skipped');
    assert.match(formatStatus(st), /mode +5, the host's own address, shared \(NAT66\)/);
    assert.ok(
      w.lines.some((l) => /DAD skipped: fd.* is private to this host \(the network sees 2001:db8:1::10\)/.test(l)),
    );
    await w.daemon.stop();
  });

  test('the last resort: nothing comes back in mode 2, so mode 5, with why not 2; a SLAAC host stays in mode 1', async () => {
    for (const [net, want] of [
      [leaseOnly, ['respond', 'shared']],
      [FakeNet.typical, ['anycast']],
    ] as const) {
      const w = await started({ pref64: '64:ff9b::/96' }, net());
      const dp = w.plumbing.dp;
      assert.ok(dp);
      dp.packets64 = 0;
      for (let i = 0; i < 5; i++) {
        dp.packets += 5;
        w.clock.advance(HEALTH_SAMPLE_MS);
        await flush(w.daemon);
      }
      assert.deepEqual(w.plumbing.announced, want);
      assert.equal(w.daemon.state, 'running');
      const st = w.daemon.status();
      if (want.length === 1) {
        assert.equal(st.uplinkMode?.mode, 1);
        assert.doesNotMatch(st.health?.message ?? '', /mode 5/);
      } else {
        assert.equal(st.uplinkMode?.mode, 5);
        assert.match(st.clat6 ?? '', /^fd/);
        assert.match(
          st.uplinkMode?.why[1].why ?? '',
          /^a random address in 2001:db8:1::\/64 was not delivered: translated packets left for 15 s and nothing came back$/,
        );
        assert.ok(w.lines.some((l) => /trying address mode 5/.test(l)));
        assert.ok(
          w.lines.some((l) => /address mode 5 .*\(was mode 2\)/.test(l)),
          w.lines.join(''),
        );
      }
      assert.equal(w.daemon.errors, 0);
      await w.daemon.stop();
    }
  });

  test('mode 5: a new host address (a privacy address) keeps the CLAT address; status names the new one', async () => {
    const w = await started({ pref64: '64:ff9b::/96', v6: 'shared' });
    const clat6 = w.daemon.status().clat6;
    w.net.addrs.unshift({ ifindex: 2, family: 6, address: '2001:db8:1::7e3', prefixLen: 64, scope: 'global' });
    w.net.emit({ type: 'addr', ifindex: 2, family: 6, removed: false });
    await flush(w.daemon);
    const st = w.daemon.status();
    assert.equal(st.state, 'running');
    assert.equal(st.clat6, clat6);
    assert.match(st.uplinkMode?.how ?? '', /^shares 2001:db8:1::7e3 with the host/);
    assert.deepEqual(w.plumbing.announced, ['shared']);
    await w.daemon.stop();
  });

  test('mode 5 with no global address yet: waits with the reason in status, builds nothing', async () => {
    const net = FakeNet.typical();
    net.addrs = net.addrs.filter((a) => !(a.family === 6 && a.scope === 'global'));
    const w = await started({ pref64: '64:ff9b::/96', v6: 'shared' }, net);
    assert.notEqual(w.daemon.state, 'running');
    assert.match(w.daemon.status().reason ?? '', /no (global IPv6 address|usable source address)/);
    assert.equal(w.plumbing.live.size, 0);
    assert.equal(w.daemon.errors, 0);
    await w.daemon.stop();
  });

  test('reload from mode 1 to mode 3 and back: new sides, the address moves', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    w.daemon.reload(resolveConfig({ pref64: '64:ff9b::/96', 'v6-prefix': '2001:db8:99::/64' }));
    await flush(w.daemon);
    assert.equal(w.daemon.status().uplinkMode?.mode, 3);
    assert.match(w.daemon.status().clat6 ?? '', /^2001:db8:99::/);
    w.daemon.reload(resolveConfig({ pref64: '64:ff9b::/96' }));
    await flush(w.daemon);
    assert.equal(w.daemon.status().uplinkMode?.mode, 1);
    assert.match(w.daemon.status().clat6 ?? '', /^2001:db8:1::/);
    assert.deepEqual(w.plumbing.announced, ['anycast', 'none', 'anycast']);
    assert.equal(w.daemon.state, 'running');
    await w.daemon.stop();
  });
});

describe('discover gives the same answer as run', () => {
  const deps = (net: FakeNet) => ({
    net,
    dns64: new FakeDns64(),
    identity: new FakeIdentity(),
    waitForRa: async () => undefined,
    dadParams: async () => ({ transmits: 1, retransMs: 1000 }),
  });

  for (const [name, flags, net, mode] of [
    ['SLAAC', {}, FakeNet.typical, 1],
    ['a /128 lease', {}, leaseOnly, 2],
    ['--v6-prefix', { 'v6-prefix': '2001:db8:99::/80' }, FakeNet.typical, 3],
    ['--v6', { v6: '2001:db8:1::a5' }, leaseOnly, 4],
    ['--v6 shared', { v6: 'shared' }, leaseOnly, 5],
  ] as const) {
    test(`${name}: mode ${mode}, as run chooses`, async () => {
      const d = await discover(resolveConfig({ pref64: '64:ff9b::/96', ...flags }), deps(net()), 0);
      assert.equal(d.uplinkMode?.mode, mode);
      assert.match(d.verdict, new RegExp(`^translate: .*address mode ${mode}$`));
      const w = await started({ pref64: '64:ff9b::/96', ...flags }, net());
      assert.deepEqual(w.daemon.status().uplinkMode, d.uplinkMode);
      await w.daemon.stop();
    });
  }

  test('--v6 outside every prefix: discover says wait, with the same reason', async () => {
    const d = await discover(
      resolveConfig({ pref64: '64:ff9b::/96', v6: '2001:db8:77::1' }),
      deps(FakeNet.typical()),
      0,
    );
    assert.match(d.verdict, /^wait: --v6 2001:db8:77::1 is outside every prefix of eth0/);
    assert.equal(d.uplinkMode, null);
  });
});
