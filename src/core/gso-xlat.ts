/**
 * Translating a TCP super-packet once (the worker path's offloads): one IPv4 header and up to 64
 * KiB of a stream's payload become one IPv6 header and the same payload, or back, instead of a
 * translation per segment. Segmenting the result (the kernel with the virtio_net_hdr, or
 * {@link gsoSplit}) then gives what segmenting first and translating each segment would.
 *
 * The translator itself is reused on a view of the first segment: the super-packet's length field
 * is cut to the first segment (header checksum kept valid), so every check sees what the first
 * segment would show, size limits included: the MTU and Packet Too Big logic applies to
 * gso_size + headers, not to the super-packet. The rest of the payload is then moved behind the
 * translated header and the length fields set for the whole.
 *
 * Checksums: a super-packet (CHECKSUM_PARTIAL) carries in its TCP checksum field the folded, not
 * complemented, pseudo-header sum over the super-packet's length. The translator updates a
 * complemented checksum for the new addresses (RFC 1624); complementing the field before and
 * after makes that the same update of the partial sum (protocol and length are in both
 * pseudo-headers and cancel). Nothing here allocates.
 */
import { copyBytes, Disposition, type PacketBatch } from './batch.js';
import { adjust, finish, sum16 } from './checksum.js';
import { Drop } from './xlat/drop.js';

/** What this module needs of `Translator` (src/core/xlat/translator.ts). */
export interface SegmentTranslator {
  translate4(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop;
  translate6(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop;
}

const PROTO_TCP = 6;
const IPV6_HLEN = 40;
const IPV4_HLEN = 20;
const TCP_MIN_HLEN = 20;
/** The TCP checksum field's offset in the TCP header (virtio csum_offset). */
export const TCP_CSUM_OFFSET = 16;

function complement16(d: Uint8Array, at: number): void {
  d[at] = ~d[at] & 0xff;
  d[at + 1] = ~d[at + 1] & 0xff;
}

/**
 * Translates the IPv4 TCP super-packet `b[off, off+len)` (segments of `gsoSize` payload bytes,
 * checksum partial) into one IPv6 super-packet appended to `out` (Forward), with its TCP checksum
 * field holding the partial sum for the IPv6 pseudo-header: headers 20 bytes longer, csum_start
 * and hdr_len with them. A super-packet that is one segment or less is translated the same way.
 * Returns the translator's verdict for the first segment (any ICMP error it made is in `out`), or
 * a drop of its own for headers that do not add up. A first segment the translator would have
 * fragmented (DF=0, larger than the IPv6 limit) is refused as D46_TOO_BIG: each segment would need
 * fragments of its own.
 */
export function translateSuper46(
  t: SegmentTranslator,
  b: Uint8Array,
  off: number,
  len: number,
  gsoSize: number,
  out: PacketBatch,
): Drop {
  if (len < IPV4_HLEN + TCP_MIN_HLEN || b[off] >> 4 !== 4) return Drop.D46_TRUNCATED;
  const ihl = (b[off] & 15) * 4;
  if (ihl < IPV4_HLEN || b[off + 9] !== PROTO_TCP || len < ihl + TCP_MIN_HLEN) return Drop.D46_L4_TRUNCATED;
  if (((b[off + 2] << 8) | b[off + 3]) !== len) return Drop.D46_BAD_LENGTH;
  const th = (b[off + ihl + 12] >> 4) * 4;
  if (th < TCP_MIN_HLEN || ihl + th > len || gsoSize <= 0) return Drop.D46_L4_TRUNCATED;
  const seg = Math.min(len, ihl + th + gsoSize);
  const field = off + ihl + TCP_CSUM_OFFSET;
  complement16(b, field);
  if (seg < len) {
    // The view: Total Length of the first segment, and the header checksum to match.
    b[off + 2] = seg >>> 8;
    b[off + 3] = seg & 0xff;
    const h = adjust((b[off + 10] << 8) | b[off + 11], len, seg);
    b[off + 10] = h >>> 8;
    b[off + 11] = h & 0xff;
  }
  const before = out.count;
  const r = t.translate4(b, off, seg, out);
  if (r !== Drop.NONE) return r;
  const head = IPV6_HLEN + seg - ihl;
  if (out.count !== before + 1 || out.disp[before] !== Disposition.Forward || out.lens[before] !== head) {
    out.count = before;
    return Drop.D46_TOO_BIG;
  }
  const o = out.offs[before];
  const whole = IPV6_HLEN + len - ihl;
  if (o + whole > out.base + (before + 1) * out.stride) {
    out.count = before;
    return Drop.OUTPUT_FULL;
  }
  const d = out.data;
  if (seg < len) copyBytes(b, off + seg, len - seg, d, o + head);
  const plen = len - ihl;
  d[o + 4] = plen >>> 8;
  d[o + 5] = plen & 0xff;
  complement16(d, o + IPV6_HLEN + TCP_CSUM_OFFSET);
  out.lens[before] = whole;
  return Drop.NONE;
}

/**
 * Translates the IPv6 TCP super-packet `b[off, off+len)` (no extension headers: Next Header is
 * TCP; segments of `gsoSize` payload bytes, checksum partial) into one IPv4 super-packet appended
 * to `out` (Forward): headers 20 bytes shorter, TCP checksum field partial for the IPv4
 * pseudo-header. Returns as {@link translateSuper46} does (D64_ drops; a first segment the
 * translator did not turn into exactly one packet is refused as D64_TOO_BIG).
 *
 * The IPv4 header is the first segment's: DF and Identification as the translator chose for a
 * packet of that size (RFC 7915 §5.1), which the kernel's segmentation copies to every segment with
 * the Identification counting up; the last, shorter segment keeps DF where the translator, given
 * it alone, might not set it (a packet under 1260 bytes).
 */
export function translateSuper64(
  t: SegmentTranslator,
  b: Uint8Array,
  off: number,
  len: number,
  gsoSize: number,
  out: PacketBatch,
): Drop {
  if (len < IPV6_HLEN + TCP_MIN_HLEN || b[off] >> 4 !== 6) return Drop.D64_TRUNCATED;
  if (b[off + 6] !== PROTO_TCP) return Drop.D64_BAD_EXT_HEADER;
  if (((b[off + 4] << 8) | b[off + 5]) !== len - IPV6_HLEN) return Drop.D64_BAD_LENGTH;
  const th = (b[off + IPV6_HLEN + 12] >> 4) * 4;
  if (th < TCP_MIN_HLEN || IPV6_HLEN + th > len || gsoSize <= 0) return Drop.D64_L4_TRUNCATED;
  const seg = Math.min(len, IPV6_HLEN + th + gsoSize);
  complement16(b, off + IPV6_HLEN + TCP_CSUM_OFFSET);
  if (seg < len) {
    b[off + 4] = (seg - IPV6_HLEN) >>> 8;
    b[off + 5] = (seg - IPV6_HLEN) & 0xff;
  }
  const before = out.count;
  const r = t.translate6(b, off, seg, out);
  if (r !== Drop.NONE) return r;
  const head = seg - IPV6_HLEN + IPV4_HLEN;
  if (out.count !== before + 1 || out.disp[before] !== Disposition.Forward || out.lens[before] !== head) {
    out.count = before;
    return Drop.D64_TOO_BIG;
  }
  const o = out.offs[before];
  const whole = len - IPV6_HLEN + IPV4_HLEN;
  if (o + whole > out.base + (before + 1) * out.stride) {
    out.count = before;
    return Drop.OUTPUT_FULL;
  }
  const d = out.data;
  if (seg < len) {
    copyBytes(b, off + seg, len - seg, d, o + head);
    d[o + 2] = whole >>> 8;
    d[o + 3] = whole & 0xff;
    d[o + 10] = 0;
    d[o + 11] = 0;
    const h = finish(sum16(d, o, IPV4_HLEN));
    d[o + 10] = h >>> 8;
    d[o + 11] = h & 0xff;
  }
  complement16(d, o + IPV4_HLEN + TCP_CSUM_OFFSET);
  out.lens[before] = whole;
  return Drop.NONE;
}

/**
 * Completes a partial L4 checksum in place (CHECKSUM_PARTIAL: the field at `l4 + csumOffset`
 * holds the pseudo-header sum, so summing from `l4` to `end` over it gives the full sum). 0 goes
 * out as 0xffff: the same value in one's complement, and required for UDP (RFC 768, RFC 8200 §8.1).
 */
export function completeChecksum(d: Uint8Array, l4: number, csumOffset: number, end: number): void {
  const field = l4 + csumOffset;
  const c = finish(sum16(d, l4, end - l4)) || 0xffff;
  d[field] = c >>> 8;
  d[field + 1] = c & 0xff;
}
