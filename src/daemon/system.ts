/**
 * The daemon's ports (ports.ts) over the real system layer: rtnetlink for links, addresses, routes
 * and events; the packet socket, raw socket and nftables for the uplink side; the TUN for the IPv4
 * side; the neighbor-discovery core for identity and DAD; the worker datapath for translation.
 * This file is the one place that knows the system layer's API, so a change there lands here.
 */
import { formatIPv4 } from '../core/addr/ipv4.js';
import { formatIPv6, parseIPv6 } from '../core/addr/ipv6.js';
import { formatPrefix6, type Prefix6 } from '../core/addr/prefix.js';
import { createBatch } from '../core/batch.js';
import { ClatdError } from '../core/errors.js';
import { selectClatIPv4 } from '../core/nd/clat-ipv4.js';
import { type DadAction, DadMachine } from '../core/nd/dad.js';
import { buildDadSolicitation } from '../core/nd/dad-probe.js';
import { parseNeighborMessage } from '../core/nd/nd-parse.js';
import { generateClatAddress } from '../core/nd/neutral.js';
import { findPref64Options } from '../core/nd/pref64.js';
import type { TranslatorConfig } from '../core/xlat/config.js';
import { OFFLOAD_TC_PRIO } from '../offload/abi.js';
import { clatReceiveFilter } from '../sys/bpf.js';
import {
  clatFilterIntact,
  clatTableName,
  installClatFilter,
  isOwnNftRun,
  listClatTables,
  removeClatFilter,
  TABLE_PREFIX,
  updateClatFilter,
} from '../sys/nft.js';
import { type NftEvent, openNftMonitor } from '../sys/nft-events.js';
import { PacketSocket } from '../sys/packet-socket.js';
import { type PollHandle, pollReadable } from '../sys/poll.js';
import { Raw6Socket } from '../sys/raw6.js';
import { openRtnl, openRtnlMonitor, RTPROT_CLATD, type Rtnl, type RtnlEvent } from '../sys/rtnetlink/index.js';
import { ipv6Conf, readIpv6Conf, setIpv6Disabled, writeIpv6Conf } from '../sys/sysctl.js';
import { Tun } from '../sys/tun.js';
import { buildRouterSolicitation } from './discover.js';
import { discoverPref64ViaDns } from './dns64.js';
import type {
  AddrInfo,
  Closer,
  DadOutcome,
  DadPort,
  DaemonDeps,
  DatapathHandle,
  Dns64Port,
  IdentityPort,
  Ipv4Side,
  LinkInfo,
  NetEvent,
  NetPort,
  PlumbingPort,
  RouteInfo,
  UplinkSide,
  XlatParams,
} from './ports.js';
import { realClock, tunName } from './ports.js';

const ARPHRD_ETHER = 1;

function scopeName(scope: number): AddrInfo['scope'] {
  return scope === 0 ? 'global' : scope === 200 ? 'site' : scope === 253 ? 'link' : 'host';
}

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

  async defaultRoutes4(): Promise<RouteInfo[]> {
    return this.rtnl
      .defaultRoutes(4)
      .filter((r) => r.oif !== undefined && r.protocol !== RTPROT_CLATD)
      .map((r) => ({ ifindex: r.oif as number }));
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
    const m = openRtnlMonitor((e: RtnlEvent) => {
      for (const ev of toNetEvents(e)) onEvent(ev);
    }, onError);
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
        if (r.ok) out.push({ type: 'pref64', ifindex: e.option.ifindex, prefix: r.prefix, lifetime: r.lifetime });
      }
      return out;
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
};

/**
 * The uplink side: the raw socket holding the anycast address, and the nft drop rule. The packet
 * sockets belong to their readers (each datapath loop, and DAD), which filter on the same address.
 */
export class SystemUplink implements UplinkSide {
  readonly raw: Raw6Socket;
  readonly linkHeaderLen: number;
  #clat6: Uint8Array;
  #nft = false;
  #closed = false;
  /** The uplink's proxy_delay before clatd set it to 0, to give back at close (undefined: untouched). */
  #proxyDelay: number | undefined;

  constructor(
    readonly link: LinkInfo & { linkType: number },
    clat6: string,
  ) {
    this.linkHeaderLen = link.linkType === ARPHRD_ETHER ? 14 : 0;
    this.#clat6 = parseIPv6(clat6);
    this.raw = Raw6Socket.open({ ifname: link.name, ifindex: link.index });
    try {
      this.raw.joinAnycast(this.#clat6);
      installClatFilter(link.name, clat6);
      this.#nft = true;
    } catch (e) {
      this.raw.close();
      throw e;
    }
    this.#noAnycastDelay();
  }

  /**
   * The kernel answers a multicast Neighbor Solicitation for an anycast address after a random
   * 0..proxy_delay (0.8 s by default; RFC 4861 §7.2.7, so that several holders of one anycast
   * address do not answer at once). The CLAT address is anycast only so that the kernel answers
   * for it, and it has one holder (DAD checked): the delay would only hold up the first packet back
   * to the CLAT whenever the router resolves it anew (after start, or once its neighbour entry
   * expired; 0.6–0.8 s seen in the lab). So it is 0 on the uplink while clatd runs. Best effort: a
   * read-only /proc/sys leaves the delay, not clatd, behind.
   */
  #noAnycastDelay(): void {
    try {
      const old = readIpv6Conf(this.link.name, 'proxy_delay');
      if (old === 0) return;
      writeIpv6Conf(this.link.name, 'proxy_delay', 0);
      this.#proxyDelay = old;
    } catch {
      // Left as it was.
    }
  }

  get clat6(): Uint8Array {
    return this.#clat6;
  }

  get table(): string {
    return clatTableName(this.link.name);
  }

  async filterIntact(): Promise<boolean> {
    return clatFilterIntact(this.link.name, formatIPv6(this.#clat6));
  }

  async restoreFilter(): Promise<void> {
    installClatFilter(this.link.name, formatIPv6(this.#clat6));
    this.#nft = true;
  }

  async retarget(clat6: string, _pref64: Prefix6): Promise<void> {
    const next = parseIPv6(clat6);
    if (formatIPv6(next) === formatIPv6(this.#clat6)) return;
    // Join the new address before leaving the old, so the kernel never stops answering for us.
    this.raw.joinAnycast(next);
    this.raw.leaveAnycast(this.#clat6);
    updateClatFilter(this.link.name, clat6);
    this.#clat6 = next;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.raw.close();
    if (this.#nft) removeClatFilter(this.link.name);
    if (this.#proxyDelay !== undefined) {
      try {
        writeIpv6Conf(this.link.name, 'proxy_delay', this.#proxyDelay);
      } catch {
        // The uplink is gone, and its setting with it.
      }
    }
  }
}

/** The IPv4 side: TUN, no IPv6 on it, the /32, MTU, up, and a default route tagged RTPROT_CLATD. */
export class SystemIpv4 implements Ipv4Side {
  readonly tun: Tun;
  readonly queues: Tun[];
  readonly ifindex: number;
  #mtu: number;
  #closed = false;

  constructor(
    private readonly rtnl: Rtnl,
    readonly name: string,
    readonly v4: string,
    mtu: number,
    private readonly metric: number,
  ) {
    // clatd's TUN is not persistent: it goes with its last fd, so one that exists is held by a
    // running process. Opening it would attach a queue to that process's device.
    if (rtnl.findLink(name)) throw new TunInUseError(name);
    // Multi-queue, so datapath workers can attach queues of their own; this one keeps the device.
    this.tun = Tun.open(name, { multiQueue: true });
    this.queues = [this.tun];
    try {
      setIpv6Disabled(name);
      this.ifindex = rtnl.index(name);
      rtnl.setMtu(name, mtu);
      rtnl.addAddress(name, v4, 32);
      rtnl.setUp(name);
      this.#mtu = mtu;
      this.#addRoute(false);
    } catch (e) {
      for (const q of this.queues) q.close();
      throw e;
    }
  }

  #addRoute(replace: boolean): void {
    this.rtnl.addRoute(
      {
        dst: '0.0.0.0/0',
        dev: this.name,
        src: this.v4,
        metric: this.metric,
        advmss: this.#mtu - 40,
        protocol: RTPROT_CLATD,
      },
      replace,
    );
  }

  async setMtu(mtu: number): Promise<void> {
    this.rtnl.setMtu(this.name, mtu);
    this.#mtu = mtu;
    this.#addRoute(true);
  }

  async repair(): Promise<string[]> {
    const fixed: string[] = [];
    const link = this.rtnl.findLink(this.ifindex);
    if (!link) return fixed; // gone: the daemon builds the whole side again
    if (!link.up) {
      // Setting a link down also takes its routes: the route check below puts ours back.
      this.rtnl.setUp(this.ifindex);
      fixed.push('the link was down');
    }
    if (!this.rtnl.addresses({ dev: this.ifindex, family: 4 }).some((a) => a.address === this.v4)) {
      this.rtnl.addAddress(this.ifindex, this.v4, 32);
      fixed.push(`address ${this.v4}/32`);
    }
    const routes = this.rtnl.routes({ family: 4, dev: this.ifindex, protocol: RTPROT_CLATD });
    if (!routes.some((r) => r.dstLen === 0)) {
      this.#addRoute(true);
      fixed.push('default route');
    }
    return fixed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.rtnl.deleteRoute({ dst: '0.0.0.0/0', dev: this.name, metric: this.metric });
    } catch {
      // Gone with the link already, or removed by someone else: nothing to do.
    }
    for (const q of this.queues) q.close();
    // A non-persistent TUN disappears with its last fd; delete it in case something else holds it.
    try {
      if (this.rtnl.findLink(this.name)) this.rtnl.deleteLink(this.name);
    } catch {
      // Already gone.
    }
  }
}

/** The TUN's name is taken: a running process (another clatd?) holds a device of that name. */
export class TunInUseError extends ClatdError {
  constructor(readonly tun: string) {
    super(
      `${tun} already exists and is held by a running process (another clatd on this uplink?); clatd's own TUN goes with its process, so this one is left alone`,
      'ERR_CLATD_TUN_IN_USE',
    );
    this.name = 'TunInUseError';
  }
}

export function translatorConfig(p: XlatParams, ipv6Mtu?: number): TranslatorConfig {
  return {
    pool6: formatPrefix6(p.pref64),
    eam: [{ v4: `${p.clat4}/32`, v6: `${p.clat6}/128` }],
    // The host's kernel treats packets from its own address arriving on the TUN as martians, so
    // errors the translator itself sends toward the host come from the RFC 7600 address instead.
    ownV4: p.translator.icmpSrcV4,
    ownV6: p.clat6,
    // Only the CLAT's own IPv4 address is translated: anything else in the TUN is not ours to send.
    v4Sources: 'eam',
    icmpSrcV4: p.translator.icmpSrcV4,
    lowestIpv6Mtu: p.translator.lowestIpv6Mtu,
    // Packets written into the TUN are delivered to this host, never forwarded, so no IPv4 link
    // MTU applies to them. The packet socket may hand over a TCP GRO/TSO super-packet whole (up to
    // 64 KiB) when the batch has no room to split it; translated as one packet, it is still valid.
    ipv4Mtu: 65535,
    ipv6Mtu: ipv6Mtu ?? p.mtu + 28,
    udpZeroChecksum: p.translator.udpZeroChecksum,
    trafficClass: p.translator.trafficClass,
    wkpGlobalOnly: p.translator.wkpGlobalOnly,
    hairpin: false,
  };
}

export type DatapathFactory = (o: {
  uplink: SystemUplink;
  ipv4: SystemIpv4;
  params: XlatParams;
  workers: number;
  paused?: boolean;
  onFailure: (why: string) => void;
}) => Promise<DatapathHandle>;

export class SystemPlumbing implements PlumbingPort, DadPort {
  /** The uplink side currently open per ifindex (DAD sends its probes through its raw socket). */
  readonly #uplinks = new Map<number, SystemUplink>();

  constructor(
    readonly rtnl: Rtnl,
    private readonly startDp: DatapathFactory,
    private readonly workers: number,
  ) {}

  async openUplink(uplink: LinkInfo, clat6: string, _pref64: Prefix6): Promise<UplinkSide> {
    const link = this.rtnl.link(uplink.index);
    const side = new SystemUplink({ ...uplink, linkType: link.linkType }, clat6);
    this.#uplinks.set(uplink.index, side);
    const close = side.close.bind(side);
    side.close = async () => {
      if (this.#uplinks.get(uplink.index) === side) this.#uplinks.delete(uplink.index);
      await close();
    };
    return side;
  }

  async createIpv4Side(o: { name: string; v4: string; mtu: number; metric: number }): Promise<Ipv4Side> {
    return new SystemIpv4(this.rtnl, o.name, o.v4, o.mtu, o.metric);
  }

  async startDatapath(o: {
    uplink: UplinkSide;
    ipv4: Ipv4Side;
    params: XlatParams;
    paused?: boolean;
    onFailure: (why: string) => void;
  }): Promise<DatapathHandle> {
    return this.startDp({
      uplink: o.uplink as SystemUplink,
      ipv4: o.ipv4 as SystemIpv4,
      params: o.params,
      paused: o.paused,
      workers: this.workers,
      onFailure: o.onFailure,
    });
  }

  async dadParams(ifname: string): Promise<{ transmits: number; retransMs: number }> {
    const c = ipv6Conf(ifname);
    return { transmits: c.dadTransmits, retransMs: c.retransTimeMs };
  }

  /**
   * What an earlier clatd on `uplink` may have left after a crash: the nft table clatd-<uplink>
   * (its TUN and the routes on it went with its process). Without --interface, the uplink is that
   * of the IPv6 default route. Throws TunInUseError when the TUN exists: a running clatd holds it.
   */
  async cleanupLeftovers(uplinkName?: string): Promise<string[]> {
    const removed: string[] = [];
    let uplink = uplinkName;
    if (uplink === undefined) {
      const r = this.rtnl.defaultRoutes(6).find((x) => x.oif !== undefined);
      if (r?.oif !== undefined) uplink = this.rtnl.findLink(r.oif)?.name;
    }
    if (uplink === undefined) return removed;
    const name = tunName(uplink);
    // A TUN of clatd's goes with its process (it is not persistent), so one that exists is held
    // by a running process, most likely another clatd on this uplink: its TUN and its nftables
    // table are not leftovers.
    if (this.rtnl.findLink(name)) throw new TunInUseError(name);
    const table = clatTableName(uplink);
    if (listClatTables().includes(table)) {
      removeClatFilter(uplink);
      removed.push(`nft table inet ${table}`);
    }
    // The kernel fast path's classic tc filter (kernels without tcx) outlives a crash.
    if (this.rtnl.findLink(uplink) && this.rtnl.deleteBpfFilter(uplink, 'ingress', OFFLOAD_TC_PRIO)) {
      removed.push(`tc filter on ${uplink} ingress, priority ${OFFLOAD_TC_PRIO}`);
    }
    return removed;
  }

  /** DAD on the wire (RFC 4862 §5.4 with RFC 7527 nonces), driven by the core's DadMachine. */
  async run(o: Parameters<DadPort['run']>[0]): Promise<DadOutcome> {
    const side = this.#uplinks.get(o.uplink.index);
    if (!side) throw new Error(`DAD on ${o.uplink.name}: the uplink side is not open`);
    const own = new Set(this.rtnl.addresses({ family: 6 }).map((a) => a.address));
    // A socket of its own, so DAD sees the ND messages whatever the datapath is doing.
    let target = parseIPv6(o.first);
    const listen = PacketSocket.open({
      ifindex: o.uplink.index,
      ifname: o.uplink.name,
      filter: clatReceiveFilter(target),
      linkHeaderLen: side.linkHeaderLen,
      batchSize: 16,
    });
    const m = new DadMachine({
      mode: o.params.mode,
      transmits: o.params.transmits,
      retransTimerMs: o.params.retransMs,
      address: o.first,
      nextAddress: o.redraw,
    });
    const duplicates: { address: string; by: string }[] = [];
    let attempts = 1;
    await o.onAddress(o.first);
    return new Promise<DadOutcome>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let poll: PollHandle | undefined;
      let done = false;
      let chain = Promise.resolve();
      const end = () => {
        if (done) return false;
        done = true;
        if (timer) clearTimeout(timer);
        poll?.stop();
        listen.close();
        return true;
      };
      const finish = (r: DadOutcome) => {
        if (end()) resolve(r);
      };
      // onAddress failed for a drawn address: its error ends the run, as it does for the first
      // address above (it was an unhandled rejection of the chain, which ended clatd).
      const abandon = (e: unknown) => {
        if (end()) reject(e);
      };
      const apply = (actions: DadAction[]) => {
        for (const a of actions) {
          if (done) return;
          switch (a.type) {
            case 'send-probe':
              try {
                side.raw.sendOne(buildDadSolicitation(a.target, a.nonce));
              } catch {
                // A lost probe is like one lost on the wire: DAD goes on.
              }
              break;
            case 'set-timer':
              if (timer) clearTimeout(timer);
              timer = setTimeout(
                () => apply(m.step({ type: 'timer', now: Date.now() })),
                Math.max(0, a.at - Date.now()),
              );
              break;
            case 'duplicate': {
              const next = formatIPv6(a.next);
              duplicates.push({ address: formatIPv6(a.address), by: a.answeredBy });
              attempts++;
              target = a.next;
              listen.setFilter(clatReceiveFilter(target));
              chain = chain.then(() => o.onAddress(next)).catch(abandon);
              break;
            }
            case 'unique':
              void chain.then(() => finish({ ok: true, address: formatIPv6(a.address), attempts, duplicates }));
              break;
            case 'failed':
              finish({ ok: false, address: formatIPv6(target), attempts, duplicates, reason: a.error.message });
              break;
            default:
              break;
          }
        }
      };
      o.signal.addEventListener('abort', () =>
        finish({ ok: false, address: formatIPv6(target), attempts, duplicates, reason: 'stopped' }),
      );
      const batch = createBatch(16, 2048);
      poll = pollReadable(listen.fd, `DAD packet socket on ${o.uplink.name}`, () => {
        batch.count = 0;
        const n = listen.read(batch, 0);
        for (let i = 0; i < n; i++) {
          const len = batch.lens[i];
          if (len === 0) continue;
          const msg = parseNeighborMessage(batch.data, batch.offs[i], len);
          if (!msg.ok) continue;
          const fromSelf = own.has(formatIPv6(msg.source));
          apply(m.step({ type: 'nd', now: Date.now(), message: msg, fromSelf }));
        }
      });
      apply(m.step({ type: 'start', now: Date.now() }));
    });
  }
}

export function systemDeps(
  rtnl: Rtnl,
  startDp: DatapathFactory,
  workers: number,
): DaemonDeps & { plumbing: SystemPlumbing } {
  const plumbing = new SystemPlumbing(rtnl, startDp, workers);
  return {
    net: new SystemNet(rtnl),
    dns64: systemDns64,
    identity: systemIdentity,
    dad: plumbing,
    plumbing,
    clock: realClock,
  };
}

export { openRtnl };

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
