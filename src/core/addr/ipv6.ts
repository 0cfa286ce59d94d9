/**
 * IPv6 addresses as 16-byte arrays. On the packet path they are compared and copied in place by
 * offset; these helpers serve configuration, tests and logs.
 */
import { AddressError } from '../errors.js';
import { parseIPv4 } from './ipv4.js';

/** Parses any RFC 4291 §2.2 text form (including `::` and an embedded dotted quad). Throws {@link AddressError}. */
export function parseIPv6(text: string): Uint8Array {
  const bad = () => new AddressError(`not an IPv6 address: "${text}"`);
  if (text.length === 0 || text.length > 45 || text.includes('%')) throw bad();
  const out = new Uint8Array(16);
  let s = text;
  let tail4: number | null = null;
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.indexOf('.', lastColon) > lastColon) {
    try {
      tail4 = parseIPv4(s.slice(lastColon + 1));
    } catch {
      throw bad();
    }
    // Keep the colon so "::1.2.3.4" still splits into head "" and tail "".
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = s.split('::');
  if (halves.length > 2) throw bad();
  const parseGroups = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').map((g) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad();
      return Number.parseInt(g, 16);
    });
  };
  const head = parseGroups(halves[0]);
  const tail = halves.length === 2 ? parseGroups(halves[1]) : [];
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) throw bad();
  const groups = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i] >>> 8;
    out[2 * i + 1] = groups[i] & 0xff;
  }
  if (tail4 !== null) {
    out[12] = tail4 >>> 24;
    out[13] = (tail4 >>> 16) & 0xff;
    out[14] = (tail4 >>> 8) & 0xff;
    out[15] = tail4 & 0xff;
  }
  return out;
}

/** Formats 16 bytes at `off` in the RFC 5952 canonical form (lower case, longest zero run as `::`). */
export function formatIPv6(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** True when the 16 bytes at `ao` of `a` equal those at `bo` of `b`. */
export function equal6(a: Uint8Array, ao: number, b: Uint8Array, bo: number): boolean {
  for (let i = 0; i < 16; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

/** True when the first `len` bits of the address at `ao` equal those of `prefix` (at offset 0). */
export function matchPrefix6(a: Uint8Array, ao: number, prefix: Uint8Array, len: number): boolean {
  const full = len >>> 3;
  for (let i = 0; i < full; i++) if (a[ao + i] !== prefix[i]) return false;
  const rest = len & 7;
  if (rest === 0) return true;
  const m = (0xff << (8 - rest)) & 0xff;
  return (a[ao + full] & m) === (prefix[full] & m);
}

/** The solicited-node multicast group ff02::1:ffXX:XXXX of an address (RFC 4291 §2.7.1). */
export function solicitedNode(target: Uint8Array, out: Uint8Array = new Uint8Array(16), off = 0): Uint8Array {
  out.fill(0, off, off + 16);
  out[off] = 0xff;
  out[off + 1] = 0x02;
  out[off + 11] = 0x01;
  out[off + 12] = 0xff;
  out[off + 13] = target[13];
  out[off + 14] = target[14];
  out[off + 15] = target[15];
  return out;
}

/** True for ff00::/8. */
export function isMulticast6(b: Uint8Array, off = 0): boolean {
  return b[off] === 0xff;
}

/** True for the unspecified address ::. */
export function isUnspecified6(b: Uint8Array, off = 0): boolean {
  for (let i = 0; i < 16; i++) if (b[off + i] !== 0) return false;
  return true;
}
