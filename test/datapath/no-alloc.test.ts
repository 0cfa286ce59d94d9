/**
 * "No allocation per packet" for the whole DatapathLoop, not only the translator: reads from the
 * in-memory PacketIo (with GSO super-packets split on read, as the packet socket does), 4→6
 * fragmentation, hairpinning, generated ICMP errors and their rate limit, Neighbor Discovery
 * skipped, the writes, the counter sync and the counter publication after every wake-up; and with
 * the TUN's offloads, TCP super-packets translated once both ways (segmented for the raw socket,
 * whole to the TUN with a virtio_net_hdr) and partial checksums completed. After a
 * warm-up, many wake-ups must neither start a garbage collection nor grow the young generation by
 * more than a few kilobytes (see test/core/xlat/no-alloc.test.ts for the technique).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { finish, sum16 } from '../../src/core/checksum.js';
import { GSO_TCP, GSO_UDP } from '../../src/core/gso.js';
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  vnetCsumOffset,
  vnetCsumStart,
  vnetFlags,
} from '../../src/core/vnet.js';
import { Drop, dropName } from '../../src/core/xlat/drop.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { CounterWriter, createCounterBuffer, readCounters } from '../../src/datapath/counters.js';
import { counterSync } from '../../src/datapath/devices.js';
import { DatapathLoop } from '../../src/datapath/loop.js';
import type { PacketSocket } from '../../src/sys/packet-socket.js';
import type { Tun } from '../../src/sys/tun.js';
import { type ReplayPacket, ReplayPacketIo } from '../fakes/packet-io.js';
import { fullGc, measureAllocation } from '../helpers/alloc.js';
import { checksumProblems, ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../pkt/build.js';

const CLAT4 = '192.0.0.4';
const CLAT6 = '2001:db8:1:2::4';
const SERVER4 = '192.0.2.1';
const SERVER6 = '64:ff9b::c000:201';
/** The pool6 form of the CLAT's own IPv4 address: a 64 packet to it is hairpinned. */
const HAIRPIN6 = '64:ff9b::c000:4';
const WARMUP = 20_000;
const MEASURED = 20_000;
/** Expired packets per input list in the test with ICMP errors: several per batch. */
const EXPIRED = 4;

const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

/** Inputs of every kind; `expired` of them per side get an ICMP error back (TTL / hop limit 1). */
function inputs(expired: number): { v4: ReplayPacket[]; v6: ReplayPacket[] } {
  const udp4 = { proto: PROTO_UDP, sport: 40000, dport: 9 };
  const udp6 = { proto: PROTO_UDP, sport: 9, dport: 40000 };
  const tcp6 = { proto: PROTO_TCP, sport: 80, dport: 40001 };
  const echo = { proto: PROTO_ICMP, sport: 7, dport: 1 };
  const ns = ipv6Packet({ src: SERVER6, dst: CLAT6, hopLimit: 255 }, { ...echo, payload: fill(20, 0) });
  ns[40] = 135; // a Neighbor Solicitation as far as the loop looks
  return {
    v4: [
      { bytes: ipv4Packet({ src: CLAT4, dst: SERVER4 }, { ...udp4, payload: fill(36, 1) }) },
      {
        bytes: ipv4Packet(
          { src: CLAT4, dst: SERVER4 },
          { proto: PROTO_TCP, sport: 40001, dport: 80, payload: fill(1440, 2) },
        ),
      },
      { bytes: ipv4Packet({ src: CLAT4, dst: SERVER4 }, { ...echo, payload: fill(56, 3) }) },
      // DF=0 and too big for the 1280-byte IPv6 minimum: fragmented.
      { bytes: ipv4Packet({ src: CLAT4, dst: SERVER4, df: false }, { ...udp4, payload: fill(1400, 4) }) },
      // TTL 1: an ICMPv4 Time Exceeded goes back (through the rate limit).
      ...Array.from({ length: expired }, () => ({
        bytes: ipv4Packet({ src: CLAT4, dst: SERVER4, ttl: 1 }, { ...udp4, payload: fill(16, 5) }),
      })),
    ],
    v6: [
      { bytes: ipv6Packet({ src: SERVER6, dst: CLAT6 }, { ...udp6, payload: fill(16, 1) }) },
      // A TSO/GRO super-packet of three segments and a UDP_SEGMENT one of four datagrams.
      {
        bytes: ipv6Packet({ src: SERVER6, dst: CLAT6 }, { ...tcp6, payload: fill(3 * 1400 - 100, 6) }),
        gso: { proto: GSO_TCP, l4: 40, size: 1400 },
      },
      {
        bytes: ipv6Packet({ src: SERVER6, dst: CLAT6 }, { ...udp6, payload: fill(4 * 1000, 7) }),
        gso: { proto: GSO_UDP, l4: 40, size: 1000 },
      },
      { bytes: ipv6Packet({ src: CLAT6, dst: HAIRPIN6 }, { ...udp6, payload: fill(24, 8) }) },
      ...Array.from({ length: expired }, () => ({
        bytes: ipv6Packet({ src: SERVER6, dst: CLAT6, hopLimit: 1 }, { ...udp6, payload: fill(16, 9) }),
      })),
      { bytes: ns },
    ],
  };
}

/**
 * `p` as a sender with checksum offload leaves it (CHECKSUM_PARTIAL): the L4 checksum field at
 * `l4 + field` holds the folded, not complemented, pseudo-header sum.
 */
function partial(p: Uint8Array, l4: number, field: number): Uint8Array {
  const v6 = p[0] >>> 4 === 6;
  const l4len = p.length - l4;
  const sum = v6 ? sum16(p, 8, 32, p[6] + l4len) : sum16(p, 12, 8, p[9] + l4len);
  const folded = ~finish(sum) & 0xffff;
  p[l4 + field] = folded >>> 8;
  p[l4 + field + 1] = folded & 0xff;
  return p;
}

/** Inputs as a TUN and a packet socket with offloads hand them over (see ReplayPacket.vnet). */
function offloadInputs(): { v4: ReplayPacket[]; v6: ReplayPacket[] } {
  const csum = (csumStart: number, csumOffset: number) => ({
    flags: VNET_F_NEEDS_CSUM,
    gsoType: 0,
    hdrLen: 0,
    gsoSize: 0,
    csumStart,
    csumOffset,
  });
  const tso = (gsoType: number, l4: number, gsoSize: number) => ({
    flags: VNET_F_NEEDS_CSUM,
    gsoType,
    hdrLen: l4 + 20,
    gsoSize,
    csumStart: l4,
    csumOffset: 16,
  });
  const tcp4 = { proto: PROTO_TCP, sport: 40001, dport: 80 };
  const tcp6 = { proto: PROTO_TCP, sport: 80, dport: 40001 };
  const udp4 = { proto: PROTO_UDP, sport: 40000, dport: 9 };
  return {
    v4: [
      // TSO: four segments of 1400, the last shorter.
      {
        bytes: partial(ipv4Packet({ src: CLAT4, dst: SERVER4 }, { ...tcp4, payload: fill(4 * 1400 - 300, 2) }), 20, 16),
        vnet: tso(VNET_GSO_TCPV4, 20, 1400),
      },
      // A small MSS: 175 segments, more than an output batch holds.
      {
        bytes: partial(ipv4Packet({ src: CLAT4, dst: SERVER4 }, { ...tcp4, payload: fill(175 * 40, 4) }), 20, 16),
        vnet: tso(VNET_GSO_TCPV4, 20, 40),
      },
      {
        bytes: partial(ipv4Packet({ src: CLAT4, dst: SERVER4 }, { ...udp4, payload: fill(36, 1) }), 20, 6),
        vnet: csum(20, 6),
      },
      { bytes: ipv4Packet({ src: CLAT4, dst: SERVER4 }, { ...udp4, payload: fill(20, 3) }) },
    ],
    v6: [
      {
        bytes: partial(ipv6Packet({ src: SERVER6, dst: CLAT6 }, { ...tcp6, payload: fill(3 * 1400 - 100, 6) }), 40, 16),
        vnet: tso(VNET_GSO_TCPV6, 40, 1400),
      },
      {
        bytes: ipv6Packet(
          { src: SERVER6, dst: CLAT6 },
          { proto: PROTO_UDP, sport: 9, dport: 40000, payload: fill(16, 1) },
        ),
      },
      // A stream's segments one by one (an uplink without GRO): coalesced into one for the TUN.
      { bytes: tcpSegment6(1000, 0x10, 1200) },
      { bytes: tcpSegment6(2200, 0x10, 1200) },
      { bytes: tcpSegment6(3400, 0x18, 700) },
    ],
  };
}

/** An IPv6 TCP segment from the server with sequence number `seq`, `flags` and `n` bytes of payload. */
function tcpSegment6(seq: number, flags: number, n: number): Uint8Array {
  const p = ipv6Packet(
    { src: SERVER6, dst: CLAT6 },
    { proto: PROTO_TCP, sport: 80, dport: 40002, payload: fill(n, 5) },
  );
  p[44] = seq >>> 24;
  p[45] = (seq >>> 16) & 0xff;
  p[46] = (seq >>> 8) & 0xff;
  p[47] = seq & 0xff;
  p[53] = flags;
  p[56] = 0;
  p[57] = 0;
  const c = finish(sum16(p, 40, p.length - 40, sum16(p, 8, 32, 6 + p.length - 40)));
  p[56] = c >>> 8;
  p[57] = c & 0xff;
  return p;
}

/** A loop over replaying fakes, with the worker's counter sync over stand-ins of the system layer's counters. */
function setup(expired: number, offloads = false) {
  const translator = new Translator({
    pool6: '64:ff9b::/96',
    wkpGlobalOnly: false,
    ownV6: '2001:db8:1:2::1',
    ownV4: '192.0.0.8',
    eam: [{ v4: `${CLAT4}/32`, v6: `${CLAT6}/128` }],
    hairpin: true,
  });
  const { v4, v6 } = offloads ? offloadInputs() : inputs(expired);
  const tun = new ReplayPacketIo(v4);
  const packet = new ReplayPacketIo(v6);
  const raw = new ReplayPacketIo([]);
  const buf = createCounterBuffer();
  const loop = new DatapathLoop(translator, { tun, packet, raw }, new CounterWriter(buf), {
    stride: 8192,
    tunVnet: offloads,
    tunTso: offloads,
  });
  const sysTun = { errors: { readErrors: 0, writeErrors: 0, lastErrno: 0 } } as unknown as Tun;
  const sysPacket = {
    counters: { readErrors: 0, malformed: 0, csumCompleted: 0, kernelDrops: 0 },
    readKernelStats() {},
  } as unknown as PacketSocket;
  loop.beforePublish = counterSync(sysTun, sysPacket);
  // Wake-ups of each kind: both sides at once, each side on its own, and a light one (one TUN packet).
  const round = (k: number) => {
    tun.available = v4.length;
    packet.available = v6.length;
    if (k % 3 === 0) loop.drainBoth(k % 2 === 0);
    else if (k % 3 === 1) {
      loop.tunReadable();
      loop.packetReadable();
    } else loop.drainBoth(true, true);
  };
  return { v4, v6, tun, packet, raw, buf, round };
}

test('every path of the loop is taken, and what it writes is valid', () => {
  const { v4, v6, tun, packet, raw, buf, round } = setup(1);
  const problems: string[] = [];
  const check = (data: Uint8Array, off: number, len: number) => {
    const p = data.slice(off, off + len);
    if (!(p[0] >>> 4 === 6 && p[6] === 44)) problems.push(...checksumProblems(p)); // fragments aside
  };
  tun.check = packet.check = raw.check = check;
  // Rounds 0 and 1 read every queued packet (round 2's wake-up is a light one).
  const rounds = 2;
  for (let k = 0; k < rounds; k++) round(k);
  assert.deepEqual(problems, []);
  const c = readCounters([buf]);
  assert.equal(c['46'].packets, rounds * v4.length);
  assert.equal(c['64'].packets, rounds * (v6.length - 2 + 3 + 4), 'super-packets arrive split');
  assert.equal(c['64'].neighbor, rounds);
  assert.equal(c['46'].dropped, rounds, 'only TTL expired');
  assert.equal(c['46'].drops[dropName(Drop.D46_TTL_EXPIRED)], rounds);
  assert.equal(c['64'].dropped, rounds, 'only hop limit expired');
  assert.equal(c['64'].drops[dropName(Drop.D64_HOP_LIMIT_EXPIRED)], rounds);
  // 3 IPv4 packets forwarded whole and one as 2 fragments.
  assert.equal(c['46'].packetsOut, rounds * 5);
  assert.equal(c['46'].icmpErrors, rounds, 'Time Exceeded back into the TUN');
  // The hairpinned packet and the Time Exceeded both go back out of the packet side's raw socket.
  assert.equal(c['64'].icmpErrors, rounds * 2);
  assert.equal(raw.written, rounds * (5 + 2));
});

test('the loop allocates nothing per packet or wake-up (no GC, young generation flat)', async () => {
  const { buf, round } = setup(0);
  for (let k = 0; k < WARMUP; k++) round(k);
  const { gcs, grown } = await measureAllocation(MEASURED, round);
  const total = readCounters([buf]);
  const packets = total['46'].packets + total['64'].packets;
  assert.equal(gcs, 0, `${gcs} garbage collection(s) during ${MEASURED} rounds`);
  // The statistics call itself allocates a little; one 16-byte object per round would be 320 KB.
  assert.ok(grown < 16 * 1024, `young generation grew by ${grown} bytes over ${MEASURED} rounds (${packets} packets)`);
});

test('with ICMP errors: one clock reading per batch that has them, not one per error', async () => {
  const { buf, round } = setup(EXPIRED);
  for (let k = 0; k < WARMUP; k++) round(k);
  // An empty young generation, so that no scavenge falls into the measurement; then rounds for
  // whatever the collection undid (code that embedded objects of the other tests is thrown away).
  fullGc();
  for (let k = 0; k < 5000; k++) round(k);
  const rounds = 2000;
  const { gcs, grown } = await measureAllocation(rounds, round);
  const c = readCounters([buf]);
  assert.ok(c['46'].icmpRateLimited > 0 && c['64'].icmpRateLimited > 0, 'the rate limit was on the path');
  assert.equal(gcs, 0);
  // At most two batches with errors per round, 16 bytes per reading; one per error would be
  // 2 × EXPIRED × 16 bytes per round, four times as much.
  const perBatch = rounds * 2 * 16;
  assert.ok(grown < perBatch + 16 * 1024, `young generation grew by ${grown} bytes over ${rounds} rounds`);
});

test('with offloads: super-packets translated once both ways, partial checksums completed, all valid', () => {
  const { tun, raw, buf, round } = setup(0, true);
  const problems: string[] = [];
  const check = (
    data: Uint8Array,
    off: number,
    len: number,
    _disp: number,
    vnet: Uint8Array | undefined,
    i: number,
  ) => {
    const p = data.slice(off, off + len);
    if (vnet !== undefined && (vnetFlags(vnet, i) & VNET_F_NEEDS_CSUM) !== 0) {
      // What the kernel does with it: the checksum completed from csum_start over the pseudo-header sum.
      const l4 = vnetCsumStart(vnet, i);
      const field = l4 + vnetCsumOffset(vnet, i);
      const c = finish(sum16(p, l4, p.length - l4)) || 0xffff;
      p[field] = c >>> 8;
      p[field + 1] = c & 0xff;
    }
    problems.push(...checksumProblems(p));
  };
  tun.check = raw.check = check;
  for (let k = 0; k < 2; k++) round(k);
  assert.deepEqual(problems, []);
  const c = readCounters([buf]);
  assert.equal(c.io.tunTsoIn, 4, 'the TUN super-packets read whole, twice');
  assert.equal(c.io.tunTsoOut, 2, 'the packet socket super-packet written whole, twice');
  assert.equal(c.io.tunCoalesced, 2 * 2, 'three segments written as one, twice');
  // The super-packet and the coalesced segments, each round.
  assert.equal(tun.superWritten, 2 * 2);
  // Per round: 4 segments, 175 small ones, the UDP packet with the partial checksum and the plain one.
  assert.equal(raw.written, 2 * (4 + 175 + 2));
  assert.equal(c['46'].packetsOut, raw.written);
  assert.equal(c['46'].dropped + c['64'].dropped, 0);
});

test('with offloads: the loop allocates nothing per packet or wake-up', async () => {
  const { round } = setup(0, true);
  for (let k = 0; k < WARMUP; k++) round(k);
  // An empty young generation first, so that no scavenge of earlier garbage falls into the measurement.
  fullGc();
  for (let k = 0; k < 2000; k++) round(k);
  const { gcs, grown } = await measureAllocation(MEASURED, round);
  assert.equal(gcs, 0, `${gcs} garbage collection(s) during ${MEASURED} rounds`);
  assert.ok(grown < 16 * 1024, `young generation grew by ${grown} bytes over ${MEASURED} rounds`);
});
