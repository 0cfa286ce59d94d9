/**
 * The metric of the CLAT's IPv4 default route, when --route-metric does not give one.
 *
 * With one clatd per uplink (clatd@eth0 and clatd@wlan0), each adds an IPv4 default route on its
 * own TUN, and IPv4 should leave the way the host sends IPv6. So each instance takes
 * {@link BASE_METRIC} plus its uplink's place in the order in which the kernel prefers the IPv6
 * default routes: lowest metric first, then the higher router preference (RFC 4191), then the
 * kernel's own order (that of its dump, the order in which it tries routes of equal metric).
 * Every instance reads the same routes, so their metrics differ and keep the IPv6 order; an
 * uplink without an IPv6 default route comes after all that have one. The daemon follows the
 * order at each step, so when an uplink goes (its IPv6 default route with it) IPv4 moves on.
 *
 * A place rather than the IPv6 metric itself: uplinks whose IPv6 default routes have equal
 * metrics (1024 for every route from a Router Advertisement, the kernel's default) would get equal
 * IPv4 metrics, and then the order of IPv4 would be the order the instances started in. The base
 * keeps the CLAT behind native IPv4 routes (DHCP clients use 0 to 1024), as before.
 */

/** An IPv6 default route as the kernel lists it, in the order of its dump. */
export interface DefaultRoute6 {
  ifindex: number;
  metric: number;
  /** Router preference (RFC 4191) of a route learnt from a Router Advertisement. */
  pref: 'high' | 'medium' | 'low';
}

/** The IPv4 default route metric of the first uplink in the IPv6 order (and of a single clatd). */
export const BASE_METRIC = 2048;

const PREF_RANK = { high: 0, medium: 1, low: 2 } as const;

/** The uplinks (ifindexes) in the order the kernel prefers their IPv6 default routes, each once. */
export function ipv6Order(routes: readonly DefaultRoute6[]): number[] {
  const sorted = routes
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.metric - b.r.metric || PREF_RANK[a.r.pref] - PREF_RANK[b.r.pref] || a.i - b.i);
  const out: number[] = [];
  for (const { r } of sorted) if (!out.includes(r.ifindex)) out.push(r.ifindex);
  return out;
}

/** The uplink's place in {@link ipv6Order} (0 first); after all of them when it has no IPv6 default route. */
export function uplinkPlace(routes: readonly DefaultRoute6[], ifindex: number): number {
  const order = ipv6Order(routes);
  const i = order.indexOf(ifindex);
  return i < 0 ? order.length : i;
}

/** The IPv4 default route metric for the uplink: `explicit` (--route-metric) when given. */
export function ipv4RouteMetric(routes: readonly DefaultRoute6[], ifindex: number, explicit?: number): number {
  return explicit ?? BASE_METRIC + uplinkPlace(routes, ifindex);
}
