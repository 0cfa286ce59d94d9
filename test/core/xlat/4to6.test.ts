/**
 * IPv4 → IPv6 behaviour (RFC 7915 §4) through the Translator face: header mapping, TTL, options,
 * DF / fragment rules, checksums (incremental, neutral pairs untouched, UDP zero), ICMP, and
 * malformed input dropped under a named reason without throwing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatIPv6 } from '../../../src/core/addr/ipv6.js';
import { createBatch } from '../../../src/core/batch.js';
import { finish, fold, pseudoSum6, sum16 } from '../../../src/core/checksum.js';
import type { TranslatorConfig } from '../../../src/core/xlat/config.js';
import { Drop, dropName } from '../../../src/core/xlat/drop.js';
import { Translator } from '../../../src/core/xlat/translator.js';
import { checksumProblems, ipv4Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../pkt/build.js';

const BASE: TranslatorConfig = {
  pool6: '2001:db8:64::/96',
  eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1:2::4/128' }],
  ownV4: '192.0.0.1',
  ownV6: '2001:db8:1:2::1',
};
const SRC = '192.0.0.4';
const DST = '198.51.100.7';

const payload = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
const u16 = (p: Uint8Array, o: number) => (p[o] << 8) | p[o + 1];

/** Rewrites flags / offset / TTL of an IPv4 packet and fixes its header checksum. */
function patch4(p: Uint8Array, f: { df?: boolean; mf?: boolean; offset?: number; ttl?: number }): Uint8Array {
  if (f.df !== undefined || f.mf !== undefined || f.offset !== undefined) {
    const w = (f.df ? 0x4000 : 0) | (f.mf ? 0x2000 : 0) | ((f.offset ?? 0) >>> 3);
    p[6] = w >>> 8;
    p[7] = w;
  }
  if (f.ttl !== undefined) p[8] = f.ttl;
  p[10] = 0;
  p[11] = 0;
  const c = finish(sum16(p, 0, (p[0] & 15) * 4));
  p[10] = c >>> 8;
  p[11] = c;
  return p;
}

function udp(n = 32, o: { df?: boolean; ttl?: number; id?: number } = {}) {
  return ipv4Packet(
    { src: SRC, dst: DST, df: o.df ?? true, ttl: o.ttl ?? 64, id: o.id },
    { proto: PROTO_UDP, sport: 4000, dport: 53, payload: payload(n) },
  );
}

describe('4to6: header (RFC 7915 §4.1)', () => {
  const t = new Translator(BASE);

  test('UDP: addresses via EAM and pool6, hop limit - 1, TOS copied, flow label 0, checksum valid', () => {
    const p = ipv4Packet(
      { src: SRC, dst: DST, tos: 0xb8, ttl: 9 },
      { proto: PROTO_UDP, sport: 1, dport: 2, payload: payload(10) },
    );
    const r = t.translate(p);
    assert.equal(r.drop, undefined);
    assert.equal(r.forward.length, 1);
    const o = r.forward[0];
    assert.equal(o.length, p.length + 20);
    assert.equal(o[0] >>> 4, 6);
    assert.equal(((o[0] & 15) << 4) | (o[1] >>> 4), 0xb8);
    assert.equal(((o[1] & 15) << 16) | u16(o, 2), 0);
    assert.equal(u16(o, 4), p.length - 20);
    assert.equal(o[6], PROTO_UDP);
    assert.equal(o[7], 8);
    assert.equal(formatIPv6(o.subarray(8, 24)), '2001:db8:1:2::4');
    assert.equal(formatIPv6(o.subarray(24, 40)), '2001:db8:64::c633:6407');
    assert.deepEqual(checksumProblems(o), []);
    assert.deepEqual(o.subarray(48), p.subarray(28), 'payload unchanged');
  });

  test('traffic class zero by policy', () => {
    const tz = new Translator({ ...BASE, trafficClass: 'zero' });
    const p = ipv4Packet(
      { src: SRC, dst: DST, tos: 0xb8 },
      { proto: PROTO_UDP, sport: 1, dport: 2, payload: payload(4) },
    );
    const o = tz.translate(p).forward[0];
    assert.equal(o[0], 0x60);
    assert.equal(o[1], 0);
  });

  test('TTL 1 → ICMPv4 Time Exceeded from ownV4 back to the sender', () => {
    const p = udp(32, { ttl: 1 });
    const r = t.translate(p);
    assert.equal(r.drop, dropName(Drop.D46_TTL_EXPIRED));
    assert.equal(r.forward.length, 0);
    assert.equal(r.back.length, 1);
    const e = r.back[0];
    assert.deepEqual([...e.subarray(12, 20)], [192, 0, 0, 1, 192, 0, 0, 4]);
    assert.equal(e[9], PROTO_ICMP);
    assert.deepEqual([e[20], e[21]], [11, 0]);
    assert.deepEqual(e.subarray(28), p, 'quotes the packet');
    assert.deepEqual(checksumProblems(e), []);
  });

  test('TTL 0 is answered the same way; TTL 2 passes with hop limit 1', () => {
    assert.equal(t.translate(udp(8, { ttl: 0 })).drop, 'v4_ttl_expired');
    assert.equal(t.translate(udp(8, { ttl: 2 })).forward[0][7], 1);
  });

  test('an ICMP error with TTL 1 is dropped without an error about it', () => {
    const inner = udp(8);
    const e = ipv4Packet(
      { src: DST, dst: SRC, ttl: 1 },
      { proto: PROTO_ICMP, sport: 0, dport: 0, payload: new Uint8Array(0) },
    );
    const p = new Uint8Array(e.length + inner.length);
    p.set(e);
    p.set(inner, e.length);
    p[3] = p.length;
    p[20] = 3;
    p[21] = 3;
    patch4(p, {});
    const r = t.translate(p);
    assert.equal(r.drop, 'v4_ttl_expired');
    assert.equal(r.back.length, 0);
  });

  test('options are ignored; an unexpired source route answers 3/5', () => {
    const base = udp(8);
    const withOpts = (opt: number[]) => {
      const p = new Uint8Array(base.length + opt.length);
      p.set(base.subarray(0, 20));
      p.set(opt, 20);
      p.set(base.subarray(20), 20 + opt.length);
      p[0] = 0x40 | ((20 + opt.length) >>> 2);
      p[2] = p.length >>> 8;
      p[3] = p.length;
      return patch4(p, {});
    };
    // Record Route (7), len 7, ptr 4, one slot, then End.
    const rr = t.translate(withOpts([7, 7, 4, 0, 0, 0, 0, 0]));
    assert.equal(rr.drop, undefined);
    assert.deepEqual(rr.forward[0], t.translate(base).forward[0]);
    // Expired LSRR (ptr 8 > len 7).
    assert.equal(t.translate(withOpts([1, 131, 7, 8, 1, 2, 3, 4])).drop, undefined);
    // Unexpired LSRR (ptr 4 <= len 7).
    const r = t.translate(withOpts([1, 131, 7, 4, 1, 2, 3, 4]));
    assert.equal(r.drop, 'v4_source_route');
    assert.deepEqual([r.back[0][20], r.back[0][21]], [3, 5]);
    // Unexpired SSRR.
    assert.equal(t.translate(withOpts([137, 7, 4, 1, 2, 3, 4, 0])).drop, 'v4_source_route');
  });

  test('unmapped addresses are named drops', () => {
    const eamOnly = new Translator({ ...BASE, pool6: null });
    assert.equal(eamOnly.translate(udp()).drop, 'v4_dst_unmapped');
    const wkp = new Translator({ ...BASE, pool6: '64:ff9b::/96', eam: [] });
    assert.equal(wkp.translate(udp()).drop, 'v4_src_unmapped', '192.0.0.4 is not global');
  });

  test('unknown protocols pass unchanged (Next Header = Protocol)', () => {
    const p = udp(20);
    p[9] = 33;
    patch4(p, {});
    const o = t.translate(p).forward[0];
    assert.equal(o[6], 33);
    assert.deepEqual(o.subarray(40), p.subarray(20));
  });

  test('IPv6 extension header numbers as Protocol are named drops, not Next Headers', () => {
    for (const proto of [0, 43, 44, 60]) {
      const p = udp(20);
      p[9] = proto;
      patch4(p, {});
      assert.equal(t.translate(p).drop, 'v4_protocol_is_v6_extension', `protocol ${proto}`);
    }
    const p = udp(20);
    p[9] = 41; // IPv6-in-IPv4 is a real IPv4 protocol
    patch4(p, {});
    assert.equal(t.translate(p).forward[0][6], 41);
  });
});

describe('4to6: DF, fragments and the IPv6 MTU (RFC 7915 §4, §4.1; RFC 8021)', () => {
  test('DF=0 that fits: no Fragment header (no atomic fragments)', () => {
    const t = new Translator(BASE);
    const o = t.translate(udp(100, { df: false })).forward[0];
    assert.equal(o[6], PROTO_UDP);
    assert.equal(o.length, 20 + 8 + 100 + 20);
  });

  test('DF=0 too big for lowest-ipv6-mtu: fragments of ≤ 1280 with the IPv4 ID, 8-byte aligned', () => {
    const t = new Translator(BASE);
    const p = udp(1233, { df: false, id: 0xbeef }); // 1261 bytes → 1281 translated
    const r = t.translate(p);
    assert.equal(r.drop, undefined);
    assert.deepEqual(
      r.forward.map((f) => f.length),
      [1280, 57],
    );
    const [a, b] = r.forward;
    for (const f of r.forward) {
      assert.equal(f[6], 44);
      assert.equal(f[40], PROTO_UDP);
      assert.equal(u16(f, 4), f.length - 40);
      assert.equal(((f[44] << 24) | (f[45] << 16) | (f[46] << 8) | f[47]) >>> 0, 0xbeef);
    }
    assert.equal(u16(a, 42), 0 | 1, 'offset 0, M=1');
    assert.equal(u16(b, 42), 1232, 'offset 1232, M=0');
    // Reassembled payload = the IPv4 payload with the checksum adjusted; it verifies.
    const whole = new Uint8Array(40 + 1241);
    whole.set(a.subarray(0, 40));
    whole[4] = 1241 >>> 8;
    whole[5] = 1241 & 0xff;
    whole[6] = PROTO_UDP;
    whole.set(a.subarray(48), 40);
    whole.set(b.subarray(48), 40 + 1232);
    assert.deepEqual(checksumProblems(whole), []);
    assert.deepEqual(whole.subarray(48), p.subarray(28));
  });

  test('DF=0 uses the smaller of lowest-ipv6-mtu and the link MTU', () => {
    const t = new Translator({ ...BASE, lowestIpv6Mtu: 1500, ipv6Mtu: 1400 });
    const r = t.translate(udp(1400, { df: false }));
    assert.deepEqual(
      r.forward.map((f) => f.length),
      [1400, 48 + 1408 - 1352],
    );
  });

  test('DF=1 over lowest-ipv6-mtu but within the link: one packet, no Fragment header', () => {
    const t = new Translator(BASE);
    const r = t.translate(udp(1233, { df: true }));
    assert.deepEqual(
      r.forward.map((f) => f.length),
      [1281],
    );
    assert.equal(r.forward[0][6], PROTO_UDP);
  });

  test('DF=1 over the IPv6 link MTU: Fragmentation Needed with MTU = link MTU − 20', () => {
    const t = new Translator({ ...BASE, ipv6Mtu: 1280 });
    const p = udp(1233, { df: true });
    const r = t.translate(p);
    assert.equal(r.drop, 'v4_too_big');
    assert.equal(r.forward.length, 0);
    const e = r.back[0];
    assert.deepEqual([e[20], e[21], u16(e, 24), u16(e, 26)], [3, 4, 0, 1260]);
    assert.equal(e.length, 576, 'quote cut to 576 bytes in total');
    assert.deepEqual(e.subarray(28), p.subarray(0, 548));
    assert.deepEqual(checksumProblems(e), []);
  });

  test('a first fragment keeps offset, M and ID; its checksum is adjusted incrementally', () => {
    const t = new Translator(BASE);
    const p = patch4(udp(64, { df: false, id: 0x1234 }), { mf: true });
    const o = t.translate(p).forward[0];
    assert.equal(o.length, p.length + 28);
    assert.equal(o[6], 44);
    assert.equal(u16(o, 42), 1);
    assert.equal(u16(o, 46), 0x1234);
    // The adjusted checksum equals a full recompute over the (here complete) datagram.
    const ck = u16(o, 48 + 6);
    const copy = o.slice(48);
    copy[6] = 0;
    copy[7] = 0;
    const full = finish(sum16(copy, 0, copy.length, pseudoSum6(o, 8, 24, PROTO_UDP, copy.length)));
    assert.equal(ck, full);
  });

  test('a later fragment passes with its offset mapped and its bytes untouched', () => {
    const t = new Translator(BASE);
    const p = patch4(udp(64, { df: false, id: 0x1234 }), { offset: 1480, mf: false });
    const o = t.translate(p).forward[0];
    assert.equal(u16(o, 42), 1480);
    assert.deepEqual(o.subarray(48), p.subarray(20));
  });

  test('a fragment too big is cut again; the last piece keeps the original M flag', () => {
    const t = new Translator(BASE);
    const p = patch4(udp(1300, { df: false, id: 7 }), { offset: 2960, mf: true });
    const r = t.translate(p);
    assert.equal(r.forward.length, 2);
    assert.equal(u16(r.forward[0], 42), 2960 | 1);
    assert.equal(u16(r.forward[1], 42), (2960 + 1232) | 1);
  });

  test('not enough output slots for the fragments: named drop, nothing half-written', () => {
    const t = new Translator(BASE);
    const out = createBatch(1, 70000);
    const p = udp(1233, { df: false });
    assert.equal(t.translatePacket(p, 0, p.length, out), Drop.D46_TOO_MANY_FRAGMENTS);
    assert.equal(out.count, 0);
  });
});

describe('4to6: transport checksums (RFC 7915 §4.4, §4.5; RFC 1624)', () => {
  test('TCP: adjusted checksum verifies', () => {
    const t = new Translator(BASE);
    const p = ipv4Packet({ src: SRC, dst: DST }, { proto: PROTO_TCP, sport: 40000, dport: 443, payload: payload(99) });
    assert.deepEqual(checksumProblems(t.translate(p).forward[0]), []);
  });

  test('a wrong checksum stays wrong by the same amount', () => {
    const t = new Translator(BASE);
    const p = ipv4Packet({ src: SRC, dst: DST }, { proto: PROTO_TCP, sport: 1, dport: 2, payload: payload(20) });
    p[20 + 17] ^= 1;
    const o = t.translate(p).forward[0];
    const s = fold(sum16(o, 40, o.length - 40, pseudoSum6(o, 8, 24, PROTO_TCP, o.length - 40)));
    assert.notEqual(s, 0xffff);
  });

  test('checksum-neutral address pair: L4 checksum bytes untouched', () => {
    // 64:ff9b::/96 sums to 0xffff (= 0): an IPv4 address and its WKP form have the same sum. A
    // checksum field of 0xffff would become 0x0000 under a (mathematically equal) update.
    const t = new Translator({ pool6: '64:ff9b::/96', wkpGlobalOnly: false, ownV4: '192.0.0.1' });
    for (const proto of [PROTO_TCP, PROTO_UDP]) {
      const p = ipv4Packet({ src: '192.0.2.1', dst: DST }, { proto, sport: 1, dport: 2, payload: payload(9) });
      const at = 20 + (proto === PROTO_TCP ? 16 : 6);
      p[at] = 0xff;
      p[at + 1] = 0xff;
      const o = t.translate(p).forward[0];
      assert.deepEqual([o[at + 20], o[at + 21]], [0xff, 0xff], `proto ${proto}`);
    }
  });

  test('UDP checksum 0 is computed for unfragmented packets by default', () => {
    const t = new Translator(BASE);
    const p = ipv4Packet(
      { src: SRC, dst: DST },
      { proto: PROTO_UDP, sport: 1, dport: 2, payload: payload(33), zeroChecksum: true },
    );
    const o = t.translate(p).forward[0];
    assert.notEqual(u16(o, 46), 0);
    assert.deepEqual(checksumProblems(o), []);
  });

  test('UDP checksum 0: refused with 3/13 when policy is drop, or when fragmented', () => {
    const drop = new Translator({ ...BASE, udpZeroChecksum: 'drop' });
    const p = ipv4Packet(
      { src: SRC, dst: DST },
      { proto: PROTO_UDP, sport: 1, dport: 2, payload: payload(8), zeroChecksum: true },
    );
    const r = drop.translate(p);
    assert.equal(r.drop, 'v4_udp_zero_checksum');
    assert.deepEqual([r.back[0][20], r.back[0][21]], [3, 13]);
    const frag = patch4(p.slice(), { mf: true, df: false });
    assert.equal(new Translator(BASE).translate(frag).drop, 'v4_udp_zero_checksum');
  });
});

describe('4to6: ICMP (RFC 7915 §4.2, §4.3)', () => {
  const t = new Translator(BASE);

  test('echo request → 128 with the pseudo-header in its checksum', () => {
    const p = ipv4Packet({ src: SRC, dst: DST }, { proto: PROTO_ICMP, sport: 77, dport: 5, payload: payload(56) });
    const o = t.translate(p).forward[0];
    assert.equal(o[6], 58);
    assert.deepEqual([o[40], o[41]], [128, 0]);
    assert.deepEqual(o.subarray(44), p.subarray(24), 'identifier, sequence and data kept');
    assert.deepEqual(checksumProblems(o), []);
  });

  test('echo reply → 129', () => {
    const p = ipv4Packet({ src: SRC, dst: DST }, { proto: PROTO_ICMP, sport: 77, dport: 5, payload: payload(8) });
    p[20] = 0;
    p[22] = 0;
    p[23] = 0;
    const c = finish(sum16(p, 20, p.length - 20));
    p[22] = c >>> 8;
    p[23] = c;
    const o = t.translate(p).forward[0];
    assert.equal(o[40], 129);
    assert.deepEqual(checksumProblems(o), []);
  });

  function icmpError(type: number, code: number, rest: number[], inner: Uint8Array, ttl = 64): Uint8Array {
    const p = new Uint8Array(28 + inner.length);
    p[0] = 0x45;
    p[2] = p.length >>> 8;
    p[3] = p.length;
    p[8] = ttl;
    p[9] = PROTO_ICMP;
    p.set([198, 51, 100, 7, 192, 0, 0, 4], 12);
    p[20] = type;
    p[21] = code;
    p.set(rest, 24);
    p.set(inner, 28);
    const c = finish(sum16(p, 20, p.length - 20));
    p[22] = c >>> 8;
    p[23] = c;
    return patch4(p, {});
  }
  const quoted = () =>
    ipv4Packet({ src: SRC, dst: DST, ttl: 3 }, { proto: PROTO_UDP, sport: 4000, dport: 53, payload: payload(20) });

  test('port unreachable → 1/4, quoted packet translated with TTL untouched and checksums valid', () => {
    const inner = quoted();
    const r = t.translate(icmpError(3, 3, [0, 0, 0, 0], inner));
    assert.equal(r.drop, undefined);
    const o = r.forward[0];
    assert.equal(o.length, 48 + inner.length + 20);
    assert.deepEqual([o[40], o[41]], [1, 4]);
    assert.deepEqual(checksumProblems(o), []);
    const q = o.subarray(48);
    assert.equal(q[0] >>> 4, 6);
    assert.equal(q[7], 3, 'inner hop limit = inner TTL');
    assert.equal(formatIPv6(q.subarray(8, 24)), '2001:db8:1:2::4');
    assert.deepEqual(checksumProblems(q), [], 'inner UDP checksum follows the new addresses');
  });

  test('fragmentation needed → packet too big with MTU + 20 (min 1280, plateau for 0)', () => {
    const mtu = (tr: Translator, v: number, inner = quoted()) => {
      const o = tr.translate(icmpError(3, 4, [0, 0, v >>> 8, v & 0xff], inner)).forward[0];
      assert.deepEqual([o[40], o[41]], [2, 0]);
      return ((o[44] << 24) | (o[45] << 16) | (o[46] << 8) | o[47]) >>> 0;
    };
    assert.equal(mtu(t, 1400), 1420);
    assert.equal(mtu(t, 1000), 1280);
    assert.equal(mtu(t, 1490), 1500, 'bounded by the IPv6 link MTU');
    // MTU 0 (a pre-RFC 1191 router): the quoted Total Length 1500 gives plateau 1492.
    const big = quoted();
    big[2] = 1500 >>> 8;
    big[3] = 1500 & 0xff;
    patch4(big, {});
    const jumbo = new Translator({ ...BASE, ipv6Mtu: 9000, ipv4Mtu: 9000 });
    assert.equal(mtu(jumbo, 0, big), 1512);
  });

  test("an error from a router with no IPv6 mapping comes from the translator's own IPv6 address", () => {
    const eamOnly = new Translator({
      ...BASE,
      pool6: null,
      eam: [
        { v4: '192.0.0.4/32', v6: '2001:db8:1:2::4/128' },
        { v4: '198.51.100.0/24', v6: '2001:db8:64::/120' },
      ],
    });
    const e = icmpError(3, 1, [0, 0, 0, 0], quoted());
    e.set([203, 0, 113, 9], 12);
    const o = eamOnly.translate(patch4(e, {})).forward[0];
    assert.equal(formatIPv6(o.subarray(8, 24)), '2001:db8:1:2::1');
    assert.deepEqual(checksumProblems(o), []);
    // Not an error: the unmapped source is a plain drop.
    const u = quoted();
    u.set([203, 0, 113, 9], 16);
    assert.equal(eamOnly.translate(patch4(u, {})).drop, 'v4_dst_unmapped');
  });

  test('protocol unreachable → parameter problem 4/1 pointing at Next Header', () => {
    const o = t.translate(icmpError(3, 2, [0, 0, 0, 0], quoted())).forward[0];
    assert.deepEqual([o[40], o[41], o[47]], [4, 1, 6]);
  });

  test('parameter problem pointer mapped; untranslatable pointer dropped', () => {
    const o = t.translate(icmpError(12, 0, [9, 0, 0, 0], quoted())).forward[0];
    assert.deepEqual([o[40], o[41], o[47]], [4, 0, 6]);
    assert.equal(t.translate(icmpError(12, 0, [10, 0, 0, 0], quoted())).drop, 'v4_icmp_untranslatable');
  });

  test('time exceeded → 3 with the code kept', () => {
    const o = t.translate(icmpError(11, 1, [0, 0, 0, 0], quoted())).forward[0];
    assert.deepEqual([o[40], o[41]], [3, 1]);
  });

  test('errors are cut to 1280 bytes and never fragmented', () => {
    const inner = ipv4Packet({ src: SRC, dst: DST }, { proto: PROTO_UDP, sport: 1, dport: 2, payload: payload(1400) });
    const r = t.translate(icmpError(3, 1, [0, 0, 0, 0], inner));
    assert.equal(r.forward.length, 1);
    assert.equal(r.forward[0].length, 1280);
    const o = r.forward[0];
    assert.equal(fold(sum16(o, 40, 1240, pseudoSum6(o, 8, 24, 58, 1240))), 0xffff);
  });

  test('untranslatable, damaged or nested errors are named drops', () => {
    assert.equal(t.translate(icmpError(5, 0, [0, 0, 0, 0], quoted())).drop, 'v4_icmp_untranslatable');
    assert.equal(t.translate(icmpError(3, 14, [0, 0, 0, 0], quoted())).drop, 'v4_icmp_untranslatable');
    const bad = icmpError(3, 3, [0, 0, 0, 0], quoted());
    bad[30] ^= 0x40;
    assert.equal(t.translate(bad).drop, 'v4_icmp_bad_checksum');
    assert.equal(t.translate(icmpError(3, 3, [0, 0, 0, 0], quoted().subarray(0, 12))).drop, 'v4_icmp_bad_inner');
    const nested = icmpError(3, 3, [0, 0, 0, 0], icmpError(3, 1, [0, 0, 0, 0], quoted()));
    assert.equal(t.translate(nested).drop, 'v4_icmp_error_in_error');
    const ext = quoted();
    ext[9] = 44;
    patch4(ext, {});
    assert.equal(t.translate(icmpError(3, 3, [0, 0, 0, 0], ext)).drop, 'v4_icmp_bad_inner', 'a quoted Protocol 44');
  });

  test('fragmented ICMP is dropped (the ICMPv6 pseudo-header needs the whole length)', () => {
    const p = ipv4Packet(
      { src: SRC, dst: DST, df: false },
      { proto: PROTO_ICMP, sport: 1, dport: 1, payload: payload(64) },
    );
    assert.equal(t.translate(patch4(p, { mf: true })).drop, 'v4_fragmented_icmp');
    assert.equal(t.translate(patch4(p, { offset: 8 })).drop, 'v4_fragmented_icmp');
  });
});

describe('4to6: malformed input is a named drop, never a throw', () => {
  const t = new Translator(BASE);
  const ok = udp(16);

  test('truncated and bad lengths', () => {
    assert.equal(t.translate(ok.subarray(0, 19)).drop, 'v4_truncated');
    const ihl4 = ok.slice();
    ihl4[0] = 0x44;
    assert.equal(t.translate(ihl4).drop, 'v4_truncated');
    const ihlBig = ok.slice(0, 30);
    ihlBig[0] = 0x4f;
    assert.equal(t.translate(ihlBig).drop, 'v4_truncated');
    assert.equal(t.translate(ok.subarray(0, ok.length - 1)).drop, 'v4_bad_length');
    const short = ok.slice();
    short[3] = 19;
    assert.equal(t.translate(patch4(short, {})).drop, 'v4_bad_length');
  });

  test('bytes past Total Length (link padding) are trimmed', () => {
    const padded = new Uint8Array(ok.length + 6);
    padded.set(ok);
    const r = t.translate(padded);
    assert.equal(r.forward[0].length, ok.length + 20);
    assert.deepEqual(r.forward[0], t.translate(ok).forward[0]);
  });

  test('a fragment reaching past 65535 bytes', () => {
    const p = patch4(udp(64, { df: false }), { offset: 65528 });
    assert.equal(t.translate(p).drop, 'v4_bad_length');
  });

  test('header checksum', () => {
    const bad = ok.slice();
    bad[10] ^= 1;
    assert.equal(t.translate(bad).drop, 'v4_bad_header_checksum');
  });

  test('transport headers too short', () => {
    for (const [proto, n] of [
      [PROTO_UDP, 7],
      [PROTO_TCP, 19],
      [PROTO_ICMP, 7],
    ]) {
      const p = new Uint8Array(20 + n);
      p.set(ok.subarray(0, 20));
      p[3] = p.length;
      p[9] = proto;
      assert.equal(t.translate(patch4(p, {})).drop, 'v4_l4_truncated', `proto ${proto}`);
    }
  });

  test('no room in the output batch', () => {
    const out = createBatch(1, 2048);
    out.count = 1;
    assert.equal(t.translatePacket(ok, 0, ok.length, out), Drop.OUTPUT_FULL);
  });
});

describe('4to6: address memo', () => {
  test('a new configuration is never served addresses mapped under the old one', () => {
    const t = new Translator(BASE);
    const p = udp(8);
    assert.equal(formatIPv6(t.translate(p).forward[0].subarray(24, 40)), '2001:db8:64::c633:6407');
    t.reconfigure({ ...BASE, pool6: '2001:db8:99::/96' });
    assert.equal(formatIPv6(t.translate(p).forward[0].subarray(24, 40)), '2001:db8:99::c633:6407');
    t.reconfigure({ ...BASE, pool6: null });
    assert.equal(t.translate(p).drop, 'v4_dst_unmapped');
    t.reconfigure(BASE);
    assert.equal(t.translate(p).drop, undefined);
  });

  test('colliding addresses in one memo slot map correctly', () => {
    const t = new Translator(BASE);
    // 198.51.100.7 and 198.51.7.100 fold to the same slot (same bytes, other order).
    for (const dst of ['198.51.100.7', '198.51.7.100', '198.51.100.7']) {
      const p = ipv4Packet({ src: SRC, dst }, { proto: PROTO_UDP, sport: 1, dport: 2, payload: payload(4) });
      const o = t.translate(p).forward[0];
      assert.deepEqual([...o.subarray(36, 40)], dst.split('.').map(Number));
      assert.deepEqual(checksumProblems(o), []);
    }
  });
});

describe('4to6: one arena (the datapath layout)', () => {
  test('input in one slot, output in another slot of the same buffer: same bytes', () => {
    const t = new Translator(BASE);
    const arena = new Uint8Array(4 * 2048);
    const inb = createBatch(2, 2048, arena, 0);
    const out = createBatch(2, 2048, arena, 2 * 2048);
    const p = udp(100);
    arena.set(p, inb.offs[0]);
    assert.equal(t.translate4(arena, inb.offs[0], p.length, out), Drop.NONE);
    assert.deepEqual(arena.slice(out.offs[0], out.offs[0] + out.lens[0]), t.translate(p).forward[0]);
  });
});
