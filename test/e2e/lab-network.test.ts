/**
 * The lab network on its own, without clatd: every part a CLAT relies on works through the real
 * kernel and the real peers (SLAAC, RA with PREF64, DNS64, the NAT64 toward an IPv4-only server,
 * ICMPv6 errors from the router, a PREF64 change). If these fail, the clatd-*.test.ts failures
 * are the lab's fault, not the daemon's.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ADDR, type Lab, raOfFrame, sleep, waitFor } from '../../src/lab/index.js';
import { labSuite, nat64, pingStats } from './helpers.js';

/** Captures the next RA on the host's uplink (a Router Solicitation asks for one at once). */
async function nextRa(lab: Lab) {
  const cap = await lab.capture(lab.names.host, lab.iface.host, 'icmp6 and ip6[40] == 134');
  try {
    await lab.exec(lab.names.host, ['rdisc6', '-1', '-r', '1', '-w', '1000', lab.iface.host], { allowFail: true });
    // The newest RA: the answer to the solicitation, sent after any reconfiguration.
    const ra = await waitFor(
      () =>
        cap
          .frames()
          .map((f) => raOfFrame(f.data))
          .filter((r) => r !== null)
          .at(-1),
      8000,
      100,
    );
    assert.ok(ra, 'no Router Advertisement reached the host within 8 s');
    return ra;
  } finally {
    await cap.stop();
  }
}

describe('lab network: PREF64 in the RA', () => {
  const suite = labSuite();

  test('the host gets its address by SLAAC and a default route from the RA, and has no IPv4', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const h = lab.names.host;
    assert.match((await lab.hostAddress()) ?? '', /^2001:db8:1:0:/);
    const r6 = await lab.exec(h, ['ip', '-6', 'route', 'show', 'default']);
    assert.match(r6.stdout, /default via fe80::\S+ dev eth0 proto ra/);
    const a4 = await lab.exec(h, ['ip', '-4', '-o', 'addr', 'show']);
    assert.deepEqual(
      a4.stdout.split('\n').filter((l) => l.trim() && !/ lo /.test(l)),
      [],
      'the host has IPv4 addresses besides loopback',
    );
    const r4 = await lab.exec(h, ['ip', '-4', 'route', 'show', 'table', 'all']);
    assert.deepEqual(
      r4.stdout.split('\n').filter((l) => l.trim() && !/\bdev lo\b/.test(l)),
      [],
      'the host has IPv4 routes',
    );
  });

  test('the RA carries the PREF64 option with 2001:db8:64::/96 (RFC 8781)', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const ra = await nextRa(lab);
    assert.ok(ra.routerLifetime > 0);
    assert.deepEqual(ra.pref64 && { prefix: ra.pref64.prefix }, { prefix: ADDR.pref64 });
    assert.ok((ra.pref64?.lifetime ?? 0) > 0, 'PREF64 lifetime is zero');
    // RDNSS (RFC 8106) and a /64 prefix information option with A set.
    assert.ok(ra.options.some((o) => o.type === 25));
    assert.ok(ra.options.some((o) => o.type === 3 && o.body[0] === 64 && (o.body[1] & 0x40) !== 0));
  });

  test('DNS64 synthesises AAAA for ipv4only.arpa and server.lab (RFC 7050, RFC 6147)', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const h = lab.names.host;
    const r = await lab.probe(h, ['dns', 'ipv4only.arpa', ADDR.routerLan]);
    assert.deepEqual(
      ((r.answers as string[]) ?? []).sort(),
      ['2001:db8:64::c000:aa', '2001:db8:64::c000:ab'],
      JSON.stringify(r),
    );
    // The host's system resolver (resolv.conf from the lab) reaches the same DNS64.
    const g = await lab.exec(h, ['getent', 'ahostsv6', 'server.lab'], { allowFail: true });
    assert.match(g.stdout, /^2001:db8:64::c633:640a\s/m, g.stdout + g.stderr);
  });

  test('native IPv6 to the NAT64 address reaches the IPv4-only server (ping, HTTP, UDP)', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const h = lab.names.host;
    const dst = nat64(lab, ADDR.server);
    const ping = await lab.exec(h, ['ping', '-6', '-c', '3', '-i', '0.2', '-W', '2', dst], { allowFail: true });
    assert.equal(pingStats(ping.stdout).received, 3, ping.stdout);
    const http = await lab.probe(h, ['http', `http://[${dst}]/blob.bin`]);
    assert.equal(http.sha256, lab.blobSha256, JSON.stringify(http));
    assert.equal(http.bytes, lab.blobBytes);
    const udp = await lab.probe(h, ['udp', dst, String(ADDR.udpEchoPort), '1200']);
    assert.equal(udp.same, true, JSON.stringify(udp));
  });

  test('the router sends ICMPv6 errors from its own address (traceroute6 through the NAT64)', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const dst = nat64(lab, ADDR.server);
    const tr = await lab.exec(lab.names.host, ['traceroute', '-6', '-n', '-q', '1', '-w', '1', '-m', '6', dst], {
      allowFail: true,
    });
    const hops = tr.stdout.split('\n').slice(1);
    assert.match(hops[0] ?? '', /^\s*1\s+2001:db8:1::1\s/, tr.stdout);
    assert.ok(
      hops.some((l) => l.includes('2001:db8:64::c633:640a')),
      `traceroute did not reach ${dst}:\n${tr.stdout}`,
    );
  });

  test('a 1280-byte link toward the NAT64 draws Packet Too Big from the router', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const h = lab.names.host;
    const dst = nat64(lab, ADDR.server);
    await lab.setNat64Mtu(1280);
    try {
      const p = await lab.exec(h, ['ping', '-6', '-c', '2', '-i', '0.3', '-W', '1', '-M', 'do', '-s', '1300', dst], {
        allowFail: true,
      });
      assert.match(p.stdout + p.stderr, /mtu[ =]+1280/i, p.stdout + p.stderr);
      const small = await lab.exec(h, ['ping', '-6', '-c', '1', '-W', '2', '-s', '1200', dst], { allowFail: true });
      assert.equal(pingStats(small.stdout).received, 1, small.stdout);
    } finally {
      await lab.setNat64Mtu(1500);
      await lab.exec(h, ['ip', '-6', 'route', 'flush', 'cache'], { allowFail: true });
    }
  });

  test('a PREF64 change moves the RA, the DNS64 and the NAT64 to 2001:db8:65::/96', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    const h = lab.names.host;
    await lab.setPref64(ADDR.pref64Alt);
    const ra = await nextRa(lab);
    assert.equal(ra.pref64?.prefix, ADDR.pref64Alt);
    const r = await lab.probe(h, ['dns', 'server.lab', ADDR.routerLan]);
    assert.deepEqual(r.answers, ['2001:db8:65::c633:640a'], JSON.stringify(r));
    await sleep(100);
    const ping = await lab.exec(h, ['ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', '2001:db8:65::198.51.100.10'], {
      allowFail: true,
    });
    assert.equal(pingStats(ping.stdout).received, 2, ping.stdout);
  });
});

describe('lab network: no PREF64 in the RA (DNS64 only)', () => {
  const suite = labSuite({ raPref64: false, servers: false });

  test('radvd advertises the /64 without PREF64, and DNS64 still tells the prefix', async (t) => {
    const lab = suite.ready(t);
    if (!lab) return;
    assert.equal(lab.raDaemon, 'radvd');
    const ra = await nextRa(lab);
    assert.equal(ra.pref64, null);
    assert.ok(
      ra.options.some((o) => o.type === 3),
      'no prefix information option',
    );
    const r = await lab.probe(lab.names.host, ['dns', 'ipv4only.arpa', ADDR.routerLan]);
    assert.ok((r.answers as string[] | undefined)?.includes('2001:db8:64::c000:aa'), JSON.stringify(r));
  });
});
