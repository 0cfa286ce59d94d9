/**
 * Hostile traffic through the real `clatd run`, shared by `npm run fuzz` (bench/fuzz.ts, ~10^6
 * packets) and the suite's shorter run (test/e2e/fuzz-live.test.ts). The topology is clatd-run.ts's host/router veth pair, PREF64 from
 * the router's RAs (so that the forged RAs meet the live PREF64 code):
 *
 *   host: clatd, TUN (v4-veth-a)                              router: 2001:db8:64::c000:201 on lo
 *     FUZZ_TUN_PY  -> packet socket on the TUN (IPv4 side)      FUZZ_NET_PY -> packet socket on veth-b
 *     ping, UDP echo client -> 192.0.2.1                        UDP echo server [SERVER6]:7
 *     CAPTURE_PY on the TUN (what clatd wrote: IPv4)            CAPTURE_PY on veth-b (from the CLAT)
 *     nft netdev egress counter on the TUN                      nft netdev egress counters on veth-b
 *
 * Accounting: what clatd was offered is counted where it enters, by nftables egress hooks (they run
 * before tc, so before the kernel fast path, and see frames sent through packet sockets too):
 * on veth-b every packet for the CLAT address plus the Neighbor Solicitations/Advertisements for it
 * that clatd's socket filter takes (src/sys/bpf.ts `clatReceiveFilter`), on the TUN everything.
 * Then, with the kernel's own drops on the way (the veth's, the TUN's queue and qdisc):
 *
 *   offered to 64 = 64.packets + io.packetMalformed + io.packetKernelDrops   (+ veth drops)
 *   offered to 46 = 46.packets                                               (+ TUN drops)
 *   each direction: packets = translated + dropped + paused + oversize + neighbor, dropped = Σ drops
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_RA_ROUTERS } from '../../src/daemon/pref64.js';
import {
  type Running,
  running,
  SERVER6,
  setUp,
  startClatd,
  startRaSender,
  statusOf,
  withHostAndRouter,
} from './clatd-run.js';
import { CAPTURE_PY, FUZZ_NET_PY, FUZZ_TUN_PY, GOOD_PY } from './fuzz-py.js';
import type { Netns } from './netns.js';

export interface FuzzOptions {
  /** Packets from the network side toward the CLAT. */
  netPackets: number;
  /** Packets into the TUN (the IPv4 side). */
  tunPackets: number;
  /** Each fuzzer's rate, packets per second (the two run at once). */
  rate: number;
  /** More `clatd run` flags (e.g. `--offload off`). */
  clatdArgs?: string[];
  seed?: number;
  log?: (line: string) => void;
}

export interface ProcSample {
  atSec: number;
  rssKb: number;
  fds: number;
}

export interface SideAccount {
  /** Counted by nftables as it entered. */
  offered: number;
  /** What clatd's counters account for (see the header). */
  counted: number;
  /** Drops by the kernel on the way (veth or TUN queue, qdisc), in no counter of clatd's. */
  kernelDrops: number;
  /** offered - counted - kernelDrops: 0 when every input is accounted for. */
  unaccounted: number;
  /** packets - (translated + dropped + paused + oversize + neighbor), and dropped - Σ drops: both 0. */
  internalGap: number;
  dropGap: number;
}

export interface Capture {
  seen: number;
  verified: number;
  bad: number;
  partial: number;
  skipped: number;
  samples: string[];
  kinds: Record<string, number>;
  kernelDrops: number;
}

export interface FuzzResult {
  net: { sent: number; sendErrors: number; seconds: number; classes: Record<string, number> };
  tun: { sent: number; sendErrors: number; seconds: number; classes: Record<string, number> };
  ping: { sent: number; received: number };
  udp: { sent: number; answered: number };
  /** Still running at the end (never exited, state `running`), the PREF64 unchanged. */
  alive: boolean;
  state: string;
  pref64: string | null;
  /** Routers whose PREF64 clatd holds at the end (the forged RAs come from a new source each). */
  pref64Routers: number;
  exit: { code: number | null; signal: string | null };
  account: { '64': SideAccount; '46': SideAccount };
  /** Non-zero drop reasons per direction. */
  drops: { '64': Record<string, number>; '46': Record<string, number> };
  counters: Record<string, unknown>;
  emitted: { net: Capture; tun: Capture };
  proc: { start: ProcSample; end: ProcSample; maxRssKb: number; maxFds: number; samples: ProcSample[] };
  seconds: number;
}

export function procSample(pid: number, t0: number): ProcSample {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return {
    atSec: Math.round((Date.now() - t0) / 100) / 10,
    rssKb: m ? Number(m[1]) : 0,
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

/** A child's stdout as text, once it exits. */
function output(child: ChildProcess): Promise<string> {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) =>
    child.once('exit', (code, signal) =>
      code === 0 || signal === 'SIGINT' || signal === 'SIGTERM' || out.trim() !== ''
        ? resolve(out)
        : reject(new Error(`${child.spawnargs.join(' ').slice(0, 120)} exited ${code ?? signal}: ${err}`)),
    ),
  );
}

/** Resolves at the child's first line of output ("ready"). */
function ready(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`${child.spawnargs.slice(3, 5).join(' ')} exited early (${code})`)));
  });
}

const lastJson = (s: string) => JSON.parse(s.trim().split('\n').pop() ?? '{}');

function stat(ns: Netns, ifname: string, what: string): number {
  return Number(ns.exec('cat', `/sys/class/net/${ifname}/statistics/${what}`).trim());
}

/** The packet counts of the named counters in an nft table (in rule order). */
function nftCounters(ns: Netns, table: string): number[] {
  return [...ns.exec('nft', 'list', 'table', 'netdev', table).matchAll(/counter packets (\d+)/g)].map((m) =>
    Number(m[1]),
  );
}

/** The 16 bytes of an IPv6 address as four 32-bit words (nft raw payload matches take at most 32 bits here). */
function words(addr: string, ns: Netns): number[] {
  const hex = ns
    .exec('python3', '-c', `import socket,sys; print(socket.inet_pton(socket.AF_INET6, sys.argv[1]).hex())`, addr)
    .trim();
  return [0, 8, 16, 24].map((i) => Number.parseInt(hex.slice(i, i + 8), 16));
}

function solicitedNode(clat6: string, ns: Netns): string {
  return ns
    .exec(
      'python3',
      '-c',
      `import socket,sys; a=socket.inet_pton(socket.AF_INET6, sys.argv[1]); print(socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, 'ff02::1:ff00:0')[:13] + a[13:]))`,
      clat6,
    )
    .trim();
}

/**
 * Packets the TUN's qdisc dropped: the root's figure only (a multi-queue TUN has `mq` at the root,
 * which shows the sum of its per-queue children, listed after it).
 */
function qdiscDrops(ns: Netns, ifname: string): number {
  const out = ns.tryExec('tc', '-s', 'qdisc', 'show', 'dev', ifname).stdout;
  return Number(/dropped (\d+)/.exec(out)?.[1] ?? 0);
}

interface Dir {
  packets: number;
  translated?: number;
  dropped?: number;
  paused?: number;
  oversize?: number;
  neighbor?: number;
  drops: Record<string, number>;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function internal(d: Dir): { internalGap: number; dropGap: number } {
  const parts = (d.translated ?? 0) + (d.dropped ?? 0) + (d.paused ?? 0) + (d.oversize ?? 0) + (d.neighbor ?? 0);
  return { internalGap: d.packets - parts, dropGap: (d.dropped ?? 0) - sum(Object.values(d.drops)) };
}

const nonZero = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).filter(([, v]) => v > 0));

/**
 * Runs the whole exercise and returns its figures; asserts nothing (the caller does). Namespaces and
 * processes are gone when it returns.
 */
export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const log = o.log ?? (() => {});
  let result: FuzzResult | undefined;
  await withHostAndRouter(async (p, dir) => {
    setUp(p);
    startRaSender(p, dir, 1800);
    const sock = join(dir, 'clatd.sock');
    const c: Running = startClatd(p.a, ['--control', sock, '--dad', 'off', ...(o.clatdArgs ?? [])]);
    // clatd's log lines are kept in memory by startClatd; at debug level under a flood that is a
    // lot, and not what this measures.
    await c.waitFor(running, 20_000);
    const st0 = statusOf(p.a, sock);
    const { clat6, clat4, tun } = st0 as { clat6: string; clat4: string; tun: string };
    const pid = st0.pid as number;
    log(`clatd ${pid} running: ${clat4} <-> ${clat6}, TUN ${tun}, PREF64 ${st0.pref64}, offload ${st0.offload}`);

    for (const [name, text] of [
      ['net.py', FUZZ_NET_PY],
      ['tun.py', FUZZ_TUN_PY],
      ['capture.py', CAPTURE_PY],
      ['good.py', GOOD_PY],
    ]) {
      writeFileSync(join(dir, name), text);
    }
    const w = words(clat6, p.b);
    const sol = solicitedNode(clat6, p.b);
    const target = w.map((x, k) => `@nh,${384 + 32 * k},32 ${x}`).join(' ');
    writeFileSync(
      join(dir, 'count-net.nft'),
      `table netdev fuzzcount {\n  chain eg {\n    type filter hook egress device "veth-b" priority 0;\n` +
        `    ip6 daddr ${clat6} counter\n` +
        `    ip6 daddr { ${sol}, ff02::1 } ip6 nexthdr 58 ip6 hoplimit 255 @nh,320,8 { 135, 136 } ${target} counter\n  }\n}\n`,
    );
    writeFileSync(
      join(dir, 'count-tun.nft'),
      `table netdev fuzzcount {\n  chain eg {\n    type filter hook egress device "${tun}" priority 0;\n    counter\n  }\n}\n`,
    );
    p.b.exec('nft', '-f', join(dir, 'count-net.nft'));
    p.a.exec('nft', '-f', join(dir, 'count-tun.nft'));

    const capNet = p.b.spawn('python3', [join(dir, 'capture.py'), 'veth-b', '6', clat6], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const capTun = p.a.spawn('python3', [join(dir, 'capture.py'), tun, '4'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const echo = p.b.spawn('python3', [join(dir, 'good.py'), 'server', SERVER6, '7'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await Promise.all([ready(capNet), ready(capTun), ready(echo)]);
    const capNetOut = output(capNet);
    const capTunOut = output(capTun);
    void output(echo).catch(() => {});

    const t0 = Date.now();
    // Warm: a few good round trips before the baseline, so that what the first packets cost (the
    // router resolving the CLAT address, JIT) is not taken for growth.
    p.a.tryExec('ping', '-c', '5', '-i', '0.2', '-W', '2', '192.0.2.1');
    // And one the kernel fast path hands on (an IPv4 option): the worker threads start on such a
    // packet, with their own fds and memory, which belong in the baseline too.
    p.a.tryExec('ping', '-c', '1', '-R', '-W', '20', '192.0.2.1');
    const samples: ProcSample[] = [procSample(pid, t0)];
    const start = samples[0];
    const base = {
      vethB: stat(p.b, 'veth-b', 'tx_dropped'),
      vethA: stat(p.a, 'veth-a', 'rx_dropped'),
      tunTx: stat(p.a, tun, 'tx_dropped'),
      qdisc: qdiscDrops(p.a, tun),
    };
    log(`start: RSS ${start.rssKb} kB, ${start.fds} fds`);

    const secs = Math.max(o.netPackets, o.tunPackets) / o.rate + 2;
    const ping = p.a.spawn('ping', ['-i', '0.1', '-w', String(Math.ceil(secs) + 2), '192.0.2.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pingOut = output(ping);
    const udpClient = p.a.spawn('python3', [join(dir, 'good.py'), 'client', '192.0.2.1', '7', '20', String(secs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const udpOut = output(udpClient);
    const env = { ...process.env, FUZZ_SEED: String(o.seed ?? 1) };
    const net = p.b.spawn(
      'python3',
      [
        join(dir, 'net.py'),
        JSON.stringify({
          iface: 'veth-b',
          dstMac: p.aMac,
          srcMac: p.bMac,
          clat6,
          pool: st0.pref64.split('/')[0],
          count: o.netPackets,
          rate: o.rate,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env },
    );
    const tunF = p.a.spawn(
      'python3',
      [
        join(dir, 'tun.py'),
        JSON.stringify({ iface: tun, clat4, count: o.tunPackets, rate: o.rate, mtu: st0.mtu ?? 1480 }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env },
    );
    const netOut = output(net);
    const tunOut = output(tunF);
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        await sleep(1000);
        if (c.child.exitCode !== null || c.child.signalCode !== null) break;
        try {
          samples.push(procSample(pid, t0));
        } catch {
          break;
        }
        // The log lines are kept for assertion messages; under a flood at debug level they are
        // many, and they are the test's memory, not clatd's.
        if (c.lines.length > 5000) c.lines.splice(0, c.lines.length - 1000);
      }
    })();
    const netRes = lastJson(await netOut);
    log(`network side: ${JSON.stringify(netRes)}`);
    const tunRes = lastJson(await tunOut);
    log(`TUN side: ${JSON.stringify(tunRes)}`);
    const udpRes = lastJson(await udpOut);
    const pingText = await pingOut;
    const pm = /(\d+) packets transmitted, (\d+) received/.exec(pingText);

    // Counters settle: the workers publish per batch and read the kernel's drops at least once
    // per event-loop turn (~2 s when idle). The offered counts are read before and after clatd's,
    // and the pair is taken only when nothing came in between (the host's own stack may still
    // send something into the TUN, or the router an NS).
    const offeredNow = () => [...nftCounters(p.b, 'fuzzcount'), ...nftCounters(p.a, 'fuzzcount')];
    let counters = statusOf(p.a, sock).counters;
    let offered = offeredNow();
    for (let i = 0, prev = ''; i < 30; i++) {
      await sleep(500);
      const before = offeredNow();
      counters = statusOf(p.a, sock).counters;
      offered = offeredNow();
      const key = JSON.stringify([counters['64'].packets, counters['46'].packets, counters.io, offered]);
      if (key === prev && i >= 6 && JSON.stringify(before) === JSON.stringify(offered)) break;
      prev = key;
    }
    sampling = false;
    await sampler;
    const end = procSample(pid, t0);
    samples.push(end);
    const stEnd = statusOf(p.a, sock);
    const [toClat, nd, toTun] = offered;
    const vethDrops = stat(p.b, 'veth-b', 'tx_dropped') - base.vethB + stat(p.a, 'veth-a', 'rx_dropped') - base.vethA;
    const tunDrops = stat(p.a, tun, 'tx_dropped') - base.tunTx + qdiscDrops(p.a, tun) - base.qdisc;
    const c64 = counters['64'] as Dir;
    const c46 = counters['46'] as Dir;
    const io = counters.io as { packetMalformed: number; packetKernelDrops: number };
    const counted64 = c64.packets + io.packetMalformed + io.packetKernelDrops;
    const account = {
      '64': {
        offered: toClat + nd,
        counted: counted64,
        kernelDrops: vethDrops,
        unaccounted: toClat + nd - counted64 - vethDrops,
        ...internal(c64),
      },
      '46': {
        offered: toTun,
        counted: c46.packets,
        kernelDrops: tunDrops,
        unaccounted: toTun - c46.packets - tunDrops,
        ...internal(c46),
      },
    };
    capNet.kill('SIGTERM');
    capTun.kill('SIGTERM');
    const emitted = { net: lastJson(await capNetOut) as Capture, tun: lastJson(await capTunOut) as Capture };
    const alive = c.child.exitCode === null && c.child.signalCode === null;
    c.child.kill('SIGTERM');
    const ex = await c.exited;
    result = {
      net: netRes,
      tun: tunRes,
      ping: { sent: Number(pm?.[1] ?? 0), received: Number(pm?.[2] ?? 0) },
      udp: udpRes,
      alive: alive && stEnd.state === 'running',
      state: stEnd.state,
      pref64: stEnd.pref64,
      pref64Routers: stEnd.pref64Routers.length,
      exit: { code: ex.code, signal: ex.signal },
      account,
      drops: { '64': nonZero(c64.drops), '46': nonZero(c46.drops) },
      counters,
      emitted,
      proc: {
        start,
        end,
        maxRssKb: Math.max(...samples.map((x) => x.rssKb)),
        maxFds: Math.max(...samples.map((x) => x.fds)),
        samples,
      },
      seconds: Math.round((Date.now() - t0) / 1000),
    };
  });
  if (!result) throw new Error('the fuzz run ended without a result');
  return result;
}

/** What the suite's test (and `npm run fuzz`) asserts, as a list of failures (empty: all held). */
export function failures(r: FuzzResult): string[] {
  const f: string[] = [];
  if (!r.alive) f.push(`clatd not running at the end (state ${r.state}, exit ${JSON.stringify(r.exit)})`);
  if (r.pref64Routers > MAX_RA_ROUTERS) f.push(`${r.pref64Routers} routers' PREF64s on record`);
  if (r.exit.code !== 0) f.push(`clatd's exit on SIGTERM: ${JSON.stringify(r.exit)}`);
  if (r.ping.received < r.ping.sent * 0.8) f.push(`ping: ${r.ping.received} of ${r.ping.sent} answered`);
  if (r.udp.answered < r.udp.sent * 0.8) f.push(`UDP echo: ${r.udp.answered} of ${r.udp.sent} answered`);
  for (const d of ['64', '46'] as const) {
    const a = r.account[d];
    if (a.unaccounted !== 0 || a.internalGap !== 0 || a.dropGap !== 0)
      f.push(`${d}: not balanced ${JSON.stringify(a)}`);
  }
  for (const side of ['net', 'tun'] as const) {
    const e = r.emitted[side];
    if (e.bad > 0) f.push(`${side}: ${e.bad} emitted packets with bad checksums: ${e.samples.join(' | ')}`);
    if (e.verified === 0) f.push(`${side}: nothing emitted was verified`);
  }
  if (r.proc.end.fds > r.proc.start.fds) f.push(`open fds ${r.proc.start.fds} -> ${r.proc.end.fds}`);
  return f;
}
