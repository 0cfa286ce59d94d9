/**
 * The Explicit Address Mapping table (RFC 7757): IPv4 prefix ↔ IPv6 prefix pairs, looked up by
 * longest prefix match in both directions. The IPv4 suffix bits are copied right after the IPv6
 * prefix (RFC 7757 §3.2); IPv6 bits beyond them are zero when building and ignored when reading.
 *
 * Tables are small (a CLAT has one entry), so lookups are linear scans over entries sorted by
 * prefix length, longest first; nothing allocates per lookup. For the packet path the prefixes
 * are also kept as signed 32-bit words and masks in typed arrays: an IPv6 lookup is four masked
 * word compares per entry, and IPv4 addresses never become heap numbers (values above 2^31 would).
 */
import { AddressError } from '../errors.js';
import { mask4 } from './ipv4.js';
import { matchPrefix6 } from './ipv6.js';
import type { Prefix4, Prefix6 } from './prefix.js';

export interface EamEntry {
  readonly v4: Prefix4;
  readonly v6: Prefix6;
}

/** Word `k` (0..3, big-endian) of the mask of an IPv6 prefix of `len` bits, as a signed 32-bit value. */
export function mask6Word(len: number, k: number): number {
  const bits = Math.max(0, Math.min(32, len - 32 * k));
  return bits === 0 ? 0 : (-1 << (32 - bits)) | 0;
}

/** Word `k` (0..3) of the 16-byte address at `b[off]`, big-endian, as a signed 32-bit value. */
export function word6(b: Uint8Array, off: number, k: number): number {
  const i = off + 4 * k;
  return (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3];
}

export class EamTable {
  readonly entries: readonly EamEntry[];
  readonly #by4: EamEntry[];
  readonly #by6: EamEntry[];
  readonly #mask4: Uint32Array;
  /** By4 order: IPv4 prefix and mask as signed 32-bit values. */
  readonly #addr4: Int32Array;
  readonly #mask4s: Int32Array;
  /** By6 order: four prefix words and four mask words per entry, then its IPv4 prefix (signed). */
  readonly #words6: Int32Array;
  readonly #masks6: Int32Array;
  readonly #v4of6: Int32Array;
  /** By6 order: IPv4 suffix bits carried in the IPv6 address (0 for a /32 ↔ /128 entry). */
  readonly #suffix6: Uint8Array;

  constructor(entries: readonly EamEntry[]) {
    for (const e of entries) {
      const suffix4 = 32 - e.v4.len;
      if (e.v6.len + suffix4 > 128) {
        throw new AddressError(
          `EAM ${e.v4.len}-bit IPv4 prefix leaves ${suffix4} suffix bits, more than the /${e.v6.len} IPv6 prefix can hold`,
        );
      }
    }
    this.entries = entries;
    this.#by4 = [...entries].sort((a, b) => b.v4.len - a.v4.len);
    this.#by6 = [...entries].sort((a, b) => b.v6.len - a.v6.len);
    this.#mask4 = Uint32Array.from(this.#by4, (e) => mask4(e.v4.len));
    this.#addr4 = Int32Array.from(this.#by4, (e) => e.v4.addr | 0);
    this.#mask4s = Int32Array.from(this.#by4, (e) => mask4(e.v4.len) | 0);
    const n = this.#by6.length;
    this.#words6 = new Int32Array(4 * n);
    this.#masks6 = new Int32Array(4 * n);
    this.#v4of6 = new Int32Array(n);
    this.#suffix6 = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const e = this.#by6[i];
      for (let k = 0; k < 4; k++) {
        this.#masks6[4 * i + k] = mask6Word(e.v6.len, k);
        this.#words6[4 * i + k] = word6(e.v6.addr, 0, k) & this.#masks6[4 * i + k];
      }
      this.#v4of6[i] = e.v4.addr | 0;
      this.#suffix6[i] = 32 - e.v4.len;
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** The entry whose IPv4 prefix holds `v4` (longest match), or undefined. */
  find4(v4: number): EamEntry | undefined {
    const t = this.#by4;
    for (let i = 0; i < t.length; i++) if ((v4 & this.#mask4[i]) >>> 0 === t[i].v4.addr) return t[i];
    return undefined;
  }

  /** True when some IPv4 prefix holds `v4` (signed or unsigned 32-bit): {@link find4} without the entry. */
  has4(v4: number): boolean {
    const a = this.#addr4;
    const m = this.#mask4s;
    for (let i = 0; i < a.length; i++) if ((v4 & m[i]) === a[i]) return true;
    return false;
  }

  /** The entry whose IPv6 prefix holds the address at `b[off]` (longest match), or undefined. */
  find6(b: Uint8Array, off: number): EamEntry | undefined {
    const t = this.#by6;
    for (let i = 0; i < t.length; i++) if (matchPrefix6(b, off, t[i].v6.addr, t[i].v6.len)) return t[i];
    return undefined;
  }

  /**
   * {@link find6} for an address given as its four big-endian words (signed 32-bit): the index of
   * the longest match for {@link v4Of6}, or -1.
   */
  index6(w0: number, w1: number, w2: number, w3: number): number {
    const p = this.#words6;
    const m = this.#masks6;
    const n = this.#v4of6.length;
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      if (
        (((w0 & m[j]) ^ p[j]) |
          ((w1 & m[j + 1]) ^ p[j + 1]) |
          ((w2 & m[j + 2]) ^ p[j + 2]) |
          ((w3 & m[j + 3]) ^ p[j + 3])) ===
        0
      )
        return i;
    }
    return -1;
  }

  /**
   * The IPv4 address (signed 32-bit) that the IPv6 address at `b[off]` maps to through the entry
   * at `index` from {@link index6}: {@link eam6to4} without a heap number.
   */
  v4Of6(index: number, b: Uint8Array, off: number): number {
    const n = this.#suffix6[index];
    if (n === 0) return this.#v4of6[index];
    return this.#v4of6[index] | eam6Suffix(this.#by6[index], b, off) | 0;
  }
}

/** Writes the IPv6 address that `v4` maps to through `e` at `out[off]`. */
export function eam4to6(e: EamEntry, v4: number, out: Uint8Array, off: number): void {
  const p = e.v6.addr;
  for (let i = 0; i < 16; i++) out[off + i] = p[i];
  const n = 32 - e.v4.len;
  // Copy the n IPv4 suffix bits to IPv6 bits [v6.len, v6.len + n).
  for (let i = 0; i < n; i++) {
    const bit = (v4 >>> (n - 1 - i)) & 1;
    if (bit) {
      const pos = e.v6.len + i;
      out[off + (pos >>> 3)] |= 0x80 >>> (pos & 7);
    }
  }
}

/** The IPv4 suffix bits that the IPv6 address at `b[off]` carries right after `e`'s IPv6 prefix. */
function eam6Suffix(e: EamEntry, b: Uint8Array, off: number): number {
  const n = 32 - e.v4.len;
  let suffix = 0;
  for (let i = 0; i < n; i++) {
    const pos = e.v6.len + i;
    suffix = suffix * 2 + ((b[off + (pos >>> 3)] >>> (7 - (pos & 7))) & 1);
  }
  return suffix;
}

/** The IPv4 address that the IPv6 address at `b[off]` maps to through `e`. */
export function eam6to4(e: EamEntry, b: Uint8Array, off: number): number {
  return (e.v4.addr | eam6Suffix(e, b, off)) >>> 0;
}
