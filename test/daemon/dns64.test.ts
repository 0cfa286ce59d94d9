import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPrefix6 } from '../../src/core/addr/prefix.js';
import { Pref64DiscoveryError } from '../../src/core/nd/errors.js';
import { type Aaaa6Resolver, discoverPref64ViaDns } from '../../src/daemon/dns64.js';

function fake(answer: string[] | { code: string; message: string }): Aaaa6Resolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async resolve6(name: string) {
      asked.push(name);
      if (Array.isArray(answer)) return answer;
      throw Object.assign(new Error(answer.message), { code: answer.code });
    },
  };
}

test('asks for AAAA ipv4only.arpa and returns the prefixes found', async () => {
  const r = fake(['64:ff9b::c000:aa', '64:ff9b::c000:ab']);
  const p = await discoverPref64ViaDns(['2001:db8::53'], 500, r);
  assert.deepEqual(r.asked, ['ipv4only.arpa']);
  assert.deepEqual(p.map(formatPrefix6), ['64:ff9b::/96']);
});

test('no DNS64, timeouts and useless answers are clear Pref64DiscoveryErrors', async () => {
  const cases: [Aaaa6Resolver, RegExp][] = [
    [fake({ code: 'ENODATA', message: 'queryAaaa ENODATA ipv4only.arpa' }), /does no DNS64/],
    [fake({ code: 'ETIMEOUT', message: 'queryAaaa ETIMEOUT' }), /no answer within 500 ms/],
    [fake({ code: 'ECONNREFUSED', message: 'refused' }), /ECONNREFUSED/],
    [fake(['2001:db8::1']), /without a NAT64 prefix: 2001:db8::1 \(neither/],
    [fake([]), /empty answer/],
  ];
  for (const [r, re] of cases) {
    await assert.rejects(discoverPref64ViaDns(['2001:db8::53'], 500, r), (e: unknown) => {
      assert.ok(e instanceof Pref64DiscoveryError);
      assert.equal(e.code, 'ERR_CLATD_PREF64_DISCOVERY');
      assert.match(e.message, /2001:db8::53/);
      assert.match(e.message, re);
      // Read by operators (discover's notes, the log): no internal function name.
      assert.doesNotMatch(e.message, /discoverPref64ViaDns/);
      return true;
    });
  }
});

test('a malformed server list is reported before any query', async () => {
  await assert.rejects(discoverPref64ViaDns(['not a server!'], 500), Pref64DiscoveryError);
});
