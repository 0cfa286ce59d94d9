/**
 * ICMP errors the translator itself originates (RFC 7915 §4 and §5: Time Exceeded, Packet Too
 * Big / Fragmentation Needed, Parameter Problem, ...), for both families. The error goes back to
 * the sender of the offending packet, from the translator's own address, and is appended to the
 * output batch with disposition Back.
 *
 * Header choices follow what Linux's icmp_send()/icmpv6_send() put on the wire (and what the
 * Jool corpus expects): TTL / Hop Limit = generatedTtl, TOS / Traffic Class 0, Flow Label 0,
 * IPv4 ID 0 with DF clear, and the offending packet quoted up to 576 bytes in total for ICMPv4
 * (RFC 1812 §4.3.2.3) and 1280 for ICMPv6 (RFC 4443 §2.4 (c)).
 */
import { copyBytes, Disposition, type PacketBatch, slotStart } from '../batch.js';
import { finish, pseudoSum6, sum16 } from '../checksum.js';
import { ipv4WriteHeader } from '../hdr/ipv4.js';
import type { ResolvedConfig } from './config.js';

/** Largest ICMPv4 error, headers included (RFC 1812 §4.3.2.3). */
export const ICMP4_ERROR_MAX = 576;
/** Largest ICMPv6 error, headers included (RFC 4443 §2.4 (c)). */
export const ICMP6_ERROR_MAX = 1280;

function isIcmp6ErrorOrUnanswerable(b: Uint8Array, off: number, len: number): boolean {
  // RFC 4443 §2.4 (e): never answer a multicast destination or an unspecified / multicast source.
  if (b[off + 24] === 0xff || b[off + 8] === 0xff) return true;
  let zero = true;
  for (let i = 8; i < 24; i++) if (b[off + i] !== 0) zero = false;
  if (zero) return true;
  // An ICMPv6 error directly after the fixed header is never answered with an error (§2.4 (e.1)).
  return b[off + 6] === 58 && len > 40 && b[off + 40] < 128;
}

/**
 * Appends ICMPv6 error `type`/`code` about the IPv6 packet at `b[off, off+len)`, with `body` as the
 * 32-bit word after the checksum (MTU for Packet Too Big, pointer for Parameter Problem, else 0).
 * Returns true when an error was appended; false when there is no own IPv6 address, the batch is
 * full, or RFC 4443 §2.4 (e) forbids answering this packet.
 */
export function emitIcmp6Error(
  c: ResolvedConfig,
  b: Uint8Array,
  off: number,
  len: number,
  type: number,
  code: number,
  body: number,
  out: PacketBatch,
): boolean {
  const own = c.ownV6;
  if (own === null || len < 40 || out.count >= out.capacity) return false;
  if (isIcmp6ErrorOrUnanswerable(b, off, len)) return false;
  const quote = Math.min(len, ICMP6_ERROR_MAX - 48, out.stride - 48);
  const d = out.data;
  const o = slotStart(out, out.count);
  const icmpLen = 8 + quote;
  d[o] = 0x60;
  d[o + 1] = 0;
  d[o + 2] = 0;
  d[o + 3] = 0;
  d[o + 4] = icmpLen >>> 8;
  d[o + 5] = icmpLen;
  d[o + 6] = 58;
  d[o + 7] = c.generatedTtl;
  d.set(own, o + 8);
  for (let i = 0; i < 16; i++) d[o + 24 + i] = b[off + 8 + i];
  const m = o + 40;
  writeError(d, m, type, code, body, b, off, quote, pseudoSum6(d, o + 8, o + 24, 58, icmpLen));
  appendBack(out, o, 40 + icmpLen);
  return true;
}

/**
 * Appends ICMPv4 error `type`/`code` about the IPv4 packet at `b[off, off+len)`, with `body` as the
 * 32-bit word after the checksum (Next-Hop MTU in its low 16 bits for Fragmentation Needed,
 * pointer in its top byte for Parameter Problem, else 0). Returns true when an error was appended;
 * false when there is no own IPv4 address, the batch is full, or RFC 1122 §3.2.2 forbids it (the
 * packet is an ICMP error, a non-first fragment, or from/to a broadcast, multicast or zero address).
 */
export function emitIcmp4Error(
  c: ResolvedConfig,
  b: Uint8Array,
  off: number,
  len: number,
  type: number,
  code: number,
  body: number,
  out: PacketBatch,
): boolean {
  const own = c.ownV4;
  if (own === null || len < 20 || out.count >= out.capacity) return false;
  const ihl = (b[off] & 0xf) * 4;
  const fragOffset = ((b[off + 6] & 0x1f) << 8) | b[off + 7];
  const src = ((b[off + 12] << 24) | (b[off + 13] << 16) | (b[off + 14] << 8) | b[off + 15]) >>> 0;
  const dstTop = b[off + 16];
  if (fragOffset !== 0 || src === 0 || src >>> 28 >= 0xe || dstTop >= 0xe0) return false;
  if (b[off + 9] === 1 && len > ihl) {
    const t = b[off + ihl];
    if (t === 3 || t === 4 || t === 5 || t === 11 || t === 12) return false;
  }
  const quote = Math.min(len, ICMP4_ERROR_MAX - 28, out.stride - 28);
  const total = 28 + quote;
  const d = out.data;
  const o = slotStart(out, out.count);
  ipv4WriteHeader(d, o, 0, total, c.generatedTtl, 1, own, src);
  writeError(d, o + 20, type, code, body, b, off, quote, 0);
  appendBack(out, o, total);
  return true;
}

/**
 * The ICMP part of an error, the same in both families: type, code, checksum, the 32-bit `body`
 * word, then `quote` bytes of the offending packet; the checksum starts from `initial` (the IPv6
 * pseudo-header sum, or 0 for ICMPv4).
 */
function writeError(
  d: Uint8Array,
  m: number,
  type: number,
  code: number,
  body: number,
  b: Uint8Array,
  off: number,
  quote: number,
  initial: number,
): void {
  d[m] = type;
  d[m + 1] = code;
  d[m + 2] = 0;
  d[m + 3] = 0;
  d[m + 4] = body >>> 24;
  d[m + 5] = body >>> 16;
  d[m + 6] = body >>> 8;
  d[m + 7] = body;
  copyBytes(b, off, quote, d, m + 8);
  const cs = finish(sum16(d, m, 8 + quote, initial));
  d[m + 2] = cs >>> 8;
  d[m + 3] = cs;
}

/** Appends the packet built at `o` to `out` as a Back packet. */
function appendBack(out: PacketBatch, o: number, len: number): void {
  out.offs[out.count] = o;
  out.lens[out.count] = len;
  out.disp[out.count] = Disposition.Back;
  out.count++;
}
