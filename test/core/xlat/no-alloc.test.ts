/**
 * Issue 2's "no allocation per packet" for the translator's hot path, checked on the real thing:
 * after a warm-up, many translations between two batches of one arena (as the datapath calls it)
 * must neither start a garbage collection nor grow the young generation by more than a few
 * kilobytes. One boxed number (16 bytes) per packet would be megabytes here: it fails both ways.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBatch } from '../../../src/core/batch.js';
import { finish, pseudoSum6, sum16 } from '../../../src/core/checksum.js';
import { Drop, dropName } from '../../../src/core/xlat/drop.js';
import { Translator } from '../../../src/core/xlat/translator.js';
import { measureAllocation } from '../../helpers/alloc.js';
import { checksumProblems, ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../pkt/build.js';

const CLAT4 = '192.0.0.4';
const CLAT6 = '2001:db8:1:2::4';
const SERVER4 = '192.0.2.1';
const SERVER6 = '64:ff9b::c000:201';
const STRIDE = 2048;
const BATCH = 64;
const WARMUP = 40_000;
const MEASURED = 30_000;

const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

/** Turns a built echo request into an ICMP error (type, code) quoting `inner`, checksum redone. */
function asError(p: Uint8Array, l3: number, type: number, code: number): Uint8Array {
  p[l3] = type;
  p[l3 + 1] = code;
  p.fill(0, l3 + 2, l3 + 8);
  const len = p.length - l3;
  const c = finish(l3 === 40 ? sum16(p, 40, len, pseudoSum6(p, 8, 24, 58, len)) : sum16(p, 20, len));
  p[l3 + 2] = c >>> 8;
  p[l3 + 3] = c;
  return p;
}

function packets(): { name: string; v4: boolean; p: Uint8Array; drop?: Drop }[] {
  const udp4 = { proto: PROTO_UDP, sport: 40000, dport: 9 };
  const udp6 = { proto: PROTO_UDP, sport: 9, dport: 40000 };
  const inner4 = ipv4Packet({ src: SERVER4, dst: CLAT4 }, { ...udp6, payload: fill(32, 4) });
  const inner6 = ipv6Packet({ src: CLAT6, dst: SERVER6 }, { ...udp4, payload: fill(32, 4) });
  const echo = { proto: PROTO_ICMP, sport: 7, dport: 1 };
  return [
    { name: '4→6 UDP 64 B', v4: true, p: ipv4Packet({ src: CLAT4, dst: SERVER4 }, { ...udp4, payload: fill(36, 1) }) },
    { name: '6→4 UDP 64 B', v4: false, p: ipv6Packet({ src: SERVER6, dst: CLAT6 }, { ...udp6, payload: fill(16, 1) }) },
    {
      name: '4→6 TCP',
      v4: true,
      p: ipv4Packet(
        { src: CLAT4, dst: SERVER4 },
        { proto: PROTO_TCP, sport: 40001, dport: 80, payload: fill(1440, 2) },
      ),
    },
    {
      name: '6→4 TCP',
      v4: false,
      p: ipv6Packet(
        { src: SERVER6, dst: CLAT6 },
        { proto: PROTO_TCP, sport: 80, dport: 40001, payload: fill(1440, 2) },
      ),
    },
    { name: '4→6 echo', v4: true, p: ipv4Packet({ src: CLAT4, dst: SERVER4 }, { ...echo, payload: fill(56, 3) }) },
    { name: '6→4 echo', v4: false, p: ipv6Packet({ src: SERVER6, dst: CLAT6 }, { ...echo, payload: fill(56, 3) }) },
    {
      name: '4→6 ICMP error',
      v4: true,
      p: asError(ipv4Packet({ src: CLAT4, dst: SERVER4 }, { ...echo, payload: inner4 }), 20, 3, 3),
    },
    {
      name: '6→4 ICMP error',
      v4: false,
      p: asError(ipv6Packet({ src: SERVER6, dst: CLAT6 }, { ...echo, payload: inner6 }), 40, 1, 4),
    },
    {
      name: '6→4 hop limit expired (Time Exceeded back)',
      v4: false,
      p: ipv6Packet({ src: SERVER6, dst: CLAT6, hopLimit: 1 }, { ...udp6, payload: fill(16, 1) }),
      drop: Drop.D64_HOP_LIMIT_EXPIRED,
    },
  ];
}

test('the hot path allocates nothing per packet (no GC, young generation flat)', async () => {
  const t = new Translator({
    pool6: '64:ff9b::/96',
    wkpGlobalOnly: false,
    ownV6: '2001:db8:1:2::1',
    eam: [{ v4: `${CLAT4}/32`, v6: `${CLAT6}/128` }],
  });
  const arena = new Uint8Array(2 * BATCH * STRIDE);
  const inb = createBatch(BATCH, STRIDE, arena, 0);
  const out = createBatch(BATCH, STRIDE, arena, BATCH * STRIDE);
  const cases = packets();
  // One input slot per case; each case is checked once before the loops.
  cases.forEach((c, i) => {
    arena.set(c.p, inb.offs[i] + 32);
    out.count = 0;
    const d = c.v4
      ? t.translate4(arena, inb.offs[i] + 32, c.p.length, out)
      : t.translate6(arena, inb.offs[i] + 32, c.p.length, out);
    assert.equal(dropName(d), dropName(c.drop ?? Drop.NONE), c.name);
    assert.equal(out.count, 1, c.name);
    assert.deepEqual(checksumProblems(arena.subarray(out.offs[0], out.offs[0] + out.lens[0])), [], c.name);
  });
  const offs = new Int32Array(cases.length);
  const lens = new Int32Array(cases.length);
  const v4 = new Uint8Array(cases.length);
  cases.forEach((c, i) => {
    offs[i] = inb.offs[i] + 32;
    lens[i] = c.p.length;
    v4[i] = c.v4 ? 1 : 0;
  });
  const run = (n: number): number => {
    let sink = 0;
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < offs.length; i++) {
        if (out.count >= BATCH - 1) out.count = 0;
        sink += v4[i] === 1 ? t.translate4(arena, offs[i], lens[i], out) : t.translate6(arena, offs[i], lens[i], out);
      }
    }
    return sink;
  };
  run(WARMUP);

  const { gcs, grown } = await measureAllocation(1, () => run(MEASURED));

  const packetsRun = MEASURED * cases.length;
  assert.equal(gcs, 0, `${gcs} garbage collection(s) during ${packetsRun} translations`);
  // The statistics call itself allocates a little; one 16-byte object per 100 packets would be ~43 KB.
  assert.ok(grown < 16 * 1024, `young generation grew by ${grown} bytes over ${packetsRun} translations`);
});
