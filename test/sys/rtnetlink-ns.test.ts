/**
 * rtnetlink against a real kernel, in network namespaces made for the test:
 *
 *   ┌ clat namespace ─────────────────────┐      ┌ router namespace ─┐
 *   │ lo, lan0 ── lan0p (veth pair)       │      │                   │
 *   │ veth0 ──────────────────────────────┼──────┼── veth1           │
 *   └─────────────────────────────────────┘      └───────────────────┘
 *
 * The outer test creates both namespaces and re-runs this file inside the clat namespace (with
 * `ip netns exec`), where the inner tests drive the code and check the result with `ip`. Both
 * namespaces are deleted whatever happens.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SystemNet } from '../../src/daemon/system/net.js';
import { NEED_ROOT } from '../helpers/netns.js';

const INNER = process.env.CLATD_TEST_NETNS;
const PEER = process.env.CLATD_TEST_PEER ?? '';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The environment for the inner run: without the outer runner's NODE_TEST_CONTEXT, which would
 * make the inner runner report to a parent that is not listening (and exit 0 on failures). */
function innerEnv(ns: string, peer: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CLATD_TEST_NETNS: ns, CLATD_TEST_PEER: peer };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

if (INNER === undefined) {
  test('rtnetlink in a network namespace', { skip: NEED_ROOT }, (t) => {
    const ns = `clatd-rtnl-${process.pid}`;
    const peer = `clatd-rtnlr-${process.pid}`;
    try {
      ip('netns', 'add', ns);
      ip('netns', 'add', peer);
      ip('link', 'add', 'veth0', 'netns', ns, 'type', 'veth', 'peer', 'name', 'veth1', 'netns', peer);
      const r = spawnSync(
        'ip',
        ['netns', 'exec', ns, process.execPath, '--test', '--test-reporter=spec', fileURLToPath(import.meta.url)],
        { encoding: 'utf8', env: innerEnv(ns, peer), timeout: 60_000 },
      );
      for (const line of r.stdout.split('\n')) if (/^\s*[✔✖﹣]/.test(line)) t.diagnostic(line);
      assert.equal(r.status, 0, `inner tests failed:\n${r.stdout}\n${r.stderr}`);
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
      spawnSync('ip', ['netns', 'del', peer]);
    }
  });
} else {
  // Inside the clat namespace. Imports are dynamic so the outer run does not need the addon.
  const { openRtnl, openRtnlMonitor } = await import('../../src/sys/rtnetlink/open.js');
  const { IFA_F_NODAD, RTPROT_CLATD } = await import('../../src/sys/rtnetlink/consts.js');
  const { NetlinkError } = await import('../../src/sys/rtnetlink/errors.js');
  const sysctl = await import('../../src/sys/sysctl.js');
  type RtnlEvent = import('../../src/sys/rtnetlink/monitor.js').RtnlEvent;

  const rt = openRtnl();
  const json = (...args: string[]) => JSON.parse(ip('-j', ...args));
  const netlinkError = (re: RegExp, errnoName: string) => (e: unknown) => {
    assert.ok(e instanceof NetlinkError, `not a NetlinkError: ${e}`);
    assert.equal(e.errnoName, errnoName);
    assert.match(e.message, re);
    return true;
  };
  async function waitFor(what: string, ok: () => boolean, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  before(() => {
    ip('link', 'set', 'lo', 'up');
    // This kernel may lack the dummy driver: a veth pair with its peer up serves as a LAN link.
    ip('link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan0p');
    ip('link', 'set', 'lan0p', 'up');
  });
  after(() => rt.close());

  describe('links', () => {
    test('list and get by name and by index', () => {
      const links = rt.links();
      const names = links.map((l) => l.name);
      for (const n of ['lo', 'lan0', 'veth0']) assert.ok(names.includes(n), `${n} missing from ${names}`);
      const lan = rt.link('lan0');
      assert.equal(lan.kind, 'veth');
      assert.equal(rt.link('lo').kind, undefined);
      assert.equal(lan.index, json('link', 'show', 'lan0')[0].ifindex);
      assert.equal(rt.link(lan.index).name, 'lan0');
      assert.equal(lan.up, false);
      assert.equal(lan.mtu, 1500);
    });

    test('set up and down, set MTU, verified with ip', () => {
      rt.setUp('lan0');
      assert.ok(json('link', 'show', 'lan0')[0].flags.includes('UP'));
      const l = rt.link('lan0');
      assert.equal(l.up, true);
      assert.equal(l.running, true);
      rt.setMtu('lan0', 1400);
      assert.equal(json('link', 'show', 'lan0')[0].mtu, 1400);
      assert.equal(rt.link('lan0').mtu, 1400);
      rt.setUp('lan0', false);
      assert.ok(!json('link', 'show', 'lan0')[0].flags.includes('UP'));
      assert.equal(rt.link('lan0').up, false);
      rt.setMtu('lan0', 1500);
    });

    test('delete a link', () => {
      ip('link', 'add', 'lan1', 'type', 'veth', 'peer', 'name', 'lan1p');
      rt.deleteLink('lan1');
      assert.equal(rt.findLink('lan1'), undefined);
      assert.throws(() => ip('link', 'show', 'lan1'));
    });

    test('errors name the request and the link', () => {
      assert.throws(() => rt.link('nosuch0'), netlinkError(/^RTM_GETLINK nosuch0: ENODEV/, 'ENODEV'));
      assert.throws(() => rt.setMtu('nosuch0', 1400), /RTM_GETLINK nosuch0: ENODEV/);
      assert.throws(() => rt.link(99999), /RTM_GETLINK ifindex 99999: ENODEV/);
      assert.throws(() => rt.setMtu('lan0', 10), netlinkError(/^RTM_NEWLINK lan0 mtu 10: EINVAL/, 'EINVAL'));
    });
  });

  describe('addresses', () => {
    test('add IPv4 and IPv6, list them with flags, verified with ip', () => {
      rt.setUp('lan0');
      rt.addAddress('lan0', '192.0.2.1', 24);
      rt.addAddress('lan0', '192.0.0.1');
      rt.addAddress('lan0', '2001:db8::1', 64, { flags: IFA_F_NODAD });
      const lan = rt.link('lan0').index;
      const mine = rt.addresses({ dev: 'lan0' });
      assert.ok(mine.every((a) => a.ifindex === lan));
      const v4 = mine.find((a) => a.address === '192.0.2.1');
      assert.equal(v4?.prefixLen, 24);
      assert.equal(v4?.family, 4);
      assert.equal(mine.find((a) => a.address === '192.0.0.1')?.prefixLen, 32);
      const v6 = mine.find((a) => a.address === '2001:db8::1');
      assert.ok(v6);
      assert.equal(v6.prefixLen, 64);
      assert.equal(v6.noDad, true);
      assert.equal(v6.permanent, true);
      assert.equal(v6.tentative, false);
      assert.equal(v6.scope, 0);
      assert.equal(rt.addresses({ dev: 'lan0', family: 4 }).filter((a) => a.family === 6).length, 0);
      const shown = json('addr', 'show', 'dev', 'lan0')[0].addr_info.map(
        (a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`,
      );
      for (const a of ['192.0.2.1/24', '192.0.0.1/32', '2001:db8::1/64'])
        assert.ok(shown.includes(a), `${a} not in ${shown}`);
    });

    test('an address under DAD is tentative', () => {
      ip('link', 'set', 'veth0', 'up');
      rt.addAddress('veth0', '2001:db8:1::1', 64);
      const a = rt.addresses({ dev: 'veth0', family: 6 }).find((x) => x.address === '2001:db8:1::1');
      assert.equal(a?.tentative, true);
      rt.deleteAddress('veth0', '2001:db8:1::1', 64);
    });

    test('delete, and errors naming address and link', () => {
      assert.throws(
        () => rt.addAddress('lan0', '192.0.2.1', 24),
        netlinkError(/^RTM_NEWADDR 192\.0\.2\.1\/24 dev lan0: EEXIST/, 'EEXIST'),
      );
      rt.deleteAddress('lan0', '192.0.0.1');
      assert.equal(
        rt.addresses({ dev: 'lan0' }).find((a) => a.address === '192.0.0.1'),
        undefined,
      );
      assert.ok(!ip('addr', 'show', 'dev', 'lan0').includes('192.0.0.1/32'));
      assert.throws(
        () => rt.deleteAddress('lan0', '192.0.0.1'),
        /^NetlinkError: RTM_DELADDR 192\.0\.0\.1\/32 dev lan0: EADDRNOTAVAIL/,
      );
      assert.throws(() => rt.addAddress('nosuch0', '192.0.0.2'), /RTM_GETLINK nosuch0: ENODEV/);
      assert.throws(() => rt.addAddress('lan0', '192.0.2.300'), /not an IPv4 address/);
    });
  });

  describe('routes', () => {
    test('add an IPv4 default route with metric, MTU and advmss; find it; ip -d route agrees', () => {
      assert.deepEqual(rt.defaultRoutes(4), []);
      rt.addRoute({ dst: '0.0.0.0/0', dev: 'lan0', metric: 2048, mtu: 1260, advmss: 1220 });
      const shown = ip('-d', 'route', 'show', 'default');
      assert.match(shown, /dev lan0/);
      assert.match(shown, /proto 199/);
      assert.match(shown, /metric 2048/);
      assert.match(shown, /mtu 1260/);
      assert.match(shown, /advmss 1220/);
      const [d, ...more] = rt.defaultRoutes(4);
      assert.equal(more.length, 0);
      assert.equal(d.oif, rt.link('lan0').index);
      assert.equal(d.priority, 2048);
      assert.equal(d.mtu, 1260);
      assert.equal(d.advmss, 1220);
      assert.equal(d.protocol, RTPROT_CLATD);
      assert.equal(d.table, 254);
    });

    test('route lookup gives oif, source address and MTU', () => {
      const r = rt.routeTo('198.51.100.7');
      assert.equal(r.oif, rt.link('lan0').index);
      assert.equal(r.prefsrc, '192.0.2.1');
      assert.equal(r.mtu, 1260);
      rt.addRoute({ dst: '::/0', dev: 'lan0', metric: 1024 });
      const r6 = rt.routeTo('2001:db8:ffff::1');
      assert.equal(r6.family, 6);
      assert.equal(r6.oif, rt.link('lan0').index);
      assert.equal(r6.prefsrc, '2001:db8::1');
      assert.equal(rt.defaultRoutes(6).length, 1);
      rt.deleteRoute({ dst: '::/0', dev: 'lan0', metric: 1024 });
      assert.throws(() => rt.routeTo('2001:db8:ffff::1'), /^NetlinkError: RTM_GETROUTE 2001:db8:ffff::1: ENETUNREACH/);
    });

    test('a multipath IPv6 route lists its next hops', async () => {
      ip(
        '-6',
        'route',
        'add',
        '2001:db8:9::/64',
        'nexthop',
        'via',
        'fe80::1',
        'dev',
        'lan0',
        'nexthop',
        'via',
        'fe80::2',
        'dev',
        'veth0',
      );
      const r = rt.routes({ family: 6 }).find((x) => x.dst === '2001:db8:9::' && x.dstLen === 64);
      assert.ok(r, 'multipath route not listed');
      const lan = rt.link('lan0').index;
      assert.equal(r.oif, lan);
      assert.deepEqual(
        r.nexthops?.map((h) => [h.oif, h.gateway]),
        [
          [lan, 'fe80::1'],
          [rt.link('veth0').index, 'fe80::2'],
        ],
      );
      // The next hop of a flow from a source address: fibmatch tells the multipath route.
      const net = new SystemNet(rt);
      const mp = await net.routeVia6('2001:db8:9::5', lan, '2001:db8::1');
      assert.equal(mp?.multipath, true, JSON.stringify(mp));
      ip('-6', 'route', 'del', '2001:db8:9::/64');
      ip('-6', 'route', 'add', '2001:db8:9::/64', 'via', 'fe80::1', 'dev', 'lan0');
      assert.deepEqual(await net.routeVia6('2001:db8:9::5', lan, '2001:db8::1'), {
        ifindex: lan,
        gateway: 'fe80::1',
        multipath: false,
      });
      ip('-6', 'route', 'del', '2001:db8:9::/64');
      assert.equal(await net.routeVia6('2001:db8:9::5', lan, '2001:db8::1'), undefined, 'no route');
    });

    test('IPv6 route in another table, replace, list by protocol, delete', () => {
      rt.addRoute({ dst: '64:ff9b::/96', dev: 'lan0', table: 100, metric: 5, mtu: 1400 });
      assert.match(
        ip('-6', '-d', 'route', 'show', 'table', '100'),
        /^unicast 64:ff9b::\/96 dev lan0 proto 199 .*metric 5 .*mtu 1400/,
      );
      assert.throws(
        () => rt.addRoute({ dst: '0.0.0.0/0', dev: 'lan0', metric: 2048 }),
        netlinkError(/^RTM_NEWROUTE 0\.0\.0\.0\/0 dev lan0 metric 2048: EEXIST/, 'EEXIST'),
      );
      rt.addRoute({ dst: '0.0.0.0/0', dev: 'lan0', metric: 2048, mtu: 1280, advmss: 1240 }, true);
      assert.match(ip('-d', 'route', 'show', 'default'), /mtu 1280 advmss 1240/);
      const ours = rt.routes({ protocol: RTPROT_CLATD }).map((r) => `${r.dst}/${r.dstLen} t${r.table}`);
      assert.deepEqual(ours.sort(), ['0.0.0.0/0 t254', '64:ff9b::/96 t100']);
      rt.deleteRoute({ dst: '64:ff9b::/96', dev: 'lan0', table: 100, metric: 5 });
      rt.deleteRoute({ dst: '0.0.0.0/0', dev: 'lan0', metric: 2048 });
      assert.deepEqual(rt.routes({ protocol: RTPROT_CLATD }), []);
      assert.equal(ip('route', 'show', 'default').trim(), '');
      assert.throws(
        () => rt.deleteRoute({ dst: '0.0.0.0/0', dev: 'lan0' }),
        /^NetlinkError: RTM_DELROUTE 0\.0\.0\.0\/0 dev lan0: ESRCH/,
      );
      assert.throws(() => rt.addRoute({ dst: '203.0.113.0/24', dev: 'nosuch0' }), /RTM_GETLINK nosuch0: ENODEV/);
    });
  });

  describe('monitor', () => {
    test('address, link and route changes made with ip arrive as events', async () => {
      const events: RtnlEvent[] = [];
      const errors: Error[] = [];
      const mon = openRtnlMonitor(
        (e) => events.push(e),
        (e) => errors.push(e),
      );
      try {
        const lan = rt.link('lan0').index;
        ip('addr', 'add', '192.0.2.50/32', 'dev', 'lan0');
        ip('link', 'set', 'lan0', 'mtu', '1300');
        ip('route', 'add', '203.0.113.0/24', 'dev', 'lan0');
        ip('addr', 'del', '192.0.2.50/32', 'dev', 'lan0');
        const has = (f: (e: RtnlEvent) => boolean) => () => events.some(f);
        await waitFor(
          'new address',
          has(
            (e) =>
              e.kind === 'address' && !e.removed && e.address.address === '192.0.2.50' && e.address.ifindex === lan,
          ),
        );
        await waitFor(
          'removed address',
          has((e) => e.kind === 'address' && e.removed && e.address.address === '192.0.2.50'),
        );
        await waitFor(
          'link MTU',
          has((e) => e.kind === 'link' && e.link.index === lan && e.link.mtu === 1300),
        );
        await waitFor(
          'new route',
          has(
            (e) =>
              e.kind === 'route' &&
              !e.removed &&
              e.route.dst === '203.0.113.0' &&
              e.route.dstLen === 24 &&
              e.route.oif === lan,
          ),
        );
        assert.deepEqual(errors, []);
      } finally {
        mon.close();
      }
    });

    test('a PREF64 option in a Router Advertisement arrives as an ND user option event', async () => {
      const veth0 = rt.link('veth0').index;
      const events: RtnlEvent[] = [];
      const mon = openRtnlMonitor(
        (e) => events.push(e),
        (e) => assert.fail(e),
      );
      try {
        // The router namespace sends one RA (RFC 4861 §4.2) carrying only a PREF64 option (RFC 8781
        // §4: type 38, length 2, lifetime 600 s scaled by 8 with PLC 1 = /96, prefix 64:ff9b::).
        // Python's raw ICMPv6 socket has the kernel fill in the checksum.
        const py = `
import socket, time
for _ in range(100):
    if 'tentative' not in open('/proc/net/if_inet6').read() and any(l.endswith('veth1\\n') and l.startswith('fe80') for l in open('/proc/net/if_inet6')): break
    time.sleep(0.02)
idx = socket.if_nametoindex('veth1')
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
ra = bytes([134, 0, 0, 0, 64, 0, 0, 0] + [0] * 8)
pref64 = bytes([38, 2, 0x02, 0x59, 0x00, 0x64, 0xff, 0x9b] + [0] * 8)
s.sendto(ra + pref64, ('ff02::1', 0, 0, idx))
`;
        execFileSync('ip', [
          'netns',
          'exec',
          PEER,
          'sh',
          '-c',
          'echo 0 > /proc/sys/net/ipv6/conf/veth1/accept_dad; ip link set veth1 up',
        ]);
        ip('link', 'set', 'veth0', 'up');
        const find = () =>
          events.find((e) => e.kind === 'nduseropt' && e.option.ifindex === veth0 && e.option.options[0] === 38);
        let sent = 0;
        for (; sent < 3 && !find(); sent++) {
          execFileSync('ip', ['netns', 'exec', PEER, 'python3', '-c', py]);
          await waitFor('the PREF64 option', () => find() !== undefined, 1000).catch(() => undefined);
        }
        const e = find();
        assert.ok(e && e.kind === 'nduseropt', `no ND user option event after ${sent} RAs`);
        if (process.env.DEBUG_RA) console.log(`RAs sent: ${sent}`);
        assert.equal(e.option.icmpType, 134);
        assert.deepEqual([...e.option.options], [38, 2, 0x02, 0x59, 0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert.match(e.option.source ?? '', /^fe80::/);
      } finally {
        mon.close();
      }
    });
  });

  describe('sysctl', () => {
    test('reads DAD and MTU settings, disables IPv6 on a link', () => {
      const c = sysctl.ipv6Conf('veth0');
      assert.equal(c.dadTransmits, 1);
      assert.equal(c.retransTimeMs, 1000);
      assert.equal(c.mtu, 1500);
      assert.equal(c.acceptDad, 1);
      assert.equal(c.disableIpv6, false);
      sysctl.setIpv6Disabled('lan0');
      assert.equal(sysctl.readIpv6Conf('lan0', 'disable_ipv6'), 1);
      assert.ok(!ip('-6', 'addr', 'show', 'dev', 'lan0').includes('inet6'));
      sysctl.setIpv6Disabled('lan0', false);
      assert.equal(sysctl.ipv6Conf('lan0').disableIpv6, false);
      assert.throws(
        () => sysctl.readIpv6Conf('nosuch0', 'mtu'),
        /net\/ipv6\/conf\/nosuch0\/mtu: ENOENT \(no interface "nosuch0"/,
      );
    });
  });
}
