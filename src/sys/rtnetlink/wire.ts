/**
 * The netlink wire format (RFC 3549 §2.3.2, and the kernel's `linux/netlink.h`): a 16-byte
 * `nlmsghdr`, a fixed family header, then type-length-value attributes aligned to 4 bytes. Netlink
 * integers are in host byte order; addresses inside attributes are in network order. Pure: no I/O.
 */
import { endianness } from 'node:os';
import { NLA_F_NESTED, NLA_TYPE_MASK, NLM_F_REQUEST, NLMSG_HDRLEN } from './consts.js';

/** Netlink speaks the CPU's byte order. */
export const LE = endianness() === 'LE';

export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** A DataView over exactly the bytes of `b` (which may be a subarray of a larger buffer). */
export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Builds one request message: header, family header, attributes. The length and sequence number
 * are filled in by {@link MessageBuilder.finish}. Set-up time only, so a growing Buffer is fine.
 */
export class MessageBuilder {
  private buf = Buffer.alloc(256);
  private len = NLMSG_HDRLEN;
  private readonly nests: number[] = [];

  constructor(
    readonly type: number,
    readonly flags: number,
  ) {}

  private reserve(n: number): number {
    const need = this.len + align4(n);
    if (need > this.buf.length) {
      const next = Buffer.alloc(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    const at = this.len;
    this.len = need;
    return at;
  }

  /** Appends a zeroed fixed header of `size` bytes and returns a DataView over it to fill. */
  header(size: number): DataView {
    const at = this.reserve(size);
    return new DataView(this.buf.buffer, this.buf.byteOffset + at, size);
  }

  attr(type: number, data: Uint8Array): this {
    const at = this.reserve(4 + data.length);
    const dv = view(this.buf);
    dv.setUint16(at, 4 + data.length, LE);
    dv.setUint16(at + 2, type, LE);
    this.buf.set(data, at + 4);
    return this;
  }

  u8(type: number, v: number): this {
    return this.attr(type, Uint8Array.of(v));
  }

  u32(type: number, v: number): this {
    const b = new Uint8Array(4);
    view(b).setUint32(0, v >>> 0, LE);
    return this.attr(type, b);
  }

  /** A NUL-terminated string attribute (IFLA_IFNAME and friends). */
  str(type: number, s: string): this {
    const bytes = Buffer.from(`${s}\0`, 'utf8');
    return this.attr(type, bytes);
  }

  /** Opens a nested attribute; close it with {@link MessageBuilder.end}. */
  begin(type: number): this {
    const at = this.reserve(4);
    view(this.buf).setUint16(at + 2, type | NLA_F_NESTED, LE);
    this.nests.push(at);
    return this;
  }

  end(): this {
    const at = this.nests.pop();
    if (at === undefined) throw new Error('MessageBuilder.end without begin');
    view(this.buf).setUint16(at, this.len - at, LE);
    return this;
  }

  /** The finished message (a copy), with length, type, flags, sequence number and port id. */
  finish(seq: number, pid = 0): Uint8Array {
    if (this.nests.length !== 0) throw new Error('MessageBuilder.finish with an open nested attribute');
    const out = new Uint8Array(this.len);
    out.set(this.buf.subarray(0, this.len));
    const dv = view(out);
    dv.setUint32(0, this.len, LE);
    dv.setUint16(4, this.type, LE);
    dv.setUint16(6, this.flags | NLM_F_REQUEST, LE);
    dv.setUint32(8, seq >>> 0, LE);
    dv.setUint32(12, pid >>> 0, LE);
    return out;
  }
}

/** One message inside a received datagram; `body` is everything after the 16-byte header. */
export interface NlMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  /** A view into the receive buffer: copy anything kept past the next receive. */
  readonly body: Uint8Array;
}

/**
 * Splits a datagram into its messages. Stops at the first malformed header (length shorter than a
 * header or past the end) rather than throwing: received bytes are input, not a programming error.
 */
export function splitMessages(buf: Uint8Array, len = buf.length): NlMessage[] {
  const out: NlMessage[] = [];
  const dv = view(buf);
  let off = 0;
  while (off + NLMSG_HDRLEN <= len) {
    const mlen = dv.getUint32(off, LE);
    if (mlen < NLMSG_HDRLEN || off + mlen > len) break;
    out.push({
      type: dv.getUint16(off + 4, LE),
      flags: dv.getUint16(off + 6, LE),
      seq: dv.getUint32(off + 8, LE),
      pid: dv.getUint32(off + 12, LE),
      body: buf.subarray(off + NLMSG_HDRLEN, off + mlen),
    });
    off += align4(mlen);
  }
  return out;
}

/**
 * Parses the attributes in `buf` from `off` to the end into a map from type (flags masked off) to
 * payload view. A later attribute of the same type replaces an earlier one. Malformed tails are
 * ignored.
 */
export function parseAttrs(buf: Uint8Array, off = 0): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const dv = view(buf);
  while (off + 4 <= buf.length) {
    const alen = dv.getUint16(off, LE);
    if (alen < 4 || off + alen > buf.length) break;
    out.set(dv.getUint16(off + 2, LE) & NLA_TYPE_MASK, buf.subarray(off + 4, off + alen));
    off += align4(alen);
  }
  return out;
}

export function attrU32(a: Uint8Array | undefined): number | undefined {
  return a && a.length >= 4 ? view(a).getUint32(0, LE) : undefined;
}

export function attrU8(a: Uint8Array | undefined): number | undefined {
  return a && a.length >= 1 ? a[0] : undefined;
}

/** A NUL-terminated (or not) string attribute. */
export function attrStr(a: Uint8Array | undefined): string | undefined {
  if (!a) return undefined;
  const nul = a.indexOf(0);
  return Buffer.from(a.buffer, a.byteOffset, nul < 0 ? a.length : nul).toString('utf8');
}
