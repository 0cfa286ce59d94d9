/**
 * `clatd status`: asks a running daemon over its control socket and prints its state, addresses,
 * prefix, DAD result, MTU, uptime and counters, as text or (--json) as the daemon's JSON.
 */
import { defaultControlPath } from '../daemon/config.js';
import { ControlError, listSockets, request } from '../daemon/control.js';
import type { DirectionCounters, ResponderStatus } from '../daemon/ports.js';
import { describeSource, type LanStatus, type MemoryStatus, type StatusSnapshot } from '../daemon/status.js';
import { type CommandSpec, parseCommand, UsageError } from '../options/args.js';

export const STATUS_SPEC: CommandSpec = {
  name: 'status',
  summary: 'Show the state, addresses, NAT64 prefix, DAD result, MTU, uptime and counters of a running clatd.',
  usage: 'clatd status [--json] [--interface IF | --control PATH]',
  options: {
    json: { type: 'boolean', help: 'print the status as JSON' },
    interface: { type: 'string', short: 'i', value: 'IF', help: 'the daemon of this uplink (/run/clatd/IF.sock)' },
    control: { type: 'string', value: 'PATH', help: 'control socket path (default: the only one in /run/clatd)' },
  },
};

export function duration(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m ${s}s`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

function direction(name: string, c: DirectionCounters, ndBy: string): string[] {
  const drops = Object.entries(c.drops)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = drops.reduce((a, [, n]) => a + n, 0);
  // What the packets were besides drops; the JSON form has every counter.
  const also = [
    c.translated !== undefined
      ? `${c.translated} translated${c.offloaded ? ` (${c.offloaded} in the kernel)` : ''}`
      : '',
    c.neighbor ? `${c.neighbor} neighbor discovery (answered by ${ndBy})` : '',
    c.paused ? `${c.paused} while paused` : '',
    c.oversize ? `${c.oversize} oversize` : '',
  ].filter((x) => x !== '');
  const lines = [
    `  ${name.padEnd(11)} ${c.packets} packets, ${c.bytes} bytes, ${total} dropped${also.map((x) => `, ${x}`).join('')}`,
  ];
  for (const [reason, n] of drops) lines.push(`  ${''.padEnd(11)}   ${reason}: ${n}`);
  const errors = c.icmpErrors ?? 0;
  const limited = c.icmpRateLimited ?? 0;
  if (errors > 0 || limited > 0)
    lines.push(`  ${''.padEnd(11)} ${errors} ICMP errors sent back, ${limited} more held back by the rate limit`);
  return lines;
}

/** clatd's own answers to neighbor solicitations: what it did, then what it ignored by reason. */
function responder(r: ResponderStatus): string[] {
  const row = (k: string, v: string) => `  ${k.padEnd(11)} ${v}`;
  const state = r.failed
    ? `stopped: ${r.failed}`
    : r.answering
      ? `answering for ${r.address}`
      : `waiting for DAD of ${r.address}`;
  const lines = [
    row('ND', `clatd answers neighbor solicitations itself (${state})`),
    row(
      '',
      `${r.answered} answered (${r.nud} unreachability probes), ${r.defended} DAD probes of others defended, ` +
        `${r.announced} announced, ${r.sendErrors} send errors`,
    ),
  ];
  const ignored = Object.entries(r.ignored).sort((a, b) => b[1] - a[1]);
  if (ignored.length) lines.push(row('', `ignored: ${ignored.map(([k, n]) => `${k} ${n}`).join(', ')}`));
  return lines;
}

/** Router mode: whether the LANs are served, and each LAN's traffic and drops. */
function lanLines(lan: LanStatus): string[] {
  const row = (k: string, v: string) => `  ${k.padEnd(11)} ${v}`;
  const lines = [
    row(
      'LAN',
      lan.serving
        ? lan.mode === 'stateless'
          ? `served (stateless, EAM; TCP MSS ${lan.mss})`
          : `served (NAT44 into ${lan.masqueradeTo}, TCP MSS ${lan.mss})`
        : `not served: ${lan.reason ?? 'not translating'}`,
    ),
  ];
  for (const m of lan.mapped ?? []) lines.push(row('', `${m.v4} <-> ${m.v6}`));
  if (lan.fastPath) lines.push(row('', `kernel fast path ${lan.fastPath}`));
  for (const i of lan.interfaces) {
    const drops = Object.entries(i.drops).filter(([, n]) => n > 0);
    lines.push(
      row(
        '',
        `${i.name} ${i.up ? 'up' : 'down'} ${i.subnets.join(', ') || '(no IPv4 address)'}: out ${i.packetsOut} packets ` +
          `${i.bytesOut} bytes, in ${i.packetsIn} packets ${i.bytesIn} bytes` +
          (drops.length ? `, dropped ${drops.map(([k, n]) => `${k} ${n}`).join(' ')}` : ''),
      ),
    );
    if (i.problem) lines.push(row('', `  ${i.problem}`));
  }
  return lines;
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

/** `41.2 MiB resident (12.0 MiB anonymous), heap 5.1 of 8.7 MiB, 7 threads, no worker threads running`. */
export function formatMemory(m: MemoryStatus): string {
  const anon = Number.isFinite(m.anonBytes) ? ` (${mib(m.anonBytes)} anonymous)` : '';
  const workers =
    m.workerThreads === 0
      ? 'no worker threads running'
      : `${m.workerThreads} of them datapath worker${m.workerThreads === 1 ? '' : 's'}`;
  return `${mib(m.rssBytes)} resident${anon}, heap ${(m.heapUsedBytes / 1048576).toFixed(1)} of ${mib(m.heapTotalBytes)}, ${m.threads} threads, ${workers}`;
}

/** The human-readable form of a status snapshot. */
export function formatStatus(s: StatusSnapshot): string {
  const row = (k: string, v: string) => `  ${k.padEnd(11)} ${v}`;
  const lines = [`clatd ${s.pid}: ${s.state} for ${duration(s.stateSinceSec)}${s.reason ? ` (${s.reason})` : ''}`];
  lines.push(row('uplink', s.uplink ? `${s.uplink.name} (ifindex ${s.uplink.ifindex})` : '-'));
  lines.push(row('NAT64', s.pref64 ? `${s.pref64} from ${describeSource(s.pref64Source ?? 'flag')}` : '-'));
  for (const r of s.pref64Routers)
    lines.push(
      row('', `PREF64 ${r.prefix} from ${r.router}, ${duration(r.expiresInSec)} left${r.chosen ? ' (in use)' : ''}`),
    );
  for (const r of s.pref64Refused) lines.push(row('', `refused PREF64 ${r.prefix} from ${r.router}: ${r.why}`));
  lines.push(row('CLAT IPv4', s.clat4 ?? '-'));
  const where =
    s.uplinkMode?.mode === 5
      ? " (private: NATed to the host's address)"
      : s.uplinkMode?.mode === 4
        ? ' (leased)'
        : s.uplinkMode?.mode === 3
          ? ' (routed prefix)'
          : ` (in ${s.prefix64})`;
  lines.push(row('CLAT IPv6', s.clat6 ? `${s.clat6}${where}` : '-'));
  const m = s.uplinkMode;
  if (m) {
    lines.push(row('mode', `${m.mode}, ${m.name}: ${m.how}`));
    for (const w of m.why) lines.push(row('', `not ${w.mode}: ${w.why}`));
  }
  const blocked =
    s.dad.result === 'blocked'
      ? `, every address answered for in ${s.dad.blockedRounds} round(s) in a row; next round in ${s.dad.retryInSec ?? 0} s`
      : '';
  lines.push(
    row(
      'DAD',
      s.dad.result === 'skipped'
        ? `skipped: ${s.dad.skipped}`
        : `${s.dad.result} (--dad ${s.dad.mode}, ${s.dad.attempts} attempt(s)${blocked})`,
    ),
  );
  for (const d of s.dad.duplicates) lines.push(row('', `duplicate ${d.address}: ${d.by}`));
  const route =
    s.routeMetric === undefined
      ? ''
      : s.routeMetric === null
        ? ', no IPv4 default route'
        : `, IPv4 default route metric ${s.routeMetric}`;
  lines.push(row('TUN', s.tun ? `${s.tun}, MTU ${s.mtu}${route}` : '-'));
  if (s.offload) lines.push(row('offload', s.offload));
  if (s.health) {
    const h = s.health;
    const words = { unknown: 'no replies seen yet', ok: 'replies come back', 'no-replies': 'WARNING: no replies' };
    lines.push(row('health', `${words[h.state]} (for ${duration(h.sinceSec)})`));
    if (h.message) lines.push(row('', h.message));
  }
  lines.push(row('uptime', duration(s.uptimeSec)));
  if (s.memory) lines.push(row('memory', formatMemory(s.memory)));
  if (s.responder) lines.push(...responder(s.responder));
  const ndBy = s.responder ? 'clatd' : 'the kernel';
  lines.push(...direction('4->6', s.counters['46'], ndBy), ...direction('6->4', s.counters['64'], ndBy));
  // Input lost before the datapath saw it, so in none of the counts above.
  const kernelDrops = (s.counters.io as { packetKernelDrops?: number } | undefined)?.packetKernelDrops ?? 0;
  if (kernelDrops > 0)
    lines.push(row('', `${kernelDrops} more dropped by the kernel before clatd read them (packet socket queue full)`));
  // The workers' TCP super-packets (the TUN's segmentation offload), each translated once.
  const io = (s.counters.io ?? {}) as { tunTsoIn?: number; tunTsoOut?: number; tunTsoRefused?: number };
  if ((io.tunTsoIn ?? 0) + (io.tunTsoOut ?? 0) > 0)
    lines.push(
      row('super-packets', `${io.tunTsoIn ?? 0} read whole from the TUN, ${io.tunTsoOut ?? 0} written whole to it`),
    );
  if ((io.tunTsoRefused ?? 0) > 0)
    lines.push(row('', 'the kernel refused the TUN its segmentation offload: the workers carry every packet alone'));
  if (s.lan) lines.push(...lanLines(s.lan));
  const changes = Object.entries(s.changes);
  if (changes.length) lines.push(row('changes', changes.map(([k, n]) => `${k}=${n}`).join(' ')));
  if (s.errors) lines.push(row('errors', String(s.errors)));
  return `${lines.join('\n')}\n`;
}

/** Picks the control socket: --control, --interface, or the only one under /run/clatd. */
export function controlPathFor(control?: string, iface?: string, list = listSockets): string {
  if (control !== undefined) return control;
  if (iface !== undefined) return defaultControlPath(iface);
  const found = list();
  if (found.length === 1) return found[0];
  if (found.length === 0) throw new ControlError('no clatd is running (no control socket in /run/clatd)');
  throw new UsageError(
    `clatd status: several clatd are running (${found.join(', ')}); choose one with --interface or --control`,
  );
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(STATUS_SPEC, argv, out);
  if (!parsed) return 0;
  const v = parsed.values;
  const path = controlPathFor(v.control as string | undefined, v.interface as string | undefined);
  const answer = await request(path, 'status');
  if (answer.ok !== true) throw new ControlError(`clatd at ${path} answered: ${String(answer.error)}`);
  const s = answer.status as StatusSnapshot;
  out(v.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s));
  return 0;
}
