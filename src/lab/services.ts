/**
 * The daemons that make the lab a network: on the router TAYGA (NAT64), unbound (DNS64), the RA
 * daemon (radvd, or the lab's own sender when radvd cannot send PREF64) and in the DHCPv6 shapes
 * dnsmasq (dhcp.ts); on the IPv4 internet an HTTP server and a UDP echo server. Each is started,
 * checked until it works, and restarted or reloaded when the NAT64 prefix moves.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IPV4ONLY_ZONE, LAB_ZONE, type RaConfig, radvdConf, taygaConf, unboundConf } from './configs.js';
import type { LabContext } from './context.js';
import { python3 } from './deps.js';
import { startDhcpServer } from './dhcp.js';
import { LabError, run, sleep, waitFor } from './exec.js';
import { RA_SENDER_PY } from './scripts.js';
import { ADDR, IFACE, type LabOptions, type UplinkShape, usesDhcpv6 } from './topology.js';

const UDP_ECHO_PATH = fileURLToPath(new URL('./udp-echo.js', import.meta.url));

export type RaDaemon = 'radvd' | 'ra-sender';

export class RouterServices {
  /** The NAT64 prefix the PLAT and DNS64 use now. */
  pref64: string;
  /** Whether the RA carries PREF64 now. */
  raPref64: boolean;
  /** Which daemon sends the RAs now: radvd, or the lab's sender when radvd cannot send PREF64. */
  raDaemon: RaDaemon = 'radvd';
  /** SHA-256 (hex) and size of /blob.bin on the HTTP server. */
  blobSha256 = '';
  blobBytes = 0;

  private radvdPref64: boolean | null = null;

  constructor(
    private readonly lab: LabContext,
    private readonly opts: LabOptions,
  ) {
    this.pref64 = opts.pref64 ?? ADDR.pref64;
    this.raPref64 = opts.raPref64 !== false;
  }

  /** How the host's uplink gets IPv6. */
  get uplink(): UplinkShape {
    return this.opts.uplink ?? 'slaac';
  }

  /**
   * Starts every service, in the order each needs the others: NAT64, DNS64, servers, the DHCPv6
   * server, RAs last.
   */
  async startAll(): Promise<void> {
    await this.startTayga();
    await this.startUnbound();
    if (this.opts.servers !== false) await this.startServers();
    if (usesDhcpv6(this.uplink)) await startDhcpServer(this.lab, this.uplink);
    await this.startRa();
  }

  /** Starts TAYGA with the current prefix, brings its TUN up and routes both sides into it. */
  async startTayga(): Promise<void> {
    const { lab } = this;
    const r = lab.names.router;
    await lab.stopProc('tayga');
    const data = join(lab.dir, 'tayga');
    rmSync(data, { recursive: true, force: true });
    mkdirSync(data, { recursive: true });
    const conf = join(lab.dir, 'tayga.conf');
    writeFileSync(conf, taygaConf(data, this.pref64));
    const p = lab.spawn('tayga', r, ['tayga', '-c', conf, '--nodetach']);
    const up = await waitFor(
      async () =>
        !p.running || (await lab.exec(r, ['ip', 'link', 'show', IFACE.routerNat64], { allowFail: true })).code === 0,
      5000,
      50,
    );
    if (!up || !p.running) throw new LabError(`lab: tayga did not start: ${p.output().trim()}`);
    const mtu = String(this.opts.nat64Mtu ?? 1500);
    await lab.exec(r, ['ip', 'link', 'set', IFACE.routerNat64, 'mtu', mtu, 'up']);
    await lab.exec(r, ['ip', 'route', 'replace', this.pref64, 'dev', IFACE.routerNat64]);
    await lab.exec(r, ['ip', 'route', 'replace', ADDR.taygaPool, 'dev', IFACE.routerNat64]);
    lab.log(
      `lab: router: TAYGA translates ${this.pref64} <-> pool ${ADDR.taygaPool}, masqueraded to ${ADDR.routerWan}`,
    );
  }

  /** Changes the MTU of the PLAT's TUN while the lab runs (see {@link LabOptions.nat64Mtu}). */
  async setNat64Mtu(mtu: number): Promise<void> {
    await this.lab.exec(this.lab.names.router, ['ip', 'link', 'set', IFACE.routerNat64, 'mtu', String(mtu)]);
  }

  /** Starts unbound as DNS64 on the router's LAN address and waits until it answers. */
  async startUnbound(): Promise<void> {
    const { lab } = this;
    await lab.stopProc('unbound');
    const dir = join(lab.dir, 'unbound');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'ipv4only.arpa.zone'), IPV4ONLY_ZONE);
    writeFileSync(join(dir, 'lab.zone'), LAB_ZONE);
    const conf = join(dir, 'unbound.conf');
    writeFileSync(conf, unboundConf(dir, this.pref64));
    const p = lab.spawn('unbound', lab.names.router, ['unbound', '-d', '-c', conf]);
    const ok = await waitFor(
      async () => !p.running || (await lab.probe(lab.names.router, ['dns', 'ipv4only.arpa', ADDR.routerLan])).ok,
      10_000,
      200,
    );
    if (!ok || !p.running) throw new LabError(`lab: unbound did not answer: ${p.output().trim()}`);
    lab.log(`lab: router: unbound DNS64 on [${ADDR.routerLan}]:53 with ${this.pref64}`);
  }

  /** Starts the HTTP server (with a random /blob.bin) and the UDP echo server on the IPv4 server. */
  async startServers(): Promise<void> {
    const { lab } = this;
    const i = lab.names.internet;
    const www = join(lab.dir, 'www');
    mkdirSync(www, { recursive: true });
    const blob = randomBytes(this.opts.blobBytes ?? 4 << 20);
    writeFileSync(join(www, 'blob.bin'), blob);
    writeFileSync(join(www, 'index.html'), 'clatd lab: hello over IPv4\n');
    this.blobSha256 = createHash('sha256').update(blob).digest('hex');
    this.blobBytes = blob.length;
    const http = lab.spawn('http', i, [
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
    const udp = lab.spawn('udp-echo', i, [process.execPath, UDP_ECHO_PATH, ADDR.server, String(ADDR.udpEchoPort)]);
    const ok = await waitFor(
      () =>
        !http.running || !udp.running || (http.output().includes('Serving HTTP') && udp.output().includes('listening')),
      10_000,
      50,
    );
    if (!ok || !http.running || !udp.running) {
      throw new LabError(`lab: servers did not start: ${http.output().trim()} ${udp.output().trim()}`);
    }
    lab.log(`lab: internet: HTTP on ${ADDR.server}:${ADDR.httpPort}, UDP echo on ${ADDR.server}:${ADDR.udpEchoPort}`);
  }

  private raConfig(): RaConfig {
    return {
      iface: IFACE.routerBridge,
      prefix: ADDR.lanPrefix,
      prefixLen: ADDR.lanPrefixLen,
      managed: usesDhcpv6(this.uplink),
      autonomous: !usesDhcpv6(this.uplink),
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
      const f = join(this.lab.dir, 'radvd-probe.conf');
      writeFileSync(f, radvdConf({ ...this.raConfig(), pref64: ADDR.pref64 }));
      const r = await run(['radvd', '--configtest', '-C', f, '-m', 'stderr'], { allowFail: true });
      this.radvdPref64 = r.code === 0;
    }
    return this.radvdPref64;
  }

  /** The daemon that can send `c`: radvd, unless it must carry PREF64 and this radvd cannot. */
  private async raDaemonFor(c: RaConfig): Promise<RaDaemon> {
    return c.pref64 !== null && !(await this.radvdSupportsPref64()) ? 'ra-sender' : 'radvd';
  }

  /**
   * Starts the RA daemon: radvd, unless the RA must carry PREF64 and this radvd cannot, in which
   * case the lab's own sender (same RA plus PREF64).
   */
  async startRa(): Promise<void> {
    const { lab } = this;
    await lab.stopProc('radvd');
    await lab.stopProc('ra-sender');
    const c = this.raConfig();
    this.raDaemon = await this.raDaemonFor(c);
    if (this.raDaemon === 'radvd') {
      const conf = join(lab.dir, 'radvd.conf');
      writeFileSync(conf, radvdConf(c));
      const p = lab.spawn('radvd', lab.names.router, [
        'radvd',
        '-n',
        '-C',
        conf,
        '-m',
        'stderr',
        '-p',
        join(lab.dir, 'radvd.pid'),
      ]);
      await sleep(300);
      if (!p.running) throw new LabError(`lab: radvd exited: ${p.output().trim()}`);
    } else {
      const conf = join(lab.dir, 'ra.json');
      writeFileSync(conf, JSON.stringify(c));
      const script = join(lab.dir, 'ra-sender.py');
      writeFileSync(script, RA_SENDER_PY);
      const p = lab.spawn('ra-sender', lab.names.router, [python3(), '-u', script, conf]);
      await sleep(300);
      if (!p.running) throw new LabError(`lab: RA sender exited: ${p.output().trim()}`);
    }
    lab.log(
      `lab: router: ${this.raDaemon} advertises ${ADDR.lanPrefix}/64 ${c.autonomous ? '(SLAAC)' : 'on-link, not autonomous, M flag (DHCPv6)'}, RDNSS ${ADDR.routerLan}` +
        (c.pref64 ? `, PREF64 ${c.pref64}` : ', no PREF64'),
    );
  }

  /**
   * Moves the network to another NAT64 prefix while it runs: the RA daemon is reconfigured in
   * place (new config, SIGHUP) when it stays the same daemon, and TAYGA and unbound restart on it.
   */
  async setPref64(prefix: string, advertise = this.raPref64): Promise<void> {
    const { lab } = this;
    this.pref64 = prefix;
    const wasDaemon = this.raDaemon;
    this.raPref64 = advertise;
    await this.startTayga();
    await this.startUnbound();
    const c = this.raConfig();
    const wants = await this.raDaemonFor(c);
    const proc = lab.findProc(wasDaemon);
    if (wants === wasDaemon && proc) {
      if (wants === 'radvd') writeFileSync(join(lab.dir, 'radvd.conf'), radvdConf(c));
      else writeFileSync(join(lab.dir, 'ra.json'), JSON.stringify(c));
      proc.child.kill('SIGHUP');
      lab.log(`lab: router: ${wants} reloaded (SIGHUP), PREF64 ${c.pref64 ?? 'none'}`);
    } else {
      await this.startRa();
    }
  }
}
