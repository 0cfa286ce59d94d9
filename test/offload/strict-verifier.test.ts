/**
 * The offload programs as the verifier sees them without CAP_PERFMON (what the systemd unit
 * grants: CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF). As root the verifier lets a program read stack
 * bytes it never wrote; without CAP_PERFMON it refuses, so loading every variant this way proves
 * that no program reads a packet field it did not load. And without CAP_BPF the error says what
 * is missing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { NEED_ROOT } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

const url = (p: string) => new URL(p, import.meta.url).href;

function asUser(caps: string, body: string): string {
  const set = `-all,${caps}`;
  return execFileSync(
    'unshare',
    [
      '-n',
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      `--inh-caps=${set}`,
      `--ambient-caps=${set}`,
      `--bounding-set=${set}`,
      process.execPath,
      '--input-type=module',
      '-e',
      body,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  ).trim();
}

const LOAD_ALL = `
  const e = await import('${url('../../src/sys/ebpf.js')}');
  const { planOffload } = await import('${url('../../src/offload/plan.js')}');
  const { buildIngress6 } = await import('${url('../../src/offload/ingress6.js')}');
  const { buildEgress4 } = await import('${url('../../src/offload/egress4.js')}');
  const { resolveConfig } = await import('${url('../../src/core/xlat/config.js')}');
  const { parseIPv6 } = await import('${url('../../src/core/addr/ipv6.js')}');
  try {
    const map = e.createArrayMap('clatd_test', 16, 4);
    const nextHop = e.createArrayMap('clatd_test_nh', 20, 1);
    let n = 0;
    for (const [pool6, extra] of [['64:ff9b::/96', {}], ['2001:db8:64::/96', { trafficClass: 'zero' }]]) {
      const c = resolveConfig({ pool6, eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::99/128' }], v4Sources: 'eam', ...extra });
      const { plan } = planOffload(c, 0xc0000004, parseIPv6('2001:db8:1::99'));
      for (const l2 of [0, 14]) {
        e.loadTcProgram('clatd_in6', buildIngress6(plan, { mapFd: map, tunIfindex: 1, l2 }));
        e.loadTcProgram('clatd_eg4', buildEgress4(plan, { mapFd: map, uplinkIfindex: 1, l2 }));
        e.loadTcProgram('clatd_eg4', buildEgress4(plan, { mapFd: map, uplinkIfindex: 1, l2, nextHopFd: nextHop }));
        n += 3;
      }
    }
    console.log('loaded ' + n);
  } catch (x) { console.log(x.code + ' ' + x.message); }
`;

describe('offload programs under the unit’s capabilities', { skip: NEED_ROOT }, () => {
  test('every variant passes the strict verifier (CAP_BPF and CAP_NET_ADMIN, no CAP_PERFMON)', () => {
    assert.equal(asUser('+net_admin,+net_raw,+bpf', LOAD_ALL), 'loaded 12');
  });

  test('without CAP_BPF the error names it and the way around it', () => {
    assert.match(
      asUser('+net_admin,+net_raw', LOAD_ALL),
      /^ERR_CLATD_SYS bpf\(BPF_MAP_CREATE\) clatd_test: EPERM .* needs CAP_BPF as well as CAP_NET_ADMIN \(--offload off does without it\)/,
    );
  });
});
