/**
 * The status document (status.ts) assembled from the parts' states and the reconciler's own: a
 * function of what it is given, reading only, so `clatd status`, the metrics and the lab see the
 * same thing at the same moment.
 */
import { formatPrefix6 } from '../core/addr/prefix.js';
import type { Addressing } from './addressing.js';
import type { Session } from './bring-up.js';
import type { HealthWatch } from './health.js';
import type { LanService } from './lan.js';
import type { ChangeTracker } from './observe.js';
import type { Pref64Tracker } from './pref64.js';
import type { ClatSides } from './sides.js';
import type { Lifecycle } from './state.js';
import type { StatusSnapshot } from './status.js';
import type { DatapathSupervisor } from './supervisor.js';
import { modeStatus, type UplinkModes } from './uplink-mode.js';

/** What the document reads from the parts (DaemonParts has them all). */
export interface SnapshotParts {
  readonly lifecycle: Pick<Lifecycle, 'state' | 'since' | 'entered'>;
  readonly changes: Pick<ChangeTracker, 'counts'>;
  readonly pref64: Pick<Pref64Tracker, 'describe'>;
  readonly modes: Pick<UplinkModes, 'last'>;
  readonly sides: Pick<ClatSides, 'ipv4' | 'uplink'>;
  readonly dp: Pick<DatapathSupervisor, 'offload' | 'counters'>;
  readonly addr: Pick<Addressing, 'status' | 'attemptsTotal'>;
  readonly health: Pick<HealthWatch, 'status'>;
  readonly lan: Pick<LanService, 'status'> | undefined;
}

/** What the document reads from the reconciler. */
export interface SnapshotOwn {
  readonly now: number;
  readonly startedAt: number;
  readonly pid: number;
  /** Why the daemon is in its state (null while running). */
  readonly reason: string | null;
  readonly session: Session | undefined;
  /** The uplink of the last observation, shown while nothing is built. */
  readonly seenUplink: { name: string; ifindex: number; up: boolean } | undefined;
  /** Errors logged so far. */
  readonly errors: number;
}

export function statusSnapshot(p: SnapshotParts, o: SnapshotOwn): StatusSnapshot {
  const s = o.session;
  const state = p.lifecycle.state;
  const pref = p.pref64.describe();
  const v4 = p.sides.ipv4;
  return {
    state,
    reason: o.reason,
    pid: o.pid,
    uptimeSec: Math.floor((o.now - o.startedAt) / 1000),
    stateSinceSec: Math.floor((o.now - p.lifecycle.since) / 1000),
    uplink: s
      ? { name: s.uplink.name, ifindex: s.uplink.index, up: state !== 'paused' }
      : o.seenUplink
        ? { ...o.seenUplink }
        : null,
    pref64: s ? formatPrefix6(s.pref64) : null,
    pref64Source: s?.source ?? null,
    pref64Routers: pref.routers,
    pref64Refused: pref.refused,
    clat4: s?.clat4 ?? null,
    clat6: s?.clat6 ?? null,
    prefix64: s ? `${s.prefix64}/64` : null,
    uplinkMode: modeStatus(s?.mode ?? p.modes.last),
    tun: v4?.name ?? null,
    routeMetric: v4?.metric ?? null,
    mtu: s?.mtu ?? null,
    offload: p.dp.offload(),
    dad: p.addr.status(),
    responder: p.sides.uplink?.responder(),
    counters: p.dp.counters(),
    changes: { ...p.changes.counts },
    transitions: { ...p.lifecycle.entered },
    dadAttempts: p.addr.attemptsTotal,
    errors: o.errors,
    health: p.health.status(),
    ...(p.lan ? { lan: p.lan.status() } : {}),
  };
}
