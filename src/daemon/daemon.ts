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
 * With --lan, after every step the LAN side (lan.ts) follows: served while running, cut off otherwise.
 *
 * Everything built is held as soon as it exists (sides.ts: the uplink and IPv4 sides; the
 * supervisor: the datapath), so `stop()` always takes down exactly what exists, whatever step was
 * running. The parts are built and wired in wiring.ts; a running CLAT is kept matched by upkeep.ts;
 * the status document is assembled in snapshot.ts. docs/architecture.md draws the parts.
 */
import { formatPrefix6, type Prefix6 } from '../core/addr/prefix.js';
import type { BringUpRequest, FailedDad, Session } from './bring-up.js';
import type { RunConfig } from './config.js';
import { HEALTH_WINDOW_MS } from './health.js';
import type { Logger } from './log.js';
import { type Observed, observeHost, observePath, slash64 } from './observe.js';
import { type DaemonDeps, ipv4Mtu, type LinkInfo } from './ports.js';
import type { PrefixChoice } from './pref64.js';
import { planReload } from './reload.js';
import { statusSnapshot } from './snapshot.js';
import type { Lifecycle, State } from './state.js';
import { describeSource, type StatusSnapshot } from './status.js';
import { RETRY_MS } from './step-loop.js';
import { describeMode, isWait, modeKey } from './uplink-mode.js';
import { DaemonParts } from './wiring.js';

export { slash64 } from './observe.js';
export type { DadResult, PrefixSource, StatusSnapshot } from './status.js';
export { describeSource } from './status.js';
export { addCounters, emptyCounters } from './supervisor.js';

function prefixKey(p: Prefix6 | undefined): string {
  return p === undefined ? '' : formatPrefix6(p);
}

export class Daemon {
  readonly lifecycle: Lifecycle;
  readonly log: Logger;

  #cfg: RunConfig;
  readonly #deps: DaemonDeps;
  readonly #startedAt: number;
  readonly #parts: DaemonParts;

  #pref64Timer: unknown;
  #everHadPrefix = false;
  #errors = 0;
  /** Set by a reload that needs everything built again; the next step tears down first. */
  #rebuildWhy: string | undefined;
  /** Set by a reload that changes --pref64, --v6 or --dad: the next step draws the addresses again. */
  #redraw = false;
  #session?: Session;
  #reason: string | null = null;
  /** An optimistic DAD that ended without an address, for the next step to act on. */
  #dadVerdict?: FailedDad;
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
    this.#parts = new DaemonParts(cfg, deps, log, {
      cfg: () => this.#cfg,
      session: () => this.#session,
      kick: () => this.kick(),
      // Not awaited: stopping waits for the step that asked to end.
      fail: (why) => void this.#fail(why),
      step: () => this.#stepAll(),
      undelivered: (clat6) => this.#undelivered(clat6),
      // Handled by the next step, not here: a step may be building meanwhile.
      lateVerdict: (v) => {
        this.#dadVerdict = v;
        this.kick();
      },
      lateError: (e) => {
        this.#errors++;
        this.log.error('dad', `DAD failed: ${e.message}`);
        this.#retryIn(RETRY_MS);
      },
      error: (event, msg) => {
        this.#errors++;
        this.log.error(event, msg);
      },
    });
    this.lifecycle = this.#parts.lifecycle;
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
    return this.#parts.changes.counts;
  }

  /** Errors logged: failed steps, netlink, teardown. */
  get errors(): number {
    return this.#errors + this.#parts.steps.errors;
  }

  get dadAttempts(): number {
    return this.#parts.addr.attemptsTotal;
  }

  /** Removes leftovers of an earlier instance, subscribes to netlink and starts the first step (not awaited). */
  async start(): Promise<void> {
    const busy = await this.#parts.start(this.#cfg.interface);
    if (busy !== undefined) return void this.#fail(busy);
    if (this.#cfg.pref64Timeout !== undefined) {
      const secs = this.#cfg.pref64Timeout;
      this.#pref64Timer = this.#deps.clock.setTimeout(() => {
        if (!this.#everHadPrefix && !this.lifecycle.done) {
          void this.#fail(`no NAT64 prefix found within --pref64-timeout ${secs}s`);
        }
      }, secs * 1000);
    }
    this.#parts.health.start();
    this.kick();
  }

  /** Marks the host as possibly changed; the next step runs as soon as the current one ends. */
  kick(): void {
    if (!this.lifecycle.done) this.#parts.steps.kick();
  }

  /** Waits until no step is running and none is pending (for tests). */
  settled(): Promise<void> {
    return this.#parts.steps.settled();
  }

  #retryIn(ms: number): void {
    this.#parts.steps.retryIn(ms);
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
    await this.#parts.dp.pause();
    await this.#parts.route.withdraw(this.#parts.sides.ipv4);
    this.lifecycle.go('paused', why);
  }

  /** Whether anything is built (a session, the IPv4 side or the uplink side). */
  get #built(): boolean {
    return this.#session !== undefined || this.#parts.sides.any;
  }

  /** A step, then the LAN side follows what it left (even when it failed: the LANs must not stay served). */
  async #stepAll(): Promise<void> {
    try {
      await this.#step();
    } finally {
      if (this.#parts.lan && !this.lifecycle.done)
        await this.#parts.lan.reconcile(this.#lanClat(), this.#reason ?? this.lifecycle.state);
    }
  }

  /** The CLAT the LANs go through, while it translates. */
  #lanClat(): { tun: string; clat4: string; mtu: number } | undefined {
    const s = this.#session;
    const v4 = this.#parts.sides.ipv4;
    if (this.lifecycle.state !== 'running' || !s || !v4) return undefined;
    return { tun: v4.name, clat4: s.clat4, mtu: s.mtu };
  }

  async #step(): Promise<void> {
    const cfg = this.#cfg;
    const o = await observeHost(this.#deps.net, {
      iface: cfg.interface,
      autoMode: cfg.mode === 'auto',
      current: this.#session?.uplink.index,
      tun: this.#parts.sides.ipv4?.ifindex,
      held: this.#parts.sides.taken?.address,
    });
    if (this.lifecycle.done) return;
    this.#seenUplink = o.uplink && { name: o.uplink.name, ifindex: o.uplink.index, up: o.uplinkOk };
    const choice = o.uplinkOk && o.uplink ? this.#parts.pref64.choose(o.uplink, o.onLink) : undefined;
    this.#parts.changes.diff(o, prefixKey(choice?.prefix), choice?.source, cfg.mode === 'auto');
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
    const gone = await this.#parts.sides.repair(o.tunGone === true, () => this.#parts.dp.stop());
    if (gone !== undefined) this.#parts.upkeep.lost(gone);

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
    const blocked = this.#parts.addr.blockedForMs();
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
    const taken = this.#parts.sides.taken;
    const mode = this.#parts.modes.choose({
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
    // The same way, told anew (mode 5's host address: the masquerade follows it by itself).
    if (!modeChanged) cur.mode = mode;
    if (modeChanged) {
      const lan = cur.mode.mode <= 2 && mode.mode <= 2 && cur.mode.announce === mode.announce;
      if (lan)
        this.#parts.changes.change(
          'prefix64-changed',
          `uplink /64 ${cur.prefix64}/64 -> ${prefix64}/64; new CLAT address`,
        );
      else this.#parts.changes.change('address-mode-changed', `${describeMode(mode)} (was mode ${cur.mode.mode})`);
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
    // The same identity: what changed under it is applied (MTU, a lease back, a repair, the route).
    if (!(await this.#parts.upkeep.follow(uplink, cur, { mode, leasePresent, mtu, source }))) return;
    if (this.lifecycle.state === 'paused') {
      // Back from down or from a lost prefix with the same addresses: check the address again.
      return this.#bringUp({ ...base, reason: 'resuming', keep: cur.clat6 });
    }
  }

  /**
   * Nothing came back to `clat6`: in address mode 2 (chosen by itself), the network delivers only
   * addresses it assigned, so the next step takes mode 5, the last resort (uplink-mode.ts).
   */
  #undelivered(clat6: string): void {
    if (this.#session?.clat6 !== clat6 || this.lifecycle.done) return;
    const why = `translated packets left for ${HEALTH_WINDOW_MS / 1000} s and nothing came back`;
    if (this.#parts.modes.undelivered(clat6, why)) this.kick();
  }

  /** Steps 4-7 for a new or changed identity (bring-up.ts); on success the CLAT is running. */
  async #bringUp(o: BringUpRequest): Promise<void> {
    const r = await this.#parts.bringup.run(o);
    if (r.type === 'dad-failed') return this.#afterFailedDad(r.verdict);
    if (r.type === 'anycast-refused') {
      // The next step chooses again, with the refusal: clatd answers for the address itself (mode 2).
      this.#parts.modes.refused(r.address, r.reason);
      this.log.warn('address-mode', `the kernel refused the anycast join for ${r.address}: ${r.reason}`);
      await this.#teardown('anycast join refused');
      return this.kick();
    }
    if (r.type !== 'running' || this.lifecycle.done) return;
    this.#session = r.session;
    // Back from a pause, the route withdrawn meanwhile returns (at the uplink's place now).
    const v4 = this.#parts.sides.ipv4;
    if (v4) await this.#parts.route.follow(v4, r.session.uplink, this.#cfg.routeMetric);
    if (this.lifecycle.done) return;
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
    this.#parts.bringup.abort();
    this.#session = undefined;
    const { did, failed } = await this.#parts.takeDown();
    this.#logFailed(failed);
    if (did) this.log.info('teardown', `removed TUN, routes, sockets and nft table: ${why}`);
  }

  #logFailed(failed: readonly string[]): void {
    for (const f of failed) {
      this.#errors++;
      this.log.error('teardown', f);
    }
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
    if (this.lifecycle.state !== 'stopped') this.lifecycle.go('stopping', reason);
    if (this.#pref64Timer !== undefined) this.#deps.clock.clearTimeout(this.#pref64Timer);
    this.#logFailed(await this.#parts.windDown());
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
    this.#parts.pref64.configure(plan.cfg);
    const what = plan.rebuild
      ? `; ${plan.rebuild}: the TUN is built again`
      : plan.redraw
        ? '; addresses will be chosen again'
        : '';
    this.log.info('reload', `configuration re-read${what}`);
    this.#parts.changes.change('reload', 'configuration reloaded');
    if (this.#session && plan.rebuild && this.#parts.sides.ipv4) {
      // In the step loop, not here: a step may be in DAD or building, and taking things from
      // under it aborted that DAD, which failed the daemon.
      this.#rebuildWhy = plan.rebuild;
    } else if (this.#session && plan.redraw) {
      this.#redraw = true;
    } else if (this.#session && plan.reconfigure) {
      void this.#parts.dp.reconfigure(this.#parts.upkeep.params(this.#session));
    }
    this.kick();
  }

  status(): StatusSnapshot {
    return statusSnapshot(this.#parts, {
      now: this.#deps.clock.now(),
      startedAt: this.#startedAt,
      pid: process.pid,
      reason: this.#reason,
      session: this.#session,
      seenUplink: this.#seenUplink,
      errors: this.errors,
    });
  }
}
