/**
 * The reconciler: brings the CLAT up and keeps it matched to the host. Every netlink event, timer
 * and reload kicks the loop of steps (step-loop.ts); each step observes the host (observe.ts), logs
 * each difference as a change, and does the least work that makes what is built agree with it:
 *
 *   1. uplink       --interface, or the interface of the IPv6 default route; up, with a global address
 *   2. NAT64 prefix --pref64 > RA PREF64 per router > RFC 7050 (pref64.ts)
 *   3. native IPv4  (--mode auto) idle while another IPv4 default route exists
 *   4-7. bring-up   the address mode (uplink-mode.ts), addresses and DAD, uplink side, IPv4 side,
 *                   datapath (bring-up.ts), when the uplink, the address mode, its prefix or the
 *                   NAT64 prefix changed; otherwise MTU changes and repairs
 *
 * Everything built is held as soon as it exists (sides.ts: the uplink and IPv4 sides; the
 * supervisor: the datapath), so `stop()` always takes down exactly what exists, whatever step was
 * running. docs/architecture.md draws the parts.
 */
import { formatPrefix6, type Prefix6 } from '../core/addr/prefix.js';
import { Addressing } from './addressing.js';
import { BringUp, type BringUpRequest, type FailedDad, type Session } from './bring-up.js';
import type { RunConfig } from './config.js';
import type { Logger } from './log.js';
import { ChangeTracker, type Observed, observeHost, observePath, slash64 } from './observe.js';
import {
  type Closer,
  type DaemonDeps,
  type Ipv4Side,
  ipv4Mtu,
  type LinkInfo,
  type NetEvent,
  type XlatParams,
} from './ports.js';
import { Pref64Tracker, type PrefixChoice } from './pref64.js';
import { planReload } from './reload.js';
import { ClatSides } from './sides.js';
import { Lifecycle, type State } from './state.js';
import { describeSource, type StatusSnapshot } from './status.js';
import { RETRY_MS, StepLoop } from './step-loop.js';
import { DatapathSupervisor } from './supervisor.js';
import { describeMode, isWait, modeKey, modeStatus, UplinkModes } from './uplink-mode.js';

export { slash64 } from './observe.js';
export type { DadResult, PrefixSource, StatusSnapshot } from './status.js';
export { describeSource } from './status.js';
export { addCounters, emptyCounters } from './supervisor.js';

const STOP_WAIT_MS = 1_200;

function prefixKey(p: Prefix6 | undefined): string {
  return p === undefined ? '' : formatPrefix6(p);
}

export class Daemon {
  readonly lifecycle: Lifecycle;
  readonly log: Logger;

  #cfg: RunConfig;
  readonly #deps: DaemonDeps;
  readonly #startedAt: number;
  readonly #changes: ChangeTracker;
  readonly #pref64: Pref64Tracker;
  readonly #dp: DatapathSupervisor;
  readonly #addr: Addressing;

  #watch?: Closer;
  #abort = new AbortController();
  #pref64Timer: unknown;
  #everHadPrefix = false;

  readonly #sides: ClatSides;
  readonly #steps: StepLoop;
  readonly #bringup: BringUp;
  #errors = 0;
  /** Set by a reload that needs everything built again; the next step tears down first. */
  #rebuildWhy: string | undefined;
  /** Why the TUN or datapath of a running CLAT is to be built again (see #repair). */
  #repairWhy: string | undefined;
  /** Set by a reload that changes --pref64, --v6 or --dad: the next step draws the addresses again. */
  #redraw = false;
  #session?: Session;
  #reason: string | null = null;
  /** An optimistic DAD that ended without an address, for the next step to act on. */
  #dadVerdict?: FailedDad;
  /** How the CLAT IPv6 address is obtained (uplink-mode.ts). */
  readonly #modes = new UplinkModes();
  /** The uplink of the last observation, for status while nothing is built. */
  #seenUplink: { name: string; ifindex: number; up: boolean } | undefined;

  #stopping?: Promise<void>;
  /** Set when the daemon failed: its reason is logged once, by #fail, and not repeated after. */
  #failed = false;
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
    this.#changes = new ChangeTracker((level, kind, msg) => this.log.log(level, 'change', msg, { kind }));
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
    this.#steps = new StepLoop(deps.clock, log, () => this.#step());
    this.#sides = new ClatSides(deps.plumbing, log, (kind, msg) => this.#changes.change(kind, msg));
    this.#bringup = new BringUp({
      cfg: () => this.#cfg,
      lifecycle: this.lifecycle,
      log,
      changes: this.#changes,
      sides: this.#sides,
      dp: this.#dp,
      addr: this.#addr,
      plumbing: deps.plumbing,
      stopSignal: this.#abort.signal,
      session: () => this.#session,
      buildIpv4Side: (uplink, v4, mtu) => this.#buildIpv4Side(uplink, v4, mtu),
      params: (s) => this.#params(s),
      // Handled by the next step, not here: a step may be building meanwhile.
      onLateVerdict: (v) => {
        this.#dadVerdict = v;
        this.kick();
      },
      onLateError: (e) => {
        this.#errors++;
        this.log.error('dad', `DAD failed: ${e.message}`);
        this.#retryIn(RETRY_MS);
      },
    });
    this.done = new Promise((r) => {
      this.#resolveDone = r;
    });
    this.lifecycle.onTransition((t) => {
      const why = this.#failed ? '' : `: ${t.reason}`;
      this.log.info('state', `${t.from} -> ${t.to}${why}`, { from: t.from, to: t.to });
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

  /** Errors logged: failed steps, netlink, teardown. */
  get errors(): number {
    return this.#errors + this.#steps.errors;
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
        this.#errors++;
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
    if (!this.lifecycle.done) this.#steps.kick();
  }

  /** Waits until no step is running and none is pending (for tests). */
  settled(): Promise<void> {
    return this.#steps.settled();
  }

  #retryIn(ms: number): void {
    this.#steps.retryIn(ms);
  }

  #onEvent(e: NetEvent): void {
    if (e.type === 'pref64') {
      this.#pref64.onRa(e); // kicks
      return;
    }
    if (e.type === 'nft') this.#sides.filterLost(e.table, e.by);
    else {
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
    return this.#session !== undefined || this.#sides.any;
  }

  async #step(): Promise<void> {
    const cfg = this.#cfg;
    const o = await observeHost(this.#deps.net, {
      iface: cfg.interface,
      autoMode: cfg.mode === 'auto',
      current: this.#session?.uplink.index,
      tun: this.#sides.ipv4?.ifindex,
      held: this.#sides.taken?.address,
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
    const gone = await this.#sides.repair(o.tunGone === true, () => this.#dp.stop());
    if (gone !== undefined) this.#repairWhy = `${gone} was deleted`;

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
      // Said once per round (status counts the seconds down), not again at each event meanwhile.
      if (this.lifecycle.state === 'dad' && this.#reason?.startsWith('DAD blocked')) return;
      return this.#wait(
        'dad',
        `DAD blocked: every address tried was answered for; next round in ${Math.ceil(blocked / 1000)} s`,
      );
    }
    return this.#follow(uplink, choice, o);
  }

  /** Steps 4-7 against the current uplink and prefix: bring up, re-address, or keep running. */
  async #follow(uplink: LinkInfo, choice: PrefixChoice, o: Observed): Promise<void> {
    const cfg = this.#cfg;
    const { prefix, source } = choice;
    // Step 4: the source address the kernel would use toward the prefix gives the /64 and path MTU;
    // the address mode (uplink-mode.ts) says where the CLAT address comes from.
    const path = await observePath(this.#deps.net, uplink, prefix);
    const taken = this.#sides.taken;
    const mode = this.#modes.choose({
      uplink: uplink.name,
      addresses: o.global6,
      held: taken && [{ address: taken.address, prefixLen: taken.prefixLen }],
      source: path.source,
      v6: cfg.v6,
      v6Prefix: cfg.v6Prefix,
    });
    if (isWait(mode)) {
      if (this.#built) await this.#teardown(mode.wait);
      return this.#wait('waiting-uplink', `${mode.wait}; waiting`);
    }
    const prefix64 = path.prefix64 ?? (mode.address ? slash64(mode.address) : '::');
    const mtu = cfg.mtu ?? ipv4Mtu(path.mtu);
    const leasePresent = mode.address !== undefined && o.global6.some((a) => a.address === mode.address);
    const base = { uplink, prefix, source, prefix64, mtu, mode, leasePresent };

    const cur = this.#session;
    if (!cur) {
      const how = cfg.interface ? 'given with --interface' : 'IPv6 default route';
      this.log.info('uplink', `${uplink.name} (${how})`, { ifindex: uplink.index, mtu: uplink.mtu });
      this.log.info('pref64', `NAT64 prefix ${formatPrefix6(prefix)} from ${describeSource(source)}`, { source });
      if (cfg.mode === 'auto') this.log.info('native-ipv4', 'no native IPv4 default route; CLAT needed');
      return this.#bringUp({ ...base, reason: 'start' });
    }
    const prefixChanged = prefixKey(cur.pref64) !== prefixKey(prefix);
    const modeChanged = modeKey(cur.mode) !== modeKey(mode);
    if (modeChanged) {
      const lan = cur.mode.mode <= 2 && mode.mode <= 2 && cur.mode.announce === mode.announce;
      if (lan)
        this.#changes.change('prefix64-changed', `uplink /64 ${cur.prefix64}/64 -> ${prefix64}/64; new CLAT address`);
      else this.#changes.change('address-mode-changed', `${describeMode(mode)} (was mode ${cur.mode.mode})`);
      // Another way of announcing needs another uplink side, under a datapath that uses it.
      if (cur.mode.announce !== mode.announce) await this.#teardown(`address mode now ${mode.mode}`);
    }
    if (prefixChanged || modeChanged || this.#redraw) {
      this.#redraw = false;
      const reason = prefixChanged
        ? `NAT64 prefix now ${formatPrefix6(prefix)}`
        : modeChanged
          ? `address mode ${mode.mode}: ${mode.how}`
          : 'configuration reloaded';
      return this.#bringUp({ ...base, reason });
    }
    // A leased address put back on the uplink (a DHCPv6 client renewing it) is taken off again.
    if (mode.take && leasePresent && mode.address !== undefined) await this.#sides.take(uplink, mode.address, true);
    const v4 = this.#sides.ipv4;
    if (mtu !== cur.mtu && v4) {
      this.#changes.change('mtu-changed', `IPv4 MTU ${cur.mtu} -> ${mtu}`);
      await v4.setMtu(mtu);
      cur.mtu = mtu;
      await this.#dp.reconfigure(this.#params(cur));
    }
    cur.source = source;
    if (this.lifecycle.state === 'running' && (this.#dp.failure !== undefined || !this.#dp.running || !v4)) {
      if (!(await this.#repair(uplink, cur))) return;
    }
    if (this.lifecycle.state === 'paused') {
      // Back from down or from a lost prefix with the same addresses: check the address again.
      return this.#bringUp({ ...base, reason: 'resuming', keep: cur.clat6 });
    }
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
    const up = this.#sides.uplink;
    if (!up) return false;
    const v4 = await this.#buildIpv4Side(uplink, cur.clat4, cur.mtu);
    if (this.lifecycle.done) return false;
    await this.#dp.run(up, v4, this.#params(cur));
    this.#repairWhy = undefined;
    this.log.info('translate', `translating again after a datapath restart: ${cur.clat4} <-> ${cur.clat6}`);
    return true;
  }

  #params(s: Session): XlatParams {
    return { pref64: s.pref64, clat4: s.clat4, clat6: s.clat6, mtu: s.mtu, translator: this.#cfg.translator };
  }

  /** Steps 4-7 for a new or changed identity (bring-up.ts); on success the CLAT is running. */
  async #bringUp(o: BringUpRequest): Promise<void> {
    const r = await this.#bringup.run(o);
    if (r.type === 'dad-failed') return this.#afterFailedDad(r.verdict);
    if (r.type === 'anycast-refused') {
      // The next step chooses again, with the refusal: clatd answers for the address itself (mode 2).
      this.#modes.refused(r.address, r.reason);
      this.log.warn('address-mode', `the kernel refused the anycast join for ${r.address}: ${r.reason}`);
      await this.#teardown('anycast join refused');
      return this.kick();
    }
    if (r.type !== 'running' || this.lifecycle.done) return;
    this.#session = r.session;
    this.#reason = null;
    this.lifecycle.go('running', `CLAT ${r.session.clat4} <-> ${r.session.clat6}`);
  }

  /**
   * DAD did not give an address. Blocked (every address answered for): the CLAT is taken down —
   * it has no address it may use — and the next round waits out the back-off. Interrupted (the
   * link failed under it): the step is tried again when the host changes, or in a moment.
   */
  async #afterFailedDad(v: FailedDad): Promise<void> {
    if (v.type === 'interrupted') {
      this.log.warn('dad', `DAD interrupted: ${v.reason}; trying again`);
      this.#retryIn(RETRY_MS);
      if (this.#session) return this.#pause(`DAD interrupted: ${v.reason}; translation paused`);
      return;
    }
    const secs = Math.ceil(v.retryInMs / 1000);
    this.log.warn('dad', `DAD blocked: ${v.reason}; clatd keeps running and tries new addresses in ${secs} s`);
    await this.#teardown('DAD blocked: no address of ours is free on the link');
    this.#retryIn(v.retryInMs);
    this.#wait('dad', `DAD blocked: every address tried was answered for; next round in ${secs} s`);
  }

  /** Takes down everything built, datapath first (it uses the sockets and the TUN). */
  async #teardown(why: string): Promise<void> {
    this.#bringup.abort();
    this.#session = undefined;
    const did = this.#dp.running || this.#sides.any;
    const failed: string[] = [];
    try {
      await this.#dp.stop();
    } catch (e) {
      failed.push(`removing the datapath failed: ${(e as Error).message}`);
    }
    failed.push(...(await this.#sides.close()));
    for (const f of failed) {
      this.#errors++;
      this.log.error('teardown', f);
    }
    if (did) this.log.info('teardown', `removed TUN, routes, sockets and nft table: ${why}`);
  }

  /**
   * Step 6: the IPv4 side, built once and kept across address changes; an MTU that changed while
   * no session held it (re-addressing) is applied.
   */
  async #buildIpv4Side(uplink: LinkInfo, v4: string, mtu: number): Promise<Ipv4Side> {
    const had = this.#sides.ipv4;
    const side = await this.#sides.buildIpv4({ uplink, v4, mtu, metric: this.#cfg.routeMetric });
    if (had && this.#session && this.#session.mtu !== mtu) await side.setMtu(mtu);
    return side;
  }

  async #fail(why: string): Promise<void> {
    if (this.lifecycle.done) return;
    this.log.error('fail', why);
    this.#failed = true;
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
    this.#steps.close();
    if (this.#pref64Timer !== undefined) clock.clearTimeout(this.#pref64Timer);
    // Let a running step notice; it checks `done` after each await and the DAD wait is aborted.
    const loop = this.#steps.running;
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
    await this.#teardown(this.#failed ? 'clatd failed' : reason);
    this.lifecycle.go('stopped', reason);
    this.#resolveDone(this.#exitCode);
  }

  /** Applies a new configuration (SIGHUP). Settings that need a restart are named in the log. */
  reload(cfg: RunConfig): void {
    this.log.level = cfg.logLevel;
    this.log.format = cfg.logFormat;
    const plan = planReload(this.#cfg, cfg);
    if (plan.restart.length)
      this.log.warn('reload', `changes to ${plan.restart.join(', ')} take effect at the next start`);
    this.#cfg = plan.cfg;
    this.#pref64.configure(plan.cfg);
    const what = plan.rebuild
      ? `; ${plan.rebuild}: the TUN is built again`
      : plan.redraw
        ? '; addresses will be chosen again'
        : '';
    this.log.info('reload', `configuration re-read${what}`);
    this.#changes.change('reload', 'configuration reloaded');
    if (this.#session && plan.rebuild && this.#sides.ipv4) {
      // In the step loop, not here: a step may be in DAD or building, and taking things from
      // under it aborted that DAD, which failed the daemon.
      this.#rebuildWhy = plan.rebuild;
    } else if (this.#session && plan.redraw) {
      this.#redraw = true;
    } else if (this.#session && plan.reconfigure) {
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
      uplinkMode: modeStatus(s?.mode ?? this.#modes.last),
      tun: this.#sides.ipv4?.name ?? null,
      mtu: s?.mtu ?? null,
      offload: this.#dp.offload(),
      dad: this.#addr.status(),
      responder: this.#sides.uplink?.responder(),
      counters: this.#dp.counters(),
      changes: { ...this.changes },
      transitions: { ...this.lifecycle.entered },
      dadAttempts: this.dadAttempts,
      errors: this.errors,
    };
  }
}
