/**
 * The lab's IPv4 LAN behind the host, for router mode (`clatd lab --lan`, `LabOptions.lan`):
 *
 *   ┌──────────────────────────────┐  veth  ┌────────────────────────────────┐
 *   │ host (clatd-<tag>-h)         │        │ LAN client (clatd-<tag>-l)     │
 *   │ lan0 203.0.113.1/24 ─────────┼────────┼─ eth0 by DHCPv4 from the host, │
 *   │ dnsmasq: DHCPv4 only on lan0 │        │   default via 203.0.113.1      │
 *   │ clatd run --lan lan0         │        │ IPv4 only (IPv6 disabled)      │
 *   └──────────────────────────────┘        └────────────────────────────────┘
 *
 * The client's address comes from a real DHCPv4 exchange: dnsmasq (Debian's dnsmasq-base) runs in
 * the host namespace with the lab's own configuration, lease and pid files (DHCP only, no DNS: port
 * 0), and busybox's udhcpc asks for a lease once, with a script of the lab's that configures the
 * address and the default route. The internet namespace also gets an upload sink (POST, answers with
 * the SHA-256 of what it read), so uploads are checked byte for byte.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sysctl } from './build.js';
import type { LabContext } from './context.js';
import { LabError, run, waitFor } from './exec.js';
import type { StateFile } from './state.js';
import { ADDR } from './topology.js';

const UPLOAD_SINK_PATH = fileURLToPath(new URL('./upload-sink.js', import.meta.url));

/** The LAN's fixed addressing (RFC 5737 TEST-NET-3) and names. */
export const LAN = {
  /** The host's LAN interface, the one given to clatd with --lan. */
  hostIface: 'lan0',
  gateway: '203.0.113.1',
  prefixLen: 24,
  subnet: '203.0.113.0/24',
  poolStart: '203.0.113.100',
  poolEnd: '203.0.113.150',
  clientIface: 'eth0',
  /** The upload sink on the IPv4 server. */
  uploadPort: 8080,
} as const;

/** The LAN namespace of a lab tagged `tag`. */
export function lanNamespace(tag: string): string {
  return `clatd-${tag}-l`;
}

/** dnsmasq's configuration: DHCPv4 on the LAN interface only, files in `dir`, no DNS. */
export function dnsmasqConf(dir: string): string {
  return [
    'port=0',
    `interface=${LAN.hostIface}`,
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    'dhcp-authoritative',
    `dhcp-range=${LAN.poolStart},${LAN.poolEnd},255.255.255.0,1h`,
    `dhcp-option=option:router,${LAN.gateway}`,
    `dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
    `pid-file=${join(dir, 'dnsmasq.pid')}`,
    'user=root',
    'log-dhcp',
    '',
  ].join('\n');
}

/** udhcpc's script: configures the lease it got (busybox exports ip, mask as a length, router). */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done ;;
esac
exit 0
`;

/**
 * Adds the LAN namespace and its client to a built lab: the veth pair, the host's lan0 address,
 * dnsmasq, the client's DHCP lease, and the upload sink on the server. Returns the client's address.
 */
export async function buildLan(lab: LabContext, state: StateFile): Promise<string> {
  const n = lab.names;
  const ns = lanNamespace(n.tag);
  await run(['ip', 'netns', 'add', ns]);
  state.addNamespace(ns);
  await lab.exec(ns, ['ip', 'link', 'set', 'lo', 'up']);
  await sysctl(lab, ns, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
  await run([
    'ip',
    'link',
    'add',
    'name',
    LAN.hostIface,
    'netns',
    n.host,
    'type',
    'veth',
    'peer',
    'name',
    LAN.clientIface,
    'netns',
    ns,
  ]);
  await lab.exec(n.host, ['ip', 'addr', 'add', `${LAN.gateway}/${LAN.prefixLen}`, 'dev', LAN.hostIface]);
  await lab.exec(n.host, ['ip', 'link', 'set', LAN.hostIface, 'up']);
  await lab.exec(ns, ['ip', 'link', 'set', LAN.clientIface, 'up']);

  const dir = join(lab.dir, 'dnsmasq');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'dnsmasq.conf');
  writeFileSync(conf, dnsmasqConf(dir));
  const dhcp = lab.spawn('dnsmasq', n.host, ['dnsmasq', '--keep-in-foreground', '--log-facility=-', '-C', conf]);
  const script = join(dir, 'udhcpc.sh');
  writeFileSync(script, UDHCPC_SCRIPT);
  chmodSync(script, 0o755);
  const lease = await lab.exec(
    ns,
    ['busybox', 'udhcpc', '-i', LAN.clientIface, '-f', '-q', '-n', '-t', '10', '-T', '1', '-s', script],
    { allowFail: true, timeoutMs: 20_000 },
  );
  const addr = await clientAddress(lab);
  if (!addr)
    throw new LabError(
      `lab: the LAN client got no DHCPv4 lease from dnsmasq on ${LAN.hostIface}: udhcpc said ${(lease.stdout + lease.stderr).trim()}; dnsmasq said ${dhcp.output().trim()}`,
    );
  lab.log(`lab: LAN client ${ns} has ${addr} by DHCPv4 from dnsmasq on the host's ${LAN.hostIface}`);

  const sink = lab.spawn('upload-sink', n.internet, [
    process.execPath,
    UPLOAD_SINK_PATH,
    ADDR.server,
    String(LAN.uploadPort),
  ]);
  if (!(await waitFor(() => !sink.running || sink.output().includes('listening'), 10_000, 50)) || !sink.running)
    throw new LabError(`lab: the upload sink did not start: ${sink.output().trim()}`);
  return addr;
}

/** The LAN client's IPv4 address, or null. */
export async function clientAddress(lab: Pick<LabContext, 'exec' | 'names'>): Promise<string | null> {
  const r = await lab.exec(lanNamespace(lab.names.tag), ['ip', '-4', '-j', 'addr', 'show', 'dev', LAN.clientIface], {
    allowFail: true,
  });
  if (r.code !== 0) return null;
  for (const link of JSON.parse(r.stdout) as { addr_info: { local?: string }[] }[])
    for (const a of link.addr_info) if (a.local?.startsWith('203.0.113.')) return a.local;
  return null;
}
