/**
 * Crash at any moment, the short version (`npm run fuzz:crash` runs 100 and more): `clatd run`
 * killed with SIGKILL once in each phase — start-up, DAD, running, an uplink flap, a PREF64
 * change, a SIGHUP reload, and between SIGTERM and its exit — then started again; the next run
 * comes up, translates, and once stopped leaves the host exactly as it was before any clatd ran
 * (test/helpers/crash-trials.ts has the trial and the snapshot).
 */
import assert from 'node:assert/strict';
import { PHASES, runCrashTrials, summary } from '../helpers/crash-trials.js';
import { NEED_ROOT } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

describe('clatd run killed at any moment (namespaces)', { skip: NEED_ROOT }, () => {
  test('one SIGKILL in each phase, then a new start: it runs, translates, and leaves the host as it was', async () => {
    const { results } = await runCrashTrials({ trials: PHASES.length + 1, seed: 20, phases: [...PHASES, 'dad'] });
    const failed = results.filter((r) => !r.ok);
    assert.deepEqual(
      failed.map((r) => `trial ${r.n} (${r.phase}, ${r.flags.join(' ')}, ${r.delayMs} ms): ${r.error}`),
      [],
      summary(results),
    );
    for (const ph of PHASES)
      assert.ok(
        results.some((r) => r.phase === ph && r.ok),
        ph,
      );
  });
});
