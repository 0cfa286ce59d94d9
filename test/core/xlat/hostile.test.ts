/**
 * Packets the translator must never translate, each dropped under its own name and silently (no
 * ICMP error back, nothing forwarded): martian IPv4 addresses both ways and whatever the pool
 * (RFC 7915 §4.1, RFC 1812 §5.3.7 and §5.3.5.1), IPv4 Protocol 58 and IPv6 Next Header 1 (one
 * family's ICMP smuggled inside the other), also inside the packet an ICMP error quotes; and the
 * floor of 68 on the MTU of a translated Packet Too Big (RFC 791 §3.2).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { finish, pseudoSum6, sum16 } from '../../../src/core/checksum.js';
import type { TranslatorConfig } from '../../../src/core/xlat/config.js';
import { Translator } from '../../../src/core/xlat/translator.js';
import { checksumProblems, ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../pkt/build.js';

const PROTO_ICMPV6 = 58;

/** A SIIT-like configuration whose pool6 is not the well-known prefix (no RFC 6052 §3.1 rule). */
const SIIT: TranslatorConfig = {
  pool6: '2001:db8:64::/96',
  ownV4: '192.0.2.254',
  ownV6: '2001:db8:ffff::1',
  eam: [
    { v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' },
    // An EAM entry covering martians: the rule holds whatever maps the address.
    { v4: '127.0.0.0/24', v6: '2001:db8:7f::/120' },
  ],
};
/** The well-known prefix with its global-only rule turned off (a lab NAT64 on documentation space). */
const WKP_ANY: TranslatorConfig = { ...SIIT, pool6: '64:ff9b::/96', wkpGlobalOnly: false };

const CLAT4 = '192.0.0.4';
const CLAT6 = '2001:db8:1::4';
const REMOTE4 = '198.51.100.7';

/** The pool6 form of an IPv4 address under `pool6` (a /96). */
function p6(pool6: string, v4: string): string {
  const [a, b, c, d] = v4.split('.').map(Number);
  const hex = (x: number, y: number) => ((x << 8) | y).toString(16);
  return `${pool6.replace(/\/96$/, '')}${hex(a, b)}:${hex(c, d)}`;
}

const udp = (payload = 16) => ({ proto: PROTO_UDP, sport: 40000, dport: 53, payload: new Uint8Array(payload).fill(7) });

/** Turns an ICMPv4 echo built by ipv4Packet into error `type`/`code` with `rest`, checksum redone. */
function asError4(p: Uint8Array, type: number, code: number, rest = 0): Uint8Array {
  p[20] = type;
  p[21] = code;
  p.fill(0, 22, 24);
  p[24] = rest >>> 24;
  p[25] = rest >>> 16;
  p[26] = rest >>> 8;
  p[27] = rest;
  const c = finish(sum16(p, 20, p.length - 20));
  p[22] = c >>> 8;
  p[23] = c;
  return p;
}

/** The same for an ICMPv6 echo built by ipv6Packet (checksum over the pseudo-header). */
function asError6(p: Uint8Array, type: number, code: number, rest = 0): Uint8Array {
  p[40] = type;
  p[41] = code;
  p.fill(0, 42, 44);
  p[44] = rest >>> 24;
  p[45] = rest >>> 16;
  p[46] = rest >>> 8;
  p[47] = rest;
  const len = p.length - 40;
  const c = finish(sum16(p, 40, len, pseudoSum6(p, 8, 24, 58, len)));
  p[42] = c >>> 8;
  p[43] = c;
  return p;
}

const error4 = (src: string, dst: string, inner: Uint8Array, type = 3, code = 3, rest = 0) =>
  asError4(ipv4Packet({ src, dst }, { proto: PROTO_ICMP, sport: 0, dport: 0, payload: inner }), type, code, rest);
const error6 = (src: string, dst: string, inner: Uint8Array, type = 1, code = 4, rest = 0) =>
  asError6(ipv6Packet({ src, dst }, { proto: PROTO_ICMP, sport: 0, dport: 0, payload: inner }), type, code, rest);

/** An IPv6 packet with Next Header 1 carrying ICMPv4 bytes (a forged Fragmentation Needed, MTU 600). */
function icmp4InIpv6(src: string, dst: string, o: { hopLimit?: number; fragment?: boolean } = {}): Uint8Array {
  const inner = ipv4Packet({ src: CLAT4, dst: REMOTE4 }, udp());
  const icmp4 = error4(REMOTE4, CLAT4, inner, 3, 4, 600).subarray(20);
  const p = ipv6Packet({ src, dst, hopLimit: o.hopLimit }, { proto: 253, sport: 0, dport: 0, payload: icmp4 });
  p[6] = PROTO_ICMP;
  if (!o.fragment) return p;
  // The same behind a Fragment header (first fragment, M=1): the walk still finds Next Header 1.
  const f = new Uint8Array(p.length + 8);
  f.set(p.subarray(0, 40));
  f[6] = 44;
  f.set([PROTO_ICMP, 0, 0, 1, 0, 0, 0x12, 0x34], 40);
  f.set(p.subarray(40), 48);
  const plen = f.length - 40;
  f[4] = plen >>> 8;
  f[5] = plen;
  return f;
}

interface Case {
  name: string;
  config: TranslatorConfig;
  packet: () => Uint8Array;
  drop: string;
}

/** Every case: dropped under `drop`, with nothing appended (no translation, no ICMP error back). */
function dropped(cases: Case[]): void {
  for (const c of cases) {
    test(c.name, () => {
      const r = new Translator(c.config).translate(c.packet());
      assert.equal(r.drop, c.drop);
      assert.equal(r.forward.length, 0, 'nothing forwarded');
      assert.equal(r.back.length, 0, 'no ICMP error back');
    });
  }
}

/** Every case: translated, one packet out with valid checksums. */
function translated(cases: Omit<Case, 'drop'>[]): void {
  for (const c of cases) {
    test(c.name, () => {
      const r = new Translator(c.config).translate(c.packet());
      assert.equal(r.drop, undefined);
      assert.equal(r.forward.length, 1);
      assert.deepEqual(checksumProblems(r.forward[0]), []);
    });
  }
}

const MARTIANS = ['0.0.0.0', '0.1.2.3', '127.0.0.1', '127.255.255.254', '224.0.0.5', '239.1.2.3', '240.0.0.1'];
const BROADCAST = '255.255.255.255';
/** Just outside each martian range. */
const NEIGHBOURS = ['1.0.0.1', '126.255.255.254', '128.0.0.1', '223.255.255.254'];

describe('martian IPv4 addresses, 4→6', () => {
  dropped([
    ...[...MARTIANS, BROADCAST].flatMap((a) =>
      [SIIT, WKP_ANY].map((config) => ({
        name: `source ${a} (pool6 ${config.pool6}) → v4_src_martian`,
        config,
        packet: () => ipv4Packet({ src: a, dst: REMOTE4 }, udp()),
        drop: 'v4_src_martian',
      })),
    ),
    ...[...MARTIANS, BROADCAST].flatMap((a) =>
      [SIIT, WKP_ANY].map((config) => ({
        name: `destination ${a} (pool6 ${config.pool6}) → v4_dst_martian`,
        config,
        packet: () => ipv4Packet({ src: CLAT4, dst: a }, udp()),
        drop: 'v4_dst_martian',
      })),
    ),
    {
      name: 'a TTL-1 packet to a martian is dropped silently, without Time Exceeded',
      config: SIIT,
      packet: () => ipv4Packet({ src: CLAT4, dst: '127.0.0.1', ttl: 1 }, udp()),
      drop: 'v4_dst_martian',
    },
    {
      name: 'a martian source with an EAM entry (127.0.0.0/24) is still dropped',
      config: { ...SIIT, pool6: null },
      packet: () => ipv4Packet({ src: '127.0.0.9', dst: CLAT4 }, udp()),
      drop: 'v4_src_martian',
    },
    {
      name: 'under v4Sources eam (a CLAT) the martian reason comes first',
      config: { ...SIIT, v4Sources: 'eam' },
      packet: () => ipv4Packet({ src: '127.0.0.1', dst: REMOTE4 }, udp()),
      drop: 'v4_src_martian',
    },
    {
      name: 'ICMPv4 error to a martian destination → v4_dst_martian',
      config: SIIT,
      packet: () => error4(REMOTE4, '127.0.0.1', ipv4Packet({ src: '127.0.0.1', dst: REMOTE4 }, udp())),
      drop: 'v4_dst_martian',
    },
    ...['127.0.0.1', '224.0.0.1', BROADCAST].flatMap((a) => [
      {
        name: `ICMPv4 error quoting a packet from ${a} → v4_icmp_bad_inner`,
        config: SIIT,
        packet: () => error4(REMOTE4, CLAT4, ipv4Packet({ src: a, dst: REMOTE4 }, udp())),
        drop: 'v4_icmp_bad_inner',
      },
      {
        name: `ICMPv4 error quoting a packet to ${a} → v4_icmp_bad_inner`,
        config: SIIT,
        packet: () => error4(REMOTE4, CLAT4, ipv4Packet({ src: CLAT4, dst: a }, udp())),
        drop: 'v4_icmp_bad_inner',
      },
    ]),
  ]);
  translated([
    ...NEIGHBOURS.flatMap((a) => [
      { name: `source ${a} is translated`, config: SIIT, packet: () => ipv4Packet({ src: a, dst: REMOTE4 }, udp()) },
      { name: `destination ${a} is translated`, config: SIIT, packet: () => ipv4Packet({ src: CLAT4, dst: a }, udp()) },
    ]),
    // The one exception, as Jool and its corpus (rfc7915/ha-1, ha-2) have it: an ICMPv4 error
    // from a martian source still reaches the IPv6 sender.
    ...['127.0.0.1', '0.0.0.0'].map((a) => ({
      name: `ICMPv4 error from ${a} about a real packet is translated`,
      config: SIIT,
      packet: () => error4(a, CLAT4, ipv4Packet({ src: CLAT4, dst: REMOTE4 }, udp())),
    })),
  ]);
});

describe('martian IPv4 addresses, 6→4', () => {
  const pools = [SIIT, WKP_ANY].map((config) => ({ config, pool: config.pool6 as string }));
  dropped([
    ...[...MARTIANS, BROADCAST].flatMap((a) =>
      pools.map(({ config, pool }) => ({
        name: `source ${p6(pool, a)} (→ ${a}) → v6_src_martian`,
        config,
        packet: () => ipv6Packet({ src: p6(pool, a), dst: CLAT6 }, udp()),
        drop: 'v6_src_martian',
      })),
    ),
    ...[...MARTIANS, BROADCAST].flatMap((a) =>
      pools.map(({ config, pool }) => ({
        name: `destination ${p6(pool, a)} (→ ${a}) → v6_dst_martian`,
        config,
        packet: () => ipv6Packet({ src: CLAT6, dst: p6(pool, a) }, udp()),
        drop: 'v6_dst_martian',
      })),
    ),
    {
      name: 'an EAM source mapping to 127.0.0.5 → v6_src_martian',
      config: SIIT,
      packet: () => ipv6Packet({ src: '2001:db8:7f::5', dst: CLAT6 }, udp()),
      drop: 'v6_src_martian',
    },
    {
      name: 'a hop-limit-1 packet from a martian is dropped silently, without Time Exceeded',
      config: SIIT,
      packet: () => ipv6Packet({ src: p6('2001:db8:64::/96', '127.0.0.1'), dst: CLAT6, hopLimit: 1 }, udp()),
      drop: 'v6_src_martian',
    },
    {
      name: 'an ICMPv6 error from a pool6 address decoding to 127.0.0.1 → v6_src_martian',
      config: SIIT,
      packet: () =>
        error6(
          p6('2001:db8:64::/96', '127.0.0.1'),
          CLAT6,
          ipv6Packet({ src: CLAT6, dst: p6('2001:db8:64::/96', REMOTE4) }, udp()),
        ),
      drop: 'v6_src_martian',
    },
    ...['127.0.0.1', '224.0.0.1', BROADCAST].map((a) => ({
      name: `ICMPv6 error quoting a packet to ${p6('2001:db8:64::/96', a)} → v6_icmp_bad_inner`,
      config: SIIT,
      packet: () =>
        error6(
          p6('2001:db8:64::/96', REMOTE4),
          CLAT6,
          ipv6Packet({ src: CLAT6, dst: p6('2001:db8:64::/96', a) }, udp()),
        ),
      drop: 'v6_icmp_bad_inner',
    })),
  ]);
  translated(
    NEIGHBOURS.map((a) => ({
      name: `source ${p6('2001:db8:64::/96', a)} (→ ${a}) is translated`,
      config: SIIT,
      packet: () => ipv6Packet({ src: p6('2001:db8:64::/96', a), dst: CLAT6 }, udp()),
    })),
  );
});

describe('one family’s ICMP inside the other', () => {
  const remote6 = p6('2001:db8:64::/96', REMOTE4);
  dropped([
    {
      name: 'IPv4 Protocol 58 (ICMPv6 inside IPv4) → v4_protocol_is_icmpv6',
      config: SIIT,
      packet: () =>
        ipv4Packet(
          { src: CLAT4, dst: REMOTE4 },
          { proto: PROTO_ICMPV6, sport: 1, dport: 1, payload: new Uint8Array(8) },
        ),
      drop: 'v4_protocol_is_icmpv6',
    },
    {
      name: 'IPv4 Protocol 58 with TTL 1: no Time Exceeded either',
      config: SIIT,
      packet: () =>
        ipv4Packet(
          { src: CLAT4, dst: REMOTE4, ttl: 1 },
          { proto: PROTO_ICMPV6, sport: 1, dport: 1, payload: new Uint8Array(8) },
        ),
      drop: 'v4_protocol_is_icmpv6',
    },
    {
      name: 'ICMPv4 error quoting a Protocol 58 packet → v4_icmp_bad_inner',
      config: SIIT,
      packet: () =>
        error4(
          REMOTE4,
          CLAT4,
          ipv4Packet(
            { src: CLAT4, dst: REMOTE4 },
            { proto: PROTO_ICMPV6, sport: 1, dport: 1, payload: new Uint8Array(8) },
          ),
        ),
      drop: 'v4_icmp_bad_inner',
    },
    {
      name: 'IPv6 Next Header 1 (a forged ICMPv4 Fragmentation Needed) → v6_next_header_is_icmpv4',
      config: SIIT,
      packet: () => icmp4InIpv6(remote6, CLAT6),
      drop: 'v6_next_header_is_icmpv4',
    },
    {
      name: 'IPv6 Next Header 1 behind a Fragment header → v6_next_header_is_icmpv4',
      config: SIIT,
      packet: () => icmp4InIpv6(remote6, CLAT6, { fragment: true }),
      drop: 'v6_next_header_is_icmpv4',
    },
    {
      name: 'IPv6 Next Header 1 with hop limit 1: no Time Exceeded either',
      config: SIIT,
      packet: () => icmp4InIpv6(remote6, CLAT6, { hopLimit: 1 }),
      drop: 'v6_next_header_is_icmpv4',
    },
    {
      name: 'ICMPv6 error quoting a Next Header 1 packet → v6_icmp_bad_inner',
      config: SIIT,
      packet: () => error6(remote6, CLAT6, icmp4InIpv6(CLAT6, remote6)),
      drop: 'v6_icmp_bad_inner',
    },
  ]);
});

describe('Packet Too Big → Fragmentation Needed: the MTU never goes below 68 (RFC 791 §3.2)', () => {
  const remote6 = p6('2001:db8:64::/96', REMOTE4);
  const quoted = ipv6Packet(
    { src: CLAT6, dst: remote6 },
    { proto: PROTO_TCP, sport: 1, dport: 2, payload: new Uint8Array(40) },
  );
  for (const [advertised, want] of [
    [40, 68],
    [68, 68],
    [88, 68],
    [89, 69],
    [1280, 1260],
  ]) {
    test(`PTB MTU ${advertised} → Fragmentation Needed MTU ${want}`, () => {
      const r = new Translator(SIIT).translate(error6(remote6, CLAT6, quoted, 2, 0, advertised));
      assert.equal(r.drop, undefined);
      assert.equal(r.forward.length, 1);
      const e = r.forward[0];
      assert.deepEqual([e[20], e[21]], [3, 4]);
      assert.equal((e[26] << 8) | e[27], want);
      assert.deepEqual(checksumProblems(e), []);
    });
  }
});
