/**
 * The IPv4 side: a TUN device (`v4-<uplink>`), IFF_TUN | IFF_NO_PI, optionally multi-queue with one
 * queue (fd) per worker. Packets are whole IPv4 packets, read and written in batches by the shim.
 *
 * Offloads stay OFF (no IFF_VNET_HDR, no TUNSETOFFLOAD): with them the kernel may hand us GSO
 * super-packets (one read of many segments, checksums left partial), which the translator would
 * have to split or translate as a whole. Without them every read is one complete, checksummed
 * IPv4 packet no larger than the MTU, exactly what RFC 7915 translation expects. Android's clatd
 * makes the same choice.
 *
 * Link state, MTU and addresses are set over rtnetlink (src/sys/rtnetlink), not here.
 */
import type { PacketBatch } from '../core/batch.js';
import { K, native } from './addon.js';
import { BatchBinding } from './binding.js';
import { ClosedError, Errno, isClosedErrno, SysError, sysError } from './errors.js';
import type { PacketIo } from './io.js';
import { closeFd } from './poll.js';

export interface TunOptions {
  /** IFF_MULTI_QUEUE: more queues can be opened with {@link Tun.openQueue}. Default false. */
  multiQueue?: boolean;
  /** IFF_TUN_EXCL: fail with EBUSY instead of attaching when the device already exists. Default false. */
  exclusive?: boolean;
  /** Most packets per read or write call. Default 64. */
  batchSize?: number;
}

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
  readonly errors: IoErrors = { readErrors: 0, writeErrors: 0, lastErrno: 0 };
  #fd: number;
  readonly #flags: number;
  readonly #stats = new Int32Array(2);
  readonly #rx: BatchBinding;
  readonly #tx: BatchBinding;

  private constructor(fd: number, name: string, flags: number, batchSize: number) {
    this.#fd = fd;
    this.name = name;
    this.#flags = flags;
    this.batchSize = batchSize;
    this.multiQueue = (flags & K.IFF_MULTI_QUEUE) !== 0;
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
  static overFd(fd: number, name: string, batchSize = 64): Tun {
    return new Tun(fd, name, K.IFF_TUN | K.IFF_NO_PI | K.IFF_MULTI_QUEUE, batchSize);
  }

  /** Creates the TUN `name`, or attaches to it when it exists (unless `exclusive`). */
  static open(name: string, options: TunOptions = {}): Tun {
    let flags = K.IFF_TUN | K.IFF_NO_PI;
    if (options.multiQueue) flags |= K.IFF_MULTI_QUEUE;
    if (options.exclusive) flags |= K.IFF_TUN_EXCL;
    const batchSize = options.batchSize ?? 64;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
    const { fd, name: actual } = openFd(name, flags);
    return new Tun(fd, actual, flags, batchSize);
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

  read(into: PacketBatch, headroom: number, limit: number = this.batchSize): number {
    const fd = this.#live('read');
    const max = Math.min(limit, this.batchSize, into.capacity - into.count);
    if (max <= 0) return 0;
    const n = native.readBatch(fd, this.#rx.idFor(into), into.count, max, into.stride, headroom, into.base);
    if (n < 0) {
      if (isClosedErrno(-n)) throw new ClosedError(`TUN ${this.name}`);
      this.errors.readErrors++;
      this.errors.lastErrno = -n;
      return 0;
    }
    into.count += n;
    return n;
  }

  write(from: PacketBatch, disp?: number): number {
    const fd = this.#live('write');
    const stats = this.#stats;
    stats[0] = 0;
    const n = native.writeBatch(fd, this.#tx.idFor(from), 0, from.count, disp ?? -1);
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
