/**
 * `clatd discover` as an ordinary user (uid 65534 through setpriv) in a network namespace: it shows
 * what any user may read (links, addresses, routes, PREF64 from Router Advertisements) and says
 * what it could not check and why, instead of failing on the nftables monitor that only `run` needs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RA_SENDER_PY } from '../../src/lab/scripts.js';
import { NEED_ROOT, type VethPair, withVethPair } from '../helpers/netns.js';
import { CLI } from '../helpers/paths.js';
import { describe, test } from '../helpers/suite.js';

const SKIP: string | false =
  NEED_ROOT ||
  (spawnSync('setpriv', ['--version']).status !== 0 ? 'needs setpriv (Debian package util-linux)' : false) ||
  (spawnSync('python3', ['--version']).status !== 0 ? 'needs python3 (the RA sender)' : false);

const VETH = { aAddr: '2001:db8:1::10/64', bAddr: '2001:db8:1::1/64', tag: 'disc' };

/** `clatd discover ARGS` in the host namespace as nobody, with no capabilities. */
function discoverAsNobody(p: VethPair, ...args: string[]) {
  return p.a.tryExec(
    'setpriv',
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    process.execPath,
    CLI,
    'discover',
    // The router answers DNS with "port unreachable" at once: no wait for a resolver.
    '--dns64-server',
    '2001:db8:1::1',
    ...args,
  );
}

async function withHostAndRouter(fn: (p: VethPair, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'clatd-disc-'));
  try {
    await withVethPair(async (p) => {
      p.a.exec('ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:1::1', 'dev', 'veth-a');
      p.a.exec('sysctl', '-qw', 'net.ipv6.conf.veth-a.accept_ra=2');
      await fn(p, dir);
    }, VETH);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('clatd discover without privileges', { skip: SKIP }, () => {
  test('no RA: shows the host, says the Router Solicitation and run need capabilities, exit 0', async () => {
    await withHostAndRouter(async (p) => {
      const r = discoverAsNobody(p, '--wait', '500');
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, /^uplink +veth-a \(IPv6 default route, up, MTU 1500\)$/m);
      assert.match(r.stdout, /^note +Router Advertisements: no PREF64 option on veth-a within 500 ms$/m);
      assert.match(r.stdout, /^CLAT IPv4 +192\.0\.0\.4$/m);
      assert.match(
        r.stdout,
        /^not checked +Router Solicitation: not sent \(a raw socket needs CAP_NET_RAW\), so only an RA the router sent by itself within 500 ms was seen$/m,
      );
      assert.match(
        r.stdout,
        /^not checked +clatd run itself: it needs CAP_NET_ADMIN and CAP_NET_RAW, which this process lacks \(run as root, or from clatd@\.service\)$/m,
      );
      assert.match(r.stdout, /^run would +wait: no NAT64 prefix found yet$/m);
      assert.doesNotMatch(r.stdout + r.stderr, /EPERM|NETLINK_NETFILTER/);
    });
  });

  test('an RA the router sends by itself is seen (rtnetlink needs no privilege); --pref64 and --json too', async () => {
    await withHostAndRouter(async (p, dir) => {
      const ra = {
        iface: 'veth-b',
        prefix: '2001:db8:1::',
        prefixLen: 64,
        routerLifetimeS: 600,
        intervalS: 1,
        rdnss: '2001:db8:1::1',
        pref64: '2001:db8:64::/96',
        pref64LifetimeS: 600,
      };
      writeFileSync(join(dir, 'ra.json'), JSON.stringify(ra));
      writeFileSync(join(dir, 'ra.py'), RA_SENDER_PY);
      p.b.spawn('python3', [join(dir, 'ra.py'), join(dir, 'ra.json')], { stdio: 'ignore' });
      const r = discoverAsNobody(p, '--wait', '5000');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^NAT64 prefix +2001:db8:64::\/96 from Router Advertisement \(RFC 8781\)$/m);
      assert.doesNotMatch(r.stdout, /Router Solicitation/, 'an RA came: the missing solicitation did not matter');
      assert.match(r.stdout, /^source +2001:db8:1:\S* \(in 2001:db8:1::\/64\)$/m, 'addresses and routes are read');
      assert.match(r.stdout, /^not checked +clatd run itself: it needs CAP_NET_ADMIN and CAP_NET_RAW/m);
      assert.match(r.stdout, /^run would +translate: 192\.0\.0\.4 <-> 2001:db8:1:/m);

      const j = discoverAsNobody(p, '--json', '--pref64', '64:ff9b::/96', '--wait', '0');
      assert.equal(j.status, 0, j.stderr);
      const d = JSON.parse(j.stdout);
      assert.equal(d.pref64, '64:ff9b::/96');
      assert.deepEqual(d.unchecked, [
        'clatd run itself: it needs CAP_NET_ADMIN and CAP_NET_RAW, which this process lacks (run as root, or from clatd@.service)',
      ]);
    });
  });
});
