/**
 * The worker datapath over real devices, in two namespaces joined by a veth pair:
 *
 *   ns "clat" (a)                                            ns "server" (b)
 *   ┌──────────────────────────────────────────┐             ┌──────────────────────────────────┐
 *   │ ping / UDP / TCP client → 192.0.2.1       │             │ 64:ff9b::c000:201 (lo)           │
 *   │   default route dev v4-dp (TUN, 192.0.0.4)│             │   UDP echo :7000, TCP echo :7001 │
 *   │ Datapath: 2 workers, each with its own    │   veth      │                                  │
 *   │   TUN queue, packet socket (fanout), raw  │─────────────│ veth-b 2001:db8:1::2/64          │
 *   │ veth-a 2001:db8:1::1/64, anycast CLAT     │             │                                  │
 *   │   2001:db8:1::4, nft drops kernel's copy  │             └──────────────────────────────────┘
 *   └──────────────────────────────────────────┘
 *
 * The translator is configured as `--pref64` would: pool6 64:ff9b::/96 and the EAM entry
 * 192.0.0.4/32 ↔ 2001:db8:1::4/128. Replies from b's stack leave veth-b with partial checksums
 * (CHECKSUM_PARTIAL), so TCP and UDP working end to end shows they were completed.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel } from 'node:worker_threads';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import type { TranslatorConfig } from '../../src/core/xlat/config.js';
import { Datapath, type DatapathEvent } from '../../src/datapath/datapath.js';
import type { DatapathDevices } from '../../src/datapath/devices.js';
import { EventFd } from '../../src/sys/eventfd.js';
import { NEED_ROOT, type Netns, withVethPair } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

const CLAT4 = '192.0.0.4';
const CLAT6 = '2001:db8:1::4';
const SERVER6 = '64:ff9b::c000:201';
const TUN = 'v4-dp';

const CONFIG: TranslatorConfig = {
  pool6: '64:ff9b::/96',
  eam: [{ v4: `${CLAT4}/32`, v6: `${CLAT6}/128` }],
  // Not CLAT4: the host drops an ICMPv4 error whose source is its own address (a martian), so
  // Time Exceeded and Fragmentation Needed would never reach it. 192.0.0.8 is RFC 7600's.
  ownV4: '192.0.0.8',
  ownV6: CLAT6,
  // Packets toward the TUN are delivered locally, so no IPv4 MTU applies to them; and veth hands
  // the packet socket GSO super-packets (up to 64 KiB) that a smaller limit would answer with PTB.
  ipv4Mtu: 65535,
  ipv6Mtu: 1500,
  hairpin: false,
  wkpGlobalOnly: false, // 192.0.2.1 is a documentation address
};

const SERVER_PY = `
import socket, threading
A = '${SERVER6}'
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.bind((A, 7000))
t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind((A, 7001)); t.listen(8)
def udp():
    while True:
        d, a = u.recvfrom(65535); u.sendto(d, a)
def echo(c):
    while True:
        x = c.recv(65536)
        if not x: break
        c.sendall(x)
    c.close()
threading.Thread(target=udp, daemon=True).start()
print('ready', flush=True)
while True:
    c, _ = t.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
`;

const CLIENT_PY = `
import socket
# 32 flows (source ports) so the TUN queues and the fanout group spread them over both workers.
flows = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(32)]
for f in flows:
    f.settimeout(3); f.sendto(b'f', ('192.0.2.1', 7000))
for f in flows:
    assert f.recvfrom(100)[0] == b'f'
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
for n in (1, 100, 1400):
    u.sendto(b'u' * n, ('192.0.2.1', 7000))
    d, a = u.recvfrom(4000)
    assert d == b'u' * n and a[0] == '192.0.2.1', (n, len(d), a)
data = bytes(range(256)) * 800
for k in range(4):
    t = socket.create_connection(('192.0.2.1', 7001), timeout=5)
    t.sendall(data); t.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        x = t.recv(65536)
        if not x: break
        got += x
    assert bytes(got) == data, (k, len(got))
    t.close()
print('ok')
`;

/** Sends IPv6 packets from b's kernel to the CLAT address with a 3-byte "UDP header". */
const MALFORMED_PY = `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 17); s.bind(('${SERVER6}', 0))
for i in range(5): s.sendto(b'abc', ('${CLAT6}', 0))
`;

/** 3000 UDP packets from the server to the CLAT address, as fast as Python sends them. */
const FLOOD = `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(('${SERVER6}', 0))
for i in range(3000): s.sendto(bytes(200), ('${CLAT6}', 9))
`;

async function waitForLine(child: import('node:child_process').ChildProcess, line: string): Promise<void> {
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${line}" from the server: ${out}`)), 5000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}): ${out}`)));
  });
}

/** Namespace a: TUN (held multi-queue by the test), addresses, routes, anycast CLAT, nft rule. */
async function setupClatSide(a: Netns, aIndex: number) {
  const { Tun } = await import('../../src/sys/tun.js');
  const { Raw6Socket } = await import('../../src/sys/raw6.js');
  const { installClatFilter } = await import('../../src/sys/nft.js');
  const holder = a.enter(() => Tun.open(TUN, { multiQueue: true }));
  const anycast = a.enter(() => Raw6Socket.open({ ifname: 'veth-a', ifindex: aIndex }));
  try {
    a.sh(
      `sysctl -qw net.ipv6.conf.${TUN}.disable_ipv6=1; ip addr add ${CLAT4}/32 dev ${TUN}; ` +
        `ip link set ${TUN} mtu 1472 up; ip route add default dev ${TUN}; ` +
        'ip -6 route add 64:ff9b::/96 via 2001:db8:1::2 dev veth-a',
    );
    anycast.joinAnycast(parseIPv6(CLAT6));
    a.enter(() => installClatFilter('veth-a', CLAT6));
  } catch (e) {
    anycast.close();
    holder.close();
    throw e;
  }
  return { holder, anycast };
}

async function devicesFor(aIndex: number): Promise<DatapathDevices> {
  const { clatReceiveFilter } = await import('../../src/sys/bpf.js');
  return {
    tun: { name: TUN },
    packet: { ifindex: aIndex, ifname: 'veth-a', filter: clatReceiveFilter(parseIPv6(CLAT6)) },
    raw: { ifname: 'veth-a', ifindex: aIndex },
  };
}

describe('Datapath with workers over real devices', { skip: NEED_ROOT }, () => {
  test('ping, UDP and TCP through two workers to an IPv6 server; malformed input counted', async () => {
    await withVethPair(
      async ({ a, b, aIndex }) => {
        b.exec('ip', '-6', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
        const server = b.spawn('python3', ['-u', '-c', SERVER_PY]);
        const { holder, anycast } = await setupClatSide(a, aIndex);
        const events: DatapathEvent[] = [];
        let dp: Datapath | undefined;
        try {
          await waitForLine(server, 'ready');
          const devices = await devicesFor(aIndex);
          // Workers start inside namespace a (a thread inherits its creator's namespace).
          const starting = a.enter(() =>
            Datapath.start({
              translator: CONFIG,
              workers: 2,
              devices,
              detachQueues: [holder.fd],
              onEvent: (e) => events.push(e),
            }),
          );
          dp = await starting;
          assert.equal(dp.loops, 2);

          const ping = a.tryExec('ping', '-c', '3', '-i', '0.2', '-W', '2', '192.0.2.1');
          assert.equal(ping.status, 0, `ping failed: ${ping.stdout}${ping.stderr}`);

          // Errors the translator generates go back out of the side they came from: TTL 1 from
          // the IPv4 host gets Time Exceeded on the TUN; hop limit 1 from the IPv6 server gets
          // ICMPv6 Time Exceeded through the raw socket.
          const ttl = a.tryExec('ping', '-c', '1', '-t', '1', '-W', '2', '192.0.2.1');
          assert.match(ttl.stdout, /Time to live exceeded/, ttl.stdout + ttl.stderr);
          const hop = b.tryExec('ping', '-6', '-c', '1', '-t', '1', '-W', '2', '-I', SERVER6, CLAT6);
          assert.match(hop.stdout, /Time exceeded/i, hop.stdout + hop.stderr);

          b.exec('python3', '-c', MALFORMED_PY);
          const client = a.tryExec('python3', '-c', CLIENT_PY);
          assert.equal(client.status, 0, `UDP/TCP client failed: ${client.stdout}${client.stderr}`);
          assert.match(client.stdout, /ok/);

          await sleep(50); // the last batch's counters are published as it ends
          const c = dp.counters();
          assert.ok(c['46'].packets >= 3 + 3 + 4 * 3, `46 packets: ${c['46'].packets}`);
          assert.ok(c['64'].packets >= 3 + 3, `64 packets: ${c['64'].packets}`);
          assert.ok(c['46'].translated > 0 && c['64'].translated > 0);
          assert.equal(c['64'].drops.v6_l4_truncated, 5, JSON.stringify(c['64'].drops));
          assert.ok(c.io.csumCompleted > 0, 'veth delivered CHECKSUM_PARTIAL packets, completed');
          assert.equal(c['46'].drops.unknown + c['64'].drops.unknown, 0);
          assert.ok(c['46'].icmpErrors >= 1 && c['64'].icmpErrors >= 1, 'generated errors counted');
          assert.deepEqual(events, []);
          const per = dp.loopCounters();
          assert.equal(per.length, 2);
          for (const [i, l] of per.entries()) {
            assert.ok(l['46'].packets > 0, `worker ${i} read from its TUN queue`);
            assert.ok(l['64'].packets > 0, `worker ${i} read from its packet socket (fanout)`);
          }

          // Reconfigure, pause and resume go through every worker.
          await dp.reconfigure(CONFIG);
          await dp.pause();
          const paused = a.tryExec('ping', '-c', '1', '-W', '1', '192.0.2.1');
          assert.notEqual(paused.status, 0, 'no translation while paused');
          assert.ok(dp.counters()['46'].paused >= 1);
          await dp.resume();
          assert.equal(a.tryExec('ping', '-c', '1', '-W', '2', '192.0.2.1').status, 0);
          // Stop twice at once: one completion; then the device must still be there (held by
          // the test's queue, attached again), and vanish when that last queue closes, which
          // proves every worker closed its own.
          await Promise.all([dp.stop(), dp.stop()]);
          assert.equal(dp.state, 'stopped');
          assert.equal(a.tryExec('ip', 'link', 'show', TUN).status, 0, 'the TUN outlives the datapath while held');
          holder.close();
          await sleep(50);
          assert.notEqual(a.tryExec('ip', 'link', 'show', TUN).status, 0, 'no worker left a queue open');
        } finally {
          await dp?.stop();
          anycast.close();
          holder.close();
        }
      },
      { aAddr: '2001:db8:1::1/64', bAddr: '2001:db8:1::2/64', tag: 'dp' },
    );
  });

  test('workers: 0 runs the same loop on this thread over real devices', async () => {
    await withVethPair(
      async ({ a, b, aIndex }) => {
        b.exec('ip', '-6', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
        const { holder, anycast } = await setupClatSide(a, aIndex);
        let dp: Datapath | undefined;
        try {
          const devices = await devicesFor(aIndex);
          dp = await a.enter(() =>
            Datapath.start({ translator: CONFIG, workers: 0, devices, detachQueues: [holder.fd] }),
          );
          assert.equal(dp.loops, 1);
          // ping runs as a child process: this thread's event loop stays free to translate.
          const ping = await new Promise<number | null>((resolve) => {
            a.spawn('ping', ['-c', '2', '-i', '0.2', '-W', '2', '192.0.2.1']).once('exit', resolve);
          });
          assert.equal(ping, 0);
          assert.ok(dp.counters()['46'].translated >= 2 && dp.counters()['64'].translated >= 2);
          await dp.stop();
          holder.close();
          await sleep(50);
          assert.notEqual(a.tryExec('ip', 'link', 'show', TUN).status, 0, 'the loop closed its queue');
        } finally {
          await dp?.stop();
          anycast.close();
          holder.close();
        }
      },
      { aAddr: '2001:db8:1::1/64', bAddr: '2001:db8:1::2/64', tag: 'dpi' },
    );
  });

  test('packets the kernel drops in front of the packet socket are counted (io.packetKernelDrops)', async () => {
    await withVethPair(
      async ({ a, b, aIndex, aMac }) => {
        b.exec('ip', '-6', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
        // Resolved in advance: while unresolved, the peer would queue 3 packets and drop the rest itself.
        b.exec('ip', '-6', 'neigh', 'replace', CLAT6, 'lladdr', aMac, 'dev', 'veth-b');
        const { holder, anycast } = await setupClatSide(a, aIndex);
        let dp: Datapath | undefined;
        try {
          const devices = await devicesFor(aIndex);
          devices.packet.rcvbuf = 4096;
          // In process: while the flood below runs (a synchronous exec), this thread reads nothing.
          dp = await a.enter(() =>
            Datapath.start({ translator: CONFIG, workers: 0, devices, detachQueues: [holder.fd] }),
          );
          assert.equal(dp.counters().io.packetKernelDrops, 0);
          b.exec('python3', '-c', FLOOD);
          const c = dp.counters();
          assert.ok(c.io.packetKernelDrops > 0, `kernel drops counted: ${JSON.stringify(c.io)}`);
          assert.ok(c.io.packetKernelDrops + c['64'].packets <= 3000, 'no packet counted twice');
        } finally {
          await dp?.stop();
          anycast.close();
          holder.close();
        }
      },
      { aAddr: '2001:db8:1::1/64', bAddr: '2001:db8:1::2/64', tag: 'dpk' },
    );
  });

  test('startOnInput: no worker until input; commands meanwhile; the packet that starts them is translated', async () => {
    await withWorkers('dpw', { workers: 2, startOnInput: true }, async ({ a, b, dp, events }) => {
      b.exec('ip', '-6', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
      assert.equal(dp.loops, 0);
      assert.equal(dp.waitingForInput, true);
      const run = (cmd: string, args: string[]) =>
        new Promise<number | null>((resolve) => {
          // A child process: this thread's event loop must stay free to see the input.
          a.spawn(cmd, args).once('exit', resolve);
        });
      // What the workers will start with changes, and input while paused is only counted: nothing
      // starts them.
      await dp.pause();
      assert.notEqual(await run('ping', ['-c', '1', '-W', '1', '192.0.2.1']), 0);
      assert.equal(dp.counters()['46'].paused, 1);
      await dp.reconfigure(CONFIG, (await devicesFor(a.ifindex('veth-a'))).packet.filter);
      await dp.resume();
      await sleep(100);
      assert.equal(dp.waitingForInput, true);
      // One echo request: it waits in a TUN queue opened for a worker, and is answered.
      assert.equal(await run('ping', ['-c', '1', '-W', '30', '192.0.2.1']), 0);
      assert.equal(dp.waitingForInput, false);
      for (let i = 0; i < 100 && !events.some((e) => e.type === 'workers-started'); i++) await sleep(50);
      assert.deepEqual(
        events.map((e) => e.type),
        ['workers-started'],
      );
      assert.equal(dp.loops, 2);
      await sleep(50);
      const c = dp.counters();
      assert.ok(c['46'].translated >= 1 && c['64'].translated >= 1, JSON.stringify([c['46'], c['64']]));
    });
  });

  test('startOnInput: stopped while waiting, every fd it opened is closed and the TUN queue given back', async () => {
    await withVethPair(
      async ({ a, aIndex }) => {
        const { holder, anycast } = await setupClatSide(a, aIndex);
        const fds = () => readdirSync('/proc/self/fd').length;
        try {
          const devices = await devicesFor(aIndex);
          const before = fds();
          const dp = await a.enter(() =>
            Datapath.start({ translator: CONFIG, workers: 2, devices, detachQueues: [holder.fd], startOnInput: true }),
          );
          assert.equal(fds(), before + 6, 'a TUN queue, a packet socket and a raw socket per loop');
          await dp.stop();
          assert.equal(fds(), before);
          assert.equal(dp.state, 'stopped');
          // The test's own queue was attached again: it alone keeps the device now.
          assert.equal(a.tryExec('ip', 'link', 'show', TUN).status, 0);
          holder.close();
          await sleep(50);
          assert.notEqual(a.tryExec('ip', 'link', 'show', TUN).status, 0, 'no queue left open');
        } finally {
          anycast.close();
          holder.close();
        }
      },
      { aAddr: '2001:db8:1::1/64', bAddr: '2001:db8:1::2/64', tag: 'dpx' },
    );
  });

  test('a TUN deleted under the workers: each reports its TUN side closed, and stops cleanly', async () => {
    await withWorkers('dpd', { workers: 2 }, async ({ a, dp, events }) => {
      a.exec('ip', 'link', 'del', TUN);
      for (let i = 0; i < 200 && events.length < 2; i++) await sleep(10);
      assert.deepEqual(
        events.map((e) => `${e.type}:${e.type === 'side-closed' ? e.side : ''}`),
        ['side-closed:tun', 'side-closed:tun'],
      );
      await dp.stop();
      assert.equal(dp.state, 'stopped');
    });
  });

  test('a worker that crashes: reported, and its fds closed by the main thread', async () => {
    const workerUrl = new URL('./crashing-worker.js', import.meta.url);
    await withWorkers('dpc', { workers: 2, workerUrl }, async ({ a, dp, events, holder }) => {
      // The fault-injecting workers crash on `pause`; the command still completes.
      await dp.pause();
      for (let i = 0; i < 200 && events.length < 2; i++) await sleep(10);
      assert.deepEqual(
        events.map((e) => (e.type === 'worker-exit' ? `${e.worker}:${e.exitCode}:${e.error?.message}` : e.type)).sort(),
        ['0:1:injected crash', '1:1:injected crash'],
      );
      await dp.stop();
      holder.close();
      await sleep(50);
      assert.notEqual(a.tryExec('ip', 'link', 'show', TUN).status, 0, "the dead workers' queues were closed");
    });
  });

  test('a packet socket fd closed under a worker (POLLNVAL): the side is given up and reported, and its number never closed again', async () => {
    await withLostPacketFd('dpn', async (dp) => {
      await dp.stop();
      assert.equal(dp.state, 'stopped');
      return 'after the worker stopped';
    });
  });

  test('a packet socket fd closed under a worker (POLLNVAL), then the worker crashes: its clean-up spares the lost number', async () => {
    await withLostPacketFd('dpm', async (dp, events) => {
      // The worker dies on `pause`; the main thread closes the fds it reported, less the lost one.
      await dp.pause();
      for (let i = 0; i < 200 && events.length < 2; i++) await sleep(10);
      assert.equal(events[1]?.type, 'worker-exit');
      return 'after the crash clean-up';
    });
  });

  test('no handles left: a process with worker datapath exits by itself after stop', async () => {
    await withVethPair(
      async ({ a }) => {
        const script = fileURLToPath(new URL('./exit-child.js', import.meta.url));
        const child = a.spawn(process.execPath, [script, 'workers', 'veth-a'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout?.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr?.on('data', (d: Buffer) => {
          out += d.toString();
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
        const code = await new Promise((r) => child.once('exit', (c, sig) => r(c ?? sig)));
        clearTimeout(timer);
        assert.equal(code, 0, `exited by itself: ${out}`);
        assert.match(out, /stopped/);
      },
      { aAddr: '2001:db8:1::1/64', bAddr: '2001:db8:1::2/64', tag: 'dpx' },
    );
  });

  test("stop waits for the workers' stopped reports, not for their threads to end (nor for a timeout)", {
    timeout: 60_000,
  }, async () => {
    const { LINGER_CHANNEL } = await import('./lingering-worker.js');
    const ch = new BroadcastChannel(LINGER_CHANNEL);
    const answers: unknown[] = [];
    ch.onmessage = (e) => answers.push((e as MessageEvent).data);
    try {
      const workerUrl = new URL('./lingering-worker.js', import.meta.url);
      // A stop timeout longer than the test's: stop() must not get there by terminating the thread.
      await withWorkers('dpl', { workers: 1, workerUrl, stopTimeoutMs: 600_000 }, async ({ dp }) => {
        await dp.stop();
        assert.equal(dp.state, 'stopped');
        ch.postMessage('ping');
        for (let i = 0; i < 500 && answers.length === 0; i++) await sleep(10);
        assert.deepEqual(answers, ['alive'], 'the thread still runs: stop() neither waited for it nor ended it');
      });
    } finally {
      ch.postMessage('release');
      ch.close();
    }
  });

  test('a worker that cannot open its devices fails start cleanly, with the reason', async () => {
    await withVethPair(
      async ({ a, aIndex }) => {
        const devices = await devicesFor(aIndex);
        // No TUN named v4-dp exists in this namespace as a multi-queue device held by anyone:
        // the workers create it, so break the packet side instead (a bogus ifindex).
        devices.packet = { ...devices.packet, ifindex: 9999 };
        const starting = a.enter(() => Datapath.start({ translator: CONFIG, workers: 2, devices }));
        await assert.rejects(starting, (e: Error & { code?: string; causeCode?: string }) => {
          assert.equal(e.code, 'ERR_CLATD_DATAPATH');
          assert.equal(e.causeCode, 'ERR_CLATD_SYS');
          assert.match(e.message, /bind|ifindex 9999/);
          return true;
        });
        // Every worker closed what it had opened: the TUN they created is gone with its last queue.
        await sleep(50);
        assert.notEqual(a.tryExec('ip', 'link', 'show', TUN).status, 0);
      },
      { aAddr: '2001:db8:1::1/64', bAddr: '2001:db8:1::2/64', tag: 'dpf' },
    );
  });
});

/**
 * One worker whose packet socket fd is closed under it right after start (nval-worker.ts): checks
 * the side-closed report, takes the lost fd number for an eventfd of its own (new fds take the
 * lowest free numbers), runs `end`, and checks the eventfd is still open: the worker forgot the
 * number on POLLNVAL, so neither its stop nor the clean-up after its crash may close it.
 */
async function withLostPacketFd(
  tag: string,
  end: (dp: Datapath, events: DatapathEvent[]) => Promise<string>,
): Promise<void> {
  // One worker: no other opens an fd (taking the lost number) before the test does.
  const workerUrl = new URL('./nval-worker.js', import.meta.url);
  await withWorkers(tag, { workers: 1, workerUrl }, async ({ dp, events }) => {
    for (let i = 0; i < 200 && events.length < 1; i++) await sleep(10);
    const first = events[0];
    assert.ok(first?.type === 'side-closed' && first.worker === 0 && first.side === 'packet', JSON.stringify(first));
    const m = /^poll packet fd (\d+) \(datapath worker 0\): EBADF/.exec(first.error.message);
    assert.ok(m, first.error.message);
    const lost = Number(m[1]);
    const spare: EventFd[] = [];
    let mine: EventFd | undefined;
    for (let i = 0; i < 256 && mine === undefined; i++) {
      const e = EventFd.create();
      if (e.fd === lost) mine = e;
      else spare.push(e);
    }
    for (const e of spare) e.close();
    assert.ok(mine, `fd ${lost} taken by this test`);
    try {
      const when = await end(dp, events);
      mine.signal(1);
      assert.equal(mine.drain(), 1, `fd ${lost} still open ${when}`);
    } finally {
      mine.close();
    }
  });
}

/**
 * Worker datapath over real devices in a fresh veth pair (its CLAT side set up), events collected,
 * for `body`; stopped and cleaned up after it whatever happens.
 */
async function withWorkers(
  tag: string,
  o: { workers: number; workerUrl?: URL; stopTimeoutMs?: number; startOnInput?: boolean },
  body: (t: { a: Netns; b: Netns; dp: Datapath; events: DatapathEvent[]; holder: { close(): void } }) => Promise<void>,
): Promise<void> {
  await withVethPair(
    async ({ a, b, aIndex }) => {
      const { holder, anycast } = await setupClatSide(a, aIndex);
      const events: DatapathEvent[] = [];
      let dp: Datapath | undefined;
      try {
        const devices = await devicesFor(aIndex);
        const started = await a.enter(() =>
          Datapath.start({
            translator: CONFIG,
            workers: o.workers,
            devices,
            detachQueues: [holder.fd],
            workerUrl: o.workerUrl,
            stopTimeoutMs: o.stopTimeoutMs,
            startOnInput: o.startOnInput,
            onEvent: (e) => events.push(e),
          }),
        );
        dp = started;
        await body({ a, b, dp: started, events, holder });
      } finally {
        await dp?.stop();
        anycast.close();
        holder.close();
      }
    },
    { aAddr: '2001:db8:1::1/64', bAddr: '2001:db8:1::2/64', tag },
  );
}
