import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatIPv6, parseIPv6 } from '../../../src/core/addr/ipv6.js';
import { AddressError } from '../../../src/core/errors.js';
import {
  buildDadSolicitation,
  DAD_FRAME_LEN,
  DAD_PACKET_LEN,
  frameDadSolicitation,
} from '../../../src/core/nd/dad-probe.js';
import { parseNeighborMessage } from '../../../src/core/nd/nd-parse.js';
import { refSum } from './build.js';

const TARGET = '2401:fa00:480:13d:2a65:4e6a:7554:ae21';
const NONCE = new Uint8Array([0x89, 0x1b, 0xea, 0xef, 0x12, 0x63]);

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test("Android's DAD probe, byte for byte (research §1.3, §1.5): checksum 0x77b6", () => {
  const p = buildDadSolicitation(TARGET, NONCE);
  assert.equal(p.length, 72);
  assert.equal(DAD_PACKET_LEN, 72);
  const expected =
    '60000000' + // version 6, TC 0, flow 0
    '0020' + // payload length 32
    '3a' + // next header 58
    'ff' + // hop limit 255
    '00000000000000000000000000000000' + // source ::
    'ff0200000000000000000001ff54ae21' + // ff02::1:ff54:ae21
    '87' + // type 135
    '00' + // code 0
    '77b6' + // checksum
    '00000000' + // reserved
    '2401fa000480013d2a654e6a7554ae21' + // target
    '0e01' + // Nonce option, 1 unit
    '891beaef1263';
  assert.equal(hex(p), expected);
});

test('the target may be 16 bytes, and the probe can be written in place', () => {
  const buf = new Uint8Array(100).fill(0xaa);
  const out = buildDadSolicitation(parseIPv6(TARGET), NONCE, buf, 10);
  assert.equal(out, buf);
  assert.equal(hex(buf.subarray(10, 82)), hex(buildDadSolicitation(TARGET, NONCE)));
  assert.ok(buf.subarray(0, 10).every((x) => x === 0xaa));
  assert.ok(buf.subarray(82).every((x) => x === 0xaa));
});

test('bad inputs are refused with AddressError', () => {
  assert.throws(() => buildDadSolicitation(TARGET, new Uint8Array(5)), AddressError);
  assert.throws(() => buildDadSolicitation(new Uint8Array(4), NONCE), AddressError);
  assert.throws(() => buildDadSolicitation('not-an-address', NONCE), AddressError);
  assert.throws(() => buildDadSolicitation(TARGET, NONCE, new Uint8Array(71)), /72 bytes/);
});

test('the Ethernet frame: 33:33:ff:54:ae:21, our MAC, 0x86dd, then the same 72 bytes', () => {
  const f = frameDadSolicitation(TARGET, NONCE, '02:00:5e:10:00:01');
  assert.equal(f.length, DAD_FRAME_LEN);
  assert.equal(f.length, 86);
  assert.equal(hex(f.subarray(0, 6)), '3333ff54ae21');
  assert.equal(hex(f.subarray(6, 12)), '02005e100001');
  assert.equal(hex(f.subarray(12, 14)), '86dd');
  assert.equal(hex(f.subarray(14)), hex(buildDadSolicitation(TARGET, NONCE)));
  assert.equal(hex(frameDadSolicitation(TARGET, NONCE, new Uint8Array([2, 0, 0x5e, 0x10, 0, 1]))), hex(f));
  assert.throws(() => frameDadSolicitation(TARGET, NONCE, '02:00:5e:10:00'), AddressError);
});

test('every probe verifies (RFC 1071 oracle) and parses back as a valid DAD solicitation', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((t) => t[0] !== 0xff),
      fc.uint8Array({ minLength: 6, maxLength: 6 }),
      (target, nonce) => {
        const p = buildDadSolicitation(target, nonce);
        const pseudo = new Uint8Array(40);
        pseudo.set(p.subarray(8, 40), 0);
        pseudo[35] = 32;
        pseudo[39] = 58;
        assert.equal(refSum([pseudo, p.subarray(40)]), 0xffff);
        const m = parseNeighborMessage(p);
        assert.ok(m.ok && m.kind === 'ns');
        assert.equal(formatIPv6(m.target), formatIPv6(target));
        assert.equal(formatIPv6(m.source), '::');
        assert.deepEqual(m.nonce, nonce);
        assert.equal(m.sourceLinkAddress, null);
        assert.deepEqual(m.destination.subarray(13), target.subarray(13));
      },
    ),
  );
});
