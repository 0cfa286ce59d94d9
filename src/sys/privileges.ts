/**
 * Running as an ordinary user with only the capabilities clatd needs, as Android's clatd runs as
 * its own uid: `clatd run --user NAME` starts as root, resolves the user, and drops to it through
 * the shim (`dropPrivileges`) before it opens the control socket or starts a worker.
 *
 * What root is still needed for, and so happens before the drop: reading the user database,
 * creating /run/clatd for the user (as systemd's RuntimeDirectory= does for User=), raising the fd
 * limit for the spare fds. Everything after is done with the three capabilities: the TUN (and its
 * rebuild when deleted from outside) with CAP_NET_ADMIN, provided /dev/net/tun is openable by the
 * user (0666, as udev makes it); routes, addresses, nftables (nft inherits the capabilities as
 * ambient ones), the anycast join and the /proc/sys/net writes (the kernel lets CAP_NET_ADMIN
 * write net sysctls) with CAP_NET_ADMIN; the packet and raw sockets with CAP_NET_RAW; the fast
 * path's eBPF programs and map with CAP_BPF (tc programs need CAP_NET_ADMIN as well).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ClatdError } from '../core/errors.js';
import { native } from './addon.js';
import { sysError } from './errors.js';

export const CAP_NET_ADMIN = 12;
export const CAP_NET_RAW = 13;
export const CAP_BPF = 39;

/** What clatd keeps, by number and name. */
export const KEPT_CAPABILITIES: readonly (readonly [number, string])[] = [
  [CAP_NET_ADMIN, 'CAP_NET_ADMIN'],
  [CAP_NET_RAW, 'CAP_NET_RAW'],
  [CAP_BPF, 'CAP_BPF'],
];

export class PrivilegeError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_PRIVILEGES');
    this.name = 'PrivilegeError';
  }
}

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** `getent passwd NAME`: through NSS, so users from nss-systemd or LDAP resolve as well as /etc/passwd's. */
function getentPasswd(key: string): string | undefined {
  const r = spawnSync('getent', ['passwd', key], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0] : undefined;
}

/**
 * The account `spec` names: a user name, a numeric uid (its primary group from the user database,
 * else the same number), or `UID:GID`. Root is refused: dropping to it would drop nothing.
 */
export function resolveUser(spec: string, lookup: (key: string) => string | undefined = getentPasswd): Account {
  let account: Account | undefined;
  const pair = /^(\d+):(\d+)$/.exec(spec);
  if (pair) {
    account = { name: spec, uid: Number(pair[1]), gid: Number(pair[2]) };
  } else {
    const line = lookup(spec);
    const f = line?.split(':');
    if (f && f.length >= 4 && /^\d+$/.test(f[2]) && /^\d+$/.test(f[3])) {
      account = { name: f[0], uid: Number(f[2]), gid: Number(f[3]) };
    } else if (/^\d+$/.test(spec)) {
      account = { name: spec, uid: Number(spec), gid: Number(spec) };
    }
  }
  if (!account) throw new PrivilegeError(`--user: no such user "${spec}"`);
  if (account.uid > 0xfffffffe || account.gid > 0xfffffffe)
    throw new PrivilegeError(`--user: "${spec}" is out of range`);
  if (account.uid === 0) throw new PrivilegeError(`--user: "${spec}" is root; name an ordinary user`);
  return account;
}

/** The highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap), or undefined. */
export function lastCapability(read = () => readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')): number | undefined {
  try {
    const n = Number.parseInt(read().trim(), 10);
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The capabilities to keep on this kernel: a kernel before 5.8 has no CAP_BPF, and asking capset
 * for a capability the kernel does not know fails the whole switch. There the fast path's programs
 * need CAP_SYS_ADMIN, which is not kept, so it falls back to the workers (and says so).
 */
export function keptCapabilities(last = lastCapability()): (readonly [number, string])[] {
  return KEPT_CAPABILITIES.filter(([n]) => last === undefined || n <= last);
}

/**
 * Becomes `account`, keeping only {@link keptCapabilities}. Needs root (CAP_SETUID, CAP_SETGID,
 * CAP_SETPCAP). A failure part-way may leave the process half changed, so callers exit on it.
 * Returns the names of the capabilities kept.
 */
export function dropPrivileges(account: Account, keep = keptCapabilities()): string[] {
  if (process.getuid?.() !== 0) {
    throw new PrivilegeError(
      `--user ${account.name}: clatd must be started as root to switch users (it runs as uid ${process.getuid?.()})`,
    );
  }
  const r = native.dropPrivileges(
    account.uid,
    account.gid,
    keep.map(([n]) => n),
  );
  if (r < 0) {
    throw sysError(
      -r,
      'dropPrivileges',
      `${account.uid}:${account.gid}`,
      'switching users needs root with CAP_SETUID, CAP_SETGID and CAP_SETPCAP (a unit whose CapabilityBoundingSet= lacks them cannot use --user; use User= there)',
    );
  }
  return keep.map(([, name]) => name);
}
