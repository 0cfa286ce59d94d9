/**
 * gsoSplit, table-driven: TCP and UDP super-packets, with and without TCP options and an IPv6
 * extension header, a last segment shorter than gso_size or an exact multiple, batches with a
 * base, and the refusals (no free slots, a slot too small, headers that do not add up) that must
 * leave the batch as it was. Every output checksum is checked against a slow byte-wise reference.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBatch, type PacketBatch } from '../../src/core/batch.js';
import { GSO_BAD, GSO_NO_ROOM, GSO_TCP, GSO_UDP, gsoSplit } from '../../src/core/gso.js';

const SRC = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc1, 0xa7];
const FIN = 0x01;
const PSH = 0x08;
const ACK = 0x10;
const CWR = 0x80;

interface Super {
  proto: number;
  /** Payload bytes behind the L4 header. */
  data: number;
  /** An 8-byte Destination Options header between IPv6 and L4. */
  ext?: boolean;
  /** TCP options bytes (a multiple of 4). */
  tcpOptions?: number;
  seq?: number;
  flags?: number;
}

/** A super-packet as the kernel hands it over: lengths of the whole, checksum field left partial (junk here). */
function build(s: Super): { bytes: Uint8Array; l4: number } {
  const extLen = s.ext ? 8 : 0;
  const l4 = 40 + extLen;
  const l4len = s.proto === GSO_TCP ? 20 + (s.tcpOptions ?? 0) : 8;
  const p = new Uint8Array(l4 + l4len + s.data);
  p[0] = 0x60;
  p[1] = 0x0a; // traffic class / flow label bits, to be copied as they are
  p[3] = 0x42;
  const plen = p.length - 40;
  p[4] = plen >>> 8;
  p[5] = plen & 0xff;
  p[6] = s.ext ? 60 : s.proto;
  p[7] = 64;
  p.set(SRC, 8);
  p.set(DST, 24);
  if (s.ext) {
    p[40] = s.proto; // next header; length 0 (8 bytes); a PadN option fills it
    p[42] = 1;
    p[43] = 4;
  }
  const u = l4;
  p[u] = 0x9c;
  p[u + 1] = 0x40;
  p[u + 2] = 0x01;
  p[u + 3] = 0xbb;
  if (s.proto === GSO_TCP) {
    const seq = s.seq ?? 0x01020304;
    p[u + 4] = seq >>> 24;
    p[u + 5] = (seq >>> 16) & 0xff;
    p[u + 6] = (seq >>> 8) & 0xff;
    p[u + 7] = seq & 0xff;
    p.set([0xaa, 0xbb, 0xcc, 0xdd], u + 8); // ack
    p[u + 12] = (l4len / 4) << 4;
    p[u + 13] = s.flags ?? ACK;
    p[u + 14] = 0xfa;
    p[u + 15] = 0xf0;
    p[u + 16] = 0x12; // junk where the checksum goes
    p[u + 17] = 0x34;
    for (let k = 20; k < l4len; k++) p[u + k] = k === 20 ? 8 : k === 21 ? 10 : 0x50 + k; // a timestamp-like option
  } else {
    p[u + 4] = (l4len + s.data) >>> 8;
    p[u + 5] = (l4len + s.data) & 0xff;
    p[u + 6] = 0x56;
    p[u + 7] = 0x78;
  }
  for (let k = 0; k < s.data; k++) p[u + l4len + k] = (k * 7 + 3) & 0xff;
  return { bytes: p, l4 };
}

/** The reference: a byte-wise one's-complement sum over an explicit pseudo-header and the segment. */
function slowChecksumOk(seg: Uint8Array, l4: number, proto: number): boolean {
  const len = seg.length - l4;
  const bytes = [
    ...seg.subarray(8, 40),
    (len >>> 24) & 0xff,
    (len >>> 16) & 0xff,
    (len >>> 8) & 0xff,
    len & 0xff,
    0,
    0,
    0,
    proto,
    ...seg.subarray(l4),
  ];
  if (bytes.length % 2) bytes.push(0);
  let sum = 0;
  for (let k = 0; k < bytes.length; k += 2) {
    sum += bytes[k] * 256 + bytes[k + 1];
    while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  }
  return sum === 0xffff;
}

const u16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const u32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** Puts `pkt` `headroom` bytes into slot `i` of `b`. */
function place(b: PacketBatch, i: number, pkt: Uint8Array, headroom: number): void {
  const off = b.base + i * b.stride + headroom;
  b.data.set(pkt, off);
  b.offs[i] = off;
  b.lens[i] = pkt.length;
  b.disp[i] = 1;
}

interface Case extends Super {
  name: string;
  gso: number;
  /** Segments expected. */
  segs: number;
  /** Batch base (bytes), input slot, headroom. */
  base?: number;
  slot?: number;
  headroom?: number;
}

const cases: Case[] = [
  { name: 'UDP, last segment shorter', proto: GSO_UDP, data: 2500, gso: 1000, segs: 3 },
  { name: 'UDP, exact multiple', proto: GSO_UDP, data: 3000, gso: 1000, segs: 3 },
  { name: 'UDP behind a Destination Options header', proto: GSO_UDP, data: 1801, gso: 600, segs: 4, ext: true },
  { name: 'UDP, one segment only (checksum completed)', proto: GSO_UDP, data: 700, gso: 1000, segs: 1 },
  {
    name: 'TCP without options, last shorter, PSH|FIN|CWR',
    proto: GSO_TCP,
    data: 4000,
    gso: 1440,
    segs: 3,
    flags: ACK | PSH | FIN | CWR,
  },
  {
    name: 'TCP with 12 bytes of options, exact multiple',
    proto: GSO_TCP,
    data: 2856,
    gso: 1428,
    segs: 2,
    tcpOptions: 12,
  },
  {
    name: 'TCP with options behind an extension header, odd sizes',
    proto: GSO_TCP,
    data: 3333,
    gso: 1001,
    segs: 4,
    tcpOptions: 12,
    ext: true,
    flags: ACK | PSH,
  },
  { name: 'TCP sequence numbers wrap at 2^32', proto: GSO_TCP, data: 3000, gso: 1000, segs: 3, seq: 0xfffffc00 },
  {
    name: 'a batch with a base that is not a multiple of the stride, input in slot 1',
    proto: GSO_TCP,
    data: 2500,
    gso: 1000,
    segs: 3,
    base: 100,
    slot: 1,
    headroom: 32,
  },
  {
    name: 'UDP in slot 2 at headroom 7, base 13',
    proto: GSO_UDP,
    data: 2000,
    gso: 999,
    segs: 3,
    base: 13,
    slot: 2,
    headroom: 7,
  },
];

describe('gsoSplit', () => {
  for (const c of cases) {
    test(c.name, () => {
      const stride = 4096 + 512;
      const capacity = 8;
      const base = c.base ?? 0;
      const b = createBatch(capacity, stride, new Uint8Array(base + capacity * stride), base);
      const { bytes: orig, l4 } = build(c);
      const slot = c.slot ?? 0;
      place(b, slot, orig, c.headroom ?? 0);
      const free = slot + 1;
      const made = gsoSplit(b, slot, l4, c.proto, c.gso, free);
      assert.equal(made, c.segs - 1);
      const l4len = c.proto === GSO_TCP ? 20 + (c.tcpOptions ?? 0) : 8;
      const head = l4 + l4len;
      let payload = 0;
      for (let k = 0; k < c.segs; k++) {
        const s = k === 0 ? slot : free + k - 1;
        const off = b.offs[s];
        assert.equal(off - (base + s * stride), c.headroom ?? 0, `segment ${k} at the same place in its slot`);
        assert.equal(b.disp[s], 1, `segment ${k} keeps the disposition`);
        const seg = b.data.slice(off, off + b.lens[s]);
        const chunk = Math.min(c.gso, c.data - k * c.gso);
        assert.equal(seg.length, head + chunk, `segment ${k} length`);
        assert.equal(u16(seg, 4), seg.length - 40, `segment ${k} payload length`);
        assert.deepEqual(seg.subarray(0, 4), orig.subarray(0, 4), 'version, class, flow label kept');
        assert.deepEqual(
          seg.subarray(6, l4),
          orig.subarray(6, l4),
          'next header, hop limit, addresses, extensions kept',
        );
        assert.deepEqual(seg.subarray(l4, l4 + 4), orig.subarray(l4, l4 + 4), 'ports kept');
        assert.deepEqual(seg.subarray(head), orig.subarray(head + k * c.gso, head + k * c.gso + chunk), 'payload');
        if (c.proto === GSO_TCP) {
          assert.equal(u32(seg, l4 + 4), ((c.seq ?? 0x01020304) + k * c.gso) >>> 0, `segment ${k} sequence number`);
          assert.deepEqual(seg.subarray(l4 + 8, l4 + 13), orig.subarray(l4 + 8, l4 + 13), 'ack and data offset kept');
          let want = c.flags ?? ACK;
          if (k < c.segs - 1) want &= ~(FIN | PSH);
          if (k > 0) want &= ~CWR;
          assert.equal(seg[l4 + 13], want, `segment ${k} flags`);
          assert.deepEqual(
            seg.subarray(l4 + 18, head),
            orig.subarray(l4 + 18, head),
            'urgent pointer and options kept',
          );
        } else {
          assert.equal(u16(seg, l4 + 4), l4len + chunk, `segment ${k} UDP length`);
          assert.notEqual(u16(seg, l4 + 6), 0, 'a UDP checksum is never sent as 0');
        }
        assert.ok(slowChecksumOk(seg, l4, c.proto), `segment ${k} checksum verifies`);
        payload += chunk;
      }
      assert.equal(payload, c.data);
    });
  }

  /** Runs gsoSplit expecting `want`, and checks that the batch did not change. */
  function refused(b: PacketBatch, slot: number, l4: number, proto: number, gso: number, free: number, want: number) {
    const data = b.data.slice();
    const offs = b.offs.slice();
    const lens = b.lens.slice();
    assert.equal(gsoSplit(b, slot, l4, proto, gso, free), want);
    assert.deepEqual(b.data, data, 'data unchanged');
    assert.deepEqual(b.offs, offs, 'offs unchanged');
    assert.deepEqual(b.lens, lens, 'lens unchanged');
  }

  test('too few free slots: NO_ROOM, nothing changed', () => {
    const b = createBatch(3, 4096);
    const { bytes, l4 } = build({ proto: GSO_TCP, data: 4000, tcpOptions: 12 });
    place(b, 0, bytes, 0);
    // 4 segments need slots 1..3: the batch ends at slot 2.
    refused(b, 0, l4, GSO_TCP, 1000, 1, GSO_NO_ROOM);
    assert.equal(gsoSplit(b, 0, l4, GSO_TCP, 2000, 1), 1, 'with fewer segments it fits');
  });

  test('a slot too small for one segment: BAD, nothing changed', () => {
    const b = createBatch(4, 1200, new Uint8Array(4 * 1200 + 5000), 0);
    const { bytes, l4 } = build({ proto: GSO_UDP, data: 3000 });
    // The super-packet itself overflows its slot into the next ones (as a store with big slots
    // would allow); a 1200-byte segment at headroom 32 does not fit a 1200-byte slot.
    b.data.set(bytes, 32);
    b.offs[0] = 32;
    b.lens[0] = bytes.length;
    refused(b, 0, l4, GSO_UDP, 1200, 1, GSO_BAD);
  });

  test('headers that do not add up: BAD, nothing changed', () => {
    const b = createBatch(8, 4096);
    const tcp = build({ proto: GSO_TCP, data: 3000 });
    place(b, 0, tcp.bytes, 0);
    refused(b, 0, tcp.l4, GSO_TCP, 0, 1, GSO_BAD); // gso_size 0
    refused(b, 0, 39, GSO_TCP, 1000, 1, GSO_BAD); // transport header inside the IPv6 header
    refused(b, 0, tcp.l4, 58, 1000, 1, GSO_BAD); // neither TCP nor UDP
    b.data[b.offs[0] + tcp.l4 + 12] = 4 << 4; // TCP data offset below 5 words
    refused(b, 0, tcp.l4, GSO_TCP, 1000, 1, GSO_BAD);
    const bare = build({ proto: GSO_UDP, data: 0 });
    place(b, 1, bare.bytes, 0);
    refused(b, 1, bare.l4, GSO_UDP, 1000, 2, GSO_BAD); // no payload
    b.lens[1] = 44;
    refused(b, 1, bare.l4, GSO_UDP, 1000, 2, GSO_BAD); // shorter than its UDP header
  });
});
