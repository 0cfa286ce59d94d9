/**
 * The lab reads `clatd status --json` as the daemon's StatusSnapshot: the fixtures here are typed by
 * it, so a change of the daemon's layout breaks this file's build instead of the lab's numbers.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StatusSnapshot } from '../../src/daemon/status.js';
import { parseStatus, summarize } from '../../src/lab/status.js';
import { started } from '../daemon/fakes.js';

type Counters = StatusSnapshot['counters'];

const counters: Counters = {
  '46': {
    packets: 10,
    bytes: 840,
    translated: 9,
    packetsOut: 9,
    oversize: 0,
    offloaded: 6,
    drops: { v4_ttl_expired: 1, offload_failed: 0 },
  },
  '64': { packets: 7, bytes: 728, translated: 4, packetsOut: 4, oversize: 1, drops: { v6_segments_left: 2 } },
  io: { packetMalformed: 3, tunReadErrors: 0 },
};

describe('lab status summary', () => {
  test('sums packets per direction, every drop reason, oversize inputs and malformed frames', () => {
    assert.deepEqual(summarize({ counters }), { packets46: 10, packets64: 7, drops: 7, kernel46: 6, kernel64: 0 });
  });

  test('drops the kernel fast path counted (offload_failed) are drops too', () => {
    const c: Counters = { ...counters, '46': { ...counters['46'], drops: { offload_failed: 4 } } };
    assert.equal(summarize({ counters: c }).drops, 4 + 1 + 2 + 3);
  });

  test('a datapath without I/O counters or a kernel fast path', () => {
    const c: Counters = {
      '46': { packets: 2, bytes: 168, drops: {} },
      '64': { packets: 3, bytes: 312, drops: { v6_segments_left: 1 } },
    };
    assert.deepEqual(summarize({ counters: c }), { packets46: 2, packets64: 3, drops: 1, kernel46: 0, kernel64: 0 });
  });
});

describe('lab status parsing', () => {
  test('refuses what is not a status', () => {
    assert.equal(parseStatus('not json'), null);
    assert.equal(parseStatus('null'), null);
    assert.equal(parseStatus('[]'), null);
    assert.equal(parseStatus(JSON.stringify({ state: 'running' })), null, 'no counters');
    assert.equal(parseStatus(JSON.stringify({ state: 'running', counters: { '46': { packets: 1 } } })), null);
    assert.equal(parseStatus(JSON.stringify({ counters })), null, 'no state');
  });

  test('reads what a daemon reports, as the control socket sends it (JSON)', async () => {
    const w = await started({ pref64: '64:ff9b::/96', dad: 'off' });
    try {
      const s = parseStatus(JSON.stringify(w.daemon.status()));
      assert.ok(s, 'the daemon status parses');
      assert.equal(s.state, 'running');
      assert.equal(s.pref64, '64:ff9b::/96');
      const sum = summarize(s);
      assert.equal(sum.packets46, s.counters['46'].packets);
      assert.equal(sum.packets64, s.counters['64'].packets);
      assert.equal(sum.drops, 1, "the fake datapath's one drop");
    } finally {
      await w.daemon.stop();
    }
  });
});
