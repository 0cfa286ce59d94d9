/**
 * The reconciler's eyes: what the host looks like now (the uplink and whether it is usable, its
 * on-link prefixes, native IPv4, whether clatd's TUN still exists), and each difference from the
 * last look as one named "change" (a log line and a counter).
 */
import { formatIPv6, parseIPv6 } from '../core/addr/ipv6.js';
import { type Prefix6, parsePrefix6 } from '../core/addr/prefix.js';
import type { LogLevel } from './config.js';
import type { LinkInfo, NetPort } from './ports.js';

export interface Observed {
  uplink?: LinkInfo;
  uplinkOk: boolean;
  why?: string;
  /** The uplink's on-link IPv6 prefixes (its global addresses with their prefix length). */
  onLink: Prefix6[];
  /** The uplink's global IPv6 addresses (not tentative) with their prefix lengths. */
  global6: { address: string; prefixLen: number }[];
  native4: boolean;
  /** The TUN of the IPv4 side no longer exists (deleted from outside: `ip link del`). */
  tunGone?: boolean;
}

/** The /64 containing `address`, as an address string (host bits zero). */
export function slash64(address: string): string {
  const b = parseIPv6(address);
  b.fill(0, 8);
  return formatIPv6(b);
}

export function isLinkLocalOrLoopback(address: string): boolean {
  const b = parseIPv6(address);
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return true;
  return b.every((x, i) => (i === 15 ? x === 1 : x === 0));
}

/**
 * Looks at the host: the uplink (`iface`, or that of the IPv6 default route), up and with a global
 * address; native IPv4 (only asked in auto mode); and whether the TUN `tun` (ifindex) is gone.
 * `current` is the uplink in use: while it still exists without its default route, it is down, not gone.
 * `held`: a leased address clatd took off the uplink, which still counts as the uplink's.
 */
export async function observeHost(
  net: NetPort,
  o: { iface?: string; autoMode: boolean; current?: number; tun?: number; held?: string },
): Promise<Observed> {
  const links = await net.links();
  const none = { onLink: [], global6: [], native4: false };
  let uplink: LinkInfo | undefined;
  if (o.iface !== undefined) {
    uplink = links.find((l) => l.name === o.iface);
    if (!uplink) return { uplinkOk: false, why: `interface ${o.iface} does not exist`, ...none };
  } else {
    const r = await net.defaultRoute6();
    uplink = r && links.find((l) => l.index === r.ifindex);
    if (!uplink) {
      // A link going down loses its default route: while it still exists, it is down, not gone.
      const still = o.current === undefined ? undefined : links.find((l) => l.index === o.current);
      if (still) {
        const why = still.up ? `no IPv6 default route via ${still.name}` : `uplink ${still.name} is down`;
        return { uplink: still, uplinkOk: false, why, ...none };
      }
      return { uplinkOk: false, why: 'no IPv6 default route (give one with --interface)', ...none };
    }
  }
  if (!uplink.up) return { uplink, uplinkOk: false, why: `uplink ${uplink.name} is down`, ...none };
  const addrs = await net.addresses();
  const globals = addrs.filter(
    (a) => a.ifindex === uplink.index && a.family === 6 && a.scope === 'global' && !a.tentative,
  );
  if (globals.length === 0 && o.held === undefined) {
    return { uplink, uplinkOk: false, why: `uplink ${uplink.name} has no global IPv6 address`, ...none };
  }
  const onLink = globals.filter((a) => a.prefixLen < 128).map((a) => parsePrefix6(`${a.address}/${a.prefixLen}`, true));
  const native4 = o.autoMode && (await net.defaultRoutes4()).some((r) => r.ifindex !== o.tun);
  const tunGone = o.tun !== undefined && !links.some((l) => l.index === o.tun);
  const global6 = globals.map((a) => ({ address: a.address, prefixLen: a.prefixLen }));
  return { uplink, uplinkOk: true, onLink, global6, native4, tunGone };
}

/**
 * The path toward the NAT64 prefix: the source address the kernel would use (`ip -6 route get
 * PREFIX oif UPLINK`; any global address of the uplink when it names none) and its /64, and the
 * path MTU (the route's, else the uplink's). Without a usable source, only the MTU.
 */
export async function observePath(
  net: NetPort,
  uplink: LinkInfo,
  prefix: Prefix6,
): Promise<{ source?: string; prefix64?: string; mtu: number }> {
  const route = await net.routeGet6(formatIPv6(prefix.addr), uplink.index);
  let src = route?.src;
  if (!src || isLinkLocalOrLoopback(src)) {
    const addrs = await net.addresses();
    src = addrs.find(
      (a) => a.ifindex === uplink.index && a.family === 6 && a.scope === 'global' && !a.tentative,
    )?.address;
  }
  const mtu = route?.mtu ?? uplink.mtu;
  if (!src) return { mtu };
  return { source: src, prefix64: slash64(src), mtu };
}

/**
 * The log level of each kind of change. `warn` is for what an operator should look at (so
 * `journalctl -p warning` shows it): something put back after it was changed from outside, the
 * uplink or the NAT64 prefix lost, the datapath restarted. The rest is the daemon following the
 * network as it should (`info`). A duplicate address is warned about once, by addressing.ts, with
 * what answered for it; the change that follows (trying the next address) is `info`.
 */
export const CHANGE_LEVEL: Record<string, LogLevel> = {
  'uplink-gone': 'warn',
  'uplink-down': 'warn',
  'uplink-up': 'info',
  'pref64-found': 'info',
  'pref64-lost': 'warn',
  'pref64-changed': 'info',
  'native-ipv4-appeared': 'info',
  'native-ipv4-gone': 'info',
  'prefix64-changed': 'info',
  'mtu-changed': 'info',
  'address-duplicate': 'info',
  'address-mode-changed': 'info',
  'address-retaken': 'warn',
  'tun-gone': 'warn',
  'ipv4-restored': 'warn',
  'nft-restored': 'warn',
  'datapath-restarted': 'warn',
  reload: 'info',
};

/** Remembers the last look and turns each difference into one change. */
export class ChangeTracker {
  /** Live changes seen, by kind. */
  readonly counts: Record<string, number> = {};
  #last?: { uplink?: number; up: boolean; prefix: string; native4: boolean };

  /** `log` gets each change with its level from {@link CHANGE_LEVEL} (`info` for a kind not listed). */
  constructor(private readonly log: (level: LogLevel, kind: string, msg: string) => void) {}

  change(kind: string, msg: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    this.log(CHANGE_LEVEL[kind] ?? 'info', kind, msg);
  }

  /** Logs each difference from the last observation; `prefix` is the NAT64 prefix now ('' for none). */
  diff(o: Observed, prefix: string, source: string | undefined, autoMode: boolean): void {
    const last = this.#last;
    const now = { uplink: o.uplink?.index, up: o.uplinkOk, prefix, native4: o.native4 };
    if (last) {
      if (last.uplink !== undefined && now.uplink !== last.uplink) {
        this.change('uplink-gone', `uplink ifindex ${last.uplink} is gone${o.why ? `: ${o.why}` : ''}`);
      } else if (last.up && !now.up && now.uplink !== undefined) {
        this.change('uplink-down', o.why ?? 'uplink down');
      } else if (!last.up && now.up && last.uplink === now.uplink) {
        this.change('uplink-up', `uplink ${o.uplink?.name} is usable again`);
      }
      if (now.up && last.prefix !== now.prefix) {
        if (last.prefix === '') this.change('pref64-found', `NAT64 prefix ${now.prefix} (${source})`);
        else if (now.prefix === '') this.change('pref64-lost', `NAT64 prefix ${last.prefix} is gone`);
        else this.change('pref64-changed', `NAT64 prefix ${last.prefix} -> ${now.prefix} (${source})`);
      }
      if (autoMode && now.up && last.native4 !== now.native4) {
        this.change(
          now.native4 ? 'native-ipv4-appeared' : 'native-ipv4-gone',
          now.native4 ? 'a native IPv4 default route appeared' : 'the native IPv4 default route is gone',
        );
      }
    }
    this.#last = now;
  }
}
