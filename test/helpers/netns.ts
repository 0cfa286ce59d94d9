/**
 * Network namespaces for tests: create, use, and always delete. Names are unique per process and
 * per call (`clt-<tag>-<pid>-<n>`); nothing touches the host namespace's interfaces, routes or
 * firewall.
 *
 *   await withNetns(async (ns) => {
 *     ns.exec('ip', 'link', 'set', 'lo', 'up');
 *     const tun = ns.enter(() => Tun.open('v4-test'));   // created inside the namespace
 *   });
 *
 *   await withVethPair(async ({ a, b }) => {
 *     b.exec('ping', '-6', '-c1', '2001:db8::1');           // a holds 2001:db8::1 on veth-a
 *   }, { aAddr: '2001:db8::1/64', bAddr: '2001:db8::2/64' });
 *
 * `enter` moves the calling thread (setns through the addon) into the namespace for the duration of
 * a synchronous function: sockets and TUN devices opened there stay in the namespace afterwards,
 * so the test can keep using them from the host side. Worker threads started inside `enter` start
 * in the namespace too.
 */
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { release } from 'node:os';

/**
 * Why namespace tests are skipped, or false when they can run: `describe(name, { skip: NEED_ROOT }, ...)`
 * with test/helpers/suite.js's describe, which skips each test inside (node:test's would hide them).
 */
export const NEED_ROOT: string | false =
  process.getuid?.() === 0 ? false : 'needs root (network namespaces, TUN, raw sockets); CI runs it as root';

let counter = 0;

/** Namespaces created and not yet deleted: removed on exit even if a test never reached its finally. */
const live = new Set<string>();
/** Background processes started in any namespace: killed (by pid) on exit too. */
const children = new Set<ChildProcess>();
let exitHook = false;

function deleteNetnsSync(name: string): void {
  live.delete(name);
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // Already gone.
  }
}

function track(name: string): void {
  live.add(name);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const n of [...live]) deleteNetnsSync(n);
  });
}

export interface Netns {
  readonly name: string;
  /** Runs a command inside the namespace and returns its stdout; throws with its stderr on failure. */
  exec(cmd: string, ...args: string[]): string;
  /** Like exec, but returns the exit status and output instead of throwing. */
  tryExec(cmd: string, ...args: string[]): { status: number; stdout: string; stderr: string };
  /** A bash script inside the namespace (`set -e`); returns stdout. */
  sh(script: string): string;
  /** A background process inside the namespace; killed (by its pid) when the namespace is deleted. */
  spawn(cmd: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** Runs `fn` with the calling thread inside the namespace, then moves it back (even on throw). */
  enter<T>(fn: () => T): T;
  /** The index of an interface in the namespace. */
  ifindex(ifname: string): number;
}

class NetnsImpl implements Netns {
  readonly name: string;
  readonly #children = new Set<ChildProcess>();

  constructor(name: string) {
    this.name = name;
  }

  exec(cmd: string, ...args: string[]): string {
    try {
      return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 20_000,
      });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`in netns ${this.name}: ${cmd} ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`);
    }
  }

  tryExec(cmd: string, ...args: string[]): { status: number; stdout: string; stderr: string } {
    try {
      const stdout = execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 20_000,
      });
      return { status: 0, stdout, stderr: '' };
    } catch (e) {
      const err = e as { status?: number | null; stdout?: string; stderr?: string };
      return { status: err.status ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    }
  }

  sh(script: string): string {
    return this.exec('bash', '-ec', script);
  }

  spawn(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: 'pipe', ...options });
    this.#children.add(child);
    children.add(child);
    child.on('exit', () => {
      this.#children.delete(child);
      children.delete(child);
    });
    return child;
  }

  enter<T>(fn: () => T): T {
    const here = openSync('/proc/thread-self/ns/net', 'r');
    const there = openSync(`/run/netns/${this.name}`, 'r');
    try {
      setNetns(there, this.name);
      try {
        return fn();
      } finally {
        setNetns(here, 'the original namespace');
      }
    } finally {
      closeSync(there);
      closeSync(here);
    }
  }

  ifindex(ifname: string): number {
    const out = this.exec('cat', `/sys/class/net/${ifname}/ifindex`);
    return Number.parseInt(out.trim(), 10);
  }

  /** Kills what we spawned (by pid), then deletes the namespace. Never throws. */
  async destroy(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const child of this.#children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      waits.push(new Promise<void>((resolve) => child.once('exit', () => resolve())));
      child.kill('SIGKILL');
    }
    if (waits.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(waits), new Promise((r) => (timer = setTimeout(r, 2000)))]);
      clearTimeout(timer);
    }
    deleteNetnsSync(this.name);
  }
}

// The addon is loaded lazily so that importing this helper never requires it.
let setNetnsFn: ((fd: number) => number) | undefined;
function setNetns(fd: number, what: string): void {
  if (setNetnsFn === undefined) {
    throw new Error('netns.enter needs the addon: call loadNetnsSupport() first (withNetns does)');
  }
  const r = setNetnsFn(fd);
  if (r < 0) throw new Error(`setns into ${what} failed: errno ${-r}`);
}

/** Loads the addon's setns for `enter` (done by withNetns / withVethPair). */
export async function loadNetnsSupport(): Promise<void> {
  if (setNetnsFn) return;
  const { native } = await import('../../src/sys/addon.js');
  setNetnsFn = native.setNetns;
}

/** Creates a namespace with `lo` up and IPv6 DAD off (addresses usable at once). Delete it with `destroy`. */
export async function createNetns(tag = 'ns'): Promise<Netns & { destroy(): Promise<void> }> {
  await loadNetnsSupport();
  const name = `clt-${tag}-${process.pid}-${++counter}`;
  execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'ignore', 'pipe'] });
  track(name);
  const ns = new NetnsImpl(name);
  try {
    ns.sh(
      'ip link set lo up; sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 ' +
        'net.ipv6.conf.all.forwarding=0',
    );
  } catch (e) {
    await ns.destroy();
    throw e;
  }
  return ns;
}

/** Runs `fn` in a fresh namespace that is deleted afterwards, whatever happens. */
export async function withNetns<T>(fn: (ns: Netns) => Promise<T> | T, tag = 'ns'): Promise<T> {
  const ns = await createNetns(tag);
  try {
    return await fn(ns);
  } finally {
    await ns.destroy();
  }
}

export interface VethPair {
  /** Namespace holding `aIf`. */
  readonly a: Netns;
  /** Namespace holding `bIf`. */
  readonly b: Netns;
  readonly aIf: string;
  readonly bIf: string;
  readonly aIndex: number;
  readonly bIndex: number;
  /** MAC addresses (`aa:bb:...`). */
  readonly aMac: string;
  readonly bMac: string;
}

export interface VethOptions {
  /** Addresses with prefix length (`2001:db8::1/64`), added with `nodad`. */
  aAddr?: string | string[];
  bAddr?: string | string[];
  tag?: string;
}

/**
 * Two namespaces joined by a veth pair (`veth-a` in a, `veth-b` in b), both up, deleted afterwards.
 * The interface names are local to the namespaces, so they never collide with the host's.
 */
export async function withVethPair<T>(fn: (pair: VethPair) => Promise<T> | T, options: VethOptions = {}): Promise<T> {
  const tag = options.tag ?? 'veth';
  const a = await createNetns(`${tag}a`);
  let b: Awaited<ReturnType<typeof createNetns>> | undefined;
  try {
    b = await createNetns(`${tag}b`);
    execFileSync(
      'ip',
      ['-n', a.name, 'link', 'add', 'veth-a', 'type', 'veth', 'peer', 'name', 'veth-b', 'netns', b.name],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const addrs = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
    const setup = (ifname: string, list: string[]) =>
      [
        ...list.map((addr) => `ip addr add ${addr} dev ${ifname}${addr.includes(':') ? ' nodad' : ''}`),
        `ip link set ${ifname} up`,
        `cat /sys/class/net/${ifname}/ifindex /sys/class/net/${ifname}/address`,
      ].join('; ');
    const [aIndex, aMac] = a
      .sh(setup('veth-a', addrs(options.aAddr)))
      .trim()
      .split('\n');
    const [bIndex, bMac] = b
      .sh(setup('veth-b', addrs(options.bAddr)))
      .trim()
      .split('\n');
    // Usable only once the carrier is up on both ends and the link-local address exists: before
    // that, sends fail with ENETUNREACH.
    const waitUp = (ifname: string) =>
      `for i in $(seq 250); do [ "$(cat /sys/class/net/${ifname}/operstate)" = up ] && ` +
      `ip -6 addr show dev ${ifname} scope link | grep -q fe80 && exit 0; sleep 0.02; done; ` +
      `echo "${ifname} did not come up" >&2; exit 1`;
    a.sh(waitUp('veth-a'));
    b.sh(waitUp('veth-b'));
    return await fn({
      a,
      b,
      aIf: 'veth-a',
      bIf: 'veth-b',
      aIndex: Number(aIndex),
      bIndex: Number(bIndex),
      aMac,
      bMac,
    });
  } finally {
    await b?.destroy();
    await a.destroy();
  }
}

/**
 * Why tests of the kernel fast path are skipped, or false: its tcx links need Linux 6.6 or later
 * (on older kernels clatd runs without it, which other tests cover).
 */
export const NEED_TCX: string | false = (() => {
  const [major, minor] = release()
    .split('.')
    .map((x) => Number.parseInt(x, 10));
  return major > 6 || (major === 6 && minor >= 6)
    ? false
    : `needs Linux 6.6 or later for tcx links (this is ${release()})`;
})();
