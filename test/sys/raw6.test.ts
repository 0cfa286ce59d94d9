/**
 * The raw IPv6 socket on a veth pair: batches reach the peer (each packet to its own destination,
 * link-local included, refused packets skipped and counted), the anycast membership makes the
 * kernel answer neighbor solicitations, and the DAD probe goes out and draws the defender's NA
 * through the packet socket's filter.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import { createBatch, type PacketBatch } from '../../src/core/batch.js';
import { finish, pseudoSum6, sum16 } from '../../src/core/checksum.js';
import { buildDadSolicitation } from '../../src/core/nd/dad-probe.js';
import { K, native } from '../../src/sys/addon.js';
import { clatReceiveFilter } from '../../src/sys/bpf.js';
import { ClosedError, Errno, SysError } from '../../src/sys/errors.js';
import { PacketSocket } from '../../src/sys/packet-socket.js';
import { Raw6Socket } from '../../src/sys/raw6.js';
import { NEED_ROOT, type Netns, withVethPair } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';
import { until } from './wait.js';

const A = '2001:db8:64::1';
const B = '2001:db8:64::2';
const B2 = '2001:db8:64::3';
const CLAT = '2001:db8:64::c1a7';

/** Appends an IPv6/UDP packet (checksum computed) to slot `i` of the batch. */
function putUdp(batch: PacketBatch, i: number, src: string, dst: string, text: string, port = 9999): void {
  const d = batch.data;
  const p = i * batch.stride;
  const payload = Buffer.from(text);
  const ulen = 8 + payload.length;
  d.fill(0, p, p + 40 + ulen);
  d[p] = 0x60;
  d[p + 4] = ulen >> 8;
  d[p + 5] = ulen & 0xff;
  d[p + 6] = 17;
  d[p + 7] = 64;
  d.set(parseIPv6(src), p + 8);
  d.set(parseIPv6(dst), p + 24);
  const u = p + 40;
  d[u] = 0x30;
  d[u + 1] = 0x39;
  d[u + 2] = port >> 8;
  d[u + 3] = port & 0xff;
  d[u + 4] = ulen >> 8;
  d[u + 5] = ulen & 0xff;
  d.set(payload, u + 8);
  const c = finish(sum16(d, u, ulen, pseudoSum6(d, p + 8, p + 24, 17, ulen))) || 0xffff;
  d[u + 6] = c >> 8;
  d[u + 7] = c & 0xff;
  batch.offs[i] = p;
  batch.lens[i] = 40 + ulen;
  batch.count = Math.max(batch.count, i + 1);
}

/** A UDP listener on [::]:9999 in `ns` that collects the datagrams' text. */
async function listen(ns: Netns): Promise<{ lines: string[] }> {
  const py =
    'import socket\n' +
    's=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n' +
    "s.bind(('::',9999))\n" +
    "print('ready',flush=True)\n" +
    'while True:\n' +
    '  d,a=s.recvfrom(4096)\n' +
    '  print(d.decode(),flush=True)\n';
  const child = ns.spawn('python3', ['-c', py]);
  const out = { lines: [] as string[] };
  let buf = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    out.lines.push(...parts);
  });
  await until('the UDP listener', () => out.lines.includes('ready'), 5000);
  return out;
}

function linkLocal(ns: Netns, ifname: string): string {
  const m = /inet6 (fe80::[0-9a-f:]+)\//.exec(ns.exec('ip', '-6', 'addr', 'show', 'dev', ifname, 'scope', 'link'));
  assert.ok(m, `${ifname} has a link-local address`);
  return m[1];
}

describe('Raw6Socket', { skip: NEED_ROOT }, () => {
  test('sends a batch, each packet to its own destination; refused packets are skipped and counted', async () => {
    await withVethPair(
      async ({ a, b, aIndex }) => {
        b.exec('ip', 'addr', 'add', `${B2}/64`, 'dev', 'veth-b', 'nodad');
        // batchSize 2 < the batch's 6 slots: the sockaddrs grow on the first write, and the set
        // bound in the shim (see binding.ts) is bound again with them.
        const raw = a.enter(() => Raw6Socket.open({ ifname: 'veth-a', ifindex: aIndex, batchSize: 2 }));
        try {
          const rx = await listen(b);
          const bLL = linkLocal(b, 'veth-b');
          const aLL = linkLocal(a, 'veth-a');
          const batch = createBatch(6, 2048);
          putUdp(batch, 0, A, B, 'to B');
          putUdp(batch, 1, A, '2001:db8:ffff::1', 'unroutable'); // no route: ENETUNREACH
          putUdp(batch, 2, A, B2, 'to B2');
          putUdp(batch, 3, aLL, bLL, 'to link-local');
          putUdp(batch, 4, A, B, 'back side only');
          batch.disp[4] = 1;
          assert.equal(raw.write(batch, 0), 3);
          assert.equal(raw.errors.writeErrors, 1);
          assert.equal(raw.errors.lastErrno, Errno.ENETUNREACH);
          await until('3 datagrams', () => rx.lines.length >= 4);
          await new Promise((r) => setTimeout(r, 50));
          assert.deepEqual(rx.lines.slice(1).sort(), ['to B', 'to B2', 'to link-local']);
          assert.equal(raw.write(batch, 1), 1, 'the grown set serves the next write');
          await until('the fourth datagram', () => rx.lines.includes('back side only'));
          assert.equal(raw.read(batch, 0), 0, 'a raw IPPROTO_RAW socket never reads');
        } finally {
          raw.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'raw' },
    );
  });

  test('anycast membership: the kernel answers neighbor solicitations for the CLAT address', async () => {
    await withVethPair(
      async ({ a, b, aIndex, aMac }) => {
        // The kernel delays answers for anycast targets by up to proxy_delay (0.8 s, RFC 4861 §7.2.7);
        // zero here keeps the test fast.
        a.exec('sysctl', '-qw', 'net.ipv6.neigh.veth-a.proxy_delay=0');
        const raw = a.enter(() => Raw6Socket.open({ ifname: 'veth-a', ifindex: aIndex }));
        // Neighbor resolution from the peer's kernel: flush, send one datagram, look at the entry.
        // (ndisc6 would not do: it ignores advertisements whose source is not the target, and the
        // kernel answers for an anycast address from the interface's own address.)
        const resolves = async (ms: number) => {
          b.exec('ip', '-6', 'neigh', 'flush', 'dev', 'veth-b');
          b.exec('bash', '-c', `printf x > /dev/udp/${CLAT}/9`);
          try {
            await until(
              'neighbor resolution',
              () => b.exec('ip', '-6', 'neigh', 'show', CLAT, 'dev', 'veth-b').includes(aMac),
              ms,
            );
            return true;
          } catch {
            return false;
          }
        };
        try {
          assert.equal(await resolves(300), false, 'nobody answers before the join');
          raw.joinAnycast(parseIPv6(CLAT));
          raw.joinAnycast(parseIPv6(CLAT)); // idempotent
          assert.equal(raw.anycast.length, 1);
          assert.ok(a.exec('cat', '/proc/net/anycast6').includes('20010db800640000000000000000c1a7'));
          assert.equal(await resolves(3000), true, 'the kernel answers the NS for the anycast address');
          // An address the host owns cannot be joined as anycast: a named error.
          assert.throws(
            () => raw.joinAnycast(parseIPv6(A)),
            (e: unknown) => e instanceof SysError && e.errnoName === 'EINVAL' && e.message.includes(A),
          );
          raw.leaveAnycast(parseIPv6(CLAT));
          assert.equal(raw.anycast.length, 0);
          assert.equal(await resolves(300), false, 'nobody answers after the leave');
        } finally {
          raw.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'any' },
    );
  });

  test('the DAD probe goes out, and the defender’s NA passes the receive filter', async () => {
    await withVethPair(
      async ({ a, b, aIndex }) => {
        // The peer already owns the address we probe for: it must defend it (RFC 4862 §5.4.3).
        b.exec('ip', 'addr', 'add', `${CLAT}/64`, 'dev', 'veth-b', 'nodad');
        const clat = parseIPv6(CLAT);
        const raw = a.enter(() => Raw6Socket.open({ ifname: 'veth-a', ifindex: aIndex }));
        const sock = a.enter(() =>
          PacketSocket.open({ ifindex: aIndex, ifname: 'veth-a', filter: clatReceiveFilter(clat) }),
        );
        try {
          raw.sendOne(buildDadSolicitation(clat, randomBytes(6)));
          const batch = createBatch(4, 2048);
          await until('the NA', () => sock.read(batch, 0) > 0 || batch.count > 0);
          const d = batch.data;
          const p = batch.offs[0];
          assert.equal(d[p + 6], 58, 'ICMPv6');
          assert.equal(d[p + 40], 136, 'a Neighbor Advertisement');
          assert.deepEqual(d.subarray(p + 48, p + 64), clat, 'for the CLAT address');
          assert.deepEqual(d.subarray(p + 24, p + 40), parseIPv6('ff02::1'), 'to all-nodes');
        } finally {
          sock.close();
          raw.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'dad' },
    );
  });

  test('multicast loop is off: our own kernel does not answer our DAD probe (it would with loop on)', async () => {
    await withVethPair(
      async ({ a, b, aIndex, bIndex }) => {
        const clat = parseIPv6(CLAT);
        a.exec('sysctl', '-qw', 'net.ipv6.neigh.veth-a.proxy_delay=0');
        const raw = a.enter(() => Raw6Socket.open({ ifname: 'veth-a', ifindex: aIndex }));
        // The peer watches the wire for ND about the CLAT address.
        const watch = b.enter(() =>
          PacketSocket.open({ ifindex: bIndex, ifname: 'veth-b', filter: clatReceiveFilter(clat) }),
        );
        try {
          raw.joinAnycast(clat);
          const batch = createBatch(8, 2048);
          const types = async (): Promise<number[]> => {
            batch.count = 0;
            raw.sendOne(buildDadSolicitation(clat, randomBytes(6)));
            await until('our NS on the wire', () => {
              watch.read(batch, 0);
              return batch.count > 0;
            });
            await new Promise((r) => setTimeout(r, 150));
            watch.read(batch, 0);
            const out: number[] = [];
            for (let i = 0; i < batch.count; i++) out.push(batch.data[batch.offs[i] + 40]);
            return out;
          };
          assert.deepEqual(await types(), [135], 'only the probe: no NA from our own kernel');
          // Control: with the loop on, the local stack sees the probe and defends the anycast address.
          assert.equal(native.setsockoptInt(raw.fd, K.IPPROTO_IPV6, K.IPV6_MULTICAST_LOOP, 1), 0);
          assert.deepEqual((await types()).sort(), [135, 136]);
        } finally {
          watch.close();
          raw.close();
        }
      },
      { aAddr: `${A}/64`, bAddr: `${B}/64`, tag: 'loop' },
    );
  });

  test('errors: nonexistent interface, short packet, closed socket', async () => {
    await withVethPair(
      async ({ a, aIndex }) => {
        assert.throws(
          () => a.enter(() => Raw6Socket.open({ ifname: 'nope0', ifindex: 9999 })),
          (e: unknown) => e instanceof SysError && e.errnoName === 'ENODEV' && /nope0/.test(e.message),
        );
        const raw = a.enter(() => Raw6Socket.open({ ifname: 'veth-a', ifindex: aIndex }));
        assert.throws(() => raw.sendOne(new Uint8Array(20)), RangeError);
        raw.close();
        raw.close();
        assert.throws(() => raw.sendOne(new Uint8Array(40)), ClosedError);
        assert.throws(() => raw.write(createBatch(1, 2048)), ClosedError);
      },
      { tag: 'rawe' },
    );
  });
});
