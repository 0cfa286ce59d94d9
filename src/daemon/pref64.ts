/**
 * Where the NAT64 prefix comes from, in order: --pref64, the PREF64 option of Router
 * Advertisements (RFC 8781), RFC 7050 (the AAAA answers for ipv4only.arpa through DNS64).
 *
 * PREF64s are kept per router, as a host keeps other RA information: each router's latest prefix
 * with its own lifetime, so one router's withdrawal (lifetime 0) or expiry touches only what that
 * router said. Prefixes that cannot be a NAT64 prefix (multicast, link-local, ::/96, IPv4-mapped,
 * the uplink's own on-link prefix) are refused and named. A chosen prefix stays while its router
 * keeps it; when that router changes it, the change waits out a hold time that doubles with each
 * recent change (damping), so a flapping router cannot make clatd draw addresses all the time.
 *
 * When neither a flag nor an RA gives a prefix, the tracker sends a Router Solicitation, gives RAs
 * a head start, then asks DNS64 in the background; every answer or timer calls `kick`.
 */
import { formatPrefix6, type Prefix6 } from '../core/addr/prefix.js';
import { pref64Problem } from '../core/nd/pref64.js';
import type { Logger } from './log.js';
import type { Clock, Dns64Port, LinkInfo } from './ports.js';
import type { PrefixSource, RouterPref64 } from './status.js';

/** How long a Router Advertisement gets to bring a PREF64 before RFC 7050 is asked. */
const RA_HEAD_START_MS = 1_500;
const DNS64_RETRY_MS = 10_000;
const DNS64_REFRESH_MS = 600_000;
/** A router's change of its prefix takes effect after this, doubled for each change in the window. */
const HOLD_BASE_MS = 5_000;
const HOLD_MAX_MS = 300_000;
const HOLD_WINDOW_MS = 600_000;
/** Refused prefixes kept for status. */
const REFUSED_KEPT = 8;
/**
 * Routers whose PREF64 is kept at once. Any on-link node can send RAs from as many link-local
 * sources as it likes, each with a lifetime of up to 18 hours: without a bound the records (and
 * the work per RA, the status document, a log line per router) grow with the forger's sources.
 * No real link has this many routers announcing NAT64 prefixes; when it is full, a new router is
 * ignored until one on record expires or withdraws, as `choose` would prefer the older ones anyway.
 */
export const MAX_RA_ROUTERS = 16;

export interface PrefixChoice {
  prefix: Prefix6;
  source: PrefixSource;
  /** The router whose RA gave it (source 'ra'). */
  router?: string;
}

interface RaEntry {
  ifindex: number;
  router: string;
  prefix: Prefix6;
  expiresAt: number;
  /** When this router first gave this prefix. */
  since: number;
}

export interface Pref64TrackerOptions {
  clock: Clock;
  dns64: Dns64Port;
  log: Logger;
  /** Sends a Router Solicitation on the link (optional: without it clatd waits for periodic RAs). */
  solicit?: (ifindex: number) => void;
  /** Called whenever what {@link Pref64Tracker.choose} would answer may have changed. */
  kick: () => void;
}

export class Pref64Tracker {
  readonly #o: Pref64TrackerOptions;
  #flag: Prefix6 | undefined;
  #dns64Servers: string[] = [];
  /** RA PREF64s by `ifindex router`. */
  readonly #ra = new Map<string, RaEntry>();
  #chosen: (PrefixChoice & { at: number }) | undefined;
  #switches: number[] = [];
  readonly #refused: { router: string; prefix: string; why: string }[] = [];
  /** The warning that the router records are full was given (again once they have had room). */
  #fullSaid = false;
  #expiryTimer: unknown;
  #wakeTimer: unknown;
  #dns64?: { prefix: Prefix6; at: number };
  #dns64Inflight = false;
  #dns64LastTry = Number.NEGATIVE_INFINITY;
  /** When a Router Solicitation was sent, by ifindex. */
  readonly #solicited = new Map<number, number>();
  #closed = false;

  constructor(o: Pref64TrackerOptions, cfg: { pref64?: Prefix6; dns64Servers: string[] }) {
    this.#o = o;
    this.configure(cfg);
  }

  configure(cfg: { pref64?: Prefix6; dns64Servers: string[] }): void {
    this.#flag = cfg.pref64;
    this.#dns64Servers = cfg.dns64Servers;
  }

  /** A PREF64 option from a Router Advertisement of `router` on `ifindex`; lifetime 0 withdraws it. */
  onRa(e: { ifindex: number; router?: string; prefix: Prefix6; lifetime: number }): void {
    const { clock, log } = this.#o;
    const router = e.router ?? 'an unknown router';
    const key = `${e.ifindex} ${router}`;
    const text = formatPrefix6(e.prefix);
    const old = this.#ra.get(key);
    if (e.lifetime === 0) {
      if (old && formatPrefix6(old.prefix) === text) {
        this.#ra.delete(key);
        log.info('pref64', `${router} withdrew PREF64 ${text}`);
      } else {
        log.debug('pref64', `${router} withdrew PREF64 ${text}, which it had not given; ignored`);
      }
      this.#o.kick();
      return;
    }
    const problem = pref64Problem(e.prefix);
    if (problem !== null) {
      this.#refuse(router, text, problem);
      return;
    }
    const now = clock.now();
    if (old === undefined && !this.#room(now)) {
      if (!this.#fullSaid) {
        this.#fullSaid = true;
        log.warn(
          'pref64',
          `PREF64s of ${MAX_RA_ROUTERS} routers on record: ${text} from ${router} ignored, and any other new router's ` +
            'until one expires or withdraws (forged Router Advertisements?)',
        );
      }
      return;
    }
    const same = old !== undefined && formatPrefix6(old.prefix) === text;
    this.#ra.set(key, {
      ifindex: e.ifindex,
      router,
      prefix: e.prefix,
      expiresAt: now + e.lifetime * 1000,
      since: same ? old.since : now,
    });
    if (!same) log.info('pref64', `${router} gives PREF64 ${text}`, { ifindex: e.ifindex, lifetime: e.lifetime });
    this.#armExpiry();
    this.#o.kick();
  }

  /** Whether a new router's PREF64 may be kept: expired records make room first. */
  #room(now: number): boolean {
    if (this.#ra.size >= MAX_RA_ROUTERS) {
      for (const [k, v] of this.#ra) if (v.expiresAt <= now) this.#ra.delete(k);
    }
    if (this.#ra.size < MAX_RA_ROUTERS) this.#fullSaid = false;
    return this.#ra.size < MAX_RA_ROUTERS;
  }

  #refuse(router: string, prefix: string, why: string): void {
    const known = this.#refused.some((r) => r.router === router && r.prefix === prefix);
    if (!known) {
      this.#o.log.warn('pref64', `refused PREF64 ${prefix} from ${router}: ${why} cannot be a NAT64 prefix`);
      this.#refused.push({ router, prefix, why });
      if (this.#refused.length > REFUSED_KEPT) this.#refused.shift();
    }
  }

  /** One timer at the earliest RA PREF64 expiry. */
  #armExpiry(): void {
    const { clock, log } = this.#o;
    if (this.#expiryTimer !== undefined) clock.clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    if (this.#closed) return;
    let next = Number.POSITIVE_INFINITY;
    for (const v of this.#ra.values()) next = Math.min(next, v.expiresAt);
    if (next === Number.POSITIVE_INFINITY) return;
    this.#expiryTimer = clock.setTimeout(
      () => {
        this.#expiryTimer = undefined;
        const now = clock.now();
        for (const [k, v] of this.#ra) {
          if (v.expiresAt <= now) {
            this.#ra.delete(k);
            log.info('pref64', `PREF64 ${formatPrefix6(v.prefix)} from ${v.router} expired`);
          }
        }
        this.#armExpiry();
        this.#o.kick();
      },
      Math.max(0, next - clock.now()),
    );
  }

  #wakeIn(ms: number): void {
    const { clock } = this.#o;
    if (this.#closed) return;
    if (this.#wakeTimer !== undefined) clock.clearTimeout(this.#wakeTimer);
    this.#wakeTimer = clock.setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#o.kick();
    }, ms);
  }

  #hold(now: number): number {
    this.#switches = this.#switches.filter((t) => now - t < HOLD_WINDOW_MS);
    return Math.min(HOLD_BASE_MS * 2 ** this.#switches.length, HOLD_MAX_MS);
  }

  /**
   * The NAT64 prefix to use on `uplink` now, or undefined while there is none. `onLink` are the
   * uplink's on-link prefixes, which a PREF64 may not overlap. Without a flag or an RA prefix it
   * solicits RAs and starts RFC 7050 discovery; their answers call `kick`.
   */
  choose(uplink: LinkInfo, onLink: readonly Prefix6[] = []): PrefixChoice | undefined {
    if (this.#flag) return this.#take({ prefix: this.#flag, source: 'flag' });
    const now = this.#o.clock.now();
    const offers = [...this.#ra.values()].filter((e) => {
      if (e.ifindex !== uplink.index || e.expiresAt <= now) return false;
      const problem = pref64Problem(e.prefix, onLink);
      if (problem === null) return true;
      this.#refuse(e.router, formatPrefix6(e.prefix), problem);
      return false;
    });
    const chosen = this.#chosen;
    if (chosen?.source === 'ra') {
      const mine = offers.find((e) => e.router === chosen.router);
      if (mine && formatPrefix6(mine.prefix) === formatPrefix6(chosen.prefix)) return chosen;
      if (mine) {
        // The router changed its prefix: damped, so a router that flaps is followed slowly.
        const due = chosen.at + this.#hold(now);
        if (now < due) {
          this.#wakeIn(due - now);
          return chosen;
        }
        return this.#take({ prefix: mine.prefix, source: 'ra', router: mine.router });
      }
    }
    // The longest-standing offer: a router that just appeared does not displace an older one.
    const best = offers.sort((a, b) => a.since - b.since)[0];
    if (best) return this.#take({ prefix: best.prefix, source: 'ra', router: best.router });
    return this.#fromDns64(uplink, onLink, now);
  }

  #take(c: PrefixChoice): PrefixChoice {
    const now = this.#o.clock.now();
    const cur = this.#chosen;
    if (
      cur &&
      cur.source === c.source &&
      cur.router === c.router &&
      formatPrefix6(cur.prefix) === formatPrefix6(c.prefix)
    )
      return cur;
    if (cur) this.#switches.push(now);
    this.#chosen = { ...c, at: now };
    return this.#chosen;
  }

  #fromDns64(uplink: LinkInfo, onLink: readonly Prefix6[], now: number): PrefixChoice | undefined {
    if (this.#dns64) {
      if (now - this.#dns64.at > DNS64_REFRESH_MS) this.#queryDns64();
      const problem = pref64Problem(this.#dns64.prefix, onLink);
      if (problem === null) return this.#take({ prefix: this.#dns64.prefix, source: 'dns64' });
      this.#refuse('DNS64', formatPrefix6(this.#dns64.prefix), problem);
    }
    this.#chosen = undefined;
    // RAs are preferred (as Android does): solicit one, and give it a head start over DNS64.
    let asked = this.#solicited.get(uplink.index);
    if (asked === undefined) {
      asked = now;
      this.#solicited.set(uplink.index, now);
      this.#o.solicit?.(uplink.index);
      this.#o.log.debug('pref64', `sent a Router Solicitation on ${uplink.name}`);
    }
    const wait = asked + RA_HEAD_START_MS - now;
    if (wait > 0) this.#wakeIn(wait);
    else this.#queryDns64();
    return undefined;
  }

  /** RFC 7050 discovery in the background; its answer kicks a new step. */
  #queryDns64(): void {
    const { clock, dns64, log } = this.#o;
    const now = clock.now();
    if (this.#dns64Inflight || now - this.#dns64LastTry < DNS64_RETRY_MS) return;
    this.#dns64Inflight = true;
    this.#dns64LastTry = now;
    const servers = this.#dns64Servers;
    dns64.discover(servers).then(
      (found) => {
        this.#dns64Inflight = false;
        if (this.#closed) return;
        const p = found.find((x) => {
          const problem = pref64Problem(x);
          if (problem !== null) this.#refuse('DNS64', formatPrefix6(x), problem);
          return problem === null;
        });
        if (p) {
          if (!this.#dns64 || formatPrefix6(p) !== formatPrefix6(this.#dns64.prefix)) {
            log.info('dns64', `RFC 7050: ipv4only.arpa gives NAT64 prefix ${formatPrefix6(p)}`, {
              servers: servers.join(',') || 'system',
            });
          }
          this.#dns64 = { prefix: p, at: clock.now() };
        } else {
          log.debug('dns64', 'RFC 7050: no NAT64 prefix in the AAAA answers for ipv4only.arpa');
          this.#wakeIn(DNS64_RETRY_MS);
        }
        this.#o.kick();
      },
      (e: Error) => {
        this.#dns64Inflight = false;
        if (this.#closed) return;
        log.debug('dns64', `RFC 7050 discovery failed: ${e.message}`);
        this.#wakeIn(DNS64_RETRY_MS);
      },
    );
  }

  /** Every router's PREF64 on record, the chosen one marked, and the prefixes refused lately. */
  describe(): { routers: RouterPref64[]; refused: { router: string; prefix: string; why: string }[] } {
    const now = this.#o.clock.now();
    const c = this.#chosen;
    const routers = [...this.#ra.values()].map((e) => ({
      router: e.router,
      ifindex: e.ifindex,
      prefix: formatPrefix6(e.prefix),
      expiresInSec: Math.max(0, Math.round((e.expiresAt - now) / 1000)),
      chosen: c?.source === 'ra' && c.router === e.router,
    }));
    return { routers, refused: this.#refused.map((r) => ({ ...r })) };
  }

  close(): void {
    this.#closed = true;
    const { clock } = this.#o;
    for (const t of [this.#expiryTimer, this.#wakeTimer]) if (t !== undefined) clock.clearTimeout(t);
    this.#expiryTimer = undefined;
    this.#wakeTimer = undefined;
  }
}
