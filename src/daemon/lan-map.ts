/**
 * Router mode's stateless mapping (RFC 6877 §6.3 "a dedicated IPv6 prefix", RFC 7757 EAM): each
 * LAN subnet a.b.c.d/N is mapped 1:1 into the first /96 of the routed prefix (--v6-prefix), the
 * IPv4 address written in the last 32 bits, so that a LAN device's IPv6 address reads as its IPv4
 * one: 203.0.113.0/24 ↔ P::203.0.113.0/120 (P::cb00:7100/120). The CLAT's own address is drawn
 * elsewhere in the prefix (outside that /96), which is why the prefix must be /95 or shorter.
 * Pure: no ports.
 */
import { formatIPv6, matchPrefix6, parseIPv6 } from '../core/addr/ipv6.js';
import { type Prefix6, parsePrefix4 } from '../core/addr/prefix.js';

/** How the LANs reach the CLAT: masqueraded into its address, or each device mapped into the prefix. */
export type LanMode = 'nat44' | 'stateless';

/** The longest --v6-prefix stateless mode accepts: the LANs take its first /96, the CLAT the rest. */
export const STATELESS_MAX_PREFIX_LEN = 95;

/**
 * Most LAN subnets mapped: each adds a check to the receive filter (whose forward jumps reach
 * 255 instructions) and to the 4→6 fast path program. More are said and left unmapped.
 */
export const MAX_MAPPED = 16;

/** One EAM entry: a LAN subnet and the IPv6 prefix it is mapped to. */
export interface LanEam {
  v4: string;
  v6: string;
}

/** The /96 of `prefix` the LANs are mapped into (its first one). */
export function lanBlock(prefix: Prefix6): Prefix6 {
  if (prefix.len > STATELESS_MAX_PREFIX_LEN)
    throw new Error(`a prefix of /${STATELESS_MAX_PREFIX_LEN} or shorter is needed, got /${prefix.len}`);
  const addr = new Uint8Array(16);
  addr.set(prefix.addr.subarray(0, 12));
  return { addr, len: 96 };
}

/** The EAM entries for the LAN `subnets` (`203.0.113.0/24`) in `prefix`, sorted, without duplicates. */
export function lanEam(prefix: Prefix6, subnets: readonly string[]): LanEam[] {
  const block = lanBlock(prefix);
  const out = new Map<string, LanEam>();
  for (const s of subnets) {
    const p = parsePrefix4(s);
    const addr = new Uint8Array(block.addr);
    addr[12] = p.addr >>> 24;
    addr[13] = (p.addr >>> 16) & 255;
    addr[14] = (p.addr >>> 8) & 255;
    addr[15] = p.addr & 255;
    const v4 = `${addr[12]}.${addr[13]}.${addr[14]}.${addr[15]}/${p.len}`;
    out.set(v4, { v4, v6: `${formatIPv6(addr)}/${96 + p.len}` });
  }
  return [...out.values()].sort((a, b) => (a.v4 < b.v4 ? -1 : a.v4 > b.v4 ? 1 : 0));
}

/** Whether `address` (16 bytes) lies in the LANs' /96 of `prefix`: the CLAT must not take it. */
export function inLanBlock(prefix: Prefix6, address: Uint8Array): boolean {
  const b = lanBlock(prefix);
  return matchPrefix6(address, 0, b.addr, b.len);
}

/** Draws before giving up (each lands in the LANs' /96 with a chance of 1/2 at worst, for a /95). */
const DRAWS = 64;

/**
 * `draw` (random CLAT addresses in `prefix`), redrawn while one lands in the LANs' /96: there the
 * address would be a LAN device's, and the EAM entries would overlap.
 */
export function drawOutsideLanBlock(draw: () => string, prefix: Prefix6): () => string {
  return () => {
    for (let i = 0; i < DRAWS; i++) {
      const a = draw();
      if (!inLanBlock(prefix, parseIPv6(a))) return a;
    }
    throw new Error(`no CLAT address outside the LANs' ${formatIPv6(lanBlock(prefix).addr)}/96 in ${DRAWS} draws`);
  };
}
