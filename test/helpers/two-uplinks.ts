/**
 * A host with two uplinks to one router, for one clatd per uplink (the namespace tests of
 * test/daemon/multi-uplink-ns.test.ts):
 *
 *   +------------------ host ------------------+          +--------------- router ---------------+
 *   | eth0   SLAAC in 2001:db8:1::/64, RA       |--veth----| r0 2001:db8:1::1/64, RA + PREF64     |
 *   |        default route metric 100          |          |                                      |
 *   | wlan0  SLAAC in 2001:db8:2::/64, RA       |--veth----| r1 2001:db8:2::1/64, RA + PREF64     |
 *   |        default route metric 600          |          | 2001:db8:64::c000:201 on lo          |
 *   +------------------------------------------+          +--------------------------------------+
 *
 * The IPv6 default routes come from the Router Advertisements, with the metrics NetworkManager
 * gives Ethernet and Wi-Fi (`ra_defrtr_metric`); both links advertise PREF64 2001:db8:64::/96, so
 * 192.0.2.1 (2001:db8:64::c000:201 on the router) answers through either uplink's CLAT.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RA_SENDER_PY } from '../../src/lab/scripts.js';
import { PREFIX, SERVER6 } from './clatd-run.js';
import { createNetns, type Netns } from './netns.js';

export interface Uplink {
  /** The host's interface. */
  name: 'eth0' | 'wlan0';
  /** The router's end. */
  peer: 'r0' | 'r1';
  /** The RA sender: send it SIGHUP to advertise at once. */
  ra: { kill(signal: NodeJS.Signals): boolean };
}

export interface TwoUplinks {
  host: Netns;
  router: Netns;
  dir: string;
  eth0: Uplink;
  wlan0: Uplink;
}

/** Waits until `fn` returns something truthy (polling every 100 ms), or throws with `what`. */
export async function until<T>(fn: () => T, what: string, ms = 15_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The host and router above, torn down afterwards whatever happens. */
export async function withTwoUplinks(fn: (t: TwoUplinks) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'clatd-two-'));
  const host = await createNetns('2uh');
  let router: Awaited<ReturnType<typeof createNetns>> | undefined;
  try {
    router = await createNetns('2ur');
    const r = router;
    router.sh(`ip addr add ${SERVER6}/128 dev lo; sysctl -qw net.ipv6.conf.all.forwarding=1`);
    const links = [
      { name: 'eth0', peer: 'r0', net: '2001:db8:1', metric: 100 },
      { name: 'wlan0', peer: 'r1', net: '2001:db8:2', metric: 600 },
    ] as const;
    const up: Uplink[] = [];
    for (const l of links) {
      execFileSync('ip', [
        '-n',
        host.name,
        'link',
        'add',
        l.name,
        'type',
        'veth',
        'peer',
        'name',
        l.peer,
        'netns',
        r.name,
      ]);
      host.sh(
        `sysctl -qw net.ipv6.conf.${l.name}.accept_ra=2 net.ipv6.conf.${l.name}.ra_defrtr_metric=${l.metric}; ` +
          `ip link set ${l.name} up`,
      );
      r.sh(`ip addr add ${l.net}::1/64 dev ${l.peer} nodad; ip link set ${l.peer} up`);
      const cfg = join(dir, `ra-${l.peer}.json`);
      writeFileSync(
        cfg,
        JSON.stringify({
          iface: l.peer,
          prefix: `${l.net}::`,
          prefixLen: 64,
          routerLifetimeS: 600,
          intervalS: 4,
          rdnss: `${l.net}::1`,
          pref64: PREFIX,
          pref64LifetimeS: 600,
        }),
      );
      writeFileSync(join(dir, 'ra.py'), RA_SENDER_PY);
      // The router's link-local address must exist before the sender binds to the link.
      r.sh(
        `for i in $(seq 250); do ip -6 addr show dev ${l.peer} scope link | grep -q fe80 && exit 0; sleep 0.02; done`,
      );
      const ra = r.spawn('python3', [join(dir, 'ra.py'), cfg], { stdio: 'ignore' });
      up.push({ name: l.name, peer: l.peer, ra });
    }
    // Both uplinks configured from the RAs: an address and a default route each.
    await until(() => {
      const routes = host.exec('ip', '-6', 'route', 'show', 'default');
      const addrs = host.exec('ip', '-6', 'addr', 'show', 'scope', 'global');
      return (
        /dev eth0 .*metric 100/.test(routes) &&
        /dev wlan0 .*metric 600/.test(routes) &&
        /2001:db8:1:/.test(addrs) &&
        /2001:db8:2:/.test(addrs)
      );
    }, 'the RAs to configure both uplinks');
    await fn({ host, router: r, dir, eth0: up[0], wlan0: up[1] });
  } finally {
    await router?.destroy();
    await host.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
