/**
 * Segmentation of IPv6 and IPv4 GSO/GRO super-packets, the way the kernel's own would do it
 * (tcp_gso_segment, __udp_gso_segment; after wireguard-go's `tun/offload_linux.go gsoSplit`): one
 * packet carrying many segments' payload behind one TCP or UDP header becomes packets of
 * `gsoSize` payload bytes each, every one with its own lengths and a full checksum.
 *
 * Pure and in place: the first segment stays in its slot, the others go to free slots of the same
 * batch, at the same offset into their slot. Nothing is allocated.
 */
import type { PacketBatch } from './batch.js';
import { finish, pseudoSum4, pseudoSum6, sum16 } from './checksum.js';

const IPV6_HLEN = 40;
const IPV4_HLEN = 20;
const UDP_HLEN = 8;
const TCP_MIN_HLEN = 20;
/** IPv6 Next Header / pseudo-header protocol numbers. */
export const GSO_TCP = 6;
export const GSO_UDP = 17;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/** {@link gsoSplit} changed nothing: the batch has too few free slots for the segments. */
export const GSO_NO_ROOM = -1;
/** {@link gsoSplit} changed nothing: the headers do not add up, or a segment would not fit its slot. */
export const GSO_BAD = -2;

/**
 * Splits the super-packet in slot `i` of `b` (`b.offs[i]`, `b.lens[i]`: an IPv6 header and any
 * extension headers, or an IPv4 header with any options, `l4` bytes in all, then a TCP or UDP
 * header as `proto` says) into packets of
 * `gsoSize` payload bytes; the last may be shorter. The first stays in slot `i`, the others take
 * slots `free`, `free + 1`, ... (their `offs`, `lens` and `disp`, copied from slot i, are set;
 * `b.count` is the caller's). Each gets its Payload Length, its UDP length or TCP sequence number,
 * and a full L4 checksum (a UDP checksum of 0 is sent as 0xffff, RFC 8200 §8.1); IPv4 ones their
 * Total Length, an Identification one up per segment (as the kernel's inet_gso_segment counts) and
 * a header checksum. TCP flags as the
 * kernel sets them: FIN and PSH only on the last segment, CWR only on the first.
 *
 * Returns the number of slots added (segments - 1), or {@link GSO_NO_ROOM} / {@link GSO_BAD} with
 * the batch unchanged. The checksum field of the input need not be valid: it is recomputed.
 */
export function gsoSplit(b: PacketBatch, i: number, l4: number, proto: number, gsoSize: number, free: number): number {
  const d = b.data;
  const q = b.offs[i];
  const total = b.lens[i];
  if (proto !== GSO_TCP && proto !== GSO_UDP) return GSO_BAD;
  const v4 = d[q] >> 4 === 4;
  if (l4 < (v4 ? IPV4_HLEN : IPV6_HLEN) || total < l4 + UDP_HLEN) return GSO_BAD;
  if (v4 && l4 !== (d[q] & 15) * 4) return GSO_BAD;
  const l4len = proto === GSO_TCP ? (d[q + l4 + 12] >> 4) * 4 : UDP_HLEN;
  if (proto === GSO_TCP && l4len < TCP_MIN_HLEN) return GSO_BAD;
  const data = total - l4 - l4len;
  if (gsoSize <= 0 || data <= 0) return GSO_BAD;
  const segs = Math.ceil(data / gsoSize);
  // Offset of the packet inside its slot; every segment sits at the same one in its own slot.
  const slotOff = q - (b.base + i * b.stride);
  const head = l4 + l4len;
  if (slotOff < 0 || slotOff + head + gsoSize > b.stride) return GSO_BAD;
  if (free + segs - 1 > b.capacity) return GSO_NO_ROOM;
  const seq0 =
    proto === GSO_TCP
      ? ((d[q + l4 + 4] << 24) | (d[q + l4 + 5] << 16) | (d[q + l4 + 6] << 8) | d[q + l4 + 7]) >>> 0
      : 0;
  const flags0 = proto === GSO_TCP ? d[q + l4 + 13] : 0;
  const id0 = v4 ? (d[q + 4] << 8) | d[q + 5] : 0;
  const src4 = v4 ? ((d[q + 12] << 24) | (d[q + 13] << 16) | (d[q + 14] << 8) | d[q + 15]) >>> 0 : 0;
  const dst4 = v4 ? ((d[q + 16] << 24) | (d[q + 17] << 16) | (d[q + 18] << 8) | d[q + 19]) >>> 0 : 0;
  // Last segment first: the others copy from slot i, which changes only at k = 0.
  for (let k = segs - 1; k >= 0; k--) {
    const chunk = Math.min(gsoSize, data - k * gsoSize);
    const slot = k === 0 ? i : free + k - 1;
    const dst = k === 0 ? q : b.base + slot * b.stride + slotOff;
    if (k > 0) {
      d.copyWithin(dst, q, q + head);
      d.copyWithin(dst + head, q + head + k * gsoSize, q + head + k * gsoSize + chunk);
      b.offs[slot] = dst;
      b.disp[slot] = b.disp[i];
    }
    fixSegment(d, dst, l4, l4len, proto, v4, k, gsoSize, chunk, seq0, flags0, id0, src4, dst4, k === segs - 1);
    b.lens[slot] = l4 + l4len + chunk;
  }
  return segs - 1;
}

/**
 * Makes the copy at `d[dst]` (the super-packet's headers, then chunk `k` of `chunk` bytes) segment
 * `k`: lengths, IPv4 Identification and header checksum, TCP sequence number and flags (FIN and
 * PSH only when `last`, CWR only at k = 0) or UDP length, and a full L4 checksum.
 */
function fixSegment(
  d: Uint8Array,
  dst: number,
  l4: number,
  l4len: number,
  proto: number,
  v4: boolean,
  k: number,
  gsoSize: number,
  chunk: number,
  seq0: number,
  flags0: number,
  id0: number,
  src4: number,
  dst4: number,
  last: boolean,
): void {
  const seglen = l4len + chunk;
  if (v4) {
    const tot = l4 + seglen;
    d[dst + 2] = tot >>> 8;
    d[dst + 3] = tot & 0xff;
    const id = (id0 + k) & 0xffff;
    d[dst + 4] = id >>> 8;
    d[dst + 5] = id & 0xff;
    d[dst + 10] = 0;
    d[dst + 11] = 0;
    const h = finish(sum16(d, dst, l4));
    d[dst + 10] = h >>> 8;
    d[dst + 11] = h & 0xff;
  } else {
    const plen = l4 - IPV6_HLEN + seglen;
    d[dst + 4] = plen >>> 8;
    d[dst + 5] = plen & 0xff;
  }
  const u = dst + l4;
  let field: number;
  if (proto === GSO_TCP) {
    const seq = (seq0 + k * gsoSize) >>> 0;
    d[u + 4] = seq >>> 24;
    d[u + 5] = (seq >>> 16) & 0xff;
    d[u + 6] = (seq >>> 8) & 0xff;
    d[u + 7] = seq & 0xff;
    let f = flags0;
    if (!last) f &= ~(TCP_FIN | TCP_PSH);
    if (k > 0) f &= ~TCP_CWR;
    d[u + 13] = f;
    field = u + 16;
  } else {
    d[u + 4] = seglen >>> 8;
    d[u + 5] = seglen & 0xff;
    field = u + 6;
  }
  d[field] = 0;
  d[field + 1] = 0;
  const pseudo = v4 ? pseudoSum4(src4, dst4, proto, seglen) : pseudoSum6(d, dst + 8, dst + 24, proto, seglen);
  const c = finish(sum16(d, u, seglen, pseudo));
  const v = proto === GSO_UDP ? c || 0xffff : c;
  d[field] = v >>> 8;
  d[field + 1] = v & 0xff;
}

/**
 * For a TCP super-packet with more segments than free slots: cuts its first `n` segments off into
 * slots `free` .. `free + n - 1` (as {@link gsoSplit} makes them; none is the last, so none has FIN
 * or PSH) and leaves slot `i` holding the rest as a super-packet of its own: its headers moved up
 * to the first byte left, sequence number, lengths and Identification advanced, CWR cleared. The
 * caller writes the segments out, and splits or cuts the rest next. `n` must be less than the
 * segments there are. Returns `n`, or {@link GSO_BAD} / {@link GSO_NO_ROOM} with the batch unchanged.
 */
export function gsoSplitFront(b: PacketBatch, i: number, l4: number, gsoSize: number, free: number, n: number): number {
  const d = b.data;
  const q = b.offs[i];
  const total = b.lens[i];
  const v4 = d[q] >> 4 === 4;
  if (l4 < (v4 ? IPV4_HLEN : IPV6_HLEN) || total < l4 + TCP_MIN_HLEN) return GSO_BAD;
  if (v4 && l4 !== (d[q] & 15) * 4) return GSO_BAD;
  const l4len = (d[q + l4 + 12] >> 4) * 4;
  if (l4len < TCP_MIN_HLEN) return GSO_BAD;
  const data = total - l4 - l4len;
  if (gsoSize <= 0 || data <= 0 || n < 1 || n >= Math.ceil(data / gsoSize)) return GSO_BAD;
  const slotOff = q - (b.base + i * b.stride);
  const head = l4 + l4len;
  if (slotOff < 0 || slotOff + head + gsoSize > b.stride) return GSO_BAD;
  if (free + n > b.capacity) return GSO_NO_ROOM;
  const seq0 = ((d[q + l4 + 4] << 24) | (d[q + l4 + 5] << 16) | (d[q + l4 + 6] << 8) | d[q + l4 + 7]) >>> 0;
  const flags0 = d[q + l4 + 13];
  const id0 = v4 ? (d[q + 4] << 8) | d[q + 5] : 0;
  const src4 = v4 ? ((d[q + 12] << 24) | (d[q + 13] << 16) | (d[q + 14] << 8) | d[q + 15]) >>> 0 : 0;
  const dst4 = v4 ? ((d[q + 16] << 24) | (d[q + 17] << 16) | (d[q + 18] << 8) | d[q + 19]) >>> 0 : 0;
  for (let k = 0; k < n; k++) {
    const slot = free + k;
    const dst = b.base + slot * b.stride + slotOff;
    d.copyWithin(dst, q, q + head);
    d.copyWithin(dst + head, q + head + k * gsoSize, q + head + (k + 1) * gsoSize);
    b.offs[slot] = dst;
    b.disp[slot] = b.disp[i];
    fixSegment(d, dst, l4, l4len, GSO_TCP, v4, k, gsoSize, gsoSize, seq0, flags0, id0, src4, dst4, false);
    b.lens[slot] = head + gsoSize;
  }
  // The rest: the headers moved up to just before its first payload byte (memmove: may overlap).
  const cut = n * gsoSize;
  const r = q + cut;
  d.copyWithin(r, q, q + head);
  const rest = total - cut;
  if (v4) {
    d[r + 2] = rest >>> 8;
    d[r + 3] = rest & 0xff;
    const id = (id0 + n) & 0xffff;
    d[r + 4] = id >>> 8;
    d[r + 5] = id & 0xff;
  } else {
    d[r + 4] = (rest - IPV6_HLEN) >>> 8;
    d[r + 5] = (rest - IPV6_HLEN) & 0xff;
  }
  const seq = (seq0 + cut) >>> 0;
  d[r + l4 + 4] = seq >>> 24;
  d[r + l4 + 5] = (seq >>> 16) & 0xff;
  d[r + l4 + 6] = (seq >>> 8) & 0xff;
  d[r + l4 + 7] = seq & 0xff;
  d[r + l4 + 13] = flags0 & ~TCP_CWR;
  b.offs[i] = r;
  b.lens[i] = rest;
  return n;
}
