/**
 * Address mapping for both directions: EAM first (RFC 7757 §3.3, it takes precedence), then pool6
 * (RFC 6052), with the well-known-prefix rule of RFC 6052 §3.1.
 */
import { eam4to6, eam6to4, mask6Word, word6 } from '../addr/eam.js';
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

/**
 * What {@link mapAddress64} found: the IPv4 address as a signed 32-bit value (`>>> 0` gives the
 * usual unsigned form; kept signed so that V8 never boxes it), the 16-bit word sum of the IPv6
 * address (unfolded, for the RFC 1624 checksum updates), and whether pool6 did the mapping.
 */
export const mapped64 = new Int32Array(3);
export const M64_V4 = 0;
export const M64_SUM6 = 1;
export const M64_VIA_POOL6 = 2;

/**
 * pool6 in the form the packet path wants, rebuilt when the configuration object changes (it is
 * immutable; reconfiguring makes a new one): prefix words and masks, and whether the
 * well-known-prefix rule applies. `pool6Len` is -1 without pool6.
 */
let planFor: ResolvedConfig | null = null;
const pool6Words = new Int32Array(4);
const pool6Masks = new Int32Array(4);
let pool6Len = -1;
let wkpRule = false;

function plan(c: ResolvedConfig): void {
  planFor = c;
  const p = c.pool6;
  pool6Len = p === null || c.pool6Pos === null ? -1 : p.len;
  wkpRule = c.pool6IsWkp && c.wkpGlobalOnly;
  for (let k = 0; k < 4; k++) {
    pool6Masks[k] = p === null ? 0 : mask6Word(p.len, k);
    pool6Words[k] = p === null ? 0 : word6(p.addr, 0, k) & pool6Masks[k];
  }
}

/**
 * {@link map6to4} for the packet path: maps the IPv6 address at `b[off]` and leaves the results
 * in {@link mapped64}; false when there is no mapping. The address is read once as four words,
 * which serve the EAM lookup, the pool6 test and the checksum sum alike.
 */
export function mapAddress64(c: ResolvedConfig, b: Uint8Array, off: number): boolean {
  if (c !== planFor) plan(c);
  const w0 = word6(b, off, 0);
  const w1 = word6(b, off, 1);
  const w2 = word6(b, off, 2);
  const w3 = word6(b, off, 3);
  const eam = c.eam;
  let v4 = 0;
  let viaPool6 = 0;
  const e = eam.size === 0 ? -1 : eam.index6(w0, w1, w2, w3);
  if (e >= 0) {
    v4 = eam.v4Of6(e, b, off);
  } else {
    const len = pool6Len;
    if (len < 0) return false;
    if (
      (((w0 & pool6Masks[0]) ^ pool6Words[0]) |
        ((w1 & pool6Masks[1]) ^ pool6Words[1]) |
        ((w2 & pool6Masks[2]) ^ pool6Words[2]) |
        ((w3 & pool6Masks[3]) ^ pool6Words[3])) !==
      0
    )
      return false;
    if (len === 96) v4 = w3;
    else if (b[off + 8] !== 0) return false;
    else if (len === 32) v4 = w1;
    else {
      const pos = c.pool6Pos as readonly [number, number, number, number];
      v4 = (b[off + pos[0]] << 24) | (b[off + pos[1]] << 16) | (b[off + pos[2]] << 8) | b[off + pos[3]];
    }
    if (wkpRule && isNonGlobal4(v4)) return false;
    viaPool6 = 1;
  }
  mapped64[M64_V4] = v4;
  mapped64[M64_SUM6] =
    (w0 >>> 16) +
    (w0 & 0xffff) +
    (w1 >>> 16) +
    (w1 & 0xffff) +
    (w2 >>> 16) +
    (w2 & 0xffff) +
    (w3 >>> 16) +
    (w3 & 0xffff);
  mapped64[M64_VIA_POOL6] = viaPool6;
  return true;
}
