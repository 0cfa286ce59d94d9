import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Drop, dropName } from '../../src/core/xlat/drop.js';
import { CounterWriter, createCounterBuffer, readCounters } from '../../src/datapath/counters.js';
import { DatapathLoop, MAX_READ_FAILURES, OUTPUT_RESERVE } from '../../src/datapath/loop.js';
import type { LoopOptions } from '../../src/datapath/loop-io.js';
import { ClosedError } from '../../src/sys/errors.js';
import { FakePacketIo } from '../fakes/packet-io.js';
import { Act, pkt, ScriptedTranslator, serialOf } from './scripted.js';

function setup(o: LoopOptions & { batchSize?: number } = {}) {
  const tun = new FakePacketIo({ name: 'tun', batchSize: o.batchSize ?? 8 });
  const packet = new FakePacketIo({ name: 'packet', batchSize: o.batchSize ?? 8 });
  const raw = new FakePacketIo({ name: 'raw', batchSize: o.batchSize ?? 8 });
  const buf = createCounterBuffer();
  const xlat = new ScriptedTranslator();
  const loop = new DatapathLoop(xlat, { tun, packet, raw }, new CounterWriter(buf), { stride: 2048, ...o });
  const counters = () => readCounters([buf]);
  return { tun, packet, raw, loop, xlat, counters };
}

/** Runs a handler until it reports nothing left. */
function drain(h: () => boolean): number {
  let wakes = 1;
  while (h()) wakes++;
  return wakes;
}

describe('DatapathLoop routing', () => {
  test('46: Forward goes to the raw socket, Back to the TUN', () => {
    const { tun, raw, loop, counters } = setup();
    tun.inject(pkt(4, Act.FORWARD, 0, 1), pkt(4, Act.BACK, Drop.D46_TTL_EXPIRED, 2), pkt(4, Act.FORWARD, 0, 3));
    drain(loop.tunReadable);
    assert.deepEqual(
      raw.written.map((w) => serialOf(w.bytes, 1)),
      [1, 3],
    );
    assert.ok(raw.written.every((w) => w.bytes[0] === 0xf0 && w.disp === 0));
    assert.deepEqual(
      tun.written.map((w) => [serialOf(w.bytes, 1), w.bytes[0], w.disp]),
      [[2, 0xb0, 1]],
    );
    const c = counters();
    assert.equal(c['46'].packets, 3);
    assert.equal(c['46'].bytes, 3 * 64);
    assert.equal(c['46'].packetsOut, 2);
    assert.equal(c['46'].bytesOut, 2 * 65);
    assert.equal(c['46'].icmpErrors, 1);
    assert.equal(c['46'].dropped, 1);
    assert.equal(c['46'].drops[dropName(Drop.D46_TTL_EXPIRED)], 1);
    assert.equal(c['64'].packets, 0);
  });

  test('64: Forward goes to the TUN, Back to the raw socket', () => {
    const { tun, packet, raw, loop, counters } = setup();
    packet.inject(pkt(6, Act.FORWARD, 0, 7), pkt(6, Act.BACK, Drop.D64_HOP_LIMIT_EXPIRED, 8));
    drain(loop.packetReadable);
    assert.deepEqual(
      tun.written.map((w) => [serialOf(w.bytes, 1), w.disp]),
      [[7, 0]],
    );
    assert.deepEqual(
      raw.written.map((w) => [serialOf(w.bytes, 1), w.disp]),
      [[8, 1]],
    );
    const c = counters();
    assert.equal(c['64'].packets, 2);
    assert.equal(c['64'].packetsOut, 1);
    assert.equal(c['64'].icmpErrors, 1);
    assert.equal(c['64'].drops[dropName(Drop.D64_HOP_LIMIT_EXPIRED)], 1);
    assert.equal(c['46'].packets, 0);
  });

  test('drops are counted by reason and per direction, names only where they apply', () => {
    const { tun, packet, loop, counters } = setup();
    tun.inject(pkt(4, Act.DROP, Drop.D46_BAD_HEADER_CHECKSUM, 1), pkt(4, Act.DROP, Drop.D46_BAD_HEADER_CHECKSUM, 2));
    tun.inject(pkt(4, Act.DROP, Drop.BAD_VERSION, 3));
    packet.inject(pkt(6, Act.DROP, Drop.D64_DST_UNMAPPED, 4));
    drain(loop.tunReadable);
    drain(loop.packetReadable);
    const c = counters();
    assert.equal(c['46'].drops.v4_bad_header_checksum, 2);
    assert.equal(c['46'].drops.bad_version, 1);
    assert.equal(c['46'].dropped, 3);
    assert.equal(c['64'].drops.v6_dst_unmapped, 1);
    assert.equal(c['64'].dropped, 1);
    assert.equal('v6_dst_unmapped' in c['46'].drops, false);
    assert.equal('v4_bad_header_checksum' in c['64'].drops, false);
    assert.equal('none' in c['46'].drops, false);
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    assert.equal(sum(c['46'].drops), c['46'].dropped);
    assert.equal(sum(c['64'].drops), c['64'].dropped);
  });
});

describe('DatapathLoop batching', () => {
  test('no packet lost or duplicated across many batches and fragment bursts', () => {
    const { tun, raw, loop, counters } = setup({ batchSize: 8, maxBatchesPerWake: 3 });
    const expect: number[] = [];
    for (let s = 0; s < 500; s++) {
      const frags = s % 7 === 0 ? 40 : 1;
      tun.inject(pkt(4, frags > 1 ? Act.FRAGMENTS : Act.FORWARD, frags, s, 60 + (s % 100)));
      for (let k = 0; k < frags; k++) expect.push(s);
    }
    drain(loop.tunReadable);
    assert.deepEqual(
      raw.written.map((w) => serialOf(w.bytes, 1)),
      expect,
    );
    assert.equal(tun.inbound.length, 0);
    const c = counters();
    assert.equal(c['46'].packets, 500);
    assert.equal(c['46'].packetsOut, expect.length);
    assert.equal(c['46'].dropped, 0);
    assert.equal(c['46'].translated, 500);
  });

  test('a wake-up handles at most maxBatchesPerWake batches, then yields', () => {
    const { tun, loop } = setup({ batchSize: 4, maxBatchesPerWake: 2 });
    for (let s = 0; s < 20; s++) tun.inject(pkt(4, Act.FORWARD, 0, s));
    assert.equal(loop.tunReadable(), true);
    assert.equal(tun.inbound.length, 12);
    assert.equal(drain(loop.tunReadable), 2);
    assert.equal(tun.inbound.length, 0);
  });

  test('drainBoth light: one TUN packet (no read that only finds the queue empty), the whole packet-socket queue', () => {
    const { tun, packet, raw, loop } = setup();
    tun.inject(pkt(4, Act.FORWARD, 0, 1), pkt(4, Act.FORWARD, 0, 2), pkt(4, Act.FORWARD, 0, 3));
    packet.inject(pkt(6, Act.FORWARD, 0, 4), pkt(6, Act.FORWARD, 0, 5));
    loop.drainBoth(true, true);
    assert.equal(tun.reads, 1);
    assert.equal(tun.inbound.length, 2, 'left for the next wake-up');
    assert.deepEqual(
      raw.written.map((w) => serialOf(w.bytes, 1)),
      [1],
    );
    assert.equal(packet.inbound.length, 0);
    assert.equal(tun.written.length, 2);
    loop.drainBoth(true, false);
    assert.equal(tun.inbound.length, 0, 'a busy wake-up reads whole batches');
    assert.equal(raw.written.length, 3);
  });

  test('an output batch that would overflow is written out first', () => {
    // 8 inputs of 60 fragments each: more than inCap + OUTPUT_RESERVE at once, so the loop must flush.
    const { tun, raw, loop, counters } = setup({ batchSize: 8 });
    for (let s = 0; s < 8; s++) tun.inject(pkt(4, Act.FRAGMENTS, 60, s));
    assert.ok(60 * 8 > 8 + OUTPUT_RESERVE);
    drain(loop.tunReadable);
    assert.equal(raw.written.length, 480);
    assert.equal(counters()['46'].drops.v4_too_many_fragments, 0);
    assert.ok(raw.writes > 1);
  });
});

describe('DatapathLoop robustness', () => {
  test('a translator that throws costs one packet, counted as unknown; partial output is discarded', () => {
    const { tun, raw, loop, counters } = setup();
    tun.inject(pkt(4, Act.THROW, 0, 1), pkt(4, Act.PARTIAL_THROW, 0, 2), pkt(4, Act.FORWARD, 0, 3));
    drain(loop.tunReadable);
    assert.deepEqual(
      raw.written.map((w) => serialOf(w.bytes, 1)),
      [3],
    );
    const c = counters();
    assert.equal(c['46'].drops.unknown, 2);
    assert.equal(c['46'].packetsOut, 1);
    assert.ok(loop.lastError instanceof Error);
  });

  test('packets longer than their slot are counted as oversize and not translated', () => {
    const { tun, loop, xlat, counters } = setup({ stride: 256 });
    tun.inject(pkt(4, Act.FORWARD, 0, 1, 1000), pkt(4, Act.FORWARD, 0, 2, 100));
    drain(loop.tunReadable);
    assert.equal(xlat.calls4, 1);
    assert.equal(counters()['46'].oversize, 1);
    assert.equal(counters()['46'].packets, 2);
  });

  test('writes the kernel refuses are counted per device', () => {
    const { tun, packet, raw, loop, counters } = setup();
    raw.acceptLimit = 2;
    tun.inject(pkt(4, Act.FORWARD, 0, 1), pkt(4, Act.FORWARD, 0, 2), pkt(4, Act.FORWARD, 0, 3));
    drain(loop.tunReadable);
    tun.acceptLimit = 0;
    packet.inject(pkt(6, Act.FORWARD, 0, 4));
    drain(loop.packetReadable);
    const c = counters();
    assert.equal(c.io.rawWriteFailed, 1);
    assert.equal(c.io.tunWriteFailed, 1);
    assert.equal(c['46'].packetsOut, 3);
  });

  test('a failed read is counted and the loop goes on', () => {
    const { tun, raw, loop, counters } = setup();
    tun.failNextRead = new Error('EIO');
    tun.inject(pkt(4, Act.FORWARD, 0, 1));
    assert.equal(loop.tunReadable(), false);
    drain(loop.tunReadable);
    assert.equal(raw.written.length, 1);
    assert.equal(counters().io.tunReadErrors, 1);
    assert.equal(loop.tunClosed, false);
  });

  test('a closed side is reported once and left alone; the other side keeps working', () => {
    const { tun, packet, loop } = setup();
    const closed: string[] = [];
    loop.onClosed = (side, err) => {
      assert.ok(err instanceof ClosedError);
      closed.push(side);
    };
    packet.close();
    loop.packetReadable();
    loop.packetReadable();
    assert.deepEqual(closed, ['packet']);
    assert.equal(loop.packetClosed, true);
    tun.inject(pkt(4, Act.FORWARD, 0, 1));
    drain(loop.tunReadable);
    assert.equal(tun.reads, 1, 'a short batch ends the wake-up without a read that would say EAGAIN');
  });

  test('a side failing every read is given up instead of spinning', () => {
    const { packet, loop, counters } = setup();
    let given: unknown;
    loop.onClosed = (_side, err) => {
      given = err;
    };
    for (let k = 0; k < MAX_READ_FAILURES; k++) {
      packet.failNextRead = new Error('ENETDOWN');
      loop.packetReadable();
    }
    assert.equal(loop.packetClosed, true);
    assert.ok(given instanceof Error);
    assert.equal(counters().io.packetReadErrors, MAX_READ_FAILURES);
  });

  test('Neighbor Discovery for the CLAT address is counted as such, never translated', () => {
    const { packet, loop, xlat, counters } = setup();
    const ns = new Uint8Array(72);
    ns[0] = 0x60;
    ns[6] = 58;
    ns[7] = 255;
    ns[40] = 135;
    const na = ns.slice();
    na[40] = 136;
    const echo = ns.slice();
    echo[40] = 128;
    echo[1] = Act.DROP;
    echo[2] = Drop.D64_DST_UNMAPPED;
    packet.inject(ns, na, echo);
    drain(loop.packetReadable);
    assert.equal(xlat.calls6, 1);
    const c = counters()['64'];
    assert.equal(c.neighbor, 2);
    assert.equal(c.packets, 3);
    assert.equal(c.dropped, 1);
  });

  test('paused: input is read and counted, nothing translated or written', () => {
    const { tun, packet, raw, loop, xlat, counters } = setup();
    loop.paused = true;
    tun.inject(pkt(4, Act.FORWARD, 0, 1), pkt(4, Act.FORWARD, 0, 2));
    packet.inject(pkt(6, Act.FORWARD, 0, 3));
    drain(loop.tunReadable);
    drain(loop.packetReadable);
    assert.equal(xlat.calls4 + xlat.calls6, 0);
    assert.equal(raw.written.length + tun.written.length, 0);
    assert.equal(counters()['46'].paused, 2);
    assert.equal(counters()['64'].paused, 1);
    loop.paused = false;
    tun.inject(pkt(4, Act.FORWARD, 0, 4));
    drain(loop.tunReadable);
    assert.deepEqual(
      raw.written.map((w) => serialOf(w.bytes, 1)),
      [4],
    );
  });

  test('malformed input through the real translator is dropped by name, never fatal', async () => {
    const { Translator } = await import('../../src/core/xlat/translator.js');
    const tun = new FakePacketIo({ name: 'tun' });
    const packet = new FakePacketIo({ name: 'packet' });
    const raw = new FakePacketIo({ name: 'raw' });
    const buf = createCounterBuffer();
    const t = new Translator({ pool6: '64:ff9b::/96', eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }] });
    const loop = new DatapathLoop(t, { tun, packet, raw }, new CounterWriter(buf), { stride: 2048 });
    let seed = 1;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 24;
    };
    for (let k = 0; k < 300; k++) {
      const p = new Uint8Array(1 + (rnd() % 120));
      for (let i = 0; i < p.length; i++) p[i] = rnd();
      p[0] = (k % 2 === 0 ? 0x40 : 0x60) | (p[0] & 0x0f);
      (k % 2 === 0 ? tun : packet).inject(p, new Uint8Array(0));
    }
    drain(loop.tunReadable);
    drain(loop.packetReadable);
    const c = readCounters([buf]);
    assert.equal(c['46'].packets + c['64'].packets, 300);
    for (const dir of ['46', '64'] as const) {
      const d = c[dir];
      assert.equal(d.packets, 150);
      assert.equal(d.translated + d.dropped + d.neighbor, d.packets, `${dir}: every input counted once`);
      assert.equal(d.drops.unknown, 0, `${dir}: the translator never threw`);
    }
    assert.ok(c['46'].dropped > 0 && c['64'].dropped > 0);
  });
});

describe('DatapathLoop ICMP error rate limit (RFC 4443 §2.4(f))', () => {
  async function realLoop(opts: LoopOptions) {
    const { Translator } = await import('../../src/core/xlat/translator.js');
    const { ipv4Packet, ipv6Packet, PROTO_UDP } = await import('../pkt/build.js');
    const tun = new FakePacketIo({ name: 'tun', batchSize: 64 });
    const packet = new FakePacketIo({ name: 'packet', batchSize: 64 });
    const raw = new FakePacketIo({ name: 'raw', batchSize: 64 });
    const buf = createCounterBuffer();
    const t = new Translator({
      pool6: '2001:db8:64::/96',
      eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }],
      v4Sources: 'eam',
      hairpin: false,
      // Errors need a source of their own (as the daemon configures it).
      ownV4: '192.0.0.8',
      ownV6: '2001:db8:1::4',
    });
    const loop = new DatapathLoop(t, { tun, packet, raw }, new CounterWriter(buf), { stride: 2048, ...opts });
    const udp = { proto: PROTO_UDP, sport: 5000, dport: 53, payload: new Uint8Array(16) };
    // TTL / hop limit 1: each is answered with a generated Time Exceeded, sent Back.
    const expiring4 = () => ipv4Packet({ src: '192.0.0.4', dst: '192.0.2.1', ttl: 1 }, udp);
    const expiring6 = () => ipv6Packet({ src: '2001:db8:64::c000:201', dst: '2001:db8:1::4', hopLimit: 1 }, udp);
    const translatable4 = () => ipv4Packet({ src: '192.0.0.4', dst: '192.0.2.1', ttl: 64 }, udp);
    return { tun, packet, raw, loop, counters: () => readCounters([buf]), expiring4, expiring6, translatable4 };
  }

  test('a burst is answered up to the bucket, the rest counted as rate-limited, in both directions', async () => {
    let now = 1000;
    const r = await realLoop({ icmpErrorsPerSec: 10, icmpErrorBurst: 5, now: () => now });
    for (let i = 0; i < 20; i++) {
      r.tun.inject(r.expiring4());
      r.packet.inject(r.expiring6());
    }
    drain(r.loop.tunReadable);
    drain(r.loop.packetReadable);
    let c = r.counters();
    assert.equal(r.tun.written.length, 5, 'ICMPv4 errors back into the TUN');
    assert.equal(r.raw.written.length, 5, 'ICMPv6 errors back out of the uplink');
    for (const d of ['46', '64'] as const) {
      assert.equal(c[d].icmpErrors, 5);
      assert.equal(c[d].icmpRateLimited, 15);
      assert.equal(c[d].dropped, 20, 'the inputs themselves are dropped as before');
    }
    // 300 ms at 10/s refill 3 tokens.
    now += 300;
    for (let i = 0; i < 5; i++) r.tun.inject(r.expiring4());
    drain(r.loop.tunReadable);
    c = r.counters();
    assert.equal(c['46'].icmpErrors, 8);
    assert.equal(c['46'].icmpRateLimited, 17);
    // The bucket is empty; translated traffic is not touched by it.
    const before = r.raw.written.length;
    for (let i = 0; i < 10; i++) r.tun.inject(r.translatable4());
    drain(r.loop.tunReadable);
    assert.equal(r.raw.written.length, before + 10);
    assert.equal(r.counters()['46'].icmpRateLimited, 17);
  });

  test('0 turns the limit off; a negative rate is refused', async () => {
    const r = await realLoop({ icmpErrorsPerSec: 0, now: () => 0 });
    for (let i = 0; i < 200; i++) r.tun.inject(r.expiring4());
    drain(r.loop.tunReadable);
    assert.equal(r.counters()['46'].icmpErrors, 200);
    assert.equal(r.counters()['46'].icmpRateLimited, 0);
    assert.throws(
      () =>
        new DatapathLoop(
          new ScriptedTranslator(),
          { tun: r.tun, packet: r.packet, raw: r.raw },
          new CounterWriter(createCounterBuffer()),
          { icmpErrorsPerSec: -1 },
        ),
      RangeError,
    );
  });

  test('the scripted Back packets (not ICMP) pass unlimited', () => {
    const { tun, loop, counters } = setup({ icmpErrorsPerSec: 1, icmpErrorBurst: 1, now: () => 0 });
    for (let i = 0; i < 5; i++) tun.inject(pkt(4, Act.BACK, Drop.D46_TTL_EXPIRED, i));
    drain(loop.tunReadable);
    assert.equal(tun.written.length, 5);
    assert.equal(counters()['46'].icmpRateLimited, 0);
  });
});

describe('DatapathLoop.drainBoth (a worker wake-up)', () => {
  test('drains both sides and publishes the counters once', () => {
    const tun = new FakePacketIo({ name: 'tun', batchSize: 8 });
    const packet = new FakePacketIo({ name: 'packet', batchSize: 8 });
    const raw = new FakePacketIo({ name: 'raw', batchSize: 8 });
    const buf = createCounterBuffer();
    const loop = new DatapathLoop(new ScriptedTranslator(), { tun, packet, raw }, new CounterWriter(buf), {
      stride: 2048,
    });
    tun.inject(pkt(4, Act.FORWARD, 0, 1), pkt(4, Act.FORWARD, 0, 2));
    packet.inject(pkt(6, Act.FORWARD, 0, 3));
    const seq = new Uint32Array(buf);
    const before = seq[0];
    loop.drainBoth(false);
    assert.equal(seq[0] - before, 2, 'one publication (the sequence moves by 2 per publication)');
    assert.equal(raw.written.length, 2);
    assert.equal(tun.written.length, 1);
    const c = readCounters([buf]);
    assert.equal(c['46'].translated, 2);
    assert.equal(c['64'].translated, 1);
    // A side given up is skipped.
    loop.tunClosed = true;
    tun.inject(pkt(4, Act.FORWARD, 0, 4));
    loop.drainBoth(true);
    assert.equal(raw.written.length, 2);
  });
});
