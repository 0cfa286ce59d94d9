/**
 * The worker path with the TUN's offloads, over real devices (the namespaces of
 * datapath-ns.test.ts):
 *
 *   ns a: TCP client → 192.0.2.1 ─ v4-tso (TUN, IFF_VNET_HDR + TSO) ─ Datapath (1 worker) ─ veth-a
 *   ns b: veth-b ─ 64:ff9b::c000:201 (lo), a TCP sink :7002 and a TCP source :7003
 *
 * An upload: the client's stack hands the TUN TCP super-packets (TSO), which the worker translates
 * once and segments for the raw socket (io.tunTsoIn). A download: veth hands the packet socket
 * the server's TSO super-packets, which the worker translates once and writes whole to the TUN
 * with a virtio_net_hdr (io.tunTsoOut); the client's stack takes them as they are. And a download
 * whose server sends no GSO packets (gso_max_segs 1 on its veth): its segments are coalesced into
 * super-packets before the TUN (io.tunCoalesced). Every transfer is checked byte for byte (a digest
 * over a non-repeating stream).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import type { TranslatorConfig } from '../../src/core/xlat/config.js';
import { Datapath } from '../../src/datapath/datapath.js';
import { NEED_ROOT, type Netns, withVethPair } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

const CLAT4 = '192.0.0.4';
const CLAT6 = '2001:db8:1::4';
const SERVER6 = '64:ff9b::c000:201';
const TUN = 'v4-tso';
const MB = 16;

const CONFIG: TranslatorConfig = {
  pool6: '64:ff9b::/96',
  eam: [{ v4: `${CLAT4}/32`, v6: `${CLAT6}/128` }],
  ownV4: '192.0.0.8',
  ownV6: CLAT6,
  ipv4Mtu: 1480,
  ipv6Mtu: 1500,
  hairpin: false,
  wkpGlobalOnly: false,
};

/** The stream both ways: SHA-256 counter blocks, so a lost, doubled or moved segment changes the digest. */
const STREAM_PY = `
import hashlib
def stream(n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(8, 'big')).digest() * 64
        i += 1
    return bytes(out[:n])
DATA = stream(${MB} * 1024 * 1024)
DIGEST = hashlib.sha256(DATA).hexdigest()
`;

const SERVER_PY = `${STREAM_PY}
import socket, threading, hashlib
A = '${SERVER6}'
def listen(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((A, port)); s.listen(4)
    return s
sink, source = listen(7002), listen(7003)
def serve_sink():
    while True:
        c, _ = sink.accept()
        h = hashlib.sha256(); n = 0
        while True:
            x = c.recv(1 << 20)
            if not x: break
            h.update(x); n += len(x)
        c.sendall(f'{n} {h.hexdigest()}'.encode()); c.close()
def serve_source():
    while True:
        c, _ = source.accept()
        c.sendall(DATA); c.close()
threading.Thread(target=serve_sink, daemon=True).start()
threading.Thread(target=serve_source, daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
`;

const CLIENT_PY = `${STREAM_PY}
import socket, hashlib
t = socket.create_connection(('192.0.2.1', 7002), timeout=20)
t.sendall(DATA); t.shutdown(socket.SHUT_WR)
reply = b''
while True:
    x = t.recv(200)
    if not x: break
    reply += x
assert reply.decode() == f'{len(DATA)} {DIGEST}', ('upload', reply)
t = socket.create_connection(('192.0.2.1', 7003), timeout=20)
h = hashlib.sha256(); n = 0
while True:
    x = t.recv(1 << 20)
    if not x: break
    h.update(x); n += len(x)
assert (n, h.hexdigest()) == (len(DATA), DIGEST), ('download', n)
print('ok')
`;

async function waitForLine(child: import('node:child_process').ChildProcess, line: string): Promise<void> {
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${line}" from the server: ${out}`)), 20000);
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

/** Namespace a: the TUN (held by the test, opened first with virtio_net_hdr as clatd's daemon does), routes, anycast CLAT. */
async function setupClatSide(a: Netns, aIndex: number) {
  const { Tun } = await import('../../src/sys/tun.js');
  const { Raw6Socket } = await import('../../src/sys/raw6.js');
  const { installClatFilter } = await import('../../src/sys/nft.js');
  const holder = a.enter(() => Tun.open(TUN, { multiQueue: true, vnet: true }));
  const anycast = a.enter(() => Raw6Socket.open({ ifname: 'veth-a', ifindex: aIndex }));
  try {
    a.sh(
      `sysctl -qw net.ipv6.conf.${TUN}.disable_ipv6=1; ip addr add ${CLAT4}/32 dev ${TUN}; ` +
        `ip link set ${TUN} mtu 1480 up; ip route add default dev ${TUN}; ` +
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

/**
 * The transfers of the file comment through one worker; with `segmented`, the server's veth sends
 * no GSO packets (gso_max_segs 1), so the download reaches the packet socket segment by segment.
 */
async function transfer(segmented: boolean, check: (c: ReturnType<Datapath['counters']>) => void): Promise<void> {
  await withVethPair(
    async ({ a, b, aIndex }) => {
      b.exec('ip', '-6', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
      if (segmented) b.exec('ip', 'link', 'set', 'veth-b', 'gso_max_segs', '1');
      const server = b.spawn('python3', ['-u', '-c', SERVER_PY]);
      const { holder, anycast } = await setupClatSide(a, aIndex);
      let dp: Datapath | undefined;
      try {
        assert.ok(holder.vnet, 'the TUN has virtio_net_hdr');
        if (!holder.tso) {
          // Not a failure of clatd: the kernel refused TUNSETOFFLOAD (reason shown).
          assert.fail(`the kernel refused the TUN's TSO: ${holder.offloadError}`);
        }
        await waitForLine(server, 'ready');
        const { clatReceiveFilter } = await import('../../src/sys/bpf.js');
        const devices = {
          tun: { name: TUN },
          packet: { ifindex: aIndex, ifname: 'veth-a', filter: clatReceiveFilter(parseIPv6(CLAT6)) },
          raw: { ifname: 'veth-a', ifindex: aIndex },
        };
        dp = await a.enter(() =>
          Datapath.start({ translator: CONFIG, workers: 1, devices, detachQueues: [holder.fd] }),
        );
        const client = a.tryExec('python3', '-c', CLIENT_PY);
        assert.equal(client.status, 0, `client failed: ${client.stdout}${client.stderr}`);
        assert.match(client.stdout, /ok/);
        await sleep(50);
        check(dp.counters());
      } finally {
        await dp?.stop();
        anycast.close();
        holder.close();
        server.kill();
      }
    },
    { aAddr: '2001:db8:1::1/64', bAddr: '2001:db8:1::2/64', tag: 'xo-tso' },
  );
}

describe('worker path with TUN offloads', { skip: NEED_ROOT }, () => {
  test('a TCP upload and download go through as super-packets translated once, byte for byte', async () => {
    await transfer(false, (c) => {
      assert.ok(c.io.tunTsoIn > 0, `upload super-packets read whole from the TUN: ${JSON.stringify(c.io)}`);
      assert.ok(c.io.tunTsoOut > 0, `download super-packets written whole to the TUN: ${JSON.stringify(c.io)}`);
      assert.equal(c.io.tsoDropped, 0);
      assert.equal(c.io.tunWriteFailed + c.io.rawWriteFailed, 0, JSON.stringify(c.io));
      // Fewer packets read than MTU-sized segments carried: the whole point.
      const segments = (MB * 1024 * 1024) / 1440;
      assert.ok(c['46'].packets < segments / 2, `46 packets read: ${c['46'].packets}`);
      assert.ok(c['64'].packets < segments / 2, `64 packets read: ${c['64'].packets}`);
      assert.equal(c['46'].drops.unknown + c['64'].drops.unknown, 0);
    });
  });

  test('a download that arrives segment by segment is coalesced for the TUN, byte for byte', async () => {
    await transfer(true, (c) => {
      assert.equal(c.io.tunTsoOut, 0, 'the server sent no super-packet');
      assert.ok(c.io.tunCoalesced > 0, `segments coalesced before the TUN: ${JSON.stringify(c.io)}`);
      assert.equal(c.io.tunWriteFailed + c.io.rawWriteFailed, 0, JSON.stringify(c.io));
      assert.equal(c['46'].drops.unknown + c['64'].drops.unknown, 0);
    });
  });
});
