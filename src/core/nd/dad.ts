/**
 * Duplicate Address Detection for the CLAT IPv6 address, as a pure state machine: the daemon
 * feeds it events with the current time (ms) and carries out the actions it returns. It owns no
 * timer and no socket.
 *
 *   idle ──start──▶ probing ──last RetransTimer wait passes──▶ unique
 *                     │ ▲
 *          duplicate  │ │ new address drawn (at most maxRetries times, RFC 7217 IDGEN_RETRIES)
 *                     ▼ │
 *                   (probing again) ──duplicate after the last retry──▶ failed
 *
 * RFC 4862 §5.4: send DupAddrDetectTransmits solicitations RetransTimer apart, and call the
 * address unique once RetransTimer has passed after the last. The address is a duplicate when
 * (§5.4.4) a Neighbor Advertisement for it arrives from another node, or (§5.4.3) a DAD
 * solicitation (source ::) for it arrives that is not our own looped back; RFC 7527 §4.2 tells
 * the two apart by the nonce: one we sent means loopback, anything else (or none) a duplicate.
 *
 * The kernel answers for the CLAT address itself (it is joined as anycast), and when our probe
 * loops back it may advertise the address to all nodes: such an NA comes from this host. The
 * daemon marks those with `fromSelf` (source is one of the host's own addresses) or passes the
 * frame's link-layer source, which is compared with `ownLinkAddress`.
 */
import { equal6, formatIPv6, parseIPv6 } from '../addr/ipv6.js';
import { ConfigError } from '../errors.js';
import { DadError } from './errors.js';
import { formatMac } from './mac.js';
import type { NdMessage } from './nd-parse.js';
import { DAD_NONCE_LEN } from './nd-wire.js';
import { cryptoRandom, type RandomFill } from './neutral.js';

/**
 * `strict`: translate only once the address is unique (the default). `optimistic`: translate at
 * once and switch address if a duplicate shows up during DAD, in the spirit of RFC 4429. `off`:
 * send one probe and call the address unique at once, as Android does.
 */
export type DadMode = 'strict' | 'optimistic' | 'off';
export const DAD_MODES: readonly DadMode[] = ['strict', 'optimistic', 'off'];

/** RFC 4862 §5.1 default DupAddrDetectTransmits. */
export const DEFAULT_DAD_TRANSMITS = 1;
/** RFC 4861 §10 RETRANS_TIMER. */
export const DEFAULT_RETRANS_TIMER_MS = 1000;
/** RFC 7217 §7 IDGEN_RETRIES. */
export const IDGEN_RETRIES = 3;

export interface DadOptions {
  readonly mode?: DadMode;
  /** The uplink's `dad_transmits` sysctl (0 disables DAD: unique at once). */
  readonly transmits?: number;
  /** The uplink's RetransTimer (`retrans_time_ms`). */
  readonly retransTimerMs?: number;
  /** New addresses drawn after duplicates before giving up. */
  readonly maxRetries?: number;
  /** The first address to probe. */
  readonly address: string | Uint8Array;
  /** Draws the next address after a duplicate (new random bits, still checksum-neutral). */
  readonly nextAddress: () => string | Uint8Array;
  /** Random source for nonces; the platform CSPRNG by default. */
  readonly random?: RandomFill;
  /** The uplink's own link-layer address: an NA or NS whose link-layer source equals it is our own. */
  readonly ownLinkAddress?: Uint8Array;
}

export type DadEvent =
  | { readonly type: 'start'; readonly now: number }
  | { readonly type: 'timer'; readonly now: number }
  | {
      readonly type: 'nd';
      readonly now: number;
      /** A validated NS or NA (from `parseNeighborMessage`). */
      readonly message: NdMessage;
      /** True when the daemon knows this host sent it (its IPv6 source is one of our own addresses). */
      readonly fromSelf?: boolean;
      /** The frame's link-layer source address, when the packet came with one. */
      readonly linkSource?: Uint8Array;
    };

export type DadAction =
  /** Send the DAD solicitation (`buildDadSolicitation(target, nonce)`). */
  | { readonly type: 'send-probe'; readonly target: Uint8Array; readonly nonce: Uint8Array }
  /** (Re)arm the one DAD timer to fire at `at` (ms, the clock of `now`); replaces any earlier one. */
  | { readonly type: 'set-timer'; readonly at: number }
  /** Translate with this address from now on (first use, or a switch after a duplicate). */
  | { readonly type: 'use-address'; readonly address: Uint8Array }
  /** DAD is over: the address is unique. */
  | { readonly type: 'unique'; readonly address: Uint8Array }
  /** `address` is taken (`answeredBy` says by what); `next` is probed now. */
  | { readonly type: 'duplicate'; readonly address: Uint8Array; readonly answeredBy: string; readonly next: Uint8Array }
  /** DAD gave up; stop translating if an address was in use. */
  | { readonly type: 'failed'; readonly error: DadError }
  /** Someone answered for the address after DAD ended (RFC 4862 §5.4.4: log it). */
  | { readonly type: 'late-conflict'; readonly address: Uint8Array; readonly answeredBy: string };

export type DadState = 'idle' | 'probing' | 'unique' | 'failed';

export interface DadStatus {
  readonly state: DadState;
  readonly mode: DadMode;
  /** The address being probed, or the final one. */
  readonly address: string;
  /** Addresses tried so far (1 for the first). */
  readonly attempts: number;
  /** Probes sent for the current address. */
  readonly probesSent: number;
  /** True while the daemon should be translating with `address`. */
  readonly inUse: boolean;
  /** Own probes seen looped back, and NAs recognised as our own, ignored. */
  readonly ignoredOwn: number;
  /** Each duplicate seen: address and what answered. */
  readonly conflicts: readonly { readonly address: string; readonly answeredBy: string }[];
  readonly result: 'unique' | 'failed' | null;
  readonly error: string | null;
}

function toAddr(a: string | Uint8Array, what: string): Uint8Array {
  if (typeof a === 'string') return parseIPv6(a);
  if (a.length !== 16) throw new ConfigError(`${what}: an IPv6 address is 16 bytes, not ${a.length}`);
  return Uint8Array.from(a);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function describe(m: NdMessage, linkSource: Uint8Array | undefined): string {
  const lla = m.kind === 'na' ? m.targetLinkAddress : m.sourceLinkAddress;
  const mac = linkSource ?? lla;
  const link = mac ? ` (${formatMac(mac, 0, mac.length)})` : '';
  if (m.kind === 'na') return `Neighbor Advertisement from ${formatIPv6(m.source)}${link}`;
  const nonce = m.nonce ? `nonce ${formatMac(m.nonce, 0, m.nonce.length)}` : 'no nonce';
  return `DAD Neighbor Solicitation from ${formatIPv6(m.source)}${link} with ${nonce}`;
}

/** DAD for one CLAT address and its replacements. Create one per (uplink, prefix) and feed it events. */
export class DadMachine {
  readonly mode: DadMode;
  readonly transmits: number;
  readonly retransTimerMs: number;
  readonly maxRetries: number;
  private readonly nextAddress: () => string | Uint8Array;
  private readonly random: RandomFill;
  private readonly ownLinkAddress: Uint8Array | undefined;

  private state: DadState = 'idle';
  private address: Uint8Array;
  private attempts = 1;
  private probesSent = 0;
  private deadline = 0;
  private inUse = false;
  private ignoredOwn = 0;
  /** Nonces of the probes sent for the current address (RFC 7527 §4.2 loopback test). */
  private nonces: Uint8Array[] = [];
  private readonly conflicts: { address: string; answeredBy: string }[] = [];
  private error: DadError | null = null;

  constructor(opts: DadOptions) {
    this.mode = opts.mode ?? 'strict';
    if (!DAD_MODES.includes(this.mode))
      throw new ConfigError(`DAD mode must be strict, optimistic or off, not "${this.mode}"`);
    this.transmits = opts.transmits ?? DEFAULT_DAD_TRANSMITS;
    this.retransTimerMs = opts.retransTimerMs ?? DEFAULT_RETRANS_TIMER_MS;
    this.maxRetries = opts.maxRetries ?? IDGEN_RETRIES;
    for (const [name, v] of [
      ['DAD transmits', this.transmits],
      ['RetransTimer', this.retransTimerMs],
      ['DAD retries', this.maxRetries],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new ConfigError(`${name} must be a non-negative integer, not ${v}`);
    }
    this.address = toAddr(opts.address, 'DAD address');
    this.nextAddress = opts.nextAddress;
    this.random = opts.random ?? cryptoRandom;
    this.ownLinkAddress = opts.ownLinkAddress;
  }

  /** Feeds one event; returns the actions to carry out, in order. */
  step(ev: DadEvent): DadAction[] {
    switch (ev.type) {
      case 'start':
        return this.onStart(ev.now);
      case 'timer':
        return this.onTimer(ev.now);
      case 'nd':
        return this.onNd(ev.now, ev.message, ev.fromSelf === true, ev.linkSource);
    }
  }

  status(): DadStatus {
    return {
      state: this.state,
      mode: this.mode,
      address: formatIPv6(this.address),
      attempts: this.attempts,
      probesSent: this.probesSent,
      inUse: this.inUse,
      ignoredOwn: this.ignoredOwn,
      conflicts: this.conflicts.map((c) => ({ ...c })),
      result: this.state === 'unique' || this.state === 'failed' ? this.state : null,
      error: this.error?.message ?? null,
    };
  }

  /** The current address (a copy). */
  currentAddress(): Uint8Array {
    return Uint8Array.from(this.address);
  }

  private onStart(now: number): DadAction[] {
    if (this.state !== 'idle') return [];
    const out: DadAction[] = [];
    if (this.mode === 'off') {
      // Android: one probe, no listening.
      out.push(this.probe());
      return this.finishUnique(out);
    }
    this.state = 'probing';
    if (this.mode === 'optimistic') this.use(out);
    return this.beginProbing(now, out);
  }

  private beginProbing(now: number, out: DadAction[]): DadAction[] {
    if (this.transmits === 0) return this.finishUnique(out);
    out.push(this.probe());
    this.deadline = now + this.retransTimerMs;
    out.push({ type: 'set-timer', at: this.deadline });
    return out;
  }

  private onTimer(now: number): DadAction[] {
    if (this.state !== 'probing') return [];
    // A timer that fires early (or a stale one) just re-arms the current deadline.
    if (now < this.deadline) return [{ type: 'set-timer', at: this.deadline }];
    const out: DadAction[] = [];
    if (this.probesSent < this.transmits) {
      out.push(this.probe());
      this.deadline = now + this.retransTimerMs;
      out.push({ type: 'set-timer', at: this.deadline });
      return out;
    }
    return this.finishUnique(out);
  }

  private onNd(now: number, m: NdMessage, fromSelf: boolean, linkSource: Uint8Array | undefined): DadAction[] {
    if (this.state === 'idle' || this.state === 'failed') return [];
    if (!equal6(m.target, 0, this.address, 0)) return [];
    if (m.kind === 'ns') {
      // An NS from a node doing address resolution (source set) is not about uniqueness (§5.4.3).
      let unspecified = true;
      for (let i = 0; i < 16; i++) if (m.source[i] !== 0) unspecified = false;
      if (!unspecified) return [];
      if (m.nonce !== null && this.nonces.some((n) => sameBytes(n, m.nonce as Uint8Array))) {
        this.ignoredOwn++;
        return [];
      }
    }
    if (fromSelf || this.isOwnLink(m, linkSource)) {
      this.ignoredOwn++;
      return [];
    }
    const answeredBy = describe(m, linkSource);
    if (this.state === 'unique') {
      return [{ type: 'late-conflict', address: Uint8Array.from(this.address), answeredBy }];
    }
    return this.onDuplicate(now, answeredBy);
  }

  private isOwnLink(m: NdMessage, linkSource: Uint8Array | undefined): boolean {
    const own = this.ownLinkAddress;
    if (!own) return false;
    if (linkSource && sameBytes(linkSource, own)) return true;
    const lla = m.kind === 'na' ? m.targetLinkAddress : m.sourceLinkAddress;
    return lla !== null && lla.length >= own.length && sameBytes(lla.subarray(0, own.length), own);
  }

  private onDuplicate(now: number, answeredBy: string): DadAction[] {
    const dup = Uint8Array.from(this.address);
    this.conflicts.push({ address: formatIPv6(dup), answeredBy });
    if (this.attempts > this.maxRetries) {
      const tried = this.conflicts.map((c) => c.address);
      this.error = new DadError(
        `DAD: ${formatIPv6(dup)} is already in use (${answeredBy}); gave up after ${tried.length} ` +
          `address${tried.length === 1 ? '' : 'es'} (${tried.join(', ')})`,
        tried,
        answeredBy,
      );
      this.state = 'failed';
      this.inUse = false;
      return [{ type: 'failed', error: this.error }];
    }
    this.address = toAddr(this.nextAddress(), 'next DAD address');
    this.attempts++;
    this.probesSent = 0;
    this.nonces = [];
    const out: DadAction[] = [{ type: 'duplicate', address: dup, answeredBy, next: Uint8Array.from(this.address) }];
    if (this.inUse) this.use(out);
    // RFC 4862 §5.4.5 leaves the timing of a new attempt open; the new address is probed at once.
    return this.beginProbing(now, out);
  }

  private probe(): DadAction {
    const nonce = new Uint8Array(DAD_NONCE_LEN);
    this.random(nonce);
    this.nonces.push(nonce);
    this.probesSent++;
    return { type: 'send-probe', target: Uint8Array.from(this.address), nonce: Uint8Array.from(nonce) };
  }

  private use(out: DadAction[]): void {
    this.inUse = true;
    out.push({ type: 'use-address', address: Uint8Array.from(this.address) });
  }

  private finishUnique(out: DadAction[]): DadAction[] {
    if (!this.inUse) this.use(out);
    this.state = 'unique';
    out.push({ type: 'unique', address: Uint8Array.from(this.address) });
    return out;
  }
}
