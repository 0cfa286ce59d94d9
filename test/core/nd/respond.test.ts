import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIPv6, parseIPv6 } from '../../../src/core/addr/ipv6.js';
import {
  buildNeighborAdvertisement,
  NA_FLAG_OVERRIDE,
  NA_FLAG_ROUTER,
  NA_FLAG_SOLICITED,
} from '../../../src/core/nd/advert.js';
import { parseNeighborMessage } from '../../../src/core/nd/nd-parse.js';
import { NdResponder } from '../../../src/core/nd/respond.js';
import { buildNd, option, refSum } from './build.js';

const CLAT = '2001:db8:1::5e:1234';
const GROUP = 'ff02::1:ff5e:1234';
const MAC = Uint8Array.of(0x02, 0x00, 0x5e, 0x10, 0x00, 0x01);
const ROUTER_MAC = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x99];
const NONCE = Uint8Array.of(1, 2, 3, 4, 5, 6);

function responder(): NdResponder {
  const r = new NdResponder(parseIPv6(CLAT), MAC);
  assert.equal(r.confirm(parseIPv6(CLAT)), true);
  return r;
}

function handle(r: NdResponder, p: Uint8Array, linkSource?: Uint8Array) {
  return r.handle(p, 0, p.length, linkSource);
}

/** The advertisement `r` wrote, parsed (and so checked: hop limit, checksum, options). */
function sent(r: NdResponder, length: number) {
  const na = parseNeighborMessage(r.out, 0, length);
  assert.ok(na.ok && na.kind === 'na', `not a valid NA: ${JSON.stringify(na)}`);
  return na;
}

describe('buildNeighborAdvertisement', () => {
  test('header, flags, target, TLLA option and checksum, checked against a slow RFC 1071 sum', () => {
    const out = new Uint8Array(100).fill(0xee);
    const len = buildNeighborAdvertisement(
      {
        source: parseIPv6(CLAT),
        destination: parseIPv6('fe80::1'),
        target: parseIPv6(CLAT),
        flags: NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
        linkAddress: MAC,
      },
      out,
      4,
    );
    assert.equal(len, 72);
    const p = out.subarray(4, 4 + len);
    assert.equal(p[0], 0x60);
    assert.equal((p[4] << 8) | p[5], 32);
    assert.equal(p[6], 58);
    assert.equal(p[7], 255);
    assert.equal(p[40], 136);
    assert.equal(p[41], 0);
    assert.equal(p[44], 0x60);
    assert.deepEqual([...p.subarray(64, 72)], [2, 1, ...MAC]);
    const pseudo = new Uint8Array(40);
    pseudo.set(p.subarray(8, 40), 0);
    pseudo[35] = 32;
    pseudo[39] = 58;
    assert.equal(refSum([pseudo, p.subarray(40)]), 0xffff);
    assert.equal(out[3], 0xee);
    assert.equal(out[4 + len], 0xee);
    const na = parseNeighborMessage(p);
    assert.ok(na.ok && na.kind === 'na');
    assert.equal(na.solicited, true);
    assert.equal(na.override, true);
    assert.equal(na.router, false);
    assert.deepEqual([...(na.targetLinkAddress ?? [])], [...MAC]);
  });

  test('no link-layer address: no option; only the R, S and O bits are kept', () => {
    const out = new Uint8Array(64);
    const len = buildNeighborAdvertisement(
      { source: parseIPv6(CLAT), destination: parseIPv6('ff02::1'), target: parseIPv6(CLAT), flags: 0xff },
      out,
    );
    assert.equal(len, 64);
    assert.equal(out[44], NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
    // Solicited to a multicast group is invalid: the parser says so, which proves the flags went out.
    assert.deepEqual(parseNeighborMessage(out, 0, len), { ok: false, reason: 'solicited-na-to-multicast' });
  });

  test('a buffer too small or a link-layer address too long is refused', () => {
    const f = { source: parseIPv6(CLAT), destination: parseIPv6(CLAT), target: parseIPv6(CLAT), flags: 0 };
    assert.throws(() => buildNeighborAdvertisement({ ...f, linkAddress: MAC }, new Uint8Array(71)), /72 bytes/);
    assert.throws(() => buildNeighborAdvertisement({ ...f, linkAddress: new Uint8Array(15) }, new Uint8Array(200)));
  });
});

describe('NdResponder', () => {
  test('address resolution: a solicited NA with S and O to the asker, with our MAC', () => {
    const r = responder();
    const v = handle(r, buildNd({ src: 'fe80::1', dst: GROUP, target: CLAT, options: [option(1, ROUTER_MAC)] }));
    assert.ok(v.send);
    const na = sent(r, v.length);
    assert.equal(formatIPv6(na.source), CLAT);
    assert.equal(formatIPv6(na.destination), 'fe80::1');
    assert.equal(formatIPv6(na.target), CLAT);
    assert.deepEqual([na.router, na.solicited, na.override], [false, true, true]);
    assert.deepEqual([...(na.targetLinkAddress ?? [])], [...MAC]);
    assert.equal(r.counters.answered, 1);
    assert.equal(r.counters.nud, 0);
  });

  test('an unreachability probe unicast to the address is answered and counted as NUD', () => {
    const r = responder();
    const v = handle(r, buildNd({ src: '2001:db8:1::1', dst: CLAT, target: CLAT }));
    assert.ok(v.send);
    assert.equal(formatIPv6(sent(r, v.length).destination), '2001:db8:1::1');
    assert.deepEqual([r.counters.answered, r.counters.nud], [1, 1]);
  });

  test("another node's DAD probe is defended: NA to all-nodes, S clear, O set", () => {
    const r = responder();
    const v = handle(r, buildNd({ dst: GROUP, target: CLAT, options: [option(14, [9, 9, 9, 9, 9, 9])] }));
    assert.ok(v.send);
    const na = sent(r, v.length);
    assert.equal(formatIPv6(na.destination), 'ff02::1');
    assert.deepEqual([na.solicited, na.override], [false, true]);
    assert.equal(r.counters.defended, 1);
  });

  test('nothing is answered before DAD passed, nor after a retarget until confirmed again', () => {
    const r = new NdResponder(parseIPv6(CLAT), MAC);
    const ns = buildNd({ src: 'fe80::1', dst: GROUP, target: CLAT });
    assert.deepEqual(handle(r, ns), { send: false, reason: 'before-dad' });
    assert.deepEqual(handle(r, buildNd({ dst: GROUP, target: CLAT })), { send: false, reason: 'before-dad' });
    assert.equal(r.announce(), 0);
    assert.equal(r.confirm(parseIPv6('2001:db8:1::1')), false, 'DAD of another address');
    assert.equal(r.answering, false);
    assert.equal(r.confirm(parseIPv6(CLAT)), true);
    assert.ok(handle(r, ns).send);
    r.retarget(parseIPv6('2001:db8:1::77'));
    assert.deepEqual(handle(r, ns), { send: false, reason: 'other-target' });
    const ns2 = buildNd({ src: 'fe80::1', dst: 'ff02::1:ff00:77', target: '2001:db8:1::77' });
    assert.deepEqual(handle(r, ns2), { send: false, reason: 'before-dad' });
    r.confirm(parseIPv6('2001:db8:1::77'));
    assert.ok(handle(r, ns2).send);
    assert.deepEqual(r.counters.ignored, { 'before-dad': 3, 'other-target': 1 });
  });

  test('our own looped-back DAD probes never count: by nonce or by link-layer source', () => {
    const r = new NdResponder(parseIPv6(CLAT), MAC);
    r.noteOwnNonce(NONCE);
    const own = buildNd({ dst: GROUP, target: CLAT, options: [option(14, [...NONCE])] });
    assert.deepEqual(handle(r, own), { send: false, reason: 'own-probe' });
    r.confirm(parseIPv6(CLAT));
    assert.deepEqual(handle(r, own), { send: false, reason: 'own-probe' });
    const other = buildNd({ dst: GROUP, target: CLAT, options: [option(14, [6, 5, 4, 3, 2, 1])] });
    assert.deepEqual(handle(r, other, MAC), { send: false, reason: 'own-probe' });
    assert.ok(handle(r, other, Uint8Array.from(ROUTER_MAC)).send);
    // The ring forgets the oldest of more than 16 nonces.
    for (let i = 0; i < 16; i++) r.noteOwnNonce(Uint8Array.of(i, i, i, i, i, 0xaa));
    assert.ok(handle(r, own).send);
    assert.equal(r.counters.ignored['own-probe'], 3);
  });

  test('the unsolicited announcement: all-nodes, S clear, O set, our MAC', () => {
    const r = responder();
    const len = r.announce();
    const na = sent(r, len);
    assert.equal(formatIPv6(na.destination), 'ff02::1');
    assert.deepEqual([na.solicited, na.override], [false, true]);
    assert.deepEqual([...(na.targetLinkAddress ?? [])], [...MAC]);
    assert.equal(r.counters.announced, 1);
  });

  test('malformed, misdirected and odd solicitations are ignored and counted by reason', () => {
    const r = responder();
    const cases: [Uint8Array, string][] = [
      [buildNd({ src: 'fe80::1', dst: GROUP, target: CLAT, badChecksum: true }), 'bad-checksum'],
      [buildNd({ src: 'fe80::1', dst: GROUP, target: CLAT, hopLimit: 64 }), 'hop-limit-not-255'],
      [buildNd({ src: 'fe80::1', dst: GROUP, target: CLAT, code: 3 }), 'code-not-zero'],
      [buildNd({ src: 'fe80::1', dst: GROUP, target: CLAT, options: [[1]] }).subarray(0, 70), 'truncated'],
      [buildNd({ dst: GROUP, target: CLAT, options: [option(1, ROUTER_MAC)] }), 'slla-from-unspecified'],
      [buildNd({ src: 'fe80::1', dst: 'ff02::1', target: CLAT }), 'wrong-destination'],
      [buildNd({ src: 'fe80::1', dst: GROUP, target: '2001:db8:1::9' }), 'other-target'],
      [buildNd({ type: 136, src: 'fe80::1', dst: 'ff02::1', target: CLAT }), 'advertisement'],
      [buildNd({ src: CLAT, dst: GROUP, target: CLAT }), 'source-is-target'],
    ];
    for (const [p, reason] of cases) assert.deepEqual(handle(r, p), { send: false, reason }, reason);
    assert.equal(r.counters.answered + r.counters.defended, 0);
    assert.equal(
      Object.values(r.counters.ignored).reduce((a, n) => a + (n ?? 0), 0),
      cases.length,
    );
  });

  test('random bytes never throw and are never answered unless they are a valid solicitation for us', () => {
    const r = responder();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
        const v = r.handle(b, 0, b.length);
        if (v.send) assert.ok(sent(r, v.length));
      }),
    );
  });
});
