/**
 * The daemon's parts, built and wired for the reconciler (daemon.ts), and taken down in order.
 * Each part gets the ports it uses and a few callbacks into the reconciler (kick, fail, the
 * session, one step), never the reconciler itself; the parts reach one another through here. At
 * start it clears what an earlier clatd left and hands each netlink event to the part it concerns.
 * docs/architecture.md draws them.
 */
import { Addressing } from './addressing.js';
import { BringUp, type FailedDad, type Session } from './bring-up.js';
import type { RunConfig } from './config.js';
import { defaultAdvice, HealthWatch, sampleOf } from './health.js';
import { Ipv4Route } from './ipv4-route.js';
import { LanService } from './lan.js';
import type { Logger } from './log.js';
import { NextHopWatch } from './next-hop.js';
import { ChangeTracker } from './observe.js';
import type { Closer, DaemonDeps, NetEvent } from './ports.js';
import { Pref64Tracker } from './pref64.js';
import { ClatSides } from './sides.js';
import { Lifecycle } from './state.js';
import { StepLoop } from './step-loop.js';
import { DatapathSupervisor } from './supervisor.js';
import { Upkeep } from './upkeep.js';
import { UplinkModes } from './uplink-mode.js';

/** How long stopping waits for a running step to notice before taking things from under it. */
const STOP_WAIT_MS = 1_200;

/** What the parts ask of the reconciler. */
export interface ReconcilerHooks {
  /** The configuration now (a reload replaces it). */
  readonly cfg: () => RunConfig;
  /** The identity the CLAT runs with now, if any. */
  readonly session: () => Session | undefined;
  /** The host may have changed: a step soon. */
  readonly kick: () => void;
  /** The daemon cannot go on (the datapath's restart budget is spent); not awaited. */
  readonly fail: (why: string) => void;
  /** One step of the reconciler (run by the step loop, one at a time). */
  readonly step: () => Promise<void>;
  /** Translated packets left for the CLAT address `clat6` and nothing came back. */
  readonly undelivered: (clat6: string) => void;
  /** An optimistic DAD that ended without an address after its step returned. */
  readonly lateVerdict: (v: FailedDad) => void;
  /** An optimistic DAD that failed after its step returned. */
  readonly lateError: (e: Error) => void;
  /** An error to log and count (the netlink event stream failed). */
  readonly error: (event: string, msg: string) => void;
}

export class DaemonParts {
  readonly lifecycle: Lifecycle;
  readonly changes: ChangeTracker;
  readonly pref64: Pref64Tracker;
  readonly dp: DatapathSupervisor;
  readonly addr: Addressing;
  /** How the CLAT IPv6 address is obtained (uplink-mode.ts). */
  readonly modes: UplinkModes;
  readonly steps: StepLoop;
  /** Router mode (--lan), when configured. */
  readonly lan: LanService | undefined;
  readonly sides: ClatSides;
  readonly route: Ipv4Route;
  readonly health: HealthWatch;
  readonly upkeep: Upkeep;
  readonly nextHop: NextHopWatch;
  readonly bringup: BringUp;
  /** Aborted when the daemon stops: a DAD wait ends at once. */
  readonly #abort = new AbortController();
  readonly #deps: DaemonDeps;
  readonly #log: Logger;
  readonly #h: ReconcilerHooks;
  #watch?: Closer;

  constructor(cfg: RunConfig, deps: DaemonDeps, log: Logger, h: ReconcilerHooks) {
    const change = (kind: string, msg: string) => this.changes.change(kind, msg);
    this.#deps = deps;
    this.#log = log;
    this.#h = h;
    this.lifecycle = new Lifecycle(() => deps.clock.now());
    this.changes = new ChangeTracker((level, kind, msg) => log.log(level, 'change', msg, { kind }));
    this.pref64 = new Pref64Tracker(
      {
        clock: deps.clock,
        dns64: deps.dns64,
        log,
        solicit: deps.net.solicit && ((i) => deps.net.solicit?.(i)),
        kick: h.kick,
      },
      cfg,
    );
    this.dp = new DatapathSupervisor({
      plumbing: deps.plumbing,
      log,
      now: () => deps.clock.now(),
      onFailure: h.kick,
      onRestart: (why) => change('datapath-restarted', `restarting the datapath: ${why}`),
      onGiveUp: h.fail,
    });
    this.addr = new Addressing(deps, log, cfg.dad);
    this.modes = new UplinkModes(cfg.sharedPrefix);
    this.steps = new StepLoop(deps.clock, log, h.step);
    this.lan =
      cfg.lan.length > 0 && deps.lan
        ? new LanService(
            {
              port: deps.lan,
              net: deps.net,
              clock: deps.clock,
              log,
              change,
              kick: h.kick,
              prefix: () => h.cfg().v6Prefix,
              remap: async () => {
                const s = h.session();
                if (s && this.dp.running) await this.dp.reconfigure(this.upkeep.params(s));
              },
            },
            cfg.lan,
            cfg.lanMode,
          )
        : undefined;
    this.sides = new ClatSides(deps.plumbing, log, change);
    this.route = new Ipv4Route(deps.net, change);
    this.health = new HealthWatch(
      deps.clock,
      log,
      () => {
        const s = h.session();
        return s && this.lifecycle.state === 'running' ? sampleOf(this.dp.counters(), s.clat6) : undefined;
      },
      (clat6) =>
        clat6 === h.cfg().v6
          ? `check that the network delivers ${clat6} (given with --v6) to this host, or the NAT64 is down`
          : this.modes.last?.mode === 2
            ? `${defaultAdvice(clat6)}; trying address mode 5 (the host's own address, shared)`
            : defaultAdvice(clat6),
      h.undelivered,
    );
    this.nextHop = new NextHopWatch(deps.net, this.dp, log);
    this.upkeep = new Upkeep({
      cfg: h.cfg,
      session: h.session,
      lanEam: () => this.lan?.eam,
      lifecycle: this.lifecycle,
      log,
      changes: this.changes,
      sides: this.sides,
      dp: this.dp,
      route: this.route,
      nextHop: this.nextHop,
    });
    this.bringup = new BringUp({
      cfg: h.cfg,
      lifecycle: this.lifecycle,
      log,
      changes: this.changes,
      sides: this.sides,
      dp: this.dp,
      addr: this.addr,
      plumbing: deps.plumbing,
      stopSignal: this.#abort.signal,
      nextHop: this.nextHop,
      session: h.session,
      buildIpv4Side: (uplink, v4, mtu) => this.upkeep.ipv4Side(uplink, v4, mtu),
      params: (s) => this.upkeep.params(s),
      // Handled by the next step, not here: a step may be building meanwhile.
      onLateVerdict: h.lateVerdict,
      onLateError: h.lateError,
    });
  }

  /**
   * Removes what an earlier clatd left behind and subscribes to netlink events. Returns why the
   * daemon must not start (another clatd runs on this uplink: it would fight it over the TUN and
   * the table), if so.
   */
  async start(iface: string | undefined): Promise<string | undefined> {
    const { plumbing, net } = this.#deps;
    try {
      const removed = await plumbing.cleanupLeftovers(iface);
      for (const what of removed) this.#log.warn('recovery', `removed leftover of an earlier clatd: ${what}`);
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_CLATD_TUN_IN_USE') return (e as Error).message;
      this.#log.warn('recovery', `could not look for leftovers: ${(e as Error).message}`);
    }
    this.#watch = net.watch(
      (e) => this.onEvent(e),
      (e) => this.#h.error('netlink', `event stream failed: ${e.message}`),
    );
    return undefined;
  }

  /**
   * Hands a netlink event to the parts it concerns (a PREF64 option to the prefix tracker, a
   * deleted nft table to its owner), then asks for a step.
   */
  onEvent(e: NetEvent): void {
    if (e.type === 'pref64') {
      this.pref64.onRa(e); // kicks
      return;
    }
    // In the handler, not the step: until the step resolves it again, the kernel looks routes up.
    const nextHop = this.nextHop.concerns(e, this.#h.session()?.uplink.index);
    if (nextHop) this.nextHop.stale(`a ${e.type} event`);
    // Other neighbours come and go all the time and concern nothing else.
    else if (e.type === 'neigh') return;
    if (e.type === 'nft') {
      this.sides.filterLost(e.table, e.by);
      this.lan?.tableLost(e.table, e.by);
    } else {
      this.#log.debug('netlink', `${e.type} ${e.removed ? 'removed' : 'changed'}`, { ...e });
    }
    this.#h.kick();
  }

  /**
   * The daemon stops: netlink events, every timer and wait of the parts end (a DAD wait is aborted, no step
   * starts again) and a step still running gets a moment to notice; then the LANs are cut off
   * (from then on nothing is forwarded from them, whatever goes next) and the datapath is closed
   * for good. What is built stays, for {@link takeDown}. Returns what failed.
   */
  async windDown(): Promise<string[]> {
    this.#watch?.close();
    this.#abort.abort();
    this.pref64.close();
    this.steps.close();
    this.health.close();
    // A running step checks `done` after each await, and its DAD wait is aborted.
    const step = this.steps.running;
    if (step) {
      const { clock } = this.#deps;
      let timeout: unknown;
      await Promise.race([
        step.catch(() => {}),
        new Promise<void>((r) => {
          timeout = clock.setTimeout(r, STOP_WAIT_MS);
        }),
      ]);
      clock.clearTimeout(timeout);
    }
    const failed = (await this.lan?.close()) ?? [];
    await this.dp.close();
    return failed;
  }

  /**
   * Takes down everything built, datapath first (it uses the sockets and the TUN). Says whether
   * anything was built, and what failed.
   */
  async takeDown(): Promise<{ did: boolean; failed: string[] }> {
    const did = this.dp.running || this.sides.any;
    const failed: string[] = [];
    try {
      await this.dp.stop();
    } catch (e) {
      failed.push(`removing the datapath failed: ${(e as Error).message}`);
    }
    failed.push(...(await this.sides.close()));
    return { did, failed };
  }
}
