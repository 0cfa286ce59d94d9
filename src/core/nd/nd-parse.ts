/**
 * Neighbor Solicitations and Advertisements out of raw IPv6 packets, validated as RFC 4861
 * §7.1.1 and §7.1.2 require. Packet input never throws: anything unacceptable comes back as
 * `{ ok: false, reason }` with a stable reason name.
 *
 * The byte arrays in a result (addresses, nonce, link-layer addresses) are views into the input
 * packet, not copies: copy them before the buffer is reused.
 */

import { isMulticast6, isUnspecified6 } from '../addr/ipv6.js';
import { fold, pseudoSum6, sum16 } from '../checksum.js';
import {
  IP6_DST,
  IP6_HOP_LIMIT,
  IP6_NEXT_HEADER,
  IP6_PAYLOAD_LEN,
  IP6_SRC,
  IPV6_HEADER_LEN,
  ND_HOP_LIMIT,
  ND_NEIGHBOR_ADVERT,
  ND_NEIGHBOR_SOLICIT,
  ND_NS_NA_LEN,
  ND_OPT_NONCE,
  ND_OPT_SOURCE_LINKADDR,
  ND_OPT_TARGET_LINKADDR,
  ND_TARGET,
  PROTO_ICMPV6,
} from './nd-wire.js';

/** Why a packet is not an acceptable NS or NA. */
export type NdRejection =
  /** Shorter than its headers, or than its payload length says. */
  | 'truncated'
  | 'not-ipv6'
  /** Payload length 0 (a jumbogram) is not ND. */
  | 'bad-payload-length'
  /** The upper layer is not ICMPv6 (after Hop-by-Hop and Destination Options headers). */
  | 'not-icmpv6'
  /** RFC 6980 §5: ND messages in fragments must be dropped. */
  | 'fragmented'
  /** ICMPv6, but neither type 135 nor 136. */
  | 'not-ns-or-na'
  | 'hop-limit-not-255'
  | 'code-not-zero'
  /** The ICMPv6 message is shorter than 24 bytes. */
  | 'icmp-too-short'
  | 'bad-checksum'
  /** An option with length 0 (RFC 4861 §4.6: must be discarded). */
  | 'option-length-zero'
  /** An option runs past the end of the message. */
  | 'option-overflow'
  | 'target-multicast'
  /** An NS from `::` with a Source Link-Layer Address option. */
  | 'slla-from-unspecified'
  /** An NS from `::` not sent to a solicited-node group. */
  | 'unspecified-source-not-to-solicited-node'
  /** An NA with the Solicited flag sent to a multicast group. */
  | 'solicited-na-to-multicast';

export interface NdCommon {
  readonly ok: true;
  /** IPv6 source (16-byte view). */
  readonly source: Uint8Array;
  /** IPv6 destination (16-byte view). */
  readonly destination: Uint8Array;
  /** The Target Address (16-byte view). */
  readonly target: Uint8Array;
  /** The first Nonce option's data (RFC 3971 / RFC 7527), or null. */
  readonly nonce: Uint8Array | null;
}

/** RFC 4861 §4.3. */
export interface NeighborSolicitation extends NdCommon {
  readonly kind: 'ns';
  /** The Source Link-Layer Address option's data, or null. */
  readonly sourceLinkAddress: Uint8Array | null;
}

/** RFC 4861 §4.4. */
export interface NeighborAdvertisement extends NdCommon {
  readonly kind: 'na';
  readonly router: boolean;
  readonly solicited: boolean;
  readonly override: boolean;
  /** The Target Link-Layer Address option's data, or null. */
  readonly targetLinkAddress: Uint8Array | null;
}

export type NdMessage = NeighborSolicitation | NeighborAdvertisement;
export interface NdReject {
  readonly ok: false;
  readonly reason: NdRejection;
}
export type NdParseResult = NdMessage | NdReject;

const EXT_HOP_BY_HOP = 0;
const EXT_FRAGMENT = 44;
const EXT_DEST_OPTS = 60;

function reject(reason: NdRejection): NdReject {
  return { ok: false, reason };
}

/** ff02::1:ffXX:XXXX (RFC 4291 §2.7.1). */
export function isSolicitedNode(b: Uint8Array, off: number): boolean {
  if (b[off] !== 0xff || b[off + 1] !== 0x02) return false;
  for (let i = 2; i < 11; i++) if (b[off + i] !== 0) return false;
  return b[off + 11] === 0x01 && b[off + 12] === 0xff;
}

/**
 * Parses the IPv6 packet of `len` bytes at `off` of `b` (no link-layer header) as a Neighbor
 * Solicitation or Advertisement. Bytes past the payload length (link-layer padding) are ignored.
 */
export function parseNeighborMessage(b: Uint8Array, off = 0, len = b.length - off): NdParseResult {
  if (off < 0 || len < IPV6_HEADER_LEN || off + len > b.length) return reject('truncated');
  if (b[off] >>> 4 !== 6) return reject('not-ipv6');
  const payloadLen = (b[off + IP6_PAYLOAD_LEN] << 8) | b[off + IP6_PAYLOAD_LEN + 1];
  if (payloadLen === 0) return reject('bad-payload-length');
  if (IPV6_HEADER_LEN + payloadLen > len) return reject('truncated');
  const end = off + IPV6_HEADER_LEN + payloadLen;
  // Walk Hop-by-Hop and Destination Options headers (RFC 8200 §4.3, §4.6) to the upper layer.
  let nh = b[off + IP6_NEXT_HEADER];
  let p = off + IPV6_HEADER_LEN;
  while (nh === EXT_HOP_BY_HOP || nh === EXT_DEST_OPTS) {
    if (p + 8 > end) return reject('truncated');
    const extLen = (b[p + 1] + 1) * 8;
    if (p + extLen > end) return reject('truncated');
    nh = b[p];
    p += extLen;
  }
  if (nh === EXT_FRAGMENT) return reject('fragmented');
  if (nh !== PROTO_ICMPV6) return reject('not-icmpv6');
  if (p + 1 > end) return reject('icmp-too-short');
  const type = b[p];
  if (type !== ND_NEIGHBOR_SOLICIT && type !== ND_NEIGHBOR_ADVERT) return reject('not-ns-or-na');
  // RFC 4861 §7.1.1 / §7.1.2, in the order they are listed.
  if (b[off + IP6_HOP_LIMIT] !== ND_HOP_LIMIT) return reject('hop-limit-not-255');
  const icmpLen = end - p;
  if (icmpLen < ND_NS_NA_LEN) return reject('icmp-too-short');
  const sum = sum16(b, p, icmpLen, pseudoSum6(b, off + IP6_SRC, off + IP6_DST, PROTO_ICMPV6, icmpLen));
  if (fold(sum) !== 0xffff) return reject('bad-checksum');
  if (b[p + 1] !== 0) return reject('code-not-zero');
  const targetOff = p + ND_TARGET;
  if (isMulticast6(b, targetOff)) return reject('target-multicast');

  let nonce: Uint8Array | null = null;
  let slla: Uint8Array | null = null;
  let tlla: Uint8Array | null = null;
  for (let o = p + ND_NS_NA_LEN; o < end; ) {
    if (o + 2 > end) return reject('option-overflow');
    const optLen = b[o + 1] * 8;
    if (optLen === 0) return reject('option-length-zero');
    if (o + optLen > end) return reject('option-overflow');
    const data = b.subarray(o + 2, o + optLen);
    // The first of each kind counts; unknown options are ignored (RFC 4861 §4.6).
    switch (b[o]) {
      case ND_OPT_NONCE:
        nonce ??= data;
        break;
      case ND_OPT_SOURCE_LINKADDR:
        slla ??= data;
        break;
      case ND_OPT_TARGET_LINKADDR:
        tlla ??= data;
        break;
    }
    o += optLen;
  }

  const source = b.subarray(off + IP6_SRC, off + IP6_SRC + 16);
  const destination = b.subarray(off + IP6_DST, off + IP6_DST + 16);
  const target = b.subarray(targetOff, targetOff + 16);
  if (type === ND_NEIGHBOR_SOLICIT) {
    if (isUnspecified6(b, off + IP6_SRC)) {
      if (!isSolicitedNode(b, off + IP6_DST)) return reject('unspecified-source-not-to-solicited-node');
      if (slla !== null) return reject('slla-from-unspecified');
    }
    return { ok: true, kind: 'ns', source, destination, target, nonce, sourceLinkAddress: slla };
  }
  const flags = b[p + 4];
  const solicited = (flags & 0x40) !== 0;
  if (solicited && isMulticast6(b, off + IP6_DST)) return reject('solicited-na-to-multicast');
  return {
    ok: true,
    kind: 'na',
    source,
    destination,
    target,
    nonce,
    router: (flags & 0x80) !== 0,
    solicited,
    override: (flags & 0x20) !== 0,
    targetLinkAddress: tlla,
  };
}
