/**
 * Fragmenting translated packets (RFC 7915 §4 and §4.1): an IPv4 packet with DF=0 whose
 * translation is larger than the IPv6 path allows is sent as IPv6 fragments. The fragments carry
 * the Fragment header the caller already wrote (ID from the IPv4 Identification); each but the
 * last carries the largest multiple of 8 payload bytes that fits.
 */
import { copyBytes, Disposition, type PacketBatch, slotStart } from '../batch.js';

/** Fixed IPv6 header + Fragment header. */
const HEADERS = 48;
/** Offsets inside the output packet. */
const PAYLOAD_LENGTH = 4;
const FRAG_OFFSET_M = 40 + 2;

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
  let i = first;
  while (done < payload) {
    const n = Math.min(per, payload - done);
    const last = done + n >= payload;
    const s = i === first ? o : slotStart(out, i);
    if (i !== first) {
      copyBytes(d, o, HEADERS, d, s);
      copyBytes(d, o + HEADERS + done, n, d, s + HEADERS);
    }
    const plen = 8 + n;
    d[s + PAYLOAD_LENGTH] = plen >>> 8;
    d[s + PAYLOAD_LENGTH + 1] = plen;
    const fo = (baseOffset + done) | (!last || moreAfter ? 1 : 0);
    d[s + FRAG_OFFSET_M] = fo >>> 8;
    d[s + FRAG_OFFSET_M + 1] = fo;
    out.offs[i] = s;
    out.lens[i] = HEADERS + n;
    out.disp[i] = Disposition.Forward;
    done += n;
    i++;
  }
  out.count = i;
}
