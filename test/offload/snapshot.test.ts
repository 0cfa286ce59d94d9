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
  'doc-tc0/egress4/l2=0': '8c211cd063d6bab535be81731c7be21dc3caf6de498ba4c966bd11f868002c8b',
  'doc-tc0/egress4/l2=14': '99aae4ba9eee67f9369a021f765db5cc387b472b552d73b106563f3ad51f7d7c',
  'doc-tc0/ingress6/l2=0': 'e7cb0455130ad688488218a42fa6c2ec8eb6fbf7b987f12bbc6bf609be195ef6',
  'doc-tc0/ingress6/l2=14': 'beebc8f4641c6e0807aec6941398b8d5c0ddfdc031a31f5ccea7a91e2e90fb28',
  'doc/egress4/l2=0': '9c846ba18b9634cd62b189e5fe09f47326169ccbb81c6b448378d5a06214121d',
  'doc/egress4/l2=14': '8e2c38e3484c8db852874e10a45ebd122fc71a1725ef9419c4a817ef5724b54e',
  'doc/ingress6/l2=0': '35b54675fa153a0f7d39c6b44a5ed25de042b11470763ad935bad7584cc841a2',
  'doc/ingress6/l2=14': '5aeda16749e05b9bc2db063f2aae26271fc7a9f2f4ef3329895703af04757842',
  'wkp/egress4/l2=0': '557428a4f3caa8630a93f82664620ae49b3d65a2f69c31dd8cd6da7b1840b435',
  'wkp/egress4/l2=14': '93142c6123eeea916dbdb7046094782f482024330aefba65afaa5f73f9ca6b8f',
  'wkp/ingress6/l2=0': '981c303e86b564ce4360f82c5a8ce056e647c34bc6734e8c53ca8581dec05251',
  'wkp/ingress6/l2=14': '583bb4007e6758ee2a2b8eda5c8626a137d1ee0a739f028d7672ad8c7566c333',
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
