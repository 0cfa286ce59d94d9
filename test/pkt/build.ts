/**
 * Packet builders for tests (not the forward path): valid IPv4 / IPv6 packets with UDP, TCP or
 * ICMP echo payloads and correct checksums, plus verifiers. Addresses as text for readability.
 */
import { parseIPv4, writeIPv4 } from '../../src/core/addr/ipv4.js';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import { finish, fold, pseudoSum4, pseudoSum6, sum16 } from '../../src/core/checksum.js';

export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;

export interface L4 {
  proto: number;
  /** UDP/TCP ports, or ICMP echo id (sport) and sequence (dport). */
  sport: number;
  dport: number;
  payload: Uint8Array;
  /** UDP only: leave the checksum zero. */
  zeroChecksum?: boolean;
}

export interface V4Opts {
  src: string;
  dst: string;
  ttl?: number;
  tos?: number;
  id?: number;
  df?: boolean;
}

export interface V6Opts {
  src: string;
  dst: string;
  hopLimit?: number;
  tclass?: number;
  flow?: number;
}

function l4Bytes(l4: L4, v6: boolean): Uint8Array {
  const { proto, payload } = l4;
  if (proto === PROTO_UDP) {
    const b = new Uint8Array(8 + payload.length);
    b[0] = l4.sport >>> 8;
    b[1] = l4.sport;
    b[2] = l4.dport >>> 8;
    b[3] = l4.dport;
    b[4] = b.length >>> 8;
    b[5] = b.length;
    b.set(payload, 8);
    return b;
  }
  if (proto === PROTO_TCP) {
    const b = new Uint8Array(20 + payload.length);
    b[0] = l4.sport >>> 8;
    b[1] = l4.sport;
    b[2] = l4.dport >>> 8;
    b[3] = l4.dport;
    b[7] = 1; // seq
    b[12] = 5 << 4;
    b[13] = 0x18; // PSH|ACK
    b[14] = 0xff;
    b[15] = 0xff;
    b.set(payload, 20);
    return b;
  }
  if (proto === PROTO_ICMP || proto === PROTO_ICMPV6) {
    const b = new Uint8Array(8 + payload.length);
    b[0] = v6 ? 128 : 8; // echo request
    b[4] = l4.sport >>> 8;
    b[5] = l4.sport;
    b[6] = l4.dport >>> 8;
    b[7] = l4.dport;
    b.set(payload, 8);
    return b;
  }
  return payload.slice();
}

function checksumOffset(proto: number): number {
  return proto === PROTO_UDP ? 6 : proto === PROTO_TCP ? 16 : proto === PROTO_ICMP || proto === PROTO_ICMPV6 ? 2 : -1;
}

export function ipv4Packet(o: V4Opts, l4: L4): Uint8Array {
  const body = l4Bytes(l4, false);
  const p = new Uint8Array(20 + body.length);
  p[0] = 0x45;
  p[1] = o.tos ?? 0;
  p[2] = p.length >>> 8;
  p[3] = p.length;
  p[4] = (o.id ?? 0x1234) >>> 8;
  p[5] = o.id ?? 0x34;
  p[6] = o.df === false ? 0 : 0x40;
  p[8] = o.ttl ?? 64;
  p[9] = l4.proto;
  const src = parseIPv4(o.src);
  const dst = parseIPv4(o.dst);
  writeIPv4(p, 12, src);
  writeIPv4(p, 16, dst);
  p.set(body, 20);
  const co = checksumOffset(l4.proto);
  if (co >= 0 && !l4.zeroChecksum) {
    const initial = l4.proto === PROTO_ICMP ? 0 : pseudoSum4(src, dst, l4.proto, body.length);
    let c = finish(sum16(p, 20, body.length, initial));
    if (c === 0 && l4.proto === PROTO_UDP) c = 0xffff;
    p[20 + co] = c >>> 8;
    p[20 + co + 1] = c;
  }
  const hc = finish(sum16(p, 0, 20));
  p[10] = hc >>> 8;
  p[11] = hc;
  return p;
}

export function ipv6Packet(o: V6Opts, l4: L4): Uint8Array {
  const proto = l4.proto === PROTO_ICMP ? PROTO_ICMPV6 : l4.proto;
  const body = l4Bytes({ ...l4, proto }, true);
  const p = new Uint8Array(40 + body.length);
  const tc = o.tclass ?? 0;
  const flow = o.flow ?? 0;
  p[0] = 0x60 | (tc >>> 4);
  p[1] = ((tc & 0xf) << 4) | ((flow >>> 16) & 0xf);
  p[2] = flow >>> 8;
  p[3] = flow;
  p[4] = body.length >>> 8;
  p[5] = body.length;
  p[6] = proto;
  p[7] = o.hopLimit ?? 64;
  p.set(parseIPv6(o.src), 8);
  p.set(parseIPv6(o.dst), 24);
  p.set(body, 40);
  const co = checksumOffset(proto);
  if (co >= 0 && !l4.zeroChecksum) {
    let c = finish(sum16(p, 40, body.length, pseudoSum6(p, 8, 24, proto, body.length)));
    if (c === 0 && proto === PROTO_UDP) c = 0xffff;
    p[40 + co] = c >>> 8;
    p[40 + co + 1] = c;
  }
  return p;
}

/** Problems with the checksums of an unfragmented IPv4 or IPv6 packet without extension headers (empty = all good). */
export function checksumProblems(p: Uint8Array): string[] {
  const out: string[] = [];
  const v = p[0] >>> 4;
  if (v === 4) {
    const ihl = (p[0] & 0xf) * 4;
    if (fold(sum16(p, 0, ihl)) !== 0xffff) out.push('IPv4 header checksum');
    const proto = p[9];
    const len = ((p[2] << 8) | p[3]) - ihl;
    const fragmented = (p[6] & 0x3f) !== 0 || p[7] !== 0;
    if (fragmented) return out;
    const src = ((p[12] << 24) | (p[13] << 16) | (p[14] << 8) | p[15]) >>> 0;
    const dst = ((p[16] << 24) | (p[17] << 16) | (p[18] << 8) | p[19]) >>> 0;
    if (proto === PROTO_UDP && p[ihl + 6] === 0 && p[ihl + 7] === 0) return out;
    if (proto === PROTO_UDP || proto === PROTO_TCP) {
      if (fold(sum16(p, ihl, len, pseudoSum4(src, dst, proto, len))) !== 0xffff) out.push(`L4 (${proto}) checksum`);
    } else if (proto === PROTO_ICMP) {
      if (fold(sum16(p, ihl, len)) !== 0xffff) out.push('ICMPv4 checksum');
    }
  } else if (v === 6) {
    const proto = p[6];
    const len = (p[4] << 8) | p[5];
    if (proto === PROTO_UDP || proto === PROTO_TCP || proto === PROTO_ICMPV6) {
      if (fold(sum16(p, 40, len, pseudoSum6(p, 8, 24, proto, len))) !== 0xffff) out.push(`L4 (${proto}) checksum`);
    }
  } else out.push('not IP');
  return out;
}
