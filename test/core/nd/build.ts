/**
 * Builds Neighbor Discovery packets for the tests, independently of the code under test: plain
 * byte layout from RFC 4861 §4.3/§4.4 and a word-by-word RFC 1071 checksum.
 */
import { parseIPv6 } from '../../../src/core/addr/ipv6.js';

/** RFC 1071, the slow way: 16-bit words, end-around carry at every step. */
export function refSum(parts: Uint8Array[]): number {
  let s = 0;
  for (const b of parts) {
    for (let i = 0; i < b.length; i += 2) {
      s += (b[i] << 8) | (i + 1 < b.length ? b[i + 1] : 0);
      s = (s & 0xffff) + (s >>> 16);
    }
  }
  return s;
}

export interface NdSpec {
  type?: number;
  code?: number;
  src?: string;
  dst?: string;
  hopLimit?: number;
  target?: string;
  /** NA flags byte (R=0x80, S=0x40, O=0x20). */
  flags?: number;
  /** Raw options, each [type, ...data]; length is computed (data padded to a multiple of 8). */
  options?: number[][];
  /** Extra bytes after the payload (link-layer padding). */
  trailer?: number;
  /** Break the checksum on purpose. */
  badChecksum?: boolean;
  /** Extension headers before ICMPv6: next-header values (0 or 60), each 8 bytes. */
  ext?: number[];
}

export function option(type: number, data: number[]): number[] {
  return [type, ...data];
}

export function buildNd(spec: NdSpec = {}): Uint8Array {
  const src = parseIPv6(spec.src ?? '::');
  const dst = parseIPv6(spec.dst ?? 'ff02::1:ff00:1');
  const target = parseIPv6(spec.target ?? '2001:db8::1');
  const opts: number[] = [];
  for (const o of spec.options ?? []) {
    const [t, ...data] = o;
    const units = Math.max(1, Math.ceil((data.length + 2) / 8));
    const bytes = new Array<number>(units * 8).fill(0);
    bytes[0] = t;
    bytes[1] = units;
    for (let i = 0; i < data.length; i++) bytes[2 + i] = data[i];
    opts.push(...bytes);
  }
  const icmp = new Uint8Array(24 + opts.length);
  icmp[0] = spec.type ?? 135;
  icmp[1] = spec.code ?? 0;
  icmp[4] = spec.flags ?? 0;
  icmp.set(target, 8);
  icmp.set(opts, 24);
  const pseudo = new Uint8Array(40);
  pseudo.set(src, 0);
  pseudo.set(dst, 16);
  pseudo[34] = icmp.length >>> 8;
  pseudo[35] = icmp.length & 0xff;
  pseudo[39] = 58;
  let c = ~refSum([pseudo, icmp]) & 0xffff;
  if (spec.badChecksum) c ^= 0x0101;
  icmp[2] = c >>> 8;
  icmp[3] = c & 0xff;
  const ext = spec.ext ?? [];
  const extBytes = new Uint8Array(ext.length * 8);
  for (let i = 0; i < ext.length; i++) extBytes[i * 8] = i + 1 < ext.length ? ext[i + 1] : 58;
  const payload = extBytes.length + icmp.length;
  const out = new Uint8Array(40 + payload + (spec.trailer ?? 0));
  out[0] = 0x60;
  out[4] = payload >>> 8;
  out[5] = payload & 0xff;
  out[6] = ext.length > 0 ? ext[0] : 58;
  out[7] = spec.hopLimit ?? 255;
  out.set(src, 8);
  out.set(dst, 24);
  out.set(extBytes, 40);
  out.set(icmp, 40 + extBytes.length);
  return out;
}
