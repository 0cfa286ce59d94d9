/** The `v4Sources` setting: a CLAT translates only its own IPv4 address, a SIIT any address. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Translator } from '../../../src/core/xlat/translator.js';
import { ipv4Packet, PROTO_UDP } from '../../pkt/build.js';

const base = { pool6: '2001:db8:64::/96', eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1:2::4/128' }] };
const udp = (src: string) =>
  ipv4Packet({ src, dst: '198.51.100.10' }, { proto: PROTO_UDP, sport: 5000, dport: 53, payload: new Uint8Array(8) });

test("v4Sources 'eam' drops other sources with a named reason and translates the EAM address", () => {
  const t = new Translator({ ...base, v4Sources: 'eam' });
  const other = t.translate(udp('192.0.0.5'));
  assert.equal(other.drop, 'v4_src_not_local');
  assert.equal(other.forward.length + other.back.length, 0);
  const own = t.translate(udp('192.0.0.4'));
  assert.equal(own.drop, undefined);
  assert.equal(own.forward.length, 1);
});

test("v4Sources 'any' (the default) embeds any source under pool6, as SIIT does", () => {
  const t = new Translator(base);
  const r = t.translate(udp('192.0.0.5'));
  assert.equal(r.drop, undefined);
  assert.deepEqual([...r.forward[0].subarray(20, 24)], [0xc0, 0, 0, 5]);
});

test('v4Sources rejects unknown values', () => {
  assert.throws(() => new Translator({ ...base, v4Sources: 'some' as 'any' }), /v4Sources must be one of any, eam/);
});
