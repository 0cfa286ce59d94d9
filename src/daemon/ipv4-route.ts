/**
 * Keeps the CLAT's IPv4 default route where it belongs: at the metric of the uplink's place in the
 * IPv6 default route order (route-order.ts; --route-metric wins), followed at each step, and
 * withdrawn while translation is paused, so that IPv4 moves to another uplink's CLAT while this
 * uplink is down and comes back when it is up again — no restart, no black hole.
 */
import type { Ipv4Side, LinkInfo, NetPort } from './ports.js';
import { ipv4RouteMetric } from './route-order.js';

export class Ipv4Route {
  constructor(
    private readonly net: NetPort,
    /** Logs a live change (kind, message) and counts it. */
    private readonly change: (kind: string, msg: string) => void,
  ) {}

  /** The metric the uplink's IPv4 default route should have now. */
  async want(uplink: LinkInfo, explicit: number | undefined): Promise<number> {
    if (explicit !== undefined) return explicit;
    return ipv4RouteMetric(await this.net.defaultRoutes6(), uplink.index);
  }

  /** Puts the route at the metric it should have now (back, after a pause). */
  async follow(side: Ipv4Side, uplink: LinkInfo, explicit: number | undefined): Promise<void> {
    const metric = await this.want(uplink, explicit);
    const old = side.metric;
    if (metric === old) return;
    await side.setRoute(metric);
    if (old === undefined) {
      this.change('ipv4-route-restored', `IPv4 default route via ${side.name} back, metric ${metric}`);
    } else {
      const why = explicit === undefined ? `: ${uplink.name} moved in the IPv6 default route order` : '';
      this.change('ipv4-route-metric', `IPv4 default route via ${side.name}: metric ${old} -> ${metric}${why}`);
    }
  }

  /** Withdraws the route while translation is paused (IPv4 goes to another uplink's CLAT, if any). */
  async withdraw(side: Ipv4Side | undefined): Promise<void> {
    if (side?.metric === undefined) return;
    await side.setRoute(undefined);
    this.change('ipv4-route-withdrawn', `IPv4 default route via ${side.name} withdrawn while translation is paused`);
  }
}
