/**
 * Malformed packets for the bad-input tests, built by hand: each is wrong in one named way, and
 * `certain` says whether every correct translator must drop it (RFC 7915 leaves some to choice).
 */

import { parseIPv4, writeIPv4 } from '../../src/core/addr/ipv4.js';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import { finish, pseudoSum4, pseudoSum6, sum16 } from '../../src/core/checksum.js';

export interface Bad {
  name: string;
  bytes: Buffer;
  certain: boolean;
}

function ipv4(
  src: string,
  dst: string,
  proto: number,
  payload: Buffer,
  over: Partial<{ ihl: number; totalLength: number; badSum: boolean }> = {},
): Buffer {
  const b = Buffer.alloc(20 + payload.length);
  b[0] = 0x40 | (over.ihl ?? 5);
  b.writeUInt16BE(over.totalLength ?? b.length, 2);
  b.writeUInt16BE(0x4000, 6); // DF
  b[8] = 64;
  b[9] = proto;
  writeIPv4(b, 12, parseIPv4(src));
  writeIPv4(b, 16, parseIPv4(dst));
  b.writeUInt16BE(finish(sum16(b, 0, 20)) ^ (over.badSum ? 0x5555 : 0), 10);
  payload.copy(b, 20);
  return b;
}

function ipv6(src: string, dst: string, nh: number, payload: Buffer, payloadLength = payload.length): Buffer {
  const b = Buffer.alloc(40 + payload.length);
  b.writeUInt32BE(0x60000000, 0);
  b.writeUInt16BE(payloadLength, 4);
  b[6] = nh;
  b[7] = 64;
  Buffer.from(parseIPv6(src)).copy(b, 8);
  Buffer.from(parseIPv6(dst)).copy(b, 24);
  payload.copy(b, 40);
  return b;
}

/** Sets the ICMPv6 checksum of the message at offset 40 (RFC 4443 §2.3). */
function icmp6Sum(p: Buffer): Buffer {
  const len = p.length - 40;
  p.writeUInt16BE(0, 42);
  p.writeUInt16BE(finish(sum16(p, 40, len, pseudoSum6(p, 8, 24, 58, len))), 42);
  return p;
}

function icmp4(type: number, code: number, rest: Buffer): Buffer {
  const m = Buffer.concat([Buffer.from([type, code, 0, 0, 0, 0, 0, 0]), rest]);
  m.writeUInt16BE(finish(sum16(m, 0, m.length)), 2);
  return m;
}

/** IPv4 packets as the host would hand them to the TUN, from the CLAT's IPv4 address. */
export function badIPv4(clat4: string, server: string): Bad[] {
  const udp = Buffer.from([0x30, 0x39, 0x00, 0x07, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4]);
  const goodUdp = Buffer.from(udp);
  goodUdp.writeUInt16BE(finish(sum16(goodUdp, 0, 12, pseudoSum4(parseIPv4(clat4), parseIPv4(server), 17, 12))), 6);
  return [
    { name: 'IHL below 5', bytes: ipv4(clat4, server, 17, udp, { ihl: 4 }), certain: true },
    {
      name: 'total length beyond the packet',
      bytes: ipv4(clat4, server, 17, udp, { totalLength: 400 }),
      certain: true,
    },
    { name: 'unknown ICMPv4 type 42', bytes: ipv4(clat4, server, 1, icmp4(42, 0, Buffer.alloc(8))), certain: true },
    { name: 'truncated header (12 bytes)', bytes: ipv4(clat4, server, 17, udp).subarray(0, 12), certain: true },
    { name: 'bad IPv4 header checksum', bytes: ipv4(clat4, server, 17, goodUdp, { badSum: true }), certain: false },
    {
      name: 'UDP length beyond the packet',
      bytes: ipv4(clat4, server, 17, Buffer.from([0x30, 0x39, 0, 7, 0, 200, 0, 0])),
      certain: false,
    },
  ];
}

/** IPv6 packets as they would come from the NAT64 to the CLAT address. */
export function badIPv6(from: string, clat6: string): Bad[] {
  const udp = Buffer.from([0x00, 0x07, 0x30, 0x39, 0x00, 0x0c, 0x12, 0x34, 1, 2, 3, 4]);
  const errInner = Buffer.alloc(8 + 10); // Destination Unreachable quoting 10 bytes: no IPv6 header fits
  errInner[0] = 1;
  errInner[1] = 4;
  errInner[8] = 0x60;
  return [
    { name: 'payload length beyond the packet', bytes: ipv6(from, clat6, 17, udp, 300), certain: true },
    { name: 'TCP with an empty payload', bytes: ipv6(from, clat6, 6, Buffer.alloc(0)), certain: true },
    {
      name: 'unknown ICMPv6 informational type 250',
      bytes: icmp6Sum(ipv6(from, clat6, 58, Buffer.from([250, 0, 0, 0, 0, 0, 0, 0]))),
      certain: true,
    },
    {
      name: 'ICMPv6 error quoting a truncated packet',
      bytes: icmp6Sum(ipv6(from, clat6, 58, errInner)),
      certain: true,
    },
    { name: 'UDP with a wrong checksum', bytes: ipv6(from, clat6, 17, udp), certain: false },
  ];
}

/** An Ethernet frame carrying IPv6 packet `p`. MACs as "aa:bb:...". */
export function ether6(dst: string, src: string, p: Buffer): Buffer {
  const mac = (m: string) => Buffer.from(m.split(':').map((x) => parseInt(x, 16)));
  return Buffer.concat([mac(dst), mac(src), Buffer.from([0x86, 0xdd]), p]);
}
