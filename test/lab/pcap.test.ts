import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildDadSolicitation } from '../../src/core/nd/dad-probe.js';
import { ndOfFrame, parsePcap, raOfFrame, solicitedNodeOf } from '../../src/lab/pcap.js';

/** A classic little-endian microsecond pcap of Ethernet frames. */
function pcap(frames: Buffer[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(1, 20);
  const recs = frames.map((f, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(1000 + i, 0);
    r.writeUInt32LE(500000, 4);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  return Buffer.concat([head, ...recs]);
}

const eth = (p: Uint8Array) =>
  Buffer.concat([Buffer.from('333300000001020000000001', 'hex'), Buffer.from([0x86, 0xdd]), Buffer.from(p)]);

describe('lab pcap reading', () => {
  test('reads records and ignores a truncated last one', () => {
    const f = eth(buildDadSolicitation('2001:db8:1::1234', new Uint8Array(6).fill(7)));
    const whole = pcap([f, f]);
    const { linkType, frames } = parsePcap(whole.subarray(0, whole.length - 10));
    assert.equal(linkType, 1);
    assert.equal(frames.length, 1);
    assert.equal(frames[0].time, 1000.5);
    assert.throws(() => parsePcap(Buffer.alloc(24)), /not a pcap/);
  });

  test('decodes a DAD probe: source ::, solicited-node destination, nonce option', () => {
    const nonce = Buffer.from('0102030405ff', 'hex');
    const nd = ndOfFrame(eth(buildDadSolicitation('2001:db8:1::1234', nonce)));
    assert.ok(nd);
    assert.equal(nd.type, 135);
    assert.equal(nd.ip.src, '::');
    assert.equal(nd.ip.dst, solicitedNodeOf('2001:db8:1::1234'));
    assert.equal(nd.target, '2001:db8:1::1234');
    assert.deepEqual(
      nd.options.map((o) => [o.type, o.len, o.body.toString('hex')]),
      [[14, 1, '0102030405ff']],
    );
  });

  test('decodes PREF64 from an RA (RFC 8781 §4: scaled lifetime, PLC)', () => {
    const ra = Buffer.alloc(16 + 16);
    ra[0] = 134;
    ra.writeUInt16BE(1800, 6);
    ra[16] = 38;
    ra[17] = 2;
    ra.writeUInt16BE((225 << 3) | 0, 18); // 225 * 8 = 1800 s, PLC 0 = /96
    Buffer.from('20010db80064000000000000', 'hex').copy(ra, 20);
    const ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(ra.length, 4);
    ip[6] = 58;
    ip[7] = 255;
    const r = raOfFrame(eth(Buffer.concat([ip, ra])));
    assert.ok(r);
    assert.equal(r.routerLifetime, 1800);
    assert.deepEqual(r.pref64, { prefix: '2001:db8:64::/96', lifetime: 1800 });
  });
});
