/**
 * Checks `clatd run` makes before touching anything, each failing with one sentence that says what
 * to do: the capabilities, the TUN device node, the nft tool.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
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

/**
 * Whether this process can open /dev/net/tun: 'ok', 'missing', or the error code of the open
 * (EACCES for a 0600 node and a process that is not root). Opening it is harmless (no TUNSETIFF),
 * and it is the same check the kernel makes each time clatd builds its TUN again.
 */
export function probeTun(path = '/dev/net/tun'): string {
  try {
    closeSync(openSync(path, 'r+'));
    return 'ok';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    return code === 'ENOENT' ? 'missing' : code;
  }
}

/** The error for a /dev/net/tun that exists but cannot be opened (`code`), or undefined. */
export function tunDenied(code: string, who = `uid ${process.getuid?.()}`): PreflightError | undefined {
  if (code === 'ok' || code === 'missing') return undefined;
  return new PreflightError(
    `/dev/net/tun cannot be opened by ${who} (${code}): clatd opens it each time it builds its TUN, also after ` +
      'a deletion from outside, so it must be readable and writable for the user clatd runs as (mode 0666, as udev makes it)',
  );
}

export interface PreflightEnv {
  caps?: bigint;
  tunExists?: boolean;
  /** The result of {@link probeTun}; overrides tunExists. */
  tun?: string;
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
  const tun = env.tun ?? (env.tunExists === undefined ? probeTun() : env.tunExists ? 'ok' : 'missing');
  const denied = tunDenied(tun);
  if (denied) throw denied;
  if (tun === 'missing') {
    throw new PreflightError(
      '/dev/net/tun is missing: load the tun module with `modprobe tun` (in a container, pass --device /dev/net/tun)',
    );
  }
  const nft = env.nftWorks ?? spawnSync('nft', ['--version'], { encoding: 'utf8' }).status === 0;
  if (!nft) {
    throw new PreflightError('the nft tool is missing: install nftables (`apt-get install nftables`)');
  }
}
