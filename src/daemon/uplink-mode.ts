/**
 * How the CLAT gets an IPv6 address the network will deliver: the choice among the ways below,
 * from what the host looks like and the configuration, with the reason each earlier way did not
 * apply. Pure (no ports), so that `clatd run` and `clatd discover` give the same answer.
 *
 *   1  random in the on-link /64, joined as anycast: the kernel answers neighbor solicitations.
 *      Needs a prefix configured on the uplink that covers the /64 (a SLAAC /64): the kernel
 *      accepts an anycast join only inside one.
 *   2  random in the on-link /64, clatd answers neighbor solicitations itself: the host has only
 *      /128s there (a DHCPv6 lease), or the kernel refused the join anyway.
 *   3  --v6-prefix: random in a prefix routed or delegated to the host. Nobody on the link
 *      solicits it, so nothing is announced and DAD is skipped (there is no one to ask).
 *   4  --v6: the address the network leased to this host for the CLAT. If it is configured on the
 *      uplink, clatd takes it off (a kernel that owns it answers CLAT traffic with resets and
 *      port unreachables) and puts it back on exit; it is announced as in 1 (a prefix on the
 *      uplink covers it) or 2. A duplicate is not redrawn: the network delivers only this one.
 *
 * With neither option, 1 then 2 are tried. --v6-prefix and --v6 choose 3 and 4 (together they
 * are a configuration error). A further way fits as mode 5 with its own `announce`.
 */
import { formatIPv6, matchPrefix6, parseIPv6 } from '../core/addr/ipv6.js';
import { formatPrefix6, type Prefix6, parsePrefix6 } from '../core/addr/prefix.js';
import type { Announce } from './ports.js';
import type { UplinkModeStatus } from './status.js';

export type UplinkModeNumber = 1 | 2 | 3 | 4;

/** Why an earlier way did not apply. */
export interface WhyNot {
  mode: UplinkModeNumber;
  why: string;
}

export interface UplinkMode {
  mode: UplinkModeNumber;
  announce: Announce;
  /** Where the address is drawn (1-3: the /64 or the routed prefix); undefined in mode 4. */
  drawIn?: Prefix6;
  /** Mode 4: the leased address. */
  address?: string;
  /** Mode 4: it is configured on the uplink (or clatd holds it, taken off earlier) and must be taken off. */
  take: boolean;
  /** Whether DAD runs (not in a routed prefix). */
  dad: boolean;
  /** Whether a duplicate gets a new random address (not for a leased one). */
  redraw: boolean;
  /** The way taken, in words. */
  how: string;
  /** Each earlier way that did not apply, in order. */
  whyNot: WhyNot[];
}

/** No way applies now (a configuration that does not fit the uplink): wait, with the reason. */
export interface UplinkModeWait {
  wait: string;
}

export interface ModeInput {
  uplink: string;
  /** The uplink's global IPv6 addresses (not tentative), with their prefix lengths. */
  addresses: { address: string; prefixLen: number }[];
  /** Addresses clatd took off the uplink (mode 4): they count as configured there. */
  held?: { address: string; prefixLen: number }[];
  /** The source address the kernel would use toward the NAT64 prefix (modes 1 and 2). */
  source?: string;
  v6?: string;
  v6Prefix?: Prefix6;
  /** The kernel refused the anycast join in this /64 (as an address, host bits zero), so mode 1 is out there. */
  anycastRefused?: { prefix64: string; reason: string };
}

export const MODE_NAMES: Record<UplinkModeNumber, string> = {
  1: 'on-link /64, anycast',
  2: 'on-link /64, clatd answers neighbor solicitations',
  3: 'routed prefix (--v6-prefix)',
  4: 'leased address (--v6)',
};

const ANYCAST_RULE = 'the kernel accepts an anycast join only inside a prefix configured on the device';

function prefixOf(address: string, len: number): Prefix6 {
  return parsePrefix6(`${address}/${len}`, true);
}

function contains(p: Prefix6, address: string): boolean {
  return matchPrefix6(parseIPv6(address), 0, p.addr, p.len);
}

function overlaps(a: Prefix6, b: Prefix6): boolean {
  const [short, long] = a.len <= b.len ? [a, b] : [b, a];
  return matchPrefix6(long.addr, 0, short.addr, short.len);
}

const list = (xs: { address: string; prefixLen: number }[]) =>
  xs.map((a) => `${a.address}/${a.prefixLen}`).join(', ') || 'none';

/** The way the CLAT gets its IPv6 address now, or why it must wait (see the module comment). */
export function chooseUplinkMode(o: ModeInput): UplinkMode | UplinkModeWait {
  const all = [...o.addresses, ...(o.held ?? []).filter((h) => !o.addresses.some((a) => a.address === h.address))];
  if (o.v6Prefix) return routed(o, o.v6Prefix, all);
  if (o.v6 !== undefined) return leased(o, o.v6, all);
  if (o.source === undefined) return { wait: `uplink ${o.uplink} has no usable source address` };
  const p64 = prefixOf(o.source, 64);
  const text64 = formatPrefix6(p64);
  const covering = o.addresses.filter(
    (a) => a.prefixLen <= 64 && contains(prefixOf(a.address, a.prefixLen), o.source as string),
  );
  const base = { drawIn: p64, take: false, dad: true, redraw: true };
  let why: string | undefined;
  if (o.anycastRefused && o.anycastRefused.prefix64 === formatIPv6(p64.addr)) {
    why = `the kernel refused the anycast join in ${text64}: ${o.anycastRefused.reason}`;
  } else if (covering.length === 0) {
    const inside = o.addresses.filter((a) => contains(p64, a.address));
    why = `${o.uplink} has no prefix covering ${text64}, only ${list(inside)}: ${ANYCAST_RULE}`;
  }
  if (why === undefined) {
    return { ...base, mode: 1, announce: 'anycast', how: `random in ${text64}, joined as anycast`, whyNot: [] };
  }
  return {
    ...base,
    mode: 2,
    announce: 'respond',
    how: `random in ${text64}; clatd answers neighbor solicitations for it`,
    whyNot: [{ mode: 1, why }],
  };
}

function routed(
  o: ModeInput,
  prefix: Prefix6,
  all: { address: string; prefixLen: number }[],
): UplinkMode | UplinkModeWait {
  const text = formatPrefix6(prefix);
  const onLink = all.filter((a) => a.prefixLen < 128 && overlaps(prefixOf(a.address, a.prefixLen), prefix));
  if (onLink.length) {
    return {
      wait:
        `--v6-prefix ${text} overlaps a prefix on ${o.uplink} (${list(onLink)}): routers resolve addresses there by ` +
        'neighbor discovery, which a routed prefix does not answer; leave --v6-prefix out to use the on-link prefix',
    };
  }
  const given = `--v6-prefix ${text} given`;
  return {
    mode: 3,
    announce: 'none',
    drawIn: prefix,
    take: false,
    dad: false,
    redraw: false,
    how: `random in ${text}, routed to this host; no neighbor discovery, no DAD (no other node uses a prefix routed here)`,
    whyNot: [
      { mode: 1, why: `${given}: the address is drawn in the routed prefix, not the on-link /64` },
      { mode: 2, why: `${given}: the address is drawn in the routed prefix, not the on-link /64` },
    ],
  };
}

function leased(o: ModeInput, v6: string, all: { address: string; prefixLen: number }[]): UplinkMode | UplinkModeWait {
  const configured = all.some((a) => a.address === v6);
  const others = all.filter((a) => a.address !== v6);
  // A prefix on the uplink covering the address lets the kernel join it as anycast.
  const covering = others.filter((a) => a.prefixLen < 128 && contains(prefixOf(a.address, a.prefixLen), v6));
  // A /128 lease says its /64 is on-link (as mode 2 assumes), though the host has no prefix there.
  const sameLink = all.some((a) => contains(prefixOf(a.address, 64), v6));
  const given = '--v6 given: the network leased that address to this host; a random one would not be delivered';
  const whyNot: WhyNot[] = [
    { mode: 1, why: given },
    { mode: 2, why: given },
    { mode: 3, why: 'no --v6-prefix' },
  ];
  const base = { mode: 4 as const, address: v6, take: configured, dad: true, redraw: false, whyNot };
  const off = configured ? `; taken off ${o.uplink} while clatd runs` : '';
  const refused = o.anycastRefused?.prefix64 === formatIPv6(prefixOf(v6, 64).addr) ? o.anycastRefused : undefined;
  if (covering.length && refused) {
    return {
      ...base,
      announce: 'respond',
      how: `leased ${v6}; clatd answers neighbor solicitations for it (the kernel refused the anycast join: ${refused.reason})${off}`,
    };
  }
  if (covering.length) {
    return { ...base, announce: 'anycast', how: `leased ${v6}, joined as anycast${off}` };
  }
  if (configured || sameLink) {
    return { ...base, announce: 'respond', how: `leased ${v6}; clatd answers neighbor solicitations for it${off}` };
  }
  return {
    wait:
      `--v6 ${v6} is outside every prefix of ${o.uplink} (${list(all)}), so the network would not deliver it here; ` +
      'give an address the network leased to this host, or --v6-prefix for a prefix routed to it',
  };
}

/** What makes two choices the same way to the same address source (a change means a new address). */
export function modeKey(m: UplinkMode): string {
  return `${m.mode} ${m.announce} ${m.drawIn ? formatPrefix6(m.drawIn) : ''} ${m.address ?? ''}`;
}

/** The uplink's addresses as one string, to tell whether they changed since a refusal. */
export function addressKey(addrs: { address: string; prefixLen: number }[]): string {
  return addrs
    .map((a) => `${a.address}/${a.prefixLen}`)
    .sort()
    .join(' ');
}

/** The address mode as `clatd status` reports it. */
export function modeStatus(m: UplinkMode | undefined): UplinkModeStatus | null {
  if (!m) return null;
  return {
    mode: m.mode,
    announce: m.announce,
    name: MODE_NAMES[m.mode],
    how: m.how,
    why: m.whyNot.map((w) => ({ ...w })),
  };
}

export function isWait(m: UplinkMode | UplinkModeWait): m is UplinkModeWait {
  return 'wait' in m;
}

/** One line: the way taken and why each earlier one did not apply. */
export function describeMode(m: UplinkMode): string {
  const why = m.whyNot.map((w) => `not ${w.mode}: ${w.why}`).join('; ');
  return `address mode ${m.mode} (${MODE_NAMES[m.mode]}): ${m.how}${why ? `; ${why}` : ''}`;
}

/**
 * The daemon's memory around the choice: the mode last chosen (for status) and a refused anycast
 * join, which holds while the uplink's addresses stay as they were (a new prefix may let it pass).
 */
export class UplinkModes {
  /** The mode last chosen; undefined while none applies. */
  last?: UplinkMode;
  #refused?: { prefix64: string; reason: string; addresses: string };
  #addresses = '';

  choose(o: Omit<ModeInput, 'anycastRefused'>): UplinkMode | UplinkModeWait {
    this.#addresses = addressKey(o.addresses);
    const refused = this.#refused?.addresses === this.#addresses ? this.#refused : undefined;
    const m = chooseUplinkMode({ ...o, anycastRefused: refused });
    this.last = isWait(m) ? undefined : m;
    return m;
  }

  /** The kernel refused the anycast join for `address` with the uplink's addresses of the last choice. */
  refused(address: string, reason: string): void {
    this.#refused = { prefix64: formatIPv6(prefixOf(address, 64).addr), reason, addresses: this.#addresses };
  }
}
