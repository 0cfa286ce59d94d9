/**
 * The daemon's PlumbingPort over the system layer: opens the uplink side and the IPv4 side, starts
 * the datapath, reads the DAD sysctls, and removes what a crashed run left behind (its nft table,
 * a classic tc filter of the kernel fast path and its clsact qdisc, host settings it had changed,
 * leased addresses it had taken off the uplink, address mode 5's veth pair; in router mode its
 * LAN table and the IPv4 forwarding it turned on).
 */
import type { Prefix6 } from '../../core/addr/prefix.js';
import { OFFLOAD_TC_PRIO } from '../../offload/abi.js';
import { clatTableName, findClatTables, removeClatFilter } from '../../sys/nft.js';
import type { Rtnl } from '../../sys/rtnetlink/index.js';
import { ipv6Conf } from '../../sys/sysctl.js';
import type {
  Announce,
  DatapathHandle,
  Ipv4Side,
  LinkInfo,
  PlumbingPort,
  StartDatapathOptions,
  TakenAddress,
  UplinkSide,
  XlatParams,
} from '../ports.js';
import { tunName } from '../ports.js';
import { HostSettings } from './host-settings.js';
import { SystemIpv4, TunInUseError } from './ipv4.js';
import { removeLanLeftovers } from './lan.js';
import { removeSharedPair, sharedPairNames } from './shared.js';
import { TakenAddresses } from './taken-addresses.js';
import { SystemUplink } from './uplink.js';

export type DatapathFactory = (o: {
  uplink: SystemUplink;
  ipv4: SystemIpv4;
  params: XlatParams;
  workers: number;
  paused?: boolean;
  onFailure: (why: string) => void;
}) => Promise<DatapathHandle>;

export class SystemPlumbing implements PlumbingPort {
  constructor(
    readonly rtnl: Rtnl,
    private readonly startDp: DatapathFactory,
    private readonly workers: number,
    /** Where host settings are recorded (the control socket's folder). */
    readonly stateDir: string,
  ) {}

  async openUplink(uplink: LinkInfo, clat6: string, _pref64: Prefix6, announce: Announce): Promise<UplinkSide> {
    const link = this.rtnl.link(uplink.index);
    return new SystemUplink(
      { ...uplink, linkType: link.linkType, lladdr: link.lladdr },
      clat6,
      new HostSettings(this.stateDir, uplink.name),
      announce,
      this.rtnl,
    );
  }

  async takeAddress(uplink: LinkInfo, address: string): Promise<TakenAddress | undefined> {
    const record = new TakenAddresses(this.stateDir, uplink.name);
    const e = record.take(this.rtnl, address);
    if (!e) return undefined;
    return {
      address,
      prefixLen: e.prefixLen,
      giveBack: async () => new TakenAddresses(this.stateDir, uplink.name).giveBack(this.rtnl, address),
    };
  }

  async createIpv4Side(o: { name: string; v4: string; mtu: number; metric: number }): Promise<Ipv4Side> {
    return new SystemIpv4(this.rtnl, o.name, o.v4, o.mtu, o.metric);
  }

  async startDatapath(o: StartDatapathOptions): Promise<DatapathHandle> {
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
   * What an earlier clatd on `uplink` may have left after a crash: the nft table clatd-<uplink>,
   * the kernel fast path's classic tc filter, host settings it had changed (its TUN and the routes
   * on it went with its process). Without --interface, the uplink is that of the IPv6 default
   * route. Throws TunInUseError when the TUN exists: a running clatd holds it.
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
    // by a running process, most likely another clatd on this uplink: its TUN, its nftables table
    // and its host settings are not leftovers.
    if (this.rtnl.findLink(name)) throw new TunInUseError(name);
    const table = clatTableName(uplink);
    // Address mode 5's veth pair is not tied to the process either. The table is ip6; an inet
    // one of the same name is an earlier version's (removeClatFilter takes both).
    const pair = removeSharedPair(this.rtnl, uplink);
    if (pair) removed.push(`veth pair ${sharedPairNames(uplink).tx}`);
    const tables = findClatTables().filter((t) => t.name === table);
    if (tables.length > 0) {
      removeClatFilter(uplink);
      removed.push(...tables.map((t) => `nft table ${t.family} ${t.name}`));
    }
    // The kernel fast path's classic tc filter (kernels without tcx) outlives a crash.
    if (this.rtnl.findLink(uplink) && this.rtnl.deleteBpfFilter(uplink, 'ingress', OFFLOAD_TC_PRIO)) {
      removed.push(`tc filter on ${uplink} ingress, priority ${OFFLOAD_TC_PRIO}`);
      if (this.rtnl.deleteClsactIfEmpty(uplink)) removed.push(`clsact qdisc on ${uplink}`);
    }
    removed.push(...new HostSettings(this.stateDir, uplink).restore());
    removed.push(...new TakenAddresses(this.stateDir, uplink).giveBack(this.rtnl));
    // Router mode's LAN table and forwarding settings (system/lan.ts).
    removed.push(...removeLanLeftovers(uplink, this.stateDir));
    return removed;
  }
}
