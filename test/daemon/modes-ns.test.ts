/**
 * The ways the CLAT gets its IPv6 address, for real (src/daemon/uplink-mode.ts), on the host/router
 * pair of test/helpers/clatd-run.ts:
 *
 *   mode 3  the router routes 2001:db8:99::/96 to the host (a static route via 2001:db8:1::10);
 *           `clatd run --v6-prefix 2001:db8:99::/96` draws the address there: IPv4 works, status
 *           says mode 3 with DAD skipped, and the router's link sees no DAD probe.
 *   mode 4  the host holds a /128 lease 2001:db8:1::a5 (noprefixroute, with lifetimes, as a DHCPv6
 *           client adds it); `clatd run --v6 2001:db8:1::a5` takes it off and serves it; SIGTERM
 *           puts it back as it was, and so does a new start after kill -9 (then SIGTERM again).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  assertPings,
  assertUdpEcho,
  kill9,
  PREFIX,
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

const LEASE = '2001:db8:1::a5';

/** The lease as `ip -6 addr` shows it on veth-a (empty when absent). */
function leaseLine(ns: Netns): string {
  const out = ns.exec('ip', '-6', 'addr', 'show', 'dev', 'veth-a');
  const i = out.indexOf(`inet6 ${LEASE}/`);
  if (i < 0) return '';
  // The address line and the lifetimes line under it.
  return out.slice(i).split('\n').slice(0, 2).join(' ').replace(/\s+/g, ' ').trim();
}

function validLft(line: string): number {
  const m = /valid_lft (\d+)sec/.exec(line);
  assert.ok(m, `no finite valid_lft in: ${line}`);
  return Number(m[1]);
}

describe('address modes in namespaces', { skip: NEED_ROOT }, () => {
  test('mode 3: a prefix routed to the host; IPv4 works, status says mode 3, no DAD probe on the link', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      p.b.exec('ip', '-6', 'route', 'add', '2001:db8:99::/96', 'via', '2001:db8:1::10', 'dev', 'veth-b');
      // Every Neighbor Solicitation on the router's side of the link, as tcpdump prints it.
      const cap = p.b.spawn('tcpdump', ['-i', 'veth-b', '-n', '-l', 'icmp6 and ip6[40] == 135'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let seen = '';
      cap.stdout?.on('data', (d: Buffer) => {
        seen += d.toString();
      });
      try {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('tcpdump did not start')), 5000);
          cap.stderr?.on('data', (d: Buffer) => {
            if (/listening on/.test(d.toString())) {
              clearTimeout(t);
              resolve();
            }
          });
        });
        const sock = join(dir, 'c.sock');
        const c = await startRunning(p.a, ['--pref64', PREFIX, '--control', sock, '--v6-prefix', '2001:db8:99::/96']);
        // The router resolves its next hop anew, so the capture has that solicitation to show it works.
        p.b.exec('ip', '-6', 'neigh', 'flush', 'dev', 'veth-b');
        assertPings(p.a);
        await assertUdpEcho(p);
        const st = statusOf(p.a, sock);
        assert.equal(st.state, 'running');
        assert.match(st.clat6, /^2001:db8:99::/);
        assert.equal(st.uplinkMode.mode, 3);
        assert.equal(st.uplinkMode.announce, 'none');
        assert.deepEqual(
          st.uplinkMode.why.map((w: { mode: number }) => w.mode),
          [1, 2],
        );
        assert.equal(st.dad.result, 'skipped');
        assert.match(st.dad.skipped, /routed to this host/);
        // discover makes the same choice, without changing anything.
        const disc = JSON.parse(
          p.a.exec(
            'node',
            CLI,
            'discover',
            '--json',
            '--pref64',
            PREFIX,
            '--v6-prefix',
            '2001:db8:99::/96',
            '--wait',
            '0',
          ),
        );
        assert.deepEqual(disc.uplinkMode, st.uplinkMode);
        const mode = c.lines.find((l) => l.event === 'address-mode');
        assert.match(String(mode?.msg), /^address mode 3 .*; not 1: .*; not 2: /, said(c.lines));
        // The router reached the CLAT address through its route: no solicitation for it, no DAD probe.
        await new Promise((r) => setTimeout(r, 200));
        assert.match(seen, /who has 2001:db8:1::10/, `the capture saw the router resolve its next hop:\n${seen}`);
        assert.doesNotMatch(seen, /IP6 :: > /, `a DAD probe on the link:\n${seen}`);
        assert.doesNotMatch(seen, /who has 2001:db8:99:/, `a solicitation for the routed address:\n${seen}`);
        await stopLeavesNothing(p.a, c);
      } finally {
        cap.kill('SIGTERM');
      }
    });
  });

  test('mode 4: a /128 lease taken off, IPv4 through it; SIGTERM and kill -9 + a new start put it back as it was', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      p.a.exec(
        'ip',
        '-6',
        'addr',
        'add',
        `${LEASE}/128`,
        'dev',
        'veth-a',
        'noprefixroute',
        'nodad',
        'valid_lft',
        '3600',
        'preferred_lft',
        '1800',
      );
      const before = leaseLine(p.a);
      assert.match(before, /noprefixroute/);
      const sock = join(dir, 'c.sock');
      const args = ['--pref64', PREFIX, '--control', sock, '--v6', LEASE];
      const disc = JSON.parse(
        p.a.exec('node', CLI, 'discover', '--json', '--pref64', PREFIX, '--v6', LEASE, '--wait', '0'),
      );
      assert.equal(disc.uplinkMode.mode, 4);
      assert.match(disc.uplinkMode.how, /taken off veth-a while clatd runs/);
      assert.equal(leaseLine(p.a), before, 'discover changes nothing');

      const c = await startRunning(p.a, args);
      assert.equal(leaseLine(p.a), '', 'taken off the uplink while clatd serves it');
      assertPings(p.a);
      const st = statusOf(p.a, sock);
      assert.equal(st.clat6, LEASE);
      assert.equal(st.uplinkMode.mode, 4);
      assert.equal(st.uplinkMode.announce, 'anycast', 'the /64 on veth-a covers it');
      assert.deepEqual(st.uplinkMode, disc.uplinkMode, 'discover said what run does');
      await stopLeavesNothing(p.a, c);
      const back = leaseLine(p.a);
      assert.match(back, /inet6 2001:db8:1::a5\/128 scope global .*noprefixroute/, back);
      assert.ok(validLft(back) <= 3600 && validLft(back) > 3500, `what was left of the lease: ${back}`);

      // kill -9: the lease stays off, recorded; the next start puts it back first, then takes it again.
      const k = await startRunning(p.a, args);
      assert.equal(leaseLine(p.a), '');
      await kill9(k);
      assert.equal(leaseLine(p.a), '', 'a killed clatd cannot put it back');
      const n = await startRunning(p.a, args);
      assert.ok(
        n.lines.some((l) => l.event === 'recovery' && /2001:db8:1::a5\/128 on veth-a put back/.test(String(l.msg))),
        said(n.lines),
      );
      assert.equal(leaseLine(p.a), '', 'taken off again to serve it');
      assertPings(p.a);
      await stopLeavesNothing(p.a, n);
      assert.match(leaseLine(p.a), /inet6 2001:db8:1::a5\/128 scope global .*noprefixroute/);

      // clatd cleanup after a kill -9 puts it back too.
      const q = await startRunning(p.a, args);
      await kill9(q);
      assert.equal(leaseLine(p.a), '');
      p.a.exec('node', CLI, 'cleanup', '-i', 'veth-a', '--control', sock);
      assert.match(leaseLine(p.a), /inet6 2001:db8:1::a5\/128 scope global .*noprefixroute/);
    });
  });

  test('--v6 outside every prefix of the uplink: one clear reason in status, no error loop', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock, '--v6', '2001:db8:77::1']);
      await c.waitFor((l) => l.event === 'state' && l.to === 'waiting-uplink');
      await new Promise((r) => setTimeout(r, 1500));
      const st = statusOf(p.a, sock);
      assert.equal(st.state, 'waiting-uplink');
      assert.match(st.reason, /--v6 2001:db8:77::1 is outside every prefix of veth-a/);
      assert.equal(st.errors, 0);
      assert.equal(c.lines.filter((l) => /outside every prefix/.test(String(l.msg))).length, 1, said(c.lines));
      await stopLeavesNothing(p.a, c);
    });
  });
});
