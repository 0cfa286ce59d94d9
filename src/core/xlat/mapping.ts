/**
 * Address mapping for both directions: EAM first (RFC 7757 §3.3, it takes precedence), then pool6
 * (RFC 6052), with the well-known-prefix rule of RFC 6052 §3.1. The packet-path forms
 * ({@link mapAddress46}, {@link mapAddress64}) keep their memo, plan and results in the caller's
 * {@link XlatState}.
 */
import { eam4to6, eam6to4, mask6Word, word6 } from '../addr/eam.js';
import { matchPrefix6 } from '../addr/ipv6.js';
import { fold, sum16 } from '../checksum.js';
import type { ResolvedConfig } from './config.js';
import type { XlatState } from './state.js';
import { wordView } from './words.js';

/** RFC 6052 §2.2: bits 64–71 of a pool6 address, the u octet, must be zero (prefixes shorter than /96). */
const U_OCTET = 8;

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
 * True for the IPv4 addresses the translator never translates, whatever the pool, given only the
 * first octet: 0.0.0.0/8 ("this network", RFC 1122 §3.2.1.3: only ever a source while booting),
 * 127.0.0.0/8 (loopback, RFC 1122 §3.2.1.3), 224.0.0.0/4 (multicast: a stateless translator keeps no
 * group state and RFC 7915 maps no multicast) and 240.0.0.0/4 (reserved, with the limited
 * broadcast 255.255.255.255). RFC 1812 §5.3.7 has routers drop these as martians and §5.3.5.1
 * never forwards a limited broadcast; RFC 7915 §4.1 silently drops "illegal" sources.
 */
export function isMartian4Octet(first: number): boolean {
  return first === 0 || first === 127 || first >= 224;
}

/** {@link isMartian4Octet} for a whole address (signed or unsigned 32-bit). */
export function isMartian4(v: number): boolean {
  return isMartian4Octet(v >>> 24);
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
  if (p.len < 96 && b[off + U_OCTET] !== 0) return NO_MAPPING;
  const v4 = ((b[off + pos[0]] << 24) | (b[off + pos[1]] << 16) | (b[off + pos[2]] << 8) | b[off + pos[3]]) >>> 0;
  if (c.pool6IsWkp && c.wkpGlobalOnly && isNonGlobal4(v4)) return NO_MAPPING;
  return v4;
}

/**
 * What {@link mapAddress64} finds, kept in {@link XlatState.mapped64}: the IPv4 address as a
 * signed 32-bit value (`>>> 0` gives the usual unsigned form; kept signed so that V8 never boxes
 * it), the 16-bit word sum of the IPv6 address (unfolded, for the RFC 1624 checksum updates), and
 * whether pool6 did the mapping. Plain fields, not a typed array: each typed array the packet
 * path touches costs loads of its length and data pointer (see Memo46).
 */
export class Mapped64 {
  v4 = 0;
  sum6 = 0;
  viaPool6 = false;
}

/**
 * pool6 in the form the 6→4 packet path wants: prefix words and masks, and whether the
 * well-known-prefix rule applies. `len` is -1 without pool6. Rebuilt by {@link Pool6Plan.plan}
 * whenever the translator is configured.
 */
export class Pool6Plan {
  /** The prefix's four words, each masked by its mask (see mask6Word). */
  w0 = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  m0 = 0;
  m1 = 0;
  m2 = 0;
  m3 = 0;
  len = -1;
  wkpRule = false;

  plan(c: ResolvedConfig): void {
    const p = c.pool6;
    this.len = p === null || c.pool6Pos === null ? -1 : p.len;
    this.wkpRule = c.pool6IsWkp && c.wkpGlobalOnly;
    const m = (k: number) => (p === null ? 0 : mask6Word(p.len, k));
    const w = (k: number) => (p === null ? 0 : word6(p.addr, 0, k) & m(k));
    this.m0 = m(0);
    this.m1 = m(1);
    this.m2 = m(2);
    this.m3 = m(3);
    this.w0 = w(0);
    this.w1 = w(1);
    this.w2 = w(2);
    this.w3 = w(3);
  }
}

/**
 * {@link map6to4} for the packet path: maps the IPv6 address at `b[off]` and leaves the results
 * in `s.mapped64` ({@link Mapped64}); false when there is no mapping. The address is read once as four words,
 * which serve the EAM lookup, the pool6 test and the checksum sum alike.
 */
export function mapAddress64(s: XlatState, b: Uint8Array, off: number): boolean {
  const c = s.config;
  const plan = s.pool6;
  const w0 = word6(b, off, 0);
  const w1 = word6(b, off, 1);
  const w2 = word6(b, off, 2);
  const w3 = word6(b, off, 3);
  const eam = c.eam;
  let v4 = 0;
  let viaPool6 = false;
  const e = eam.size === 0 ? -1 : eam.index6(w0, w1, w2, w3);
  if (e >= 0) {
    v4 = eam.v4Of6(e, b, off);
  } else {
    const len = plan.len;
    if (len < 0) return false;
    if (
      (((w0 & plan.m0) ^ plan.w0) |
        ((w1 & plan.m1) ^ plan.w1) |
        ((w2 & plan.m2) ^ plan.w2) |
        ((w3 & plan.m3) ^ plan.w3)) !==
      0
    )
      return false;
    if (len === 96) v4 = w3;
    else if (b[off + U_OCTET] !== 0) return false;
    else if (len === 32) v4 = w1;
    else {
      const pos = c.pool6Pos as readonly [number, number, number, number];
      v4 = (b[off + pos[0]] << 24) | (b[off + pos[1]] << 16) | (b[off + pos[2]] << 8) | b[off + pos[3]];
    }
    if (plan.wkpRule && isNonGlobal4(v4)) return false;
    viaPool6 = true;
  }
  const m = s.mapped64;
  m.v4 = v4;
  m.sum6 =
    (w0 >>> 16) +
    (w0 & 0xffff) +
    (w1 >>> 16) +
    (w1 & 0xffff) +
    (w2 >>> 16) +
    (w2 & 0xffff) +
    (w3 >>> 16) +
    (w3 & 0xffff);
  m.viaPool6 = viaPool6;
  return true;
}

/** Slots of the {@link Memo46} (a power of two). */
const MEMO_SLOTS = 256;
/**
 * A slot of the memo's table, in 32-bit words: the key (the IPv4 address, signed), the state (0 =
 * empty, else {@link mapAddress46}'s result plus one), the delta and the sum (see {@link Memo46}), then the IPv6
 * address as four words (native byte order, as a word view of the output reads them).
 */
const SLOT_KEY = 0;
const SLOT_STATE = 1;
const SLOT_DELTA = 2;
const SLOT_SUM6 = 3;
const SLOT_ADDR = 4;
const SLOT_WORDS = 8;

/**
 * A direct-mapped memo of {@link map4to6} (EAM lookup, then pool6): a CLAT sees the same few
 * addresses over and over, and copying 16 remembered bytes is several times cheaper than the
 * lookup. One per translator, emptied whenever it is configured. Fixed size: nothing allocated
 * per packet. One table of 8-word slots rather than an array per field: each typed array the hot
 * path touches costs loads of its length and data pointer (V8 folds them only for module-level
 * constants), measured at ~40 instructions per packet.
 */
export class Memo46 {
  readonly table = new Int32Array(MEMO_SLOTS * SLOT_WORDS);
  /** The same bytes, for copies to outputs that are not 4-byte aligned. */
  readonly bytes = new Uint8Array(this.table.buffer);
  /** Results of the last {@link mapAddress46}: its {@link mapDelta} and the sum of the IPv6 address. */
  lastDelta = 0;
  lastSum6 = 0;

  clear(): void {
    this.table.fill(0);
  }
}

/**
 * The one's-complement difference (folded, 16 bits) between the sum of the 16-byte IPv6 address
 * at `d[at]` and the sum of the IPv4 address `v4` it replaced: what replacing one by the other
 * adds to every checksum over a pseudo-header holding it. 0 or 0xffff when checksum-neutral.
 */
export function mapDelta(v4: number, d: Uint8Array, at: number): number {
  return fold((~fold((v4 >>> 16) + (v4 & 0xffff)) & 0xffff) + fold(sum16(d, at, 16)));
}

/**
 * {@link mapAddress46}'s result: bit 0 = mapped (written at `d[at]`), bit 1 = a martian address.
 * Used here through module-local names: V8 folds those, where every use of an exported binding,
 * even in its own module, is a load from its module cell and a check for the temporal dead zone.
 */
const MAPPED = 1;
const MARTIAN = 2;
export const MAP46_MAPPED = MAPPED;
export const MAP46_MARTIAN = MARTIAN;

/**
 * {@link map4to6} for the IPv4 address at `b[from]`, written at `d[at]`, through the memo; the
 * delta and sum of the result are left in `s.memo46.lastDelta` / `lastSum6`. Says, with
 * {@link MAP46_MARTIAN}, whether the address is a martian ({@link isMartian4}): remembered in the
 * memo with the mapping, so that the callers' martian checks cost nothing on a hit. The address
 * stays a signed 32-bit value (a small integer to V8) until a miss: unsigned values above 2^31
 * would be boxed as heap numbers, an allocation per packet.
 */
export function mapAddress46(s: XlatState, b: Uint8Array, from: number, d: Uint8Array, at: number): number {
  const memo = s.memo46;
  const t = memo.table;
  const v4 = (b[from] << 24) | (b[from + 1] << 16) | (b[from + 2] << 8) | b[from + 3];
  const slot = ((v4 ^ (v4 >>> 8) ^ (v4 >>> 16) ^ (v4 >>> 24)) & (MEMO_SLOTS - 1)) * SLOT_WORDS;
  // The state is the result plus one (0: an empty slot).
  const state = t[slot + SLOT_STATE];
  if (state !== 0 && t[slot + SLOT_KEY] === v4) {
    const r = state - 1;
    if ((r & MAPPED) === 0) return r;
    const w = wordView(s.words, d);
    const a = slot + SLOT_ADDR;
    if ((at & 3) === 0 && w.length !== 0) {
      const k = at >>> 2;
      w[k] = t[a];
      w[k + 1] = t[a + 1];
      w[k + 2] = t[a + 2];
      w[k + 3] = t[a + 3];
    } else {
      const m = a << 2;
      const bytes = memo.bytes;
      for (let i = 0; i < 16; i++) d[at + i] = bytes[m + i];
    }
    memo.lastDelta = t[slot + SLOT_DELTA];
    memo.lastSum6 = t[slot + SLOT_SUM6];
    return r;
  }
  const ok = map4to6(s.config, v4 >>> 0, d, at);
  const r = (ok ? MAPPED : 0) | (isMartian4(v4) ? MARTIAN : 0);
  t[slot + SLOT_KEY] = v4;
  t[slot + SLOT_STATE] = r + 1;
  if (ok) {
    const m = (slot + SLOT_ADDR) << 2;
    const bytes = memo.bytes;
    for (let i = 0; i < 16; i++) bytes[m + i] = d[at + i];
    memo.lastDelta = t[slot + SLOT_DELTA] = mapDelta(v4, d, at);
    memo.lastSum6 = t[slot + SLOT_SUM6] = fold(sum16(d, at, 16));
  }
  return r;
}
