/**
 * The CLAT's addresses and their DAD: the IPv4 address (--v4, or the first free one of
 * 192.0.0.0/29, RFC 7335), random checksum-neutral IPv6 addresses in the prefix the address mode
 * chose (uplink-mode.ts), and the verdict of Duplicate Address Detection on the wire, with its status.
 *
 * DAD under attack. An on-link node can answer every probe. RFC 4862 §5.4.5 leaves the reaction to
 * the implementation, and exiting would hand any neighbour a switch that turns IPv4 off. So when
 * every address of a round (the first and IDGEN_RETRIES redraws) is answered for, clatd keeps
 * running: it logs a warning naming each address and what answered (with its MAC), shows DAD as
 * `blocked` in status, takes the CLAT down while it has no address, and tries a new round after a
 * back-off of 5 s doubling to at most 60 s; the first round that passes brings the CLAT up and
 * resets the back-off. RFC 7527's nonces already keep our own looped-back probes from counting.
 */

import { formatIPv6 } from '../core/addr/ipv6.js';
import type { Prefix6 } from '../core/addr/prefix.js';
import type { DadMode } from './config.js';
import type { Logger } from './log.js';
import type { DadPort, DaemonDeps, LinkInfo, UplinkSide } from './ports.js';
import type { DadStatus } from './status.js';

export const BLOCKED_BACKOFF_MS = 5_000;
export const BLOCKED_BACKOFF_MAX_MS = 60_000;
/** Duplicates kept for status. */
const DUPLICATES_KEPT = 8;

export type DadVerdict =
  | { type: 'unique'; address: string; attempts: number }
  | { type: 'blocked'; retryInMs: number; reason: string }
  | { type: 'interrupted'; reason: string }
  | { type: 'stopped' };

export class Addressing {
  readonly #deps: Pick<DaemonDeps, 'identity' | 'net' | 'dad' | 'clock'>;
  readonly #log: Logger;
  #status: DadStatus;
  /** Addresses probed since start (all runs). */
  attemptsTotal = 0;
  #blockedUntil = 0;

  constructor(deps: Pick<DaemonDeps, 'identity' | 'net' | 'dad' | 'clock'>, log: Logger, mode: DadMode) {
    this.#deps = deps;
    this.#log = log;
    this.#status = {
      mode,
      result: 'none',
      attempts: 0,
      duplicates: [],
      blockedRounds: 0,
      retryInSec: null,
      skipped: null,
    };
  }

  status(): DadStatus {
    const left = this.blockedForMs();
    return {
      ...this.#status,
      duplicates: this.#status.duplicates.map((d) => ({ ...d })),
      retryInSec: this.#status.result === 'blocked' ? Math.ceil(left / 1000) : null,
    };
  }

  /** While DAD is blocked: ms until the next round may start (0 once it may). */
  blockedForMs(): number {
    return Math.max(0, this.#blockedUntil - this.#deps.clock.now());
  }

  /** The CLAT IPv4 address: `keep`, --v4, or the first free one of 192.0.0.0/29. */
  async ipv4(keep: string | undefined, flag: string | undefined): Promise<string> {
    const v4 = keep ?? flag;
    if (v4 !== undefined) return v4;
    const inUse = (await this.#deps.net.addresses()).filter((a) => a.family === 4).map((a) => a.address);
    const picked = this.#deps.identity.selectIPv4(inUse);
    if (picked === undefined) throw new Error('no free IPv4 address in 192.0.0.0/29 for the CLAT (give one with --v4)');
    return picked;
  }

  /**
   * Draws random checksum-neutral CLAT IPv6 addresses in `prefix` for `ipv4` toward `pref64`: in a
   * /64 as always, in a routed prefix (/32 to /96) with the generator for any length.
   */
  drawer(prefix: Prefix6, pref64: Prefix6, ipv4: string): () => string {
    const id = this.#deps.identity;
    if (prefix.len === 64) {
      const prefix64 = formatIPv6(prefix.addr);
      return () => id.generateIPv6({ prefix64, pref64, ipv4 });
    }
    return () => id.generateInPrefix({ prefix, pref64, ipv4 });
  }

  /** A new DAD run begins (status `pending`, or `optimistic` while translating during it). */
  begin(mode: DadMode): void {
    const s = this.#status;
    this.#status = { ...s, mode, result: mode === 'optimistic' ? 'optimistic' : 'pending', attempts: 0, skipped: null };
  }

  /** No DAD for this address, and why (a prefix routed to the host: nobody else on the link uses it). */
  skip(why: string): void {
    const s = this.#status;
    this.#status = { ...s, result: 'skipped', attempts: 0, blockedRounds: 0, skipped: why };
    this.#blockedUntil = 0;
  }

  /**
   * Runs DAD on the wire (see DadPort.run) and classifies the outcome. An answered round becomes
   * `blocked` with its back-off; a socket or link failure `interrupted`; neither ever throws past
   * an `onAddress` failure.
   */
  async probe(o: {
    uplink: LinkInfo;
    side: UplinkSide;
    first: string;
    /** Undefined: a duplicate is not replaced (a leased address). */
    redraw?: () => string;
    mode: DadMode;
    params: { transmits: number; retransMs: number };
    onAddress: (address: string) => Promise<void>;
    signal: AbortSignal;
  }): Promise<DadVerdict> {
    const dad: DadPort = this.#deps.dad;
    const r = await dad.run({
      uplink: o.uplink,
      side: o.side,
      first: o.first,
      redraw: o.redraw,
      params: { mode: o.mode, ...o.params },
      onAddress: async (a) => {
        if (o.signal.aborted) return;
        this.attemptsTotal++;
        this.#status.attempts++;
        await o.onAddress(a);
      },
      signal: o.signal,
    });
    for (const d of r.duplicates) this.#noteDuplicate(d.address, d.by);
    if (r.ok) {
      this.#status.result = o.mode === 'off' ? 'probes-sent' : 'unique';
      this.#status.blockedRounds = 0;
      this.#blockedUntil = 0;
      return { type: 'unique', address: r.address, attempts: r.attempts };
    }
    if (r.kind === 'stopped' || o.signal.aborted) return { type: 'stopped' };
    if (r.kind === 'interrupted') {
      this.#status.result = 'pending';
      return { type: 'interrupted', reason: r.reason };
    }
    const rounds = ++this.#status.blockedRounds;
    const wait = Math.min(BLOCKED_BACKOFF_MS * 2 ** (rounds - 1), BLOCKED_BACKOFF_MAX_MS);
    this.#blockedUntil = this.#deps.clock.now() + wait;
    this.#status.result = 'blocked';
    return { type: 'blocked', retryInMs: wait, reason: r.reason };
  }

  #noteDuplicate(address: string, by: string): void {
    const list = this.#status.duplicates;
    if (list.some((d) => d.address === address && d.by === by)) return;
    this.#log.warn('dad', `${address} is in use on the link: ${by}`);
    list.push({ address, by });
    if (list.length > DUPLICATES_KEPT) list.shift();
  }
}
