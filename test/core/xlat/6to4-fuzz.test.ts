/**
 * Property tests for 6→4: random and mutated input never throws, never reads past `len` (the
 * same bytes followed by different garbage give the same result), and always ends in a known
 * drop reason or well-formed output; random valid packets come out with verifying checksums.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIPv4 } from '../../../src/core/addr/ipv4.js';
import { createBatch, type PacketBatch } from '../../../src/core/batch.js';
import { Drop } from '../../../src/core/xlat/drop.js';
import { Translator } from '../../../src/core/xlat/translator.js';
import {
  fragHdr,
  icmp4ChecksumOk,
  icmp6,
  ipv6,
  l4ChecksumOk4,
  optsHdr,
  routingHdr,
  tcp6,
  udp6,
  v4,
} from './6to4-packets.js';

const CLAT6 = '2001:db8:1::c1a7';
const t = new Translator({
  pool6: '64:ff9b::/96',
  eam: [{ v4: '192.0.0.4/32', v6: `${CLAT6}/128` }],
  ownV4: '192.0.0.1',
  ownV6: '2001:db8:1::1',
  wkpGlobalOnly: false,
  ipv4Mtu: 1400,
});

const STRIDE = 4096;

/** Translates `pkt` placed at the end of a buffer followed by `pad` bytes of `fill`. */
function run(pkt: Uint8Array, fill: number): { drop: Drop; outs: string[]; disp: number[] } {
  const buf = new Uint8Array(pkt.length + 64);
  buf.fill(fill);
  buf.set(pkt, 0);
  const out: PacketBatch = createBatch(4, STRIDE);
  const drop = t.translate6(buf, 0, pkt.length, out);
  const outs: string[] = [];
  const disp: number[] = [];
  for (let i = 0; i < out.count; i++) {
    assert.ok(out.lens[i] > 0 && out.lens[i] <= STRIDE);
    outs.push(Buffer.from(out.data.subarray(out.offs[i], out.offs[i] + out.lens[i])).toString('hex'));
    disp.push(out.disp[i]);
  }
  return { drop, outs, disp };
}

function checkRobust(pkt: Uint8Array): void {
  const a = run(pkt, 0x00);
  const b = run(pkt, 0xff);
  // The Identification of unfragmented DF=0 results comes from a counter: compare without it.
  const masked = (r: typeof a) =>
    r.outs.map((h, i) => (r.disp[i] === 0 ? h.slice(0, 8) + h.slice(12, 20) + h.slice(24) : h));
  assert.equal(a.drop, b.drop);
  assert.deepEqual(masked(a), masked(b), 'result depends on bytes past len');
  assert.ok(a.drop >= Drop.NONE && a.drop < Drop.COUNT, `unknown drop ${a.drop}`);
  assert.notEqual(a.drop, Drop.UNKNOWN);
  if (a.drop === Drop.NONE) assert.ok(a.outs.length > 0);
  for (let i = 0; i < a.outs.length; i++) {
    const o = Buffer.from(a.outs[i], 'hex');
    if (a.disp[i] === 0) {
      assert.equal(o[0] >>> 4, 4);
      assert.equal((o[2] << 8) | o[3], o.length);
      assert.ok(v4(o).headerOk);
    } else {
      assert.equal(o[0] >>> 4, 6);
      assert.equal(((o[4] << 8) | o[5]) + 40, o.length);
    }
  }
}

const addr4 = fc.integer({ min: 0, max: 0xffffffff }).map((v) => formatIPv4(v >>> 0));
const remote = addr4.map((a) => `64:ff9b::${a}`);
const payload = fc.uint8Array({ maxLength: 1500 });
const extChain = fc.array(
  fc.oneof(
    fc.constant(optsHdr(0)),
    fc.constant(optsHdr(60)),
    fc.constant(routingHdr(0)),
    fc.constant(routingHdr(1)),
    fc.constant(fragHdr(0x87654321, 0, false)),
  ),
  { maxLength: 3 },
);

const validPacket = fc
  .record({
    src: remote,
    kind: fc.constantFrom('udp', 'tcp', 'echo', 'error'),
    data: payload,
    hop: fc.integer({ min: 0, max: 255 }),
    tc: fc.integer({ min: 0, max: 255 }),
    exts: extChain,
  })
  .map(({ src, kind, data, hop, tc, exts }) => {
    const base = { src, dst: CLAT6, hop, tc, exts };
    if (kind === 'udp') return ipv6({ ...base, proto: 17, payload: udp6(src, CLAT6, 53, 9999, data) });
    if (kind === 'tcp') return ipv6({ ...base, proto: 6, payload: tcp6(src, CLAT6, 443, 9999, data) });
    if (kind === 'echo') return ipv6({ ...base, proto: 58, payload: icmp6(src, CLAT6, 128, 0, 1, data) });
    const inner = ipv6({ src: CLAT6, dst: src, proto: 17, payload: udp6(CLAT6, src, 9999, 53, data) });
    return ipv6({ ...base, proto: 58, payload: icmp6(src, CLAT6, 1, 4, 0, inner) });
  });

describe('6→4 robustness', () => {
  test('random bytes never throw or read past len', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (b, fix) => {
        if (fix && b.length >= 40) {
          b[0] = 0x60 | (b[0] & 0xf);
          const plen = b.length - 40;
          b[4] = plen >>> 8;
          b[5] = plen;
        }
        checkRobust(b);
      }),
      { numRuns: 2000 },
    );
  });

  test('valid packets with random bytes changed never throw or read past len', () => {
    fc.assert(
      fc.property(
        validPacket,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        (pkt, flips, cut) => {
          const p = pkt.slice();
          for (const [i, v] of flips) p[i % p.length] = v;
          checkRobust(p);
          checkRobust(p.subarray(0, cut % (p.length + 1)));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('6→4 checksums of valid packets', () => {
  test('every forwarded packet verifies: IPv4 header, TCP/UDP/ICMP', () => {
    fc.assert(
      fc.property(validPacket, (pkt) => {
        const r = run(pkt, 0);
        checkRobust(pkt);
        for (let i = 0; i < r.outs.length; i++) {
          if (r.disp[i] !== 0) continue;
          const o = Buffer.from(r.outs[i], 'hex');
          const h = v4(o);
          if (h.mf || h.fragOffset) continue;
          if (h.proto === 1) {
            assert.ok(icmp4ChecksumOk(o));
            if (o[20] === 3) assert.ok(l4ChecksumOk4(o.subarray(28, 28 + v4(o.subarray(28)).totalLength), 17));
          } else {
            assert.ok(l4ChecksumOk4(o, h.proto), `proto ${h.proto}`);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
