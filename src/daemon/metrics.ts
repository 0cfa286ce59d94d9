/**
 * Prometheus text exposition (format 0.0.4) of a daemon's status, served over node:http on
 * `--metrics HOST:PORT` at /metrics (GET or HEAD; a query string is ignored). Counters per direction
 * and drop reason, state gauges, DAD attempts and reconfigurations by kind, and the process
 * metrics every Prometheus client library exports (`process_*`, `nodejs_heap_*`).
 *
 * Naming follows Prometheus's conventions: a unit suffix (`_bytes`, `_seconds`), `_total` on
 * counters, a start time rather than an uptime (`time() - clatd_start_time_seconds` is the uptime,
 * and a start time shows restarts as steps where an uptime saw-tooths). Hand-written rather than
 * prom-client: everything is drawn from one status snapshot per scrape, the page is small, and the
 * daemon keeps no dependency for it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { STATES } from './state.js';
import type { LanInterfaceStatus, LanStatus, StatusSnapshot } from './status.js';

/** The counters' direction keys as label values a person reads: IPv4 in (to IPv6), IPv6 in (to IPv4). */
export const DIRECTION_LABEL = { '46': '4to6', '64': '6to4' } as const;

/** I/O error counters of the datapath (counters.ts `IoCounters`) by label value; checksums are not errors. */
const IO_ERRORS: Record<string, string> = {
  tunReadErrors: 'tun_read',
  packetReadErrors: 'packet_read',
  tunWriteFailed: 'tun_write',
  rawWriteFailed: 'raw_write',
  packetMalformed: 'malformed_frame',
};

/** What the process uses, read at each scrape. */
export interface ProcessStats {
  /** Unix time (s) the process started. */
  startTimeSec: number;
  cpuUserSec: number;
  cpuSystemSec: number;
  residentBytes: number;
  heapTotalBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  /** Open file descriptors (undefined when /proc is not readable). */
  openFds?: number;
  /** The soft limit on open files (undefined when unknown). */
  maxFds?: number;
}

const PROCESS_START_SEC = Date.now() / 1000 - process.uptime();

/** This process's stats: CPU and memory from Node, descriptors from /proc/self. */
export function processStats(): ProcessStats {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  let openFds: number | undefined;
  let maxFds: number | undefined;
  try {
    openFds = readdirSync('/proc/self/fd').length;
  } catch {
    openFds = undefined;
  }
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    maxFds = m ? Number(m[1]) : undefined;
  } catch {
    maxFds = undefined;
  }
  return {
    startTimeSec: PROCESS_START_SEC,
    cpuUserSec: cpu.user / 1e6,
    cpuSystemSec: cpu.system / 1e6,
    residentBytes: mem.rss,
    heapTotalBytes: mem.heapTotal,
    heapUsedBytes: mem.heapUsed,
    externalBytes: mem.external,
    openFds,
    maxFds,
  };
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

type MetricFn = (
  name: string,
  type: 'counter' | 'gauge',
  help: string,
  rows: [Record<string, string>, number][],
) => void;

/** Router mode: LAN traffic through the CLAT and drops, per LAN interface. */
function renderLan(lan: LanStatus, metric: MetricFn): void {
  const rows = (f: (i: LanInterfaceStatus) => [Record<string, string>, number][]) => lan.interfaces.flatMap(f);
  metric('clatd_lan_serving', 'gauge', 'Router mode: 1 while the LANs are served through the CLAT.', [
    [{}, lan.serving ? 1 : 0],
  ]);
  metric(
    'clatd_lan_packets_total',
    'counter',
    'Router mode: IPv4 packets forwarded between a LAN interface and the CLAT, by direction (out: from the LAN).',
    rows((i) => [
      [{ interface: i.name, direction: 'out' }, i.packetsOut],
      [{ interface: i.name, direction: 'in' }, i.packetsIn],
    ]),
  );
  metric(
    'clatd_lan_bytes_total',
    'counter',
    'Router mode: bytes forwarded between a LAN interface and the CLAT, by direction.',
    rows((i) => [
      [{ interface: i.name, direction: 'out' }, i.bytesOut],
      [{ interface: i.name, direction: 'in' }, i.bytesIn],
    ]),
  );
  metric(
    'clatd_lan_drops_total',
    'counter',
    'Router mode: IPv4 packets from a LAN interface dropped, by reason (no-address, wrong-source, elsewhere, not-served).',
    rows((i) => Object.entries(i.drops).map(([reason, n]) => [{ interface: i.name, reason }, n])),
  );
}

/**
 * Renders a status snapshot as Prometheus text. `startTimeSec` is when the daemon started (Unix
 * time); `proc` the process's stats (none: no process metrics).
 */
export function renderMetrics(s: StatusSnapshot, o: { startTimeSec?: number; proc?: ProcessStats } = {}): string {
  const out: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, rows: [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of rows) out.push(`${name}${labels(l)} ${Number.isFinite(v) ? v : 0}`);
  };
  const dirs = ['46', '64'] as const;
  const dir = (d: '46' | '64') => ({ direction: DIRECTION_LABEL[d] });
  metric(
    'clatd_packets_total',
    'counter',
    'Packets read by the datapath, by direction (4to6: IPv4 in, 6to4: IPv6 in).',
    dirs.map((d) => [dir(d), s.counters[d].packets]),
  );
  metric(
    'clatd_bytes_total',
    'counter',
    'Bytes read by the datapath, by direction.',
    dirs.map((d) => [dir(d), s.counters[d].bytes]),
  );
  metric(
    'clatd_packets_out_total',
    'counter',
    'Translated packets handed to the other side, by input direction.',
    dirs.map((d) => [dir(d), s.counters[d].packetsOut ?? 0]),
  );
  metric(
    'clatd_bytes_out_total',
    'counter',
    'Bytes of the translated packets handed to the other side, by input direction.',
    dirs.map((d) => [dir(d), s.counters[d].bytesOut ?? 0]),
  );
  metric(
    'clatd_offloaded_packets_total',
    'counter',
    'Of the packets handed to the other side, those the kernel translated (tc eBPF offload), by input direction.',
    dirs.map((d) => [dir(d), s.counters[d].offloaded ?? 0]),
  );
  metric(
    'clatd_icmp_errors_total',
    'counter',
    'ICMP errors the translator generated and sent back, by input direction.',
    dirs.map((d) => [dir(d), s.counters[d].icmpErrors ?? 0]),
  );
  metric(
    'clatd_icmp_rate_limited_total',
    'counter',
    'Generated ICMP errors discarded by the rate limit (RFC 4443 2.4(f)), by input direction.',
    dirs.map((d) => [dir(d), s.counters[d].icmpRateLimited ?? 0]),
  );
  const io = (s.counters.io ?? {}) as Record<string, unknown>;
  const num = (k: string) => (typeof io[k] === 'number' ? (io[k] as number) : 0);
  metric(
    'clatd_io_errors_total',
    'counter',
    'Datapath I/O errors: failed reads (tun_read, packet_read) and writes (tun_write, raw_write), malformed frames.',
    Object.entries(IO_ERRORS).map(([key, kind]) => [{ kind }, num(key)]),
  );
  metric(
    'clatd_checksums_completed_total',
    'counter',
    'Packets whose checksum the datapath completed (offloaded checksums of local senders); not an error.',
    [[{}, num('csumCompleted')]],
  );
  metric(
    'clatd_packet_kernel_drops_total',
    'counter',
    'IPv6 packets the kernel dropped in front of the packet sockets (their queue full under a flood) before clatd read them.',
    [[{}, num('packetKernelDrops')]],
  );
  metric(
    'clatd_tso_superpackets_total',
    'counter',
    'TCP super-packets the worker path translated once (in: read whole from the TUN; out: written whole to it), those it dropped, and segments it coalesced into one before the TUN.',
    [
      [{ direction: 'in' }, num('tunTsoIn')],
      [{ direction: 'out' }, num('tunTsoOut')],
      [{ direction: 'dropped' }, num('tsoDropped')],
      [{ direction: 'coalesced' }, num('tunCoalesced')],
    ],
  );
  metric(
    'clatd_tun_tso_refused',
    'gauge',
    'Datapath loops whose TUN runs without TSO because the kernel refused TUNSETOFFLOAD (every packet then crosses the TUN one by one).',
    [[{}, num('tunTsoRefused')]],
  );
  const drops: [Record<string, string>, number][] = [];
  for (const d of dirs) {
    for (const [reason, n] of Object.entries(s.counters[d].drops)) drops.push([{ ...dir(d), reason }, n]);
  }
  metric('clatd_drops_total', 'counter', 'Packets dropped, by direction and reason.', drops);
  if (s.lan) renderLan(s.lan, metric);
  metric(
    'clatd_state',
    'gauge',
    'The lifecycle state (1 for the current one).',
    STATES.map((st) => [{ state: st }, st === s.state ? 1 : 0]),
  );
  metric(
    'clatd_state_transitions_total',
    'counter',
    'Transitions into each state.',
    STATES.map((st) => [{ state: st }, s.transitions[st] ?? 0]),
  );
  metric('clatd_dad_attempts_total', 'counter', 'Addresses probed by duplicate address detection.', [
    [{}, s.dadAttempts],
  ]);
  metric(
    'clatd_dad_blocked_rounds',
    'gauge',
    'DAD rounds in a row in which every address tried was answered for by another node (0: DAD passed).',
    [[{}, s.dad.blockedRounds]],
  );
  const m = s.uplinkMode;
  metric(
    'clatd_address_mode',
    'gauge',
    'How the CLAT IPv6 address was obtained (1 for the way in use): 1 on-link anycast, 2 on-link with clatd answering, 3 routed prefix, 4 leased, 5 the host address shared (NAT66).',
    m ? [[{ mode: String(m.mode), announce: m.announce }, 1]] : [],
  );
  metric(
    'clatd_health_no_replies',
    'gauge',
    '1 while translated packets leave and nothing comes back to the CLAT address (see clatd status), else 0.',
    [[{}, s.health?.state === 'no-replies' ? 1 : 0]],
  );
  metric(
    'clatd_pref64_routers',
    'gauge',
    'PREF64s held from Router Advertisements, by router and prefix (1 for the one in use).',
    s.pref64Routers.map((r) => [{ router: r.router, prefix: r.prefix }, r.chosen ? 1 : 0]),
  );
  metric(
    'clatd_pref64_refused',
    'gauge',
    'PREF64s refused lately (they cannot be a NAT64 prefix), by where they came from.',
    s.pref64Refused.map((r) => [{ router: r.router, prefix: r.prefix }, 1]),
  );
  const r = s.responder;
  metric(
    'clatd_nd_responder_total',
    'counter',
    "clatd's own Neighbor Advertisements for the CLAT address (announce respond), by kind: answered (resolution and NUD), nud (of answered, unicast probes), defended (others' DAD probes), announced (unsolicited), send_error.",
    r
      ? [
          [{ kind: 'answered' }, r.answered],
          [{ kind: 'nud' }, r.nud],
          [{ kind: 'defended' }, r.defended],
          [{ kind: 'announced' }, r.announced],
          [{ kind: 'send_error' }, r.sendErrors],
        ]
      : [],
  );
  metric(
    'clatd_nd_responder_ignored_total',
    'counter',
    "Packets clatd's neighbor responder read and did not answer, by reason (before-dad, own-probe, bad-checksum...).",
    r ? Object.entries(r.ignored).map(([reason, n]) => [{ reason }, n]) : [],
  );
  const c = s.control;
  metric(
    'clatd_control_clients_total',
    'counter',
    'Control socket clients, by how they ended: answered, refused (all slots busy), evicted, timed out.',
    c
      ? [
          [{ outcome: 'answered' }, c.answered],
          [{ outcome: 'refused' }, c.refused],
          [{ outcome: 'evicted' }, c.evicted],
          [{ outcome: 'timed-out' }, c.timedOut],
        ]
      : [],
  );
  metric(
    'clatd_reconfigurations_total',
    'counter',
    'Live changes handled, by kind.',
    Object.entries(s.changes).map(([kind, n]) => [{ kind }, n]),
  );
  metric('clatd_errors_total', 'counter', 'Errors logged by the daemon.', [[{}, s.errors]]);
  if (o.startTimeSec !== undefined) {
    metric('clatd_start_time_seconds', 'gauge', 'When the daemon started, in seconds since the Unix epoch.', [
      [{}, o.startTimeSec],
    ]);
  }
  metric('clatd_ipv4_mtu_bytes', 'gauge', 'IPv4 MTU of the TUN (0 when not running).', [[{}, s.mtu ?? 0]]);
  metric('clatd_info', 'gauge', 'Addresses and prefix in use.', [
    [
      {
        uplink: s.uplink?.name ?? '',
        pref64: s.pref64 ?? '',
        pref64_source: s.pref64Source ?? '',
        clat_ipv4: s.clat4 ?? '',
        clat_ipv6: s.clat6 ?? '',
      },
      1,
    ],
  ]);
  if (s.memory) {
    metric(
      'clatd_worker_threads',
      'gauge',
      'Datapath worker threads running (0 while they wait for input beside the kernel fast path).',
      [[{}, s.memory.workerThreads]],
    );
    metric('process_threads', 'gauge', 'Threads of the process.', [[{}, s.memory.threads]]);
  }
  const p = o.proc;
  if (p) {
    metric('process_cpu_user_seconds_total', 'counter', 'User CPU time spent, in seconds.', [[{}, p.cpuUserSec]]);
    metric('process_cpu_system_seconds_total', 'counter', 'System CPU time spent, in seconds.', [[{}, p.cpuSystemSec]]);
    metric('process_cpu_seconds_total', 'counter', 'User and system CPU time spent, in seconds.', [
      [{}, p.cpuUserSec + p.cpuSystemSec],
    ]);
    metric('process_start_time_seconds', 'gauge', 'Start time of the process since the Unix epoch, in seconds.', [
      [{}, p.startTimeSec],
    ]);
    metric('process_resident_memory_bytes', 'gauge', 'Resident memory size, in bytes (worker threads included).', [
      [{}, p.residentBytes],
    ]);
    if (p.openFds !== undefined) {
      metric('process_open_fds', 'gauge', 'Open file descriptors.', [[{}, p.openFds]]);
    }
    if (p.maxFds !== undefined) {
      metric('process_max_fds', 'gauge', 'The limit on open file descriptors.', [[{}, p.maxFds]]);
    }
    metric('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap size of the main thread, in bytes.', [
      [{}, p.heapTotalBytes],
    ]);
    metric('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use on the main thread, in bytes.', [
      [{}, p.heapUsedBytes],
    ]);
    metric('nodejs_external_memory_bytes', 'gauge', 'Memory of C++ objects bound to JavaScript objects, in bytes.', [
      [{}, p.externalBytes],
    ]);
  }
  return `${out.join('\n')}\n`;
}

/**
 * A scrape is one small GET answered at once. Node's HTTP server keeps a connection that sends
 * nothing for ever and gives a slow request 60 s for its headers (checked every 30 s), so slow
 * clients could pile up fds as they did on the control socket: a connection that is quiet for this
 * long, or has not sent its whole request within it, is closed.
 */
export const METRICS_REQUEST_MS = 2000;
/**
 * Connections at once; more are closed as they come. Prometheus holds one per scraper; 16 is
 * plenty and a negligible share of fds.
 */
export const METRICS_MAX_CONNECTIONS = 16;

export class MetricsServer {
  #server?: Server;
  constructor(
    readonly host: string,
    readonly port: number,
    private readonly snapshot: () => StatusSnapshot,
    /** When the daemon started (Unix time, seconds): `clatd_start_time_seconds`. */
    private readonly startTimeSec = Date.now() / 1000,
  ) {}

  async listen(): Promise<void> {
    const server = createServer(
      {
        headersTimeout: METRICS_REQUEST_MS,
        requestTimeout: METRICS_REQUEST_MS,
        connectionsCheckingInterval: METRICS_REQUEST_MS / 4,
      },
      (req, res) => {
        // The path alone: a scraper may add a query string (`/metrics?x=1`), which changes nothing.
        const path = (req.url ?? '/').split('?')[0];
        if (path !== '/metrics' && path !== '/') {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
          return;
        }
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('only GET and HEAD\n');
          return;
        }
        let body: string;
        try {
          body = renderMetrics(this.snapshot(), { startTimeSec: this.startTimeSec, proc: processStats() });
        } catch (e) {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
          return;
        }
        // HEAD: the same headers, content-length included; Node sends no body for it.
        res
          .writeHead(200, {
            'content-type': 'text/plain; version=0.0.4; charset=utf-8',
            'content-length': Buffer.byteLength(body),
          })
          .end(body);
      },
    );
    server.maxConnections = METRICS_MAX_CONNECTIONS;
    server.timeout = METRICS_REQUEST_MS; // a connection that sends nothing at all
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new Error(`--metrics ${this.host}:${this.port}: ${e.message}`)));
      server.listen(this.port, this.host, () => resolve());
    });
    server.unref();
    this.#server = server;
  }

  get address(): { host: string; port: number } | undefined {
    const a = this.#server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  close(): void {
    this.#server?.close();
    this.#server?.closeAllConnections();
    this.#server = undefined;
  }
}
