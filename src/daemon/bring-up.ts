/**
 * Steps 4-7 for a new or changed CLAT identity, in order:
 *
 *   4. addresses    the CLAT IPv4 (kept, --v4, or RFC 7335) and the first IPv6 (kept, leased, or
 *                   drawn where the address mode says: the on-link /64 or a routed prefix)
 *   5. uplink side  a leased address taken off the uplink; receive and announce the address
 *                   (anycast, clatd's answers, or nothing), nft rule; then DAD on the wire, but
 *                   not in a routed prefix; meanwhile (strict and off modes) the IPv4 side and a
 *                   paused datapath get ready
 *   6. IPv4 side    TUN, /32, MTU, default route (kept across address changes)
 *   7. translate    the datapath started, or reconfigured and resumed
 *
 * The reconciler (daemon.ts) decides when; this does it and says how it ended. Everything it
 * builds is held by the sides and the supervisor as soon as it exists.
 */

import { formatPrefix6, type Prefix6 } from '../core/addr/prefix.js';
import type { Addressing, DadVerdict } from './addressing.js';
import type { RunConfig } from './config.js';
import { drawOutsideLanBlock } from './lan-map.js';
import type { Logger } from './log.js';
import type { NextHopWatch } from './next-hop.js';
import type { ChangeTracker } from './observe.js';
import {
  type DatapathHandle,
  type Ipv4Side,
  isAnycastRefused,
  type LinkInfo,
  type PlumbingPort,
  type UplinkSide,
  type XlatParams,
} from './ports.js';
import type { ClatSides } from './sides.js';
import type { Lifecycle } from './state.js';
import type { PrefixSource } from './status.js';
import type { DatapathSupervisor } from './supervisor.js';
import { describeMode, type UplinkMode } from './uplink-mode.js';

/** The identity the CLAT runs with. */
export interface Session {
  uplink: LinkInfo;
  pref64: Prefix6;
  source: PrefixSource;
  prefix64: string;
  clat4: string;
  clat6: string;
  mtu: number;
  /** How the IPv6 address was obtained. */
  mode: UplinkMode;
}

export interface BringUpRequest {
  uplink: LinkInfo;
  prefix: Prefix6;
  source: PrefixSource;
  prefix64: string;
  mtu: number;
  reason: string;
  /** Probe this address again instead of drawing one (resuming with the same identity). */
  keep?: string;
  /** How to obtain the IPv6 address (uplink-mode.ts). */
  mode: UplinkMode;
  /** Mode 4: the leased address is configured on the uplink now (to be taken off, again if need be). */
  leasePresent?: boolean;
}

/** A DAD that ended without an address: blocked (every address answered for) or interrupted. */
export type FailedDad = Exclude<DadVerdict, { type: 'unique' } | { type: 'stopped' }>;

export type BringUpResult =
  | { type: 'running'; session: Session }
  | { type: 'dad-failed'; verdict: FailedDad }
  /** The kernel refused the anycast join for `address` (no prefix on the uplink covers it). */
  | { type: 'anycast-refused'; address: string; reason: string }
  /** The daemon is stopping, or a newer identity took over. */
  | { type: 'stopped' };

export interface BringUpContext {
  readonly cfg: () => RunConfig;
  readonly lifecycle: Lifecycle;
  readonly log: Logger;
  readonly changes: ChangeTracker;
  readonly sides: ClatSides;
  readonly dp: DatapathSupervisor;
  readonly addr: Addressing;
  readonly plumbing: PlumbingPort;
  /** Aborted when the daemon stops. */
  readonly stopSignal: AbortSignal;
  /** The session now running, if any. */
  readonly session: () => Session | undefined;
  readonly buildIpv4Side: (uplink: LinkInfo, v4: string, mtu: number) => Promise<Ipv4Side>;
  readonly params: (s: Session) => XlatParams;
  /** The fast path's next hop, resolved once translation runs (later steps keep it current). */
  readonly nextHop?: NextHopWatch;
  /** An optimistic DAD (which runs on after the bring-up returned) ended without an address. */
  readonly onLateVerdict: (v: FailedDad) => void;
  readonly onLateError: (e: Error) => void;
}

export class BringUp {
  /** Aborts the DAD run of the current identity when a new one starts. */
  #dadRun?: AbortController;

  constructor(private readonly ctx: BringUpContext) {}

  /** Stops the DAD run in progress, if any (a teardown). */
  abort(): void {
    this.#dadRun?.abort();
    this.#dadRun = undefined;
  }

  async run(o: BringUpRequest): Promise<BringUpResult> {
    const { lifecycle, log, sides, dp, addr } = this.ctx;
    const cfg = this.ctx.cfg();
    const m = o.mode;
    if (dp.running && lifecycle.state === 'running' && cfg.dad === 'strict' && m.dad) await dp.pause();

    // Step 4: addresses, as the address mode says (uplink-mode.ts). A leased one is never redrawn.
    // An IPv4 side kept from an attempt that did not finish (DAD interrupted) keeps its address.
    const ipv4 = await addr.ipv4(this.ctx.session()?.clat4 ?? sides.ipv4?.v4, cfg.v4);
    const drawn = m.drawIn && addr.drawer(m.drawIn, o.prefix, ipv4);
    // Stateless router mode: the routed prefix's first /96 is the LANs' (lan-map.ts).
    const draw =
      drawn && m.mode === 3 && cfg.lanMode === 'stateless' && m.drawIn ? drawOutsideLanBlock(drawn, m.drawIn) : drawn;
    const first = o.keep ?? m.address ?? (draw as () => string)();
    log.info('address-mode', describeMode(m), { mode: m.mode, announce: m.announce });
    const from =
      m.mode === 4
        ? '--v6, leased'
        : `checksum-neutral in ${m.drawIn ? formatPrefix6(m.drawIn) : o.prefix64}${m.mode === 3 ? ', --v6-prefix' : m.mode === 5 ? `, private; shares ${m.shared}` : ''}`;
    log.info('addresses', `CLAT IPv4 ${ipv4}${cfg.v4 ? ' (--v4)' : ' (RFC 7335)'}, IPv6 ${first} (${from})`);

    // Step 5: a leased address off the uplink, receive and announce, then DAD on the wire.
    if (m.take && m.address !== undefined) await sides.take(o.uplink, m.address, o.leasePresent === true);
    else await sides.giveBack();
    if (lifecycle.done) return { type: 'stopped' };
    let up: UplinkSide;
    try {
      up = await sides.openUplink(o.uplink, first, o.prefix, m.announce);
    } catch (e) {
      if (m.announce === 'anycast' && isAnycastRefused(e))
        return { type: 'anycast-refused', address: first, reason: (e as Error).message };
      throw e;
    }
    if (lifecycle.done) return { type: 'stopped' };
    const session: Session = {
      uplink: o.uplink,
      pref64: o.prefix,
      source: o.source,
      prefix64: o.prefix64,
      clat4: ipv4,
      clat6: first,
      mtu: o.mtu,
      mode: m,
    };
    lifecycle.go('dad', o.reason);
    let early: Promise<DatapathHandle | Error> | undefined;
    if (!m.dad) {
      const why =
        m.mode === 5
          ? `${first} is private to this host (the network sees ${m.shared}): no other node uses it`
          : `${first} is in ${m.drawIn ? formatPrefix6(m.drawIn) : 'a prefix'}, routed to this host: no other node on the link uses it`;
      this.#dadRun?.abort();
      this.#dadRun = undefined;
      addr.skip(why);
      log.info('dad', `DAD skipped: ${why}`);
    } else {
      const sys = await this.ctx.plumbing.dadParams(o.uplink.name);
      addr.begin(cfg.dad);
      log.info('dad', `probing ${first}: ${sys.transmits} probe(s) ${sys.retransMs} ms apart (--dad ${cfg.dad})`);

      // A DAD still running for an earlier identity (optimistic mode) must not move the new one.
      this.#dadRun?.abort();
      const mine = new AbortController();
      this.#dadRun = mine;
      const signal = AbortSignal.any([this.ctx.stopSignal, mine.signal]);
      let current = first;
      const onAddress = async (address: string) => {
        if (address === current) return;
        this.ctx.changes.change('address-duplicate', `${current} is a duplicate; trying ${address}`);
        current = address;
        session.clat6 = address;
        await up.retarget(address, o.prefix);
        if (cfg.dad === 'optimistic' && this.ctx.session() === session) await dp.reconfigure(this.ctx.params(session));
      };
      // DAD holds the CLAT back for about a second (DupAddrDetectTransmits × RetransTimer), and new
      // workers take about as long to start and warm up their JIT. So a first datapath starts now,
      // paused, with the IPv4 side built for it: nothing is sent from the address before DAD passes,
      // and translation starts as soon as it does. (Optimistic DAD translates at once anyway.)
      if (cfg.dad !== 'optimistic' && !dp.running) {
        const v4 = await this.ctx.buildIpv4Side(o.uplink, ipv4, o.mtu);
        if (lifecycle.done) return { type: 'stopped' };
        early = dp.start(up, v4, this.ctx.params(session), true).catch((e: Error) => e);
      }
      const probing = addr.probe({
        uplink: o.uplink,
        side: up,
        first,
        // A leased address is the only one the network delivers here: a duplicate is not replaced.
        redraw: m.redraw ? draw : undefined,
        mode: cfg.dad,
        params: sys,
        onAddress,
        signal,
      });
      if (cfg.dad === 'optimistic') {
        probing.then(
          (v) => {
            if (lifecycle.done || mine.signal.aborted) return;
            if (v.type === 'unique') {
              up.dadPassed(v.address);
              log.info('dad', `${v.address} is unique after ${v.attempts} attempt(s)`);
            } else if (v.type !== 'stopped') this.ctx.onLateVerdict(v);
          },
          (e: Error) => {
            if (!mine.signal.aborted && !lifecycle.done) this.ctx.onLateError(e);
          },
        );
      } else {
        const v = await probing;
        const startError = await this.#adoptEarly(early);
        if (lifecycle.done || v.type === 'stopped') return { type: 'stopped' };
        if (v.type !== 'unique') return { type: 'dad-failed', verdict: v };
        session.clat6 = v.address;
        // Only now may the address be answered for (announce `respond`).
        up.dadPassed(v.address);
        log.info(
          'dad',
          cfg.dad === 'off'
            ? `probes sent for ${v.address}; not waiting (--dad off)`
            : `${v.address} is unique after ${v.attempts} attempt(s)`,
        );
        // The datapath started during DAD failed: the step is tried again (the sides stay).
        if (startError) throw startError;
      }
    }

    // Step 6: the IPv4 side (kept across address changes).
    const v4 = await this.ctx.buildIpv4Side(o.uplink, ipv4, o.mtu);
    if (lifecycle.done) return { type: 'stopped' };

    // Step 7: translate.
    const xp = this.ctx.params(session);
    if (dp.running && dp.failure !== undefined && !(await dp.dropFailed())) return { type: 'stopped' };
    if (lifecycle.done) return { type: 'stopped' };
    const via = `${ipv4} <-> ${session.clat6} via ${formatPrefix6(o.prefix)}`;
    if (!dp.running) {
      await dp.run(up, v4, xp);
      log.info('translate', `translating ${via}`);
    } else {
      // The one started during DAD has these parameters already, unless DAD drew a new address.
      if (!early || session.clat6 !== first) await dp.reconfigure(xp);
      // A refused reconfiguration marked it failed: the next step replaces it (running, fresh).
      if (dp.failure === undefined) await dp.resume();
      log.info('translate', `${early ? 'translating' : 'translating again:'} ${via}`);
    }
    if (dp.running && !lifecycle.done) await this.ctx.nextHop?.resolve(o.uplink.index, session.clat6, o.prefix);
    return { type: 'running', session };
  }

  /**
   * Takes the datapath started during DAD as the supervised one, or stops it if the daemon is
   * stopping meanwhile (its teardown may have run already). Returns the error of a failed start.
   */
  async #adoptEarly(early: Promise<DatapathHandle | Error> | undefined): Promise<Error | undefined> {
    if (!early) return undefined;
    const dp = await early;
    if (dp instanceof Error) return dp;
    await this.ctx.dp.adopt(dp, this.ctx.lifecycle.done);
    return undefined;
  }
}
