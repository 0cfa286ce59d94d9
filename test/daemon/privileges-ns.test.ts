/**
 * clatd as an ordinary user holding only CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF, in the namespaces
 * of test/helpers/clatd-run.ts: started as root with `--user nobody` (it switches after set-up), and
 * started without root at all (`setpriv`, as the systemd unit's User= and AmbientCapabilities= do).
 * Either way IPv4 works through the CLAT with the kernel fast path in use, a TUN deleted from
 * outside is built again, and SIGTERM leaves nothing behind.
 *
 * /dev/net/tun is 0600 on the test machines (udev makes it 0666 elsewhere). The daemon runs under
 * `unshare --mount`, where a node of the mode a test wants (on a tmpfs of that namespace, since a
 * nodev mount would refuse it) is bound over /dev/net/tun: the host's /dev is never changed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertPings,
  type LogLine,
  leftovers,
  PREFIX,
  type Running,
  running,
  said,
  setUp,
  startClatd,
  statusOf,
  withHostAndRouter,
} from '../helpers/clatd-run.js';
import { NEED_ROOT, type Netns } from '../helpers/netns.js';
import { CLI } from '../helpers/paths.js';
import { describe, test } from '../helpers/suite.js';

const SKIP: string | false =
  NEED_ROOT ||
  (spawnSync('setpriv', ['--version']).status !== 0 ? 'needs setpriv (Debian package util-linux)' : false) ||
  (spawnSync('unshare', ['--version']).status !== 0 ? 'needs unshare (Debian package util-linux)' : false);

const NOBODY = 65534;
/** CAP_NET_ADMIN (12), CAP_NET_RAW (13), CAP_BPF (39). */
const CAPS = (1n << 12n) | (1n << 13n) | (1n << 39n);

/**
 * A command that runs the rest of its arguments in a private mount namespace where /dev/net/tun is
 * a node of `mode` (made in `dir`, under a tmpfs mounted there only): 0666 as udev makes it, or
 * 0600 as on the test machines, whatever the host's is.
 */
function withTunNode(dir: string, mode: '0666' | '0600'): string[] {
  const d = join(dir, 'dev');
  mkdirSync(d);
  const script = [
    `mount -t tmpfs -o mode=0755,size=64k clatd-test-dev ${d}`,
    `mknod ${d}/tun c 10 200`,
    `chmod ${mode} ${d}/tun`,
    `mount --bind ${d}/tun /dev/net/tun`,
    'exec "$@"',
  ].join('\n');
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-ec', script, 'sh'];
}
const withOpenTun = (dir: string) => withTunNode(dir, '0666');

/** `setpriv` to nobody with only the three capabilities (ambient, so nft has them too). */
const AS_NOBODY_WITH_CAPS = [
  'setpriv',
  `--reuid=${NOBODY}`,
  `--regid=${NOBODY}`,
  '--clear-groups',
  '--inh-caps=-all,+net_admin,+net_raw,+bpf',
  '--ambient-caps=+net_admin,+net_raw,+bpf',
  '--bounding-set=-all,+net_admin,+net_raw,+bpf',
];

/** The credentials of a running process, from /proc/PID/status. */
function credentials(pid: number) {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(st);
    assert.ok(m, `${name} in /proc/${pid}/status`);
    return m[1];
  };
  const hex = (name: string) => BigInt(`0x${field(name)}`);
  return {
    name: field('Name'),
    uids: field('Uid').split(/\s+/).map(Number),
    gids: field('Gid').split(/\s+/).map(Number),
    groups: field('Groups').trim(),
    eff: hex('CapEff'),
    prm: hex('CapPrm'),
    amb: hex('CapAmb'),
    bnd: hex('CapBnd'),
  };
}

/** The credentials of every thread (V8's, libuv's, the workers'): none may have more than CAPS or be root. */
function threadCredentials(pid: number) {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    const uid = /^Uid:\s*(\d+)/m.exec(st)?.[1];
    const eff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(st)?.[1]}`);
    return { tid, uid: Number(uid), eff };
  });
}

/** IPv4 through the CLAT, counted by the kernel fast path. */
function assertKernelPings(ns: Netns, sock: string): void {
  const before = statusOf(ns, sock).counters['46'].offloaded ?? 0;
  assertPings(ns);
  const s = statusOf(ns, sock);
  assert.match(s.offload, /^in use \(veth-a ingress, v4-veth-a egress/);
  assert.ok((s.counters['46'].offloaded ?? 0) > before, `the pings did not go through the kernel (${s.offload})`);
}

/** Deletes the TUN from outside and waits until clatd has built it again and translates. */
async function deleteTunAndWait(ns: Netns, c: Running, sock: string): Promise<void> {
  const at = c.lines.length;
  ns.exec('ip', 'link', 'del', 'v4-veth-a');
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = statusOf(ns, sock);
    const back = ns.tryExec('ip', 'link', 'show', 'v4-veth-a').status === 0;
    if (back && s.state === 'running' && /^in use/.test(s.offload)) return;
    if (Date.now() > deadline) {
      assert.fail(
        `the TUN was not built again (state ${s.state}, offload ${s.offload}); clatd said:\n${said(c.lines.slice(at))}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The `run` folder in `dir` for the control socket, owned by nobody, who can reach it; returns it. */
function nobodysRunDir(dir: string): string {
  chmodSync(dir, 0o755);
  const run = join(dir, 'run');
  mkdirSync(run);
  spawnSync('chown', [`${NOBODY}:${NOBODY}`, run]);
  return run;
}

/** The whole run: start, credentials, pings, a deleted TUN, SIGTERM, nothing left. */
async function runAsNobody(
  wrap: (dir: string) => string[],
  /** --user: clatd switches itself (and makes the control folder); else it never was root. */
  extraArgs: (dir: string) => string[],
  check: (c: Running) => void = () => {},
): Promise<void> {
  const hostTun = statSync('/dev/net/tun').mode;
  await withHostAndRouter(async (p, dir) => {
    setUp(p);
    const sock = join(dir, 'run', 'c.sock');
    const args = extraArgs(dir);
    // With --user, clatd creates `run` and gives it to the user; nobody must reach it either way.
    if (args.includes('--user')) chmodSync(dir, 0o755);
    else nobodysRunDir(dir);
    const delay = p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim();
    const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock, ...args], [], {}, wrap(dir));
    await c.waitFor(running, 20_000);

    const pid = c.child.pid as number;
    const cred = credentials(pid);
    assert.equal(cred.name, 'node', 'the wrappers exec node: the child pid is the daemon');
    assert.deepEqual(cred.uids, [NOBODY, NOBODY, NOBODY, NOBODY]);
    assert.deepEqual(cred.gids, [NOBODY, NOBODY, NOBODY, NOBODY]);
    assert.equal(cred.groups, '');
    assert.equal(cred.eff, CAPS, `CapEff ${cred.eff.toString(16)}`);
    assert.equal(cred.prm, CAPS, `CapPrm ${cred.prm.toString(16)}`);
    assert.equal(cred.amb, CAPS, `CapAmb ${cred.amb.toString(16)}`);
    assert.equal(cred.bnd, CAPS, `CapBnd ${cred.bnd.toString(16)}`);
    for (const t of threadCredentials(pid)) {
      assert.equal(t.uid, NOBODY, `thread ${t.tid} runs as ${t.uid}`);
      assert.equal(t.eff & ~CAPS, 0n, `thread ${t.tid} holds ${t.eff.toString(16)}`);
    }
    check(c);

    assertKernelPings(p.a, sock);
    assert.equal(statusOf(p.a, sock).state, 'running');
    assert.equal(p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim(), '0', 'a net sysctl written');

    await deleteTunAndWait(p.a, c, sock);
    assertKernelPings(p.a, sock);

    c.child.kill('SIGTERM');
    const ex = await c.exited;
    assert.equal(ex.code, 0, said(c.lines));
    assert.deepEqual(leftovers(p.a), []);
    assert.equal(p.a.tryExec('test', '-e', sock).status, 1, 'control socket removed');
    assert.equal(p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim(), delay, 'given back');
  });
  assert.equal(statSync('/dev/net/tun').mode, hostTun, "the host's /dev/net/tun is untouched");
}

describe('clatd as an ordinary user with three capabilities', { skip: SKIP }, () => {
  test('--user nobody: started as root, it switches and keeps only the three; ping through the kernel fast path; a deleted TUN is rebuilt', async () => {
    const args = (dir: string) => {
      // A config file only root may read: this run reads it, a SIGHUP after the switch could not.
      writeFileSync(join(dir, 'clatd.toml'), 'dad = "strict"\n', { mode: 0o600 });
      return ['--user', 'nobody', '--config', join(dir, 'clatd.toml')];
    };
    await runAsNobody(withOpenTun, args, (c) => {
      const l = c.lines.find((x: LogLine) => x.event === 'privileges' && x.level === 'info');
      assert.ok(l, said(c.lines));
      assert.match(
        String(l.msg),
        /^running as user nobody \(uid 65534\), gid 65534, with CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF only$/,
      );
      const w = c.lines.filter((x: LogLine) => x.event === 'privileges' && x.level === 'warn');
      assert.equal(w.length, 1, said(c.lines));
      assert.match(
        String(w[0].msg),
        /clatd\.toml is not readable for user nobody \(uid 65534\) \(EACCES\): a SIGHUP cannot re-read it$/,
      );
    });
  });

  test('never root (setpriv, as the systemd unit runs it): the same', async () => {
    await runAsNobody(
      (dir) => [...withOpenTun(dir), ...AS_NOBODY_WITH_CAPS],
      () => [],
    );
  });

  test('address mode 5 (--v6 shared) with the three only: the veth pair and the NAT table made by the ip and nft it runs', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const run = nobodysRunDir(dir);
      const sock = join(run, 'c.sock');
      const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock, '--v6', 'shared'], [], {}, [
        ...withOpenTun(dir),
        ...AS_NOBODY_WITH_CAPS,
      ]);
      try {
        await c.waitFor(running, 20_000);
        assert.equal(credentials(c.child.pid as number).eff, CAPS);
        assert.equal(statusOf(p.a, sock).uplinkMode.mode, 5);
        const r = p.a.tryExec('ping', '-c', '3', '-i', '0.3', '-W', '3', '192.0.2.1');
        assert.match(r.stdout, / [123] received/, r.stdout + said(c.lines));
      } finally {
        c.child.kill('SIGTERM');
      }
      assert.equal((await c.exited).code, 0, said(c.lines));
      assert.deepEqual(leftovers(p.a), []);
      assert.doesNotMatch(p.a.exec('ip', '-o', 'link'), /x6-veth-a/);
    });
  });

  test("killed (-9), then `clatd cleanup` as the same user with the same capabilities (the unit's ExecStopPost=) gives everything back", async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const run = nobodysRunDir(dir);
      const sock = join(run, 'c.sock');
      const delay = p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim();
      const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock], [], {}, [
        ...withOpenTun(dir),
        ...AS_NOBODY_WITH_CAPS,
      ]);
      await c.waitFor(running, 20_000);
      c.child.kill('SIGKILL');
      await c.exited;
      assert.notDeepEqual(leftovers(p.a), [], 'a killed clatd leaves its TUN, routes and table');
      assert.equal(p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim(), '0');

      const [setpriv, ...privArgs] = AS_NOBODY_WITH_CAPS;
      const r = p.a.tryExec(setpriv, ...privArgs, process.execPath, CLI, 'cleanup', '-i', 'veth-a', '--control', sock);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.deepEqual(leftovers(p.a), []);
      assert.equal(p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim(), delay, 'given back');
      assert.equal(p.a.tryExec('test', '-e', join(run, 'veth-a.host-settings.json')).status, 1, 'record gone');
    });
  });

  test('--user with a /dev/net/tun the user cannot open (0600): one sentence and exit, no retry loop', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      chmodSync(dir, 0o755);
      const c = startClatd(
        p.a,
        ['--pref64', PREFIX, '--control', join(dir, 'run', 'c.sock'), '--user', 'nobody'],
        [],
        {},
        withTunNode(dir, '0600'),
      );
      const ex = await c.exited;
      assert.notEqual(ex.code, 0);
      const text = said(c.lines);
      assert.match(text, /\/dev\/net\/tun cannot be opened by user nobody \(uid 65534\) \(EACCES\)/);
      assert.doesNotMatch(text, /TUNSETIFF/);
      assert.deepEqual(leftovers(p.a), []);
    });
  });
});
