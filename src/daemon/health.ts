/**
 * Whether translated traffic gets answers: IPv4 packets leave translated toward the NAT64, and
 * nothing comes back to the CLAT address for a while. The usual causes cannot be fixed by waiting
 * — the network does not deliver to an address clatd chose itself (a cloud fabric or a switch that
 * knows only the addresses it assigned), or the NAT64 is down — so clatd says it once, as a
 * warning with what to try, shows it in status and metrics, and says once (info) when replies
 * come back. It never says everything is fine while this holds.
 *
 * The verdict, from the datapath's counters (the kernel fast path's included) sampled every
 * {@link HEALTH_SAMPLE_MS}: over the last {@link HEALTH_WINDOW_MS}, at least {@link HEALTH_MIN_OUT}
 * packets went out and not one packet came in for the CLAT address (neighbor discovery aside).
 * Why these numbers: a ping sends 15 packets in 15 s; one TCP connection that gets no answer
 * sends 5 SYNs in that time (at 0, 1, 3, 7 and 15 s), two of them 10. So a host that keeps trying
 * is told within 15 to 20 s, while a single connection to one IPv4 host that never answers
 * (which no network can fix) does not raise it. Any packet that comes in clears it: a reply, an
 * ICMP error from the NAT64, anything the network delivered to the address.
 *
 * {@link ReplyHealth} is pure (time and counts are handed in); {@link HealthWatch} samples it on
 * the daemon's clock and logs its verdicts.
 */
import type { Logger } from './log.js';
import type { Clock, Counters } from './ports.js';

export const HEALTH_SAMPLE_MS = 5_000;
export const HEALTH_WINDOW_MS = 15_000;
export const HEALTH_MIN_OUT = 8;

/**
 * `unknown`: no packet has come back yet, and too few left to say anything (an idle CLAT);
 * `ok`: packets come back; `no-replies`: packets leave and nothing comes back (the warning).
 */
export type HealthState = 'unknown' | 'ok' | 'no-replies';

export interface HealthStatus {
  state: HealthState;
  /** Seconds in this state. */
  sinceSec: number;
  /** The warning, with what to try, while `no-replies`. */
  message: string | null;
}

/** What crossed the uplink for the CLAT address so far (totals, never decreasing). */
export interface HealthSample {
  /** Translated packets sent toward the NAT64 (4→6 out). */
  out: number;
  /** Packets that came in for the CLAT address (6→4 in, neighbor discovery aside). */
  in: number;
  /** The CLAT address: another one starts a new verdict. */
  clat6: string;
}

export type HealthVerdict = { level: 'warn' | 'info'; message: string } | undefined;

/** What to try when nothing comes back to `clat6`, an address clatd chose itself. */
export function defaultAdvice(_clat6: string): string {
  return (
    'the network may not deliver to an address clatd chose itself (try --v6 with an address the network ' +
    'assigned to this host, or --v6-prefix with a prefix routed to it), or the NAT64 is down'
  );
}

/** The counts a sample takes from the datapath's counters. */
export function sampleOf(c: Counters, clat6: string): HealthSample {
  const o = c['46'];
  const i = c['64'];
  return {
    out: o.packetsOut ?? o.translated ?? o.packets,
    in: Math.max(0, i.packets - (i.neighbor ?? 0)),
    clat6,
  };
}

export class ReplyHealth {
  #samples: { t: number; out: number; in: number }[] = [];
  #clat6: string | undefined;
  #state: HealthState = 'unknown';
  #since: number;
  #message: string | null = null;

  constructor(
    now: number,
    /** What to try, for the warning (the daemon knows how the address was chosen). */
    private readonly advice: (clat6: string) => string = defaultAdvice,
  ) {
    this.#since = now;
  }

  /** Takes a sample; returns what to log when the verdict changes (at most one line per change). */
  sample(now: number, s: HealthSample): HealthVerdict {
    let verdict: HealthVerdict;
    const last = this.#samples.at(-1);
    if (s.clat6 !== this.#clat6 || (last && (s.out < last.out || s.in < last.in))) {
      // A new address (or counters started again): what held for the old one says nothing now.
      if (this.#clat6 !== undefined && this.#state === 'no-replies') {
        verdict = { level: 'info', message: `new CLAT address ${s.clat6}: checking for replies again` };
      }
      this.#clat6 = s.clat6;
      this.#samples = [];
      this.#go(now, 'unknown', null);
    }
    const prev = this.#samples.at(-1);
    this.#samples.push({ t: now, out: s.out, in: s.in });
    if (prev && s.in > prev.in) {
      if (this.#state === 'no-replies') {
        verdict = { level: 'info', message: `packets come back to ${s.clat6} again` };
      }
      if (this.#state !== 'ok') this.#go(now, 'ok', null);
    }
    // The newest sample at least a window old is the reference; older ones are of no more use.
    let ref = -1;
    for (let i = 0; i < this.#samples.length; i++) if (now - this.#samples[i].t >= HEALTH_WINDOW_MS) ref = i;
    if (ref < 0) return verdict;
    this.#samples.splice(0, ref);
    const r = this.#samples[0];
    const sent = s.out - r.out;
    if (this.#state !== 'no-replies' && s.in === r.in && sent >= HEALTH_MIN_OUT) {
      const secs = Math.round((now - r.t) / 1000);
      const message = `${sent} translated packets left in ${secs} s and nothing came back to the CLAT address ${s.clat6}: ${this.advice(s.clat6)}`;
      this.#go(now, 'no-replies', message);
      return { level: 'warn', message };
    }
    return verdict;
  }

  /** Translation paused: samples across the pause would compare unlike times; the verdict stays. */
  pause(): void {
    this.#samples = [];
  }

  status(now: number): HealthStatus {
    return { state: this.#state, sinceSec: Math.floor((now - this.#since) / 1000), message: this.#message };
  }

  #go(now: number, state: HealthState, message: string | null): void {
    this.#state = state;
    this.#since = now;
    this.#message = message;
  }
}

/**
 * Samples {@link ReplyHealth} every {@link HEALTH_SAMPLE_MS} on the daemon's clock: `sample`
 * gives the counts while translating, undefined while not (paused, or nothing built). Its own
 * timer rather than the reconciler's 30 s step: a verdict within 15-20 s needs samples more
 * often, and reading counters is cheap where a step reads the whole host.
 */
export class HealthWatch {
  readonly #health: ReplyHealth;
  #timer: unknown;
  #closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly sample: () => HealthSample | undefined,
    advice?: (clat6: string) => string,
    /** Called after the warning is logged, with the address nothing came back to. */
    private readonly onWarn?: (clat6: string) => void,
  ) {
    this.#health = new ReplyHealth(clock.now(), advice);
  }

  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#tick();
      this.start();
    }, HEALTH_SAMPLE_MS);
  }

  #tick(): void {
    let s: HealthSample | undefined;
    try {
      s = this.sample();
    } catch (e) {
      // Counters that cannot be read now (a datapath being replaced) are read at the next tick.
      this.log.debug('health', `counters not read: ${(e as Error).message}`);
      return;
    }
    if (!s) {
      this.#health.pause();
      return;
    }
    const v = this.#health.sample(this.clock.now(), s);
    if (v) this.log.log(v.level, 'health', v.message);
    if (v?.level === 'warn') this.onWarn?.(s.clat6);
  }

  status(): HealthStatus {
    return this.#health.status(this.clock.now());
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
