/**
 * Stopping clatd: SIGTERM removes everything it made in the host namespace within 2 s; after
 * kill -9 the next clatd cleans up what the killed one left and works, and stops clean.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ADDR } from '../../src/lab/index.js';
import { clatdSuite, pingStats } from './helpers.js';

describe('clatd in the lab: teardown and crash recovery', () => {
  let baseline: string[] = [];
  const suite = clatdSuite({ blobBytes: 4096 }, [], async (lab) => {
    baseline = await lab.hostLeftovers();
    return undefined;
  });

  test('the host namespace holds nothing but the uplink before clatd starts', (t) => {
    if (!suite.ready(t)) return;
    assert.deepEqual(baseline, []);
  });

  test('SIGTERM: exit 0 within 2 s, nothing left (links, addresses, routes, nftables)', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const t0 = Date.now();
    r.clatd.child.kill('SIGTERM');
    const ex = await Promise.race([r.clatd.exited, new Promise<null>((res) => setTimeout(() => res(null), 5000))]);
    const ms = Date.now() - t0;
    assert.ok(ex, 'clatd did not exit within 5 s of SIGTERM');
    assert.equal(ex.code, 0, `exit ${ex.code ?? ex.signal}: ${r.clatd.output().slice(-800)}`);
    t.diagnostic(`clatd exited ${ms} ms after SIGTERM`);
    assert.ok(ms <= 2000, `clatd took ${ms} ms to exit`);
    assert.deepEqual(await r.lab.hostLeftovers(), []);
  });

  test('kill -9, then a new clatd cleans up, works, and stops clean', async (t) => {
    // The suite's clatd was stopped by the test before; this one starts its own.
    const r = suite.ready(t, { exitedOk: true });
    if (!r) return;
    const { lab } = r;
    const first = await lab.startClatdAndWait();
    assert.ok(first.up, first.why);
    first.proc.child.kill('SIGKILL');
    await first.proc.exited;
    const second = await lab.startClatdAndWait();
    try {
      assert.ok(second.up, `clatd did not come up after kill -9 of the previous one: ${second.why}`);
      const p = await lab.exec(lab.names.host, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ADDR.server], {
        allowFail: true,
      });
      assert.equal(pingStats(p.stdout).received, 2, p.stdout);
    } finally {
      await second.proc.stop('SIGTERM', 3000);
    }
    assert.deepEqual(await lab.hostLeftovers(), []);
  });
});
