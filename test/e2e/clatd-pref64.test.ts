/**
 * Where clatd learns the NAT64 prefix: PREF64 in the RA (RFC 8781), DNS64 when the RA has none
 * (RFC 7050), and a PREF64 change on the router while traffic flows, followed without a restart.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ADDR, ipv6OfFrame, sleep, waitFor } from '../../src/lab/index.js';
import { clatdSuite, pingStats } from './helpers.js';

describe('clatd in the lab: PREF64 from the RA, then changed on the router', () => {
  const suite = clatdSuite({ blobBytes: 4096 });

  test('the prefix comes from the RA', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const s = await r.lab.clatdStatus(r.clatd);
    assert.equal(s?.pref64, ADDR.pref64);
    assert.equal(s?.pref64Source, 'ra');
  });

  test('a PREF64 change while traffic flows: translation moves to the new prefix, same process', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const { lab, clatd } = r;
    const h = lab.names.host;
    const pid = clatd.pid;
    // Continuous traffic across the change.
    const flow = lab.exec(h, ['ping', '-c', '60', '-i', '0.25', '-W', '1', ADDR.server], {
      allowFail: true,
      timeoutMs: 40_000,
    });
    await sleep(1000);
    // radvd-style reconfiguration: new config, SIGHUP; the PLAT and DNS64 move with it.
    await lab.setPref64(ADDR.pref64Alt);
    const moved = await waitFor(async () => (await lab.clatdStatus(clatd))?.pref64 === ADDR.pref64Alt, 15_000, 250);
    assert.ok(
      moved,
      `clatd did not take ${ADDR.pref64Alt} within 15 s: ${JSON.stringify(await lab.clatdStatus(clatd))}`,
    );
    const cap = await lab.capture(lab.names.router, lab.iface.routerBridge, 'icmp6');
    const after = await lab.exec(h, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ADDR.server], { allowFail: true });
    const frames = await cap.stop();
    const dsts = frames.map((f) => ipv6OfFrame(f.data)?.dst ?? '');
    assert.equal(pingStats(after.stdout).received, 3, after.stdout);
    const toNew = dsts.filter((d) => d === '2001:db8:65::c633:640a').length;
    const toOld = dsts.filter((d) => d === '2001:db8:64::c633:640a').length;
    assert.ok(
      toNew >= 3,
      `translated packets on the router: ${toNew} to the new prefix, ${toOld} to the old one, of ${frames.length} captured (${[...new Set(dsts)].join(' ')}); tcpdump: ${cap.proc.output().trim()}`,
    );
    assert.equal(clatd.pid, pid);
    assert.ok(clatd.running, 'clatd exited on the change');
    const during = pingStats((await flow).stdout);
    assert.ok(during.received > 0, 'no reply at all during the change');
  });
});

describe('clatd in the lab: no PREF64 in the RA', () => {
  const suite = clatdSuite({ raPref64: false, blobBytes: 4096 });

  test('the prefix comes from DNS64 (ipv4only.arpa), and IPv4 works', async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const s = await r.lab.clatdStatus(r.clatd);
    assert.equal(s?.pref64, ADDR.pref64);
    assert.equal(s?.pref64Source, 'dns64');
    const p = await r.lab.exec(r.lab.names.host, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ADDR.server], {
      allowFail: true,
    });
    assert.equal(pingStats(p.stdout).received, 2, p.stdout);
  });
});
