/**
 * The IPv4 side: a TUN device (`v4-<uplink>`), IFF_TUN | IFF_NO_PI, optionally multi-queue with one
 * queue (fd) per worker. Packets are whole IPv4 packets, read and written in batches by the shim.
 *
 * With `vnet` (the datapath's queues), IFF_VNET_HDR puts a virtio_net_hdr in front of every packet
 * both ways, and TUNSETOFFLOAD lets the kernel hand us TCP super-packets (TSO: one read of up to 64
 * KiB of a stream, checksum partial) and take them from us (the kernel segments them, or delivers
 * them whole to a local socket): a super-packet is translated once (core/gso-xlat.ts) instead of
 * read, translated and written one MTU-sized packet at a time, the difference between the worker
 * path's and the kernel's TCP rates. Offloads the kernel refuses (an old kernel: no USO; a
 * container's restricted ioctls) are left off with the reason in {@link Tun.offloadError}; the
 * headers still come, saying "complete checksum, no GSO", and everything works as without them.
 *
 * Without `vnet` (the daemon's own queue, tools) offloads stay off: every read is one complete,
 * checksummed IPv4 packet no larger than the MTU, what RFC 7915 translation expects (Android's
 * clatd makes that choice for its only path). IFF_VNET_HDR is a flag of the device, set by the
 * last TUNSETIFF, so every queue of one device must be opened the same way.
 *
 * Link state, MTU and addresses are set over rtnetlink (src/sys/rtnetlink), not here.
 */
import type { PacketBatch } from '../core/batch.js';
import { completeChecksum } from '../core/gso-xlat.js';
import { createVnetHeaders, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_HDR_LEN, vnetCopyIn } from '../core/vnet.js';
import { K, native } from './addon.js';
import { BatchBinding } from './binding.js';
import { ClosedError, Errno, errnoName, isClosedErrno, SysError, sysError } from './errors.js';
import type { PacketIo } from './io.js';
import { closeFd } from './poll.js';

export interface TunOptions {
  /** IFF_MULTI_QUEUE: more queues can be opened with {@link Tun.openQueue}. Default false. */
  multiQueue?: boolean;
  /** IFF_TUN_EXCL: fail with EBUSY instead of attaching when the device already exists. Default false. */
  exclusive?: boolean;
  /** Most packets per read or write call. Default 64. */
  batchSize?: number;
  /** IFF_VNET_HDR, and the offloads of {@link TUN_OFFLOADS} the kernel accepts. Default false. */
  vnet?: boolean;
}

/**
 * The offloads a `vnet` TUN asks for, best first; the first set the kernel accepts is kept (TSO
 * needs TUN_F_CSUM). Not USO: the datapath translates TCP super-packets once but has no such path
 * for UDP ones yet, so the kernel segments those before the TUN.
 */
export const TUN_OFFLOADS: readonly number[] = [
  K.TUN_F_CSUM | K.TUN_F_TSO4 | K.TUN_F_TSO6 | K.TUN_F_TSO_ECN,
  K.TUN_F_CSUM | K.TUN_F_TSO4 | K.TUN_F_TSO6,
  K.TUN_F_CSUM,
];

/** Counters of transient I/O errors (the loop goes on; these are for status and metrics). */
export interface IoErrors {
  /** Reads that failed with something other than EAGAIN. */
  readErrors: number;
  /** Packets the kernel refused on write. */
  writeErrors: number;
  /** The errno of the last failure, 0 if none. */
  lastErrno: number;
}

const TUN_HINTS: Record<number, string> = {
  [Errno.EPERM]: 'clatd needs CAP_NET_ADMIN to create a TUN device: run it as root or grant the capability',
  [Errno.EACCES]: 'clatd needs CAP_NET_ADMIN to create a TUN device: run it as root or grant the capability',
  [Errno.EBUSY]: 'the device is held by another process (another clatd?) or is not a multi-queue TUN',
  [Errno.EINVAL]: 'the name is taken by a device that is not a TUN, or its flags differ (multi-queue or not)',
};

const DEV_HINT =
  '/dev/net/tun is missing: load the tun module (`modprobe tun`), or in a container pass the device (e.g. `--device /dev/net/tun`)';

/** TUNSETIFF through the shim, with errors that say what to do. */
function openFd(name: string, flags: number): { fd: number; name: string } {
  if (name.length === 0 || Buffer.byteLength(name) >= K.IFNAMSIZ) {
    throw sysError(Errno.EINVAL, 'TUNSETIFF', name, `interface names are 1 to ${K.IFNAMSIZ - 1} bytes`);
  }
  const r = native.tunOpen(name, flags);
  if (typeof r !== 'number') return r;
  const errno = -r;
  // The shim does open() then ioctl(); these errnos only come from the open of the device node.
  if (errno === Errno.ENOENT || errno === Errno.ENODEV || errno === Errno.ENXIO) {
    throw new SysError(errno, 'open', '/dev/net/tun', DEV_HINT);
  }
  throw sysError(errno, 'TUNSETIFF', name, TUN_HINTS[errno]);
}

export class Tun implements PacketIo {
  /** The device name the kernel confirmed. */
  readonly name: string;
  readonly batchSize: number;
  readonly multiQueue: boolean;
  /** Every packet read or written has a virtio_net_hdr in front (IFF_VNET_HDR). */
  readonly vnet: boolean;
  /** The TUN_F_* offloads the kernel accepted (0: none, or not a `vnet` TUN). */
  offloads = 0;
  /** Why an offload set was refused ("TUNSETOFFLOAD ...: EINVAL"), '' when the first was taken. */
  offloadError = '';
  readonly errors: IoErrors = { readErrors: 0, writeErrors: 0, lastErrno: 0 };
  /** Reads of a `vnet` TUN without a header array whose GSO packets were dropped (cannot happen in the datapath). */
  gsoDropped = 0;
  #fd: number;
  readonly #flags: number;
  readonly #stats = new Int32Array(2);
  readonly #rx: BatchBinding;
  #tx: BatchBinding;
  /** The header array bound with the last batch written (the caller's, or #zeros). */
  #txVnet: Uint8Array | null = null;
  #zeros: Uint8Array | null = null;

  private constructor(fd: number, name: string, flags: number, batchSize: number) {
    this.#fd = fd;
    this.name = name;
    this.#flags = flags;
    this.batchSize = batchSize;
    this.multiQueue = (flags & K.IFF_MULTI_QUEUE) !== 0;
    this.vnet = (flags & K.IFF_VNET_HDR) !== 0;
    this.#rx = new BatchBinding(`TUN ${name}`);
    this.#tx = new BatchBinding(`TUN ${name}`, [this.#stats]);
  }

  /**
   * Wraps `fd`: a queue of a multi-queue TUN opened elsewhere in this process (a datapath loop
   * started later takes over the one opened for it), or one that only behaves like a TUN queue: one end of an AF_UNIX
   * SOCK_SEQPACKET pair, with the same reads and writes and no device behind it. The datapath's
   * warm-up runs this class over such stand-ins, so that V8 optimises its packet paths before the
   * first real packet (datapath/stand-ins.ts). Closing the object closes `fd`.
   */
  static overFd(fd: number, name: string, batchSize = 64, vnet = false): Tun {
    let flags = K.IFF_TUN | K.IFF_NO_PI | K.IFF_MULTI_QUEUE | (vnet ? K.IFF_VNET_HDR : 0);
    // What the device has (a stand-in, no TUN, answers an error and is taken as asked).
    const got = vnet ? native.tunGetFlags(fd) : -1;
    if (got >= 0) flags = (flags & ~K.IFF_VNET_HDR) | (got & K.IFF_VNET_HDR);
    const tun = new Tun(fd, name, flags, batchSize);
    // The offloads are the device's: asking again (same set) tells this object which it has.
    if (tun.vnet) tun.#setOffloads();
    return tun;
  }

  /** Creates the TUN `name`, or attaches to it when it exists (unless `exclusive`). */
  static open(name: string, options: TunOptions = {}): Tun {
    let flags = K.IFF_TUN | K.IFF_NO_PI;
    if (options.multiQueue) flags |= K.IFF_MULTI_QUEUE;
    if (options.exclusive) flags |= K.IFF_TUN_EXCL;
    if (options.vnet) flags |= K.IFF_VNET_HDR;
    const batchSize = options.batchSize ?? 64;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    const { fd, name: actual } = openFd(name, flags);
    // An existing multi-queue device keeps the flags of its first queue: IFF_VNET_HDR is what
    // the device has, whatever this open asked for.
    const got = native.tunGetFlags(fd);
    if (got >= 0) flags = (flags & ~K.IFF_VNET_HDR) | (got & K.IFF_VNET_HDR);
    const tun = new Tun(fd, actual, flags, batchSize);
    if (tun.vnet) tun.#setOffloads();
    return tun;
  }

  /** TUNSETOFFLOAD with the best set of {@link TUN_OFFLOADS} the kernel takes; refusals are kept as the reason. */
  #setOffloads(): void {
    const why: string[] = [];
    for (const want of TUN_OFFLOADS) {
      const r = native.tunSetOffload(this.#fd, want);
      if (r === 0) {
        this.offloads = want;
        break;
      }
      why.push(`TUNSETOFFLOAD 0x${want.toString(16)}: ${errnoName(-r)}`);
    }
    this.offloadError = why.join('; ');
  }

  /** The kernel may hand this TUN's reader TCP super-packets (and takes them from its writer). */
  get tso(): boolean {
    return (this.offloads & K.TUN_F_TSO4) !== 0;
  }

  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Opens one more queue of a multi-queue TUN (one per worker); the new object closes independently. */
  openQueue(): Tun {
    if (!this.multiQueue) throw new TypeError(`${this.name} was not opened with multiQueue`);
    const { fd, name } = openFd(this.name, this.#flags & ~K.IFF_TUN_EXCL);
    return new Tun(fd, name, this.#flags, this.batchSize);
  }

  /**
   * Keeps the device after the last fd closes (TUNSETPERSIST). clatd does not need it; it exists
   * for tools and tests that pre-create the device.
   */
  setPersist(on: boolean): void {
    const r = native.tunSetPersist(this.#live('TUNSETPERSIST'), on ? 1 : 0);
    if (r < 0) throw sysError(-r, 'TUNSETPERSIST', this.name);
  }

  /**
   * Reads as {@link PacketIo.read} says. On a `vnet` TUN each packet's virtio_net_hdr is stripped
   * and, with `vnet` given, copied to its slot there (core/vnet.ts) for the caller to act on;
   * without it, a partial checksum is completed here and a GSO packet dropped (`gsoDropped`).
   */
  read(into: PacketBatch, headroom: number, limit?: number, vnet?: Uint8Array): number {
    const fd = this.#live('read');
    // No default parameter: its load of batchSize, on a branch the loop never takes, was code the
    // warm-up could leave without feedback (a deoptimisation at the worker's first packet).
    const max = Math.min(limit === undefined ? into.capacity : limit, this.batchSize, into.capacity - into.count);
    if (max <= 0) return 0;
    const start = into.count;
    const at = this.vnet ? Math.max(0, headroom - VNET_HDR_LEN) : headroom;
    const n = native.readBatch(fd, this.#rx.idFor(into), start, max, into.stride, at, into.base);
    if (n < 0) {
      if (isClosedErrno(-n)) throw new ClosedError(`TUN ${this.name}`);
      this.errors.readErrors++;
      this.errors.lastErrno = -n;
      return 0;
    }
    if (this.vnet) this.#stripHeaders(into, start, n, vnet);
    into.count += n;
    return n;
  }

  #stripHeaders(into: PacketBatch, start: number, n: number, vnet: Uint8Array | undefined): void {
    const d = into.data;
    for (let i = start; i < start + n; i++) {
      const p = into.offs[i];
      const len = into.lens[i];
      if (len < VNET_HDR_LEN) {
        into.lens[i] = 0;
        continue;
      }
      into.offs[i] = p + VNET_HDR_LEN;
      into.lens[i] = len - VNET_HDR_LEN;
      if (vnet !== undefined) {
        vnetCopyIn(vnet, i, d, p);
        continue;
      }
      if (d[p + 1] !== VNET_GSO_NONE) {
        into.lens[i] = 0;
        this.gsoDropped++;
      } else if ((d[p] & VNET_F_NEEDS_CSUM) !== 0) {
        const l4 = p + VNET_HDR_LEN + (d[p + 6] | (d[p + 7] << 8));
        const csumOffset = d[p + 8] | (d[p + 9] << 8);
        if (l4 + csumOffset + 2 <= p + len) completeChecksum(d, l4, csumOffset, p + len);
        else into.lens[i] = 0;
      }
    }
  }

  /**
   * Writes as {@link PacketIo.write} says; on a `vnet` TUN packet i goes behind the header in slot
   * i of `vnet` (zeros when not given: complete checksum, no GSO).
   */
  write(from: PacketBatch, disp?: number, vnet?: Uint8Array): number {
    const fd = this.#live('write');
    const stats = this.#stats;
    stats[0] = 0;
    let id: number;
    if (this.vnet) {
      let v = vnet;
      if (v === undefined || v.length < from.capacity * VNET_HDR_LEN) {
        if (this.#zeros === null || this.#zeros.length < from.capacity * VNET_HDR_LEN)
          this.#zeros = createVnetHeaders(from.capacity);
        v = this.#zeros;
      }
      if (v !== this.#txVnet) {
        // Another header array: a new bound set (once per array, not per write).
        this.#tx.release();
        this.#tx = new BatchBinding(`TUN ${this.name}`, [this.#stats, v]);
        this.#txVnet = v;
      }
      id = this.#tx.idFor(from);
    } else id = this.#tx.idFor(from);
    const n = native.writeBatch(fd, id, 0, from.count, disp ?? -1, this.vnet ? 1 : 0);
    if (stats[0] > 0) {
      this.errors.writeErrors += stats[0];
      this.errors.lastErrno = stats[1];
    }
    // The shim's errno policy (native/clatd.c, write_errno_class): failed packets are already
    // counted in stats; -errno means nothing went out, and only a fatal errno is more than a drop.
    if (n < 0) {
      if (isClosedErrno(-n)) throw new ClosedError(`TUN ${this.name}`);
      return 0;
    }
    return n;
  }

  /**
   * Drops the fd number without closing it: for when poll(2) reported it invalid (POLLNVAL), so it
   * is no longer this object's and may already belong to something opened since. A later
   * {@link close} then closes nothing.
   */
  forgetFd(): void {
    this.#fd = -1;
  }

  /** Closes this queue's fd. Idempotent. The device goes away with its last fd (unless persistent). */
  close(): void {
    this.#rx.release();
    this.#tx.release();
    if (this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
  }

  #live(call: string): number {
    if (this.#fd < 0) throw new ClosedError(`TUN ${this.name} (${call})`);
    return this.#fd;
  }
}
