/**
 * The kernel fast path beside the user-space datapath (programs in src/offload/): while the
 * datapath runs, the two tc programs for the current addresses are attached with tcx links — 6→4
 * on the uplink's ingress, 4→6 on the TUN's egress — and translate the plain packets before they
 * ever reach a worker; everything else still goes through the workers. While the datapath is
 * paused (DAD, uplink down) or being reconfigured the links are gone, so the user-space datapath
 * alone decides then. Links are fds: if the process dies, the kernel detaches them.
 *
 * Why this exists: a packet that wakes a worker pays for a wake-up of user space (on a software-
 * virtualised host, far more than the translation); the kernel path pays none (bench/README.md).
 * Android's clatd does the same for TCP and UDP since Android 13; here ping is offloaded too.
 */
import { parseIPv4 } from '../core/addr/ipv4.js';
import { parseIPv6 } from '../core/addr/ipv6.js';
import { resolveConfig } from '../core/xlat/config.js';
import { OFFLOAD_TC_PRIO } from '../offload/abi.js';
import { AF_INET6, buildEgress4, NEXT_HOP_LEN } from '../offload/egress4.js';
import { buildIngress6 } from '../offload/ingress6.js';
import { planOffload } from '../offload/plan.js';
import {
  COUNTER_46,
  COUNTER_46_FAILED,
  COUNTER_64,
  COUNTER_64_FAILED,
  COUNTER_SLOTS,
  COUNTER_VALUE_LEN,
} from '../offload/snippets.js';
import { attachTcx, closeBpf, createArrayMap, loadTcProgram, lookupArray, updateArray } from '../sys/ebpf.js';
import { Errno, SysError } from '../sys/errors.js';
import type { Rtnl } from '../sys/rtnetlink/index.js';
import type { Logger } from './log.js';
import { type NextHopChoice, NOT_RESOLVED } from './next-hop.js';
import type { Counters, XlatParams } from './ports.js';
import { translatorConfig } from './translator-config.js';

export type OffloadMode = 'auto' | 'off';

/**
 * How the programs are attached: tcx links (Linux ≥ 6.6; fds, gone with the process) or, where
 * the kernel has no tcx, classic tc filters on a clsact qdisc at this priority (they outlive a
 * crash: the next start deletes the uplink's one, the TUN's goes with the TUN), at
 * OFFLOAD_TC_PRIO.
 */
export type AttachVia = 'tcx' | 'tc';

export interface OffloadDevices {
  readonly uplinkIfindex: number;
  readonly uplinkName: string;
  /** Bytes of link header in front of IPv6 on the uplink (14 on Ethernet, 0 on raw IP). */
  readonly linkHeaderLen: number;
  readonly tunIfindex: number;
  readonly tunName: string;
}

export interface OpenOptions {
  /** For classic tc filters where the kernel has no tcx. */
  readonly rtnl?: Rtnl;
  /** Attach this way rather than find out (tests). */
  readonly via?: AttachVia;
}

/** Per direction: packets and input bytes the kernel translated, packets it dropped half-done. */
export interface OffloadCounts {
  packets: number;
  bytes: number;
  failed: number;
}

export class KernelOffload {
  readonly #dev: OffloadDevices;
  readonly #log: Logger;
  readonly #map: number;
  /** The 4→6 program's next hop (egress4.ts NEXT_HOP_LEN): one entry, invalid until the daemon sets it. */
  readonly #nextHopMap: number;
  readonly #nextHopValue = new Uint8Array(NEXT_HOP_LEN);
  #nextHop: NextHopChoice = NOT_RESOLVED;
  #fds: number[] = [];
  /** Classic tc filters attached (tc mode). */
  #filters: { ifindex: number; hook: 'ingress' | 'egress' }[] = [];
  readonly #rtnl: Rtnl | null;
  /** Found on the first attach unless given: tcx where the kernel has it. */
  #via: AttachVia | undefined;
  #closed = false;
  #attached = false;
  /** Why the offload is off for the current addresses (logged once per reason). */
  #why = '';
  readonly #value = new Uint8Array(COUNTER_VALUE_LEN);
  #final: { '46': OffloadCounts; '64': OffloadCounts } | null = null;

  private constructor(dev: OffloadDevices, log: Logger, map: number, nextHopMap: number, o: OpenOptions) {
    this.#dev = dev;
    this.#log = log;
    this.#map = map;
    this.#nextHopMap = nextHopMap;
    this.#rtnl = o.rtnl ?? null;
    this.#via = o.via;
  }

  /**
   * The offload for these devices, or why this host cannot have one (logged). With `rtnl`, a
   * kernel without tcx gets classic tc filters instead.
   */
  static open(dev: OffloadDevices, log: Logger, o: OpenOptions = {}): KernelOffload | string {
    if (dev.linkHeaderLen !== 0 && dev.linkHeaderLen !== 14) {
      const why = `not used: ${dev.uplinkName} has a ${dev.linkHeaderLen}-byte link header`;
      log.info('offload', why);
      return why;
    }
    let counters = -1;
    try {
      counters = createArrayMap('clatd_counters', COUNTER_VALUE_LEN, COUNTER_SLOTS);
      return new KernelOffload(dev, log, counters, createArrayMap('clatd_nexthop', NEXT_HOP_LEN, 1), o);
    } catch (e) {
      if (counters >= 0) closeBpf(counters);
      const why = `not used, all packets go through the workers: ${(e as Error).message}`;
      log.warn('offload', why);
      return why;
    }
  }

  /** The state in words, for status. */
  describe(): string {
    if (this.#closed) return 'stopped';
    if (this.attached) {
      const how = this.#via === 'tc' ? ', classic tc filters' : '';
      const nh =
        this.#nextHop.address !== undefined
          ? `next hop ${this.#nextHop.address}`
          : `kernel route lookup: ${this.#nextHop.why}`;
      return `in use (${this.#dev.uplinkName} ingress, ${this.#dev.tunName} egress${how}; ${nh})`;
    }
    return this.#why !== '' ? this.#why : 'detached while translation is paused';
  }

  /** Whether the programs are attached now. */
  get attached(): boolean {
    return this.#attached;
  }

  /** Attaches one program: a tcx link, or a classic tc filter where the kernel has no tcx. */
  #hook(prog: number, name: string, ifindex: number, dev: string, hook: 'ingress' | 'egress'): void {
    if (this.#via !== 'tc') {
      try {
        this.#fds.push(attachTcx(prog, ifindex, hook, dev));
        this.#via = 'tcx';
        return;
      } catch (e) {
        // EINVAL on the first attach: this kernel has no tcx (before 6.6).
        const noTcx = e instanceof SysError && e.errno === Errno.EINVAL && this.#via === undefined;
        if (!noTcx || this.#rtnl === null) throw e;
        this.#via = 'tc';
        this.#log.info('offload', 'this kernel has no tcx links (Linux 6.6): attaching with classic tc filters');
      }
    }
    const rtnl = this.#rtnl as Rtnl;
    rtnl.addClsact(ifindex);
    rtnl.addBpfFilter(ifindex, hook, prog, name, OFFLOAD_TC_PRIO);
    this.#filters.push({ ifindex, hook });
  }

  /**
   * Attaches the programs for `p` (detaching any for earlier addresses first). Returns false, with
   * the reason logged once, when the configuration or the kernel does not allow it; the
   * user-space datapath then translates everything, as it would anyway.
   */
  attach(p: XlatParams): boolean {
    this.detach();
    if (this.#closed) return false;
    const config = resolveConfig(translatorConfig(p));
    const choice = planOffload(config, parseIPv4(p.clat4), parseIPv6(p.clat6));
    if (!('plan' in choice)) {
      this.#off(`not used for ${p.clat6}: ${choice.reason}`, 'info');
      return false;
    }
    const d = this.#dev;
    try {
      const ingress = loadTcProgram(
        'clatd_ingress6',
        buildIngress6(choice.plan, { mapFd: this.#map, tunIfindex: d.tunIfindex, l2: d.linkHeaderLen }),
      );
      this.#fds.push(ingress);
      const egress = loadTcProgram(
        'clatd_egress4',
        buildEgress4(choice.plan, {
          mapFd: this.#map,
          uplinkIfindex: d.uplinkIfindex,
          l2: 0,
          nextHopFd: this.#nextHopMap,
        }),
      );
      this.#fds.push(egress);
      this.#hook(ingress, 'clatd_ingress6', d.uplinkIfindex, d.uplinkName, 'ingress');
      this.#hook(egress, 'clatd_egress4', d.tunIfindex, d.tunName, 'egress');
    } catch (e) {
      this.detach();
      this.#off(`not used, all packets go through the workers: ${(e as Error).message}`, 'warn');
      return false;
    }
    if (this.#why !== '') this.#log.info('offload', 'in use again');
    else
      this.#log.info(
        'offload',
        `plain TCP, UDP and ping translated in the kernel (${d.uplinkName} ingress, ${d.tunName} egress)`,
      );
    this.#why = '';
    this.#attached = true;
    return true;
  }

  /**
   * Where the 4→6 program sends translated packets: to `c.address` on the uplink, or (no address)
   * wherever the kernel's route lookup says, per packet. A map write: the programs stay attached.
   * The address is written before the entry is marked valid, so the program never reads a half-
   * written one; clearing only unmarks it.
   */
  setNextHop(c: NextHopChoice): void {
    if (this.#closed) return;
    const v = this.#nextHopValue;
    v[0] = 0;
    if (c.address !== undefined) {
      v.set(parseIPv6(c.address), 4);
      updateArray(this.#nextHopMap, 0, v);
      v[0] = AF_INET6;
    }
    updateArray(this.#nextHopMap, 0, v);
    this.#nextHop = c;
  }

  /** The next hop the 4→6 program uses now (no address: the kernel's lookup, and why). */
  get nextHop(): NextHopChoice {
    return this.#nextHop;
  }

  #off(why: string, level: 'info' | 'warn'): void {
    if (why === this.#why) return;
    this.#why = why;
    this.#log[level]('offload', why);
  }

  /** Detaches the programs (links and filters first, so nothing runs half-torn-down); idempotent. */
  detach(): void {
    this.#attached = false;
    for (const f of this.#filters) {
      try {
        this.#rtnl?.deleteBpfFilter(f.ifindex, f.hook, OFFLOAD_TC_PRIO);
        // The clsact qdisc added for them too, unless it holds other filters.
        this.#rtnl?.deleteClsactIfEmpty(f.ifindex);
      } catch {
        // The device went, and its filters with it.
      }
    }
    this.#filters = [];
    // Links were pushed last: close them before the programs they hold.
    for (const fd of this.#fds.reverse()) closeBpf(fd);
    this.#fds = [];
  }

  /** Detaches and frees the map, keeping its last counts (the daemon adds them up after a stop); idempotent. */
  close(): void {
    if (this.#closed) return;
    this.detach();
    this.#final = this.counts();
    this.#closed = true;
    closeBpf(this.#map);
    closeBpf(this.#nextHopMap);
  }

  #read(slot: number): { packets: number; bytes: number } {
    lookupArray(this.#map, slot, this.#value);
    const v = new DataView(this.#value.buffer);
    return { packets: Number(v.getBigUint64(0, true)), bytes: Number(v.getBigUint64(8, true)) };
  }

  /** What the kernel translated so far, per input direction. */
  counts(): { '46': OffloadCounts; '64': OffloadCounts } {
    if (this.#final !== null) return this.#final;
    const c46 = this.#read(COUNTER_46);
    const c64 = this.#read(COUNTER_64);
    return {
      '46': { ...c46, failed: this.#read(COUNTER_46_FAILED).packets },
      '64': { ...c64, failed: this.#read(COUNTER_64_FAILED).packets },
    };
  }
}

/**
 * The datapath's counters with the kernel's added in: its packets are inputs translated like the
 * workers' ones, and `offloaded` says how many of them the kernel did. Bytes out (where the
 * datapath counts them) grow by the 20 bytes per packet the header changes by.
 */
export function withOffload(c: Counters, o: { '46': OffloadCounts; '64': OffloadCounts }): Counters {
  const add = (d: Counters['46'], k: OffloadCounts, grow: number): Counters['46'] => {
    const out = { ...d, drops: { ...d.drops } };
    const x = d as Counters['46'] & { bytesOut?: number };
    out.packets += k.packets + k.failed;
    out.bytes += k.bytes;
    out.translated = (d.translated ?? 0) + k.packets;
    out.packetsOut = (d.packetsOut ?? 0) + k.packets;
    if (x.bytesOut !== undefined) (out as typeof x).bytesOut = x.bytesOut + k.bytes + grow * k.packets;
    out.offloaded = k.packets;
    if (k.failed > 0) out.drops.offload_failed = (out.drops.offload_failed ?? 0) + k.failed;
    return out;
  };
  return { ...c, '46': add(c['46'], o['46'], 20), '64': add(c['64'], o['64'], -20) };
}
