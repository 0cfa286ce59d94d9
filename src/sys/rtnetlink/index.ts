/** rtnetlink for clatd: links, addresses, routes and events over NETLINK_ROUTE, in TypeScript. */
export * from './consts.js';
export { errnoName, NetlinkError } from './errors.js';
export type {
  Address,
  AddressSpec,
  Family,
  Link,
  LinkChange,
  NdUserOption,
  NextHop,
  Route,
  RouteSpec,
} from './messages.js';
export { decodeAddress, decodeLink, decodeNdUserOption, decodeRoute, scopeName } from './messages.js';
export {
  decodeEvent,
  MONITOR_GROUPS,
  NetlinkMonitor,
  type RtnlEvent,
  RtnlMonitor,
  type WatchReadable,
} from './monitor.js';
export { openNetlinkSocket, openRouteSocket, openRtnl, openRtnlMonitor, watchReadable } from './open.js';
export type { AddAddressOptions, AddressFilter, Dev, RouteFilter, RouteOptions } from './rtnl.js';
export { Rtnl } from './rtnl.js';
export { NetlinkSocket, type NetlinkSocketOptions, type NetlinkTransport } from './socket.js';
