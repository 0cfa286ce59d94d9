/**
 * `npm run bench:core`: the translator's cost on one core, without the kernel. For each direction
 * and packet kind, packets are translated from an input batch into an output batch over one arena
 * (as the datapath does) and timed; a second pass runs the same packets through the whole
 * DatapathLoop (batching, routing, counters) over I/O objects that do no system calls.
 *
 *   node dist/bench/core.js [--seconds S] [--json]
 *
 * Each figure is the best of three timed runs after a warm-up (the least disturbed by other load).
 */
import { performance } from 'node:perf_hooks';
import { createBatch, type PacketBatch } from '../src/core/batch.js';
import type { TranslatorConfig } from '../src/core/xlat/config.js';
import { Drop, dropName } from '../src/core/xlat/drop.js';
import { Translator } from '../src/core/xlat/translator.js';
import { CounterWriter, createCounterBuffer } from '../src/datapath/counters.js';
import { DatapathLoop, HEADROOM } from '../src/datapath/loop.js';
import type { PacketIo } from '../src/sys/io.js';
import { checksumProblems, ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../test/pkt/build.js';

const CLAT4 = '192.0.0.4';
const CLAT6 = '2001:db8:1::4';
const SERVER4 = '192.0.2.1';
const SERVER6 = '64:ff9b::c000:201';
const CONFIG: TranslatorConfig = {
  pool6: '64:ff9b::/96',
  eam: [{ v4: `${CLAT4}/32`, v6: `${CLAT6}/128` }],
  ownV4: CLAT4,
  ownV6: CLAT6,
  hairpin: false,
  wkpGlobalOnly: false,
};
const BATCH = 64;
const STRIDE = 2048;

interface Case {
  name: string;
  dir: '46' | '64';
  packet: Uint8Array;
}

const bytes = (n: number, v: number) => new Uint8Array(Math.max(0, n)).fill(v);

/** An ICMP error (type, code) from `src` to `dst` quoting `inner`, with its checksum. */
function icmp4Error(src: string, dst: string, type: number, code: number, inner: Uint8Array): Uint8Array {
  const p = ipv4Packet({ src, dst }, { proto: PROTO_ICMP, sport: 0, dport: 0, payload: inner });
  return withIcmpTypeCode(p, 20, type, code, false);
}

function icmp6Error(src: string, dst: string, type: number, code: number, inner: Uint8Array): Uint8Array {
  const p = ipv6Packet({ src, dst }, { proto: PROTO_ICMP, sport: 0, dport: 0, payload: inner });
  return withIcmpTypeCode(p, 40, type, code, true);
}

/**
 * The builder makes echo requests (type 8 / 128, with id and sequence in the next 4 bytes); turn
 * one into an error by changing type and code, zeroing the unused word, and fixing the checksum
 * incrementally (RFC 1624: every changed 16-bit word's difference is added).
 */
function withIcmpTypeCode(p: Uint8Array, o: number, type: number, code: number, v6: boolean): Uint8Array {
  const word = (i: number) => (p[i] << 8) | p[i + 1];
  const before = [word(o), word(o + 4), word(o + 6)];
  p[o] = type;
  p[o + 1] = code;
  p.fill(0, o + 4, o + 8);
  const after = [word(o), word(o + 4), word(o + 6)];
  let c = ~word(o + 2) & 0xffff;
  for (let k = 0; k < 3; k++) c += (~before[k] & 0xffff) + after[k];
  while (c > 0xffff) c = (c & 0xffff) + (c >>> 16);
  c = ~c & 0xffff;
  p[o + 2] = c >>> 8;
  p[o + 3] = c & 0xff;
  if (checksumProblems(p).length > 0) throw new Error(`bench: bad ICMP${v6 ? 'v6' : ''} error packet`);
  return p;
}

function cases(): Case[] {
  const udp4 = ipv4Packet(
    { src: CLAT4, dst: SERVER4 },
    { proto: PROTO_UDP, sport: 40000, dport: 9, payload: bytes(64 - 28, 1) },
  );
  const udp6 = ipv6Packet(
    { src: SERVER6, dst: CLAT6 },
    { proto: PROTO_UDP, sport: 9, dport: 40000, payload: bytes(64 - 48, 1) },
  );
  const tcp4 = ipv4Packet(
    { src: CLAT4, dst: SERVER4 },
    { proto: PROTO_TCP, sport: 40001, dport: 80, payload: bytes(1480 - 40, 2) },
  );
  const tcp6 = ipv6Packet(
    { src: SERVER6, dst: CLAT6 },
    { proto: PROTO_TCP, sport: 80, dport: 40001, payload: bytes(1500 - 60, 2) },
  );
  const echo4 = ipv4Packet(
    { src: CLAT4, dst: SERVER4 },
    { proto: PROTO_ICMP, sport: 7, dport: 1, payload: bytes(56, 3) },
  );
  const echo6 = ipv6Packet(
    { src: SERVER6, dst: CLAT6 },
    { proto: PROTO_ICMP, sport: 7, dport: 1, payload: bytes(56, 3) },
  );
  // Port unreachable from the host about a UDP packet the server sent it, and the other way round.
  const inner4 = ipv4Packet(
    { src: SERVER4, dst: CLAT4 },
    { proto: PROTO_UDP, sport: 9, dport: 40000, payload: bytes(32, 4) },
  );
  const inner6 = ipv6Packet(
    { src: CLAT6, dst: SERVER6 },
    { proto: PROTO_UDP, sport: 40000, dport: 9, payload: bytes(32, 4) },
  );
  return [
    { name: 'UDP 64 B', dir: '46', packet: udp4 },
    { name: 'TCP 1500 B (as IPv6)', dir: '46', packet: tcp4 },
    { name: 'ICMP echo', dir: '46', packet: echo4 },
    { name: 'ICMP error', dir: '46', packet: icmp4Error(CLAT4, SERVER4, 3, 3, inner4) },
    { name: 'UDP 64 B', dir: '64', packet: udp6 },
    { name: 'TCP 1500 B (as IPv6)', dir: '64', packet: tcp6 },
    { name: 'ICMP echo', dir: '64', packet: echo6 },
    { name: 'ICMP error', dir: '64', packet: icmp6Error(SERVER6, CLAT6, 1, 4, inner6) },
  ];
}

/** An input batch of BATCH copies of `packet` and an output batch, in one arena. */
function batches(packet: Uint8Array): { inb: PacketBatch; out: PacketBatch } {
  const arena = new Uint8Array(3 * BATCH * STRIDE);
  const inb = createBatch(BATCH, STRIDE, arena, 0);
  const out = createBatch(2 * BATCH, STRIDE, arena, BATCH * STRIDE);
  for (let i = 0; i < BATCH; i++) {
    inb.offs[i] = inb.base + i * STRIDE + HEADROOM;
    inb.lens[i] = packet.length;
    arena.set(packet, inb.offs[i]);
  }
  inb.count = BATCH;
  return { inb, out };
}

/** Checks that the case translates (Drop.NONE, one Forward packet with good checksums). */
function check(t: Translator, c: Case): void {
  const { inb, out } = batches(c.packet);
  const d =
    c.dir === '46'
      ? t.translate4(inb.data, inb.offs[0], inb.lens[0], out)
      : t.translate6(inb.data, inb.offs[0], inb.lens[0], out);
  if (d !== Drop.NONE) throw new Error(`${c.dir} ${c.name}: dropped as ${dropName(d)}`);
  if (out.count !== 1 || out.disp[0] !== 0) throw new Error(`${c.dir} ${c.name}: ${out.count} outputs`);
  const p = out.data.subarray(out.offs[0], out.offs[0] + out.lens[0]);
  const problems = checksumProblems(p);
  if (problems.length > 0) throw new Error(`${c.dir} ${c.name}: ${problems.join(', ')}`);
}

/** Translates `rounds` batches; returns ns per packet. */
function timeTranslate(t: Translator, c: Case, rounds: number): number {
  const { inb, out } = batches(c.packet);
  const data = inb.data;
  const offs = inb.offs;
  const lens = inb.lens;
  const v4 = c.dir === '46';
  let sink = 0;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    out.count = 0;
    for (let i = 0; i < BATCH; i++) {
      sink += v4 ? t.translate4(data, offs[i], lens[i], out) : t.translate6(data, offs[i], lens[i], out);
    }
  }
  const ns = ((performance.now() - t0) * 1e6) / (rounds * BATCH);
  if (sink !== 0) throw new Error(`${c.dir} ${c.name}: drops during the run`);
  return ns;
}

/** PacketIo without system calls: `read` hands out the same pre-filled batch, `write` accepts all. */
class NullIo implements PacketIo {
  readonly fd = -1;
  readonly batchSize = BATCH;
  #packet: Uint8Array | undefined;
  constructor(packet?: Uint8Array) {
    this.#packet = packet;
  }
  read(into: PacketBatch, headroom: number): number {
    const p = this.#packet;
    if (!p) return 0;
    if (into.lens[BATCH - 1] !== p.length) {
      for (let i = 0; i < BATCH; i++) into.data.set(p, into.base + i * into.stride + headroom);
    }
    for (let i = 0; i < BATCH; i++) {
      into.offs[i] = into.base + i * into.stride + headroom;
      into.lens[i] = p.length;
    }
    into.count = BATCH;
    return BATCH;
  }
  write(from: PacketBatch, disp?: number): number {
    let n = 0;
    for (let i = 0; i < from.count; i++) if (disp === undefined || from.disp[i] === disp) n++;
    return n;
  }
  close(): void {}
}

/** The whole loop (read, translate, route, write, count) over NullIo; returns ns per packet. */
function timeLoop(t: Translator, c: Case, wakes: number): number {
  const v4 = c.dir === '46';
  const feed = new NullIo(c.packet);
  const none = new NullIo();
  const io = v4 ? { tun: feed, packet: none, raw: none } : { tun: none, packet: feed, raw: none };
  const loop = new DatapathLoop(t, io, new CounterWriter(createCounterBuffer()), {
    stride: STRIDE,
    maxBatchesPerWake: 8,
  });
  const wake = v4 ? loop.tunReadable : loop.packetReadable;
  const t0 = performance.now();
  for (let w = 0; w < wakes; w++) wake();
  return ((performance.now() - t0) * 1e6) / (wakes * 8 * BATCH);
}

function best(f: () => number): number {
  return Math.min(f(), f(), f());
}

function main(): void {
  const args = process.argv.slice(2);
  const seconds = Number(args[args.indexOf('--seconds') + 1]) || 0.5;
  const json = args.includes('--json');
  const t = new Translator(CONFIG);
  const rows: {
    dir: string;
    kind: string;
    bytes: number;
    nsPerPacket: number;
    mpps: number;
    loopNs: number;
    loopMpps: number;
  }[] = [];
  for (const c of cases()) {
    check(t, c);
    // Calibrate the round count to about `seconds` per timed run.
    timeTranslate(t, c, 2000);
    const probe = timeTranslate(t, c, 2000);
    const rounds = Math.max(100, Math.round((seconds * 1e9) / (probe * BATCH)));
    const ns = best(() => timeTranslate(t, c, rounds));
    timeLoop(t, c, 200);
    const loopNs = best(() => timeLoop(t, c, Math.max(20, Math.round(rounds / 8))));
    rows.push({
      dir: c.dir,
      kind: c.name,
      bytes: c.packet.length,
      nsPerPacket: Math.round(ns),
      mpps: Number((1e3 / ns).toFixed(2)),
      loopNs: Math.round(loopNs),
      loopMpps: Number((1e3 / loopNs).toFixed(2)),
    });
  }
  if (json) {
    console.log(JSON.stringify({ node: process.version, date: new Date().toISOString(), rows }, null, 2));
    return;
  }
  console.log(`clatd core benchmark — Node ${process.version}, one core, batch ${BATCH}, best of 3\n`);
  console.log('| dir | packet | bytes | translate ns/pkt | Mpps | loop ns/pkt | loop Mpps |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows)
    console.log(`| ${r.dir} | ${r.kind} | ${r.bytes} | ${r.nsPerPacket} | ${r.mpps} | ${r.loopNs} | ${r.loopMpps} |`);
}

main();
