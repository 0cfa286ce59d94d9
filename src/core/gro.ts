/**
 * Coalescing of translated TCP segments into one IPv4 super-packet for a TUN with virtio_net_hdr
 * (after wireguard-go's `tun/offload_linux.go tcpGRO`): where the uplink handed over a stream's
 * segments one by one (no GRO there), consecutive ones of the same flow in one output batch become
 * one packet with a GSO header, so the TUN takes one write and the local stack one packet for
 * many. The kernel segments it again (`gso_size` = the first segment's payload) only if it
 * forwards it, giving back the segments that went in.
 *
 * Pure and in place: the payload of the later segment is appended behind the earlier one in its
 * slot; nothing is allocated.
 */
import type { PacketBatch } from './batch.js';
import { finish, fold, sum16 } from './checksum.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, vnetGsoSize, vnetGsoType, vnetSet } from './vnet.js';

const IPV4_HLEN = 20;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;
const MAX_IPV4 = 0xffff;

/**
 * The IPv4 TCP packet in slot `i` of `b` can start or extend a coalesced packet: a plain IPv4
 * header (20 bytes, no fragment), TCP with only ACK set (PSH too for the last one appended),
 * some payload.
 */
export function coalescable4(b: PacketBatch, i: number): boolean {
  const d = b.data;
  const o = b.offs[i];
  const len = b.lens[i];
  if (len < IPV4_HLEN + 20 || d[o] !== 0x45 || d[o + 9] !== 6) return false;
  if ((((d[o + 6] << 8) | d[o + 7]) & 0x3fff) !== 0) return false; // MF or an offset
  if (((d[o + 2] << 8) | d[o + 3]) !== len) return false;
  const th = (d[o + IPV4_HLEN + 12] >> 4) * 4;
  const flags = d[o + IPV4_HLEN + 13];
  return th >= 20 && len > IPV4_HLEN + th && (flags & ~TCP_PSH) === TCP_ACK;
}

/**
 * Appends the payload of the TCP segment in slot `j` to the packet in slot `k` (both passed
 * {@link coalescable4}) when it continues it: same addresses, TOS, TTL and DF; same ports, ACK
 * number, window and TCP options; its sequence number right after k's payload; k not pushed yet;
 * every segment of k full (`gso_size`) and j no larger. Slot k then carries a virtio_net_hdr in
 * `vnet` (GSO TCPv4, checksum partial: the field holds the pseudo-header sum, not complemented)
 * and slot j's length is 0. Returns whether it did; false leaves both as they were.
 */
export function coalesce4(b: PacketBatch, vnet: Uint8Array, k: number, j: number): boolean {
  const d = b.data;
  const p = b.offs[k];
  const q = b.offs[j];
  const lenK = b.lens[k];
  const lenJ = b.lens[j];
  const th = (d[p + IPV4_HLEN + 12] >> 4) * 4;
  if ((d[q + IPV4_HLEN + 12] >> 4) * 4 !== th) return false;
  if ((d[p + IPV4_HLEN + 13] & TCP_PSH) !== 0) return false;
  // TOS, DF, TTL, protocol, addresses; ports, ACK number; window and options.
  if (d[p + 1] !== d[q + 1] || (d[p + 6] & 0x40) !== (d[q + 6] & 0x40) || d[p + 8] !== d[q + 8]) return false;
  for (let x = 12; x < 20; x++) if (d[p + x] !== d[q + x]) return false;
  const t = IPV4_HLEN;
  for (let x = 0; x < 4; x++) if (d[p + t + x] !== d[q + t + x]) return false;
  for (let x = 8; x < 12; x++) if (d[p + t + x] !== d[q + t + x]) return false;
  if (d[p + t + 14] !== d[q + t + 14] || d[p + t + 15] !== d[q + t + 15]) return false;
  for (let x = 20; x < th; x++) if (d[p + t + x] !== d[q + t + x]) return false;
  const head = IPV4_HLEN + th;
  const dataK = lenK - head;
  const dataJ = lenJ - head;
  const gso = vnetGsoType(vnet, k) === VNET_GSO_NONE ? dataK : vnetGsoSize(vnet, k);
  if (dataK % gso !== 0 || dataJ > gso) return false;
  const seqK = ((d[p + t + 4] << 24) | (d[p + t + 5] << 16) | (d[p + t + 6] << 8) | d[p + t + 7]) >>> 0;
  const seqJ = ((d[q + t + 4] << 24) | (d[q + t + 5] << 16) | (d[q + t + 6] << 8) | d[q + t + 7]) >>> 0;
  if ((seqK + dataK) >>> 0 !== seqJ) return false;
  const total = lenK + dataJ;
  if (total > MAX_IPV4 || p + total > b.base + (k + 1) * b.stride) return false;
  d.copyWithin(p + lenK, q + head, q + lenJ);
  d[p + t + 13] |= d[q + t + 13] & TCP_PSH;
  d[p + 2] = total >>> 8;
  d[p + 3] = total & 0xff;
  d[p + 10] = 0;
  d[p + 11] = 0;
  const h = finish(sum16(d, p, IPV4_HLEN));
  d[p + 10] = h >>> 8;
  d[p + 11] = h & 0xff;
  // CHECKSUM_PARTIAL: the pseudo-header sum over the new TCP length, folded, not complemented.
  const partial = fold(sum16(d, p + 12, 8, 6 + total - IPV4_HLEN));
  d[p + t + 16] = partial >>> 8;
  d[p + t + 17] = partial & 0xff;
  vnetSet(vnet, k, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, head, gso, IPV4_HLEN, 16);
  b.lens[k] = total;
  b.lens[j] = 0;
  return true;
}
