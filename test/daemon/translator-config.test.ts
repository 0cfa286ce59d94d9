/**
 * The translator settings the daemon derives for a host CLAT: only the CLAT's own IPv4 address is
 * translated, and errors the translator generates toward the host come from 192.0.0.8 (RFC 7600):
 * the kernel drops packets that arrive on the TUN from its own address as martians.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { translatorConfig } from '../../src/daemon/translator-config.js';
import { checksumProblems, ipv4Packet, ipv6Packet, PROTO_TCP, PROTO_UDP } from '../pkt/build.js';

const params = {
  pref64: parsePrefix6('2001:db8:64::/96'),
  clat4: '192.0.0.4',
  clat6: '2001:db8:1:0:1234:5678:9abc:def0',
  mtu: 1472,
  translator: {
    trafficClass: 'copy' as const,
    udpZeroChecksum: 'compute' as const,
    icmpSrcV4: '192.0.0.8',
    lowestIpv6Mtu: 1280,
    wkpGlobalOnly: true,
  },
};

const udp = (src: string, ttl = 64) =>
  ipv4Packet(
    { src, dst: '198.51.100.10', ttl },
    { proto: PROTO_UDP, sport: 4000, dport: 7, payload: new Uint8Array(16) },
  );

test('only the CLAT IPv4 address is translated', () => {
  const t = new Translator(translatorConfig(params));
  assert.equal(t.translate(udp('192.0.0.4')).forward.length, 1);
  assert.equal(t.translate(udp('192.0.0.5')).drop, 'v4_src_not_local');
});

test('Time Exceeded generated for the host comes from 192.0.0.8, not from the host itself', () => {
  const t = new Translator(translatorConfig(params));
  const r = t.translate(udp('192.0.0.4', 1));
  assert.equal(r.drop, 'v4_ttl_expired');
  assert.equal(r.back.length, 1);
  const err = r.back[0];
  assert.equal(err[9], 1, 'ICMP');
  assert.deepEqual([...err.subarray(12, 16)], [192, 0, 0, 8]);
  assert.deepEqual([...err.subarray(16, 20)], [192, 0, 0, 4]);
  assert.equal(err[20], 11, 'Time Exceeded');
});

test('a TCP super-packet handed over whole by the packet socket is translated, not refused as too big', () => {
  const t = new Translator(translatorConfig(params));
  const big = ipv6Packet(
    { src: '2001:db8:64::c633:640a', dst: params.clat6 },
    { proto: PROTO_TCP, sport: 80, dport: 40000, payload: new Uint8Array(60000).fill(9) },
  );
  const r = t.translate(big);
  assert.equal(r.drop, undefined);
  assert.equal(r.forward.length, 1);
  assert.equal(r.forward[0].length, big.length - 20);
  assert.deepEqual(checksumProblems(r.forward[0]), []);
});
