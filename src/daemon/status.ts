/**
 * What the daemon reports about itself: the document `clatd status --json` prints, the metrics
 * are drawn from and the lab reads. Types and words only (no daemon code), so readers outside the
 * daemon can depend on them.
 */
import type { ControlCounters } from './control.js';
import type { HealthStatus } from './health.js';
import type { Counters, LanTraffic, ResponderStatus } from './ports.js';
import type { State } from './state.js';

export type PrefixSource = 'flag' | 'ra' | 'dns64';

/**
 * `blocked`: every address drawn in a round was answered for by another node; clatd keeps running
 * and tries a new round after a back-off (see docs/architecture.md, "DAD under attack").
 * `skipped`: no DAD for an address in a prefix routed to the host (address mode 3; `skipped` says why).
 */
export type DadResult = 'none' | 'pending' | 'unique' | 'probes-sent' | 'optimistic' | 'failed' | 'blocked' | 'skipped';

/**
 * How the CLAT IPv6 address is obtained (src/daemon/uplink-mode.ts): 1 random in the on-link /64
 * joined as anycast, 2 the same with clatd answering neighbor solicitations, 3 in a routed prefix
 * (--v6-prefix), 4 a leased address (--v6), 5 the host's own address shared through NAT66 (--v6
 * shared, or the last resort); with why each earlier way did not apply.
 */
export interface UplinkModeStatus {
  mode: number;
  /** Who answers neighbor solicitations for it: the kernel (anycast), clatd (respond), nobody (none), the kernel for its own address (shared). */
  announce: 'anycast' | 'respond' | 'none' | 'shared';
  name: string;
  /** The way taken, in words. */
  how: string;
  why: { mode: number; why: string }[];
}

/** One router's PREF64 as clatd holds it. */
export interface RouterPref64 {
  router: string;
  ifindex: number;
  prefix: string;
  expiresInSec: number;
  /** The prefix in use comes from this router. */
  chosen: boolean;
}

export interface DadStatus {
  mode: string;
  result: DadResult;
  /** Addresses probed in the current run. */
  attempts: number;
  /** Recent duplicates: the address and what answered (with its link-layer address when known). */
  duplicates: { address: string; by: string }[];
  /** Rounds in a row in which every address was answered for (0 when DAD last passed). */
  blockedRounds: number;
  /** While blocked: seconds until the next round. */
  retryInSec: number | null;
  /** Why DAD was skipped (result `skipped`), else null. */
  skipped: string | null;
}

/** A LAN interface of router mode: what it is, and its traffic through the CLAT since clatd started. */
export interface LanInterfaceStatus extends LanTraffic {
  name: string;
  up: boolean;
  /** Its IPv4 subnets (`203.0.113.0/24`), the sources it may forward from. */
  subnets: string[];
  /** What keeps it from being served (missing, down, no IPv4 address), with the fix; null: nothing. */
  problem: string | null;
}

/** Router mode (--lan): whether the LANs are served now, and each LAN. */
export interface LanStatus {
  mode: 'nat44' | 'stateless';
  serving: boolean;
  /** Why not, while not serving. */
  reason: string | null;
  /** The address LAN sources are masqueraded into (the CLAT IPv4 address), while serving (NAT44 only). */
  masqueradeTo: string | null;
  /** Stateless mode: each LAN subnet and the IPv6 prefix it is mapped to (EAM entries). */
  mapped?: { v4: string; v6: string }[];
  /** Stateless mode: whether the kernel fast path carries LAN traffic, and why not. */
  fastPath?: string;
  /** The TCP MSS that forwarded SYNs are clamped to (the TUN's MTU - 40), while serving. */
  mss: number | null;
  interfaces: LanInterfaceStatus[];
}

export interface StatusSnapshot {
  state: State;
  /** Why the daemon waits or is paused, when it does. */
  reason: string | null;
  pid: number;
  uptimeSec: number;
  stateSinceSec: number;
  uplink: { name: string; ifindex: number; up: boolean } | null;
  pref64: string | null;
  pref64Source: PrefixSource | null;
  /** Every router's PREF64 on record, and those refused lately with why. */
  pref64Routers: RouterPref64[];
  pref64Refused: { router: string; prefix: string; why: string }[];
  clat4: string | null;
  clat6: string | null;
  prefix64: string | null;
  /** How the CLAT IPv6 address was obtained (null until a way is chosen). */
  uplinkMode: UplinkModeStatus | null;
  tun: string | null;
  /** The metric of the TUN's IPv4 default route; null while it is withdrawn (paused) or there is no TUN. */
  routeMetric?: number | null;
  mtu: number | null;
  /** The kernel fast path: in use, off, or why not (null without a datapath). */
  offload: string | null;
  dad: DadStatus;
  /** clatd's own answers to neighbor solicitations for the CLAT address (absent: the kernel's, or nobody's). */
  responder?: ResponderStatus;
  counters: Counters;
  changes: Record<string, number>;
  transitions: Record<State, number>;
  dadAttempts: number;
  errors: number;
  /** Whether packets come back to the CLAT address (health.ts); absent in documents of older versions. */
  health?: HealthStatus;
  /** The control socket's clients (added by `clatd run`, which owns the socket). */
  control?: ControlCounters;
  /** Router mode, with --lan only. */
  lan?: LanStatus;
  /** What the process holds (added by `clatd run`). */
  memory?: MemoryStatus;
}

/** The daemon's memory, from /proc/self/status and V8 (bench/README.md, "Memory", says what makes it up). */
export interface MemoryStatus {
  /** Resident set (VmRSS), all threads. */
  rssBytes: number;
  /** Of it, anonymous memory (RssAnon): heaps, stacks, arenas; the rest is mapped files (Node's own code, shared). */
  anonBytes: number;
  /** The main thread's V8 heap: in use, and reserved. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Held outside V8's heap by JavaScript objects (buffers). */
  externalBytes: number;
  threads: number;
  /**
   * Datapath worker threads running, each with a V8 isolate of its own: 0 while they wait for the
   * first packet the kernel fast path hands on.
   */
  workerThreads: number;
}

/** Where a NAT64 prefix came from, in words. */
export function describeSource(s: PrefixSource): string {
  return s === 'flag' ? '--pref64' : s === 'ra' ? 'Router Advertisement PREF64 (RFC 8781)' : 'DNS64 (RFC 7050)';
}
