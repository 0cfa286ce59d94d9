/** A worker's wake-up: poll, then both sides; the control eventfd and gone fds go back to the worker. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Translator } from '../../src/core/xlat/translator.js';
import { CounterWriter, createCounterBuffer, DIR46, DIR64, Slot } from '../../src/datapath/counters.js';
import { DatapathLoop } from '../../src/datapath/loop.js';
import { frame, StandIns } from '../../src/datapath/stand-ins.js';
import { ENDLESS, FOR_WORKER, QUIET, SERVED, TUN, Waker } from '../../src/datapath/waker.js';
import { K } from '../../src/sys/addon.js';
import { EventFd } from '../../src/sys/eventfd.js';
import { PollSet } from '../../src/sys/poll.js';
import { FakePacketIo } from '../fakes/packet-io.js';
import { ipv4Packet, ipv6Packet, PROTO_UDP } from '../pkt/build.js';
import { batchOf } from './batch-of.js';

const config = { pool6: '2001:db8:64::/96', eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }] };

function setup() {
  const dev = StandIns.open(8);
  const control = EventFd.create();
  const counters = new CounterWriter(createCounterBuffer());
  const loop = new DatapathLoop(new Translator(config), dev, counters, { stride: 2048 });
  const polls = new PollSet([dev.tun.fd, dev.packet.fd, control.fd], 'test');
  const turns = new Int32Array(new SharedArrayBuffer(4));
  const waker = new Waker(polls, loop, turns);
  const close = () => {
    polls.close();
    dev.close();
    control.close();
  };
  return { dev, control, acc: counters.acc, waker, turns, close };
}

/** Runs `f` over a fresh set-up, always closed after. */
function withSetup(f: (s: ReturnType<typeof setup>) => void): void {
  const s = setup();
  try {
    f(s);
  } finally {
    s.close();
  }
}

const udp = { proto: PROTO_UDP, sport: 40000, dport: 53, payload: new Uint8Array(12) };
const v4 = ipv4Packet({ src: '192.0.0.4', dst: '192.0.2.1' }, udp);
const v6 = ipv6Packet({ src: '2001:db8:64::c000:201', dst: '2001:db8:1::4' }, { ...udp, sport: 53, dport: 40000 });

describe('Waker', () => {
  test('nothing readable: QUIET after the timeout, nothing read', () =>
    withSetup((s) => {
      assert.equal(s.waker.wake(0), QUIET);
      assert.equal(s.acc[DIR46 + Slot.PACKETS_IN], 0);
    }));

  test('a readable side: both sides drained in the same wake-up', () =>
    withSetup((s) => {
      s.dev.feedTun(batchOf([v4]), 0, 1);
      s.dev.feedPacket(batchOf([frame(v6)]), 0, 1);
      assert.equal(s.waker.wake(1000), SERVED);
      assert.equal(s.acc[DIR46 + Slot.TRANSLATED], 1);
      assert.equal(s.acc[DIR64 + Slot.TRANSLATED], 1);
      assert.equal(s.waker.wake(0), QUIET, 'all taken');
    }));

  test('the control eventfd goes to the worker first; serve then drains what woke with it', () =>
    withSetup((s) => {
      s.dev.feedTun(batchOf([v4]), 0, 1);
      s.control.signal(1);
      assert.equal(s.waker.wake(0), FOR_WORKER);
      assert.equal(s.acc[DIR46 + Slot.PACKETS_IN], 0, 'not drained before the worker took its commands');
      s.waker.serve();
      assert.equal(s.acc[DIR46 + Slot.TRANSLATED], 1);
    }));

  test('a side whose fd is gone (POLLNVAL) goes to the worker', () =>
    withSetup((s) => {
      s.dev.tun.close();
      assert.equal(s.waker.wake(0), FOR_WORKER);
    }));

  test('slice: serves wake-ups until a poll finds nothing for idleMs', () =>
    withSetup((s) => {
      s.dev.feedTun(batchOf([v4]), 0, 1);
      assert.equal(s.waker.slice(0, ENDLESS, 0), QUIET);
      assert.equal(s.acc[DIR46 + Slot.TRANSLATED], 1);
    }));

  test('slice: ends, serving nothing, once the main thread has moved the turn counter', () =>
    withSetup((s) => {
      s.dev.feedTun(batchOf([v4]), 0, 1);
      Atomics.add(s.turns, 0, 1);
      assert.equal(s.waker.slice(0, ENDLESS, 1000), QUIET);
      assert.equal(s.acc[DIR46 + Slot.PACKETS_IN], 0, 'left for after the turn');
      assert.equal(s.waker.slice(1, ENDLESS, 0), QUIET, 'the next slice starts from the new count');
      assert.equal(s.acc[DIR46 + Slot.TRANSLATED], 1);
    }));

  test('slice: at most maxWakes wake-ups', () =>
    withSetup((s) => {
      s.dev.feedTun(batchOf([v4]), 0, 1);
      assert.equal(s.waker.slice(0, 0, 1000), QUIET);
      assert.equal(s.acc[DIR46 + Slot.PACKETS_IN], 0);
    }));

  test('slice: a wake-up for the worker ends it', () =>
    withSetup((s) => {
      s.control.signal(1);
      assert.equal(s.waker.slice(0, ENDLESS, 1000), FOR_WORKER);
    }));

  test('a wake-up that slept reads one TUN packet; one that found input at once reads whole batches', () => {
    // A PollSet stand-in that reports the TUN readable only after "sleeping" (a timeout > 0), or
    // at once when `busy`: what the waker does with each answer is the subject, not poll(2).
    let busy = false;
    const polls = {
      revents: new Int32Array(3),
      wait(timeoutMs: number) {
        const ready = busy || timeoutMs > 0;
        this.revents[TUN] = ready ? K.POLLIN : 0;
        return ready ? 1 : 0;
      },
    };
    const tun = new FakePacketIo({ name: 'tun', batchSize: 8 });
    const packet = new FakePacketIo({ name: 'packet', batchSize: 8 });
    const raw = new FakePacketIo({ name: 'raw', batchSize: 8 });
    const counters = new CounterWriter(createCounterBuffer());
    const loop = new DatapathLoop(new Translator(config), { tun, packet, raw }, counters, { stride: 2048 });
    const waker = new Waker(polls as unknown as PollSet, loop, new Int32Array(1));
    tun.inject(v4, v4, v4);
    assert.equal(waker.wake(1000), SERVED);
    assert.equal(tun.inbound.length, 2, 'after a sleep: one packet, no read that would find the queue empty');
    busy = true;
    assert.equal(waker.wake(1000), SERVED);
    assert.equal(tun.inbound.length, 0, 'input waiting at once: the rest in one go');
    assert.equal(counters.acc[DIR46 + Slot.TRANSLATED], 3);
  });
});
