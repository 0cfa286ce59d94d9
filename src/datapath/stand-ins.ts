/**
 * Stand-in devices for the warm-up: the real device classes ({@link Tun}, {@link PacketSocket},
 * {@link Raw6Socket}) over one end each of an AF_UNIX SOCK_SEQPACKET pair, whose other end this
 * module holds. A SEQPACKET pair keeps packet boundaries as a TUN queue and a packet socket do, and
 * ignores the destination addresses the raw socket's sendmmsg passes, so each class runs exactly
 * the code it runs on the uplink. Nothing leaves the process.
 *
 * With `vnet`, the TUN stand-in is one with virtio_net_hdr and TSO, as the datapath opens its
 * queues: every packet fed to it goes behind a header (all zeros: a whole packet), and the Tun
 * object reports the offloads a kernel would have granted, so the loop takes the same branches.
 *
 * Why not in-memory fakes: V8 optimises for the object shapes and the code paths it has seen. Over
 * fakes, the first real packets met new classes and untaken branches in the devices' own reads
 * and writes, threw the loop's optimised code away ("wrong map", "insufficient type feedback"),
 * and at interactive packet rates it took minutes to optimise it again: a ping through a freshly
 * started clatd cost about twice the CPU of one through a long-running one (bench/README.md).
 */
import type { PacketBatch } from '../core/batch.js';
import { createVnetHeaders } from '../core/vnet.js';
import { K, native } from '../sys/addon.js';
import { BatchBinding } from '../sys/binding.js';
import { check } from '../sys/errors.js';
import { PacketSocket, VNET_HDR_LEN } from '../sys/packet-socket.js';
import { closeFd } from '../sys/poll.js';
import { Raw6Socket } from '../sys/raw6.js';
import { TUN_OFFLOADS, Tun } from '../sys/tun.js';

/** Most packets one feed of a `vnet` TUN stand-in may reach (slot index + 1). */
const FEED_SLOTS = 1024;
/** The name, index and empty filter the stand-ins carry (they appear in no message that is shown). */
const NAME = 'warm-up';
const IFINDEX = 1;

export class StandIns {
  readonly tun: Tun;
  readonly packet: PacketSocket;
  readonly raw: Raw6Socket;
  /** The far ends: [TUN, packet socket, raw socket]. */
  readonly #peers: number[];
  readonly #stats = new Int32Array(2);
  /** Zero headers for what is fed to a `vnet` TUN stand-in (up to {@link FEED_SLOTS} packets a batch). */
  readonly #zeros: Uint8Array | null;
  /** The batches fed to the TUN's and the packet socket's peers, and the one drained into. */
  readonly #feeds: BatchBinding[];
  readonly #drain = new BatchBinding('warm-up drain');

  private constructor(tun: Tun, packet: PacketSocket, raw: Raw6Socket, peers: number[]) {
    this.tun = tun;
    this.packet = packet;
    this.raw = raw;
    this.#peers = peers;
    this.#zeros = tun.vnet ? createVnetHeaders(FEED_SLOTS) : null;
    this.#feeds = [
      new BatchBinding('warm-up feed', this.#zeros ? [this.#stats, this.#zeros] : [this.#stats]),
      new BatchBinding('warm-up feed', [this.#stats]),
    ];
  }

  /** Opens three socket pairs (`vnet`: see the file comment); on failure closes what it opened and throws SysError. */
  static open(batchSize: number, vnet = false): StandIns {
    const fds: number[] = [];
    try {
      const pair = new Int32Array(2);
      for (let i = 0; i < 3; i++) {
        check(native.socketPair(K.AF_UNIX, K.SOCK_SEQPACKET, pair), 'socketpair', 'warm-up stand-in device');
        fds.push(pair[0], pair[1]);
      }
    } catch (e) {
      for (const fd of fds) closeFd(fd);
      throw e;
    }
    const [tunFd, tunPeer, packetFd, packetPeer, rawFd, rawPeer] = fds as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const tun = Tun.overFd(tunFd, NAME, batchSize, vnet);
    if (vnet) {
      // What a kernel grants a real TUN (a socket pair refuses the ioctl).
      tun.offloads = TUN_OFFLOADS[0] as number;
      tun.offloadError = '';
    }
    return new StandIns(
      tun,
      PacketSocket.overFd(packetFd, { ifname: NAME, ifindex: IFINDEX, filter: new Uint8Array(0), batchSize }),
      Raw6Socket.overFd(rawFd, { ifname: NAME, ifindex: IFINDEX, batchSize }),
      [tunPeer, packetPeer, rawPeer],
    );
  }

  /** Queues packets `start` to `start + count - 1` of `b` (IPv4) for the TUN side to read. */
  feedTun(b: PacketBatch, start: number, count: number): void {
    this.#feed(0, b, start, count);
  }

  /** Queues frames (see {@link frame}) for the packet socket to read. */
  feedPacket(b: PacketBatch, start: number, count: number): void {
    this.#feed(1, b, start, count);
  }

  /** Reads and discards whatever the loop wrote to the TUN and the raw socket. */
  drain(scratch: PacketBatch): void {
    for (const peer of [this.#peers[0] as number, this.#peers[2] as number]) {
      let n = scratch.capacity;
      while (n === scratch.capacity) {
        n = native.readBatch(peer, this.#drain.idFor(scratch), 0, scratch.capacity, scratch.stride, 0, scratch.base);
      }
    }
  }

  /** Idempotent. */
  close(): void {
    this.tun.close();
    this.packet.close();
    this.raw.close();
    for (const b of this.#feeds) b.release();
    this.#drain.release();
    for (let i = 0; i < this.#peers.length; i++) {
      const fd = this.#peers[i] as number;
      if (fd >= 0) closeFd(fd);
      this.#peers[i] = -1;
    }
  }

  #feed(peer: number, b: PacketBatch, start: number, count: number): void {
    if (peer === 0 && this.#zeros !== null && start + count > FEED_SLOTS) throw new RangeError('feed batch too large');
    const vnet = peer === 0 && this.#zeros !== null ? 1 : 0;
    native.writeBatch(
      this.#peers[peer] as number,
      (this.#feeds[peer] as BatchBinding).idFor(b),
      start,
      count,
      -1,
      vnet,
    );
  }
}

/** virtio_net_hdr flag: the L4 checksum is left for "hardware" (CHECKSUM_PARTIAL). */
const VNET_F_NEEDS_CSUM = 1;
const ETH_HLEN = 14;

/**
 * An IPv6 packet as the packet socket reads it from an Ethernet uplink: the virtio_net_hdr
 * (PACKET_VNET_HDR), the Ethernet header, the packet. With `partial` (a packet whose L4 checksum
 * field sits `partial` bytes into its payload), the header asks for checksum completion, as veth
 * does for a local sender, and the field holds the pseudo-header sum `pseudo` instead.
 */
export function frame(ipv6: Uint8Array, partial?: { offset: number; pseudo: number }): Uint8Array {
  const f = new Uint8Array(VNET_HDR_LEN + ETH_HLEN + ipv6.length);
  f.set(ipv6, VNET_HDR_LEN + ETH_HLEN);
  const eth = VNET_HDR_LEN;
  f.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd], eth);
  if (partial !== undefined) {
    const start = ETH_HLEN + 40; // from the Ethernet header, host (little-endian) order
    f[0] = VNET_F_NEEDS_CSUM;
    f[6] = start & 0xff;
    f[7] = start >>> 8;
    f[8] = partial.offset & 0xff;
    f[9] = partial.offset >>> 8;
    const at = eth + ETH_HLEN + 40 + partial.offset;
    f[at] = partial.pseudo >>> 8;
    f[at + 1] = partial.pseudo & 0xff;
  }
  return f;
}
