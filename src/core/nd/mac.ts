/** Ethernet (EUI-48) addresses: 6 bytes on the wire, `aa:bb:cc:dd:ee:ff` at the edges. */
import { AddressError } from '../errors.js';

const MAC = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i;

/** Parses colon-separated hex. Throws {@link AddressError}. */
export function parseMac(text: string): Uint8Array {
  const m = MAC.exec(text);
  if (!m) throw new AddressError(`not an Ethernet address: "${text}"`);
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[i] = Number.parseInt(m[i + 1], 16);
  return out;
}

/** Formats `len` bytes at `off` as lower-case colon-separated hex (any link-layer address length). */
export function formatMac(b: Uint8Array, off = 0, len = 6): string {
  const parts: string[] = [];
  for (let i = 0; i < len; i++) parts.push(b[off + i].toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** Accepts text or 6 bytes. */
export function toMac(m: string | Uint8Array): Uint8Array {
  if (typeof m === 'string') return parseMac(m);
  if (m.length !== 6) throw new AddressError(`an Ethernet address is 6 bytes, not ${m.length}`);
  return m;
}
