/**
 * `clatd cleanup` in a namespace, as systemd's ExecStopPost= runs it after a clatd was killed:
 * the nft table it left (and an earlier version's inet one) is removed and the uplink's
 * proxy_delay gets the host's own value back from the record (not the 0 clatd had set); run
 * again, it finds nothing; with the TUN of a live clatd present it touches nothing.
 *
 *   ns: up0 (veth, 2001:db8:1::2/64)   nft tables ip6 and inet clatd-up0   proxy_delay 0, record says 80
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NEED_ROOT, withNetns } from '../helpers/netns.js';
import { ROOT } from '../helpers/paths.js';
import { describe, test } from '../helpers/suite.js';

const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

describe('clatd cleanup', { skip: NEED_ROOT }, () => {
  test('removes a crashed run’s nft table, gives back the recorded proxy_delay, and is idempotent', async () => {
    await withNetns(async (ns) => {
      ns.sh(`ip link add up0 type veth peer name up1; ip link set up0 up; ip link set up1 up; ip -6 addr add 2001:db8:1::2/64 dev up0 nodad
        nft add table ip6 clatd-up0; nft add table inet clatd-up0
        sysctl -qw net.ipv6.neigh.up0.proxy_delay=0`);
      const dir = mkdtempSync(join(tmpdir(), 'clatd-cleanup-'));
      const record = join(dir, 'up0.host-settings.json');
      writeFileSync(record, '{"up0/proxy_delay":80}\n');
      const sock = join(dir, 'up0.sock');
      const out = ns.exec('node', CLI, 'cleanup', '--interface', 'up0', '--control', sock);
      assert.match(out, /removed: nft table ip6 clatd-up0/);
      assert.match(out, /removed: nft table inet clatd-up0$/m);
      assert.match(out, /removed: proxy_delay of up0 back to 80/);
      assert.equal(ns.exec('sysctl', '-n', 'net.ipv6.neigh.up0.proxy_delay').trim(), '80');
      assert.doesNotMatch(ns.exec('nft', 'list', 'tables'), /clatd-up0/);
      assert.equal(existsSync(record), false, 'the record is gone once given back');
      assert.match(ns.exec('node', CLI, 'cleanup', '--interface', 'up0', '--control', sock), /nothing left on up0/);
    }, 'cln');
  });

  test('a live clatd’s TUN means nothing is a leftover: exit 1, nothing touched', async () => {
    await withNetns(async (ns) => {
      ns.sh(`ip link add up0 type veth peer name up1; ip link set up0 up; ip link set up1 up
        ip tuntap add dev v4-up0 mode tun; nft add table ip6 clatd-up0`);
      const dir = mkdtempSync(join(tmpdir(), 'clatd-cleanup-'));
      const r = ns.tryExec('node', CLI, 'cleanup', '-i', 'up0', '--control', join(dir, 'up0.sock'));
      assert.equal(r.status, 1);
      assert.match(r.stderr, /v4-up0 already exists and is held by a running process/);
      assert.match(ns.exec('nft', 'list', 'tables'), /clatd-up0/);
    }, 'cln');
  });
});
