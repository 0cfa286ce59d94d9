/**
 * A short run of `npm run fuzz` (test/helpers/fuzz-live.ts has the topology and the accounting):
 * ~45,000 hostile packets at the live daemon from both sides while ping and a UDP echo run through
 * it. clatd keeps running and translating, every input is in its counters (or in the kernel's drops
 * on the way), everything it emits has valid checksums, and it holds no more fds than before.
 */
import assert from 'node:assert/strict';
import { MAX_RA_ROUTERS } from '../../src/daemon/pref64.js';
import { failures, runFuzz } from '../helpers/fuzz-live.js';
import { NEED_ROOT } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

describe('clatd run under hostile traffic (namespaces)', { skip: NEED_ROOT }, () => {
  test('stays up, keeps translating, accounts for every input, emits valid checksums', {
    timeout: 90_000,
  }, async () => {
    const r = await runFuzz({ netPackets: 30_000, tunPackets: 15_000, rate: 6_000, seed: 7 });
    const why = JSON.stringify(
      { account: r.account, drops: r.drops, emitted: r.emitted, proc: r.proc, ping: r.ping, udp: r.udp },
      null,
      1,
    );
    // Each assertion alone, for a message that says which; failures() is the same list as one.
    assert.ok(r.alive, `clatd ended in state ${r.state}: ${why}`);
    assert.equal(r.exit.code, 0, 'and stops cleanly on SIGTERM afterwards');
    assert.equal(r.pref64, '2001:db8:64::/96', 'the forged RAs did not move the PREF64');
    assert.ok(r.pref64Routers <= MAX_RA_ROUTERS, `${r.pref64Routers} routers' PREF64s kept from forged RAs`);
    assert.ok(r.net.sent >= 29_000 && r.tun.sent >= 14_000, `sent ${r.net.sent} + ${r.tun.sent}`);
    assert.ok(r.ping.received >= r.ping.sent * 0.8 && r.ping.sent > 0, `ping ${JSON.stringify(r.ping)}`);
    assert.ok(r.udp.answered >= r.udp.sent * 0.8 && r.udp.sent > 0, `UDP echo ${JSON.stringify(r.udp)}`);
    for (const d of ['64', '46'] as const) {
      assert.ok(r.account[d].offered > 0, `${d}: nothing offered`);
      assert.equal(r.account[d].unaccounted, 0, `${d}: inputs unaccounted for: ${why}`);
      assert.equal(r.account[d].internalGap, 0, `${d}: packets != translated + dropped + …`);
      assert.equal(r.account[d].dropGap, 0, `${d}: dropped != the sum of the reasons`);
      assert.ok(Object.keys(r.drops[d]).length >= 5, `${d}: the fuzz reached few drop reasons: ${why}`);
    }
    for (const side of ['net', 'tun'] as const) {
      assert.equal(r.emitted[side].bad, 0, `${side}: bad checksums: ${r.emitted[side].samples.join(' | ')}`);
      assert.ok(r.emitted[side].verified > 500, `${side}: only ${r.emitted[side].verified} emitted packets verified`);
    }
    assert.ok(r.proc.end.fds <= r.proc.start.fds, `fds ${r.proc.start.fds} -> ${r.proc.end.fds}`);
    assert.deepEqual(failures(r), []);
  });
});
