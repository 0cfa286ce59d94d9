/**
 * The packet socket on a veth pair: the filter lets through only packets for the CLAT address (and
 * DAD's ND), partial checksums are completed and verify, the host's own outgoing packets are not
 * seen, and a CLAT-less configuration errors clearly.
 */
import assert from 'node:assert/strict';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import { createBatch, type PacketBatch } from '../../src/core/batch.js';
import { fold, pseudoSum6, sum16 } from '../../src/core/checksum.js';
import { K, native } from '../../src/sys/addon.js';
import { clatReceiveFilter } from '../../src/sys/bpf.js';
import { ClosedError, SysError } from '../../src/sys/errors.js';
import { PacketSocket } from '../../src/sys/packet-socket.js';
import { pollReadable } from '../../src/sys/poll.js';
import { NEED_ROOT, type Netns, withVethPair } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';
import { until } from './wait.js';

const A = '2001:db8:64::1';
const B = '2001:db8:64::2';
const CLAT = '2001:db8:64::c1a7';
const OTHER = '2001:db8:64::99';

/** True when the L4 checksum of the IPv6 packet at `p` (no extension headers) verifies. */
function l4ChecksumOk(d: Uint8Array, p: number): boolean {
  const plen = (d[p + 4] << 8) | d[p + 5];
  const sum = sum16(d, p + 40, plen, pseudoSum6(d, p + 8, p + 24, d[p + 6], plen));
  return fold(sum) === 0xffff;
}

/** Reads until `n` packets are in the batch (or throws after the deadline). */
async function readN(io: PacketSocket, batch: PacketBatch, n: number, headroom = 0): Promise<void> {
  await until(`${n} packets on the packet socket`, () => {
    io.read(batch, headroom);
    return batch.count >= n;
  });
}

function udpFrom(ns: { exec(cmd: string, ...a: string[]): string }, dst: string, text: string, port = 9999): void {
  ns.exec('bash', '-c', `printf %s '${text}' > /dev/udp/${dst}/${port}`);
}

/** One UDP_SEGMENT (103) send from `ns` to the CLAT address: 3000 bytes as datagrams of 1200, 1200 and 600. */
function sendUdpGso(ns: Netns): void {
  ns.exec(
    'python3',
    '-c',
    'import socket\n' +
      's=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n' +
      's.setsockopt(17,103,1200)\n' +
      `s.sendto(bytes(i % 251 for i in range(3000)),('${CLAT}',9999))\n`,
  );
}

describe('PacketSocket', { skip: NEED_ROOT }, () => {
  test('receives only packets for the CLAT address, with completed checksums', async () => {
    await withVethPair(
      async ({ a, b, aIndex, aMac }) => {
        const sock = a.enter(() =>
          PacketSocket.open({ ifindex: aIndex, ifname: 'veth-a', filter: clatReceiveFilter(parseIPv6(CLAT)) }),
        );
        try {
          // The peer sends to the CLAT address and to another one; both frames reach veth-a.
          b.exec('ip', '-6', 'neigh', 'replace', CLAT, 'lladdr', aMac, 'dev', 'veth-b');
          b.exec('ip', '-6', 'neigh', 'replace', OTHER, 'lladdr', aMac, 'dev', 'veth-b');
          udpFrom(b, OTHER, 'not for us');
          udpFrom(b, A, 'for the host');
          udpFrom(b, CLAT, 'hello clat');
          const batch = createBatch(8, 4096);
          await readN(sock, batch, 1);
          // Give stray packets a moment to show up, then check that nothing else came.
          await new Promise((r) => setTimeout(r, 50));
          sock.read(batch, 0);
          assert.equal(batch.count, 1, 'only the packet to the CLAT address');
          const d = batch.data;
          const p = batch.offs[0];
          assert.equal(d[p] >> 4, 6, 'starts at the IPv6 header (vnet and Ethernet headers stripped)');
          assert.equal(batch.lens[0], 40 + 8 + 10);
          assert.deepEqual(d.subarray(p + 24, p + 40), parseIPv6(CLAT));
          assert.equal(d[p + 6], 17);
          assert.equal(Buffer.from(d.subarray(p + 48, p + 58)).toString(), 'hello clat');
          // veth hands locally generated UDP over with CHECKSUM_PARTIAL; read() completed it.
          assert.ok(sock.counters.csumCompleted >= 1, 'a partial checksum was completed');
          assert.ok(l4ChecksumOk(d, p), 'the completed UDP checksum verifies');
        } finally {
          sock.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'pkt' },
    );
  });

  test('completes TCP checksums too, places packets at the headroom, and polls readable', async () => {
    await withVethPair(
      async ({ a, b, aIndex, aMac }) => {
        const sock = a.enter(() =>
          PacketSocket.open({ ifindex: aIndex, ifname: 'veth-a', filter: clatReceiveFilter(parseIPv6(CLAT)) }),
        );
        try {
          b.exec('ip', '-6', 'neigh', 'replace', CLAT, 'lladdr', aMac, 'dev', 'veth-b');
          const batch = createBatch(4, 4096);
          const got = new Promise<void>((resolve) => {
            const poll = pollReadable(sock.fd, 'packet socket', () => {
              sock.read(batch, 64);
              if (batch.count > 0) {
                poll.stop();
                resolve();
              }
            });
          });
          // A TCP SYN to the CLAT address (nobody listens; only the first SYN matters).
          b.spawn('bash', ['-c', `exec 3<>/dev/tcp/${CLAT}/80`]);
          await got;
          const d = batch.data;
          const p = batch.offs[0];
          assert.equal(p, 64, 'the IPv6 header lands at the requested headroom');
          assert.equal(d[p + 6], 6, 'TCP');
          assert.ok(sock.counters.csumCompleted >= 1);
          assert.ok(l4ChecksumOk(d, p), 'the completed TCP checksum verifies');
        } finally {
          sock.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'pkt' },
    );
  });

  test('splits a UDP GSO super-packet into its datagrams, each with a valid checksum', async () => {
    await withVethPair(
      async ({ a, b, aIndex, aMac }) => {
        const sock = a.enter(() =>
          PacketSocket.open({ ifindex: aIndex, ifname: 'veth-a', filter: clatReceiveFilter(parseIPv6(CLAT)) }),
        );
        try {
          b.exec('ip', '-6', 'neigh', 'replace', CLAT, 'lladdr', aMac, 'dev', 'veth-b');
          // UDP_SEGMENT (103): one send of 3000 bytes = datagrams of 1200, 1200 and 600 bytes.
          sendUdpGso(b);
          const batch = createBatch(8, 8192);
          await readN(sock, batch, 3);
          assert.equal(batch.count, 3);
          assert.equal(sock.counters.gsoPackets, 1, 'it did arrive as one super-packet');
          const d = batch.data;
          const sizes: number[] = [];
          let pos = 0;
          for (let i = 0; i < 3; i++) {
            const p = batch.offs[i];
            const ulen = (d[p + 44] << 8) | d[p + 45];
            assert.equal(batch.lens[i], 40 + ulen);
            assert.equal((d[p + 4] << 8) | d[p + 5], ulen, 'payload length');
            assert.ok(l4ChecksumOk(d, p), `datagram ${i} checksum verifies`);
            for (let k = 0; k < ulen - 8; k++) assert.equal(d[p + 48 + k], (pos + k) % 251);
            pos += ulen - 8;
            sizes.push(ulen - 8);
          }
          assert.deepEqual(sizes, [1200, 1200, 600]);
          // Without free slots for its datagrams the super-packet is dropped and counted, never merged.
          // (A TCP one would go on whole: still one stream.)
          b.exec(
            'python3',
            '-c',
            'import socket\n' +
              's=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n' +
              's.setsockopt(17,103,1200)\n' +
              `s.sendto(bytes(3000),('${CLAT}',9999))\n`,
          );
          const small = createBatch(2, 8192);
          await readN(sock, small, 1);
          assert.equal(small.lens[0], 0, 'skipped');
          assert.equal(sock.counters.gsoDropped, 1);
        } finally {
          sock.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'gso' },
    );
  });

  test('reads into a batch carved out of an arena (base not 0), GSO segments included', async () => {
    await withVethPair(
      async ({ a, b, aIndex, aMac }) => {
        const sock = a.enter(() =>
          PacketSocket.open({ ifindex: aIndex, ifname: 'veth-a', filter: clatReceiveFilter(parseIPv6(CLAT)) }),
        );
        try {
          b.exec('ip', '-6', 'neigh', 'replace', CLAT, 'lladdr', aMac, 'dev', 'veth-b');
          sendUdpGso(b);
          // Another batch's slots come first in the arena (as the datapath's output batch follows
          // its input batch); a base that is no multiple of the stride catches any slot math without it.
          const stride = 8192;
          const base = 3 * stride + 100;
          const arena = new Uint8Array(base + 8 * stride).fill(0xee);
          const batch = createBatch(8, stride, arena, base);
          await readN(sock, batch, 3, 64);
          assert.equal(sock.counters.gsoPackets, 1);
          assert.ok(
            arena.subarray(0, base).every((x) => x === 0xee),
            'nothing written in front of the batch',
          );
          let pos = 0;
          for (let i = 0; i < 3; i++) {
            const p = batch.offs[i];
            assert.equal(p, base + i * stride + 64, `packet ${i} at the headroom of its own slot`);
            const ulen = (arena[p + 44] << 8) | arena[p + 45];
            assert.equal(batch.lens[i], 40 + ulen);
            assert.ok(l4ChecksumOk(arena, p), `datagram ${i} checksum verifies`);
            for (let k = 0; k < ulen - 8; k++) assert.equal(arena[p + 48 + k], (pos + k) % 251);
            pos += ulen - 8;
          }
          assert.equal(pos, 3000);
        } finally {
          sock.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'pktb' },
    );
  });

  test('splits a TCP TSO super-packet into MSS segments with their own sequence numbers and checksums', async () => {
    await withVethPair(
      async ({ a, b, aIndex }) => {
        // Watch the traffic to A itself: a real TCP connection from b, served by a listener in a.
        const sock = a.enter(() =>
          PacketSocket.open({ ifindex: aIndex, ifname: 'veth-a', filter: clatReceiveFilter(parseIPv6(A)) }),
        );
        const server = a.spawn('python3', [
          '-c',
          'import socket\n' +
            's=socket.socket(socket.AF_INET6)\n' +
            `s.bind(('${A}',8080)); s.listen(2); print('ready',flush=True)\n` +
            'for _ in range(2):\n' +
            '  c,_=s.accept()\n' +
            '  while c.recv(65536): pass\n',
        ]);
        try {
          await new Promise<void>((resolve) => server.stdout?.once('data', () => resolve()));
          b.exec(
            'python3',
            '-c',
            'import socket\n' +
              `c=socket.create_connection(('${A}',8080))\n` +
              'c.sendall(bytes(i % 251 for i in range(20000)))\n' +
              'c.close()\n',
          );
          // Default stride: a slot must hold the whole super-packet before it is split.
          const batch = createBatch(64);
          const segments = new Map<number, Uint8Array>();
          let isn = -1;
          await until('20000 bytes of segments', () => {
            batch.count = 0;
            sock.read(batch, 0);
            const d = batch.data;
            for (let i = 0; i < batch.count; i++) {
              const p = batch.offs[i];
              if (batch.lens[i] === 0 || d[p + 6] !== 6) continue; // TCP only (NUD probes come too)
              assert.ok(batch.lens[i] <= 1500, `segment of ${batch.lens[i]} bytes fits the MTU`);
              assert.ok(l4ChecksumOk(d, p), 'segment checksum verifies');
              const t = p + 40;
              const seq = ((d[t + 4] << 24) | (d[t + 5] << 16) | (d[t + 6] << 8) | d[t + 7]) >>> 0;
              if (d[t + 13] & 0x02) isn = seq; // SYN
              const data = d.slice(t + (d[t + 12] >> 4) * 4, p + batch.lens[i]);
              if (data.length > 0) segments.set(seq, data);
            }
            let n = 0;
            for (const v of segments.values()) n += v.length;
            return n >= 20000 && isn >= 0;
          });
          assert.ok(sock.counters.gsoPackets >= 1, 'TSO super-packets did arrive');
          assert.equal(sock.counters.gsoDropped, 0);
          const stream = [...segments.entries()]
            .sort((x, y) => ((x[0] - isn) >>> 0) - ((y[0] - isn) >>> 0))
            .flatMap(([, v]) => [...v]);
          assert.equal(stream.length, 20000);
          for (let k = 0; k < stream.length; k++) assert.equal(stream[k], k % 251, `byte ${k}`);
          // A batch without spare slots: the TCP super-packet goes on whole, its checksum completed.
          const sendAgain = () =>
            b.exec(
              'python3',
              '-c',
              `import socket\nc=socket.create_connection(('${A}',8080))\nc.sendall(bytes(20000))\nc.close()\n`,
            );
          sendAgain();
          const tight = createBatch(1);
          await until('a super-packet kept whole', () => {
            tight.count = 0;
            sock.read(tight, 0);
            if (tight.count === 0 || tight.lens[0] <= 1500) return false;
            assert.ok(l4ChecksumOk(tight.data, tight.offs[0]), 'the whole super-packet checksum verifies');
            return true;
          });
          assert.ok(sock.counters.gsoWhole >= 1);
        } finally {
          sock.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'tso' },
    );
  });

  test('counts the packets the kernel drops in front of a socket nobody reads (PACKET_STATISTICS)', async () => {
    await withVethPair(
      async ({ a, b, aIndex, aMac }) => {
        // The smallest receive buffer: a few frames fill the queue.
        const sock = a.enter(() =>
          PacketSocket.open({
            ifindex: aIndex,
            ifname: 'veth-a',
            filter: clatReceiveFilter(parseIPv6(CLAT)),
            rcvbuf: 4096,
          }),
        );
        try {
          b.exec('ip', '-6', 'neigh', 'replace', CLAT, 'lladdr', aMac, 'dev', 'veth-b');
          sock.readKernelStats(); // start from zero whatever arrived before
          const before = sock.counters.kernelDrops;
          const sent = 3000;
          // A flood while nothing reads: the exec blocks this thread until it is over.
          b.exec(
            'python3',
            '-c',
            'import socket\n' +
              's=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n' +
              `for i in range(${sent}): s.sendto(bytes(200),('${CLAT}',9999))\n`,
          );
          sock.readKernelStats();
          const drops = sock.counters.kernelDrops - before;
          const batch = createBatch(64, 2048);
          let read = 0;
          for (let n = sock.read(batch, 0); n > 0; n = sock.read(batch, 0)) {
            read += n;
            batch.count = 0;
          }
          assert.ok(drops > 0, `the kernel dropped some of ${sent} (read ${read})`);
          // Each packet is read or dropped at most once (others may be lost before the socket, in the backlog).
          assert.ok(read + drops <= sent, `read ${read} + dropped ${drops} <= sent ${sent}`);
          // Reading the statistics resets them: nothing new, nothing counted twice.
          sock.readKernelStats();
          assert.equal(sock.counters.kernelDrops - before, drops);
        } finally {
          sock.close();
        }
        sock.readKernelStats(); // closed: a no-op, no throw
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'pktd' },
    );
  });

  test("ignores the host's own outgoing packets (PACKET_IGNORE_OUTGOING)", async () => {
    await withVethPair(
      async ({ a, aIndex }) => {
        // Filter on B, the destination of packets that A itself sends out of veth-a.
        const filter = clatReceiveFilter(parseIPv6(B));
        const sock = a.enter(() => PacketSocket.open({ ifindex: aIndex, ifname: 'veth-a', filter }));
        // Control: a tap on every protocol (ETH_P_ALL) with the same filter sees them leave. (A socket
        // bound to ETH_P_IPV6 is no transmit tap to begin with; PACKET_IGNORE_OUTGOING makes sure.)
        const control = a.enter(() => native.socket(K.AF_PACKET, K.SOCK_RAW, 0));
        try {
          assert.equal(native.attachFilter(control, filter), 0);
          assert.equal(native.bindPacket(control, K.ETH_P_ALL, aIndex), 0);
          udpFrom(a, B, 'outgoing');
          const buf = new Uint8Array(2048);
          await until('the control socket to see the outgoing packet', () => native.recv(control, buf) > 0);
          const batch = createBatch(4, 4096);
          assert.equal(sock.read(batch, 0), 0, 'the clatd socket did not');
        } finally {
          native.close(control);
          sock.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'pkto' },
    );
  });

  test('fanout groups, bad interface, closed socket', async () => {
    await withVethPair(
      async ({ a, aIndex }) => {
        const filter = clatReceiveFilter(parseIPv6(CLAT));
        const s1 = a.enter(() => PacketSocket.open({ ifindex: aIndex, ifname: 'veth-a', filter, fanoutGroup: 7 }));
        const s2 = a.enter(() => PacketSocket.open({ ifindex: aIndex, ifname: 'veth-a', filter, fanoutGroup: 7 }));
        s1.setFilter(clatReceiveFilter(parseIPv6(OTHER)));
        s2.close();
        s1.close();
        s1.close();
        assert.throws(() => s1.read(createBatch(1, 2048), 0), ClosedError);
        assert.throws(
          () => a.enter(() => PacketSocket.open({ ifindex: 9999, ifname: 'nope0', filter })),
          (e: unknown) => e instanceof SysError && e.errnoName === 'ENODEV' && /bind AF_PACKET nope0/.test(e.message),
        );
      },
      { tag: 'pktf' },
    );
  });
});
