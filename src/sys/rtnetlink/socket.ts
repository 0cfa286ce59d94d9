/**
 * Request/response over a netlink socket: sequence numbers, acks (NLM_F_ACK), kernel errors mapped
 * to {@link NetlinkError}, and multi-part dumps (NLM_F_DUMP ... NLMSG_DONE). Synchronous: it is
 * used at set-up and on control events, where a netlink round trip takes microseconds; the event
 * monitor (monitor.ts) is the asynchronous side.
 */
import { constants } from 'node:os';
import {
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_OVERRUN,
  NLMSGERR_ATTR_MSG,
} from './consts.js';
import { NetlinkError } from './errors.js';
import { align4, attrStr, LE, type MessageBuilder, type NlMessage, parseAttrs, splitMessages, view } from './wire.js';

const { EAGAIN, EINTR, ETIMEDOUT, EPROTO, ENOBUFS } = constants.errno;

/**
 * The seam between the message layer and the kernel: one datagram per call, errors as `-errno`
 * (never thrown). The native addon provides the real one; tests can provide scripted ones.
 */
export interface NetlinkTransport {
  /** The socket's file descriptor (for readability polling), or -1 for fakes. */
  readonly fd: number;
  /** Sends one datagram to the kernel. Returns the bytes sent or -errno. */
  send(buf: Uint8Array): number;
  /**
   * Receives one datagram into `buf` without blocking. Returns its length or -errno; -EAGAIN means
   * nothing is queued now (a request then waits briefly and retries, up to its timeout).
   */
  recv(buf: Uint8Array): number;
  /** Idempotent. */
  close(): void;
}

/** Big enough for the kernel's largest dump datagram (it caps them at 32 KiB). */
const RX_SIZE = 64 * 1024;
/** A dump the kernel marks inconsistent (it changed meanwhile) is retried this many times. */
const DUMP_TRIES = 3;

/** The NLMSG_ERROR payload: negative errno (0 for an ack) and the kernel's extended-ack text, if any. */
export function decodeError(msg: NlMessage): { errno: number; text?: string } {
  const b = msg.body;
  if (b.length < 4) return { errno: EPROTO };
  const dv = view(b);
  const errno = -dv.getInt32(0, LE);
  if (!(msg.flags & NLM_F_ACK_TLVS) || b.length < 4 + NLMSG_HDRLEN) return { errno };
  // The quoted request follows: its header only when NLM_F_CAPPED, else the whole message.
  const quoted = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(dv.getUint32(4, LE));
  const tlvAt = 4 + quoted;
  if (tlvAt > b.length) return { errno };
  return { errno, text: attrStr(parseAttrs(b, tlvAt).get(NLMSGERR_ATTR_MSG)) };
}

export interface NetlinkSocketOptions {
  /** How long a request waits for its reply (default 2000 ms). */
  readonly timeoutMs?: number;
}

/** Sleeps without spinning, on any thread (Node allows Atomics.wait on the main thread). */
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(SLEEPER, 0, 0, ms);
}

export class NetlinkSocket {
  private seq: number;
  private readonly rx = new Uint8Array(RX_SIZE);
  private closed = false;
  private readonly timeoutMs: number;

  constructor(
    private readonly transport: NetlinkTransport,
    opts: NetlinkSocketOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    // Start at a time-derived number, as iproute2 does, so replies meant for an earlier process
    // that held the same port cannot match.
    this.seq = Math.floor(Date.now() / 1000) & 0x7fffffff;
  }

  /**
   * Sends a request with NLM_F_ACK and waits for the ack. Reply messages before the ack (a GET
   * answers with one) go to `onReply`. Throws {@link NetlinkError} naming `what`.
   */
  request(m: MessageBuilder, what: string, onReply?: (msg: NlMessage) => void): void {
    this.exchange(m, what, NLM_F_ACK, onReply);
  }

  /**
   * Sends a dump request and returns what `decode` makes of every message up to NLMSG_DONE
   * (undefined results are left out). Messages are views into the receive buffer, so `decode`
   * must copy what it keeps. A dump the kernel marks inconsistent is redone, results and all.
   */
  dump<T>(m: MessageBuilder, what: string, decode: (msg: NlMessage) => T | undefined): T[] {
    for (let attempt = 1; ; attempt++) {
      const out: T[] = [];
      let interrupted = false;
      this.exchange(m, what, NLM_F_DUMP, (msg) => {
        if (msg.flags & NLM_F_DUMP_INTR) interrupted = true;
        const v = decode(msg);
        if (v !== undefined) out.push(v);
      });
      if (!interrupted || attempt >= DUMP_TRIES) return out;
    }
  }

  private exchange(m: MessageBuilder, what: string, extra: number, onReply?: (msg: NlMessage) => void): void {
    if (this.closed) throw new NetlinkError(what, constants.errno.EBADF, 'netlink socket closed');
    this.seq = (this.seq + 1) & 0x7fffffff;
    const seq = this.seq;
    const bytes = m.finish(seq);
    // Re-flag: finish() sets NLM_F_REQUEST; the builder's own flags plus ack or dump.
    view(bytes).setUint16(6, view(bytes).getUint16(6, LE) | extra, LE);
    const sent = this.transport.send(bytes);
    if (sent < 0) throw new NetlinkError(`${what}: send`, -sent);
    let deadline = 0;
    for (;;) {
      const n = this.transport.recv(this.rx);
      if (n === -EINTR) continue;
      if (n === -EAGAIN) {
        // The kernel handles rtnetlink requests inside send() and dumps inside recv(), so a
        // reply is nearly always queued already; the wait covers the rare exception (the socket
        // is non-blocking, so there is no blocking receive with a timeout to lean on).
        const now = Date.now();
        if (deadline === 0) deadline = now + this.timeoutMs;
        else if (now >= deadline) throw new NetlinkError(what, ETIMEDOUT, 'no reply from the kernel');
        sleepMs(1);
        continue;
      }
      // ENOBUFS on a request socket means the kernel dropped something for us; the reply may
      // still come, so keep reading.
      if (n === -ENOBUFS) continue;
      if (n < 0) throw new NetlinkError(`${what}: recv`, -n);
      for (const msg of splitMessages(this.rx, n)) {
        if (msg.seq !== seq) continue; // a late reply to an earlier request, or noise
        if (msg.type === NLMSG_ERROR) {
          const { errno, text } = decodeError(msg);
          if (errno === 0) return;
          throw new NetlinkError(what, errno, text);
        }
        if (msg.type === NLMSG_DONE) {
          // A dump can end with an error code in DONE's payload (e.g. a filtered dump refused).
          const err = msg.body.length >= 4 ? -view(msg.body).getInt32(0, LE) : 0;
          if (err > 0) throw new NetlinkError(what, err);
          return;
        }
        if (msg.type === NLMSG_OVERRUN) throw new NetlinkError(what, ENOBUFS, 'netlink overrun');
        onReply?.(msg);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
  }
}
