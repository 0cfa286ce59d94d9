/**
 * The NAT64-prefix tracker on its own, over a fake clock: PREF64s per router with their lifetimes,
 * refused prefixes, withdrawals that only touch their own router, damping of a flapping router,
 * and RFC 7050 after a Router Solicitation's head start.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatPrefix6, parsePrefix6 } from '../../src/core/addr/prefix.js';
import { pref64Problem } from '../../src/core/nd/pref64.js';
import { Logger } from '../../src/daemon/log.js';
import type { LinkInfo } from '../../src/daemon/ports.js';
import { MAX_RA_ROUTERS, Pref64Tracker } from '../../src/daemon/pref64.js';
import { FakeClock, FakeDns64 } from './fakes.js';

const ETH0: LinkInfo = { index: 2, name: 'eth0', up: true, mtu: 1500 };
const LAN = parsePrefix6('2001:db8:1::/64');

function tracker(cfg: { pref64?: string } = {}) {
  const clock = new FakeClock();
  const dns64 = new FakeDns64();
  const lines: string[] = [];
  const log = new Logger({ level: 'debug', write: (l) => lines.push(l), now: () => new Date(clock.now()) });
  let kicks = 0;
  const solicited: number[] = [];
  const t = new Pref64Tracker(
    { clock, dns64, log, solicit: (i) => solicited.push(i), kick: () => kicks++ },
    { pref64: cfg.pref64 === undefined ? undefined : parsePrefix6(cfg.pref64), dns64Servers: [] },
  );
  const ra = (router: string, prefix: string, lifetime = 600) =>
    t.onRa({ ifindex: 2, router, prefix: parsePrefix6(prefix), lifetime });
  const chosen = () => {
    const c = t.choose(ETH0, [LAN]);
    return c && `${formatPrefix6(c.prefix)} ${c.source}${c.router ? ` ${c.router}` : ''}`;
  };
  return { t, clock, dns64, lines, ra, chosen, solicited, kicks: () => kicks };
}

describe('PREF64 per router', () => {
  test('--pref64 wins over everything', () => {
    const w = tracker({ pref64: '64:ff9b::/96' });
    w.ra('fe80::1', '2001:db8:64::/96');
    assert.equal(w.chosen(), '64:ff9b::/96 flag');
  });

  test('refused: multicast, link-local, ::/96, IPv4-mapped, the LAN itself; said once each, kept for status', () => {
    const w = tracker();
    for (const p of ['ff02::/96', 'ff05::/96', 'fe80::/96', '::/96', '::ffff:0:0/96']) w.ra('fe80::bad', p);
    w.ra('fe80::bad', '2001:db8:1::/96'); // inside the uplink's /64: refused when chosen
    assert.equal(w.chosen(), undefined);
    const refused = w.t.describe().refused.map((r) => r.prefix);
    assert.deepEqual(refused.sort(), [
      '2001:db8:1::/96',
      '::/96',
      '::ffff:0:0/96',
      'fe80::/96',
      'ff02::/96',
      'ff05::/96',
    ]);
    w.ra('fe80::bad', 'ff02::/96');
    assert.equal(w.lines.filter((l) => /refused PREF64 ff02::\/96 from fe80::bad/.test(l)).length, 1);
  });

  test("a withdrawal from another router does not touch the real router's prefix", () => {
    const w = tracker();
    w.ra('fe80::1', '2001:db8:64::/96');
    assert.equal(w.chosen(), '2001:db8:64::/96 ra fe80::1');
    w.ra('fe80::bad', '2001:db8:64::/96', 0);
    assert.equal(w.chosen(), '2001:db8:64::/96 ra fe80::1');
    w.ra('fe80::1', '2001:db8:64::/96', 0);
    assert.equal(w.chosen(), undefined, 'its own router withdraws it');
  });

  test('forged RAs from many sources: at most MAX_RA_ROUTERS kept, the chosen prefix stays, one warning', () => {
    const w = tracker();
    w.ra('fe80::1', '2001:db8:64::/96', 1800);
    // 10,000 link-local sources, each with a valid-looking prefix and the longest lifetime.
    for (let i = 0; i < 10_000; i++)
      w.ra(`fe80::bad:${i.toString(16)}`, `2001:db8:${(i % 0xffff).toString(16)}::/96`, 65528);
    assert.equal(w.t.describe().routers.length, MAX_RA_ROUTERS);
    assert.equal(w.chosen(), '2001:db8:64::/96 ra fe80::1');
    assert.equal(w.lines.filter((l) => /routers on record/.test(l)).length, 1, 'said once, not per router');
    assert.ok(w.lines.length < 100, `${w.lines.length} log lines`);
    // The real router still refreshes and changes its own record when the records are full.
    w.ra('fe80::1', '2001:db8:64::/96', 1800);
    assert.ok(w.t.describe().routers.some((r) => r.router === 'fe80::1' && r.expiresInSec === 1800));
  });

  test('full router records make room as records expire', () => {
    const w = tracker();
    for (let i = 0; i < MAX_RA_ROUTERS; i++) w.ra(`fe80::${i + 1}`, '2001:db8:64::/96', 60);
    w.ra('fe80::99', '2001:db8:65::/96', 600);
    assert.ok(!w.t.describe().routers.some((r) => r.router === 'fe80::99'), 'no room');
    w.clock.advance(61_000);
    w.ra('fe80::99', '2001:db8:65::/96', 600);
    assert.ok(
      w.t.describe().routers.some((r) => r.router === 'fe80::99'),
      'room once the others expired',
    );
    assert.equal(w.chosen(), '2001:db8:65::/96 ra fe80::99');
  });

  test('a second router does not displace the first; it takes over when the first expires', () => {
    const w = tracker();
    w.ra('fe80::1', '2001:db8:64::/96', 60);
    w.clock.advance(1000);
    w.ra('fe80::2', '2001:db8:65::/96', 600);
    assert.equal(w.chosen(), '2001:db8:64::/96 ra fe80::1');
    w.clock.advance(60_000); // fe80::1's lifetime ends
    assert.equal(w.chosen(), '2001:db8:65::/96 ra fe80::2');
    assert.ok(w.lines.some((l) => /PREF64 2001:db8:64::\/96 from fe80::1 expired/.test(l)));
  });

  test('a router that flaps its prefix is followed after a hold that doubles with each change', () => {
    const w = tracker();
    w.ra('fe80::1', '2001:db8:64::/96');
    assert.equal(w.chosen(), '2001:db8:64::/96 ra fe80::1');
    const picks: string[] = [];
    let last = w.chosen();
    // A new prefix every 100 ms for a minute.
    for (let i = 0; i < 600; i++) {
      w.ra('fe80::1', `2001:db8:${(i % 200) + 100}::/96`);
      w.clock.advance(100);
      const c = w.chosen();
      if (c !== last) picks.push(c ?? '');
      last = c;
    }
    // Holds of 5, 10, 20 s: three changes in the minute, where the router made 600.
    assert.equal(picks.length, 3, picks.join(', '));
  });

  test('without flag or RA: a Router Solicitation, a head start, then DNS64 (validated)', async () => {
    const w = tracker();
    w.dns64.answer = [parsePrefix6('ff02::/96'), parsePrefix6('64:ff9b::/96')];
    assert.equal(w.chosen(), undefined);
    assert.deepEqual(w.solicited, [2]);
    assert.equal(w.dns64.calls, 0);
    w.clock.advance(1500);
    assert.equal(w.chosen(), undefined);
    assert.equal(w.dns64.calls, 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(w.chosen(), '64:ff9b::/96 dns64');
    assert.deepEqual(
      w.t.describe().refused.map((r) => `${r.router} ${r.prefix}`),
      ['DNS64 ff02::/96'],
    );
  });

  test('close leaves no timer behind', () => {
    const w = tracker();
    w.ra('fe80::1', '2001:db8:64::/96', 60);
    w.t.close();
    const before = w.kicks();
    w.clock.advance(120_000);
    assert.equal(w.kicks(), before);
  });
});

describe('pref64Problem', () => {
  for (const [p, why] of [
    ['ff02::/96', /multicast/],
    ['fe80::/96', /link-local/],
    ['febf:1::/96', /link-local/],
    ['::/96', /unspecified/],
    ['::ffff:0:0/96', /IPv4-mapped/],
  ] as const) {
    test(`${p} is refused`, () => assert.match(pref64Problem(parsePrefix6(p)) ?? '', why));
  }
  for (const p of ['64:ff9b::/96', '2001:db8:64::/96', '64:ff9b:1::/48', '2001:db8::/32', 'fec0::/96']) {
    test(`${p} can be a NAT64 prefix`, () => assert.equal(pref64Problem(parsePrefix6(p)), null));
  }
  test('overlapping an on-link prefix either way is refused', () => {
    assert.match(pref64Problem(parsePrefix6('2001:db8:1::/96'), [LAN]) ?? '', /on-link prefix 2001:db8:1::\/64/);
    assert.match(pref64Problem(parsePrefix6('2001:db8::/32'), [LAN]) ?? '', /on-link/);
    assert.equal(pref64Problem(parsePrefix6('2001:db8:2::/96'), [LAN]), null);
  });
});
