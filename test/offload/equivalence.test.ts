/**
 * The offload programs against the core translator, packet by packet, in the kernel: each
 * generated packet runs through the loaded program (BPF_PROG_TEST_RUN, as an Ethernet frame) and
 * through the core. A program either passes the packet on untouched, or redirects it — and then
 * its bytes must be what the core forwards (the 6→4 Identification aside: the core counts, the
 * program draws at random), with TCP/ICMP checksum 0x0000 and 0xffff as the same value. Plain
 * packets must always be offloaded, so the comparison is never vacuous. Packets the core drops —
 * a martian IPv4 address, IPv4 Protocol 58, IPv6 Next Header 1 — must be passed on untouched,
 * whatever the core here does with them.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseIPv4 } from '../../src/core/addr/ipv4.js';
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import { fold, sum16 } from '../../src/core/checksum.js';
import { ipv4SetChecksum } from '../../src/core/hdr/ipv4.js';
import { generateClatAddress } from '../../src/core/nd/neutral.js';
import type { TranslatorConfig } from '../../src/core/xlat/config.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { TC_ACT_REDIRECT, TCX_NEXT } from '../../src/offload/abi.js';
import { Asm, R0, R2 } from '../../src/offload/asm.js';
import { AF_INET6, buildEgress4, NEXT_HOP_LEN } from '../../src/offload/egress4.js';
import { buildIngress6 } from '../../src/offload/ingress6.js';
import { planOffload } from '../../src/offload/plan.js';
import { COUNTER_SLOTS, COUNTER_VALUE_LEN, fold as foldInKernel } from '../../src/offload/snippets.js';
import { closeBpf, createArrayMap, loadTcProgram, testRun, updateArray } from '../../src/sys/ebpf.js';
import { buildNd } from '../core/nd/build.js';
import { NEED_ROOT } from '../helpers/netns.js';
import { after, before, describe, test } from '../helpers/suite.js';
import { ipv4Packet, ipv6Packet, type L4, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../pkt/build.js';

const CLAT4 = '192.0.0.1';

interface Setup {
  name: string;
  pool6: string;
  clat6: string;
  extra?: Partial<TranslatorConfig>;
  /** Router mode, stateless: LAN subnets mapped into a routed prefix (further EAM entries). */
  lan?: { v4: string; v6: string }[];
  /** Addresses inside `lan`'s IPv4 prefixes and their mapped IPv6 ones (for the generators). */
  lanHosts?: { v4: string[]; v6: string[] };
}

const SETUPS: Setup[] = [
  // Not checksum-neutral: the programs move TCP/UDP checksums.
  { name: 'documentation /96, arbitrary address', pool6: '2001:db8:64::/96', clat6: '2001:db8:1:2::1234' },
  {
    name: 'well-known prefix, neutral address, global-only rule',
    pool6: '64:ff9b::/96',
    clat6: generateClatAddress({ prefix64: '2001:db8:1:2::/64', pref64: '64:ff9b::/96', ipv4: CLAT4 }),
  },
  {
    name: 'traffic class zeroed, small IPv6 MTU',
    pool6: '2001:db8:64::/96',
    clat6: '2001:db8:1:2::99',
    extra: { trafficClass: 'zero', ipv6Mtu: 1300 },
  },
  {
    // The LAN's packets are the workers': the programs pass them on; the CLAT pair stays offloaded.
    name: 'stateless router mode: LAN subnets mapped by EAM beside the CLAT pair',
    pool6: '2001:db8:64::/96',
    clat6: '2001:db8:100:0:42::1234',
    lan: [
      { v4: '203.0.113.0/24', v6: '2001:db8:100::cb00:7100/120' },
      { v4: '198.51.100.0/25', v6: '2001:db8:100::c633:6400/121' },
    ],
    lanHosts: {
      v4: ['203.0.113.200', '203.0.113.9', '198.51.100.7'],
      v6: ['2001:db8:100::cb00:71c8', '2001:db8:100::cb00:7109', '2001:db8:100::c633:6407'],
    },
  },
];

/** Remote IPv4 addresses outside every special range, some at the edges of the martian ranges. */
const GLOBAL = ['192.88.99.1', '1.0.0.1', '126.255.255.254', '128.0.0.1', '223.255.255.254'];
/** Documentation and private ones: non-global, translated unless under the well-known prefix. */
const NON_GLOBAL = ['198.51.100.7', '203.0.113.200', '192.0.2.1', '10.1.2.3'];
/** Martian ones (0/8, 127/8, 224/4, 240/4): the core drops packets to or from them. */
const MARTIANS = ['0.0.0.0', '0.1.2.3', '127.0.0.1', '127.255.255.255', '224.0.0.5', '239.255.255.250', '240.0.0.1'];
const REMOTES = [...GLOBAL, ...NON_GLOBAL, ...MARTIANS, CLAT4];

/** Any address in a martian range. */
const martianArb = fc
  .tuple(fc.constantFrom(0, 127, 224, 240), fc.integer({ min: 0, max: 0x0fffffff }))
  .map(([first, rest]) => {
    const v = ((first << 24) | (first >= 224 ? rest : rest & 0xffffff)) >>> 0;
    return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join('.');
  });

function frame(p: Uint8Array, type: number): Uint8Array {
  const f = new Uint8Array(14 + p.length);
  f[12] = type >>> 8;
  f[13] = type & 0xff;
  f.set(p, 14);
  return f;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** TCP and ICMP checksums of 0x0000 and 0xffff are the same one's-complement value. */
function normalize(p: Uint8Array): Uint8Array {
  const q = p.slice();
  const v6 = q[0] >>> 4 === 6;
  const l4 = v6 ? 40 : (q[0] & 0x0f) * 4;
  const proto = v6 ? q[6] : q[9];
  const at = proto === PROTO_TCP ? l4 + 16 : proto === PROTO_ICMP || proto === 58 ? l4 + 2 : -1;
  if (at >= 0 && at + 1 < q.length && q[at] === 0xff && q[at + 1] === 0xff) {
    q[at] = 0;
    q[at + 1] = 0;
  }
  if (!v6) {
    // Identification: ours is random, the core's a counter. The header checksum follows from it.
    q[4] = 0;
    q[5] = 0;
    q[10] = 0;
    q[11] = 0;
  }
  return q;
}

const l4Arb = (protos: number[]) =>
  fc.record({
    proto: fc.constantFrom(...protos),
    sport: fc.integer({ min: 0, max: 0xffff }),
    dport: fc.integer({ min: 0, max: 0xffff }),
    payload: fc.uint8Array({ maxLength: 1500 }),
    zeroChecksum: fc.boolean(),
  });

/** What may be done to a valid packet so that it is no longer a plain one. */
type Mutation = 'none' | 'ttl' | 'pad' | 'type' | 'code' | 'truncate' | 'frag' | 'version' | 'headerSum' | 'options';

describe('the programs’ one’s-complement fold, run in the kernel', { skip: NEED_ROOT }, () => {
  test('folds 32-bit sums to the 16-bit value the core’s fold gives', () => {
    const out = new Uint8Array(128);
    for (const v of [0, 1, 0xffff, 0x1fffe, 0x12345678, 0xfffffffe, 0xffffffff]) {
      const a = new Asm();
      // r0 = v (as 32 bits: mov sign-extends, the fold's first step drops the upper half).
      a.mov(R0, v | 0);
      foldInKernel(a, R0, R2);
      a.exit();
      const prog = loadTcProgram('clatd_fold', a.encode());
      try {
        const r = testRun(prog, frame(new Uint8Array(40), 0x86dd), out);
        assert.equal(r.retval >>> 0, fold(v), `fold(0x${v.toString(16)})`);
      } finally {
        closeBpf(prog);
      }
    }
  });
});

describe('offload programs give the core translator’s bytes', { skip: NEED_ROOT }, () => {
  for (const s of SETUPS) {
    describe(s.name, () => {
      const t = new Translator({
        pool6: s.pool6,
        eam: [{ v4: `${CLAT4}/32`, v6: `${s.clat6}/128` }, ...(s.lan ?? [])],
        v4Sources: 'eam',
        ownV4: '192.0.0.8',
        ownV6: s.clat6,
        ipv4Mtu: 65535,
        ipv6Mtu: 1500,
        hairpin: false,
        ...s.extra,
      });
      const choice = planOffload(t.config, parseIPv4(CLAT4), parseIPv6(s.clat6));
      if (!('plan' in choice)) throw new Error(choice.reason);
      const plan = choice.plan;
      const pool = s.pool6.replace('/96', '');
      const remote6 = (v4: string) => `${pool}${v4}`;
      /** Remote addresses of plain packets: the well-known prefix carries only global ones. */
      const lanV4 = s.lanHosts?.v4 ?? [];
      const plain = (s.pool6 === '64:ff9b::/96' ? GLOBAL : [...GLOBAL, ...NON_GLOBAL]).filter(
        (a) => !lanV4.includes(a),
      );
      if (s.lan) assert.equal(plan.otherEam4.length, s.lan.length);
      let map = -1;
      let nextHop = -1;
      let ingress = -1;
      let egress = -1;
      const out = new Uint8Array(4096);
      /** The next-hop entry: valid (a router's link-local address) or not; the bytes out are the same. */
      const setNextHop = (valid: boolean) => {
        const v = new Uint8Array(NEXT_HOP_LEN);
        v[0] = valid ? AF_INET6 : 0;
        v.set(parseIPv6('fe80::1'), 4);
        updateArray(nextHop, 0, v);
      };
      before(() => {
        map = createArrayMap('clatd_test', COUNTER_VALUE_LEN, COUNTER_SLOTS);
        nextHop = createArrayMap('clatd_test_nh', NEXT_HOP_LEN, 1);
        setNextHop(true);
        ingress = loadTcProgram('clatd_in6', buildIngress6(plan, { mapFd: map, tunIfindex: 1, l2: 14 }));
        egress = loadTcProgram(
          'clatd_eg4',
          buildEgress4(plan, { mapFd: map, uplinkIfindex: 1, l2: 14, nextHopFd: nextHop }),
        );
      });
      after(() => {
        for (const fd of [ingress, egress, map, nextHop]) closeBpf(fd);
      });

      /** Runs one packet through the program alone: it must hand it on untouched. */
      function passes(prog: number, p: Uint8Array, type: number): void {
        const r = testRun(prog, frame(p, type), out);
        assert.equal(r.retval, TCX_NEXT, `offloaded: ${hex(p)}`);
        assert.equal(hex(out.subarray(14, r.size)), hex(p), 'a packet passed on must be untouched');
      }

      /** Runs one packet both ways; returns whether the program took it. */
      function check(prog: number, p: Uint8Array, type: number): boolean {
        const f = frame(p, type);
        const r = testRun(prog, f, out);
        assert.ok(r.retval === TC_ACT_REDIRECT || r.retval === TCX_NEXT, `return value ${r.retval} for ${hex(p)}`);
        const got = out.subarray(14, r.size);
        if (r.retval === TCX_NEXT) {
          assert.equal(hex(got), hex(p), 'a packet passed on must be untouched');
          return false;
        }
        const core = t.translate(p);
        assert.equal(core.drop, undefined, `offloaded, but the core drops it (${core.drop}): ${hex(p)}`);
        assert.equal(core.forward.length, 1, `offloaded, but the core makes ${core.forward.length} packets`);
        assert.equal(core.back.length, 0);
        assert.equal(hex(normalize(got)), hex(normalize(core.forward[0])), `input ${hex(p)}`);
        if (got[0] >>> 4 === 4) assert.equal(fold(sum16(got, 0, 20)), 0xffff, 'IPv4 header checksum');
        return true;
      }

      function mutate4(p: Uint8Array, m: Mutation, k: number): Uint8Array {
        const q = m === 'pad' ? new Uint8Array(p.length + 1 + (k % 8)) : p.slice();
        if (m === 'pad') q.set(p);
        if (m === 'ttl') q[8] = k % 2;
        if (m === 'type') q[20] = [13, 3, 11, 5, 17][k % 5];
        if (m === 'code') q[21] = 1 + (k % 3);
        if (m === 'frag') q[6] |= k % 2 ? 0x20 : 0x01;
        if (m === 'version') q[0] = 0x65;
        if (m === 'headerSum') q[10] ^= 1 + (k & 0x7f);
        // BPF_PROG_TEST_RUN refuses frames shorter than the fixed header.
        if (m === 'truncate') return q.subarray(0, Math.max(20, q.length - 1 - (k % 30)));
        if (m === 'options') {
          const r = new Uint8Array(p.length + 4);
          r.set(p.subarray(0, 20));
          r[20] = 1; // NOP
          r[21] = 1;
          r[22] = 1;
          r[23] = 0; // EOL
          r.set(p.subarray(20), 24);
          r[0] = 0x46;
          const total = r.length;
          r[2] = total >>> 8;
          r[3] = total;
          r[10] = 0;
          r[11] = 0;
          const c = ~fold(sum16(r, 0, 24)) & 0xffff;
          r[10] = c >>> 8;
          r[11] = c;
          return r;
        }
        return q;
      }

      function mutate6(p: Uint8Array, m: Mutation, k: number): Uint8Array {
        const q = m === 'pad' ? new Uint8Array(p.length + 1 + (k % 8)) : p.slice();
        if (m === 'pad') q.set(p);
        if (m === 'ttl') q[7] = k % 2;
        if (m === 'type') q[40] = [1, 2, 3, 4, 135, 136][k % 6];
        if (m === 'code') q[41] = 1 + (k % 3);
        if (m === 'frag' || m === 'options') q[6] = m === 'frag' ? 44 : [0, 60, 43][k % 3];
        if (m === 'version') q[0] = 0x45;
        if (m === 'headerSum') q[24 + (k % 16)] ^= 1; // another destination
        if (m === 'truncate') return q.subarray(0, Math.max(40, q.length - 1 - (k % 30)));
        return q;
      }

      const mutation = fc.constantFrom<Mutation>(
        'none',
        'ttl',
        'pad',
        'type',
        'code',
        'truncate',
        'frag',
        'version',
        'headerSum',
        'options',
      );

      test('4→6: plain TCP, UDP and echo packets are offloaded, exactly as the core translates them', () => {
        fc.assert(
          fc.property(
            l4Arb([PROTO_TCP, PROTO_UDP, PROTO_ICMP]),
            fc.constantFrom(...plain),
            fc.integer({ min: 2, max: 255 }),
            fc.integer({ min: 0, max: 255 }),
            (l4: L4, dst, ttl, tos) => {
              const fits = 40 + 8 + l4.payload.length <= (s.extra?.ipv6Mtu ?? 1500);
              const p = ipv4Packet({ src: CLAT4, dst, ttl, tos, df: fits }, { ...l4, zeroChecksum: false });
              const df = 40 + (p.length - 20) <= Math.min(1280, s.extra?.ipv6Mtu ?? 1500);
              const q =
                fits && df ? p : ipv4Packet({ src: CLAT4, dst, ttl, tos, df: true }, { ...l4, zeroChecksum: false });
              if (40 + q.length - 20 > (s.extra?.ipv6Mtu ?? 1500)) return; // too big with DF: the core answers
              assert.ok(check(egress, q, 0x0800), `not offloaded: ${hex(q)}`);
            },
          ),
          { numRuns: 300 },
        );
      });

      test('4→6: any packet is either passed on untouched or offloaded exactly', () => {
        fc.assert(
          fc.property(
            l4Arb([PROTO_TCP, PROTO_UDP, PROTO_ICMP, 47]),
            fc.constantFrom(CLAT4, '192.0.0.2', '203.0.113.9', ...lanV4),
            fc.constantFrom(...REMOTES, ...lanV4),
            fc.integer({ min: 0, max: 255 }),
            fc.boolean(),
            mutation,
            fc.nat(),
            (l4: L4, src, dst, ttl, df, m, k) => {
              const p = ipv4Packet({ src, dst, ttl, df, tos: k & 0xff }, l4);
              setNextHop(k % 3 !== 0);
              check(egress, mutate4(p, m, k), 0x0800);
            },
          ),
          { numRuns: 1000 },
        );
      });

      test('6→4: plain TCP, UDP and echo packets are offloaded, exactly as the core translates them', () => {
        fc.assert(
          fc.property(
            l4Arb([PROTO_TCP, PROTO_UDP, PROTO_ICMP]),
            // A remote may have the CLAT's IPv4 address: 6→4 translates it (4→6 would hairpin).
            fc.constantFrom(...plain, ...(s.pool6 === '64:ff9b::/96' ? [] : [CLAT4])),
            fc.integer({ min: 2, max: 255 }),
            fc.integer({ min: 0, max: 255 }),
            fc.integer({ min: 0, max: 0xfffff }),
            (l4: L4, v4, hopLimit, tclass, flow) => {
              const p = ipv6Packet(
                { src: remote6(v4), dst: s.clat6, hopLimit, tclass, flow },
                { ...l4, zeroChecksum: false },
              );
              assert.ok(check(ingress, p, 0x86dd), `not offloaded: ${hex(p)}`);
            },
          ),
          { numRuns: 300 },
        );
      });

      test('6→4: any packet is either passed on untouched or offloaded exactly', () => {
        fc.assert(
          fc.property(
            l4Arb([PROTO_TCP, PROTO_UDP, PROTO_ICMP, 47]),
            fc.constantFrom(...REMOTES, ...lanV4),
            fc.constantFrom(s.clat6, '2001:db8:1:2::77', ...(s.lanHosts?.v6 ?? [])),
            fc.integer({ min: 0, max: 255 }),
            mutation,
            fc.nat(),
            (l4: L4, v4, dst, hopLimit, m, k) => {
              const lan6 = s.lanHosts?.v6 ?? [];
              const src =
                k % 5 === 0 ? '2001:db8:99::1' : k % 7 === 0 && lan6.length ? lan6[k % lan6.length] : remote6(v4);
              const p = ipv6Packet({ src, dst, hopLimit, tclass: k & 0xff }, l4);
              check(ingress, mutate6(p, m, k), 0x86dd);
            },
          ),
          { numRuns: 1000 },
        );
      });

      test('4→6: a plain packet but to a martian address, or of IPv4 Protocol 58, is passed on untouched', () => {
        fc.assert(
          fc.property(
            l4Arb([PROTO_TCP, PROTO_UDP, PROTO_ICMP]),
            fc.boolean(),
            martianArb,
            fc.constantFrom(...plain),
            fc.integer({ min: 2, max: 255 }),
            (l4: L4, byProto, martian, remote, ttl) => {
              // Small enough for every setup's MTU: nothing but the address or protocol stands out.
              const body = { ...l4, payload: l4.payload.subarray(0, 1000), zeroChecksum: false };
              if (!byProto) {
                passes(egress, ipv4Packet({ src: CLAT4, dst: martian, ttl }, body), 0x0800);
                return;
              }
              // An echo request the program offloads, then the same bytes under Protocol 58.
              const p = ipv4Packet({ src: CLAT4, dst: remote, ttl }, { ...body, proto: PROTO_ICMP });
              assert.ok(check(egress, p, 0x0800), `not offloaded: ${hex(p)}`);
              p[9] = 58;
              ipv4SetChecksum(p, 0);
              passes(egress, p, 0x0800);
            },
          ),
          { numRuns: 300 },
        );
      });

      const hosts = s.lanHosts;
      if (hosts)
        test('4→6 and 6→4: the LAN (further EAM entries) is passed on to the workers, from and to it', () => {
          for (const v4 of hosts.v4) {
            const body = { proto: PROTO_UDP, sport: 1000, dport: 53, payload: new Uint8Array(40) };
            passes(egress, ipv4Packet({ src: v4, dst: GLOBAL[0], ttl: 64 }, body), 0x0800);
            passes(egress, ipv4Packet({ src: CLAT4, dst: v4, ttl: 64 }, body), 0x0800);
          }
          for (const v6 of hosts.v6) {
            const body = { proto: PROTO_TCP, sport: 80, dport: 1000, payload: new Uint8Array(40) };
            passes(ingress, ipv6Packet({ src: remote6(GLOBAL[0]), dst: v6, hopLimit: 64 }, body), 0x86dd);
          }
        });

      test('6→4: Neighbor Solicitations for the CLAT address go on to the sockets that answer them', () => {
        // Unicast unreachability probes come to the CLAT address itself; clatd (or the kernel) answers.
        for (const src of ['fe80::1', '2001:db8:1:2::1', remote6(plain[0])]) {
          passes(ingress, buildNd({ src, dst: s.clat6, target: s.clat6 }), 0x86dd);
        }
      });

      test('6→4: a plain packet but from a martian address, or of IPv6 Next Header 1, is passed on untouched', () => {
        fc.assert(
          fc.property(
            l4Arb([PROTO_TCP, PROTO_UDP, PROTO_ICMP]),
            fc.boolean(),
            martianArb,
            fc.constantFrom(...plain),
            fc.integer({ min: 2, max: 255 }),
            (l4: L4, byProto, martian, remote, hopLimit) => {
              const body = { ...l4, zeroChecksum: false };
              if (!byProto) {
                passes(ingress, ipv6Packet({ src: remote6(martian), dst: s.clat6, hopLimit }, body), 0x86dd);
                return;
              }
              // An echo request the program offloads, then the same bytes under Next Header 1.
              const p = ipv6Packet({ src: remote6(remote), dst: s.clat6, hopLimit }, { ...body, proto: PROTO_ICMP });
              assert.ok(check(ingress, p, 0x86dd), `not offloaded: ${hex(p)}`);
              p[6] = 1;
              passes(ingress, p, 0x86dd);
            },
          ),
          { numRuns: 300 },
        );
      });
    });
  }
});
