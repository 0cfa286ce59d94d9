/** The package's main entry: the documented library surface works as the README shows. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as clatd from '../src/index.js';

test('README example: a CLAT translator from the package entry', () => {
  const { Translator, formatIPv6, generateClatAddress, isChecksumNeutral } = clatd;
  const clat6 = generateClatAddress({ prefix64: '2001:db8:1:2::/64', pref64: '64:ff9b::/96', ipv4: '192.0.0.4' });
  assert.ok(isChecksumNeutral({ ipv6: clat6, pref64: '64:ff9b::/96', ipv4: '192.0.0.4' }));
  const t = new Translator({
    pool6: '64:ff9b::/96',
    eam: [{ v4: '192.0.0.4/32', v6: `${clat6}/128` }],
    wkpGlobalOnly: false,
  });
  // An IPv4 UDP header-only packet 192.0.0.4 -> 192.0.2.1.
  const p = Uint8Array.from(
    Buffer.from('4500001c00004000401100000000000000000000303900350008 0000'.replace(/ /g, ''), 'hex'),
  );
  p.set([192, 0, 0, 4], 12);
  p.set([192, 0, 2, 1], 16);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (p[i] << 8) | p[i + 1];
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  p[10] = (~s >>> 8) & 0xff;
  p[11] = ~s & 0xff;
  const r = t.translate(p);
  assert.equal(r.drop, undefined);
  assert.equal(formatIPv6(r.forward[0], 24), '64:ff9b::c000:201');
  assert.equal(formatIPv6(r.forward[0], 8), clat6);
});

test('every drop reason has a name and an explanation', () => {
  const names = new Set<string>();
  for (let d = 0; d < clatd.Drop.COUNT; d++) {
    const info = (clatd.DROP_INFO as Record<number, clatd.DropInfo>)[d];
    assert.ok(info?.name && info.doc, `drop reason ${d} lacks name or doc`);
    assert.equal(clatd.dropName(d), info.name);
    assert.ok(!names.has(info.name), `duplicate name ${info.name}`);
    names.add(info.name);
  }
});
