/**
 * Router mode (NAT44, RFC 6877 §6.3): the IPv4 LANs named with --lan reach the IPv4 internet
 * through the CLAT while it translates, and are cut off while it does not. After each step of the
 * reconciler, {@link LanService.reconcile} looks at the LAN interfaces (present, up, their IPv4
 * subnets) and at the CLAT (running: its TUN, address and MTU), and makes the host agree:
 *
 *   serving      the LAN table masquerades LAN sources into the CLAT address and clamps the MSS;
 *                IPv4 forwarding on for the LANs and the TUN (recorded, then given back)
 *   not serving  forwarding given back; the LAN table rejects whatever is still forwarded from a LAN
 *
 * In stateless mode (--lan-mode stateless, lan-map.ts) nothing is masqueraded: each LAN subnet is
 * mapped 1:1 into the routed prefix with an EAM entry, handed to the datapath through `remap`
 * whenever the LANs' subnets change, and the table drops the kernel's copy of what arrives for the
 * mapped prefixes (the datapath reads it, as it reads the CLAT address's).
 *
 * A LAN that cannot be served (missing, down, no IPv4 address) is said once, with the fix; so is
 * each kind of configuration drop the table counts (wrong source subnet, not served), when the
 * first such packet is seen. Counters are read every few seconds and kept across re-installs.
 */
import type { Prefix6 } from '../core/addr/prefix.js';
import type { LogLevel } from './config.js';
import { type LanEam, type LanMode, lanEam, MAX_MAPPED } from './lan-map.js';
import type { Logger } from './log.js';
import type { AddrInfo, Clock, LanPlan, LanPort, LanTraffic, LinkInfo, NetPort } from './ports.js';
import type { LanInterfaceStatus, LanStatus } from './status.js';

/** How often the table's counters are read while LANs are configured. */
export const LAN_READ_MS = 5_000;

/** The CLAT the LANs are served through, while it translates. */
export interface LanClat {
  tun: string;
  clat4: string;
  mtu: number;
}

/** `a.b.c.d` and a prefix length to the subnet `a.b.c.0/len`. */
export function ipv4Subnet(address: string, len: number): string {
  const o = address.split('.').map(Number);
  const n = (((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0) & (len === 0 ? 0 : (~0 << (32 - len)) >>> 0);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
}

/** A LAN interface as seen, and what keeps it from being served (undefined: nothing). */
interface SeenLan {
  name: string;
  link?: LinkInfo;
  subnets: string[];
  problem?: string;
}

function seeLan(name: string, links: LinkInfo[], addrs: AddrInfo[]): SeenLan {
  const link = links.find((l) => l.name === name);
  if (!link)
    return { name, subnets: [], problem: `${name}: no such interface; its LAN is served once it exists (check --lan)` };
  const subnets = [
    ...new Set(
      addrs
        .filter((a) => a.ifindex === link.index && a.family === 4 && a.scope !== 'host' && !a.tentative)
        .map((a) => ipv4Subnet(a.address, a.prefixLen)),
    ),
  ].sort();
  if (subnets.length === 0)
    return {
      name,
      link,
      subnets,
      problem:
        `${name} has no IPv4 address, so its devices have no gateway and their packets are dropped; ` +
        `give it the LAN's gateway address, e.g. ip addr add 192.168.1.1/24 dev ${name}`,
    };
  if (!link.up) return { name, link, subnets, problem: `${name} is down (no carrier or set down)` };
  return { name, link, subnets };
}

/** Why the first drop of each kind is said, and how to fix it. */
function dropAdvice(kind: string, lan: string, subnets: string[], tun: string | undefined, notServed: string): string {
  switch (kind) {
    case 'wrong-source':
      return (
        `dropped IPv4 packets from ${lan} whose source is outside its subnets (${subnets.join(', ') || 'none'}): ` +
        `a device with a static address of another subnet; give it an address in ${subnets[0] ?? "the LAN's subnet"} ` +
        `(or DHCP), or add the other subnet's gateway address to ${lan}`
      );
    case 'elsewhere':
      return (
        `dropped IPv4 packets from ${lan} that the host routes to an interface other than the CLAT's ${tun ?? 'TUN'}: ` +
        'router mode sends LAN traffic only through the CLAT; remove the more specific IPv4 route that catches them'
      );
    case 'not-served':
      return `dropped IPv4 packets from ${lan} while the CLAT does not translate (${notServed}); they pass again once it does`;
    default:
      return `dropped IPv4 packets from ${lan} (${kind}): ${lan} has no IPv4 address; give it the LAN's gateway address`;
  }
}

export class LanService {
  #last: SeenLan[] = [];
  #planKey: string | undefined;
  #serving: LanClat | undefined;
  /** Interfaces (name#ifindex) whose forwarding clatd turned on in this serving period. */
  #forwarded = new Set<string>();
  /** Problems said, by LAN, so each is said once until it changes. */
  #said = new Map<string, string>();
  /** Drop kinds said, by `lan kind`, once per daemon run (per period without serving for not-served). */
  #dropSaid = new Set<string>();
  /** The drop counts of the last read, by `lan kind`: a kind is said when its count grows. */
  #dropSeen = new Map<string, number>();
  #lost: string | undefined;
  /** Counters of tables replaced since start, added to the live ones. */
  #base: Record<string, LanTraffic> = {};
  #now: Record<string, LanTraffic> = {};
  #rules = 0;
  #timer: unknown;
  #closed = false;
  #notServedWhy = 'starting';
  /** Stateless mode: the EAM entries the datapath was last given. */
  #eam: LanEam[] = [];
  #eamKey = '';

  constructor(
    private readonly d: {
      port: LanPort;
      net: NetPort;
      clock: Clock;
      log: Logger;
      /** Logs and counts a live change (kind, message). */
      change: (kind: string, msg: string) => void;
      /** Asks for a step (the table is gone and is to be put back). */
      kick: () => void;
      /** Stateless mode: the routed prefix the LANs are mapped into (--v6-prefix, may change on reload). */
      prefix?: () => Prefix6 | undefined;
      /** Stateless mode: gives the datapath the LANs' EAM entries (at once, while it runs). */
      remap?: (eam: LanEam[]) => Promise<void>;
    },
    readonly lans: string[],
    readonly mode: LanMode = 'nat44',
  ) {}

  /** Stateless mode: the LANs' EAM entries now (none in NAT44 mode). */
  get eam(): readonly LanEam[] {
    return this.#eam;
  }

  /** Whether the LANs are served now. */
  get serving(): boolean {
    return this.#serving !== undefined;
  }

  /** Someone deleted (part of) nft table `table` (undefined: events were lost); the next step checks ours. */
  tableLost(table: string | undefined, by: string): void {
    if (table === undefined || table.endsWith('/lan')) this.#lost = by;
  }

  /**
   * Makes the LAN side agree with the host and the CLAT: `clat` while it translates, else
   * undefined with `why` not (for the log and status).
   */
  async reconcile(clat: LanClat | undefined, why: string): Promise<void> {
    if (this.#closed) return;
    const [links, addrs] = await Promise.all([this.d.net.links(), this.d.net.addresses()]);
    const seen = this.lans.map((n) => seeLan(n, links, addrs));
    this.#sayProblems(seen);
    this.#last = seen;
    if (!clat) this.#notServedWhy = why;
    const plan: LanPlan = { serve: clat, lans: seen.map((s) => ({ name: s.name, subnets: s.subnets })) };
    if (this.mode === 'stateless') {
      await this.#remap(seen);
      plan.mapped = this.#eam.map((e) => e.v6);
    }
    const key = JSON.stringify(plan);
    // Cut off first, before anything that may fail: a LAN must never stay forwarded unserved.
    if (!clat) await this.#forwarding(undefined, seen);
    if (this.#lost !== undefined && this.#planKey !== undefined) {
      const by = this.#lost;
      this.#lost = undefined;
      if ((await this.d.port.read())?.rules !== this.#rules) {
        this.#planKey = undefined;
        this.d.change('lan-nft-restored', `the LAN table was deleted by ${by}; restored`);
      }
    }
    if (key !== this.#planKey) {
      await this.#fold();
      await this.d.port.install(plan);
      this.#planKey = key;
      this.#rules = (await this.d.port.read())?.rules ?? 0;
      this.#startTimer();
    }
    // Forwarding only once the table that masquerades and filters is in.
    if (clat) await this.#forwarding(clat, seen);
  }

  /** Stateless mode: the EAM entries for the LANs' subnets now, given to the datapath when they change. */
  async #remap(seen: SeenLan[]): Promise<void> {
    const prefix = this.d.prefix?.();
    const all = prefix
      ? lanEam(
          prefix,
          seen.flatMap((s) => s.subnets),
        )
      : [];
    const eam = all.slice(0, MAX_MAPPED);
    const key = JSON.stringify(eam);
    if (key === this.#eamKey) return;
    if (all.length > MAX_MAPPED)
      this.d.log.warn(
        'lan',
        `stateless: the LANs have ${all.length} IPv4 subnets, at most ${MAX_MAPPED} are mapped; not mapped ` +
          `(their packets are dropped as v4_src_not_local): ${all
            .slice(MAX_MAPPED)
            .map((e) => e.v4)
            .join(', ')}; give the LAN interfaces fewer, larger subnets`,
      );
    this.#eamKey = key;
    this.#eam = eam;
    this.d.log.info(
      'lan',
      eam.length
        ? `stateless: ${eam.map((e) => `${e.v4} <-> ${e.v6}`).join(', ')} (EAM, RFC 7757)`
        : `stateless: no LAN subnet to map${prefix ? '' : ' (no --v6-prefix)'}`,
    );
    await this.d.remap?.(eam);
  }

  async #forwarding(clat: LanClat | undefined, seen: SeenLan[]): Promise<void> {
    const was = this.#serving;
    if (!clat) {
      if (was) {
        this.#serving = undefined;
        this.#forwarded.clear();
        for (const k of this.#dropSaid) if (k.endsWith(' not-served')) this.#dropSaid.delete(k);
        const back = await this.d.port.release();
        this.d.log.info(
          'lan',
          `LAN ${this.lans.join(', ')} no longer served (${this.#notServedWhy}); IPv4 still forwarded from it is rejected` +
            (back.length ? `; ${back.join('; ')}` : ''),
        );
      }
      return;
    }
    const present = seen.filter((s) => s.link);
    const written = await this.d.port.forward([clat.tun, ...present.map((s) => s.name)]);
    for (const s of present) {
      const id = `${s.name}#${s.link?.index}`;
      if (written.includes(s.name) && this.#forwarded.has(id))
        this.d.change(
          'lan-forwarding-restored',
          `IPv4 forwarding of ${s.name} was turned off from outside; turned on again`,
        );
      this.#forwarded.add(id);
    }
    this.#serving = clat;
    if (!was || was.clat4 !== clat.clat4 || was.tun !== clat.tun) {
      const served = present.filter((s) => !s.problem).map((s) => `${s.name} (${s.subnets.join(', ')})`);
      const how =
        this.mode === 'stateless'
          ? 'stateless, each device mapped into the routed prefix (no NAT44; the kernel fast path carries only the CLAT address, LAN traffic goes through the workers)'
          : `NAT44 into ${clat.clat4}`;
      this.d.log.info(
        'lan',
        `serving LAN ${served.join(', ') || '(none usable yet)'} through ${clat.tun}: ${how}, ` +
          `TCP MSS clamped to ${clat.mtu - 40}`,
      );
    }
  }

  #sayProblems(seen: SeenLan[]): void {
    for (const s of seen) {
      const before = this.#said.get(s.name);
      if (s.problem === before) continue;
      if (s.problem !== undefined) {
        this.#said.set(s.name, s.problem);
        this.d.log.warn('lan', `LAN ${s.problem}`, { lan: s.name });
      } else {
        this.#said.delete(s.name);
        this.d.log.info('lan', `LAN ${s.name} is usable: ${s.subnets.join(', ')}`, { lan: s.name });
      }
    }
  }

  #startTimer(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const tick = () => {
      this.#timer = undefined;
      void this.refresh().finally(() => this.#startTimer());
    };
    this.#timer = this.d.clock.setTimeout(tick, LAN_READ_MS);
  }

  /** Reads the counters; says the first drop of each configuration kind; a missing table asks for a step. */
  async refresh(): Promise<void> {
    if (this.#closed || this.#planKey === undefined) return;
    let r: Awaited<ReturnType<LanPort['read']>>;
    try {
      r = await this.d.port.read();
    } catch (e) {
      this.d.log.debug('lan', `reading the LAN table failed: ${(e as Error).message}`);
      return;
    }
    if (r === undefined) {
      this.#lost ??= 'someone';
      this.d.kick();
      return;
    }
    this.#now = r.traffic;
    for (const s of this.#last) {
      const t = this.#traffic(s.name);
      for (const [kind, n] of Object.entries(t.drops)) {
        const id = `${s.name} ${kind}`;
        const before = this.#dropSeen.get(id) ?? 0;
        this.#dropSeen.set(id, n);
        // A LAN without an address was said when it was seen; not again per packet.
        if (n <= before || this.#dropSaid.has(id) || kind === 'no-address') continue;
        this.#dropSaid.add(id);
        const level: LogLevel = kind === 'not-served' ? 'info' : 'warn';
        this.d.log.log(level, 'lan', dropAdvice(kind, s.name, s.subnets, this.#serving?.tun, this.#notServedWhy), {
          lan: s.name,
          drop: kind,
        });
      }
    }
  }

  /** Adds the live counters to the base before the table (and its counters) is replaced. */
  async #fold(): Promise<void> {
    if (this.#planKey === undefined) return;
    const r = await this.d.port.read().catch(() => undefined);
    for (const [lan, t] of Object.entries(r?.traffic ?? this.#now)) this.#base[lan] = addTraffic(this.#base[lan], t);
    this.#now = {};
  }

  #traffic(lan: string): LanTraffic {
    return addTraffic(this.#base[lan], this.#now[lan]);
  }

  status(): LanStatus {
    const interfaces: LanInterfaceStatus[] = this.lans.map((name) => {
      const s = this.#last.find((x) => x.name === name);
      return {
        name,
        up: s?.link?.up ?? false,
        subnets: s?.subnets ?? [],
        problem: s?.problem ?? null,
        ...this.#traffic(name),
      };
    });
    const stateless = this.mode === 'stateless';
    return {
      mode: this.mode,
      serving: this.#serving !== undefined,
      reason: this.#serving ? null : this.#notServedWhy,
      masqueradeTo: stateless ? null : (this.#serving?.clat4 ?? null),
      ...(stateless
        ? {
            mapped: this.#eam.map((e) => ({ ...e })),
            fastPath:
              'not for LAN traffic: the kernel fast path translates only the CLAT address (one EAM pair); ' +
              'LAN packets pass it untouched to the workers',
          }
        : {}),
      mss: this.#serving ? this.#serving.mtu - 40 : null,
      interfaces,
    };
  }

  /** Gives back forwarding and removes the table; returns what failed, in words. */
  async close(): Promise<string[]> {
    if (this.#closed) return [];
    this.#closed = true;
    if (this.#timer !== undefined) this.d.clock.clearTimeout(this.#timer);
    this.#serving = undefined;
    const failed: string[] = [];
    try {
      const back = await this.d.port.release();
      if (back.length) this.d.log.info('lan', `LAN no longer served (clatd stops); ${back.join('; ')}`);
    } catch (e) {
      failed.push(`giving back IPv4 forwarding failed: ${(e as Error).message}`);
    }
    return [...failed, ...(await this.d.port.close())];
  }
}

function addTraffic(a: LanTraffic | undefined, b: LanTraffic | undefined): LanTraffic {
  const out: LanTraffic = {
    packetsOut: (a?.packetsOut ?? 0) + (b?.packetsOut ?? 0),
    bytesOut: (a?.bytesOut ?? 0) + (b?.bytesOut ?? 0),
    packetsIn: (a?.packetsIn ?? 0) + (b?.packetsIn ?? 0),
    bytesIn: (a?.bytesIn ?? 0) + (b?.bytesIn ?? 0),
    drops: { 'no-address': 0, 'wrong-source': 0, elsewhere: 0, 'not-served': 0 },
  };
  for (const src of [a?.drops, b?.drops])
    for (const [k, n] of Object.entries(src ?? {})) out.drops[k] = (out.drops[k] ?? 0) + n;
  return out;
}
