/**
 * Teardown at the fd limit: slow control clients once used up every fd, `nft` then failed with
 * EMFILE and the daemon's teardown left its nftables table and proxy_delay=0 behind. Here a child
 * process in a namespace, limited to 64 fds, builds the uplink side on eth0 (a veth), takes every
 * other fd and takes the side down: with the spare fds `clatd run` reserves, the table is deleted
 * and proxy_delay given back; without them, both stay (and proxy_delay stays recorded for the next
 * start). Only the namespace's firewall is touched.
 *
 *   netns: eth0 (veth to peer0, 2001:db8:1::2/64, proxy_delay 80)  ←  child: SystemUplink on eth0
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NEED_ROOT, type Netns, withNetns } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'fd-exhaustion-child.js');

interface ChildResult {
  exhausted: boolean;
  filled: number;
  reserved: number;
  error?: string;
}

function setUp(ns: Netns): void {
  ns.sh(
    'ip link add eth0 type veth peer name peer0; ip link set peer0 up; ip link set eth0 up; ip addr add 2001:db8:1::2/64 dev eth0 nodad; ' +
      'sysctl -qw net.ipv6.neigh.eth0.proxy_delay=80',
  );
}

function runChild(ns: Netns, mode: string, dir: string): ChildResult {
  const out = ns.exec('prlimit', '--nofile=64:64', process.execPath, CHILD, '--run', mode, dir);
  return JSON.parse(out.trim().split('\n').at(-1) ?? '') as ChildResult;
}

const tables = (ns: Netns) => ns.exec('nft', 'list', 'tables');
const proxyDelay = (ns: Netns) => ns.exec('sysctl', '-n', 'net.ipv6.neigh.eth0.proxy_delay').trim();

describe('teardown at the fd limit', { skip: NEED_ROOT }, () => {
  test('with the spare fds: the nft table is deleted and proxy_delay given back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clatd-fds-'));
    try {
      await withNetns(async (ns) => {
        setUp(ns);
        const r = runChild(ns, 'reserve', dir);
        assert.equal(r.exhausted, true, `every fd was in use (${r.filled} filled): a plain spawn failed`);
        assert.equal(r.error, undefined);
        assert.equal(r.reserved, 32, 'the spare fds are held again afterwards');
        assert.doesNotMatch(tables(ns), /clatd-eth0/);
        assert.equal(proxyDelay(ns), '80');
        assert.equal(existsSync(join(dir, 'eth0.host-settings.json')), false);
      }, 'fds');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without them (as before): EMFILE, both left behind, proxy_delay still recorded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clatd-fds-'));
    try {
      await withNetns(async (ns) => {
        setUp(ns);
        const r = runChild(ns, 'none', dir);
        assert.equal(r.exhausted, true);
        assert.match(r.error ?? '', /EMFILE/);
        assert.match(tables(ns), /clatd-eth0/);
        assert.equal(proxyDelay(ns), '0');
        // The host's value is not lost: the next start or `clatd cleanup` gives it back.
        const record = JSON.parse(readFileSync(join(dir, 'eth0.host-settings.json'), 'utf8'));
        assert.deepEqual(record, { 'eth0/proxy_delay': 80 });
      }, 'fds');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
