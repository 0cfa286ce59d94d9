/**
 * `npm run soak` (root; not in CI): the real `clatd run` for SOAK_MIN minutes (default 10) under
 * mixed load, with the host changing under it every minute, sampled every SAMPLE_S seconds.
 *
 * Topology: test/helpers/clatd-run.ts's host/router veth pair, the PREF64 from the router's RAs.
 * The router serves 192.0.2.1 under both prefixes the soak switches between.
 *
 * Load, all the time: ping (5/s), a UDP flood (iperf3 -u, UDP_MBIT Mbit/s), TCP up and TCP down
 * (iperf3, and -R), each client with a one-off server of its own and both started again when the
 * client ends (a flap or a prefix change breaks its flow); DNS through the router's DNS64 (unbound),
 * DNS_QPS queries a second: A queries over IPv4 through the CLAT, AAAA queries synthesised by the
 * DNS64 over IPv6. Each minute, 20 s in: the uplink goes down for 2 s (the kernel flushes its IPv6
 * address and routes, put back as a DHCP/SLAAC client would); 35 s in: the RA's PREF64 changes to
 * the other prefix; 50 s in: `nft flush ruleset` in the host (clatd must put its table back).
 *
 * Sampled: clatd's state, RSS and open fds (/proc), the main thread's V8 heap (its metrics'
 * nodejs_heap_size_used_bytes), and the event loop's delay, seen from outside as the time a
 * metrics scrape takes (served on the main thread's loop: the delay of a timer inside would also
 * wait on it). Prints a table; writes JSON to $BENCH_OUT.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { IPV4ONLY_ZONE, LAB_ZONE, unboundConf } from '../src/lab/configs.js';
import {
  leftovers,
  running,
  setUp,
  startClatd,
  startRaSender,
  statusOf,
  withHostAndRouter,
} from '../test/helpers/clatd-run.js';
import { procSample } from '../test/helpers/fuzz-live.js';
import type { Netns } from '../test/helpers/netns.js';

const MIN = Number(process.env.SOAK_MIN ?? 10);
const SAMPLE_S = Number(process.env.SAMPLE_S ?? 10);
const UDP_MBIT = Number(process.env.UDP_MBIT ?? 20);
const PREFIXES = ['2001:db8:64::/96', '2001:db8:46::/96'];
const METRICS = '127.0.0.1:9464';
const DNS_QPS = Number(process.env.DNS_QPS ?? 10);
/** The IPv4 server's address under each prefix: unbound answers on all of them. */
const SERVERS6 = ['2001:db8:64::c000:201', '2001:db8:46::c000:201'];
/** iperf3 accepts a receive timeout only with -R, a send timeout only for TCP. */
const CONNECT_TIMEOUT = ['--connect-timeout', '3000'];
/** The host's link back after a down: the kernel flushed its IPv6 address and routes (keep_addr_on_down=0). */
const LINK_UP =
  'ip link set veth-a up; ip addr replace 2001:db8:1::10/64 dev veth-a nodad; ' +
  'ip -6 route replace default via 2001:db8:1::1 dev veth-a';

/** Times a metrics scrape from inside the namespace (Python, so the spawn is not in the figure). */
const SCRAPE_PY = `
import sys, time, urllib.request
t = time.monotonic()
body = urllib.request.urlopen('http://${METRICS}/metrics', timeout=10).read().decode()
ms = (time.monotonic() - t) * 1000
heap = [l.split()[-1] for l in body.splitlines() if l.startswith('nodejs_heap_size_used_bytes')]
print('%.2f %s' % (ms, heap[0] if heap else 'nan'))
`;

interface Sample {
  t: number;
  state: string;
  rssMb: number;
  fds: number;
  heapMb: number;
  scrapeMs: number;
  clat6: string;
  pref64: string;
  /** What the routers offer (prefix of each), as clatd holds it. */
  offers: string;
  in64: number;
  in46: number;
  event: string;
}

/**
 * DNS load from the host, QPS a second, half over IPv4 through the CLAT (A server.lab to 192.0.2.1,
 * the router's unbound under the NAT64 prefix), half over IPv6 to the DNS64 (AAAA server.lab,
 * synthesised). Prints a running count once a second; the last line is the summary.
 */
const DNS_LOAD_PY = `
import os, random, select, signal, socket, struct, sys, time
qps = float(sys.argv[1])
def query(qtype):
    qid = random.randrange(65536)
    name = b''.join(bytes([len(p)]) + p for p in b'server.lab'.split(b'.')) + b'\\0'
    return qid, struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0) + name + struct.pack('!HH', qtype, 1)
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sent = {'A': 0, 'AAAA': 0}; ok = {'A': 0, 'AAAA': 0}
stop = False
def end(*_):
    global stop
    stop = True
signal.signal(signal.SIGINT, end)
last = time.monotonic()
while not stop:
    for kind, sock, dst, qtype in (('A', s4, ('192.0.2.1', 53), 1), ('AAAA', s6, ('2001:db8:1::1', 53), 28)):
        qid, q = query(qtype)
        try:
            sock.sendto(q, dst); sent[kind] += 1
        except OSError:
            continue
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            r, _, _ = select.select([sock], [], [], max(0, deadline - time.monotonic()))
            if not r: break
            data = sock.recv(2048)
            if len(data) >= 12 and struct.unpack('!H', data[:2])[0] == qid:
                if struct.unpack('!H', data[6:8])[0] > 0: ok[kind] += 1
                break
        time.sleep(max(0, 1 / qps - 0.001))
    if time.monotonic() - last >= 1:
        last = time.monotonic()
        print('A %d/%d answered over IPv4 through the CLAT, AAAA %d/%d synthesised by the DNS64' % (ok['A'], sent['A'], ok['AAAA'], sent['AAAA']), flush=True)
print('A %d/%d answered over IPv4 through the CLAT, AAAA %d/%d synthesised by the DNS64' % (ok['A'], sent['A'], ok['AAAA'], sent['AAAA']), flush=True)
`;

/** unbound on the router as the DNS64, on its LAN address and the IPv4 server's address under both prefixes. */
function startUnbound(router: Netns, dir: string): ChildProcess {
  const d = join(dir, 'unbound');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'ipv4only.arpa.zone'), IPV4ONLY_ZONE);
  writeFileSync(join(d, 'lab.zone'), LAB_ZONE);
  writeFileSync(join(d, 'unbound.conf'), unboundConf(d, PREFIXES[0], ['2001:db8:1::1', ...SERVERS6]));
  return router.spawn('unbound', ['-d', '-c', join(d, 'unbound.conf')], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the soak builds network namespaces: run it as root');
  const out = process.env.BENCH_OUT || mkdtempSync(join(tmpdir(), 'clatd-soak-'));
  mkdirSync(out, { recursive: true });
  const log = (l: string) => process.stderr.write(`[soak] ${l}\n`);
  const samples: Sample[] = [];
  const restarts: Record<string, number> = { tcp: 0, tcpR: 0, udp: 0 };
  /** The last words of each kind of client that ended early (why it was restarted). */
  const lastError: Record<string, string> = {};
  let pingSummary = '';
  let dnsSummary = '';
  let left: string[] = [];
  let exit: unknown;
  await withHostAndRouter(async (p, dir) => {
    setUp(p);
    p.b.exec('ip', 'addr', 'add', '2001:db8:46::c000:201/128', 'dev', 'lo');
    const ra = startRaSender(p, dir, 1800);
    const sock = join(dir, 'clatd.sock');
    const c = startClatd(p.a, ['--control', sock, '--dad', 'off', '--metrics', METRICS]);
    await c.waitFor(running, 20_000);
    const pid = statusOf(p.a, sock).pid as number;
    writeFileSync(join(dir, 'scrape.py'), SCRAPE_PY);
    const end = Date.now() + MIN * 60_000;
    const t0 = Date.now();
    const unbound = startUnbound(p.b, dir);
    const dns = p.a.spawn('python3', ['-c', DNS_LOAD_PY, String(DNS_QPS)], { stdio: ['ignore', 'pipe', 'ignore'] });
    let dnsText = '';
    dns.stdout?.on('data', (d) => {
      dnsText = String(d).trim().split('\n').pop() ?? dnsText;
    });
    const dnsDone = new Promise((r) => dns.once('exit', r));
    await sleep(500);
    const ping = p.a.spawn('ping', ['-i', '0.2', '192.0.2.1'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let pingText = '';
    ping.stdout?.on('data', (d) => {
      pingText = (pingText + String(d)).slice(-2000);
    });
    const pingDone = new Promise((r) => ping.once('exit', r));
    // Each load generator runs again whenever it ends, until the soak does.
    const loops = (
      [
        // The timeouts end a client whose flow a change broke, so that the loop starts a new one.
        [
          'tcp',
          5202,
          ['-c', '192.0.2.1', '-p', '5202', '-t', '3600', '-b', '200M', ...CONNECT_TIMEOUT, '--snd-timeout', '5000'],
        ],
        [
          'tcpR',
          5203,
          [
            '-c',
            '192.0.2.1',
            '-p',
            '5203',
            '-t',
            '3600',
            '-R',
            '-b',
            '200M',
            ...CONNECT_TIMEOUT,
            '--rcv-timeout',
            '5000',
          ],
        ],
        [
          'udp',
          5201,
          ['-c', '192.0.2.1', '-p', '5201', '-t', '3600', '-u', '-b', `${UDP_MBIT}M`, '-l', '512', ...CONNECT_TIMEOUT],
        ],
      ] as const
    ).map(async ([name, port, args]) => {
      let first = true;
      while (Date.now() < end) {
        if (!first) restarts[name]++;
        first = false;
        // A one-off server per client: a server whose test lost its flow can stay busy for long
        // after its client gave up, and refused every new client (hundreds of times in 10 minutes).
        const server = p.b.spawn('iperf3', ['-s', '-1', '-p', String(port), '--idle-timeout', '10'], {
          stdio: 'ignore',
        });
        await sleep(300);
        const k = p.a.spawn('iperf3', [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let said = '';
        const keep = (d: unknown) => {
          said = (said + String(d)).slice(-300);
        };
        k.stdout?.on('data', keep);
        k.stderr?.on('data', keep);
        k.once('exit', () => {
          if (Date.now() < end) lastError[name] = said.trim().split('\n').slice(-2).join(' / ');
        });
        const done = new Promise((r) => k.once('exit', r));
        const t = setInterval(() => {
          if (Date.now() >= end) k.kill('SIGINT');
        }, 1000);
        await done;
        clearInterval(t);
        if (server.exitCode === null && server.signalCode === null) server.kill('SIGTERM');
        await sleep(1000);
      }
    });

    let prefixIdx = 0;
    const events: string[] = [];
    const act = async (at: number) => {
      const s = Math.round((at - t0) / 1000) % 60;
      if (s === 20) {
        p.a.exec('ip', 'link', 'set', 'veth-a', 'down');
        await sleep(2000);
        p.a.sh(LINK_UP);
        events.push('uplink flap');
      } else if (s === 35) {
        prefixIdx = 1 - prefixIdx;
        writeFileSync(ra.cfg, JSON.stringify({ ...ra.ra, pref64: PREFIXES[prefixIdx] }));
        ra.sender.kill('SIGHUP');
        events.push(`PREF64 -> ${PREFIXES[prefixIdx]}`);
      } else if (s === 50) {
        p.a.exec('nft', 'flush', 'ruleset');
        events.push('nft flush ruleset');
      }
    };
    const sample = () => {
      const st = statusOf(p.a, sock);
      const pr = procSample(pid, t0);
      const [ms, heap] = p.a.exec('python3', join(dir, 'scrape.py')).trim().split(' ');
      samples.push({
        t: pr.atSec,
        state: st.state,
        rssMb: pr.rssKb / 1024,
        fds: pr.fds,
        heapMb: Number(heap) / 2 ** 20,
        scrapeMs: Number(ms),
        clat6: st.clat6,
        pref64: st.pref64,
        offers: (st.pref64Routers as { prefix: string }[]).map((r) => r.prefix).join(' '),
        in64: st.counters['64'].packets,
        in46: st.counters['46'].packets,
        event: events.splice(0).join(', '),
      });
      const x = samples[samples.length - 1];
      log(
        `${x.t}s ${x.state} RSS ${x.rssMb.toFixed(1)} MB, ${x.fds} fds, heap ${x.heapMb.toFixed(1)} MB, scrape ${x.scrapeMs} ms ${x.event}`,
      );
    };
    sample();
    let nextSample = t0 + SAMPLE_S * 1000;
    while (Date.now() < end) {
      await sleep(1000 - ((Date.now() - t0) % 1000));
      await act(Date.now());
      if (Date.now() >= nextSample) {
        nextSample += SAMPLE_S * 1000;
        sample();
      }
      if (c.lines.length > 5000) c.lines.splice(0, c.lines.length - 1000);
      if (c.child.exitCode !== null || c.child.signalCode !== null) {
        log('clatd exited');
        break;
      }
    }
    await Promise.all(loops);
    ping.kill('SIGINT');
    await pingDone;
    pingSummary = /\d+ packets transmitted.*/.exec(pingText)?.[0] ?? '';
    dns.kill('SIGINT');
    await dnsDone;
    dnsSummary = dnsText;
    unbound.kill('SIGTERM');
    // A last sample after the load, the host settled.
    await sleep(3000);
    sample();
    c.child.kill('SIGTERM');
    exit = await c.exited;
    left = leftovers(p.a);
  });
  const rows = [
    '|    t s | state    | RSS MB | fds | heap MB | scrape ms | PREF64           | RA offers        | event',
    '| -----: | -------- | -----: | --: | ------: | --------: | ---------------- | ---------------- | -----',
    ...samples.map(
      (s) =>
        `| ${String(s.t).padStart(6)} | ${s.state.padEnd(8)} | ${s.rssMb.toFixed(1).padStart(6)} | ${String(s.fds).padStart(3)} | ${s.heapMb.toFixed(1).padStart(7)} | ${s.scrapeMs.toFixed(1).padStart(9)} | ${String(s.pref64).padEnd(16)} | ${s.offers.padEnd(16)} | ${s.event}`,
    ),
  ];
  const first = samples[0];
  const last = samples[samples.length - 1];
  const max = (k: 'rssMb' | 'fds' | 'heapMb' | 'scrapeMs') => Math.max(...samples.map((s) => s[k]));
  const summary = [
    `${MIN} min: RSS ${first.rssMb.toFixed(1)} -> ${last.rssMb.toFixed(1)} MB (max ${max('rssMb').toFixed(1)}), fds ${first.fds} -> ${last.fds} (max ${max('fds')}), heap ${first.heapMb.toFixed(1)} -> ${last.heapMb.toFixed(1)} MB (max ${max('heapMb').toFixed(1)}), scrape max ${max('scrapeMs').toFixed(1)} ms`,
    `samples not running: ${samples.filter((s) => s.state !== 'running').length} of ${samples.length}; iperf3 restarts ${JSON.stringify(restarts)} (last words ${JSON.stringify(lastError)}); ping: ${pingSummary}; DNS: ${dnsSummary}`,
    `exit on SIGTERM: ${JSON.stringify(exit)}; left behind: ${left.length ? left.join('; ') : 'nothing'}`,
  ];
  writeFileSync(
    join(out, 'soak.json'),
    JSON.stringify({ samples, restarts, lastError, pingSummary, dnsSummary, exit, left }, null, 2),
  );
  process.stdout.write(`${rows.join('\n')}\n\n${summary.join('\n')}\nresults: ${join(out, 'soak.json')}\n`);
}

main().catch((e) => {
  process.stderr.write(`soak: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
