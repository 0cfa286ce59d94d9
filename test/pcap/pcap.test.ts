import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  ipPayload,
  LINKTYPE_ETHERNET,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_RAW,
  PcapError,
  readPcap,
  writePcap,
} from '../../src/pcap/pcap.js';

test('write then read gives the same packets and timestamps', () => {
  const pkts = [
    { tsUs: 1_700_000_000_123_456, data: Uint8Array.of(0x45, 1, 2, 3) },
    { tsUs: 1_700_000_001_000_001, data: new Uint8Array(1500).fill(7) },
  ];
  const f = readPcap(writePcap(pkts));
  assert.equal(f.linktype, LINKTYPE_RAW);
  assert.equal(f.records.length, 2);
  for (let i = 0; i < 2; i++) {
    assert.equal(f.records[i].tsUs, pkts[i].tsUs);
    assert.deepEqual(f.records[i].data, pkts[i].data);
  }
});

test('big-endian and nanosecond files are read', () => {
  const b = new Uint8Array(24 + 16 + 4);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0xa1b23c4d, false);
  dv.setUint16(4, 2, false);
  dv.setUint16(6, 4, false);
  dv.setUint32(16, 65535, false);
  dv.setUint32(20, LINKTYPE_ETHERNET, false);
  dv.setUint32(24, 10, false);
  dv.setUint32(28, 5_000, false); // 5000 ns = 5 µs
  dv.setUint32(32, 4, false);
  dv.setUint32(36, 4, false);
  const f = readPcap(b);
  assert.equal(f.linktype, LINKTYPE_ETHERNET);
  assert.equal(f.records[0].tsUs, 10_000_005);
});

test('Ethernet, VLAN and Linux cooked frames yield their IP payload; ARP yields null', () => {
  const ip = Uint8Array.of(0x45, 0, 0, 20);
  const eth = Uint8Array.of(...new Array(12).fill(0), 0x08, 0x00, ...ip);
  assert.deepEqual(ipPayload(LINKTYPE_ETHERNET, eth), ip);
  const vlan = Uint8Array.of(...new Array(12).fill(0), 0x81, 0x00, 0, 5, 0x86, 0xdd, ...ip);
  assert.deepEqual(ipPayload(LINKTYPE_ETHERNET, vlan), ip);
  const arp = Uint8Array.of(...new Array(12).fill(0), 0x08, 0x06, 1, 2);
  assert.equal(ipPayload(LINKTYPE_ETHERNET, arp), null);
  const sll = Uint8Array.of(...new Array(14).fill(0), 0x08, 0x00, ...ip);
  assert.deepEqual(ipPayload(LINKTYPE_LINUX_SLL, sll), ip);
  assert.throws(() => ipPayload(147, ip), /unsupported link type 147/);
});

test('malformed files give a PcapError, never another exception', () => {
  assert.throws(() => readPcap(new Uint8Array(3)), PcapError);
  assert.throws(() => readPcap(Uint8Array.of(0x0a, 0x0d, 0x0d, 0x0a, ...new Array(20).fill(0))), /pcapng/);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
      const b = writePcap([{ tsUs: 0, data: Uint8Array.of(1, 2, 3) }]);
      const mixed = new Uint8Array(b.length + junk.length);
      mixed.set(b);
      mixed.set(junk, b.length);
      try {
        readPcap(mixed);
      } catch (e) {
        assert.ok(e instanceof PcapError, String(e));
      }
    }),
  );
});

test('a capture still being written: partialTail ignores the cut-off last record', () => {
  const full = writePcap([
    { tsUs: 1, data: Uint8Array.of(1, 2, 3, 4) },
    { tsUs: 2, data: Uint8Array.of(5, 6, 7, 8) },
  ]);
  for (const cut of [full.length - 2, full.length - 14]) {
    const partial = full.subarray(0, cut);
    assert.throws(() => readPcap(partial), /truncated record/);
    assert.equal(readPcap(partial, { partialTail: true }).records.length, 1);
  }
});
