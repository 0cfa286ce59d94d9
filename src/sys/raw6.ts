/**
 * The transmit side of the uplink: an AF_INET6 SOCK_RAW IPPROTO_RAW socket (we write the whole IPv6
 * header), bound to the uplink with SO_BINDTODEVICE. Batches go out with sendmmsg; each packet
 * needs a destination sockaddr_in6 for the route lookup, which `write` fills from the packet's own
 * destination address (the kernel sends the header as written).
 *
 * The same socket holds the CLAT address as an anycast address (IPV6_JOIN_ANYCAST), so the kernel
 * answers neighbor solicitations for it without owning it; the membership lasts as long as the
 * socket. IPV6_MULTICAST_LOOP is off so our own DAD probe is not looped back and answered by the
 * local stack.
 */
import { formatIPv6 } from '../core/addr/ipv6.js';
import type { PacketBatch } from '../core/batch.js';
import { K, LINUX, native } from './addon.js';
import { BatchBinding } from './binding.js';
import { ClosedError, check, Errno, isClosedErrno, sysError } from './errors.js';
import type { PacketIo } from './io.js';
import { closeFd } from './poll.js';
import type { IoErrors } from './tun.js';

export interface Raw6Options {
  /** Uplink name (SO_BINDTODEVICE) and index (scope of link-local and multicast destinations). */
  ifname: string;
  ifindex: number;
  /** Most packets per write call. Default 64. */
  batchSize?: number;
  /** SO_SNDBUFFORCE in bytes (falls back to SO_SNDBUF without privilege). */
  sndbuf?: number;
}

// struct sockaddr_in6, from the shim's headers (28 bytes; address at 8, scope id at 24).
const NAME_LEN = K.SOCKADDR_IN6_LEN;
const ADDR_OFF = K.SOCKADDR_IN6_ADDR_OFF;
const SCOPE_OFF = K.SOCKADDR_IN6_SCOPE_OFF;

const ANYCAST_HINT = 'joining an anycast address needs CAP_NET_ADMIN: run clatd as root or grant the capability';

export class Raw6Socket implements PacketIo {
  readonly batchSize: number;
  readonly ifname: string;
  readonly ifindex: number;
  readonly errors: IoErrors = { readErrors: 0, writeErrors: 0, lastErrno: 0 };
  #fd: number;
  readonly #stats = new Int32Array(2);
  /**
   * One sockaddr_in6 per batch slot, for `batchSize` slots from the start; grows (rarely) with a
   * larger batch. Not lazily: the first write would take the growth path, and code V8 optimised
   * without ever seeing it run (a function's first calls record no feedback) is thrown away there.
   */
  #names: Uint8Array;
  /** The set [data, offs, lens, disp, stats, names] of the last batch written (see binding.ts). */
  #tx: BatchBinding;
  readonly #one = sockaddrs(1);
  readonly #anycast = new Map<string, Uint8Array>();
  readonly #groups = new Map<string, Uint8Array>();

  private constructor(fd: number, o: Raw6Options) {
    this.#fd = fd;
    this.ifname = o.ifname;
    this.ifindex = o.ifindex;
    this.batchSize = o.batchSize ?? 64;
    this.#names = sockaddrs(this.batchSize);
    this.#tx = new BatchBinding(`raw IPv6 socket on ${o.ifname}`, [this.#stats, this.#names]);
  }

  /**
   * Wraps `fd`, which only behaves like a raw IPv6 socket: one end of an AF_UNIX
   * SOCK_SEQPACKET pair, with the same reads and writes and no device behind it. The datapath's
   * warm-up runs this class over such stand-ins, so that V8 optimises its packet paths before the
   * first real packet (datapath/stand-ins.ts). Closing the object closes `fd`.
   */
  static overFd(fd: number, o: Raw6Options): Raw6Socket {
    return new Raw6Socket(fd, o);
  }

  static open(o: Raw6Options): Raw6Socket {
    const what = `raw IPv6 socket on ${o.ifname}`;
    const fd = check(native.socket(K.AF_INET6, K.SOCK_RAW, K.IPPROTO_RAW), 'socket', what);
    try {
      const opt = (level: number, name: number, value: number, label: string) =>
        check(native.setsockoptInt(fd, level, name, value), `setsockopt(${label})`, what);
      const dev = new TextEncoder().encode(`${o.ifname}\0`);
      const r = native.setsockoptBuf(fd, K.SOL_SOCKET, K.SO_BINDTODEVICE, dev);
      if (r < 0) {
        throw sysError(
          -r,
          'setsockopt(SO_BINDTODEVICE)',
          o.ifname,
          -r === Errno.ENODEV ? `interface ${o.ifname} does not exist` : undefined,
        );
      }
      opt(K.IPPROTO_IPV6, K.IPV6_MULTICAST_LOOP, 0, 'IPV6_MULTICAST_LOOP');
      opt(K.IPPROTO_IPV6, K.IPV6_MULTICAST_HOPS, 255, 'IPV6_MULTICAST_HOPS');
      if (o.sndbuf !== undefined) {
        if (native.setsockoptInt(fd, K.SOL_SOCKET, K.SO_SNDBUFFORCE, o.sndbuf) < 0) {
          opt(K.SOL_SOCKET, K.SO_SNDBUF, o.sndbuf, 'SO_SNDBUF');
        }
      }
    } catch (e) {
      native.close(fd);
      throw e;
    }
    return new Raw6Socket(fd, o);
  }

  get fd(): number {
    return this.#fd;
  }

  /** IPV6_JOIN_ANYCAST `addr` on the uplink; held until {@link leaveAnycast} or close. */
  joinAnycast(addr: Uint8Array): void {
    const key = hex(addr);
    if (this.#anycast.has(key)) return;
    const r = native.setsockoptMreq6(this.#live(), K.IPV6_JOIN_ANYCAST, addr, this.ifindex);
    if (r < 0) {
      const hint =
        -r === Errno.EINVAL
          ? 'the address is already assigned to this host, or not a valid unicast address'
          : -r === Errno.EPERM || -r === Errno.EACCES
            ? ANYCAST_HINT
            : undefined;
      throw sysError(-r, 'setsockopt(IPV6_JOIN_ANYCAST)', `${formatIPv6(addr)} on ${this.ifname}`, hint);
    }
    this.#anycast.set(key, Uint8Array.from(addr));
  }

  /** IPV6_LEAVE_ANYCAST; a no-op for an address not joined through this socket. */
  leaveAnycast(addr: Uint8Array): void {
    const key = hex(addr);
    if (!this.#anycast.has(key) || this.#fd < 0) return;
    const r = native.setsockoptMreq6(this.#fd, K.IPV6_LEAVE_ANYCAST, addr, this.ifindex);
    this.#anycast.delete(key);
    if (r < 0) throw sysError(-r, 'setsockopt(IPV6_LEAVE_ANYCAST)', `${formatIPv6(addr)} on ${this.ifname}`);
  }

  /**
   * Joins the multicast group `group` on the uplink (IPV6_JOIN_GROUP), held until
   * {@link leaveGroup} or close: the NIC's filter then lets the group's frames in, and MLD
   * announces the membership to snooping switches. Nothing host-wide changes.
   */
  joinGroup(group: Uint8Array): void {
    const key = hex(group);
    if (this.#groups.has(key)) return;
    const r = native.setsockoptMreq6(this.#live(), LINUX.IPV6_JOIN_GROUP, group, this.ifindex);
    if (r < 0) throw sysError(-r, 'setsockopt(IPV6_JOIN_GROUP)', `${formatIPv6(group)} on ${this.ifname}`);
    this.#groups.set(key, Uint8Array.from(group));
  }

  /** IPV6_LEAVE_GROUP; a no-op for a group not joined through this socket. */
  leaveGroup(group: Uint8Array): void {
    const key = hex(group);
    if (!this.#groups.has(key) || this.#fd < 0) return;
    this.#groups.delete(key);
    const r = native.setsockoptMreq6(this.#fd, LINUX.IPV6_LEAVE_GROUP, group, this.ifindex);
    if (r < 0) throw sysError(-r, 'setsockopt(IPV6_LEAVE_GROUP)', `${formatIPv6(group)} on ${this.ifname}`);
  }

  /** The multicast groups this socket holds. */
  get groups(): Uint8Array[] {
    return [...this.#groups.values()];
  }

  /** The anycast addresses this socket holds. */
  get anycast(): Uint8Array[] {
    return [...this.#anycast.values()];
  }

  /** A raw IP socket receives nothing here (IPPROTO_RAW is send-only). */
  read(_into: PacketBatch, _headroom: number): number {
    return 0;
  }

  /**
   * Sends the IPv6 packets of `from` with disp `disp` (all when undefined), each to its own
   * destination address. Refused packets are counted in `errors` and skipped.
   */
  write(from: PacketBatch, disp?: number): number {
    const fd = this.#live();
    const names = this.#namesFor(from.count);
    const d = from.data;
    const want = disp ?? -1;
    for (let i = 0; i < from.count; i++) {
      const len = from.lens[i];
      if (len === 0 || (want >= 0 && from.disp[i] !== want)) continue;
      this.#fill(names, i * NAME_LEN, d, from.offs[i], len);
    }
    const stats = this.#stats;
    stats[0] = 0;
    const n = native.sendBatch(fd, this.#tx.idFor(from), 0, from.count, want, NAME_LEN);
    if (stats[0] > 0) {
      this.errors.writeErrors += stats[0];
      this.errors.lastErrno = stats[1];
    }
    // The same errno policy as Tun.write (native/clatd.c, write_errno_class): failed packets are
    // counted in stats; -errno means nothing went out, and only a fatal errno is more than a drop.
    if (n < 0) {
      if (isClosedErrno(-n)) throw new ClosedError(`raw IPv6 socket on ${this.ifname}`);
      return 0;
    }
    return n;
  }

  /** Sends one IPv6 packet (e.g. the DAD probe) to its own destination; throws SysError on failure. */
  sendOne(packet: Uint8Array): void {
    const fd = this.#live();
    if (packet.length < 40) throw new RangeError('an IPv6 packet has at least 40 bytes');
    this.#fill(this.#one, 0, packet, 0, packet.length);
    const r = native.sendto(fd, packet, this.#one);
    if (r < 0) throw sysError(-r, 'sendto', `raw IPv6 socket on ${this.ifname}`);
  }

  /** Idempotent; drops the anycast and multicast memberships with the socket. */
  close(): void {
    this.#tx.release();
    if (this.#fd < 0) return;
    closeFd(this.#fd);
    this.#fd = -1;
    this.#anycast.clear();
    this.#groups.clear();
  }

  /** sockaddr_in6 at names[o]: family AF_INET6, port 0, flowinfo 0, the packet's destination, scope. */
  #fill(names: Uint8Array, o: number, d: Uint8Array, p: number, len: number): void {
    if (len < 40) {
      names.fill(0, o + ADDR_OFF, o + ADDR_OFF + 16);
      return;
    }
    // Byte by byte: a subarray() view here would be an allocation per packet.
    for (let i = 0; i < 16; i++) names[o + ADDR_OFF + i] = d[p + 24 + i];
    // Link-local (fe80::/10) and multicast destinations need the interface as scope id.
    const scoped = d[p + 24] === 0xff || (d[p + 24] === 0xfe && (d[p + 25] & 0xc0) === 0x80);
    const scope = scoped ? this.ifindex : 0;
    names[o + SCOPE_OFF] = scope & 0xff; // host order (little-endian)
    names[o + SCOPE_OFF + 1] = (scope >>> 8) & 0xff;
    names[o + SCOPE_OFF + 2] = (scope >>> 16) & 0xff;
    names[o + SCOPE_OFF + 3] = scope >>> 24;
  }

  #namesFor(count: number): Uint8Array {
    if (this.#names.length < count * NAME_LEN) {
      // Allocated once per growth (the batch capacity), never per packet.
      this.#names = sockaddrs(Math.max(count, this.batchSize));
      this.#tx.release();
      this.#tx = new BatchBinding(this.#tx.what, [this.#stats, this.#names]);
    }
    return this.#names;
  }

  #live(): number {
    if (this.#fd < 0) throw new ClosedError(`raw IPv6 socket on ${this.ifname}`);
    return this.#fd;
  }
}

/** `n` zeroed sockaddr_in6 with the family set (sa_family_t in host order, little-endian). */
function sockaddrs(n: number): Uint8Array {
  const names = new Uint8Array(n * NAME_LEN);
  for (let o = 0; o < names.length; o += NAME_LEN) {
    names[o] = K.AF_INET6 & 0xff;
    names[o + 1] = K.AF_INET6 >>> 8;
  }
  return names;
}

function hex(a: Uint8Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');
}
