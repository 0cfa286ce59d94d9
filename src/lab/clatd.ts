/**
 * The clatd driver: runs `clatd run` in the lab's host namespace as a user would (the compiled CLI,
 * the daemon's Node flags, its default control socket), waits until IPv4 works, asks it for its
 * status, and lists what it left in the host namespace after it stopped.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatusSnapshot } from '../daemon/status.js';
import { DAEMON_NODE_FLAGS } from '../options/node-flags.js';
import type { LabContext } from './context.js';
import { type Proc, type RunOptions, type RunResult, run, sleep, waitFor } from './exec.js';
import { LAN } from './lan.js';
import { parseStatus } from './status.js';
import { IFACE } from './topology.js';

/** The compiled CLI, run as `node CLI run` inside the host namespace. */
export const CLI_PATH = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** How a {@link ClatdDriver.startAndWait} ended: `up`, or `why` not (with the end of clatd's output). */
export interface ClatdStart {
  proc: Proc;
  up: boolean;
  why: string;
}

export class ClatdDriver {
  constructor(private readonly lab: LabContext) {}

  /**
   * Starts `clatd run ARGS` in the host namespace as a user would run it, but in a private mount
   * namespace whose /run/clatd is this lab's own folder (shared by its successive clatd runs, as
   * /run is on a real host), so its default control socket cannot meet another lab's.
   */
  start(args: string[] = []): Proc {
    const runClatd = join(this.lab.dir, 'run-clatd');
    mkdirSync(runClatd, { recursive: true });
    return this.lab.spawn('clatd', this.lab.names.host, [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mkdir -p /run/clatd && mount --bind "$0" /run/clatd && exec "$@"',
      runClatd,
      process.execPath,
      ...DAEMON_NODE_FLAGS,
      CLI_PATH,
      'run',
      ...args,
    ]);
  }

  /** Runs `clatd ARGS` (e.g. status --json) in the network and mount namespaces of `clatd`. */
  cli(clatd: Proc, args: string[], opts?: RunOptions): Promise<RunResult> {
    return run(['nsenter', '-t', String(clatd.pid), '-m', '-n', process.execPath, CLI_PATH, ...args], {
      allowFail: true,
      ...opts,
    });
  }

  /** `clatd status --json` of a running clatd; null when it fails or does not print a status. */
  async status(clatd: Proc): Promise<StatusSnapshot | null> {
    const r = await this.cli(clatd, ['status', '--json'], { timeoutMs: 5000 });
    return r.code === 0 ? parseStatus(r.stdout) : null;
  }

  /**
   * Starts `clatd run ARGS` and waits until IPv4 works the way a user sees it: an IPv4 default
   * route through `v4-<uplink>`, then the status state "running" (translation starts a moment after
   * the route, in the workers). `up` is false when clatd exited first or `timeoutMs` passed; `why`
   * then says which, with the end of clatd's output.
   */
  async startAndWait(args: string[] = [], timeoutMs = 20_000): Promise<ClatdStart> {
    const { lab } = this;
    const proc = this.start(args);
    const up = await waitFor(
      async () => {
        if (!proc.running) return 'exited';
        const r = await lab.exec(lab.names.host, ['ip', '-4', 'route', 'show', 'default'], { allowFail: true });
        return r.stdout.includes(`dev v4-${IFACE.host}`) ? 'up' : null;
      },
      timeoutMs,
      150,
    );
    const tail = () => proc.output().trim().split('\n').slice(-15).join('\n');
    if (up === 'up') {
      // A status that cannot be read is not waited on: the route alone says clatd is up. The route
      // comes before DAD ends, which on a busy machine can take several seconds.
      await waitFor(
        async () => {
          const s = await this.status(proc);
          // In router mode the LANs are served a moment after the state turns running.
          return !proc.running || s === null || (s.state === 'running' && s.lan?.serving !== false);
        },
        15_000,
        150,
      );
      return {
        proc,
        up: proc.running,
        why: proc.running ? '' : `clatd run exited right after start:\n${tail()}`,
      };
    }
    await sleep(100);
    if (!proc.running) {
      const ex = await proc.exited;
      return {
        proc,
        up: false,
        why: `clatd run exited (${ex.signal ?? `code ${ex.code}`}) before IPv4 came up:\n${tail()}`,
      };
    }
    return {
      proc,
      up: false,
      why: `clatd run gave no IPv4 default route via v4-${IFACE.host} within ${timeoutMs} ms:\n${tail()}`,
    };
  }

  /**
   * What is in the host namespace beyond what the lab made (lo and the uplink with its IPv6):
   * links, IPv4 addresses, IPv4 routes in any table, IPv6 routes not made by the kernel or the RA,
   * and nftables tables. Empty after a clean clatd exit.
   */
  async hostLeftovers(): Promise<string[]> {
    const { lab } = this;
    const out: string[] = [];
    const lines = async (argv: string[]) =>
      (await lab.exec(lab.names.host, argv, { allowFail: true })).stdout.split('\n').filter((l) => l.trim() !== '');
    for (const l of await lines(['ip', '-o', 'link', 'show'])) {
      const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
      if (name && name !== 'lo' && name !== IFACE.host && name !== LAN.hostIface) out.push(`link ${name}`);
    }
    // The LAN of router mode (lan.ts) is the lab's: its address and routes are not clatd's.
    const labOwn = new RegExp(`\\b(lo|${LAN.hostIface})\\b`);
    for (const l of await lines(['ip', '-4', '-o', 'addr', 'show'])) {
      if (!labOwn.test(l)) out.push(`address ${l.trim()}`);
    }
    for (const l of await lines(['ip', '-4', 'route', 'show', 'table', 'all'])) {
      if (!labOwn.test(l.replace(/.*\bdev /, ''))) out.push(`route ${l.trim()}`);
    }
    for (const l of await lines(['sysctl', 'net.ipv4.ip_forward', `net.ipv4.conf.${LAN.hostIface}.forwarding`])) {
      if (!/= 0$/.test(l)) out.push(`sysctl ${l.trim()}`);
    }
    for (const l of await lines(['ip', '-6', 'route', 'show', 'table', 'all'])) {
      if (/\bdev lo\b|proto kernel|proto ra|^multicast|^local |^anycast fe80|^fe80/.test(l)) continue;
      out.push(`route6 ${l.trim()}`);
    }
    for (const l of await lines(['ip', '-6', '-o', 'addr', 'show', 'dev', IFACE.host])) {
      if (!/ fe80:| 2001:db8:1:.*(dynamic|mngtmpaddr)/.test(l)) out.push(`address6 ${l.trim()}`);
    }
    for (const l of await lines(['nft', 'list', 'tables'])) out.push(`nft ${l.trim()}`);
    return out;
  }
}
