/**
 * Packet builders and checkers for the IPv6→IPv4 tests: IPv6 packets with extension headers,
 * UDP / TCP / ICMPv6 with correct checksums, and verifiers for what comes out.
 */
import { parseIPv4 } from '../../../src/core/addr/ipv4.js';
import { parseIPv6 } from '../../../src/core/addr/ipv6.js';
import { finish, fold, pseudoSum4, pseudoSum6, sum16 } from '../../../src/core/checksum.js';

export interface Ext {
  /** Next Header value that announces this header (0, 43, 44, 60). */
  type: number;
  /** The header's bytes; byte 0 (its Next Header) is filled in by {@link ipv6}. */
  bytes: Uint8Array;
}

/** A Hop-by-Hop or Destination Options header of 8 bytes (PadN). */
export function optsHdr(type: 0 | 60): Ext {
  return { type, bytes: Uint8Array.of(0, 0, 1, 4, 0, 0, 0, 0) };
}

/** A type-0 Routing header with one address and the given Segments Left. */
export function routingHdr(segmentsLeft: number): Ext {
  const b = new Uint8Array(24);
  b[1] = 2;
  b[2] = 0;
  b[3] = segmentsLeft;
  return { type: 43, bytes: b };
}

export function fragHdr(id: number, offset8: number, more: boolean): Ext {
  const b = new Uint8Array(8);
  const w = (offset8 << 3) | (more ? 1 : 0);
  b[2] = w >>> 8;
  b[3] = w;
  b[4] = id >>> 24;
  b[5] = id >>> 16;
  b[6] = id >>> 8;
  b[7] = id;
  return { type: 44, bytes: b };
}

export interface V6Opts {
  src: string;
  dst: string;
  hop?: number;
  tc?: number;
  exts?: Ext[];
  proto: number;
  payload: Uint8Array;
}

/** An IPv6 packet; Payload Length covers the extension headers and the payload. */
export function ipv6(o: V6Opts): Uint8Array {
  const exts = o.exts ?? [];
  const extLen = exts.reduce((n, e) => n + e.bytes.length, 0);
  const p = new Uint8Array(40 + extLen + o.payload.length);
  const tc = o.tc ?? 0;
  p[0] = 0x60 | (tc >>> 4);
  p[1] = (tc & 0xf) << 4;
  const plen = extLen + o.payload.length;
  p[4] = plen >>> 8;
  p[5] = plen;
  p[6] = exts.length ? exts[0].type : o.proto;
  p[7] = o.hop ?? 64;
  p.set(parseIPv6(o.src), 8);
  p.set(parseIPv6(o.dst), 24);
  let at = 40;
  exts.forEach((e, i) => {
    p.set(e.bytes, at);
    p[at] = i + 1 < exts.length ? exts[i + 1].type : o.proto;
    at += e.bytes.length;
  });
  p.set(o.payload, at);
  return p;
}

/** A UDP datagram whose checksum is right for the IPv6 pseudo-header of `src`/`dst`. */
export function udp6(src: string, dst: string, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u[0] = sport >>> 8;
  u[1] = sport;
  u[2] = dport >>> 8;
  u[3] = dport;
  u[4] = u.length >>> 8;
  u[5] = u.length;
  u.set(data, 8);
  let cs = finish(sum16(u, 0, u.length, pseudo6(src, dst, 17, u.length)));
  if (cs === 0) cs = 0xffff;
  u[6] = cs >>> 8;
  u[7] = cs;
  return u;
}

/** A TCP segment (20-byte header) whose checksum is right for the IPv6 pseudo-header. */
export function tcp6(src: string, dst: string, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const t = new Uint8Array(20 + data.length);
  t[0] = sport >>> 8;
  t[1] = sport;
  t[2] = dport >>> 8;
  t[3] = dport;
  t[7] = 1;
  t[12] = 0x50;
  t[13] = 0x18;
  t[14] = 0xff;
  t.set(data, 20);
  const cs = finish(sum16(t, 0, t.length, pseudo6(src, dst, 6, t.length)));
  t[16] = cs >>> 8;
  t[17] = cs;
  return t;
}

/** An ICMPv6 message with a correct checksum. `rest` is the 32-bit word after the checksum. */
export function icmp6(
  src: string,
  dst: string,
  type: number,
  code: number,
  rest: number,
  body: Uint8Array,
): Uint8Array {
  const m = new Uint8Array(8 + body.length);
  m[0] = type;
  m[1] = code;
  m[4] = rest >>> 24;
  m[5] = rest >>> 16;
  m[6] = rest >>> 8;
  m[7] = rest;
  m.set(body, 8);
  const cs = finish(sum16(m, 0, m.length, pseudo6(src, dst, 58, m.length)));
  m[2] = cs >>> 8;
  m[3] = cs;
  return m;
}

function pseudo6(src: string, dst: string, proto: number, len: number): number {
  const a = new Uint8Array(32);
  a.set(parseIPv6(src), 0);
  a.set(parseIPv6(dst), 16);
  return pseudoSum6(a, 0, 16, proto, len);
}

/** Decoded IPv4 header fields. */
export function v4(p: Uint8Array) {
  const u16 = (i: number) => (p[i] << 8) | p[i + 1];
  const u32 = (i: number) => ((p[i] << 24) | (p[i + 1] << 16) | (p[i + 2] << 8) | p[i + 3]) >>> 0;
  return {
    version: p[0] >>> 4,
    ihl: p[0] & 0xf,
    tos: p[1],
    totalLength: u16(2),
    id: u16(4),
    df: (p[6] & 0x40) !== 0,
    mf: (p[6] & 0x20) !== 0,
    fragOffset: u16(6) & 0x1fff,
    ttl: p[8],
    proto: p[9],
    src: u32(12),
    dst: u32(16),
    headerOk: fold(sum16(p, 0, 20)) === 0xffff,
  };
}

/** True when the TCP/UDP checksum at `csOff` of the IPv4 packet `p` verifies (L4 starts at 20). */
export function l4ChecksumOk4(p: Uint8Array, proto: number): boolean {
  const h = v4(p);
  const l4len = h.totalLength - 20;
  return fold(sum16(p, 20, l4len, pseudoSum4(h.src, h.dst, proto, l4len))) === 0xffff;
}

/** True when the ICMPv4 checksum of the IPv4 packet `p` verifies. */
export function icmp4ChecksumOk(p: Uint8Array): boolean {
  return fold(sum16(p, 20, v4(p).totalLength - 20)) === 0xffff;
}

/** True when the ICMPv6 checksum of the IPv6 packet `p` (no extension headers) verifies. */
export function icmp6ChecksumOk(p: Uint8Array): boolean {
  const len = (p[4] << 8) | p[5];
  return fold(sum16(p, 40, len, pseudoSum6(p, 8, 24, 58, len))) === 0xffff;
}

export const ip4 = parseIPv4;
export const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
