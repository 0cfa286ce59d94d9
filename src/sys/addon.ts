/**
 * The only importer of the native shim (`native/clatd.c`, built by node-gyp during `npm install`
 * into `build/Release/clatd_native.node`). Everything here is the typed face of one system call;
 * the modules beside this one (tun, packet-socket, raw6, eventfd, poll) add the meaning.
 *
 * Convention of the shim: calls return `-errno` on failure (see `check` in errors.ts), throw
 * TypeError/RangeError only for wrong arguments, and open every fd non-blocking and close-on-exec.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClatdError } from '../core/errors.js';
import { Errno, sysError } from './errors.js';

/**
 * Every constant the shim must export: kernel constants and struct offsets, taken from the headers
 * it was compiled against, and the classes of its batch writers' errno policy (WRITE_*). Checked at
 * load (see {@link checkConstants}): a name missing from the shim would read as undefined, which a
 * bit operation turns into 0 without a word.
 */
export const CONSTANT_NAMES = [
  'IFF_TUN',
  'IFF_NO_PI',
  'IFF_MULTI_QUEUE',
  'IFF_TUN_EXCL',
  'IFF_VNET_HDR',
  'TUN_F_CSUM',
  'TUN_F_TSO4',
  'TUN_F_TSO6',
  'TUN_F_TSO_ECN',
  'TUN_F_USO4',
  'TUN_F_USO6',
  'IFNAMSIZ',
  'AF_INET6',
  'AF_PACKET',
  'AF_UNIX',
  'AF_NETLINK',
  'SOCK_RAW',
  'SOCK_SEQPACKET',
  'SOCK_DGRAM',
  'IPPROTO_RAW',
  'IPPROTO_IPV6',
  'ETH_P_IPV6',
  'ETH_P_ALL',
  'ETH_HLEN',
  'SOL_SOCKET',
  'SO_BINDTODEVICE',
  'SO_RCVBUF',
  'SO_SNDBUF',
  'SO_RCVBUFFORCE',
  'SO_SNDBUFFORCE',
  'SO_MARK',
  'SO_ATTACH_FILTER',
  'SOL_PACKET',
  'PACKET_AUXDATA',
  'PACKET_VNET_HDR',
  'PACKET_IGNORE_OUTGOING',
  'PACKET_FANOUT',
  'PACKET_FANOUT_HASH',
  'PACKET_FANOUT_CPU',
  'PACKET_FANOUT_FLAG_DEFRAG',
  'PACKET_STATISTICS',
  'IPV6_JOIN_ANYCAST',
  'IPV6_LEAVE_ANYCAST',
  'IPV6_MULTICAST_LOOP',
  'IPV6_MULTICAST_HOPS',
  'IPV6_UNICAST_HOPS',
  'IPV6_MULTICAST_IF',
  'NETLINK_ROUTE',
  'SOL_NETLINK',
  'NETLINK_ADD_MEMBERSHIP',
  'NETLINK_EXT_ACK',
  'NETLINK_GET_STRICT_CHK',
  'NETLINK_NO_ENOBUFS',
  'MSG_TRUNC',
  'MSG_PEEK',
  'MADV_DONTNEED',
  'MSG_DONTWAIT',
  'POLLIN',
  'POLLOUT',
  'POLLERR',
  'POLLHUP',
  'POLLNVAL',
  'UV_READABLE',
  'UV_WRITABLE',
  'VIRTIO_NET_HDR_F_NEEDS_CSUM',
  'VIRTIO_NET_HDR_F_DATA_VALID',
  'VIRTIO_NET_HDR_GSO_NONE',
  'VIRTIO_NET_HDR_LEN',
  'BPF_MAXINSNS',
  'SKF_NET_OFF',
  'SKF_AD_OFF',
  'SOCKADDR_IN6_LEN',
  'SOCKADDR_IN6_ADDR_OFF',
  'SOCKADDR_IN6_SCOPE_OFF',
  'WRITE_SKIP',
  'WRITE_END',
  'WRITE_FATAL',
  'M_MMAP_THRESHOLD',
] as const;

/**
 * Kernel constants the shim does not export, from the Linux UAPI headers (stable ABI, the same
 * on every architecture): a rebuild of the addon is not worth a number that cannot change.
 */
export const LINUX = {
  /** IPV6_ADD_MEMBERSHIP (also IPV6_JOIN_GROUP), linux/in6.h: join a multicast group (struct ipv6_mreq). */
  IPV6_JOIN_GROUP: 20,
  /** IPV6_DROP_MEMBERSHIP (also IPV6_LEAVE_GROUP). */
  IPV6_LEAVE_GROUP: 21,
} as const;

export type NativeConstants = { readonly [N in (typeof CONSTANT_NAMES)[number]]: number };

/** An opaque uv_poll handle; pass it back to `pollStop`. */
export interface NativePollHandle {
  readonly __clatdPoll?: never;
}

/** Every call returns `-errno` on failure unless noted. Byte arguments take any Uint8Array or Buffer. */
export interface NativeAddon {
  readonly constants: NativeConstants;
  /** open("/dev/net/tun") + TUNSETIFF with IFF_* `flags`; `name` may be a pattern like `tun%d`. */
  tunOpen(name: string, flags: number): { fd: number; name: string } | number;
  tunSetPersist(fd: number, on: number): number;
  /** TUNSETQUEUE: attach (1) or detach (0) this queue of a multi-queue TUN. */
  tunSetQueue(fd: number, attach: number): number;
  /** TUNSETOFFLOAD with TUN_F_* `flags` (device-wide); 0 or -errno. */
  tunSetOffload(fd: number, flags: number): number;
  /** TUNGETIFF: the device's IFF_* flags (a multi-queue device keeps its first queue's), or -errno. */
  tunGetFlags(fd: number): number;
  /** socket(2), always with SOCK_NONBLOCK | SOCK_CLOEXEC added. */
  socket(domain: number, type: number, protocol: number): number;
  /** socketpair(2) into `fds[0]`, `fds[1]`, both non-blocking and close-on-exec; 0 or -errno. */
  socketPair(domain: number, type: number, fds: Int32Array): number;
  setsockoptInt(fd: number, level: number, name: number, value: number): number;
  setsockoptBuf(fd: number, level: number, name: number, value: Uint8Array): number;
  /** The option's int value (assumed not negative), or -errno. */
  getsockoptInt(fd: number, level: number, name: number): number;
  /** getsockopt(2) into `buf` (a struct the caller decodes): the option's length, or -errno. */
  getsockoptBuf(fd: number, level: number, name: number, buf: Uint8Array | Uint32Array): number;
  /** setsockopt(IPPROTO_IPV6, name, struct ipv6_mreq { addr, ifindex }). */
  setsockoptMreq6(fd: number, name: number, addr: Uint8Array, ifindex: number): number;
  /** SO_ATTACH_FILTER with a classic BPF program of 8-byte instructions (see bpf.ts). */
  attachFilter(fd: number, program: Uint8Array): number;
  /**
   * bpf(2) with a `union bpf_attr` built by the caller; `ptrs` = [offset, array | null, ...]: each
   * array's address is written into `attr` at that offset first. The result, or -errno.
   */
  bpf(cmd: number, attr: Uint8Array, ptrs: (number | Uint8Array | null)[]): number;
  /** bind(2) of an AF_PACKET socket; `protocol` in host byte order. */
  bindPacket(fd: number, protocol: number, ifindex: number): number;
  /** bind(2) of a netlink socket to multicast `groups` (bit mask); the kernel picks the port id. */
  bindNetlink(fd: number, groups: number): number;
  /** The netlink port id the kernel assigned (getsockname). */
  netlinkPortId(fd: number): number;
  send(fd: number, data: Uint8Array, flags?: number): number;
  /** sendto(2) with a packed sockaddr in `name`. */
  sendto(fd: number, data: Uint8Array, name: Uint8Array): number;
  /** recv(2); with MSG_TRUNC the result is the full datagram length. */
  recv(fd: number, data: Uint8Array, flags?: number): number;
  read(fd: number, data: Uint8Array): number;
  write(fd: number, data: Uint8Array): number;
  close(fd: number): number;
  /** madvise(2) over [addr, addr + length) with an MADV_* constant; 0 or -errno. */
  madvise(addr: bigint, length: bigint, advice: number): number;
  /**
   * One blocking poll(2) for POLLIN on each fd of the bound set `id` ([fds, revents], Int32Arrays;
   * negative fds skipped) for up to `timeoutMs`: the number of fds with events (their revents in
   * `revents`), 0 on timeout or EINTR, or -errno.
   */
  pollMany(id: number, timeoutMs: number): number;
  /** eventfd(2), non-blocking; `semaphore` non-zero for EFD_SEMAPHORE. */
  eventfd(initval: number, semaphore?: number): number;
  eventfdWrite(fd: number, value: number): number;
  /** The counter (> 0), or -EAGAIN when it is 0. */
  eventfdRead(fd: number): number;
  /**
   * setns(fd, CLONE_NEWNET): moves the calling thread (only) into the network namespace open as
   * `fd`. Sockets and devices created afterwards belong to it. For tests and tools.
   */
  setNetns(fd: number): number;
  /**
   * Becomes uid:gid (no supplementary groups) keeping only the capabilities numbered in `caps`, in
   * the permitted, effective, inheritable and ambient sets; the rest leave the bounding set too.
   * 0 or -errno. Call on the main thread before workers start (native/clatd.c says why).
   */
  dropPrivileges(uid: number, gid: number, caps: number[]): number;
  /** if_nametoindex(3): the index, or -ENODEV. */
  ifNameToIndex(name: string): number;
  ifIndexToName(index: number): string | number;
  /** mallopt(3): 1 on success, 0 on failure. */
  mallopt(param: number, value: number): number;
  /**
   * Binds up to six typed arrays (null: an empty slot) as one set that the batched calls and
   * pollMany take by number, instead of as arguments of every call (the shim says why). The shim
   * holds them until {@link unbind}. Returns the number, or -ENOMEM. Batched calls use the layout
   * [data, offs, lens, disp, stats, names].
   */
  bind(...arrays: (Uint8Array | Uint32Array | Int32Array | null)[]): number;
  /** Releases a set: 1, or 0 when `id` was not bound. */
  unbind(id: number): number;
  /**
   * read(2) into slots `start`..`start+max-1` (slot i = data[base + i*stride, base + (i+1)*stride),
   * `base` being PacketBatch.base) of the bound set `id`, packet at headroom bytes into its slot,
   * until EAGAIN: sets offs/lens, returns the count (0: nothing ready) or -errno when the first
   * read fails.
   */
  readBatch(fd: number, id: number, start: number, max: number, stride: number, headroom: number, base: number): number;
  /** recvmmsg(2) into the same slot layout as readBatch, with MSG_TRUNC (lens may exceed the slot). */
  recvBatch(fd: number, id: number, start: number, max: number, stride: number, headroom: number, base: number): number;
  /**
   * write(2) of each packet of the bound set `id` in `start`..`start+count-1` with lens[i] > 0 and
   * disp[i] == wantDisp (-1: all). Failed packets are counted into the set's stats ([failed, last
   * errno]) when it has one, and skipped, or end the batch, as {@link writeErrnoClass} says (an
   * ending errno counts the rest of the batch too); returns packets written, or -errno when none
   * was and one failed.
   */
  writeBatch(fd: number, id: number, start: number, count: number, wantDisp: number, vnetHdr?: number): number;
  /** sendmmsg(2) of the same selection as writeBatch; packet i goes to names[i*nameLen, +nameLen). */
  sendBatch(fd: number, id: number, start: number, count: number, wantDisp: number, nameLen: number): number;
  /**
   * What a failed packet does to writeBatch and sendBatch (the shim's errno policy, written down
   * beside them): K.WRITE_SKIP (counted, the batch goes on), K.WRITE_END (counted with every later
   * packet, the batch ends, the fd is fine) or K.WRITE_FATAL (the same, and the fd is gone:
   * isClosedErrno in errors.ts is true for exactly these). For tests, which hold the two sides together.
   */
  writeErrnoClass(errno: number): number;
  /**
   * uv_poll_start on the calling thread's loop; `callback.call(handle, status, events)` runs while
   * the fd is ready (level-triggered). On status < 0 or a throwing callback the poll is already
   * stopped. Returns -errno (a libuv code) when the fd cannot be polled.
   */
  pollStart(
    fd: number,
    events: number,
    callback: (this: NativePollHandle, status: number, events: number) => void,
  ): NativePollHandle | number;
  /** Stops and closes the poll; idempotent. A stopped poll keeps no loop alive. */
  pollStop(handle: NativePollHandle): void;
}

/** The shim is not built or does not load. */
export class AddonError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_ADDON');
    this.name = 'AddonError';
  }
}

const FILE = join('build', 'Release', 'clatd_native.node');

function locate(): string {
  // dist/src/sys/addon.js -> the project root holds build/; walk up rather than count levels.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, FILE);
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new AddonError(
    `the native addon ${FILE} is not built: run \`npm install\` in the clatd directory (it needs g++, make and python3)`,
  );
}

function load(): NativeAddon {
  const path = locate();
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    throw new AddonError(
      `cannot load the native addon ${path}: ${(e as Error).message}; rebuild it with \`npm rebuild\``,
    );
  }
  checkConstants(addon.constants, path);
  return addon;
}

/**
 * Throws unless every name of {@link CONSTANT_NAMES} is an integer in `c`: an addon built from an
 * older native/clatd.c (or against headers without a constant) fails here, at start, naming what
 * it lacks, and not later as a flag silently 0.
 */
export function checkConstants(c: unknown, path: string): asserts c is NativeConstants {
  const table = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>;
  const bad = CONSTANT_NAMES.filter((name) => !Number.isInteger(table[name]));
  if (bad.length > 0) {
    throw new AddonError(
      `the native addon ${path} lacks the constants ${bad.join(', ')} (or they are not integers): ` +
        'it was built from another version of native/clatd.c; rebuild it with `npm rebuild`',
    );
  }
}

/**
 * The shim, loaded once per thread (the module is context-aware, so workers load their own).
 * Copied into plain objects: the addon's exports and its constants arrive in dictionary mode
 * (properties added one by one from C), and V8's optimised code cannot inline a load from such an
 * object: every `native.readBatch` or `K.POLLNVAL` on the packet path was a generic LoadIC call.
 */
export const native: NativeAddon = { ...load() };
/** Kernel constants from the shim. */
export const K: NativeConstants = { ...native.constants };

/** if_nametoindex(3), throwing a SysError that names the interface when it does not exist. */
export function interfaceIndex(name: string): number {
  if (name.length === 0 || Buffer.byteLength(name) >= K.IFNAMSIZ) {
    throw sysError(Errno.EINVAL, 'if_nametoindex', name, `interface names are 1 to ${K.IFNAMSIZ - 1} bytes`);
  }
  const r = native.ifNameToIndex(name);
  if (r < 0)
    throw sysError(-r, 'if_nametoindex', name, r === -Errno.ENODEV ? `interface ${name} does not exist` : undefined);
  return r;
}

/** if_indextoname(3). */
export function interfaceName(index: number): string {
  const r = native.ifIndexToName(index);
  if (typeof r === 'number') throw sysError(-r, 'if_indextoname', String(index));
  return r;
}
