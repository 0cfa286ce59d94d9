/** The warm-up's stand-in devices: the real device classes over socket pairs, nothing leaving the process. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBatch, Disposition } from '../../src/core/batch.js';
import { fold, pseudoSum6 } from '../../src/core/checksum.js';
import { frame, StandIns } from '../../src/datapath/stand-ins.js';
import { native } from '../../src/sys/addon.js';
import { PacketSocket } from '../../src/sys/packet-socket.js';
import { Raw6Socket } from '../../src/sys/raw6.js';
import { Tun } from '../../src/sys/tun.js';
import { checksumProblems, ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_UDP } from '../pkt/build.js';
import { batchOf } from './batch-of.js';

const STRIDE = 2048;

const v4 = ipv4Packet(
  { src: '192.0.0.4', dst: '192.0.2.1', df: true },
  { proto: PROTO_ICMP, sport: 7, dport: 1, payload: new Uint8Array(56) },
);
const v6 = ipv6Packet(
  { src: '2001:db8:64::c000:201', dst: '2001:db8:1::4' },
  { proto: PROTO_UDP, sport: 53, dport: 40000, payload: new Uint8Array(20).fill(7) },
);

describe('warm-up stand-ins', () => {
  test('are the real device classes', () => {
    const s = StandIns.open(8);
    try {
      assert.ok(s.tun instanceof Tun && s.packet instanceof PacketSocket && s.raw instanceof Raw6Socket);
      assert.equal(s.tun.batchSize, 8);
    } finally {
      s.close();
    }
  });

  test('the TUN side reads what is fed, one packet per slot; its writes and the raw writes are drained', () => {
    const s = StandIns.open(8);
    try {
      s.feedTun(batchOf([v4, v4, v4]), 1, 2);
      const into = createBatch(8, STRIDE);
      assert.equal(s.tun.read(into, 32), 2);
      assert.deepEqual(into.data.subarray(into.offs[0], into.offs[0] + into.lens[0]), v4);
      assert.equal(s.tun.read(into, 32), 0, 'empty: EAGAIN reads as 0');

      const out = batchOf([v6, v4]);
      out.disp[0] = Disposition.Forward;
      out.disp[1] = Disposition.Back;
      // The raw socket's destination addresses are ignored by a SEQPACKET pair: every packet goes.
      assert.equal(s.raw.write(out, Disposition.Forward), 1);
      assert.equal(s.tun.write(out, Disposition.Back), 1);
      assert.equal(s.raw.errors.writeErrors + s.tun.errors.writeErrors, 0);
      s.drain(createBatch(1, STRIDE)); // smaller than what waits: drains until empty
    } finally {
      s.close();
    }
  });

  test('the packet socket reads frames as from an uplink, completing a CHECKSUM_PARTIAL one', () => {
    const s = StandIns.open(8);
    try {
      // The partial form: the UDP checksum field holds the pseudo-header sum, which read completes.
      s.feedPacket(
        batchOf([frame(v6), frame(v6, { offset: 6, pseudo: fold(pseudoSum6(v6, 8, 24, PROTO_UDP, v6.length - 40)) })]),
        0,
        2,
      );
      const into = createBatch(8, STRIDE);
      assert.equal(s.packet.read(into, 32), 2);
      for (let i = 0; i < 2; i++) {
        const got = into.data.subarray(into.offs[i], into.offs[i] + into.lens[i]);
        assert.deepEqual(got, v6, `packet ${i}`);
        assert.deepEqual(checksumProblems(got), []);
      }
      assert.equal(s.packet.counters.csumCompleted, 1);
      assert.equal(s.packet.counters.malformed, 0);
    } finally {
      s.close();
    }
  });

  test('reads stop at `limit` and leave the rest queued (TUN and packet socket)', () => {
    const s = StandIns.open(8);
    try {
      s.feedTun(batchOf([v4, v4, v4]), 0, 3);
      s.feedPacket(batchOf([frame(v6), frame(v6), frame(v6)]), 0, 3);
      for (const dev of [s.tun, s.packet]) {
        const into = createBatch(8, STRIDE);
        assert.equal(dev.read(into, 0, 1), 1);
        assert.equal(dev.read(into, 0, 8), 2, 'the rest is still there');
        assert.equal(into.count, 3);
      }
    } finally {
      s.close();
    }
  });

  test('forgetFd: the device lets go of its number without closing it (after POLLNVAL)', () => {
    const s = StandIns.open(4);
    const fds = [s.tun.fd, s.packet.fd];
    s.tun.forgetFd();
    s.packet.forgetFd();
    s.close();
    assert.deepEqual(
      fds.map((fd) => native.close(fd)),
      [0, 0],
      'still open after close(): the numbers were not closed',
    );
    assert.throws(() => s.tun.read(createBatch(4, STRIDE), 0), /closed/i);
  });

  test('close is idempotent and the devices refuse use afterwards', () => {
    const s = StandIns.open(4);
    s.close();
    s.close();
    assert.throws(() => s.tun.read(createBatch(4, STRIDE), 0), /closed/i);
  });
});
