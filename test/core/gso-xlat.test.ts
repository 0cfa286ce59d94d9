/**
 * Translating a TCP super-packet once (core/gso-xlat.ts) against the per-packet path, on generated
 * super-packets of several shapes (TCP options or none, IPv4 options or none, last segment shorter
 * or a whole one, ECN's CWR, FIN and PSH): translate once, then segment with gsoSplit, must give
 * the same bytes as segment first, then translate each segment with the Translator. Both ways:
 *
 *   46: IPv4 super (TSO from the TUN) ── translateSuper46 ── gsoSplit(v6) ──┐ equal
 *       IPv4 super ── gsoSplit(v4) ── Translator.translate4 per segment ─────┘
 *   64: IPv6 super (GRO/TSO from the packet socket) ── translateSuper64 ── gsoSplit(v4) ──┐ equal
 *       IPv6 super ── gsoSplit(v6) ── Translator.translate6 per segment ──────────────────┘
 *
 * (For 64, RFC 7915 §5.1 gives a packet of 1260 bytes or less DF=0 and a fresh Identification: a
 * short last segment translated alone differs there from the super-packet's header, which the
 * kernel copies to every segment. The comparison leaves out Identification, flags and header
 * checksum, which are checked on their own.) Every checksum is verified with a byte-wise
 * reference, and the partial checksum of the translated super-packet against the pseudo-header
 * the kernel expects in it (folded, not complemented, over the super-packet's length).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createBatch, Disposition, type PacketBatch } from '../../src/core/batch.js';
import { GSO_TCP, gsoSplit, gsoSplitFront } from '../../src/core/gso.js';
import { translateSuper46, translateSuper64 } from '../../src/core/gso-xlat.js';
import { Drop } from '../../src/core/xlat/drop.js';
import { Translator } from '../../src/core/xlat/translator.js';

const CLAT4 = [192, 0, 0, 4];
const SERVER4 = [192, 0, 2, 1];
const CLAT6 = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4];
const SERVER6 = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1];

const t = new Translator({
  pool6: '64:ff9b::/96',
  eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }],
  ownV4: '192.0.0.8',
  ownV6: '2001:db8:1::4',
  ipv4Mtu: 1500,
  ipv6Mtu: 1500,
  hairpin: false,
  wkpGlobalOnly: false,
});

const STRIDE = 65536 + 256;
const HEADROOM = 32;

/** Slow byte-wise one's-complement sum, the reference. */
function refSum(b: Uint8Array, off: number, len: number, init = 0): number {
  let s = init;
  for (let i = 0; i < len; i++) s += (i & 1) === 0 ? b[off + i] << 8 : b[off + i];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudo4(p: Uint8Array, o: number, l4len: number): number {
  return refSum(p, o + 12, 8, 6 + l4len);
}

function pseudo6(p: Uint8Array, o: number, l4len: number): number {
  return refSum(p, o + 8, 32, 6 + l4len);
}

interface Shape {
  gsoSize: number;
  segments: number;
  /** Bytes short of gsoSize in the last segment (0: a whole one). */
  lastShort: number;
  tcpOptions: number;
  ipv4Options: number;
  flags: number;
  seq: number;
  id: number;
  seed: number;
}

const shapes: fc.Arbitrary<Shape> = fc.record({
  gsoSize: fc.constantFrom(536, 1000, 1208, 1388, 1440, 1448),
  segments: fc.integer({ min: 1, max: 44 }),
  lastShort: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 535 })),
  tcpOptions: fc.constantFrom(0, 12, 20),
  ipv4Options: fc.constantFrom(0, 4),
  // ACK, with PSH / FIN / CWR in any mix.
  flags: fc.constantFrom(0x10, 0x18, 0x19, 0x90, 0x98),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  id: fc.integer({ min: 0, max: 0xffff }),
  seed: fc.integer({ min: 0, max: 255 }),
});

function payloadLen(s: Shape): number {
  return s.segments * s.gsoSize - s.lastShort;
}

function fillTcp(p: Uint8Array, u: number, s: Shape, payload: number): void {
  p[u] = 0xc3;
  p[u + 1] = 0x50;
  p[u + 2] = 0x1b;
  p[u + 3] = 0x59;
  p[u + 4] = s.seq >>> 24;
  p[u + 5] = (s.seq >>> 16) & 0xff;
  p[u + 6] = (s.seq >>> 8) & 0xff;
  p[u + 7] = s.seq & 0xff;
  p[u + 11] = 1; // ack number
  p[u + 12] = ((20 + s.tcpOptions) / 4) << 4;
  p[u + 13] = s.flags;
  p[u + 14] = 0xff; // window
  for (let i = 0; i < s.tcpOptions; i++) p[u + 20 + i] = i === s.tcpOptions - 1 ? 0 : 1; // NOPs, then End
  const th = 20 + s.tcpOptions;
  for (let i = 0; i < payload; i++) p[u + th + i] = (i * 7 + s.seed + (i >>> 8)) & 0xff;
}

function setPartial(p: Uint8Array, field: number, sum: number): void {
  p[field] = sum >>> 8;
  p[field + 1] = sum & 0xff;
}

/** An IPv4 TCP super-packet as a TUN with TSO hands it over: header checksum valid, TCP checksum partial. */
function super4(s: Shape): Uint8Array {
  const ihl = 20 + s.ipv4Options;
  const th = 20 + s.tcpOptions;
  const len = ihl + th + payloadLen(s);
  const p = new Uint8Array(len);
  p[0] = 0x40 | (ihl / 4);
  p[1] = 0x02; // ECT(0)
  p[2] = len >>> 8;
  p[3] = len & 0xff;
  p[4] = s.id >>> 8;
  p[5] = s.id & 0xff;
  p[6] = 0x40; // DF
  p[8] = 64;
  p[9] = 6;
  p.set(CLAT4, 12);
  p.set(SERVER4, 16);
  for (let i = 20; i < ihl; i++) p[i] = 1; // NOP options
  setPartial(p, 10, ~refSum(p, 0, ihl) & 0xffff);
  fillTcp(p, ihl, s, payloadLen(s));
  setPartial(p, ihl + 16, pseudo4(p, 0, len - ihl));
  return p;
}

/** An IPv6 TCP super-packet as the packet socket hands it over (GRO/TSO): TCP checksum partial. */
function super6(s: Shape): Uint8Array {
  const th = 20 + s.tcpOptions;
  const len = 40 + th + payloadLen(s);
  const p = new Uint8Array(len);
  p[0] = 0x60;
  p[1] = 0x20;
  p[4] = (len - 40) >>> 8;
  p[5] = (len - 40) & 0xff;
  p[6] = 6;
  p[7] = 61;
  p.set(SERVER6, 8);
  p.set(CLAT6, 24);
  fillTcp(p, 40, s, payloadLen(s));
  setPartial(p, 40 + 16, pseudo6(p, 0, len - 40));
  return p;
}

/** One arena, an input and an output batch over it (as the datapath loop has them). */
function batches(): { inb: PacketBatch; out: PacketBatch } {
  const arena = new Uint8Array(48 * STRIDE);
  return { inb: createBatch(2, STRIDE, arena, 0), out: createBatch(46, STRIDE, arena, 2 * STRIDE) };
}

function place(b: PacketBatch, i: number, p: Uint8Array): void {
  const o = b.base + i * b.stride + HEADROOM;
  b.data.set(p, o);
  b.offs[i] = o;
  b.lens[i] = p.length;
  b.count = Math.max(b.count, i + 1);
}

function packets(b: PacketBatch, from = 0): Uint8Array[] {
  const r: Uint8Array[] = [];
  for (let i = from; i < b.count; i++) r.push(b.data.slice(b.offs[i], b.offs[i] + b.lens[i]));
  return r;
}

function checkTcp6(p: Uint8Array): void {
  assert.equal(refSum(p, 40, p.length - 40, pseudo6(p, 0, p.length - 40)), 0xffff, 'TCP checksum (IPv6)');
}

function checkIpv4(p: Uint8Array): void {
  const ihl = (p[0] & 15) * 4;
  assert.equal(refSum(p, 0, ihl), 0xffff, 'IPv4 header checksum');
  assert.equal(refSum(p, ihl, p.length - ihl, pseudo4(p, 0, p.length - ihl)), 0xffff, 'TCP checksum (IPv4)');
}

/** The per-packet way: segment with gsoSplit, then translate each segment alone. */
function segmentThenTranslate(p: Uint8Array, l4: number, gsoSize: number, v4: boolean): Uint8Array[] {
  const segs = createBatch(46, STRIDE);
  place(segs, 0, p);
  const made = gsoSplit(segs, 0, l4, GSO_TCP, gsoSize, 1);
  assert.ok(made >= 0, `gsoSplit: ${made}`);
  segs.count = made + 1;
  const out = createBatch(46, STRIDE);
  for (const seg of packets(segs)) {
    if (v4) checkIpv4(seg);
    else checkTcp6(seg);
    const d = v4 ? t.translate4(seg, 0, seg.length, out) : t.translate6(seg, 0, seg.length, out);
    assert.equal(d, Drop.NONE);
  }
  return packets(out);
}

/** IPv4 header fields a lone translation may choose otherwise (see the file comment) blanked. */
function blankIdFlags(p: Uint8Array): Uint8Array {
  const c = p.slice();
  c.fill(0, 4, 8);
  c.fill(0, 10, 12);
  return c;
}

describe('a TCP super-packet translated once equals its segments translated one by one', () => {
  test('46: from the TUN (TSO) to the raw socket', () => {
    fc.assert(
      fc.property(
        // Segments that fit the IPv6 MTU (the limit itself is tested below).
        shapes.filter((s) => 20 + s.ipv4Options + 20 + s.tcpOptions + s.gsoSize + 20 <= 1500),
        (s) => {
          const p = super4(s);
          const ihl = 20 + s.ipv4Options;
          const expected = segmentThenTranslate(p.slice(), ihl, s.gsoSize, true);
          const { inb, out } = batches();
          place(inb, 0, p);
          assert.equal(translateSuper46(t, inb.data, inb.offs[0], inb.lens[0], s.gsoSize, out), Drop.NONE);
          assert.equal(out.count, 1);
          assert.equal(out.disp[0], Disposition.Forward);
          const whole = out.data.slice(out.offs[0], out.offs[0] + out.lens[0]);
          // One IPv6 header for the whole payload; the field holds the IPv6 pseudo-header sum.
          assert.equal(whole.length, 40 + p.length - ihl);
          assert.equal((whole[4] << 8) | whole[5], p.length - ihl);
          assert.equal((whole[56] << 8) | whole[57], pseudo6(whole, 0, whole.length - 40), 'partial checksum');
          const made = gsoSplit(out, 0, 40, GSO_TCP, s.gsoSize, 1);
          assert.equal(made, s.segments - 1);
          out.count = made + 1;
          const got = packets(out);
          for (const g of got) checkTcp6(g);
          assert.deepEqual(got, expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('64: from the packet socket (GRO/TSO) to the TUN', () => {
    fc.assert(
      fc.property(
        shapes.filter((s) => s.ipv4Options === 0 && 20 + 20 + s.tcpOptions + s.gsoSize <= 1500),
        (s) => {
          const p = super6(s);
          const expected = segmentThenTranslate(p.slice(), 40, s.gsoSize, false);
          const { inb, out } = batches();
          place(inb, 0, p);
          assert.equal(translateSuper64(t, inb.data, inb.offs[0], inb.lens[0], s.gsoSize, out), Drop.NONE);
          assert.equal(out.count, 1);
          const whole = out.data.slice(out.offs[0], out.offs[0] + out.lens[0]);
          assert.equal(whole.length, p.length - 20);
          assert.equal((whole[2] << 8) | whole[3], whole.length);
          assert.equal(refSum(whole, 0, 20), 0xffff, 'IPv4 header checksum of the super-packet');
          assert.equal((whole[36] << 8) | whole[37], pseudo4(whole, 0, whole.length - 20), 'partial checksum');
          const made = gsoSplit(out, 0, 20, GSO_TCP, s.gsoSize, 1);
          assert.equal(made, s.segments - 1);
          out.count = made + 1;
          const got = packets(out);
          assert.equal(got.length, expected.length);
          for (const [k, g] of got.entries()) {
            checkIpv4(g);
            checkIpv4(expected[k]);
            // DF wherever a lone translation sets it (the super-packet's header may add it to a short last one).
            if ((expected[k][6] & 0x40) !== 0) assert.ok((g[6] & 0x40) !== 0, `DF on segment ${k}`);
            assert.deepEqual(blankIdFlags(g), blankIdFlags(expected[k]), `segment ${k}`);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('size limits apply to a segment, not to the super-packet', () => {
  test('46: segments that fit the IPv6 MTU pass; a gso_size that does not is answered with its MTU', () => {
    const ok = super4({
      gsoSize: 1460,
      segments: 40,
      lastShort: 0,
      tcpOptions: 0,
      ipv4Options: 0,
      flags: 0x10,
      seq: 1,
      id: 1,
      seed: 1,
    });
    // 20 + 20 + 1460 = 1500 as IPv4: 1520 as IPv6, over the 1500 of this translator.
    let { inb, out } = batches();
    place(inb, 0, ok);
    assert.equal(translateSuper46(t, inb.data, inb.offs[0], inb.lens[0], 1460, out), Drop.D46_TOO_BIG);
    assert.equal(out.count, 1, 'one Fragmentation Needed');
    assert.equal(out.disp[0], Disposition.Back);
    const icmp = out.data.subarray(out.offs[0], out.offs[0] + out.lens[0]);
    assert.equal(icmp[20], 3);
    assert.equal(icmp[21], 4);
    assert.equal((icmp[26] << 8) | icmp[27], 1480, 'next-hop MTU: the IPv6 MTU less 20');
    ({ inb, out } = batches());
    const fits = super4({
      gsoSize: 1440,
      segments: 40,
      lastShort: 0,
      tcpOptions: 0,
      ipv4Options: 0,
      flags: 0x10,
      seq: 1,
      id: 1,
      seed: 1,
    });
    place(inb, 0, fits);
    assert.equal(translateSuper46(t, inb.data, inb.offs[0], inb.lens[0], 1440, out), Drop.NONE);
    assert.equal(out.lens[0], fits.length + 20);
  });

  test('64: a super-packet of 64 KiB is not answered with Packet Too Big', () => {
    const p = super6({
      gsoSize: 1440,
      segments: 45,
      lastShort: 100,
      tcpOptions: 12,
      ipv4Options: 0,
      flags: 0x18,
      seq: 7,
      id: 0,
      seed: 3,
    });
    const { inb, out } = batches();
    place(inb, 0, p);
    assert.equal(translateSuper64(t, inb.data, inb.offs[0], inb.lens[0], 1440, out), Drop.NONE);
    assert.equal(out.lens[0], p.length - 20);
  });

  test('headers that do not add up are refused, never thrown', () => {
    const p = super4({
      gsoSize: 1000,
      segments: 3,
      lastShort: 0,
      tcpOptions: 0,
      ipv4Options: 0,
      flags: 0x10,
      seq: 1,
      id: 1,
      seed: 1,
    });
    const { inb, out } = batches();
    place(inb, 0, p);
    assert.equal(translateSuper46(t, inb.data, inb.offs[0], inb.lens[0] - 1, 1000, out), Drop.D46_BAD_LENGTH);
    assert.equal(translateSuper46(t, inb.data, inb.offs[0], 30, 1000, out), Drop.D46_TRUNCATED);
    const q = super6({
      gsoSize: 1000,
      segments: 3,
      lastShort: 0,
      tcpOptions: 0,
      ipv4Options: 0,
      flags: 0x10,
      seq: 1,
      id: 1,
      seed: 1,
    });
    place(inb, 1, q);
    inb.data[inb.offs[1] + 6] = 60; // an extension header: not for this path
    assert.equal(translateSuper64(t, inb.data, inb.offs[1], inb.lens[1], 1000, out), Drop.D64_BAD_EXT_HEADER);
    assert.equal(out.count, 0);
  });
});

describe('gsoSplitFront: a super-packet cut a batch at a time', () => {
  test('cutting the front segments off, then splitting the rest, gives what one split gives', () => {
    fc.assert(
      fc.property(shapes, fc.integer({ min: 1, max: 43 }), fc.boolean(), (s, cut, v4) => {
        fc.pre(cut < s.segments && (v4 || s.ipv4Options === 0));
        const p = v4 ? super4(s) : super6(s);
        const l4 = v4 ? 20 + s.ipv4Options : 40;
        const whole = createBatch(46, STRIDE);
        place(whole, 0, p);
        whole.count = gsoSplit(whole, 0, l4, GSO_TCP, s.gsoSize, 1) + 1;
        const expected = packets(whole);
        const parts = createBatch(46, STRIDE);
        place(parts, 0, p);
        assert.equal(gsoSplitFront(parts, 0, l4, s.gsoSize, 1, cut), cut);
        parts.count = cut + 1;
        const front = packets(parts, 1);
        parts.count = gsoSplit(parts, 0, l4, GSO_TCP, s.gsoSize, 1) + 1;
        // In the order of the stream: the cut segments, then the rest's.
        assert.deepEqual([...front, ...packets(parts)], expected);
      }),
      { numRuns: 150 },
    );
  });
});
