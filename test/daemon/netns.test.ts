/**
 * `clatd run` as a process in network namespaces, with a hand-built router:
 *
 *   +----------------------- host -----------------------+        +------------- router -------------+
 *   | clatd run   v4-veth-a 192.0.0.4 <-> CLAT IPv6      |        | 2001:db8:64::c000:201 on lo       |
 *   |             veth-a 2001:db8:1::10/64  ------------ veth ---- | veth-b 2001:db8:1::1/64           |
 *   |             default via 2001:db8:1::1              |        | (ra-sender for the PREF64 tests)  |
 *   +----------------------------------------------------+        +-----------------------------------+
 *
 * PREF64 2001:db8:64::/96, so 192.0.2.1 is 2001:db8:64::c000:201 and a ping to it returns through the
 * CLAT address, which the router resolves with an NS that the host's kernel answers (anycast).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertPings,
  kill9,
  leftovers,
  PREFIX,
  running,
  SERVER6,
  said,
  setUp,
  startClatd,
  startRaSender,
  startRunning,
  statusOf,
  stopLeavesNothing,
  withHostAndRouter,
} from '../helpers/clatd-run.js';
import { NEED_ROOT, NEED_TCX, type Netns } from '../helpers/netns.js';
import { CLI, ROOT } from '../helpers/paths.js';
import { describe, test } from '../helpers/suite.js';

/** Node flag for startClatd: the kernel looks older than 6.6 (no tcx), so clatd uses classic tc filters. */
const NO_TCX = ['--import', join(ROOT, 'dist', 'test', 'helpers', 'no-tcx.js')];

/** clatd's classic tc filters on a device's hook (`tc filter show`), one line each. */
function tcFilters(ns: Netns, dev: string, hook: 'ingress' | 'egress'): string[] {
  const r = ns.tryExec('tc', 'filter', 'show', 'dev', dev, hook);
  return r.stdout.split('\n').filter((l) => /bpf .*clatd_/.test(l));
}

/**
 * assertPings, and that the kernel fast path is attached for the current devices and addresses and
 * carried them: what a pause, a new address or a new TUN must bring back. With tcx links, or with
 * classic tc filters where the kernel has no tcx (or NO_TCX makes it look so).
 */
function assertKernelPings(
  ns: Netns,
  status: () => { offload: string; counters: { '46': { offloaded?: number } } },
  classic = NEED_TCX !== false,
): void {
  const before = status().counters['46'].offloaded ?? 0;
  assertPings(ns);
  const s = status();
  // Then the next hop: the router (its link-local address when learned from an RA) once
  // resolved, the kernel's lookup until then.
  const via = `in use (veth-a ingress, v4-veth-a egress${classic ? ', classic tc filters' : ''}; `;
  assert.ok(s.offload.startsWith(via), s.offload);
  assert.match(s.offload.slice(via.length), /^(next hop [0-9a-f:]+|kernel route lookup: [^)]+)\)$/);
  assert.ok((s.counters['46'].offloaded ?? 0) > before, `the pings did not go through the kernel (${s.offload})`);
}

describe('clatd run in namespaces', { skip: NEED_ROOT }, () => {
  test('start-up, ping through the CLAT, status, discover, metrics; SIGTERM leaves nothing', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const delay = p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim();
      assert.notEqual(delay, '0', 'the kernel default (80) before clatd');
      const sock = join(dir, 'c.sock');
      const c = await startRunning(p.a, ['--pref64', PREFIX, '--control', sock, '--metrics', '127.0.0.1:9464']);
      // Each start-up step is one line, in order.
      const order = ['uplink', 'pref64', 'native-ipv4', 'addresses', 'receive', 'dad', 'ipv4', 'translate'];
      const seen = c.lines.map((l) => String(l.event)).filter((e) => order.includes(e));
      assert.deepEqual([...new Set(seen)], order);

      assert.match(p.a.exec('ping', '-c', '2', '-W', '3', '192.0.2.1'), /2 received/);

      const st = statusOf(p.a, sock);
      assert.equal(st.state, 'running');
      assert.equal(st.pref64, PREFIX);
      assert.equal(st.pref64Source, 'flag');
      assert.equal(st.clat4, '192.0.0.4');
      assert.match(st.clat6, /^2001:db8:1:0:/);
      assert.equal(st.tun, 'v4-veth-a');
      assert.equal(st.mtu, 1472);
      assert.equal(st.dad.result, 'unique');
      assert.ok(st.counters['46'].packets >= 2, 'IPv4 packets counted');
      assert.ok(st.counters['64'].packets >= 2, 'IPv6 packets counted');
      const text = p.a.exec('node', CLI, 'status', '--control', sock);
      assert.match(text, /running/);
      assert.match(text, /CLAT IPv4\s+192\.0\.0\.4/);

      // The kernel side: TUN with the /32, MTU, default route metric 2048 with advmss, nft table.
      assert.match(p.a.exec('ip', '-4', 'addr', 'show', 'v4-veth-a'), /192\.0\.0\.4\/32/);
      assert.match(p.a.exec('ip', 'link', 'show', 'v4-veth-a'), /mtu 1472/);
      assert.match(
        p.a.exec('ip', '-4', 'route', 'show', 'default'),
        /dev v4-veth-a proto 199 .*metric 2048.*advmss 1432/,
      );
      assert.match(p.a.exec('nft', 'list', 'tables'), /clatd-veth-a/);
      assert.match(p.a.exec('cat', '/proc/sys/net/ipv6/conf/v4-veth-a/disable_ipv6'), /1/);
      // No random anycast delay before the kernel answers the router's NS for the CLAT address.
      assert.equal(p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim(), '0');

      const metrics = p.a.exec(
        'node',
        '-e',
        "fetch('http://127.0.0.1:9464/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))",
      );
      assert.match(metrics, /clatd_state\{state="running"\} 1/);
      assert.match(metrics, /clatd_packets_total\{direction="4to6"\} [1-9]/);
      assert.match(metrics, /clatd_drops_total\{direction="4to6",reason="/);
      assert.match(metrics, /clatd_packets_out_total\{direction="4to6"\} [1-9]/);
      assert.match(metrics, /clatd_bytes_out_total\{direction="4to6"\} [1-9]/);
      assert.match(metrics, /clatd_icmp_rate_limited_total\{direction="6to4"\} 0/);
      assert.match(metrics, /clatd_io_errors_total\{kind="tun_write"\} \d+/);
      assert.match(metrics, /^clatd_start_time_seconds \d+/m);
      assert.match(metrics, /^process_resident_memory_bytes [1-9]/m);
      assert.match(metrics, /clatd_dad_attempts_total 1/);

      const disc = JSON.parse(p.a.exec('node', CLI, 'discover', '--json', '--pref64', PREFIX, '--wait', '0'));
      assert.equal(disc.uplink.name, 'veth-a');
      assert.equal(disc.pref64, PREFIX);
      assert.equal(disc.pref64Source, 'flag');
      assert.equal(disc.clat4, '192.0.0.5', 'discover sees 192.0.0.4 taken by the running clatd');

      const t0 = Date.now();
      c.child.kill('SIGTERM');
      const ex = await c.exited;
      assert.equal(ex.code, 0);
      assert.ok(ex.at - t0 < 2000, `exit took ${ex.at - t0} ms`);
      assert.deepEqual(leftovers(p.a), []);
      assert.equal(p.a.tryExec('test', '-e', sock).status, 1, 'control socket removed');
      assert.equal(p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim(), delay, 'given back');
    });
  });

  test('a second clatd on the same uplink (another control socket) refuses; the first keeps working', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const first = await startRunning(p.a, ['--pref64', PREFIX, '--control', join(dir, 'a.sock'), '--dad', 'off']);
      const second = startClatd(p.a, ['--pref64', PREFIX, '--control', join(dir, 'b.sock'), '--dad', 'off']);
      const ex = await second.exited;
      assert.equal(ex.code, 1);
      assert.ok(
        second.lines.some((l) => /v4-veth-a already exists and is held by a running process/.test(String(l.msg))),
        second.lines.map((l) => String(l.msg)).join('\n'),
      );
      // Neither the TUN nor the nftables table of the first was touched.
      assertPings(p.a);
      await stopLeavesNothing(p.a, first);
    });
  });

  test('the log reader goes away (EPIPE on stderr): clatd keeps translating, and SIGTERM still leaves nothing', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const sock = join(dir, 'c.sock');
      const c = await startRunning(p.a, ['--pref64', PREFIX, '--control', sock, '--dad', 'off']);
      // As `clatd run | head` does once it has its lines: every later log write fails with EPIPE.
      c.child.stderr?.destroy();
      assertPings(p.a);
      assert.equal(statusOf(p.a, sock).state, 'running');
      c.child.kill('SIGTERM');
      const ex = await c.exited;
      assert.equal(ex.code, 0, 'a clean stop, not the crash path');
      assert.deepEqual(leftovers(p.a), []);
      assert.equal(p.a.tryExec('test', '-e', sock).status, 1, 'control socket removed');
    });
  });

  test('the TUN set down, its route deleted, the TUN deleted (from outside): put back each time, IPv4 works again', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const c = await startRunning(p.a, ['--pref64', PREFIX, '--control', join(dir, 'c.sock'), '--dad', 'off']);
      const status = () => statusOf(p.a, join(dir, 'c.sock'));
      assertKernelPings(p.a, status);
      const restored = (what: RegExp) => (l: Record<string, unknown>) =>
        l.event === 'change' && l.kind === 'ipv4-restored' && what.test(String(l.msg));
      p.a.exec('ip', 'route', 'del', 'default', 'dev', 'v4-veth-a');
      await c.waitFor(restored(/put back: default route$/));
      assertPings(p.a);
      p.a.exec('ip', 'link', 'set', 'v4-veth-a', 'down');
      await c.waitFor(restored(/put back: the link was down, default route$/));
      assert.match(p.a.exec('ip', '-4', 'route', 'show', 'default'), /dev v4-veth-a proto 199 .*metric 2048/);
      assertPings(p.a);
      p.a.exec('ip', 'link', 'del', 'v4-veth-a');
      await c.waitFor((l) => l.event === 'translate' && /after a datapath restart/.test(String(l.msg)));
      assert.match(p.a.exec('ip', '-4', 'route', 'show', 'default'), /dev v4-veth-a proto 199 .*metric 2048/);
      // A new TUN, a new ifindex: the fast path is attached to it, not to the one that went.
      assertKernelPings(p.a, status);
      await stopLeavesNothing(p.a, c);
    });
  });

  test('classic tc filters where the kernel has no tcx (made so here): in the kernel path, after a new TUN, a kill -9 and a stop', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const sock = join(dir, 'c.sock');
      const args = ['--pref64', PREFIX, '--control', sock, '--dad', 'off'];
      const status = () => statusOf(p.a, sock);
      const first = await startRunning(p.a, args, NO_TCX);
      assert.ok(
        first.lines.some((l) => /no tcx links .*classic tc filters/.test(String(l.msg))),
        'clatd said it attaches with classic tc filters',
      );
      assertKernelPings(p.a, status, true);
      assert.equal(tcFilters(p.a, 'veth-a', 'ingress').length, 1, 'one filter on the uplink');
      assert.equal(tcFilters(p.a, 'v4-veth-a', 'egress').length, 1, 'one filter on the TUN');
      // A new TUN: its filter goes with the old one, the new one gets its own.
      p.a.exec('ip', 'link', 'del', 'v4-veth-a');
      await first.waitFor((l) => l.event === 'translate' && /after a datapath restart/.test(String(l.msg)));
      assertKernelPings(p.a, status, true);
      assert.equal(tcFilters(p.a, 'veth-a', 'ingress').length, 1, 'still one filter on the uplink');
      // Filters outlive a crash; the next start replaces the uplink's rather than adding a second.
      await kill9(first);
      assert.equal(tcFilters(p.a, 'veth-a', 'ingress').length, 1, 'the killed clatd left its uplink filter');
      const second = await startRunning(p.a, args, NO_TCX);
      assertKernelPings(p.a, status, true);
      assert.equal(tcFilters(p.a, 'veth-a', 'ingress').length, 1, 'one filter on the uplink after the restart');
      await stopLeavesNothing(p.a, second);
      assert.deepEqual(tcFilters(p.a, 'veth-a', 'ingress'), [], 'the uplink filter removed on stop');
    });
  });

  test('nft flush ruleset (a firewall reload) takes the drop table: clatd puts it back and names who did it', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const c = await startRunning(p.a, ['--pref64', PREFIX, '--control', join(dir, 'c.sock'), '--dad', 'off']);
      const restored = (l: Record<string, unknown>) => l.event === 'change' && l.kind === 'nft-restored';
      assert.ok(!c.lines.some(restored), 'clatd’s own nft runs are not taken for someone else’s');
      p.a.exec('nft', 'flush', 'ruleset');
      const l = await c.waitFor(restored);
      assert.match(String(l.msg), /^nft table ip6 clatd-veth-a was deleted by nft \(pid \d+\); restored$/);
      assert.match(
        p.a.exec('nft', 'list', 'table', 'ip6', 'clatd-veth-a'),
        /ip6 daddr 2001:db8:1:.* counter packets \d+ bytes \d+ drop/,
      );
      assertPings(p.a);
      await stopLeavesNothing(p.a, c);
      assert.equal(c.lines.filter(restored).length, 1, 'its own removal at the stop is not restored');
    });
  });

  test('kill -9 leaves objects behind; the next start removes them and works', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const sock = join(dir, 'c.sock');
      const first = await startRunning(p.a, ['--pref64', PREFIX, '--control', sock, '--dad', 'off']);
      await kill9(first);
      assert.notDeepEqual(leftovers(p.a), [], 'SIGKILL leaves the nft table at least');
      const second = await startRunning(p.a, ['--pref64', PREFIX, '--control', sock, '--dad', 'off']);
      assert.ok(second.lines.some((l) => l.event === 'recovery' && /nft table ip6 clatd-veth-a/.test(String(l.msg))));
      assertPings(p.a);
      await stopLeavesNothing(p.a, second);
    });
  });

  test('DAD on the wire: a leased --v6 the router holds is detected and not replaced; the CLAT stays down', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      // --v6 is the router's own address: the router's kernel defends it. A leased address is the
      // only one the network delivers, so clatd draws no other: DAD is blocked and tried again later.
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, ['--pref64', PREFIX, '--v6', '2001:db8:1::1', '--control', sock]);
      // Said once it is torn down and waits for the next round.
      await c.waitFor((l) => (l.event === 'wait' || l.event === 'state') && /DAD blocked/.test(String(l.msg)));
      const warned = c.lines.find(
        (l) => l.event === 'dad' && /2001:db8:1::1 is in use on the link/.test(String(l.msg)),
      );
      assert.ok(warned, said(c.lines));
      assert.ok(!c.lines.some((l) => l.kind === 'address-duplicate'), 'no other address drawn');
      const st = statusOf(p.a, sock);
      assert.equal(st.state, 'dad');
      assert.equal(st.dad.result, 'blocked');
      assert.equal(st.dad.duplicates[0].address, '2001:db8:1::1');
      assert.equal(st.clat6, null, 'no CLAT while its address is in use');
      await stopLeavesNothing(p.a, c);
    });
  });

  test('PREF64 from Router Advertisements, then changed on the router while running', async () => {
    await withHostAndRouter(async (p, dir) => {
      p.b.exec('ip', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
      p.b.exec('ip', 'addr', 'add', '2001:db8:65::c000:201/128', 'dev', 'lo');
      const { ra, cfg, sender } = startRaSender(p, dir, 600);
      const c = startClatd(p.a, ['--control', join(dir, 'c.sock'), '--dad', 'off']);
      const up = await c.waitFor(running, 15_000);
      assert.ok(up);
      assert.ok(
        c.lines.some((l) => l.event === 'pref64' && l.source === 'ra'),
        'prefix source is the RA',
      );
      assertPings(p.a);

      writeFileSync(cfg, JSON.stringify({ ...ra, pref64: '2001:db8:65::/96' }));
      sender.kill('SIGHUP');
      await c.waitFor((l) => l.event === 'change' && l.kind === 'pref64-changed', 15_000);
      await c.waitFor((l) => running(l) && c.lines.filter(running).length >= 2, 10_000);
      const status = () => statusOf(p.a, join(dir, 'c.sock'));
      assert.equal(status().pref64, '2001:db8:65::/96');
      // The kernel fast path follows: its programs are built for the new prefix.
      assertKernelPings(p.a, status);
      c.child.kill('SIGTERM');
      assert.equal((await c.exited).code, 0);
      sender.kill('SIGTERM');
    });
  });

  test('live changes: uplink down and up, native IPv4 comes and goes, MTU, a new /64', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const sock = join(dir, 'c.sock');
      const c = await startRunning(p.a, ['--pref64', PREFIX, '--control', sock, '--dad', 'off']);
      const change = (kind: string) => c.waitFor((l) => l.event === 'change' && l.kind === kind);
      const status = () => statusOf(p.a, sock);
      const ping = () => assertKernelPings(p.a, status);
      const runs = () => c.lines.filter(running).length;

      // Uplink down: paused with the TUN kept; up: running again with the same address.
      const addr = status().clat6;
      p.a.exec('ip', 'link', 'set', 'veth-a', 'down');
      await change('uplink-down');
      await c.waitFor((l) => l.event === 'state' && l.to === 'paused');
      assert.equal(p.a.tryExec('ip', 'link', 'show', 'v4-veth-a').status, 0, 'the TUN stays while paused');
      p.a.exec('ip', 'link', 'set', 'veth-a', 'up');
      // The kernel flushed the IPv6 address and routes with the link (keep_addr_on_down=0).
      p.a.exec('ip', 'addr', 'replace', '2001:db8:1::10/64', 'dev', 'veth-a', 'nodad');
      p.a.exec('ip', '-6', 'route', 'replace', 'default', 'via', '2001:db8:1::1', 'dev', 'veth-a');
      await change('uplink-up');
      await c.waitFor((l) => running(l) && runs() >= 2);
      assert.equal(status().clat6, addr);
      ping();
      const starts = c.lines.filter((l) => l.event === 'datapath' && /worker thread/.test(String(l.msg)));
      assert.equal(starts.length, 1, 'the same datapath, paused and resumed, not new workers');

      // Native IPv4 appears: idle, everything removed; it goes: running again.
      p.a.exec('ip', 'addr', 'add', '198.51.100.2/24', 'dev', 'veth-a');
      p.a.exec('ip', 'route', 'add', 'default', 'via', '198.51.100.1', 'dev', 'veth-a');
      await change('native-ipv4-appeared');
      await c.waitFor((l) => l.event === 'state' && l.to === 'idle-native-ipv4');
      assert.deepEqual(leftovers(p.a), []);
      p.a.exec('ip', 'route', 'del', 'default', 'via', '198.51.100.1');
      await change('native-ipv4-gone');
      await c.waitFor((l) => running(l) && runs() >= 3);
      ping();

      // MTU of the uplink: the TUN follows (1400 - 28).
      p.a.exec('ip', 'link', 'set', 'veth-a', 'mtu', '1400');
      await change('mtu-changed');
      assert.match(p.a.exec('ip', 'link', 'show', 'v4-veth-a'), /mtu 1372/);
      assert.match(p.a.exec('ip', '-4', 'route', 'show', 'default'), /advmss 1332/);

      // A new /64: the CLAT address moves into it, the TUN stays.
      p.b.exec('ip', 'addr', 'add', '2001:db8:2::1/64', 'dev', 'veth-b', 'nodad');
      p.a.exec('ip', 'addr', 'add', '2001:db8:2::10/64', 'dev', 'veth-a', 'nodad');
      p.a.exec('ip', '-6', 'route', 'replace', 'default', 'via', '2001:db8:2::1', 'dev', 'veth-a');
      p.a.exec('ip', 'addr', 'del', '2001:db8:1::10/64', 'dev', 'veth-a');
      await change('prefix64-changed');
      await c.waitFor((l) => running(l) && runs() >= 4);
      assert.match(status().clat6, /^2001:db8:2:0:/);
      ping();
      assert.ok(status().changes['prefix64-changed'] >= 1);

      // The uplink disappears: everything is taken down and clatd waits for one.
      p.a.exec('ip', 'link', 'del', 'veth-a');
      await change('uplink-gone');
      await c.waitFor((l) => l.event === 'state' && l.to === 'waiting-uplink');
      assert.deepEqual(leftovers(p.a), []);
      assert.equal(status().state, 'waiting-uplink');

      await stopLeavesNothing(p.a, c);
    });
  });

  test('SIGHUP re-reads --config: a new pref64 moves translation, a bad file keeps the old settings', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      p.b.exec('ip', 'addr', 'add', '2001:db8:65::c000:201/128', 'dev', 'lo');
      const file = join(dir, 'clatd.toml');
      const sock = join(dir, 'c.sock');
      writeFileSync(file, `pref64 = "${PREFIX}"\ndad = "off"\ncontrol = "${sock}"\n`);
      // systemd's notify socket, played by a Python listener: one line per datagram.
      const notifyPath = join(dir, 'notify');
      const listener = spawn(
        'python3',
        [
          '-c',
          'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("ready",flush=True)\n' +
            'while True: print(s.recv(4096).decode().replace("\\n","|"),flush=True)',
          notifyPath,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let notes = '';
      listener.stdout?.setEncoding('utf8');
      await new Promise<void>((r) =>
        listener.stdout?.on('data', (d: string) => {
          notes += d;
          if (notes.startsWith('ready')) r();
        }),
      );
      try {
        const c = startClatd(p.a, ['--config', file], [], { NOTIFY_SOCKET: notifyPath });
        await c.waitFor(running);
        const status = () => statusOf(p.a, sock);
        assert.equal(status().pref64, PREFIX);

        writeFileSync(file, `pref64 = "2001:db8:65::/96"\ndad = "off"\ncontrol = "${sock}"\n`);
        c.child.kill('SIGHUP');
        await c.waitFor((l) => l.event === 'change' && l.kind === 'pref64-changed');
        await c.waitFor((l) => running(l) && c.lines.filter(running).length >= 2);
        assert.equal(status().pref64, '2001:db8:65::/96');
        assertPings(p.a);
        // READY=1 at start, then the reload framed by RELOADING=1 and READY=1.
        const sent = notes.trim().split('\n').slice(1);
        const ready = sent.findIndex((l) => l.startsWith('READY=1'));
        const reloading = sent.findIndex((l) => /^RELOADING=1\|MONOTONIC_USEC=\d+$/.test(l));
        assert.ok(ready >= 0 && reloading > ready, notes);
        assert.ok(sent.slice(reloading + 1).includes('READY=1'), notes);

        writeFileSync(file, 'pref64 = "not a prefix"\n');
        c.child.kill('SIGHUP');
        const err = await c.waitFor((l) => l.event === 'reload' && l.level === 'error');
        assert.match(String(err.msg), /key "pref64" is not a NAT64 prefix.*keeping the running configuration/);
        assert.equal(status().pref64, '2001:db8:65::/96');

        c.child.kill('SIGTERM');
        assert.equal((await c.exited).code, 0);
      } finally {
        listener.kill();
      }
    });
  });

  test('the RA PREF64 lifetime runs out: translation pauses with the TUN kept, and resumes when it is back', async () => {
    await withHostAndRouter(async (p, dir) => {
      p.b.exec('ip', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
      const { ra, cfg, sender } = startRaSender(p, dir, 8);
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, ['--control', sock, '--dad', 'off']);
      await c.waitFor(running, 15_000);
      // The router stops advertising a PREF64: the last one expires within 8 s.
      writeFileSync(cfg, JSON.stringify({ ...ra, pref64: null }));
      sender.kill('SIGHUP');
      await c.waitFor((l) => l.event === 'change' && l.kind === 'pref64-lost', 15_000);
      await c.waitFor((l) => l.event === 'state' && l.to === 'paused');
      assert.equal(p.a.tryExec('ip', 'link', 'show', 'v4-veth-a').status, 0, 'the TUN stays while paused');
      // Its IPv4 default route is withdrawn meanwhile: IPv4 is unreachable, not a black hole.
      assert.equal(p.a.exec('ip', '-4', 'route', 'show', 'default').trim(), '');
      assert.equal(p.a.tryExec('ping', '-c', '1', '-W', '1', '192.0.2.1').status, 2, 'nothing is translated');
      const st = statusOf(p.a, sock);
      assert.equal(st.state, 'paused');
      assert.match(st.reason, /no NAT64 prefix/);

      writeFileSync(cfg, JSON.stringify(ra));
      sender.kill('SIGHUP');
      await c.waitFor((l) => running(l) && c.lines.filter(running).length >= 2, 15_000);
      assertPings(p.a);
      c.child.kill('SIGTERM');
      assert.equal((await c.exited).code, 0);
      sender.kill('SIGTERM');
    });
  });
});
