/**
 * IPv4 addresses as unsigned 32-bit numbers (`>>> 0`): cheap to compare, mask and hash on the
 * packet path. Strings exist only at the edges (configuration, logs, status).
 */
import { AddressError } from '../errors.js';

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses dotted-quad notation strictly (no leading zeros, no shorthand). Throws {@link AddressError}. */
export function parseIPv4(text: string): number {
  const m = DOTTED.exec(text);
  if (!m) throw new AddressError(`not an IPv4 address: "${text}"`);
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i];
    const n = Number(part);
    if (n > 255 || (part.length > 1 && part[0] === '0')) throw new AddressError(`not an IPv4 address: "${text}"`);
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function formatIPv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

/** Reads a big-endian IPv4 address at `off`. */
export function readIPv4(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}

/** Writes `v` big-endian at `off`. */
export function writeIPv4(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = v >>> 16;
  b[off + 2] = v >>> 8;
  b[off + 3] = v;
}

/** The network mask of a prefix length 0..32 as an unsigned number. */
export function mask4(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}
