/**
 * The Explicit Address Mapping table (RFC 7757): IPv4 prefix ↔ IPv6 prefix pairs, looked up by
 * longest prefix match in both directions. The IPv4 suffix bits are copied right after the IPv6
 * prefix (RFC 7757 §3.2); IPv6 bits beyond them are zero when building and ignored when reading.
 *
 * Tables are small (a CLAT has one entry), so lookups are linear scans over entries sorted by
 * prefix length, longest first; nothing allocates per lookup.
 */
import { AddressError } from '../errors.js';
import { mask4 } from './ipv4.js';
import { matchPrefix6 } from './ipv6.js';
import type { Prefix4, Prefix6 } from './prefix.js';

export interface EamEntry {
  readonly v4: Prefix4;
  readonly v6: Prefix6;
}

export class EamTable {
  readonly entries: readonly EamEntry[];
  readonly #by4: EamEntry[];
  readonly #by6: EamEntry[];
  readonly #mask4: Uint32Array;

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

  /** The entry whose IPv6 prefix holds the address at `b[off]` (longest match), or undefined. */
  find6(b: Uint8Array, off: number): EamEntry | undefined {
    const t = this.#by6;
    for (let i = 0; i < t.length; i++) if (matchPrefix6(b, off, t[i].v6.addr, t[i].v6.len)) return t[i];
    return undefined;
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

/** The IPv4 address that the IPv6 address at `b[off]` maps to through `e`. */
export function eam6to4(e: EamEntry, b: Uint8Array, off: number): number {
  const n = 32 - e.v4.len;
  let suffix = 0;
  for (let i = 0; i < n; i++) {
    const pos = e.v6.len + i;
    suffix = suffix * 2 + ((b[off + (pos >>> 3)] >>> (7 - (pos & 7))) & 1);
  }
  return (e.v4.addr | suffix) >>> 0;
}
