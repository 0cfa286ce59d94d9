/**
 * The receive side of the uplink (as Android's clatd does it): an AF_PACKET SOCK_RAW socket bound
 * to ETH_P_IPV6 on the uplink, with the classic BPF filter of bpf.ts so that only packets for the
 * CLAT address (and the ND messages DAD needs) are ever queued. The kernel's own stack still gets
 * its copy of each packet; an nftables rule (src/sys/nft.ts) drops that copy.
 *
 * Set-up order matters: the socket is created with protocol 0 (receives nothing), gets its options
 * and filter, and only then is bound to ETH_P_IPV6 + ifindex, so no unfiltered packet is queued.
 *
 * PACKET_VNET_HDR puts a virtio_net_hdr in front of each frame. It tells us when the sender left
 * the L4 checksum to "hardware" (CHECKSUM_PARTIAL, VIRTIO_NET_HDR_F_NEEDS_CSUM): routine on veth
 * and with offloads for packets generated on this host or by a VM. Such a packet carries only the
 * pseudo-header sum in its checksum field; `read` completes it (csum_start/csum_offset) before the
 * datapath sees the packet, so nothing is ever forwarded with a wrong checksum.
 *
 * GSO/GRO super-packets (gso_type != NONE; GRO on a real uplink, TSO or UDP_SEGMENT senders on
 * veth) are split back into MSS/gso_size packets here (by core/gso.ts, into the batch's free
 * slots). Android passes them on whole, which gives an IPv4 packet above the MTU (refused when
 * forwarded with DF) and, for UDP, merged datagrams. Except when the caller passes a header array
 * to `read` (its TUN has virtio_net_hdr): a TCP super-packet without extension headers is then left whole,
 * checksum partial, its virtio_net_hdr in the array, to be translated once and written to the TUN
 * as one super-packet (core/gso-xlat.ts).
 */
import type { PacketBatch } from '../core/batch.js';
import { finish, sum16 } from '../core/checksum.js';
import { GSO_BAD, GSO_TCP, GSO_UDP, gsoSplit } from '../core/gso.js';
import { vnetClear, vnetSet } from '../core/vnet.js';
import { K, native } from './addon.js';
import { BatchBinding } from './binding.js';
import { ClosedError, check, isClosedErrno } from './errors.js';
import type { PacketIo } from './io.js';
import { closeFd } from './poll.js';

/** sizeof(struct virtio_net_hdr): flags u8, gso_type u8, hdr_len, gso_size, csum_start, csum_offset (u16, host order). */
export const VNET_HDR_LEN = 10;
const VNET_F_NEEDS_CSUM = 1;
const ETH_HLEN = 14;
const IPV6_HLEN = 40;
/** virtio_net_hdr gso_type values (linux/virtio_net.h). */
const GSO_NONE = 0;
const GSO_TCPV6 = 4;
const GSO_UDP_L4 = 5;
const GSO_ECN = 0x80;

export interface PacketSocketOptions {
  /** Uplink interface index. */
  ifindex: number;
  /** Uplink name, for messages. */
  ifname: string;
  /** The classic BPF program (see `clatReceiveFilter` in bpf.ts). Required: an unfiltered socket sees every IPv6 packet. */
  filter: Uint8Array;
  /** Link-layer header length in front of the IPv6 header: 14 on Ethernet (default), 0 on raw-IP links. */
  linkHeaderLen?: number;
  /** Join PACKET_FANOUT group `group` (hash mode) so several workers share the uplink by flow. */
  fanoutGroup?: number;
  /** Most packets per read. Default 64. */
  batchSize?: number;
  /** SO_RCVBUFFORCE in bytes (falls back to SO_RCVBUF without privilege). */
  rcvbuf?: number;
}

/** Counters of the receive path (monotonic; for status and metrics). */
export interface PacketSocketCounters {
  /** Packets whose L4 checksum this socket completed (CHECKSUM_PARTIAL). */
  csumCompleted: number;
  /** Packets dropped here: truncated, too short, or an impossible csum_start/csum_offset. */
  malformed: number;
  /** GSO/GRO super-packets (gso_type != NONE), split back into the packets they were made of. */
  gsoPackets: number;
  /**
   * TCP super-packets passed on whole because the batch had no free slots for their segments (one
   * large segment of the same stream: fine for local delivery, too big to forward). Give the batch
   * spare capacity beyond `batchSize` to avoid it.
   */
  gsoWhole: number;
  /** Super-packets dropped: UDP ones without room to split (merging datagrams is not an option), or bad headers. */
  gsoDropped: number;
  /** TCP super-packets left whole for the caller, who takes them with their header (a TUN with virtio_net_hdr). */
  gsoKept: number;
  /** Failed reads other than EAGAIN (ENETDOWN while the link is down, ...). */
  readErrors: number;
  lastErrno: number;
  /**
   * Packets the kernel dropped because this socket's receive queue was full (a flood, or a worker
   * that fell behind): PACKET_STATISTICS tp_drops, summed over {@link PacketSocket.readKernelStats}.
   */
  kernelDrops: number;
}

export class PacketSocket implements PacketIo {
  readonly batchSize: number;
  readonly ifname: string;
  readonly ifindex: number;
  readonly linkHeaderLen: number;
  readonly counters: PacketSocketCounters = {
    csumCompleted: 0,
    malformed: 0,
    gsoPackets: 0,
    gsoWhole: 0,
    gsoDropped: 0,
    gsoKept: 0,
    readErrors: 0,
    lastErrno: 0,
    kernelDrops: 0,
  };
  #fd: number;
  readonly #rx: BatchBinding;
  /** struct tpacket_stats { tp_packets, tp_drops } (u32 each, host order), for readKernelStats. */
  readonly #kstats = new Uint32Array(2);

  private constructor(fd: number, o: PacketSocketOptions) {
    this.#fd = fd;
    this.ifindex = o.ifindex;
    this.ifname = o.ifname;
    this.#rx = new BatchBinding(`AF_PACKET ${o.ifname}`);
    this.linkHeaderLen = o.linkHeaderLen ?? ETH_HLEN;
    this.batchSize = o.batchSize ?? 64;
  }

  /**
   * Wraps `fd`: a packet socket that {@link open} made elsewhere in this process with these options
   * (a datapath loop started later takes over the one opened for it), or one that only behaves
   * like a packet socket with PACKET_VNET_HDR: one end of an AF_UNIX
   * SOCK_SEQPACKET pair, with the same reads and writes and no device behind it. The datapath's
   * warm-up runs this class over such stand-ins, so that V8 optimises its packet paths before the
   * first real packet (datapath/stand-ins.ts). Closing the object closes `fd`.
   */
  static overFd(fd: number, o: PacketSocketOptions): PacketSocket {
    return new PacketSocket(fd, o);
  }

  static open(o: PacketSocketOptions): PacketSocket {
    const what = `AF_PACKET ${o.ifname}`;
    const fd = check(native.socket(K.AF_PACKET, K.SOCK_RAW, 0), 'socket', what);
    try {
      const opt = (level: number, name: number, value: number, label: string) =>
        check(native.setsockoptInt(fd, level, name, value), `setsockopt(${label})`, what);
      opt(K.SOL_PACKET, K.PACKET_VNET_HDR, 1, 'PACKET_VNET_HDR');
      opt(K.SOL_PACKET, K.PACKET_IGNORE_OUTGOING, 1, 'PACKET_IGNORE_OUTGOING');
      if (o.rcvbuf !== undefined) {
        if (native.setsockoptInt(fd, K.SOL_SOCKET, K.SO_RCVBUFFORCE, o.rcvbuf) < 0) {
          opt(K.SOL_SOCKET, K.SO_RCVBUF, o.rcvbuf, 'SO_RCVBUF');
        }
      }
      check(native.attachFilter(fd, o.filter), 'setsockopt(SO_ATTACH_FILTER)', what);
      check(native.bindPacket(fd, K.ETH_P_IPV6, o.ifindex), 'bind', `${what} (ifindex ${o.ifindex})`);
      if (o.fanoutGroup !== undefined) {
        // Fanout needs a bound socket; hash mode keeps each flow on one worker (in-order delivery).
        const arg = (o.fanoutGroup & 0xffff) | ((K.PACKET_FANOUT_HASH | K.PACKET_FANOUT_FLAG_DEFRAG) << 16);
        opt(K.SOL_PACKET, K.PACKET_FANOUT, arg, 'PACKET_FANOUT');
      }
    } catch (e) {
      native.close(fd);
      throw e;
    }
    return new PacketSocket(fd, o);
  }

  get fd(): number {
    return this.#fd;
  }

  /** Replaces the filter atomically (a new CLAT address). */
  setFilter(filter: Uint8Array): void {
    check(native.attachFilter(this.#live(), filter), 'setsockopt(SO_ATTACH_FILTER)', `AF_PACKET ${this.ifname}`);
  }

  /**
   * Reads up to `batchSize` packets. Each is left as a bare IPv6 packet at `offs[i]` (the vnet and
   * link headers stripped; it starts at least `headroom` bytes into its slot), with its checksum
   * complete. Packets that cannot be used get `lens[i] = 0` (skip) and are counted as malformed.
   * With `vnet`, TCP super-packets stay whole with their checksum partial, their header in slot i
   * of `vnet` (every other slot's is cleared): see the file comment.
   */
  read(into: PacketBatch, headroom: number, limit?: number, vnet?: Uint8Array): number {
    const fd = this.#live();
    // No default parameter: its load of batchSize, on a branch the loop never takes, was code the
    // warm-up could leave without feedback (a deoptimisation at the worker's first packet).
    const max = Math.min(limit === undefined ? into.capacity : limit, this.batchSize, into.capacity - into.count);
    if (max <= 0) return 0;
    const strip = VNET_HDR_LEN + this.linkHeaderLen;
    const at = headroom > strip ? headroom - strip : 0;
    const start = into.count;
    const n = native.recvBatch(fd, this.#rx.idFor(into), start, max, into.stride, at, into.base);
    if (n < 0) {
      if (isClosedErrno(-n)) throw new ClosedError(`packet socket on ${this.ifname}`);
      this.counters.readErrors++;
      this.counters.lastErrno = -n;
      return 0;
    }
    const room = into.stride - at;
    const d = into.data;
    let extra = 0;
    for (let i = start; i < start + n; i++) {
      const p = into.offs[i];
      const len = into.lens[i];
      if (len > room || len < strip + IPV6_HLEN) {
        into.lens[i] = 0;
        this.counters.malformed++;
        continue;
      }
      const gsoType = d[p + 1];
      // csum_start is relative to the frame (the byte after the vnet header), host order.
      const csumStart = d[p + 6] | (d[p + 7] << 8);
      const csumOffset = d[p + 8] | (d[p + 9] << 8);
      const frame = p + VNET_HDR_LEN;
      const end = p + len;
      const l4 = frame + csumStart;
      const needsCsum = (d[p] & VNET_F_NEEDS_CSUM) !== 0;
      if (needsCsum && (l4 < frame + this.linkHeaderLen + IPV6_HLEN || l4 + csumOffset + 2 > end)) {
        into.lens[i] = 0;
        this.counters.malformed++;
        continue;
      }
      into.offs[i] = p + strip;
      into.lens[i] = len - strip;
      if (vnet !== undefined) {
        // Whole: TCP right behind the IPv6 header (no extension headers), checksum partial.
        if (
          (gsoType & ~GSO_ECN) === GSO_TCPV6 &&
          needsCsum &&
          l4 === p + strip + IPV6_HLEN &&
          d[p + strip + 6] === GSO_TCP
        ) {
          vnetSet(
            vnet,
            i,
            d[p],
            gsoType,
            (d[p + 2] | (d[p + 3] << 8)) - this.linkHeaderLen,
            d[p + 4] | (d[p + 5] << 8),
            IPV6_HLEN,
            csumOffset,
          );
          this.counters.gsoKept++;
          this.counters.gsoPackets++;
          continue;
        }
        vnetClear(vnet, i);
      }
      if (gsoType !== GSO_NONE) {
        // A super-packet (GRO, or TSO/UDP_SEGMENT over veth) is split back into the packets it was
        // made of: whole, it would be one IPv4 packet above the MTU (and, for UDP, merged datagrams).
        this.counters.gsoPackets++;
        const kind = gsoType & ~GSO_ECN;
        const proto = kind === GSO_UDP_L4 ? GSO_UDP : kind === GSO_TCPV6 ? GSO_TCP : -1;
        const gsoSize = d[p + 4] | (d[p + 5] << 8);
        const made =
          needsCsum && proto > 0 ? gsoSplit(into, i, l4 - (p + strip), proto, gsoSize, start + n + extra) : GSO_BAD;
        if (made >= 0) {
          extra += made;
          this.counters.csumCompleted += made + 1;
          continue;
        }
        if (made === GSO_BAD || proto !== GSO_TCP) {
          into.lens[i] = 0;
          this.counters.gsoDropped++;
          continue;
        }
        this.counters.gsoWhole++; // no room: on whole, with its checksum completed below
      }
      if (needsCsum) {
        // The field holds the pseudo-header sum: summing from csum_start over it gives the full sum.
        // 0 is sent as 0xffff: the same value in one's complement, and required for UDP (RFC 8200 §8.1).
        const field = l4 + csumOffset;
        const c = finish(sum16(d, l4, end - l4)) || 0xffff;
        d[field] = c >>> 8;
        d[field + 1] = c & 0xff;
        this.counters.csumCompleted++;
      }
    }
    if (vnet !== undefined) for (let k = start + n; k < start + n + extra; k++) vnetClear(vnet, k);
    into.count += n + extra;
    return n + extra;
  }

  /**
   * Adds the packets the kernel dropped in front of this socket since the last call to
   * `counters.kernelDrops` (getsockopt PACKET_STATISTICS; reading resets the kernel's counts). A
   * system call: for a low rate (the datapath calls it every few dozen publications and once per
   * event-loop turn), not per read. Does nothing on a closed socket or a stand-in without packet
   * statistics (an AF_UNIX pair answers ENOPROTOOPT).
   */
  readKernelStats(): void {
    if (this.#fd < 0) return;
    const s = this.#kstats;
    if (native.getsockoptBuf(this.#fd, K.SOL_PACKET, K.PACKET_STATISTICS, s) < 8) return;
    this.counters.kernelDrops += s[1];
  }

  /** The packet socket only receives; translated packets leave through the raw socket (raw6.ts). */
  write(_from: PacketBatch, _disp?: number): number {
    throw new TypeError('PacketSocket is receive-only; send through Raw6Socket');
  }

  /**
   * Drops the fd number without closing it: for when poll(2) reported it invalid (POLLNVAL), so it
   * is no longer this object's and may already belong to something opened since. A later
   * {@link close} then closes nothing.
   */
  forgetFd(): void {
    this.#fd = -1;
  }

  /** Idempotent. */
  close(): void {
    this.#rx.release();
    if (this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
  }

  #live(): number {
    if (this.#fd < 0) throw new ClosedError(`packet socket on ${this.ifname}`);
    return this.#fd;
  }
}
