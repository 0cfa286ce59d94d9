/**
 * The kernel fast path's next hop. Without one, bpf_redirect_neigh looks the IPv6 route up for
 * every translated packet (about a tenth of a small packet's cost, bench/README.md); given the
 * router, it goes straight to the neighbour code. The daemon asks the kernel which router the
 * CLAT's own flows take (from the CLAT address, out of the uplink: source-based policy routing
 * applies) and hands over only the plain case, one gateway on the uplink. On-link prefixes, routes
 * through another interface and multipath routes are left to the kernel's per-packet lookup: ECMP
 * spreads flows by their hash, which one fixed next hop would pin to one path.
 *
 * A stale next hop would keep sending packets to a router the kernel no longer uses (one that was
 * removed, replaced or became unreachable), so every IPv6 route change, and every change of a
 * router's neighbour entry on the uplink, clears the entry at once (the kernel's lookup takes
 * over) and the next step resolves it again.
 */
import { formatIPv6 } from '../core/addr/ipv6.js';
import type { Prefix6 } from '../core/addr/prefix.js';
import type { Logger } from './log.js';
import type { NetEvent, NetPort, RouteVia } from './ports.js';

/** A next hop for the fast path, or (no address) the kernel's lookup and why. */
export interface NextHopChoice {
  readonly address?: string;
  readonly why: string;
}

export const NOT_RESOLVED: NextHopChoice = { why: 'next hop not resolved yet' };

/** The choice for the route the kernel gave (`via`) toward the NAT64 prefix. */
export function chooseNextHop(via: RouteVia | undefined, uplink: number): NextHopChoice {
  if (!via) return { why: 'no route to the NAT64 prefix' };
  if (via.multipath) return { why: 'multipath route to the NAT64 prefix (left to the kernel)' };
  if (via.ifindex !== uplink) return { why: `the route to the NAT64 prefix leaves by ifindex ${via.ifindex}` };
  if (via.gateway === undefined) return { why: 'the NAT64 prefix is on-link' };
  return { address: via.gateway, why: 'the gateway of the route to the NAT64 prefix' };
}

/** An address inside `prefix` (its last byte 1: every NAT64 prefix is at most /96). */
export function addressIn(prefix: Prefix6): string {
  const b = prefix.addr.slice();
  b[15] = 1;
  return formatIPv6(b);
}

/** Where the choice goes: the datapath supervisor, which hands it to the running offload. */
export interface NextHopTarget {
  /** Whether there is a fast path to give a next hop to (none with --offload off). */
  readonly fastPath: boolean;
  readonly nextHop: NextHopChoice;
  setNextHop(c: NextHopChoice): void;
}

export class NextHopWatch {
  /** Bumped by each change: a resolution that raced one is not applied (the next step's is). */
  #gen = 0;
  /** The last choice logged: a router's entry going stale and back re-resolves the same one, unsaid. */
  #said = '';

  constructor(
    private readonly net: NetPort,
    private readonly target: NextHopTarget,
    private readonly log: Logger,
  ) {}

  /**
   * Whether event `e` may change the next hop of the uplink `uplink`: any IPv6 route change, a
   * neighbour entry of the uplink's that is a router or the next hop itself, an IPv6 address of
   * the uplink (a source-based rule may match it), the uplink's link, or lost events (a link event
   * of ifindex 0).
   */
  concerns(e: NetEvent, uplink: number | undefined): boolean {
    if (uplink === undefined) return false;
    if (e.type === 'route') return e.family === 6;
    if (e.type === 'neigh') return e.ifindex === uplink && (e.router || e.address === this.target.nextHop.address);
    if (e.type === 'addr') return e.ifindex === uplink && e.family === 6;
    if (e.type === 'link') return e.ifindex === uplink || e.ifindex === 0;
    return false;
  }

  /** Clears the next hop now (a map write; the programs stay attached), before the next step resolves it. */
  stale(why: string): void {
    this.#gen++;
    if (this.target.nextHop.address === undefined) return;
    this.set({ why: `re-resolving after ${why}` });
  }

  /** Asks the kernel for the route of the CLAT's flows to `pref64` and applies the choice. */
  async resolve(uplink: number, clat6: string, pref64: Prefix6): Promise<void> {
    if (!this.target.fastPath) return;
    const gen = this.#gen;
    const via = await this.net.routeVia6(addressIn(pref64), uplink, clat6);
    if (gen !== this.#gen) return;
    const c = chooseNextHop(via, uplink);
    const now = this.target.nextHop;
    if (now.address === c.address && now.why === c.why) return;
    const said = c.address ?? c.why;
    if (said !== this.#said) {
      this.#said = said;
      if (c.address !== undefined) this.log.info('offload', `fast path next hop ${c.address}`);
      else this.log.info('offload', `kernel route lookup: ${c.why}`);
    }
    this.set(c);
  }

  set(c: NextHopChoice): void {
    try {
      this.target.setNextHop(c);
    } catch (e) {
      this.log.warn('offload', `could not set the next hop: ${(e as Error).message}`);
    }
  }
}
