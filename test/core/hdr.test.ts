/**
 * The one writer per header (hdr/): what each writes reads back through the getters, the IPv4
 * checksum summed from the field values equals the one summed from the bytes, and signed and
 * unsigned forms of the same address or word write the same bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ICMP_HEADER_LENGTH, icmpWriteHeader } from '../../src/core/hdr/icmp.js';
import {
  ipv4ChecksumOk,
  ipv4Dst,
  ipv4FlagsFragment,
  ipv4Id,
  ipv4Protocol,
  ipv4SetChecksum,
  ipv4Src,
  ipv4Tos,
  ipv4TotalLength,
  ipv4Ttl,
  ipv4WriteHeader,
} from '../../src/core/hdr/ipv4.js';
import { hopLimit6, ipv6WriteHeader, nextHeader6, payloadLength6, trafficClass6 } from '../../src/core/hdr/ipv6.js';
import { FRAG_HDR_LEN, fragWriteHeader } from '../../src/core/hdr/ipv6-ext.js';

const u8 = fc.integer({ min: 0, max: 255 });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.nat({ max: 0xffffffff });

test('ipv4WriteHeader: fields read back, checksum equals the one summed from the bytes', () => {
  fc.assert(
    fc.property(
      u8,
      u16,
      u16,
      u16,
      u8,
      u8,
      u32,
      u32,
      fc.boolean(),
      (tos, len, id, flags, ttl, proto, src, dst, signed) => {
        const b = new Uint8Array(24);
        const at = 3;
        const s = signed ? src | 0 : src;
        const d = signed ? dst | 0 : dst;
        ipv4WriteHeader(b, at, tos, len, (id << 16) | flags, ttl, proto, s, d);
        assert.ok(ipv4ChecksumOk(b, at));
        const again = b.slice();
        ipv4SetChecksum(again, at);
        assert.deepEqual(again, b);
        assert.deepEqual(
          [ipv4Tos(b, at), ipv4TotalLength(b, at), ipv4Id(b, at), ipv4FlagsFragment(b, at), ipv4Ttl(b, at)],
          [tos, len, id, flags, ttl],
        );
        assert.deepEqual([ipv4Protocol(b, at), ipv4Src(b, at), ipv4Dst(b, at)], [proto, src, dst]);
        assert.equal(b[at], 0x45);
      },
    ),
    { numRuns: 500 },
  );
});

test('ipv6WriteHeader: version 6, traffic class split across the first two bytes, flow label 0', () => {
  fc.assert(
    fc.property(u8, u16, u8, u8, (tc, plen, next, hop) => {
      const b = new Uint8Array(40).fill(0xee);
      ipv6WriteHeader(b, 0, tc, plen, next, hop);
      assert.equal(b[0] >>> 4, 6);
      assert.deepEqual(
        [trafficClass6(b, 0), payloadLength6(b, 0), nextHeader6(b, 0), hopLimit6(b, 0)],
        [tc, plen, next, hop],
      );
      assert.equal(((b[1] & 0x0f) << 16) | (b[2] << 8) | b[3], 0, 'flow label');
      assert.ok(
        b.subarray(8).every((x) => x === 0xee),
        'addresses left to the caller',
      );
    }),
  );
});

test('fragWriteHeader: next header, offset and M, 32-bit Identification (signed or not)', () => {
  fc.assert(
    fc.property(u8, fc.integer({ min: 0, max: 0x1fff }), fc.boolean(), u32, (next, units, more, id) => {
      const b = new Uint8Array(FRAG_HDR_LEN).fill(0xee);
      const c = new Uint8Array(FRAG_HDR_LEN);
      fragWriteHeader(b, 0, next, units << 3, more, id);
      fragWriteHeader(c, 0, next, units << 3, more, id | 0);
      assert.deepEqual(b, c);
      assert.equal(b[0], next);
      assert.equal(b[1], 0);
      assert.equal(((b[2] << 8) | b[3]) >>> 3, units);
      assert.equal(b[3] & 1, more ? 1 : 0);
      assert.equal(b[3] & 6, 0, 'reserved bits');
      assert.equal(((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0, id);
    }),
  );
});

test('icmpWriteHeader: type, code, zero checksum, the 32-bit rest (signed or not)', () => {
  fc.assert(
    fc.property(u8, u8, u32, (type, code, rest) => {
      const b = new Uint8Array(ICMP_HEADER_LENGTH).fill(0xee);
      const c = new Uint8Array(ICMP_HEADER_LENGTH);
      icmpWriteHeader(b, 0, type, code, rest);
      icmpWriteHeader(c, 0, type, code, rest | 0);
      assert.deepEqual(b, c);
      assert.deepEqual([b[0], b[1], b[2], b[3]], [type, code, 0, 0]);
      assert.equal(((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0, rest);
    }),
  );
});
