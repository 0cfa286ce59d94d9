/**
 * `npm run bench:restarts` (root; not in CI): RSS of the real `clatd run` across datapath
 * restarts. Each round deletes the TUN from outside (`ip link del`), which makes clatd stop the
 * datapath, build the TUN again and start a new datapath (new worker threads); RSS is read once the
 * CLAT is translating again. ROUNDS (default 5: a TUN deleted from outside counts against the
 * datapath's restart budget, 5 in 10 minutes, and a sixth ends clatd); CLATD_ARGS adds options
 * (e.g. `--workers 1`); NODE_ARGS node flags; the environment passes on (e.g. MALLOC_ARENA_MAX).
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { running, setUp, startClatd, startRaSender, statusOf, withHostAndRouter } from '../test/helpers/clatd-run.js';
import { procSample } from '../test/helpers/fuzz-live.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);

async function main(): Promise<void> {
  await withHostAndRouter(async (p, dir) => {
    setUp(p);
    startRaSender(p, dir, 1800);
    const sock = join(dir, 'clatd.sock');
    const extra = (process.env.CLATD_ARGS ?? '').split(' ').filter(Boolean);
    const node = (process.env.NODE_ARGS ?? '').split(' ').filter(Boolean);
    const c = startClatd(p.a, ['--control', sock, '--dad', 'off', ...extra], node);
    await c.waitFor(running, 20_000);
    const pid = statusOf(p.a, sock).pid as number;
    const t0 = Date.now();
    await sleep(15_000);
    const rows: string[] = [];
    const row = (round: number) => {
      const s = procSample(pid, t0);
      const threads = /Threads:\s+(\d+)/.exec(p.a.exec('cat', `/proc/${pid}/status`))?.[1];
      rows.push(`${round}\t${s.atSec}\t${(s.rssKb / 1024).toFixed(1)}\t${threads}`);
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    };
    row(0);
    for (let i = 1; i <= ROUNDS; i++) {
      p.a.exec('ip', 'link', 'del', 'v4-veth-a');
      const until = Date.now() + 20_000;
      // Translating again: the TUN is back and a new datapath runs.
      while (Date.now() < until) {
        await sleep(200);
        if (c.child.exitCode !== null) {
          const said = c.lines.filter((l) => l.level === 'warn' || l.level === 'error').slice(-6);
          throw new Error(`clatd exited in round ${i}: ${JSON.stringify(said)}`);
        }
        const st = statusOf(p.a, sock);
        if (st.state === 'running' && p.a.tryExec('ip', 'link', 'show', 'v4-veth-a').status === 0) break;
      }
      await sleep(3000);
      row(i);
    }
    await sleep(15_000);
    row(ROUNDS + 1);
    c.child.kill('SIGTERM');
    await c.exited;
    process.stdout.write(`round\tt s\tRSS MB\tthreads\n${rows.join('\n')}\n`);
  });
}

main().catch((e) => {
  process.stderr.write(`restarts-rss: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
