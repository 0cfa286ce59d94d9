/**
 * Opens one loop's own devices from a description that can cross into a worker (plain data): a
 * queue of the multi-queue TUN, a packet socket in the PACKET_FANOUT group, and a raw socket. Each
 * loop owns its fds end to end (as a wireguard-go routine owns its queue), closes them when it
 * stops, and reports their numbers so the main thread can close them if the worker dies.
 */
import { K, native } from '../sys/addon.js';
import { check, Errno } from '../sys/errors.js';
import { PacketSocket, type PacketSocketOptions, VNET_HDR_LEN } from '../sys/packet-socket.js';
import { type Raw6Options, Raw6Socket } from '../sys/raw6.js';
import { Tun } from '../sys/tun.js';
import { IO_BASE, IoSlot } from './counters.js';
import type { LoopIo } from './loop-io.js';

/** The datapath's devices, as data. */
export interface DatapathDevices {
  /**
   * The TUN, already created by the caller with `multiQueue: true` (and kept open by it): each
   * loop attaches one more queue by name.
   */
  tun: { name: string; batchSize?: number };
  /** The receive side; each loop opens its own socket with these options (fanout is added when needed). */
  packet: Omit<PacketSocketOptions, 'fanoutGroup'>;
  /** The transmit side; each loop opens its own raw socket (the anycast membership stays with the caller's). */
  raw: Raw6Options;
}

export interface OpenedDevices {
  io: LoopIo;
  tun: Tun;
  packet: PacketSocket;
  raw: Raw6Socket;
  /** The fds, for the main thread's clean-up after a crash. */
  fds: number[];
  /**
   * Adds the system layer's own counts into a loop's counters (call before publishing); the
   * packet socket's kernel drops are read every {@link KERNEL_STATS_EVERY} calls.
   */
  syncCounters(acc: Float64Array): void;
  /** Closes all three. Idempotent. */
  close(): void;
}

/**
 * One loop's devices opened ahead of the loop, by another thread of the process (a datapath that
 * starts its workers on input, see datapath.ts): their fd numbers, which the loop takes over
 * instead of opening its own.
 */
export interface AdoptedDevices {
  tun: number;
  packet: number;
  raw: number;
}

/**
 * Opens the devices of one loop; on failure closes what it opened and rethrows. With `adopt`, the
 * devices are those fds (opened with the same `d` and `fanoutGroup`), the loop's from then on:
 * closed with the rest, on failure too.
 */
export function openDevices(
  d: DatapathDevices,
  fanoutGroup: number | undefined,
  adopt?: AdoptedDevices,
): OpenedDevices {
  const opened: { close(): void }[] = [];
  try {
    const packetOptions = fanoutGroup === undefined ? d.packet : { ...d.packet, fanoutGroup };
    // Wrapping an adopted fd cannot fail: either all three are wrapped, or none is.
    // With IFF_VNET_HDR and offloads (sys/tun.ts): TCP super-packets both ways. A flag of the
    // device, so every loop's queue (and those opened ahead for a loop) is opened the same way.
    const tun = adopt
      ? Tun.overFd(adopt.tun, d.tun.name, d.tun.batchSize, true)
      : Tun.open(d.tun.name, { multiQueue: true, batchSize: d.tun.batchSize, vnet: true });
    opened.push(tun);
    const packet = adopt ? PacketSocket.overFd(adopt.packet, packetOptions) : PacketSocket.open(packetOptions);
    opened.push(packet);
    const raw = adopt ? Raw6Socket.overFd(adopt.raw, d.raw) : Raw6Socket.open(d.raw);
    opened.push(raw);
    return {
      io: { tun, packet, raw },
      tun,
      packet,
      raw,
      fds: [tun.fd, packet.fd, raw.fd],
      syncCounters: counterSync(tun, packet),
      close(): void {
        tun.close();
        packet.close();
        raw.close();
      },
    };
  } catch (e) {
    for (const o of opened) o.close();
    throw e;
  }
}

/**
 * The loop options that follow from the TUN's offloads. A queue taken over from another thread
 * reports none of its own (the offloads are the device's, set when it was opened): it asks again.
 */
export function offloadOptions(tun: Tun): { tunVnet: boolean; tunTso: boolean } {
  return { tunVnet: tun.vnet, tunTso: tun.vnet && tun.tso };
}

/**
 * Publications between two reads of the packet socket's kernel statistics (a system call): a
 * busy worker publishes on every wake-up, thousands of times a second. An idle worker reads them
 * once per event-loop turn instead (worker.ts), so drops at the end of a burst show up too.
 */
export const KERNEL_STATS_EVERY = 64;

/**
 * The system layer counts failures it absorbs (read errors, malformed frames) and the kernel's
 * drops; the returned function folds their growth since its last call into a loop's counters.
 * One function for the real devices and the warm-up's stand-ins: it runs on every wake-up, and V8
 * then optimises it (and calls of it) before the first packet.
 */
export function counterSync(tun: Tun, packet: PacketSocket): (acc: Float64Array) => void {
  let tunRead = 0;
  let pktRead = 0;
  let malformed = 0;
  let completed = 0;
  let kernelDrops = 0;
  let calls = 0;
  return (acc: Float64Array): void => {
    if (++calls >= KERNEL_STATS_EVERY) {
      calls = 0;
      packet.readKernelStats();
    }
    const pc = packet.counters;
    acc[IO_BASE + IoSlot.TUN_READ_ERRORS] += tun.errors.readErrors - tunRead;
    acc[IO_BASE + IoSlot.PACKET_READ_ERRORS] += pc.readErrors - pktRead;
    acc[IO_BASE + IoSlot.PACKET_MALFORMED] += pc.malformed - malformed;
    acc[IO_BASE + IoSlot.CSUM_COMPLETED] += pc.csumCompleted - completed;
    acc[IO_BASE + IoSlot.PACKET_KERNEL_DROPS] += pc.kernelDrops - kernelDrops;
    tunRead = tun.errors.readErrors;
    pktRead = pc.readErrors;
    malformed = pc.malformed;
    completed = pc.csumCompleted;
    kernelDrops = pc.kernelDrops;
  };
}

/** Closes fds by number (a crashed worker's); errors are ignored: the fd may already be gone. */
export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) if (fd >= 0) native.close(fd);
}

/**
 * Detaches (false) or re-attaches (true) the caller's own queue of the multi-queue TUN, so the
 * kernel does not steer flows to a queue nobody reads while the loops run (TUNSETQUEUE).
 * Throws SysError (EINVAL: not a multi-queue TUN fd, or already in that state).
 */
export function setQueueAttached(fd: number, attached: boolean): void {
  check(native.tunSetQueue(fd, attached ? 1 : 0), 'TUNSETQUEUE', `${attached ? 'attach' : 'detach'} queue fd ${fd}`);
}

/** What {@link takeQueued} took off a queue, and whether input for the loop is left on it. */
export interface Taken {
  /** Neighbor Solicitations and Advertisements (packet socket only), and their IPv6 bytes. */
  neighbor: number;
  neighborBytes: number;
  /** Other packets, taken while paused, and their bytes. */
  paused: number;
  pausedBytes: number;
  /** Something is queued that the loop must read (or an error it will meet and report). */
  input: boolean;
}

/**
 * For a loop that has not started yet (datapath.ts, `startOnInput`): takes off one of its queues
 * what a running loop would only count, so that it does not start the workers — on the packet
 * socket (`linkHeaderLen` given) the Neighbor Solicitations and Advertisements for the CLAT
 * address (copies: the kernel answers them itself), and while `paused` everything else too, on
 * either side (a paused loop reads and counts its input, and translates nothing). `scratch` must
 * hold the largest packet for the TUN (its bytes are counted whole), the headers for the socket.
 */
export function takeQueued(fd: number, linkHeaderLen: number | undefined, paused: boolean, scratch: Uint8Array): Taken {
  const t: Taken = { neighbor: 0, neighborBytes: 0, paused: 0, pausedBytes: 0, input: false };
  const ip = VNET_HDR_LEN + (linkHeaderLen ?? 0);
  // A TUN queue with virtio_net_hdr (sys/tun.ts) reads each packet behind one.
  const flags = linkHeaderLen === undefined && paused ? native.tunGetFlags(fd) : -1;
  const tunHeader = flags >= 0 && (flags & K.IFF_VNET_HDR) !== 0;
  for (;;) {
    if (linkHeaderLen === undefined) {
      // A TUN queue: nothing to peek at; taken only while paused.
      if (!paused) return { ...t, input: true };
      const n = native.read(fd, scratch);
      if (n < 0) return { ...t, input: n !== -Errno.EAGAIN };
      t.paused++;
      t.pausedBytes += tunHeader ? Math.max(0, n - VNET_HDR_LEN) : n;
      continue;
    }
    const n = native.recv(fd, scratch, K.MSG_PEEK | K.MSG_DONTWAIT);
    // Nothing queued (EAGAIN), or an error the loop will meet and report itself.
    if (n < 0) return { ...t, input: n !== -Errno.EAGAIN };
    const type = scratch[ip + 40];
    const nd = n >= ip + 41 && scratch[ip + 6] === 58 && (type === 135 || type === 136);
    if (!nd && !paused) return { ...t, input: true };
    const full = native.recv(fd, scratch, K.MSG_DONTWAIT | K.MSG_TRUNC);
    if (full < 0) return { ...t, input: true };
    if (nd) {
      t.neighbor++;
      t.neighborBytes += full - ip;
    } else {
      t.paused++;
      t.pausedBytes += full - ip;
    }
  }
}
