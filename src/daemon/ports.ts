/**
 * The small interfaces through which the daemon touches the world. `system.ts` implements them over
 * the system layer (rtnetlink, sockets, TUN, nftables, datapath workers); `test/fakes/` implements
 * them in memory, so the whole start-up / live-change / teardown logic runs unprivileged in tests.
 * Values cross these seams as strings (addresses) and small records: nothing here is on the packet path.
 */

import type { Prefix6 } from '../core/addr/prefix.js';
import type { DadMode, TranslatorSettings } from './config.js';
import type { NextHopChoice } from './next-hop.js';
import type { DefaultRoute6 } from './route-order.js';

export interface LinkInfo {
  index: number;
  name: string;
  /** Administratively up and with carrier (IFF_UP and IFF_RUNNING / operstate up or unknown). */
  up: boolean;
  mtu: number;
}

export interface AddrInfo {
  ifindex: number;
  family: 4 | 6;
  address: string;
  prefixLen: number;
  scope: 'global' | 'site' | 'link' | 'host';
  /** Still doing DAD (IFA_F_TENTATIVE) or failed it (IFA_F_DADFAILED): not usable as a source. */
  tentative?: boolean;
}

export interface RouteInfo {
  ifindex: number;
  /** The preferred source address (RTA_PREFSRC), when the kernel gives one. */
  src?: string;
  /** Path MTU (RTAX_MTU), when known. */
  mtu?: number;
}

/** Where the kernel sends a flow: its interface, and the router it goes through, if any. */
export interface RouteVia {
  ifindex: number;
  /** The next hop (RTA_GATEWAY); none for an on-link destination. */
  gateway?: string;
  /** The matched route has several next hops (RTA_MULTIPATH): the kernel spreads flows over them. */
  multipath: boolean;
}

export type NetEvent =
  | { type: 'link'; ifindex: number; removed: boolean }
  | { type: 'addr'; ifindex: number; family: 4 | 6; removed: boolean }
  | { type: 'route'; family: 4 | 6; removed: boolean }
  /** An IPv6 neighbour entry of `ifindex` changed (NUD state, link-layer address) or went. */
  | { type: 'neigh'; ifindex: number; address: string; router: boolean; removed: boolean }
  /** A PREF64 option (RFC 8781) from a Router Advertisement; lifetime 0 withdraws it. */
  | { type: 'pref64'; ifindex: number; router?: string; prefix: Prefix6; lifetime: number }
  /**
   * Another process deleted (part of) the nftables table `table` (a clatd table), e.g. with
   * `flush ruleset`; `table` is undefined when events were lost and any may have gone. `by` names
   * the process for the log.
   */
  | { type: 'nft'; table: string | undefined; by: string };

export interface NetPort {
  links(): Promise<LinkInfo[]>;
  addresses(): Promise<AddrInfo[]>;
  /** The interface of the best IPv6 default route, if any. */
  defaultRoute6(): Promise<RouteInfo | undefined>;
  /**
   * Interfaces with a native IPv4 default route: any but the routes of a clatd (its own and those
   * of other instances on other uplinks, which carry the route protocol clatd sets).
   */
  defaultRoutes4(): Promise<RouteInfo[]>;
  /** The IPv6 default routes, each next hop of a multipath one apart, in the order the kernel lists them. */
  defaultRoutes6(): Promise<DefaultRoute6[]>;
  /** What `ip -6 route get DST oif IFINDEX` would say: the source the kernel would use, and the MTU. */
  routeGet6(dst: string, oif: number): Promise<RouteInfo | undefined>;
  /**
   * What `ip -6 route get DST from SRC oif IFINDEX` says of the next hop (source-based policy
   * routing applies); undefined when there is no route.
   */
  routeVia6(dst: string, oif: number, src: string): Promise<RouteVia | undefined>;
  /** Sends a Router Solicitation on the link, so routers answer (with their PREF64) at once. Optional. */
  solicit?(ifindex: number): void;
  /** Subscribes to link, address, route and ND user option (PREF64) events. */
  watch(onEvent: (e: NetEvent) => void, onError: (e: Error) => void): Closer;
}

export interface Closer {
  close(): void;
}

/** RFC 7050 discovery: the NAT64 prefixes found through the AAAA records of ipv4only.arpa. */
export interface Dns64Port {
  discover(servers: string[]): Promise<Prefix6[]>;
}

/** Pure identity functions, from the neighbor-discovery core. */
export interface IdentityPort {
  /** The first free address of 192.0.0.0/29 from .4 (RFC 7335), or undefined when all are taken. */
  selectIPv4(inUse: string[]): string | undefined;
  /** A random checksum-neutral CLAT IPv6 address in `prefix64` (the /64, as an address). */
  generateIPv6(o: { prefix64: string; pref64: Prefix6; ipv4: string }): string;
  /** The same in a prefix routed to the host, /32 to /96 (--v6-prefix). */
  generateInPrefix(o: { prefix: Prefix6; pref64: Prefix6; ipv4: string }): string;
}

export interface DadParams {
  mode: DadMode;
  /** DupAddrDetectTransmits of the uplink. */
  transmits: number;
  /** RetransTimer of the uplink, in ms. */
  retransMs: number;
}

export type DadOutcome =
  | { ok: true; address: string; attempts: number; duplicates: DadDuplicate[] }
  | {
      ok: false;
      /**
       * `duplicates`: every address drawn was answered for (each is in `duplicates`, the last
       * included); `interrupted`: the link or a socket failed under DAD (e.g. the link went
       * down), to be tried again; `stopped`: aborted.
       */
      kind: 'duplicates' | 'interrupted' | 'stopped';
      address: string;
      attempts: number;
      duplicates: DadDuplicate[];
      reason: string;
    };

export interface DadDuplicate {
  address: string;
  /** What answered, e.g. "Neighbor Advertisement from fe80::1" or "solicitation with another nonce". */
  by: string;
}

export interface DadPort {
  /**
   * Runs DAD on the wire for `first`, drawing a new address with `redraw` on a duplicate (at most 3
   * times; never without `redraw`). `onAddress` is awaited before each new address is probed (so the receive side can follow
   * it); when `onAddress` rejects, the run ends and rejects with its error. In `off` mode it sends
   * the probes and resolves at once. Socket and link failures end it as `interrupted`, never reject.
   */
  run(o: {
    uplink: LinkInfo;
    /** The uplink side open for `first` (its raw socket sends the probes). */
    side: UplinkSide;
    first: string;
    /** Undefined: a duplicate ends the run (a leased address is not ours to replace). */
    redraw?: () => string;
    params: DadParams;
    onAddress: (address: string) => Promise<void>;
    signal: AbortSignal;
  }): Promise<DadOutcome>;
}

/** The settings the datapath's translator needs. */
export interface XlatParams {
  pref64: Prefix6;
  clat4: string;
  clat6: string;
  /** IPv4 MTU of the TUN. */
  mtu: number;
  translator: TranslatorSettings;
  /** Router mode, stateless: the LAN subnets mapped into the routed prefix (EAM entries, lan-map.ts). */
  lanEam?: readonly { v4: string; v6: string }[];
}

/**
 * How the host answers Neighbor Solicitations for the CLAT address on the uplink:
 * - `anycast`: the kernel, for the address joined as anycast (IPV6_JOIN_ANYCAST; it accepts the
 *   join only inside a prefix configured on the uplink, e.g. a SLAAC /64);
 * - `respond`: clatd itself, with its own Neighbor Advertisements (the host has only a /128 in the
 *   on-link /64, so the kernel refuses the anycast join);
 * - `none`: nobody; the address is in a prefix routed to the host, so no one solicits it;
 * - `shared`: the kernel, for the host's own address; the CLAT's private address is NATed to it
 *   (address mode 5), and what comes back reaches clatd through a veth pair of its own.
 */
export type Announce = 'anycast' | 'respond' | 'none' | 'shared';

/**
 * An address clatd took off the uplink to serve it itself (a leased --v6 address), recorded before
 * it was removed so that exit, `clatd cleanup` or the next start after a crash puts it back.
 */
export interface TakenAddress {
  readonly address: string;
  readonly prefixLen: number;
  /** Puts it back on the uplink as it was (flags, remaining lifetimes) and forgets the record; says what it did. */
  giveBack(): Promise<string[]>;
}

/**
 * The error of an anycast join the kernel refused because no prefix on the uplink covers the
 * address (openUplink or retarget with `anycast`): its `errnoName` is `EADDRNOTAVAIL`.
 */
export function isAnycastRefused(e: unknown): boolean {
  return (e as { errnoName?: string } | null)?.errnoName === 'EADDRNOTAVAIL';
}

/** The receive and transmit side on the uplink: packet socket, raw socket with anycast, nft drop rule. */
export interface UplinkSide {
  /** How the CLAT address is announced (fixed for the side's life: another way needs a new side). */
  readonly announce: Announce;
  /** The nftables table (family ip6) holding the drop rule. */
  readonly table: string;
  /**
   * Points the BPF filter, the anycast membership and the nft rule at a new address / prefix. It
   * comes before each DAD run of the address: with `respond`, nothing is answered for it until
   * {@link dadPassed}.
   */
  retarget(clat6: string, pref64: Prefix6): Promise<void>;
  /**
   * DAD found `clat6` unique (or sent its probes, --dad off): with `respond`, clatd answers
   * neighbor solicitations for it from now on and advertises it once to all nodes. Ignored for
   * another address than the current one; a no-op for `anycast` and `none`.
   */
  dadPassed(clat6: string): void;
  /** What clatd's own neighbor responder did (`respond`; undefined for the others). */
  responder(): ResponderStatus | undefined;
  /** Whether the nft table still holds the filter for the current address as installed. */
  filterIntact(): Promise<boolean>;
  /** Installs the nft table again, whole, for the current address (after someone deleted it). */
  restoreFilter(): Promise<void>;
  close(): Promise<void>;
}

/** clatd's own answers to neighbor solicitations for the CLAT address (announce `respond`). */
export interface ResponderStatus {
  /** The address answered for. */
  address: string;
  /** DAD passed for it: solicitations are answered. */
  answering: boolean;
  /** Solicited advertisements sent (address resolution and unreachability probes). */
  answered: number;
  /** Of `answered`, unreachability probes (unicast to the address). */
  nud: number;
  /** Other nodes' DAD probes for the address, answered to all nodes (the address defended). */
  defended: number;
  /** Unsolicited advertisements after DAD passed. */
  announced: number;
  /** Advertisements the socket refused. */
  sendErrors: number;
  /** Packets read and not answered, by reason (malformed ones by the parser's reason). */
  ignored: Record<string, number>;
  /** Why the responder stopped reading (its socket failed), if it did. */
  failed?: string;
}

/** The IPv4 side: TUN v4-<uplink>, its /32, MTU and default route. */
export interface Ipv4Side {
  readonly name: string;
  readonly ifindex: number;
  /** The CLAT IPv4 address the TUN holds. */
  readonly v4: string;
  /** Sets the TUN MTU and the route's advmss (MTU - 40). */
  setMtu(mtu: number): Promise<void>;
  /** The metric of its IPv4 default route; undefined while the route is withdrawn. */
  readonly metric: number | undefined;
  /**
   * Moves the IPv4 default route to `metric` (the new route is added before the old one goes, so
   * IPv4 always has a way), or withdraws it (undefined) while translation is paused: a route into
   * a paused CLAT would hold IPv4 that another uplink's CLAT could carry. Repairs keep it so.
   */
  setRoute(metric: number | undefined): Promise<void>;
  /**
   * Puts back what was taken from the TUN from outside while it exists (set down, its address or
   * its default route deleted); returns what it put back, in words (empty: all was in place).
   */
  repair(): Promise<string[]>;
  close(): Promise<void>;
}

/** The datapath's counters for one direction; it may count more than these (all are reported). */
export interface DirectionCounters {
  packets: number;
  bytes: number;
  /** Drops by reason name. */
  drops: Record<string, number>;
  /** Translated packets handed to the other side (the datapath's CounterSnapshot has these). */
  packetsOut?: number;
  /** Their bytes (after translation). */
  bytesOut?: number;
  /** ICMP errors the translator generated and sent back. */
  icmpErrors?: number;
  /** Generated ICMP errors discarded by the rate limit. */
  icmpRateLimited?: number;
  /** Inputs translated; with the next three and the drops, all the packets. */
  translated?: number;
  /** Neighbor Solicitations and Advertisements for the CLAT address (the kernel answers them). */
  neighbor?: number;
  /** Inputs read and dropped while translation was paused. */
  paused?: number;
  /** Inputs longer than a batch slot. */
  oversize?: number;
  /** Of `translated`, those the kernel's tc program translated (daemon/offload.ts). */
  offloaded?: number;
}

export interface Counters {
  '46': DirectionCounters;
  '64': DirectionCounters;
  /** I/O error counters and the like, when the datapath has them. */
  io?: object;
}

export interface DatapathHandle {
  reconfigure(p: XlatParams): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
  counters(): Counters;
  /** The kernel fast path's state in words (datapaths without one leave it out). */
  offload?(): string;
  /** Where the fast path sends translated IPv6 packets (next-hop.ts); datapaths without one leave it out. */
  nextHop?(c: NextHopChoice): void;
}

/** What {@link PlumbingPort.startDatapath} starts the datapath with. */
export interface StartDatapathOptions {
  uplink: UplinkSide;
  ipv4: Ipv4Side;
  params: XlatParams;
  paused?: boolean;
  onFailure: (why: string) => void;
}

export interface PlumbingPort {
  openUplink(uplink: LinkInfo, clat6: string, pref64: Prefix6, announce: Announce): Promise<UplinkSide>;
  /**
   * Takes `address` off the uplink (recording it first, with its prefix length, flags and
   * lifetimes); undefined when it is not configured there.
   */
  takeAddress(uplink: LinkInfo, address: string): Promise<TakenAddress | undefined>;
  createIpv4Side(o: { uplink: LinkInfo; name: string; v4: string; mtu: number; metric: number }): Promise<Ipv4Side>;
  /**
   * Starts the datapath. `onFailure` is called (at most once per handle) when a part of it dies on
   * its own: a worker that crashed, a device side given up. The daemon then restarts it.
   * `paused`: it starts paused (input read and counted, nothing sent) until resumed.
   */
  startDatapath(o: StartDatapathOptions): Promise<DatapathHandle>;
  /** DupAddrDetectTransmits and RetransTimer (ms) of an interface. */
  dadParams(ifname: string): Promise<{ transmits: number; retransMs: number }>;
  /** Finds and removes what an earlier instance left behind; returns one description per object. */
  cleanupLeftovers(uplinkName?: string): Promise<string[]>;
}

/** What router mode installs for the IPv4 LANs (src/sys/nft-lan.ts draws the rules). */
export interface LanPlan {
  /** The CLAT to serve the LANs through (its TUN, IPv4 address and MTU); undefined: not served. */
  serve?: { tun: string; clat4: string; mtu: number };
  /**
   * Stateless mode: the IPv6 prefixes the LANs are mapped to (no masquerade); the kernel's copy of
   * what arrives for them on the uplink is dropped, as for the CLAT address. Undefined: NAT44.
   */
  mapped?: string[];
  /** Every configured LAN interface with its IPv4 subnets (`203.0.113.0/24`; none: no IPv4 address). */
  lans: { name: string; subnets: string[] }[];
}

/** A LAN interface's traffic through the CLAT and its drops by reason, since the table was installed. */
export interface LanTraffic {
  packetsOut: number;
  bytesOut: number;
  packetsIn: number;
  bytesIn: number;
  /**
   * Forwarded packets dropped by reason: `no-address` (the LAN has no IPv4 address),
   * `wrong-source` (outside its subnets), `elsewhere` (routed past the CLAT), `not-served`
   * (the CLAT does not translate: idle, paused, starting).
   */
  drops: Record<string, number>;
}

/** Router mode (NAT44): clatd's LAN table and the IPv4 forwarding of the interfaces involved. */
export interface LanPort {
  /** Installs the LAN table for `plan`, replacing the one there (its counters start again at 0). */
  install(plan: LanPlan): Promise<void>;
  /**
   * Turns IPv4 forwarding on for `ifaces`, each recorded with the host's value first; returns
   * those it had to write (the others had it on already). Interfaces that are gone are skipped.
   */
  forward(ifaces: string[]): Promise<string[]>;
  /** Gives back every forwarding setting it changed; returns what it gave back, in words. */
  release(): Promise<string[]>;
  /** The table's counters by LAN and its number of rules; undefined when the table is gone. */
  read(): Promise<{ traffic: Record<string, LanTraffic>; rules: number } | undefined>;
  /** Gives back the settings, then removes the table; returns what failed, in words. */
  close(): Promise<string[]>;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface DaemonDeps {
  net: NetPort;
  dns64: Dns64Port;
  identity: IdentityPort;
  dad: DadPort;
  plumbing: PlumbingPort;
  clock: Clock;
  /** Router mode's LAN side (only used with --lan). */
  lan?: LanPort;
}

/**
 * TUN name for an uplink: `v4-<uplink>` within IFNAMSIZ - 1 = 15 bytes (see {@link deviceName}).
 */
export function tunName(uplink: string): string {
  return deviceName('v4-', uplink);
}

/**
 * A device clatd makes for an uplink: `tag` + the uplink's name within IFNAMSIZ - 1 = 15 bytes. A
 * longer uplink name keeps its first 7 bytes and gets 4 hex digits of a hash (FNV-1a) of the whole
 * name: cut short, two uplinks that share their first 12 bytes (enp0s20f0u1u1, enp0s20f0u1u2)
 * would share one device.
 */
export function deviceName(tag: string, uplink: string): string {
  const full = `${tag}${uplink}`;
  if (full.length <= 15) return full;
  let h = 0x811c9dc5;
  for (let i = 0; i < uplink.length; i++) h = Math.imul(h ^ uplink.charCodeAt(i), 0x01000193) >>> 0;
  return `${tag}${uplink.slice(0, 7)}-${(h & 0xffff).toString(16).padStart(4, '0')}`;
}

/** Android's rule (§3.6 of the research notes): clamp the path MTU to 1280..1528, then leave room for 28 bytes. */
export function ipv4Mtu(pathMtu: number | undefined): number {
  const m = Math.min(Math.max(pathMtu ?? 1280, 1280), 1528);
  return m - 28;
}
