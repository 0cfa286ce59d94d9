/**
 * core/gro.ts: translated TCP segments of one stream coalesced into one IPv4 super-packet for the
 * TUN must give back the same segments when the kernel segments it (gsoSplit stands in for it),
 * on generated streams (segment sizes, a shorter last one, PSH on the last, TCP options); and every
 * reason to refuse leaves both packets as they were.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createBatch, type PacketBatch } from '../../src/core/batch.js';
import { finish, fold, sum16 } from '../../src/core/checksum.js';
import { coalescable4, coalesce4 } from '../../src/core/gro.js';
import { GSO_TCP, gsoSplit } from '../../src/core/gso.js';
import {
  createVnetHeaders,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  vnetCsumOffset,
  vnetCsumStart,
  vnetFlags,
  vnetGsoSize,
  vnetGsoType,
  vnetHdrLen,
} from '../../src/core/vnet.js';

const STRIDE = 65536 + 256;

interface Seg {
  seq: number;
  payload: number;
  flags?: number;
  options?: number;
  sport?: number;
  window?: number;
  seed?: number;
}

/** An IPv4 TCP segment as the translator writes it toward the TUN: DF, ID 0, checksums complete. */
function segment(s: Seg): Uint8Array {
  const th = 20 + (s.options ?? 0);
  const len = 20 + th + s.payload;
  const p = new Uint8Array(len);
  p[0] = 0x45;
  p[2] = len >>> 8;
  p[3] = len & 0xff;
  p[6] = 0x40;
  p[8] = 63;
  p[9] = 6;
  p.set([192, 0, 2, 1, 192, 0, 0, 4], 12);
  const h = finish(sum16(p, 0, 20));
  p[10] = h >>> 8;
  p[11] = h & 0xff;
  const t = 20;
  const sport = s.sport ?? 443;
  p[t] = sport >>> 8;
  p[t + 1] = sport & 0xff;
  p[t + 2] = 0x9c;
  p[t + 3] = 0x41;
  p[t + 4] = s.seq >>> 24;
  p[t + 5] = (s.seq >>> 16) & 0xff;
  p[t + 6] = (s.seq >>> 8) & 0xff;
  p[t + 7] = s.seq & 0xff;
  p[t + 11] = 7;
  p[t + 12] = (th / 4) << 4;
  p[t + 13] = s.flags ?? 0x10;
  p[t + 14] = (s.window ?? 0x1000) >>> 8;
  p[t + 15] = (s.window ?? 0x1000) & 0xff;
  for (let i = 20; i < th; i++) p[t + i] = 1;
  for (let i = 0; i < s.payload; i++) p[t + th + i] = (i + s.seq + (s.seed ?? 0)) & 0xff;
  const c = finish(sum16(p, t, len - 20, sum16(p, 12, 8, 6 + len - 20)));
  p[t + 16] = c >>> 8;
  p[t + 17] = c & 0xff;
  return p;
}

function batchOf(packets: Uint8Array[]): PacketBatch {
  const b = createBatch(packets.length + 64, STRIDE);
  packets.forEach((p, i) => {
    b.data.set(p, b.offs[i]);
    b.lens[i] = p.length;
  });
  b.count = packets.length;
  return b;
}

function bytes(b: PacketBatch, i: number): Uint8Array {
  return b.data.slice(b.offs[i], b.offs[i] + b.lens[i]);
}

/** IPv4 Identification and header checksum blanked (the kernel numbers segments from the first's ID). */
function blankId(p: Uint8Array): Uint8Array {
  const c = p.slice();
  c.fill(0, 4, 6);
  c.fill(0, 10, 12);
  return c;
}

describe('coalescing translated TCP segments for the TUN', () => {
  test('a stream coalesced, then segmented as the kernel does, gives back its segments', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(536, 1000, 1380, 1460),
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 0, max: 535 }),
        fc.constantFrom(0, 12),
        fc.boolean(),
        fc.integer({ min: 0, max: 0xffffffff }),
        (mss, n, short, options, push, seq0) => {
          const segs: Uint8Array[] = [];
          for (let i = 0; i < n; i++) {
            const last = i === n - 1;
            const payload = last ? mss - short : mss;
            const seq = (seq0 + i * mss) >>> 0;
            segs.push(segment({ seq, payload, options, flags: last && push ? 0x18 : 0x10 }));
          }
          const b = batchOf(segs);
          const vnet = createVnetHeaders(b.capacity);
          for (let j = 1; j < n; j++) {
            assert.ok(coalescable4(b, j));
            assert.ok(coalesce4(b, vnet, 0, j), `segment ${j} appended`);
            assert.equal(b.lens[j], 0);
          }
          const whole = bytes(b, 0);
          assert.equal(vnetGsoType(vnet, 0), VNET_GSO_TCPV4);
          assert.equal(vnetFlags(vnet, 0), VNET_F_NEEDS_CSUM);
          assert.equal(vnetGsoSize(vnet, 0), mss);
          assert.equal(vnetHdrLen(vnet, 0), 40 + options);
          assert.equal(vnetCsumStart(vnet, 0), 20);
          assert.equal(vnetCsumOffset(vnet, 0), 16);
          assert.equal(fold(sum16(whole, 0, 20)), 0xffff, 'IPv4 header checksum');
          const partial = fold(sum16(whole, 12, 8, 6 + whole.length - 20));
          assert.equal((whole[36] << 8) | whole[37], partial, 'the field holds the pseudo-header sum');
          b.count = 1;
          b.count += gsoSplit(b, 0, 20, GSO_TCP, mss, 1);
          assert.equal(b.count, n);
          for (let i = 0; i < n; i++) assert.deepEqual(blankId(bytes(b, i)), blankId(segs[i] as Uint8Array), `${i}`);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('refused: another flow, a gap, a push before, a larger segment, other options or window', () => {
    const first = { seq: 1000, payload: 1000 };
    const cases: [string, Seg[], Seg][] = [
      ['another port', [first], { seq: 2000, payload: 1000, sport: 444 }],
      ['a gap', [first], { seq: 2001, payload: 1000 }],
      ['a retransmission', [first], { seq: 1000, payload: 1000 }],
      ['pushed before', [{ ...first, flags: 0x18 }], { seq: 2000, payload: 1000 }],
      ['larger than the first', [first], { seq: 2000, payload: 1001 }],
      ['after a short one', [first, { seq: 2000, payload: 500 }], { seq: 2500, payload: 500 }],
      ['other window', [first], { seq: 2000, payload: 1000, window: 0x2000 }],
      [
        'other options',
        [{ ...first, options: 12 }],
        { seq: 2000, payload: 1000, options: 12, seed: 0, flags: 0x10, window: 0x1000, sport: 443 },
      ],
    ];
    for (const [what, before, next] of cases) {
      const b = batchOf([...before.map(segment), segment(next)]);
      const vnet = createVnetHeaders(b.capacity);
      for (let j = 1; j < before.length; j++) assert.ok(coalesce4(b, vnet, 0, j), `${what}: setup`);
      if (what === 'other options') b.data[b.offs[before.length] + 20 + 20] = 2; // an MSS option kind where the first has NOP
      const j = before.length;
      const k0 = bytes(b, 0);
      const j0 = bytes(b, j);
      assert.equal(coalesce4(b, vnet, 0, j), false, what);
      assert.deepEqual(bytes(b, 0), k0, `${what}: first untouched`);
      assert.deepEqual(bytes(b, j), j0, `${what}: second untouched`);
    }
    // Never candidates: SYN, FIN, no payload, a fragment.
    for (const flags of [0x02, 0x11, 0x12, 0x04])
      assert.equal(coalescable4(batchOf([segment({ seq: 1, payload: 10, flags })]), 0), false);
    assert.equal(coalescable4(batchOf([segment({ seq: 1, payload: 0 })]), 0), false);
  });
});
