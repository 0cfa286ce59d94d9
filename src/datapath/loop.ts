/**
 * The per-worker packet loop: pure logic over three {@link PacketIo} objects, so the same code runs
 * in a worker over real devices and in tests over in-memory fakes (after wireguard-go's
 * `RoutineReadFromTUN` / `RoutineReceiveIncoming`, one owner per loop, nothing shared but counters).
 *
 *   TUN readable:           read a batch → translate4 each → Forward to raw socket, Back to TUN
 *   packet socket readable: read a batch → translate6 each → Forward to TUN, Back to raw socket
 *
 * The poll is level-triggered, so each wake-up does at most `maxBatchesPerWake` batches and returns:
 * the other direction gets its turn and the poll calls again while data remains.
 *
 * With offloads (a `vnet` TUN, see sys/tun.ts) each input slot also has a virtio_net_hdr
 * (core/vnet.ts). A TCP super-packet from the packet socket is translated once and written whole
 * to the TUN with its own header (core/gso-xlat.ts): the kernel delivers it whole to the local
 * socket, or segments it when it forwards it. One from the TUN is translated once too, but then
 * segmented here: the raw socket refuses anything above the MTU (rawv6_send_hdrinc, EMSGSIZE), and
 * the packet socket, which would take a GSO frame, sends past routing and netfilter (the NAT66 of
 * address mode 5, and the host's firewall, must see what the CLAT sends). Partial checksums of
 * other packets from the TUN are completed before translation, and consecutive TCP segments of one
 * stream toward the TUN are coalesced into one super-packet (core/gro.ts).
 *
 * Allocation: one arena holds the input batch and the output batch (so the translator copies with
 * `copyWithin`), and both handlers are bound once here. Nothing per packet or per batch, except
 * one clock reading per batch that generates ICMP errors (icmp-budget.ts);
 * test/datapath/no-alloc.test.ts checks it.
 */
import { createBatch, DEFAULT_STRIDE, Disposition, type PacketBatch } from '../core/batch.js';
import { coalescable4, coalesce4 } from '../core/gro.js';
import { GSO_TCP, gsoSplit, gsoSplitFront } from '../core/gso.js';
import { completeChecksum, TCP_CSUM_OFFSET, translateSuper46, translateSuper64 } from '../core/gso-xlat.js';
import {
  createVnetHeaders,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  vnetClear,
  vnetCsumOffset,
  vnetCsumStart,
  vnetFlags,
  vnetGsoSize,
  vnetGsoType,
  vnetSet,
} from '../core/vnet.js';
import { Drop } from '../core/xlat/drop.js';
import { ClosedError } from '../sys/errors.js';
import type { PacketIo } from '../sys/io.js';
import { type CounterWriter, DIR46, DIR64, IO_BASE, IoSlot, Slot } from './counters.js';
import { DEFAULT_ICMP_ERROR_BURST, DEFAULT_ICMP_ERRORS_PER_SEC, IcmpErrorBudget, isIcmpError } from './icmp-budget.js';
import type { LoopIo, LoopOptions, PacketTranslator } from './loop-io.js';

export { DEFAULT_ICMP_ERROR_BURST, DEFAULT_ICMP_ERRORS_PER_SEC };

/**
 * Bytes kept free in front of each packet read: IPv6 is 20 bytes longer than IPv4 (28 with a
 * Fragment header), so a translator may build the IPv6 header in front of the payload in place.
 */
export const HEADROOM = 32;
/**
 * Output slots kept free beyond one input batch: the most packets one input may produce (an
 * IPv4 packet of 64 KiB fragmented for the 1280-byte IPv6 minimum MTU gives 54, plus an error).
 */
export const OUTPUT_RESERVE = 64;
// No input slots are kept free for GSO segments on purpose. With the TUN's TSO, TCP super-packets
// are not split at all (they go to the TUN whole, with a virtio_net_hdr). Without it, one the
// packet socket finds no room to split goes on whole, one valid IPv4 packet of up to 64 KiB that
// the TUN delivers to this host (translator-config.ts), which kept the TCP download fast before
// the offloads (bench/README.md: forcing every split with 64 spare slots halved it). A UDP
// super-packet without room is dropped and counted (gsoDropped).
const IPV6_HLEN = 40;
const IPV4_HLEN = 20;
/** Default cap on batches per wake-up, so one busy direction cannot starve the other. */
export const DEFAULT_MAX_BATCHES_PER_WAKE = 8;
/**
 * An ICMPv6 Neighbor Solicitation or Advertisement (RFC 4861 §4.3, §4.4; never with extension
 * headers). The packet socket's filter passes those for the CLAT address so DAD can see them; the
 * kernel answers them (anycast), and the translator must not count them as drops.
 */
function isNeighborDiscovery(d: Uint8Array, off: number, len: number): boolean {
  if (len < 41 || d[off + 6] !== 58) return false;
  const type = d[off + 40];
  return type === 135 || type === 136;
}

/** Consecutive failed reads after which a side is given up. */
export const MAX_READ_FAILURES = 1000;

/** Which input side a loop lost. */
export type Side = 'tun' | 'packet';

/** Reads, translates, writes and counts; see the file comment. One instance per worker. */
export class DatapathLoop {
  /** While true, input is read and dropped (counted as `paused`), so the kernel queues never fill. */
  paused = false;
  /** Set once a side's read reports it closed; that side's handler then does nothing. */
  tunClosed = false;
  packetClosed = false;
  /** The last unexpected exception caught on the packet path (counted, never rethrown). */
  lastError: unknown = undefined;
  /**
   * Called once when a side is given up: its read threw {@link ClosedError}, or failed
   * {@link MAX_READ_FAILURES} times in a row (a level-triggered poll would otherwise spin on it).
   * The worker stops that side's poll and reports.
   */
  onClosed: ((side: Side, err: unknown) => void) | undefined = undefined;

  /**
   * Runs right before each publication of the counters (the worker folds in the system layer's
   * own error counts). Set once; it receives the loop's counter array.
   */
  beforePublish: ((acc: Float64Array) => void) | undefined = undefined;

  /** Drains the TUN (bounded). Returns true when it stopped at the cap with input possibly left. */
  readonly tunReadable: () => boolean;
  /** Drains the packet socket (bounded). Returns true when it stopped at the cap. */
  readonly packetReadable: () => boolean;

  #translator: PacketTranslator;
  /**
   * The three sides, held here rather than as the caller's `io` object: the packet path then
   * depends on this class's shape only. (Each caller builds its `io` at its own object literal; V8
   * gave those the same hidden class but threw the loop's optimised code away when the real one
   * was first built after the warm-up's: "code dependencies".)
   */
  readonly #tun: PacketIo;
  readonly #packet: PacketIo;
  readonly #raw: PacketIo;
  readonly #c: Float64Array;
  readonly #counters: CounterWriter;
  readonly #in: PacketBatch;
  readonly #out: PacketBatch;
  /** Flush the output batch before a translation once it holds more than this many packets. */
  readonly #flushAt: number;
  readonly #maxBatches: number;
  /** Forward / Back packets in the output batch not yet written. */
  #pendingForward = 0;
  #pendingBack = 0;
  #tunFailures = 0;
  #packetFailures = 0;
  readonly #icmpBudget: IcmpErrorBudget;
  /** Headers of the input slots, read along (undefined: no side gives any). */
  readonly #inVnet: Uint8Array | undefined;
  /** Headers of the output slots, written to a `vnet` TUN with them. */
  readonly #outVnet: Uint8Array | undefined;
  readonly #tunVnet: boolean;
  readonly #keepSupers: boolean;

  constructor(translator: PacketTranslator, io: LoopIo, counters: CounterWriter, opts: LoopOptions = {}) {
    this.#translator = translator;
    this.#tun = io.tun;
    this.#packet = io.packet;
    this.#raw = io.raw;
    this.#counters = counters;
    this.#c = counters.acc;
    const stride = opts.stride ?? DEFAULT_STRIDE;
    if (stride <= HEADROOM) throw new RangeError(`stride ${stride} leaves no room after the headroom`);
    const inCap = Math.max(io.tun.batchSize, io.packet.batchSize);
    const outCap = inCap + OUTPUT_RESERVE;
    const arena = new Uint8Array((inCap + outCap) * stride);
    this.#in = createBatch(inCap, stride, arena, 0);
    this.#out = createBatch(outCap, stride, arena, inCap * stride);
    this.#flushAt = outCap - OUTPUT_RESERVE;
    this.#tunVnet = opts.tunVnet === true;
    // A TUN with virtio_net_hdr takes GSO packets from its writer whatever offloads it has.
    this.#keepSupers = this.#tunVnet;
    this.#inVnet = this.#tunVnet ? createVnetHeaders(inCap) : undefined;
    this.#outVnet = this.#tunVnet ? createVnetHeaders(outCap) : undefined;
    if (this.#tunVnet && opts.tunTso !== true) this.#c[IO_BASE + IoSlot.TUN_TSO_REFUSED] = 1;
    this.#maxBatches = opts.maxBatchesPerWake ?? DEFAULT_MAX_BATCHES_PER_WAKE;
    this.#icmpBudget = new IcmpErrorBudget(
      opts.icmpErrorsPerSec ?? DEFAULT_ICMP_ERRORS_PER_SEC,
      opts.icmpErrorBurst ?? DEFAULT_ICMP_ERROR_BURST,
      opts.now ?? (() => performance.now()),
    );
    this.tunReadable = () => this.#drain(true);
    this.packetReadable = () => this.#drain(false);
  }

  /** Swaps the translator (a new configuration). Safe between batches, which is whenever this runs. */
  setTranslator(t: PacketTranslator): void {
    this.#translator = t;
  }

  get translator(): PacketTranslator {
    return this.#translator;
  }

  /**
   * Drains both sides (bounded), `tunFirst` deciding the order, and publishes the counters once:
   * what a worker does on each wake-up. An answer to what one side just sent is often queued on
   * the other already (the kernel delivers it inline, within the send), and taking it at once,
   * with no poll and no publication in between, keeps the round trip short. `light` (a wake-up
   * after a sleep, see Waker.wake): one read of one packet from the TUN, no more.
   */
  drainBoth(tunFirst: boolean, light = false): void {
    this.#drainSide(tunFirst, light);
    this.#drainSide(!tunFirst, light);
    this.#publish();
  }

  #drain(v4: boolean): boolean {
    const more = this.#drainSide(v4, false);
    // Once per wake-up: failures absorbed by the system layer show up even when nothing was read.
    this.#publish();
    return more;
  }

  #drainSide(v4: boolean, light: boolean): boolean {
    if (v4 ? this.tunClosed : this.packetClosed) return false;
    const full = v4 ? this.#tun.batchSize : this.#packet.batchSize;
    const limit = light && v4 ? 1 : full;
    let more = true;
    for (let n = 0; n < this.#maxBatches; n++) {
      // A short batch means the read met EAGAIN: the queue is empty, so skip the read that would
      // only say so again (the poll calls back when more arrives).
      if (this.#batch(v4, limit) < full) {
        more = false;
        break;
      }
    }
    return more;
  }

  /**
   * Publishes the counters outside a wake-up (the loop publishes after each one itself): for the
   * counts the system layer reads at a low rate, e.g. the packet socket's kernel drops while idle.
   */
  publish(): void {
    this.#publish();
  }

  #publish(): void {
    this.beforePublish?.(this.#c);
    this.#counters.publish();
  }

  /** One batch from one side: read, translate, write (the caller publishes). Returns packets read. */
  #batch(v4: boolean, limit: number): number {
    const src = v4 ? this.#tun : this.#packet;
    const inb = this.#in;
    inb.count = 0;
    this.#icmpBudget.newBatch();
    let n: number;
    try {
      // One call site, one arity: the packet socket gets the header array only to keep super-packets.
      n = src.read(inb, HEADROOM, limit, v4 || this.#keepSupers ? this.#inVnet : undefined);
    } catch (e) {
      this.#readFailed(v4, e);
      return 0;
    }
    if (v4) this.#tunFailures = 0;
    else this.#packetFailures = 0;
    if (n === 0) return 0;

    const c = this.#c;
    const base = v4 ? DIR46 : DIR64;
    const data = inb.data;
    const stride = inb.stride;
    const out = this.#out;
    const t = this.#translator;
    let packets = 0;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const len = inb.lens[i];
      if (len === 0) continue;
      packets++;
      bytes += len;
      const off = inb.offs[i];
      if (off + len > inb.base + (i + 1) * stride) {
        c[base + Slot.OVERSIZE]++;
        continue;
      }
      if (!v4 && isNeighborDiscovery(data, off, len)) {
        c[base + Slot.NEIGHBOR]++;
        continue;
      }
      if (this.paused) {
        c[base + Slot.PAUSED]++;
        continue;
      }
      if (out.count > this.#flushAt) this.#flush(v4);
      let before = out.count;
      this.#superOut = -1;
      let d: Drop;
      try {
        const iv = this.#inVnet;
        const gso = iv === undefined || (!v4 && !this.#keepSupers) ? VNET_GSO_NONE : vnetGsoType(iv, i);
        if (gso !== VNET_GSO_NONE) {
          d = v4 ? this.#super46(iv as Uint8Array, i, off, len) : this.#super64(iv as Uint8Array, i, off, len);
          before = this.#superAt;
        } else {
          if (v4 && iv !== undefined && (vnetFlags(iv, i) & VNET_F_NEEDS_CSUM) !== 0) {
            // Not a super-packet, checksum partial: completed, so the translator sees a whole packet.
            const l4 = off + vnetCsumStart(iv, i);
            const co = vnetCsumOffset(iv, i);
            if (l4 + co + 2 <= off + len) completeChecksum(data, l4, co, off + len);
          }
          d = v4 ? t.translate4(data, off, len, out) : t.translate6(data, off, len, out);
        }
      } catch (e) {
        // The translator never throws on packet input; if it does anyway, count it, never die.
        this.lastError = e;
        d = Drop.UNKNOWN;
        out.count = before;
      }
      if (d === Drop.NONE) c[base + Slot.TRANSLATED]++;
      else {
        c[base + Slot.DROPPED]++;
        c[base + Slot.DROP_BASE + d]++;
      }
      const ov = this.#outVnet;
      for (let j = before; j < out.count; j++) {
        // Every packet to a `vnet` TUN has a header: plain ones a cleared one.
        if (ov !== undefined && j !== this.#superOut) vnetClear(ov, j);
        if (out.disp[j] === Disposition.Forward) {
          c[base + Slot.PACKETS_OUT]++;
          c[base + Slot.BYTES_OUT] += out.lens[j];
          if (!v4 && ov !== undefined && this.#coalesce(ov, j)) continue;
          this.#pendingForward++;
        } else if (
          this.#icmpBudget.limited &&
          isIcmpError(out.data, out.offs[j], out.lens[j]) &&
          !this.#icmpBudget.take(v4 ? 0 : 1)
        ) {
          out.lens[j] = 0; // every write skips an empty slot
          c[base + Slot.ICMP_RATE_LIMITED]++;
        } else {
          this.#pendingBack++;
          c[base + Slot.ICMP_ERRORS]++;
        }
      }
    }
    c[base + Slot.PACKETS_IN] += packets;
    c[base + Slot.BYTES_IN] += bytes;
    this.#flush(v4);
    return n;
  }

  /** The output slot (toward the TUN) that the next segment of its flow may be appended to, or -1. */
  #groSlot = -1;

  /**
   * Appends the TCP segment in output slot `j` to the one before it of the same flow when it
   * continues it (core/gro.ts), for a TUN with virtio_net_hdr: one write and one packet for the
   * local stack instead of many, where the uplink delivered a stream without GRO. Only the last
   * candidate is kept, so nothing is ever moved past a packet of its own flow. True when merged.
   */
  #coalesce(ov: Uint8Array, j: number): boolean {
    const out = this.#out;
    if (j === this.#superOut || !coalescable4(out, j)) {
      this.#groSlot = -1;
      return false;
    }
    const k = this.#groSlot;
    if (k >= 0 && coalesce4(out, ov, k, j)) {
      this.#c[IO_BASE + IoSlot.TUN_COALESCED]++;
      return true;
    }
    this.#groSlot = j;
    return false;
  }

  /** First output slot of the last super-packet's results (the caller counts from there). */
  #superAt = 0;
  /** The output slot that holds a super-packet for the TUN with its own header, or -1. */
  #superOut = -1;

  /**
   * A TCP super-packet read from the TUN: translated once, then segmented in the output batch
   * (the raw socket takes no GSO), flushing first when its segments would not fit.
   */
  #super46(iv: Uint8Array, i: number, off: number, len: number): Drop {
    const c = this.#c;
    const out = this.#out;
    const data = this.#in.data;
    const gsoSize = vnetGsoSize(iv, i);
    const ihl = (data[off] & 15) * 4;
    const th = len > ihl + 12 ? (data[off + ihl + 12] >> 4) * 4 : 0;
    const payload = len - ihl - th;
    const segs = gsoSize > 0 && payload > 0 ? Math.ceil(payload / gsoSize) : 0;
    if ((vnetGsoType(iv, i) & ~VNET_GSO_ECN) !== VNET_GSO_TCPV4 || segs === 0) {
      c[IO_BASE + IoSlot.TSO_DROPPED]++;
      this.#superAt = out.count;
      return Drop.D46_L4_TRUNCATED;
    }
    // Room for every segment and an ICMP error.
    if (out.count + segs + 1 > out.capacity) this.#flush(true);
    const before = out.count;
    this.#superAt = before;
    const d = translateSuper46(this.#translator, data, off, len, gsoSize, out);
    if (d !== Drop.NONE) return d;
    // More segments than the output batch holds (a small MSS): the front ones go out first, a
    // batch at a time, while the rest waits in slot 0 (before is 0 after the flush above).
    let left = segs;
    while (left > out.capacity) {
      const n = out.capacity - 1;
      if (gsoSplitFront(out, before, IPV6_HLEN, gsoSize, before + 1, n) !== n) {
        out.count = before;
        c[IO_BASE + IoSlot.TSO_DROPPED]++;
        return Drop.OUTPUT_FULL;
      }
      const rest = out.lens[before];
      out.lens[before] = 0; // not written with them
      out.count = before + 1 + n;
      for (let j = before + 1; j < out.count; j++) c[DIR46 + Slot.BYTES_OUT] += out.lens[j];
      c[DIR46 + Slot.PACKETS_OUT] += n;
      this.#pendingForward += n;
      this.#flush(true);
      out.lens[before] = rest;
      out.count = before + 1;
      left -= n;
    }
    const made = gsoSplit(out, before, IPV6_HLEN, GSO_TCP, gsoSize, out.count);
    if (made < 0) {
      out.count = before;
      c[IO_BASE + IoSlot.TSO_DROPPED]++;
      return Drop.OUTPUT_FULL;
    }
    out.count += made;
    c[IO_BASE + IoSlot.TUN_TSO_IN]++;
    return Drop.NONE;
  }

  /** A TCP super-packet kept whole by the packet socket: translated once, to the TUN with its header. */
  #super64(iv: Uint8Array, i: number, off: number, len: number): Drop {
    const out = this.#out;
    const before = out.count;
    this.#superAt = before;
    const gsoType = vnetGsoType(iv, i);
    const gsoSize = vnetGsoSize(iv, i);
    const d = translateSuper64(this.#translator, this.#in.data, off, len, gsoSize, out);
    if (d !== Drop.NONE) return d;
    const th = (out.data[out.offs[before] + IPV4_HLEN + 12] >> 4) * 4;
    vnetSet(
      this.#outVnet as Uint8Array,
      before,
      VNET_F_NEEDS_CSUM,
      VNET_GSO_TCPV4 | (gsoType & VNET_GSO_ECN),
      IPV4_HLEN + th,
      gsoSize,
      IPV4_HLEN,
      TCP_CSUM_OFFSET,
    );
    this.#superOut = before;
    this.#c[IO_BASE + IoSlot.TUN_TSO_OUT]++;
    return Drop.NONE;
  }

  /** Writes the output batch: Forward out of the other side, Back out of the input side. */
  #flush(v4: boolean): void {
    const out = this.#out;
    if (out.count === 0) return;
    const fwd = this.#pendingForward;
    const back = this.#pendingBack;
    if (fwd > 0) {
      const to = v4 ? this.#raw : this.#tun;
      this.#write(to, fwd, Disposition.Forward, v4 ? IoSlot.RAW_WRITE_FAILED : IoSlot.TUN_WRITE_FAILED);
    }
    if (back > 0) {
      const to = v4 ? this.#tun : this.#raw;
      this.#write(to, back, Disposition.Back, v4 ? IoSlot.TUN_WRITE_FAILED : IoSlot.RAW_WRITE_FAILED);
    }
    out.count = 0;
    this.#groSlot = -1;
    this.#pendingForward = 0;
    this.#pendingBack = 0;
  }

  #write(to: PacketIo, want: number, disp: Disposition, failSlot: IoSlot): void {
    let accepted = 0;
    try {
      accepted = to === this.#tun ? to.write(this.#out, disp, this.#outVnet) : to.write(this.#out, disp);
    } catch (e) {
      this.lastError = e;
    }
    if (accepted < want) this.#c[IO_BASE + failSlot] += want - accepted;
  }

  #readFailed(v4: boolean, e: unknown): void {
    if (!(e instanceof ClosedError)) {
      this.lastError = e;
      this.#c[IO_BASE + (v4 ? IoSlot.TUN_READ_ERRORS : IoSlot.PACKET_READ_ERRORS)]++;
      const failures = v4 ? ++this.#tunFailures : ++this.#packetFailures;
      if (failures < MAX_READ_FAILURES) return;
    }
    if (v4) this.tunClosed = true;
    else this.packetClosed = true;
    this.onClosed?.(v4 ? 'tun' : 'packet', e);
  }
}
