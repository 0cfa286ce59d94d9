/** A worker's wake-up: poll, then both sides; the control eventfd and gone fds go back to the worker. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBatch } from '../../src/core/batch.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { CounterWriter, createCounterBuffer, DIR46, DIR64, Slot } from '../../src/datapath/counters.js';
import { DatapathLoop } from '../../src/datapath/loop.js';
import { frame, StandIns } from '../../src/datapath/stand-ins.js';
import { FOR_WORKER, QUIET, Waker } from '../../src/datapath/waker.js';
import { EventFd } from '../../src/sys/eventfd.js';
import { PollSet } from '../../src/sys/poll.js';
import { ipv4Packet, ipv6Packet, PROTO_UDP } from '../pkt/build.js';

const config = { pool6: '2001:db8:64::/96', eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }] };

function setup() {
  const dev = StandIns.open(8);
  const control = EventFd.create();
  const counters = new CounterWriter(createCounterBuffer());
  const loop = new DatapathLoop(new Translator(config), dev, counters, { stride: 2048 });
  const waker = new Waker(new PollSet([dev.tun.fd, dev.packet.fd, control.fd], 'test'), loop);
  const close = () => {
    dev.close();
    control.close();
  };
  return { dev, control, acc: counters.acc, waker, close };
}

function one(p: Uint8Array) {
  const b = createBatch(1, 2048);
  b.data.set(p, 0);
  b.lens[0] = p.length;
  b.count = 1;
  return b;
}

const udp = { proto: PROTO_UDP, sport: 40000, dport: 53, payload: new Uint8Array(12) };
const v4 = ipv4Packet({ src: '192.0.0.4', dst: '192.0.2.1' }, udp);
const v6 = ipv6Packet({ src: '2001:db8:64::c000:201', dst: '2001:db8:1::4' }, { ...udp, sport: 53, dport: 40000 });

describe('Waker', () => {
  test('nothing readable: QUIET after the timeout, nothing read', () => {
    const s = setup();
    try {
      assert.equal(s.waker.wake(0), QUIET);
      assert.equal(s.acc[DIR46 + Slot.PACKETS_IN], 0);
    } finally {
      s.close();
    }
  });

  test('a readable side: both sides drained in the same wake-up', () => {
    const s = setup();
    try {
      s.dev.feedTun(one(v4), 0, 1);
      s.dev.feedPacket(one(frame(v6)), 0, 1);
      assert.equal(s.waker.wake(1000), QUIET);
      assert.equal(s.acc[DIR46 + Slot.TRANSLATED], 1);
      assert.equal(s.acc[DIR64 + Slot.TRANSLATED], 1);
      assert.equal(s.waker.wake(0), QUIET, 'all taken');
    } finally {
      s.close();
    }
  });

  test('the control eventfd goes to the worker first; serve then drains what woke with it', () => {
    const s = setup();
    try {
      s.dev.feedTun(one(v4), 0, 1);
      s.control.signal(1);
      assert.equal(s.waker.wake(0), FOR_WORKER);
      assert.equal(s.acc[DIR46 + Slot.PACKETS_IN], 0, 'not drained before the worker took its commands');
      s.waker.serve();
      assert.equal(s.acc[DIR46 + Slot.TRANSLATED], 1);
    } finally {
      s.close();
    }
  });

  test('a side whose fd is gone (POLLNVAL) goes to the worker', () => {
    const s = setup();
    try {
      s.dev.tun.close();
      assert.equal(s.waker.wake(0), FOR_WORKER);
    } finally {
      s.close();
    }
  });
});
