import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatIPv6, parseIPv6 } from '../../../src/core/addr/ipv6.js';
import { ConfigError } from '../../../src/core/errors.js';
import { type DadAction, type DadEvent, DadMachine, type DadOptions } from '../../../src/core/nd/dad.js';
import { buildDadSolicitation } from '../../../src/core/nd/dad-probe.js';
import { DadError } from '../../../src/core/nd/errors.js';
import { type NdMessage, parseNeighborMessage } from '../../../src/core/nd/nd-parse.js';
import { generateClatAddress, isChecksumNeutral } from '../../../src/core/nd/neutral.js';
import { buildNd, option } from './build.js';

const PREF64 = '64:ff9b::/96';
const CLAT4 = '192.0.0.4';
const PEER_MAC = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x99];
const OWN_MAC = new Uint8Array([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);

function draw(): string {
  return generateClatAddress({ prefix64: '2001:db8:1:2::/64', pref64: PREF64, ipv4: CLAT4 });
}

/** A machine with a counting nonce source, so each probe's nonce is known. */
function machine(opts: Partial<DadOptions> = {}) {
  const drawn: string[] = [];
  let n = 0;
  const m = new DadMachine({
    address: draw(),
    nextAddress: () => {
      const a = draw();
      drawn.push(a);
      return a;
    },
    random: (b) => b.fill(++n),
    ...opts,
  });
  return { m, drawn };
}

function parse(p: Uint8Array): NdMessage {
  const r = parseNeighborMessage(p);
  if (!r.ok) throw new Error(`test packet rejected: ${r.reason}`);
  return r;
}

/** A Neighbor Advertisement for `target` from another node. */
function naFor(target: string, src = 'fe80::99', flags = 0x20): NdMessage {
  return parse(buildNd({ type: 136, src, dst: 'ff02::1', target, flags, options: [option(2, PEER_MAC)] }));
}

/** A DAD solicitation (from ::) for `target` with `nonce` (or none). */
function dadNsFor(target: string, nonce: number[] | null): NdMessage {
  const t = parseIPv6(target);
  const dst = `ff02::1:ff${t[13].toString(16).padStart(2, '0')}:${((t[14] << 8) | t[15]).toString(16)}`;
  return parse(buildNd({ src: '::', dst, target, options: nonce ? [option(14, nonce)] : [] }));
}

function types(actions: DadAction[]): string[] {
  return actions.map((a) => a.type);
}

function nd(now: number, message: NdMessage, extra: Partial<Extract<DadEvent, { type: 'nd' }>> = {}): DadEvent {
  return { type: 'nd', now, message, ...extra };
}

describe('strict mode (default)', () => {
  test('one probe, unique after RetransTimer; only then is the address used', () => {
    const { m } = machine();
    const addr = m.status().address;
    assert.equal(m.status().state, 'idle');
    const a = m.step({ type: 'start', now: 5000 });
    assert.deepEqual(types(a), ['send-probe', 'set-timer']);
    const probe = a[0] as Extract<DadAction, { type: 'send-probe' }>;
    assert.equal(formatIPv6(probe.target), addr);
    assert.equal(probe.nonce.length, 6);
    // The action carries what buildDadSolicitation needs.
    assert.equal(buildDadSolicitation(probe.target, probe.nonce).length, 72);
    assert.deepEqual(a[1], { type: 'set-timer', at: 6000 });
    assert.equal(m.status().state, 'probing');
    assert.equal(m.status().inUse, false);
    // An early wake-up only re-arms.
    assert.deepEqual(m.step({ type: 'timer', now: 5999 }), [{ type: 'set-timer', at: 6000 }]);
    const b = m.step({ type: 'timer', now: 6000 });
    assert.deepEqual(types(b), ['use-address', 'unique']);
    const s = m.status();
    assert.equal(s.state, 'unique');
    assert.equal(s.result, 'unique');
    assert.equal(s.inUse, true);
    assert.equal(s.attempts, 1);
    assert.equal(s.probesSent, 1);
    assert.equal(s.address, addr);
    // Stale events after the end do nothing.
    assert.deepEqual(m.step({ type: 'timer', now: 9000 }), []);
    assert.deepEqual(m.step({ type: 'start', now: 9000 }), []);
  });

  test('DupAddrDetectTransmits probes RetransTimer apart, each with its own nonce', () => {
    const { m } = machine({ transmits: 3, retransTimerMs: 500 });
    const nonces: string[] = [];
    const grab = (acts: DadAction[]) => {
      for (const x of acts) if (x.type === 'send-probe') nonces.push(Buffer.from(x.nonce).toString('hex'));
    };
    let acts = m.step({ type: 'start', now: 0 });
    grab(acts);
    assert.deepEqual(acts[1], { type: 'set-timer', at: 500 });
    acts = m.step({ type: 'timer', now: 500 });
    grab(acts);
    assert.deepEqual(types(acts), ['send-probe', 'set-timer']);
    assert.deepEqual(acts[1], { type: 'set-timer', at: 1000 });
    acts = m.step({ type: 'timer', now: 1003 });
    grab(acts);
    assert.deepEqual(acts[1], { type: 'set-timer', at: 1503 });
    assert.deepEqual(types(m.step({ type: 'timer', now: 1503 })), ['use-address', 'unique']);
    assert.equal(new Set(nonces).size, 3);
    assert.equal(m.status().probesSent, 3);
  });

  test('DupAddrDetectTransmits 0 means no DAD: unique at once', () => {
    const { m } = machine({ transmits: 0 });
    assert.deepEqual(types(m.step({ type: 'start', now: 0 })), ['use-address', 'unique']);
  });

  test('our own probe looped back (same nonce, RFC 7527) is ignored', () => {
    const { m } = machine();
    const addr = m.status().address;
    const probe = m.step({ type: 'start', now: 0 })[0] as Extract<DadAction, { type: 'send-probe' }>;
    assert.deepEqual(m.step(nd(10, dadNsFor(addr, [...probe.nonce]))), []);
    assert.equal(m.status().ignoredOwn, 1);
    assert.deepEqual(types(m.step({ type: 'timer', now: 1000 })), ['use-address', 'unique']);
  });

  test('a DAD solicitation with another nonce is a duplicate; a new neutral address is probed', () => {
    const { m, drawn } = machine();
    const addr = m.status().address;
    m.step({ type: 'start', now: 0 });
    const a = m.step(nd(300, dadNsFor(addr, [9, 9, 9, 9, 9, 9])));
    assert.deepEqual(types(a), ['duplicate', 'send-probe', 'set-timer']);
    const dup = a[0] as Extract<DadAction, { type: 'duplicate' }>;
    assert.equal(formatIPv6(dup.address), addr);
    assert.equal(formatIPv6(dup.next), drawn[0]);
    assert.match(dup.answeredBy, /DAD Neighbor Solicitation from :: with nonce 09:09:09:09:09:09/);
    assert.ok(isChecksumNeutral({ ipv6: dup.next, pref64: PREF64, ipv4: CLAT4 }));
    assert.equal(formatIPv6((a[1] as Extract<DadAction, { type: 'send-probe' }>).target), drawn[0]);
    assert.deepEqual(a[2], { type: 'set-timer', at: 1300 });
    // The old deadline no longer counts.
    assert.deepEqual(m.step({ type: 'timer', now: 1000 }), [{ type: 'set-timer', at: 1300 }]);
    const s = m.status();
    assert.equal(s.attempts, 2);
    assert.equal(s.address, drawn[0]);
    assert.equal(s.inUse, false);
    assert.deepEqual(s.conflicts, [{ address: addr, answeredBy: dup.answeredBy }]);
    assert.deepEqual(types(m.step({ type: 'timer', now: 1300 })), ['use-address', 'unique']);
  });

  test('a DAD solicitation without a nonce is a duplicate too', () => {
    const { m } = machine();
    const addr = m.status().address;
    m.step({ type: 'start', now: 0 });
    assert.deepEqual(types(m.step(nd(1, dadNsFor(addr, null)))), ['duplicate', 'send-probe', 'set-timer']);
  });

  test('a Neighbor Advertisement for the address from another node is a duplicate', () => {
    const { m } = machine();
    const addr = m.status().address;
    m.step({ type: 'start', now: 0 });
    const a = m.step(nd(1, naFor(addr)));
    assert.equal(a[0].type, 'duplicate');
    assert.match(
      (a[0] as Extract<DadAction, { type: 'duplicate' }>).answeredBy,
      /^Neighbor Advertisement from fe80::99 \(02:00:5e:10:00:99\)$/,
    );
  });

  test('our own kernel (fromSelf, or our link-layer address) is not a duplicate', () => {
    const { m } = machine({ ownLinkAddress: OWN_MAC });
    const addr = m.status().address;
    m.step({ type: 'start', now: 0 });
    assert.deepEqual(m.step(nd(1, naFor(addr, '2001:db8:1:2::10', 0), { fromSelf: true })), []);
    assert.deepEqual(m.step(nd(2, naFor(addr), { linkSource: OWN_MAC })), []);
    const ownTlla = parse(
      buildNd({ type: 136, src: 'fe80::1', dst: 'ff02::1', target: addr, options: [option(2, [...OWN_MAC])] }),
    );
    assert.deepEqual(m.step(nd(3, ownTlla)), []);
    assert.equal(m.status().ignoredOwn, 3);
    assert.deepEqual(types(m.step({ type: 'timer', now: 1000 })), ['use-address', 'unique']);
  });

  test('messages about other targets, and address resolution from a unicast source, are ignored', () => {
    const { m } = machine();
    const addr = m.status().address;
    m.step({ type: 'start', now: 0 });
    assert.deepEqual(m.step(nd(1, naFor('2001:db8:1:2::77'))), []);
    assert.deepEqual(m.step(nd(1, dadNsFor('2001:db8:1:2::77', null))), []);
    const resolution = parse(buildNd({ src: 'fe80::99', dst: addr, target: addr, options: [option(1, PEER_MAC)] }));
    assert.deepEqual(m.step(nd(1, resolution)), []);
    assert.equal(m.status().state, 'probing');
  });

  test('after IDGEN_RETRIES (3) new addresses it fails, naming the address and what answered', () => {
    const { m, drawn } = machine();
    const first = m.status().address;
    m.step({ type: 'start', now: 0 });
    for (let i = 0; i < 3; i++) {
      const a = m.step(nd(i * 10, naFor(m.status().address)));
      assert.equal(a[0].type, 'duplicate');
    }
    assert.equal(m.status().attempts, 4);
    const last = m.status().address;
    assert.equal(last, drawn[2]);
    const a = m.step(nd(100, naFor(last, 'fe80::bad')));
    assert.deepEqual(types(a), ['failed']);
    const err = (a[0] as Extract<DadAction, { type: 'failed' }>).error;
    assert.ok(err instanceof DadError);
    assert.equal(err.code, 'ERR_CLATD_DAD_DUPLICATE');
    assert.ok(err.message.includes(last));
    assert.ok(err.message.includes('Neighbor Advertisement from fe80::bad (02:00:5e:10:00:99)'));
    assert.deepEqual(err.addresses, [first, ...drawn]);
    assert.equal(drawn.length, 3);
    const s = m.status();
    assert.equal(s.state, 'failed');
    assert.equal(s.result, 'failed');
    assert.equal(s.inUse, false);
    assert.equal(s.error, err.message);
    // Nothing more happens.
    assert.deepEqual(m.step({ type: 'timer', now: 5000 }), []);
    assert.deepEqual(m.step(nd(5000, naFor(last))), []);
  });

  test('maxRetries 0 fails on the first duplicate', () => {
    const { m } = machine({ maxRetries: 0 });
    m.step({ type: 'start', now: 0 });
    assert.deepEqual(types(m.step(nd(1, naFor(m.status().address)))), ['failed']);
  });

  test('a conflict after DAD is reported, not acted on', () => {
    const { m } = machine();
    const addr = m.status().address;
    m.step({ type: 'start', now: 0 });
    m.step({ type: 'timer', now: 1000 });
    const a = m.step(nd(2000, naFor(addr)));
    assert.deepEqual(types(a), ['late-conflict']);
    assert.equal(m.status().state, 'unique');
    assert.equal(m.status().address, addr);
  });
});

describe('optimistic mode', () => {
  test('translates at once, switches on a duplicate during DAD, and ends unique', () => {
    const { m, drawn } = machine({ mode: 'optimistic' });
    const a = m.step({ type: 'start', now: 0 });
    assert.deepEqual(types(a), ['use-address', 'send-probe', 'set-timer']);
    assert.equal(m.status().inUse, true);
    const b = m.step(nd(10, naFor(m.status().address)));
    assert.deepEqual(types(b), ['duplicate', 'use-address', 'send-probe', 'set-timer']);
    assert.equal(formatIPv6((b[1] as Extract<DadAction, { type: 'use-address' }>).address), drawn[0]);
    assert.deepEqual(types(m.step({ type: 'timer', now: 1010 })), ['unique']);
  });

  test('a final failure stops translation', () => {
    const { m } = machine({ mode: 'optimistic', maxRetries: 1 });
    m.step({ type: 'start', now: 0 });
    m.step(nd(1, naFor(m.status().address)));
    assert.deepEqual(types(m.step(nd(2, naFor(m.status().address)))), ['failed']);
    assert.equal(m.status().inUse, false);
  });
});

describe('off mode (Android)', () => {
  test('one probe, then unique at once, without listening', () => {
    const { m } = machine({ mode: 'off', transmits: 3 });
    const a = m.step({ type: 'start', now: 0 });
    assert.deepEqual(types(a), ['send-probe', 'use-address', 'unique']);
    assert.equal(m.status().state, 'unique');
    assert.deepEqual(types(m.step(nd(5, naFor(m.status().address)))), ['late-conflict']);
  });
});

test('bad settings are ConfigErrors', () => {
  assert.throws(() => machine({ mode: 'eager' as never }), ConfigError);
  assert.throws(() => machine({ transmits: -1 }), ConfigError);
  assert.throws(() => machine({ retransTimerMs: 1.5 }), ConfigError);
  assert.throws(() => machine({ address: new Uint8Array(4) }), ConfigError);
});
