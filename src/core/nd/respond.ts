/**
 * Answering Neighbor Solicitations for the CLAT address, as a node answers for its own address
 * (RFC 4861 §7.2.3, §7.2.4; RFC 4862 §5.4.3), for when the kernel will not: the host holds only a
 * /128 in the on-link /64, so the kernel refuses to join the CLAT address as anycast. Pure: the
 * daemon reads each solicitation, hands it here, and sends the advertisement written into
 * {@link NdResponder.out}. It owns no socket and no timer.
 *
 * What it answers, once DAD has found the address unique ({@link NdResponder.confirm}):
 *  - address resolution (to the solicited-node group) and unreachability probes (unicast to the
 *    address): a solicited advertisement back to the asker, S=1;
 *  - another node's DAD probe (from ::): an advertisement to all-nodes, S=0 (§7.2.4), which
 *    defends the address as the kernel defends its own (RFC 4862 §5.4.3), so the other node picks
 *    another. Our own probes (looped back by the link: our nonce, or our link-layer source) never
 *    count (RFC 7527 §4.2).
 * Before that, nothing: a tentative address must not be answered for (RFC 4862 §5.4).
 *
 * Every advertisement has O=1: the address is unicast and, DAD checked, only this host holds it,
 * which is the case §7.2.4 gives Override to (O=0 is for anycast and proxied addresses); it
 * replaces a stale entry in the router's cache (a new MAC, a retargeted address).
 */
import { equal6, isUnspecified6, solicitedNode } from '../addr/ipv6.js';
import { AddressError } from '../errors.js';
import { buildNeighborAdvertisement, NA_FLAG_OVERRIDE, NA_FLAG_SOLICITED, NA_MAX_PACKET_LEN } from './advert.js';
import { type NdRejection, parseNeighborMessage } from './nd-parse.js';
import { DAD_NONCE_LEN } from './nd-wire.js';

/** ff02::1 (RFC 4291 §2.7.1). */
const ALL_NODES = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
/** Own DAD nonces remembered (a DAD run sends DupAddrDetectTransmits per address, three addresses at most). */
const OWN_NONCES = 16;

/** Why a packet read was not answered. */
export type NdIgnoreReason =
  /** Not an acceptable NS or NA (RFC 4861 §7.1.1), by the parser's reason. */
  | NdRejection
  /** A Neighbor Advertisement (only solicitations are answered). */
  | 'advertisement'
  /** A solicitation for another address (e.g. the one before a retarget). */
  | 'other-target'
  /** Sent neither to the address's solicited-node group nor to the address itself. */
  | 'wrong-destination'
  /** Our DAD has not (yet) found the address unique. */
  | 'before-dad'
  /** Our own DAD probe, looped back. */
  | 'own-probe'
  /** A solicitation whose source is the address itself: someone else uses it; no answer to ourselves. */
  | 'source-is-target';

export interface NdResponderCounters {
  /** Solicitations answered with a solicited advertisement (address resolution and NUD). */
  answered: number;
  /** Of `answered`, those sent unicast to the address (unreachability detection, RFC 4861 §7.3). */
  nud: number;
  /** Other nodes' DAD probes answered to all-nodes (the address defended). */
  defended: number;
  /** Unsolicited advertisements to all-nodes (RFC 4861 §7.2.6), after DAD passed. */
  announced: number;
  /** Advertisements the socket refused. */
  sendErrors: number;
  /** Packets read and not answered, by reason. */
  ignored: Partial<Record<NdIgnoreReason, number>>;
}

export type NdVerdict =
  /** Send `out[0, length)`. */
  { readonly send: true; readonly length: number } | { readonly send: false; readonly reason: NdIgnoreReason };

export class NdResponder {
  /** Where each advertisement is written (reused). */
  readonly out = new Uint8Array(NA_MAX_PACKET_LEN);
  readonly counters: NdResponderCounters = {
    answered: 0,
    nud: 0,
    defended: 0,
    announced: 0,
    sendErrors: 0,
    ignored: {},
  };
  readonly #target = new Uint8Array(16);
  readonly #group = new Uint8Array(16);
  readonly #linkAddress: Uint8Array | undefined;
  #unique = false;
  readonly #nonces = new Uint8Array(OWN_NONCES * DAD_NONCE_LEN);
  #nonceCount = 0;
  #nonceNext = 0;

  /** `linkAddress`: the uplink's own (the TLLA option, and how our looped-back frames are known). */
  constructor(target: Uint8Array, linkAddress?: Uint8Array) {
    this.#linkAddress = linkAddress === undefined ? undefined : Uint8Array.from(linkAddress);
    this.retarget(target);
  }

  /** The address answered for (a copy). */
  get target(): Uint8Array {
    return Uint8Array.from(this.#target);
  }

  /** Whether DAD passed for the target: solicitations are answered. */
  get answering(): boolean {
    return this.#unique;
  }

  /**
   * A new address (or a new DAD for the same one): nothing is answered until {@link confirm}.
   * Own nonces are kept: a probe of the address before may still loop back.
   */
  retarget(target: Uint8Array): void {
    if (target.length !== 16) throw new AddressError(`NdResponder: an IPv6 address is 16 bytes, not ${target.length}`);
    this.#target.set(target);
    solicitedNode(this.#target, this.#group);
    this.#unique = false;
  }

  /**
   * DAD found `address` unique: answer for it from now on. Returns false (and changes nothing)
   * when it is not the current target (DAD of an address the responder has moved on from).
   */
  confirm(address: Uint8Array): boolean {
    if (address.length !== 16 || !equal6(address, 0, this.#target, 0)) return false;
    this.#unique = true;
    return true;
  }

  /** Remembers the nonce of a DAD probe we sent, so the probe is known if it comes back. */
  noteOwnNonce(nonce: Uint8Array): void {
    if (nonce.length !== DAD_NONCE_LEN) return;
    this.#nonces.set(nonce, this.#nonceNext * DAD_NONCE_LEN);
    this.#nonceNext = (this.#nonceNext + 1) % OWN_NONCES;
    this.#nonceCount = Math.min(this.#nonceCount + 1, OWN_NONCES);
  }

  /**
   * The unsolicited advertisement of the target to all-nodes (RFC 4861 §7.2.6), written into
   * `out`: its length, or 0 while DAD has not passed.
   */
  announce(): number {
    if (!this.#unique) return 0;
    this.counters.announced++;
    return this.#write(ALL_NODES, 0);
  }

  /**
   * One IPv6 packet read from the link (`len` bytes at `off` of `b`, no link-layer header);
   * `linkSource` is the frame's link-layer source when the link has one. The verdict is counted:
   * an answer as answered, nud or defended; anything else under its reason.
   */
  handle(b: Uint8Array, off: number, len: number, linkSource?: Uint8Array): NdVerdict {
    const v = this.#decide(b, off, len, linkSource);
    if (!v.send) this.counters.ignored[v.reason] = (this.counters.ignored[v.reason] ?? 0) + 1;
    return v;
  }

  /** The last advertisement handed out could not be sent. */
  sendFailed(): void {
    this.counters.sendErrors++;
  }

  #decide(b: Uint8Array, off: number, len: number, linkSource: Uint8Array | undefined): NdVerdict {
    const m = parseNeighborMessage(b, off, len);
    if (!m.ok) return { send: false, reason: m.reason };
    if (m.kind === 'na') return { send: false, reason: 'advertisement' };
    if (!equal6(m.target, 0, this.#target, 0)) return { send: false, reason: 'other-target' };
    if (!equal6(m.destination, 0, this.#group, 0) && !equal6(m.destination, 0, this.#target, 0)) {
      return { send: false, reason: 'wrong-destination' };
    }
    const dad = isUnspecified6(m.source, 0);
    if (dad && this.#isOwnProbe(m.nonce, linkSource)) return { send: false, reason: 'own-probe' };
    if (!this.#unique) return { send: false, reason: 'before-dad' };
    if (dad) {
      // RFC 4861 §7.2.4: to all-nodes, Solicited clear.
      this.counters.defended++;
      return { send: true, length: this.#write(ALL_NODES, 0) };
    }
    if (equal6(m.source, 0, this.#target, 0)) return { send: false, reason: 'source-is-target' };
    this.counters.answered++;
    if (equal6(m.destination, 0, this.#target, 0)) this.counters.nud++;
    // The source is read before `out` is written: `m`'s arrays are views into `b`, not `out`.
    return { send: true, length: this.#write(m.source, NA_FLAG_SOLICITED) };
  }

  #isOwnProbe(nonce: Uint8Array | null, linkSource: Uint8Array | undefined): boolean {
    const ll = this.#linkAddress;
    if (linkSource !== undefined && ll !== undefined && sameBytes(linkSource, ll)) return true;
    if (nonce === null || nonce.length !== DAD_NONCE_LEN) return false;
    for (let i = 0; i < this.#nonceCount; i++) {
      if (sameBytes(nonce, this.#nonces.subarray(i * DAD_NONCE_LEN, (i + 1) * DAD_NONCE_LEN))) return true;
    }
    return false;
  }

  #write(destination: Uint8Array, flags: number): number {
    return buildNeighborAdvertisement(
      {
        source: this.#target,
        destination,
        target: this.#target,
        flags: flags | NA_FLAG_OVERRIDE,
        linkAddress: this.#linkAddress,
      },
      this.out,
    );
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
