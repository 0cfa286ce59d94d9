/**
 * Classic libpcap files (the format tcpdump writes): reading both byte orders and both timestamp
 * resolutions, and writing raw-IP captures. Pure: bytes in, bytes out; the CLI does the file I/O.
 *
 * File header (24 bytes): magic u32, version major u16, minor u16, thiszone i32, sigfigs u32,
 * snaplen u32, linktype u32. Record header (16 bytes): ts_sec u32, ts_frac u32, incl_len u32,
 * orig_len u32, then incl_len bytes.
 */
import { ClatdError } from '../core/errors.js';

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;

export class PcapError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_PCAP');
    this.name = 'PcapError';
  }
}

export interface PcapRecord {
  /** Timestamp in microseconds since the epoch. */
  tsUs: number;
  /** The captured bytes as stored (link-layer framing included). */
  data: Uint8Array;
  origLen: number;
}

export interface PcapFile {
  linktype: number;
  snaplen: number;
  records: PcapRecord[];
}

export interface ReadOptions {
  /**
   * Ignore a truncated last record instead of failing: a capture that tcpdump is still writing
   * ends mid-record.
   */
  partialTail?: boolean;
}

export function readPcap(buf: Uint8Array, opts: ReadOptions = {}): PcapFile {
  if (buf.length < 24) throw new PcapError(`not a pcap file: ${buf.length} bytes is shorter than the 24-byte header`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let le: boolean;
  const m = dv.getUint32(0, true);
  if (m === MAGIC_US || m === MAGIC_NS) le = true;
  else if (dv.getUint32(0, false) === MAGIC_US || dv.getUint32(0, false) === MAGIC_NS) le = false;
  else if (m === 0x0a0d0d0a)
    throw new PcapError('pcapng files are not supported: convert with `editcap -F pcap in.pcapng out.pcap`');
  else throw new PcapError(`not a pcap file: magic 0x${m.toString(16)}`);
  const nano = dv.getUint32(0, le) === MAGIC_NS;
  const snaplen = dv.getUint32(16, le);
  const linktype = dv.getUint32(20, le) & 0x0fffffff;
  const records: PcapRecord[] = [];
  let off = 24;
  while (off < buf.length) {
    if (off + 16 > buf.length) {
      if (opts.partialTail) break;
      throw new PcapError(`truncated record header at byte ${off}`);
    }
    const sec = dv.getUint32(off, le);
    const frac = dv.getUint32(off + 4, le);
    const incl = dv.getUint32(off + 8, le);
    const orig = dv.getUint32(off + 12, le);
    if (off + 16 + incl > buf.length) {
      if (opts.partialTail) break;
      throw new PcapError(`truncated record at byte ${off}: ${incl} bytes announced`);
    }
    records.push({
      tsUs: sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac),
      data: buf.subarray(off + 16, off + 16 + incl),
      origLen: orig,
    });
    off += 16 + incl;
  }
  return { linktype, snaplen, records };
}

/**
 * The IP packet inside a record, by link type; null when the frame carries no IPv4/IPv6 (ARP,
 * other ethertypes). VLAN tags (802.1Q) are skipped.
 */
export function ipPayload(linktype: number, frame: Uint8Array): Uint8Array | null {
  switch (linktype) {
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
      return frame;
    case LINKTYPE_ETHERNET: {
      let off = 12;
      let type = frame.length >= 14 ? (frame[12] << 8) | frame[13] : -1;
      while ((type === 0x8100 || type === 0x88a8) && frame.length >= off + 6) {
        off += 4;
        type = (frame[off] << 8) | frame[off + 1];
      }
      return type === 0x0800 || type === 0x86dd ? frame.subarray(off + 2) : null;
    }
    case LINKTYPE_LINUX_SLL: {
      if (frame.length < 16) return null;
      const type = (frame[14] << 8) | frame[15];
      return type === 0x0800 || type === 0x86dd ? frame.subarray(16) : null;
    }
    default:
      throw new PcapError(
        `unsupported link type ${linktype} (supported: Ethernet 1, raw IP 101, Linux cooked 113, IPv4 228, IPv6 229)`,
      );
  }
}

/** A raw-IP (LINKTYPE_RAW) pcap file holding `packets`, microsecond timestamps. */
export function writePcap(packets: readonly { tsUs: number; data: Uint8Array }[], snaplen = 65535): Uint8Array {
  const total = 24 + packets.reduce((n, p) => n + 16 + p.data.length, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC_US, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, snaplen, true);
  dv.setUint32(20, LINKTYPE_RAW, true);
  let off = 24;
  for (const p of packets) {
    dv.setUint32(off, Math.floor(p.tsUs / 1e6), true);
    dv.setUint32(off + 4, Math.floor(p.tsUs % 1e6), true);
    dv.setUint32(off + 8, p.data.length, true);
    dv.setUint32(off + 12, p.data.length, true);
    out.set(p.data, off + 16);
    off += 16 + p.data.length;
  }
  return out;
}
