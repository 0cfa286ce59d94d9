/**
 * In-memory implementations of the daemon's ports (src/daemon/ports.ts): a host with links,
 * addresses and routes that a test edits and announces with events, a manual clock, a DAD that
 * answers "duplicate" for chosen addresses, and plumbing that records every call and what exists.
 */

import { formatIPv6, parseIPv6 } from '../../src/core/addr/ipv6.js';
import { type Prefix6, parsePrefix6 } from '../../src/core/addr/prefix.js';
import type { RunConfig } from '../../src/daemon/config.js';
import { resolveConfig } from '../../src/daemon/config.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { Logger } from '../../src/daemon/log.js';
import type { NextHopChoice } from '../../src/daemon/next-hop.js';
import type {
  AddrInfo,
  Announce,
  Clock,
  Counters,
  DadOutcome,
  DadPort,
  DaemonDeps,
  DatapathHandle,
  Dns64Port,
  IdentityPort,
  Ipv4Side,
  LanPlan,
  LanPort,
  LanTraffic,
  LinkInfo,
  NetEvent,
  NetPort,
  PlumbingPort,
  ResponderStatus,
  RouteInfo,
  RouteVia,
  TakenAddress,
  UplinkSide,
  XlatParams,
} from '../../src/daemon/ports.js';
import type { DefaultRoute6 } from '../../src/daemon/route-order.js';

export class FakeClock implements Clock {
  t = 1_000_000;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #id = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#timers = this.#timers.filter((x) => x.id !== h);
  }
  /** Advances time, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

export class FakeNet implements NetPort {
  links_: LinkInfo[] = [];
  addrs: AddrInfo[] = [];
  default6?: number;
  defaults4: number[] = [];
  /** Path MTU reported by routeGet6, by ifindex (default: the link MTU). */
  pathMtu = new Map<number, number>();
  listener?: (e: NetEvent) => void;
  watching = false;

  async links(): Promise<LinkInfo[]> {
    return this.links_.map((l) => ({ ...l }));
  }
  async addresses(): Promise<AddrInfo[]> {
    return this.addrs.map((a) => ({ ...a }));
  }
  async defaultRoute6(): Promise<RouteInfo | undefined> {
    return this.default6 === undefined ? undefined : { ifindex: this.default6 };
  }
  async defaultRoutes4(): Promise<RouteInfo[]> {
    return this.defaults4.map((ifindex) => ({ ifindex }));
  }
  /** The IPv6 default routes in the kernel's order; unset: one of metric 1024 via `default6`. */
  routes6: DefaultRoute6[] | undefined;
  async defaultRoutes6(): Promise<DefaultRoute6[]> {
    if (this.routes6) return this.routes6.map((r) => ({ ...r }));
    return this.default6 === undefined ? [] : [{ ifindex: this.default6, metric: 1024, pref: 'medium' }];
  }
  async routeGet6(_dst: string, oif: number): Promise<RouteInfo | undefined> {
    const link = this.links_.find((l) => l.index === oif);
    if (!link) return undefined;
    const src = this.addrs.find((a) => a.ifindex === oif && a.family === 6 && a.scope === 'global')?.address;
    return { ifindex: oif, src, mtu: this.pathMtu.get(oif) ?? link.mtu };
  }
  /** What routeVia6 answers (the route of the CLAT's flows); unset: on-link, out of `oif`. */
  via6: RouteVia | undefined;
  /** Each routeVia6 question: destination, oif, source. */
  viaAsked: string[] = [];
  async routeVia6(dst: string, oif: number, src: string): Promise<RouteVia | undefined> {
    this.viaAsked.push(`${dst} ${oif} ${src}`);
    return this.via6 ? { ...this.via6 } : { ifindex: oif, multipath: false };
  }
  solicited: number[] = [];
  solicit(ifindex: number): void {
    this.solicited.push(ifindex);
  }
  watch(onEvent: (e: NetEvent) => void): { close(): void } {
    this.listener = onEvent;
    this.watching = true;
    return {
      close: () => {
        this.watching = false;
      },
    };
  }
  emit(e: NetEvent): void {
    this.listener?.(e);
  }
  /** Link `ifindex` goes up or down, and the watcher hears of it as from rtnetlink. */
  setLinkUp(ifindex: number, up: boolean): void {
    const link = this.links_.find((l) => l.index === ifindex);
    if (!link) throw new Error(`no link ${ifindex}`);
    link.up = up;
    this.emit({ type: 'link', ifindex, removed: false });
  }
  /** A typical uplink: eth0 (ifindex 2), up, MTU 1500, 2001:db8:1::10/64, IPv6 default route. */
  static typical(): FakeNet {
    const n = new FakeNet();
    n.links_.push({ index: 1, name: 'lo', up: true, mtu: 65536 }, { index: 2, name: 'eth0', up: true, mtu: 1500 });
    n.addrs.push(
      { ifindex: 1, family: 4, address: '127.0.0.1', prefixLen: 8, scope: 'host' },
      { ifindex: 2, family: 6, address: 'fe80::1', prefixLen: 64, scope: 'link' },
      { ifindex: 2, family: 6, address: '2001:db8:1::10', prefixLen: 64, scope: 'global' },
    );
    n.default6 = 2;
    return n;
  }
}

export class FakeDns64 implements Dns64Port {
  answer: Prefix6[] = [];
  calls = 0;
  async discover(): Promise<Prefix6[]> {
    this.calls++;
    return this.answer;
  }
}

/** Not checksum-neutral, but distinct and inside the /64: enough for orchestration tests. */
export class FakeIdentity implements IdentityPort {
  n = 0;
  selectIPv4(inUse: string[]): string | undefined {
    for (const last of [4, 5, 6, 7, 0, 1, 2, 3]) {
      const a = `192.0.0.${last}`;
      if (!inUse.includes(a)) return a;
    }
    return undefined;
  }
  generateIPv6(o: { prefix64: string }): string {
    const b = parseIPv6(o.prefix64);
    this.n++;
    b[14] = 0xc0 + (this.n >> 8);
    b[15] = this.n & 0xff;
    return formatIPv6(b);
  }
  /** In a routed prefix: the prefix with the same counter in the last two bytes. */
  generateInPrefix(o: { prefix: Prefix6 }): string {
    const b = Uint8Array.from(o.prefix.addr);
    this.n++;
    b[14] = 0xd0 + (this.n >> 8);
    b[15] = this.n & 0xff;
    return formatIPv6(b);
  }
}

export class FakeDad implements DadPort {
  duplicates = new Set<string>();
  probed: string[] = [];
  /** When set, run() waits until the test calls release(). */
  hold = false;
  #release?: () => void;
  /** The next run ends as `interrupted` with this reason (a socket failing under DAD). */
  interruptNext: string | undefined;
  async run(o: Parameters<DadPort['run']>[0]): Promise<DadOutcome> {
    let address = o.first;
    const interrupt = this.interruptNext;
    this.interruptNext = undefined;
    if (interrupt !== undefined) {
      await o.onAddress(address);
      return { ok: false, kind: 'interrupted', address, attempts: 1, duplicates: [], reason: interrupt };
    }
    const dups: { address: string; by: string }[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      await o.onAddress(address);
      this.probed.push(address);
      if (this.hold) {
        await new Promise<void>((r) => {
          this.#release = r;
          o.signal.addEventListener('abort', () => r());
        });
      }
      if (o.signal.aborted)
        return { ok: false, kind: 'stopped', address, attempts: attempt, duplicates: dups, reason: 'aborted' };
      if (!this.duplicates.has(address)) return { ok: true, address, attempts: attempt, duplicates: dups };
      dups.push({ address, by: 'Neighbor Advertisement from fe80::99' });
      if (attempt === 4 || !o.redraw) break;
      address = o.redraw();
    }
    return {
      ok: false,
      kind: 'duplicates',
      address,
      attempts: dups.length,
      duplicates: dups,
      reason: `${address} is in use (Neighbor Advertisement from fe80::99)`,
    };
  }
  release(): void {
    this.#release?.();
  }
}

export class FakePlumbing implements PlumbingPort {
  /** The host the TUN appears on (as a link, ifindex 50) while the IPv4 side is open. */
  constructor(private readonly net?: FakeNet) {}
  ops: string[] = [];
  /** Thrown once by the next createIpv4Side when set. */
  createIpv4Error: Error | undefined;
  /** Thrown by every createIpv4Side while set (a persistent failure, e.g. no privilege for the TUN). */
  createIpv4Always: Error | undefined;
  /** Thrown once by the next startDatapath when set. */
  startDatapathError: Error | undefined;
  /** Objects that exist now, by description. */
  live = new Set<string>();
  leftovers: string[] = [];
  dp?: FakeDatapath;
  dadSysctl = { transmits: 1, retransMs: 1000 };
  /** The `announce` of each openUplink. */
  announced: Announce[] = [];
  /** What the fake responder reports (`respond` sides), as a test sets it. */
  responder: ResponderStatus | undefined;
  /** The kernel refuses every anycast join with EADDRNOTAVAIL while set (no prefix covers it, as it judges). */
  refuseAnycast = false;
  /** Addresses taken off the uplink and not yet given back. */
  taken = new Map<string, AddrInfo>();

  async openUplink(uplink: LinkInfo, clat6: string, _pref64: Prefix6, announce: Announce): Promise<UplinkSide> {
    this.ops.push(`openUplink ${uplink.name} ${clat6} ${announce}`);
    if (announce === 'anycast' && this.refuseAnycast) {
      throw Object.assign(new Error(`setsockopt(IPV6_JOIN_ANYCAST) ${clat6} on ${uplink.name}: EADDRNOTAVAIL`), {
        errnoName: 'EADDRNOTAVAIL',
      });
    }
    this.announced.push(announce);
    this.live.add('uplink');
    return {
      announce,
      table: `clatd-${uplink.name}`,
      filterIntact: async () => this.filterIntact,
      restoreFilter: async () => {
        this.ops.push('restoreFilter');
        const e = this.restoreError;
        this.restoreError = undefined;
        if (e) throw e;
      },
      dadPassed: (a: string) => {
        this.ops.push(`dadPassed ${a}`);
      },
      responder: () => (announce === 'respond' ? this.responder : undefined),
      retarget: async (a: string) => {
        this.ops.push(`retarget ${a}`);
        const e = this.retargetError;
        this.retargetError = undefined;
        if (e) throw e;
      },
      close: async () => {
        this.ops.push('closeUplink');
        this.live.delete('uplink');
      },
    };
  }
  async takeAddress(uplink: LinkInfo, address: string): Promise<TakenAddress | undefined> {
    const net = this.net;
    const a = net?.addrs.find((x) => x.ifindex === uplink.index && x.address === address);
    if (!net || !a) return undefined;
    this.ops.push(`takeAddress ${address}/${a.prefixLen}`);
    net.addrs = net.addrs.filter((x) => x !== a);
    this.taken.set(address, a);
    return {
      address,
      prefixLen: a.prefixLen,
      giveBack: async () => {
        this.ops.push(`giveBack ${address}`);
        this.taken.delete(address);
        if (!net.addrs.some((x) => x.ifindex === a.ifindex && x.address === address)) net.addrs.push(a);
        return [`${address}/${a.prefixLen} put back`];
      },
    };
  }
  async createIpv4Side(o: { name: string; v4: string; mtu: number; metric: number }): Promise<Ipv4Side> {
    this.ops.push(`createIpv4 ${o.name} ${o.v4} mtu=${o.mtu} metric=${o.metric}`);
    const e = this.createIpv4Error ?? this.createIpv4Always;
    this.createIpv4Error = undefined;
    if (e) throw e;
    this.live.add('ipv4');
    const net = this.net;
    net?.links_.push({ index: 50, name: o.name, up: true, mtu: o.mtu });
    // As the kernel lists it: the TUN's /32 is an address in use on the host.
    net?.addrs.push({ ifindex: 50, family: 4, address: o.v4, prefixLen: 32, scope: 'global' });
    let metric: number | undefined = o.metric;
    return {
      name: o.name,
      ifindex: 50,
      v4: o.v4,
      setMtu: async (mtu: number) => {
        this.ops.push(`setMtu ${mtu}`);
      },
      get metric() {
        return metric;
      },
      setRoute: async (m: number | undefined) => {
        this.ops.push(`setRoute ${m ?? 'withdrawn'}`);
        metric = m;
      },
      repair: async () => {
        const fixed = this.ipv4Missing;
        this.ipv4Missing = [];
        if (fixed.length) this.ops.push(`repairIpv4 ${fixed.join(', ')}`);
        return fixed;
      },
      close: async () => {
        this.ops.push('closeIpv4');
        this.live.delete('ipv4');
        if (net) {
          net.links_ = net.links_.filter((l) => l.index !== 50);
          net.addrs = net.addrs.filter((a) => a.ifindex !== 50);
        }
      },
    };
  }
  async startDatapath(o: {
    params: XlatParams;
    paused?: boolean;
    onFailure: (why: string) => void;
  }): Promise<DatapathHandle> {
    this.ops.push(`startDatapath ${o.params.clat4} ${o.params.clat6}${o.paused ? ' paused' : ''}`);
    const e = this.startDatapathError;
    this.startDatapathError = undefined;
    if (e) throw e;
    this.live.add('datapath');
    this.dp = new FakeDatapath(this, o.params, o.onFailure);
    this.dp.paused = o.paused ?? false;
    return this.dp;
  }
  async dadParams(): Promise<{ transmits: number; retransMs: number }> {
    return this.dadSysctl;
  }
  /** What the next repair of the IPv4 side finds missing and puts back (then cleared). */
  ipv4Missing: string[] = [];
  /** What filterIntact answers (false: the table was taken). */
  filterIntact = false;
  /** Thrown once by the next restoreFilter when set. */
  restoreError: Error | undefined;
  /** Thrown once by the next retarget when set (the anycast join or the nft rule refused). */
  retargetError: Error | undefined;
  /** Thrown once by the next cleanupLeftovers when set (e.g. a TUN held by another clatd). */
  leftoversError: Error | undefined;
  async cleanupLeftovers(): Promise<string[]> {
    const e = this.leftoversError;
    this.leftoversError = undefined;
    if (e) throw e;
    const l = this.leftovers;
    this.leftovers = [];
    return l;
  }
}

export class FakeDatapath implements DatapathHandle {
  paused = false;
  params: XlatParams;
  packets = 0;
  /** IPv6 packets in, when they differ from `packets` (nothing comes back, say). */
  packets64: number | undefined;
  constructor(
    private readonly p: FakePlumbing,
    params: XlatParams,
    /** What the real datapath calls when a worker crashes or a device side is given up. */
    readonly fail: (why: string) => void,
  ) {
    this.params = params;
  }
  /** The fast path's next hops as handed over, oldest first ('' for the kernel's lookup). */
  nextHops: string[] = [];
  nextHop(c: NextHopChoice): void {
    this.nextHops.push(c.address ?? '');
  }
  /** Set to make the next reconfigure reject with this message (a worker refusing it). */
  refuse: string | undefined;
  async reconfigure(x: XlatParams): Promise<void> {
    this.p.ops.push(`reconfigure ${x.clat6}`);
    const why = this.refuse;
    this.refuse = undefined;
    if (why !== undefined) throw new Error(why);
    this.params = x;
  }
  async pause(): Promise<void> {
    this.p.ops.push('pause');
    this.paused = true;
  }
  async resume(): Promise<void> {
    this.p.ops.push('resume');
    this.paused = false;
  }
  async stop(): Promise<void> {
    this.p.ops.push('stopDatapath');
    this.p.live.delete('datapath');
  }
  counters(): Counters {
    return {
      '46': { packets: this.packets, bytes: this.packets * 84, drops: { D46_TTL_EXPIRED: 1 } },
      '64': { packets: this.packets64 ?? this.packets, bytes: (this.packets64 ?? this.packets) * 104, drops: {} },
    };
  }
}

/** Router mode's LAN side in memory: the plan installed, forwarding per interface, counters a test sets. */
export class FakeLan implements LanPort {
  ops: string[] = [];
  /** The installed plan, or undefined (none, or deleted by a test: `flush ruleset`). */
  plan: LanPlan | undefined;
  /** IPv4 forwarding per interface as the host has it; absent: 0. */
  forwarding = new Map<string, number>();
  /** The host's values recorded before clatd changed them. */
  recorded = new Map<string, number>();
  /** The live table's counters by LAN, which a test moves. */
  traffic: Record<string, LanTraffic> = {};
  closed = false;
  /** Thrown once by the next install when set (nft refusing the table). */
  installError: Error | undefined;

  async install(plan: LanPlan): Promise<void> {
    const e = this.installError;
    this.installError = undefined;
    if (e) throw e;
    this.ops.push(`install ${plan.serve ? `serve ${plan.serve.tun} ${plan.serve.clat4} ${plan.serve.mtu}` : 'drop'}`);
    this.plan = structuredClone(plan);
    this.traffic = {};
  }
  async forward(ifaces: string[]): Promise<string[]> {
    const written: string[] = [];
    for (const i of ifaces) {
      const old = this.forwarding.get(i) ?? 0;
      if (old === 1) continue;
      if (!this.recorded.has(i)) this.recorded.set(i, old);
      this.forwarding.set(i, 1);
      written.push(i);
    }
    if (written.length) this.ops.push(`forward ${written.join(' ')}`);
    return written;
  }
  async release(): Promise<string[]> {
    const done: string[] = [];
    for (const [i, v] of this.recorded) {
      this.forwarding.set(i, v);
      done.push(`forwarding of ${i} back to ${v}`);
    }
    this.recorded.clear();
    this.ops.push('release');
    return done;
  }
  async read(): Promise<{ traffic: Record<string, LanTraffic>; rules: number } | undefined> {
    if (!this.plan) return undefined;
    return { traffic: structuredClone(this.traffic), rules: this.plan.lans.length + (this.plan.serve ? 2 : 0) };
  }
  async close(): Promise<string[]> {
    await this.release();
    this.plan = undefined;
    this.closed = true;
    this.ops.push('close');
    return [];
  }
}

export interface World {
  net: FakeNet;
  dns64: FakeDns64;
  identity: FakeIdentity;
  dad: FakeDad;
  plumbing: FakePlumbing;
  clock: FakeClock;
  lan: FakeLan;
  lines: string[];
  daemon: Daemon;
}

/** A daemon over fakes; `flags` are `clatd run` flags as parsed values. */
export function world(flags: Record<string, string | boolean | string[]> = {}, net = FakeNet.typical()): World {
  const cfg: RunConfig = resolveConfig(flags);
  const clock = new FakeClock();
  const lines: string[] = [];
  const log = new Logger({ level: 'debug', write: (l) => lines.push(l), now: () => new Date(clock.now()) });
  const deps: DaemonDeps = {
    net,
    dns64: new FakeDns64(),
    identity: new FakeIdentity(),
    dad: new FakeDad(),
    plumbing: new FakePlumbing(net),
    clock,
    lan: new FakeLan(),
  };
  const daemon = new Daemon(cfg, deps, log);
  return { ...(deps as Omit<World, 'lines' | 'daemon'>), lines, daemon } as World;
}

/** A {@link world} whose daemon has started and settled (see {@link flush}). */
export async function started(
  flags: Record<string, string | boolean | string[]> = {},
  net = FakeNet.typical(),
): Promise<World> {
  const w = world(flags, net);
  await w.daemon.start();
  await flush(w.daemon);
  return w;
}

export const WKP = parsePrefix6('64:ff9b::/96');
export const LAB = parsePrefix6('2001:db8:64::/96');

/**
 * Lets the event loop turn `n` times without waiting for the daemon to settle: for a step held
 * in DAD (FakeDad.hold), which {@link flush} would wait on for ever.
 */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Lets promise callbacks run (the fakes resolve at once). */
export async function flush(d: Daemon): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setImmediate(r));
    await d.settled();
  }
}
