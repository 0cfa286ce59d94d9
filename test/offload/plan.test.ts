/** Which configurations the offload serves, and the checksum constants it is built from. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseIPv4 } from '../../src/core/addr/ipv4.js';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import { generateClatAddress } from '../../src/core/nd/neutral.js';
import { resolveConfig, type TranslatorConfig } from '../../src/core/xlat/config.js';
import { withOffload } from '../../src/daemon/offload.js';
import { isMartian4, planOffload } from '../../src/offload/plan.js';

const clat = (pool6: string, v6: string, extra: Partial<TranslatorConfig> = {}) => {
  const c = resolveConfig({ pool6, eam: [{ v4: '192.0.0.4/32', v6: `${v6}/128` }], v4Sources: 'eam', ...extra });
  return planOffload(c, parseIPv4('192.0.0.4'), parseIPv6(v6));
};

describe('offload plan', () => {
  test('a CLAT configuration with a /96 is served; a neutral address needs no checksum change', () => {
    const v6 = generateClatAddress({ prefix64: '2001:db8:1::/64', pref64: '64:ff9b::/96', ipv4: '192.0.0.4' });
    const c = clat('64:ff9b::/96', v6);
    assert.ok('plan' in c);
    assert.equal(c.plan.delta64, 0);
    assert.equal(c.plan.delta46, 0);
    assert.equal(c.plan.wkpGlobalOnly, true);
    const d = clat('2001:db8:64::/96', '2001:db8:1::1');
    assert.ok('plan' in d);
    assert.notEqual(d.plan.delta64, 0);
    assert.equal((d.plan.delta64 + d.plan.delta46) % 0xffff, 0, 'the two directions undo each other');
    assert.equal(d.plan.wkpGlobalOnly, false);
  });

  test('other configurations are left to the workers, with the reason', () => {
    const p64 = clat('2001:db8:64::/64', '2001:db8:1::1');
    assert.ok('reason' in p64 && /\/96/.test(p64.reason));
    const any = clat('2001:db8:64::/96', '2001:db8:1::1', { v4Sources: 'any' });
    assert.ok('reason' in any && /single CLAT/.test(any.reason));
    const inside = clat('2001:db8:64::/96', '2001:db8:64::c000:4');
    assert.ok('reason' in inside && /inside the NAT64 prefix/.test(inside.reason));
  });

  test('a martian CLAT IPv4 address is left to the workers: the core drops its packets', () => {
    for (const v4 of ['0.0.0.4', '127.0.0.4', '224.0.0.4', '240.0.0.4', '255.255.255.255']) {
      const c = resolveConfig({
        pool6: '2001:db8:64::/96',
        eam: [{ v4: `${v4}/32`, v6: '2001:db8:1::1/128' }],
        v4Sources: 'eam',
      });
      const choice = planOffload(c, parseIPv4(v4), parseIPv6('2001:db8:1::1'));
      assert.ok('reason' in choice && /martian/.test(choice.reason), v4);
    }
    for (const v4 of ['1.0.0.0', '126.255.255.255', '128.0.0.0', '223.255.255.255']) {
      assert.equal(isMartian4(parseIPv4(v4)), false, v4);
    }
  });

  test('offloaded packets join the counters as translated inputs', () => {
    const dir = { packets: 10, bytes: 1000, drops: { x: 1 }, translated: 9, packetsOut: 9 };
    const c = withOffload(
      { '46': { ...dir, drops: { ...dir.drops } }, '64': { ...dir, drops: {} } },
      { '46': { packets: 5, bytes: 500, failed: 1 }, '64': { packets: 2, bytes: 200, failed: 0 } },
    );
    assert.deepEqual(c['46'], {
      packets: 16,
      bytes: 1500,
      drops: { x: 1, offload_failed: 1 },
      translated: 14,
      packetsOut: 14,
      offloaded: 5,
    });
    assert.equal(c['64'].bytes, 1200);
    assert.equal(c['64'].offloaded, 2);
  });
});
