/**
 * The offload programs' instructions, as a hash per variant: a change to the assembler or the
 * snippets that is meant to be a pure renaming (register and stack-slot names, label scopes) must
 * leave every program byte for byte the same. A change that is meant to alter a program updates
 * its hash here in the same commit, which shows that it did. Pure: no kernel needed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { parseIPv4 } from '../../src/core/addr/ipv4.js';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import { resolveConfig, type TranslatorConfig } from '../../src/core/xlat/config.js';
import { buildEgress4 } from '../../src/offload/egress4.js';
import { buildIngress6 } from '../../src/offload/ingress6.js';
import { planOffload } from '../../src/offload/plan.js';

const VARIANTS: [string, string, Partial<TranslatorConfig>][] = [
  ['wkp', '64:ff9b::/96', {}],
  ['doc', '2001:db8:64::/96', {}],
  ['doc-tc0', '2001:db8:64::/96', { trafficClass: 'zero', ipv6Mtu: 1300 }],
];

/** sha256 of each program, by `<variant>/<program>/l2=<n>`. */
const EXPECTED: Record<string, string> = {
  'doc-tc0/egress4+nexthop/l2=0': '6da631be026d6e8100fbb1c009432f07f1810d1f6861f768797048f35ae3e7fb',
  'doc-tc0/egress4+nexthop/l2=14': '809f57172b7f11773d48ec276e781b305e2b3250df4d5679501c4e52ac349e2a',
  'doc-tc0/egress4/l2=0': '4ce5ab0cae90f3987f29393c3bc3ddf52ad47a3ab2c68c7a48d98db2b723a153',
  'doc-tc0/egress4/l2=14': 'a36be3bc4cafacf880fb3ea5b97c7eb15e2712480fff26e7a9ec64f781999c89',
  'doc-tc0/ingress6/l2=0': '7930b2533a9abb91fe357db513a32d45625ef61530d176f170431fcc0d1f875c',
  'doc-tc0/ingress6/l2=14': '333314c517f56cc210b9d0d9f678c787be454eb0f9bf551f9bae0b64f0531d39',
  'doc/egress4+nexthop/l2=0': '7bd4970c166d58055dac04355f6bfa92bb26665f1364913ed5cbe38e46596415',
  'doc/egress4+nexthop/l2=14': 'e9d6103636007b019ffc3f6e2ab8c23805876d3f86f9318f5133948f29e98ed3',
  'doc/egress4/l2=0': '036f42b950d9a526352e1ceffe71b36a5664c7e8b626f0bc688444d35bbfe9f8',
  'doc/egress4/l2=14': 'f543c36d9dd7968ea7c272364e7b0295aee278727f04364d6fabe4265a787cab',
  'doc/ingress6/l2=0': '95327f9f08fe3d876b89f15d9c8c971705c2a24f09e01b866e57aeda93caadf5',
  'doc/ingress6/l2=14': '30fea5b634e3591bb6c93c61d5bc66acd280bf742a44d4d433fa633bf104d77b',
  'wkp/egress4+nexthop/l2=0': 'f9a1aad538c3f0ea24260d8adf827fc4105a2deba3efb39b39a6df881e48b1e9',
  'wkp/egress4+nexthop/l2=14': 'c6c00805f0f67df68cad89580cf9584691104f7aa5e3a10a40b32d2261893e6a',
  'wkp/egress4/l2=0': 'e30a7e09f9a906370604d69679b1d142d444dee3000cb2b36aebf2c3be48f12a',
  'wkp/egress4/l2=14': 'e2fa45d382f177d7dcc96df8f5a0d10dafc9c8a4ed690662638dcc0aeba9328c',
  'wkp/ingress6/l2=0': 'b1ad8873824703ad4df9ea012653ee3d16cb81f1126932192ce0c21879e07084',
  'wkp/ingress6/l2=14': '95f8a1af7172c355111a52f8eca1c3f3cedebdc3603810adbeb30730cbc12397',
};

function hashes(): Record<string, string> {
  const got: Record<string, string> = {};
  for (const [name, pool6, extra] of VARIANTS) {
    const c = resolveConfig({
      pool6,
      eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::99/128' }],
      v4Sources: 'eam',
      ...extra,
    });
    const choice = planOffload(c, parseIPv4('192.0.0.4'), parseIPv6('2001:db8:1::99'));
    if (!('plan' in choice)) throw new Error(choice.reason);
    for (const l2 of [0, 14]) {
      const progs = {
        ingress6: buildIngress6(choice.plan, { mapFd: 7, tunIfindex: 3, l2 }),
        egress4: buildEgress4(choice.plan, { mapFd: 7, uplinkIfindex: 2, l2 }),
        'egress4+nexthop': buildEgress4(choice.plan, { mapFd: 7, uplinkIfindex: 2, l2, nextHopFd: 8 }),
      };
      for (const [prog, bytes] of Object.entries(progs)) {
        got[`${name}/${prog}/l2=${l2}`] = createHash('sha256').update(bytes).digest('hex');
      }
    }
  }
  return got;
}

describe('offload program snapshot', () => {
  test('every variant assembles to the instructions recorded here', () => {
    assert.deepEqual(hashes(), EXPECTED);
  });
});
