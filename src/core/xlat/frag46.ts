/**
 * Fragmenting translated packets (RFC 7915 §4 and §4.1): an IPv4 packet with DF=0 whose
 * translation is larger than the IPv6 path allows is sent as IPv6 fragments. The fragments carry
 * the Fragment header the caller already wrote (ID from the IPv4 Identification); each but the
 * last carries the largest multiple of 8 payload bytes that fits.
 */
import { appendPacket, copyBytes, Disposition, type PacketBatch, slotStart } from '../batch.js';
import { IPV6_HDR_LEN, ipv6SetPayloadLength } from '../hdr/ipv6.js';
import { FRAG_HDR_LEN, fragSetOffset } from '../hdr/ipv6-ext.js';

/** Fixed IPv6 header + Fragment header. */
const HEADERS = IPV6_HDR_LEN + FRAG_HDR_LEN;

/** How many fragments `payload` bytes need under an MTU of `mtu` (0 if the MTU leaves no room). */
export function fragmentCount46(payload: number, mtu: number): number {
  const per = (mtu - HEADERS) & ~7;
  if (per <= 0) return 0;
  return Math.max(1, Math.ceil(payload / per));
}

/**
 * Splits the translated packet in slot `out.count` (at `o`: IPv6 header, Fragment header, then
 * `payload` bytes) into fragments of at most `mtu` bytes, appended from that slot on as Forward.
 * `baseOffset` (bytes) and `moreAfter` are the input's own fragment offset and MF flag, so a
 * fragment is cut into smaller fragments of the same datagram. The caller has checked that
 * {@link fragmentCount46} slots are free.
 */
export function fragment46(
  out: PacketBatch,
  o: number,
  payload: number,
  mtu: number,
  baseOffset: number,
  moreAfter: boolean,
): void {
  const d = out.data;
  const per = (mtu - HEADERS) & ~7;
  const first = out.count;
  let done = 0;
  while (done < payload) {
    const n = Math.min(per, payload - done);
    const last = done + n >= payload;
    const i = out.count;
    const s = i === first ? o : slotStart(out, i);
    if (i !== first) {
      copyBytes(d, o, HEADERS, d, s);
      copyBytes(d, o + HEADERS + done, n, d, s + HEADERS);
    }
    ipv6SetPayloadLength(d, s, FRAG_HDR_LEN + n);
    fragSetOffset(d, s + IPV6_HDR_LEN, baseOffset + done, !last || moreAfter);
    appendPacket(out, s, HEADERS + n, Disposition.Forward);
    done += n;
  }
}
