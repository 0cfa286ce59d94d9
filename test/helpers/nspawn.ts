/**
 * A Debian root booted with systemd as its PID 1 in `systemd-nspawn --boot`, inside a test network
 * namespace, for the test of the packaged service under a real systemd.
 *
 * The root is made once with debootstrap (Debian 13, whose own archive has the nodejs >= 20 the
 * package depends on) and cached under /var/cache/clatd-test/, keyed by what it holds; each boot
 * runs on a throwaway tmpfs layer over it (`--volatile=overlay`), so the cache stays as built.
 *
 *   const root = cachedDebianRoot();
 *   const c = await bootContainer({ root, netns: '/run/netns/clt-…', binds: [[dir, '/mnt/x']] });
 *   try { c.exec('systemctl', 'is-system-running'); } finally { await c.stop(); }
 *
 * This machine's PID 1 need not be systemd: nspawn runs with --register=no --keep-unit and is put
 * first into a cgroup of its own (removed afterwards), so its `payload`/`supervisor` groups never
 * land in a cgroup it shares with anything else.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Debian 13: systemd 257 and nodejs 20 from its own archive. */
export const SUITE = 'trixie';
/**
 * What the root holds beyond minbase: systemd to boot, udev for its tmpfiles rule that makes
 * /dev/net/tun 0666 (as on a host), the package's dependencies (so apt installs it offline), and
 * ip and ping for the test. No procps: the unit must not need /bin/kill.
 */
export const ROOT_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'udev',
  'nodejs',
  'nftables',
  'iproute2',
  'iputils-ping',
] as const;
export const CACHE_DIR = '/var/cache/clatd-test';

/** Why the container cannot be made here, or false. */
export const NEED_NSPAWN: string | false =
  (process.getuid?.() === 0 ? false : 'needs root (debootstrap, systemd-nspawn); CI runs it as root') ||
  (spawnSync('debootstrap', ['--version']).status === 0 ? false : 'needs debootstrap (Debian package debootstrap)') ||
  (spawnSync('systemd-nspawn', ['--version']).status === 0
    ? false
    : 'needs systemd-nspawn (Debian package systemd-container)') ||
  (spawnSync('nsenter', ['--version']).status === 0 ? false : 'needs nsenter (Debian package util-linux)');

/** The Debian mirror apt uses on this machine (its sources), else deb.debian.org. */
export function debianMirror(): string {
  const files = ['/etc/apt/sources.list'];
  const d = '/etc/apt/sources.list.d';
  if (existsSync(d)) for (const f of readdirSync(d).sort()) if (/\.(list|sources)$/.test(f)) files.push(join(d, f));
  for (const f of files) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      const m = /^\s*(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+)/.exec(line);
      const uri = m?.[1].replace(/\/$/, '');
      if (uri && /^https?:\/\/[^/]+\/debian$/.test(uri)) return uri;
    }
  }
  return 'http://deb.debian.org/debian';
}

/**
 * The cached root (made on first use, about a minute): /var/cache/clatd-test/debian-<suite>-<key>.
 * Built beside its final name and renamed when complete, so a run that dies leaves no half root
 * under that name.
 */
export function cachedDebianRoot(log: (s: string) => void = () => {}): string {
  const key = createHash('sha256')
    .update(JSON.stringify([SUITE, 'minbase', ROOT_PACKAGES]))
    .digest('hex')
    .slice(0, 12);
  const root = join(CACHE_DIR, `debian-${SUITE}-${key}`);
  if (existsSync(join(root, 'usr', 'lib', 'systemd', 'systemd'))) return root;
  // What a killed run left half made (its process gone) goes; another run's build in progress stays.
  if (existsSync(CACHE_DIR)) {
    for (const e of readdirSync(CACHE_DIR)) {
      const pid = /\.partial-(\d+)$/.exec(e)?.[1];
      if (pid !== undefined && !isAlive(Number(pid))) rmSync(join(CACHE_DIR, e), { recursive: true, force: true });
    }
  }
  const tmp = `${root}.partial-${process.pid}`;
  const mirror = debianMirror();
  log(`debootstrap ${SUITE} from ${mirror} into ${root}`);
  const t0 = Date.now();
  const r = spawnSync(
    'debootstrap',
    ['--variant=minbase', `--include=${ROOT_PACKAGES.join(',')}`, '--components=main', SUITE, tmp, mirror],
    { encoding: 'utf8', timeout: 900_000, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`debootstrap ${SUITE} from ${mirror} failed (${r.error?.message ?? `exit ${r.status}`}):\n${tail}`);
  }
  // The downloaded .debs are not needed again.
  rmSync(join(tmp, 'var', 'cache', 'apt', 'archives'), { recursive: true, force: true });
  if (existsSync(root)) rmSync(tmp, { recursive: true, force: true });
  else renameSync(tmp, root);
  log(`debootstrap ${SUITE}: made in ${Math.round((Date.now() - t0) / 1000)} s`);
  return root;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** A cgroup hierarchy this process is in, as a directory: the unified one and name=systemd. */
function ownCgroupDirs(): string[] {
  const mine = new Map<string, string>();
  for (const l of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, ctl, path] = /^\d+:([^:]*):(.*)$/.exec(l) ?? [];
    if (ctl === '' || ctl === 'name=systemd') mine.set(ctl, path);
  }
  const dirs: string[] = [];
  for (const l of readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n')) {
    const [pre, post] = l.split(' - ');
    const mountPoint = pre.split(' ')[4];
    const [fstype, , opts] = post.split(' ');
    const ctl =
      fstype === 'cgroup2'
        ? ''
        : fstype === 'cgroup' && /(^|,)name=systemd(,|$)/.test(opts)
          ? 'name=systemd'
          : undefined;
    const path = ctl === undefined ? undefined : mine.get(ctl);
    if (path !== undefined) {
      mine.delete(ctl as string);
      dirs.push(join(mountPoint, path));
    }
  }
  return dirs;
}

/** Removes a cgroup directory and its children, deepest first; says so on stderr when one stays. */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch (e) {
    process.stderr.write(`nspawn: cgroup ${dir} not removed: ${(e as Error).message}\n`);
  }
}

export interface Container {
  readonly name: string;
  /** The container's PID 1 (systemd), as this machine sees it. */
  readonly pid: number;
  /** A command inside the container (all its namespaces); stdout, or throws with its output. */
  exec(cmd: string, ...args: string[]): string;
  tryExec(cmd: string, ...args: string[]): { status: number; stdout: string; stderr: string };
  /** What nspawn printed so far. */
  output(): string;
  /** Halts the container (systemd's own shutdown), kills it after a timeout, removes its cgroups. */
  stop(): Promise<void>;
}

export interface BootOptions {
  root: string;
  /** /run/netns/<name>: the container's network namespace. */
  netns: string;
  /** Read-only bind mounts: [host path, container path]. */
  binds?: [string, string][];
  name?: string;
}

const live = new Set<{ kill(): void }>();
let hooked = false;
let booted = 0;

const INSIDE_ENV = {
  PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  SYSTEMD_PAGER: '',
  SYSTEMD_COLORS: '0',
  DEBIAN_FRONTEND: 'noninteractive',
};

/** Boots `root` with systemd in `netns`; resolves once `systemctl is-system-running --wait` says running. */
export async function bootContainer(o: BootOptions): Promise<Container> {
  const name = o.name ?? `clatd-test-${process.pid}-${++booted}`;
  const cgroups = ownCgroupDirs().map((d) => join(d, name));
  const args = [
    `--directory=${o.root}`,
    `--machine=${name}`,
    '--boot',
    '--quiet',
    // A tmpfs layer over the cached root: whatever the test installs is gone with the container.
    '--volatile=overlay',
    // No machined or systemd on this machine to register with: stay in the cgroup given below.
    '--register=no',
    '--keep-unit',
    `--network-namespace-path=${o.netns}`,
    // The unit gives clatd CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF from the container's bounding set,
    // where nspawn's default set has CAP_NET_RAW only.
    '--capability=CAP_NET_ADMIN,CAP_BPF',
    // The kernel fast path's eBPF programs: bpf(2) is not in nspawn's default filter.
    '--system-call-filter=bpf',
    '--console=pipe',
    ...(o.binds ?? []).map(([h, c]) => `--bind-ro=${h}:${c}`),
  ];
  // nspawn makes /proc/sys/net writable only with a network namespace of its own making; with
  // --network-namespace-path it needs to be asked (clatd writes net sysctls of its uplink and TUN).
  const env = { ...process.env, SYSTEMD_NSPAWN_API_VFS_WRITABLE: 'network' };
  const script =
    'for d in "$@"; do case $d in --) break;; esac; mkdir -p "$d" && echo $$ > "$d/cgroup.procs" || exit 1; shift; done; shift; exec systemd-nspawn "$@"';
  const child: ChildProcess = spawn('sh', ['-c', script, 'sh', ...cgroups, '--', ...args], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let pid1 = 0;
  const handle = {
    kill() {
      try {
        if (pid1) process.kill(pid1, 'SIGKILL');
      } catch {
        // Already gone.
      }
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
  live.add(handle);
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const h of live) h.kill();
    });
  }

  const run = (cmd: string, args2: string[]) =>
    spawnSync('nsenter', ['--target', String(pid1), '--all', '--', cmd, ...args2], {
      encoding: 'utf8',
      env: INSIDE_ENV,
      timeout: 120_000,
    });
  let stopped: Promise<void> | undefined;
  const container: Container = {
    name,
    get pid() {
      return pid1;
    },
    exec(cmd, ...a) {
      const r = run(cmd, a);
      if (r.status !== 0) {
        throw new Error(
          `in container: ${cmd} ${a.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stdout}${r.stderr}`,
        );
      }
      return r.stdout;
    },
    tryExec(cmd, ...a) {
      const r = run(cmd, a);
      return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    output: () => out,
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          // SIGTERM to nspawn: it asks the container's systemd to halt (SIGRTMIN+3).
          child.kill('SIGTERM');
          let timer: NodeJS.Timeout | undefined;
          const late = await Promise.race([
            exited.then(() => false),
            new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 30_000))),
          ]);
          clearTimeout(timer);
          if (late) {
            handle.kill();
            await exited;
          }
        }
        live.delete(handle);
        for (const d of cgroups) removeCgroup(d);
        // nspawn leaves its propagation folder where /run is not a tmpfs.
        rmSync(join('/run/systemd/nspawn/propagate', name), { recursive: true, force: true });
      })();
      return stopped;
    },
  };

  try {
    const deadline = Date.now() + 60_000;
    while (!pid1) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`systemd-nspawn exited:\n${out}`);
      if (Date.now() > deadline) throw new Error(`the container's systemd did not start:\n${out}`);
      pid1 = containerInit(child.pid as number);
      if (!pid1) await new Promise((r) => setTimeout(r, 100));
    }
    // systemctl answers once PID 1 has its private socket; --wait then waits for the boot to end.
    for (;;) {
      const r = spawnSync(
        'nsenter',
        ['--target', String(pid1), '--all', '--', 'systemctl', 'is-system-running', '--wait'],
        { encoding: 'utf8', env: INSIDE_ENV, timeout: Math.max(1000, deadline - Date.now()) },
      );
      const state = r.stdout?.trim();
      if (state === 'running') break;
      if (state === 'degraded') {
        const failed = container.tryExec('systemctl', '--failed', '--no-legend').stdout;
        throw new Error(`the container booted degraded; failed units:\n${failed}`);
      }
      if (Date.now() > deadline) throw new Error(`the container did not finish booting (${state}):\n${out}`);
      await new Promise((r2) => setTimeout(r2, 200));
    }
  } catch (e) {
    await container.stop();
    throw e;
  }
  return container;
}

/** The child of nspawn that is PID 1 of its own PID namespace, or 0. */
function containerInit(nspawnPid: number): number {
  let kids: string[] = [];
  try {
    kids = readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return 0;
  }
  for (const k of kids) {
    try {
      const st = readFileSync(`/proc/${k}/status`, 'utf8');
      const ns = /^NSpid:\s*(.*)$/m.exec(st)?.[1].trim().split(/\s+/);
      if (ns && ns.length > 1 && ns.at(-1) === '1' && readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'systemd') {
        return Number(k);
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return 0;
}
