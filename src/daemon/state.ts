/**
 * The daemon's lifecycle as a small explicit state machine (after wireguard-go's `deviceState`):
 * `go(to, reason)` is the only way to change state; each change is one log line and one counter,
 * and a transition missing from the table below is a bug, so it throws.
 *
 *                          +----------+
 *                          | starting |
 *                          +----+-----+
 *             +-----------------+------------------+
 *             v                 v                  v
 *     +----------------+  +----------------+  +------------------+
 *     | waiting-uplink |<>| waiting-prefix |<>| idle-native-ipv4 |   (each <> the others)
 *     +-------+--------+  +-------+--------+  +--------+---------+
 *             +-------------------+--------------------+
 *                                 v
 *                             +-------+   duplicate: new address, DAD again
 *                             |  dad  |---+
 *                             +---+---+<--+
 *                                 v
 *                           +-----------+  uplink down, PREF64 lost  +--------+
 *                           |  running  |--------------------------->| paused |
 *                           +-----------+<---------------------------+--------+
 *                                          (via dad when the address changed)
 *
 *   running / paused / dad --> waiting-* or idle-native-ipv4 (uplink gone, native IPv4 back: torn down)
 *   any state --> stopping --> stopped (once stopped, always stopped)
 *   any state --> failed (DAD gave up, --pref64-timeout) --> stopping --> stopped
 */

export const STATES = [
  'starting',
  'waiting-uplink',
  'waiting-prefix',
  'idle-native-ipv4',
  'dad',
  'running',
  'paused',
  'failed',
  'stopping',
  'stopped',
] as const;

export type State = (typeof STATES)[number];

const WAITING: State[] = ['waiting-uplink', 'waiting-prefix', 'idle-native-ipv4'];

/** Allowed transitions; `failed` and `stopping` are reachable from every state before them. */
const NEXT: Record<State, readonly State[]> = {
  starting: [...WAITING, 'dad'],
  'waiting-uplink': [...WAITING, 'dad'],
  'waiting-prefix': [...WAITING, 'dad'],
  'idle-native-ipv4': [...WAITING, 'dad'],
  dad: ['dad', 'running', 'paused', ...WAITING],
  running: ['paused', 'dad', ...WAITING],
  paused: ['running', 'dad', ...WAITING],
  failed: [],
  stopping: ['stopped'],
  stopped: [],
};

export function canGo(from: State, to: State): boolean {
  if (to === 'stopping') return from !== 'stopping' && from !== 'stopped';
  if (to === 'failed') return from !== 'failed' && from !== 'stopping' && from !== 'stopped';
  return NEXT[from].includes(to);
}

export class StateError extends Error {
  constructor(from: State, to: State) {
    super(`illegal state transition ${from} -> ${to}`);
    this.name = 'StateError';
  }
}

export interface Transition {
  from: State;
  to: State;
  reason: string;
  at: number;
}

export class Lifecycle {
  #state: State = 'starting';
  #since: number;
  readonly #now: () => number;
  readonly #listeners: ((t: Transition) => void)[] = [];
  /** Transitions into each state, for metrics. */
  readonly entered: Record<State, number>;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#since = now();
    this.entered = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<State, number>;
    this.entered.starting = 1;
  }

  get state(): State {
    return this.#state;
  }

  /** When the current state was entered (ms, from the clock given to the constructor). */
  get since(): number {
    return this.#since;
  }

  onTransition(fn: (t: Transition) => void): void {
    this.#listeners.push(fn);
  }

  /**
   * Moves to `to`. A move to the current state is a no-op (returns false), except `dad -> dad`,
   * which means a fresh DAD round. Throws {@link StateError} for a transition not in the table.
   */
  go(to: State, reason: string): boolean {
    const from = this.#state;
    if (from === to && to !== 'dad') return false;
    if (!canGo(from, to)) throw new StateError(from, to);
    this.#state = to;
    this.#since = this.#now();
    this.entered[to]++;
    const t: Transition = { from, to, reason, at: this.#since };
    for (const fn of this.#listeners) fn(t);
    return true;
  }

  get done(): boolean {
    return this.#state === 'stopping' || this.#state === 'stopped';
  }
}
