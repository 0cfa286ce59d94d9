/**
 * When the kernel fast path may take over, and the constants it is built from. The offload
 * programs (ingress6.ts, egress4.ts) translate only the plain cases — TCP, UDP with a checksum,
 * ICMP echo; no options, extension headers or fragments; hop limit / TTL above 1; no martian IPv4
 * address; the sizes the core would send whole — for a CLAT configuration (pool6 a /96, one EAM entry CLAT-IPv4 ↔
 * CLAT-IPv6, only the CLAT's own IPv4 address as source). Further EAM entries (router mode's
 * stateless LAN subnets) are allowed away from pool6: the programs translate the CLAT pair only
 * and pass on, untouched, packets to those entries' IPv4 prefixes (the core maps them by EAM). Anything else is handed on untouched to
 * the user-space datapath, which does the rest of RFC 7915, drops and errors included. Pure.
 */

import { matchPrefix6 } from '../core/addr/ipv6.js';
import { fold, sum16 } from '../core/checksum.js';
import type { ResolvedConfig } from '../core/xlat/config.js';

export interface OffloadPlan {
  /** The CLAT IPv4 address, 4 bytes. */
  readonly clat4: Uint8Array;
  /** The CLAT IPv6 address, 16 bytes. */
  readonly clat6: Uint8Array;
  /** The first 12 bytes of the /96 NAT64 prefix. */
  readonly pool6: Uint8Array;
  /** RFC 6052 §3.1: under 64:ff9b::/96 only global IPv4 addresses are translated. */
  readonly wkpGlobalOnly: boolean;
  readonly trafficClassZero: boolean;
  /** Largest IPv4 packet 6→4 may produce. */
  readonly ipv4Mtu: number;
  /** Largest IPv6 packet 4→6 may send with DF set. */
  readonly ipv6Mtu: number;
  /** Largest IPv6 packet 4→6 may send for DF=0 (above it the core fragments). */
  readonly fragLimit: number;
  /**
   * What the address mapping adds to a TCP/UDP checksum, 6→4 and 4→6, as 16-bit one's-complement
   * values (0 when checksum-neutral, as the daemon's CLAT address is chosen to be).
   */
  readonly delta64: number;
  readonly delta46: number;
  /** Sum of the constant part of the IPv6 pseudo-header (pool6 and CLAT-IPv6 words), folded. */
  readonly pseudoConst6: number;
  /**
   * The IPv4 prefixes of the other EAM entries (4 bytes each, address and mask): a 4→6 packet to
   * one of them is the core's (mapped by EAM, not pool6), so the program passes it on.
   */
  readonly otherEam4: readonly { readonly addr: Uint8Array; readonly mask: Uint8Array }[];
}

/** Most further EAM entries the 4→6 program checks (three instructions each). */
export const MAX_OTHER_EAM = 64;

export type OffloadChoice = { readonly plan: OffloadPlan } | { readonly reason: string };

function neg(x: number): number {
  return ~x & 0xffff;
}

/** One's-complement zero (0 or 0xffff) to 0. */
function norm(x: number): number {
  return x === 0xffff ? 0 : x;
}

/**
 * True for the IPv4 addresses the core drops packets to or from, in both directions: this network
 * (0.0.0.0/8), loopback (127.0.0.0/8), multicast (224.0.0.0/4) and reserved (240.0.0.0/4). The
 * programs check the remote address (snippets.ts jumpIfMartian); the CLAT address is checked here.
 */
export function isMartian4(v: number): boolean {
  const a = v >>> 24;
  return a === 0 || a === 127 || a >= 224;
}

function bytes4(v: number): Uint8Array {
  return new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

/** Whether two IPv6 prefixes overlap (the shorter one contains the longer). */
function overlaps6(a: Uint8Array, alen: number, b: Uint8Array, blen: number): boolean {
  return alen <= blen ? matchPrefix6(b, 0, a, alen) : matchPrefix6(a, 0, b, blen);
}

/** Whether `c` (with the CLAT pair `clat4` ↔ `clat6`) is a configuration the offload can serve. */
export function planOffload(c: ResolvedConfig, clat4: number, clat6: Uint8Array): OffloadChoice {
  const p = c.pool6;
  if (p === null || p.len !== 96) return { reason: 'the NAT64 prefix is not a /96' };
  if (!c.eamSourcesOnly || c.eam.size < 1 || !c.eam.has4(clat4 | 0)) {
    return { reason: 'the configuration is not a single CLAT address mapping' };
  }
  const own = c.eam.find4(clat4 | 0);
  const others = c.eam.entries.filter((x) => x !== own);
  if (own === undefined || own.v4.len !== 32 || own.v6.len !== 128)
    return { reason: 'the configuration is not a single CLAT address mapping' };
  if (others.length > MAX_OTHER_EAM) return { reason: `more than ${MAX_OTHER_EAM} further EAM entries` };
  // A further entry under pool6 would change how remote addresses map (RFC 7757 precedence).
  if (others.some((x) => overlaps6(x.v6.addr, x.v6.len, p.addr, 96)))
    return { reason: 'an EAM entry overlaps the NAT64 prefix' };
  if (isMartian4(clat4 >>> 0)) return { reason: 'the CLAT IPv4 address is martian' };
  const e = c.eam.find6(clat6, 0);
  if (e !== own) return { reason: 'the CLAT IPv6 address has no mapping of its own' };
  if (matchPrefix6(clat6, 0, p.addr, 96)) return { reason: 'the CLAT IPv6 address lies inside the NAT64 prefix' };
  const c4 = new Uint8Array([clat4 >>> 24, (clat4 >>> 16) & 0xff, (clat4 >>> 8) & 0xff, clat4 & 0xff]);
  const pool = p.addr.slice(0, 12);
  const sumPool = fold(sum16(pool, 0, 12));
  const sumClat6 = fold(sum16(clat6, 0, 16));
  const sumClat4 = fold(sum16(c4, 0, 4));
  // 6→4 replaces (pool6 + v4 source) + CLAT-IPv6 by v4 source + CLAT-IPv4 in the pseudo-header.
  const delta64 = norm(fold(sumClat4 + neg(fold(sumPool + sumClat6))));
  return {
    plan: {
      clat4: c4,
      clat6: clat6.slice(0, 16),
      pool6: pool,
      wkpGlobalOnly: c.pool6IsWkp && c.wkpGlobalOnly,
      trafficClassZero: c.trafficClass === 'zero',
      ipv4Mtu: c.ipv4Mtu,
      ipv6Mtu: c.ipv6Mtu,
      fragLimit: Math.min(c.lowestIpv6Mtu, c.ipv6Mtu),
      delta64,
      delta46: norm(neg(delta64)),
      pseudoConst6: fold(sumPool + sumClat6),
      otherEam4: others.map((x) => {
        const m = x.v4.len === 0 ? 0 : (0xffffffff << (32 - x.v4.len)) >>> 0;
        return { addr: bytes4(x.v4.addr & m), mask: bytes4(m) };
      }),
    },
  };
}
