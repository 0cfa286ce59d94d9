/**
 * Router mode, stateless (RFC 6877 §6.3 with a dedicated prefix; RFC 7757 EAM), in the lab: the
 * router routes 2001:db8:100::/64 to the host (a static route via the host's link-local address,
 * as a delegated prefix would be), and `clatd run --interface eth0 --lan lan0 --v6-prefix
 * 2001:db8:100::/64 --lan-mode stateless` maps the LAN 203.0.113.0/24 to 2001:db8:100::cb00:7100/120,
 * each LAN device a.b.c.d to 2001:db8:100::a.b.c.d. Two LAN clients (the lab's, by DHCPv4,
 * and a second one made here: a macvlan on the first's link in a namespace of its own, static
 * 203.0.113.20): ping, a 4 MiB download and upload checked byte for byte and UDP echo from each; a
 * traceroute through the host and the IPv6 routers; on the
 * router's side of the link each is seen as its own IPv6 source inside the prefix; no masquerade
 * rule; the kernel fast path keeps the host's traffic while the LAN's goes through the workers;
 * SIGTERM, and kill -9 followed by a new start, leave nothing, as seen from outside.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { formatIPv6, parseIPv6 } from '../../src/core/addr/ipv6.js';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { inLanBlock } from '../../src/daemon/lan-map.js';
import type { StatusSnapshot } from '../../src/daemon/status.js';
import { ADDR, type Capture, type Lab, type Proc, run, summarize, waitFor } from '../../src/lab/index.js';
import {
  clatdSuite,
  lanKill9Leftovers,
  lanLeftovers,
  lanServed,
  lanSigtermLeavesNothing,
  pingStats,
  traceroute,
} from './helpers.js';

const PREFIX = '2001:db8:100::/64';
const SECOND = '203.0.113.20';
const BASE = ['--interface', 'eth0', '--lan', 'lan0'];
const EXTRA = ['--v6-prefix', PREFIX, '--lan-mode', 'stateless'];
const ARGS = [...BASE, ...EXTRA];

/** A LAN device's address toward the PLAT: its IPv4 address in the prefix's last 32 bits. */
const mapped = (v4: string) => `2001:db8:100::${v4}`;

/** Served in stateless mode: the LAN's mapping is in place too. */
const mappedToo = (s: StatusSnapshot) => (s.lan?.mapped?.length ?? 0) > 0;
const served = (lab: Lab, clatd: Proc) => lanServed(lab, clatd, mappedToo);

/** The IPv6 sources inside the prefix of the frames captured on the router's bridge (Ethernet). */
function sourcesInPrefix(c: Capture): Set<string> {
  const out = new Set<string>();
  for (const f of c.frames()) {
    const d = f.data;
    if (d.length < 54 || d.readUInt16BE(12) !== 0x86dd) continue;
    const src = formatIPv6(new Uint8Array(d.buffer, d.byteOffset + 22, 16));
    if (src.startsWith('2001:db8:100:')) out.add(src);
  }
  return out;
}

describe('clatd in the lab: router mode, stateless (each LAN device its own IPv6 address)', () => {
  let second = '';
  let capture: Capture | null = null;
  const suite = clatdSuite({ lan: true }, BASE, async (lab) => {
    const h = lab.names.host;
    const r = lab.names.router;
    // The routed prefix: what an ISP's delegation does, by hand.
    const ll = await lab.exec(h, ['ip', '-6', '-j', 'addr', 'show', 'dev', 'eth0', 'scope', 'link']);
    const local = (JSON.parse(ll.stdout) as { addr_info: { local?: string }[] }[])[0]?.addr_info.find(
      (a) => a.local,
    )?.local;
    assert.ok(local, `the host has no link-local address: ${ll.stdout}`);
    await lab.exec(r, ['ip', '-6', 'route', 'replace', PREFIX, 'via', local, 'dev', lab.iface.routerBridge]);
    // A second LAN device: a macvlan on the first client's link, in a namespace of its own.
    assert.ok(lab.lan, 'the lab was built without its LAN');
    second = `${lab.names.host.replace(/-h$/, '')}-l2`;
    await run(['ip', 'netns', 'add', second]);
    await lab.exec(lab.lan.ns, [
      'ip',
      'link',
      'add',
      'link',
      'eth0',
      'name',
      'mv0',
      'type',
      'macvlan',
      'mode',
      'bridge',
    ]);
    await lab.exec(lab.lan.ns, ['ip', 'link', 'set', 'mv0', 'netns', second]);
    await lab.exec(second, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
    await lab.exec(second, ['ip', 'link', 'set', 'lo', 'up']);
    await lab.exec(second, ['ip', 'addr', 'add', `${SECOND}/24`, 'dev', 'mv0']);
    await lab.exec(second, ['ip', 'link', 'set', 'mv0', 'up']);
    await lab.exec(second, ['ip', 'route', 'add', 'default', 'via', lab.lan.gateway]);
    capture = await lab.capture(r, lab.iface.routerBridge, 'ip6 and src net 2001:db8:100::/64');
    return EXTRA;
  });
  after(async () => {
    if (second) await run(['ip', 'netns', 'del', second]).catch(() => undefined);
  });

  const clients = (lab: Lab): [string, string][] => {
    assert.ok(lab.lan, 'the lab was built without its LAN');
    return [
      [lab.lan.ns, lab.lan.client],
      [second, SECOND],
    ];
  };

  test('the LAN is mapped into the first /96 of the prefix; the CLAT address lies outside it; no masquerade', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    await served(r.lab, r.clatd);
    const s = await r.lab.clatdStatus(r.clatd);
    assert.ok(s?.lan);
    assert.equal(s.lan.mode, 'stateless');
    assert.deepEqual(s.lan.mapped, [{ v4: '203.0.113.0/24', v6: '2001:db8:100::cb00:7100/120' }]);
    assert.equal(s.lan.masqueradeTo, null);
    assert.match(s.lan.fastPath ?? '', /LAN packets pass it untouched to the workers/);
    assert.match(s.clat6 ?? '', /^2001:db8:100:/);
    assert.ok(!inLanBlock(parsePrefix6(PREFIX), parseIPv6(s.clat6 ?? '::')), `${s.clat6} is in the LANs /96`);
    const table = await r.lab.exec(r.lab.names.host, ['nft', 'list', 'table', 'inet', 'clatd-eth0/lan']);
    assert.doesNotMatch(table.stdout, /masquerade/);
    assert.match(
      table.stdout,
      /iifname "eth0" ip6 daddr 2001:db8:100::cb00:7100\/120 counter packets \d+ bytes \d+ drop/,
    );
  });

  test('from each of the two LAN clients: ping, 4 MiB download and upload byte for byte, UDP echo', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    await served(r.lab, r.clatd);
    for (const [ns, addr] of clients(r.lab)) {
      const p = await r.lab.exec(ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ADDR.server], { allowFail: true });
      assert.equal(pingStats(p.stdout).received, 3, `${addr}: ${p.stdout}${p.stderr}`);
      const h = await r.lab.probe(ns, ['http', `http://${ADDR.server}/blob.bin`]);
      assert.equal(h.bytes, r.lab.blobBytes, `${addr}: ${JSON.stringify(h)}`);
      assert.equal(h.sha256, r.lab.blobSha256, addr);
      const port = r.lab.lan?.uploadPort;
      const up = await r.lab.probe(ns, ['upload', `http://${ADDR.server}:${port}/`, String(4 << 20)]);
      assert.equal(up.same, true, `${addr}: ${JSON.stringify(up)}`);
      for (const size of [1, 512, 1400]) {
        const u = await r.lab.probe(ns, ['udp', ADDR.server, String(ADDR.udpEchoPort), String(size)]);
        assert.equal(u.same, true, `${addr}, ${size} bytes: ${JSON.stringify(u)}`);
      }
    }
  });

  test("the kernel fast path keeps the host's own traffic; the LAN's goes through the workers", async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const { lab, clatd } = r;
    const s0 = await lab.clatdStatus(clatd);
    assert.ok(s0);
    if (!/^in use/.test(s0.offload ?? '')) {
      t.skip(`the kernel fast path is not in use here: ${s0.offload}`);
      return;
    }
    const [ns] = clients(lab)[0];
    const h = await lab.probe(ns, ['http', `http://${ADDR.server}/blob.bin`]);
    assert.equal(h.sha256, lab.blobSha256, JSON.stringify(h));
    const s1 = await lab.clatdStatus(clatd);
    assert.ok(s1);
    const a = summarize(s0);
    const b = summarize(s1);
    t.diagnostic(`LAN download: workers 6->4 +${b.packets64 - a.packets64}, kernel 6->4 +${b.kernel64 - a.kernel64}`);
    assert.ok(b.packets64 - a.packets64 > 1000, `the workers translated ${b.packets64 - a.packets64} packets`);
    assert.ok(b.kernel64 - a.kernel64 < 10, `the kernel translated ${b.kernel64 - a.kernel64} LAN packets`);
    const hostDl = await lab.probe(lab.names.host, ['http', `http://${ADDR.server}/blob.bin`]);
    assert.equal(hostDl.sha256, lab.blobSha256, JSON.stringify(hostDl));
    const c = summarize((await lab.clatdStatus(clatd)) ?? s1);
    t.diagnostic(`host download: kernel 6->4 +${c.kernel64 - b.kernel64}`);
    assert.ok(c.kernel64 - b.kernel64 > 1000, `the kernel translated ${c.kernel64 - b.kernel64} of the host's packets`);
  });

  test('traceroute from a LAN client shows the path: the host, the IPv6 router as 192.0.0.8, TAYGA, the server', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    assert.ok(r.lab.lan, 'the lab was built without its LAN');
    const { hops, out } = await traceroute(r.lab, r.lab.lan.ns);
    assert.equal(hops[0], r.lab.lan.gateway, out);
    // The router's Time Exceeded comes from an IPv6 address outside the NAT64 prefix: clatd gives it
    // its own IPv4 source, 192.0.0.8 (RFC 7335), as for the host's own traffic.
    assert.ok(hops.includes('192.0.0.8'), `no hop shown as 192.0.0.8:\n${out}`);
    assert.ok(hops.includes(ADDR.taygaV4), `no hop shown as TAYGA's ${ADDR.taygaV4}:\n${out}`);
    assert.equal(hops.filter(Boolean).at(-1), ADDR.server, out);
  });

  test("the PLAT's side sees one IPv6 source per LAN device: its IPv4 address inside the prefix", async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    assert.ok(capture, 'no capture on the router');
    const canon = clients(r.lab).map(([, a]) => formatIPv6(parseIPv6(mapped(a))));
    const ok = await waitFor(async () => canon.every((a) => sourcesInPrefix(capture as Capture).has(a)), 3000, 200);
    const seen = [...sourcesInPrefix(capture)];
    assert.ok(ok, `sources seen in the prefix: ${seen.join(', ')}; wanted ${canon.join(', ')}`);
    const s = await r.lab.clatdStatus(r.clatd);
    // Nothing else from the prefix but the CLAT's own address (the host's own traffic, if any).
    for (const a of seen) assert.ok(canon.includes(a) || a === s?.clat6, `unexpected source ${a}`);
  });

  test('SIGTERM: nothing left (nft tables, forwarding, TUN, records), seen from outside', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    await lanSigtermLeavesNothing(r.lab, r.clatd);
  });

  test('kill -9: the next start gives everything back and serves again; then SIGTERM leaves nothing', async (t) => {
    const r = suite.ready(t, { exitedOk: true });
    if (!r) return;
    const { lab } = r;
    const left = await lanKill9Leftovers(lab, ARGS, mappedToo);
    assert.ok(
      left.some((l) => l.includes('clatd-eth0/lan')),
      `no LAN table after kill -9: ${left.join('; ')}`,
    );
    const second = await lab.startClatdAndWait(ARGS);
    try {
      assert.ok(second.up, second.why);
      await served(lab, second.proc);
      assert.match(second.proc.output(), /removed leftover of an earlier clatd: /);
      for (const [ns, addr] of clients(lab)) {
        const p = await lab.exec(ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ADDR.server], { allowFail: true });
        assert.equal(pingStats(p.stdout).received, 2, `${addr}: ${p.stdout}`);
      }
    } finally {
      await second.proc.stop('SIGTERM', 3000);
    }
    assert.deepEqual(await lanLeftovers(lab), []);
  });
});
