/**
 * One clatd per uplink, as clatd@eth0 and clatd@wlan0 run them, on the host with two uplinks of
 * test/helpers/two-uplinks.ts: both come up (neither takes the other's TUN route for native IPv4),
 * their IPv4 default routes are ordered as the IPv6 default routes are and follow them live,
 * IPv4 goes through the preferred one, and when that uplink goes IPv4 moves to the other without
 * a restart, and back when it returns; a real native IPv4 default route still idles both.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { leftovers, type Running, running, said, startClatd, statusOf } from '../helpers/clatd-run.js';
import { NEED_ROOT, type Netns } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';
import { type TwoUplinks, until, withTwoUplinks } from '../helpers/two-uplinks.js';

/** The IPv4 default routes by TUN: `{ 'v4-eth0': 2048, … }`. */
function routes4(ns: Netns): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of ns.exec('ip', '-4', 'route', 'show', 'default').split('\n')) {
    const m = /dev (\S+) proto 199 .*metric (\d+)/.exec(l);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Pings 192.0.2.1 and returns how many IPv4 packets each clatd read meanwhile. */
function pingThrough(t: TwoUplinks, socks: { eth0: string; wlan0: string }): { eth0: number; wlan0: number } {
  const count = (sock: string) => statusOf(t.host, sock).counters['46'].packets as number;
  const before = { eth0: count(socks.eth0), wlan0: count(socks.wlan0) };
  const r = t.host.tryExec('ping', '-c', '3', '-i', '0.2', '-W', '3', '192.0.2.1');
  assert.match(r.stdout, / [23] received/, `${r.stdout}${r.stderr}`);
  return { eth0: count(socks.eth0) - before.eth0, wlan0: count(socks.wlan0) - before.wlan0 };
}

describe('one clatd per uplink', { skip: NEED_ROOT }, () => {
  test('both run; IPv4 follows the IPv6 default route order live, and moves to the other uplink when one goes', async () => {
    await withTwoUplinks(async (t) => {
      const socks = { eth0: join(t.dir, 'eth0.sock'), wlan0: join(t.dir, 'wlan0.sock') };
      const start = (name: 'eth0' | 'wlan0') =>
        startClatd(t.host, ['--interface', name, '--control', socks[name], '--log-level', 'info']);
      const c: Record<'eth0' | 'wlan0', Running> = { eth0: start('eth0'), wlan0: start('wlan0') };
      try {
        await Promise.all([c.eth0.waitFor(running, 20_000), c.wlan0.waitFor(running, 20_000)]);
        for (const name of ['eth0', 'wlan0'] as const) {
          const st = statusOf(t.host, socks[name]);
          assert.equal(st.state, 'running', `clatd@${name}`);
          assert.equal(st.pref64Source, 'ra');
          assert.ok(!c[name].lines.some((l) => l.event === 'state' && l.to === 'idle-native-ipv4'));
        }
        // Ethernet (IPv6 metric 100) before Wi-Fi (600), for IPv4 as for IPv6.
        assert.deepEqual(routes4(t.host), { 'v4-eth0': 2048, 'v4-wlan0': 2049 });
        assert.match(t.host.exec('ip', 'route', 'get', '192.0.2.1'), /dev v4-eth0/);
        let via = pingThrough(t, socks);
        assert.ok(via.eth0 >= 2 && via.wlan0 === 0, `through eth0: ${JSON.stringify(via)}`);

        // The host comes to prefer Wi-Fi for IPv6 (its RA default route metric now 50): IPv4 follows.
        t.host.exec('sysctl', '-qw', 'net.ipv6.conf.wlan0.ra_defrtr_metric=50');
        t.wlan0.ra.kill('SIGHUP');
        await until(
          () => routes4(t.host)['v4-wlan0'] === 2048 && routes4(t.host)['v4-eth0'] === 2049,
          'IPv4 to follow',
        );
        via = pingThrough(t, socks);
        assert.ok(via.wlan0 >= 2 && via.eth0 === 0, `through wlan0: ${JSON.stringify(via)}`);

        // Wi-Fi goes (set down, as a network manager does when it disconnects; the kernel takes its
        // addresses and routes): its clatd pauses and withdraws its route; IPv4 moves to eth0.
        t.host.exec('ip', 'link', 'set', 'wlan0', 'down');
        await c.wlan0.waitFor((l) => l.event === 'state' && l.to === 'paused');
        await until(() => JSON.stringify(routes4(t.host)) === '{"v4-eth0":2048}', 'IPv4 to move to eth0');
        via = pingThrough(t, socks);
        assert.ok(via.eth0 >= 2 && via.wlan0 === 0, `through eth0 with wlan0 gone: ${JSON.stringify(via)}`);
        assert.equal(statusOf(t.host, socks.wlan0).state, 'paused');

        // Wi-Fi is back (the RA answering the kernel's solicitation configures it again): the order
        // is as before it went, without a restart of either.
        t.host.exec('ip', 'link', 'set', 'wlan0', 'up');
        // An RA at once too, in case the kernel's solicitation went out before the link was ready;
        // and room for a loaded machine (the resumed CLAT does DAD again).
        t.wlan0.ra.kill('SIGHUP');
        await until(
          () => routes4(t.host)['v4-wlan0'] === 2048 && routes4(t.host)['v4-eth0'] === 2049,
          'the order back',
          30_000,
        );
        await until(() => statusOf(t.host, socks.wlan0).state === 'running', 'clatd@wlan0 running again');
        via = pingThrough(t, socks);
        assert.ok(via.wlan0 >= 2 && via.eth0 === 0, `through wlan0 again: ${JSON.stringify(via)}`);
        for (const name of ['eth0', 'wlan0'] as const) {
          assert.equal(c[name].child.exitCode, null, `clatd@${name} still runs`);
          const lines = c[name].lines;
          assert.ok(!lines.some((l) => l.level === 'error'), `no errors from clatd@${name}`);
          // Replies came back through each (the kernel fast path's counts included): no health warning.
          assert.ok(!lines.some((l) => l.event === 'health'), `no health warning from clatd@${name}`);
          assert.notEqual(statusOf(t.host, socks[name]).health.state, 'no-replies');
        }
        // The log is read from a pipe: wait for the line before counting.
        await c.wlan0.waitFor((l) => l.kind === 'ipv4-route-restored');
        const kinds = c.wlan0.lines.filter((l) => l.event === 'change' || l.event === 'state');
        assert.equal(kinds.filter((l) => l.kind === 'ipv4-route-withdrawn').length, 1, said(kinds));
        assert.equal(kinds.filter((l) => l.kind === 'ipv4-route-restored').length, 1, said(kinds));

        // A real native IPv4 default route still idles both (--mode auto); when it goes, both are back.
        t.host.sh('ip addr add 198.51.100.2/24 dev eth0; ip route add default via 198.51.100.1 dev eth0');
        const idle = (l: { event?: unknown; to?: unknown }) => l.event === 'state' && l.to === 'idle-native-ipv4';
        await Promise.all([c.eth0.waitFor(idle), c.wlan0.waitFor(idle)]);
        assert.deepEqual(routes4(t.host), {});
        t.host.exec('ip', 'route', 'del', 'default', 'via', '198.51.100.1');
        await until(() => routes4(t.host)['v4-wlan0'] === 2048 && routes4(t.host)['v4-eth0'] === 2049, 'both back');
      } finally {
        for (const x of Object.values(c)) x.child.kill('SIGTERM');
        const ex = await Promise.all(Object.values(c).map((x) => x.exited));
        assert.deepEqual(
          ex.map((e) => e.code),
          [0, 0],
        );
      }
      assert.deepEqual(leftovers(t.host), []);
      assert.equal(t.host.tryExec('ip', 'link', 'show', 'v4-wlan0').status, 1);
      assert.equal(t.host.tryExec('ip', 'link', 'show', 'v4-eth0').status, 1);
    });
  });
});
