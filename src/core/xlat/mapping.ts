/**
 * Address mapping for both directions: EAM first (RFC 7757 §3.3, it takes precedence), then pool6
 * (RFC 6052), with the well-known-prefix rule of RFC 6052 §3.1.
 */
import { eam4to6, eam6to4 } from '../addr/eam.js';
import { matchPrefix6 } from '../addr/ipv6.js';
import type { ResolvedConfig } from './config.js';

/** Returned by {@link map6to4} when an address has no IPv4 mapping. */
export const NO_MAPPING = -1;

/**
 * True for IPv4 addresses that RFC 6052 §3.1 forbids under 64:ff9b::/96: the non-global ranges of
 * the IANA special-purpose registry (RFC 6890) — this host, private, shared, loopback, link-local,
 * IETF protocol assignments, documentation, benchmarking, multicast and reserved.
 */
export function isNonGlobal4(v: number): boolean {
  const a = v >>> 24;
  const b = (v >>> 16) & 0xff;
  const c = (v >>> 8) & 0xff;
  return (
    a === 0 ||
    a === 10 ||
    (a === 100 && (b & 0xc0) === 64) ||
    a === 127 ||
    (a === 169 && b === 254) ||
    (a === 172 && (b & 0xf0) === 16) ||
    (a === 192 && b === 0 && c === 0) ||
    (a === 192 && b === 0 && c === 2) ||
    (a === 192 && b === 168) ||
    (a === 198 && (b & 0xfe) === 18) ||
    (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113) ||
    a >= 224
  );
}

/**
 * Writes the IPv6 address for IPv4 `v4` at `out[off]`. Returns false when `v4` has no mapping
 * (no EAM entry and no pool6, or the well-known prefix would carry a non-global address).
 */
export function map4to6(c: ResolvedConfig, v4: number, out: Uint8Array, off: number): boolean {
  if (c.eam.size !== 0) {
    const e = c.eam.find4(v4);
    if (e) {
      eam4to6(e, v4, out, off);
      return true;
    }
  }
  const p = c.pool6;
  const pos = c.pool6Pos;
  if (p === null || pos === null) return false;
  if (c.pool6IsWkp && c.wkpGlobalOnly && isNonGlobal4(v4)) return false;
  const n = p.len >>> 3;
  for (let i = 0; i < n; i++) out[off + i] = p.addr[i];
  for (let i = n; i < 16; i++) out[off + i] = 0;
  out[off + pos[0]] = v4 >>> 24;
  out[off + pos[1]] = v4 >>> 16;
  out[off + pos[2]] = v4 >>> 8;
  out[off + pos[3]] = v4;
  return true;
}

/**
 * The IPv4 address for the IPv6 address at `b[off]`, or {@link NO_MAPPING}. A pool6 address must
 * have a zero u octet (RFC 6052 §2.2); suffix bits are ignored.
 */
export function map6to4(c: ResolvedConfig, b: Uint8Array, off: number): number {
  if (c.eam.size !== 0) {
    const e = c.eam.find6(b, off);
    if (e) return eam6to4(e, b, off);
  }
  const p = c.pool6;
  const pos = c.pool6Pos;
  if (p === null || pos === null || !matchPrefix6(b, off, p.addr, p.len)) return NO_MAPPING;
  if (p.len < 96 && b[off + 8] !== 0) return NO_MAPPING;
  const v4 = ((b[off + pos[0]] << 24) | (b[off + pos[1]] << 16) | (b[off + pos[2]] << 8) | b[off + pos[3]]) >>> 0;
  if (c.pool6IsWkp && c.wkpGlobalOnly && isNonGlobal4(v4)) return NO_MAPPING;
  return v4;
}
