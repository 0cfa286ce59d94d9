/**
 * The Debian package under a real systemd: a Debian 13 root (test/helpers/nspawn.ts: debootstrap,
 * cached) booted with `systemd-nspawn --boot` into the host side of the host/router pair of
 * test/helpers/clatd-run.ts, its uplink renamed eth0. The router sends Router Advertisements with
 * PREF64 and answers for 192.0.2.1 behind that prefix. In the container: `apt-get install` of the
 * .deb `npm run package` built (nodejs 20 and nftables from Debian 13's own archive), then
 * `systemctl enable --now clatd@eth0`, reload, `kill -9`, the journal and stop, then clatd.service,
 * each checked from inside (systemctl, journalctl, ping) and from outside, in the container's network
 * namespace (links, routes, nft tables, tc filters, sysctls).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVER6, startRaSender, withHostAndRouter } from '../helpers/clatd-run.js';
import type { Netns, VethPair } from '../helpers/netns.js';
import { bootContainer, type Container, cachedDebianRoot, NEED_NSPAWN, SUITE } from '../helpers/nspawn.js';
import { ROOT } from '../helpers/paths.js';
import { after, before, describe, test } from '../helpers/suite.js';

const NODE_MAJOR = Number(
  spawnSync('/usr/bin/node', ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout,
);
/** What `npm run package` needs (as in deb.test.ts), then what the container needs. */
const NEED =
  (spawnSync('dpkg-deb', ['--version']).status === 0 ? false : 'needs dpkg-deb (Debian package dpkg)') ||
  (spawnSync('g++', ['--version']).status === 0 ? false : 'needs g++ (Debian package g++)') ||
  (NODE_MAJOR >= 20 ? false : 'needs /usr/bin/node 20 or later (Debian package nodejs)') ||
  (existsSync('/usr/include/node/node_api.h') ? false : 'needs /usr/include/node (Debian package libnode-dev)') ||
  NEED_NSPAWN;

const UNIT = 'clatd@eth0.service';
const TUN = 'v4-eth0';
const PROXY_DELAY = '/proc/sys/net/ipv6/neigh/eth0/proxy_delay';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (which throws while not yet true) until it passes or `ms` ran out; then throws its last error. */
async function eventually<T>(check: () => T, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    await sleep(250);
  }
}

describe(`the Debian package under a real systemd (Debian ${SUITE} booted with systemd-nspawn)`, { skip: NEED }, () => {
  let tmp = '';
  let host: Netns;
  let c: Container;
  let release: () => void = () => {};
  let network: Promise<void> | undefined;
  let proxyDelay = '';

  /** The unit's properties, by name. */
  const show = (...props: string[]) => {
    const out = c.exec('systemctl', 'show', UNIT, ...props.map((p) => `--property=${p}`));
    return Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  };
  /** The unit's journal, message text only. */
  const journal = (...args: string[]) =>
    c
      .exec('journalctl', '--no-pager', '-o', 'cat', '-u', UNIT, ...args)
      .trim()
      .split('\n')
      .filter(Boolean);
  /** `clatd status --json` inside the container, through the unit's control socket. */
  const status = () => JSON.parse(c.exec('clatd', 'status', '--json', '-i', 'eth0'));
  const running = () => {
    const s = status();
    assert.equal(s.state, 'running', JSON.stringify(s));
    return s;
  };
  const pings = () => {
    const r = c.tryExec('ping', '-c', '3', '-i', '0.3', '-W', '3', '192.0.2.1');
    assert.match(r.stdout, / [123] received/, `${r.stdout}${r.stderr}`);
  };
  /** What clatd may leave in the container's network namespace, seen from outside. */
  const leftovers = () => {
    const out: string[] = [];
    if (host.tryExec('ip', 'link', 'show', TUN).status === 0) out.push(`link ${TUN}`);
    for (const fam of ['-4', '-6']) {
      const r = host.exec('ip', fam, 'route', 'show', 'proto', '199').trim();
      if (r) out.push(`routes ${r}`);
    }
    const t = host.exec('nft', 'list', 'tables').trim();
    if (/clatd-/.test(t)) out.push(`nft ${t}`);
    for (const dir of ['ingress', 'egress']) {
      const f = host.tryExec('tc', 'filter', 'show', 'dev', 'eth0', dir).stdout.trim();
      if (f) out.push(`tc ${dir} ${f}`);
    }
    const d = host.exec('cat', PROXY_DELAY).trim();
    if (d !== proxyDelay) out.push(`proxy_delay ${d} (was ${proxyDelay})`);
    return out;
  };

  before(
    async () => {
      tmp = mkdtempSync(join(tmpdir(), 'clatd-nspawn-test-'));
      const debs = join(tmp, 'deb');
      const r = spawnSync('npm', ['run', '--silent', 'package'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 300_000,
        env: { ...process.env, CLATD_DEB_OUT: debs },
      });
      assert.equal(r.status, 0, r.stderr);
      const root = cachedDebianRoot((s) => process.stderr.write(`${s}\n`));

      // The host/router pair, held open until `after`.
      const pair = await new Promise<VethPair>((resolve, reject) => {
        network = withHostAndRouter(async (p, dir) => {
          p.b.exec('ip', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
          startRaSender(p, dir, 600);
          // The name an administrator would see; its accept_ra stays with it.
          p.a.sh(
            'ip link set veth-a down; ip link set veth-a name eth0; ' +
              'ip addr add 2001:db8:1::10/64 dev eth0 nodad; ip link set eth0 up; ' +
              'for i in $(seq 250); do ip -6 addr show dev eth0 scope link | grep -q fe80 && break; sleep 0.02; done; ' +
              // The default route from the router's answer to the Router Solicitation of eth0 coming up.
              'for i in $(seq 100); do ip -6 route show default | grep -q "dev eth0" && exit 0; sleep 0.1; done; ' +
              'echo "no IPv6 default route from a Router Advertisement on eth0" >&2; exit 1',
          );
          const done = new Promise<void>((r2) => {
            release = r2;
          });
          resolve(p);
          await done;
        });
        network.catch(reject);
      });
      host = pair.a;
      proxyDelay = host.exec('cat', PROXY_DELAY).trim();
      c = await bootContainer({
        root,
        netns: `/run/netns/${host.name}`,
        binds: [[debs, '/mnt/clatd-deb']],
      });
    },
    { timeout: 1_200_000 },
  );

  after(async () => {
    await c?.stop();
    release();
    await network?.catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  });

  test('apt installs the .deb: the units are known to systemd, nothing is enabled or started', () => {
    const deb = c.exec('sh', '-c', 'ls /mnt/clatd-deb/clatd-node_*.deb').trim();
    c.exec('apt-get', 'install', '-y', '-q', '--no-install-recommends', deb);
    assert.match(c.exec('clatd', '--version'), /^clatd \d/);
    assert.match(c.exec('node', '--version'), /^v2\d\./, "Debian's own nodejs");
    // The postinst ran daemon-reload: systemd knows the new units without being told again.
    const files = c.exec('systemctl', 'list-unit-files', '--no-legend', 'clatd*').trim().split('\n');
    assert.deepEqual(
      files.map((l) => l.split(/\s+/).slice(0, 2).join(' ')),
      ['clatd.service disabled', 'clatd@.service disabled'],
    );
    assert.equal(c.tryExec('systemctl', 'is-active', UNIT).stdout.trim(), 'inactive');
  });

  test('systemctl enable --now clatd@eth0: active as a dynamic user, IPv4 works in the container, through the kernel fast path', async () => {
    c.exec('systemctl', 'enable', '--now', UNIT);
    assert.equal(c.exec('systemctl', 'is-enabled', UNIT).trim(), 'enabled');
    const s = await eventually(running);
    const p = show('ActiveState', 'SubState', 'Type', 'MainPID', 'StatusText', 'NRestarts');
    assert.equal(p.ActiveState, 'active');
    assert.equal(p.SubState, 'running');
    assert.equal(p.Type, 'notify');
    assert.match(p.StatusText, /\S/, 'STATUS= sent');
    const uid = /^Uid:\s*(\d+)/m.exec(c.exec('cat', `/proc/${p.MainPID}/status`))?.[1];
    assert.notEqual(uid, '0', 'not root');
    pings();
    assert.match(status().offload, /^in use/, `offload: ${s.offload}`);
    assert.equal(host.exec('cat', PROXY_DELAY).trim(), '0', 'the uplink setting clatd changes while it runs');
  });

  test('systemctl reload re-reads /etc/clatd/clatd.toml: as packaged, then a route-metric that applies live', async () => {
    const reread = () => journal().filter((l) => /configuration re-read/.test(l)).length;
    c.exec('systemctl', 'reload', UNIT);
    await eventually(() => assert.equal(reread(), 1, journal().join('\n')));
    assert.equal(show('ActiveState').ActiveState, 'active');

    c.exec('sh', '-c', 'echo "route-metric = 100" >> /etc/clatd/clatd.toml');
    c.exec('systemctl', 'reload', UNIT);
    await eventually(() =>
      assert.match(host.exec('ip', '-4', 'route', 'show', 'dev', TUN), /^default .*metric 100\b/m),
    );
    await eventually(running);
    assert.equal(reread(), 2);
    pings();
  });

  test('kill -9 of the main PID: ExecStopPost tidies up, Restart=on-failure starts it again', async () => {
    const before = show('MainPID', 'NRestarts');
    c.exec('sh', '-c', `kill -9 ${before.MainPID}`);
    const after = await eventually(() => {
      const p = show('ActiveState', 'MainPID', 'NRestarts');
      assert.equal(p.NRestarts, String(Number(before.NRestarts) + 1));
      assert.equal(p.ActiveState, 'active');
      return p;
    });
    assert.notEqual(after.MainPID, before.MainPID);
    // What the killed run left (its nft table, proxy_delay) was removed by `clatd cleanup` before
    // the new start, which so found nothing of it.
    const lines = journal();
    const killedAt = lines.findIndex((l) => /status=9\/KILL/.test(l));
    assert.ok(killedAt >= 0, lines.join('\n'));
    const since = lines.slice(killedAt);
    assert.ok(
      since.some((l) => /^removed: nft table/.test(l)),
      since.join('\n'),
    );
    assert.ok(
      since.some((l) => /^removed: .*proxy_delay/.test(l)),
      since.join('\n'),
    );
    assert.ok(!since.some((l) => /removed leftover of an earlier clatd/.test(l)), since.join('\n'));
    await eventually(running);
    pings();
  });

  test('journalctl -p warning: the kill and a TUN deleted from outside; nothing of a start or a reload', async () => {
    host.exec('ip', 'link', 'del', TUN);
    const expected = [
      /^clatd@eth0\.service: Main process exited, code=killed, status=9\/KILL$/,
      /^clatd@eth0\.service: Failed with result 'signal'\.$/,
      /^warn {2}change: v4-eth0 was deleted; creating it again kind=tun-gone$/,
      /^warn {2}change: restarting the datapath: v4-eth0 was deleted kind=datapath-restarted$/,
    ];
    const warnings = await eventually(() => {
      const w = journal('-p', 'warning');
      assert.equal(w.length, expected.length, w.join('\n'));
      return w;
    });
    for (const [i, l] of warnings.entries()) assert.match(l, expected[i], warnings.join('\n'));
    assert.deepEqual(journal('-p', 'err'), []);
    // The rest was said at lower levels: journald took each line's level from clatd's <N> prefix.
    assert.ok(journal('-p', 'info').some((l) => /^info {2}reload: configuration re-read$/.test(l)));
    // The state stays running while the datapath restarts; its own line says when it is back.
    await eventually(() => assert.ok(journal().some((l) => /translating again after a datapath restart/.test(l))));
    pings();
  });

  test('systemctl stop: inactive, and ExecStopPost leaves nothing (seen from outside, in its namespace)', () => {
    c.exec('systemctl', 'stop', UNIT);
    const p = show('ActiveState', 'Result', 'ExecMainStatus');
    assert.equal(
      p.ActiveState,
      'inactive',
      `${JSON.stringify(p)}\n${journal('-o', 'short-monotonic').slice(-25).join('\n')}`,
    );
    assert.deepEqual(leftovers(), []);
    assert.equal(c.tryExec('test', '-e', '/run/clatd/eth0.sock').status, 1, 'control socket removed');
    assert.equal(c.tryExec('test', '-e', '/run/clatd/eth0.host-settings.json').status, 1, 'record removed');
  });

  test('clatd.service finds the uplink itself (the IPv6 default route): IPv4 works, stop leaves nothing', async () => {
    c.exec('systemctl', 'start', 'clatd.service');
    await eventually(running);
    const lines = c.exec('journalctl', '--no-pager', '-o', 'cat', '-u', 'clatd.service').trim().split('\n');
    const uplink = lines.find((l) => /^info {2}uplink: /.test(l));
    assert.match(String(uplink), /^info {2}uplink: eth0 \((?!given)/, lines.join('\n'));
    pings();
    c.exec('systemctl', 'stop', 'clatd.service');
    assert.deepEqual(leftovers(), []);
  });
});
