/**
 * `clatd discover`: prints what `clatd run` would choose (uplink, NAT64 prefix and its source,
 * native IPv4, addresses, MTU, DAD settings) without changing anything on the host. It listens
 * for Router Advertisements for a moment (soliciting one when it may) and asks DNS64 meanwhile.
 */
import type { Prefix6 } from '../core/addr/prefix.js';
import { pref64Problem } from '../core/nd/pref64.js';
import { RUN_OPTIONS, resolveConfig } from '../daemon/config.js';
import { type Discovery, discover } from '../daemon/discover.js';
import { missingCapabilities } from '../daemon/preflight.js';
import { type CommandSpec, intFlag, parseCommand } from '../options/args.js';

const SHARED = ['interface', 'pref64', 'dns64-server', 'mode', 'v4', 'v6', 'v6-prefix', 'dad', 'mtu'] as const;

export const DISCOVER_SPEC: CommandSpec = {
  name: 'discover',
  summary:
    'Print what `clatd run` would choose (uplink, NAT64 prefix and source, addresses), changing nothing.\n' +
    'Needs no privileges: without CAP_NET_RAW it sends no Router Solicitation, and it says what it could not check.',
  usage: 'clatd discover [OPTIONS]',
  options: {
    ...Object.fromEntries(SHARED.map((k) => [k, RUN_OPTIONS[k]])),
    wait: { type: 'string', value: 'MS', help: 'how long to listen for a Router Advertisement PREF64 (default: 3000)' },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
};

export function formatDiscovery(d: Discovery): string {
  const row = (k: string, v: string | null | undefined) => `${k.padEnd(13)} ${v ?? '-'}`;
  const src = { flag: '--pref64', ra: 'Router Advertisement (RFC 8781)', dns64: 'DNS64 (RFC 7050)' };
  const lines = [
    row(
      'uplink',
      d.uplink ? `${d.uplink.name} (${d.uplink.how}, ${d.uplink.up ? 'up' : 'down'}, MTU ${d.uplink.mtu})` : null,
    ),
    row('NAT64 prefix', d.pref64 ? `${d.pref64} from ${src[d.pref64Source ?? 'flag']}` : null),
    row('native IPv4', d.nativeIPv4 ? 'yes (clatd stays idle in --mode auto)' : 'no'),
    row('source', d.sourceAddress ? `${d.sourceAddress} (in ${d.prefix64})` : null),
    row('CLAT IPv4', d.clat4),
    row('address mode', d.uplinkMode ? `${d.uplinkMode.mode}: ${d.uplinkMode.how}` : null),
    ...(d.uplinkMode?.why ?? []).map((w) => row('', `not ${w.mode}: ${w.why}`)),
    row(
      'CLAT IPv6',
      d.clat6Sample
        ? `${d.clat6Sample}${d.uplinkMode?.mode === 4 ? ' (--v6)' : ' (a sample: run draws its own)'}`
        : null,
    ),
    row('IPv4 MTU', d.mtu === null ? null : String(d.mtu)),
    row('DAD', d.dad ? `${d.dad.mode}, ${d.dad.transmits} probe(s) ${d.dad.retransMs} ms apart` : null),
    ...d.notes.map((n) => row('note', n)),
    ...d.unchecked.map((n) => row('not checked', n)),
    row('run would', d.verdict),
  ];
  return `${lines.join('\n')}\n`;
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(DISCOVER_SPEC, argv, out);
  if (!parsed) return 0;
  const v = parsed.values;
  const waitMs = intFlag('discover', 'wait', v.wait as string | undefined, 0, 60_000) ?? 3000;
  const flags = Object.fromEntries(SHARED.map((k) => [k, v[k]]));
  const cfg = resolveConfig(flags, {}, undefined, 'discover');
  const sys = await import('../daemon/system/index.js');
  // Without privileges discover reads what any user may (links, addresses, routes, RAs) and says
  // what it could not check; the nftables monitor `run` uses is not needed here.
  const missingCaps = missingCapabilities();
  const rtnl = sys.openRtnl();
  try {
    const net = new sys.SystemNet(rtnl);
    const d = await discover(
      cfg,
      {
        net,
        dns64: sys.systemDns64,
        identity: sys.systemIdentity,
        waitForRa: (ifindex, ms) => waitForRa(sys, net, ifindex, ms, !missingCaps.includes('CAP_NET_RAW')),
        missingCaps,
        dadParams: async (name) => {
          const { ipv6Conf } = await import('../sys/sysctl.js');
          const c = ipv6Conf(name);
          return { transmits: c.dadTransmits, retransMs: c.retransTimeMs };
        },
      },
      waitMs,
    );
    out(v.json ? `${JSON.stringify(d, null, 2)}\n` : formatDiscovery(d));
  } finally {
    rtnl.close();
  }
  return 0;
}

async function waitForRa(
  sys: typeof import('../daemon/system/index.js'),
  net: InstanceType<typeof sys.SystemNet>,
  ifindex: number,
  ms: number,
  solicit: boolean,
): Promise<Prefix6 | undefined> {
  if (ms === 0) return undefined;
  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const w = net.watchRtnl(
      (e) => {
        // A PREF64 that cannot be a NAT64 prefix is refused here as run refuses it.
        if (e.type === 'pref64' && e.ifindex === ifindex && e.lifetime > 0 && pref64Problem(e.prefix) === null)
          done(e.prefix);
      },
      () => done(undefined),
    );
    const done = (p: Prefix6 | undefined) => {
      if (timer) clearTimeout(timer);
      w.close();
      resolve(p);
    };
    timer = setTimeout(() => done(undefined), ms);
    if (solicit) void sys.solicitRouters(net.rtnl, ifindex);
  });
}
