/**
 * The event side of rtnetlink: a socket joined to the link, address, route and ND user option
 * multicast groups, read whenever the event loop reports it readable, delivering typed events.
 * The kernel sends the RA's PREF64 option (RFC 8781, type 38) here as RTM_NEWNDUSEROPT.
 */
import { constants } from 'node:os';
import {
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNDUSEROPT,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTNLGRP_IPV4_IFADDR,
  RTNLGRP_IPV4_ROUTE,
  RTNLGRP_IPV6_IFADDR,
  RTNLGRP_IPV6_ROUTE,
  RTNLGRP_LINK,
  RTNLGRP_ND_USEROPT,
  RTNLGRP_NEIGH,
} from './consts.js';
import { NetlinkError } from './errors.js';
import {
  type Address,
  decodeAddress,
  decodeLink,
  decodeNdUserOption,
  decodeNeighbour,
  decodeRoute,
  type Link,
  type NdUserOption,
  type Neighbour,
  type Route,
} from './messages.js';
import type { NetlinkTransport } from './socket.js';
import { type NlMessage, splitMessages } from './wire.js';

const { EAGAIN, EINTR, ENOBUFS } = constants.errno;

/** Datagrams read per readable callback. */
const PER_TURN = 64;

/** The groups a CLAT needs: every change that can move its uplink, address, routes or prefix. */
export const MONITOR_GROUPS: readonly number[] = [
  RTNLGRP_LINK,
  RTNLGRP_IPV4_IFADDR,
  RTNLGRP_IPV6_IFADDR,
  RTNLGRP_IPV4_ROUTE,
  RTNLGRP_IPV6_ROUTE,
  RTNLGRP_ND_USEROPT,
  // The uplink's routers: the kernel prefers a reachable one among several default routes.
  RTNLGRP_NEIGH,
];

export type RtnlEvent =
  | { readonly kind: 'link'; readonly removed: boolean; readonly link: Link }
  | { readonly kind: 'address'; readonly removed: boolean; readonly address: Address }
  | { readonly kind: 'route'; readonly removed: boolean; readonly route: Route }
  | { readonly kind: 'nduseropt'; readonly option: NdUserOption }
  | { readonly kind: 'neigh'; readonly removed: boolean; readonly neighbour: Neighbour }
  /** The kernel dropped events (socket buffer full): re-read the state you depend on. */
  | { readonly kind: 'overrun' };

/** Decodes one multicast message; undefined for types clatd does not follow or short messages. */
export function decodeEvent(msg: NlMessage): RtnlEvent | undefined {
  switch (msg.type) {
    case RTM_NEWLINK:
    case RTM_DELLINK: {
      const link = decodeLink(msg.body);
      return link && { kind: 'link', removed: msg.type === RTM_DELLINK, link };
    }
    case RTM_NEWADDR:
    case RTM_DELADDR: {
      const address = decodeAddress(msg.body);
      return address && { kind: 'address', removed: msg.type === RTM_DELADDR, address };
    }
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      const route = decodeRoute(msg.body);
      return route && { kind: 'route', removed: msg.type === RTM_DELROUTE, route };
    }
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH: {
      const neighbour = decodeNeighbour(msg.body);
      return neighbour && { kind: 'neigh', removed: msg.type === RTM_DELNEIGH, neighbour };
    }
    case RTM_NEWNDUSEROPT: {
      const option = decodeNdUserOption(msg.body);
      return option && { kind: 'nduseropt', option };
    }
    default:
      return undefined;
  }
}

/**
 * Starts watching `fd` for readability on the current event loop, calling `onReadable` each time it
 * is readable and `onError` if the watch itself fails; returns a function that stops watching. The
 * native addon's uv_poll provides the real one (open.ts).
 */
export type WatchReadable = (fd: number, onReadable: () => void, onError: (e: Error) => void) => () => void;

/**
 * A netlink socket joined to multicast groups, read whenever the event loop reports it readable,
 * delivering what `decode` makes of each message (none, one, or several: a decoder may gather a
 * transaction's messages into events at its end); `overrun` stands for events the kernel dropped.
 * The rtnetlink monitor below and the nftables one (../nft-events.ts) are this with their decoders.
 */
export class NetlinkMonitor<E> {
  private readonly rx = new Uint8Array(64 * 1024);
  private stopWatch: (() => void) | undefined;
  private closed = false;

  /**
   * `transport` must be non-blocking (recv gives -EAGAIN when drained) and bound to the groups.
   * With `watch` the monitor drains itself whenever the socket is readable and reports a failure
   * to `onError` (after stopping: a level-triggered poll would otherwise spin); without it, the
   * owner calls {@link NetlinkMonitor.drain}. `what` names the monitor in errors.
   */
  constructor(
    private readonly what: string,
    private readonly transport: NetlinkTransport,
    private readonly decode: (msg: NlMessage) => E | readonly E[] | undefined,
    private readonly overrun: E,
    private readonly onEvent: (e: E) => void,
    private readonly onError: (e: Error) => void = (e) => {
      throw e;
    },
    watch?: WatchReadable,
  ) {
    if (watch)
      this.stopWatch = watch(
        transport.fd,
        () => this.drainSafely(),
        (e) => this.fail(e),
      );
  }

  private drainSafely(): void {
    try {
      // The poll is level-triggered: a bounded batch per turn lets timers and other fds in
      // during an event storm, and the rest is read on the next turn.
      this.drain(PER_TURN);
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private fail(e: Error): void {
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.onError(e);
  }

  /**
   * Reads pending datagrams (at most `maxDatagrams`) and delivers their events. Returns how many
   * events it delivered. An exception from the event handler propagates (and, when watched, stops
   * the monitor and goes to `onError`).
   */
  drain(maxDatagrams = Number.POSITIVE_INFINITY): number {
    let count = 0;
    for (let d = 0; d < maxDatagrams && !this.closed; d++) {
      const n = this.transport.recv(this.rx);
      if (n === -EAGAIN) break;
      if (n === -EINTR) continue;
      if (n === -ENOBUFS) {
        this.onEvent(this.overrun);
        count++;
        continue;
      }
      if (n < 0) throw new NetlinkError(`${this.what}: recv`, -n);
      for (const msg of splitMessages(this.rx, n)) {
        const d = this.decode(msg);
        if (d === undefined) continue;
        for (const e of Array.isArray(d) ? (d as readonly E[]) : [d as E]) {
          count++;
          this.onEvent(e);
          if (this.closed) return count; // the handler may close us
        }
      }
    }
    return count;
  }

  /** Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.transport.close();
  }
}

/** Link, address, route and ND user option events from a NETLINK_ROUTE socket. */
export class RtnlMonitor extends NetlinkMonitor<RtnlEvent> {
  constructor(
    transport: NetlinkTransport,
    onEvent: (e: RtnlEvent) => void,
    onError?: (e: Error) => void,
    watch?: WatchReadable,
  ) {
    super('rtnetlink monitor', transport, decodeEvent, { kind: 'overrun' }, onEvent, onError, watch);
  }
}
