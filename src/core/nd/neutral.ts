/**
 * Checksum-neutral CLAT IPv6 addresses (after Android's `makeChecksumNeutral` in libclat).
 *
 * TCP, UDP and ICMPv6 checksums cover a pseudo-header holding both addresses. If the CLAT's IPv6
 * address plus the NAT64 prefix sums (one's complement) to the same value as the CLAT's IPv4
 * address, then swapping local IPv4 ↔ local IPv6 and remote IPv4 ↔ prefix‖IPv4 leaves the
 * pseudo-header sum, and so every L4 checksum, unchanged:
 *
 *     sum(clat6) + sum(prefix bits of pref64) ≡ sum(clat4)        (mod 0xffff)
 *
 * That holds for the *local* half with every RFC 6052 prefix length. The *remote* half is neutral
 * only when the embedded IPv4 address keeps its 16-bit word alignment, which is the case for /32
 * (bytes 4..7) and /96 (bytes 12..15). With /40../64 the IPv4 bytes land on odd offsets or around
 * the u octet, their sum is byte-swapped in part, and the translator must still adjust for the
 * remote address ({@link remoteMappingDelta}).
 */

import { parseIPv4 } from '../addr/ipv4.js';
import { formatIPv6, parseIPv6 } from '../addr/ipv6.js';
import { type Prefix6, parsePrefix6 } from '../addr/prefix.js';
import { rfc6052Positions, validateRfc6052Prefix } from '../addr/rfc6052.js';
import { fold, sum16, sum32 } from '../checksum.js';
import { AddressError } from '../errors.js';
import { ClatAddressError } from './errors.js';

/** A source of random bytes with the shape of `crypto.getRandomValues`. */
export type RandomFill = (bytes: Uint8Array) => void;

/** The platform CSPRNG (Web Crypto, available as a global in Node.js 20; no import needed in the core). */
export const cryptoRandom: RandomFill = (bytes) => {
  globalThis.crypto.getRandomValues(bytes);
};

/** How many times a draw that lands on a reserved IID is repeated before giving up (a broken RNG). */
const MAX_DRAWS = 32;

/** Folded one's-complement sum of the first `pref64.len` bits of the prefix; later bits count as zero. */
export function prefixSum(pref64: Prefix6): number {
  const full = pref64.len >>> 3;
  let s = sum16(pref64.addr, 0, full);
  const rest = pref64.len & 7;
  if (rest !== 0) {
    const byte = pref64.addr[full] & ((0xff << (8 - rest)) & 0xff);
    s += full & 1 ? byte : byte << 8;
  }
  return fold(s);
}

/**
 * Folded sum of an IPv4 address as it sits inside an RFC 6052 address of prefix length `len`,
 * with every other byte zero: each IPv4 byte counts high or low according to its offset.
 */
export function embeddedSum(v4: number, len: number): number {
  const pos = rfc6052Positions(len);
  let s = 0;
  for (let i = 0; i < 4; i++) {
    const byte = (v4 >>> (24 - 8 * i)) & 0xff;
    s += pos[i] & 1 ? byte : byte << 8;
  }
  return fold(s);
}

/** True when two sums are equal in one's-complement arithmetic (0x0000 and 0xffff are both zero). */
export function sumsEqual(a: number, b: number): boolean {
  return fold(a) % 0xffff === fold(b) % 0xffff;
}

/**
 * The neutrality condition on precomputed sums: `clat6Sum` of the 16-byte CLAT IPv6 address,
 * `pref64Sum` from {@link prefixSum}, `clat4Sum` of the CLAT IPv4 address (`sum32`).
 */
export function neutralityHolds(clat6Sum: number, pref64Sum: number, clat4Sum: number): boolean {
  return sumsEqual(clat6Sum + pref64Sum, clat4Sum);
}

/**
 * True when translation with a prefix of this length is checksum-neutral for *every* remote
 * address, given a neutral CLAT address: only /32 and /96 keep the embedded IPv4 address
 * word-aligned. The translator may skip checksum work exactly when this is true.
 */
export function isFullyNeutralMapping(pref64Len: number): boolean {
  rfc6052Positions(pref64Len);
  return pref64Len === 32 || pref64Len === 96;
}

/**
 * The one's-complement amount by which the remote address's contribution to the pseudo-header
 * sum changes from IPv4 (`sum32(v4)`) to its RFC 6052 embedding (without the prefix bits, which
 * the CLAT address already cancels). Zero (0 or 0xffff) for every address when
 * {@link isFullyNeutralMapping}; for /40../64 the translator adds this for 4→6 and subtracts it for 6→4.
 */
export function remoteMappingDelta(v4: number, pref64Len: number): number {
  return fold(embeddedSum(v4, pref64Len) + (~fold(sum32(v4)) & 0xffff));
}

/**
 * RFC 5453 and the IANA "Reserved IPv6 Interface Identifiers" registry: the IID at `off` (8 bytes,
 * normally address bytes 8..15) is reserved and must never be used.
 */
export function isReservedIid(b: Uint8Array, off = 8): boolean {
  // Subnet-Router Anycast (RFC 4291 §2.6.1): the all-zero IID.
  let zero = true;
  for (let i = 0; i < 8; i++) if (b[off + i] !== 0) zero = false;
  if (zero) return true;
  // 0200:5EFF:FE00:0000-0200:5EFF:FEFF:FFFF: IANA's Ethernet block as modified EUI-64 (RFC 4291),
  // including 0200:5EFF:FE00:5213 for Proxy Mobile IPv6 (RFC 6543).
  if (b[off] === 0x02 && b[off + 1] === 0x00 && b[off + 2] === 0x5e && b[off + 3] === 0xff && b[off + 4] === 0xfe) {
    return true;
  }
  // FDFF:FFFF:FFFF:FF80-FDFF:FFFF:FFFF:FFFF: reserved subnet anycast addresses (RFC 2526).
  if (b[off] === 0xfd && b[off + 7] >= 0x80) {
    for (let i = 1; i < 7; i++) if (b[off + i] !== 0xff) return false;
    return true;
  }
  return false;
}

/** An IPv6 address as text or 16 bytes. */
export type Address6Input = string | Uint8Array;
/** An IPv6 prefix as `x::/n` text or a parsed {@link Prefix6}. */
export type Prefix6Input = string | Prefix6;

function toAddress6(a: Address6Input, what: string): Uint8Array {
  if (typeof a === 'string') return parseIPv6(a);
  if (a.length !== 16) throw new AddressError(`${what} must be 16 bytes, not ${a.length}`);
  return a;
}

function toIPv4(a: string | number): number {
  return typeof a === 'string' ? parseIPv4(a) : a >>> 0;
}

/** Parses and checks the NAT64 prefix: an RFC 6052 length with a zero u octet. */
export function toPref64(p: Prefix6Input): Prefix6 {
  const pref = typeof p === 'string' ? parsePrefix6(p) : p;
  validateRfc6052Prefix(pref);
  return pref;
}

/** The uplink /64: `x::/64` (host bits allowed and ignored), a bare address, or 16 bytes. Returns 8 bytes. */
function toPrefix64(p: Address6Input | Prefix6): Uint8Array {
  if (typeof p === 'string') {
    const pref = parsePrefix6(p, true);
    if (p.includes('/') && pref.len !== 64) {
      throw new AddressError(`the uplink prefix must be a /64, not /${pref.len} ("${p}")`);
    }
    // A bare address: take its /64 (parsePrefix6 made it a /128 and kept every bit).
    return pref.addr.subarray(0, 8);
  }
  if (p instanceof Uint8Array) return toAddress6(p, 'the uplink prefix').subarray(0, 8);
  if (p.len !== 64) throw new AddressError(`the uplink prefix must be a /64, not /${p.len}`);
  return p.addr.subarray(0, 8);
}

export interface NeutralityInput {
  /** The CLAT IPv6 address. */
  readonly ipv6: Address6Input;
  /** The NAT64 prefix (RFC 6052 length). */
  readonly pref64: Prefix6Input;
  /** The CLAT IPv4 address. */
  readonly ipv4: string | number;
}

/** True when `ipv6` is checksum-neutral with `ipv4` under `pref64` (see the module comment). */
export function isChecksumNeutral(input: NeutralityInput): boolean {
  const v6 = toAddress6(input.ipv6, 'the CLAT IPv6 address');
  return neutralityHolds(sum16(v6, 0, 16), prefixSum(toPref64(input.pref64)), sum32(toIPv4(input.ipv4)));
}

export interface GenerateInput {
  /** The uplink's /64 (a `/64` prefix, or any address in it). */
  readonly prefix64: Address6Input | Prefix6;
  /** The NAT64 prefix (RFC 6052 length). */
  readonly pref64: Prefix6Input;
  /** The CLAT IPv4 address the result is neutral with. */
  readonly ipv4: string | number;
  /** Random source for the 64 IID bits; the platform CSPRNG by default. */
  readonly random?: RandomFill;
}

/**
 * Draws a checksum-neutral CLAT IPv6 address as 16 bytes: the uplink /64, 64 random bits, then
 * bytes 11 and 12 set so that the neutrality condition holds (48 random bits remain). Byte 11 is
 * the low half of word 5 and byte 12 the high half of word 6, so together they add the
 * byte-swapped value of (b11 << 8 | b12); that is the pair Android fixes (it sums in little-endian
 * host order). A reserved IID (RFC 5453) is never returned: such a draw is repeated.
 */
export function generateClatAddressBytes(input: GenerateInput): Uint8Array {
  const p64 = toPrefix64(input.prefix64);
  const addr = new Uint8Array(16);
  addr.set(p64, 0);
  return generateInPrefixBytes({
    prefix: { addr, len: 64 },
    pref64: input.pref64,
    ipv4: input.ipv4,
    random: input.random,
  });
}

/** The prefix lengths {@link generateInPrefixBytes} takes: 16 neutral bits and at least 16 random ones fit after them. */
export const IN_PREFIX_MIN_LEN = 32;
export const IN_PREFIX_MAX_LEN = 96;

export interface GenerateInPrefixInput {
  /** A prefix routed or delegated to the host, /32 to /96 (host bits ignored). */
  readonly prefix: Prefix6Input;
  readonly pref64: Prefix6Input;
  readonly ipv4: string | number;
  readonly random?: RandomFill;
}

/**
 * Draws a checksum-neutral CLAT IPv6 address in any prefix of /32 to /96: the prefix, random host
 * bits, and one 16-bit pair set for neutrality. Up to /88 the pair is bytes 11 and 12, as for a
 * /64 (so a /64 gives exactly the addresses {@link generateClatAddressBytes} gives); from /89 it is
 * bytes 14 and 15, the last whole pair inside the host part. At most /96, so that at least 16 bits
 * stay random: two CLATs in one routed prefix rarely meet, and a reserved draw can be redrawn.
 * Never returned: an address reserved in its /64 (RFC 5453) and, for a prefix longer than /64, the
 * prefix's Subnet-Router anycast address (host bits zero) and its top 128 (RFC 2526).
 */
export function generateInPrefixBytes(input: GenerateInPrefixInput): Uint8Array {
  const prefix = typeof input.prefix === 'string' ? parsePrefix6(input.prefix, true) : input.prefix;
  const len = prefix.len;
  if (len < IN_PREFIX_MIN_LEN || len > IN_PREFIX_MAX_LEN) {
    throw new AddressError(
      `a CLAT address prefix must be /${IN_PREFIX_MIN_LEN} to /${IN_PREFIX_MAX_LEN} (16 neutral and at least 16 random bits), not /${len}`,
    );
  }
  const random = input.random ?? cryptoRandom;
  const pSum = prefixSum(toPref64(input.pref64));
  const target = fold(sum32(toIPv4(input.ipv4)));
  const [hi, lo] = len <= 88 ? [11, 12] : [14, 15];
  const out = new Uint8Array(16);
  const first = len >>> 3;
  const host = out.subarray(first, 16);
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    random(host);
    // The prefix bits, over the random ones (a prefix not on a byte boundary shares one byte).
    for (let i = 0; i < first; i++) out[i] = prefix.addr[i];
    const rest = len & 7;
    if (rest !== 0) {
      const keep = (0xff << (8 - rest)) & 0xff;
      out[first] = (prefix.addr[first] & keep) | (out[first] & ~keep & 0xff);
    }
    out[hi] = 0;
    out[lo] = 0;
    const have = fold(sum16(out, 0, 16) + pSum);
    // What the pair must add: target - have, in one's complement. An even byte holds the high
    // half of its word, an odd one the low half: bytes 11..12 add the pair byte-swapped.
    const need = fold(target + (~have & 0xffff));
    if (hi & 1) {
      out[hi] = need & 0xff;
      out[lo] = need >>> 8;
    } else {
      out[hi] = need >>> 8;
      out[lo] = need & 0xff;
    }
    if (!isReservedIid(out, 8) && !(len > 64 && isReservedInSubnet(out, len))) return out;
  }
  throw new ClatAddressError(
    `generateClatAddress: ${MAX_DRAWS} draws in a row gave a reserved interface identifier; the random source is broken`,
  );
}

/** For a subnet longer than /64: host bits all zero (RFC 4291 §2.6.1), or its highest 128 addresses (RFC 2526 §2). */
function isReservedInSubnet(b: Uint8Array, len: number): boolean {
  let zero = true;
  let ones = true;
  for (let bit = len; bit < 121; bit++) {
    const v = (b[bit >>> 3] >>> (7 - (bit & 7))) & 1;
    if (v) zero = false;
    else ones = false;
  }
  for (let bit = 121; bit < 128; bit++) if ((b[bit >>> 3] >>> (7 - (bit & 7))) & 1) zero = false;
  return zero || ones;
}

/** {@link generateInPrefixBytes} in RFC 5952 text form. */
export function generateInPrefix(input: GenerateInPrefixInput): string {
  return formatIPv6(generateInPrefixBytes(input));
}

/** {@link generateClatAddressBytes} in RFC 5952 text form. */
export function generateClatAddress(input: GenerateInput): string {
  return formatIPv6(generateClatAddressBytes(input));
}
