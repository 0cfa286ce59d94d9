/**
 * `clatd cleanup`: removes what a clatd on an uplink may have left behind — its nftables table,
 * the kernel fast path's classic tc filter, host settings it changed (given back with the host's
 * own values from their record) — and prints what it removed. The next `clatd run` does the same
 * at start; the systemd unit runs this as `ExecStopPost=`, so the host is tidy even when no next
 * start comes. A running clatd's TUN means it is not a leftover: nothing is touched then.
 */
import { dirname } from 'node:path';
import { defaultControlPath } from '../daemon/config.js';
import { type CommandSpec, parseCommand } from '../options/args.js';

export const CLEANUP_SPEC: CommandSpec = {
  name: 'cleanup',
  summary: 'Remove what a clatd that is no longer running left on an uplink (nft table, tc filter, host settings).',
  usage: 'clatd cleanup [--interface IF] [--control PATH]',
  options: {
    interface: {
      type: 'string',
      short: 'i',
      value: 'IF',
      help: 'the uplink (default: the interface of the IPv6 default route)',
    },
    control: {
      type: 'string',
      value: 'PATH',
      help: 'the control socket the clatd used: host settings are recorded beside it (default: /run/clatd/IF.sock)',
    },
  },
};

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(CLEANUP_SPEC, argv, out);
  if (!parsed) return 0;
  const v = parsed.values;
  const { openRtnl, SystemNet, SystemPlumbing } = await import('../daemon/system/index.js');
  const rtnl = openRtnl();
  try {
    let uplink = v.interface as string | undefined;
    if (uplink === undefined) {
      const net = new SystemNet(rtnl);
      const r = await net.defaultRoute6();
      uplink = r && (await net.links()).find((l) => l.index === r.ifindex)?.name;
    }
    if (uplink === undefined) {
      out('clatd cleanup: no uplink given and no IPv6 default route; nothing to do\n');
      return 0;
    }
    const control = (v.control as string | undefined) ?? defaultControlPath(uplink);
    const plumbing = new SystemPlumbing(
      rtnl,
      async () => {
        throw new Error('cleanup starts no datapath');
      },
      0,
      dirname(control),
    );
    const removed = await plumbing.cleanupLeftovers(uplink);
    out(removed.length ? removed.map((r) => `removed: ${r}\n`).join('') : `clatd cleanup: nothing left on ${uplink}\n`);
    return 0;
  } finally {
    rtnl.close();
  }
}
