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
}

const isDrop = (p: string) => /drop|reject|malformed|invalid/i.test(p);

/** Sums the counters of a status document (see module comment). */
export function summarize(status: unknown): CounterSummary {
  const s: CounterSummary = { packets46: 0, packets64: 0, drops: 0 };
  for (const [path, n] of flattenNumbers(status)) {
    const p = path.toLowerCase();
    if (isDrop(p)) {
      // A total next to per-reason counters would count twice; only leaves named like reasons count.
      if (!/total/.test(p)) s.drops += n;
      continue;
    }
    if (!/packets|pkts/.test(p) || /bytes/.test(p)) continue;
    if (/(^|[^0-9])46([^0-9]|$)|v4to6|4to6|out6|tx6/.test(p)) s.packets46 += n;
    else if (/(^|[^0-9])64([^0-9]|$)|v6to4|6to4|in6|rx6/.test(p)) s.packets64 += n;
  }
  return s;
}
