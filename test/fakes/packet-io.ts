/**
 * An in-memory {@link PacketIo} (after wireguard-go's `tun/tuntest.ChannelTUN`): tests push packets
 * in with `inject` and find what the loop wrote in `written`. It can refuse writes past a limit
 * (a full queue), fail reads, and report readability to a handler the way a poll would.
 */
import type { PacketBatch } from '../../src/core/batch.js';
import { GSO_NO_ROOM, GSO_TCP, gsoSplit } from '../../src/core/gso.js';
import { vnetClear, vnetSet } from '../../src/core/vnet.js';
import { ClosedError } from '../../src/sys/errors.js';
import type { PacketIo } from '../../src/sys/io.js';

export interface WrittenPacket {
  bytes: Uint8Array;
  disp: number;
}

export interface FakeIoOptions {
  batchSize?: number;
  name?: string;
}

export class FakePacketIo implements PacketIo {
  readonly fd = -1;
  readonly batchSize: number;
  readonly name: string;
  /** Packets waiting to be read, oldest first. */
  readonly inbound: Uint8Array[] = [];
  /** Everything the loop wrote and the fake accepted, in order. */
  readonly written: WrittenPacket[] = [];
  /** How many packets the next `write` calls may still accept in total (Infinity: all). */
  acceptLimit = Number.POSITIVE_INFINITY;
  /** When set, the next `read` throws it (once). */
  failNextRead: Error | undefined = undefined;
  closed = false;
  reads = 0;
  writes = 0;
  #onReadable: (() => void) | undefined;
  #scheduled = false;

  constructor(o: FakeIoOptions = {}) {
    this.batchSize = o.batchSize ?? 64;
    this.name = o.name ?? 'fake';
  }

  /** Queues packets for reading and tells the readable handler, as a poll would (asynchronously). */
  inject(...packets: Uint8Array[]): void {
    for (const p of packets) this.inbound.push(p);
    this.#kick();
  }

  /**
   * The readiness hook the in-process datapath uses for fds it cannot poll: `handler` runs on a
   * later turn whenever packets are waiting, and again while they remain (level-triggered).
   */
  setReadableHandler(handler: (() => void) | undefined): void {
    this.#onReadable = handler;
    this.#kick();
  }

  /**
   * The device goes away under the loop (an interface deleted): reads throw ClosedError from now
   * on, and the handler is called once more, as a poll reports a hang-up.
   */
  vanish(): void {
    this.closed = true;
    this.#kick(true);
  }

  #kick(force = false): void {
    if (this.#scheduled || this.#onReadable === undefined || (this.inbound.length === 0 && !force)) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const handler = this.#onReadable;
      if (handler === undefined) return;
      handler();
      if (!this.closed) this.#kick();
    });
  }

  read(into: PacketBatch, headroom: number, limit: number = this.batchSize): number {
    if (this.closed) throw new ClosedError(this.name);
    this.reads++;
    if (this.failNextRead) {
      const e = this.failNextRead;
      this.failNextRead = undefined;
      throw e;
    }
    let n = 0;
    while (n < Math.min(limit, this.batchSize) && into.count < into.capacity && this.inbound.length > 0) {
      const p = this.inbound.shift() as Uint8Array;
      const i = into.count;
      const off = into.base + i * into.stride + headroom;
      // Like recvmmsg with MSG_TRUNC: copy what fits, report the real length.
      const fit = Math.min(p.length, into.stride - headroom);
      into.data.set(p.subarray(0, fit), off);
      into.offs[i] = off;
      into.lens[i] = p.length;
      into.count++;
      n++;
    }
    return n;
  }

  write(from: PacketBatch, disp?: number): number {
    if (this.closed) throw new ClosedError(this.name);
    this.writes++;
    let done = 0;
    for (let i = 0; i < from.count; i++) {
      if (from.lens[i] === 0 || (disp !== undefined && from.disp[i] !== disp)) continue;
      if (this.acceptLimit <= 0) continue;
      this.acceptLimit--;
      this.written.push({ bytes: from.data.slice(from.offs[i], from.offs[i] + from.lens[i]), disp: from.disp[i] });
      done++;
    }
    return done;
  }

  close(): void {
    this.closed = true;
    this.#onReadable = undefined;
  }
}

/** A packet a {@link ReplayPacketIo} serves; with `gso`, a super-packet the read splits as the packet socket does. */
export interface ReplayPacket {
  bytes: Uint8Array;
  gso?: { proto: number; l4: number; size: number };
  /**
   * The virtio_net_hdr a device with offloads hands over with it (a `vnet` TUN, a packet socket
   * keeping TCP super-packets): given to a read with a header array, the packet stays whole.
   */
  vnet?: { flags: number; gsoType: number; hdrLen: number; gsoSize: number; csumStart: number; csumOffset: number };
}

/**
 * A {@link PacketIo} that allocates nothing per packet, for allocation tests of the whole loop:
 * it serves a fixed list of packets over and over (`available` says how many are queued) and
 * only counts what is written. Super-packets are split on read by the core's gsoSplit into the
 * batch's free slots, as PacketSocket.read does.
 */
export class ReplayPacketIo implements PacketIo {
  readonly fd = -1;
  readonly batchSize: number;
  /** Packets queued for reading. */
  available = 0;
  written = 0;
  writtenBytes = 0;
  /** Written packets that went with a GSO virtio_net_hdr (whole super-packets). */
  superWritten = 0;
  /** Called for each written packet when set (a correctness pass before measuring); `vnet`, `i`: its header, if any. */
  check:
    | ((data: Uint8Array, off: number, len: number, disp: number, vnet: Uint8Array | undefined, i: number) => void)
    | undefined = undefined;
  readonly #packets: readonly ReplayPacket[];
  #next = 0;

  constructor(packets: readonly ReplayPacket[], batchSize = 64) {
    this.#packets = packets;
    this.batchSize = batchSize;
  }

  /**
   * Like PacketSocket.read: up to `batchSize` packets, then each super-packet split into the free
   * slots after them; a TCP one without room is left whole, a UDP one dropped (length 0).
   */
  read(into: PacketBatch, headroom: number, limit: number = this.batchSize, vnet?: Uint8Array): number {
    const max = Math.min(limit, this.batchSize, into.capacity - into.count);
    const start = into.count;
    const first = this.#next;
    let n = 0;
    while (n < max && this.available > 0) {
      const p = this.#packets[this.#next] as ReplayPacket;
      this.#next = this.#next + 1 === this.#packets.length ? 0 : this.#next + 1;
      this.available--;
      const i = start + n;
      const off = into.base + i * into.stride + headroom;
      // The replayed packets fit their slots (no truncation: subarray would allocate).
      into.data.set(p.bytes, off);
      into.offs[i] = off;
      into.lens[i] = p.bytes.length;
      n++;
    }
    let extra = 0;
    for (let i = 0; i < n; i++) {
      const p = this.#packets[(first + i) % this.#packets.length] as ReplayPacket;
      if (vnet !== undefined) {
        const h = p.vnet;
        if (h !== undefined) {
          vnetSet(vnet, start + i, h.flags, h.gsoType, h.hdrLen, h.gsoSize, h.csumStart, h.csumOffset);
          continue;
        }
        vnetClear(vnet, start + i);
      }
      const g = p.gso;
      if (g === undefined) continue;
      const made = gsoSplit(into, start + i, g.l4, g.proto, g.size, start + n + extra);
      if (made >= 0) extra += made;
      else if (made !== GSO_NO_ROOM || g.proto !== GSO_TCP) into.lens[start + i] = 0;
    }
    if (vnet !== undefined) for (let k = start + n; k < start + n + extra; k++) vnetClear(vnet, k);
    into.count += n + extra;
    return n + extra;
  }

  write(from: PacketBatch, disp?: number, vnet?: Uint8Array): number {
    let done = 0;
    for (let i = 0; i < from.count; i++) {
      const len = from.lens[i];
      if (len === 0 || (disp !== undefined && from.disp[i] !== disp)) continue;
      if (vnet !== undefined) this.superWritten += vnet[i * 10 + 1] !== 0 ? 1 : 0;
      this.check?.(from.data, from.offs[i], len, from.disp[i], vnet, i);
      this.writtenBytes += len;
      done++;
    }
    this.written += done;
    return done;
  }

  close(): void {}
}
