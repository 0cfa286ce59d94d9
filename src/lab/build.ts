/**
 * Builds the network drawn in topology.ts: the namespaces, the host's resolv.conf, sysctls, the
 * router's LAN bridge and the veth pairs, addresses and routes, the router's nftables rules; then
 * starts the router's services (and in the DHCPv6 shapes the host's DHCPv6 client), waits until the
 * host has configured its addresses, and adds what the uplink's shape puts on the router (the
 * routed prefix's route, the cloud's neighbour entries and filter).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cloudNftRules, NFT_RULES } from './configs.js';
import type { LabContext } from './context.js';
import { leasesWanted, readLeases, startDhcpClient } from './dhcp.js';
import { LabError, run, waitFor } from './exec.js';
import type { RouterServices } from './services.js';
import type { StateFile } from './state.js';
import { ADDR, IFACE, type UplinkShape, usesDhcpv6 } from './topology.js';

/** How the host's addresses in the lab's /64 start when printed (2001:db8:1::/64). */
const LAN_PREFIX_TEXT = '2001:db8:1:';

/**
 * Builds the whole network in a fresh run directory. Each namespace and folder is recorded in
 * `state` as soon as it exists, so a failure part-way leaves nothing that removal does not know.
 */
export async function buildNetwork(lab: LabContext, state: StateFile, services: RouterServices): Promise<void> {
  const n = lab.names;
  rmSync(lab.dir, { recursive: true, force: true });
  mkdirSync(lab.dir, { recursive: true });
  lab.log(`lab: building ${n.host}, ${n.router}, ${n.internet}${n.neighbour ? `, ${n.neighbour}` : ''}`);
  for (const ns of [n.host, n.router, n.internet, n.neighbour]) {
    if (ns === null) continue;
    await run(['ip', 'netns', 'add', ns]);
    state.addNamespace(ns);
    await lab.exec(ns, ['ip', 'link', 'set', 'lo', 'up']);
  }
  // The host finds its DNS server through resolv.conf, as a user's machine would (ip netns exec
  // bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf).
  const netnsEtc = join('/etc/netns', n.host);
  mkdirSync(netnsEtc, { recursive: true });
  state.setNetnsEtc(netnsEtc);
  writeFileSync(join(netnsEtc, 'resolv.conf'), `nameserver ${ADDR.routerLan}\n`);

  // Sysctls before the links exist, so new links inherit them.
  await sysctl(lab, n.router, {
    'net.ipv6.conf.all.forwarding': 1,
    'net.ipv6.conf.default.forwarding': 1,
    'net.ipv4.ip_forward': 1,
    'net.ipv6.conf.all.accept_dad': 0,
    'net.ipv6.conf.default.accept_dad': 0,
  });
  await sysctl(lab, n.internet, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
  await sysctl(lab, n.host, { 'net.ipv6.conf.all.forwarding': 0 });

  // Router LAN: a bridge, so a neighbour can share the host's link.
  await lab.exec(n.router, ['ip', 'link', 'add', IFACE.routerBridge, 'type', 'bridge', 'mcast_snooping', '0']);
  await lab.exec(n.router, ['ip', 'addr', 'add', `${ADDR.routerLan}/64`, 'dev', IFACE.routerBridge, 'nodad']);
  await lab.exec(n.router, ['ip', 'link', 'set', IFACE.routerBridge, 'up']);
  await veth(n.host, IFACE.host, n.router, IFACE.routerToHost);
  await lab.exec(n.router, ['ip', 'link', 'set', IFACE.routerToHost, 'master', IFACE.routerBridge, 'up']);
  await sysctl(lab, n.host, {
    [`net.ipv6.conf.${IFACE.host}.accept_ra`]: 2,
    [`net.ipv6.conf.${IFACE.host}.autoconf`]: 1,
    [`net.ipv6.conf.${IFACE.host}.forwarding`]: 0,
  });
  await lab.exec(n.host, ['ip', 'link', 'set', IFACE.host, 'up']);
  if (n.neighbour) {
    await veth(n.neighbour, IFACE.neighbour, n.router, IFACE.routerToNeighbour);
    await lab.exec(n.router, ['ip', 'link', 'set', IFACE.routerToNeighbour, 'master', IFACE.routerBridge, 'up']);
    await sysctl(lab, n.neighbour, { [`net.ipv6.conf.${IFACE.neighbour}.accept_ra`]: 0 });
    await lab.exec(n.neighbour, ['ip', 'link', 'set', IFACE.neighbour, 'up']);
  }

  // Router WAN and the IPv4-only internet.
  await veth(n.router, IFACE.routerWan, n.internet, IFACE.internet);
  await lab.exec(n.router, ['ip', 'addr', 'add', `${ADDR.routerWan}/${ADDR.wanLen}`, 'dev', IFACE.routerWan]);
  await lab.exec(n.router, ['ip', 'link', 'set', IFACE.routerWan, 'up']);
  await lab.exec(n.internet, ['ip', 'addr', 'add', `${ADDR.server}/${ADDR.wanLen}`, 'dev', IFACE.internet]);
  await lab.exec(n.internet, ['ip', 'link', 'set', IFACE.internet, 'up']);
  await lab.exec(n.internet, ['ip', 'route', 'add', 'default', 'via', ADDR.routerWan]);
  await lab.exec(n.router, ['nft', '-f', '-'], { input: NFT_RULES });

  await services.startAll();
  const shape = services.uplink;
  const hostMac = (await lab.exec(n.host, ['cat', `/sys/class/net/${IFACE.host}/address`])).stdout.trim();
  if (usesDhcpv6(shape)) startDhcpClient(lab, shape, hostMac);
  const want = usesDhcpv6(shape) ? leasesWanted(shape) : 1;
  const addrs = await waitFor(
    async () => {
      const a = await hostAddresses(lab);
      return a.length >= want ? a : null;
    },
    15_000,
    200,
  );
  if (!addrs) throw new LabError(`lab: ${noAddressWhy(lab, shape, services)}`);
  lab.log(
    usesDhcpv6(shape)
      ? `lab: host ${n.host} has ${addrs.join(', ')} by DHCPv6 (dhcpcd; dnsmasq's leases: ${describeLeases(lab)})`
      : `lab: host ${n.host} has ${addrs[0]} by SLAAC`,
  );
  await shapeTheRouter(lab, shape, hostMac);
}

/** What the uplink's shape adds on the router once the host has its addresses. */
async function shapeTheRouter(lab: LabContext, shape: UplinkShape, hostMac: string): Promise<void> {
  const n = lab.names;
  if (shape === 'routed') {
    const ll = await linkLocal(lab, n.host, IFACE.host);
    await lab.exec(n.router, ['ip', '-6', 'route', 'replace', ADDR.routedPrefix, 'via', ll, 'dev', IFACE.routerBridge]);
    lab.log(`lab: router: ${ADDR.routedPrefix} routed to the host via ${ll}`);
  }
  if (shape === 'cloud') {
    for (const a of ADDR.cloudLeases) {
      await lab.exec(n.router, [
        'ip',
        '-6',
        'neigh',
        'replace',
        a,
        'lladdr',
        hostMac,
        'dev',
        IFACE.routerBridge,
        'nud',
        'permanent',
      ]);
    }
    await lab.exec(n.router, ['nft', '-f', '-'], { input: cloudNftRules(ADDR.cloudLeases) });
    lab.log(
      `lab: router: delivers into ${ADDR.lanPrefix}/64 only to the leases ${ADDR.cloudLeases.join(', ')} (permanent neighbour entries, nftables drops the rest)`,
    );
  }
}

/** Why the host has no address yet, with the end of what the daemons involved said. */
function noAddressWhy(lab: LabContext, shape: UplinkShape, services: RouterServices): string {
  const tail = (name: string) =>
    lab.findProc(name)?.output().trim().split('\n').slice(-8).join('\n') ?? '(not running)';
  if (!usesDhcpv6(shape)) {
    return `the host got no SLAAC address in ${ADDR.lanPrefix}/64 within 15 s; ${services.raDaemon} said:\n${tail(services.raDaemon)}`;
  }
  return (
    `the host did not get ${leasesWanted(shape)} DHCPv6 lease(s) in ${ADDR.lanPrefix}/64 within 15 s; ` +
    `dhcpcd said:\n${tail('dhcpcd')}\ndnsmasq said:\n${tail('dnsmasq')}`
  );
}

function describeLeases(lab: LabContext): string {
  return readLeases(lab)
    .map((l) => `IA_NA ${l.iaid} ${l.address}`)
    .join(', ');
}

/** The link-local address of `iface` in `ns`. */
async function linkLocal(lab: LabContext, ns: string, iface: string): Promise<string> {
  const r = await lab.exec(ns, ['ip', '-6', '-j', 'addr', 'show', 'dev', iface, 'scope', 'link']);
  const ll = (JSON.parse(r.stdout) as { addr_info: { local?: string }[] }[])[0]?.addr_info.find((a) => a.local)?.local;
  if (!ll) throw new LabError(`lab: ${ns} has no link-local address on ${iface}`);
  return ll;
}

/** A veth pair with end `a` in namespace `nsA` and end `b` in `nsB`. */
async function veth(nsA: string, a: string, nsB: string, b: string): Promise<void> {
  await run(['ip', 'link', 'add', 'name', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB]);
}

/** Sets sysctls `kv` in namespace `ns`. */
export async function sysctl(
  lab: Pick<LabContext, 'exec'>,
  ns: string,
  kv: Record<string, number | string>,
): Promise<void> {
  const args = Object.entries(kv).map(([k, v]) => `${k}=${v}`);
  await lab.exec(ns, ['sysctl', '-q', '-w', ...args]);
}

/** The host's global address in the lab's /64 (non-tentative; by SLAAC or DHCPv6), or null. */
export async function hostAddress(lab: Pick<LabContext, 'exec' | 'names'>): Promise<string | null> {
  return (await hostAddresses(lab))[0] ?? null;
}

/** Every global address of the host in the lab's /64 that is neither tentative nor failed DAD. */
export async function hostAddresses(lab: Pick<LabContext, 'exec' | 'names'>): Promise<string[]> {
  const r = await lab.exec(lab.names.host, ['ip', '-6', '-j', 'addr', 'show', 'dev', IFACE.host, 'scope', 'global'], {
    allowFail: true,
  });
  if (r.code !== 0) return [];
  const out: string[] = [];
  for (const link of JSON.parse(r.stdout) as {
    addr_info: { local?: string; tentative?: boolean; dadfailed?: boolean }[];
  }[]) {
    for (const a of link.addr_info) {
      if (a.local && !a.tentative && !a.dadfailed && a.local.startsWith(LAN_PREFIX_TEXT)) out.push(a.local);
    }
  }
  return out;
}
