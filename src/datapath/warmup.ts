/**
 * JIT warm-up of a worker's packet path, run before the worker opens its devices.
 *
 * Why: V8 optimises a function only after it has run for a while. At the packet rates of
 * interactive traffic (a ping, a DNS query, a keystroke over SSH) the translator and the loop stay
 * in baseline code for minutes, where every property access goes through an inline-cache stub:
 * more code and memory touched per packet, so a slower trip after every idle gap. And each later
 * tier-up queues a background compile job (about 20 ms for `translate4to6`) that can take the CPU
 * from the loop exactly when a packet waits. Measured with ping at 100 packets/s through a freshly
 * started clatd: stalls of 1-4 ms in about 3 % of the round trips, one per tier-up
 * (`--trace-opt`), for the first thousands of packets. See bench/README.md.
 *
 * How: a throwaway {@link DatapathLoop} with the worker's own translator runs over stand-ins of
 * its devices (the real device classes over socket pairs, see stand-ins.ts): the CLAT's typical
 * traffic (ICMP echo, UDP, TCP, an ICMP error each way) and the answers, in batches of one packet
 * (the idle case) and large batches (the busy case). Nothing reaches any device or network; its
 * counters go to a scratch buffer, never to the daemon's.
 */

import { parsePrefix4 } from '../core/addr/prefix.js';
import { createBatch, type PacketBatch } from '../core/batch.js';
import { adjust, finish, fold, pseudoSum4, pseudoSum6, sum16 } from '../core/checksum.js';
import { icmp4SetChecksum } from '../core/hdr/icmpv4.js';
import { ipv4SetChecksum, ipv4WriteHeader, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../core/hdr/ipv4.js';
import { tcpSetChecksum } from '../core/hdr/tcp.js';
import { udpSetChecksum } from '../core/hdr/udp.js';
import { buildDadSolicitation } from '../core/nd/dad-probe.js';
import type { TranslatorConfig } from '../core/xlat/config.js';
import { Drop } from '../core/xlat/drop.js';
import { Translator } from '../core/xlat/translator.js';
import { PollSet } from '../sys/poll.js';
import { CounterWriter, createCounterBuffer, DIR46, DIR64, Slot } from './counters.js';
import { counterSync, offloadOptions } from './devices.js';
import { DatapathLoop } from './loop.js';
import { frame, StandIns } from './stand-ins.js';
import { Waker } from './waker.js';

/** What the last warm-up ran on, kept for the life of the thread (see the end of warmUp). */
const retained: unknown[] = [];

/** Wake-ups per direction; enough for V8 to optimise the whole path (checked with --trace-opt). */
export const WARMUP_ROUNDS = 2000;
/** The far end of the synthetic traffic (never sent anywhere). */
const SERVER4 = 0xc0000201; // 192.0.2.1
/**
 * The far end under the well-known prefix, which may carry only global addresses (RFC 6052
 * §3.1): documentation addresses would take the drop path instead. These packets stay in memory.
 */
const SERVER4_GLOBAL = 0xc0586301; // 192.88.99.1 (RFC 7526; globally reachable, assigned to no one)
/** Source used when the configuration names no EAM (`v4Sources: 'any'`). */
const FALLBACK_CLAT4 = 0xc0000004; // 192.0.0.4
const STRIDE = 2048;
/** Packets per read of the stand-ins (the devices' default) and per busy round (short of a full batch). */
const BATCH = 64;
const BUSY = 48;
/** See {@link quietWakes}: turns of its call list (a poll, a read or a write each; a slice moves one packet), ~200 ms. */
const QUIET_WAKES = 2500;
/**
 * How long a warm-up slice's poll may sleep: each slice serves one wake-up for a packet already
 * queued, so none waits; the bound only keeps a stand-in that lost its packet from stalling the
 * warm-up long.
 */
const SLICE_IDLE_MS = 5000;

/** What a warm-up did, from its own scratch counters. */
export interface WarmUpResult {
  translated46: number;
  translated64: number;
  dropped: number;
}

/**
 * Runs the warm-up (see the file comment). A packet the configuration would drop is still a
 * useful run of the drop path; it throws only a SysError from opening the stand-ins (socketpair,
 * e.g. EMFILE when the process is out of file descriptors, as its real devices would be next).
 */
export function warmUp(translator: Translator, config: TranslatorConfig, rounds = WARMUP_ROUNDS): WarmUpResult {
  const clat4 = clatSource(config);
  const rc = translator.config;
  const server4 = rc.pool6IsWkp && rc.wkpGlobalOnly ? SERVER4_GLOBAL : SERVER4;
  // Two far ends, so the translator's address memo misses as well as hits.
  const other4 = server4 + 1;
  const v4 = [
    echo4(clat4, server4),
    udp4(clat4, other4, true),
    udp4(clat4, server4, false),
    tcp4(clat4, other4),
    portUnreachable4(clat4, server4),
  ];
  const v6 = answers(translator, v4);
  const frames = v6.map((p) => frame(p));
  // One answer with its checksum left to complete, as veth hands over a local sender's packets.
  const udp6 = v6.find((p) => p[6] === PROTO_UDP && p.length >= 48);
  if (udp6 !== undefined) frames.push(frame(udp6, { offset: 6, pseudo: udpPseudo(udp6) }));
  // A neighbor solicitation for the CLAT address (the socket's filter passes those for DAD).
  const clat6 = v6[0]?.slice(24, 40);
  if (clat6 !== undefined) frames.push(frame(buildDadSolicitation(clat6, new Uint8Array(6))));
  // As the worker's devices are: a TUN with virtio_net_hdr and TSO.
  const devices = StandIns.open(BATCH, true);
  let polls: PollSet | undefined;
  try {
    const tunFeed = feed(v4);
    // No answers when the configuration drops all the IPv4 side: the IPv4 packets, framed, take the drop path.
    const packetFeed = feed(frames.length > 0 ? frames : v4.map((p) => frame(p)));
    const scratch = createBatch(BATCH, STRIDE);
    const counters = new CounterWriter(createCounterBuffer());
    // Two loops, so two arenas: the real loop's arena is a third one, and code that caches a view
    // per arena (core/xlat/words.ts) must have seen a change of arena before it is optimised.
    const io = { tun: devices.tun, packet: devices.packet, raw: devices.raw };
    // A second translator of the same configuration, swapped in now and then: each new
    // configuration (a DAD redraw, a new /64 or prefix, a reload) is a new translator, and code
    // that had only ever seen the first was thrown away at the swap ("code dependencies").
    const translators = [translator, new Translator(config)];
    const loops = [0, 1].map(() => {
      const loop = new DatapathLoop(translator, io, counters, { stride: STRIDE, ...offloadOptions(devices.tun) });
      // The worker sets both hooks after construction, so the warm-up does too: the counter hook
      // from the same function as the worker's (a closure per loop, as each worker has its own;
      // with one closure seen, V8 compiles a call of exactly that one, and the worker's would
      // throw the loop's optimised code away: "wrong call target"), and a function declaration.
      loop.beforePublish = counterSync(devices.tun, devices.packet);
      loop.onClosed = ignoreClosed;
      return loop;
    });
    // A worker's wake-up (poll, then both sides), over the stand-ins' fds; no control eventfd.
    polls = new PollSet([devices.tun.fd, devices.packet.fd, -1], 'warm-up stand-ins');
    // A turn counter of their own that never moves (a shared one, as the worker's is).
    const turns = new Int32Array(new SharedArrayBuffer(4));
    const wakers = loops.map((loop) => new Waker(polls as PollSet, loop, turns));
    for (let r = 0; r < rounds; r++) {
      // Now and then paused, as a worker is while DAD runs or its uplink is down: a field written
      // only in the constructor is taken as a constant by optimised code, and the worker's first
      // pause or resume then threw the loop's code away ("code dependencies").
      const paused = r % 64 === 61;
      for (const loop of loops) loop.paused = paused;
      if (r % 32 === 17) for (const loop of loops) loop.setTranslator(translators[(r >>> 5) & 1] as Translator);
      // Mostly single packets (an idle host's traffic); every eighth round a busy batch, short of
      // full so that one read ends the wake-up.
      const per = r % 8 === 7 ? BUSY : 1;
      // Now and then the IPv6 side alone (in a wake-up round), so that it wakes first.
      if (r % 16 !== 6) devices.feedTun(tunFeed, r % v4.length, per);
      devices.feedPacket(packetFeed, r % Math.max(1, frames.length), per);
      const i = (r >>> 4) & 1;
      // Both ways in which loops are driven: a worker's wake-up, the in-process poll callbacks.
      // (A slice of one wake-up: something is always readable here, so its poll does not sleep.)
      if (r & 2) (wakers[i] as Waker).slice(0, 1, SLICE_IDLE_MS);
      else {
        const loop = loops[i] as DatapathLoop;
        loop.tunReadable();
        loop.packetReadable();
      }
      devices.drain(scratch);
    }
    for (const loop of loops) {
      loop.paused = false;
      loop.setTranslator(translator);
    }
    quietWakes(wakers, loops, devices, tunFeed, scratch, QUIET_WAKES);
    // Optimised code keeps what its feedback saw (the devices' shapes, the arenas, the counter
    // arrays) weakly; were these collected, V8 would throw that code away ("weak objects"
    // deoptimisation) at the next GC, and the real loop would run in baseline code again until
    // re-optimised at the pace of real traffic. The last warm-up's set is enough (~1 MB).
    retained.splice(
      0,
      retained.length,
      devices,
      tunFeed,
      packetFeed,
      scratch,
      counters,
      polls,
      ...loops,
      ...wakers,
      ...translators,
    );
    const c = counters.acc;
    return {
      translated46: c[DIR46 + Slot.TRANSLATED],
      translated64: c[DIR64 + Slot.TRANSLATED],
      dropped: c[DIR46 + Slot.DROPPED] + c[DIR64 + Slot.DROPPED],
    };
  } finally {
    polls?.close();
    devices.close();
  }
}

/**
 * Calls that (but for the slices) find nothing to do, after the rounds have given every branch of
 * the packet path its feedback: slices, wake-ups, and the loop's and devices' entry points on their
 * own. Why: the worker calls `slice` from its own (interpreted) loop, and whatever the optimised
 * `slice` does not inline it calls as a function of its own — each of those must be optimised as
 * such. Above, V8 soon
 * compiles the round loop whole ("on-stack replacement") with these inlined into it, and alone
 * they then run too rarely to be optimised. Here they are called through one megamorphic call
 * site, which inlines nothing, so each is optimised alone (checked with %GetOptimizationStatus in
 * the tests). A loop that called them by name was itself compiled first, with them inlined, as
 * soon as its own body outweighed theirs.
 */
function quietWakes(
  wakers: Waker[],
  loops: DatapathLoop[],
  d: StandIns,
  tunFeed: PacketBatch,
  scratch: PacketBatch,
  n: number,
): void {
  scratch.count = 0;
  const feedOne = d.feedTun.bind(d, tunFeed, 0, 1);
  const calls = [
    ...wakers.map((w) => w.wake.bind(w, 0)),
    ...loops.map((l, i) => l.drainBoth.bind(l, i === 0)),
    d.tun.read.bind(d.tun, scratch, 0),
    d.tun.write.bind(d.tun, scratch, 0),
    d.raw.write.bind(d.raw, scratch, 1),
    // The slices as the worker runs them, each after a packet so that its poll does not sleep.
    ...wakers.flatMap((w) => [feedOne, w.slice.bind(w, 0, 1, SLICE_IDLE_MS)]),
    d.drain.bind(d, scratch),
  ];
  // One call site for all of them, so V8 sees it megamorphic and inlines none of them here: each
  // runs, and becomes hot, as itself (a bound function calls its target directly).
  for (let k = 0; k < n * calls.length; k++) (calls[k % calls.length] as () => unknown)();
}

function ignoreClosed(): void {}

/** A batch holding `packets` round and round, so any `BUSY` consecutive ones can be fed from any start. */
function feed(packets: readonly Uint8Array[]): PacketBatch {
  const n = packets.length + BUSY;
  const b = createBatch(n, STRIDE);
  for (let i = 0; i < n; i++) {
    const p = packets[i % packets.length] as Uint8Array;
    b.offs[i] = i * STRIDE;
    b.lens[i] = p.length;
    b.data.set(p, i * STRIDE);
  }
  b.count = n;
  return b;
}

/** The pseudo-header sum of an IPv6 UDP packet, folded (what a CHECKSUM_PARTIAL packet carries). */
function udpPseudo(p: Uint8Array): number {
  return fold(pseudoSum6(p, 8, 24, PROTO_UDP, p.length - 40));
}

function clatSource(config: TranslatorConfig): number {
  const first = config.eam?.[0];
  if (first === undefined) return FALLBACK_CLAT4;
  try {
    return parsePrefix4(first.v4).addr;
  } catch {
    return FALLBACK_CLAT4;
  }
}

let nextId = 1;

/**
 * An IPv4 packet with a valid header checksum around `l4` (whose checksum the caller filled). DF
 * set and an ID, as Linux sends TCP, ping and UDP: a path the warm-up never took would cost a
 * deoptimisation on the first real packet (seen with --trace-deopt when the packets had no DF).
 */
function ipv4(proto: number, src: number, dst: number, l4: Uint8Array, df = true): Uint8Array {
  const p = new Uint8Array(20 + l4.length);
  ipv4WriteHeader(p, 0, 0, p.length, 0, 64, proto, src, dst);
  const id = nextId++ & 0xffff;
  p[4] = id >>> 8;
  p[5] = id & 0xff;
  if (df) p[6] = 0x40;
  ipv4SetChecksum(p, 0);
  p.set(l4, 20);
  return p;
}

function echo4(clat4: number, server4: number): Uint8Array {
  const m = new Uint8Array(64);
  m[0] = 8; // echo request
  m[5] = 1; // identifier 1
  m[7] = 1; // sequence 1
  for (let i = 8; i < m.length; i++) m[i] = i;
  icmp4SetChecksum(m, 0, finish(sum16(m, 0, m.length)));
  return ipv4(PROTO_ICMP, clat4, server4, m);
}

function udpDatagram(src: number, dst: number, sport: number, dport: number, size: number): Uint8Array {
  const u = new Uint8Array(size);
  setWord(u, 0, sport);
  setWord(u, 2, dport);
  setWord(u, 4, size);
  for (let i = 8; i < size; i++) u[i] = i;
  udpSetChecksum(u, 0, finish(sum16(u, 0, size, pseudoSum4(src, dst, PROTO_UDP, size))));
  return u;
}

function udp4(clat4: number, server4: number, df: boolean): Uint8Array {
  return ipv4(PROTO_UDP, clat4, server4, udpDatagram(clat4, server4, 40000, 53, 64), df);
}

function tcp4(clat4: number, server4: number): Uint8Array {
  const size = 1200;
  const t = new Uint8Array(size);
  setWord(t, 0, 40001);
  setWord(t, 2, 443);
  t[12] = 5 << 4; // data offset: 20 bytes
  t[13] = 0x18; // PSH, ACK
  setWord(t, 14, 65535);
  for (let i = 20; i < size; i++) t[i] = i;
  tcpSetChecksum(t, 0, finish(sum16(t, 0, size, pseudoSum4(clat4, server4, PROTO_TCP, size))));
  return ipv4(PROTO_TCP, clat4, server4, t);
}

/** The host refusing a UDP datagram from the server (an ICMPv4 error going out, 4→6). */
function portUnreachable4(clat4: number, server4: number): Uint8Array {
  const quoted = ipv4(PROTO_UDP, server4, clat4, udpDatagram(server4, clat4, 53, 40000, 40));
  const m = new Uint8Array(8 + quoted.length);
  m[0] = 3; // destination unreachable
  m[1] = 3; // port unreachable
  m.set(quoted, 8);
  icmp4SetChecksum(m, 0, finish(sum16(m, 0, m.length)));
  return ipv4(PROTO_ICMP, clat4, server4, m);
}

/**
 * The IPv6 side's traffic: each translated packet turned around (addresses and ports swapped, echo
 * requests made replies), and an ICMPv6 Port Unreachable from the server quoting the UDP one.
 */
function answers(translator: Translator, v4: readonly Uint8Array[]): Uint8Array[] {
  const out = createBatch(8, STRIDE);
  const v6: Uint8Array[] = [];
  for (const p of v4) {
    out.count = 0;
    if (translator.translate4(p, 0, p.length, out) !== Drop.NONE || out.count !== 1) continue;
    const q = out.data.slice(out.offs[0], out.offs[0] + out.lens[0]);
    if (q[6] === PROTO_UDP && v6.length < 8) v6.push(portUnreachable6(q));
    v6.push(turnAround(q));
  }
  return v6;
}

function turnAround(q: Uint8Array): Uint8Array {
  const r = q.slice();
  r.set(q.subarray(24, 40), 8);
  r.set(q.subarray(8, 24), 24);
  const nh = r[6];
  if (nh === PROTO_UDP || nh === PROTO_TCP) {
    r.set(q.subarray(42, 44), 40);
    r.set(q.subarray(40, 42), 42);
  } else if (nh === 58 && r[40] === 128) {
    r[40] = 129; // echo reply
    setWord(r, 42, adjust((r[42] << 8) | r[43], 0x8000, 0x8100));
  }
  return r;
}

function portUnreachable6(q: Uint8Array): Uint8Array {
  const e = new Uint8Array(48 + q.length);
  e.set(q.subarray(0, 8), 0);
  setWord(e, 4, 8 + q.length);
  e[6] = 58;
  e[7] = 64;
  e.set(q.subarray(24, 40), 8); // from the server
  e.set(q.subarray(8, 24), 24); // to the CLAT
  e[40] = 1; // destination unreachable
  e[41] = 4; // port unreachable
  e.set(q, 48);
  setWord(e, 42, finish(sum16(e, 40, 8 + q.length, pseudoSum6(e, 8, 24, 58, 8 + q.length))));
  return e;
}

function setWord(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 8;
  b[off + 1] = v & 0xff;
}
