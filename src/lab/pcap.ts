/**
 * Reading what the lab's tcpdump captured: classic pcap files (microsecond or nanosecond, either
 * byte order) of Ethernet frames, and a decoder for the Neighbor Discovery messages the DAD tests
 * look at (RFC 4861 §4.3, §4.4; the nonce option of RFC 3971 §5.3.2 as RFC 7527 reuses it).
 */
import { formatIPv6, parseIPv6, solicitedNode } from '../core/addr/ipv6.js';
import { readPcap } from '../pcap/pcap.js';

export interface Frame {
  /** Capture time in seconds. */
  time: number;
  data: Buffer;
}

/** Parses a pcap file; a truncated last record is ignored (tcpdump may still be writing). */
export function parsePcap(buf: Buffer): { linkType: number; frames: Frame[] } {
  if (buf.length < 24) return { linkType: -1, frames: [] };
  const f = readPcap(buf, { partialTail: true });
  return {
    linkType: f.linktype,
    frames: f.records.map((r) => ({
      time: r.tsUs / 1e6,
      data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.length),
    })),
  };
}

export interface Ipv6Packet {
  /** The whole IPv6 packet (header included). */
  packet: Buffer;
  src: string;
  dst: string;
  nextHeader: number;
  hopLimit: number;
  payloadLength: number;
  payload: Buffer;
  ethSrc: string;
  ethDst: string;
}

function mac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The IPv6 packet in an Ethernet frame (no VLAN), or null. */
export function ipv6OfFrame(frame: Buffer): Ipv6Packet | null {
  if (frame.length < 14 + 40 || frame.readUInt16BE(12) !== 0x86dd) return null;
  const p = frame.subarray(14);
  if (p[0] >> 4 !== 6) return null;
  const payloadLength = p.readUInt16BE(4);
  return {
    packet: p,
    src: formatIPv6(p.subarray(8, 24)),
    dst: formatIPv6(p.subarray(24, 40)),
    nextHeader: p[6],
    hopLimit: p[7],
    payloadLength,
    payload: p.subarray(40, 40 + payloadLength),
    ethSrc: mac(frame.subarray(6, 12)),
    ethDst: mac(frame.subarray(0, 6)),
  };
}

export interface NdOption {
  type: number;
  /** Length in units of 8 octets, as on the wire. */
  len: number;
  body: Buffer;
}

export interface NdMessage {
  ip: Ipv6Packet;
  /** 135 = NS, 136 = NA. */
  type: number;
  target: string;
  /** NA flags: Router, Solicited, Override. */
  flags: { router: boolean; solicited: boolean; override: boolean };
  options: NdOption[];
}

/** Decodes an NS or NA carried directly after the IPv6 header, or returns null. */
export function ndOfFrame(frame: Buffer): NdMessage | null {
  const ip = ipv6OfFrame(frame);
  if (ip === null || ip.nextHeader !== 58 || ip.payload.length < 24) return null;
  const type = ip.payload[0];
  if (type !== 135 && type !== 136) return null;
  const options: NdOption[] = [];
  let off = 24;
  while (off + 2 <= ip.payload.length) {
    const len = ip.payload[off + 1];
    if (len === 0 || off + len * 8 > ip.payload.length) break;
    options.push({ type: ip.payload[off], len, body: ip.payload.subarray(off + 2, off + len * 8) });
    off += len * 8;
  }
  const f = ip.payload[4];
  return {
    ip,
    type,
    target: formatIPv6(ip.payload.subarray(8, 24)),
    flags: { router: (f & 0x80) !== 0, solicited: (f & 0x40) !== 0, override: (f & 0x20) !== 0 },
    options,
  };
}

/** The solicited-node multicast address of textual `addr` (RFC 4291 §2.7.1), as text. */
export function solicitedNodeOf(addr: string): string {
  return formatIPv6(solicitedNode(parseIPv6(addr)));
}

export interface RouterAdvert {
  ip: Ipv6Packet;
  routerLifetime: number;
  options: NdOption[];
  /** The PREF64 option (RFC 8781 §4), decoded, or null when the RA has none. */
  pref64: { prefix: string; lifetime: number } | null;
}

/** RFC 8781 §4: Prefix Length Code → prefix length. */
const PLC_LENGTHS = [96, 64, 56, 48, 40, 32];

/** Decodes a Router Advertisement (RFC 4861 §4.2) in an Ethernet frame, or returns null. */
export function raOfFrame(frame: Buffer): RouterAdvert | null {
  const ip = ipv6OfFrame(frame);
  if (ip === null || ip.nextHeader !== 58 || ip.payload.length < 16 || ip.payload[0] !== 134) return null;
  const options: NdOption[] = [];
  let pref64: RouterAdvert['pref64'] = null;
  let off = 16;
  while (off + 2 <= ip.payload.length) {
    const len = ip.payload[off + 1];
    if (len === 0 || off + len * 8 > ip.payload.length) break;
    const body = ip.payload.subarray(off + 2, off + len * 8);
    options.push({ type: ip.payload[off], len, body });
    if (ip.payload[off] === 38 && len === 2) {
      const word = body.readUInt16BE(0);
      const p = new Uint8Array(16);
      p.set(body.subarray(2, 14), 0);
      const plen = PLC_LENGTHS[word & 7];
      pref64 = { prefix: `${formatIPv6(p)}/${plen ?? `PLC${word & 7}`}`, lifetime: (word >> 3) * 8 };
    }
    off += len * 8;
  }
  return { ip, routerLifetime: ip.payload.readUInt16BE(6), options, pref64 };
}
