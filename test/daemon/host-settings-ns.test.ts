/**
 * Host settings of router mode in a namespace made for the test: IPv4 forwarding of an interface
 * recorded with the host's value before it changes (in the LAN's own record, beside the uplink's),
 * given back by restore, and by a fresh instance reading the record after a crash; a vanished
 * interface's setting is dropped from the record, not retried for ever.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostSettings } from '../../src/daemon/system/host-settings.js';
import { NEED_ROOT, withNetns } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

describe('host settings: IPv4 forwarding', { skip: NEED_ROOT }, () => {
  test('recorded before the change, given back, after a crash too; a gone interface is dropped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clatd-hs-'));
    try {
      await withNetns((ns) => {
        ns.sh('ip link add lan0 type veth peer name p0; ip link add lan1 type veth peer name p1');
        const fwd = (i: string) => ns.exec('sysctl', '-n', `net.ipv4.conf.${i}.forwarding`).trim();
        assert.equal(fwd('lan0'), '0');
        const hs = ns.enter(() => new HostSettings(dir, 'eth0', 'lan'));
        assert.equal(hs.file, join(dir, 'eth0:lan.host-settings.json'));
        assert.equal(
          ns.enter(() => hs.setIpv4Conf('lan0', 'forwarding', 1)),
          'written',
        );
        assert.equal(
          ns.enter(() => hs.setIpv4Conf('lan0', 'forwarding', 1)),
          'same',
        );
        assert.equal(
          ns.enter(() => hs.setIpv4Conf('nosuch0', 'forwarding', 1)),
          'failed',
        );
        assert.equal(fwd('lan0'), '1');
        assert.deepEqual(JSON.parse(readFileSync(hs.file, 'utf8')), { 'lan0/ipv4.forwarding': 0 });
        const back = ns.enter(() => hs.restore());
        assert.deepEqual(back, ["IPv4 forwarding of lan0 back to 0 (the host's value before clatd)"]);
        assert.equal(fwd('lan0'), '0');
        assert.equal(existsSync(hs.file), false, 'the record goes once everything is given back');

        // A crash: the record stays; a new instance (the next start) gives back the host's value.
        ns.enter(() => new HostSettings(dir, 'eth0', 'lan').setIpv4Conf('lan1', 'forwarding', 1));
        ns.enter(() => new HostSettings(dir, 'eth0', 'lan').setIpv4Conf('lan0', 'forwarding', 1));
        ns.sh('ip link del lan1');
        const after = ns.enter(() => new HostSettings(dir, 'eth0', 'lan').restore());
        assert.deepEqual(after, ["IPv4 forwarding of lan0 back to 0 (the host's value before clatd)"]);
        assert.equal(fwd('lan0'), '0');
        assert.equal(existsSync(join(dir, 'eth0:lan.host-settings.json')), false);
        // The uplink's own record is another file.
        assert.equal(new HostSettings(dir, 'eth0').file, join(dir, 'eth0.host-settings.json'));
      }, 'hs');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
