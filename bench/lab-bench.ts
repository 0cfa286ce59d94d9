/**
 * `npm run bench`: clatd against TAYGA and the native IPv6 path, measured in the same run, in a
 * two-namespace lab of its own (the layout of ../shared/bench/lab.sh, written anew):
 *
 *   ns <p>-c (client + translator)                ns <p>-s (server)
 *   iperf3 -c / ping -> 192.0.2.1                 iperf3 -s -B <server IPv6>
 *   tayga: TUN clat0 192.0.0.4/29, fwd on         lo  2001:db8:64::c000:201/128
 *          2001:db8:2::/64 -> clat0                   (192.0.2.1 under the NAT64 prefix)
 *   clatd: v4-up0, anycast CLAT address           dn0 2001:db8:1::1/64
 *   up0 2001:db8:1::2/64  ===== veth =====  dn0   route 2001:db8:2::/64 via 2001:db8:1::2
 *   lan0 203.0.113.1/24, 2001:db8:3::1/64          route 2001:db8:3::/64 via 2001:db8:1::2
 *     ===== veth =====  ns <p>-l (LAN client): eth0 203.0.113.2/24, 2001:db8:3::2/64
 *
 * For each mode and repetition (modes interleaved so machine noise hits all alike): TCP upload,
 * TCP download (iperf3 -R), 64-byte UDP packets per second received, ping RTT, the translator's
 * CPU (utime+stime from /proc) and its RSS at the end. Prints a table with clatd/TAYGA ratios and
 * writes JSON to $BENCH_OUT (default: a new folder in the system's temp dir).
 *
 * Modes: `clatd` as a user gets it (the kernel fast path on where the kernel has it), and
 * `clatd-workers`, the same with `--offload off`, so that the worker threads carry every packet.
 * `lan-clatd` measures from the LAN client behind the client namespace, which runs clatd in router
 * mode (`--lan lan0`, NAT44), against `lan-native`, native IPv6 from the same LAN client routed by
 * the client namespace (the issue's target: lan-clatd TCP at least 80 % of lan-native).
 *
 * Settings (environment): MODES="native tayga clatd clatd-workers", REPS=3, TCP_SECS=10, UDP_SECS=10, PING_COUNT=200,
 * SOAK_SECS=0 (clatd alone under UDP load for this long before reading its RSS; the issue's target is 60),
 * TESTS="ping tcp tcpr udp" (a subset; `udpr` adds 64-byte UDP the other way), CLATD_ARGS="" (extra flags for `clatd run`, e.g. --workers 0),
 * CLATD_BASE_CLI (another build's dist/src/cli/main.js: modes clatd-base and clatd-base-workers run it,
 * so a change is measured before and after in one run; CLATD_BASE_NODE_FLAGS its Node flags when they differ).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../src/options/node-flags.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const P = `cb${process.pid}`;
const NS_C = `${P}-c`;
const NS_S = `${P}-s`;
const NS_L = `${P}-l`;
const PREFIX = '2001:db8:64::';
const SERVER6 = `${PREFIX}c000:201`;
const TARGET4 = '192.0.2.1';

const env = (k: string, d: string) => process.env[k] ?? d;
const MODES = env('MODES', 'native tayga clatd clatd-workers lan-native lan-clatd').split(/\s+/).filter(Boolean);
const REPS = Number(env('REPS', '3'));
const TCP_SECS = Number(env('TCP_SECS', '10'));
const UDP_SECS = Number(env('UDP_SECS', '10'));
const PING_COUNT = Number(env('PING_COUNT', '200'));
const SOAK_SECS = Number(env('SOAK_SECS', '0'));
const TESTS = new Set(env('TESTS', 'ping tcp tcpr udp').split(/\s+/));
const CLATD_ARGS = env('CLATD_ARGS', '').split(/\s+/).filter(Boolean);
/** Another build's `dist/src/cli/main.js`, for before/after runs in one bench (modes clatd-base, clatd-base-workers). */
const BASE_CLI = process.env.CLATD_BASE_CLI || undefined;
/** The other build's Node flags (space separated; default: this build's), e.g. from its shebang line. */
const BASE_NODE_FLAGS = process.env.CLATD_BASE_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? DAEMON_NODE_FLAGS;
const OUT = outDir(process.env.BENCH_OUT);

/** $BENCH_OUT (made when missing), or a new folder in the system's temp dir. */
function outDir(given: string | undefined): string {
  if (given === undefined || given === '') return mkdtempSync(join(tmpdir(), 'clatd-bench-'));
  try {
    mkdirSync(given, { recursive: true });
  } catch (e) {
    process.stderr.write(`bench: BENCH_OUT=${given}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  }
  return given;
}

const started: ChildProcess[] = [];

function sh(cmd: string, args: string[], opts: { ns?: string; ignore?: boolean; input?: string } = {}): string {
  const full = opts.ns ? ['ip', ['netns', 'exec', opts.ns, cmd, ...args]] : [cmd, args];
  try {
    return execFileSync(full[0] as string, full[1] as string[], {
      encoding: 'utf8',
      input: opts.input,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    if (opts.ignore) return '';
    const err = e as { stderr?: string };
    throw new Error(
      `${[cmd, ...args].join(' ')}${opts.ns ? ` (in ${opts.ns})` : ''}: ${err.stderr?.trim() ?? String(e)}`,
    );
  }
}

function bg(ns: string, cmd: string, args: string[], log: string): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: string[] = [];
  p.stdout?.on('data', (d) => chunks.push(String(d)));
  p.stderr?.on('data', (d) => chunks.push(String(d)));
  // A log that cannot be written is reported, never thrown: an exception here would end the
  // benchmark without removing its namespaces.
  p.on('exit', () => {
    try {
      writeFileSync(join(OUT, log), chunks.join(''));
    } catch (e) {
      process.stderr.write(`[bench] ${log}: ${e instanceof Error ? e.message : String(e)}\n`);
    }
  });
  started.push(p);
  return p;
}

async function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await done;
  clearTimeout(t);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function topoDown(): void {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const ns of [NS_C, NS_S, NS_L]) sh('ip', ['netns', 'del', ns], { ignore: true });
}

function topoUp(): void {
  topoDown();
  sh('ip', ['netns', 'add', NS_C]);
  sh('ip', ['netns', 'add', NS_S]);
  sh('ip', ['link', 'add', 'up0', 'netns', NS_C, 'type', 'veth', 'peer', 'name', 'dn0', 'netns', NS_S]);
  for (const ns of [NS_C, NS_S]) {
    sh(
      'sysctl',
      [
        '-qw',
        'net.ipv6.conf.all.accept_dad=0',
        'net.ipv6.conf.default.accept_dad=0',
        'net.ipv6.conf.all.accept_ra=0',
        'net.ipv6.conf.default.accept_ra=0',
      ],
      { ns },
    );
    sh('ip', ['link', 'set', 'lo', 'up'], { ns });
  }
  sh('ip', ['-n', NS_C, 'addr', 'add', '2001:db8:1::2/64', 'dev', 'up0', 'nodad']);
  sh('ip', ['-n', NS_S, 'addr', 'add', '2001:db8:1::1/64', 'dev', 'dn0', 'nodad']);
  sh('ip', ['-n', NS_C, 'link', 'set', 'up0', 'up']);
  sh('ip', ['-n', NS_S, 'link', 'set', 'dn0', 'up']);
  sh('ip', ['-n', NS_C, '-6', 'route', 'add', 'default', 'via', '2001:db8:1::1', 'dev', 'up0']);
  sh('ip', ['-n', NS_S, 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo']);
  sh('ip', ['-n', NS_S, '-6', 'route', 'add', '2001:db8:2::/64', 'via', '2001:db8:1::2', 'dev', 'dn0']);
  for (let i = 0; i < 50; i++) {
    if (sh('ping', ['-6', '-c1', '-W1', '2001:db8:1::1'], { ns: NS_C, ignore: true })) break;
  }
  // The LAN client behind the client namespace (modes lan-*).
  sh('ip', ['netns', 'add', NS_L]);
  sh('sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'], { ns: NS_L });
  sh('ip', ['link', 'set', 'lo', 'up'], { ns: NS_L });
  sh('ip', ['link', 'add', 'lan0', 'netns', NS_C, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS_L]);
  sh('ip', ['-n', NS_C, 'addr', 'add', '203.0.113.1/24', 'dev', 'lan0']);
  sh('ip', ['-n', NS_C, 'addr', 'add', '2001:db8:3::1/64', 'dev', 'lan0', 'nodad']);
  sh('ip', ['-n', NS_L, 'addr', 'add', '203.0.113.2/24', 'dev', 'eth0']);
  sh('ip', ['-n', NS_L, 'addr', 'add', '2001:db8:3::2/64', 'dev', 'eth0', 'nodad']);
  sh('ip', ['-n', NS_C, 'link', 'set', 'lan0', 'up']);
  sh('ip', ['-n', NS_L, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', NS_L, '-4', 'route', 'add', 'default', 'via', '203.0.113.1']);
  sh('ip', ['-n', NS_L, '-6', 'route', 'add', 'default', 'via', '2001:db8:3::1']);
  sh('ip', ['-n', NS_S, '-6', 'route', 'add', '2001:db8:3::/64', 'via', '2001:db8:1::2', 'dev', 'dn0']);
}

interface Translator {
  target: string;
  proc?: ChildProcess;
  /** Where the client runs (default: the client namespace; the LAN client for lan-* modes). */
  ns?: string;
}

async function waitPing(target: string, proc?: ChildProcess, ns = NS_C): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (proc && proc.exitCode !== null) return false;
    if (sh('ping', ['-c1', '-W1', target], { ns, ignore: true })) {
      sh('ping', ['-q', '-c5', '-i0.05', target], { ns, ignore: true });
      return true;
    }
    await sleep(250);
  }
  return false;
}

async function startMode(mode: string, rep: number): Promise<Translator | null> {
  if (mode === 'native') return { target: SERVER6 };
  if (mode === 'lan-native') {
    sh('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1'], { ns: NS_C });
    return (await waitPing(SERVER6, undefined, NS_L)) ? { target: SERVER6, ns: NS_L } : null;
  }
  if (mode === 'tayga') {
    const conf = join(OUT, `tayga-${rep}.conf`);
    writeFileSync(
      conf,
      `tun-device clat0\nipv4-addr 192.0.0.1\nipv6-addr 2001:db8:2::1\nprefix ${PREFIX}/96\nmap 192.0.0.4 2001:db8:2::4\n`,
    );
    sh('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1'], { ns: NS_C });
    sh('tayga', ['-c', conf, '--mktun'], { ns: NS_C });
    sh('ip', ['-n', NS_C, 'link', 'set', 'clat0', 'up']);
    sh('ip', ['-n', NS_C, 'addr', 'add', '192.0.0.4/29', 'dev', 'clat0']);
    sh('ip', ['-n', NS_C, '-4', 'route', 'add', 'default', 'dev', 'clat0', 'mtu', '1480']);
    sh('ip', ['-n', NS_C, '-6', 'route', 'add', '2001:db8:2::/64', 'dev', 'clat0']);
    const proc = bg(NS_C, 'tayga', ['-c', conf, '--nodetach'], `tayga-${rep}.log`);
    return (await waitPing(TARGET4, proc)) ? { target: TARGET4, proc } : null;
  }
  if (['clatd', 'clatd-workers', 'clatd-base', 'clatd-base-workers', 'lan-clatd'].includes(mode)) {
    const lan = mode === 'lan-clatd';
    const cli = mode.startsWith('clatd-base') ? BASE_CLI : CLI;
    if (cli === undefined) throw new Error(`mode ${mode} needs CLATD_BASE_CLI (the main.js of another build)`);
    const proc = bg(
      NS_C,
      process.execPath,
      [
        // As the clatd bin runs it (its shebang).
        ...(mode.startsWith('clatd-base') ? BASE_NODE_FLAGS : DAEMON_NODE_FLAGS),
        cli,
        'run',
        '--interface',
        'up0',
        '--pref64',
        `${PREFIX}/96`,
        '--mode',
        'always',
        '--control',
        join(OUT, `clatd-${rep}.sock`),
        ...(mode.endsWith('-workers') ? ['--offload', 'off'] : []),
        ...(lan ? ['--lan', 'lan0'] : []),
        ...CLATD_ARGS,
      ],
      `${mode}-${rep}.log`,
    );
    const ns = lan ? NS_L : NS_C;
    return (await waitPing(TARGET4, proc, ns)) ? { target: TARGET4, proc, ns } : null;
  }
  throw new Error(`unknown mode ${mode}`);
}

async function stopMode(mode: string, t: Translator | null): Promise<void> {
  await stop(t?.proc);
  if (mode === 'tayga') {
    sh('ip', ['-n', NS_C, 'link', 'del', 'clat0'], { ignore: true });
    sh('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=0'], { ns: NS_C, ignore: true });
  }
  if (mode === 'lan-native') sh('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=0'], { ns: NS_C, ignore: true });
}

function cpuTicks(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return 0;
  }
}

/** The PID of the translator itself: `ip netns exec` execs its command, so the child's PID is it. */
function rssKb(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function iperf(
  t: Translator,
  args: string[],
  secs: number,
): Promise<{ json: Record<string, unknown>; cpu: number }> {
  const server = bg(NS_S, 'iperf3', ['-s', '-1', '-B', SERVER6], 'iperf3-server.log');
  await sleep(300);
  const pid = t.proc?.pid;
  const c0 = cpuTicks(pid);
  const t0 = Date.now();
  const out = sh('iperf3', ['-c', t.target, '-t', String(secs), '-J', ...args], { ns: t.ns ?? NS_C, ignore: true });
  const cpu = ((cpuTicks(pid) - c0) / 100 / ((Date.now() - t0) / 1000)) * 100;
  await stop(server);
  try {
    return { json: JSON.parse(out), cpu };
  } catch {
    return { json: {}, cpu };
  }
}

interface Row {
  mode: string;
  rep: number;
  tcpGbit: number;
  tcpRGbit: number;
  udpPps: number;
  /** 64-byte UDP the other way (iperf3 -R): the server sends, the client namespace receives. */
  udpRPps: number;
  pingMs: number;
  cpuTcp: number;
  cpuUdp: number;
  rssMb: number;
}

function gbit(j: Record<string, unknown>): number {
  const end = j.end as { sum_received?: { bits_per_second: number } } | undefined;
  return end?.sum_received ? end.sum_received.bits_per_second / 1e9 : Number.NaN;
}

function udpRxPps(j: Record<string, unknown>, secs: number): number {
  const end = j.end as { sum?: { packets: number; lost_packets: number } } | undefined;
  return end?.sum ? (end.sum.packets - end.sum.lost_packets) / secs : Number.NaN;
}

async function measure(mode: string, rep: number): Promise<Row> {
  const row: Row = {
    mode,
    rep,
    tcpGbit: Number.NaN,
    tcpRGbit: Number.NaN,
    udpPps: Number.NaN,
    udpRPps: Number.NaN,
    pingMs: Number.NaN,
    cpuTcp: Number.NaN,
    cpuUdp: Number.NaN,
    rssMb: Number.NaN,
  };
  const t = await startMode(mode, rep);
  try {
    if (!t) {
      process.stderr.write(`[bench] ${mode}: not ready (see ${OUT})\n`);
      return row;
    }
    const ping = !TESTS.has('ping')
      ? ''
      : sh('ping', ['-q', '-c', String(PING_COUNT), '-i', '0.01', t.target], { ns: t.ns ?? NS_C, ignore: true });
    const m = /= [\d.]+\/([\d.]+)\//.exec(ping);
    if (m) row.pingMs = Number(m[1]);
    if (TESTS.has('tcp')) {
      const tcp = await iperf(t, [], TCP_SECS);
      row.tcpGbit = gbit(tcp.json);
      row.cpuTcp = tcp.cpu;
    }
    if (TESTS.has('tcpr')) row.tcpRGbit = gbit((await iperf(t, ['-R'], TCP_SECS)).json);
    if (TESTS.has('udp')) {
      const udp = await iperf(t, ['-u', '-l', '64', '-b', '0'], UDP_SECS);
      row.udpPps = udpRxPps(udp.json, UDP_SECS);
      row.cpuUdp = udp.cpu;
    }
    if (TESTS.has('udpr'))
      row.udpRPps = udpRxPps((await iperf(t, ['-u', '-l', '64', '-b', '0', '-R'], UDP_SECS)).json, UDP_SECS);
    if (mode.startsWith('clatd') && SOAK_SECS > 0) await iperf(t, ['-u', '-l', '64', '-b', '0'], SOAK_SECS);
    row.rssMb = rssKb(t.proc?.pid) / 1024;
  } finally {
    await stopMode(mode, t);
  }
  process.stderr.write(`[bench] ${JSON.stringify(row)}\n`);
  return row;
}

function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)] : Number.NaN;
}

function report(rows: Row[]): string {
  const cols: [keyof Row, string, number][] = [
    ['tcpGbit', 'TCP Gbit/s', 2],
    ['tcpRGbit', 'TCP-R Gbit/s', 2],
    ['udpPps', 'UDP rx pps', 0],
    ['udpRPps', 'UDP-R rx pps', 0],
    ['pingMs', 'ping ms', 3],
    ['cpuTcp', 'CPU % tcp', 0],
    ['cpuUdp', 'CPU % udp', 0],
    ['rssMb', 'RSS MB', 1],
  ];
  const med = (mode: string, k: keyof Row) => median(rows.filter((r) => r.mode === mode).map((r) => r[k] as number));
  const lines = [`| mode | ${cols.map((c) => c[1]).join(' | ')} |`, `|${' --- |'.repeat(cols.length + 1)}`];
  for (const mode of MODES) lines.push(`| ${mode} | ${cols.map(([k, , d]) => med(mode, k).toFixed(d)).join(' | ')} |`);
  for (const [now, base] of [
    ['clatd', 'clatd-base'],
    ['clatd-workers', 'clatd-base-workers'],
  ]) {
    if (!MODES.includes(now) || !MODES.includes(base)) continue;
    const r = (k: keyof Row) => (med(now, k) / med(base, k)).toFixed(2);
    lines.push(
      '',
      `${now} / ${base}: TCP ${r('tcpGbit')}×, TCP-R ${r('tcpRGbit')}×, UDP ${r('udpPps')}×, ping ${r('pingMs')}×, RSS ${r('rssMb')}×`,
    );
  }
  if (MODES.includes('lan-clatd') && MODES.includes('lan-native')) {
    const r = (k: keyof Row) => (med('lan-clatd', k) / med('lan-native', k)).toFixed(2);
    lines.push(
      '',
      `LAN client, router mode (NAT44) / native IPv6 from the same LAN client: TCP ${r('tcpGbit')}×, TCP-R ${r('tcpRGbit')}×, UDP ${r('udpPps')}×, ping ${r('pingMs')}× (target: TCP >= 0.80)`,
    );
  }
  if (MODES.includes('native')) {
    // The near-native targets: each direction as a share of native IPv6, ping as time added.
    for (const m of MODES.filter((x) => x.startsWith('clatd'))) {
      const pct = (k: keyof Row) => `${((med(m, k) / med('native', k)) * 100).toFixed(0)} %`;
      lines.push(
        '',
        `${m} / native: TCP ${pct('tcpGbit')}, TCP-R ${pct('tcpRGbit')}, UDP ${pct('udpPps')}, UDP-R ${pct('udpRPps')}, ping +${((med(m, 'pingMs') - med('native', 'pingMs')) * 1000).toFixed(0)} µs`,
      );
    }
  }
  if (MODES.includes('tayga')) {
    for (const m of MODES.filter((x) => x.startsWith('clatd'))) {
      const ratio = (k: keyof Row) => (med(m, k) / med('tayga', k)).toFixed(2);
      lines.push(
        '',
        `${m} / TAYGA: TCP ${ratio('tcpGbit')}×, TCP-R ${ratio('tcpRGbit')}×, UDP ${ratio('udpPps')}×, ping ${ratio('pingMs')}×`,
      );
      if (MODES.includes('native')) {
        lines.push(
          `added ping RTT over native: ${m} ${(med(m, 'pingMs') - med('native', 'pingMs')).toFixed(3)} ms, TAYGA ${(med('tayga', 'pingMs') - med('native', 'pingMs')).toFixed(3)} ms`,
        );
      }
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark builds network namespaces: run it as root');
  for (const c of ['ip', 'iperf3', 'ping', ...(MODES.includes('tayga') ? ['tayga'] : [])]) {
    sh('sh', ['-c', `command -v ${c}`], { ignore: false });
  }
  const rows: Row[] = [];
  // Interrupted (Ctrl-C, or a kill from a job runner): end what it started, remove the namespaces.
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(sig, () => {
      for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      topoDown();
      process.exit(code);
    });
  }
  try {
    for (let rep = 1; rep <= REPS; rep++) {
      for (const mode of MODES) {
        topoUp();
        rows.push(await measure(mode, rep));
      }
    }
  } finally {
    topoDown();
  }
  writeFileSync(join(OUT, 'results.json'), JSON.stringify(rows, null, 2));
  process.stdout.write(`${report(rows)}\n\nraw results: ${join(OUT, 'results.json')}\n`);
}

main().catch((e) => {
  topoDown();
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
