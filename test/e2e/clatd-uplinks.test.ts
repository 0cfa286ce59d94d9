/**
 * clatd in each uplink shape of the lab (src/lab/topology.ts), built from real Debian packages:
 * `clatd run` with no flags brings IPv4 up (ping, HTTP, UDP to the IPv4-only server), and the way
 * it took for its IPv6 address (`uplinkMode` in `status --json`) is the one the shape calls for.
 *   slaac   anycast in the SLAAC /64 (mode 1).
 *   dhcpv6  the host's /128 really comes from the DHCPv6 server; clatd answers neighbor
 *           solicitations itself (mode 2): the router's neighbour entry is resolved by its NA.
 *   routed  with --v6-prefix: an address in the routed /64, no DAD probe on the link (mode 3).
 *   cloud   with --v6 and the second lease: the leased address (mode 4), taken off the uplink while
 *           clatd runs and put back after, also after a kill -9 and a new start; with no flags
 *           clatd draws an address in the /64 (mode 2) that the router never delivers, and once the
 *           health check sees nothing come back it moves to the host's own lease (mode 5): IPv4 works.
 * After each run, SIGTERM leaves nothing in the host (checked from outside). `clatd lab --uplink`
 * itself: bad input, and the cloud shape with --clatd-flags end to end.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { StatusSnapshot, UplinkModeStatus } from '../../src/daemon/status.js';
import {
  ADDR,
  type Capture,
  CHILD_ENV,
  CLI_PATH,
  duidLl,
  type Frame,
  type Lab,
  missingTools,
  type NdMessage,
  ndOfFrame,
  type Proc,
  raOfFrame,
  waitFor,
} from '../../src/lab/index.js';
import { NEED_ROOT } from '../helpers/netns.js';
import { IN_CI, labSuite, pingStats } from './helpers.js';

/** The way clatd took for its IPv6 address, as `status --json` reports it. */
function uplinkMode(s: StatusSnapshot | null): UplinkModeStatus | null {
  return s?.uplinkMode ?? null;
}

/** Starts `clatd run ARGS`; fails the test with clatd's own words when IPv4 does not come up. */
async function startClatd(lab: Lab, args: string[] = []): Promise<Proc> {
  const r = await lab.startClatdAndWait(args);
  if (!r.up) {
    await r.proc.stop('SIGTERM', 3000);
    assert.fail(`clatd run ${args.join(' ')} did not bring IPv4 up: ${r.why}`);
  }
  // The IPv4 route comes before DAD ends; translation starts with the state "running".
  const running = await waitFor(async () => (await lab.clatdStatus(r.proc))?.state === 'running', 15_000, 200);
  if (!running) {
    const s = await lab.clatdStatus(r.proc);
    await r.proc.stop('SIGTERM', 3000);
    assert.fail(`clatd run ${args.join(' ')} is not running after 15 s: state ${s?.state}, ${s?.reason}`);
  }
  return r.proc;
}

/** Ping, an HTTP download and a UDP echo to the IPv4-only server; what failed, in words. */
async function ipv4Failures(lab: Lab): Promise<string[]> {
  const h = lab.names.host;
  const [ping, http, udp] = await Promise.all([
    lab.exec(h, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ADDR.server], { allowFail: true }),
    lab.probe(h, ['http', `http://${ADDR.server}/blob.bin`]),
    lab.probe(h, ['udp', ADDR.server, String(ADDR.udpEchoPort), '1200']),
  ]);
  const out: string[] = [];
  if (pingStats(ping.stdout).received < 2) out.push(`ping: ${ping.stdout.trim().split('\n').slice(-2).join(' ')}`);
  if (http.sha256 !== lab.blobSha256) out.push(`HTTP: ${JSON.stringify(http)}`);
  if (udp.same !== true) out.push(`UDP echo: ${JSON.stringify(udp)}`);
  return out;
}

/** Stops clatd with SIGTERM and checks from outside that it left nothing in the host. */
async function stopAndCheck(lab: Lab, clatd: Proc): Promise<void> {
  await clatd.stop('SIGTERM', 5000);
  assert.deepEqual(await lab.hostLeftovers(), [], 'clatd left this in the host after SIGTERM');
}

/** Neighbor Solicitations and Advertisements in `frames` about `target`. */
function ndAbout(frames: Frame[], target: string): NdMessage[] {
  return frames.map((f) => ndOfFrame(f.data)).filter((m): m is NdMessage => m !== null && m.target === target);
}

async function ndCapture(lab: Lab): Promise<Capture> {
  return lab.capture(lab.names.router, lab.iface.routerBridge, 'icmp6 and (ip6[40] == 135 or ip6[40] == 136)');
}

const BLOB = 256 * 1024;

function readIfAny(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The machine's resolv.conf before any lab of this file ran (a DHCP client hook would rewrite it). */
const RESOLV_CONF_AT_START = readIfAny('/etc/resolv.conf');

describe('uplink slaac: the default lab', () => {
  const suite = labSuite({ uplink: 'slaac', blobBytes: BLOB });

  test('clatd run with no flags: IPv4 works, anycast in the SLAAC /64 (mode 1)', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const clatd = await startClatd(lab);
    try {
      assert.deepEqual(await ipv4Failures(lab), []);
      const m = uplinkMode(await lab.clatdStatus(clatd));
      assert.equal(m?.mode, 1, JSON.stringify(m));
      assert.equal(m?.announce, 'anycast');
    } finally {
      await stopAndCheck(lab, clatd);
    }
  });
});

describe('uplink dhcpv6: M flag, no SLAAC, a /128 from dnsmasq to dhcpcd', () => {
  const suite = labSuite({ uplink: 'dhcpv6', blobBytes: BLOB });

  test('the RA has M=1 and the /64 on-link but not autonomous; the host has only its DHCPv6 lease', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const h = lab.names.host;
    const cap = await lab.capture(h, lab.iface.host, 'icmp6 and ip6[40] == 134');
    try {
      await lab.exec(h, ['rdisc6', '-1', '-r', '1', '-w', '1000', lab.iface.host], { allowFail: true });
      const ra = await waitFor(
        () =>
          cap
            .frames()
            .map((f) => raOfFrame(f.data))
            .find((r) => r !== null),
        8000,
        100,
      );
      assert.ok(ra, 'no RA reached the host');
      assert.equal(ra.ip.payload[5] & 0x80, 0x80, 'M flag not set');
      const pio = ra.options.find((o) => o.type === 3);
      assert.ok(pio, 'no prefix information option');
      assert.equal(pio.body[1] & 0xc0, 0x80, 'the prefix must be on-link (L=1) and not autonomous (A=0)');
    } finally {
      await cap.stop();
    }
    const leases = lab.leases();
    const mac = await lab.mac(h, lab.iface.host);
    assert.equal(leases.length, 1, `dnsmasq's leases: ${JSON.stringify(leases)}`);
    assert.equal(leases[0].duid, duidLl(mac), "the lease is not for the host's DUID");
    assert.deepEqual(await lab.hostAddresses(), [leases[0].address], 'the host has addresses besides its lease');
    const a = await lab.exec(h, ['ip', '-6', '-o', 'addr', 'show', 'dev', lab.iface.host, 'scope', 'global']);
    assert.match(a.stdout, new RegExp(`${leases[0].address}/128 .*noprefixroute`), a.stdout);
    assert.match(lab.findProc('dhcpcd')?.output() ?? '', new RegExp(`adding address ${leases[0].address}/128`));
    // No hook ran: the resolv.conf the lab wrote for the host and the machine's own are untouched.
    assert.equal(readFileSync(`/etc/netns/${h}/resolv.conf`, 'utf8'), `nameserver ${ADDR.routerLan}\n`);
    assert.equal(readIfAny('/etc/resolv.conf'), RESOLV_CONF_AT_START, "the machine's /etc/resolv.conf changed");
  });

  test("clatd run with no flags: IPv4 works, clatd answers ND itself (mode 2), the router's entry is clatd's NA", async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const nd = await ndCapture(lab);
    const clatd = await startClatd(lab);
    try {
      assert.deepEqual(await ipv4Failures(lab), []);
      const s = await lab.clatdStatus(clatd);
      const m = uplinkMode(s);
      assert.equal(m?.mode, 2, JSON.stringify(m));
      assert.equal(m?.announce, 'respond');
      const clat6 = String(s?.clat6);
      assert.match(clat6, /^2001:db8:1:/);
      const mac = await lab.mac(lab.names.host, lab.iface.host);
      const neigh = await lab.exec(lab.names.router, [
        'ip',
        '-6',
        'neigh',
        'show',
        clat6,
        'dev',
        lab.iface.routerBridge,
      ]);
      assert.match(neigh.stdout, new RegExp(`lladdr ${mac} (REACHABLE|STALE|DELAY|PROBE)`), neigh.stdout);
      const dad = ndAbout(nd.frames(), clat6).filter((x) => x.type === 135 && x.ip.src === '::');
      assert.ok(dad.length >= 1, `no DAD probe for ${clat6} reached the router`);
      const na = ndAbout(nd.frames(), clat6).filter((x) => x.type === 136);
      assert.ok(na.length >= 1, `no Neighbor Advertisement for ${clat6} reached the router`);
      assert.equal(na[0].ip.ethSrc, mac, 'the NA did not come from the host');
    } finally {
      await nd.stop();
      await stopAndCheck(lab, clatd);
    }
  });

  test('dhcpcd and all its helpers end with the PID the lab knows, even on SIGKILL; removal leaves no file', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const dhcpcd = lab.findProc('dhcpcd');
    const dnsmasq = lab.findProc('dnsmasq');
    assert.ok(dhcpcd && dnsmasq, 'dhcpcd or dnsmasq is not running');
    const tree = descendants(dhcpcd.pid);
    assert.ok(tree.length >= 2, `dhcpcd's helpers not found under ${dhcpcd.pid}: ${tree}`);
    const runDhcpcd = existsSync('/run/dhcpcd');
    // What the orphan sweep does to a lab whose owner died: SIGKILL to the recorded PID.
    process.kill(dhcpcd.pid, 'SIGKILL');
    const gone = await waitFor(() => tree.every((p) => !alive(p)), 5000, 100);
    assert.ok(gone, `dhcpcd processes left after SIGKILL of ${dhcpcd.pid}: ${tree.filter(alive)}`);
    await lab.destroy();
    assert.equal(alive(dnsmasq.pid), false, 'dnsmasq still runs');
    assert.equal(existsSync(lab.dir), false, 'the run directory (leases, DUID, PID files) is left');
    assert.equal(existsSync('/run/dhcpcd'), runDhcpcd, "dhcpcd's /run folder appeared outside the lab");
  });
});

/** The PID of dhcpcd's main process (below the shell that waits for it; the rest are its helpers). */
function dhcpcdMain(lab: Lab): number {
  const top = lab.findProc('dhcpcd');
  assert.ok(top, 'dhcpcd is not running');
  const comm = (p: number) => readFileSync(`/proc/${p}/comm`, 'utf8').trim();
  const main = descendants(top.pid).find((p) => comm(p) === 'dhcpcd' && comm(parentOf(p)) === 'sh');
  assert.ok(main, `dhcpcd's main process not found below ${top.pid}`);
  return main;
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Whether process `pid` exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The processes below `pid` (children, their children, …). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      parent.set(Number(d), parentOf(Number(d)));
    } catch {}
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) {
      if (pp === p) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}

describe('uplink routed: 2001:db8:99::/64 routed to the host', () => {
  const suite = labSuite({ uplink: 'routed', blobBytes: BLOB });

  test('clatd run with no flags: IPv4 works, anycast in the SLAAC /64 (mode 1)', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const route = await lab.exec(lab.names.router, ['ip', '-6', 'route', 'show', ADDR.routedPrefix]);
    assert.match(route.stdout, /via fe80::\S+ dev br0/, 'the router has no route for the routed prefix');
    const clatd = await startClatd(lab);
    try {
      assert.deepEqual(await ipv4Failures(lab), []);
      assert.equal(uplinkMode(await lab.clatdStatus(clatd))?.mode, 1);
    } finally {
      await stopAndCheck(lab, clatd);
    }
  });

  test('--v6-prefix: IPv4 works from an address in the routed /64 (mode 3), and no DAD probe on the link', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const nd = await ndCapture(lab);
    const clatd = await startClatd(lab, lab.clatdFlagsForUplink());
    try {
      assert.deepEqual(await ipv4Failures(lab), []);
      const s = await lab.clatdStatus(clatd);
      const m = uplinkMode(s);
      assert.equal(m?.mode, 3, JSON.stringify(m));
      assert.equal(m?.announce, 'none');
      assert.match(String(s?.clat6), /^2001:db8:99:0?:/);
      const frames = nd.frames();
      const probes = frames.map((f) => ndOfFrame(f.data)).filter((x) => x?.type === 135 && x.ip.src === '::');
      assert.deepEqual(
        probes.map((p) => p?.target),
        [],
        'a DAD probe went out on the link',
      );
      assert.deepEqual(ndAbout(frames, String(s?.clat6)), [], 'ND about the CLAT address on the link');
    } finally {
      await nd.stop();
      await stopAndCheck(lab, clatd);
    }
  });
});

describe('uplink cloud: two DHCPv6 leases, the router delivers only to them', () => {
  const suite = labSuite({ uplink: 'cloud', blobBytes: BLOB });

  /** Packets the router refused to forward to a non-leased address of the /64. */
  async function refused(lab: Lab): Promise<number> {
    return (await lab.refusedByRouter()) ?? Number.NaN;
  }

  test('--v6 with the second lease: IPv4 works (mode 4), the lease stays off the uplink (a renewal too), back after', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    assert.deepEqual(
      lab
        .leases()
        .map((l) => l.address)
        .sort(),
      [...ADDR.cloudLeases].sort(),
    );
    const [, second] = lab.clatdFlagsForUplink();
    const clatd = await startClatd(lab, ['--v6', second]);
    try {
      assert.deepEqual(await ipv4Failures(lab), []);
      const s = await lab.clatdStatus(clatd);
      const m = uplinkMode(s);
      assert.equal(m?.mode, 4, JSON.stringify(m));
      assert.equal(s?.clat6, second);
      assert.ok(!(await lab.hostAddresses()).includes(second), 'the lease is still configured on the uplink');
      // The host's DHCPv6 client renews (SIGUSR1) and adds its lease again, as at every renewal.
      process.kill(dhcpcdMain(lab), 'SIGUSR1');
      const retaken = await waitFor(() => /was put back on eth0; taken off again/.test(clatd.output()), 10_000, 200);
      assert.ok(retaken, `clatd did not take the renewed lease off again:\n${clatd.output().slice(-1500)}`);
      assert.ok(!(await lab.hostAddresses()).includes(second), 'the renewed lease stayed on the uplink');
      assert.deepEqual(await ipv4Failures(lab), [], 'IPv4 after the renewal');
    } finally {
      await clatd.stop('SIGTERM', 5000);
    }
    // Put back, the address goes through the kernel's DAD again before it counts.
    const back = await waitFor(async () => (await lab.hostAddresses()).includes(second), 5000, 200);
    const a = await lab.exec(lab.names.host, ['ip', '-6', '-o', 'addr', 'show', 'dev', lab.iface.host]);
    assert.ok(back, `the lease was not put back on the uplink:\n${a.stdout}`);
    assert.deepEqual(await lab.hostLeftovers(), [], 'clatd left this in the host after SIGTERM');
  });

  test('kill -9 while clatd holds the lease, then a new start: IPv4 works again, SIGTERM puts the lease back', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const [, second] = lab.clatdFlagsForUplink();
    const first = await startClatd(lab, ['--v6', second]);
    await first.stop('SIGKILL');
    assert.ok(!(await lab.hostAddresses()).includes(second), 'the lease came back by itself after kill -9');
    const again = await startClatd(lab, ['--v6', second]);
    try {
      assert.deepEqual(await ipv4Failures(lab), []);
      assert.equal((await lab.clatdStatus(again))?.clat6, second);
    } finally {
      await again.stop('SIGTERM', 5000);
    }
    const back = await waitFor(async () => (await lab.hostAddresses()).includes(second), 5000, 200);
    assert.ok(back, 'the lease was not put back on the uplink after the second run');
    assert.deepEqual(await lab.hostLeftovers(), [], 'left in the host after kill -9, a new start and SIGTERM');
  });

  test('no flags: clatd draws its own address in the /64 (mode 2), which the router never delivers; then mode 5 brings IPv4', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const before = await refused(lab);
    const clatd = await startClatd(lab);
    try {
      const s = await lab.clatdStatus(clatd);
      const m = uplinkMode(s);
      t.diagnostic(`no flags: mode ${JSON.stringify(m)}, CLAT address ${s?.clat6}`);
      // A way that does not draw from the /64 (a fallback to the host's own lease) must work.
      if (m?.mode !== 1 && m?.mode !== 2) {
        assert.deepEqual(await ipv4Failures(lab), [], `mode ${m?.mode} with no flags`);
        return;
      }
      const ping = await lab.exec(lab.names.host, ['ping', '-c', '2', '-i', '0.3', '-W', '1', ADDR.server], {
        allowFail: true,
      });
      assert.equal(
        pingStats(ping.stdout).received,
        0,
        'IPv4 works with a self-chosen address: the router is not strict',
      );
      const after = await refused(lab);
      assert.ok(after > before, `the router refused nothing (${before} → ${after})`);
      t.diagnostic(`the router dropped ${after - before} packet(s) for ${s?.clat6}; status: state ${s?.state}`);
      // Traffic that gets no answer: the health check sees nothing come back to the drawn address,
      // and clatd moves to the host's own lease (mode 5), where IPv4 works.
      const pinger = lab.exec(lab.names.host, ['ping', '-c', '60', '-i', '0.5', '-W', '1', ADDR.server], {
        allowFail: true,
      });
      const moved = await waitFor(async () => uplinkMode(await lab.clatdStatus(clatd))?.mode === 5, 45_000, 1000);
      await pinger;
      assert.ok(moved, `no move to mode 5: ${JSON.stringify(uplinkMode(await lab.clatdStatus(clatd)))}`);
      const back = await waitFor(async () => (await ipv4Failures(lab)).length === 0, 20_000, 1000);
      assert.ok(back, `IPv4 in mode 5: ${JSON.stringify(await ipv4Failures(lab))}`);
    } finally {
      await clatd.stop('SIGTERM', 5000);
    }
  });
});

describe('clatd lab --uplink', () => {
  const lab = (args: string[], timeout = 10_000) =>
    spawnSync(process.execPath, [CLI_PATH, 'lab', ...args], { encoding: 'utf8', timeout });

  test('an unknown shape, or --clatd-flags where the shape has none, is one clear usage error', () => {
    const bad = lab(['--uplink', 'wifi']);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /--uplink must be one of slaac, dhcpv6, routed, cloud, got "wifi"/);
    const flags = lab(['--uplink', 'dhcpv6', '--clatd-flags']);
    assert.equal(flags.status, 2, flags.stderr);
    assert.match(flags.stderr, /--clatd-flags is for --uplink routed or cloud/);
    const stateless = lab(['--lan', '--lan-mode', 'stateless']);
    assert.equal(stateless.status, 2, stateless.stderr);
    assert.match(stateless.stderr, /--lan-mode stateless needs --lan and --uplink routed/);
    const mode = lab(['--lan', '--lan-mode', 'nat66']);
    assert.equal(mode.status, 2, mode.stderr);
    assert.match(mode.stderr, /--lan-mode must be nat44 or stateless, got "nat66"/);
  });

  test('routed --lan --lan-mode stateless: the LAN client is mapped into the routed /64, IPv4 flows, all removed', (t) => {
    if (NEED_ROOT) return t.skip(NEED_ROOT);
    const missing = missingTools();
    if (missing.length > 0 && !IN_CI) return t.skip(`missing tools: ${missing.join(', ')}`);
    const r = lab(
      ['--uplink', 'routed', '--lan', '--lan-mode', 'stateless', '--duration', '5', '--interval', '1'],
      120_000,
    );
    const out = r.stdout + r.stderr;
    assert.equal(r.status, 0, out);
    assert.match(
      out,
      /starting `clatd run --interface eth0 --lan lan0 --lan-mode stateless --v6-prefix 2001:db8:99::\/64`/,
    );
    assert.match(out, /LAN 203\.0\.113\.\d+: ping [\d.]+ ms, HTTP 200/);
    assert.match(out, /clatd removed everything it made/);
    const tag = /lab: building clatd-([0-9a-z]+)-h/.exec(out)?.[1];
    const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', env: CHILD_ENV }).stdout;
    assert.ok(tag && !ns.includes(`clatd-${tag}-`), `namespaces left behind:\n${ns}`);
  });

  test('cloud --clatd-flags: clatd runs with the second lease, says mode 4, IPv4 flows, all removed', (t) => {
    if (NEED_ROOT) return t.skip(NEED_ROOT);
    const missing = missingTools();
    if (missing.length > 0 && !IN_CI) return t.skip(`missing tools: ${missing.join(', ')}`);
    const r = lab(['--uplink', 'cloud', '--clatd-flags', '--duration', '4', '--interval', '1'], 90_000);
    const out = r.stdout + r.stderr;
    assert.equal(r.status, 0, out);
    assert.match(out, /starting `clatd run --v6 2001:db8:1::a[56]`/);
    assert.match(out, /CLAT address 2001:db8:1::a[56] by address mode 4 \(leased address/);
    assert.match(out, /ping [\d.]+ ms \| HTTP 200 \d+ B \| UDP echo 200 B/);
    assert.match(out, /router refused 0 pkts to unleased addresses/);
    assert.match(out, /clatd removed everything it made/);
    const tag = /lab: building clatd-([0-9a-z]+)-h/.exec(out)?.[1];
    const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', env: CHILD_ENV }).stdout;
    assert.ok(tag && !ns.includes(`clatd-${tag}-`), `namespaces left behind:\n${ns}`);
  });
});
