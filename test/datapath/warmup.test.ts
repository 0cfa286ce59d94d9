import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TranslatorConfig } from '../../src/core/xlat/config.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { warmUp } from '../../src/datapath/warmup.js';

/** What the daemon hands its workers (src/daemon/system.ts translatorConfig). */
const daemonLike: TranslatorConfig = {
  pool6: '2001:db8:64::/96',
  eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }],
  ownV4: '192.0.0.8',
  ownV6: '2001:db8:1::4',
  v4Sources: 'eam',
  icmpSrcV4: '192.0.0.8',
  ipv4Mtu: 65535,
  ipv6Mtu: 1500,
  hairpin: false,
};

describe('JIT warm-up', () => {
  test('runs the whole path both ways without a drop, for the daemon configuration', () => {
    const r = warmUp(new Translator(daemonLike), daemonLike, 64);
    assert.equal(r.dropped, 0);
    // Every round reads at least one packet per side; busy rounds read more.
    assert.ok(r.translated46 >= 64, `46: ${r.translated46}`);
    assert.ok(r.translated64 >= 64, `64: ${r.translated64}`);
  });

  test('under the well-known prefix (global addresses only) the packets are still translated', () => {
    const wkp = { ...daemonLike, pool6: '64:ff9b::/96', wkpGlobalOnly: true };
    const r = warmUp(new Translator(wkp), wkp, 32);
    assert.equal(r.dropped, 0);
    assert.ok(r.translated46 > 0 && r.translated64 > 0);
  });

  test('a translator that drops everything is warmed without throwing', () => {
    // No EAM and v4Sources 'eam': every IPv4 source is refused; the 64 side replays the 46 input.
    const none: TranslatorConfig = { pool6: '2001:db8:64::/96', v4Sources: 'eam' };
    const r = warmUp(new Translator(none), none, 16);
    assert.equal(r.translated46, 0);
    assert.ok(r.dropped > 0);
  });
});

describe('JIT warm-up and garbage collection', () => {
  test("a full GC after the warm-up does not throw the loop's optimised code away", () => {
    const child = fileURLToPath(new URL('./warmup-gc-child.js', import.meta.url));
    const out = execFileSync(process.execPath, ['--expose-gc', '--trace-deopt', '--allow-natives-syntax', child], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.match(out, /--- done/);
    // The positive check, by V8's status bits: the warm-up optimised the loop and both
    // translations, and they are still optimised after the collections.
    assert.match(out, /--- not optimised before GC: \[\]/, 'the warm-up did not optimise the loop');
    assert.match(out, /--- not optimised after GC: \[\]/, "the GC threw the loop's optimised code away");
    // V8 names it "weak objects": optimised code that embedded a shape only the warm-up's
    // objects had is discarded once they are collected, and the loop runs in baseline code again.
    // The whole output: V8 prints through C's buffered stdout, so its lines do not keep their
    // place among the child's own.
    const lost = out
      .split('\n')
      .filter(
        (l) =>
          /weak objects/.test(l) && /<SharedFunctionInfo (#?drain\w*|#batch|#flush|#?publish|translate[46])>/.test(l),
      );
    assert.deepEqual(lost, []);
  });

  test("the worker's own loop, built after the warm-up, runs its optimised code: wake-up optimised, no deoptimisation", () => {
    // Each of these threw the loop's optimised code away on a worker's first packets or at its
    // construction: device classes the warm-up never met ("wrong map"), their packet paths never
    // run ("insufficient type feedback"), the io object of another literal ("code dependencies"),
    // the worker's counter hook ("wrong call target").
    const child = fileURLToPath(new URL('./warmup-real-child.js', import.meta.url));
    const out = execFileSync(process.execPath, ['--trace-deopt', '--allow-natives-syntax', child], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.match(out, /--- done 300 300 0/);
    assert.match(out, /--- not optimised: \[\]/, 'the wake-up path optimised function by function by the warm-up');
    const deopts = out.split('\n').filter((l) => /bailout|marking dependent code/.test(l));
    assert.deepEqual(deopts, []);
  });
});
