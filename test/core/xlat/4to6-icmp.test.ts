/** ICMPv4 → ICMPv6 tables, Packet Too Big MTU rule and RFC 4884 layout (RFC 7915 §4.2, §4.3). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  code46,
  Kind46,
  kind46,
  layoutError46,
  map46,
  newErrorLayout46,
  paramPointer46,
  ptbMtu46,
  type46,
} from '../../../src/core/xlat/icmp46.js';

function m(type: number, code: number): [Kind46, number, number] | 'drop' {
  const e = map46(type, code);
  return kind46(e) === Kind46.Drop ? 'drop' : [kind46(e), type46(e), code46(e)];
}

describe('map46: RFC 7915 §4.2 type/code table', () => {
  test('echo and echo reply become 128 and 129', () => {
    assert.deepEqual(m(8, 0), [Kind46.Info, 128, 0]);
    assert.deepEqual(m(0, 0), [Kind46.Info, 129, 0]);
  });

  test('destination unreachable, every code', () => {
    const want: Record<number, [Kind46, number, number] | 'drop'> = {
      0: [Kind46.Error, 1, 0],
      1: [Kind46.Error, 1, 0],
      2: [Kind46.ParamProblem, 4, 1],
      3: [Kind46.Error, 1, 4],
      4: [Kind46.PacketTooBig, 2, 0],
      5: [Kind46.Error, 1, 0],
      6: [Kind46.Error, 1, 0],
      7: [Kind46.Error, 1, 0],
      8: [Kind46.Error, 1, 0],
      9: [Kind46.Error, 1, 1],
      10: [Kind46.Error, 1, 1],
      11: [Kind46.Error, 1, 0],
      12: [Kind46.Error, 1, 0],
      13: [Kind46.Error, 1, 1],
      14: 'drop',
      15: [Kind46.Error, 1, 1],
      16: 'drop',
      255: 'drop',
    };
    for (const [code, w] of Object.entries(want)) assert.deepEqual(m(3, Number(code)), w, `3/${code}`);
  });

  test('time exceeded keeps its code; parameter problem 0 and 2 only', () => {
    assert.deepEqual(m(11, 0), [Kind46.Error, 3, 0]);
    assert.deepEqual(m(11, 1), [Kind46.Error, 3, 1]);
    assert.deepEqual(m(12, 0), [Kind46.ParamProblem, 4, 0]);
    assert.deepEqual(m(12, 2), [Kind46.ParamProblem, 4, 0]);
    assert.equal(m(12, 1), 'drop');
  });

  test('types without an ICMPv6 counterpart are dropped', () => {
    for (const t of [4, 5, 6, 9, 10, 13, 14, 15, 16, 17, 18, 42, 255]) assert.equal(m(t, 0), 'drop', `type ${t}`);
  });

  test('parameter problem pointers', () => {
    const want = [0, 1, 4, 4, -1, -1, -1, -1, 7, 6, -1, -1, 8, 8, 8, 8, 24, 24, 24, 24];
    for (let p = 0; p < want.length; p++) assert.equal(paramPointer46(p), want[p], `pointer ${p}`);
    assert.equal(paramPointer46(20), -1);
    assert.equal(paramPointer46(255), -1);
  });
});

describe('ptbMtu46: Fragmentation Needed → Packet Too Big MTU', () => {
  test('+20, bounded by both next hops, never below 1280', () => {
    assert.equal(ptbMtu46(1261, 1500, 1500, 1500), 1281);
    assert.equal(ptbMtu46(1260, 1500, 1500, 1500), 1280);
    assert.equal(ptbMtu46(1259, 1500, 1500, 1500), 1280);
    assert.equal(ptbMtu46(576, 1500, 1500, 1500), 1280);
    assert.equal(ptbMtu46(1480, 1500, 1400, 1500), 1400, 'IPv6 next hop smaller');
    assert.equal(ptbMtu46(1480, 1500, 9000, 1300), 1320, 'IPv4 next hop smaller');
  });

  test('MTU 0 (no RFC 1191): greatest plateau below the quoted Total Length', () => {
    assert.equal(ptbMtu46(0, 1500, 9000, 9000), 1492 + 20);
    assert.equal(ptbMtu46(0, 1493, 9000, 9000), 1492 + 20);
    assert.equal(ptbMtu46(0, 1492, 9000, 9000), 1280, 'next plateau 1006 is below the IPv6 minimum');
    assert.equal(ptbMtu46(0, 9000, 9000, 9000), 8166 + 20);
    assert.equal(ptbMtu46(0, 40, 9000, 9000), 1280, 'no plateau at all');
    assert.equal(ptbMtu46(0, 9000, 1500, 1500), 1500);
  });
});

describe('layoutError46: RFC 4884 extensions and the 1280-byte cap', () => {
  const l = newErrorLayout46();

  test('no extension: whole quote translated, cut to 1232 bytes of ICMPv6 body', () => {
    assert.ok(layoutError46(l, 372, 0, 20, true));
    assert.deepEqual(l, { quoted4: 372, quoted6: 392, pad: 0, ext: 0, lengthField: 0 });
    assert.ok(layoutError46(l, 1472, 0, 20, true));
    assert.equal(l.quoted6, 1232);
  });

  test('length equal to the payload means no extension', () => {
    assert.ok(layoutError46(l, 132, 132, 20, true));
    assert.deepEqual(l, { quoted4: 132, quoted6: 152, pad: 0, ext: 0, lengthField: 0 });
  });

  test('length beyond the payload is refused', () => {
    assert.equal(layoutError46(l, 100, 132, 20, true), false);
  });

  test('extension kept, quote aligned to 8 (ib-2 shape)', () => {
    assert.ok(layoutError46(l, 168, 128, 20, true));
    assert.deepEqual(l, { quoted4: 128, quoted6: 144, pad: 0, ext: 40, lengthField: 18 });
  });

  test('extension kept, quote cut so the error is 1280 bytes (ide shape)', () => {
    assert.ok(layoutError46(l, 1220, 580, 20, true));
    assert.deepEqual(l, { quoted4: 580, quoted6: 592, pad: 0, ext: 640, lengthField: 74 });
  });

  test('short quote is zero-padded to 128 bytes (idk shape)', () => {
    assert.ok(layoutError46(l, 68, 28, 20, true));
    assert.deepEqual(l, { quoted4: 28, quoted6: 48, pad: 80, ext: 40, lengthField: 16 });
  });

  test('extension too big for 1280 is removed whole (idh shape)', () => {
    assert.ok(layoutError46(l, 1233, 128, 20, true));
    assert.deepEqual(l, { quoted4: 128, quoted6: 148, pad: 0, ext: 0, lengthField: 0 });
  });

  test('types without a length field drop the extension', () => {
    assert.ok(layoutError46(l, 172, 132, 20, false));
    assert.deepEqual(l, { quoted4: 132, quoted6: 152, pad: 0, ext: 0, lengthField: 0 });
  });

  test('never exceeds 1280 bytes in total', () => {
    for (let avail = 20; avail < 2200; avail += 37) {
      for (const ipl of [0, 28, 128, 132, 576, 1020]) {
        if (!layoutError46(l, avail, ipl, 20, true)) continue;
        assert.ok(48 + l.quoted6 + l.pad + l.ext <= 1280, `avail ${avail} ipl ${ipl}`);
        if (l.ext) assert.equal((l.quoted6 + l.pad) % 8, 0);
      }
    }
  });
});
