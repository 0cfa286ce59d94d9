/**
 * Reading `clatd status --json` without depending on its exact layout: the numbers are flattened to
 * dotted paths, and the lab sums the ones whose path names a direction, packets or drops. That is
 * enough to show counters moving and to see drops counted.
 */

/** Every number in `v`, keyed by its dotted path (array indexes included). */
export function flattenNumbers(v: unknown, prefix = '', out: Map<string, number> = new Map()): Map<string, number> {
  if (typeof v === 'number' && Number.isFinite(v)) out.set(prefix, v);
  else if (typeof v === 'string' && /^\d+$/.test(v) && prefix !== '') out.set(prefix, Number(v));
  else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) flattenNumbers(x, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

export interface CounterSummary {
  /** Packets translated IPv4 → IPv6. */
  packets46: number;
  /** Packets translated IPv6 → IPv4. */
  packets64: number;
  /** Every drop counted, all reasons and both directions. */
  drops: number;
  /** Of the packets, those clatd's kernel fast path translated (0 when the status has no such counter). */
  kernel46: number;
  kernel64: number;
}

const isDrop = (p: string) => /drop|reject|malformed|invalid|oversize/i.test(p);

interface Direction {
  packets?: number;
  offloaded?: number;
  dropped?: number;
  oversize?: number;
}

/**
 * Sums the counters of a status document: the daemon's layout (`counters['46'|'64']` with
 * `packets`, `dropped`, `oversize`, and `counters.io.packetMalformed`) when present, otherwise any
 * numbers whose paths name a direction, packets or drops.
 */
export function summarize(status: unknown): CounterSummary {
  const c = (status as { counters?: Record<string, unknown> } | null)?.counters;
  const d46 = c?.['46'] as Direction | undefined;
  const d64 = c?.['64'] as Direction | undefined;
  if (d46 && d64 && typeof d46.packets === 'number') {
    const io = (c?.io ?? {}) as { packetMalformed?: number };
    const drops = (d: Direction) => (d.dropped ?? 0) + (d.oversize ?? 0);
    return {
      packets46: d46.packets ?? 0,
      packets64: d64.packets ?? 0,
      drops: drops(d46) + drops(d64) + (io.packetMalformed ?? 0),
      kernel46: d46.offloaded ?? 0,
      kernel64: d64.offloaded ?? 0,
    };
  }
  const s: CounterSummary = { packets46: 0, packets64: 0, drops: 0, kernel46: 0, kernel64: 0 };
  for (const [path, n] of flattenNumbers(status)) {
    const p = path.toLowerCase();
    if (isDrop(p)) {
      if (!/total/.test(p)) s.drops += n;
      continue;
    }
    const leaf = p.slice(p.lastIndexOf('.') + 1);
    if (leaf !== 'packets' && leaf !== 'pkts') continue;
    if (/(^|[^0-9])46([^0-9]|$)/.test(p)) s.packets46 += n;
    else if (/(^|[^0-9])64([^0-9]|$)/.test(p)) s.packets64 += n;
  }
  return s;
}
