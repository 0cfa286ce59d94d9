import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { formatStatus } from '../../src/cli/status.js';
import { pseudoSum6, sum16 } from '../../src/core/checksum.js';
import { ControlServer, request } from '../../src/daemon/control.js';
import { emptyCounters, type StatusSnapshot } from '../../src/daemon/daemon.js';
import { buildRouterSolicitation } from '../../src/daemon/discover.js';
import { Logger, stderrIsJournal } from '../../src/daemon/log.js';
import { memoryStatus } from '../../src/daemon/memory.js';
import { MetricsServer, processStats, renderMetrics } from '../../src/daemon/metrics.js';
import { checkPreflight, effectiveCaps, probeTun } from '../../src/daemon/preflight.js';
import { canGo, Lifecycle, STATES, StateError } from '../../src/daemon/state.js';

describe('logger', () => {
  const at = () => new Date(Date.UTC(2026, 10, 26, 9, 0, 0));
  test('text: one line, event, message, fields; levels filter', () => {
    const out: string[] = [];
    const log = new Logger({ level: 'info', write: (l) => out.push(l), now: at });
    log.debug('x', 'hidden');
    log.info('uplink', 'eth0 from\nthe route', { ifindex: 2, note: 'two words', none: undefined });
    assert.deepEqual(out, ['2026-11-26T09:00:00.000Z info  uplink: eth0 from the route ifindex=2 note="two words"\n']);
    log.level = 'error';
    log.warn('w', 'hidden');
    assert.equal(out.length, 1);
  });
  test('text for the journal: a syslog priority prefix per level, no timestamp of its own', () => {
    const out: string[] = [];
    const log = new Logger({ level: 'debug', journal: true, write: (l) => out.push(l), now: at });
    log.debug('a', 'd');
    log.info('b', 'i', { k: 1 });
    log.warn('c', 'w');
    log.error('d', 'e');
    assert.deepEqual(out, ['<7>debug a: d\n', '<6>info  b: i k=1\n', '<4>warn  c: w\n', '<3>error d: e\n']);
  });
  test('stderr is the journal only when JOURNAL_STREAM names its device and inode', () => {
    const stat = () => ({ dev: 64769, ino: 123456 });
    assert.equal(stderrIsJournal({ JOURNAL_STREAM: '64769:123456' }, stat), true);
    assert.equal(stderrIsJournal({ JOURNAL_STREAM: '64769:999' }, stat), false, 'stderr redirected elsewhere');
    assert.equal(stderrIsJournal({}, stat), false);
    assert.equal(stderrIsJournal({ JOURNAL_STREAM: 'junk' }, stat), false);
    assert.equal(
      stderrIsJournal({ JOURNAL_STREAM: '1:2' }, () => {
        throw new Error('EBADF');
      }),
      false,
    );
  });
  test('json', () => {
    const out: string[] = [];
    const log = new Logger({ format: 'json', write: (l) => out.push(l), now: at });
    log.warn('dad', 'duplicate', { address: '2001:db8::1' });
    assert.deepEqual(JSON.parse(out[0]), {
      ts: '2026-11-26T09:00:00.000Z',
      level: 'warn',
      event: 'dad',
      msg: 'duplicate',
      address: '2001:db8::1',
    });
    assert.ok(out[0].endsWith('}\n') && !out[0].slice(0, -1).includes('\n'));
  });
});

describe('lifecycle', () => {
  test('transitions are checked, counted and reported', () => {
    let t = 0;
    const l = new Lifecycle(() => t);
    const seen: string[] = [];
    l.onTransition((x) => seen.push(`${x.from}->${x.to}:${x.reason}`));
    t = 5;
    assert.equal(l.go('waiting-prefix', 'no prefix'), true);
    assert.equal(l.since, 5);
    assert.equal(l.go('waiting-prefix', 'again'), false, 'same state: no-op');
    l.go('dad', 'prefix found');
    l.go('dad', 'duplicate, new address');
    l.go('running', 'unique');
    assert.throws(() => l.go('starting', 'back?'), StateError);
    l.go('paused', 'uplink down');
    l.go('stopping', 'SIGTERM');
    assert.equal(l.done, true);
    assert.throws(() => l.go('running', 'no'), StateError);
    l.go('stopped', 'done');
    assert.throws(() => l.go('stopping', 'again'), StateError);
    assert.equal(l.entered.dad, 2);
    assert.equal(seen.length, 7);
  });
  test('stopping and failed are reachable from every live state; stopped is final', () => {
    for (const s of STATES) {
      const live = s !== 'stopping' && s !== 'stopped';
      assert.equal(canGo(s, 'stopping'), live, s);
      if (s !== 'failed') assert.equal(canGo(s, 'failed'), live, s);
      assert.equal(canGo('stopped', s), false);
    }
  });
});

function snapshot(): StatusSnapshot {
  const counters = emptyCounters();
  counters['46'] = {
    packets: 10,
    bytes: 840,
    drops: { D46_TTL_EXPIRED: 2, D46_SRC_ROUTE: 0 },
    packetsOut: 8,
    bytesOut: 800,
    icmpErrors: 2,
    icmpRateLimited: 1,
    offloaded: 5,
  };
  counters.io = { tunWriteFailed: 3, csumCompleted: 4, tunTsoIn: 6, tunTsoOut: 7 };
  return {
    state: 'running',
    reason: null,
    pid: 1,
    uptimeSec: 61,
    stateSinceSec: 60,
    uplink: { name: 'eth0', ifindex: 2, up: true },
    pref64: '64:ff9b::/96',
    pref64Source: 'ra',
    clat4: '192.0.0.4',
    clat6: '2001:db8::1',
    prefix64: '2001:db8::/64',
    uplinkMode: null,
    tun: 'v4-eth0',
    mtu: 1472,
    offload: null,
    dad: {
      mode: 'strict',
      result: 'unique',
      attempts: 1,
      duplicates: [],
      blockedRounds: 0,
      retryInSec: null,
      skipped: null,
    },
    pref64Routers: [],
    pref64Refused: [],
    counters,
    changes: { 'pref64-changed': 1 },
    transitions: Object.fromEntries(STATES.map((s) => [s, s === 'running' ? 1 : 0])) as StatusSnapshot['transitions'],
    dadAttempts: 1,
    errors: 0,
  };
}

/** A Python with prometheus_client (Debian: python3-prometheus-client), to parse the page as Prometheus does. */
const PROM_PYTHON = ['/usr/bin/python3', 'python3'].find(
  (py) => spawnSync(py, ['-c', 'import prometheus_client'], { stdio: 'ignore' }).status === 0,
);

/** Parses Prometheus text with prometheus_client's parser; returns each sample as `name{labels} value`. */
function promParse(text: string): { samples: string[]; types: Record<string, string> } {
  const py = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {'samples': [], 'types': {}}
for f in text_string_to_metric_families(sys.stdin.read()):
    out['types'][f.name] = f.type
    for s in f.samples:
        labels = ','.join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        out['samples'].append('%s{%s} %s' % (s.name, labels, repr(s.value)))
print(json.dumps(out))
`;
  const r = spawnSync(PROM_PYTHON as string, ['-c', py], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('metrics', () => {
  test('Prometheus text: counters by direction and reason, state gauge, info', () => {
    const t = renderMetrics(snapshot(), { startTimeSec: 1_700_000_000.5 });
    assert.match(t, /^# HELP clatd_packets_total /m);
    assert.match(t, /^# TYPE clatd_packets_total counter$/m);
    assert.match(t, /^clatd_packets_total\{direction="4to6"\} 10$/m);
    assert.match(t, /^clatd_bytes_total\{direction="4to6"\} 840$/m);
    assert.match(t, /^clatd_bytes_out_total\{direction="4to6"\} 800$/m);
    assert.match(t, /^clatd_bytes_out_total\{direction="6to4"\} 0$/m);
    assert.match(t, /^clatd_drops_total\{direction="4to6",reason="D46_TTL_EXPIRED"\} 2$/m);
    assert.match(t, /^clatd_packets_out_total\{direction="4to6"\} 8$/m);
    assert.match(t, /^clatd_offloaded_packets_total\{direction="4to6"\} 5$/m);
    assert.match(t, /^clatd_offloaded_packets_total\{direction="6to4"\} 0$/m);
    assert.match(t, /^clatd_icmp_errors_total\{direction="4to6"\} 2$/m);
    assert.match(t, /^clatd_icmp_rate_limited_total\{direction="4to6"\} 1$/m);
    // A datapath without these counters (the fakes) gives zeros, never a missing or NaN line.
    assert.match(t, /^clatd_icmp_errors_total\{direction="6to4"\} 0$/m);
    assert.doesNotMatch(t, /direction="(46|64)"/);
    // Errors and the non-error apart.
    assert.match(t, /^clatd_io_errors_total\{kind="tun_write"\} 3$/m);
    assert.match(t, /^clatd_io_errors_total\{kind="tun_read"\} 0$/m);
    assert.match(t, /^clatd_checksums_completed_total 4$/m);
    assert.match(t, /^clatd_tso_superpackets_total\{direction="in"\} 6$/m);
    assert.match(t, /^clatd_tso_superpackets_total\{direction="out"\} 7$/m);
    assert.match(t, /^clatd_tun_tso_refused 0$/m);
    assert.doesNotMatch(t, /io_events|csumCompleted/);
    assert.match(t, /^clatd_state\{state="running"\} 1$/m);
    assert.match(t, /^clatd_state\{state="paused"\} 0$/m);
    assert.match(t, /^clatd_reconfigurations_total\{kind="pref64-changed"\} 1$/m);
    assert.match(t, /^clatd_dad_attempts_total 1$/m);
    assert.match(t, /^clatd_ipv4_mtu_bytes 1472$/m);
    assert.match(t, /^clatd_start_time_seconds 1700000000\.5$/m);
    assert.doesNotMatch(t, /uptime|^clatd_ipv4_mtu /m);
    assert.match(t, /^clatd_info\{uplink="eth0",pref64="64:ff9b::\/96",pref64_source="ra",/m);
    for (const line of t.trim().split('\n')) assert.match(line, /^(# (HELP|TYPE) \S+ .+|\S+(\{.*\})? \d+(\.\d+)?)$/);
    assert.doesNotMatch(t, /^clatd_nd_responder_total\{/m, 'no samples while the kernel answers');
    const r = renderMetrics({
      ...snapshot(),
      responder: {
        address: '2001:db8::1',
        answering: true,
        answered: 7,
        nud: 2,
        defended: 1,
        announced: 1,
        sendErrors: 0,
        ignored: { 'before-dad': 3 },
      },
    });
    assert.match(r, /^clatd_nd_responder_total\{kind="answered"\} 7$/m);
    assert.match(r, /^clatd_nd_responder_total\{kind="nud"\} 2$/m);
    assert.match(r, /^clatd_nd_responder_total\{kind="defended"\} 1$/m);
    assert.match(r, /^clatd_nd_responder_ignored_total\{reason="before-dad"\} 3$/m);
  });

  test('status text: the worker path super-packets, and a TUN without TSO said in words', () => {
    const s = snapshot();
    assert.match(formatStatus(s), /super-packets +6 read whole from the TUN, 7 written whole to it/);
    assert.doesNotMatch(formatStatus(s), /refused the TUN/);
    s.counters.io = { tunTsoRefused: 1 };
    assert.match(formatStatus(s), /the kernel refused the TUN its segmentation offload/);
    assert.doesNotMatch(formatStatus(s), /super-packets/);
  });

  test('process metrics under the names every Prometheus client uses', () => {
    const proc = processStats();
    assert.ok(proc.residentBytes > 0 && proc.heapUsedBytes > 0);
    assert.ok(proc.openFds !== undefined && proc.openFds > 2, 'from /proc/self/fd');
    const t = renderMetrics(snapshot(), { proc });
    for (const [name, type] of [
      ['process_cpu_seconds_total', 'counter'],
      ['process_cpu_user_seconds_total', 'counter'],
      ['process_cpu_system_seconds_total', 'counter'],
      ['process_start_time_seconds', 'gauge'],
      ['process_resident_memory_bytes', 'gauge'],
      ['process_open_fds', 'gauge'],
      ['process_max_fds', 'gauge'],
      ['nodejs_heap_size_total_bytes', 'gauge'],
      ['nodejs_heap_size_used_bytes', 'gauge'],
      ['nodejs_external_memory_bytes', 'gauge'],
    ]) {
      assert.match(t, new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
      assert.match(t, new RegExp(`^${name} \\d+(\\.\\d+)?(e[+-]?\\d+)?$`, 'm'), name);
    }
    // With the memory `clatd run` adds to the status: threads, and the datapath's worker threads.
    const withMemory = renderMetrics({ ...snapshot(), memory: { ...memoryStatus(), threads: 11, workerThreads: 2 } });
    assert.match(withMemory, /^# TYPE clatd_worker_threads gauge\nclatd_worker_threads 2$/m);
    assert.match(withMemory, /^# TYPE process_threads gauge\nprocess_threads 11$/m);
    assert.doesNotMatch(t, /clatd_worker_threads/);
    const start = Number(/^process_start_time_seconds (\S+)$/m.exec(t)?.[1]);
    assert.ok(Math.abs(start - (Date.now() / 1000 - process.uptime())) < 2);
  });

  test('parsed by a real Prometheus text parser (prometheus_client)', {
    skip: PROM_PYTHON === undefined ? 'needs python3-prometheus-client' : false,
  }, () => {
    const t = renderMetrics(snapshot(), { startTimeSec: 1_700_000_000, proc: processStats() });
    const { samples, types } = promParse(t);
    assert.equal(types.clatd_packets, 'counter');
    assert.equal(types.clatd_bytes_out, 'counter');
    assert.equal(types.clatd_io_errors, 'counter');
    assert.equal(types.clatd_ipv4_mtu_bytes, 'gauge');
    assert.equal(types.clatd_start_time_seconds, 'gauge');
    assert.equal(types.process_resident_memory_bytes, 'gauge');
    assert.equal(types.process_cpu_seconds, 'counter');
    assert.ok(samples.includes('clatd_packets_total{direction="4to6"} 10.0'), samples.join('\n'));
    assert.ok(samples.includes('clatd_bytes_out_total{direction="4to6"} 800.0'));
    assert.ok(samples.includes('clatd_io_errors_total{kind="tun_write"} 3.0'));
    assert.ok(samples.includes('clatd_checksums_completed_total{} 4.0'));
    assert.ok(samples.includes('clatd_drops_total{direction="4to6",reason="D46_TTL_EXPIRED"} 2.0'));
    assert.ok(samples.includes('clatd_start_time_seconds{} 1700000000.0'));
  });

  test('served over HTTP on loopback: GET and HEAD, with or without a query string', async () => {
    const m = new MetricsServer('127.0.0.1', 0, snapshot, 1_700_000_000);
    await m.listen();
    try {
      const port = m.address?.port;
      const r = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /version=0\.0\.4/);
      const body = await r.text();
      assert.match(body, /clatd_state\{state="running"\} 1/);
      assert.match(body, /^clatd_start_time_seconds 1700000000$/m);
      assert.match(body, /^process_resident_memory_bytes \d+$/m);
      const q = await fetch(`http://127.0.0.1:${port}/metrics?x=1`);
      assert.equal(q.status, 200);
      assert.match(await q.text(), /clatd_state\{state="running"\} 1/);
      const h = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'HEAD' });
      assert.equal(h.status, 200);
      assert.match(h.headers.get('content-type') ?? '', /version=0\.0\.4/);
      assert.ok(Number(h.headers.get('content-length')) > 1000);
      assert.equal(await h.text(), '');
      const hq = await fetch(`http://127.0.0.1:${port}/metrics?x=1`, { method: 'HEAD' });
      assert.equal(hq.status, 200);
      const post = await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${port}/other?metrics`)).status, 404);
    } finally {
      m.close();
    }
  });
});

describe('control socket', () => {
  test('JSON request and answer; unknown commands and junk get an error; a second server is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clatd-ctl-'));
    const path = join(dir, 'sub', 'c.sock');
    const s = new ControlServer(path, (req) => {
      if (req.cmd === 'status') return { ok: true, status: { state: 'running' } };
      throw new Error(`unknown command "${req.cmd}"`);
    });
    try {
      await s.listen();
      assert.deepEqual(await request(path, 'status'), { ok: true, status: { state: 'running' } });
      assert.deepEqual(await request(path, 'ping'), { ok: true });
      assert.deepEqual(await request(path, 'nope'), { ok: false, error: 'unknown command "nope"' });
      const other = new ControlServer(path, () => ({}));
      await assert.rejects(other.listen(), /another clatd is running/);
    } finally {
      s.close();
      rmSync(dir, { recursive: true, force: true });
    }
    await assert.rejects(request(path, 'status'), /no clatd is running there/);
  });

  test('a client that never finishes its request is disconnected; others are still served', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clatd-ctl-'));
    const path = join(dir, 'c.sock');
    const s = new ControlServer(path, () => ({ ok: true }), { deadlineMs: 100 });
    try {
      await s.listen();
      const silent = createConnection(path);
      silent.write('{"cmd":');
      silent.resume(); // reads the server's error line, and so sees the close after it
      const closed = await new Promise<number>((resolve) => {
        const t0 = Date.now();
        silent.on('close', () => resolve(Date.now() - t0));
        silent.on('error', () => {});
      });
      assert.ok(closed < 2000, `closed after ${closed} ms`);
      assert.deepEqual(await request(path, 'status'), { ok: true });
    } finally {
      s.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('preflight', () => {
  test('one sentence per missing piece, saying what to do', () => {
    const ok = { caps: (1n << 12n) | (1n << 13n), tunExists: true, nftWorks: true };
    assert.doesNotThrow(() => checkPreflight(ok));
    assert.throws(() => checkPreflight({ ...ok, caps: 1n << 12n }), /needs CAP_NET_RAW: run it as root/);
    assert.throws(() => checkPreflight({ ...ok, caps: 0n }), /needs CAP_NET_ADMIN and CAP_NET_RAW/);
    assert.throws(() => checkPreflight({ ...ok, tunExists: false }), /\/dev\/net\/tun is missing: load the tun module/);
    assert.throws(() => checkPreflight({ ...ok, nftWorks: false }), /install nftables/);
    // A 0600 node and a process that is not root: clatd could never build (or rebuild) its TUN.
    assert.throws(
      () => checkPreflight({ ...ok, tun: 'EACCES' }),
      /\/dev\/net\/tun cannot be opened by uid \d+ \(EACCES\): .*mode 0666/,
    );
    assert.throws(() => checkPreflight({ ...ok, tun: 'missing' }), /\/dev\/net\/tun is missing/);
    assert.doesNotThrow(() => checkPreflight({ ...ok, tun: 'ok' }));
  });
  test("probeTun: ok, missing, or the open's error code", () => {
    assert.equal(probeTun('/nonexistent/tun'), 'missing');
    assert.equal(probeTun('/dev/null'), 'ok');
    assert.equal(probeTun('/'), 'EISDIR');
  });
  test('reads CapEff', () => {
    assert.equal(
      effectiveCaps(() => 'Name:\tnode\nCapEff:\t0000000000003000\n'),
      0x3000n,
    );
    assert.equal(
      effectiveCaps(() => 'nothing'),
      undefined,
    );
  });
});

describe('router solicitation', () => {
  test('RFC 4861 §4.1 from ::, checksum verifies', () => {
    const p = buildRouterSolicitation();
    assert.equal(p.length, 48);
    assert.equal(p[40], 133);
    assert.equal(p[7], 255);
    // A correct checksum makes the folded sum over pseudo-header and message 0xffff.
    let s = sum16(p, 40, 8, pseudoSum6(p, 8, 24, 58, 8));
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    assert.equal(s, 0xffff);
  });
});
