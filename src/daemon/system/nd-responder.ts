/**
 * clatd's own answers to neighbor solicitations for the CLAT address on the uplink, for hosts
 * where the kernel will not answer (announce `respond`: the host holds only a /128 in the on-link
 * /64, so IPV6_JOIN_ANYCAST fails). The decisions are the core's (core/nd/respond.ts); this is the
 * wire:
 *  - the solicited-node group of the address is joined on the uplink's raw socket, so a real
 *    NIC's multicast filter lets the solicitations in (the membership goes with the socket);
 *  - a packet socket of its own with a filter for NS to that group or to the address itself
 *    (ndSolicitationFilter): the kernel does not hand packets for an address it does not own to
 *    raw sockets, and clatd's nft rule drops the kernel's copy anyway;
 *  - each advertisement leaves through the raw socket (hop limit 255, source the CLAT address).
 * Read on the main thread's event loop: solicitations are rare, and none is on the datapath.
 */
import { formatIPv6, solicitedNode } from '../../core/addr/ipv6.js';
import { createBatch } from '../../core/batch.js';
import { NdResponder } from '../../core/nd/respond.js';
import { ndSolicitationFilter } from '../../sys/bpf.js';
import { PacketSocket } from '../../sys/packet-socket.js';
import { type PollHandle, pollReadable } from '../../sys/poll.js';
import type { Raw6Socket } from '../../sys/raw6.js';
import type { ResponderStatus } from '../ports.js';

const BATCH = 16;
const ETH_SOURCE = 6;

export interface WireResponderOptions {
  ifindex: number;
  ifname: string;
  /** 14 on Ethernet, 0 on links without a link-layer header. */
  linkHeaderLen: number;
  /** The uplink's link-layer address (the TLLA option); none on links without one. */
  linkAddress?: Uint8Array;
  /** The uplink side's raw socket: it holds the group membership and sends the advertisements. */
  raw: Raw6Socket;
  target: Uint8Array;
}

export class WireResponder {
  readonly #core: NdResponder;
  readonly #o: WireResponderOptions;
  readonly #socket: PacketSocket;
  readonly #batch = createBatch(BATCH, 2048);
  #poll: PollHandle | undefined;
  #group: Uint8Array;
  #failed: string | undefined;
  #closed = false;

  /** Joins the group and starts reading; throws (and holds nothing) when either fails. */
  constructor(o: WireResponderOptions) {
    this.#o = o;
    this.#core = new NdResponder(o.target, o.linkAddress);
    this.#group = solicitedNode(o.target);
    this.#socket = PacketSocket.open({
      ifindex: o.ifindex,
      ifname: o.ifname,
      filter: ndSolicitationFilter(o.target),
      linkHeaderLen: o.linkHeaderLen,
      batchSize: BATCH,
    });
    try {
      o.raw.joinGroup(this.#group);
      this.#watch();
    } catch (e) {
      this.#socket.close();
      o.raw.leaveGroup(this.#group);
      throw e;
    }
  }

  /**
   * Moves to a new address (or starts a new DAD of the same one): the new group is joined before
   * the old one is left, and nothing is answered until {@link confirm}.
   */
  retarget(target: Uint8Array): void {
    this.#resume();
    const group = solicitedNode(target);
    this.#o.raw.joinGroup(group);
    this.#socket.setFilter(ndSolicitationFilter(target));
    if (formatIPv6(group) !== formatIPv6(this.#group)) this.#o.raw.leaveGroup(this.#group);
    this.#group = group;
    this.#core.retarget(target);
  }

  /** DAD found `address` unique: answer from now on, and advertise it once (RFC 4861 §7.2.6). */
  confirm(address: Uint8Array): void {
    if (this.#closed || !this.#core.confirm(address)) return;
    this.#send(this.#core.announce());
  }

  /** A DAD probe we send: its nonce, so that the probe is known if the link loops it back. */
  noteOwnNonce(nonce: Uint8Array): void {
    this.#core.noteOwnNonce(nonce);
  }

  status(): ResponderStatus {
    const c = this.#core.counters;
    const ignored: Record<string, number> = {};
    for (const [k, n] of Object.entries(c.ignored)) if (n) ignored[k] = n;
    return {
      address: formatIPv6(this.#core.target),
      answering: this.#core.answering,
      answered: c.answered,
      nud: c.nud,
      defended: c.defended,
      announced: c.announced,
      sendErrors: c.sendErrors,
      ignored,
      ...(this.#failed !== undefined ? { failed: this.#failed } : {}),
    };
  }

  /** Stops reading and leaves the group (the raw socket, which is not ours, stays open). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poll?.stop();
    this.#socket.close();
    try {
      this.#o.raw.leaveGroup(this.#group);
    } catch {
      // The raw socket closes next anyway, and the membership with it.
    }
  }

  #read(): void {
    const b = this.#batch;
    b.count = 0;
    let n: number;
    try {
      n = this.#socket.read(b, 0);
    } catch (e) {
      this.#fail((e as Error).message);
      return;
    }
    const l2 = this.#o.linkHeaderLen;
    for (let i = 0; i < n; i++) {
      const len = b.lens[i];
      if (len === 0) continue;
      const off = b.offs[i];
      const linkSource =
        l2 === 14 && off >= 14 ? b.data.subarray(off - 14 + ETH_SOURCE, off - 14 + ETH_SOURCE + 6) : undefined;
      const v = this.#core.handle(b.data, off, len, linkSource);
      if (v.send) this.#send(v.length);
    }
  }

  #send(length: number): void {
    if (length === 0) return;
    try {
      this.#o.raw.sendOne(this.#core.out.subarray(0, length));
    } catch {
      // Like an advertisement lost on the wire: the asker solicits again.
      this.#core.sendFailed();
    }
  }

  #watch(): void {
    this.#poll = pollReadable(
      this.#socket.fd,
      `neighbor responder on ${this.#o.ifname}`,
      () => this.#read(),
      (e) => this.#fail(e.message),
    );
  }

  /**
   * The poll ended on a socket error: the uplink went down (the kernel sets ENETDOWN on the packet
   * socket, and libuv stops a poll at POLLERR). Said in status; {@link #resume} starts it again at
   * the next retarget, which comes before the DAD that follows the link's return.
   */
  #fail(why: string): void {
    this.#poll?.stop();
    this.#poll = undefined;
    this.#failed = why;
  }

  #resume(): void {
    if (this.#closed || this.#poll?.active) return;
    // A read takes the pending error (ENETDOWN) off the socket, so the new poll starts clean.
    const b = this.#batch;
    b.count = 0;
    try {
      this.#socket.read(b, 0);
    } catch {
      // Counted by the socket; the poll below reports what persists.
    }
    this.#failed = undefined;
    this.#watch();
  }
}
