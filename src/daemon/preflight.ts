/**
 * Checks `clatd run` makes before touching anything, each failing with one sentence that says what
 * to do: the capabilities, the TUN device node, the nft tool.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { ClatdError } from '../core/errors.js';

export class PreflightError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_PREFLIGHT');
    this.name = 'PreflightError';
  }
}

const CAP_NET_ADMIN = 12;
const CAP_NET_RAW = 13;

/** The effective capability mask of this process (from /proc/self/status), or undefined. */
export function effectiveCaps(status = (): string => readFileSync('/proc/self/status', 'utf8')): bigint | undefined {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status());
    return m ? BigInt(`0x${m[1]}`) : undefined;
  } catch {
    return undefined;
  }
}

/** The capabilities `clatd run` needs that `caps` lacks, by name (none when unknown). */
export function missingCapabilities(caps: bigint | undefined = effectiveCaps()): string[] {
  if (caps === undefined) return [];
  return (
    [
      [CAP_NET_ADMIN, 'CAP_NET_ADMIN'],
      [CAP_NET_RAW, 'CAP_NET_RAW'],
    ] as const
  )
    .filter(([bit]) => (caps & (1n << BigInt(bit))) === 0n)
    .map(([, name]) => name);
}

export interface PreflightEnv {
  caps?: bigint;
  tunExists?: boolean;
  nftWorks?: boolean;
}

export function checkPreflight(env: PreflightEnv = {}): void {
  const caps = 'caps' in env ? env.caps : effectiveCaps();
  if (caps !== undefined) {
    const missing = missingCapabilities(caps);
    if (missing.length) {
      throw new PreflightError(
        `needs ${missing.join(' and ')}: run it as root (sudo clatd) or from the systemd unit clatd@.service, which grants them`,
      );
    }
  }
  const tun = env.tunExists ?? existsSync('/dev/net/tun');
  if (!tun) {
    throw new PreflightError(
      '/dev/net/tun is missing: load the tun module with `modprobe tun` (in a container, pass --device /dev/net/tun)',
    );
  }
  const nft = env.nftWorks ?? spawnSync('nft', ['--version'], { encoding: 'utf8' }).status === 0;
  if (!nft) {
    throw new PreflightError('the nft tool is missing: install nftables (`apt-get install nftables`)');
  }
}
