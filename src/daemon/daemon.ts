/**
 * The reconciler: brings the CLAT up and keeps it matched to the host. Every netlink event, timer
 * and reload marks it dirty; one step at a time then observes the host (observe.ts), logs each
 * difference as a change, and does the least work that makes what is built agree with it:
 *
 *   1. uplink       --interface, or the interface of the IPv6 default route; up, with a global address
 *   2. NAT64 prefix --pref64 > RA PREF64 per router > RFC 7050 (pref64.ts)
 *   3. native IPv4  (--mode auto) idle while another IPv4 default route exists
 *   4. addresses    CLAT IPv4 (RFC 7335) and a checksum-neutral IPv6 in the /64 the kernel would use (addressing.ts)
 *   5. uplink side  raw socket holding the anycast address + nft drop rule, then DAD on the wire
 *   6. IPv4 side    TUN v4-<uplink>, /32, MTU, default route
 *   7. translate    the datapath (supervisor.ts: start, reconfigure, restart budget)
 *
 * Everything built is held in three places (#upSide, #ipv4, the supervisor) as soon as it exists,
 * so `stop()` always takes down exactly what exists, whatever step was running.
 */
import { formatIPv6 } from '../core/addr/ipv6.js';
import { formatPrefix6, type Prefix6 } from '../core/addr/prefix.js';
import { Addressing, type DadVerdict } from './addressing.js';
import type { RunConfig } from './config.js';
import type { Logger } from './log.js';
import { ChangeTracker, isLinkLocalOrLoopback, type Observed, observeHost, slash64 } from './observe.js';
import {
  type Closer,
  type DaemonDeps,
  type DatapathHandle,
  type Ipv4Side,
  ipv4Mtu,
  type LinkInfo,
  type NetEvent,
  tunName,
  type UplinkSide,
  type XlatParams,
} from './ports.js';
import { Pref64Tracker, type PrefixChoice } from './pref64.js';
import { Lifecycle, type State } from './state.js';
import { describeSource, type PrefixSource, type StatusSnapshot } from './status.js';
import { DatapathSupervisor } from './supervisor.js';

export { slash64 } from './observe.js';
export type { DadResult, PrefixSource, StatusSnapshot } from './status.js';
export { describeSource } from './status.js';
export { addCounters, emptyCounters } from './supervisor.js';

interface Session {
  uplink: LinkInfo;
  pref64: Prefix6;
  source: PrefixSource;
  prefix64: string;
  clat4: string;
  clat6: string;
  mtu: number;
}

interface BringUp {
  uplink: LinkInfo;
  prefix: Prefix6;
  source: PrefixSource;
  prefix64: string;
  mtu: number;
  reason: string;
  /** Probe this address again instead of drawing one (resuming with the same identity). */
  keep?: string;
}

type FailedDad = Exclude<DadVerdict, { type: 'unique' } | { type: 'stopped' }>;

const ERROR_RETRY_MS = 2_000;
const PERIODIC_MS = 30_000;
const STOP_WAIT_MS = 1_200;

function prefixKey(p: Prefix6 | undefined): string {
  return p === undefined ? '' : formatPrefix6(p);
}

export class Daemon {
  readonly lifecycle: Lifecycle;
  readonly log: Logger;
  errors = 0;

  #cfg: RunConfig;
  readonly #deps: DaemonDeps;
  readonly #startedAt: number;
  readonly #changes: ChangeTracker;
  readonly #pref64: Pref64Tracker;
  readonly #dp: DatapathSupervisor;
  readonly #addr: Addressing;

  #watch?: Closer;
  #abort = new AbortController();
  #timer: unknown;
  #periodic: unknown;
  #pref64Timer: unknown;
  #everHadPrefix = false;

  #upSide?: UplinkSide;
  #ipv4?: Ipv4Side;
  /** Who deleted (part of) the nft table of the uplink side, until it is put back. */
  #filterLostBy: string | undefined;
  /** Set by a reload that needs everything built again; the next step tears down first. */
  #rebuildWhy: string | undefined;
  /** Why the TUN or datapath of a running CLAT is to be built again (see #repair). */
  #repairWhy: string | undefined;
  /** Set by a reload that changes --pref64, --v6 or --dad: the next step draws the addresses again. */
  #redraw = false;
  #session?: Session;
  #reason: string | null = null;
  /** Aborts the DAD run of the current identity when a new one starts. */
  #dadRun?: AbortController;
  /** An optimistic DAD that ended without an address, for the next step to act on. */
  #dadVerdict?: FailedDad;
  /** The uplink of the last observation, for status while nothing is built. */
  #seenUplink: { name: string; ifindex: number; up: boolean } | undefined;

  #dirty = false;
  #loop?: Promise<void>;
  #stopping?: Promise<void>;
  #exitCode = 0;
  #resolveDone!: (code: number) => void;
  /** Resolves with the exit code once the daemon has stopped. */
  readonly done: Promise<number>;
  /** Called on each state change (systemd STATUS=). */
  onStatus?: (line: string) => void;

  constructor(cfg: RunConfig, deps: DaemonDeps, log: Logger) {
    this.#cfg = cfg;
    this.#deps = deps;
    this.log = log;
    this.#startedAt = deps.clock.now();
    this.lifecycle = new Lifecycle(() => deps.clock.now());
    this.#changes = new ChangeTracker((kind, msg) => this.log.info('change', msg, { kind }));
    this.#pref64 = new Pref64Tracker(
      {
        clock: deps.clock,
        dns64: deps.dns64,
        log,
        solicit: deps.net.solicit && ((i) => deps.net.solicit?.(i)),
        kick: () => this.kick(),
      },
      cfg,
    );
    this.#dp = new DatapathSupervisor({
      plumbing: deps.plumbing,
      log,
      now: () => deps.clock.now(),
      onFailure: () => this.kick(),
      onRestart: (why) => this.#changes.change('datapath-restarted', `restarting the datapath: ${why}`),
      // Not awaited: stopping waits for the step that asked to end.
      onGiveUp: (why) => void this.#fail(why),
    });
    this.#addr = new Addressing(deps, log, cfg.dad);
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

  /** Live changes seen, by kind. */
  get changes(): Record<string, number> {
    return this.#changes.counts;
  }

  get dadAttempts(): number {
    return this.#addr.attemptsTotal;
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
      this.#pref64.onRa(e); // kicks
      return;
    }
    if (e.type === 'nft') {
      const table = this.#upSide?.table;
      if (table === undefined || (e.table !== undefined && e.table !== table)) return;
      this.#filterLostBy = e.by;
    } else {
      this.log.debug('netlink', `${e.type} ${e.removed ? 'removed' : 'changed'}`, { ...e });
    }
    this.kick();
  }

  #wait(state: 'waiting-uplink' | 'waiting-prefix' | 'idle-native-ipv4' | 'dad', why: string): void {
    const changed = this.#reason !== why || this.lifecycle.state !== state;
    this.#reason = why;
    if (this.lifecycle.state !== state) this.lifecycle.go(state, why);
    else if (changed) this.log.info('wait', why);
  }

  async #pause(why: string): Promise<void> {
    this.#reason = why;
    if (this.lifecycle.state === 'paused') return;
    await this.#dp.pause();
    this.lifecycle.go('paused', why);
  }

  /** Whether anything is built (a session, the IPv4 side or the uplink side). */
  get #built(): boolean {
    return this.#session !== undefined || this.#ipv4 !== undefined || this.#upSide !== undefined;
  }

  async #step(): Promise<void> {
    const cfg = this.#cfg;
    const o = await observeHost(this.#deps.net, {
      iface: cfg.interface,
      autoMode: cfg.mode === 'auto',
      current: this.#session?.uplink.index,
      tun: this.#ipv4?.ifindex,
    });
    if (this.lifecycle.done) return;
    this.#seenUplink = o.uplink && { name: o.uplink.name, ifindex: o.uplink.index, up: o.uplinkOk };
    const choice = o.uplinkOk && o.uplink ? this.#pref64.choose(o.uplink, o.onLink) : undefined;
    this.#changes.diff(o, prefixKey(choice?.prefix), choice?.source, cfg.mode === 'auto');
    if (this.#rebuildWhy !== undefined) {
      const why = this.#rebuildWhy;
      this.#rebuildWhy = undefined;
      await this.#teardown(why);
    }
    const verdict = this.#dadVerdict;
    this.#dadVerdict = undefined;
    if (verdict) await this.#afterFailedDad(verdict);
    const s = this.#session;

    if (!o.uplinkOk || !o.uplink) {
      const why = o.why ?? 'no uplink';
      if (s && o.uplink && o.uplink.index === s.uplink.index) {
        // The datapath stays, paused: its sockets outlive a link going down and up (a read meets
        // ENETDOWN once, counted), and resuming it is instant where new workers take ~0.8 s to warm up.
        return this.#pause(`${why}; translation paused`);
      }
      if (this.#built) await this.#teardown(`${why}`);
      return this.#wait('waiting-uplink', `${why}; waiting`);
    }
    const uplink = o.uplink;
    if (s && s.uplink.index !== uplink.index)
      await this.#teardown(`uplink changed from ${s.uplink.name} to ${uplink.name}`);
    await this.#keepBuilt(o);

    if (cfg.mode === 'auto' && o.native4) {
      if (this.#built) await this.#teardown('native IPv4 default route present');
      return this.#wait('idle-native-ipv4', 'the host has a native IPv4 default route; idle (--mode auto)');
    }
    if (!choice) {
      const from = cfg.dns64Servers.length ? `from ${cfg.dns64Servers.join(', ')}` : 'for ipv4only.arpa';
      const why = `no NAT64 prefix: no PREF64 in Router Advertisements on ${uplink.name}, no DNS64 answer ${from}`;
      if (this.#session) return this.#pause(`${why}; translation paused`);
      return this.#wait('waiting-prefix', `${why}; waiting`);
    }
    this.#everHadPrefix = true;
    const blocked = this.#addr.blockedForMs();
    if (blocked > 0) {
      this.#retryIn(blocked);
      return this.#wait(
        'dad',
        `DAD blocked: every address tried was answered for; next round in ${Math.ceil(blocked / 1000)} s`,
      );
    }
    return this.#follow(uplink, choice);
  }

  /** Puts back what was changed or deleted under a built CLAT: a TUN deleted or altered, the nft table. */
  async #keepBuilt(o: Observed): Promise<void> {
    if (o.tunGone) await this.#dropGoneTun();
    else if (this.#ipv4) {
      const fixed = await this.#ipv4.repair();
      if (fixed.length)
        this.#changes.change('ipv4-restored', `${this.#ipv4.name} changed from outside; put back: ${fixed.join(', ')}`);
    }
    if (this.#filterLostBy !== undefined && this.#upSide) await this.#restoreFilter(this.#upSide);
  }

  /** Steps 4-7 against the current uplink and prefix: bring up, re-address, or keep running. */
  async #follow(uplink: LinkInfo, choice: PrefixChoice): Promise<void> {
    const cfg = this.#cfg;
    const { prefix, source } = choice;
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
    const mtu = cfg.mtu ?? ipv4Mtu(route?.mtu ?? uplink.mtu);
    const base = { uplink, prefix, source, prefix64, mtu };

    const cur = this.#session;
    if (!cur) {
      const how = cfg.interface ? 'given with --interface' : 'IPv6 default route';
      this.log.info('uplink', `${uplink.name} (${how})`, { ifindex: uplink.index, mtu: uplink.mtu });
      this.log.info('pref64', `NAT64 prefix ${formatPrefix6(prefix)} from ${describeSource(source)}`, { source });
      if (cfg.mode === 'auto') this.log.info('native-ipv4', 'no native IPv4 default route; CLAT needed');
      return this.#bringUp({ ...base, reason: 'start' });
    }
    const prefixChanged = prefixKey(cur.pref64) !== prefixKey(prefix);
    const lanChanged = cfg.v6 === undefined && cur.prefix64 !== prefix64;
    if (lanChanged)
      this.#changes.change('prefix64-changed', `uplink /64 ${cur.prefix64}/64 -> ${prefix64}/64; new CLAT address`);
    if (prefixChanged || lanChanged || this.#redraw) {
      this.#redraw = false;
      const reason = prefixChanged
        ? `NAT64 prefix now ${formatPrefix6(prefix)}`
        : lanChanged
          ? 'uplink /64 changed'
          : 'configuration reloaded';
      return this.#bringUp({ ...base, reason });
    }
    if (mtu !== cur.mtu && this.#ipv4) {
      this.#changes.change('mtu-changed', `IPv4 MTU ${cur.mtu} -> ${mtu}`);
      await this.#ipv4.setMtu(mtu);
      cur.mtu = mtu;
      await this.#dp.reconfigure(this.#params(cur));
    }
    cur.source = source;
    if (this.lifecycle.state === 'running' && (this.#dp.failure !== undefined || !this.#dp.running || !this.#ipv4)) {
      if (!(await this.#repair(uplink, cur))) return;
    }
    if (this.lifecycle.state === 'paused') {
      // Back from down or from a lost prefix with the same addresses: check the address again.
      return this.#bringUp({ ...base, reason: 'resuming', keep: cur.clat6 });
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
    this.#changes.change('nft-restored', `nft table inet ${up.table} was deleted by ${by}; restored`);
  }

  /**
   * The TUN was deleted under the daemon (`ip link del v4-…`): its address and routes went with it
   * and the workers lost their queues. Lets go of both; {@link #repair} (running) or
   * {@link #bringUp} (paused) builds them again.
   */
  async #dropGoneTun(): Promise<void> {
    const v4 = this.#ipv4;
    if (!v4) return;
    this.#changes.change('tun-gone', `${v4.name} was deleted; creating it again`);
    this.#repairWhy = `${v4.name} was deleted`;
    await this.#dp.stop();
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
    const why = this.#dp.failure ?? this.#repairWhy ?? 'the datapath is not running';
    if (!this.#dp.mayRestart(why)) return false;
    // Kept until the repair is done, so that a failed attempt is retried under the same reason.
    this.#repairWhy = why;
    await this.#dp.stop();
    await this.#buildIpv4Side({ uplink, mtu: cur.mtu }, cur.clat4);
    if (this.lifecycle.done || !this.#upSide || !this.#ipv4) return false;
    await this.#dp.run(this.#upSide, this.#ipv4, this.#params(cur));
    this.#repairWhy = undefined;
    this.log.info('translate', `translating again after a datapath restart: ${cur.clat4} <-> ${cur.clat6}`);
    return true;
  }

  #params(s: Session): XlatParams {
    return { pref64: s.pref64, clat4: s.clat4, clat6: s.clat6, mtu: s.mtu, translator: this.#cfg.translator };
  }

  /** Steps 4-7 for a new or changed identity. The TUN and IPv4 side stay when they exist. */
  async #bringUp(o: BringUp): Promise<void> {
    const { plumbing } = this.#deps;
    const cfg = this.#cfg;
    if (this.#dp.running && this.lifecycle.state === 'running' && cfg.dad === 'strict') await this.#dp.pause();

    // An IPv4 side kept from an attempt that did not finish (DAD interrupted) keeps its address.
    const ipv4 = await this.#addr.ipv4(this.#session?.clat4 ?? this.#ipv4?.v4, cfg.v4);
    // --v6 is the first choice; a duplicate of it is replaced by a drawn address like any other.
    const draw = this.#addr.drawer(o.prefix64, o.prefix, ipv4);
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
    this.lifecycle.go('dad', o.reason);
    this.#addr.begin(cfg.dad);
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
      if (address === current) return;
      this.#changes.change('address-duplicate', `${current} is a duplicate; trying ${address}`);
      current = address;
      session.clat6 = address;
      await up.retarget(address, o.prefix);
      if (cfg.dad === 'optimistic' && this.#session === session) await this.#dp.reconfigure(this.#params(session));
    };
    // DAD holds the CLAT back for about a second (DupAddrDetectTransmits × RetransTimer), and new
    // workers take about as long to start and warm up their JIT. So a first datapath starts now,
    // paused, with the IPv4 side built for it: nothing is sent from the address before DAD passes,
    // and translation starts as soon as it does. (Optimistic DAD translates at once anyway.)
    let early: Promise<DatapathHandle | Error> | undefined;
    if (cfg.dad !== 'optimistic' && !this.#dp.running) {
      await this.#buildIpv4Side(o, ipv4);
      if (this.lifecycle.done || !this.#ipv4) return;
      early = this.#dp.start(up, this.#ipv4, this.#params(session), true).catch((e: Error) => e);
    }
    const probing = this.#addr.probe({
      uplink: o.uplink,
      side: up,
      first,
      redraw: draw,
      mode: cfg.dad,
      params: sys,
      onAddress,
      signal,
    });
    if (cfg.dad === 'optimistic') {
      probing.then(
        (v) => {
          if (this.lifecycle.done || mine.signal.aborted) return;
          if (v.type === 'unique') this.log.info('dad', `${v.address} is unique after ${v.attempts} attempt(s)`);
          else if (v.type !== 'stopped') {
            // Handled by the next step, not here: a step may be building meanwhile.
            this.#dadVerdict = v;
            this.kick();
          }
        },
        (e: Error) => {
          if (!mine.signal.aborted && !this.lifecycle.done) {
            this.errors++;
            this.log.error('dad', `DAD failed: ${e.message}`);
            this.#retryIn(ERROR_RETRY_MS);
          }
        },
      );
    } else {
      const v = await probing;
      const startError = await this.#adoptEarly(early);
      if (this.lifecycle.done || v.type === 'stopped') return;
      if (v.type !== 'unique') return this.#afterFailedDad(v);
      session.clat6 = v.address;
      this.log.info(
        'dad',
        cfg.dad === 'off'
          ? `probes sent for ${v.address}; not waiting (--dad off)`
          : `${v.address} is unique after ${v.attempts} attempt(s)`,
      );
      // The datapath started during DAD failed: the step is tried again (the sides stay).
      if (startError) throw startError;
    }

    // Step 6: the IPv4 side (kept across address changes).
    await this.#buildIpv4Side(o, ipv4);
    if (this.lifecycle.done || !this.#ipv4) return;

    // Step 7: translate.
    const xp = this.#params(session);
    if (this.#dp.running && this.#dp.failure !== undefined && !(await this.#dp.dropFailed())) return;
    if (this.lifecycle.done) return;
    const via = `${ipv4} <-> ${session.clat6} via ${formatPrefix6(o.prefix)}`;
    if (!this.#dp.running) {
      await this.#dp.run(up, this.#ipv4, xp);
      this.log.info('translate', `translating ${via}`);
    } else {
      // The one started during DAD has these parameters already, unless DAD drew a new address.
      if (!early || session.clat6 !== first) await this.#dp.reconfigure(xp);
      // A refused reconfiguration marked it failed: the next step replaces it (running, fresh).
      if (this.#dp.failure === undefined) await this.#dp.resume();
      this.log.info('translate', `${early ? 'translating' : 'translating again:'} ${via}`);
    }
    this.#session = session;
    this.#reason = null;
    if (this.lifecycle.done) return;
    this.lifecycle.go('running', `CLAT ${ipv4} <-> ${session.clat6}`);
  }

  /**
   * DAD did not give an address. Blocked (every address answered for): the CLAT is taken down —
   * it has no address it may use — and the next round waits out the back-off. Interrupted (the
   * link failed under it): the step is tried again when the host changes, or in a moment.
   */
  async #afterFailedDad(v: FailedDad): Promise<void> {
    if (v.type === 'interrupted') {
      this.log.warn('dad', `DAD interrupted: ${v.reason}; trying again`);
      this.#retryIn(ERROR_RETRY_MS);
      if (this.#session) return this.#pause(`DAD interrupted: ${v.reason}; translation paused`);
      return;
    }
    const secs = Math.ceil(v.retryInMs / 1000);
    this.log.warn('dad', `DAD blocked: ${v.reason}; clatd keeps running and tries new addresses in ${secs} s`);
    await this.#teardown('DAD blocked: no address of ours is free on the link');
    this.#retryIn(v.retryInMs);
    this.#wait('dad', `DAD blocked: every address tried was answered for; next round in ${secs} s`);
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
    await this.#dp.adopt(dp, this.lifecycle.done);
    return undefined;
  }

  /** Takes down everything built, datapath first (it uses the sockets and the TUN). */
  async #teardown(why: string): Promise<void> {
    this.#dadRun?.abort();
    this.#dadRun = undefined;
    const hadDp = this.#dp.running;
    const up = this.#upSide;
    const v4 = this.#ipv4;
    this.#upSide = undefined;
    this.#filterLostBy = undefined; // the next uplink side installs its table afresh
    this.#ipv4 = undefined;
    this.#session = undefined;
    const steps: [string, (() => Promise<void>) | undefined][] = [
      ['datapath', hadDp ? () => this.#dp.stop() : undefined],
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
    this.#pref64.close();
    for (const t of [this.#timer, this.#pref64Timer, this.#periodic]) {
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
    await this.#dp.close();
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
    this.#pref64.configure(this.#cfg);
    const identity =
      prefixKey(old.pref64) !== prefixKey(cfg.pref64) || old.v4 !== cfg.v4 || old.v6 !== cfg.v6 || old.dad !== cfg.dad;
    const xlat = JSON.stringify(old.translator) !== JSON.stringify(cfg.translator) || old.mtu !== cfg.mtu;
    this.log.info('reload', `configuration re-read${identity ? '; addresses will be chosen again' : ''}`);
    this.#changes.change('reload', 'configuration reloaded');
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
      void this.#dp.reconfigure(this.#params(this.#session));
    }
    this.kick();
  }

  status(): StatusSnapshot {
    const now = this.#deps.clock.now();
    const s = this.#session;
    const pref = this.#pref64.describe();
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
      pref64Routers: pref.routers,
      pref64Refused: pref.refused,
      clat4: s?.clat4 ?? null,
      clat6: s?.clat6 ?? null,
      prefix64: s ? `${s.prefix64}/64` : null,
      tun: this.#ipv4?.name ?? null,
      mtu: s?.mtu ?? null,
      offload: this.#dp.offload(),
      dad: this.#addr.status(),
      counters: this.#dp.counters(),
      changes: { ...this.changes },
      transitions: { ...this.lifecycle.entered },
      dadAttempts: this.dadAttempts,
      errors: this.errors,
    };
  }
}
