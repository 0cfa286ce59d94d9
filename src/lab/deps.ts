/**
 * The lab's Debian packages: found on PATH, or installed by scripts/install-deps.sh (which says what
 * it installs). Tests use {@link missingTools} to fail with a clear message when one is absent.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabError, run } from './exec.js';

/** Tool → the Debian package that has it. */
export const LAB_TOOLS: Record<string, string> = {
  ip: 'iproute2',
  nft: 'nftables',
  radvd: 'radvd',
  unbound: 'unbound',
  tayga: 'tayga',
  tcpdump: 'tcpdump',
  ping: 'iputils-ping',
  tracepath: 'iputils-tracepath',
  traceroute: 'traceroute',
  python3: 'python3',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  ndisc6: 'ndisc6',
  rdisc6: 'ndisc6',
  dnsmasq: 'dnsmasq-base',
  busybox: 'busybox',
  dhcpcd: 'dhcpcd-base',
};

const DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The absolute path of `tool` (Debian's system directories first), or null. */
export function which(tool: string): string | null {
  const path = [...DIRS, ...(process.env.PATH ?? '').split(':').filter(Boolean)];
  for (const d of path) {
    const p = join(d, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

/** The tools among `tools` (default: all the lab uses) that are not installed. */
export function missingTools(tools: string[] = Object.keys(LAB_TOOLS)): string[] {
  return tools.filter((t) => which(t) === null);
}

/** The project root: the folder with package.json above this module. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new LabError('lab: package.json not found above the lab module');
    dir = up;
  }
  return dir;
}

/** Installs missing packages with scripts/install-deps.sh; throws a LabError naming what is missing. */
export async function ensureDeps(log: (s: string) => void = () => {}): Promise<void> {
  const missing = missingTools();
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((t) => LAB_TOOLS[t]))];
  log(`lab: installing missing Debian packages: ${pkgs.join(' ')}`);
  const r = await run(['bash', join(projectRoot(), 'scripts', 'install-deps.sh')], {
    allowFail: true,
    timeoutMs: 600_000,
  });
  const still = missingTools();
  if (still.length > 0) {
    throw new LabError(
      `lab: missing tools ${still.join(', ')} (Debian packages ${[...new Set(still.map((t) => LAB_TOOLS[t]))].join(' ')}); install-deps said: ${(r.stderr || r.stdout).trim()}`,
    );
  }
}

/** The python3 that runs the lab's scripts (the HTTP server, the RA sender, frame injection). */
export function python3(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : (which('python3') ?? 'python3');
}
