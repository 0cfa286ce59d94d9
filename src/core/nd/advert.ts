/**
 * The Neighbor Advertisement (RFC 4861 §4.4) clatd sends for its own address when it answers
 * neighbor solicitations itself: an IPv6 header with hop limit 255 (§7.1.2), the NA with its R, S
 * and O flags and the target, and a Target Link-Layer Address option (§4.6.1) when the link has
 * link-layer addresses.
 */
import { finish, pseudoSum6, sum16 } from '../checksum.js';
import { ClatdError } from '../errors.js';
import { ipv6WriteHeader } from '../hdr/ipv6.js';
import {
  IP6_DST,
  IP6_SRC,
  IPV6_HEADER_LEN,
  ND_HOP_LIMIT,
  ND_NEIGHBOR_ADVERT,
  ND_NS_NA_LEN,
  ND_OPT_TARGET_LINKADDR,
  ND_TARGET,
  PROTO_ICMPV6,
} from './nd-wire.js';

/** NA flags (RFC 4861 §4.4): Router, Solicited, Override. */
export const NA_FLAG_ROUTER = 0x80;
export const NA_FLAG_SOLICITED = 0x40;
export const NA_FLAG_OVERRIDE = 0x20;

/** The longest advertisement built here: header, NA, and a one-unit TLLA option (a 6-byte MAC). */
export const NA_MAX_PACKET_LEN = IPV6_HEADER_LEN + ND_NS_NA_LEN + 8;

export interface AdvertFields {
  /** 16 bytes each. */
  source: Uint8Array;
  destination: Uint8Array;
  target: Uint8Array;
  /** NA_FLAG_* bits. */
  flags: number;
  /** The sender's link-layer address for the TLLA option; none (a link without addresses): no option. */
  linkAddress?: Uint8Array;
}

/**
 * Writes the advertisement into `out` at `off` and returns its length. The TLLA option is padded
 * to a multiple of 8 bytes (§4.6); a link-layer address longer than 14 bytes is refused.
 */
export function buildNeighborAdvertisement(f: AdvertFields, out: Uint8Array, off = 0): number {
  const ll = f.linkAddress;
  if (ll !== undefined && (ll.length === 0 || ll.length > 14)) {
    throw new ClatdError(`buildNeighborAdvertisement: a link-layer address of ${ll.length} bytes`, 'ERR_CLATD_ND');
  }
  const optLen = ll === undefined ? 0 : Math.ceil((ll.length + 2) / 8) * 8;
  const icmpLen = ND_NS_NA_LEN + optLen;
  const len = IPV6_HEADER_LEN + icmpLen;
  if (off < 0 || out.length - off < len) {
    throw new ClatdError(`buildNeighborAdvertisement: ${len} bytes needed at offset ${off}`, 'ERR_CLATD_BUFFER');
  }
  out.fill(0, off, off + len);
  ipv6WriteHeader(out, off, 0, icmpLen, PROTO_ICMPV6, ND_HOP_LIMIT);
  out.set(f.source.subarray(0, 16), off + IP6_SRC);
  out.set(f.destination.subarray(0, 16), off + IP6_DST);
  const icmp = off + IPV6_HEADER_LEN;
  out[icmp] = ND_NEIGHBOR_ADVERT;
  out[icmp + 4] = f.flags & (NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
  out.set(f.target.subarray(0, 16), icmp + ND_TARGET);
  if (ll !== undefined) {
    const opt = icmp + ND_NS_NA_LEN;
    out[opt] = ND_OPT_TARGET_LINKADDR;
    out[opt + 1] = optLen / 8;
    out.set(ll, opt + 2);
  }
  const c = finish(sum16(out, icmp, icmpLen, pseudoSum6(out, off + IP6_SRC, off + IP6_DST, PROTO_ICMPV6, icmpLen)));
  out[icmp + 2] = c >>> 8;
  out[icmp + 3] = c & 0xff;
  return len;
}
