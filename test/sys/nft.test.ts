/**
 * clatd's nftables table: the ruleset text (pure), errors, and in namespaces made for the test:
 * install / update / list / delete checked with `nft list`, and the filter's effect on the wire —
 * a ping to the CLAT anycast address is dropped while the kernel still answers the NS for it.
 */
import assert from 'node:assert/strict';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import {
  clatFilterIntact,
  clatRuleset,
  clatTableName,
  deleteClatTable,
  findClatTables,
  installClatFilter,
  installSharedFilter,
  listClatTables,
  NftError,
  removeClatFilter,
  sharedFilterIntact,
  sharedRuleset,
  updateClatFilter,
} from '../../src/sys/nft.js';
import { NEED_ROOT, type Netns, withNetns, withVethPair } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

describe('nft ruleset (pure)', () => {
  test('table name: clatd- plus the sanitised uplink name', () => {
    assert.equal(clatTableName('eth0'), 'clatd-eth0');
    assert.equal(clatTableName('wlan0.100'), 'clatd-wlan0.100');
    assert.equal(clatTableName('br@lan#1'), 'clatd-br_lan_1');
    for (const bad of ['', 'a"b', 'a b', 'x/y', 'averyveryverylongname']) {
      assert.throws(
        () => clatTableName(bad),
        (e: unknown) => e instanceof NftError && e.code === 'ERR_CLATD_NFT',
      );
    }
  });

  test('one transaction: replace the table, raw-priority prerouting chain, ND accepted before the drop', () => {
    const text = clatRuleset('eth0', '2001:DB8:0:0::C1A7');
    const lines = text.split('\n').map((l) => l.trim());
    // An earlier version's inet table of the same name goes in the same transaction.
    assert.deepEqual(lines.slice(0, 5), [
      'add table inet clatd-eth0',
      'delete table inet clatd-eth0',
      'add table ip6 clatd-eth0',
      'delete table ip6 clatd-eth0',
      'table ip6 clatd-eth0 {',
    ]);
    assert.ok(lines.some((l) => l.startsWith('comment "clatd:')));
    assert.ok(lines.includes('type filter hook prerouting priority raw; policy accept;'));
    const accept = lines.findIndex((l) => l.endsWith('counter accept'));
    const drop = lines.findIndex((l) => l.endsWith('counter drop'));
    assert.ok(accept > 0 && drop > accept, 'the ND accept rule must come before the drop');
    assert.match(
      lines[accept],
      /^ip6 daddr 2001:db8::c1a7 iifname "eth0" icmpv6 type \{ nd-neighbor-solicit, nd-neighbor-advert \}/,
    );
    assert.equal(lines[drop], 'ip6 daddr 2001:db8::c1a7 iifname "eth0" counter drop');
  });

  test('address mode 5: one ip6 table, the filter plus the pair, the dup after de-NAT and the masquerade', () => {
    const text = sharedRuleset('eth0', '2001:DB8:FE::5', { tx: 'x6-eth0', rx: 'r6-eth0' });
    const lines = text.split('\n').map((l) => l.trim());
    assert.ok(text.startsWith(clatRuleset('eth0', '2001:db8:fe::5').replace('  }\n}\n', '')));
    assert.equal(lines.filter((l) => l.startsWith('table ')).length, 1, 'one table');
    assert.ok(lines.includes('ip6 daddr 2001:db8:fe::5 iifname "r6-eth0" counter drop'));
    assert.ok(
      lines.indexOf('ip6 daddr 2001:db8:fe::5 iifname "r6-eth0" counter drop') < lines.indexOf('chain shared-in {'),
    );
    assert.ok(lines.includes('type filter hook prerouting priority 0; policy accept;'));
    assert.ok(
      lines.includes('ip6 daddr 2001:db8:fe::5 iifname "eth0" counter dup to 2001:db8:fe::5 device "x6-eth0" drop'),
    );
    assert.ok(lines.includes('type nat hook postrouting priority srcnat; policy accept;'));
    assert.ok(lines.includes('oifname "eth0" ip6 saddr 2001:db8:fe::5 counter masquerade'));
    assert.throws(() => sharedRuleset('eth0', '2001:db8:fe::5', { tx: 'x"y', rx: 'r6-eth0' }), NftError);
  });

  test('bad input is refused before nft runs', () => {
    assert.throws(
      () => installClatFilter('eth0', '192.0.2.1', { nft: '/nonexistent' }),
      /not an IPv6 address: "192\.0\.2\.1"/,
    );
    assert.throws(() => deleteClatTable('filter', { nft: '/nonexistent' }), /"filter" is not a clatd table name/);
  });

  test('a missing nft binary says which package to install', () => {
    assert.throws(
      () => installClatFilter('eth0', '2001:db8::1', { nft: '/nonexistent/nft' }),
      (e: unknown) =>
        e instanceof NftError && /\/nonexistent\/nft not found: install the nftables package/.test(e.message),
    );
  });
});

/** Packet and byte counters of the rule ending in `verdict` in the table's text listing. */
function counter(ns: Netns, table: string, verdict: 'accept' | 'drop'): number {
  const text = ns.exec('nft', 'list', 'table', 'ip6', table);
  const m = new RegExp(`counter packets (\\d+) bytes \\d+ ${verdict}`).exec(text);
  assert.ok(m, `no ${verdict} counter in:\n${text}`);
  return Number(m[1]);
}

describe('nft in a network namespace', { skip: NEED_ROOT }, () => {
  test('install, list, update, delete; nft errors carry its stderr', async () => {
    await withNetns((ns) => {
      const table = ns.enter(() => installClatFilter('eth0', '2001:db8::c1a7'));
      assert.equal(table, 'clatd-eth0');
      const listed = ns.exec('nft', 'list', 'ruleset');
      assert.match(listed, /table ip6 clatd-eth0 \{/);
      assert.doesNotMatch(listed, /table inet/);
      assert.match(listed, /comment "clatd: /);
      assert.match(listed, /type filter hook prerouting priority raw; policy accept;/);
      assert.match(
        listed,
        /ip6 daddr 2001:db8::c1a7 iifname "eth0" icmpv6 type \{ nd-neighbor-solicit, nd-neighbor-advert \} counter packets 0 bytes 0 accept/,
      );
      assert.match(listed, /ip6 daddr 2001:db8::c1a7 iifname "eth0" counter packets 0 bytes 0 drop/);
      // Installing again replaces (no duplicate rules), and another uplink gets its own table.
      ns.enter(() => installClatFilter('eth0', '2001:db8::c1a7'));
      ns.enter(() => installClatFilter('wlan0', '2001:db8:1::c1a7'));
      assert.equal(
        ns.exec('nft', 'list', 'table', 'ip6', 'clatd-eth0').match(/counter packets \d+ bytes \d+ drop/g)?.length,
        1,
      );
      assert.deepEqual(ns.enter(() => listClatTables()).sort(), ['clatd-eth0', 'clatd-wlan0']);

      ns.enter(() => updateClatFilter('eth0', '2001:db8::beef'));
      const updated = ns.exec('nft', 'list', 'table', 'ip6', 'clatd-eth0');
      assert.ok(!updated.includes('c1a7'));
      assert.equal(updated.match(/daddr 2001:db8::beef/g)?.length, 2);
      assert.match(updated, /comment "clatd: /, 'the update keeps the table and its comment');

      // A failing nft: its stderr is in the message.
      assert.throws(
        () => ns.enter(() => updateClatFilter('eth1', '2001:db8::1')),
        (e: unknown) =>
          e instanceof NftError &&
          /^nft update clatd-eth1 to 2001:db8::1: nft -f - failed: .*No such file or directory/s.test(e.message),
      );

      ns.enter(() => removeClatFilter('eth0'));
      ns.enter(() => removeClatFilter('eth0')); // idempotent
      assert.deepEqual(
        ns.enter(() => listClatTables()),
        ['clatd-wlan0'],
      );
      ns.enter(() => deleteClatTable('clatd-wlan0'));
      assert.deepEqual(
        ns.enter(() => listClatTables()),
        [],
      );
      assert.doesNotMatch(ns.exec('nft', 'list', 'ruleset'), /clatd/);

      // Address mode 5's chains load into the same table, and removing it removes them all.
      ns.exec('ip', 'link', 'add', 'x6-eth0', 'type', 'veth', 'peer', 'name', 'r6-eth0');
      ns.enter(() => installSharedFilter('eth0', '2001:db8:fe::5', { tx: 'x6-eth0', rx: 'r6-eth0' }));
      assert.match(ns.exec('nft', 'list', 'table', 'ip6', 'clatd-eth0'), /masquerade/);
      assert.equal(
        ns.enter(() => sharedFilterIntact('eth0', '2001:db8:fe::5')),
        true,
      );
      ns.enter(() => removeClatFilter('eth0'));
      assert.doesNotMatch(ns.exec('nft', 'list', 'ruleset'), /clatd/);

      // An earlier version's inet table: listed, replaced by an install, and removed with the ip6 one.
      ns.exec('nft', 'add', 'table', 'inet', 'clatd-eth0');
      ns.exec('nft', 'add', 'table', 'inet', 'clatd-eth0/lan');
      assert.deepEqual(
        ns.enter(() => findClatTables()),
        [{ family: 'inet', name: 'clatd-eth0' }],
      );
      ns.enter(() => installClatFilter('eth0', '2001:db8::c1a7'));
      assert.deepEqual(
        ns.enter(() => findClatTables()),
        [{ family: 'ip6', name: 'clatd-eth0' }],
      );
      ns.exec('nft', 'add', 'table', 'inet', 'clatd-eth0');
      assert.deepEqual(
        ns.enter(() => listClatTables()),
        ['clatd-eth0'],
      );
      ns.enter(() => deleteClatTable('clatd-eth0'));
      assert.deepEqual(
        ns.enter(() => findClatTables()),
        [],
      );
      assert.match(ns.exec('nft', 'list', 'tables'), /table inet clatd-eth0\/lan/, 'the LAN table is left alone');
    }, 'nft');
  });

  test('intact check: whole filter yes; missing table, flushed chain, other address or a lone rule no', async () => {
    await withNetns((ns) => {
      const intact = (addr = '2001:db8::c1a7') => ns.enter(() => clatFilterIntact('eth0', addr));
      assert.equal(intact(), false, 'no table');
      ns.enter(() => installClatFilter('eth0', '2001:db8::c1a7'));
      assert.equal(intact(), true);
      assert.equal(intact('2001:db8::beef'), false, 'a filter for another address');
      ns.exec('nft', 'flush', 'chain', 'ip6', 'clatd-eth0', 'prerouting');
      assert.equal(intact(), false, 'flushed chain');
      ns.exec('nft', 'add', 'rule', 'ip6', 'clatd-eth0', 'prerouting', 'ip6', 'daddr', '2001:db8::c1a7', 'drop');
      assert.equal(intact(), false, 'the drop rule alone');
      ns.enter(() => installClatFilter('eth0', '2001:db8::c1a7'));
      ns.exec('nft', 'delete', 'chain', 'ip6', 'clatd-eth0', 'prerouting');
      assert.equal(intact(), false, 'chain deleted');
      ns.exec('nft', 'flush', 'ruleset');
      assert.equal(intact(), false, 'flush ruleset');
    }, 'nftok');
  });

  test('drops the kernel copy of a ping to the CLAT anycast address; the NS is still answered', async () => {
    const { K, native } = await import('../../src/sys/addon.js');
    const CLAT = '2001:db8::c1a7';
    await withVethPair(
      ({ a, b, aIf, aIndex, aMac }) => {
        // a: the CLAT host. The address is joined as anycast, as clatd does; with
        // anycast_src_echo_reply the kernel answers a ping to it from that address, which is
        // exactly the kernel copy the filter must drop.
        a.exec('sysctl', '-qw', 'net.ipv6.anycast_src_echo_reply=1');
        const fd = a.enter(() => native.socket(K.AF_INET6, K.SOCK_DGRAM, 0));
        assert.ok(fd >= 0, `socket: ${fd}`);
        try {
          assert.equal(native.setsockoptMreq6(fd, K.IPV6_JOIN_ANYCAST, parseIPv6(CLAT), aIndex), 0);
          const ping = () => b.tryExec('ping', '-6', '-c1', '-W1', CLAT).status;
          assert.equal(ping(), 0, 'without the filter the kernel answers the ping');

          b.exec('ip', 'neigh', 'flush', 'dev', 'veth-b');
          const table = a.enter(() => installClatFilter(aIf, CLAT));
          assert.notEqual(ping(), 0, 'with the filter the ping must go unanswered');
          assert.ok(counter(a, table, 'drop') >= 1, 'the drop rule counted the echo request');
          // The NS (to the solicited-node group) still reached the kernel, which answered for
          // its anycast address: the router side has the CLAT host's MAC for it.
          const neigh = b.exec('ip', '-6', 'neigh', 'show', CLAT, 'dev', 'veth-b');
          assert.match(neigh, new RegExp(`lladdr ${aMac}`), `neighbor entry: ${neigh}`);

          // Moving the filter to another address lets the old one through again.
          a.enter(() => updateClatFilter(aIf, '2001:db8::beef'));
          assert.equal(ping(), 0);
          a.enter(() => removeClatFilter(aIf));
        } finally {
          native.close(fd);
        }
      },
      { aAddr: '2001:db8::1/64', bAddr: '2001:db8::2/64', tag: 'nft' },
    );
  });
});
