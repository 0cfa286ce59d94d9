/**
 * `npm run fuzz` (root; not in the test suite): hostile traffic through the real `clatd run` in
 * namespaces, good traffic alongside, every input accounted for, what clatd emits checked, its
 * RSS and open fds sampled. The machinery is test/helpers/fuzz-live.ts (shared with the suite's
 * shorter test/e2e/fuzz-live.test.ts); this prints the figures and fails on what the test asserts.
 *
 * Settings (environment): FUZZ_NET=1000000 (packets from the network side), FUZZ_TUN=200000 (into
 * the TUN), FUZZ_RATE=30000 (packets/s per side: two Python senders, the captures and clatd share
 * this 2-core machine with other work), FUZZ_SEED=1, CLATD_ARGS="" (e.g. --offload off),
 * BENCH_OUT (a folder for results.json; default: a new one in the temp dir).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failures, runFuzz } from '../test/helpers/fuzz-live.js';

const num = (k: string, d: number) => Number(process.env[k] ?? d);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the fuzz run builds network namespaces: run it as root');
  const out = process.env.BENCH_OUT || mkdtempSync(join(tmpdir(), 'clatd-fuzz-'));
  mkdirSync(out, { recursive: true });
  const r = await runFuzz({
    netPackets: num('FUZZ_NET', 1_000_000),
    tunPackets: num('FUZZ_TUN', 200_000),
    rate: num('FUZZ_RATE', 30_000),
    seed: num('FUZZ_SEED', 1),
    clatdArgs: (process.env.CLATD_ARGS ?? '').split(/\s+/).filter(Boolean),
    log: (l) => process.stderr.write(`[fuzz] ${l}\n`),
  });
  writeFileSync(join(out, 'results.json'), JSON.stringify(r, null, 2));
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  const lines = [
    `packets sent: network side ${r.net.sent} in ${r.net.seconds} s (${r.net.sendErrors} send errors), TUN ${r.tun.sent} in ${r.tun.seconds} s (${r.tun.sendErrors})`,
    `  network classes: ${JSON.stringify(r.net.classes)}`,
    `  TUN classes: ${JSON.stringify(r.tun.classes)}`,
    `good traffic: ping ${r.ping.received}/${r.ping.sent}, UDP echo ${r.udp.answered}/${r.udp.sent}`,
    `clatd: ${r.alive ? 'running' : `NOT running (${r.state})`} at the end, PREF64 ${r.pref64} (${r.pref64Routers} routers' on record), exit on SIGTERM ${JSON.stringify(r.exit)}`,
    '',
    '| dir | offered | counted | kernel drops | unaccounted | translated | dropped | neighbor | offloaded |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const d of ['64', '46'] as const) {
    const a = r.account[d];
    const c = r.counters[d] as Record<string, number>;
    lines.push(
      `| ${d} | ${a.offered} | ${a.counted} | ${a.kernelDrops} | ${a.unaccounted} | ${c.translated} | ${c.dropped} | ${c.neighbor ?? 0} | ${c.offloaded ?? 0} |`,
    );
  }
  lines.push('', `drops 64: ${JSON.stringify(r.drops['64'])}`, `drops 46: ${JSON.stringify(r.drops['46'])}`);
  lines.push(`io: ${JSON.stringify(r.counters.io)}`);
  for (const side of ['net', 'tun'] as const) {
    const e = r.emitted[side];
    lines.push(
      `emitted (${side === 'net' ? 'IPv6 on the link' : 'IPv4 into the TUN'}): seen ${e.seen}, checksums verified ${e.verified}, bad ${e.bad}, partial ${e.partial}, capture drops ${e.kernelDrops}`,
    );
  }
  lines.push(
    `RSS ${mb(r.proc.start.rssKb)} -> ${mb(r.proc.end.rssKb)} MB (max ${mb(r.proc.maxRssKb)}), fds ${r.proc.start.fds} -> ${r.proc.end.fds} (max ${r.proc.maxFds}), ${r.seconds} s`,
  );
  const f = failures(r);
  lines.push(
    '',
    f.length === 0 ? 'all checks held' : `FAILED:\n  ${f.join('\n  ')}`,
    `results: ${join(out, 'results.json')}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  if (f.length > 0) process.exitCode = 1;
}

main().catch((e) => {
  process.stderr.write(`fuzz: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
