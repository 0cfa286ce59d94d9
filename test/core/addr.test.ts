import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatIPv4, mask4, parseIPv4 } from '../../src/core/addr/ipv4.js';
import { formatIPv6, matchPrefix6, parseIPv6, solicitedNode } from '../../src/core/addr/ipv6.js';
import { parsePrefix4, parsePrefix6 } from '../../src/core/addr/prefix.js';
import { embed, extract, RFC6052_LENGTHS, validateRfc6052Prefix } from '../../src/core/addr/rfc6052.js';
import { AddressError } from '../../src/core/errors.js';

describe('IPv4 text', () => {
  test('round trip', () => {
    assert.equal(parseIPv4('192.0.2.33'), 0xc0000221);
    assert.equal(formatIPv4(0xc0000221), '192.0.2.33');
    assert.equal(formatIPv4(parseIPv4('255.255.255.255')), '255.255.255.255');
  });
  for (const bad of ['1.2.3', '1.2.3.256', '01.2.3.4', '1.2.3.4 ', '', 'a.b.c.d']) {
    test(`rejects "${bad}"`, () => assert.throws(() => parseIPv4(bad), AddressError));
  }
  test('mask4', () => {
    assert.equal(mask4(0), 0);
    assert.equal(mask4(24), 0xffffff00);
    assert.equal(mask4(32), 0xffffffff);
  });
});

describe('IPv6 text', () => {
  const cases: [string, string][] = [
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['fe80::', 'fe80::'],
  ];
  for (const [input, canon] of cases)
    test(`${input} -> ${canon}`, () => assert.equal(formatIPv6(parseIPv6(input)), canon));
  for (const bad of ['1::2::3', '12345::', ':::', '1:2:3:4:5:6:7:8:9', 'g::', '', 'fe80::1%eth0', '::1.2.3']) {
    test(`rejects "${bad}"`, () => assert.throws(() => parseIPv6(bad), AddressError));
  }
  test('solicited-node group', () => {
    const t = parseIPv6('2401:fa00:480:13d:2a65:4e6a:7554:ae21');
    assert.equal(formatIPv6(solicitedNode(t)), 'ff02::1:ff54:ae21');
  });
  test('matchPrefix6', () => {
    const p = parseIPv6('2001:db8:100::');
    assert.ok(matchPrefix6(parseIPv6('2001:db8:1c0:2::'), 0, p, 40));
    assert.ok(matchPrefix6(parseIPv6('2001:db8:200::'), 0, p, 40) === false);
    assert.ok(matchPrefix6(parseIPv6('2001:db8:100:ff::'), 0, p, 40));
    assert.ok(matchPrefix6(parseIPv6('2001:db8:300::'), 0, p, 39) === false);
  });
});

describe('prefixes', () => {
  test('parse', () => {
    assert.deepEqual(parsePrefix4('192.0.0.0/29'), { addr: 0xc0000000, len: 29 });
    assert.equal(parsePrefix6('64:ff9b::/96').len, 96);
    assert.throws(() => parsePrefix4('192.0.0.4/29'), /host bits/);
    assert.equal(parsePrefix4('192.0.0.4/29', true).addr, 0xc0000000);
    assert.throws(() => parsePrefix6('2001:db8::1/64'), /host bits/);
    assert.throws(() => parsePrefix6('2001:db8::/129'), AddressError);
  });
});

describe('RFC 6052', () => {
  // RFC 6052 §2.4, the table of examples for 192.0.2.33.
  const examples: [string, string][] = [
    ['2001:db8::/32', '2001:db8:c000:221::'],
    ['2001:db8:100::/40', '2001:db8:1c0:2:21::'],
    ['2001:db8:122::/48', '2001:db8:122:c000:2:2100::'],
    ['2001:db8:122:300::/56', '2001:db8:122:3c0:0:221::'],
    ['2001:db8:122:344::/64', '2001:db8:122:344:c0:2:2100:0'],
    ['2001:db8:122:344::/96', '2001:db8:122:344::c000:221'],
    ['64:ff9b::/96', '64:ff9b::c000:221'],
  ];
  const v4 = parseIPv4('192.0.2.33');
  for (const [prefix, addr] of examples) {
    test(`${prefix} embeds 192.0.2.33 as ${addr}`, () => {
      const p = parsePrefix6(prefix);
      assert.equal(formatIPv6(embed(p, v4)), addr);
      assert.equal(extract(parseIPv6(addr), 0, p.len), v4);
    });
  }
  test('lengths and u octet', () => {
    assert.deepEqual(RFC6052_LENGTHS, [32, 40, 48, 56, 64, 96]);
    assert.throws(() => validateRfc6052Prefix(parsePrefix6('2001:db8::/80')), /must be 32/);
    assert.throws(() => validateRfc6052Prefix(parsePrefix6('2001:db8:0:0:100::/96')), /u octet/);
  });
});
