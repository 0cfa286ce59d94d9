/**
 * Per-translator state: two translators with different configurations, used in turn in one
 * thread, give exactly the bytes each gives alone (nothing shared at module level — the 4→6
 * memo, the pool6 plan, the 6→4 Identification counter, the arena's word view).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBatch } from '../../../src/core/batch.js';
import type { TranslatorConfig } from '../../../src/core/xlat/config.js';
import { dropName } from '../../../src/core/xlat/drop.js';
import { Translator } from '../../../src/core/xlat/translator.js';
import { ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../pkt/build.js';

const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

interface Side {
  config: TranslatorConfig;
  packets: Uint8Array[];
}

/** A CLAT-like configuration and a mix of packets both ways for it. */
function side(pool6: string, clat4: string, clat6: string, server4: string, server6: string, extra: TranslatorConfig) {
  const config: TranslatorConfig = {
    pool6,
    wkpGlobalOnly: false,
    ownV6: '2001:db8:ffff::1',
    ownV4: '192.0.0.1',
    eam: [{ v4: `${clat4}/32`, v6: `${clat6}/128` }],
    ...extra,
  };
  const packets: Uint8Array[] = [];
  for (let k = 0; k < 6; k++) {
    packets.push(
      ipv4Packet(
        { src: clat4, dst: server4, tos: 0x28 },
        { proto: PROTO_UDP, sport: 4000 + k, dport: 53, payload: fill(20 + k, k) },
      ),
      ipv6Packet(
        { src: server6, dst: clat6, tclass: 0x28 },
        { proto: PROTO_UDP, sport: 53, dport: 4000 + k, payload: fill(30 + k, k) },
      ),
      ipv6Packet({ src: server6, dst: clat6 }, { proto: PROTO_TCP, sport: 80, dport: 5000 + k, payload: fill(100, k) }),
      ipv4Packet(
        { src: clat4, dst: server4, df: false },
        { proto: PROTO_ICMP, sport: 9, dport: k, payload: fill(1400, k) },
      ),
      ipv6Packet(
        { src: server6, dst: clat6, hopLimit: 1 },
        { proto: PROTO_UDP, sport: 53, dport: 1, payload: fill(8, k) },
      ),
      ipv4Packet({ src: clat4, dst: server4, ttl: 1 }, { proto: PROTO_UDP, sport: 1, dport: 2, payload: fill(8, k) }),
    );
  }
  return { config, packets } satisfies Side;
}

const A = side('64:ff9b::/96', '192.0.0.4', '2001:db8:1:2::4', '198.51.100.7', '64:ff9b::c633:6407', {});
const B = side('2001:db8:64::/96', '192.0.0.5', '2001:db8:aa::5', '203.0.113.9', '2001:db8:64::cb00:7109', {
  trafficClass: 'zero',
  ipv6Mtu: 1280,
});

/** Translates `p` through one arena (as the datapath does) and returns every output and the drop. */
function run(t: Translator, arena: Uint8Array, p: Uint8Array): string {
  const out = createBatch(32, 4096, arena, 4096);
  arena.set(p, 64);
  const d = t.translatePacket(arena, 64, p.length, out);
  const parts = [dropName(d)];
  for (let i = 0; i < out.count; i++)
    parts.push(`${out.disp[i]}:${Buffer.from(arena.subarray(out.offs[i], out.offs[i] + out.lens[i])).toString('hex')}`);
  return parts.join(' ');
}

test('two translators interleaved in one thread give the bytes each gives alone', () => {
  const alone = (s: Side) => {
    const t = new Translator(s.config);
    const arena = new Uint8Array(4096 + 32 * 4096);
    return s.packets.map((p) => run(t, arena, p));
  };
  const wantA = alone(A);
  const wantB = alone(B);

  // Interleaved, each packet alternately, and both translators sharing one arena as well.
  const ta = new Translator(A.config);
  const tb = new Translator(B.config);
  const shared = new Uint8Array(4096 + 32 * 4096);
  const gotA: string[] = [];
  const gotB: string[] = [];
  for (let i = 0; i < A.packets.length; i++) {
    gotA.push(run(ta, shared, A.packets[i]));
    gotB.push(run(tb, new Uint8Array(4096 + 32 * 4096), B.packets[i]));
    // The other's packets through each translator in between: they must not disturb its state.
    run(tb, shared, A.packets[i]);
    run(ta, shared, B.packets[i]);
  }
  assert.deepEqual(gotA, wantA);
  assert.deepEqual(gotB, wantB);
  assert.ok(
    wantA.every((r) => !r.startsWith('none') || r.includes(':')),
    'each translated packet produced output',
  );
});
