/**
 * The lab: builds the network of topology.ts from real parts, hands out what tests and `clatd lab`
 * need (names, addresses, exec helpers, daemons, captures, packet injection) and always removes it:
 * `destroy()` (idempotent), or at process exit and on SIGINT/SIGTERM/SIGHUP. Everything it starts it
 * kills by PID; everything it creates carries the run's tag.
 */

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatusSnapshot } from '../daemon/daemon.js';
import { DAEMON_NODE_FLAGS } from '../options/node-flags.js';
import { IPV4ONLY_ZONE, LAB_ZONE, NFT_RULES, type RaConfig, radvdConf, taygaConf, unboundConf } from './configs.js';
import { ensureDeps, which } from './deps.js';
import {
  CHILD_ENV,
  inNs,
  LabError,
  type Proc,
  type RunOptions,
  type RunResult,
  run,
  sleep,
  start,
  waitFor,
} from './exec.js';
import { type Frame, parsePcap } from './pcap.js';
import { INJECT_PY, RA_SENDER_PY } from './scripts.js';
import { parseStatus } from './status.js';
import { ADDR, freshTag, IFACE, type LabNames, type LabOptions, labNames } from './topology.js';

/** The compiled CLI, run as `node CLI run` inside the host namespace. */
export const CLI_PATH = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const PROBE_PATH = fileURLToPath(new URL('./probe.js', import.meta.url));
const UDP_ECHO_PATH = fileURLToPath(new URL('./udp-echo.js', import.meta.url));

/** Where a lab keeps its files; `clatd lab --destroy TAG` finds a kept lab through its state file. */
export function runDir(tag: string): string {
  return join(tmpdir(), `clatd-lab-${tag}`);
}

interface LabState {
  tag: string;
  /** The process that built the lab; when it is gone and the lab was not kept, the lab is an orphan. */
  ownerPid?: number;
  kept?: boolean;
  namespaces: string[];
  pids: number[];
  netnsEtc: string | null;
}

/** How the host's addresses in the lab's /64 start when printed (2001:db8:1::/64). */
const LAN_PREFIX_TEXT = '2001:db8:1:';

const live = new Set<Lab>();
let handlersInstalled = false;

function installHandlers(exitOnSignal: boolean): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const lab of live) lab.destroySync();
  });
  // `clatd lab` handles its signals itself, to stop clatd before removing the network.
  if (!exitOnSignal) return;
  for (const [sig, n] of [
    ['SIGINT', 2],
    ['SIGTERM', 15],
    ['SIGHUP', 1],
  ] as const) {
    // Whoever else listens (node:test does) decides about exiting; with nobody, this one exits.
    const alone = process.listenerCount(sig) === 0;
    process.on(sig, () => {
      for (const lab of live) lab.destroySync();
      if (alone) process.exit(128 + n);
    });
  }
}

/**
 * Removes labs whose creating process died without cleaning up (SIGKILL, a crash) and that were
 * not kept on purpose by `clatd lab --shell`.
 */
export function sweepOrphans(log: (s: string) => void = () => {}): void {
  for (const tag of keptLabs(true)) {
    try {
      const s = JSON.parse(readFileSync(join(runDir(tag), 'state.json'), 'utf8')) as LabState;
      if (s.kept || s.ownerPid === undefined || alive(s.ownerPid)) continue;
      log(`lab: removing lab ${tag} left by process ${s.ownerPid}, which is gone`);
      destroyKeptLab(tag);
    } catch {}
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A tcpdump running in a namespace, writing a pcap file. */
export class Capture {
  constructor(
    readonly proc: Proc,
    readonly file: string,
  ) {}

  /** The frames written so far (tcpdump runs with -U, so each is flushed as it is captured). */
  frames(): Frame[] {
    try {
      return parsePcap(readFileSync(this.file)).frames;
    } catch {
      return [];
    }
  }

  /** Stops tcpdump (SIGINT flushes it) and returns every captured frame. */
  async stop(): Promise<Frame[]> {
    await this.proc.stop('SIGINT', 2000);
    return this.frames();
  }
}

export type RaDaemon = 'radvd' | 'ra-sender';

export class Lab {
  readonly names: LabNames;
  readonly dir: string;
  readonly addr = ADDR;
  readonly iface = IFACE;
  /** The NAT64 prefix the PLAT and DNS64 use now. */
  pref64: string;
  /** Whether the RA carries PREF64 now. */
  raPref64: boolean;
  /** Which daemon sends the RAs now: radvd, or the lab's sender when radvd cannot send PREF64. */
  raDaemon: RaDaemon = 'radvd';
  /** SHA-256 (hex) and size of /blob.bin on the HTTP server. */
  blobSha256 = '';
  blobBytes = 0;

  private readonly opts: LabOptions;
  private readonly log: (s: string) => void;
  private readonly namespaces: string[] = [];
  private readonly procs = new Map<string, Proc>();
  private netnsEtc: string | null = null;
  private destroyed = false;
  private kept = false;
  private radvdPref64: boolean | null = null;
  private seq = 0;

  private constructor(opts: LabOptions) {
    this.opts = opts;
    this.names = labNames(opts.tag ?? freshTag(), opts.neighbour === true);
    this.dir = runDir(this.names.tag);
    this.pref64 = opts.pref64 ?? ADDR.pref64;
    this.raPref64 = opts.raPref64 !== false;
    this.log = opts.log ?? (() => {});
  }

  /** Builds the whole network and starts its daemons; on any failure removes what it made. */
  static async create(opts: LabOptions = {}): Promise<Lab> {
    if (process.getuid?.() !== 0) throw new LabError('lab: needs root (network namespaces, raw sockets)');
    await ensureDeps(opts.log);
    sweepOrphans(opts.log);
    const lab = new Lab(opts);
    live.add(lab);
    installHandlers(opts.handleSignals !== false);
    try {
      await lab.build();
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  // ---- running things ----------------------------------------------------------------------

  /** Runs `argv` in namespace `ns` (null: the root namespace). */
  exec(ns: string | null, argv: string[], opts?: RunOptions): Promise<RunResult> {
    return run(inNs(ns, argv), opts);
  }

  /** Runs a shell script in `ns`. */
  sh(ns: string, script: string, opts?: RunOptions): Promise<RunResult> {
    return this.exec(ns, ['sh', '-c', script], opts);
  }

  /** Starts a long-lived process in `ns`, logged to the run directory and killed by `destroy()`. */
  spawn(name: string, ns: string | null, argv: string[]): Proc {
    const key = `${name}.${++this.seq}`;
    const p = start(name, inNs(ns, argv), join(this.dir, `${key}.log`));
    this.procs.set(key, p);
    void p.exited.then(() => this.procs.delete(key));
    this.saveState();
    return p;
  }

  /** A probe (src/lab/probe.ts) run in `ns`; returns its JSON result. */
  async probe(ns: string, args: string[], timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const r = await this.exec(ns, [process.execPath, PROBE_PATH, ...args], { allowFail: true, timeoutMs });
    try {
      return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    } catch {
      return { ok: false, error: `probe ${args.join(' ')} printed ${JSON.stringify(r.stdout + r.stderr)}` };
    }
  }

  /** Starts tcpdump on `iface` in `ns` with a BPF `filter`, and returns once it is capturing. */
  async capture(ns: string, iface: string, filter = ''): Promise<Capture> {
    const file = join(this.dir, `capture-${++this.seq}.pcap`);
    const argv = ['tcpdump', '-i', iface, '-n', '-U', '--immediate-mode', '-s', '0', '-w', file];
    if (filter) argv.push(filter);
    const p = this.spawn('tcpdump', ns, argv);
    const ok = await waitFor(() => !p.running || p.output().includes('listening on'), 5000, 50);
    if (!ok || !p.running) throw new LabError(`lab: tcpdump on ${ns}/${iface} did not start: ${p.output().trim()}`);
    await sleep(50);
    return new Capture(p, file);
  }

  /** Sends raw frames (Ethernet on a veth, bare IP on a TUN) out of `iface` in `ns`. */
  async inject(ns: string, iface: string, frames: Buffer[]): Promise<number> {
    const script = join(this.dir, 'inject.py');
    if (!existsSync(script)) writeFileSync(script, INJECT_PY);
    const r = await this.exec(ns, [python3(), script, iface, ...frames.map((f) => f.toString('hex'))]);
    return Number(r.stdout.trim());
  }

  /** The host's global SLAAC address (non-tentative), or null. */
  async hostAddress(): Promise<string | null> {
    const r = await this.exec(
      this.names.host,
      ['ip', '-6', '-j', 'addr', 'show', 'dev', IFACE.host, 'scope', 'global'],
      {
        allowFail: true,
      },
    );
    if (r.code !== 0) return null;
    for (const link of JSON.parse(r.stdout) as {
      addr_info: { local?: string; tentative?: boolean; dadfailed?: boolean }[];
    }[]) {
      for (const a of link.addr_info) {
        if (a.local && !a.tentative && !a.dadfailed && a.local.startsWith(LAN_PREFIX_TEXT)) return a.local;
      }
    }
    return null;
  }

  /** A MAC address of `iface` in `ns`. */
  async mac(ns: string, iface: string): Promise<string> {
    const r = await this.exec(ns, ['cat', `/sys/class/net/${iface}/address`]);
    return r.stdout.trim();
  }

  // ---- building ----------------------------------------------------------------------------

  private async build(): Promise<void> {
    const n = this.names;
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    this.log(`lab: building ${n.host}, ${n.router}, ${n.internet}${n.neighbour ? `, ${n.neighbour}` : ''}`);
    for (const ns of [n.host, n.router, n.internet, n.neighbour]) {
      if (ns === null) continue;
      await run(['ip', 'netns', 'add', ns]);
      this.namespaces.push(ns);
      this.saveState();
      await this.exec(ns, ['ip', 'link', 'set', 'lo', 'up']);
    }
    // The host finds its DNS server through resolv.conf, as a user's machine would (ip netns exec
    // bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf).
    this.netnsEtc = join('/etc/netns', n.host);
    mkdirSync(this.netnsEtc, { recursive: true });
    writeFileSync(join(this.netnsEtc, 'resolv.conf'), `nameserver ${ADDR.routerLan}\n`);
    this.saveState();

    // Sysctls before the links exist, so new links inherit them.
    await this.sysctl(n.router, {
      'net.ipv6.conf.all.forwarding': 1,
      'net.ipv6.conf.default.forwarding': 1,
      'net.ipv4.ip_forward': 1,
      'net.ipv6.conf.all.accept_dad': 0,
      'net.ipv6.conf.default.accept_dad': 0,
    });
    await this.sysctl(n.internet, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
    await this.sysctl(n.host, { 'net.ipv6.conf.all.forwarding': 0 });

    // Router LAN: a bridge, so a neighbour can share the host's link.
    await this.exec(n.router, ['ip', 'link', 'add', IFACE.routerBridge, 'type', 'bridge', 'mcast_snooping', '0']);
    await this.exec(n.router, ['ip', 'addr', 'add', `${ADDR.routerLan}/64`, 'dev', IFACE.routerBridge, 'nodad']);
    await this.exec(n.router, ['ip', 'link', 'set', IFACE.routerBridge, 'up']);
    await this.veth(n.host, IFACE.host, n.router, IFACE.routerToHost);
    await this.exec(n.router, ['ip', 'link', 'set', IFACE.routerToHost, 'master', IFACE.routerBridge, 'up']);
    await this.sysctl(n.host, {
      [`net.ipv6.conf.${IFACE.host}.accept_ra`]: 2,
      [`net.ipv6.conf.${IFACE.host}.autoconf`]: 1,
      [`net.ipv6.conf.${IFACE.host}.forwarding`]: 0,
    });
    await this.exec(n.host, ['ip', 'link', 'set', IFACE.host, 'up']);
    if (n.neighbour) {
      await this.veth(n.neighbour, IFACE.neighbour, n.router, IFACE.routerToNeighbour);
      await this.exec(n.router, ['ip', 'link', 'set', IFACE.routerToNeighbour, 'master', IFACE.routerBridge, 'up']);
      await this.sysctl(n.neighbour, { [`net.ipv6.conf.${IFACE.neighbour}.accept_ra`]: 0 });
      await this.exec(n.neighbour, ['ip', 'link', 'set', IFACE.neighbour, 'up']);
    }

    // Router WAN and the IPv4-only internet.
    await this.veth(n.router, IFACE.routerWan, n.internet, IFACE.internet);
    await this.exec(n.router, ['ip', 'addr', 'add', `${ADDR.routerWan}/${ADDR.wanLen}`, 'dev', IFACE.routerWan]);
    await this.exec(n.router, ['ip', 'link', 'set', IFACE.routerWan, 'up']);
    await this.exec(n.internet, ['ip', 'addr', 'add', `${ADDR.server}/${ADDR.wanLen}`, 'dev', IFACE.internet]);
    await this.exec(n.internet, ['ip', 'link', 'set', IFACE.internet, 'up']);
    await this.exec(n.internet, ['ip', 'route', 'add', 'default', 'via', ADDR.routerWan]);
    await this.exec(n.router, ['nft', '-f', '-'], { input: NFT_RULES });

    await this.startTayga();
    await this.startUnbound();
    if (this.opts.servers !== false) await this.startServers();
    await this.startRa();
    const addr = await waitFor(() => this.hostAddress(), 15_000, 200);
    if (!addr) {
      const ra = this.findProc(this.raDaemon)?.output().trim().split('\n').slice(-5).join('\n') ?? '(not running)';
      throw new LabError(
        `lab: the host got no SLAAC address in ${ADDR.lanPrefix}/64 within 15 s; ${this.raDaemon} said:\n${ra}`,
      );
    }
    this.log(`lab: host ${n.host} has ${addr} by SLAAC`);
  }

  private async veth(nsA: string, a: string, nsB: string, b: string): Promise<void> {
    await run(['ip', 'link', 'add', 'name', a, 'netns', nsA, 'type', 'veth', 'peer', 'name', b, 'netns', nsB]);
  }

  async sysctl(ns: string, kv: Record<string, number | string>): Promise<void> {
    const args = Object.entries(kv).map(([k, v]) => `${k}=${v}`);
    await this.exec(ns, ['sysctl', '-q', '-w', ...args]);
  }

  // ---- the router's daemons ----------------------------------------------------------------

  /** Starts TAYGA with the current prefix, brings its TUN up and routes both sides into it. */
  async startTayga(): Promise<void> {
    const r = this.names.router;
    await this.stopProc('tayga');
    const data = join(this.dir, 'tayga');
    rmSync(data, { recursive: true, force: true });
    mkdirSync(data, { recursive: true });
    const conf = join(this.dir, 'tayga.conf');
    writeFileSync(conf, taygaConf(data, this.pref64));
    const p = this.spawn('tayga', r, ['tayga', '-c', conf, '--nodetach']);
    const up = await waitFor(
      async () =>
        !p.running || (await this.exec(r, ['ip', 'link', 'show', IFACE.routerNat64], { allowFail: true })).code === 0,
      5000,
      50,
    );
    if (!up || !p.running) throw new LabError(`lab: tayga did not start: ${p.output().trim()}`);
    const mtu = String(this.opts.nat64Mtu ?? 1500);
    await this.exec(r, ['ip', 'link', 'set', IFACE.routerNat64, 'mtu', mtu, 'up']);
    await this.exec(r, ['ip', 'route', 'replace', this.pref64, 'dev', IFACE.routerNat64]);
    await this.exec(r, ['ip', 'route', 'replace', ADDR.taygaPool, 'dev', IFACE.routerNat64]);
    this.log(
      `lab: router: TAYGA translates ${this.pref64} <-> pool ${ADDR.taygaPool}, masqueraded to ${ADDR.routerWan}`,
    );
  }

  /** Starts unbound as DNS64 on the router's LAN address and waits until it answers. */
  async startUnbound(): Promise<void> {
    await this.stopProc('unbound');
    const dir = join(this.dir, 'unbound');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'ipv4only.arpa.zone'), IPV4ONLY_ZONE);
    writeFileSync(join(dir, 'lab.zone'), LAB_ZONE);
    const conf = join(dir, 'unbound.conf');
    writeFileSync(conf, unboundConf(dir, this.pref64));
    const p = this.spawn('unbound', this.names.router, ['unbound', '-d', '-c', conf]);
    const ok = await waitFor(
      async () => !p.running || (await this.probe(this.names.router, ['dns', 'ipv4only.arpa', ADDR.routerLan])).ok,
      10_000,
      200,
    );
    if (!ok || !p.running) throw new LabError(`lab: unbound did not answer: ${p.output().trim()}`);
    this.log(`lab: router: unbound DNS64 on [${ADDR.routerLan}]:53 with ${this.pref64}`);
  }

  /** Starts the HTTP server (with a random /blob.bin) and the UDP echo server on the IPv4 server. */
  async startServers(): Promise<void> {
    const i = this.names.internet;
    const www = join(this.dir, 'www');
    mkdirSync(www, { recursive: true });
    const blob = randomBytes(this.opts.blobBytes ?? 4 << 20);
    writeFileSync(join(www, 'blob.bin'), blob);
    writeFileSync(join(www, 'index.html'), 'clatd lab: hello over IPv4\n');
    this.blobSha256 = createHash('sha256').update(blob).digest('hex');
    this.blobBytes = blob.length;
    const http = this.spawn('http', i, [
      python3(),
      '-u',
      '-m',
      'http.server',
      '--bind',
      ADDR.server,
      '--directory',
      www,
      String(ADDR.httpPort),
    ]);
    const udp = this.spawn('udp-echo', i, [process.execPath, UDP_ECHO_PATH, ADDR.server, String(ADDR.udpEchoPort)]);
    const ok = await waitFor(
      () =>
        !http.running || !udp.running || (http.output().includes('Serving HTTP') && udp.output().includes('listening')),
      10_000,
      50,
    );
    if (!ok || !http.running || !udp.running) {
      throw new LabError(`lab: servers did not start: ${http.output().trim()} ${udp.output().trim()}`);
    }
    this.log(`lab: internet: HTTP on ${ADDR.server}:${ADDR.httpPort}, UDP echo on ${ADDR.server}:${ADDR.udpEchoPort}`);
  }

  private raConfig(): RaConfig {
    return {
      iface: IFACE.routerBridge,
      prefix: ADDR.lanPrefix,
      prefixLen: ADDR.lanPrefixLen,
      rdnss: ADDR.routerLan,
      pref64: this.raPref64 ? this.pref64 : null,
      intervalS: this.opts.raIntervalS ?? 3,
      routerLifetimeS: 1800,
      pref64LifetimeS: 1800,
    };
  }

  /** Whether this radvd knows `nat64prefix` (radvd ≥ 2.20); probed once with `radvd --configtest`. */
  async radvdSupportsPref64(): Promise<boolean> {
    if (this.radvdPref64 === null) {
      const f = join(this.dir, 'radvd-probe.conf');
      writeFileSync(f, radvdConf({ ...this.raConfig(), pref64: ADDR.pref64 }));
      const r = await run(['radvd', '--configtest', '-C', f, '-m', 'stderr'], { allowFail: true });
      this.radvdPref64 = r.code === 0;
    }
    return this.radvdPref64;
  }

  /**
   * Starts the RA daemon: radvd, unless the RA must carry PREF64 and this radvd cannot, in which
   * case the lab's own sender (same RA plus PREF64).
   */
  async startRa(): Promise<void> {
    await this.stopProc('radvd');
    await this.stopProc('ra-sender');
    const c = this.raConfig();
    this.raDaemon = c.pref64 !== null && !(await this.radvdSupportsPref64()) ? 'ra-sender' : 'radvd';
    if (this.raDaemon === 'radvd') {
      const conf = join(this.dir, 'radvd.conf');
      writeFileSync(conf, radvdConf(c));
      const p = this.spawn('radvd', this.names.router, [
        'radvd',
        '-n',
        '-C',
        conf,
        '-m',
        'stderr',
        '-p',
        join(this.dir, 'radvd.pid'),
      ]);
      await sleep(300);
      if (!p.running) throw new LabError(`lab: radvd exited: ${p.output().trim()}`);
    } else {
      const conf = join(this.dir, 'ra.json');
      writeFileSync(conf, JSON.stringify(c));
      const script = join(this.dir, 'ra-sender.py');
      writeFileSync(script, RA_SENDER_PY);
      const p = this.spawn('ra-sender', this.names.router, [python3(), '-u', script, conf]);
      await sleep(300);
      if (!p.running) throw new LabError(`lab: RA sender exited: ${p.output().trim()}`);
    }
    this.log(
      `lab: router: ${this.raDaemon} advertises ${ADDR.lanPrefix}/64, RDNSS ${ADDR.routerLan}` +
        (c.pref64 ? `, PREF64 ${c.pref64}` : ', no PREF64'),
    );
  }

  /**
   * Moves the network to another NAT64 prefix while it runs: the RA daemon is reconfigured in
   * place (new config, SIGHUP) when it stays the same daemon, and TAYGA and unbound restart on it.
   */
  async setPref64(prefix: string, advertise = this.raPref64): Promise<void> {
    this.pref64 = prefix;
    const wasDaemon = this.raDaemon;
    this.raPref64 = advertise;
    await this.startTayga();
    await this.startUnbound();
    const c = this.raConfig();
    const wants: RaDaemon = c.pref64 !== null && !(await this.radvdSupportsPref64()) ? 'ra-sender' : 'radvd';
    const proc = this.findProc(wasDaemon);
    if (wants === wasDaemon && proc) {
      if (wants === 'radvd') writeFileSync(join(this.dir, 'radvd.conf'), radvdConf(c));
      else writeFileSync(join(this.dir, 'ra.json'), JSON.stringify(c));
      proc.child.kill('SIGHUP');
      this.log(`lab: router: ${wants} reloaded (SIGHUP), PREF64 ${c.pref64 ?? 'none'}`);
    } else {
      await this.startRa();
    }
  }

  /** The running process started under `name`, if any. */
  findProc(name: string): Proc | undefined {
    for (const p of this.procs.values()) if (p.name === name && p.running) return p;
    return undefined;
  }

  async stopProc(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    for (const p of [...this.procs.values()]) if (p.name === name) await p.stop(signal);
  }

  // ---- clatd ---------------------------------------------------------------------------------

  /**
   * Starts `clatd run ARGS` in the host namespace as a user would run it, but in a private mount
   * namespace whose /run/clatd is this lab's own folder (shared by its successive clatd runs, as
   * /run is on a real host), so its default control socket cannot meet another lab's.
   */
  startClatd(args: string[] = []): Proc {
    const run = join(this.dir, 'run-clatd');
    mkdirSync(run, { recursive: true });
    return this.spawn('clatd', this.names.host, [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mkdir -p /run/clatd && mount --bind "$0" /run/clatd && exec "$@"',
      run,
      process.execPath,
      ...DAEMON_NODE_FLAGS,
      CLI_PATH,
      'run',
      ...args,
    ]);
  }

  /** Runs `clatd ARGS` (e.g. status --json) in the network and mount namespaces of `clatd`. */
  clatdCli(clatd: Proc, args: string[], opts?: RunOptions): Promise<RunResult> {
    return run(['nsenter', '-t', String(clatd.pid), '-m', '-n', process.execPath, CLI_PATH, ...args], {
      allowFail: true,
      ...opts,
    });
  }

  /**
   * What is in the host namespace beyond what the lab made (lo and the uplink with its IPv6):
   * links, IPv4 addresses, IPv4 routes in any table, IPv6 routes not made by the kernel or the RA,
   * and nftables tables. Empty after a clean clatd exit.
   */
  async hostLeftovers(): Promise<string[]> {
    const h = this.names.host;
    const out: string[] = [];
    const lines = async (argv: string[]) =>
      (await this.exec(h, argv, { allowFail: true })).stdout.split('\n').filter((l) => l.trim() !== '');
    for (const l of await lines(['ip', '-o', 'link', 'show'])) {
      const name = /^\d+: ([^:@]+)/.exec(l)?.[1];
      if (name && name !== 'lo' && name !== IFACE.host) out.push(`link ${name}`);
    }
    for (const l of await lines(['ip', '-4', '-o', 'addr', 'show'])) {
      if (!/ lo /.test(l)) out.push(`address ${l.trim()}`);
    }
    for (const l of await lines(['ip', '-4', 'route', 'show', 'table', 'all'])) {
      if (!/\bdev lo\b/.test(l)) out.push(`route ${l.trim()}`);
    }
    for (const l of await lines(['ip', '-6', 'route', 'show', 'table', 'all'])) {
      if (/\bdev lo\b|proto kernel|proto ra|^multicast|^local |^anycast fe80|^fe80/.test(l)) continue;
      out.push(`route6 ${l.trim()}`);
    }
    for (const l of await lines(['ip', '-6', '-o', 'addr', 'show', 'dev', IFACE.host])) {
      if (!/ fe80:| 2001:db8:1:.*(dynamic|mngtmpaddr)/.test(l)) out.push(`address6 ${l.trim()}`);
    }
    for (const l of await lines(['nft', 'list', 'tables'])) out.push(`nft ${l.trim()}`);
    return out;
  }

  /**
   * Starts `clatd run ARGS` and waits until IPv4 works the way a user sees it: an IPv4 default
   * route through `v4-<uplink>`. `up` is false when clatd exited first or `timeoutMs` passed; `why`
   * then says which, with the end of clatd's output.
   */
  async startClatdAndWait(args: string[] = [], timeoutMs = 20_000): Promise<{ proc: Proc; up: boolean; why: string }> {
    const proc = this.startClatd(args);
    const up = await waitFor(
      async () => {
        if (!proc.running) return 'exited';
        const r = await this.exec(this.names.host, ['ip', '-4', 'route', 'show', 'default'], { allowFail: true });
        return r.stdout.includes(`dev v4-${IFACE.host}`) ? 'up' : null;
      },
      timeoutMs,
      150,
    );
    if (up === 'up') {
      // The route comes with the TUN; translation starts a moment later (workers): wait for the
      // status state "running". A status that cannot be read is not waited on.
      await waitFor(
        async () => {
          const s = await this.clatdStatus(proc);
          return !proc.running || s === null || s.state === 'running';
        },
        5000,
        150,
      );
      return {
        proc,
        up: proc.running,
        why: proc.running
          ? ''
          : `clatd run exited right after start:\n${proc.output().trim().split('\n').slice(-15).join('\n')}`,
      };
    }
    await sleep(100);
    const tail = proc.output().trim().split('\n').slice(-15).join('\n');
    if (!proc.running) {
      const ex = await proc.exited;
      return {
        proc,
        up: false,
        why: `clatd run exited (${ex.signal ?? `code ${ex.code}`}) before IPv4 came up:\n${tail}`,
      };
    }
    return {
      proc,
      up: false,
      why: `clatd run gave no IPv4 default route via v4-${IFACE.host} within ${timeoutMs} ms:\n${tail}`,
    };
  }

  /** `clatd status --json` of a running clatd; null when it fails or does not print a status. */
  async clatdStatus(clatd: Proc): Promise<StatusSnapshot | null> {
    const r = await this.clatdCli(clatd, ['status', '--json'], { timeoutMs: 5000 });
    return r.code === 0 ? parseStatus(r.stdout) : null;
  }

  /** Changes the MTU of the PLAT's TUN while the lab runs (see {@link LabOptions.nat64Mtu}). */
  async setNat64Mtu(mtu: number): Promise<void> {
    await this.exec(this.names.router, ['ip', 'link', 'set', IFACE.routerNat64, 'mtu', String(mtu)]);
  }

  // ---- keeping and removing ------------------------------------------------------------------

  /** Lets this process exit while the lab stays up (for `clatd lab --shell`). */
  keep(): void {
    live.delete(this);
    this.kept = true;
    for (const p of this.procs.values()) p.child.unref();
    this.saveState();
  }

  private saveState(): void {
    if (!existsSync(this.dir)) return;
    const s: LabState = {
      tag: this.names.tag,
      ownerPid: process.pid,
      kept: this.kept,
      namespaces: [...this.namespaces],
      pids: [...this.procs.values()].filter((p) => p.running).map((p) => p.pid),
      netnsEtc: this.netnsEtc,
    };
    writeFileSync(join(this.dir, 'state.json'), JSON.stringify(s));
  }

  /** Stops every process the lab started and removes its namespaces and files. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await Promise.all([...this.procs.values()].map((p) => p.stop('SIGTERM', 1500)));
    this.destroySync();
  }

  /** The synchronous part of {@link destroy}, also used at process exit. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const p of this.procs.values()) {
      if (p.running) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {}
      }
    }
    removeLab({
      tag: this.names.tag,
      namespaces: this.namespaces,
      pids: [],
      netnsEtc: this.netnsEtc,
    });
  }
}

function removeLab(s: LabState): void {
  for (const pid of s.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (const ns of s.namespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore', env: CHILD_ENV });
  if (s.netnsEtc?.startsWith('/etc/netns/clatd-')) rmSync(s.netnsEtc, { recursive: true, force: true });
  rmSync(runDir(s.tag), { recursive: true, force: true });
}

/** Removes a lab kept by `clatd lab --shell`: kills its processes by PID, deletes its namespaces. */
export function destroyKeptLab(tag: string): boolean {
  const file = join(runDir(tag), 'state.json');
  if (!existsSync(file)) return false;
  const s = JSON.parse(readFileSync(file, 'utf8')) as LabState;
  // A PID is only killed when it still runs inside one of the lab's own namespaces (PIDs recycle).
  s.pids = s.pids.filter((pid) => {
    const r = spawnSync('ip', ['netns', 'identify', String(pid)], { encoding: 'utf8', env: CHILD_ENV });
    return r.status === 0 && s.namespaces.includes(r.stdout.trim());
  });
  removeLab(s);
  return true;
}

/** The tags of labs kept on this machine by `--shell` (with `all`, also those of live processes). */
export function keptLabs(all = false): string[] {
  return readdirSync(tmpdir())
    .filter((f) => f.startsWith('clatd-lab-') && existsSync(join(tmpdir(), f, 'state.json')))
    .map((f) => f.slice('clatd-lab-'.length))
    .filter((tag) => {
      if (all) return true;
      try {
        return (JSON.parse(readFileSync(join(runDir(tag), 'state.json'), 'utf8')) as LabState).kept === true;
      } catch {
        return false;
      }
    });
}

function python3(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : (which('python3') ?? 'python3');
}
