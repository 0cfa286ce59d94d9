/**
 * Prometheus text exposition (format 0.0.4) of a daemon's status, served over node:http on
 * `--metrics HOST:PORT` at /metrics. Counters per direction and drop reason, state gauges, DAD
 * attempts and reconfigurations by kind.
 */
import { createServer, type Server } from 'node:http';
import { STATES } from './state.js';
import type { StatusSnapshot } from './status.js';

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Renders a status snapshot as Prometheus text. */
export function renderMetrics(s: StatusSnapshot): string {
  const out: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, rows: [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of rows) out.push(`${name}${labels(l)} ${Number.isFinite(v) ? v : 0}`);
  };
  const dirs = ['46', '64'] as const;
  metric(
    'clatd_packets_total',
    'counter',
    'Packets read by the datapath, by direction (46: IPv4 in, 64: IPv6 in).',
    dirs.map((d) => [{ direction: d }, s.counters[d].packets]),
  );
  metric(
    'clatd_bytes_total',
    'counter',
    'Bytes read by the datapath, by direction.',
    dirs.map((d) => [{ direction: d }, s.counters[d].bytes]),
  );
  metric(
    'clatd_packets_out_total',
    'counter',
    'Translated packets handed to the other side, by input direction.',
    dirs.map((d) => [{ direction: d }, s.counters[d].packetsOut ?? 0]),
  );
  metric(
    'clatd_offloaded_packets_total',
    'counter',
    'Of the packets handed to the other side, those the kernel translated (tc eBPF offload), by input direction.',
    dirs.map((d) => [{ direction: d }, s.counters[d].offloaded ?? 0]),
  );
  metric(
    'clatd_icmp_errors_total',
    'counter',
    'ICMP errors the translator generated and sent back, by input direction.',
    dirs.map((d) => [{ direction: d }, s.counters[d].icmpErrors ?? 0]),
  );
  metric(
    'clatd_icmp_rate_limited_total',
    'counter',
    'Generated ICMP errors discarded by the rate limit (RFC 4443 2.4(f)), by input direction.',
    dirs.map((d) => [{ direction: d }, s.counters[d].icmpRateLimited ?? 0]),
  );
  const io = (s.counters.io ?? {}) as Record<string, unknown>;
  metric(
    'clatd_io_events_total',
    'counter',
    'Datapath I/O events: failed reads and writes, malformed frames, completed checksums, packets the kernel dropped in front of the packet sockets (packetKernelDrops).',
    Object.entries(io)
      .filter((e): e is [string, number] => typeof e[1] === 'number')
      .map(([kind, n]) => [{ kind }, n]),
  );
  const drops: [Record<string, string>, number][] = [];
  for (const d of dirs) {
    for (const [reason, n] of Object.entries(s.counters[d].drops)) drops.push([{ direction: d, reason }, n]);
  }
  metric('clatd_drops_total', 'counter', 'Packets dropped, by direction and reason.', drops);
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
  metric('clatd_uptime_seconds', 'gauge', 'Seconds since the daemon started.', [[{}, s.uptimeSec]]);
  metric('clatd_ipv4_mtu', 'gauge', 'IPv4 MTU of the TUN (0 when not running).', [[{}, s.mtu ?? 0]]);
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
  ) {}

  async listen(): Promise<void> {
    const server = createServer(
      {
        headersTimeout: METRICS_REQUEST_MS,
        requestTimeout: METRICS_REQUEST_MS,
        connectionsCheckingInterval: METRICS_REQUEST_MS / 4,
      },
      (req, res) => {
        if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
          return;
        }
        let body: string;
        try {
          body = renderMetrics(this.snapshot());
        } catch (e) {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
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
