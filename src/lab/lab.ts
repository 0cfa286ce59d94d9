/**
 * The lab: the network of topology.ts built from real parts, with what tests and `clatd lab` need
 * (names, addresses, exec helpers, daemons, captures, packet injection), always removed in the end:
 * `destroy()` (idempotent), or at process exit and on SIGINT/SIGTERM/SIGHUP. Everything it starts
 * it kills by PID; everything it creates carries the run's tag.
 *
 * `Lab` runs the lab's processes and hands the rest to one part per job: build.ts builds the
 * network, services.ts runs the router's and the internet's daemons, clatd.ts drives clatd, and
 * state.ts keeps the saved state that removal works from.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatusSnapshot } from '../daemon/status.js';
import { buildNetwork, hostAddress, hostAddresses, sysctl } from './build.js';
import { ClatdDriver, type ClatdStart } from './clatd.js';
import { CLOUD_TABLE } from './configs.js';
import type { LabContext } from './context.js';
import { ensureDeps, python3 } from './deps.js';
import { type DhcpLease, readLeases } from './dhcp.js';
import { inNs, LabError, type Proc, type RunOptions, type RunResult, run, sleep, start, waitFor } from './exec.js';
import { buildLan, LAN, lanNamespace } from './lan.js';
import { type Frame, parsePcap } from './pcap.js';
import { INJECT_PY } from './scripts.js';
import { type RaDaemon, RouterServices } from './services.js';
import { forgetAtExit, removeAtExit, runDir, StateFile, sweepOrphans } from './state.js';
import { ADDR, freshTag, IFACE, type LabNames, type LabOptions, labNames, type UplinkShape } from './topology.js';

const PROBE_PATH = fileURLToPath(new URL('./probe.js', import.meta.url));

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

export class Lab implements LabContext {
  readonly names: LabNames;
  readonly dir: string;
  readonly addr = ADDR;
  readonly iface = IFACE;
  readonly log: (s: string) => void;
  /** Router mode's LAN (lan.ts): its namespace and the client's DHCPv4 address; null without `lan`. */
  lan: { ns: string; client: string; hostIface: string; gateway: string; subnet: string; uploadPort: number } | null =
    null;

  private readonly services: RouterServices;
  private readonly clatd: ClatdDriver;
  private readonly state: StateFile;
  private readonly procs = new Map<string, Proc>();
  private destroyed = false;
  private seq = 0;

  private constructor(opts: LabOptions) {
    this.names = labNames(opts.tag ?? freshTag(), opts.neighbour === true);
    this.dir = runDir(this.names.tag);
    this.log = opts.log ?? (() => {});
    this.state = new StateFile(this.names.tag, () =>
      [...this.procs.values()].filter((p) => p.running).map((p) => p.pid),
    );
    this.services = new RouterServices(this, opts);
    this.clatd = new ClatdDriver(this);
  }

  /** Builds the whole network and starts its daemons; on any failure removes what it made. */
  static async create(opts: LabOptions = {}): Promise<Lab> {
    if (process.getuid?.() !== 0) throw new LabError('lab: needs root (network namespaces, raw sockets)');
    await ensureDeps(opts.log);
    sweepOrphans(opts.log);
    const lab = new Lab(opts);
    removeAtExit(lab, opts.handleSignals !== false);
    try {
      await buildNetwork(lab, lab.state, lab.services);
      if (opts.lan) {
        const client = await buildLan(lab, lab.state);
        lab.lan = { ns: lanNamespace(lab.names.tag), client, ...LAN };
      }
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
    this.state.save();
    return p;
  }

  /** The running process started under `name`, if any. */
  findProc(name: string): Proc | undefined {
    for (const p of this.procs.values()) if (p.name === name && p.running) return p;
    return undefined;
  }

  /** Stops every process started under `name`. */
  async stopProc(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    for (const p of [...this.procs.values()]) if (p.name === name) await p.stop(signal);
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

  // ---- the network (build.ts) ----------------------------------------------------------------

  /** The host's global address in the lab's /64 (non-tentative; by SLAAC or DHCPv6), or null. */
  hostAddress(): Promise<string | null> {
    return hostAddress(this);
  }

  /** Every global address of the host in the lab's /64 (non-tentative). */
  hostAddresses(): Promise<string[]> {
    return hostAddresses(this);
  }

  /** How the host's uplink gets IPv6. */
  get uplink(): UplinkShape {
    return this.services.uplink;
  }

  /** The DHCPv6 server's leases (dhcpv6 and cloud shapes; empty otherwise). */
  leases(): DhcpLease[] {
    return readLeases(this);
  }

  /**
   * Cloud shape: packets the router refused to forward to an address of the /64 it did not lease
   * (its nftables counter); null in the other shapes.
   */
  async refusedByRouter(): Promise<number | null> {
    if (this.uplink !== 'cloud') return null;
    const r = await this.exec(this.names.router, ['nft', 'list', 'chain', 'ip6', CLOUD_TABLE, 'deliver'], {
      allowFail: true,
    });
    const n = /counter packets (\d+)/.exec(r.stdout)?.[1];
    return n === undefined ? null : Number(n);
  }

  /**
   * The flags that tell clatd what this uplink offers for it: the routed prefix (routed), the
   * second lease (cloud); none for the others. `clatd lab --clatd-flags` passes them.
   */
  clatdFlagsForUplink(): string[] {
    if (this.uplink === 'routed') return ['--v6-prefix', ADDR.routedPrefix];
    if (this.uplink === 'cloud') {
      const second = this.leases().find((l) => l.iaid === 2);
      if (!second) throw new LabError('lab: the host has no second DHCPv6 lease (IA_NA 2) to give clatd');
      return ['--v6', second.address];
    }
    return [];
  }

  /** A MAC address of `iface` in `ns`. */
  async mac(ns: string, iface: string): Promise<string> {
    const r = await this.exec(ns, ['cat', `/sys/class/net/${iface}/address`]);
    return r.stdout.trim();
  }

  /** Sets sysctls `kv` in namespace `ns`. */
  sysctl(ns: string, kv: Record<string, number | string>): Promise<void> {
    return sysctl(this, ns, kv);
  }

  // ---- the router's and the internet's daemons (services.ts) ---------------------------------

  /** The NAT64 prefix the PLAT and DNS64 use now. */
  get pref64(): string {
    return this.services.pref64;
  }

  /** Whether the RA carries PREF64 now. */
  get raPref64(): boolean {
    return this.services.raPref64;
  }

  /** Which daemon sends the RAs now: radvd, or the lab's sender when radvd cannot send PREF64. */
  get raDaemon(): RaDaemon {
    return this.services.raDaemon;
  }

  /** SHA-256 (hex) of /blob.bin on the HTTP server. */
  get blobSha256(): string {
    return this.services.blobSha256;
  }

  /** Size of /blob.bin on the HTTP server. */
  get blobBytes(): number {
    return this.services.blobBytes;
  }

  startTayga(): Promise<void> {
    return this.services.startTayga();
  }

  startUnbound(): Promise<void> {
    return this.services.startUnbound();
  }

  startServers(): Promise<void> {
    return this.services.startServers();
  }

  startRa(): Promise<void> {
    return this.services.startRa();
  }

  radvdSupportsPref64(): Promise<boolean> {
    return this.services.radvdSupportsPref64();
  }

  /** Moves the network to another NAT64 prefix while it runs (see {@link RouterServices.setPref64}). */
  setPref64(prefix: string, advertise?: boolean): Promise<void> {
    return this.services.setPref64(prefix, advertise);
  }

  /** Changes the MTU of the PLAT's TUN while the lab runs (see {@link LabOptions.nat64Mtu}). */
  setNat64Mtu(mtu: number): Promise<void> {
    return this.services.setNat64Mtu(mtu);
  }

  // ---- clatd (clatd.ts) ----------------------------------------------------------------------

  /** Starts `clatd run ARGS` in the host namespace (see {@link ClatdDriver.start}). */
  startClatd(args: string[] = []): Proc {
    return this.clatd.start(args);
  }

  /** Starts `clatd run ARGS` and waits until IPv4 works (see {@link ClatdDriver.startAndWait}). */
  startClatdAndWait(args: string[] = [], timeoutMs?: number): Promise<ClatdStart> {
    return this.clatd.startAndWait(args, timeoutMs);
  }

  /** Runs `clatd ARGS` (e.g. status --json) in the network and mount namespaces of `clatd`. */
  clatdCli(clatd: Proc, args: string[], opts?: RunOptions): Promise<RunResult> {
    return this.clatd.cli(clatd, args, opts);
  }

  /** `clatd status --json` of a running clatd; null when it fails. */
  clatdStatus(clatd: Proc): Promise<StatusSnapshot | null> {
    return this.clatd.status(clatd);
  }

  /** What clatd left in the host namespace (see {@link ClatdDriver.hostLeftovers}). */
  hostLeftovers(): Promise<string[]> {
    return this.clatd.hostLeftovers();
  }

  // ---- keeping and removing (state.ts) -------------------------------------------------------

  /** Lets this process exit while the lab stays up (for `clatd lab --shell`). */
  keep(): void {
    forgetAtExit(this);
    for (const p of this.procs.values()) p.child.unref();
    this.state.markKept();
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
    forgetAtExit(this);
    for (const p of this.procs.values()) {
      if (p.running) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {}
      }
    }
    this.state.removeAll();
  }
}
