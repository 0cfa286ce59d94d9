/**
 * Router mode (NAT44) in the lab: `clatd run --interface eth0 --lan lan0` in the host, with an
 * IPv4-only LAN client behind it that got its address from dnsmasq by DHCPv4. From the client:
 * ping, a 4 MiB download and upload checked byte for byte, UDP echo, a traceroute through the host
 * and the IPv6 routers; LAN counters and the kernel fast path's counters move; a source outside the
 * LAN's subnet is dropped, counted and said once, and passes once the host holds that subnet too;
 * lan0 down and up is followed; SIGTERM, and kill -9 followed by a new start or `clatd cleanup`,
 * leave nothing (nft tables, forwarding settings, the record) as seen from outside.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import type { StatusSnapshot } from '../../src/daemon/status.js';
import { ADDR, CLI_PATH, type Lab, sleep, summarize, waitFor } from '../../src/lab/index.js';
import {
  clatdSuite,
  lanKill9Leftovers,
  lanLeftovers,
  lanServed,
  lanSigtermLeavesNothing,
  pingStats,
  traceroute,
} from './helpers.js';

const ARGS = ['--interface', 'eth0', '--lan', 'lan0'];

async function lanStatus(lab: Lab, clatd: Parameters<Lab['clatdStatus']>[0]): Promise<StatusSnapshot> {
  const s = await lab.clatdStatus(clatd);
  assert.ok(s, 'clatd status --json failed');
  assert.ok(s.lan, 'status has no lan section');
  return s;
}

describe('clatd in the lab: router mode (NAT44) for an IPv4-only LAN', () => {
  let before: string[] = [];
  const suite = clatdSuite({ lan: true }, ARGS, async (lab) => {
    before = await lanLeftovers(lab);
    return undefined;
  });

  /** The lab, clatd and the lab's LAN (null after a skip); fails when the lab was built without it. */
  const lanReady = (t: TestContext, o?: { exitedOk?: boolean }) => {
    const r = suite.ready(t, o);
    if (!r) return null;
    assert.ok(r.lab.lan, 'the lab was built without its LAN');
    return { ...r, lan: r.lab.lan };
  };

  test('the LAN client got its address by DHCPv4; forwarding was off before clatd', (t) => {
    const r = suite.ready(t);
    if (!r) return;
    assert.match(String(r.lab.lan?.client), /^203\.0\.113\.(1[0-4]\d|150)$/);
    assert.deepEqual(before, []);
  });

  test('ping from the LAN client reaches the IPv4-only server', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    await lanServed(r.lab, r.clatd);
    const p = await r.lab.exec(r.lan.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ADDR.server], {
      allowFail: true,
    });
    assert.equal(pingStats(p.stdout).received, 3, p.stdout + p.stderr);
  });

  test('4 MiB down and up, byte for byte; the LAN counters move', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    const { lab, clatd, lan } = r;
    const s1 = await lanStatus(lab, clatd);
    const h = await lab.probe(lan.ns, ['http', `http://${ADDR.server}/blob.bin`]);
    assert.equal(h.bytes, lab.blobBytes, JSON.stringify(h));
    assert.equal(h.sha256, lab.blobSha256);
    const u = await lab.probe(lan.ns, ['upload', `http://${ADDR.server}:${lan.uploadPort}/`, String(4 << 20)]);
    assert.equal(u.same, true, JSON.stringify(u));
    // The LAN counters are read every 5 s.
    let s2 = s1;
    await waitFor(
      async () => {
        s2 = await lanStatus(lab, clatd);
        const i = s2.lan?.interfaces[0];
        const j = s1.lan?.interfaces[0];
        return (i?.bytesIn ?? 0) - (j?.bytesIn ?? 0) >= 4 << 20 && (i?.bytesOut ?? 0) - (j?.bytesOut ?? 0) >= 4 << 20;
      },
      8000,
      500,
    );
    const i1 = s1.lan?.interfaces[0];
    const i2 = s2.lan?.interfaces[0];
    assert.ok(i1 && i2);
    assert.ok(i2.bytesIn - i1.bytesIn >= 4 << 20, `LAN bytes in moved by ${i2.bytesIn - i1.bytesIn}`);
    assert.ok(i2.bytesOut - i1.bytesOut >= 4 << 20, `LAN bytes out moved by ${i2.bytesOut - i1.bytesOut}`);
    assert.equal(s2.lan?.serving, true);
    assert.equal(s2.lan?.masqueradeTo, s2.clat4);
    assert.equal(s2.lan?.mss, (s2.mtu ?? 0) - 40);
  });

  test('the kernel fast path translates the LAN traffic (it sees the masqueraded packets on the TUN)', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    const { lab, clatd } = r;
    const s1 = await lanStatus(lab, clatd);
    if (!/^in use/.test(s1.offload ?? '')) {
      t.skip(`the kernel fast path is not in use here: ${s1.offload}`);
      return;
    }
    const h = await lab.probe(r.lan.ns, ['http', `http://${ADDR.server}/blob.bin`]);
    assert.equal(h.sha256, lab.blobSha256, JSON.stringify(h));
    const a = summarize(s1);
    const b = summarize(await lanStatus(lab, clatd));
    t.diagnostic(`kernel fast path: 4->6 +${b.kernel46 - a.kernel46}, 6->4 +${b.kernel64 - a.kernel64}`);
    // 4->6 carries the download's ACKs: with GRO on the receiving side a few dozen for 4 MiB.
    assert.ok(b.kernel46 - a.kernel46 > 20, `4->6 in the kernel moved by ${b.kernel46 - a.kernel46}`);
    assert.ok(b.kernel64 - a.kernel64 > 1000, `6->4 in the kernel moved by ${b.kernel64 - a.kernel64}`);
  });

  test('UDP echo comes back whole', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    for (const size of [1, 512, 1400]) {
      const u = await r.lab.probe(r.lan.ns, ['udp', ADDR.server, String(ADDR.udpEchoPort), String(size)]);
      assert.equal(u.same, true, `${size} bytes: ${JSON.stringify(u)}`);
    }
  });

  test('traceroute shows the path: the host, the IPv6 router as 192.0.0.8, TAYGA, the server', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    const { hops, out } = await traceroute(r.lab, r.lan.ns);
    assert.equal(hops[0], r.lan.gateway, out);
    assert.ok(hops.includes('192.0.0.8'), `no hop shown as 192.0.0.8:\n${out}`);
    assert.ok(hops.includes(ADDR.taygaV4), `no hop shown as TAYGA's ${ADDR.taygaV4}:\n${out}`);
    assert.equal(hops.filter(Boolean).at(-1), ADDR.server, out);
  });

  test('IPv4 forwarding only where needed: lan0 and the TUN on, all and ip_forward off', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const get = async (k: string) =>
      (await r.lab.exec(r.lab.names.host, ['sysctl', '-n', k], { allowFail: true })).stdout.trim();
    assert.equal(await get('net.ipv4.conf.lan0.forwarding'), '1');
    assert.equal(await get('net.ipv4.conf.v4-eth0.forwarding'), '1');
    assert.equal(await get('net.ipv4.conf.all.forwarding'), '0');
    assert.equal(await get('net.ipv4.ip_forward'), '0');
    assert.equal(await get('net.ipv4.conf.eth0.forwarding'), '0');
  });

  test('a source outside the LAN subnet: dropped, counted, said once with the fix; passes once lan0 holds it', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    const { lab, clatd, lan } = r;
    const odd = '192.0.2.200';
    await lab.exec(lan.ns, ['ip', 'addr', 'add', `${odd}/32`, 'dev', 'eth0']);
    const ping = () =>
      lab.exec(lan.ns, ['ping', '-I', odd, '-c', '2', '-i', '0.2', '-W', '1', ADDR.server], { allowFail: true });
    assert.equal(pingStats((await ping()).stdout).received, 0, 'a source outside 203.0.113.0/24 got through');
    const said = await waitFor(() => clatd.output().includes('outside its subnets'), 8000, 250);
    assert.ok(said, `not said: ${clatd.output().slice(-1500)}`);
    await ping();
    await sleep(5500);
    assert.equal(clatd.output().split('outside its subnets').length - 1, 1, 'said once');
    const s = await lanStatus(lab, clatd);
    assert.ok((s.lan?.interfaces[0].drops['wrong-source'] ?? 0) >= 2, JSON.stringify(s.lan));
    // The host takes that subnet on lan0: followed live, and the same source now passes.
    await lab.exec(lab.names.host, ['ip', 'addr', 'add', '192.0.2.254/24', 'dev', lan.hostIface]);
    const ok = await waitFor(async () => pingStats((await ping()).stdout).received === 2, 8000, 500);
    assert.ok(ok, 'the new subnet was not served');
    await lab.exec(lab.names.host, ['ip', 'addr', 'del', '192.0.2.254/24', 'dev', lan.hostIface]);
    await lab.exec(lan.ns, ['ip', 'addr', 'del', `${odd}/32`, 'dev', 'eth0']);
  });

  test('lan0 down and up: status says so, and traffic flows again without a restart', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    const { lab, clatd, lan } = r;
    await lab.exec(lab.names.host, ['ip', 'link', 'set', lan.hostIface, 'down']);
    const down = await waitFor(
      async () => /down/.test((await lanStatus(lab, clatd)).lan?.interfaces[0].problem ?? ''),
      5000,
      200,
    );
    assert.ok(down, 'status does not say lan0 is down');
    await lab.exec(lab.names.host, ['ip', 'link', 'set', lan.hostIface, 'up']);
    // Setting a link down removes its routes; the client's lease and address stay.
    const ok = await waitFor(
      async () =>
        pingStats((await lab.exec(lan.ns, ['ping', '-c', '1', '-W', '1', ADDR.server], { allowFail: true })).stdout)
          .received === 1,
      10_000,
      300,
    );
    assert.ok(ok, 'no traffic after lan0 came back');
    assert.equal((await lanStatus(lab, clatd)).lan?.interfaces[0].problem, null);
  });

  test('the uplink down: paused, the LAN cut off (forwarding given back, rejected if the host forwards itself), then served again', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    const { lab, clatd, lan } = r;
    await lanServed(lab, clatd);
    const h = lab.names.host;
    const fwd = async () => (await lab.exec(h, ['sysctl', '-n', 'net.ipv4.conf.lan0.forwarding'])).stdout.trim();
    const ping = () => lab.exec(lan.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', ADDR.server], { allowFail: true });
    await lab.exec(h, ['ip', 'link', 'set', lab.iface.host, 'down']);
    try {
      const paused = await waitFor(
        async () => {
          const s = await lab.clatdStatus(clatd);
          return s?.state === 'paused' && s.lan?.serving === false;
        },
        10_000,
        200,
      );
      assert.ok(paused, `not paused with the LAN cut off:\n${clatd.output().slice(-1500)}`);
      assert.equal(await fwd(), '0', 'forwarding given back while not served');
      assert.equal(pingStats((await ping()).stdout).received, 0);
      // A paused clatd withdraws its IPv4 default route (so that IPv4 can move to another uplink's
      // CLAT). A host that forwards on its own and has another IPv4 route — here a veth with no one behind —
      // would leak the LAN there: clatd's table rejects it, and counts it.
      await lab.exec(h, ['ip', 'link', 'add', 'leak0', 'type', 'veth', 'peer', 'name', 'leak1']);
      await lab.exec(h, ['ip', 'link', 'set', 'leak0', 'up']);
      await lab.exec(h, ['ip', 'route', 'add', 'default', 'dev', 'leak0', 'metric', '4000']);
      await lab.exec(h, ['sysctl', '-qw', 'net.ipv4.conf.lan0.forwarding=1']);
      const p = await ping();
      assert.equal(pingStats(p.stdout).received, 0, p.stdout);
      assert.match(p.stdout, /Destination Host Unreachable/, p.stdout);
      const counted = await waitFor(
        async () => ((await lanStatus(lab, clatd)).lan?.interfaces[0].drops['not-served'] ?? 0) >= 2,
        8000,
        300,
      );
      assert.ok(counted, JSON.stringify((await lanStatus(lab, clatd)).lan));
      assert.match(
        clatd.output(),
        /dropped IPv4 packets from lan0 while the CLAT does not translate \(uplink eth0 is down/,
      );
    } finally {
      await lab.exec(h, ['sysctl', '-qw', 'net.ipv4.conf.lan0.forwarding=0']);
      await lab.exec(h, ['ip', 'link', 'del', 'leak0'], { allowFail: true });
      await lab.exec(h, ['ip', 'link', 'set', lab.iface.host, 'up']);
    }
    await lanServed(lab, clatd);
    const back = await waitFor(async () => pingStats((await ping()).stdout).received === 2, 15_000, 500);
    assert.ok(back, 'the LAN was not served again after the uplink came back');
    assert.equal(await fwd(), '1');
  });

  test('TCP MSS clamped to the CLAT MTU - 40 both ways: the server and the LAN client see 1432', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    const { lab, clatd, lan } = r;
    await lanServed(lab, clatd);
    const mss = String((await lanStatus(lab, clatd)).lan?.mss);
    const atServer = await lab.capture(lab.names.internet, 'eth0', 'tcp port 80 and tcp[tcpflags] & tcp-syn != 0');
    const atClient = await lab.capture(lan.ns, 'eth0', 'tcp port 80 and tcp[tcpflags] & tcp-syn != 0');
    const h = await lab.probe(lan.ns, ['http', `http://${ADDR.server}/index.html`]);
    assert.equal(h.ok, true, JSON.stringify(h));
    await sleep(200);
    await atServer.stop();
    await atClient.stop();
    const show = async (file: string) =>
      (await lab.exec(null, ['tcpdump', '-n', '-v', '-r', file], { allowFail: true })).stdout;
    const server = await show(atServer.file);
    const client = await show(atClient.file);
    // The LAN client's SYN as the server got it, and the server's SYN-ACK as the client got it.
    assert.match(server, new RegExp(`Flags \\[S\\],[^\\n]*mss ${mss}\\b`), server);
    assert.match(client, new RegExp(`Flags \\[S\\.\\],[^\\n]*mss ${mss}\\b`), client);
  });

  test("the host's default-drop FORWARD policy still applies; the README's two rules let the LAN through", async (t) => {
    const r = lanReady(t);
    if (!r) return;
    const { lab, clatd, lan } = r;
    await lanServed(lab, clatd);
    const ping = async () =>
      pingStats(
        (await lab.exec(lan.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', ADDR.server], { allowFail: true })).stdout,
      ).received;
    const fw =
      'table inet hostfw {\n  chain forward {\n    type filter hook forward priority filter; policy drop;\n  }\n}\n';
    await lab.exec(lab.names.host, ['nft', '-f', '-'], { input: fw });
    try {
      assert.equal(await ping(), 0, "the host's drop policy did not apply to LAN traffic");
      const rules = [
        'add rule inet hostfw forward iifname "lan0" oifname "v4-eth0" accept',
        'add rule inet hostfw forward iifname "v4-eth0" oifname "lan0" ct state established,related accept',
        '',
      ].join('\n');
      await lab.exec(lab.names.host, ['nft', '-f', '-'], { input: rules });
      assert.equal(await ping(), 2, 'the two rules did not let the LAN through');
    } finally {
      await lab.exec(lab.names.host, ['nft', 'delete', 'table', 'inet', 'hostfw'], { allowFail: true });
    }
  });

  test('`nft flush ruleset` (a firewall reload): the LAN table is put back and the LAN works again', async (t) => {
    const r = lanReady(t);
    if (!r) return;
    const { lab, clatd, lan } = r;
    await lanServed(lab, clatd);
    await lab.exec(lab.names.host, ['nft', 'flush', 'ruleset']);
    const back = await waitFor(
      async () => (await lab.exec(lab.names.host, ['nft', 'list', 'tables'])).stdout.includes('clatd-eth0/lan'),
      10_000,
      200,
    );
    assert.ok(back, `the LAN table was not put back:\n${clatd.output().slice(-1500)}`);
    assert.match(clatd.output(), /the LAN table was deleted by .*; restored/);
    const p = await lab.exec(lan.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ADDR.server], { allowFail: true });
    assert.equal(pingStats(p.stdout).received, 2, p.stdout);
  });

  test('SIGTERM: nothing left (nft tables, forwarding, TUN, records), seen from outside', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    await lanSigtermLeavesNothing(r.lab, r.clatd);
    assert.match(r.clatd.output(), /LAN no longer served \(clatd stops\); .*lan0 back to 0/);
  });

  test('kill -9: the next start gives everything back and serves again; then SIGTERM leaves nothing', async (t) => {
    const r = lanReady(t, { exitedOk: true });
    if (!r) return;
    const { lab, lan } = r;
    const left = await lanKill9Leftovers(lab, ARGS);
    assert.ok(
      left.some((l) => l.includes('clatd-eth0/lan')),
      `no LAN table after kill -9: ${left.join('; ')}`,
    );
    assert.ok(left.includes('net.ipv4.conf.lan0.forwarding = 1'), left.join('; '));
    const second = await lab.startClatdAndWait(ARGS);
    try {
      assert.ok(second.up, second.why);
      await lanServed(lab, second.proc);
      assert.match(second.proc.output(), /removed leftover of an earlier clatd: .*lan0 back to 0/);
      const p = await lab.exec(lan.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ADDR.server], { allowFail: true });
      assert.equal(pingStats(p.stdout).received, 2, p.stdout);
    } finally {
      await second.proc.stop('SIGTERM', 3000);
    }
    assert.deepEqual(await lanLeftovers(lab), []);
  });

  test('kill -9, then `clatd cleanup` gives everything back', async (t) => {
    const r = suite.ready(t, { exitedOk: true });
    if (!r) return;
    const { lab } = r;
    assert.ok((await lanKill9Leftovers(lab, ARGS)).length > 0);
    // clatd ran with /run/clatd bound to the lab's folder: the record is there.
    const cleanup = await lab.exec(
      lab.names.host,
      [
        process.execPath,
        CLI_PATH,
        'cleanup',
        '--interface',
        'eth0',
        '--control',
        join(lab.dir, 'run-clatd', 'eth0.sock'),
      ],
      { allowFail: true },
    );
    assert.equal(cleanup.code, 0, cleanup.stdout + cleanup.stderr);
    assert.match(cleanup.stdout, /removed: nft table inet clatd-eth0\/lan/);
    assert.deepEqual(await lanLeftovers(lab), []);
  });
});
