/**
 * The settings of `clatd run`: the values of the one table of options (run-options.ts) that serves
 * the command line, the TOML file (every flag is also a key of the same name) and `--help`. Values
 * merge as flags > file > defaults and are validated in one place, so a bad value gets the same
 * one-line error naming the flag (or the file and key) wherever it came from.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseToml } from 'smol-toml';
import { parseIPv4 } from '../core/addr/ipv4.js';
import { parseIPv6 } from '../core/addr/ipv6.js';
import { type Prefix6, parsePrefix6 } from '../core/addr/prefix.js';
import { validateRfc6052Prefix } from '../core/addr/rfc6052.js';
import { IN_PREFIX_MAX_LEN, IN_PREFIX_MIN_LEN } from '../core/nd/neutral.js';
import { UsageError } from '../options/args.js';
import { type LanMode, STATELESS_MAX_PREFIX_LEN } from './lan-map.js';
import { RUN_OPTIONS } from './run-options.js';

export { RUN_OPTIONS, RUN_SPEC } from './run-options.js';

export type Mode = 'auto' | 'always';
export type DadMode = 'strict' | 'optimistic' | 'off';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

/** The translator settings a user may want to change; the rest follows from discovery. */
export interface TranslatorSettings {
  trafficClass: 'copy' | 'zero';
  udpZeroChecksum: 'compute' | 'drop';
  /** Source of ICMPv4 errors for IPv6 senders without an IPv4 mapping (RFC 7600). */
  icmpSrcV4: string;
  lowestIpv6Mtu: number;
  /** RFC 6052 §3.1: the well-known prefix carries only global IPv4 addresses. */
  wkpGlobalOnly: boolean;
}

export interface RunConfig {
  interface?: string;
  pref64?: Prefix6;
  /** Seconds to wait for a NAT64 prefix before giving up; undefined waits forever. */
  pref64Timeout?: number;
  dns64Servers: string[];
  mode: Mode;
  v4?: string;
  /** The address the network leased to this host for the CLAT (address mode 4). */
  v6?: string;
  /** A prefix routed or delegated to the host, /32 to /96: the CLAT address is drawn in it (address mode 3). */
  v6Prefix?: Prefix6;
  /** Address mode 5: the private /64 the CLAT's own address is drawn in (undefined: a random ULA per run). */
  sharedPrefix?: Prefix6;
  dad: DadMode;
  /** Metric of the IPv4 default route; undefined: 2048 plus the uplink's place among the IPv6 default routes. */
  routeMetric?: number;
  /** IPv4 MTU of the TUN, overriding the one derived from the uplink's path MTU. */
  mtu?: number;
  workers?: number;
  /** auto: translate plain TCP, UDP and ping in the kernel (tc eBPF) when it can; off: never. */
  offload: 'auto' | 'off';
  translator: TranslatorSettings;
  configFile?: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Control socket path; undefined means /run/clatd/<uplink>.sock once the uplink is known. */
  control?: string;
  metrics?: { host: string; port: number };
  metricsAllowRemote: boolean;
  /** Started as root, run as this user (name, uid or uid:gid) with only the capabilities needed. */
  user?: string;
  /** Router mode: IPv4 LAN interfaces served through the CLAT (needs --interface). */
  lan: string[];
  /** Router mode: NAT44 into the CLAT address, or each LAN device mapped into --v6-prefix (lan-map.ts). */
  lanMode: LanMode;
}

export const DEFAULTS = {
  mode: 'auto',
  offload: 'auto',
  dad: 'strict',
  logLevel: 'info',
  logFormat: 'text',
  trafficClass: 'copy',
  udpZeroChecksum: 'compute',
  icmpSrcV4: '192.0.0.8',
  lowestIpv6Mtu: 1280,
  wkpGlobalOnly: true,
} as const;

export const CONTROL_DIR = '/run/clatd';

export function defaultControlPath(uplink: string): string {
  return `${CONTROL_DIR}/${uplink}.sock`;
}

/** Raw values by option name, as strings (or string lists, or booleans), from flags or the file. */
export type RawValues = Record<string, string | boolean | string[] | undefined>;

/** Where a value came from, for error messages: `--flag` or `FILE: key "flag"`. */
type Origin = (name: string) => string;

/** Reads and checks a TOML config file into raw values; keys are option names (kebab-case). */
export function readConfigFile(path: string, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): RawValues {
  let text: string;
  try {
    text = read(path);
  } catch (e) {
    throw new UsageError(`clatd run: --config: cannot read ${path}: ${(e as Error).message}`);
  }
  return tomlToRaw(text, path);
}

/**
 * A TOML syntax error as `FILE:LINE:COLUMN: what`, with a hint when the line holds a bare value
 * that should have been quoted (`pref64 = 64:ff9b::/96` reads as a broken date to TOML).
 */
function tomlError(e: unknown, text: string, path: string): UsageError {
  const err = e as Error & { line?: number; column?: number };
  const what = err.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
  const at = err.line !== undefined && err.column !== undefined ? `${path}:${err.line}:${err.column}` : path;
  let hint = '';
  const line = err.line === undefined ? undefined : text.split(/\r?\n/)[err.line - 1];
  const bare = line === undefined ? null : /^\s*([A-Za-z0-9_-]+)\s*=\s*([^\s"'[{#][^#]*?)\s*(#.*)?$/.exec(line);
  if (bare && !/^(true|false|[+-]?\d[\d_]*(\.\d+)?)$/.test(bare[2])) {
    hint = `; a text value is written in quotes: ${bare[1]} = "${bare[2]}"`;
  }
  return new UsageError(`clatd run: ${at}: invalid TOML: ${what}${hint}`);
}

export function tomlToRaw(text: string, path: string): RawValues {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw tomlError(e, text, path);
  }
  const out: RawValues = {};
  for (const [key, v] of Object.entries(doc)) {
    const spec = RUN_OPTIONS[key];
    if (!spec || key === 'config') throw new UsageError(`clatd run: ${path}: unknown key "${key}"`);
    const where = `clatd run: ${path}: key "${key}"`;
    if (spec.type === 'boolean') {
      if (typeof v !== 'boolean') throw new UsageError(`${where} must be true or false`);
      out[key] = v;
    } else if (spec.multiple) {
      const list = Array.isArray(v) ? v : [v];
      if (!list.every((x) => typeof x === 'string'))
        throw new UsageError(`${where} must be a string or a list of strings`);
      out[key] = list as string[];
    } else if (typeof v === 'string') {
      out[key] = v;
    } else if (typeof v === 'number' && Number.isInteger(v)) {
      out[key] = String(v);
    } else if (typeof v === 'boolean' && RUN_OPTIONS[key].value === 'on|off') {
      out[key] = v ? 'on' : 'off';
    } else if (spec.value === 'N' || spec.value === 'SECONDS') {
      throw new UsageError(`${where} must be a whole number, got ${JSON.stringify(v)}`);
    } else {
      throw new UsageError(`${where} must be a string, got ${JSON.stringify(v)}`);
    }
  }
  return out;
}

/**
 * Merges flags over file values over defaults and validates the result. Errors are UsageErrors
 * naming the flag, or the file and key when the value came from the file.
 */
export function resolveConfig(
  flags: RawValues,
  file: RawValues = {},
  filePath?: string,
  /** The command whose flags these are, named in errors (`clatd discover: --pref64 …`). */
  command = 'run',
): RunConfig {
  const origin: Origin = (name) =>
    flags[name] !== undefined || filePath === undefined
      ? `clatd ${command}: --${name}`
      : `clatd ${command}: ${filePath}: key "${name}"`;
  const pick = <T extends string | boolean | string[]>(name: string): T | undefined =>
    (flags[name] ?? file[name]) as T | undefined;
  const str = (name: string) => pick<string>(name);
  const fail = (name: string, what: string): never => {
    throw new UsageError(`${origin(name)} ${what}`);
  };
  const int = (name: string, min: number, max: number): number | undefined => {
    const v = str(name);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) fail(name, `must be an integer, got "${v}"`);
    const n = Number(v);
    if (n < min || n > max) fail(name, `must be between ${min} and ${max}, got ${n}`);
    return n;
  };
  const oneOf = <T extends string>(name: string, choices: readonly T[], def: T): T => {
    const v = str(name);
    if (v === undefined) return def;
    if (!(choices as readonly string[]).includes(v)) fail(name, `must be one of ${choices.join(', ')}, got "${v}"`);
    return v as T;
  };

  const iface = str('interface');
  if (iface !== undefined && (iface.length === 0 || iface.length > 15 || /[\s/:]/.test(iface))) {
    fail('interface', `is not a valid interface name: "${iface}"`);
  }

  let pref64: Prefix6 | undefined;
  const p = str('pref64');
  if (p !== undefined) {
    try {
      pref64 = parsePrefix6(p.includes('/') ? p : `${p}/96`);
      validateRfc6052Prefix(pref64);
    } catch (e) {
      fail('pref64', `is not a NAT64 prefix: ${(e as Error).message}`);
    }
  }

  const servers = pick<string[] | string>('dns64-server');
  const dns64Servers = servers === undefined ? [] : Array.isArray(servers) ? servers : [servers];
  for (const s of dns64Servers) {
    const host = s.startsWith('[') ? s.slice(1, s.indexOf(']')) : s;
    if (isIP(host) === 0 && isIP(s) === 0) fail('dns64-server', `must be an IP address, got "${s}"`);
  }

  const v4 = str('v4');
  if (v4 !== undefined) {
    try {
      parseIPv4(v4);
    } catch {
      fail('v4', `must be an IPv4 address, got "${v4}"`);
    }
  }
  const v6 = str('v6');
  // `--v6 shared`: address mode 5, the host's own address (uplink-mode.ts).
  if (v6 !== undefined && v6 !== 'shared') {
    let b: Uint8Array | undefined;
    try {
      b = parseIPv6(v6);
    } catch {
      fail('v6', `must be an IPv6 address, got "${v6}"`);
    }
    if (b && (b[0] === 0xff || (b[0] === 0xfe && (b[1] & 0xc0) === 0x80))) {
      fail('v6', `must be a unicast address outside fe80::/10, got "${v6}"`);
    }
  }
  const v6Prefix = parseV6Prefix(str('v6-prefix'), (what) => fail('v6-prefix', what));
  const sharedPrefix = parseSharedPrefix(str('shared-prefix'), (what) => fail('shared-prefix', what));
  if (v6 !== undefined && v6Prefix !== undefined) {
    fail(
      'v6-prefix',
      'and --v6 exclude each other: --v6 is one leased address, --v6-prefix a routed prefix to draw in',
    );
  }
  const icmpSrcV4 = str('icmp-src-v4') ?? DEFAULTS.icmpSrcV4;
  try {
    parseIPv4(icmpSrcV4);
  } catch {
    fail('icmp-src-v4', `must be an IPv4 address, got "${icmpSrcV4}"`);
  }

  const wkp = oneOf('wkp-global-only', ['on', 'off'] as const, DEFAULTS.wkpGlobalOnly ? 'on' : 'off');
  const metricsText = str('metrics');
  let metrics: RunConfig['metrics'];
  const allowRemote = pick<boolean>('metrics-allow-remote') === true;
  if (metricsText !== undefined) {
    metrics = parseHostPort(metricsText, (what) => fail('metrics', what));
    if (!allowRemote && !isLoopback(metrics.host)) {
      fail('metrics', `address ${metrics.host} is not loopback; add --metrics-allow-remote to serve it there`);
    }
  }
  const user = str('user');
  if (user !== undefined && !/^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$|^\d+:\d+$/.test(user)) {
    fail('user', `must be a user name, a uid or uid:gid, got "${user}"`);
  }
  const control = str('control');
  if (control !== undefined && !control.startsWith('/')) fail('control', `must be an absolute path, got "${control}"`);
  const lanList = pick<string[] | string>('lan');
  const lan = lanList === undefined ? [] : Array.isArray(lanList) ? [...new Set(lanList)] : [lanList];
  for (const l of lan) {
    if (l.length === 0 || Buffer.byteLength(l) > 15 || /["\\\s/:]|[^\x21-\x7e]/.test(l))
      fail('lan', `is not a valid interface name: "${l}"`);
    if (l === iface) fail('lan', `names the uplink ${l}: a LAN is another interface`);
    if (l.startsWith('v4-')) fail('lan', `"${l}" looks like a CLAT's TUN (v4-…), not a LAN interface`);
  }
  if (lan.length > 0 && iface === undefined)
    fail(
      'lan',
      'needs --interface: in router mode the uplink is named, so that the LAN rules and the settings clatd records belong to it from the start',
    );
  const lanMode = oneOf('lan-mode', ['nat44', 'stateless'] as const, 'nat44');
  if (lanMode === 'stateless') {
    if (lan.length === 0) fail('lan-mode', 'stateless is a way of serving LANs: give the LAN interfaces with --lan');
    if (v6Prefix === undefined)
      fail(
        'lan-mode',
        'stateless needs --v6-prefix: each LAN device gets its own address in a prefix routed to this host',
      );
    else if (v6Prefix.len > STATELESS_MAX_PREFIX_LEN)
      fail(
        'lan-mode',
        `stateless needs --v6-prefix /${STATELESS_MAX_PREFIX_LEN} or shorter: the LANs take its first /96 and the CLAT's own address lies outside it, got /${v6Prefix.len}`,
      );
  }

  return {
    interface: iface,
    pref64,
    pref64Timeout: int('pref64-timeout', 1, 86400),
    dns64Servers,
    mode: oneOf('mode', ['auto', 'always'] as const, DEFAULTS.mode),
    v4,
    v6,
    v6Prefix,
    sharedPrefix,
    dad: oneOf('dad', ['strict', 'optimistic', 'off'] as const, DEFAULTS.dad),
    routeMetric: int('route-metric', 0, 0xffffffff),
    mtu: int('mtu', 576, 65507),
    workers: int('workers', 0, 256),
    offload: oneOf('offload', ['auto', 'off'] as const, DEFAULTS.offload),
    translator: {
      trafficClass: oneOf('traffic-class', ['copy', 'zero'] as const, DEFAULTS.trafficClass),
      udpZeroChecksum: oneOf('udp-zero-checksum', ['compute', 'drop'] as const, DEFAULTS.udpZeroChecksum),
      icmpSrcV4,
      lowestIpv6Mtu: int('lowest-ipv6-mtu', 1280, 65535) ?? DEFAULTS.lowestIpv6Mtu,
      wkpGlobalOnly: wkp === 'on',
    },
    configFile: str('config'),
    logLevel: oneOf('log-level', ['debug', 'info', 'warn', 'error'] as const, DEFAULTS.logLevel),
    logFormat: oneOf('log-format', ['text', 'json'] as const, DEFAULTS.logFormat),
    control,
    metrics,
    metricsAllowRemote: allowRemote,
    user,
    lan,
    lanMode,
  };
}

/**
 * --v6-prefix: a prefix (no host bits) of /32 to /96 — the CLAT address takes 16 neutral and at
 * least 16 random bits after it — and a global unicast one (not multicast, link-local or ::).
 */
function parseV6Prefix(text: string | undefined, fail: (what: string) => never): Prefix6 | undefined {
  if (text === undefined) return undefined;
  if (!text.includes('/')) return fail(`must be a prefix with its length, e.g. 2001:db8:99::/64, got "${text}"`);
  let p: Prefix6;
  try {
    p = parsePrefix6(text);
  } catch (e) {
    return fail(`is not a prefix: ${(e as Error).message}`);
  }
  if (p.len < IN_PREFIX_MIN_LEN || p.len > IN_PREFIX_MAX_LEN) {
    return fail(
      `must be /${IN_PREFIX_MIN_LEN} to /${IN_PREFIX_MAX_LEN} (the address needs 16 checksum-neutral and at least 16 random bits), got /${p.len}`,
    );
  }
  const b = p.addr;
  if (b[0] === 0xff || (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) || b.every((x) => x === 0)) {
    return fail(`must be a global unicast prefix, got "${text}"`);
  }
  return p;
}

/** --shared-prefix: a /64 (no host bits), unicast; the CLAT's private address in mode 5 is drawn in it. */
function parseSharedPrefix(text: string | undefined, fail: (what: string) => never): Prefix6 | undefined {
  if (text === undefined) return undefined;
  let p: Prefix6;
  try {
    p = parsePrefix6(text);
  } catch (e) {
    return fail(`is not a prefix: ${(e as Error).message}`);
  }
  if (p.len !== 64) return fail(`must be a /64, got /${p.len}`);
  const b = p.addr;
  if (b[0] === 0xff || (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) || b.every((x) => x === 0)) {
    return fail(`must be a unicast prefix, got "${text}"`);
  }
  return p;
}

/** Parses `HOST:PORT` or `[V6]:PORT`; `fail` gets the reason. */
export function parseHostPort(text: string, fail: (what: string) => never): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) return fail(`must be HOST:PORT or [IPV6]:PORT, got "${text}"`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return fail(`port must be between 1 and 65535, got ${m[2]}`);
  const host = m[1] === 'localhost' ? '127.0.0.1' : m[1];
  if (isIP(host) === 0) return fail(`host must be an IP address or localhost, got "${m[1]}"`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  return host === '::1' || /^127\./.test(host);
}

/** Loads a whole configuration: flags, then the file they name (if any), merged and checked. */
export function loadConfig(flags: RawValues, read?: (p: string) => string): RunConfig {
  const path = flags.config as string | undefined;
  const file = path === undefined ? {} : readConfigFile(path, read);
  return resolveConfig(flags, file, path);
}
