/**
 * clatd's Duplicate Address Detection as the router sees it: the probe is byte for byte Android's
 * (RFC 4862 §5.4.2 with a 6-byte RFC 7527 nonce), the router's Neighbor Solicitation for the CLAT
 * address is answered, and a neighbour already holding a leased --v6 address blocks DAD (clatd
 * takes no other: the network delivers only that one) until it lets go.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { finish, pseudoSum6, sum16 } from '../../src/core/checksum.js';
import { buildDadSolicitation } from '../../src/core/nd/dad-probe.js';
import { ADDR, type Frame, type NdMessage, ndOfFrame, solicitedNodeOf, waitFor } from '../../src/lab/index.js';
import { clatdSuite, pingStats } from './helpers.js';

/** DAD probes (NS from ::) in `frames` whose target is `target` (any target when undefined). */
function probes(frames: Frame[], target?: string): NdMessage[] {
  return frames
    .map((f) => ndOfFrame(f.data))
    .filter((m): m is NdMessage => m !== null && m.type === 135 && m.ip.src === '::')
    .filter((m) => target === undefined || m.target === target);
}

describe('clatd in the lab: DAD and neighbour discovery', () => {
  const suite = clatdSuite({ neighbour: true, servers: true, blobBytes: 4096 });

  test('the DAD probe seen from the router is exactly the Android layout with a 6-byte nonce', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const s = await r.lab.clatdStatus(r.clatd);
    assert.ok(s, 'clatd status --json failed');
    const clat6 = String(s.clat6);
    const seen = probes(suite.ndCapture?.frames() ?? [], clat6);
    assert.ok(seen.length >= 1, `no DAD probe for the CLAT address ${clat6} reached the router`);
    const p = seen[0];
    assert.equal(p.ip.packet.length, 72, 'an IPv6 packet of 72 bytes: 40 + NS 24 + nonce option 8');
    assert.equal(p.ip.packet.readUInt32BE(0), 0x60000000, 'traffic class and flow label 0');
    assert.equal(p.ip.payloadLength, 32);
    assert.equal(p.ip.hopLimit, 255);
    assert.equal(p.ip.dst, solicitedNodeOf(clat6));
    assert.match(p.ip.ethDst, /^33:33:ff:/);
    assert.deepEqual(
      p.options.map((o) => [o.type, o.len, o.body.length]),
      [[14, 1, 6]],
      'exactly one option: Nonce, 6 bytes',
    );
    // Byte for byte what the Android layout gives for this target and nonce (checksum included).
    const expected = buildDadSolicitation(clat6, p.options[0].body);
    assert.deepEqual(Buffer.from(p.ip.packet), Buffer.from(expected));
    assert.equal(finish(sum16(p.ip.packet, 40, 32, pseudoSum6(p.ip.packet, 8, 24, 58, 32))), 0, 'ICMPv6 checksum');
  });

  test("the router's Neighbor Solicitation for the CLAT address gets an Advertisement", async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const { lab } = r;
    const s = await lab.clatdStatus(r.clatd);
    const clat6 = String(s?.clat6);
    const before = suite.ndCapture?.frames().length ?? 0;
    // ndisc6 only sends the multicast NS here; the capture on the router judges the answer (an
    // anycast NA comes after a random delay of up to a second and without the Override flag).
    await lab.exec(lab.names.router, ['ndisc6', '-1', '-r', '1', '-w', '1500', clat6, lab.iface.routerBridge], {
      allowFail: true,
    });
    const hostMac = await lab.mac(lab.names.host, lab.iface.host);
    const na = await waitFor(
      () =>
        (suite.ndCapture?.frames().slice(before) ?? [])
          .map((f) => ndOfFrame(f.data))
          .find((m) => m?.type === 136 && m.target === clat6),
      3000,
    );
    assert.ok(na, 'the NA was not captured on the router');
    assert.equal(na.flags.solicited, true);
    assert.equal(na.ip.ethSrc, hostMac, 'the NA does not come from the host');
    assert.equal(na.flags.override, false, 'an anycast answer must not override (RFC 4861 §7.2.4)');
  });

  test('a neighbour holding the leased --v6 address: probed, no other taken, DAD blocked; once it lets go clatd runs', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const { lab } = r;
    const nb = lab.names.neighbour;
    assert.ok(nb);
    const s = await lab.clatdStatus(r.clatd);
    const taken = String(s?.clat6);
    await r.clatd.stop('SIGTERM', 3000);
    // The neighbour takes the address first; a second clatd is told it is its lease (--v6).
    await lab.exec(nb, ['ip', 'addr', 'add', `${taken}/64`, 'dev', lab.iface.neighbour, 'nodad']);
    const cap = await lab.capture(
      lab.names.router,
      lab.iface.routerBridge,
      'icmp6 and (ip6[40] == 135 or ip6[40] == 136)',
    );
    const second = lab.startClatd(['--v6', taken]);
    try {
      const blocked = await waitFor(async () => {
        const st = await lab.clatdStatus(second);
        return st?.dad?.result === 'blocked' ? st : null;
      }, 30_000);
      const frames = await cap.stop();
      assert.ok(blocked, 'clatd status never said DAD blocked');
      assert.equal(blocked.dad.duplicates[0].address, taken);
      assert.equal(blocked.clat6, null, 'no CLAT while its leased address is in use');
      assert.ok(probes(frames, taken).length >= 1, `clatd sent no DAD probe for ${taken}`);
      assert.deepEqual(
        probes(frames).filter((m) => m.target !== taken),
        [],
        'a leased address is not ours to replace: no other address probed',
      );
      // The neighbour lets go: the next round (after the back-off) finds it free.
      await lab.exec(nb, ['ip', 'addr', 'del', `${taken}/64`, 'dev', lab.iface.neighbour]);
      const up = await waitFor(async () => {
        const st = await lab.clatdStatus(second);
        return st?.state === 'running' ? st : null;
      }, 30_000);
      assert.ok(up, 'clatd did not come up once the address was free');
      assert.equal(up.clat6, taken);
      const p = await lab.exec(lab.names.host, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ADDR.server], {
        allowFail: true,
      });
      assert.equal(pingStats(p.stdout).received, 2, p.stdout);
    } finally {
      await second.stop('SIGTERM', 3000);
    }
  });
});
