/** IPv4 and IPv6 prefixes in `address/length` notation. */
import { AddressError } from '../errors.js';
import { formatIPv4, mask4, parseIPv4 } from './ipv4.js';
import { formatIPv6, parseIPv6 } from './ipv6.js';

export interface Prefix4 {
  readonly addr: number;
  readonly len: number;
}

export interface Prefix6 {
  readonly addr: Uint8Array;
  readonly len: number;
}

function splitLen(text: string, max: number, family: string): [string, number] {
  const slash = text.indexOf('/');
  if (slash < 0) return [text, max];
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) throw new AddressError(`bad ${family} prefix length in "${text}"`);
  const len = Number(lenText);
  if (len > max) throw new AddressError(`${family} prefix length ${len} is longer than ${max} in "${text}"`);
  return [text.slice(0, slash), len];
}

/**
 * Parses `a.b.c.d/n` (a bare address is a /32). Host bits must be zero unless `allowHostBits`,
 * in which case they are cleared.
 */
export function parsePrefix4(text: string, allowHostBits = false): Prefix4 {
  const [a, len] = splitLen(text, 32, 'IPv4');
  const addr = parseIPv4(a);
  const masked = (addr & mask4(len)) >>> 0;
  if (masked !== addr && !allowHostBits) throw new AddressError(`IPv4 prefix "${text}" has host bits set`);
  return { addr: masked, len };
}

/** Parses `x::/n` (a bare address is a /128). Host bits must be zero unless `allowHostBits`. */
export function parsePrefix6(text: string, allowHostBits = false): Prefix6 {
  const [a, len] = splitLen(text, 128, 'IPv6');
  const addr = parseIPv6(a);
  let host = false;
  for (let bit = len; bit < 128; bit++) {
    const byte = bit >>> 3;
    const m = 0x80 >>> (bit & 7);
    if (addr[byte] & m) {
      host = true;
      addr[byte] &= ~m;
    }
  }
  if (host && !allowHostBits) throw new AddressError(`IPv6 prefix "${text}" has host bits set`);
  return { addr, len };
}

export function formatPrefix4(p: Prefix4): string {
  return `${formatIPv4(p.addr)}/${p.len}`;
}

export function formatPrefix6(p: Prefix6): string {
  return `${formatIPv6(p.addr)}/${p.len}`;
}
