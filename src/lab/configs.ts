/**
 * Configuration files of the lab's daemons (radvd, unbound, TAYGA, nftables, dnsmasq's DHCPv6,
 * dhcpcd), generated per run into the lab's temporary directory.
 */
import { ADDR, IFACE } from './topology.js';

export interface RaConfig {
  iface: string;
  prefix: string;
  prefixLen: number;
  /** The M flag (RFC 4861 §4.2): addresses come from DHCPv6. */
  managed: boolean;
  /** The prefix's A flag (RFC 4861 §4.6.2): hosts configure an address in it by SLAAC. */
  autonomous: boolean;
  rdnss: string;
  /** The PREF64 to advertise, or null for none. */
  pref64: string | null;
  intervalS: number;
  routerLifetimeS: number;
  /** PREF64 lifetime in seconds (RFC 8781 §4: scaled, at most 65528). */
  pref64LifetimeS: number;
}

/**
 * radvd.conf. radvd learnt `nat64prefix` (RFC 8781) only in 2.20; Debian 12 ships 2.19, so the lab
 * asks radvd for a PREF64 only when {@link radvdSupportsPref64} said it can.
 */
export function radvdConf(c: RaConfig): string {
  const lines = [
    `interface ${c.iface} {`,
    '  AdvSendAdvert on;',
    // radvd insists on 3 <= MinRtrAdvInterval <= 0.75 * MaxRtrAdvInterval and MaxRtrAdvInterval >= 4.
    '  MinRtrAdvInterval 3;',
    `  MaxRtrAdvInterval ${Math.max(4, c.intervalS)};`,
    `  AdvDefaultLifetime ${c.routerLifetimeS};`,
    `  AdvManagedFlag ${c.managed ? 'on' : 'off'};`,
    `  prefix ${c.prefix}/${c.prefixLen} { AdvOnLink on; AdvAutonomous ${c.autonomous ? 'on' : 'off'}; };`,
    `  RDNSS ${c.rdnss} { };`,
  ];
  if (c.pref64 !== null) lines.push(`  nat64prefix ${c.pref64} { AdvValidLifetime ${c.pref64LifetimeS}; };`);
  lines.push('};', '');
  return lines.join('\n');
}

/**
 * unbound as a DNS64 resolver (RFC 6147). The zones are served as `auth-zone`s "for upstream", so
 * the iterator sees an answer without AAAA and the dns64 module synthesises one from the A records,
 * exactly as for a real IPv4-only name on the internet. It listens on `interfaces` (the router's LAN
 * address unless told otherwise).
 */
export function unboundConf(dir: string, pref64: string, interfaces: string[] = [ADDR.routerLan]): string {
  return [
    'server:',
    ...interfaces.map((a) => `  interface: ${a}`),
    '  port: 53',
    '  access-control: ::/0 allow',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    `  pidfile: "${dir}/unbound.pid"`,
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    '  num-threads: 1',
    '  so-reuseport: no',
    '  ip-freebind: yes',
    '  do-not-query-localhost: no',
    '  module-config: "dns64 iterator"',
    `  dns64-prefix: ${pref64}`,
    'auth-zone:',
    '  name: "ipv4only.arpa."',
    `  zonefile: "${dir}/ipv4only.arpa.zone"`,
    '  for-upstream: yes',
    '  for-downstream: no',
    '  fallback-enabled: no',
    'auth-zone:',
    '  name: "lab."',
    `  zonefile: "${dir}/lab.zone"`,
    '  for-upstream: yes',
    '  for-downstream: no',
    '  fallback-enabled: no',
    '',
  ].join('\n');
}

const SOA = '@ 3600 IN SOA ns.lab. hostmaster.lab. 1 3600 600 86400 60';

/** RFC 7050 §2.2: ipv4only.arpa has exactly the A records 192.0.0.170 and 192.0.0.171. */
export const IPV4ONLY_ZONE = [
  '$ORIGIN ipv4only.arpa.',
  SOA,
  '@ 3600 IN NS ns.lab.',
  '@ 3600 IN A 192.0.0.170',
  '@ 3600 IN A 192.0.0.171',
  '',
].join('\n');

export const LAB_ZONE = [
  '$ORIGIN lab.',
  SOA,
  '@ 3600 IN NS ns.lab.',
  `ns 3600 IN A ${ADDR.routerWan}`,
  `server 3600 IN A ${ADDR.server}`,
  '',
].join('\n');

/** TAYGA: the PLAT, stateful through its dynamic pool plus the nftables masquerade below. */
export function taygaConf(dataDir: string, pref64: string): string {
  return [
    `tun-device ${IFACE.routerNat64}`,
    `ipv4-addr ${ADDR.taygaV4}`,
    `prefix ${pref64}`,
    `dynamic-pool ${ADDR.taygaPool}`,
    `data-dir ${dataDir}`,
    '',
  ].join('\n');
}

/** Masquerade TAYGA's pool toward the IPv4 internet, as a carrier-grade NAT64 would. */
export const NFT_RULES = [
  'table ip clatd_lab {',
  '  chain post {',
  '    type nat hook postrouting priority srcnat; policy accept;',
  `    oifname "${IFACE.routerWan}" ip saddr ${ADDR.taygaPool} masquerade`,
  '  }',
  '}',
  '',
].join('\n');

/** The router's nftables table (family ip6) of the cloud shape; its chain `deliver` counts the drops. */
export const CLOUD_TABLE = 'clatd_lab_cloud';

/**
 * The router's nftables for the cloud shape: forwarded packets reach the LAN's /64 only at the
 * leased addresses (whose neighbour entries are permanent), so a self-chosen address is never even
 * solicited, as on a cloud fabric that delivers only to the addresses it assigned.
 */
export function cloudNftRules(leases: readonly string[]): string {
  return [
    `table ip6 ${CLOUD_TABLE} {`,
    `  set leased { type ipv6_addr; elements = { ${leases.join(', ')} } }`,
    '  chain deliver {',
    '    type filter hook forward priority filter; policy accept;',
    `    oifname "${IFACE.routerBridge}" ip6 daddr ${ADDR.lanPrefix}/${ADDR.lanPrefixLen} ip6 daddr != @leased counter drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * dnsmasq as the DHCPv6 server only (no DNS: port 0, no RAs: radvd sends them), in the
 * foreground, leases in `leaseFile`. `range` is the pool: the dhcpv6 shape's range, or the cloud's
 * two fixed addresses (dnsmasq gives one reserved address per DUID, so a pool of exactly the VM's
 * addresses is how it hands a client two). Leases last an hour: no renewal during a lab.
 */
export function dnsmasqArgs(leaseFile: string, range: readonly [string, string]): string[] {
  return [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--user=root',
    '--port=0',
    `--interface=${IFACE.routerBridge}`,
    '--bind-interfaces',
    `--dhcp-leasefile=${leaseFile}`,
    '--log-dhcp',
    '--log-facility=-',
    `--dhcp-range=${range[0]},${range[1]},${ADDR.lanPrefixLen},1h`,
    `--dhcp-option=option6:dns-server,[${ADDR.routerLan}]`,
  ];
}

/**
 * dhcpcd.conf for the host: DHCPv6 only, the kernel keeps handling RAs (noipv6rs), `iaNa` address
 * leases asked for on the uplink. Nothing is written outside the lab: dhcpcd runs with the lab's
 * script (no hooks, so no resolv.conf) and with its run and database folders mounted over.
 */
export function dhcpcdConf(iaNa: number): string {
  const lines = [
    'ipv6only',
    'noipv6rs',
    'option rapid_commit',
    'nooption domain_name_servers',
    `interface ${IFACE.host}`,
  ];
  for (let i = 1; i <= iaNa; i++) lines.push(`  ia_na ${i}`);
  lines.push('');
  return lines.join('\n');
}
