/**
 * Walking the IPv6 extension header chain (RFC 8200 §4) the way RFC 7915 §5.1 needs it:
 * Hop-by-Hop, Destination Options and Routing headers are skipped, the Fragment header is read,
 * and the walk stops at the first upper-layer header. One reusable {@link Ipv6Chain} holds the
 * result, so a walk allocates nothing.
 */

export const NH_HOP_BY_HOP = 0;
export const NH_TCP = 6;
export const NH_UDP = 17;
export const NH_ROUTING = 43;
export const NH_FRAGMENT = 44;
export const NH_ICMPV6 = 58;
export const NH_NONE = 59;
export const NH_DEST_OPTS = 60;

/**
 * The Fragment header (RFC 8200 §4.5):
 *
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                         Identification                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
export const FRAG_HDR_LEN = 8;
export const FRAG_NEXT_HEADER = 0;
/** The 16-bit word holding the offset (in bytes, a multiple of 8) and the M flag (bit 0). */
export const FRAG_OFFSET_M = 2;
export const FRAG_ID = 4;

/*
 * This file's own uses of the constants above go through module-local copies: V8 folds a module's
 * own `const` bindings into optimized code, but an exported binding is a module cell, loaded and
 * checked for the temporal dead zone at every use, in this module too.
 */
const HOP_BY_HOP = NH_HOP_BY_HOP;
const ROUTING = NH_ROUTING;
const FRAGMENT = NH_FRAGMENT;
const DEST_OPTS = NH_DEST_OPTS;
const FRAG_LEN = FRAG_HDR_LEN;
const FRAG_NEXT = FRAG_NEXT_HEADER;
const OFFSET_M = FRAG_OFFSET_M;
const ID = FRAG_ID;

/** Sets the offset (`offsetBytes`, a multiple of 8) and the M flag of the Fragment header at `off`. */
export function fragSetOffset(b: Uint8Array, off: number, offsetBytes: number, more: boolean): void {
  const fo = offsetBytes | (more ? 1 : 0);
  b[off + OFFSET_M] = fo >>> 8;
  b[off + OFFSET_M + 1] = fo;
}

/** Writes a Fragment header at `off`; `id` is the 32-bit Identification (signed or unsigned). */
export function fragWriteHeader(
  b: Uint8Array,
  off: number,
  next: number,
  offsetBytes: number,
  more: boolean,
  id: number,
): void {
  b[off + FRAG_NEXT] = next;
  b[off + 1] = 0;
  fragSetOffset(b, off, offsetBytes, more);
  b[off + ID] = id >>> 24;
  b[off + ID + 1] = id >>> 16;
  b[off + ID + 2] = id >>> 8;
  b[off + ID + 3] = id;
}

/** How a walk ended. */
export const enum Walk {
  /** Reached an upper-layer header (or No Next Header). */
  OK = 0,
  /** A header runs past the end of the data. */
  TRUNCATED = 1,
  /** A Routing header with Segments Left > 0 (`problemOff` points at that byte). */
  SEGMENTS_LEFT = 2,
  /** An extension header follows the Fragment header (`problemOff` points at the Fragment header). */
  AFTER_FRAGMENT = 3,
}

/** The outcome of {@link walkIpv6}; reuse one instance per call site. */
export class Ipv6Chain {
  /** Upper-layer protocol: the Next Header value after the last extension header. */
  proto = 0;
  /** Absolute offset of the upper-layer header (= end of the chain). */
  l4Off = 0;
  /** Absolute offset of the Fragment header, or -1 when there is none. */
  fragOff = -1;
  /** Fragment header fields: 32-bit Identification, offset in 8-byte units, M flag. */
  fragId = 0;
  fragOffset = 0;
  fragMore = false;
  /** Absolute offset of the byte at fault (for SEGMENTS_LEFT and AFTER_FRAGMENT). */
  problemOff = 0;

  /** True when a Fragment header is present and describes a real fragment (not an atomic one). */
  get isFragment(): boolean {
    return this.fragOff >= 0 && (this.fragOffset !== 0 || this.fragMore);
  }
}

function isExtension(nh: number): boolean {
  return nh === HOP_BY_HOP || nh === ROUTING || nh === DEST_OPTS || nh === FRAGMENT;
}

/**
 * Walks the chain of the IPv6 packet at `b[off]` whose bytes end at `end` (exclusive). With
 * `checkSegmentsLeft` false (a packet quoted in an ICMP error) a live Routing header is skipped.
 * Every header is at least 8 bytes, so the loop ends.
 */
export function walkIpv6(b: Uint8Array, off: number, end: number, checkSegmentsLeft: boolean, ch: Ipv6Chain): Walk {
  ch.fragOff = -1;
  ch.fragId = 0;
  ch.fragOffset = 0;
  ch.fragMore = false;
  let nh = b[off + 6];
  let p = off + 40;
  if (p > end) return Walk.TRUNCATED;
  while (isExtension(nh)) {
    if (nh === FRAGMENT) {
      if (p + FRAG_LEN > end) return Walk.TRUNCATED;
      if (ch.fragOff >= 0) {
        ch.problemOff = ch.fragOff;
        return Walk.AFTER_FRAGMENT;
      }
      ch.fragOff = p;
      const fo = (b[p + 2] << 8) | b[p + 3];
      ch.fragOffset = fo >>> 3;
      ch.fragMore = (fo & 1) !== 0;
      ch.fragId = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
      nh = b[p];
      p += FRAG_LEN;
      // RFC 7915 §5.1: an extension header after the Fragment header is not translated. Checked
      // for any fragment: in a later fragment the value still names the first header.
      if (isExtension(nh)) {
        ch.problemOff = ch.fragOff;
        return Walk.AFTER_FRAGMENT;
      }
      break;
    }
    if (p + 8 > end) return Walk.TRUNCATED;
    const hdrLen = (b[p + 1] + 1) * 8;
    if (p + hdrLen > end) return Walk.TRUNCATED;
    if (nh === ROUTING && checkSegmentsLeft && b[p + 3] !== 0) {
      ch.problemOff = p + 3;
      return Walk.SEGMENTS_LEFT;
    }
    nh = b[p];
    p += hdrLen;
  }
  ch.proto = nh;
  ch.l4Off = p;
  return Walk.OK;
}
