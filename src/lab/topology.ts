/**
 * The lab's network: an IPv6-only access network as a phone or laptop sees it on IPv6-only Wi-Fi,
 * built from real parts in network namespaces (names carry a per-run tag, so labs never collide).
 *
 *   ┌──────────────────────────┐          ┌──────────────────────────────────────────────┐
 *   │ host  (clatd-<tag>-h)    │          │ router  (clatd-<tag>-r)                      │
 *   │ IPv6 only, no IPv4       │          │                                              │
 *   │                          │          │  br0 2001:db8:1::1/64 (bridge)               │
 *   │ eth0 SLAAC in            │   veth   │   ├─ lanh                                    │
 *   │   2001:db8:1::/64 ───────┼──────────┼───┘   radvd (or the lab's RA sender): /64,   │
 *   │   (or dhcpcd: a /128)    │          │       RDNSS, PREF64 2001:db8:64::/96         │
 *   │ resolv.conf → router     │          │       dnsmasq: DHCPv6 /128s (when asked for) │
 *   │                          │          │   ├─ lann ─────── neighbour (optional)       │
 *   │ clatd run  → v4-eth0     │          │       unbound: DNS64 on [2001:db8:1::1]:53   │
 *   └──────────────────────────┘          │                                              │
 *                                         │  nat64 (TUN)  TAYGA: 2001:db8:64::/96        │
 *   ┌──────────────────────────┐          │     ↕ 192.0.2.0/24 dynamic pool              │
 *   │ neighbour (clatd-<tag>-n)│          │  nft masquerade 192.0.2.0/24 → wan0          │
 *   │ eth0 ─veth─ router lann, │          │                                              │
 *   │ same /64 (when asked for)│          │  wan0 198.51.100.1/24 ───────────────┐       │
 *   └──────────────────────────┘          └──────────────────────────────────────┼───────┘
 *                                                                      veth      │
 *                                         ┌──────────────────────────────────────┼───────┐
 *                                         │ internet  (clatd-<tag>-i), IPv4 only │       │
 *                                         │  eth0 198.51.100.10/24  via .1 ──────┘       │
 *                                         │  HTTP :80 (python3 http.server), UDP echo :7 │
 *                                         └──────────────────────────────────────────────┘
 *
 * Only documentation addresses are used (RFC 3849, RFC 5737, RFC 7335). The NAT64 prefix is a
 * network-specific one, because RFC 6052 §3.1 forbids documentation IPv4 addresses under the
 * well-known prefix 64:ff9b::/96.
 *
 * The uplink's shape (how the host gets its IPv6 on eth0) is one of {@link UPLINK_SHAPES}:
 *   slaac   the drawing above: the RA's /64 is autonomous, the host configures its own address.
 *   dhcpv6  the RA has the M flag and the /64 on-link but not autonomous (A=0); dnsmasq on the
 *           router leases /128s from a range, dhcpcd in the host asks for one (no SLAAC address).
 *   routed  slaac, plus 2001:db8:99::/64 routed by the router to the host's link-local address.
 *   cloud   dhcpv6 with two fixed leases for the host (as a cloud assigns a VM two addresses), and
 *           a router that delivers only to them: a permanent neighbour entry for each, and
 *           nftables dropping what it would forward to any other address of the /64.
 */

/** How the host's uplink gets IPv6 (see the drawing's note). */
export type UplinkShape = 'slaac' | 'dhcpv6' | 'routed' | 'cloud';
export const UPLINK_SHAPES: readonly UplinkShape[] = ['slaac', 'dhcpv6', 'routed', 'cloud'];

/** Whether the host's address comes from the DHCPv6 server (the RA then has M=1, A=0). */
export function usesDhcpv6(shape: UplinkShape): boolean {
  return shape === 'dhcpv6' || shape === 'cloud';
}

/** Fixed addressing of the lab (all documentation ranges). */
export const ADDR = {
  lanPrefix: '2001:db8:1::',
  lanPrefixLen: 64,
  routerLan: '2001:db8:1::1',
  pref64: '2001:db8:64::/96',
  /** The prefix a PREF64 change moves to. */
  pref64Alt: '2001:db8:65::/96',
  taygaV4: '192.0.2.1',
  taygaPool: '192.0.2.0/24',
  routerWan: '198.51.100.1',
  server: '198.51.100.10',
  wanLen: 24,
  /** The name the lab's DNS64 resolves to the server's IPv4 address. */
  serverName: 'server.lab.',
  httpPort: 80,
  udpEchoPort: 7,
  /** dhcpv6 shape: the range the DHCPv6 server leases /128s from. */
  dhcpRange: ['2001:db8:1::1000', '2001:db8:1::1fff'],
  /** cloud shape: the two addresses assigned to the host (IA_NA 1 for the host, 2 for the CLAT). */
  cloudLeases: ['2001:db8:1::a5', '2001:db8:1::a6'],
  /** routed shape: the prefix the router routes to the host's link-local address. */
  routedPrefix: '2001:db8:99::/64',
} as const;

/** Interface names inside the namespaces (names are per namespace, so they never collide). */
export const IFACE = {
  host: 'eth0',
  neighbour: 'eth0',
  routerBridge: 'br0',
  routerToHost: 'lanh',
  routerToNeighbour: 'lann',
  routerWan: 'wan0',
  routerNat64: 'nat64',
  internet: 'eth0',
} as const;

export interface LabOptions {
  /** How the host's uplink gets IPv6 (default slaac). */
  uplink?: UplinkShape;
  /** Advertise PREF64 in the RA (RFC 8781). When false, only DNS64 (RFC 7050) tells the prefix. */
  raPref64?: boolean;
  /** The NAT64 prefix in use (default {@link ADDR.pref64}). */
  pref64?: string;
  /** Add a neighbour namespace on the host's link (for the duplicate-address tests). */
  neighbour?: boolean;
  /** Add an IPv4-only LAN client behind the host, on its lan0 (router mode; see lan.ts). */
  lan?: boolean;
  /**
   * MTU of the PLAT's IPv6/IPv4 TUN (default 1500). 1280 makes the router's path toward the NAT64
   * a 1280-byte link, so big packets from the host draw Packet Too Big from a router.
   */
  nat64Mtu?: number;
  /** Size in bytes of the file the HTTP server offers as /blob.bin (default 4 MiB). */
  blobBytes?: number;
  /** Start the IPv4 servers (HTTP, UDP echo) in the internet namespace (default true). */
  servers?: boolean;
  /** Router Advertisement interval in seconds (default 3: quick enough for tests). */
  raIntervalS?: number;
  /** A tag to use in the namespace names instead of a fresh one (must be unique). */
  tag?: string;
  /** Print each set-up step with this function. */
  log?: (line: string) => void;
  /** Install SIGINT/SIGTERM/SIGHUP handlers that remove the lab and exit (default true). */
  handleSignals?: boolean;
}

/** Namespace names of one lab run. */
export interface LabNames {
  tag: string;
  host: string;
  router: string;
  internet: string;
  neighbour: string | null;
}

export function labNames(tag: string, neighbour: boolean): LabNames {
  return {
    tag,
    host: `clatd-${tag}-h`,
    router: `clatd-${tag}-r`,
    internet: `clatd-${tag}-i`,
    neighbour: neighbour ? `clatd-${tag}-n` : null,
  };
}

/** A fresh tag for this process: its PID in base 36 and two random characters. */
export function freshTag(): string {
  return `${process.pid.toString(36)}${Math.floor(Math.random() * 36 * 36)
    .toString(36)
    .padStart(2, '0')}`;
}

/** The lab's namespaces all start with this; `clatd lab --list` finds labs left behind by it. */
export const NS_PREFIX = 'clatd-';
