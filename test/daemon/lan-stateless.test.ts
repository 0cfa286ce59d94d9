/**
 * Router mode's stateless mode (RFC 6877 §6.3 with a dedicated prefix, RFC 7757 EAM): the mapping
 * of LAN subnets into the routed prefix's first /96, the configuration that selects it, and the
 * daemon over fakes: the datapath gets the LANs' EAM entries (and again when a LAN's subnet
 * changes), the table drops the kernel copy of the mapped prefixes and masquerades nothing, the
 * CLAT's own address is drawn outside the LANs' /96, and status says why the fast path does not
 * carry LAN traffic.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatStatus } from '../../src/cli/status.js';
import { eam4to6, eam6to4 } from '../../src/core/addr/eam.js';
import { formatIPv4, parseIPv4 } from '../../src/core/addr/ipv4.js';
import { formatIPv6, parseIPv6 } from '../../src/core/addr/ipv6.js';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { resolveConfig as resolveXlat } from '../../src/core/xlat/config.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { drawOutsideLanBlock, inLanBlock, lanBlock, lanEam } from '../../src/daemon/lan-map.js';
import { planReload } from '../../src/daemon/reload.js';
import { translatorConfig } from '../../src/daemon/translator-config.js';
import { FakeNet, flush, world } from './fakes.js';

const P64 = parsePrefix6('2001:db8:100::/64');
const FLAGS = {
  pref64: '64:ff9b::/96',
  interface: 'eth0',
  lan: ['lan0'],
  'lan-mode': 'stateless',
  'v6-prefix': '2001:db8:100::/64',
};

describe('stateless LAN mapping (pure)', () => {
  test('a LAN subnet a.b.c.d/N maps to P::a.b.c.d/(96+N) in the first /96 of the prefix', () => {
    assert.deepEqual(lanEam(P64, ['203.0.113.0/24']), [{ v4: '203.0.113.0/24', v6: '2001:db8:100::cb00:7100/120' }]);
    assert.deepEqual(
      lanEam(parsePrefix6('2001:db8:100:ab00::/56'), ['198.51.100.128/25', '192.0.2.0/24', '192.0.2.0/24']),
      [
        { v4: '192.0.2.0/24', v6: '2001:db8:100:ab00::c000:200/120' },
        { v4: '198.51.100.128/25', v6: '2001:db8:100:ab00::c633:6480/121' },
      ],
    );
    assert.deepEqual(lanEam(P64, ['192.0.2.9/32']), [{ v4: '192.0.2.9/32', v6: '2001:db8:100::c000:209/128' }]);
    assert.deepEqual(lanEam(P64, []), []);
    assert.equal(lanBlock(parsePrefix6('2001:db8:100::/95')).len, 96);
    assert.throws(() => lanBlock(parsePrefix6('2001:db8:100::/96')), /\/95 or shorter/);
  });

  test('the translator maps each LAN device to its own IPv6 address, and back', () => {
    const cfg = resolveXlat(
      translatorConfig({
        pref64: parsePrefix6('64:ff9b::/96'),
        clat4: '192.0.0.4',
        clat6: '2001:db8:100:0:1234:5678:9abc:def0',
        mtu: 1472,
        translator: {
          trafficClass: 'copy',
          udpZeroChecksum: 'compute',
          icmpSrcV4: '192.0.0.8',
          lowestIpv6Mtu: 1280,
          wkpGlobalOnly: true,
        },
        lanEam: lanEam(P64, ['203.0.113.0/24']),
      }),
    );
    assert.equal(cfg.eam.size, 2);
    assert.equal(cfg.eamSourcesOnly, true);
    // 203.0.113.10 -> 2001:db8:100::cb00:710a, and back.
    const e = cfg.eam.find4(parseIPv4('203.0.113.10'));
    assert.ok(e);
    const out = new Uint8Array(16);
    eam4to6(e, parseIPv4('203.0.113.10'), out, 0);
    assert.equal(formatIPv6(out), '2001:db8:100::cb00:710a');
    const back = cfg.eam.find6(parseIPv6('2001:db8:100::cb00:7163'), 0);
    assert.ok(back);
    assert.equal(formatIPv4(eam6to4(back, parseIPv6('2001:db8:100::cb00:7163'), 0)), '203.0.113.99');
    assert.equal(cfg.eam.find4(parseIPv4('203.0.114.1')), undefined, 'outside the LAN: not a source');
  });

  test('the CLAT draw avoids the LANs /96', () => {
    const seq = ['2001:db8:100::cb00:710a', '2001:db8:100::1', '2001:db8:100:0:1::1'];
    let i = 0;
    const draw = drawOutsideLanBlock(() => seq[i++], P64);
    assert.equal(draw(), '2001:db8:100:0:1::1');
    assert.ok(inLanBlock(P64, parseIPv6('2001:db8:100::1')));
    assert.ok(!inLanBlock(P64, parseIPv6('2001:db8:100:0:1::1')));
    assert.throws(() => drawOutsideLanBlock(() => '2001:db8:100::5', P64)(), /no CLAT address outside/);
  });
});

describe('--lan-mode', () => {
  test('nat44 by default; stateless needs --lan and --v6-prefix of /95 or shorter; restart-only', () => {
    assert.equal(resolveConfig({ interface: 'eth0', lan: ['lan0'] }).lanMode, 'nat44');
    assert.equal(resolveConfig(FLAGS).lanMode, 'stateless');
    assert.throws(() => resolveConfig({ ...FLAGS, lan: [] }), /--lan-mode stateless is a way of serving LANs/);
    const { 'v6-prefix': _, ...noPrefix } = FLAGS;
    assert.throws(() => resolveConfig(noPrefix), /--lan-mode stateless needs --v6-prefix/);
    assert.throws(() => resolveConfig({ ...FLAGS, 'v6-prefix': '2001:db8:100::/96' }), /\/95 or shorter/);
    assert.throws(() => resolveConfig({ ...FLAGS, 'lan-mode': 'nat66' }), /--lan-mode must be one of nat44, stateless/);
    const plan = planReload(resolveConfig(FLAGS), resolveConfig({ ...FLAGS, 'lan-mode': 'nat44' }));
    assert.deepEqual(plan.restart, ['lanMode']);
    assert.equal(plan.cfg.lanMode, 'stateless');
  });
});

function lanNet(): FakeNet {
  const net = FakeNet.typical();
  net.links_.push({ index: 3, name: 'lan0', up: true, mtu: 1500 });
  net.addrs.push({ ifindex: 3, family: 4, address: '203.0.113.1', prefixLen: 24, scope: 'global' });
  return net;
}

describe('the daemon in stateless router mode (fakes)', () => {
  test('EAM entries to the datapath, mapped prefixes to the table, no masquerade; a new LAN subnet re-maps', async () => {
    const w = world(FLAGS, lanNet());
    // The fake draws in the prefix's first /96 first: the CLAT must redraw outside it.
    // The fake draws in the prefix's first /96 at first (a /64 is drawn as an on-link /64 is).
    const gen = w.identity.generateIPv6.bind(w.identity);
    let n = 0;
    w.identity.generateIPv6 = (o) => {
      const a = parseIPv6(gen(o));
      if (n++ > 0) a[8] = 0x42;
      return formatIPv6(a);
    };
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    const clat6 = w.daemon.status().clat6 ?? '';
    assert.equal(n, 2, 'drawn twice: the first one was in the LANs /96');
    assert.ok(!inLanBlock(P64, parseIPv6(clat6)), clat6);
    assert.deepEqual(w.plumbing.dp?.params.lanEam, [{ v4: '203.0.113.0/24', v6: '2001:db8:100::cb00:7100/120' }]);
    assert.deepEqual(w.lan.plan?.mapped, ['2001:db8:100::cb00:7100/120']);
    assert.ok(w.lan.plan?.serve);
    const s = w.daemon.status().lan;
    assert.equal(s?.mode, 'stateless');
    assert.equal(s?.masqueradeTo, null);
    assert.deepEqual(s?.mapped, [{ v4: '203.0.113.0/24', v6: '2001:db8:100::cb00:7100/120' }]);
    assert.match(s?.fastPath ?? '', /only the CLAT address/);
    assert.ok(w.lines.some((l) => /stateless: 203\.0\.113\.0\/24 <-> 2001:db8:100::cb00:7100\/120/.test(l)));
    assert.ok(w.lines.some((l) => /serving LAN lan0 .*stateless, each device mapped/.test(l)));

    // The LAN's address changes: mapped anew, without a restart.
    const a = w.net.addrs.find((x) => x.ifindex === 3);
    assert.ok(a);
    a.address = '198.51.100.129';
    a.prefixLen = 25;
    w.daemon.kick();
    await flush(w.daemon);
    assert.deepEqual(w.plumbing.dp?.params.lanEam, [{ v4: '198.51.100.128/25', v6: '2001:db8:100::c633:6480/121' }]);
    assert.deepEqual(w.lan.plan?.mapped, ['2001:db8:100::c633:6480/121']);
    assert.equal(w.daemon.status().clat6, clat6, 'the CLAT address stays');
    assert.match(formatStatus(w.daemon.status()), /served \(stateless, EAM; TCP MSS 1432\)/);
    assert.match(formatStatus(w.daemon.status()), /198\.51\.100\.128\/25 <-> 2001:db8:100::c633:6480\/121/);
    assert.match(formatStatus(w.daemon.status()), /kernel fast path not for LAN traffic/);

    // A new routed prefix (SIGHUP): a new CLAT address, and the LAN mapped into the new prefix.
    w.daemon.reload(resolveConfig({ ...FLAGS, 'v6-prefix': '2001:db8:200::/64' }));
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.match(w.daemon.status().clat6 ?? '', /^2001:db8:200:/);
    assert.deepEqual(w.plumbing.dp?.params.lanEam, [{ v4: '198.51.100.128/25', v6: '2001:db8:200::c633:6480/121' }]);
    assert.deepEqual(w.lan.plan?.mapped, ['2001:db8:200::c633:6480/121']);
    await w.daemon.stop();
    assert.equal(w.lan.closed, true);
  });

  test('more LAN subnets than are mapped: the first 16 are, the rest are said with the fix', async () => {
    const net = lanNet();
    for (let i = 0; i < 17; i++)
      net.addrs.push({ ifindex: 3, family: 4, address: `198.51.100.${i * 4 + 1}`, prefixLen: 30, scope: 'global' });
    const w = world(FLAGS, net);
    const gen = w.identity.generateIPv6.bind(w.identity);
    w.identity.generateIPv6 = (o) => {
      const a = parseIPv6(gen(o));
      a[8] = 0x42;
      return formatIPv6(a);
    };
    await w.daemon.start();
    await flush(w.daemon);
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.plumbing.dp?.params.lanEam?.length, 16);
    assert.equal(w.lan.plan?.mapped?.length, 16);
    assert.ok(
      w.lines.some((l) => / warn .*18 IPv4 subnets, at most 16 are mapped; not mapped .*203\.0\.113\.0\/24/.test(l)),
    );
    await w.daemon.stop();
  });
});
