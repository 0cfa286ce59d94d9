/**
 * IPv6→IPv4 translation (RFC 7915 §5): header mapping, extension headers, fragments, checksums,
 * generated ICMPv6 errors and malformed input. ICMP message translation: 6to4-icmp.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatIPv6 } from '../../../src/core/addr/ipv6.js';
import { createBatch } from '../../../src/core/batch.js';
import { fold, pseudoSum6, sum16 } from '../../../src/core/checksum.js';
import { Ipv6Chain, Walk, walkIpv6 } from '../../../src/core/hdr/ipv6-ext.js';
import { Drop, dropName } from '../../../src/core/xlat/drop.js';
import { Translator } from '../../../src/core/xlat/translator.js';
import {
  bytes,
  fragHdr,
  icmp6ChecksumOk,
  ip4,
  ipv6,
  l4ChecksumOk4,
  optsHdr,
  routingHdr,
  tcp6,
  udp6,
  v4,
} from './6to4-packets.js';

const REMOTE6 = '64:ff9b::cb00:7107'; // 203.0.113.7
const CLAT6 = '2001:db8:1::c1a7';
const OWN6 = '2001:db8:1::1';

const base = {
  pool6: '64:ff9b::/96',
  eam: [{ v4: '192.0.0.4/32', v6: `${CLAT6}/128` }],
  ownV4: '192.0.0.1',
  ownV6: OWN6,
  wkpGlobalOnly: false,
};

function udpPacket(n = 16, extra: Partial<Parameters<typeof ipv6>[0]> = {}) {
  return ipv6({ src: REMOTE6, dst: CLAT6, proto: 17, payload: udp6(REMOTE6, CLAT6, 53, 40000, bytes(n)), ...extra });
}

describe('6→4 header mapping (RFC 7915 §5.1)', () => {
  test('UDP: addresses, TTL − 1, protocol, lengths, checksums', () => {
    const t = new Translator(base);
    const r = t.translate(udpPacket(16, { hop: 50, tc: 0xb8 }));
    assert.equal(r.drop, undefined);
    assert.equal(r.forward.length, 1);
    const p = r.forward[0];
    const h = v4(p);
    assert.equal(h.version, 4);
    assert.equal(h.ihl, 5);
    assert.equal(h.tos, 0xb8);
    assert.equal(h.totalLength, 20 + 8 + 16);
    assert.equal(p.length, h.totalLength);
    assert.equal(h.ttl, 49);
    assert.equal(h.proto, 17);
    assert.equal(h.src, ip4('203.0.113.7'));
    assert.equal(h.dst, ip4('192.0.0.4'));
    assert.ok(h.headerOk);
    assert.ok(!h.df && !h.mf && h.fragOffset === 0);
    assert.ok(l4ChecksumOk4(p, 17));
    assert.deepEqual(p.subarray(28), bytes(16));
  });

  test('traffic class zeroed on request', () => {
    const t = new Translator({ ...base, trafficClass: 'zero' });
    assert.equal(v4(t.translate(udpPacket(16, { tc: 0xb8 })).forward[0]).tos, 0);
  });

  test('DF = 1 exactly when the result is larger than 1260 bytes', () => {
    const t = new Translator(base);
    const small = v4(t.translate(udpPacket(1260 - 28)).forward[0]);
    assert.equal(small.totalLength, 1260);
    assert.equal(small.df, false);
    const big = v4(t.translate(udpPacket(1261 - 28)).forward[0]);
    assert.equal(big.totalLength, 1261);
    assert.equal(big.df, true);
    assert.ok(big.headerOk);
  });

  test('TCP checksum adjusted for the new pseudo-header', () => {
    const t = new Translator(base);
    const pkt = ipv6({ src: REMOTE6, dst: CLAT6, proto: 6, payload: tcp6(REMOTE6, CLAT6, 443, 50000, bytes(100)) });
    const p = t.translate(pkt).forward[0];
    assert.equal(v4(p).proto, 6);
    assert.ok(l4ChecksumOk4(p, 6));
  });

  test('unknown upper-layer protocol passes through byte for byte', () => {
    const t = new Translator(base);
    const payload = bytes(33, 5);
    const p = t.translate(ipv6({ src: REMOTE6, dst: CLAT6, proto: 33, payload })).forward[0];
    assert.equal(v4(p).proto, 33);
    assert.deepEqual(p.subarray(20), payload);
  });

  test('trailing bytes beyond Payload Length are trimmed', () => {
    const t = new Translator(base);
    const pkt = udpPacket(8);
    const padded = new Uint8Array(pkt.length + 6);
    padded.set(pkt);
    assert.deepEqual(t.translate(padded).forward[0].length, 20 + 16);
  });

  test('unmapped source or destination: named drops', () => {
    const t = new Translator(base);
    const src = ipv6({
      src: '2001:db8:9::1',
      dst: CLAT6,
      proto: 17,
      payload: udp6('2001:db8:9::1', CLAT6, 1, 2, bytes(4)),
    });
    assert.equal(t.translate(src).drop, dropName(Drop.D64_SRC_UNMAPPED));
    const dst = ipv6({
      src: REMOTE6,
      dst: '2001:db8:9::1',
      proto: 17,
      payload: udp6(REMOTE6, '2001:db8:9::1', 1, 2, bytes(4)),
    });
    assert.equal(t.translate(dst).drop, dropName(Drop.D64_DST_UNMAPPED));
  });
});

describe('a CLAT configuration (pool6 = 64:ff9b::/96, global addresses only)', () => {
  const t = new Translator({ ...base, wkpGlobalOnly: true });
  const from = (src: string) =>
    t.translate(ipv6({ src, dst: CLAT6, proto: 17, payload: udp6(src, CLAT6, 53, 40000, bytes(8)) }));

  test('a global IPv4 source is translated', () => {
    assert.equal(v4(from('64:ff9b::808:808').forward[0]).src, ip4('8.8.8.8'));
  });

  test('a non-global IPv4 under the well-known prefix is refused (RFC 6052 §3.1)', () => {
    assert.equal(from('64:ff9b::c0a8:101').drop, dropName(Drop.D64_SRC_UNMAPPED));
    assert.equal(from('64:ff9b::a00:1').drop, dropName(Drop.D64_SRC_UNMAPPED));
  });
});

describe('checksum-neutral address pairs (RFC 1624, RFC 6052 §4.1)', () => {
  // A CLAT address whose 16-bit sum makes (REMOTE6, NEUTRAL6) and (203.0.113.7, 192.0.0.4) sum alike.
  const target = (0xc000 + 0x0004 - 0x64 - 0xff9b + 2 * 0xffff) % 0xffff;
  const have = (0x2001 + 0x0db8 + 0x0001) % 0xffff;
  const x = (target - have + 0xffff) % 0xffff || 0xffff;
  const NEUTRAL6 = `2001:db8:1::${x.toString(16)}`;
  const cfg = { ...base, eam: [{ v4: '192.0.0.4/32', v6: `${NEUTRAL6}/128` }] };

  test('the L4 checksum bytes are untouched, even a wrong one', () => {
    const t = new Translator(cfg);
    const u = udp6(REMOTE6, NEUTRAL6, 53, 40000, bytes(20));
    u[6] ^= 0x5a; // deliberately wrong: must come out identical
    const p = t.translate(ipv6({ src: REMOTE6, dst: NEUTRAL6, proto: 17, payload: u })).forward[0];
    assert.equal(p[26], u[6]);
    assert.equal(p[27], u[7]);
    const good = t.translate(
      ipv6({ src: REMOTE6, dst: NEUTRAL6, proto: 6, payload: tcp6(REMOTE6, NEUTRAL6, 1, 2, bytes(9)) }),
    ).forward[0];
    assert.ok(l4ChecksumOk4(good, 6));
  });

  test('a non-neutral pair changes the checksum and keeps a wrong one wrong by the same amount', () => {
    const t = new Translator(base);
    const u = udp6(REMOTE6, CLAT6, 53, 40000, bytes(20));
    const right = t.translate(ipv6({ src: REMOTE6, dst: CLAT6, proto: 17, payload: u })).forward[0];
    assert.ok(l4ChecksumOk4(right, 17));
    const bad = u.slice();
    bad[7] = (bad[7] + 1) & 0xff;
    const wrong = t.translate(ipv6({ src: REMOTE6, dst: CLAT6, proto: 17, payload: bad })).forward[0];
    assert.equal(l4ChecksumOk4(wrong, 17), false);
  });
});

describe('extension headers (RFC 7915 §5.1)', () => {
  test('Hop-by-Hop, Destination Options and Routing with Segments Left 0 are skipped', () => {
    const t = new Translator(base);
    const plain = t.translate(udpPacket(12)).forward[0];
    const withExt = t.translate(udpPacket(12, { exts: [optsHdr(0), optsHdr(60), routingHdr(0)] })).forward[0];
    // Same packet apart from the translator-chosen Identification and header checksum.
    assert.deepEqual(withExt.subarray(12), plain.subarray(12));
    assert.deepEqual(withExt.subarray(0, 4), plain.subarray(0, 4));
    assert.ok(v4(withExt).headerOk);
  });

  test('Routing with Segments Left > 0: Parameter Problem pointing at Segments Left', () => {
    const t = new Translator(base);
    const pkt = udpPacket(12, { exts: [optsHdr(0), routingHdr(2)] });
    const r = t.translate(pkt);
    assert.equal(r.drop, dropName(Drop.D64_SEGMENTS_LEFT));
    assert.equal(r.forward.length, 0);
    assert.equal(r.back.length, 1);
    const e = r.back[0];
    assert.equal(e[40], 4);
    assert.equal(e[41], 0);
    assert.equal((e[44] << 24) | (e[45] << 16) | (e[46] << 8) | e[47], 40 + 8 + 3);
    assert.ok(icmp6ChecksumOk(e));
  });

  test('an extension header after the Fragment header: dropped, answered 1/1', () => {
    const t = new Translator(base);
    const r = t.translate(udpPacket(12, { exts: [fragHdr(7, 0, true), optsHdr(60)] }));
    assert.equal(r.drop, dropName(Drop.D64_BAD_EXT_HEADER));
    assert.equal(r.back.length, 1);
    assert.deepEqual([r.back[0][40], r.back[0][41]], [1, 1]);
  });

  test('a chain running past the data is D64_TRUNCATED', () => {
    const t = new Translator(base);
    const pkt = udpPacket(0, { exts: [optsHdr(0)] });
    pkt[41] = 9; // Hop-by-Hop claims 80 bytes
    assert.equal(t.translate(pkt).drop, dropName(Drop.D64_TRUNCATED));
  });
});

describe('walkIpv6', () => {
  const ch = new Ipv6Chain();

  test('skips HBH, DO and Routing, reads the Fragment header, stops at the upper layer', () => {
    const pkt = udpPacket(4, { exts: [optsHdr(0), optsHdr(60), routingHdr(0), fragHdr(0xdeadbeef, 3, true)] });
    assert.equal(walkIpv6(pkt, 0, pkt.length, true, ch), Walk.OK);
    assert.equal(ch.proto, 17);
    assert.equal(ch.l4Off, 40 + 8 + 8 + 24 + 8);
    assert.equal(ch.fragOff, 40 + 8 + 8 + 24);
    assert.deepEqual([ch.fragId, ch.fragOffset, ch.fragMore, ch.isFragment], [0xdeadbeef, 3, true, true]);
  });

  test('atomic fragment is not a fragment; no Fragment header means fragOff −1', () => {
    const a = udpPacket(4, { exts: [fragHdr(1, 0, false)] });
    assert.equal(walkIpv6(a, 0, a.length, true, ch), Walk.OK);
    assert.equal(ch.isFragment, false);
    const p = udpPacket(4);
    assert.equal(walkIpv6(p, 0, p.length, true, ch), Walk.OK);
    assert.equal(ch.fragOff, -1);
  });

  test('live Routing header: SEGMENTS_LEFT, unless walking a quoted packet', () => {
    const p = udpPacket(4, { exts: [routingHdr(1)] });
    assert.equal(walkIpv6(p, 0, p.length, true, ch), Walk.SEGMENTS_LEFT);
    assert.equal(ch.problemOff, 43);
    assert.equal(walkIpv6(p, 0, p.length, false, ch), Walk.OK);
  });

  test('extension after Fragment, two Fragment headers, truncation', () => {
    const a = udpPacket(4, { exts: [fragHdr(1, 5, false), routingHdr(0)] });
    assert.equal(walkIpv6(a, 0, a.length, true, ch), Walk.AFTER_FRAGMENT);
    const b = udpPacket(4, { exts: [fragHdr(1, 0, true), fragHdr(2, 0, true)] });
    assert.equal(walkIpv6(b, 0, b.length, true, ch), Walk.AFTER_FRAGMENT);
    const c = udpPacket(4, { exts: [optsHdr(0), routingHdr(0)] });
    assert.equal(walkIpv6(c, 0, 40 + 8 + 20, true, ch), Walk.TRUNCATED);
    assert.equal(walkIpv6(c, 0, 40 + 4, true, ch), Walk.TRUNCATED);
  });
});

describe('fragments (RFC 7915 §5.1.1, RFC 8021)', () => {
  test('atomic fragment: ID = low 16 bits, DF = 0, MF = 0', () => {
    const t = new Translator(base);
    const p = t.translate(udpPacket(1300, { exts: [fragHdr(0x87654321, 0, false)] })).forward[0];
    const h = v4(p);
    assert.equal(h.id, 0x4321);
    assert.equal(h.df, false);
    assert.equal(h.mf, false);
    assert.equal(h.totalLength, 20 + 8 + 1300);
    assert.ok(l4ChecksumOk4(p, 17));
  });

  test('first fragment: MF copied, L4 checksum adjusted for the pseudo-header', () => {
    const t = new Translator(base);
    const whole = udp6(REMOTE6, CLAT6, 53, 40000, bytes(64));
    const first = whole.subarray(0, 40);
    const p = t.translate(
      ipv6({ src: REMOTE6, dst: CLAT6, proto: 17, exts: [fragHdr(0x01020304, 0, true)], payload: first }),
    ).forward[0];
    const h = v4(p);
    assert.deepEqual([h.id, h.mf, h.df, h.fragOffset], [0x0304, true, false, 0]);
    // Reassemble with the unchanged rest and check the checksum over the whole datagram.
    const reassembled = new Uint8Array(20 + whole.length);
    reassembled.set(p.subarray(0, 20));
    reassembled.set(p.subarray(20), 20);
    reassembled.set(whole.subarray(40), 60);
    reassembled[2] = reassembled.length >>> 8;
    reassembled[3] = reassembled.length;
    assert.ok(l4ChecksumOk4(reassembled, 17));
  });

  test('later fragment: offset mapped, payload untouched', () => {
    const t = new Translator(base);
    const payload = bytes(48, 3);
    const p = t.translate(
      ipv6({ src: REMOTE6, dst: CLAT6, proto: 6, exts: [fragHdr(0xabcd1234, 100, false)], payload }),
    ).forward[0];
    const h = v4(p);
    assert.deepEqual([h.id, h.mf, h.df, h.fragOffset, h.proto], [0x1234, false, false, 100, 6]);
    assert.deepEqual(p.subarray(20), payload);
    assert.ok(h.headerOk);
  });
});

describe('errors generated by the translator', () => {
  test('hop limit 1 or 0: Time Exceeded from the own IPv6 address, the packet quoted', () => {
    for (const hop of [0, 1]) {
      const t = new Translator({ ...base, generatedTtl: 33 });
      const pkt = udpPacket(10, { hop });
      const r = t.translate(pkt);
      assert.equal(r.drop, dropName(Drop.D64_HOP_LIMIT_EXPIRED));
      assert.equal(r.forward.length, 0);
      const e = r.back[0];
      assert.equal(formatIPv6(e, 8), OWN6);
      assert.equal(formatIPv6(e, 24), REMOTE6);
      assert.equal(e[7], 33);
      assert.deepEqual([e[40], e[41]], [3, 0]);
      assert.deepEqual(e.subarray(48), pkt);
      assert.ok(icmp6ChecksumOk(e));
    }
  });

  test('hop limit 2 is translated with TTL 1', () => {
    assert.equal(v4(new Translator(base).translate(udpPacket(4, { hop: 2 })).forward[0]).ttl, 1);
  });

  test('too big for the IPv4 link: Packet Too Big with MTU = IPv4 MTU + 20, quote cut to 1280', () => {
    const t = new Translator({ ...base, ipv4Mtu: 1400 });
    assert.equal(t.translate(udpPacket(1400 - 28)).forward.length, 1);
    const r = t.translate(udpPacket(1401 - 28));
    assert.equal(r.drop, dropName(Drop.D64_TOO_BIG));
    const e = r.back[0];
    assert.equal(e.length, 1280);
    assert.deepEqual([e[40], e[41]], [2, 0]);
    assert.equal((e[44] << 24) | (e[45] << 16) | (e[46] << 8) | e[47], 1420);
    assert.ok(icmp6ChecksumOk(e));
  });

  test('no own IPv6 address: the drop is still counted, nothing sent', () => {
    const t = new Translator({ ...base, ownV6: null });
    const r = t.translate(udpPacket(4, { hop: 1 }));
    assert.equal(r.drop, dropName(Drop.D64_HOP_LIMIT_EXPIRED));
    assert.equal(r.back.length + r.forward.length, 0);
  });
});

describe('hairpinning (RFC 7757 §4)', () => {
  const cfg = {
    pool6: '2001:db8:100::/40',
    eam: [{ v4: '198.51.100.0/24', v6: '2001:db8:3::/120' }],
    ownV6: OWN6,
    ownV4: '192.0.0.1',
    wkpGlobalOnly: false,
  };
  // 2001:db8:3::8 (EAM, 198.51.100.8) → pool6 address of 198.51.100.9, which is an EAM address.
  const SRC = '2001:db8:3::8';
  const DST = '2001:db8:1c6:3364:9::';
  const pkt = ipv6({ src: SRC, dst: DST, proto: 17, payload: udp6(SRC, DST, 1, 2, bytes(4)) });

  test('off: D64_HAIRPIN_OFF', () => {
    const t = new Translator({ ...cfg, hairpin: false });
    assert.equal(t.translate(pkt).drop, dropName(Drop.D64_HAIRPIN_OFF));
  });

  test('on: translated back into IPv6 and sent back, hop limit decremented once', () => {
    const t = new Translator({ ...cfg, hairpin: true });
    const r = t.translate(pkt);
    assert.equal(r.drop, undefined);
    assert.equal(r.forward.length, 0);
    assert.equal(r.back.length, 1);
    const p = r.back[0];
    assert.equal(p[0] >>> 4, 6);
    assert.equal(p[7], 63);
    assert.equal(formatIPv6(p, 8), '2001:db8:1c6:3364:8::');
    assert.equal(formatIPv6(p, 24), '2001:db8:3::9');
    const l4len = (p[4] << 8) | p[5];
    assert.equal(fold(sum16(p, 40, l4len, pseudoSum6(p, 8, 24, 17, l4len))), 0xffff, 'UDP checksum verifies');
  });

  test('a hairpinned packet is not held to the IPv4 link MTU', () => {
    const t = new Translator({ ...cfg, hairpin: true, ipv4Mtu: 1300 });
    const big = ipv6({ src: SRC, dst: DST, proto: 17, payload: udp6(SRC, DST, 1, 2, bytes(1352)) });
    const r = t.translate(big);
    assert.equal(r.drop, undefined);
    assert.equal(r.back.length, 1);
    assert.equal(r.back[0].length, big.length);
  });
});

describe('malformed input and the output batch', () => {
  test('short, wrong version, bad lengths, jumbogram: named drops, no throw', () => {
    const t = new Translator(base);
    const pkt = udpPacket(8);
    assert.equal(t.translate(pkt.subarray(0, 39)).drop, dropName(Drop.D64_TRUNCATED));
    assert.equal(t.translate(pkt.subarray(0, pkt.length - 1)).drop, dropName(Drop.D64_BAD_LENGTH));
    const jumbo = udpPacket(8, { exts: [optsHdr(0)] });
    jumbo[4] = 0;
    jumbo[5] = 0;
    assert.equal(t.translate(jumbo).drop, dropName(Drop.D64_BAD_LENGTH));
    const short = ipv6({ src: REMOTE6, dst: CLAT6, proto: 17, payload: bytes(5) });
    assert.equal(t.translate(short).drop, dropName(Drop.D64_L4_TRUNCATED));
    const notV6 = pkt.slice();
    notV6[0] = 0x50;
    assert.equal(t.translate6(notV6, 0, notV6.length, createBatch(1, 2048)), Drop.BAD_VERSION);
  });

  test('No Next Header with an empty payload becomes a bare IPv4 header', () => {
    const p = new Translator(base).translate(ipv6({ src: REMOTE6, dst: CLAT6, proto: 59, payload: bytes(0) }))
      .forward[0];
    assert.equal(p.length, 20);
    assert.equal(v4(p).proto, 59);
  });

  test('a full output batch is OUTPUT_FULL; results land in slot `count`', () => {
    const t = new Translator(base);
    const out = createBatch(2, 2048);
    const pkt = udpPacket(8);
    assert.equal(t.translate6(pkt, 0, pkt.length, out), Drop.NONE);
    assert.equal(t.translate6(pkt, 0, pkt.length, out), Drop.NONE);
    assert.equal(out.count, 2);
    assert.equal(out.offs[1], 2048);
    assert.equal(t.translate6(pkt, 0, pkt.length, out), Drop.OUTPUT_FULL);
  });

  test('one arena: input and output in the same Uint8Array', () => {
    const t = new Translator(base);
    const out = createBatch(4, 2048);
    const pkt = udpPacket(30);
    out.data.set(pkt, 3 * 2048 + 64);
    assert.equal(t.translate6(out.data, 3 * 2048 + 64, pkt.length, out), Drop.NONE);
    const got = out.data.slice(out.offs[0], out.offs[0] + out.lens[0]);
    assert.deepEqual(got.subarray(20), t.translate(pkt).forward[0].subarray(20));
  });
});
