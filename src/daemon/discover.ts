/**
 * What `clatd run` would choose, found without changing anything: the uplink, the NAT64 prefix and
 * its source, whether native IPv4 would keep the CLAT idle, how the IPv6 address would be obtained
 * (the same choice as run's, uplink-mode.ts), the addresses (the IPv6 one is a sample: run draws
 * its own random bits), the MTU and the DAD settings. Used by `clatd discover`.
 */

import { formatIPv6 } from '../core/addr/ipv6.js';
import { formatPrefix6, type Prefix6 } from '../core/addr/prefix.js';
import { finish, pseudoSum6, sum16 } from '../core/checksum.js';
import type { RunConfig } from './config.js';
import { isLinkLocalOrLoopback, slash64 } from './observe.js';
import { type Dns64Port, type IdentityPort, ipv4Mtu, type NetPort } from './ports.js';
import { describeSource, type PrefixSource, type UplinkModeStatus } from './status.js';
import { chooseUplinkMode, isWait, modeStatus } from './uplink-mode.js';

export interface Discovery {
  uplink: { name: string; ifindex: number; how: string; up: boolean; mtu: number } | null;
  pref64: string | null;
  pref64Source: PrefixSource | null;
  /** Why each prefix source that was tried gave nothing. */
  notes: string[];
  /** What could not be checked for want of privileges, and why (empty when privileged). */
  unchecked: string[];
  nativeIPv4: boolean;
  /** What run would do now: translate, or wait and why. */
  verdict: string;
  clat4: string | null;
  /** How run would obtain the CLAT IPv6 address (the choice run makes, uplink-mode.ts). */
  uplinkMode: UplinkModeStatus | null;
  clat6Sample: string | null;
  sourceAddress: string | null;
  prefix64: string | null;
  mtu: number | null;
  dad: { mode: string; transmits: number; retransMs: number } | null;
}

export interface DiscoverDeps {
  net: NetPort;
  dns64: Dns64Port;
  identity: IdentityPort;
  /** Waits up to `ms` for a PREF64 option in a Router Advertisement on `ifindex`. */
  waitForRa(ifindex: number, ms: number): Promise<Prefix6 | undefined>;
  dadParams(ifname: string): Promise<{ transmits: number; retransMs: number }>;
  /**
   * The capabilities `clatd run` needs that this process lacks (`CAP_NET_ADMIN`, `CAP_NET_RAW`).
   * Links, addresses and routes can be read without them; a Router Solicitation cannot be sent.
   */
  missingCaps?: string[];
}

export async function discover(cfg: RunConfig, deps: DiscoverDeps, raWaitMs: number): Promise<Discovery> {
  const d: Discovery = {
    uplink: null,
    pref64: null,
    pref64Source: null,
    notes: [],
    unchecked: [],
    nativeIPv4: false,
    verdict: '',
    clat4: null,
    uplinkMode: null,
    clat6Sample: null,
    sourceAddress: null,
    prefix64: null,
    mtu: null,
    dad: null,
  };
  const missing = deps.missingCaps ?? [];
  if (missing.length) {
    d.unchecked.push(
      `clatd run itself: it needs ${missing.join(' and ')}, which this process lacks (run as root, or from clatd@.service)`,
    );
  }
  const links = await deps.net.links();
  let how = '--interface';
  let link = cfg.interface === undefined ? undefined : links.find((l) => l.name === cfg.interface);
  if (cfg.interface === undefined) {
    how = 'IPv6 default route';
    const r = await deps.net.defaultRoute6();
    link = r && links.find((l) => l.index === r.ifindex);
    if (!link) {
      d.verdict = 'wait: no IPv6 default route (give the uplink with --interface)';
      return d;
    }
  } else if (!link) {
    d.verdict = `wait: interface ${cfg.interface} does not exist`;
    return d;
  }
  d.uplink = { name: link.name, ifindex: link.index, how, up: link.up, mtu: link.mtu };
  const addrs = await deps.net.addresses();
  const global = addrs.some((a) => a.ifindex === link.index && a.family === 6 && a.scope === 'global' && !a.tentative);

  // Prefix: flag, then RA, then DNS64 (the last two asked at the same time).
  let prefix: Prefix6 | undefined;
  if (cfg.pref64) {
    prefix = cfg.pref64;
    d.pref64Source = 'flag';
  } else {
    const [ra, dns] = await Promise.all([
      deps.waitForRa(link.index, raWaitMs).catch((e: Error) => {
        d.unchecked.push(`Router Advertisements: cannot listen for them: ${e.message}`);
        return undefined;
      }),
      deps.dns64.discover(cfg.dns64Servers).then(
        (p) => p[0],
        (e: Error) => {
          d.notes.push(`DNS64 (RFC 7050): ${e.message}`);
          return undefined;
        },
      ),
    ]);
    if (!ra && missing.includes('CAP_NET_RAW')) {
      d.unchecked.push(
        `Router Solicitation: not sent (a raw socket needs CAP_NET_RAW), so only an RA the router sent by itself within ${raWaitMs} ms was seen`,
      );
    }
    if (ra) {
      prefix = ra;
      d.pref64Source = 'ra';
    } else {
      d.notes.push(`Router Advertisements: no PREF64 option on ${link.name} within ${raWaitMs} ms`);
      if (dns) {
        prefix = dns;
        d.pref64Source = 'dns64';
      }
    }
  }
  d.pref64 = prefix ? formatPrefix6(prefix) : null;
  if (cfg.mode === 'auto') d.nativeIPv4 = (await deps.net.defaultRoutes4()).length > 0;

  const inUse = addrs.filter((a) => a.family === 4).map((a) => a.address);
  d.clat4 = cfg.v4 ?? deps.identity.selectIPv4(inUse) ?? null;
  let wait: string | undefined;
  if (prefix) {
    const route = await deps.net.routeGet6(formatIPv6(prefix.addr), link.index);
    const globals = addrs.filter(
      (a) => a.ifindex === link.index && a.family === 6 && a.scope === 'global' && !a.tentative,
    );
    const src = route?.src && !isLinkLocalOrLoopback(route.src) ? route.src : globals[0]?.address;
    d.sourceAddress = src ?? null;
    if (src) d.prefix64 = `${slash64(src)}/64`;
    // The same choice as run's (a refused anycast join run learns only by trying).
    const mode = chooseUplinkMode({
      uplink: link.name,
      addresses: globals.map((a) => ({ address: a.address, prefixLen: a.prefixLen })),
      source: src,
      v6: cfg.v6,
      v6Prefix: cfg.v6Prefix,
    });
    if (isWait(mode)) wait = mode.wait;
    else {
      d.uplinkMode = modeStatus(mode);
      const v4 = d.clat4;
      d.clat6Sample =
        mode.address ??
        (v4 && mode.drawIn
          ? mode.drawIn.len === 64
            ? deps.identity.generateIPv6({ prefix64: formatIPv6(mode.drawIn.addr), pref64: prefix, ipv4: v4 })
            : deps.identity.generateInPrefix({ prefix: mode.drawIn, pref64: prefix, ipv4: v4 })
          : null);
    }
    d.mtu = cfg.mtu ?? ipv4Mtu(route?.mtu ?? link.mtu);
  }
  try {
    d.dad = { mode: cfg.dad, ...(await deps.dadParams(link.name)) };
  } catch {
    d.dad = null;
  }

  if (!link.up) d.verdict = `wait: ${link.name} is down`;
  else if (!global) d.verdict = `wait: ${link.name} has no global IPv6 address`;
  else if (d.nativeIPv4) d.verdict = 'idle: the host has a native IPv4 default route (--mode auto)';
  else if (!prefix) d.verdict = 'wait: no NAT64 prefix found yet';
  else if (wait !== undefined) d.verdict = `wait: ${wait}`;
  else
    d.verdict = `translate: ${d.clat4} <-> ${d.clat6Sample} via ${d.pref64} (${describeSource(d.pref64Source ?? 'flag')}), address mode ${d.uplinkMode?.mode}`;
  return d;
}

/**
 * A Router Solicitation from :: to all-routers (RFC 4861 §4.1, §6.3.7: no source link-layer
 * option with the unspecified source), so routers answer at once instead of at their next RA.
 */
export function buildRouterSolicitation(): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = 0x60;
  p[5] = 8; // payload length
  p[6] = 58; // ICMPv6
  p[7] = 255; // hop limit
  p[24] = 0xff;
  p[25] = 0x02;
  p[39] = 0x02; // ff02::2
  p[40] = 133; // type: Router Solicitation
  const sum = sum16(p, 40, 8, pseudoSum6(p, 8, 24, 58, 8));
  const c = finish(sum);
  p[42] = c >>> 8;
  p[43] = c & 0xff;
  return p;
}
