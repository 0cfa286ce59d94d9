/**
 * Reading `clatd status --json` in the lab: the document is the daemon's {@link StatusSnapshot}, and
 * the lab sums its counters into the few numbers it shows (packets each way, drops, and how many the
 * kernel fast path translated).
 */
import type { StatusSnapshot } from '../daemon/status.js';
import type { IoCounters } from '../datapath/counters.js';

/**
 * The status a `clatd status --json` printed, or null when `text` is not one: not JSON, or without
 * the state and both directions' counters that every status has.
 */
export function parseStatus(text: string): StatusSnapshot | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const s = v as Partial<StatusSnapshot> | null;
  if (s === null || typeof s !== 'object' || typeof s.state !== 'string') return null;
  const c = s.counters;
  if (typeof c?.['46']?.packets !== 'number' || typeof c['64']?.packets !== 'number') return null;
  return s as StatusSnapshot;
}

export interface CounterSummary {
  /** Packets translated IPv4 → IPv6. */
  packets46: number;
  /** Packets translated IPv6 → IPv4. */
  packets64: number;
  /** Every drop counted: all reasons, inputs too long for a slot, malformed frames, both directions. */
  drops: number;
  /** Of the packets, those clatd's kernel fast path translated (0 without one). */
  kernel46: number;
  kernel64: number;
}

type Direction = StatusSnapshot['counters']['46'];

/** Drops by reason (translator and kernel fast path) plus inputs longer than a batch slot. */
function dropsOf(d: Direction): number {
  let n = d.oversize ?? 0;
  for (const v of Object.values(d.drops)) n += v;
  return n;
}

/** Sums the counters of a status. */
export function summarize(status: Pick<StatusSnapshot, 'counters'>): CounterSummary {
  const c = status.counters;
  // The workers' datapath reports I/O counters (datapath/counters.ts); other datapaths may not.
  const io = c.io as Partial<IoCounters> | undefined;
  return {
    packets46: c['46'].packets,
    packets64: c['64'].packets,
    drops: dropsOf(c['46']) + dropsOf(c['64']) + (io?.packetMalformed ?? 0),
    kernel46: c['46'].offloaded ?? 0,
    kernel64: c['64'].offloaded ?? 0,
  };
}
