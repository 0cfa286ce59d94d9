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
 *   5  shared (--v6 shared, or the last resort): the host's own address. The CLAT's address is
 *      private to the host (random in a ULA /64); the kernel's NAT rewrites it to the host's
 *      address on the way out and back on the way in, and its connection tracking keeps CLAT
 *      flows apart from the host's own (system/shared.ts, docs/architecture.md "Address mode 5").
 *
 * With neither option, 1 then 2 are tried, and 5 once nothing came back to mode 2's random
 * address (the network delivers only addresses it assigned, as in clouds). --v6-prefix and --v6
 * choose 3 and 4 (together they are a configuration error); `--v6 shared` chooses 5.
 */
import { formatIPv6, matchPrefix6, parseIPv6 } from '../core/addr/ipv6.js';
import { formatPrefix6, type Prefix6, parsePrefix6 } from '../core/addr/prefix.js';
import type { Announce } from './ports.js';
import type { UplinkModeStatus } from './status.js';

export type UplinkModeNumber = 1 | 2 | 3 | 4 | 5;

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
  /** Mode 5: the host's own address the CLAT's flows leave from (drawIn is then the private /64). */
  shared?: string;
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
  /** Nothing came back to mode 2's random address in this /64 (as for anycastRefused): mode 5 then. */
  undelivered?: { prefix64: string; reason: string };
  /** Mode 5: the private /64 the CLAT's own address is drawn in (a random ULA, one per run). */
  privatePrefix?: Prefix6;
}

export const MODE_NAMES: Record<UplinkModeNumber, string> = {
  1: 'on-link /64, anycast',
  2: 'on-link /64, clatd answers neighbor solicitations',
  3: 'routed prefix (--v6-prefix)',
  4: 'leased address (--v6)',
  5: "the host's own address, shared (NAT66)",
};

/** `--v6 shared`: mode 5 asked for. */
export const V6_SHARED = 'shared';

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
  if (o.v6 === V6_SHARED) {
    const given = '--v6 shared given';
    return shared(
      o,
      [1, 2, 3, 4].map((mode) => ({ mode: mode as UplinkModeNumber, why: given })),
    );
  }
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
  const lost = o.undelivered?.prefix64 === formatIPv6(p64.addr) ? o.undelivered : undefined;
  if (lost) {
    return shared(o, [
      { mode: 1, why },
      { mode: 2, why: `a random address in ${text64} was not delivered: ${lost.reason}` },
      { mode: 3, why: 'no --v6-prefix' },
      { mode: 4, why: 'no --v6' },
    ]);
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

/**
 * Mode 5: the host's own address (the source it uses toward the NAT64 prefix), with the CLAT's
 * private address drawn in `privatePrefix`. No DAD: nobody else can hold a random ULA on this host.
 */
function shared(o: ModeInput, whyNot: WhyNot[]): UplinkMode | UplinkModeWait {
  const host = o.source;
  if (host === undefined || o.addresses.length === 0) {
    return { wait: `--v6 shared: ${o.uplink} has no global IPv6 address yet to share` };
  }
  if (!o.privatePrefix) return { wait: 'mode 5 needs a private prefix to draw the CLAT address in' };
  return {
    mode: 5,
    announce: 'shared',
    drawIn: o.privatePrefix,
    shared: host,
    take: false,
    dad: false,
    redraw: false,
    how:
      `shares ${host} with the host: the CLAT's private address (a random ULA) is translated to it by the kernel's ` +
      "NAT on the way out and back on the way in; connection tracking keeps its flows apart from the host's own",
    whyNot,
  };
}

/**
 * What makes two choices the same way to the same address source (a change means a new address).
 * Not mode 5's host address: the masquerade follows the host's source by itself, and the CLAT's
 * flows keep their private address (a new privacy address must not end them).
 */
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
  #undelivered?: { prefix64: string; reason: string; addresses: string };
  #addresses = '';

  /** `privatePrefix`: where mode 5 draws the CLAT's own address (default: a random ULA /64, RFC 4193). */
  constructor(readonly privatePrefix: Prefix6 = randomUla(globalThis.crypto.getRandomValues(new Uint8Array(5)))) {}

  choose(o: Omit<ModeInput, 'anycastRefused' | 'undelivered' | 'privatePrefix'>): UplinkMode | UplinkModeWait {
    this.#addresses = addressKey(o.addresses);
    const held = <T extends { addresses: string }>(x: T | undefined) =>
      x?.addresses === this.#addresses ? x : undefined;
    const m = chooseUplinkMode({
      ...o,
      anycastRefused: held(this.#refused),
      undelivered: held(this.#undelivered),
      privatePrefix: this.privatePrefix,
    });
    this.last = isWait(m) ? undefined : m;
    return m;
  }

  /** The kernel refused the anycast join for `address` with the uplink's addresses of the last choice. */
  refused(address: string, reason: string): void {
    this.#refused = { prefix64: formatIPv6(prefixOf(address, 64).addr), reason, addresses: this.#addresses };
  }

  /**
   * Nothing came back to mode 2's random `address` (the network delivers only addresses it
   * assigned): mode 5 while the uplink's addresses stay as they were. Other modes are not left
   * this way (a PLAT that is down would look the same, and the host's address would not help).
   */
  undelivered(address: string, reason: string): boolean {
    if (this.last?.mode !== 2) return false;
    this.#undelivered = { prefix64: formatIPv6(prefixOf(address, 64).addr), reason, addresses: this.#addresses };
    return true;
  }
}

/** A ULA /64 (RFC 4193 §3.2): fd00::/8, the 40-bit random global ID from `id`, subnet 0. */
export function randomUla(id: Uint8Array): Prefix6 {
  const a = new Uint8Array(16);
  a[0] = 0xfd;
  a.set(id.subarray(0, 5), 1);
  return parsePrefix6(`${formatIPv6(a)}/64`, true);
}
