/**
 * Builds the network drawn in topology.ts: the namespaces, the host's resolv.conf, sysctls, the
 * router's LAN bridge and the veth pairs, addresses and routes, the router's nftables rules; then
 * starts the router's services and waits until the host has configured its SLAAC address.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NFT_RULES } from './configs.js';
import type { LabContext } from './context.js';
import { LabError, run, waitFor } from './exec.js';
import type { RouterServices } from './services.js';
import type { StateFile } from './state.js';
import { ADDR, IFACE } from './topology.js';

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
  const addr = await waitFor(() => hostAddress(lab), 15_000, 200);
  if (!addr) {
    const ra = lab.findProc(services.raDaemon)?.output().trim().split('\n').slice(-5).join('\n') ?? '(not running)';
    throw new LabError(
      `lab: the host got no SLAAC address in ${ADDR.lanPrefix}/64 within 15 s; ${services.raDaemon} said:\n${ra}`,
    );
  }
  lab.log(`lab: host ${n.host} has ${addr} by SLAAC`);
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

/** The host's global SLAAC address (non-tentative), or null. */
export async function hostAddress(lab: Pick<LabContext, 'exec' | 'names'>): Promise<string | null> {
  const r = await lab.exec(lab.names.host, ['ip', '-6', '-j', 'addr', 'show', 'dev', IFACE.host, 'scope', 'global'], {
    allowFail: true,
  });
  if (r.code !== 0) return null;
  for (const link of JSON.parse(r.stdout) as {
    addr_info: { local?: string; tentative?: boolean; dadfailed?: boolean }[];
  }[]) {
    for (const a of link.addr_info) {
      if (a.local && !a.tentative && !a.dadfailed && a.local.startsWith(LAN_PREFIX_TEXT)) return a.local;
    }
  }
  return null;
}
