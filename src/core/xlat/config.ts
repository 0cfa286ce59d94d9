/**
 * The translator's configuration: a general SIIT configuration (RFC 7915 + RFC 6052 + RFC 7757),
 * of which a CLAT is one case (pool6 = the network's PREF64, one EAM entry CLAT-IPv4/32 ↔
 * CLAT-IPv6/128). `resolveConfig` validates the text form once; the packet path reads only the
 * resolved form.
 */
import { EamTable } from '../addr/eam.js';
import { parseIPv4 } from '../addr/ipv4.js';
import { parseIPv6 } from '../addr/ipv6.js';
import { type Prefix6, parsePrefix4, parsePrefix6 } from '../addr/prefix.js';
import { rfc6052Positions, validateRfc6052Prefix } from '../addr/rfc6052.js';
import { ConfigError } from '../errors.js';

export interface TranslatorConfig {
  /** RFC 6052 prefix (/32, /40, /48, /56, /64 or /96), or null for EAM-only. */
  pool6?: string | null;
  /** EAM entries, IPv4 prefix ↔ IPv6 prefix. */
  eam?: ReadonlyArray<{ v4: string; v6: string }>;
  /** The translator's own IPv4 address: source of the ICMPv4 errors it generates. */
  ownV4?: string | null;
  /** The translator's own IPv6 address: source of the ICMPv6 errors it generates. */
  ownV6?: string | null;
  /** IPv4 source for translated ICMPv6 errors whose source has no IPv4 mapping (RFC 6791 / RFC 7600). */
  icmpSrcV4?: string | null;
  /** IPv4 packets with DF=0 larger than this once translated are fragmented (RFC 7915 §4). */
  lowestIpv6Mtu?: number;
  /** MTU of the link IPv4 packets leave on. */
  ipv4Mtu?: number;
  /** MTU of the link IPv6 packets leave on. */
  ipv6Mtu?: number;
  /** IPv4 UDP with checksum zero: compute it (unfragmented only) or drop (RFC 7915 §4.5). */
  udpZeroChecksum?: 'compute' | 'drop';
  /** Traffic Class / TOS: copy (RFC 7915 default) or zero. */
  trafficClass?: 'copy' | 'zero';
  /** RFC 7757 §4 hairpinning. */
  hairpin?: boolean;
  /**
   * Which IPv4 sources 4→6 translates: any (SIIT), or only addresses with an EAM entry. A host
   * CLAT sets 'eam': its only legitimate IPv4 source is its own address, and embedding any other
   * source under pool6 would send IPv6 packets with spoofed NAT64-prefix sources.
   */
  v4Sources?: 'any' | 'eam';
  /** RFC 6052 §3.1: the well-known prefix 64:ff9b::/96 carries only global IPv4 addresses. */
  wkpGlobalOnly?: boolean;
  /** TTL / hop limit of the ICMP errors the translator generates. */
  generatedTtl?: number;
}

export interface ResolvedConfig {
  readonly pool6: Prefix6 | null;
  /** IPv4 byte positions inside pool6 addresses (RFC 6052), or null. */
  readonly pool6Pos: readonly [number, number, number, number] | null;
  /** pool6 is exactly 64:ff9b::/96. */
  readonly pool6IsWkp: boolean;
  readonly eam: EamTable;
  readonly ownV4: number | null;
  readonly ownV6: Uint8Array | null;
  readonly icmpSrcV4: number | null;
  readonly lowestIpv6Mtu: number;
  readonly ipv4Mtu: number;
  readonly ipv6Mtu: number;
  readonly udpZeroChecksum: 'compute' | 'drop';
  readonly trafficClass: 'copy' | 'zero';
  readonly hairpin: boolean;
  /** Only IPv4 sources with an EAM entry are translated 4→6. */
  readonly eamSourcesOnly: boolean;
  readonly wkpGlobalOnly: boolean;
  readonly generatedTtl: number;
}

export const DEFAULTS = {
  icmpSrcV4: '192.0.0.8',
  lowestIpv6Mtu: 1280,
  ipv4Mtu: 1500,
  ipv6Mtu: 1500,
  udpZeroChecksum: 'compute',
  trafficClass: 'copy',
  hairpin: true,
  wkpGlobalOnly: true,
  generatedTtl: 64,
} as const;

function wrap<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new ConfigError(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function mtu(name: string, v: number | undefined, def: number, min: number): number {
  const m = v ?? def;
  if (!Number.isInteger(m) || m < min || m > 65535)
    throw new ConfigError(`${name} must be an integer in ${min}..65535, got ${m}`);
  return m;
}

export function resolveConfig(c: TranslatorConfig): ResolvedConfig {
  const pool6 = c.pool6 ? wrap('pool6', () => parsePrefix6(c.pool6 as string)) : null;
  if (pool6) wrap('pool6', () => validateRfc6052Prefix(pool6));
  const eam = new EamTable(
    (c.eam ?? []).map((e) => wrap(`EAM ${e.v4}=${e.v6}`, () => ({ v4: parsePrefix4(e.v4), v6: parsePrefix6(e.v6) }))),
  );
  const icmpSrc = c.icmpSrcV4 === undefined ? DEFAULTS.icmpSrcV4 : c.icmpSrcV4;
  const ttl = c.generatedTtl ?? DEFAULTS.generatedTtl;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new ConfigError(`generatedTtl must be 1..255, got ${ttl}`);
  const choice = <T extends string>(name: string, v: T | undefined, ok: readonly T[], def: T): T => {
    const x = v ?? def;
    if (!ok.includes(x)) throw new ConfigError(`${name} must be one of ${ok.join(', ')}, got "${x}"`);
    return x;
  };
  return {
    pool6,
    pool6Pos: pool6 ? rfc6052Positions(pool6.len) : null,
    pool6IsWkp:
      pool6 !== null &&
      pool6.len === 96 &&
      pool6.addr[0] === 0 &&
      pool6.addr[1] === 0x64 &&
      pool6.addr[2] === 0xff &&
      pool6.addr[3] === 0x9b &&
      pool6.addr.subarray(4, 12).every((x) => x === 0),
    eam,
    ownV4: c.ownV4 ? wrap('ownV4', () => parseIPv4(c.ownV4 as string)) : null,
    ownV6: c.ownV6 ? wrap('ownV6', () => parseIPv6(c.ownV6 as string)) : null,
    icmpSrcV4: icmpSrc ? wrap('icmpSrcV4', () => parseIPv4(icmpSrc)) : null,
    lowestIpv6Mtu: mtu('lowestIpv6Mtu', c.lowestIpv6Mtu, DEFAULTS.lowestIpv6Mtu, 1280),
    ipv4Mtu: mtu('ipv4Mtu', c.ipv4Mtu, DEFAULTS.ipv4Mtu, 68),
    ipv6Mtu: mtu('ipv6Mtu', c.ipv6Mtu, DEFAULTS.ipv6Mtu, 1280),
    udpZeroChecksum: choice('udpZeroChecksum', c.udpZeroChecksum, ['compute', 'drop'], DEFAULTS.udpZeroChecksum),
    trafficClass: choice('trafficClass', c.trafficClass, ['copy', 'zero'], DEFAULTS.trafficClass),
    hairpin: c.hairpin ?? DEFAULTS.hairpin,
    eamSourcesOnly: choice('v4Sources', c.v4Sources, ['any', 'eam'], 'any') === 'eam',
    wkpGlobalOnly: c.wkpGlobalOnly ?? DEFAULTS.wkpGlobalOnly,
    generatedTtl: ttl,
  };
}
