/**
 * Opens NETLINK_ROUTE sockets through the native addon and wires them to the message layer: a
 * request socket for {@link Rtnl}, and a monitor socket joined to clatd's groups whose readability
 * is watched by the addon's uv_poll on the calling thread's event loop.
 */
import { K, native } from '../addon.js';
import { pollReadable } from '../poll.js';
import { groupMask } from './consts.js';
import { NetlinkError } from './errors.js';
import { MONITOR_GROUPS, type RtnlEvent, RtnlMonitor, type WatchReadable } from './monitor.js';
import { Rtnl } from './rtnl.js';
import type { NetlinkSocketOptions, NetlinkTransport } from './socket.js';

/** Room for bursts of events (a link going down withdraws many routes at once). */
const MONITOR_RCVBUF = 4 * 1024 * 1024;

/**
 * A non-blocking NETLINK_ROUTE socket bound to the `groups` bit mask (0: requests only), as a
 * {@link NetlinkTransport}. Throws NetlinkError naming the failed call.
 */
export function openRouteSocket(groups = 0): NetlinkTransport {
  return openNetlinkSocket(K.NETLINK_ROUTE, 'NETLINK_ROUTE', groups);
}

/** A non-blocking netlink socket of `protocol` (named `name` in errors) bound to the `groups` bit mask. */
export function openNetlinkSocket(protocol: number, name: string, groups: number): NetlinkTransport {
  const fd = native.socket(K.AF_NETLINK, K.SOCK_RAW, protocol);
  if (fd < 0) throw new NetlinkError(`socket(AF_NETLINK, ${name})`, -fd);
  const rc = native.bindNetlink(fd, groups);
  if (rc < 0) {
    native.close(fd);
    throw new NetlinkError(`bind(${name}, groups 0x${groups.toString(16)})`, -rc);
  }
  // Best effort: the kernel's own text for a refused request ("Nexthop device is not up").
  native.setsockoptInt(fd, K.SOL_NETLINK, K.NETLINK_EXT_ACK, 1);
  if (groups !== 0) {
    // FORCE works for root beyond rmem_max; fall back to the capped option otherwise.
    if (native.setsockoptInt(fd, K.SOL_SOCKET, K.SO_RCVBUFFORCE, MONITOR_RCVBUF) < 0)
      native.setsockoptInt(fd, K.SOL_SOCKET, K.SO_RCVBUF, MONITOR_RCVBUF);
  }
  let open = true;
  return {
    fd,
    send: (buf) => native.send(fd, buf),
    recv: (buf) => native.recv(fd, buf),
    close: () => {
      if (!open) return;
      open = false;
      native.close(fd);
    },
  };
}

/** Watches `fd` with the addon's uv_poll (poll.ts); a poll error stops the watch and is reported once. */
export const watchReadable: WatchReadable = (fd, onReadable, onError) => {
  const p = pollReadable(fd, `rtnetlink monitor fd ${fd}`, onReadable, onError);
  return () => p.stop();
};

/** A ready {@link Rtnl} on its own request socket. Close it when done. */
export function openRtnl(opts: NetlinkSocketOptions = {}): Rtnl {
  return new Rtnl(openRouteSocket(0), opts);
}

/**
 * Subscribes to link, address, route and ND user option events, delivered on this thread's event
 * loop. `onError` gets a failed receive or poll (after which the monitor has stopped: reopen it
 * and re-read state). Close it when done.
 */
export function openRtnlMonitor(onEvent: (e: RtnlEvent) => void, onError: (e: Error) => void): RtnlMonitor {
  return new RtnlMonitor(openRouteSocket(groupMask(MONITOR_GROUPS)), onEvent, onError, watchReadable);
}
