/**
 * Keeps a running CLAT matched to the host while its identity stays the same: a leased address put
 * back on the uplink is taken off again, a new MTU is applied, a TUN or datapath that failed or
 * vanished is built again with the same addresses (within the datapath's restart budget), and the
 * IPv4 route keeps the uplink's place. The reconciler (daemon.ts) decides when a new identity is
 * needed instead (bring-up.ts).
 *
 * It also builds the IPv4 side, once, for bring-up and repair alike, and gives the translator its
 * parameters from the session, the configuration and the LANs' mappings.
 */
import type { BringUpRequest, Session } from './bring-up.js';
import type { RunConfig } from './config.js';
import type { Ipv4Route } from './ipv4-route.js';
import type { LanEam } from './lan-map.js';
import type { Logger } from './log.js';
import type { NextHopWatch } from './next-hop.js';
import type { ChangeTracker } from './observe.js';
import type { Ipv4Side, LinkInfo, XlatParams } from './ports.js';
import type { ClatSides } from './sides.js';
import type { Lifecycle } from './state.js';
import type { DatapathSupervisor } from './supervisor.js';

export interface UpkeepContext {
  readonly cfg: () => RunConfig;
  /** The identity the CLAT runs with now, if any. */
  readonly session: () => Session | undefined;
  /** The LANs' address mappings (router mode), if any. */
  readonly lanEam: () => readonly LanEam[] | undefined;
  readonly lifecycle: Lifecycle;
  readonly log: Logger;
  readonly changes: ChangeTracker;
  readonly sides: ClatSides;
  readonly dp: DatapathSupervisor;
  readonly route: Ipv4Route;
  readonly nextHop: NextHopWatch;
}

/** What this step observed for the running identity. */
export type Observation = Pick<BringUpRequest, 'mode' | 'leasePresent' | 'mtu' | 'source'>;

export class Upkeep {
  /** Why the TUN or datapath of a running CLAT is to be built again (see #repair). */
  #repairWhy: string | undefined;

  constructor(private readonly c: UpkeepContext) {}

  /** The TUN (or its route) was deleted under the CLAT: the next follow() builds it again. */
  lost(what: string): void {
    this.#repairWhy = `${what} was deleted`;
  }

  /**
   * Applies what changed under the running identity `cur`; false when the CLAT cannot go on
   * (the repair gave up, or the daemon is stopping) and the step ends here.
   */
  async follow(uplink: LinkInfo, cur: Session, o: Observation): Promise<boolean> {
    const { sides, dp, lifecycle } = this.c;
    const { mode, mtu } = o;
    // A leased address put back on the uplink (a DHCPv6 client renewing it) is taken off again.
    if (mode.take && o.leasePresent && mode.address !== undefined) await sides.take(uplink, mode.address, true);
    const v4 = sides.ipv4;
    if (mtu !== cur.mtu && v4) {
      this.c.changes.change('mtu-changed', `IPv4 MTU ${cur.mtu} -> ${mtu}`);
      await v4.setMtu(mtu);
      cur.mtu = mtu;
      await dp.reconfigure(this.params(cur));
    }
    cur.source = o.source;
    if (lifecycle.state === 'running' && (dp.failure !== undefined || !dp.running || !v4)) {
      if (!(await this.#repair(uplink, cur))) return false;
    }
    if (lifecycle.state === 'running' && sides.ipv4) {
      await this.c.route.follow(sides.ipv4, uplink, this.c.cfg().routeMetric);
    }
    // The fast path's next hop, cleared by the last route or neighbour change (or never set).
    if (lifecycle.state === 'running' && dp.running) await this.c.nextHop.resolve(uplink.index, cur.clat6, cur.pref64);
    return true;
  }

  /**
   * Puts back, with the same addresses, what failed or vanished under a running CLAT: the datapath
   * after a failure, the TUN and its route after a deletion. Each attempt counts as a datapath
   * restart (too many and the daemon gives up); one that throws is tried again by the next step,
   * so a running CLAT never stays without its TUN or datapath. Returns false when it gave up.
   */
  async #repair(uplink: LinkInfo, cur: Session): Promise<boolean> {
    const { dp } = this.c;
    const why = dp.failure ?? this.#repairWhy ?? 'the datapath is not running';
    if (!dp.mayRestart(why)) return false;
    // Kept until the repair is done, so that a failed attempt is retried under the same reason.
    this.#repairWhy = why;
    await dp.stop();
    const up = this.c.sides.uplink;
    if (!up) return false;
    const v4 = await this.ipv4Side(uplink, cur.clat4, cur.mtu);
    if (this.c.lifecycle.done) return false;
    await dp.run(up, v4, this.params(cur));
    this.#repairWhy = undefined;
    this.c.log.info('translate', `translating again after a datapath restart: ${cur.clat4} <-> ${cur.clat6}`);
    return true;
  }

  /**
   * Step 6: the IPv4 side, built once and kept across address changes; an MTU that changed while
   * no session held it (re-addressing) is applied.
   */
  async ipv4Side(uplink: LinkInfo, v4: string, mtu: number): Promise<Ipv4Side> {
    const { sides, route } = this.c;
    const had = sides.ipv4;
    const side =
      had ?? (await sides.buildIpv4({ uplink, v4, mtu, metric: await route.want(uplink, this.c.cfg().routeMetric) }));
    const session = this.c.session();
    if (had && session && session.mtu !== mtu) await side.setMtu(mtu);
    return side;
  }

  /** The translator's parameters for session `s`. */
  params(s: Session): XlatParams {
    const lanEam = this.c.lanEam();
    return {
      pref64: s.pref64,
      clat4: s.clat4,
      clat6: s.clat6,
      mtu: s.mtu,
      translator: this.c.cfg().translator,
      ...(lanEam?.length ? { lanEam } : {}),
    };
  }
}
