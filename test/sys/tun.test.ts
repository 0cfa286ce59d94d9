/** TUN in a namespace: create, batched read and write (a real ping answered by us), multi-queue, errors. */
import assert from 'node:assert/strict';
import { createBatch } from '../../src/core/batch.js';
import { finish, sum16 } from '../../src/core/checksum.js';
import { ClosedError, SysError } from '../../src/sys/errors.js';
import { Tun } from '../../src/sys/tun.js';
import { NEED_ROOT, withNetns } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';
import { exited, until } from './wait.js';

const TUN_SETUP = (dev: string) =>
  // IPv6 off on the IPv4-only TUN, before it goes up: no router solicitations or MLD in the reader.
  `sysctl -qw net.ipv6.conf.${dev}.disable_ipv6=1; ip link set ${dev} up; ` +
  `ip addr add 192.0.2.1/32 dev ${dev}; ip route add 198.51.100.0/24 dev ${dev}`;

/** Turns an IPv4 ICMP echo request at `p` into its reply in place (swap addresses, type 0, checksums). */
function echoReply(d: Uint8Array, p: number): void {
  const ihl = (d[p] & 0x0f) * 4;
  const total = (d[p + 2] << 8) | d[p + 3];
  const src = d.slice(p + 12, p + 16);
  d.copyWithin(p + 12, p + 16, p + 20);
  d.set(src, p + 16);
  const icmp = p + ihl;
  d[icmp] = 0;
  d[icmp + 2] = 0;
  d[icmp + 3] = 0;
  const c = finish(sum16(d, icmp, total - ihl));
  d[icmp + 2] = c >> 8;
  d[icmp + 3] = c & 0xff;
}

describe('Tun', { skip: NEED_ROOT }, () => {
  test('vnet: offloads granted, the header stripped on read and written on write; later queues follow the device', async () => {
    await withNetns(async (ns) => {
      const tun = ns.enter(() => Tun.open('v4-vnet', { multiQueue: true, vnet: true }));
      // A queue asking for no header still gets the device's: the first queue's flags stay.
      const plain = ns.enter(() => Tun.open('v4-vnet', { multiQueue: true }));
      try {
        assert.equal(tun.vnet, true);
        assert.equal(tun.offloadError, '', 'the kernel takes checksum and TSO offloads');
        assert.ok(tun.tso);
        assert.equal(plain.vnet, true, 'a multi-queue TUN keeps its first queue flags');
        ns.sh(TUN_SETUP('v4-vnet'));
        const batch = createBatch(8, 2048);
        const vnet = new Uint8Array(8 * 10).fill(0xee);
        const ping = ns.spawn('ping', ['-n', '-c', '2', '-i', '0.2', '-W', '2', '198.51.100.7']);
        let replied = 0;
        await until('2 echo requests', () => {
          batch.count = 0;
          let n = 0;
          for (const q of [tun, plain]) n += q.read(batch, 20, 8, vnet);
          for (let i = 0; i < n; i++) {
            const p = batch.offs[i];
            assert.equal(p, i * 2048 + 20, 'the packet at the headroom, its header in front of it');
            assert.equal(batch.data[p] >> 4, 4);
            assert.deepEqual([...vnet.subarray(i * 10, i * 10 + 10)], new Array(10).fill(0), 'ICMP: no offload');
            echoReply(batch.data, p);
          }
          if (n > 0) replied += tun.write(batch, undefined, vnet);
          return replied >= 2;
        });
        assert.equal(await exited(ping), 0, 'ping got its replies through the headers');
        assert.equal(tun.errors.writeErrors, 0);
      } finally {
        plain.close();
        tun.close();
      }
    }, 'xo-vnet');
  });

  test('reads a ping in a batch and writes the echo reply back: ping succeeds', async () => {
    await withNetns(async (ns) => {
      const tun = ns.enter(() => Tun.open('v4-test'));
      try {
        assert.equal(tun.name, 'v4-test');
        assert.ok(tun.fd >= 0);
        ns.sh(TUN_SETUP('v4-test'));
        const batch = createBatch(8, 2048);
        assert.equal(tun.read(batch, 20), 0, 'nothing queued yet');
        const ping = ns.spawn('ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '198.51.100.7']);
        let replied = 0;
        await until('3 echo requests', () => {
          batch.count = 0;
          const n = tun.read(batch, 20);
          for (let i = 0; i < n; i++) {
            const p = batch.offs[i];
            assert.equal(p, i * 2048 + 20, 'packet placed at the headroom');
            assert.equal(batch.data[p] >> 4, 4, 'an IPv4 packet, no tun_pi in front');
            assert.equal(batch.data[p + 9], 1, 'ICMP');
            assert.deepEqual([...batch.data.subarray(p + 16, p + 20)], [198, 51, 100, 7]);
            echoReply(batch.data, p);
          }
          if (n > 0) replied += tun.write(batch);
          return replied >= 3;
        });
        assert.equal(await exited(ping), 0, 'ping got its replies');
        assert.equal(tun.errors.writeErrors, 0);
      } finally {
        tun.close();
      }
    }, 'tun');
  });

  test('reads into a batch carved out of an arena (base not 0)', async () => {
    await withNetns(async (ns) => {
      const tun = ns.enter(() => Tun.open('v4-base'));
      try {
        ns.sh(TUN_SETUP('v4-base'));
        const stride = 2048;
        const base = 2 * stride + 36;
        const arena = new Uint8Array(base + 4 * stride).fill(0xee);
        const batch = createBatch(4, stride, arena, base);
        const ping = ns.spawn('ping', ['-n', '-c', '1', '-W', '2', '198.51.100.9']);
        await until('an echo request', () => tun.read(batch, 20) > 0);
        const p = batch.offs[0];
        assert.equal(p, base + 20, 'packet at the headroom of slot 0 of this batch');
        assert.equal(arena[p] >> 4, 4);
        assert.deepEqual([...arena.subarray(p + 16, p + 20)], [198, 51, 100, 9]);
        assert.ok(
          arena.subarray(0, base).every((x) => x === 0xee),
          'nothing written in front of the batch',
        );
        echoReply(arena, p);
        assert.equal(tun.write(batch), 1);
        assert.equal(await exited(ping), 0);
      } finally {
        tun.close();
      }
    }, 'tunb');
  });

  test('write picks packets by disposition and skips empty slots', async () => {
    await withNetns(async (ns) => {
      const tun = ns.enter(() => Tun.open('v4-disp'));
      try {
        ns.sh(TUN_SETUP('v4-disp'));
        const ping = ns.spawn('ping', ['-n', '-c', '1', '-W', '2', '198.51.100.8']);
        const batch = createBatch(4, 2048);
        await until('an echo request', () => tun.read(batch, 0) > 0);
        echoReply(batch.data, batch.offs[0]);
        batch.count = 3;
        batch.lens[1] = 0; // empty: skipped
        batch.lens[2] = batch.lens[0];
        batch.offs[2] = batch.offs[0];
        batch.disp[0] = 1;
        batch.disp[2] = 0;
        assert.equal(tun.write(batch, 1), 1, 'only disposition 1');
        assert.equal(await exited(ping), 0);
      } finally {
        tun.close();
      }
    }, 'tund');
  });

  test('multi-queue: one fd per queue, each closes on its own', async () => {
    await withNetns(async (ns) => {
      const q0 = ns.enter(() => Tun.open('v4-mq', { multiQueue: true }));
      const q1 = ns.enter(() => q0.openQueue());
      try {
        assert.notEqual(q0.fd, q1.fd);
        assert.equal(q1.name, 'v4-mq');
        assert.equal(q1.multiQueue, true);
        q1.close();
        assert.ok(ns.exec('ip', 'link', 'show', 'v4-mq').includes('v4-mq'), 'device lives while a queue is open');
        // A single-queue open of a multi-queue device is refused with a named error.
        assert.throws(
          () => ns.enter(() => Tun.open('v4-mq')),
          (e: unknown) => e instanceof SysError && e.syscall === 'TUNSETIFF' && e.object === 'v4-mq',
        );
      } finally {
        q1.close();
        q0.close();
      }
      assert.equal(ns.tryExec('ip', 'link', 'show', 'v4-mq').status, 1, 'gone with its last queue');
    }, 'tunmq');
  });

  test('errors: busy device, bad names, closed and deleted devices', async () => {
    await withNetns(async (ns) => {
      const tun = ns.enter(() => Tun.open('v4-err'));
      try {
        assert.throws(() => tun.openQueue(), TypeError);
        assert.throws(
          () => ns.enter(() => Tun.open('v4-err')),
          (e: unknown) =>
            e instanceof SysError && e.errnoName === 'EBUSY' && /^TUNSETIFF v4-err: EBUSY/.test(e.message),
        );
        assert.throws(
          () => Tun.open('x'.repeat(16)),
          (e: unknown) => e instanceof SysError && e.errnoName === 'EINVAL' && e.message.includes('x'.repeat(16)),
        );
        // exclusive: refuses to attach to an existing device.
        assert.throws(
          () => ns.enter(() => Tun.open('v4-err', { exclusive: true })),
          (e: unknown) => e instanceof SysError && e.errnoName === 'EBUSY',
        );
        assert.throws(() => ns.enter(() => Tun.open('lo')), SysError, 'lo is not a TUN');
        // The device deleted under us: the next read reports the TUN as closed.
        ns.exec('ip', 'link', 'del', 'v4-err');
        assert.throws(() => tun.read(createBatch(2, 2048), 0), ClosedError);
      } finally {
        tun.close();
        tun.close();
      }
      assert.throws(() => tun.read(createBatch(2, 2048), 0), ClosedError);
      assert.throws(() => tun.write(createBatch(2, 2048)), ClosedError);
    }, 'tunerr');
  });
});
