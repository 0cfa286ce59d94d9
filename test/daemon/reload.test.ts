/** What a SIGHUP changes, setting by setting: applied live, or named as needing a restart. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../src/daemon/config.js';
import { planReload } from '../../src/daemon/reload.js';

const base = { pref64: '64:ff9b::/96' };

test('every setting either applies live or is named for the next start', () => {
  const old = resolveConfig(base);
  const cases: [Record<string, string>, Partial<ReturnType<typeof planReload>>][] = [
    [{ 'route-metric': '100' }, { rebuild: '--route-metric changed', restart: [] }],
    [{ v4: '192.0.0.5' }, { rebuild: '--v4 changed' }],
    [{ v6: '2001:db8:1::5' }, { redraw: true, rebuild: undefined }],
    [{ 'v6-prefix': '2001:db8:99::/64' }, { redraw: true, rebuild: undefined, restart: [] }],
    [{ pref64: '2001:db8:64::/96' }, { redraw: true }],
    [{ dad: 'off' }, { redraw: true }],
    [{ mtu: '1400' }, { reconfigure: true, redraw: false }],
    [{ workers: '3' }, { restart: ['workers'], redraw: false, reconfigure: false }],
    [{ interface: 'eth1' }, { restart: ['interface'] }],
    [{ offload: 'off' }, { restart: ['offload'] }],
  ];
  for (const [flags, want] of cases) {
    const plan = planReload(old, resolveConfig({ ...base, ...flags }));
    for (const [k, v] of Object.entries(want))
      assert.deepEqual(plan[k as keyof typeof plan], v, `${JSON.stringify(flags)}: ${k}`);
  }
});

test('restart-only settings keep their running value in the configuration used', () => {
  const old = resolveConfig({ ...base, workers: '2' });
  const plan = planReload(old, resolveConfig({ ...base, workers: '4', 'log-level': 'debug' }));
  assert.equal(plan.cfg.workers, 2);
  assert.equal(plan.cfg.logLevel, 'debug');
});
