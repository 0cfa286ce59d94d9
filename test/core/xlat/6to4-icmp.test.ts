/**
 * ICMPv6 → ICMPv4 (RFC 7915 §5.2, §5.3): the type/code table, the Parameter Problem pointer map,
 * the Packet Too Big MTU, RFC 4884 layout, and whole messages; plus the generated-error builder.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBatch } from '../../../src/core/batch.js';
import { resolveConfig } from '../../../src/core/xlat/config.js';
import { Drop, dropName } from '../../../src/core/xlat/drop.js';
import { emitIcmp4Error, ICMP4_ERRORS } from '../../../src/core/xlat/icmp-error.js';
import {
  ErrorLayout,
  icmp6to4TypeCode,
  layout4884,
  mapPointer64,
  NO_ICMP4,
  ptbMtu64,
} from '../../../src/core/xlat/icmp64.js';
import { Translator } from '../../../src/core/xlat/translator.js';
import { bytes, fragHdr, icmp4ChecksumOk, icmp6, ip4, ipv6, l4ChecksumOk4, tcp6, udp6, v4 } from './6to4-packets.js';

const REMOTE6 = '64:ff9b::cb00:7107'; // 203.0.113.7
const CLAT6 = '2001:db8:1::c1a7'; // 192.0.0.4
const ROUTER6 = '2001:db8:77::1'; // no IPv4 mapping
const base = {
  pool6: '64:ff9b::/96',
  eam: [{ v4: '192.0.0.4/32', v6: `${CLAT6}/128` }],
  ownV4: '192.0.0.1',
  ownV6: '2001:db8:1::1',
  wkpGlobalOnly: false,
};

describe('type/code table (RFC 7915 §5.2)', () => {
  const tc = (t: number, c: number) => {
    const v = icmp6to4TypeCode(t, c);
    return v === NO_ICMP4 ? null : [v >>> 8, v & 0xff];
  };

  test('informational: echo maps, everything else (MLD, ND, unknown) drops', () => {
    assert.deepEqual(tc(128, 0), [8, 0]);
    assert.deepEqual(tc(129, 0), [0, 0]);
    for (const t of [130, 131, 132, 133, 134, 135, 136, 137, 143, 200, 255]) assert.equal(tc(t, 0), null, `type ${t}`);
  });

  test('errors', () => {
    assert.deepEqual(tc(1, 0), [3, 1]);
    assert.deepEqual(tc(1, 1), [3, 10]);
    assert.deepEqual(tc(1, 2), [3, 1]);
    assert.deepEqual(tc(1, 3), [3, 1]);
    assert.deepEqual(tc(1, 4), [3, 3]);
    for (const c of [5, 6, 7, 255]) assert.equal(tc(1, c), null);
    assert.deepEqual(tc(2, 0), [3, 4]);
    assert.deepEqual(tc(3, 0), [11, 0]);
    assert.deepEqual(tc(3, 1), [11, 1]);
    assert.deepEqual(tc(4, 0), [12, 0]);
    assert.deepEqual(tc(4, 1), [3, 2]);
    assert.equal(tc(4, 2), null);
    assert.equal(tc(4, 3), null);
    for (const t of [0, 5, 100, 127]) assert.equal(tc(t, 0), null);
  });

  test('Parameter Problem pointer map (Figure 6)', () => {
    const want = [0, 1, -1, -1, 2, 2, 9, 8];
    for (let p = 0; p < 8; p++) assert.equal(mapPointer64(p), want[p], `pointer ${p}`);
    for (let p = 8; p < 24; p++) assert.equal(mapPointer64(p), 12);
    for (let p = 24; p < 40; p++) assert.equal(mapPointer64(p), 16);
    for (const p of [40, 41, 1000, -1]) assert.equal(mapPointer64(p), -1);
  });

  test('Packet Too Big MTU: min(MTU − 20, IPv4 MTU, IPv6 MTU − 20), within 68..65535', () => {
    assert.equal(ptbMtu64(1280, 1500, 1500), 1260);
    assert.equal(ptbMtu64(1500, 1400, 1500), 1400);
    assert.equal(ptbMtu64(1500, 1500, 1300), 1280);
    assert.equal(ptbMtu64(0x100000, 65535, 65535), 65515);
    // Never below IPv4's minimum MTU of 68 (RFC 791 §3.2).
    assert.equal(ptbMtu64(10, 1500, 1500), 68);
    assert.equal(ptbMtu64(88, 1500, 1500), 68);
    assert.equal(ptbMtu64(89, 1500, 1500), 69);
  });
});

describe('RFC 4884 layout in 576 bytes (Jool priorities)', () => {
  const l = new ErrorLayout();
  const at = (q: number, e: number) => {
    layout4884(q, e, 576, l);
    return [l.quoted, l.field, l.ext, l.lengthWords];
  };
  test('no extension: the quoted packet is cut, nothing padded', () => {
    assert.deepEqual(at(100, 0), [100, 100, 0, 0]);
    assert.deepEqual(at(1000, 0), [548, 548, 0, 0]);
  });
  test('extension kept: quoted padded to 128 and counted in 32-bit words', () => {
    assert.deepEqual(at(132, 20), [132, 132, 20, 33]);
    assert.deepEqual(at(102, 40), [102, 128, 40, 32]);
    assert.deepEqual(at(508, 40), [508, 508, 40, 127]);
    assert.deepEqual(at(516, 40), [508, 508, 40, 127]);
    assert.deepEqual(at(108, 420), [108, 128, 420, 32]);
  });
  test('extension that does not fit beside 128 bytes is dropped whole', () => {
    assert.deepEqual(at(108, 421), [108, 108, 0, 0]);
    assert.deepEqual(at(556, 521), [548, 548, 0, 0]);
  });
});

/** An ICMPv6 error from `from` to the CLAT quoting the CLAT's UDP packet to REMOTE6. */
function errorAbout(from: string, type: number, code: number, rest: number, quoteBytes = 40, extra?: Uint8Array) {
  const innerPayload = udp6(CLAT6, REMOTE6, 40000, 53, bytes(quoteBytes));
  const inner = ipv6({ src: CLAT6, dst: REMOTE6, proto: 17, hop: 61, payload: innerPayload });
  const body = extra ? Uint8Array.from([...inner, ...extra]) : inner;
  return {
    inner,
    pkt: ipv6({ src: from, dst: CLAT6, proto: 58, payload: icmp6(from, CLAT6, type, code, rest, body) }),
  };
}

describe('ICMPv6 messages', () => {
  const t = new Translator(base);

  test('echo request → 8/0, checksum without the pseudo-header', () => {
    const pkt = ipv6({
      src: REMOTE6,
      dst: CLAT6,
      proto: 58,
      payload: icmp6(REMOTE6, CLAT6, 128, 0, 0x12340001, bytes(56)),
    });
    const p = t.translate(pkt).forward[0];
    assert.equal(v4(p).proto, 1);
    assert.deepEqual([p[20], p[21]], [8, 0]);
    assert.ok(icmp4ChecksumOk(p));
    assert.deepEqual(p.subarray(24), pkt.subarray(44));
  });

  test('echo reply → 0/0', () => {
    const pkt = ipv6({ src: REMOTE6, dst: CLAT6, proto: 58, payload: icmp6(REMOTE6, CLAT6, 129, 0, 7, bytes(8)) });
    const p = t.translate(pkt).forward[0];
    assert.deepEqual([p[20], p[21]], [0, 0]);
    assert.ok(icmp4ChecksumOk(p));
  });

  test('neighbour solicitation and MLD: D64_ICMP_UNTRANSLATABLE', () => {
    for (const type of [130, 135]) {
      const pkt = ipv6({ src: REMOTE6, dst: CLAT6, proto: 58, payload: icmp6(REMOTE6, CLAT6, type, 0, 0, bytes(16)) });
      assert.equal(t.translate(pkt).drop, dropName(Drop.D64_ICMP_UNTRANSLATABLE));
    }
  });

  test('a fragmented echo: D64_FRAGMENTED_ICMP', () => {
    const m = icmp6(REMOTE6, CLAT6, 128, 0, 1, bytes(64));
    const pkt = ipv6({ src: REMOTE6, dst: CLAT6, proto: 58, exts: [fragHdr(9, 0, true)], payload: m.subarray(0, 32) });
    assert.equal(t.translate(pkt).drop, dropName(Drop.D64_FRAGMENTED_ICMP));
  });

  test('port unreachable → 3/3, the quoted packet translated with its TTL and checksums', () => {
    const { inner, pkt } = errorAbout(REMOTE6, 1, 4, 0);
    const p = t.translate(pkt).forward[0];
    assert.ok(v4(p).headerOk);
    assert.deepEqual([p[20], p[21]], [3, 3]);
    assert.ok(icmp4ChecksumOk(p));
    const q = p.subarray(28);
    const h = v4(q);
    assert.ok(h.headerOk);
    assert.equal(h.src, ip4('192.0.0.4'));
    assert.equal(h.dst, ip4('203.0.113.7'));
    assert.equal(h.ttl, 61);
    assert.equal(h.totalLength, inner.length - 20);
    assert.equal(q.length, inner.length - 20);
    assert.ok(l4ChecksumOk4(q, 17));
  });

  test('Packet Too Big → 3/4 with MTU − 20', () => {
    const { pkt } = errorAbout(REMOTE6, 2, 0, 1400);
    const p = t.translate(pkt).forward[0];
    assert.deepEqual([p[20], p[21], (p[26] << 8) | p[27]], [3, 4, 1380]);
    assert.ok(icmp4ChecksumOk(p));
  });

  test('Parameter Problem 4/0 pointer mapped; a Flow Label pointer drops; 4/1 → 3/2', () => {
    const pp = t.translate(errorAbout(REMOTE6, 4, 0, 7).pkt).forward[0];
    assert.deepEqual([pp[20], pp[21], pp[24]], [12, 0, 8]);
    assert.ok(icmp4ChecksumOk(pp));
    assert.equal(t.translate(errorAbout(REMOTE6, 4, 0, 2).pkt).drop, dropName(Drop.D64_ICMP_UNTRANSLATABLE));
    const nh = t.translate(errorAbout(REMOTE6, 4, 1, 40).pkt).forward[0];
    assert.deepEqual([nh[20], nh[21]], [3, 2]);
  });

  test('an error from a router without IPv4 mapping gets the RFC 7600 source', () => {
    const p = t.translate(errorAbout(ROUTER6, 3, 0, 0).pkt).forward[0];
    assert.equal(v4(p).src, ip4('192.0.0.8'));
    assert.deepEqual([p[20], p[21]], [11, 0]);
    // ...but a non-error from there is still an unmapped source.
    const echo = ipv6({ src: ROUTER6, dst: CLAT6, proto: 58, payload: icmp6(ROUTER6, CLAT6, 128, 0, 0, bytes(8)) });
    assert.equal(t.translate(echo).drop, dropName(Drop.D64_SRC_UNMAPPED));
  });

  test('cut to 576 bytes; the quoted Total Length keeps the original', () => {
    const { inner, pkt } = errorAbout(REMOTE6, 1, 4, 0, 1000);
    const p = t.translate(pkt).forward[0];
    assert.equal(p.length, 576);
    assert.equal(v4(p).totalLength, 576);
    assert.equal(v4(p.subarray(28)).totalLength, inner.length - 20);
    assert.ok(icmp4ChecksumOk(p));
  });

  test('RFC 4884: extension kept, quoted packet padded to 128 and the length attribute rewritten', () => {
    const ext = Uint8Array.from({ length: 16 }, (_, i) => 0x20 + i);
    // Inner IPv6/UDP of 40+8+40 = 88 bytes, padded to 128 (16 words of 8 bytes).
    const { inner } = errorAbout(REMOTE6, 1, 4, 0);
    const padded = new Uint8Array(128);
    padded.set(inner);
    const pkt = ipv6({
      src: REMOTE6,
      dst: CLAT6,
      proto: 58,
      payload: icmp6(REMOTE6, CLAT6, 1, 4, 16 << 24, Uint8Array.from([...padded, ...ext])),
    });
    const p = t.translate(pkt).forward[0];
    assert.equal(p[25], 32); // 128 bytes in 32-bit words
    assert.equal(p.length, 28 + 128 + 16);
    assert.deepEqual(p.subarray(28 + 128), ext);
    assert.ok(icmp4ChecksumOk(p));
  });

  test('an ICMPv6 error quoting an ICMPv6 error: D64_ICMP_ERROR_IN_ERROR', () => {
    const innerErr = ipv6({ src: CLAT6, dst: REMOTE6, proto: 58, payload: icmp6(CLAT6, REMOTE6, 1, 4, 0, bytes(48)) });
    const pkt = ipv6({ src: REMOTE6, dst: CLAT6, proto: 58, payload: icmp6(REMOTE6, CLAT6, 1, 0, 0, innerErr) });
    assert.equal(t.translate(pkt).drop, dropName(Drop.D64_ICMP_ERROR_IN_ERROR));
  });

  test('a quoted echo request is translated too', () => {
    const innerEcho = ipv6({
      src: CLAT6,
      dst: REMOTE6,
      proto: 58,
      payload: icmp6(CLAT6, REMOTE6, 128, 0, 5, bytes(24)),
    });
    const pkt = ipv6({ src: REMOTE6, dst: CLAT6, proto: 58, payload: icmp6(REMOTE6, CLAT6, 3, 0, 0, innerEcho) });
    const p = t.translate(pkt).forward[0];
    const q = p.subarray(28);
    assert.equal(v4(q).proto, 1);
    assert.equal(q[20], 8);
    assert.ok(icmp4ChecksumOk(q));
  });

  test('a quoted packet too short or with an unmapped address: D64_ICMP_BAD_INNER', () => {
    const short = ipv6({ src: REMOTE6, dst: CLAT6, proto: 58, payload: icmp6(REMOTE6, CLAT6, 1, 4, 0, bytes(30)) });
    assert.equal(t.translate(short).drop, dropName(Drop.D64_ICMP_BAD_INNER));
    const odd = ipv6({ src: CLAT6, dst: ROUTER6, proto: 6, payload: tcp6(CLAT6, ROUTER6, 1, 2, bytes(4)) });
    const pkt = ipv6({ src: REMOTE6, dst: CLAT6, proto: 58, payload: icmp6(REMOTE6, CLAT6, 1, 4, 0, odd) });
    assert.equal(t.translate(pkt).drop, dropName(Drop.D64_ICMP_BAD_INNER));
  });
});

describe('emitIcmp4Error (for the 4→6 direction)', () => {
  const c = resolveConfig(base);
  const pkt = Uint8Array.from(
    Buffer.from('4500001c000040004011' + '0000' + 'cb007107' + 'c0000004' + '0035' + '9c40' + '0008' + '0000', 'hex'),
  );

  test('builds a valid ICMPv4 error from the own address back to the sender', () => {
    const out = createBatch(2, 2048);
    assert.ok(emitIcmp4Error(c, ICMP4_ERRORS.fragmentationNeeded, 1260, pkt, 0, pkt.length, out));
    const e = out.data.subarray(out.offs[0], out.offs[0] + out.lens[0]);
    const h = v4(e);
    assert.ok(h.headerOk);
    assert.equal(h.src, ip4('192.0.0.1'));
    assert.equal(h.dst, ip4('203.0.113.7'));
    assert.equal(h.ttl, 64);
    assert.deepEqual([e[20], e[21], (e[26] << 8) | e[27]], [3, 4, 1260]);
    assert.deepEqual(e.subarray(28), pkt);
    assert.ok(icmp4ChecksumOk(e));
    assert.equal(out.disp[0], 1);
  });

  test('never answers an ICMP error or a non-first fragment', () => {
    const out = createBatch(2, 2048);
    const err = pkt.slice();
    err[9] = 1;
    err[20] = 3;
    assert.equal(emitIcmp4Error(c, ICMP4_ERRORS.ttlExceeded, 0, err, 0, err.length, out), false);
    const frag = pkt.slice();
    frag[7] = 8;
    assert.equal(emitIcmp4Error(c, ICMP4_ERRORS.ttlExceeded, 0, frag, 0, frag.length, out), false);
    assert.equal(out.count, 0);
  });
});
