/**
 * The daemon's view of the network (NetPort) over rtnetlink: links, addresses, routes, and the
 * events that say they changed — rtnetlink's, PREF64 options of Router Advertisements (parsed
 * here, with the router that sent them) and deletions in clatd's nftables tables by others.
 */
import { formatIPv4 } from '../../core/addr/ipv4.js';
import { selectClatIPv4 } from '../../core/nd/clat-ipv4.js';
import { generateClatAddress, generateInPrefix } from '../../core/nd/neutral.js';
import { findPref64Options } from '../../core/nd/pref64.js';
import { isOwnNftRun, TABLE_PREFIX } from '../../sys/nft.js';
import { type NftEvent, openNftMonitor } from '../../sys/nft-events.js';
import { Raw6Socket } from '../../sys/raw6.js';
import { openRtnlMonitor, RTPROT_CLATD, type Rtnl, type RtnlEvent } from '../../sys/rtnetlink/index.js';
import { ipv6Conf } from '../../sys/sysctl.js';
import { buildRouterSolicitation } from '../discover.js';
import { discoverPref64ViaDns } from '../dns64.js';
import type {
  AddrInfo,
  Closer,
  Dns64Port,
  IdentityPort,
  LinkInfo,
  NetEvent,
  NetPort,
  RouteInfo,
  RouteVia,
} from '../ports.js';
import type { DefaultRoute6 } from '../route-order.js';

function scopeName(scope: number): AddrInfo['scope'] {
  return scope === 0 ? 'global' : scope === 200 ? 'site' : scope === 253 ? 'link' : 'host';
}

/** rtm_flags of a route whose next hop is dead or on a link without carrier (linux/rtnetlink.h). */
const RTNH_F_DEAD = 1;
const RTNH_F_LINKDOWN = 16;

/** rtnetlink as the daemon's NetPort. Rtnl is synchronous (a netlink round trip is microseconds). */
export class SystemNet implements NetPort {
  constructor(readonly rtnl: Rtnl) {}

  async links(): Promise<LinkInfo[]> {
    return this.rtnl.links().map((l) => ({
      index: l.index,
      name: l.name,
      // IFF_RUNNING means up with carrier; virtual links without carrier report operstate unknown.
      up: l.up && (l.running || l.operstate === 'up' || l.operstate === 'unknown'),
      mtu: l.mtu,
    }));
  }

  async addresses(): Promise<AddrInfo[]> {
    return this.rtnl.addresses().map((a) => ({
      ifindex: a.ifindex,
      family: a.family,
      address: a.address,
      prefixLen: a.prefixLen,
      scope: scopeName(a.scope),
      tentative: a.tentative || a.dadFailed,
    }));
  }

  async defaultRoute6(): Promise<RouteInfo | undefined> {
    const routes = this.rtnl
      .defaultRoutes(6)
      .filter((r) => r.oif !== undefined)
      .sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0));
    const r = routes[0];
    return r && { ifindex: r.oif as number, mtu: r.mtu };
  }

  /**
   * A clatd's own route is told by the route protocol it sets on every route it adds (RTPROT_CLATD),
   * not by the TUN's name or the metric: the name of a long uplink's TUN is cut and hashed and a
   * metric is anyone's to choose (--route-metric, a DHCP client's), while the kernel keeps the
   * protocol as set, no DHCP client, RA or static route carries 199, and clean-up finds clatd's
   * routes by it too. So another instance's TUN route (clatd@wlan0 beside clatd@eth0) is a CLAT's,
   * and any other IPv4 default route is native.
   */
  async defaultRoutes4(): Promise<RouteInfo[]> {
    return this.rtnl
      .defaultRoutes(4)
      .filter((r) => r.oif !== undefined && r.protocol !== RTPROT_CLATD)
      .map((r) => ({ ifindex: r.oif as number }));
  }

  async defaultRoutes6(): Promise<DefaultRoute6[]> {
    const out: DefaultRoute6[] = [];
    for (const r of this.rtnl.defaultRoutes(6)) {
      // A route on a link without carrier stays, marked, until the router's lifetime ends; it is
      // no way out meanwhile (the uplink's own clatd has paused and withdrawn its IPv4 route).
      if (r.flags & (RTNH_F_DEAD | RTNH_F_LINKDOWN)) continue;
      const metric = r.priority ?? 0;
      // RTA_PREF: 1 high, 3 low, anything else medium (ICMPV6_ROUTER_PREF_*).
      const pref = r.pref === 1 ? 'high' : r.pref === 3 ? 'low' : 'medium';
      const oifs = r.nexthops?.map((h) => h.oif) ?? (r.oif === undefined ? [] : [r.oif]);
      for (const ifindex of oifs) out.push({ ifindex, metric, pref });
    }
    return out;
  }

  async routeVia6(dst: string, oif: number, src: string): Promise<RouteVia | undefined> {
    try {
      // The path this flow takes (a Redirect's next hop included), then the table entry it came
      // from, which alone tells a multipath route.
      const r = this.rtnl.routeTo(dst, oif, { src });
      const entry = this.rtnl.routeTo(dst, oif, { src, fibMatch: true });
      const multipath = (entry.nexthops?.length ?? 0) > 1;
      return { ifindex: r.oif ?? oif, gateway: r.gateway, multipath };
    } catch {
      return undefined;
    }
  }

  async routeGet6(dst: string, oif: number): Promise<RouteInfo | undefined> {
    let r: ReturnType<Rtnl['routeTo']>;
    try {
      r = this.rtnl.routeTo(dst, oif);
    } catch {
      return undefined;
    }
    let mtu = r.mtu;
    if (mtu === undefined) {
      // No route MTU: the link's IPv6 MTU, which an RA's MTU option may have lowered.
      try {
        const name = this.rtnl.link(oif).name;
        mtu = ipv6Conf(name).mtu;
      } catch {
        mtu = undefined;
      }
    }
    return { ifindex: r.oif ?? oif, src: r.prefsrc, mtu };
  }

  solicit(ifindex: number): void {
    void solicitRouters(this.rtnl, ifindex);
  }

  watch(onEvent: (e: NetEvent) => void, onError: (e: Error) => void): Closer {
    const m = this.watchRtnl(onEvent, onError);
    let nft: { close(): void };
    try {
      nft = openNftMonitor(
        TABLE_PREFIX,
        (e) => {
          const ev = toNftNetEvent(e, isOwnNftRun);
          if (ev) onEvent(ev);
        },
        onError,
      );
    } catch (e) {
      m.close();
      throw e;
    }
    return {
      close: () => {
        m.close();
        nft.close();
      },
    };
  }

  /**
   * The rtnetlink events alone (links, addresses, routes, PREF64 from RAs), without the nftables
   * monitor: any user may listen to these, while the netfilter groups need CAP_NET_ADMIN.
   */
  watchRtnl(onEvent: (e: NetEvent) => void, onError: (e: Error) => void): Closer {
    return openRtnlMonitor((e: RtnlEvent) => {
      for (const ev of toNetEvents(e)) onEvent(ev);
    }, onError);
  }
}

/** A deletion in a clatd table by another process as the daemon's event; clatd's own nft runs give none. */
export function toNftNetEvent(e: NftEvent, isOwn: (pid: number) => boolean): NetEvent | undefined {
  if (e.kind === 'overrun') return { type: 'nft', table: undefined, by: 'someone (nftables events were lost)' };
  if (e.pid !== undefined && isOwn(e.pid)) return undefined;
  const by = e.pid === undefined ? 'another process' : `${e.proc ?? 'process'} (pid ${e.pid})`;
  return { type: 'nft', table: e.table, by };
}

/** Maps one rtnetlink event to the daemon's events (PREF64 options are parsed here). */
export function toNetEvents(e: RtnlEvent): NetEvent[] {
  switch (e.kind) {
    case 'link':
      return [{ type: 'link', ifindex: e.link.index, removed: e.removed }];
    case 'address':
      return [{ type: 'addr', ifindex: e.address.ifindex, family: e.address.family, removed: e.removed }];
    case 'route':
      return [{ type: 'route', family: e.route.family, removed: e.removed }];
    case 'nduseropt': {
      if (e.option.icmpType !== 134) return [];
      const out: NetEvent[] = [];
      for (const r of findPref64Options(e.option.options)) {
        if (r.ok)
          out.push({
            type: 'pref64',
            ifindex: e.option.ifindex,
            router: e.option.source,
            prefix: r.prefix,
            lifetime: r.lifetime,
          });
      }
      return out;
    }
    case 'neigh': {
      const n = e.neighbour;
      if (n.family !== 6) return [];
      return [{ type: 'neigh', ifindex: n.ifindex, address: n.address, router: n.router, removed: e.removed }];
    }
    case 'overrun':
      return [{ type: 'link', ifindex: 0, removed: false }];
  }
}

export const systemDns64: Dns64Port = {
  discover: (servers) => discoverPref64ViaDns(servers.length ? servers : undefined),
};

export const systemIdentity: IdentityPort = {
  selectIPv4(inUse) {
    try {
      return formatIPv4(selectClatIPv4(inUse));
    } catch {
      return undefined;
    }
  },
  generateIPv6: (o) => generateClatAddress({ prefix64: o.prefix64, pref64: o.pref64, ipv4: o.ipv4 }),
  generateInPrefix: (o) => generateInPrefix({ prefix: o.prefix, pref64: o.pref64, ipv4: o.ipv4 }),
};

/** Sends one Router Solicitation on `ifindex` when privileged; without CAP_NET_RAW it quietly does nothing. */
export async function solicitRouters(rtnl: Rtnl, ifindex: number): Promise<void> {
  try {
    const name = rtnl.link(ifindex).name;
    const raw = Raw6Socket.open({ ifname: name, ifindex });
    try {
      raw.sendOne(buildRouterSolicitation());
    } finally {
      raw.close();
    }
  } catch {
    // Not root, or the link is gone: wait for the periodic RA instead.
  }
}
