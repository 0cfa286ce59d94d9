/**
 * What a new configuration (SIGHUP) changes, setting by setting: every setting either applies live
 * or is named as taking effect at the next start. Pure: the daemon acts on the plan.
 *
 *   log level, log format        at once
 *   translator settings, --mtu   the running datapath is reconfigured
 *   --pref64, --v6, --v6-prefix, --dad   the CLAT addresses are chosen again (new DAD)
 *   --v4, --route-metric         the IPv4 side (TUN, route) is built again
 *   --interface, --control, --workers, --offload, --metrics, --user   at the next start
 */
import { formatPrefix6 } from '../core/addr/prefix.js';
import type { RunConfig } from './config.js';

export interface ReloadPlan {
  /** The configuration to run with: the new one, with the restart-only settings kept as they were. */
  cfg: RunConfig;
  /** Restart-only settings that changed (named in the log). */
  restart: string[];
  /** The addresses are to be chosen again. */
  redraw: boolean;
  /** The IPv4 side is to be built again, and why (undefined: it stays). */
  rebuild: string | undefined;
  /** The datapath's translator settings changed. */
  reconfigure: boolean;
}

const RESTART_ONLY = ['interface', 'control', 'workers', 'offload', 'metrics', 'user'] as const;

export function planReload(old: RunConfig, next: RunConfig): ReloadPlan {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const restart = RESTART_ONLY.filter((k) => !same(old[k], next[k]));
  const cfg: RunConfig = { ...next };
  for (const k of RESTART_ONLY) (cfg as unknown as Record<string, unknown>)[k] = old[k];
  const prefix = (c: RunConfig) => (c.pref64 ? formatPrefix6(c.pref64) : '');
  const rebuild =
    old.v4 !== next.v4 ? '--v4 changed' : old.routeMetric !== next.routeMetric ? '--route-metric changed' : undefined;
  return {
    cfg,
    restart: [...restart],
    redraw:
      prefix(old) !== prefix(next) ||
      old.v6 !== next.v6 ||
      !same(old.v6Prefix && formatPrefix6(old.v6Prefix), next.v6Prefix && formatPrefix6(next.v6Prefix)) ||
      old.dad !== next.dad,
    rebuild,
    reconfigure: !same(old.translator, next.translator) || old.mtu !== next.mtu,
  };
}
