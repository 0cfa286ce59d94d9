/**
 * `clatd run` with no flags in the lab's host: IPv4 traffic to the IPv4-only server (ping, a 4 MiB
 * HTTP download, UDP echo), counters, PREF64 learnt from the RA, traceroute through the IPv6
 * routers, and malformed packets on both sides.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ADDR, summarize } from '../../src/lab/index.js';
import { clatdSuite, nat64, pingStats, traceroute } from './helpers.js';
import { badIPv4, badIPv6, ether6 } from './packets.js';

describe('clatd in the lab: IPv4 traffic', () => {
  const suite = clatdSuite();

  test('IPv4 ping reaches the IPv4-only server', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const p = await r.lab.exec(r.lab.names.host, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ADDR.server], {
      allowFail: true,
    });
    assert.equal(pingStats(p.stdout).received, 3, p.stdout + p.stderr);
  });

  test('an HTTP download of 4 MiB arrives with the right SHA-256', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const h = await r.lab.probe(r.lab.names.host, ['http', `http://${ADDR.server}/blob.bin`]);
    assert.equal(h.bytes, r.lab.blobBytes, JSON.stringify(h));
    assert.equal(h.sha256, r.lab.blobSha256);
  });

  test('UDP echo comes back whole', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    for (const size of [1, 512, 1400]) {
      const u = await r.lab.probe(r.lab.names.host, ['udp', ADDR.server, String(ADDR.udpEchoPort), String(size)]);
      assert.equal(u.same, true, `${size} bytes: ${JSON.stringify(u)}`);
    }
  });

  test('status shows PREF64 from the RA, the addresses, and counters that move', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const s1 = await r.lab.clatdStatus(r.clatd);
    assert.ok(s1, 'clatd status --json failed');
    assert.equal(s1.pref64, ADDR.pref64);
    assert.equal(s1.pref64Source, 'ra');
    assert.match(String(s1.clat6), /^2001:db8:1:0:/);
    assert.match(String(s1.clat4), /^192\.0\.0\.[1-7]$/);
    await r.lab.exec(r.lab.names.host, ['ping', '-c', '5', '-i', '0.1', '-W', '2', ADDR.server], { allowFail: true });
    const s2 = await r.lab.clatdStatus(r.clatd);
    assert.ok(s2, 'clatd status --json failed after the pings');
    const a = summarize(s1);
    const b = summarize(s2);
    assert.ok(b.packets46 - a.packets46 >= 5, `4→6 counter moved by ${b.packets46 - a.packets46}`);
    assert.ok(b.packets64 - a.packets64 >= 5, `6→4 counter moved by ${b.packets64 - a.packets64}`);
  });

  test('traceroute shows the IPv6 routers, the untranslatable one as 192.0.0.8', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const { hops, out } = await traceroute(r.lab, r.lab.names.host);
    // The router's own IPv6 address is outside the NAT64 prefix: RFC 7915 §5.2 / RFC 6791.
    assert.ok(hops.includes('192.0.0.8'), `no hop shown as 192.0.0.8:\n${out}`);
    // TAYGA's IPv4 address (reached as PREF64 + 192.0.2.1) translates back to itself.
    assert.ok(hops.includes(ADDR.taygaV4), `no hop shown as TAYGA's ${ADDR.taygaV4}:\n${out}`);
    assert.equal(hops.filter(Boolean).at(-1), ADDR.server, out);
  });

  test('malformed packets on both sides are dropped and counted, and traffic keeps flowing', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const { lab, clatd } = r;
    const s1 = await lab.clatdStatus(clatd);
    assert.ok(s1, 'clatd status --json failed');
    const clat4 = String(s1.clat4);
    const clat6 = String(s1.clat6);
    const v4 = badIPv4(clat4, ADDR.server);
    const v6 = badIPv6(nat64(lab, ADDR.server), clat6);
    // IPv4 side: straight into clatd's TUN, as if the host's stack had sent them.
    await lab.inject(
      lab.names.host,
      `v4-${lab.iface.host}`,
      v4.map((b) => b.bytes),
    );
    // IPv6 side: from the router, addressed to the host's MAC and the CLAT address.
    const hostMac = await lab.mac(lab.names.host, lab.iface.host);
    const routerMac = await lab.mac(lab.names.router, lab.iface.routerBridge);
    await lab.inject(
      lab.names.router,
      lab.iface.routerBridge,
      v6.map((b) => ether6(hostMac, routerMac, b.bytes)),
    );
    // Beside the kernel fast path the first of them also starts the workers, which read them
    // then: the counts may take a few seconds on a busy host.
    const certain = [...v4, ...v6].filter((b) => b.certain).length;
    let s2 = await lab.clatdStatus(clatd);
    for (let i = 0; i < 40 && s2 && summarize(s2).drops - summarize(s1).drops < certain; i++) {
      await new Promise((res) => setTimeout(res, 250));
      s2 = await lab.clatdStatus(clatd);
    }
    assert.ok(clatd.running, 'clatd died on malformed input');
    assert.ok(s2, 'clatd status --json failed after the malformed input');
    const dropped = summarize(s2).drops - summarize(s1).drops;
    assert.ok(
      dropped >= certain,
      `drop counters moved by ${dropped}, expected at least ${certain} (${[...v4, ...v6]
        .filter((b) => b.certain)
        .map((b) => b.name)
        .join('; ')})`,
    );
    const p = await lab.exec(lab.names.host, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ADDR.server], {
      allowFail: true,
    });
    assert.equal(pingStats(p.stdout).received, 2, `traffic stopped after the bad input:\n${p.stdout}`);
  });
});
