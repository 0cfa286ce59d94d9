/**
 * The kernel fast path (tc eBPF offload) in the lab: by default plain TCP, UDP and ping are
 * translated in the kernel and counted as such, while what the programs leave alone (here UDP
 * fragments) still goes through the workers; with `--offload off` everything goes through the
 * workers and works the same. With a CLAT address that is not checksum-neutral the programs must
 * move every TCP, UDP and ICMP checksum; the lab's other ends verify them (TAYGA's TUN completes
 * the host's partial checksums in software, and the IPv4-only server checks what arrives).
 * On kernels without tcx links (before 6.6) clatd attaches with classic tc filters, and the same
 * tests run through those (test/daemon/netns.test.ts forces that path where tcx exists).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isChecksumNeutral } from '../../src/core/nd/neutral.js';
import { ADDR, type Lab } from '../../src/lab/index.js';
import { NEED_TCX } from '../helpers/netns.js';
import { clatdSuite, pingStats } from './helpers.js';

interface Dir {
  translated?: number;
  offloaded?: number;
}

function dirs(s: unknown): { '46': Dir; '64': Dir } {
  const c = (s as { counters: { '46': Dir; '64': Dir } }).counters;
  return { '46': c['46'], '64': c['64'] };
}

/** Ping, the 4 MiB HTTP download and a UDP echo from the host to the IPv4-only server: all must work. */
async function plainTraffic(lab: Lab, o: { pings: number; interval: string; udpBytes: number }): Promise<void> {
  const p = await lab.exec(lab.names.host, ['ping', '-c', String(o.pings), '-i', o.interval, '-W', '2', ADDR.server], {
    allowFail: true,
  });
  assert.equal(pingStats(p.stdout).received, o.pings, p.stdout + p.stderr);
  const h = await lab.probe(lab.names.host, ['http', `http://${ADDR.server}/blob.bin`]);
  assert.equal(h.sha256, lab.blobSha256, JSON.stringify(h));
  const u = await lab.probe(lab.names.host, ['udp', ADDR.server, String(ADDR.udpEchoPort), String(o.udpBytes)]);
  assert.equal(u.same, true, JSON.stringify(u));
}

/** How status ends the offload line: tcx links where the kernel has them, else classic tc filters. */
const VIA = NEED_TCX ? ', classic tc filters' : '';

describe('clatd in the lab: kernel offload on (the default)', () => {
  const suite = clatdSuite();

  test('ping, an HTTP download and UDP echo are translated in the kernel', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const s1 = dirs(await r.lab.clatdStatus(r.clatd));
    await plainTraffic(r.lab, { pings: 5, interval: '0.1', udpBytes: 512 });
    const s2 = dirs(await r.lab.clatdStatus(r.clatd));
    for (const d of ['46', '64'] as const) {
      const moved = (s2[d].offloaded ?? 0) - (s1[d].offloaded ?? 0);
      // 5 echoes, the TCP handshake and data, one UDP datagram (the 4 MiB download alone is
      // thousands of segments 6→4 and their acks 4→6).
      assert.ok(moved >= 20, `${d}: ${moved} packets offloaded`);
      assert.ok((s2[d].translated ?? 0) >= (s2[d].offloaded ?? 0), `${d}: offloaded counted as translated`);
    }
  });

  test('what the kernel leaves alone still goes through the workers: a fragmented UDP datagram', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const s1 = dirs(await r.lab.clatdStatus(r.clatd));
    // 3000 bytes do not fit the TUN's MTU: the host's IPv4 stack sends fragments, which only the
    // workers translate (with IPv6 Fragment headers); the echo comes back in fragments too. The
    // first fragments start the workers, and wait for them meanwhile (seconds on a busy host).
    const u = await r.lab.probe(r.lab.names.host, ['udp', ADDR.server, String(ADDR.udpEchoPort), '3000', '20000']);
    assert.equal(u.same, true, JSON.stringify(u));
    const s2 = dirs(await r.lab.clatdStatus(r.clatd));
    const workers = (d: Dir) => (d.translated ?? 0) - (d.offloaded ?? 0);
    assert.ok(workers(s2['46']) - workers(s1['46']) >= 3, 'the workers translated the fragments 4→6');
    assert.ok(workers(s2['64']) - workers(s1['64']) >= 2, 'the workers translated the fragments 6→4');
  });

  test('status says how many packets the kernel translated', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const text = await r.lab.clatdCli(r.clatd, ['status'], { timeoutMs: 5000 });
    assert.equal(text.code, 0, text.stdout);
    assert.match(text.stdout, /4->6 .* translated \(\d+ in the kernel\)/, text.stdout);
    assert.match(text.stdout, /6->4 .* translated \(\d+ in the kernel\)/, text.stdout);
    // The lab's router sends RAs from its link-local address: the fast path's next hop (or, for
    // the moment after a route change, the kernel's lookup until clatd has asked again).
    const hop = '; (next hop fe80::[0-9a-f:]+|kernel route lookup: [^)]+)';
    const line = new RegExp(`offload\\s+in use \\(\\S+ ingress, v4-\\S+ egress${VIA}${hop}\\)`);
    assert.match(text.stdout, line, text.stdout);
  });
});

describe('clatd in the lab: kernel offload off', () => {
  const suite = clatdSuite({}, ['--offload', 'off']);

  test('ping, an HTTP download and UDP echo all go through the workers', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    await plainTraffic(r.lab, { pings: 3, interval: '0.2', udpBytes: 512 });
    const status = await r.lab.clatdStatus(r.clatd);
    assert.equal(status?.offload, 'off (--offload off)');
    const s = dirs(status);
    assert.equal(s['46'].offloaded ?? 0, 0);
    assert.equal(s['64'].offloaded ?? 0, 0);
    assert.ok((s['64'].translated ?? 0) > 1000, 'the download went through the workers');
  });
});

describe('clatd in the lab: kernel offload with a CLAT address that is not checksum-neutral', () => {
  const V6 = '2001:db8:1::1234';
  const suite = clatdSuite({}, ['--v6', V6]);

  test('checksums are moved right both ways: ping, a 4 MiB download, a 4 MiB upload, UDP echo', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const s1 = await r.lab.clatdStatus(r.clatd);
    assert.equal(s1?.clat6, V6);
    assert.equal(isChecksumNeutral({ ipv6: V6, pref64: String(s1?.pref64), ipv4: String(s1?.clat4) }), false);
    await plainTraffic(r.lab, { pings: 3, interval: '0.2', udpBytes: 777 });
    // Upload: the host's TCP hands over partial checksums; the server verifies what arrives.
    await r.lab.exec(r.lab.names.internet, ['iperf3', '-s', '-1', '-D', '-B', ADDR.server]);
    await new Promise((res) => setTimeout(res, 300));
    const up = await r.lab.exec(r.lab.names.host, ['iperf3', '-c', ADDR.server, '-n', '4M', '-J'], {
      allowFail: true,
      timeoutMs: 30_000,
    });
    // A wrong checksum would have the server drop every segment. (Its sum_received is read as the
    // sender stops, so it may lag behind the 4 MiB sent.)
    assert.equal(up.code, 0, up.stdout.slice(-400) + up.stderr);
    const sent = JSON.parse(up.stdout) as {
      end?: { sum_sent?: { bytes?: number }; sum_received?: { bytes?: number } };
    };
    assert.ok((sent.end?.sum_sent?.bytes ?? 0) >= 4 << 20, up.stdout.slice(-400));
    assert.ok((sent.end?.sum_received?.bytes ?? 0) >= 1 << 20, up.stdout.slice(-400));
    const s2 = dirs(await r.lab.clatdStatus(r.clatd));
    const before = dirs(s1);
    assert.ok((s2['46'].offloaded ?? 0) - (before['46'].offloaded ?? 0) > 1000, 'the upload went through the kernel');
    assert.ok((s2['64'].offloaded ?? 0) - (before['64'].offloaded ?? 0) > 1000, 'the download went through the kernel');
  });
});
