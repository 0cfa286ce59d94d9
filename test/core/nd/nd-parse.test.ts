import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIPv6 } from '../../../src/core/addr/ipv6.js';
import { type NdRejection, parseNeighborMessage } from '../../../src/core/nd/nd-parse.js';
import { buildNd, option, refSum } from './build.js';

const MAC = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const NONCE = [1, 2, 3, 4, 5, 6];

function reason(b: Uint8Array): NdRejection | 'ok' {
  const r = parseNeighborMessage(b);
  return r.ok ? 'ok' : r.reason;
}

describe('Neighbor Solicitation', () => {
  test('a DAD probe from :: with a nonce', () => {
    const r = parseNeighborMessage(
      buildNd({ dst: 'ff02::1:ff00:1', target: '2001:db8::1', options: [option(14, NONCE)] }),
    );
    assert.ok(r.ok && r.kind === 'ns');
    assert.equal(formatIPv6(r.source), '::');
    assert.equal(formatIPv6(r.destination), 'ff02::1:ff00:1');
    assert.equal(formatIPv6(r.target), '2001:db8::1');
    assert.deepEqual([...(r.nonce ?? [])], NONCE);
    assert.equal(r.sourceLinkAddress, null);
  });

  test('address resolution from a unicast source, with a source link-layer address', () => {
    const r = parseNeighborMessage(
      buildNd({ src: 'fe80::1', dst: '2001:db8::1', options: [option(1, MAC), option(99, [7, 7])] }),
    );
    assert.ok(r.ok && r.kind === 'ns');
    assert.deepEqual([...(r.sourceLinkAddress ?? [])], MAC);
    assert.equal(r.nonce, null);
  });

  test('RFC 4861 §7.1.1 rejections', () => {
    assert.equal(reason(buildNd({ hopLimit: 64 })), 'hop-limit-not-255');
    assert.equal(reason(buildNd({ code: 1 })), 'code-not-zero');
    assert.equal(reason(buildNd({ badChecksum: true })), 'bad-checksum');
    assert.equal(reason(buildNd({ target: 'ff02::1' })), 'target-multicast');
    assert.equal(reason(buildNd({ options: [option(1, MAC)] })), 'slla-from-unspecified');
    assert.equal(reason(buildNd({ dst: 'ff02::1' })), 'unspecified-source-not-to-solicited-node');
    assert.equal(reason(buildNd({ dst: '2001:db8::1' })), 'unspecified-source-not-to-solicited-node');
    // From a unicast source, any destination is fine.
    assert.equal(reason(buildNd({ src: 'fe80::1', dst: '2001:db8::1' })), 'ok');
  });
});

describe('Neighbor Advertisement', () => {
  test('flags and target link-layer address', () => {
    const r = parseNeighborMessage(
      buildNd({ type: 136, src: 'fe80::2', dst: 'fe80::1', flags: 0xe0, options: [option(2, MAC)] }),
    );
    assert.ok(r.ok && r.kind === 'na');
    assert.equal(r.router, true);
    assert.equal(r.solicited, true);
    assert.equal(r.override, true);
    assert.deepEqual([...(r.targetLinkAddress ?? [])], MAC);
    const u = parseNeighborMessage(buildNd({ type: 136, src: 'fe80::2', dst: 'ff02::1', flags: 0x20 }));
    assert.ok(u.ok && u.kind === 'na');
    assert.equal(u.solicited, false);
    assert.equal(u.router, false);
    assert.equal(u.targetLinkAddress, null);
  });

  test('RFC 4861 §7.1.2 rejections', () => {
    const na = { type: 136, src: 'fe80::2', dst: 'fe80::1' };
    assert.equal(reason(buildNd({ ...na, hopLimit: 254 })), 'hop-limit-not-255');
    assert.equal(reason(buildNd({ ...na, code: 3 })), 'code-not-zero');
    assert.equal(reason(buildNd({ ...na, badChecksum: true })), 'bad-checksum');
    assert.equal(reason(buildNd({ ...na, target: 'ff05::2' })), 'target-multicast');
    assert.equal(reason(buildNd({ ...na, dst: 'ff02::1', flags: 0x40 })), 'solicited-na-to-multicast');
  });
});

describe('framing and options', () => {
  test('option length 0 and options running past the end are rejected', () => {
    const p = buildNd({ src: 'fe80::1', dst: '2001:db8::1', options: [option(1, MAC)] });
    const zero = p.slice();
    zero[40 + 24 + 1] = 0;
    // Fix the checksum so only the option is wrong.
    refix(zero);
    assert.equal(reason(zero), 'option-length-zero');
    const long = p.slice();
    long[40 + 24 + 1] = 2;
    refix(long);
    assert.equal(reason(long), 'option-overflow');
    // A single stray byte after the fixed part.
    const odd = buildNd({ src: 'fe80::1', dst: '2001:db8::1' });
    const grown = new Uint8Array(odd.length + 1);
    grown.set(odd);
    grown[5] += 1;
    grown[40 + 24] = 1;
    refix(grown);
    assert.equal(reason(grown), 'option-overflow');
  });

  test('short, foreign and malformed packets', () => {
    assert.equal(reason(new Uint8Array(0)), 'truncated');
    assert.equal(reason(new Uint8Array(39)), 'truncated');
    const p = buildNd();
    assert.equal(reason(p.subarray(0, p.length - 1)), 'truncated');
    const v4 = p.slice();
    v4[0] = 0x45;
    assert.equal(reason(v4), 'not-ipv6');
    const udp = p.slice();
    udp[6] = 17;
    assert.equal(reason(udp), 'not-icmpv6');
    const jumbo = p.slice();
    jumbo[4] = 0;
    jumbo[5] = 0;
    assert.equal(reason(jumbo), 'bad-payload-length');
    const echo = buildNd({ type: 128 });
    assert.equal(reason(echo), 'not-ns-or-na');
    const short = buildNd();
    // Claim a 20-byte ICMPv6 message.
    short[5] = 20;
    assert.equal(reason(short.subarray(0, 60)), 'icmp-too-short');
    const frag = p.slice();
    frag[6] = 44;
    assert.equal(reason(frag), 'fragmented');
  });

  test('link-layer padding after the payload is ignored; an offset and length select the packet', () => {
    assert.equal(reason(buildNd({ trailer: 12 })), 'ok');
    const p = buildNd({ options: [option(14, NONCE)] });
    const framed = new Uint8Array(14 + p.length + 4);
    framed.set(p, 14);
    const r = parseNeighborMessage(framed, 14, p.length);
    assert.ok(r.ok);
    assert.equal(parseNeighborMessage(framed, 14, 30).ok, false);
    assert.equal(parseNeighborMessage(framed, framed.length - 10).ok, false);
  });

  test('Hop-by-Hop and Destination Options headers are walked', () => {
    const r = parseNeighborMessage(buildNd({ ext: [0, 60], options: [option(14, NONCE)] }));
    assert.ok(r.ok && r.kind === 'ns');
    assert.deepEqual([...(r.nonce ?? [])], NONCE);
  });
});

/** Recomputes the ICMPv6 checksum of a packet without extension headers after an edit. */
function refix(p: Uint8Array): void {
  const len = (p[4] << 8) | p[5];
  p[42] = 0;
  p[43] = 0;
  const pseudo = new Uint8Array(40);
  pseudo.set(p.subarray(8, 40));
  pseudo[34] = len >>> 8;
  pseudo[35] = len & 0xff;
  pseudo[39] = 58;
  const c = ~refSum([pseudo, p.subarray(40, 40 + len)]) & 0xffff;
  p[42] = c >>> 8;
  p[43] = c & 0xff;
}

describe('fuzz', () => {
  const REASONS = new Set<string>([
    'truncated',
    'not-ipv6',
    'bad-payload-length',
    'not-icmpv6',
    'fragmented',
    'not-ns-or-na',
    'hop-limit-not-255',
    'code-not-zero',
    'icmp-too-short',
    'bad-checksum',
    'option-length-zero',
    'option-overflow',
    'target-multicast',
    'slla-from-unspecified',
    'unspecified-source-not-to-solicited-node',
    'solicited-na-to-multicast',
  ]);

  test('random bytes never throw and are rejected with a known reason', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(300), fc.nat(300), (b, off, len) => {
        for (const r of [parseNeighborMessage(b), parseNeighborMessage(b, off, len)]) {
          if (!r.ok) assert.ok(REASONS.has(r.reason), r.reason);
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('random IPv6 packets shaped like ND never throw; whatever is accepted verifies', () => {
    const arb = fc
      .tuple(
        fc.constantFrom(135, 136),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ maxLength: 48 }),
        fc.boolean(),
      )
      .map(([type, target, tail, unspec]) => {
        const opts: number[] = [...tail];
        const p = buildNd({ type, target: '2001:db8::1', src: unspec ? '::' : 'fe80::1' });
        const out = new Uint8Array(p.length + opts.length);
        out.set(p);
        out.set(opts, p.length);
        out.set(target, 48);
        const len = out.length - 40;
        out[4] = len >>> 8;
        out[5] = len & 0xff;
        refix(out);
        return out;
      });
    fc.assert(
      fc.property(arb, (p) => {
        const r = parseNeighborMessage(p);
        if (r.ok) {
          const pseudo = new Uint8Array(40);
          pseudo.set(p.subarray(8, 40));
          pseudo[35] = p.length - 40;
          pseudo[39] = 58;
          assert.equal(refSum([pseudo, p.subarray(40)]), 0xffff);
          assert.notEqual(r.target[0], 0xff);
        } else assert.ok(REASONS.has(r.reason), r.reason);
      }),
      { numRuns: 3000 },
    );
  });
});
