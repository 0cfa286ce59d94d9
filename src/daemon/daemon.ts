/**
 * The orchestrator: brings the CLAT up in the order of issue 5 and keeps it matched to the host.
 *
 * It works by reconciliation. Every netlink event, timer and reload marks the daemon dirty; one
 * step at a time then observes the host (uplink, addresses, routes, PREF64), compares it with what
 * was last seen (each difference is one "change" log line and counter) and with what is built, and
 * does the least work that makes them agree:
 *
 *   1. uplink       --interface, or the interface of the IPv6 default route; up, with a global address
 *   2. NAT64 prefix --pref64 > RA PREF64 (lifetime tracked) > RFC 7050 (DNS64)
 *   3. native IPv4  (--mode auto) idle while another IPv4 default route exists
 *   4. addresses    CLAT IPv4 (RFC 7335) and a checksum-neutral IPv6 in the /64 the kernel would use
 *   5. uplink side  raw socket holding the anycast address + nft drop rule, then DAD on the wire
 *   6. IPv4 side    TUN v4-<uplink>, /32, MTU, default route
 *   7. translate    the worker datapath
 *
 * Everything it builds is held in three fields (#upSide, #ipv4, #dp) right after it is built, so
 * `stop()` can always take down exactly what exists, whatever step was running.
 */
import { formatIPv6, parseIPv6 } from '../core/addr/ipv6.js';
import { formatPrefix6, type Prefix6 } from '../core/addr/prefix.js';
import type { RunConfig } from './config.js';
import type { Logger } from './log.js';
import {
  type AddrInfo,
  type Closer,
  type Counters,
  type DaemonDeps,
  type DatapathHandle,
  type DirectionCounters,
  type Ipv4Side,
  ipv4Mtu,
  type LinkInfo,
  type NetEvent,
  tunName,
  type UplinkSide,
  type XlatParams,
} from './ports.js';
import { Lifecycle, type State } from './state.js';

export type PrefixSource = 'flag' | 'ra' | 'dns64';

export type DadResult = 'none' | 'pending' | 'unique' | 'probes-sent' | 'optimistic' | 'failed';

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
  clat4: string | null;
  clat6: string | null;
  prefix64: string | null;
  tun: string | null;
  mtu: number | null;
  /** The kernel fast path: in use, off, or why not (null without a datapath). */
  offload: string | null;
  dad: { mode: string; result: DadResult; attempts: number; duplicates: { address: string; by: string }[] };
  counters: Counters;
  changes: Record<string, number>;
  transitions: Record<State, number>;
  dadAttempts: number;
  errors: number;
}

interface Session {
  uplink: LinkInfo;
  pref64: Prefix6;
  source: PrefixSource;
  prefix64: string;
  clat4: string;
  clat6: string;
  mtu: number;
}

interface Observed {
  uplink?: LinkInfo;
  uplinkOk: boolean;
  why?: string;
  prefix?: { prefix: Prefix6; source: PrefixSource };
  native4: boolean;
  /** The TUN of the IPv4 side no longer exists (deleted from outside: `ip link del`). */
  tunGone?: boolean;
}

const DNS64_RETRY_MS = 10_000;
/** How long a Router Advertisement gets to bring a PREF64 before RFC 7050 is asked. */
const RA_HEAD_START_MS = 1_500;
const DNS64_REFRESH_MS = 600_000;
const ERROR_RETRY_MS = 2_000;
const PERIODIC_MS = 30_000;
const STOP_WAIT_MS = 1_200;
/**
 * A datapath that fails on its own (a crashed worker, a device side given up) is restarted, at
 * most this many times within {@link DP_RESTART_WINDOW_MS}; one failure more ends the daemon with
 * an error, for the service manager to restart it whole.
 */
const MAX_DP_RESTARTS = 5;
const DP_RESTART_WINDOW_MS = 600_000;

export function emptyCounters(): Counters {
  const d = (): DirectionCounters => ({ packets: 0, bytes: 0, drops: {} });
  return { '46': d(), '64': d() };
}

/**
 * Sums two counter snapshots leaf by leaf (every number at the same path), so whatever the
 * datapath counts (per-direction totals, drop reasons, I/O errors) survives a datapath restart.
 */
export function addCounters(a: Counters, b: Counters): Counters {
  const sum = (x: unknown, y: unknown): unknown => {
    if (typeof x === 'number' || typeof y === 'number') return (Number(x) || 0) + (Number(y) || 0);
    const out: Record<string, unknown> = {};
    const xo = (x ?? {}) as Record<string, unknown>;
    const yo = (y ?? {}) as Record<string, unknown>;
    for (const k of new Set([...Object.keys(xo), ...Object.keys(yo)])) out[k] = sum(xo[k], yo[k]);
    return out;
  };
  return sum(a, b) as Counters;
}

function prefixKey(p: Prefix6 | undefined): string {
  return p === undefined ? '' : formatPrefix6(p);
}

/** The /64 containing `address`, as an address string (host bits zero). */
export function slash64(address: string): string {
  const b = parseIPv6(address);
  b.fill(0, 8);
  return formatIPv6(b);
}

function isLinkLocalOrLoopback(address: string): boolean {
  const b = parseIPv6(address);
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return true;
  return b.every((x, i) => (i === 15 ? x === 1 : x === 0));
}

export class Daemon {
  readonly lifecycle: Lifecycle;
  readonly log: Logger;
  /** Live changes seen, by kind. */
  readonly changes: Record<string, number> = {};
  errors = 0;
  dadAttempts = 0;

  #cfg: RunConfig;
  readonly #deps: DaemonDeps;
  readonly #startedAt: number;

  #watch?: Closer;
  #abort = new AbortController();
  readonly #ra = new Map<number, { prefix: Prefix6; expiresAt: number }>();
  #raTimer: unknown;
  #dns64?: { prefix: Prefix6; at: number };
  #dns64Inflight = false;
  /** When a Router Solicitation was sent, by ifindex. */
  readonly #solicited = new Map<number, number>();
  #dns64LastTry = Number.NEGATIVE_INFINITY;
  #timer: unknown;
  #periodic: unknown;
  #pref64Timer: unknown;
  #everHadPrefix = false;

  #upSide?: UplinkSide;
  #ipv4?: Ipv4Side;
  #dp?: DatapathHandle;
  /** Bumped for each datapath started or stopped: a failure report of an older one is ignored. */
  #dpGen = 0;
  /** Why the current datapath failed, until it is replaced. */
  #dpFailure: string | undefined;
  /** When the datapath was restarted after failures (within the window). */
  #dpRestarts: number[] = [];
  /** Who deleted (part of) the nft table of the uplink side, until it is put back. */
  #filterLostBy: string | undefined;
  /** Set by a reload that needs everything built again; the next step tears down first. */
  #rebuildWhy: string | undefined;
  /** Why the TUN or datapath of a running CLAT is to be built again (see #repair). */
  #repairWhy: string | undefined;
  #session?: Session;
  #counterBase: Counters = emptyCounters();
  #dad: StatusSnapshot['dad'];
  #reason: string | null = null;
  /** Aborts the DAD run of the current identity when a new one starts. */
  #dadRun?: AbortController;
  /** The uplink of the last observation, for status while nothing is built. */
  #seenUplink: { name: string; ifindex: number; up: boolean } | undefined;
  #last?: { uplink?: number; up: boolean; prefix: string; native4: boolean };

  #dirty = false;
  #loop?: Promise<void>;
  #stopping?: Promise<void>;
  #exitCode = 0;
  #resolveDone!: (code: number) => void;
  /** Resolves with the exit code once the daemon has stopped. */
  readonly done: Promise<number>;
  /** Called on each state change (systemd STATUS=). */
  onStatus?: (line: string) => void;
  /** Set by a reload that changes --pref64, --v6 or --dad: the next step draws the addresses again. */
  #redraw = false;

  constructor(cfg: RunConfig, deps: DaemonDeps, log: Logger) {
    this.#cfg = cfg;
    this.#deps = deps;
    this.log = log;
    this.#startedAt = deps.clock.now();
    this.lifecycle = new Lifecycle(() => deps.clock.now());
    this.#dad = { mode: cfg.dad, result: 'none', attempts: 0, duplicates: [] };
    this.done = new Promise((r) => {
      this.#resolveDone = r;
    });
    this.lifecycle.onTransition((t) => {
      this.log.info('state', `${t.from} -> ${t.to}: ${t.reason}`, { from: t.from, to: t.to });
      this.onStatus?.(`${t.to}: ${t.reason}`);
    });
  }

  get config(): RunConfig {
    return this.#cfg;
  }

  get state(): State {
    return this.lifecycle.state;
  }

  /** Removes leftovers of an earlier instance, subscribes to netlink and starts the first step (not awaited). */
  async start(): Promise<void> {
    const { plumbing, net } = this.#deps;
    try {
      const removed = await plumbing.cleanupLeftovers(this.#cfg.interface);
      for (const what of removed) this.log.warn('recovery', `removed leftover of an earlier clatd: ${what}`);
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_CLATD_TUN_IN_USE') {
        // Another clatd runs on this uplink: starting would fight it over the TUN and the table.
        void this.#fail((e as Error).message);
        return;
      }
      this.log.warn('recovery', `could not look for leftovers: ${(e as Error).message}`);
    }
    this.#watch = net.watch(
      (e) => this.#onEvent(e),
      (e) => {
        this.errors++;
        this.log.error('netlink', `event stream failed: ${e.message}`);
      },
    );
    if (this.#cfg.pref64Timeout !== undefined) {
      const secs = this.#cfg.pref64Timeout;
      this.#pref64Timer = this.#deps.clock.setTimeout(() => {
        if (!this.#everHadPrefix && !this.lifecycle.done) {
          void this.#fail(`no NAT64 prefix found within --pref64-timeout ${secs}s`);
        }
      }, secs * 1000);
    }
    this.kick();
  }

  /** Marks the host as possibly changed; the next step runs as soon as the current one ends. */
  kick(): void {
    if (this.lifecycle.done) return;
    this.#dirty = true;
    if (!this.#loop) {
      this.#loop = this.#runLoop().finally(() => {
        this.#loop = undefined;
      });
    }
  }

  /** Waits until no step is running and none is pending (for tests). */
  async settled(): Promise<void> {
    while (this.#loop) await this.#loop;
  }

  async #runLoop(): Promise<void> {
    while (this.#dirty && !this.lifecycle.done) {
      this.#dirty = false;
      try {
        await this.#step();
      } catch (e) {
        if (this.lifecycle.done) return;
        this.errors++;
        this.log.error('step', (e as Error).message, { code: (e as { code?: string }).code });
        this.#retryIn(ERROR_RETRY_MS);
      }
    }
    this.#armPeriodic();
  }

  /**
   * A step every 30 s even without events: some changes send none (a path MTU learnt from an RA's
   * MTU option, a DNS64 answer that ages), and a lost netlink event must not strand the daemon.
   */
  #armPeriodic(): void {
    const { clock } = this.#deps;
    if (this.lifecycle.done) return;
    if (this.#periodic !== undefined) clock.clearTimeout(this.#periodic);
    this.#periodic = clock.setTimeout(() => {
      this.#periodic = undefined;
      this.kick();
    }, PERIODIC_MS);
  }

  #retryIn(ms: number): void {
    const { clock } = this.#deps;
    if (this.#timer !== undefined) clock.clearTimeout(this.#timer);
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      this.kick();
    }, ms);
  }

  #onEvent(e: NetEvent): void {
    if (e.type === 'pref64') {
      const now = this.#deps.clock.now();
      const old = this.#ra.get(e.ifindex);
      if (e.lifetime === 0) {
        this.#ra.delete(e.ifindex);
        if (old) this.log.info('pref64', `Router Advertisement withdrew ${formatPrefix6(old.prefix)}`);
      } else {
        this.#ra.set(e.ifindex, { prefix: e.prefix, expiresAt: now + e.lifetime * 1000 });
        if (!old || prefixKey(old.prefix) !== prefixKey(e.prefix)) {
          this.log.info('pref64', `Router Advertisement carries PREF64 ${formatPrefix6(e.prefix)}`, {
            ifindex: e.ifindex,
            lifetime: e.lifetime,
          });
        }
      }
      this.#armRaTimer();
    } else if (e.type === 'nft') {
      const table = this.#upSide?.table;
      if (table === undefined || (e.table !== undefined && e.table !== table)) return;
      this.#filterLostBy = e.by;
    } else {
      this.log.debug('netlink', `${e.type} ${e.removed ? 'removed' : 'changed'}`, { ...e });
    }
    this.kick();
  }

  /** One timer at the earliest RA PREF64 expiry. */
  #armRaTimer(): void {
    const { clock } = this.#deps;
    if (this.#raTimer !== undefined) clock.clearTimeout(this.#raTimer);
    this.#raTimer = undefined;
    let next = Number.POSITIVE_INFINITY;
    for (const v of this.#ra.values()) next = Math.min(next, v.expiresAt);
    if (next === Number.POSITIVE_INFINITY) return;
    this.#raTimer = clock.setTimeout(
      () => {
        this.#raTimer = undefined;
        const now = clock.now();
        for (const [k, v] of this.#ra) {
          if (v.expiresAt <= now) {
            this.#ra.delete(k);
            this.log.info('pref64', `PREF64 ${formatPrefix6(v.prefix)} from Router Advertisements expired`);
          }
        }
        this.#armRaTimer();
        this.kick();
      },
      Math.max(0, next - clock.now()),
    );
  }

  #change(kind: string, msg: string): void {
    this.changes[kind] = (this.changes[kind] ?? 0) + 1;
    this.log.info('change', msg, { kind });
  }

  /** Observes the host: steps 1-3. */
  async #observe(): Promise<Observed> {
    const { net } = this.#deps;
    const cfg = this.#cfg;
    const links = await net.links();
    let uplink: LinkInfo | undefined;
    if (cfg.interface !== undefined) {
      uplink = links.find((l) => l.name === cfg.interface);
      if (!uplink) return { uplinkOk: false, why: `interface ${cfg.interface} does not exist`, native4: false };
    } else {
      const r = await net.defaultRoute6();
      uplink = r && links.find((l) => l.index === r.ifindex);
      if (!uplink) {
        // A link going down loses its default route: while it still exists, it is down, not gone.
        const cur = this.#session?.uplink.index;
        const still = cur === undefined ? undefined : links.find((l) => l.index === cur);
        if (still) {
          const why = still.up ? `no IPv6 default route via ${still.name}` : `uplink ${still.name} is down`;
          return { uplink: still, uplinkOk: false, why, native4: false };
        }
        return { uplinkOk: false, why: 'no IPv6 default route (give one with --interface)', native4: false };
      }
    }
    if (!uplink.up) return { uplink, uplinkOk: false, why: `uplink ${uplink.name} is down`, native4: false };
    const addrs = await net.addresses();
    const globals = addrs.filter(
      (a) => a.ifindex === uplink.index && a.family === 6 && a.scope === 'global' && !a.tentative,
    );
    if (globals.length === 0) {
      return { uplink, uplinkOk: false, why: `uplink ${uplink.name} has no global IPv6 address`, native4: false };
    }
    let native4 = false;
    if (cfg.mode === 'auto') {
      const own = this.#ipv4?.ifindex;
      native4 = (await net.defaultRoutes4()).some((r) => r.ifindex !== own);
    }
    const tun = this.#ipv4?.ifindex;
    const tunGone = tun !== undefined && !links.some((l) => l.index === tun);
    return { uplink, uplinkOk: true, prefix: this.#prefixFor(uplink), native4, tunGone };
  }

  #prefixFor(uplink: LinkInfo): Observed['prefix'] {
    const cfg = this.#cfg;
    if (cfg.pref64) return { prefix: cfg.pref64, source: 'flag' };
    const ra = this.#ra.get(uplink.index);
    if (ra && ra.expiresAt > this.#deps.clock.now()) return { prefix: ra.prefix, source: 'ra' };
    const now = this.#deps.clock.now();
    if (this.#dns64) {
      if (now - this.#dns64.at > DNS64_REFRESH_MS) this.#queryDns64();
      return { prefix: this.#dns64.prefix, source: 'dns64' };
    }
    // RAs are preferred (as Android does): solicit one, and give it a head start over DNS64.
    let asked = this.#solicited.get(uplink.index);
    if (asked === undefined) {
      asked = now;
      this.#solicited.set(uplink.index, now);
      this.#deps.net.solicit?.(uplink.index);
      this.log.debug('pref64', `sent a Router Solicitation on ${uplink.name}`);
    }
    const wait = asked + RA_HEAD_START_MS - now;
    if (wait > 0) this.#retryIn(wait);
    else this.#queryDns64();
    return undefined;
  }

  /** RFC 7050 discovery in the background; its answer kicks a new step. */
  #queryDns64(): void {
    const { clock, dns64 } = this.#deps;
    const now = clock.now();
    if (this.#dns64Inflight || now - this.#dns64LastTry < DNS64_RETRY_MS) return;
    this.#dns64Inflight = true;
    this.#dns64LastTry = now;
    const servers = this.#cfg.dns64Servers;
    dns64.discover(servers).then(
      (found) => {
        this.#dns64Inflight = false;
        const p = found[0];
        if (p) {
          if (prefixKey(p) !== prefixKey(this.#dns64?.prefix)) {
            this.log.info('dns64', `RFC 7050: ipv4only.arpa gives NAT64 prefix ${formatPrefix6(p)}`, {
              servers: servers.join(',') || 'system',
            });
          }
          this.#dns64 = { prefix: p, at: clock.now() };
        } else {
          this.log.debug('dns64', 'RFC 7050: no NAT64 prefix in the AAAA answers for ipv4only.arpa');
        }
        this.kick();
        if (!p) this.#retryIn(DNS64_RETRY_MS);
      },
      (e: Error) => {
        this.#dns64Inflight = false;
        this.log.debug('dns64', `RFC 7050 discovery failed: ${e.message}`);
        this.#retryIn(DNS64_RETRY_MS);
      },
    );
  }

  /** Logs each difference from the last observation as one change. */
  #diff(o: Observed): void {
    const last = this.#last;
    const now = { uplink: o.uplink?.index, up: o.uplinkOk, prefix: prefixKey(o.prefix?.prefix), native4: o.native4 };
    if (last) {
      if (last.uplink !== undefined && now.uplink !== last.uplink) {
        this.#change('uplink-gone', `uplink ifindex ${last.uplink} is gone${o.why ? `: ${o.why}` : ''}`);
      } else if (last.up && !now.up && now.uplink !== undefined) {
        this.#change('uplink-down', o.why ?? 'uplink down');
      } else if (!last.up && now.up && last.uplink === now.uplink) {
        this.#change('uplink-up', `uplink ${o.uplink?.name} is usable again`);
      }
      if (now.up && last.prefix !== now.prefix) {
        if (last.prefix === '') this.#change('pref64-found', `NAT64 prefix ${now.prefix} (${o.prefix?.source})`);
        else if (now.prefix === '') this.#change('pref64-lost', `NAT64 prefix ${last.prefix} is gone`);
        else this.#change('pref64-changed', `NAT64 prefix ${last.prefix} -> ${now.prefix} (${o.prefix?.source})`);
      }
      if (this.#cfg.mode === 'auto' && now.up && last.native4 !== now.native4) {
        this.#change(
          now.native4 ? 'native-ipv4-appeared' : 'native-ipv4-gone',
          now.native4 ? 'a native IPv4 default route appeared' : 'the native IPv4 default route is gone',
        );
      }
    }
    this.#last = now;
  }

  #wait(state: 'waiting-uplink' | 'waiting-prefix' | 'idle-native-ipv4', why: string): void {
    const changed = this.#reason !== why || this.lifecycle.state !== state;
    this.#reason = why;
    if (this.lifecycle.state !== state) this.lifecycle.go(state, why);
    else if (changed) this.log.info('wait', why);
  }

  async #pause(why: string): Promise<void> {
    this.#reason = why;
    if (this.lifecycle.state === 'paused') return;
    if (this.#dp) await this.#dp.pause();
    this.lifecycle.go('paused', why);
  }

  async #step(): Promise<void> {
    const o = await this.#observe();
    if (this.lifecycle.done) return;
    this.#seenUplink = o.uplink && { name: o.uplink.name, ifindex: o.uplink.index, up: o.uplinkOk };
    this.#diff(o);
    if (this.#rebuildWhy !== undefined) {
      const why = this.#rebuildWhy;
      this.#rebuildWhy = undefined;
      await this.#teardown(why);
    }
    const s = this.#session;

    if (!o.uplinkOk || !o.uplink) {
      const why = o.why ?? 'no uplink';
      if (s && o.uplink && o.uplink.index === s.uplink.index) {
        // The datapath stays, paused: its sockets outlive a link going down and up (a read meets
        // ENETDOWN once, counted), and resuming it is instant where new workers take ~0.8 s to warm up.
        return this.#pause(`${why}; translation paused`);
      }
      if (s || this.#ipv4 || this.#upSide) await this.#teardown(`${why}`);
      return this.#wait('waiting-uplink', `${why}; waiting`);
    }
    const uplink = o.uplink;
    if (s && s.uplink.index !== uplink.index)
      await this.#teardown(`uplink changed from ${s.uplink.name} to ${uplink.name}`);
    if (o.tunGone) await this.#dropGoneTun();
    else if (this.#ipv4) {
      const fixed = await this.#ipv4.repair();
      if (fixed.length)
        this.#change('ipv4-restored', `${this.#ipv4.name} changed from outside; put back: ${fixed.join(', ')}`);
    }
    if (this.#filterLostBy !== undefined && this.#upSide) await this.#restoreFilter(this.#upSide);

    if (this.#cfg.mode === 'auto' && o.native4) {
      if (this.#session || this.#ipv4 || this.#upSide) await this.#teardown('native IPv4 default route present');
      return this.#wait('idle-native-ipv4', 'the host has a native IPv4 default route; idle (--mode auto)');
    }

    if (!o.prefix) {
      const why = this.#cfg.dns64Servers.length
        ? `no NAT64 prefix: no PREF64 in Router Advertisements on ${uplink.name}, no DNS64 answer from ${this.#cfg.dns64Servers.join(', ')}`
        : `no NAT64 prefix: no PREF64 in Router Advertisements on ${uplink.name}, no DNS64 answer for ipv4only.arpa`;
      if (this.#session) return this.#pause(`${why}; translation paused`);
      return this.#wait('waiting-prefix', `${why}; waiting`);
    }
    this.#everHadPrefix = true;
    const { prefix, source } = o.prefix;

    // Step 4: the source address the kernel would use toward the prefix gives the /64 and path MTU.
    const route = await this.#deps.net.routeGet6(formatIPv6(prefix.addr), uplink.index);
    let src = route?.src;
    if (!src || isLinkLocalOrLoopback(src)) {
      const addrs = await this.#deps.net.addresses();
      src = addrs.find(
        (a) => a.ifindex === uplink.index && a.family === 6 && a.scope === 'global' && !a.tentative,
      )?.address;
    }
    if (!src) return this.#wait('waiting-uplink', `uplink ${uplink.name} has no usable source address; waiting`);
    const prefix64 = slash64(src);
    const mtu = this.#cfg.mtu ?? ipv4Mtu(route?.mtu ?? uplink.mtu);

    const cur = this.#session;
    if (!cur) {
      this.log.info(
        'uplink',
        `${uplink.name} (${this.#cfg.interface ? 'given with --interface' : 'IPv6 default route'})`,
        {
          ifindex: uplink.index,
          mtu: uplink.mtu,
        },
      );
      this.log.info('pref64', `NAT64 prefix ${formatPrefix6(prefix)} from ${describeSource(source)}`, { source });
      if (this.#cfg.mode === 'auto') this.log.info('native-ipv4', 'no native IPv4 default route; CLAT needed');
      return this.#bringUp({ uplink, prefix, source, prefix64, mtu, reason: 'start' });
    }
    const prefixChanged = prefixKey(cur.pref64) !== prefixKey(prefix);
    const lanChanged = this.#cfg.v6 === undefined && cur.prefix64 !== prefix64;
    if (lanChanged)
      this.#change('prefix64-changed', `uplink /64 ${cur.prefix64}/64 -> ${prefix64}/64; new CLAT address`);
    if (prefixChanged || lanChanged || this.#redraw) {
      this.#redraw = false;
      return this.#bringUp({
        uplink,
        prefix,
        source,
        prefix64,
        mtu,
        reason: prefixChanged
          ? `NAT64 prefix now ${formatPrefix6(prefix)}`
          : lanChanged
            ? 'uplink /64 changed'
            : 'configuration reloaded',
      });
    }
    if (mtu !== cur.mtu && this.#ipv4) {
      this.#change('mtu-changed', `IPv4 MTU ${cur.mtu} -> ${mtu}`);
      await this.#ipv4.setMtu(mtu);
      cur.mtu = mtu;
      await this.#reconfigureDatapath(this.#params(cur));
    }
    cur.source = source;
    if (this.lifecycle.state === 'running' && (this.#dpFailure !== undefined || !this.#dp || !this.#ipv4)) {
      if (!(await this.#repair(uplink, cur))) return;
    }
    if (this.lifecycle.state === 'paused') {
      // Back from down or from a lost prefix with the same addresses: check the address again.
      return this.#bringUp({ uplink, prefix, source, prefix64, mtu, reason: 'resuming', keep: cur.clat6 });
    }
  }

  /**
   * Someone else deleted the nft table or its rules (`flush ruleset` when a firewall is reloaded):
   * without the drop rule the kernel answers the CLAT's traffic with ICMPv6 errors. Put it back;
   * if that fails the next step tries again. Only when it is really gone: in a PID namespace the
   * kernel names our own `nft` runs by another PID, and restoring after each of them would loop.
   */
  async #restoreFilter(up: UplinkSide): Promise<void> {
    const by = this.#filterLostBy;
    if (await up.filterIntact()) {
      this.#filterLostBy = undefined;
      this.log.debug('nft', `${by} changed nft table inet ${up.table}; clatd's filter is intact`);
      return;
    }
    await up.restoreFilter();
    this.#filterLostBy = undefined;
    this.#change('nft-restored', `nft table inet ${up.table} was deleted by ${by}; restored`);
  }

  /**
   * The TUN was deleted under the daemon (`ip link del v4-…`): its address and routes went with it
   * and the workers lost their queues. Lets go of both; {@link #repair} (running) or
   * {@link #bringUp} (paused) builds them again.
   */
  async #dropGoneTun(): Promise<void> {
    const v4 = this.#ipv4;
    if (!v4) return;
    this.#change('tun-gone', `${v4.name} was deleted; creating it again`);
    this.#repairWhy = `${v4.name} was deleted`;
    await this.#stopDatapath();
    this.#ipv4 = undefined;
    await v4.close();
  }

  /**
   * Puts back, with the same addresses, what failed or vanished under a running CLAT: the datapath
   * after a failure, the TUN and its route after a deletion. Each attempt counts as a datapath
   * restart (too many and the daemon gives up); one that throws is tried again by the next step,
   * so a running CLAT never stays without its TUN or datapath. Returns false when it gave up.
   */
  async #repair(uplink: LinkInfo, cur: Session): Promise<boolean> {
    const why = this.#dpFailure ?? this.#repairWhy ?? 'the datapath is not running';
    if (!this.#mayRestart(why)) return false;
    // Kept until the repair is done, so that a failed attempt is retried under the same reason.
    this.#repairWhy = why;
    await this.#stopDatapath();
    await this.#buildIpv4Side({ uplink, mtu: cur.mtu }, cur.clat4);
    if (this.lifecycle.done || !this.#upSide || !this.#ipv4) return false;
    this.#dp = await this.#startDatapath(this.#upSide, this.#ipv4, this.#params(cur));
    this.#repairWhy = undefined;
    this.log.info('translate', `translating again after a datapath restart: ${cur.clat4} <-> ${cur.clat6}`);
    return true;
  }

  #params(s: Session): XlatParams {
    return { pref64: s.pref64, clat4: s.clat4, clat6: s.clat6, mtu: s.mtu, translator: this.#cfg.translator };
  }

  /** Steps 4-7 for a new or changed identity. The TUN and IPv4 side stay when they exist. */
  async #bringUp(o: {
    uplink: LinkInfo;
    prefix: Prefix6;
    source: PrefixSource;
    prefix64: string;
    mtu: number;
    reason: string;
    keep?: string;
  }): Promise<void> {
    const { identity, plumbing, net, dad } = this.#deps;
    const cfg = this.#cfg;
    const running = this.lifecycle.state === 'running';
    if (this.#dp && running && cfg.dad === 'strict') await this.#dp.pause();

    let clat4 = this.#session?.clat4 ?? cfg.v4;
    if (clat4 === undefined) {
      const inUse = (await net.addresses()).filter((a: AddrInfo) => a.family === 4).map((a) => a.address);
      clat4 = identity.selectIPv4(inUse);
      if (clat4 === undefined)
        throw new Error('no free IPv4 address in 192.0.0.0/29 for the CLAT (give one with --v4)');
    }
    const ipv4 = clat4;
    // --v6 is the first choice; a duplicate of it is replaced by a drawn address like any other.
    const draw = () => identity.generateIPv6({ prefix64: o.prefix64, pref64: o.prefix, ipv4 });
    const first = o.keep ?? cfg.v6 ?? draw();
    this.log.info(
      'addresses',
      `CLAT IPv4 ${ipv4}${cfg.v4 ? ' (--v4)' : ' (RFC 7335)'}, IPv6 ${first}${cfg.v6 ? ' (--v6)' : ` (checksum-neutral in ${o.prefix64}/64)`}`,
    );

    // Step 5: receive and announce, then DAD on the wire.
    if (!this.#upSide && !this.#ipv4) {
      // The uplink may be known only now (it was not at start): clear what a crashed run left on it.
      for (const what of await plumbing.cleanupLeftovers(o.uplink.name)) {
        this.log.warn('recovery', `removed leftover of an earlier clatd: ${what}`);
      }
    }
    if (!this.#upSide) {
      this.#upSide = await plumbing.openUplink(o.uplink, first, o.prefix);
      this.log.info('receive', `raw socket with anycast ${first} and nft drop rule on ${o.uplink.name}`);
    } else {
      await this.#upSide.retarget(first, o.prefix);
      this.log.info('receive', `receive side now for ${first}`);
    }
    if (this.lifecycle.done) return;
    const up = this.#upSide;
    const sys = await plumbing.dadParams(o.uplink.name);
    const params = { mode: cfg.dad, ...sys };
    this.lifecycle.go('dad', o.reason);
    this.#dad = { mode: cfg.dad, result: 'pending', attempts: 0, duplicates: [] };
    this.log.info('dad', `probing ${first}: ${sys.transmits} probe(s) ${sys.retransMs} ms apart (--dad ${cfg.dad})`);

    // A DAD still running for an earlier identity (optimistic mode) must not move the new one.
    this.#dadRun?.abort();
    const mine = new AbortController();
    this.#dadRun = mine;
    const signal = AbortSignal.any([this.#abort.signal, mine.signal]);
    let current = first;
    const session: Session = {
      uplink: o.uplink,
      pref64: o.prefix,
      source: o.source,
      prefix64: o.prefix64,
      clat4: ipv4,
      clat6: first,
      mtu: o.mtu,
    };
    const onAddress = async (address: string) => {
      if (signal.aborted) return;
      this.dadAttempts++;
      this.#dad.attempts++;
      if (address === current) return;
      this.#change('address-duplicate', `${current} is a duplicate; trying ${address}`);
      this.#dad.duplicates.push({ address: current, by: 'DAD' });
      current = address;
      session.clat6 = address;
      await up.retarget(address, o.prefix);
      if (cfg.dad === 'optimistic' && this.#session === session) await this.#reconfigureDatapath(this.#params(session));
    };
    // DAD holds the CLAT back for about a second (DupAddrDetectTransmits × RetransTimer), and new
    // workers take about as long to start and warm up their JIT. So a first datapath starts now,
    // paused, with the IPv4 side built for it: nothing is sent from the address before DAD passes,
    // and translation starts as soon as it does. (Optimistic DAD translates at once anyway.)
    let early: Promise<DatapathHandle | Error> | undefined;
    if (cfg.dad !== 'optimistic' && !this.#dp) {
      await this.#buildIpv4Side(o, ipv4);
      if (this.lifecycle.done || !this.#ipv4) return;
      early = this.#startDatapath(up, this.#ipv4, this.#params(session), true).catch((e: Error) => e);
    }
    const run = dad.run({
      uplink: o.uplink,
      first,
      redraw: draw,
      params,
      onAddress,
      signal,
    });
    if (cfg.dad === 'optimistic') {
      this.#dad.result = 'optimistic';
      run.then(
        (r) => {
          if (this.lifecycle.done || mine.signal.aborted) return;
          this.#dad.duplicates = r.duplicates;
          if (r.ok) {
            this.#dad.result = 'unique';
            this.log.info('dad', `${r.address} is unique after ${r.attempts} attempt(s)`);
          } else void this.#fail(`DAD failed: ${r.reason}`);
        },
        (e: Error) => {
          if (!mine.signal.aborted) void this.#fail(`DAD failed: ${e.message}`);
        },
      );
    } else {
      const r = await run;
      const startError = await this.#adoptEarly(early);
      if (this.lifecycle.done) return;
      this.#dad.duplicates = r.duplicates;
      if (!r.ok) {
        this.#dad.result = 'failed';
        // Not awaited: stopping waits for this step to end.
        void this.#fail(`DAD failed: ${r.reason}`);
        return;
      }
      session.clat6 = r.address;
      this.#dad.result = cfg.dad === 'off' ? 'probes-sent' : 'unique';
      this.log.info(
        'dad',
        cfg.dad === 'off'
          ? `probes sent for ${r.address}; not waiting (--dad off)`
          : `${r.address} is unique after ${r.attempts} attempt(s)`,
      );
      // The datapath started during DAD failed: the step is tried again (the sides stay).
      if (startError) throw startError;
    }

    // Step 6: the IPv4 side (kept across address changes).
    await this.#buildIpv4Side(o, ipv4);
    if (this.lifecycle.done || !this.#ipv4) return;

    // Step 7: translate.
    const xp = this.#params(session);
    if (this.#dp && this.#dpFailure !== undefined && !(await this.#dropFailedDatapath())) return;
    if (this.lifecycle.done) return;
    if (!this.#dp) {
      this.#dp = await this.#startDatapath(up, this.#ipv4, xp);
      this.log.info('translate', `translating ${ipv4} <-> ${session.clat6} via ${formatPrefix6(o.prefix)}`);
    } else {
      // The one started during DAD has these parameters already, unless DAD drew a new address.
      if (!early || session.clat6 !== first) await this.#reconfigureDatapath(xp);
      // A refused reconfiguration marked it failed: the next step replaces it (running, fresh).
      if (this.#dpFailure === undefined) await this.#dp?.resume();
      this.log.info(
        'translate',
        `${early ? 'translating' : 'translating again:'} ${ipv4} <-> ${session.clat6} via ${formatPrefix6(o.prefix)}`,
      );
    }
    this.#session = session;
    this.#reason = null;
    if (this.lifecycle.done) return;
    this.lifecycle.go('running', `CLAT ${ipv4} <-> ${session.clat6}`);
  }

  /** Step 6: the IPv4 side, built once and kept across address changes (its MTU follows). */
  async #buildIpv4Side(o: { uplink: LinkInfo; mtu: number }, ipv4: string): Promise<void> {
    const cfg = this.#cfg;
    if (!this.#ipv4) {
      const name = tunName(o.uplink.name);
      this.#ipv4 = await this.#deps.plumbing.createIpv4Side({
        uplink: o.uplink,
        name,
        v4: ipv4,
        mtu: o.mtu,
        metric: cfg.routeMetric,
      });
      this.log.info(
        'ipv4',
        `${name}: ${ipv4}/32, MTU ${o.mtu}, default route metric ${cfg.routeMetric} advmss ${o.mtu - 40}`,
      );
    } else if (this.#session && this.#session.mtu !== o.mtu) {
      await this.#ipv4.setMtu(o.mtu);
    }
  }

  /**
   * Takes the datapath started during DAD as the daemon's, or stops it if the daemon is stopping
   * meanwhile (its teardown may have run already). Returns the error of a failed start.
   */
  async #adoptEarly(early: Promise<DatapathHandle | Error> | undefined): Promise<Error | undefined> {
    if (!early) return undefined;
    const dp = await early;
    if (dp instanceof Error) return dp;
    if (this.lifecycle.done) await dp.stop();
    else this.#dp = dp;
    return undefined;
  }

  #startDatapath(uplink: UplinkSide, ipv4: Ipv4Side, params: XlatParams, paused = false): Promise<DatapathHandle> {
    const gen = ++this.#dpGen;
    this.#dpFailure = undefined;
    return this.#deps.plumbing.startDatapath({
      uplink,
      ipv4,
      params,
      paused,
      onFailure: (why) => {
        if (gen !== this.#dpGen || this.lifecycle.done) {
          this.log.debug('datapath', `a replaced datapath reported: ${why}`);
          return;
        }
        // The first report names the cause; the rest (other workers) usually follow from it.
        if (this.#dpFailure === undefined) this.log.error('datapath', why);
        else this.log.debug('datapath', why);
        this.#dpFailure ??= why;
        this.kick();
      },
    });
  }

  /**
   * Hands new parameters to the running datapath, if any. Never rejects: a datapath that refuses
   * them (a worker failing to swap its packet filter, or one stopping under us) may have some
   * workers on the new parameters and some on the old, so it is treated as failed and replaced by
   * a fresh one started with the new parameters: all loops agree again.
   */
  async #reconfigureDatapath(params: XlatParams): Promise<void> {
    const dp = this.#dp;
    if (!dp) return;
    const gen = this.#dpGen;
    try {
      await dp.reconfigure(params);
    } catch (e) {
      if (gen !== this.#dpGen || this.lifecycle.done) return; // replaced or stopping already
      this.#dpFailure ??= `reconfiguring it failed: ${(e as Error).message}`;
      this.kick();
    }
  }

  /**
   * Stops a datapath that reported a failure, so the caller starts a fresh one. Returns false when
   * it failed too often (see {@link MAX_DP_RESTARTS}); the daemon is then on its way out.
   */
  async #dropFailedDatapath(): Promise<boolean> {
    if (!this.#mayRestart(this.#dpFailure ?? 'failed')) return false;
    await this.#stopDatapath();
    return true;
  }

  /** Counts a restart of the datapath; false when there were too many, and the daemon fails. */
  #mayRestart(why: string): boolean {
    const now = this.#deps.clock.now();
    this.#dpRestarts = this.#dpRestarts.filter((t) => now - t < DP_RESTART_WINDOW_MS);
    if (this.#dpRestarts.length >= MAX_DP_RESTARTS) {
      // Not awaited: stopping waits for this step to end.
      void this.#fail(
        `the datapath failed ${MAX_DP_RESTARTS + 1} times within ${DP_RESTART_WINDOW_MS / 60_000} minutes; last: ${why}`,
      );
      return false;
    }
    this.#dpRestarts.push(now);
    this.#change('datapath-restarted', `restarting the datapath: ${why}`);
    return true;
  }

  async #stopDatapath(): Promise<void> {
    const dp = this.#releaseDatapath();
    if (dp) await this.#retire(dp);
  }

  /** Takes the datapath out of the daemon's hands (a later failure report of it is ignored). */
  #releaseDatapath(): DatapathHandle | undefined {
    const dp = this.#dp;
    this.#dp = undefined;
    this.#dpGen++;
    this.#dpFailure = undefined;
    return dp;
  }

  /** Stops a released datapath; its counts stay in the totals. */
  async #retire(dp: DatapathHandle): Promise<void> {
    this.#counterBase = addCounters(this.#counterBase, dp.counters());
    await dp.stop();
  }

  /** Takes down everything built, datapath first (it uses the sockets and the TUN). */
  async #teardown(why: string): Promise<void> {
    this.#dadRun?.abort();
    this.#dadRun = undefined;
    const dp = this.#releaseDatapath();
    const up = this.#upSide;
    const v4 = this.#ipv4;
    this.#upSide = undefined;
    this.#filterLostBy = undefined; // the next uplink side installs its table afresh
    this.#ipv4 = undefined;
    this.#session = undefined;
    const steps: [string, (() => Promise<void>) | undefined][] = [
      ['datapath', dp && (() => this.#retire(dp))],
      ['uplink side', up && (() => up.close())],
      ['IPv4 side', v4 && (() => v4.close())],
    ];
    let did = false;
    for (const [what, fn] of steps) {
      if (!fn) continue;
      did = true;
      try {
        await fn();
      } catch (e) {
        this.errors++;
        this.log.error('teardown', `removing the ${what} failed: ${(e as Error).message}`);
      }
    }
    if (did) this.log.info('teardown', `removed TUN, routes, sockets and nft table: ${why}`);
  }

  async #fail(why: string): Promise<void> {
    if (this.lifecycle.done) return;
    this.log.error('fail', why);
    this.#exitCode = 1;
    if (this.lifecycle.state !== 'failed') this.lifecycle.go('failed', why);
    await this.stop(why, 1);
  }

  /** Idempotent: every caller gets the same promise. Resolves once everything is taken down. */
  stop(reason = 'stop requested', code?: number): Promise<void> {
    if (code !== undefined) this.#exitCode = code;
    if (this.#stopping) return this.#stopping;
    this.#stopping = this.#stop(reason);
    return this.#stopping;
  }

  async #stop(reason: string): Promise<void> {
    const { clock } = this.#deps;
    if (this.lifecycle.state !== 'stopped') this.lifecycle.go('stopping', reason);
    this.#abort.abort();
    this.#watch?.close();
    for (const t of [this.#timer, this.#raTimer, this.#pref64Timer, this.#periodic]) {
      if (t !== undefined) clock.clearTimeout(t);
    }
    // Let a running step notice; it checks `done` after each await and the DAD wait is aborted.
    const loop = this.#loop;
    if (loop) {
      let timeout: unknown;
      await Promise.race([
        loop.catch(() => {}),
        new Promise<void>((r) => {
          timeout = clock.setTimeout(r, STOP_WAIT_MS);
        }),
      ]);
      clock.clearTimeout(timeout);
    }
    await this.#teardown(reason);
    this.lifecycle.go('stopped', reason);
    this.#resolveDone(this.#exitCode);
  }

  /** Applies a new configuration (SIGHUP). Settings that need a restart are named in the log. */
  reload(cfg: RunConfig): void {
    const old = this.#cfg;
    this.log.level = cfg.logLevel;
    this.log.format = cfg.logFormat;
    const restart = (['interface', 'control', 'workers', 'offload'] as const).filter((k) => old[k] !== cfg[k]);
    if (JSON.stringify(old.metrics) !== JSON.stringify(cfg.metrics)) restart.push('metrics' as never);
    if (restart.length) this.log.warn('reload', `changes to ${restart.join(', ')} take effect at the next start`);
    this.#cfg = {
      ...cfg,
      interface: old.interface,
      control: old.control,
      workers: old.workers,
      offload: old.offload,
      metrics: old.metrics,
    };
    const identity =
      prefixKey(old.pref64) !== prefixKey(cfg.pref64) || old.v4 !== cfg.v4 || old.v6 !== cfg.v6 || old.dad !== cfg.dad;
    const xlat = JSON.stringify(old.translator) !== JSON.stringify(cfg.translator) || old.mtu !== cfg.mtu;
    this.log.info('reload', `configuration re-read${identity ? '; addresses will be chosen again' : ''}`);
    this.#change('reload', 'configuration reloaded');
    if (identity && this.#session) {
      // Draw the identity again at the next step (the IPv4 side stays unless --v4 changed).
      if (old.v4 !== cfg.v4 && this.#ipv4) {
        // In the step loop, not here: a step may be in DAD or building, and taking things from
        // under it aborted that DAD, which failed the daemon.
        this.#rebuildWhy = '--v4 changed';
        this.kick();
        return;
      }
      this.#redraw = true;
    } else if (xlat && this.#session) {
      void this.#reconfigureDatapath(this.#params(this.#session));
    }
    this.kick();
  }

  status(): StatusSnapshot {
    const now = this.#deps.clock.now();
    const s = this.#session;
    const counters = this.#dp ? addCounters(this.#counterBase, this.#dp.counters()) : this.#counterBase;
    return {
      state: this.lifecycle.state,
      reason: this.#reason,
      pid: process.pid,
      uptimeSec: Math.floor((now - this.#startedAt) / 1000),
      stateSinceSec: Math.floor((now - this.lifecycle.since) / 1000),
      uplink: s
        ? { name: s.uplink.name, ifindex: s.uplink.index, up: this.lifecycle.state !== 'paused' }
        : this.#seenUplink
          ? { ...this.#seenUplink }
          : null,
      pref64: s ? formatPrefix6(s.pref64) : null,
      pref64Source: s?.source ?? null,
      clat4: s?.clat4 ?? null,
      clat6: s?.clat6 ?? null,
      prefix64: s ? `${s.prefix64}/64` : null,
      tun: this.#ipv4?.name ?? null,
      mtu: s?.mtu ?? null,
      offload: this.#dp?.offload?.() ?? null,
      dad: { ...this.#dad, duplicates: [...this.#dad.duplicates] },
      counters,
      changes: { ...this.changes },
      transitions: { ...this.lifecycle.entered },
      dadAttempts: this.dadAttempts,
      errors: this.errors,
    };
  }
}

export function describeSource(s: PrefixSource): string {
  return s === 'flag' ? '--pref64' : s === 'ra' ? 'Router Advertisement PREF64 (RFC 8781)' : 'DNS64 (RFC 7050)';
}
