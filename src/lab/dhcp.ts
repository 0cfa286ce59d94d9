/**
 * DHCPv6 in the lab (dhcpv6 and cloud shapes): dnsmasq on the router leases /128s, dhcpcd in the
 * host asks for them, as on a network without SLAAC. Both are real Debian packages run in the
 * foreground by the lab, so they are stopped by PID with the rest of it; every file they write
 * (leases, DUID, PID, control sockets) is in the lab's run directory.
 *
 * dnsmasq-base rather than kea-dhcp6-server: one small binary without a service to disable, whose
 * command line takes every path. dhcpcd (dhcpcd-base) rather than ISC dhclient: dhclient is no
 * longer maintained upstream and Debian's AppArmor profile for it forbids the lab's own script and
 * lease paths; dhcpcd's fixed paths (/run/dhcpcd, /var/lib/dhcpcd) are mounted over in a private
 * mount namespace instead, and its script is /bin/true, so no hook touches resolv.conf.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dhcpcdConf, dnsmasqArgs } from './configs.js';
import type { LabContext } from './context.js';
import { which } from './deps.js';
import { LabError, type Proc, sleep } from './exec.js';
import { ADDR, IFACE, type UplinkShape } from './topology.js';

/** One lease in dnsmasq's lease file. */
export interface DhcpLease {
  /** The IA_NA's identifier the client chose (1, 2, … as dhcpcd numbers them in its config). */
  iaid: number;
  address: string;
  /** The client's DUID, colon-separated hex. */
  duid: string;
  /** Expiry, in seconds since the epoch. */
  expires: number;
}

/**
 * Leases in dnsmasq's lease file: after the server's `duid` line, one line per IPv6 lease,
 * "EXPIRY IAID ADDRESS HOSTNAME CLIENT-DUID".
 */
export function parseDnsmasqLeases(text: string): DhcpLease[] {
  const out: DhcpLease[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !f[2].includes(':') || !/^\d+$/.test(f[0]) || !/^\d+$/.test(f[1])) continue;
    out.push({ expires: Number(f[0]), iaid: Number(f[1]), address: f[2], duid: f[4] });
  }
  return out;
}

/** A DUID-LL (RFC 8415 §11.4) for Ethernet address `mac`: type 3, hardware type 1, the address. */
export function duidLl(mac: string): string {
  return `00:03:00:01:${mac.toLowerCase()}`;
}

/** How many address leases the host asks for: one, and in the cloud shape a second for the CLAT. */
export function leasesWanted(shape: UplinkShape): number {
  return shape === 'cloud' ? 2 : 1;
}

/** The pool dnsmasq leases from: the dhcpv6 range, or the cloud's two addresses for this host. */
function poolOf(shape: UplinkShape): readonly [string, string] {
  return shape === 'cloud' ? ADDR.cloudLeases : ADDR.dhcpRange;
}

export function leaseFile(lab: Pick<LabContext, 'dir'>): string {
  return join(lab.dir, 'dnsmasq', 'leases');
}

/** The leases dnsmasq has granted (none before it wrote its file). */
export function readLeases(lab: Pick<LabContext, 'dir'>): DhcpLease[] {
  try {
    return parseDnsmasqLeases(readFileSync(leaseFile(lab), 'utf8'));
  } catch {
    return [];
  }
}

/** Starts dnsmasq as the DHCPv6 server on the router's LAN bridge and waits until it serves. */
export async function startDhcpServer(lab: LabContext, shape: UplinkShape): Promise<Proc> {
  await lab.stopProc('dnsmasq');
  mkdirSync(join(lab.dir, 'dnsmasq'), { recursive: true });
  const pool = poolOf(shape);
  const p = lab.spawn('dnsmasq', lab.names.router, ['dnsmasq', ...dnsmasqArgs(leaseFile(lab), pool)]);
  for (let i = 0; i < 50 && p.running && !p.output().includes('DHCPv6'); i++) await sleep(50);
  if (!p.running || !p.output().includes('DHCPv6')) {
    throw new LabError(`lab: dnsmasq did not start its DHCPv6 server: ${p.output().trim()}`);
  }
  lab.log(`lab: router: dnsmasq leases /128s from ${pool[0]}-${pool[1]} by DHCPv6 (radvd: M flag, A=0)`);
  return p;
}

/**
 * Starts dhcpcd in the host for the uplink, in a private mount namespace whose /run is empty and
 * whose /run/dhcpcd and /var/lib/dhcpcd are folders of the lab (dhcpcd has no options for them),
 * and in a PID namespace of its own. Its DUID is the DUID-LL of the uplink's `mac`, so the server's lease names the
 * host's interface.
 */
export function startDhcpClient(lab: LabContext, shape: UplinkShape, mac: string): Proc {
  const dir = join(lab.dir, 'dhcpcd');
  mkdirSync(join(dir, 'run'), { recursive: true });
  mkdirSync(join(dir, 'db'), { recursive: true });
  const conf = join(dir, 'dhcpcd.conf');
  writeFileSync(conf, dhcpcdConf(leasesWanted(shape)));
  // dhcpcd's privilege-separated helpers outlive a killed parent, and dhcpcd drops privileges,
  // which clears a parent-death signal. So a shell waits for it as the first process of a PID
  // namespace of its own: when the process the lab knows (unshare) ends, even by SIGKILL, the
  // shell gets SIGKILL, and with it the kernel ends every process in that namespace.
  const mounts =
    'mount -t tmpfs -o mode=0755 clatd-lab /run && mkdir /run/dhcpcd && mount --bind "$0/run" /run/dhcpcd && ' +
    'mount --bind "$0/db" /var/lib/dhcpcd && { "$@" & wait; }';
  return lab.spawn('dhcpcd', lab.names.host, [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--pid',
    '--fork',
    '--kill-child=SIGKILL',
    'sh',
    '-c',
    mounts,
    dir,
    'dhcpcd',
    '--nobackground',
    '--debug',
    '--config',
    conf,
    '--script',
    which('true') ?? '/bin/true',
    `--duid=${duidLl(mac)}`,
    IFACE.host,
  ]);
}
