/**
 * Router mode's nftables table: the ruleset text (pure) for serving and not serving, bad input
 * refused before nft runs, and in a namespace made for the test: nft accepts the text, the
 * counters are read back per LAN by their comments, the table is replaced and removed.
 */
import assert from 'node:assert/strict';
import { NftError } from '../../src/sys/nft.js';
import {
  installLanTable,
  lanRules,
  lanRuleset,
  lanTableName,
  readLanTable,
  removeLanTable,
} from '../../src/sys/nft-lan.js';
import { NEED_ROOT, withNetns } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

const SERVE = { tun: 'v4-eth0', clat4: '192.0.0.4', mtu: 1472 };
const LAN0 = { name: 'lan0', subnets: ['203.0.113.0/24'] };

describe('LAN ruleset (pure)', () => {
  test('table name: the uplink table name plus /lan, which no interface name can give', () => {
    assert.equal(lanTableName('eth0'), 'clatd-eth0/lan');
    assert.throws(() => lanTableName('a"b'), NftError);
  });

  test('serving: configuration drops first, then counters, MSS clamp both ways, masquerade of LAN sources', () => {
    const r = lanRules({ uplink: 'eth0', serve: SERVE, lans: [LAN0, { name: 'lan1', subnets: [] }] });
    assert.deepEqual(r.forward, [
      'meta nfproto ipv4 iifname "lan0" ip saddr != { 203.0.113.0/24 } counter drop comment "wrong-source lan0"',
      'meta nfproto ipv4 iifname "lan0" oifname != { "v4-eth0", "lan0", "lan1" } counter drop comment "elsewhere lan0"',
      'meta nfproto ipv4 iifname "lan0" oifname "v4-eth0" counter comment "out lan0"',
      'meta nfproto ipv4 iifname "v4-eth0" oifname "lan0" counter comment "in lan0"',
      'meta nfproto ipv4 iifname "lan1" counter drop comment "no-address lan1"',
      'meta nfproto ipv4 oifname "v4-eth0" tcp flags syn / syn,rst tcp option maxseg size > 1432 tcp option maxseg size set 1432',
      'meta nfproto ipv4 iifname "v4-eth0" tcp flags syn / syn,rst tcp option maxseg size > 1432 tcp option maxseg size set 1432',
    ]);
    assert.deepEqual(r.postrouting, [
      'meta nfproto ipv4 oifname "v4-eth0" ip saddr { 203.0.113.0/24 } ip saddr != 192.0.0.4 masquerade',
    ]);
    // Nothing accepts: the host's own forward chains still decide.
    assert.ok(![...r.forward, ...r.postrouting].some((l) => /\baccept\b/.test(l)));
  });

  test('not serving: everything forwarded from each LAN is rejected (host unreachable) and counted; no NAT chain', () => {
    const r = lanRules({ uplink: 'eth0', lans: [LAN0, { name: 'lan1', subnets: [] }] });
    assert.deepEqual(r.forward, [
      'meta nfproto ipv4 iifname "lan0" counter reject with icmp type host-unreachable comment "not-served lan0"',
      'meta nfproto ipv4 iifname "lan1" counter reject with icmp type host-unreachable comment "not-served lan1"',
    ]);
    assert.deepEqual(r.postrouting, []);
    assert.doesNotMatch(lanRuleset({ uplink: 'eth0', lans: [LAN0] }), /postrouting/);
  });

  test('one transaction that replaces a table of the same name; forward chain before the host filter', () => {
    const lines = lanRuleset({ uplink: 'eth0', serve: SERVE, lans: [LAN0] })
      .split('\n')
      .map((l) => l.trim());
    assert.deepEqual(lines.slice(0, 3), [
      'add table inet clatd-eth0/lan',
      'delete table inet clatd-eth0/lan',
      'table inet clatd-eth0/lan {',
    ]);
    assert.ok(lines.includes('type filter hook forward priority mangle; policy accept;'));
    assert.ok(lines.includes('type nat hook postrouting priority srcnat; policy accept;'));
  });

  test('stateless: the same forward rules, no masquerade, the kernel copy of mapped prefixes dropped on the uplink', () => {
    const mapped = ['2001:db8:100::cb00:7100/120'];
    const nat = lanRules({ uplink: 'eth0', serve: SERVE, lans: [LAN0] });
    const r = lanRules({ uplink: 'eth0', serve: SERVE, lans: [LAN0], mapped });
    assert.deepEqual(r.forward, nat.forward);
    assert.deepEqual(r.postrouting, []);
    assert.deepEqual(r.prerouting, [
      'meta nfproto ipv6 iifname "eth0" ip6 daddr { 2001:db8:100::cb00:7100/120 } counter drop comment "mapped-kernel-copy"',
    ]);
    // Not served: still dropped (the kernel has no such address and would route it back out).
    assert.deepEqual(lanRules({ uplink: 'eth0', lans: [LAN0], mapped }).prerouting, r.prerouting);
    const text = lanRuleset({ uplink: 'eth0', serve: SERVE, lans: [LAN0], mapped });
    assert.match(text, /type filter hook prerouting priority raw; policy accept;/);
    assert.match(text, /stateless, EAM/);
    assert.doesNotMatch(text, /masquerade|postrouting/);
    assert.deepEqual(lanRules({ uplink: 'eth0', serve: SERVE, lans: [LAN0] }).prerouting, []);
    assert.throws(
      () => lanRules({ uplink: 'eth0', serve: SERVE, lans: [LAN0], mapped: ['2001:db8:100::1/120'] }),
      /not an IPv6 prefix/,
    );
  });

  test('bad input is refused before nft runs', () => {
    const bad = [
      { uplink: 'eth0', serve: SERVE, lans: [{ name: 'la"n', subnets: [] }] },
      { uplink: 'eth0', serve: SERVE, lans: [{ name: 'lan0', subnets: ['203.0.113.0/33'] }] },
      { uplink: 'eth0', serve: SERVE, lans: [{ name: 'lan0', subnets: ['203.0.113.256/24'] }] },
      { uplink: 'eth0', serve: { ...SERVE, clat4: '2001:db8::1' }, lans: [LAN0] },
      { uplink: 'eth0', serve: { ...SERVE, mtu: 100 }, lans: [LAN0] },
    ];
    for (const r of bad) assert.throws(() => installLanTable(r, { nft: '/nonexistent' }), NftError, JSON.stringify(r));
  });
});

describe('LAN table in a network namespace', { skip: NEED_ROOT }, () => {
  test('nft takes both forms; counters come back per LAN; replace and remove', async () => {
    await withNetns((ns) => {
      const lans = [LAN0, { name: 'lan1', subnets: ['198.51.100.0/25', '192.0.2.0/24'] }];
      assert.equal(
        ns.enter(() => readLanTable('eth0')),
        undefined,
        'no table yet',
      );
      ns.enter(() => installLanTable({ uplink: 'eth0', lans }));
      const idle = ns.enter(() => readLanTable('eth0'));
      assert.equal(idle?.rules, 2);
      assert.deepEqual(idle?.counters.lan0.drops, {
        'no-address': 0,
        'wrong-source': 0,
        elsewhere: 0,
        'not-served': 0,
      });
      ns.enter(() => installLanTable({ uplink: 'eth0', serve: SERVE, lans }));
      const listed = ns.exec('nft', 'list', 'table', 'inet', 'clatd-eth0/lan');
      assert.match(listed, /masquerade/);
      assert.match(listed, /maxseg size set 1432/);
      assert.equal(listed.match(/table inet/g)?.length, 1, 'replaced, not added');
      const serving = ns.enter(() => readLanTable('eth0'));
      assert.equal(serving?.rules, 11);
      assert.deepEqual(Object.keys(serving?.counters ?? {}).sort(), ['lan0', 'lan1']);
      assert.equal(
        ns.enter(() => removeLanTable('eth0')),
        true,
      );
      assert.equal(
        ns.enter(() => removeLanTable('eth0')),
        false,
        'idempotent',
      );
      assert.doesNotMatch(ns.exec('nft', 'list', 'ruleset'), /clatd/);
      const mapped = ['2001:db8:100::cb00:7100/120'];
      ns.enter(() => installLanTable({ uplink: 'eth0', serve: SERVE, lans, mapped }));
      const stateless = ns.exec('nft', 'list', 'table', 'inet', 'clatd-eth0/lan');
      assert.doesNotMatch(stateless, /masquerade/);
      assert.match(stateless, /ip6 daddr 2001:db8:100::cb00:7100\/120 counter packets 0 bytes 0 drop/);
      assert.deepEqual(Object.keys(ns.enter(() => readLanTable('eth0'))?.counters ?? {}).sort(), ['lan0', 'lan1']);
      assert.equal(
        ns.enter(() => removeLanTable('eth0')),
        true,
      );
    }, 'nftlan');
  });
});
