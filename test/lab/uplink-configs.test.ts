/**
 * What the lab's uplink shapes write for their daemons (no namespaces needed): the RA's M and A
 * flags, dnsmasq's lease file as the lab reads it, the DUID the host's dhcpcd uses, dhcpcd's
 * config and the cloud router's filter. The shapes themselves run in test/e2e/clatd-uplinks.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cloudNftRules, dhcpcdConf, dnsmasqArgs, type RaConfig, radvdConf } from '../../src/lab/configs.js';
import { duidLl, parseDnsmasqLeases } from '../../src/lab/dhcp.js';
import { ADDR } from '../../src/lab/topology.js';

const RA: RaConfig = {
  iface: 'br0',
  prefix: '2001:db8:1::',
  prefixLen: 64,
  managed: false,
  autonomous: true,
  rdnss: '2001:db8:1::1',
  pref64: null,
  intervalS: 3,
  routerLifetimeS: 1800,
  pref64LifetimeS: 1800,
};

describe('lab uplink shapes: configuration', () => {
  test('radvd: SLAAC without the M flag; DHCPv6 with M and the prefix on-link but not autonomous', () => {
    const slaac = radvdConf(RA);
    assert.match(slaac, /AdvManagedFlag off;/);
    assert.match(slaac, /prefix 2001:db8:1::\/64 \{ AdvOnLink on; AdvAutonomous on; \};/);
    const dhcp = radvdConf({ ...RA, managed: true, autonomous: false });
    assert.match(dhcp, /AdvManagedFlag on;/);
    assert.match(dhcp, /prefix 2001:db8:1::\/64 \{ AdvOnLink on; AdvAutonomous off; \};/);
  });

  test("dnsmasq's lease file: the server's DUID line is skipped, each lease gives IAID, address, client DUID", () => {
    const text = [
      'duid 00:01:00:01:32:a9:f3:4e:d6:14:b0:82:7e:fc',
      '1796687098 2 2001:db8:1::a5 * 00:03:00:01:02:00:5e:00:53:01',
      '1796687098 1 2001:db8:1::a6 host1 00:03:00:01:02:00:5e:00:53:01',
      '',
      'garbage line',
    ].join('\n');
    assert.deepEqual(parseDnsmasqLeases(text), [
      { expires: 1796687098, iaid: 2, address: '2001:db8:1::a5', duid: '00:03:00:01:02:00:5e:00:53:01' },
      { expires: 1796687098, iaid: 1, address: '2001:db8:1::a6', duid: '00:03:00:01:02:00:5e:00:53:01' },
    ]);
    assert.deepEqual(parseDnsmasqLeases(''), []);
  });

  test("the host's DUID is a DUID-LL of its MAC (type 3, hardware type 1)", () => {
    assert.equal(duidLl('02:00:5E:00:53:01'), '00:03:00:01:02:00:5e:00:53:01');
  });

  test('dhcpcd: DHCPv6 only, RAs left to the kernel, one IA_NA, or two in the cloud', () => {
    const one = dhcpcdConf(1);
    assert.match(one, /^ipv6only$/m);
    assert.match(one, /^noipv6rs$/m);
    assert.deepEqual(one.match(/ia_na \d/g), ['ia_na 1']);
    assert.deepEqual(dhcpcdConf(2).match(/ia_na \d/g), ['ia_na 1', 'ia_na 2']);
  });

  test('dnsmasq: DHCPv6 only (no DNS, no config file, no RAs), on the bridge, leases in the given file', () => {
    const args = dnsmasqArgs('/tmp/x/leases', ADDR.cloudLeases);
    for (const a of ['--port=0', '--conf-file=/dev/null', '--interface=br0', '--dhcp-leasefile=/tmp/x/leases']) {
      assert.ok(args.includes(a), `${a} missing: ${args.join(' ')}`);
    }
    assert.ok(args.includes('--dhcp-range=2001:db8:1::a5,2001:db8:1::a6,64,1h'));
    assert.ok(!args.some((a) => a.startsWith('--enable-ra')));
  });

  test('the cloud router drops what it would forward to the /64 except to the leases', () => {
    const nft = cloudNftRules(ADDR.cloudLeases);
    assert.match(nft, /elements = \{ 2001:db8:1::a5, 2001:db8:1::a6 \}/);
    assert.match(nft, /hook forward/);
    assert.match(nft, /ip6 daddr 2001:db8:1::\/64 ip6 daddr != @leased counter drop/);
  });
});
