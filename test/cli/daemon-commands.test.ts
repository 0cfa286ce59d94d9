/** `clatd run`, `status` and `discover` as a user meets them: help, bad flags, no daemon. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { formatDiscovery } from '../../src/cli/discover.js';
import { controlPathFor, formatStatus } from '../../src/cli/status.js';
import { RUN_OPTIONS } from '../../src/daemon/config.js';
import { emptyCounters } from '../../src/daemon/daemon.js';
import { CLI, ROOT } from '../helpers/paths.js';

/** Why the privilege test is skipped, or false: it drops to nobody with setpriv. */
const NEED_SETPRIV: string | false =
  process.getuid?.() !== 0
    ? 'needs root to drop privileges'
    : spawnSync('setpriv', ['--version']).status !== 0
      ? 'needs setpriv (Debian package util-linux)'
      : false;

function clatd(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('clatd run / status / discover on the command line', () => {
  test('--help of each command lists its options and exits 0', () => {
    const run = clatd('run', '--help');
    assert.equal(run.code, 0);
    for (const name of Object.keys(RUN_OPTIONS)) assert.match(run.out, new RegExp(`--${name}\\b`), name);
    assert.match(run.out, /default: 2048/);
    const status = clatd('status', '--help');
    assert.equal(status.code, 0);
    assert.match(status.out, /--json/);
    const discover = clatd('discover', '--help');
    assert.equal(discover.code, 0);
    assert.match(discover.out, /--pref64/);
    assert.match(discover.out, /--wait/);
    assert.match(discover.out, /Needs no privileges/);
  });

  test('unknown flags and bad values: one line naming the flag, exit 2', () => {
    for (const [args, re] of [
      [['run', '--bogus'], /--bogus/],
      [['--route-metric', 'high'], /--route-metric must be an integer/],
      [['run', '--dad', 'sometimes'], /--dad must be one of strict, optimistic, off/],
      [['run', '--metrics', '0.0.0.0:9464'], /--metrics address 0\.0\.0\.0 is not loopback/],
      [['run', '--pref64', '2001:db8::/33'], /--pref64/],
      [['run', '--config', '/nonexistent/clatd.toml'], /--config: cannot read/],
      [['status', '--bogus'], /--bogus/],
      [['discover', '--wait', 'x'], /--wait must be an integer/],
      [['run', '--workers', '-1'], /--workers needs a value; one starting with "-" is written --workers=VALUE/],
      [['run', '--workers=-1'], /--workers must be between 0 and 256, got -1/],
    ] as [string[], RegExp][]) {
      const r = clatd(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, re);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
  });

  test('messages a new operator meets: exact text, exit 2 for usage errors', () => {
    const exact: [string[], number, string][] = [
      [['discover', '--pref64', '2001:db8::/33'], 2, 'clatd discover: --pref64 is not a NAT64 prefix: '],
      [['run', '--bogus'], 2, "clatd run: Unknown option '--bogus' (try clatd run --help)\n"],
      [['--bogus'], 2, "clatd run: Unknown option '--bogus' (try clatd run --help)\n"],
      [['discover', '--nope'], 2, "clatd discover: Unknown option '--nope' (try clatd discover --help)\n"],
      [['frobnicate'], 2, 'clatd: unknown command "frobnicate" (try clatd --help)\n'],
      [['lab', '--destroy', 'nosuch'], 1, 'clatd lab: no kept lab with tag nosuch (clatd lab --list shows them)\n'],
    ];
    for (const [args, code, text] of exact) {
      const r = clatd(...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`);
      if (text.endsWith('\n')) assert.equal(r.err, text);
      else assert.ok(r.err.startsWith(text), r.err);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
    const dir = mkdtempSync(join(tmpdir(), 'clatd-msg-'));
    try {
      const file = join(dir, 'clatd.toml');
      writeFileSync(file, '# clatd\npref64 = 64:ff9b::/96\n');
      let r = clatd('run', '--config', file);
      assert.equal(r.code, 2);
      assert.equal(
        r.err,
        `clatd run: ${file}:2:10: invalid TOML: invalid date; a text value is written in quotes: pref64 = "64:ff9b::/96"\n`,
      );
      writeFileSync(file, 'workers = 1.5\n');
      r = clatd('run', '--config', file);
      assert.equal(r.code, 2);
      assert.equal(r.err, `clatd run: ${file}: key "workers" must be a whole number, got 1.5\n`);
      // cleanup reads the same file (the units pass it) and names itself in the message.
      writeFileSync(file, 'interface = eth0\n');
      r = clatd('cleanup', '--config', file);
      assert.equal(r.code, 2);
      assert.match(
        r.err,
        new RegExp(
          `^clatd cleanup: ${file}:1:13: invalid TOML: .*; a text value is written in quotes: interface = "eth0"\n$`,
        ),
      );
      r = clatd('install-service', '--config', 'relative.toml');
      assert.equal(r.code, 2);
      assert.equal(r.err, 'clatd install-service: --config must be an absolute path, got "relative.toml"\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--help lists --version, which prints the version', () => {
    const help = clatd('--help');
    assert.equal(help.code, 0);
    assert.match(help.out, /^ {2}-V, --version +print the version of clatd$/m);
    assert.match(help.out, /^ {2}-h, --help +show this help$/m);
    const v = clatd('--version');
    assert.equal(v.code, 0);
    assert.match(v.out, /^clatd \d+\.\d+\.\d+\n$/);
    // The version is package.json's, which every install ships beside dist/.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(v.out, `clatd ${pkg.version}\n`);
  });

  test('run without privilege: one sentence saying what to do, exit 1', { skip: NEED_SETPRIV }, () => {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'run'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.ifError(r.error);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^clatd run: needs CAP_NET_ADMIN and CAP_NET_RAW: run it as root \(sudo clatd\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  test('status without a daemon: one clear line, exit 1', () => {
    const r = clatd('status', '--control', '/nonexistent/clatd.sock');
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot reach the control socket \/nonexistent\/clatd\.sock: no clatd is running there/);
  });

  test('status text shows state, addresses, prefix source, DAD, MTU and counters', () => {
    const counters = emptyCounters();
    counters['64'] = {
      packets: 5,
      bytes: 500,
      drops: { D64_HOP_LIMIT: 1 },
      icmpErrors: 1,
      icmpRateLimited: 0,
      translated: 3,
      neighbor: 1,
      offloaded: 2,
    };
    const status: Parameters<typeof formatStatus>[0] = {
      state: 'running',
      reason: null,
      pid: 42,
      uptimeSec: 3725,
      stateSinceSec: 65,
      uplink: { name: 'eth0', ifindex: 2, up: true },
      pref64: '64:ff9b::/96',
      pref64Source: 'dns64',
      clat4: '192.0.0.4',
      clat6: '2001:db8::1',
      prefix64: '2001:db8::/64',
      uplinkMode: null,
      tun: 'v4-eth0',
      mtu: 1472,
      offload: 'in use (eth0 ingress, v4-eth0 egress)',
      dad: {
        mode: 'strict',
        result: 'unique',
        attempts: 2,
        duplicates: [{ address: '2001:db8::2', by: 'NA' }],
        blockedRounds: 0,
        retryInSec: null,
        skipped: null,
      },
      pref64Routers: [],
      pref64Refused: [],
      counters,
      changes: { 'prefix64-changed': 1 },
      transitions: {} as never,
      dadAttempts: 2,
      errors: 0,
    };
    const t = formatStatus(status);
    assert.match(t, /^clatd 42: running for 1m 5s\n/);
    assert.match(t, /NAT64\s+64:ff9b::\/96 from DNS64 \(RFC 7050\)/);
    assert.match(t, /CLAT IPv6\s+2001:db8::1 \(in 2001:db8::\/64\)/);
    assert.match(t, /DAD\s+unique \(--dad strict, 2 attempt\(s\)\)\n\s+duplicate 2001:db8::2: NA\n/);
    assert.match(t, /TUN\s+v4-eth0, MTU 1472/);
    assert.match(t, /offload\s+in use \(eth0 ingress, v4-eth0 egress\)/);
    assert.match(t, /uptime\s+1h 2m 5s/);
    assert.match(
      t,
      /6->4\s+5 packets, 500 bytes, 1 dropped, 3 translated \(2 in the kernel\), 1 neighbor discovery \(answered by the kernel\)\n\s+D64_HOP_LIMIT: 1\n\s+1 ICMP errors sent back, 0 more held back/,
    );
    assert.doesNotMatch(t, /4->6.*\n\s+\d+ ICMP errors/);
    assert.doesNotMatch(t, /dropped by the kernel/, 'no line while there are no kernel drops');
    const withDrops = formatStatus({ ...status, counters: { ...counters, io: { packetKernelDrops: 7 } } });
    assert.match(withDrops, /held back by the rate limit\n\s+7 more dropped by the kernel before clatd read them/);
    assert.match(t, /changes\s+prefix64-changed=1/);
    assert.doesNotMatch(t, /^\s+ND\s/m, 'no responder line when the kernel answers');
    const responding = formatStatus({
      ...status,
      responder: {
        address: '2001:db8::1',
        answering: true,
        answered: 7,
        nud: 2,
        defended: 1,
        announced: 1,
        sendErrors: 0,
        ignored: { 'before-dad': 3, 'bad-checksum': 1 },
      },
    });
    assert.match(
      responding,
      /ND\s+clatd answers neighbor solicitations itself \(answering for 2001:db8::1\)\n\s+7 answered \(2 unreachability probes\), 1 DAD probes of others defended, 1 announced, 0 send errors\n\s+ignored: before-dad 3, bad-checksum 1\n/,
    );
    assert.match(responding, /1 neighbor discovery \(answered by clatd\)/);
  });

  test('status finds the control socket: --control, --interface, or the only one running', () => {
    assert.equal(
      controlPathFor('/x.sock', 'eth0', () => []),
      '/x.sock',
    );
    assert.equal(
      controlPathFor(undefined, 'eth0', () => []),
      '/run/clatd/eth0.sock',
    );
    assert.equal(
      controlPathFor(undefined, undefined, () => ['/run/clatd/wlan0.sock']),
      '/run/clatd/wlan0.sock',
    );
    assert.throws(() => controlPathFor(undefined, undefined, () => []), /no clatd is running/);
    assert.throws(
      () => controlPathFor(undefined, undefined, () => ['/run/clatd/a.sock', '/run/clatd/b.sock']),
      /several clatd are running .*choose one with --interface or --control/,
    );
  });

  test('discover text', () => {
    const t = formatDiscovery({
      uplink: { name: 'eth0', ifindex: 2, how: 'IPv6 default route', up: true, mtu: 1500 },
      pref64: '64:ff9b::/96',
      pref64Source: 'ra',
      notes: [],
      unchecked: ['clatd run itself: it needs CAP_NET_RAW, which this process lacks'],
      nativeIPv4: false,
      verdict: 'translate: ...',
      clat4: '192.0.0.4',
      uplinkMode: {
        mode: 2,
        announce: 'respond',
        name: 'on-link /64, clatd answers neighbor solicitations',
        how: 'random in 2001:db8::/64; clatd answers neighbor solicitations for it',
        why: [{ mode: 1, why: 'eth0 has no prefix covering 2001:db8::/64, only 2001:db8::10/128' }],
      },
      clat6Sample: '2001:db8::1',
      sourceAddress: '2001:db8::10',
      prefix64: '2001:db8::/64',
      mtu: 1472,
      dad: { mode: 'strict', transmits: 1, retransMs: 1000 },
    });
    assert.match(t, /uplink\s+eth0 \(IPv6 default route, up, MTU 1500\)/);
    assert.match(t, /NAT64 prefix\s+64:ff9b::\/96 from Router Advertisement \(RFC 8781\)/);
    assert.match(t, /run would\s+translate/);
    assert.match(t, /^address mode +2: random in 2001:db8::\/64; clatd answers/m);
    assert.match(t, /^ +not 1: eth0 has no prefix covering 2001:db8::\/64, only 2001:db8::10\/128$/m);
    assert.match(t, /^not checked +clatd run itself: it needs CAP_NET_RAW, which this process lacks$/m);
  });
});
