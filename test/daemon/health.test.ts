/**
 * The health verdict (health.ts): translated packets leave and nothing comes back to the CLAT
 * address. The pure verdict over hand-made samples, its sampling on the fake clock, and the
 * daemon's status, metrics and log over the fakes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatStatus } from '../../src/cli/status.js';
import {
  HEALTH_MIN_OUT,
  HEALTH_SAMPLE_MS,
  HEALTH_WINDOW_MS,
  HealthWatch,
  ReplyHealth,
  sampleOf,
} from '../../src/daemon/health.js';
import { Logger } from '../../src/daemon/log.js';
import { renderMetrics } from '../../src/daemon/metrics.js';
import { FakeClock, flush, started } from './fakes.js';

const A = '2001:db8:1::c001';

/** Feeds samples every 5 s: `out` and `in` grow by these per sample. Returns the verdicts. */
function run(h: ReplyHealth, t0: number, steps: { out: number; in: number }[], start = { out: 0, in: 0 }) {
  let out = start.out;
  let inn = start.in;
  const said: string[] = [];
  steps.forEach((d, i) => {
    out += d.out;
    inn += d.in;
    const v = h.sample(t0 + i * HEALTH_SAMPLE_MS, { out, in: inn, clat6: A });
    if (v) said.push(`${v.level}: ${v.message}`);
  });
  return { said, out, in: inn, t: t0 + (steps.length - 1) * HEALTH_SAMPLE_MS };
}

describe('ReplyHealth', () => {
  test('the window: 15 s and at least 8 packets out with nothing in warns once, with what to try', () => {
    assert.equal(HEALTH_WINDOW_MS, 15_000);
    assert.equal(HEALTH_MIN_OUT, 8);
    const h = new ReplyHealth(0);
    // A ping a second, never answered: samples at 0, 5, 10 s say nothing yet; at 15 s, the warning.
    const r = run(h, 0, [
      { out: 5, in: 0 },
      { out: 5, in: 0 },
      { out: 5, in: 0 },
    ]);
    assert.deepEqual(r.said, []);
    assert.equal(h.status(r.t).state, 'unknown');
    const v = h.sample(15_000, { out: r.out + 5, in: 0, clat6: A });
    assert.equal(v?.level, 'warn');
    assert.match(
      v?.message ?? '',
      /^15 translated packets left in 15 s and nothing came back to the CLAT address 2001:db8:1::c001/,
    );
    assert.match(v?.message ?? '', /try --v6 with an address the network assigned .* or --v6-prefix .*NAT64 is down/);
    const st = h.status(20_000);
    assert.equal(st.state, 'no-replies');
    assert.equal(st.sinceSec, 5);
    assert.equal(st.message, v?.message);
    // Said once: more silence, more packets, nothing more logged.
    const later = run(h, 20_000, Array(10).fill({ out: 5, in: 0 }), { out: r.out + 5, in: 0 });
    assert.deepEqual(later.said, []);
    // The first packet back clears it, with one info line.
    const back = h.sample(later.t + 5_000, { out: later.out + 1, in: 1, clat6: A });
    assert.deepEqual(back, { level: 'info', message: 'packets come back to 2001:db8:1::c001 again' });
    assert.equal(h.status(later.t + 5_000).state, 'ok');
    assert.equal(h.status(later.t + 5_000).message, null);
  });

  test('no warning: an idle CLAT, a lone unanswered connection (5 SYNs in 15 s), traffic that is answered', () => {
    const idle = new ReplyHealth(0);
    assert.deepEqual(run(idle, 0, Array(20).fill({ out: 0, in: 0 })).said, []);
    assert.equal(idle.status(100_000).state, 'unknown');
    // SYNs at 0, 1, 3, 7 and 15 s: 2, 1, 1, 1 per 5 s sample.
    const syn = new ReplyHealth(0);
    assert.deepEqual(
      run(syn, 0, [
        { out: 2, in: 0 },
        { out: 1, in: 0 },
        { out: 1, in: 0 },
        { out: 1, in: 0 },
      ]).said,
      [],
    );
    const answered = new ReplyHealth(0);
    assert.deepEqual(run(answered, 0, Array(20).fill({ out: 100, in: 90 })).said, []);
    assert.equal(answered.status(100_000).state, 'ok');
    // Answers that stop: warned one window later.
    const stops = new ReplyHealth(0);
    const r = run(stops, 0, [...Array(4).fill({ out: 10, in: 10 }), ...Array(4).fill({ out: 10, in: 0 })]);
    assert.equal(r.said.length, 1);
    assert.match(r.said[0], /^warn: 30 translated packets left in 15 s/, 'the first sample 15 s after the last reply');
  });

  test('a new CLAT address starts again (said once if it was warned); a pause forgets the samples, not the verdict', () => {
    const h = new ReplyHealth(0);
    const r = run(h, 0, Array(4).fill({ out: 5, in: 0 }));
    assert.equal(r.said.length, 1);
    assert.deepEqual(h.sample(r.t + 5_000, { out: r.out, in: 0, clat6: '2001:db8:1::c002' }), {
      level: 'info',
      message: 'new CLAT address 2001:db8:1::c002: checking for replies again',
    });
    assert.equal(h.status(r.t + 5_000).state, 'unknown');

    const p = new ReplyHealth(0);
    run(p, 0, Array(2).fill({ out: 5, in: 0 }));
    p.pause();
    // After the pause, two samples 5 s apart are not a window.
    assert.equal(p.sample(100_000, { out: 100, in: 0, clat6: A }), undefined);
    assert.equal(p.sample(105_000, { out: 110, in: 0, clat6: A }), undefined);
    assert.equal(p.status(105_000).state, 'unknown');
  });

  test('the counts: 4->6 packets out (the kernel fast path included); 6->4 in without neighbor discovery', () => {
    const c = {
      '46': { packets: 20, bytes: 0, drops: {}, packetsOut: 18, translated: 18 },
      '64': { packets: 7, bytes: 0, drops: {}, neighbor: 7 },
    };
    assert.deepEqual(sampleOf(c, A), { out: 18, in: 0, clat6: A });
    assert.deepEqual(sampleOf({ '46': { packets: 3, bytes: 0, drops: {} }, '64': c['64'] }, A).out, 3);
  });
});

describe('HealthWatch on the clock', () => {
  test('samples every 5 s while translating, logs each verdict once, stops when closed', () => {
    const clock = new FakeClock();
    const lines: string[] = [];
    const log = new Logger({ level: 'info', write: (l) => lines.push(l), now: () => new Date(clock.now()) });
    let out = 0;
    let translating = true;
    const w = new HealthWatch(clock, log, () => {
      if (!translating) return undefined;
      out += 5;
      return { out, in: 0, clat6: A };
    });
    w.start();
    w.start(); // once
    clock.advance(20_000);
    assert.equal(out, 20, 'four samples in 20 s');
    assert.equal(lines.length, 1);
    assert.match(lines[0], / warn +health: 15 translated packets left in 15 s/);
    assert.equal(w.status().state, 'no-replies');
    translating = false;
    clock.advance(60_000);
    assert.equal(out, 20, 'no samples while not translating');
    assert.equal(w.status().state, 'no-replies', 'the verdict stays over a pause');
    w.close();
    translating = true;
    clock.advance(60_000);
    assert.equal(out, 20);

    // Counters that cannot be read are skipped, and sampling goes on.
    let calls = 0;
    const flaky = new HealthWatch(clock, log, () => {
      calls++;
      if (calls === 1) throw new Error('bpf map gone');
      return { out: 0, in: 0, clat6: A };
    });
    flaky.start();
    clock.advance(15_000);
    assert.equal(calls, 3);
    flaky.close();
  });
});

describe('the daemon', () => {
  test('with --v6, the warning asks whether the network delivers that address', async () => {
    const w = await started({ pref64: '64:ff9b::/96', v6: '2001:db8:1::abcd' });
    const dp = w.plumbing.dp;
    assert.ok(dp);
    dp.packets64 = 0;
    for (let i = 0; i < 4; i++) {
      dp.packets += 5;
      w.clock.advance(HEALTH_SAMPLE_MS);
    }
    assert.match(
      w.daemon.status().health?.message ?? '',
      /nothing came back to the CLAT address 2001:db8:1::abcd: check that the network delivers 2001:db8:1::abcd \(given with --v6\) to this host, or the NAT64 is down$/,
    );
    await w.daemon.stop();
  });

  test('nothing comes back: a warning in the log, status, text status and metrics; cleared when packets come back', async () => {
    const w = await started({ pref64: '64:ff9b::/96' });
    assert.equal(w.daemon.state, 'running');
    assert.equal(w.daemon.status().health?.state, 'unknown');
    const dp = w.plumbing.dp;
    assert.ok(dp);
    dp.packets64 = 0;
    for (let i = 0; i < 5; i++) {
      dp.packets += 5;
      w.clock.advance(HEALTH_SAMPLE_MS);
      await flush(w.daemon);
    }
    const warned = w.lines.filter((l) => / warn +health:/.test(l));
    assert.equal(warned.length, 1, w.lines.join(''));
    const s = w.daemon.status();
    assert.equal(s.health?.state, 'no-replies');
    assert.match(formatStatus(s), /health +WARNING: no replies .*\n +\d+ translated packets left in 15 s/);
    assert.match(renderMetrics(s), /^clatd_health_no_replies 1$/m);
    dp.packets64 = 3;
    w.clock.advance(HEALTH_SAMPLE_MS);
    await flush(w.daemon);
    assert.equal(w.daemon.status().health?.state, 'ok');
    assert.match(renderMetrics(w.daemon.status()), /^clatd_health_no_replies 0$/m);
    assert.equal(w.lines.filter((l) => / info +health: packets come back/.test(l)).length, 1);
    await w.daemon.stop();
  });
});
