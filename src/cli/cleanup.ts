/**
 * `clatd cleanup`: removes what a clatd on an uplink may have left behind — its nftables table,
 * the kernel fast path's classic tc filter, host settings it changed (given back with the host's
 * own values from their record) — and prints what it removed. The next `clatd run` does the same
 * at start; the systemd unit runs this as `ExecStopPost=`, so the host is tidy even when no next
 * start comes. A running clatd's TUN means it is not a leftover: nothing is touched then.
 */
import { dirname } from 'node:path';
import { defaultControlPath, type RawValues, readConfigFile } from '../daemon/config.js';
import { type CommandSpec, parseCommand, UsageError } from '../options/args.js';

export const CLEANUP_SPEC: CommandSpec = {
  name: 'cleanup',
  summary: 'Remove what a clatd that is no longer running left on an uplink (nft table, tc filter, host settings).',
  usage: 'clatd cleanup [--interface IF] [--control PATH] [--config FILE]',
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
      help: 'the control socket the clatd used: host settings and taken addresses are recorded beside it (default: /run/clatd/IF.sock)',
    },
    config: {
      type: 'string',
      short: 'c',
      value: 'FILE',
      help: 'the TOML file the clatd ran with: its interface and control keys, unless given here',
    },
  },
};

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(CLEANUP_SPEC, argv, out);
  if (!parsed) return 0;
  const v = parsed.values;
  let file: RawValues = {};
  if (v.config !== undefined) {
    try {
      file = readConfigFile(v.config as string);
    } catch (e) {
      // The file is read as `clatd run` reads it; the message names this command.
      if (e instanceof UsageError) throw new UsageError(e.message.replace(/^clatd run: /, 'clatd cleanup: '));
      throw e;
    }
  }
  const { openRtnl, SystemNet, SystemPlumbing } = await import('../daemon/system/index.js');
  const rtnl = openRtnl();
  try {
    let uplink = (v.interface ?? file.interface) as string | undefined;
    if (uplink === undefined) {
      const net = new SystemNet(rtnl);
      const r = await net.defaultRoute6();
      uplink = r && (await net.links()).find((l) => l.index === r.ifindex)?.name;
    }
    if (uplink === undefined) {
      out('clatd cleanup: no uplink given and no IPv6 default route; nothing to do\n');
      return 0;
    }
    const control = ((v.control ?? file.control) as string | undefined) ?? defaultControlPath(uplink);
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
