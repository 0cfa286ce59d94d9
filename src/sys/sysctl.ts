/**
 * The per-interface IPv6 settings clatd reads and writes, through /proc/sys (which follows the
 * calling process's network namespace). Reads give numbers; errors name the file and the errno.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ClatdError } from '../core/errors.js';
import { withSpareFds } from './fd-reserve.js';

export class SysctlError extends ClatdError {
  /** `ENOENT`, `EACCES`, `EINVAL`... */
  readonly errnoName: string;
  constructor(message: string, errnoName: string) {
    super(message, 'ERR_CLATD_SYSCTL');
    this.name = 'SysctlError';
    this.errnoName = errnoName;
  }
}

/** Linux interface names: 1..15 bytes, no '/', no whitespace, not '.' or '..' (dev_valid_name). */
export function checkIfName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > 15 || /[/\s:]/.test(name) || name === '.' || name === '..')
    throw new SysctlError(`not a valid interface name: "${name}"`, 'EINVAL');
}

function keyPath(key: string): string {
  if (!/^[A-Za-z0-9_./-]+$/.test(key) || key.split('/').includes('..'))
    throw new SysctlError(`not a valid sysctl key: "${key}"`, 'EINVAL');
  return `/proc/sys/${key}`;
}

function fail(op: string, key: string, e: unknown, hint = ''): never {
  const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
  throw new SysctlError(`sysctl ${op} ${key}: ${code}${hint}`, code);
}

/** Reads `key` (e.g. `net/ipv6/conf/eth0/mtu`) as trimmed text. */
export function readSysctl(key: string): string {
  try {
    const path = keyPath(key);
    // At the fd limit the spare fds make room (fd-reserve.ts).
    return withSpareFds(() => readFileSync(path, 'utf8')).trim();
  } catch (e) {
    if (e instanceof SysctlError) throw e;
    fail('read', key, e);
  }
}

export function writeSysctl(key: string, value: string | number): void {
  try {
    const path = keyPath(key);
    // At the fd limit the spare fds make room: giving a setting back must not fail with EMFILE.
    withSpareFds(() => writeFileSync(path, `${value}\n`));
  } catch (e) {
    if (e instanceof SysctlError) throw e;
    fail('write', key, e);
  }
}

/** The per-interface IPv6 keys clatd uses: `net/ipv6/conf/<if>/<key>`, except `retrans_time_ms`
 * and `proxy_delay` (in 1/100 s), which live under `net/ipv6/neigh/<if>/`. */
export type Ipv6ConfKey =
  | 'dad_transmits'
  | 'retrans_time_ms'
  | 'proxy_delay'
  | 'mtu'
  | 'accept_dad'
  | 'disable_ipv6'
  | 'accept_ra';

function ipv6Key(ifname: string, key: Ipv6ConfKey): string {
  checkIfName(ifname);
  const neigh = key === 'retrans_time_ms' || key === 'proxy_delay';
  return `net/ipv6/${neigh ? 'neigh' : 'conf'}/${ifname}/${key}`;
}

/** A missing directory means the interface does not exist (or has no IPv6): say so. */
function noInterface(e: unknown, op: string, k: string, ifname: string): unknown {
  if (e instanceof SysctlError && e.errnoName === 'ENOENT')
    return new SysctlError(`sysctl ${op} ${k}: ENOENT (no interface "${ifname}" with IPv6)`, 'ENOENT');
  return e;
}

export function readIpv6Conf(ifname: string, key: Ipv6ConfKey): number {
  const k = ipv6Key(ifname, key);
  let text: string;
  try {
    text = readSysctl(k);
  } catch (e) {
    throw noInterface(e, 'read', k, ifname);
  }
  const n = Number(text);
  if (!Number.isInteger(n)) throw new SysctlError(`sysctl read ${k}: not a number: "${text}"`, 'EINVAL');
  return n;
}

export function writeIpv6Conf(ifname: string, key: Ipv6ConfKey, value: number): void {
  const k = ipv6Key(ifname, key);
  try {
    writeSysctl(k, value);
  } catch (e) {
    throw noInterface(e, 'write', k, ifname);
  }
}

/** The DAD and MTU settings of an interface, as the daemon needs them for its own DAD. */
export interface Ipv6Conf {
  /** Number of DAD probes (RFC 4862 §5.1 DupAddrDetectTransmits). */
  readonly dadTransmits: number;
  /** Interval between probes in ms (RFC 4861 §10 RetransTimer, as learnt from RAs). */
  readonly retransTimeMs: number;
  /** The link's IPv6 MTU, which an RA's MTU option may have lowered. */
  readonly mtu: number;
  /** 0: no DAD; 1: DAD; 2: DAD, and disable IPv6 on a MAC-based duplicate. */
  readonly acceptDad: number;
  readonly disableIpv6: boolean;
}

export function ipv6Conf(ifname: string): Ipv6Conf {
  return {
    dadTransmits: readIpv6Conf(ifname, 'dad_transmits'),
    retransTimeMs: readIpv6Conf(ifname, 'retrans_time_ms'),
    mtu: readIpv6Conf(ifname, 'mtu'),
    acceptDad: readIpv6Conf(ifname, 'accept_dad'),
    disableIpv6: readIpv6Conf(ifname, 'disable_ipv6') !== 0,
  };
}

/** Turns IPv6 off (or on) on a link, e.g. the IPv4-only TUN so it sends no RS or MLD. */
export function setIpv6Disabled(ifname: string, disabled = true): void {
  writeIpv6Conf(ifname, 'disable_ipv6', disabled ? 1 : 0);
}

/**
 * The per-interface IPv4 keys clatd writes: `net/ipv4/conf/<if>/<key>`. `forwarding` is per
 * interface in the kernel: a packet is forwarded when the interface it came in on forwards
 * (IN_DEV_FORWARD reads only that interface's value); `all/forwarding` and `ip_forward` are not a
 * gate but a switch that writes every interface's value at once.
 */
export type Ipv4ConfKey = 'forwarding';

function ipv4Key(ifname: string, key: Ipv4ConfKey): string {
  checkIfName(ifname);
  return `net/ipv4/conf/${ifname}/${key}`;
}

export function readIpv4Conf(ifname: string, key: Ipv4ConfKey): number {
  const k = ipv4Key(ifname, key);
  const text = readSysctl(k);
  const n = Number(text);
  if (!Number.isInteger(n)) throw new SysctlError(`sysctl read ${k}: not a number: "${text}"`, 'EINVAL');
  return n;
}

export function writeIpv4Conf(ifname: string, key: Ipv4ConfKey, value: number): void {
  writeSysctl(ipv4Key(ifname, key), value);
}
