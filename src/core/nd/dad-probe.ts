/**
 * The Duplicate Address Detection probe (RFC 4862 §5.4.2, with the RFC 7527 nonce), byte for
 * byte as Android's clatd sends it (`send_dad`): an IPv6 header from `::` to the target's
 * solicited-node group, a Neighbor Solicitation for the target, and one Nonce option. No Source
 * Link-Layer Address option: RFC 4861 §4.3 forbids it when the source is unspecified.
 */

import { parseIPv6, solicitedNode } from '../addr/ipv6.js';
import { finish, pseudoSum6, sum16 } from '../checksum.js';
import { AddressError, ClatdError } from '../errors.js';
import { ipv6WriteHeader } from '../hdr/ipv6.js';
import { toMac } from './mac.js';
import {
  DAD_NONCE_LEN,
  DAD_PACKET_LEN,
  ETHER_HEADER_LEN,
  ETHERTYPE_IPV6,
  IP6_DST,
  IP6_SRC,
  IPV6_HEADER_LEN,
  ND_HOP_LIMIT,
  ND_NEIGHBOR_SOLICIT,
  ND_OPT_NONCE,
  ND_TARGET,
  PROTO_ICMPV6,
} from './nd-wire.js';
import type { Address6Input } from './neutral.js';

export { DAD_PACKET_LEN } from './nd-wire.js';
/** The probe in an Ethernet frame (14 + 72). */
export const DAD_FRAME_LEN = ETHER_HEADER_LEN + DAD_PACKET_LEN;

function toTarget(t: Address6Input): Uint8Array {
  if (typeof t === 'string') return parseIPv6(t);
  if (t.length !== 16) throw new AddressError(`buildDadSolicitation: the target must be 16 bytes, not ${t.length}`);
  return t;
}

/**
 * Writes the 72-byte DAD Neighbor Solicitation for `target` with the 6-byte `nonce` into `out` at
 * `off` (a new buffer by default) and returns `out`.
 */
export function buildDadSolicitation(
  target: Address6Input,
  nonce: Uint8Array,
  out: Uint8Array = new Uint8Array(DAD_PACKET_LEN),
  off = 0,
): Uint8Array {
  const tgt = toTarget(target);
  if (nonce.length !== DAD_NONCE_LEN) {
    throw new AddressError(`buildDadSolicitation: the nonce must be ${DAD_NONCE_LEN} bytes, not ${nonce.length}`);
  }
  if (out.length - off < DAD_PACKET_LEN) {
    throw new ClatdError(`buildDadSolicitation: ${DAD_PACKET_LEN} bytes needed at offset ${off}`, 'ERR_CLATD_BUFFER');
  }
  out.fill(0, off, off + DAD_PACKET_LEN);
  ipv6WriteHeader(out, off, 0, DAD_PACKET_LEN - IPV6_HEADER_LEN, PROTO_ICMPV6, ND_HOP_LIMIT);
  // Source stays :: (bytes 8..23 zero).
  solicitedNode(tgt, out, off + IP6_DST);
  const icmp = off + IPV6_HEADER_LEN;
  out[icmp] = ND_NEIGHBOR_SOLICIT;
  // Code 0, checksum 0 for now, reserved 0.
  out.set(tgt, icmp + ND_TARGET);
  const opt = icmp + ND_TARGET + 16;
  out[opt] = ND_OPT_NONCE;
  out[opt + 1] = 1;
  out.set(nonce, opt + 2);
  const len = DAD_PACKET_LEN - IPV6_HEADER_LEN;
  const c = finish(sum16(out, icmp, len, pseudoSum6(out, off + IP6_SRC, off + IP6_DST, PROTO_ICMPV6, len)));
  out[icmp + 2] = c >>> 8;
  out[icmp + 3] = c & 0xff;
  return out;
}

/**
 * The same probe in an Ethernet frame for a packet socket: destination 33:33 plus the low 32 bits
 * of the solicited-node group (RFC 2464 §7), source `srcMac`, ethertype 0x86dd. 86 bytes.
 */
export function frameDadSolicitation(
  target: Address6Input,
  nonce: Uint8Array,
  srcMac: string | Uint8Array,
  out: Uint8Array = new Uint8Array(DAD_FRAME_LEN),
  off = 0,
): Uint8Array {
  const mac = toMac(srcMac);
  if (out.length - off < DAD_FRAME_LEN) {
    throw new ClatdError(`frameDadSolicitation: ${DAD_FRAME_LEN} bytes needed at offset ${off}`, 'ERR_CLATD_BUFFER');
  }
  buildDadSolicitation(target, nonce, out, off + ETHER_HEADER_LEN);
  const dst = off + ETHER_HEADER_LEN + IP6_DST;
  out[off] = 0x33;
  out[off + 1] = 0x33;
  out.copyWithin(off + 2, dst + 12, dst + 16);
  out.set(mac, off + 6);
  out[off + 12] = ETHERTYPE_IPV6 >>> 8;
  out[off + 13] = ETHERTYPE_IPV6 & 0xff;
  return out;
}
