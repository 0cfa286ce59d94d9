/**
 * The rtnetlink operations clatd needs, by name: links, addresses and routes, each request named
 * in its errors (`RTM_NEWROUTE 0.0.0.0/0 dev v4-eth0: EEXIST (file already exists)`). Synchronous:
 * every call is one netlink round trip (or one dump); the kernel answers rtnetlink requests inside
 * the send, so nothing waits on the event loop.
 */
import { constants } from 'node:os';
import { parsePrefix4, parsePrefix6 } from '../../core/addr/prefix.js';
import { AddressError } from '../../core/errors.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  ETH_P_ALL_BE,
  IFADDRMSG_LEN,
  IFINFOMSG_LEN,
  NLM_F_APPEND,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  RT_SCOPE_NOWHERE,
  RT_TABLE_LOCAL,
  RT_TABLE_MAIN,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELQDISC,
  RTM_DELROUTE,
  RTM_DELTFILTER,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETROUTE,
  RTM_GETTFILTER,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWQDISC,
  RTM_NEWROUTE,
  RTM_NEWTFILTER,
  RTMSG_LEN,
  RTN_UNICAST,
  TC_H_CLSACT,
  TC_H_CLSACT_HANDLE,
  TC_H_EGRESS_HOOK,
  TC_H_INGRESS_HOOK,
  TCA_BPF_FD,
  TCA_BPF_FLAG_ACT_DIRECT,
  TCA_BPF_FLAGS,
  TCA_BPF_NAME,
  TCA_KIND,
  TCA_OPTIONS,
} from './consts.js';
import { NetlinkError } from './errors.js';
import {
  type Address,
  decodeAddress,
  decodeLink,
  decodeRoute,
  encodeAddress,
  encodeDump,
  encodeLink,
  encodeRoute,
  encodeRouteGet,
  encodeTc,
  type Family,
  familyOfText,
  type Link,
  type Route,
  type RouteSpec,
} from './messages.js';
import { NetlinkSocket, type NetlinkSocketOptions, type NetlinkTransport } from './socket.js';

/** A link by name (`eth0`) or by index. */
export type Dev = string | number;

export interface AddressFilter {
  readonly family?: Family;
  readonly dev?: Dev;
}

export interface AddAddressOptions {
  /** IFA_F_* flags, e.g. IFA_F_NODAD. */
  readonly flags?: number;
  readonly scope?: number;
  /** Lifetimes in seconds (default: forever). */
  readonly preferredLft?: number;
  readonly validLft?: number;
}

export interface RouteFilter {
  readonly family?: Family;
  /** Only this table (default: all tables except `local`). */
  readonly table?: number;
  readonly protocol?: number;
  readonly dev?: Dev;
}

export interface RouteOptions {
  /** Destination prefix, `0.0.0.0/0`, `::/0`, `192.0.2.0/24`, `2001:db8::1/128`; a bare address is a host route. */
  readonly dst: string;
  readonly dev?: Dev;
  readonly gateway?: string;
  /** Preferred source address. */
  readonly src?: string;
  /** Default main (254). */
  readonly table?: number;
  /** RTA_PRIORITY. */
  readonly metric?: number;
  readonly mtu?: number;
  readonly advmss?: number;
  /** Default RTPROT_CLATD (199). */
  readonly protocol?: number;
  readonly scope?: number;
  /** RTN_*; default unicast. */
  readonly type?: number;
}

function prefixOf(dst: string): { family: Family; addr: string; len: number } {
  const family = familyOfText(dst);
  const slash = dst.indexOf('/');
  const addr = slash < 0 ? dst : dst.slice(0, slash);
  // Parse to validate (AddressError on bad text) and to get the length; host bits are an error.
  const len = family === 4 ? parsePrefix4(dst).len : parsePrefix6(dst).len;
  return { family, addr, len };
}

export class Rtnl {
  private readonly nl: NetlinkSocket;

  constructor(transport: NetlinkTransport, opts: NetlinkSocketOptions = {}) {
    this.nl = new NetlinkSocket(transport, opts);
  }

  // ------------------------------------------------------------------------------- links

  links(): Link[] {
    return this.nl.dump(encodeDump(RTM_GETLINK, 0, AF_UNSPEC, IFINFOMSG_LEN), 'RTM_GETLINK dump', (m) =>
      decodeLink(m.body),
    );
  }

  /** The link named or numbered `dev`. Throws NetlinkError ENODEV naming it when there is none. */
  link(dev: Dev): Link {
    let found: Link | undefined;
    const req = typeof dev === 'number' ? { index: dev } : { index: 0, name: dev };
    this.nl.request(encodeLink(RTM_GETLINK, 0, req), `RTM_GETLINK ${devText(dev)}`, (m) => {
      found = decodeLink(m.body) ?? found;
    });
    if (!found) throw new NetlinkError(`RTM_GETLINK ${devText(dev)}`, constants.errno.ENODEV, 'empty reply');
    return found;
  }

  /** Like {@link Rtnl.link}, but undefined when the link does not exist. */
  findLink(dev: Dev): Link | undefined {
    try {
      return this.link(dev);
    } catch (e) {
      if (e instanceof NetlinkError && e.errnoName === 'ENODEV') return undefined;
      throw e;
    }
  }

  /** The ifindex of `dev` (a number is returned as is, without a lookup). */
  index(dev: Dev): number {
    return typeof dev === 'number' ? dev : this.link(dev).index;
  }

  setUp(dev: Dev, up = true): void {
    const index = this.index(dev);
    this.nl.request(encodeLink(RTM_NEWLINK, 0, { index, up }), `RTM_NEWLINK ${devText(dev)} ${up ? 'up' : 'down'}`);
  }

  setMtu(dev: Dev, mtu: number): void {
    const index = this.index(dev);
    this.nl.request(encodeLink(RTM_NEWLINK, 0, { index, mtu }), `RTM_NEWLINK ${devText(dev)} mtu ${mtu}`);
  }

  deleteLink(dev: Dev): void {
    const index = this.index(dev);
    this.nl.request(encodeLink(RTM_DELLINK, 0, { index }), `RTM_DELLINK ${devText(dev)}`);
  }

  // ------------------------------------------------------------------------------- addresses

  addresses(filter: AddressFilter = {}): Address[] {
    const index = filter.dev === undefined ? undefined : this.index(filter.dev);
    const af = filter.family === 4 ? AF_INET : filter.family === 6 ? AF_INET6 : AF_UNSPEC;
    return this.nl.dump(encodeDump(RTM_GETADDR, 0, af, IFADDRMSG_LEN), 'RTM_GETADDR dump', (m) => {
      const a = decodeAddress(m.body);
      return a && (index === undefined || a.ifindex === index) ? a : undefined;
    });
  }

  /** Adds `address/prefixLen` (default /32 or /128) to `dev`. EEXIST if it is already there. */
  addAddress(dev: Dev, address: string, prefixLen?: number, opts: AddAddressOptions = {}): void {
    const family = familyOfText(address);
    const len = prefixLength(family, prefixLen);
    const ifindex = this.index(dev);
    this.nl.request(
      encodeAddress(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, { family, ifindex, address, prefixLen: len, ...opts }),
      `RTM_NEWADDR ${address}/${len} dev ${devText(dev)}`,
    );
  }

  deleteAddress(dev: Dev, address: string, prefixLen?: number): void {
    const family = familyOfText(address);
    const len = prefixLength(family, prefixLen);
    const ifindex = this.index(dev);
    this.nl.request(
      encodeAddress(RTM_DELADDR, 0, { family, ifindex, address, prefixLen: len }),
      `RTM_DELADDR ${address}/${len} dev ${devText(dev)}`,
    );
  }

  // ------------------------------------------------------------------------------- routes

  /**
   * The route the kernel would use to reach `dst` (like `ip route get`): oif, gateway, the source
   * address it would pick (prefsrc), MTU when the route or cache has one, table. `o` as for
   * encodeRouteGet: from a source address, the matched table entry.
   */
  routeTo(dst: string, dev?: Dev, o: { src?: string; fibMatch?: boolean } = {}): Route {
    const family = familyOfText(dst);
    const oif = dev === undefined ? undefined : this.index(dev);
    let found: Route | undefined;
    const what = `RTM_GETROUTE ${dst}${o.src === undefined ? '' : ` from ${o.src}`}${dev === undefined ? '' : ` dev ${devText(dev)}`}`;
    this.nl.request(encodeRouteGet(RTM_GETROUTE, 0, family, dst, oif, o), what, (m) => {
      found = decodeRoute(m.body) ?? found;
    });
    if (!found) throw new NetlinkError(what, constants.errno.ENETUNREACH, 'empty reply');
    return found;
  }

  routes(filter: RouteFilter = {}): Route[] {
    const oif = filter.dev === undefined ? undefined : this.index(filter.dev);
    const af = filter.family === 4 ? AF_INET : filter.family === 6 ? AF_INET6 : AF_UNSPEC;
    return this.nl.dump(encodeDump(RTM_GETROUTE, 0, af, RTMSG_LEN), 'RTM_GETROUTE dump', (m) => {
      const r = decodeRoute(m.body);
      if (!r) return undefined;
      if (filter.table === undefined ? r.table === RT_TABLE_LOCAL : r.table !== filter.table) return undefined;
      if (filter.protocol !== undefined && r.protocol !== filter.protocol) return undefined;
      if (oif !== undefined && r.oif !== oif) return undefined;
      return r;
    });
  }

  /** Unicast default routes of a family in the main table (to see whether native IPv4 exists). */
  defaultRoutes(family: Family, table = RT_TABLE_MAIN): Route[] {
    return this.routes({ family, table }).filter((r) => r.dstLen === 0 && r.type === RTN_UNICAST);
  }

  /**
   * Adds a route; with `replace`, replaces a route with the same key instead of failing with EEXIST;
   * with `append`, adds it beside routes with the same key (for IPv4, the same prefix and metric on
   * another device: the kernel replaces the first of those, whatever its device, on `replace`).
   */
  addRoute(opts: RouteOptions, replace: boolean | 'append' = false): void {
    const flags = NLM_F_CREATE | (replace === 'append' ? NLM_F_APPEND : replace ? NLM_F_REPLACE : NLM_F_EXCL);
    this.nl.request(encodeRoute(RTM_NEWROUTE, flags, this.routeSpec(opts)), `RTM_NEWROUTE ${routeText(opts)}`);
  }

  /** Deletes the route matching dst, table, and (when given) dev, gateway, metric and protocol. */
  deleteRoute(opts: RouteOptions): void {
    const spec = this.routeSpec(opts);
    // The kernel matches a delete on the fields given; leave protocol and scope out unless asked.
    const del: RouteSpec = {
      ...spec,
      protocol: opts.protocol ?? 0,
      scope: opts.scope ?? RT_SCOPE_NOWHERE,
      type: opts.type ?? 0,
      mtu: undefined,
      advmss: undefined,
    };
    this.nl.request(encodeRoute(RTM_DELROUTE, 0, del), `RTM_DELROUTE ${routeText(opts)}`);
  }

  private routeSpec(o: RouteOptions): RouteSpec {
    const p = prefixOf(o.dst);
    return {
      family: p.family,
      dst: p.addr,
      dstLen: p.len,
      oif: o.dev === undefined ? undefined : this.index(o.dev),
      gateway: o.gateway,
      prefsrc: o.src,
      table: o.table,
      protocol: o.protocol,
      scope: o.scope,
      type: o.type,
      priority: o.metric,
      mtu: o.mtu,
      advmss: o.advmss,
    };
  }

  // ------------------------------------------------------------------------- classic tc (bpf)

  /** Adds the clsact qdisc (the tc hooks for BPF programs) to `dev`; one already there is fine. */
  addClsact(dev: Dev): void {
    const ifindex = this.index(dev);
    const m = encodeTc(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, {
      ifindex,
      handle: TC_H_CLSACT_HANDLE,
      parent: TC_H_CLSACT,
      info: 0,
    }).str(TCA_KIND, 'clsact');
    try {
      this.nl.request(m, `RTM_NEWQDISC ${devText(dev)} clsact`);
    } catch (e) {
      if (!(e instanceof NetlinkError && e.errnoName === 'EEXIST')) throw e;
    }
  }

  /**
   * Deletes `dev`'s clsact qdisc when neither of its hooks holds a filter (clatd adds it for its
   * classic tc filters and, once they are gone, takes it away again); true when it did. One that
   * holds anyone's filter stays.
   */
  deleteClsactIfEmpty(dev: Dev): boolean {
    const ifindex = this.index(dev);
    for (const parent of [TC_H_INGRESS_HOOK, TC_H_EGRESS_HOOK]) {
      const m = encodeTc(RTM_GETTFILTER, 0, { ifindex, handle: 0, parent, info: 0 });
      const found = this.nl.dump(m, `RTM_GETTFILTER dump ${devText(dev)}`, (msg) =>
        msg.type === RTM_NEWTFILTER ? true : undefined,
      );
      if (found.length > 0) return false;
    }
    const m = encodeTc(RTM_DELQDISC, 0, { ifindex, handle: TC_H_CLSACT_HANDLE, parent: TC_H_CLSACT, info: 0 });
    try {
      this.nl.request(m, `RTM_DELQDISC ${devText(dev)} clsact`);
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && ['ENOENT', 'EINVAL'].includes(e.errnoName)) return false;
      throw e;
    }
  }

  /**
   * Attaches BPF program `progFd` (direct action) at priority `prio` of `dev`'s clsact hook,
   * replacing what that priority held. The filter holds the program until deleted.
   */
  addBpfFilter(dev: Dev, hook: 'ingress' | 'egress', progFd: number, name: string, prio: number): void {
    const ifindex = this.index(dev);
    const m = encodeTc(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE, {
      ifindex,
      handle: 1,
      parent: hook === 'ingress' ? TC_H_INGRESS_HOOK : TC_H_EGRESS_HOOK,
      info: ((prio & 0xffff) << 16) | ETH_P_ALL_BE,
    })
      .str(TCA_KIND, 'bpf')
      .begin(TCA_OPTIONS)
      .u32(TCA_BPF_FD, progFd)
      .str(TCA_BPF_NAME, name)
      .u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT)
      .end();
    this.nl.request(m, `RTM_NEWTFILTER ${devText(dev)} ${hook} bpf ${name} prio ${prio}`);
  }

  /**
   * Deletes the filters at priority `prio` of `dev`'s clsact hook: true when there were some, false
   * when there were none (or no clsact).
   */
  deleteBpfFilter(dev: Dev, hook: 'ingress' | 'egress', prio: number): boolean {
    const ifindex = this.index(dev);
    const m = encodeTc(RTM_DELTFILTER, 0, {
      ifindex,
      handle: 0,
      parent: hook === 'ingress' ? TC_H_INGRESS_HOOK : TC_H_EGRESS_HOOK,
      info: ((prio & 0xffff) << 16) | ETH_P_ALL_BE,
    });
    try {
      this.nl.request(m, `RTM_DELTFILTER ${devText(dev)} ${hook} prio ${prio}`);
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && ['ENOENT', 'EINVAL'].includes(e.errnoName)) return false;
      throw e;
    }
  }

  close(): void {
    this.nl.close();
  }
}

/** The given prefix length, checked, or the host length of the family. */
function prefixLength(family: Family, len: number | undefined): number {
  const max = family === 4 ? 32 : 128;
  if (len === undefined) return max;
  if (!Number.isInteger(len) || len < 0 || len > max)
    throw new AddressError(`IPv${family} prefix length ${len} is not within 0..${max}`);
  return len;
}

function devText(dev: Dev): string {
  return typeof dev === 'number' ? `ifindex ${dev}` : dev;
}

function routeText(o: RouteOptions): string {
  let s = o.dst;
  if (o.gateway !== undefined) s += ` via ${o.gateway}`;
  if (o.dev !== undefined) s += ` dev ${devText(o.dev)}`;
  if (o.table !== undefined && o.table !== RT_TABLE_MAIN) s += ` table ${o.table}`;
  if (o.metric !== undefined) s += ` metric ${o.metric}`;
  return s;
}
