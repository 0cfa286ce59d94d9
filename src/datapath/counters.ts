/**
 * Datapath counters in shared memory (after Jool's per-CPU `jool_mib` array): one array per worker,
 * one writer each, summed by the main thread for status and metrics without stopping any loop.
 *
 * The writer counts into a private Float64Array (exact up to 2^53) and publishes it once per batch
 * as 32-bit (lo, hi) pairs, because in the ECMAScript memory model only integer elements of at
 * most 32 bits are tear-free (Float64 is not, BigUint64 only through Atomics and a BigInt per
 * store). A sequence word makes the pairs consistent as a whole (a seqlock):
 *
 *   shared Uint32Array: | seq | pad | c0 lo | c0 hi | c1 lo | c1 hi | ...
 *
 *   writer: seq += 1 (odd: writing) ; store the changed pairs ; seq += 1 (even: stable)
 *   reader: s1 = seq ; read every pair ; s2 = seq ; retry unless s1 === s2 and s1 is even
 *
 * Every access is an Atomics operation: under the memory model, plain accesses may move across
 * the sequence updates (and a test caught exactly that with plain ones).
 *
 * Counter slots, per direction (46 = IPv4 in, 64 = IPv6 in), then I/O:
 *
 *   | 46: packets in, bytes in, translated, packets out, bytes out, icmp errors, dropped, paused, oversize,   |
 *   |     neighbor, drop[0..COUNT)                                                                             |
 *   | 64: (same)                                                                                               |
 *   | io: tun/packet read errors, tun/raw write failed, packet malformed, checksums completed, packet socket    |
 *   |     kernel drops                                                                                         |
 */
import { Drop, dropName } from '../core/xlat/drop.js';

/** Per-direction slots; a direction's block starts at {@link DIR46} or {@link DIR64}. */
export const enum Slot {
  /** Packets read from the input side. */
  PACKETS_IN = 0,
  BYTES_IN,
  /** Input packets the translator translated (Drop.NONE); every input is this, dropped, paused or oversize. */
  TRANSLATED,
  /** Translated packets handed to the other side (before the write: failures are counted in I/O). */
  PACKETS_OUT,
  BYTES_OUT,
  /**
   * Packets sent back out of the input side (Disposition.Back): the ICMP errors the translator
   * generated, and with hairpinning on (RFC 7757 §4, never for a CLAT) hairpinned 64 packets.
   */
  ICMP_ERRORS,
  /**
   * Generated ICMP errors discarded by the loop's rate limit (RFC 4443 §2.4(f); see
   * LoopOptions.icmpErrorsPerSec): a flood of untranslatable packets must not become a flood of
   * errors.
   */
  ICMP_RATE_LIMITED,
  /** Packets the translator dropped (the sum of the drop reasons). */
  DROPPED,
  /** Packets read and dropped while the datapath was paused. */
  PAUSED,
  /** Packets longer than their slot (truncated by the read): dropped before translation. */
  OVERSIZE,
  /**
   * Neighbor Solicitations / Advertisements for the CLAT address (64 only): the packet socket's
   * filter lets them through for DAD; they are not for translation, so not counted as drops.
   */
  NEIGHBOR,
  /** First of `Drop.COUNT` slots indexed by drop reason. */
  DROP_BASE,
}

/** Slots per direction. */
export const DIR_SLOTS = Slot.DROP_BASE + Drop.COUNT;
/** Block offsets of the two directions. */
export const DIR46 = 0;
export const DIR64 = DIR_SLOTS;

/** I/O slots, at {@link IO_BASE} + IoSlot, after both direction blocks. */
export const enum IoSlot {
  /** Reads of the TUN that failed with something other than "nothing ready". */
  TUN_READ_ERRORS = 0,
  /** Reads of the packet socket that failed. */
  PACKET_READ_ERRORS,
  /** Packets the TUN did not accept (EAGAIN: queue full, or an error). */
  TUN_WRITE_FAILED,
  /** Packets the raw socket did not accept (EAGAIN, ENOBUFS, an unreachable destination...). */
  RAW_WRITE_FAILED,
  /** Frames the packet socket discarded (truncated, too short, impossible checksum offsets). */
  PACKET_MALFORMED,
  /** Packets whose checksum the packet socket completed (CHECKSUM_PARTIAL from veth or offloads). */
  CSUM_COMPLETED,
  /**
   * Packets the kernel dropped because the packet socket's receive queue was full (PACKET_STATISTICS
   * tp_drops): input that never reached the loop, so in no other counter. Read at a low rate.
   */
  PACKET_KERNEL_DROPS,
  /** TCP super-packets read from the TUN (TSO) and translated once, then segmented for the raw socket. */
  TUN_TSO_IN,
  /** TCP super-packets from the packet socket translated once and written whole to the TUN. */
  TUN_TSO_OUT,
  /** Super-packets dropped in the loop: more segments than an output batch holds, or unusable headers. */
  TSO_DROPPED,
  /**
   * Loops whose TUN has virtio_net_hdr but no TSO: the kernel refused TUNSETOFFLOAD (Tun.offloadError
   * says why), so every packet crosses the TUN one by one. Not a counter: set once per loop.
   */
  TUN_TSO_REFUSED,
  /** TCP segments appended to the one before them of their flow, written to the TUN as one super-packet. */
  TUN_COALESCED,
  END,
}

export const IO_BASE = 2 * DIR_SLOTS;
/** Number of 64-bit counters per worker. */
export const COUNTER_SLOTS = IO_BASE + IoSlot.END;
/** Words before the first pair: the sequence word and one word of padding. */
const HEAD = 2;
/** 2^32, to split and join the (lo, hi) pairs. */
const TWO32 = 4294967296;
/**
 * Reader retries on one unchanged odd sequence before it takes the values as they are: a writer
 * that died mid-publish leaves the sequence odd forever. While the sequence moves, the writer is
 * alive and the reader retries until it finds a quiet moment (one batch apart, in practice).
 */
const MAX_STUCK = 100000;

/** A counter array for one worker, to hand to it (SharedArrayBuffers cross threads by reference). */
export function createCounterBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer((HEAD + 2 * COUNTER_SLOTS) * 4);
}

/**
 * The single writer of one counter array. The loop increments `acc[...]` directly (a plain local
 * array, no atomics on the packet path) and calls {@link publish} once per batch.
 */
export class CounterWriter {
  /** Running totals, indexed by `DIR46 | DIR64 + Slot` or `IO_BASE + IoSlot`. */
  readonly acc = new Float64Array(COUNTER_SLOTS);
  readonly #shared: Uint32Array;
  /** The totals as last published. */
  readonly #last = new Float64Array(COUNTER_SLOTS);

  constructor(buffer: SharedArrayBuffer) {
    if (buffer.byteLength < (HEAD + 2 * COUNTER_SLOTS) * 4)
      throw new RangeError('counter buffer too small (use createCounterBuffer)');
    this.#shared = new Uint32Array(buffer);
    // Resume from what the buffer already holds, so a restarted writer never makes totals go back.
    const s = this.#shared;
    for (let i = 0; i < COUNTER_SLOTS; i++) this.acc[i] = s[HEAD + 2 * i + 1] * TWO32 + s[HEAD + 2 * i];
    this.#last.set(this.acc);
  }

  /**
   * Copies the totals into shared memory as one consistent snapshot. Allocation-free. Only the
   * counters that changed since the last publication are stored (a handful per batch), each
   * with Atomics.store: plain stores may legally move across the sequence updates.
   */
  publish(): void {
    const s = this.#shared;
    const acc = this.acc;
    const last = this.#last;
    Atomics.add(s, 0, 1);
    for (let i = 0, w = HEAD; i < COUNTER_SLOTS; i++, w += 2) {
      const v = acc[i];
      if (v === last[i]) continue;
      last[i] = v;
      const lo = v >>> 0;
      Atomics.store(s, w, lo);
      Atomics.store(s, w + 1, (v - lo) / TWO32);
    }
    Atomics.add(s, 0, 1);
  }
}

/** Reads one worker's array as a consistent snapshot of plain numbers into `out` (summed in). */
function addSnapshot(s: Uint32Array, out: Float64Array): void {
  const tmp = new Float64Array(COUNTER_SLOTS);
  for (let stuck = 0, prev = -1; ; ) {
    const s1 = Atomics.load(s, 0);
    // Atomics.load, not plain reads: those could legally move past the second sequence load.
    for (let i = 0, w = HEAD; i < COUNTER_SLOTS; i++, w += 2)
      tmp[i] = Atomics.load(s, w + 1) * TWO32 + Atomics.load(s, w);
    const s2 = Atomics.load(s, 0);
    if (s1 === s2 && (s1 & 1) === 0) break;
    stuck = s1 === prev && s1 === s2 ? stuck + 1 : 0;
    if (stuck >= MAX_STUCK) break;
    prev = s1;
  }
  for (let i = 0; i < COUNTER_SLOTS; i++) out[i] += tmp[i];
}

/** One direction of a {@link CounterSnapshot}. `packets`/`bytes` count input. */
export interface DirectionCounters {
  packets: number;
  bytes: number;
  /** Inputs translated; `packets === translated + dropped + paused + oversize + neighbor`. */
  translated: number;
  packetsOut: number;
  bytesOut: number;
  /** Back packets: generated ICMP errors (and hairpinned packets, when hairpinning is on). */
  icmpErrors: number;
  /** Generated ICMP errors discarded by the rate limit (not in `icmpErrors`). */
  icmpRateLimited: number;
  /** Translator drops, the sum of `drops`. */
  dropped: number;
  paused: number;
  oversize: number;
  /** Neighbor Discovery messages seen by the packet socket and left alone (64 only). */
  neighbor: number;
  /** Translator drops by reason name (`dropName`); every reason that applies to the direction, zeros included. */
  drops: Record<string, number>;
}

export interface IoCounters {
  tunReadErrors: number;
  packetReadErrors: number;
  tunWriteFailed: number;
  rawWriteFailed: number;
  packetMalformed: number;
  csumCompleted: number;
  /** IPv6 packets the kernel dropped in front of the packet sockets (their receive queues were full). */
  packetKernelDrops: number;
  /** TCP super-packets read whole from the TUN (its TSO offload) and translated once. */
  tunTsoIn: number;
  /** TCP super-packets translated once and written whole to the TUN. */
  tunTsoOut: number;
  /** Super-packets the loop could not carry (more segments than an output batch holds, bad headers). */
  tsoDropped: number;
  /** Loops whose TUN runs without TSO because the kernel refused it (0 normally). */
  tunTsoRefused: number;
  /** TCP segments merged into the one before them of their flow before the TUN (the uplink delivered them without GRO). */
  tunCoalesced: number;
}

/** All workers' counters summed. Keys `46` and `64` follow the project's direction names. */
export interface CounterSnapshot {
  '46': DirectionCounters;
  '64': DirectionCounters;
  io: IoCounters;
}

/**
 * Whether a drop reason can happen in a direction: reasons named `v6_…` only for IPv6 input and
 * `v4_…` only for IPv4 input (the D64_/D46_ prefixes of drop.ts), the others in both.
 */
function appliesTo(d: number, dir: '46' | '64'): boolean {
  const name = dropName(d);
  return dir === '46' ? !name.startsWith('v6_') : !name.startsWith('v4_');
}

function direction(t: Float64Array, base: number, dir: '46' | '64'): DirectionCounters {
  const drops: Record<string, number> = {};
  for (let d = 1; d < Drop.COUNT; d++) if (appliesTo(d, dir)) drops[dropName(d)] = t[base + Slot.DROP_BASE + d];
  return {
    packets: t[base + Slot.PACKETS_IN],
    bytes: t[base + Slot.BYTES_IN],
    translated: t[base + Slot.TRANSLATED],
    packetsOut: t[base + Slot.PACKETS_OUT],
    bytesOut: t[base + Slot.BYTES_OUT],
    icmpErrors: t[base + Slot.ICMP_ERRORS],
    icmpRateLimited: t[base + Slot.ICMP_RATE_LIMITED],
    dropped: t[base + Slot.DROPPED],
    paused: t[base + Slot.PAUSED],
    oversize: t[base + Slot.OVERSIZE],
    neighbor: t[base + Slot.NEIGHBOR],
    drops,
  };
}

/** Sums the counter arrays of all workers into a plain object. Runs beside the writers, never stops them. */
export function readCounters(buffers: readonly SharedArrayBuffer[]): CounterSnapshot {
  const t = new Float64Array(COUNTER_SLOTS);
  for (const b of buffers) addSnapshot(new Uint32Array(b), t);
  return {
    '46': direction(t, DIR46, '46'),
    '64': direction(t, DIR64, '64'),
    io: {
      tunReadErrors: t[IO_BASE + IoSlot.TUN_READ_ERRORS],
      packetReadErrors: t[IO_BASE + IoSlot.PACKET_READ_ERRORS],
      tunWriteFailed: t[IO_BASE + IoSlot.TUN_WRITE_FAILED],
      rawWriteFailed: t[IO_BASE + IoSlot.RAW_WRITE_FAILED],
      packetMalformed: t[IO_BASE + IoSlot.PACKET_MALFORMED],
      csumCompleted: t[IO_BASE + IoSlot.CSUM_COMPLETED],
      packetKernelDrops: t[IO_BASE + IoSlot.PACKET_KERNEL_DROPS],
      tunTsoIn: t[IO_BASE + IoSlot.TUN_TSO_IN],
      tunTsoOut: t[IO_BASE + IoSlot.TUN_TSO_OUT],
      tsoDropped: t[IO_BASE + IoSlot.TSO_DROPPED],
      tunTsoRefused: t[IO_BASE + IoSlot.TUN_TSO_REFUSED],
      tunCoalesced: t[IO_BASE + IoSlot.TUN_COALESCED],
    },
  };
}
