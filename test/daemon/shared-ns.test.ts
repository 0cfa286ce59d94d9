/**
 * Address mode 5 for real (src/daemon/system/shared.ts), on the host/router pair of
 * test/helpers/clatd-run.ts: `clatd run --v6 shared` shares the host's own 2001:db8:1::10.
 * IPv4 works (ping, UDP, an HTTP transfer) while the host's own IPv6 traffic from the same address
 * keeps working at the same time; the router's server sees both come from 2001:db8:1::10; status
 * says mode 5 and why the fast path is off. SIGTERM leaves the host as it was (sysctls, nft
 * tables, links, routes, rules, read from outside), and so do kill -9 then `clatd cleanup`, and
 * kill -9 then a new start and SIGTERM. Conntrack keeps one port of the host and of the CLAT
 * apart. And with no flag, behind a router that delivers only to the host's DHCPv6 lease, mode 2
 * gets nothing back and clatd moves to mode 5 by itself. A new NAT64 prefix (SIGHUP) moves the
 * pair's route and the NAT table to the new CLAT address.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertPings,
  assertUdpEcho,
  kill9,
  type LogLine,
  leftovers,
  PREFIX,
  running,
  SERVER6,
  said,
  setUp,
  startClatd,
  startRunning,
  statusOf,
  stopLeavesNothing,
  withHostAndRouter,
} from '../helpers/clatd-run.js';
import { NEED_ROOT, type Netns } from '../helpers/netns.js';
import { CLI } from '../helpers/paths.js';
import { describe, test } from '../helpers/suite.js';

const HOST6 = '2001:db8:1::10';
/** Mode 5's private /64, pinned to a documentation prefix (clatd draws a random ULA by default). */
const SHARED_PREFIX = '2001:db8:fe::/64';
const BLOB = 1_000_000;

/** Everything mode 5 could change on the host, as `ip`, `nft` and /proc show it from outside. */
function hostState(ns: Netns): Record<string, string> {
  const sysctl = (k: string) => ns.exec('sysctl', '-n', k).trim();
  const st: Record<string, string> = {
    links: ns
      .exec('ip', '-o', 'link')
      .split('\n')
      .map((l) => l.split(':')[1]?.trim())
      .join(' '),
    routes: ns.exec('ip', '-6', 'route', 'show', 'table', 'all').replace(/expires \d+sec/g, ''),
    routes4: ns.exec('ip', '-4', 'route', 'show', 'table', 'all'),
    rules: ns.exec('ip', '-6', 'rule') + ns.exec('ip', '-4', 'rule'),
    neigh: ns.exec('ip', '-6', 'neigh', 'show', 'nud', 'permanent'),
    nft: ns.exec('nft', 'list', 'ruleset'),
  };
  for (const dev of ['all', 'default', 'veth-a']) {
    for (const key of ['forwarding', 'accept_ra', 'force_forwarding', 'disable_ipv6']) {
      const path = `net.ipv6.conf.${dev}.${key}`;
      const r = ns.tryExec('sysctl', '-n', path);
      if (r.status === 0) st[path] = r.stdout.trim();
    }
  }
  st['net.ipv4.ip_forward'] = sysctl('net.ipv4.ip_forward');
  st['net.ipv6.neigh.veth-a.proxy_delay'] = sysctl('net.ipv6.neigh.veth-a.proxy_delay');
  return st;
}

function exitOf(c: ChildProcess): Promise<{ code: number | null; out: string }> {
  let out = '';
  c.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  c.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve) => c.on('exit', (code) => resolve({ code, out })));
}

describe('address mode 5 in namespaces', { skip: NEED_ROOT }, () => {
  test("--v6 shared: IPv4 through the host's own address while the host's IPv6 keeps working; SIGTERM and kill -9 leave nothing", async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      writeFileSync(join(dir, 'blob'), Buffer.alloc(BLOB, 0x5a));
      const before = hostState(p.a);
      const http = p.b.spawn('python3', ['-m', 'http.server', '8080', '--bind', SERVER6, '--directory', dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let served = '';
      http.stderr?.on('data', (d: Buffer) => {
        served += d.toString();
      });
      try {
        const sock = join(dir, 'c.sock');
        const args = ['--pref64', PREFIX, '--control', sock, '--v6', 'shared', '--shared-prefix', SHARED_PREFIX];
        const c = await startRunning(p.a, args);
        assertPings(p.a);

        // The host's own IPv6 from the same address, all along the CLAT's traffic.
        const ping6 = exitOf(p.a.spawn('ping', ['-6', '-c', '15', '-i', '0.2', '-W', '2', '2001:db8:1::1']));
        await assertUdpEcho(p);
        // HTTP over IPv4 through the CLAT and over IPv6 from the host, at the same time.
        const curl = (url: string) =>
          exitOf(p.a.spawn('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', '-m', '20', url]));
        const [v4, v6] = await Promise.all([curl('http://192.0.2.1:8080/blob'), curl(`http://[${SERVER6}]:8080/blob`)]);
        assert.equal(v4.out, `200 ${BLOB}`, `IPv4 through the CLAT: ${v4.out}\n${said(c.lines)}`);
        assert.equal(v6.out, `200 ${BLOB}`, `the host's own IPv6: ${v6.out}`);
        const pinged = await ping6;
        assert.match(pinged.out, / 15 received/, `the host's own ping during the CLAT traffic:\n${pinged.out}`);
        // The server saw both transfers come from the host's address: the CLAT's is NATed to it.
        const gets = served.split('\n').filter((l) => /GET \/blob/.test(l));
        assert.equal(gets.length, 2, served);
        for (const l of gets) assert.ok(l.startsWith(`${HOST6} `), `not from ${HOST6}: ${l}`);

        const st = statusOf(p.a, sock);
        assert.equal(st.state, 'running');
        assert.equal(st.uplinkMode.mode, 5);
        assert.equal(st.uplinkMode.announce, 'shared');
        assert.match(st.uplinkMode.how, new RegExp(`^shares ${HOST6} with the host`));
        assert.match(st.clat6, /^2001:db8:fe:/);
        assert.equal(st.dad.result, 'skipped');
        assert.match(String(st.offload), /^off in address mode 5: /);
        // Nothing host-wide changed while it runs: no forwarding, no RA setting, no proxy_delay.
        const during = hostState(p.a);
        for (const k of Object.keys(before).filter((k) => k.startsWith('net.'))) {
          assert.equal(during[k], before[k], `${k} changed while clatd runs`);
        }
        // The NAT table deleted from outside (a firewall reload) is put back, and IPv4 works again.
        p.a.exec('nft', 'delete', 'table', 'ip6', 'clatd-veth-a');
        await c.waitFor((l) => l.event === 'change' && l.kind === 'nft-restored', 40_000);
        assert.match(p.a.exec('nft', 'list', 'table', 'ip6', 'clatd-veth-a'), /masquerade/);
        assertPings(p.a);
        await stopLeavesNothing(p.a, c);
        assert.deepEqual(hostState(p.a), before);

        // kill -9 leaves the pair and the tables: `clatd cleanup` removes them.
        const j = await startRunning(p.a, args);
        await kill9(j);
        assert.match(p.a.exec('ip', '-o', 'link'), /x6-veth-a/, 'a killed clatd cannot remove its pair');
        const cleaned = p.a.exec('node', CLI, 'cleanup', '--interface', 'veth-a', '--control', sock);
        assert.match(cleaned, /veth pair x6-veth-a/);
        assert.deepEqual(leftovers(p.a), []);
        assert.deepEqual(hostState(p.a), before);

        // Or the next start removes them, and SIGTERM then leaves nothing.
        const k = await startRunning(p.a, args);
        await kill9(k);
        assert.match(p.a.exec('ip', '-o', 'link'), /x6-veth-a/, 'a killed clatd cannot remove its pair');
        const n = await startRunning(p.a, args);
        assert.ok(
          n.lines.some((l) => l.event === 'recovery' && /veth pair x6-veth-a/.test(String(l.msg))),
          said(n.lines),
        );
        assertPings(p.a);
        await stopLeavesNothing(p.a, n);
        assert.deepEqual(hostState(p.a), before);
      } finally {
        http.kill();
      }
    });
  });

  test('the same address and port from the host and from the CLAT, at once: conntrack keeps the two flows apart', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      // An echo for four datagrams, each answered to its sender.
      const echo = p.b.spawn(
        'python3',
        [
          '-c',
          `import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.bind(("${SERVER6}",7));s.settimeout(20)\nfor _ in range(4):\n d,a=s.recvfrom(99);s.sendto(d,a)`,
        ],
        { stdio: 'ignore' },
      );
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, [
        '--pref64',
        PREFIX,
        '--control',
        sock,
        '--v6',
        'shared',
        '--shared-prefix',
        SHARED_PREFIX,
      ]);
      try {
        await c.waitFor(running);
        assertPings(p.a);
        // Host first, then the CLAT from the same port (its flow gets another port), and the other
        // way round (the host's flow gets another): each gets its own answer.
        for (const [first, port] of [
          ['v6', 40000],
          ['v4', 40001],
        ] as const) {
          const py = [
            'import socket,time',
            `h=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);h.bind(("${HOST6}",${port}));h.settimeout(5)`,
            `c=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);c.bind(("0.0.0.0",${port}));c.settimeout(5)`,
            `a=[(h,b"host",("${SERVER6}",7)),(c,b"clat",("192.0.2.1",7))]`,
            `a=a if "${first}"=="v6" else a[::-1]`,
            'for s,d,t in a: s.sendto(d,t); time.sleep(0.2)',
            'print(h.recv(99).decode(), c.recv(99).decode())',
          ].join('\n');
          const r = p.a.tryExec('python3', '-c', py);
          assert.equal(r.stdout.trim(), 'host clat', `${first} first: ${r.stderr}\n${said(c.lines)}`);
        }
      } finally {
        echo.kill();
        c.child.kill('SIGTERM');
        await c.exited;
      }
      assert.deepEqual(leftovers(p.a), []);
    });
  });

  test('the last resort: a router that delivers only to the lease; nothing comes back to mode 2, so mode 5 by itself', async () => {
    await withHostAndRouter(async (p, dir) => {
      // What a DHCPv6 lease leaves on a host (as in nd-responder-ns), and a "cloud" router that
      // knows only the lease's neighbour entry and never solicits anything else.
      p.a.sh(
        'ip addr del 2001:db8:1::10/64 dev veth-a; ip addr add 2001:db8:1::a5/128 dev veth-a noprefixroute nodad; ' +
          'ip -6 route add 2001:db8:1::/64 dev veth-a',
      );
      setUp(p);
      p.b.exec('ip', '-6', 'neigh', 'replace', '2001:db8:1::a5', 'lladdr', p.aMac, 'dev', 'veth-b', 'nud', 'permanent');
      p.b.sh(
        'nft add table ip6 cloud; ' +
          "nft 'add chain ip6 cloud out { type filter hook output priority 0; policy accept; }'; " +
          'nft add rule ip6 cloud out icmpv6 type nd-neighbor-solicit drop',
      );
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock, '--shared-prefix', SHARED_PREFIX]);
      let pinger: ChildProcess | undefined;
      try {
        await c.waitFor(running);
        // Traffic that gets no answer, for the health check to see (ping needs the route at start).
        pinger = p.a.spawn('ping', ['-c', '120', '-i', '0.5', '-W', '1', '192.0.2.1'], { stdio: 'ignore' });
        assert.equal(statusOf(p.a, sock).uplinkMode.mode, 2);
        const changed = (l: LogLine) => l.event === 'change' && l.kind === 'address-mode-changed';
        await c.waitFor(changed, 45_000);
        // Running again, after the change (not the first start's line).
        await c.waitFor((l) => running(l) && c.lines.indexOf(l) > c.lines.findIndex(changed), 10_000);
        const warned = c.lines.find((l) => l.event === 'health' && l.level === 'warn');
        assert.match(String(warned?.msg), /trying address mode 5/, said(c.lines));
        assertPings(p.a);
        const st = statusOf(p.a, sock);
        assert.equal(st.uplinkMode.mode, 5);
        assert.equal(st.uplinkMode.how.startsWith('shares 2001:db8:1::a5 '), true, st.uplinkMode.how);
        assert.match(st.uplinkMode.why[1].why, /^a random address in 2001:db8:1::\/64 was not delivered: /);
      } finally {
        pinger?.kill();
        c.child.kill('SIGTERM');
        await c.exited;
      }
      assert.deepEqual(leftovers(p.a), []);
      assert.match(p.a.exec('ip', '-6', 'addr', 'show', 'dev', 'veth-a'), /2001:db8:1::a5\/128/);
    });
  });

  test('a new NAT64 prefix (SIGHUP): a new CLAT address, and the pair and the NAT table follow it', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const next = '2001:db8:65::/96';
      p.b.exec('ip', 'addr', 'add', '2001:db8:65::c000:201/128', 'dev', 'lo');
      p.a.exec('ip', '-6', 'route', 'add', next, 'via', '2001:db8:1::1', 'dev', 'veth-a');
      const conf = join(dir, 'clatd.toml');
      writeFileSync(conf, `pref64 = "${PREFIX}"\nv6 = "shared"\nshared-prefix = "${SHARED_PREFIX}"\n`);
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, ['--config', conf, '--control', sock]);
      try {
        await c.waitFor(running);
        assertPings(p.a);
        const first = statusOf(p.a, sock).clat6;
        writeFileSync(conf, `pref64 = "${next}"\nv6 = "shared"\nshared-prefix = "${SHARED_PREFIX}"\n`);
        c.child.kill('SIGHUP');
        const moved = () => statusOf(p.a, sock).clat6 !== first && statusOf(p.a, sock).state === 'running';
        for (let i = 0; i < 50 && !moved(); i++) await new Promise((r) => setTimeout(r, 100));
        const st = statusOf(p.a, sock);
        assert.equal(st.pref64, next, said(c.lines));
        assert.notEqual(st.clat6, first);
        assert.equal(st.uplinkMode.mode, 5);
        const nft = p.a.exec('nft', 'list', 'table', 'ip6', 'clatd-veth-a');
        assert.match(nft, new RegExp(`saddr ${st.clat6} .*masquerade`));
        assert.doesNotMatch(nft, new RegExp(first));
        assert.match(p.a.exec('ip', '-6', 'route', 'show', 'dev', 'x6-veth-a'), new RegExp(`^${st.clat6} `));
        assert.doesNotMatch(p.a.exec('ip', '-6', 'route', 'show', 'dev', 'x6-veth-a'), new RegExp(first));
        assertPings(p.a);
      } finally {
        c.child.kill('SIGTERM');
      }
      assert.equal((await c.exited).code, 0, said(c.lines));
      assert.deepEqual(leftovers(p.a), []);
    });
  });
});
