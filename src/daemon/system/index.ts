/**
 * The daemon's ports (ports.ts) over the real system layer, one module per side:
 *
 *   net.ts            NetPort: rtnetlink links, addresses, routes, events; PREF64 from RAs; nft deletions
 *   uplink.ts         the uplink side: anycast raw socket, nft drop rule, proxy_delay
 *   ipv4.ts           the IPv4 side: TUN, /32, MTU, default route
 *   dad-wire.ts       DAD on the wire, on the clock port
 *   host-settings.ts  host-wide settings recorded before they change, given back on exit and after a crash
 *   taken-addresses.ts  a leased address taken off the uplink, recorded first, put back the same way
 *   plumbing.ts       PlumbingPort: builds the sides, starts the datapath, cleans up after a crash
 */
import { openRtnl, type Rtnl } from '../../sys/rtnetlink/index.js';
import { type Clock, type DaemonDeps, realClock } from '../ports.js';
import { WireDad } from './dad-wire.js';
import { SystemNet, systemDns64, systemIdentity } from './net.js';
import { type DatapathFactory, SystemPlumbing } from './plumbing.js';

export { WireDad } from './dad-wire.js';
export { HostSettings } from './host-settings.js';
export { SystemIpv4, TunInUseError } from './ipv4.js';
export { SystemNet, solicitRouters, systemDns64, systemIdentity, toNetEvents, toNftNetEvent } from './net.js';
export { type DatapathFactory, SystemPlumbing } from './plumbing.js';
export { TakenAddresses } from './taken-addresses.js';
export { SystemUplink } from './uplink.js';
export { openRtnl };

export function systemDeps(
  rtnl: Rtnl,
  startDp: DatapathFactory,
  workers: number,
  stateDir: string,
  clock: Clock = realClock,
): DaemonDeps & { plumbing: SystemPlumbing } {
  return {
    net: new SystemNet(rtnl),
    dns64: systemDns64,
    identity: systemIdentity,
    dad: new WireDad(rtnl, clock),
    plumbing: new SystemPlumbing(rtnl, startDp, workers, stateDir),
    clock,
  };
}
