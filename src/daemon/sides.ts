/**
 * What the CLAT builds on the host, besides the datapath: the uplink side (anycast raw socket, nft
 * drop rule, proxy_delay), the IPv4 side (TUN, /32, MTU, default route) and a leased address taken
 * off the uplink (address mode 4). Holds each as soon as it exists, so closing always takes down
 * (or gives back) exactly what exists; and puts back what was changed under a running CLAT from
 * outside (the TUN set down or stripped, the nft table deleted).
 */
import type { Prefix6 } from '../core/addr/prefix.js';
import type { Logger } from './log.js';
import {
  type Announce,
  type Ipv4Side,
  type LinkInfo,
  type PlumbingPort,
  type TakenAddress,
  tunName,
  type UplinkSide,
} from './ports.js';

const ANNOUNCED_BY: Record<Announce, string> = {
  anycast: 'raw socket with anycast',
  respond: 'clatd answers neighbor solicitations for',
  none: 'routed prefix (no neighbor discovery) for',
  shared: "the host's own address (NAT66), veth pair, for",
};

export class ClatSides {
  #up?: UplinkSide;
  #ipv4?: Ipv4Side;
  #taken?: TakenAddress;
  /** Who deleted (part of) the nft table of the uplink side, until it is put back. */
  #filterLostBy: string | undefined;

  constructor(
    private readonly plumbing: PlumbingPort,
    private readonly log: Logger,
    /** Logs a live change (kind, message) and counts it. */
    private readonly change: (kind: string, msg: string) => void,
  ) {}

  get uplink(): UplinkSide | undefined {
    return this.#up;
  }

  get ipv4(): Ipv4Side | undefined {
    return this.#ipv4;
  }

  /** The leased address taken off the uplink, if any. */
  get taken(): TakenAddress | undefined {
    return this.#taken;
  }

  get any(): boolean {
    return this.#up !== undefined || this.#ipv4 !== undefined || this.#taken !== undefined;
  }

  /**
   * Takes the leased `address` off the uplink (mode 4) when it is configured there: `present` says
   * it is (again: a DHCPv6 client renewing it puts it back). Gives back another one held before.
   */
  async take(uplink: LinkInfo, address: string, present: boolean): Promise<void> {
    if (this.#taken && this.#taken.address !== address) await this.giveBack();
    if (!present && this.#taken) return;
    if (!this.any) await this.#clearLeftovers(uplink);
    const again = this.#taken !== undefined;
    const t = await this.plumbing.takeAddress(uplink, address);
    if (!t) return;
    this.#taken = t;
    if (again) this.change('address-retaken', `${address} was put back on ${uplink.name}; taken off again`);
    else this.log.info('address', `took ${address}/${t.prefixLen} off ${uplink.name} to serve it (put back on exit)`);
  }

  /** Puts back the leased address taken off the uplink, if any. */
  async giveBack(): Promise<void> {
    const t = this.#taken;
    this.#taken = undefined;
    if (!t) return;
    for (const what of await t.giveBack()) this.log.info('address', what);
  }

  /** The uplink may be known only now (it was not at start): clear what a crashed run left on it. */
  async #clearLeftovers(uplink: LinkInfo): Promise<void> {
    for (const what of await this.plumbing.cleanupLeftovers(uplink.name)) {
      this.log.warn('recovery', `removed leftover of an earlier clatd: ${what}`);
    }
  }

  /** The uplink side for `clat6`: opened (after clearing a crashed run's leftovers) or pointed at it. */
  async openUplink(
    uplink: LinkInfo,
    clat6: string,
    pref64: Prefix6,
    announce: Announce = 'anycast',
  ): Promise<UplinkSide> {
    if (this.#up && this.#up.announce !== announce) {
      // Another way of announcing the address needs another side (a socket joined or not).
      const old = this.#up;
      this.#up = undefined;
      await old.close();
    }
    if (this.#up) {
      await this.#up.retarget(clat6, pref64);
      this.log.info('receive', `receive side now for ${clat6}`);
      return this.#up;
    }
    if (!this.#ipv4 && !this.#taken) await this.#clearLeftovers(uplink);
    this.#up = await this.plumbing.openUplink(uplink, clat6, pref64, announce);
    this.log.info('receive', `${ANNOUNCED_BY[announce]} ${clat6} and nft drop rule on ${uplink.name}`);
    return this.#up;
  }

  /** The IPv4 side, built once and kept across address changes; its MTU follows `mtu`. */
  async buildIpv4(o: { uplink: LinkInfo; v4: string; mtu: number; metric: number }): Promise<Ipv4Side> {
    if (this.#ipv4) return this.#ipv4;
    const name = tunName(o.uplink.name);
    this.#ipv4 = await this.plumbing.createIpv4Side({ uplink: o.uplink, name, v4: o.v4, mtu: o.mtu, metric: o.metric });
    this.log.info('ipv4', `${name}: ${o.v4}/32, MTU ${o.mtu}, default route metric ${o.metric} advmss ${o.mtu - 40}`);
    return this.#ipv4;
  }

  /** Someone else deleted (part of) the nft table `table`: checked and put back by {@link repair}. */
  filterLost(table: string | undefined, by: string): void {
    const mine = this.#up?.table;
    if (mine === undefined || (table !== undefined && table !== mine)) return;
    this.#filterLostBy = by;
  }

  /**
   * Puts back what was changed from outside while the sides exist: the TUN set down or stripped
   * of its address or route, the nft table deleted. A TUN that was deleted is let go of, after
   * `stopReaders` (the datapath) stopped, and its name returned: the caller builds the side again.
   */
  async repair(tunGone: boolean, stopReaders: () => Promise<void>): Promise<string | undefined> {
    let gone: string | undefined;
    const v4 = this.#ipv4;
    if (v4 && tunGone) {
      gone = v4.name;
      this.change('tun-gone', `${v4.name} was deleted; creating it again`);
      // The workers lost their queues with it: they stop first, then the side lets go of it.
      await stopReaders();
      this.#ipv4 = undefined;
      await v4.close();
    } else if (v4) {
      const fixed = await v4.repair();
      if (fixed.length) this.change('ipv4-restored', `${v4.name} changed from outside; put back: ${fixed.join(', ')}`);
    }
    if (this.#filterLostBy !== undefined && this.#up) await this.#restoreFilter(this.#up);
    return gone;
  }

  /**
   * Without the drop rule the kernel answers the CLAT's traffic with ICMPv6 errors, so a deleted
   * table (`flush ruleset` when a firewall is reloaded) is put back; if that fails the next step
   * tries again. Only when it is really gone: in a PID namespace the kernel names our own `nft`
   * runs by another PID, and restoring after each of them would loop.
   */
  async #restoreFilter(up: UplinkSide): Promise<void> {
    const by = this.#filterLostBy;
    if (await up.filterIntact()) {
      this.#filterLostBy = undefined;
      this.log.debug('nft', `${by} changed nft table ip6 ${up.table}; clatd's filter is intact`);
      return;
    }
    await up.restoreFilter();
    this.#filterLostBy = undefined;
    this.change('nft-restored', `nft table ip6 ${up.table} was deleted by ${by}; restored`);
  }

  /** Takes down both sides (uplink first), then gives back a taken address; returns what failed, in words. */
  async close(): Promise<string[]> {
    const up = this.#up;
    const v4 = this.#ipv4;
    this.#up = undefined;
    this.#ipv4 = undefined;
    this.#filterLostBy = undefined; // the next uplink side installs its table afresh
    const failed: string[] = [];
    for (const [what, side] of [
      ['uplink side', up],
      ['IPv4 side', v4],
    ] as const) {
      try {
        await side?.close();
      } catch (e) {
        failed.push(`removing the ${what} failed: ${(e as Error).message}`);
      }
    }
    try {
      await this.giveBack();
    } catch (e) {
      failed.push(`putting back the leased address failed: ${(e as Error).message}`);
    }
    return failed;
  }
}
