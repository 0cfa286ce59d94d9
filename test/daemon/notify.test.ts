/** systemd notification: datagrams on $NOTIFY_SOCKET, received here by a small Python listener. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from '../helpers/paths.js';

const LISTEN_PY = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('ready', flush=True)
s.settimeout(5)
for _ in range(int(sys.argv[2])):
    print(s.recv(4096).decode().replace('\\n', '|'), flush=True)
`;

/** Why a test is skipped for want of a tool (scripts/install-deps.sh installs both), or false. */
function needs(tool: string, pkg: string): string | false {
  return spawnSync(tool, ['--version']).status === 0 ? false : `needs ${tool} (Debian package ${pkg})`;
}
const NEED_PYTHON = needs('python3', 'python3');
const NEED_SYSTEMD_ANALYZE = needs('systemd-analyze', 'systemd');

describe('sd_notify', () => {
  test('sockaddr_un for paths and abstract names', async () => {
    const { sockaddrUn } = await import('../../src/daemon/notify.js');
    const p = sockaddrUn('/run/x');
    assert.deepEqual([...p.subarray(0, 2)], [1, 0]);
    assert.equal(Buffer.from(p.subarray(2)).toString(), '/run/x\0');
    const a = sockaddrUn('@sd');
    assert.deepEqual([...a], [1, 0, 0, 0x73, 0x64]);
  });

  test('READY, STATUS, RELOADING and WATCHDOG reach the socket; nothing is sent without NOTIFY_SOCKET', {
    skip: NEED_PYTHON,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clatd-notify-'));
    const path = join(dir, 'notify');
    const py = spawn('python3', ['-c', LISTEN_PY, path, '10'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      py.stdout.setEncoding('utf8');
      const ready = new Promise<void>((r) =>
        py.stdout.on('data', (d: string) => {
          out += d;
          if (out.includes('ready')) r();
        }),
      );
      await ready;
      const done = new Promise<void>((r) => py.on('exit', () => r()));
      const { SdNotify } = await import(join(ROOT, 'dist/src/daemon/notify.js'));
      const off = new SdNotify({});
      assert.equal(off.enabled, false);
      assert.equal(off.send('READY=1'), false);
      const n = new SdNotify({ NOTIFY_SOCKET: path, WATCHDOG_USEC: '100000' });
      assert.equal(n.enabled, true);
      n.ready('running: test');
      n.status('paused: uplink down');
      await new Promise((r) => setTimeout(r, 120)); // a WATCHDOG=1 or two
      // A reload is framed by RELOADING=1 and READY=1, even one that fails.
      assert.throws(
        () =>
          n.aroundReload(() => {
            throw new Error('a bad file');
          }),
        /a bad file/,
      );
      await done;
      n.close();
      const lines = out.trim().split('\n').slice(1);
      assert.equal(lines[0], 'READY=1|STATUS=running: test');
      assert.ok(lines.includes('STATUS=paused: uplink down'), out);
      const reload = lines.filter((l) => l !== 'WATCHDOG=1').slice(2);
      assert.match(reload[0] ?? '', /^RELOADING=1\|MONOTONIC_USEC=\d+$/, out);
      const usec = BigInt(reload[0].split('=')[2]);
      const now = process.hrtime.bigint() / 1000n;
      assert.ok(usec <= now && now - usec < 5_000_000n, 'CLOCK_MONOTONIC in microseconds');
      assert.equal(reload[1], 'READY=1', out);
      assert.ok(lines.includes('WATCHDOG=1'), `the watchdog fires every 50 ms: ${out}`);
    } finally {
      py.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('systemd unit', () => {
  test('systemd/clatd@.service: notify type, watchdog, hardening and only the three capabilities', async () => {
    const { readFileSync } = await import('node:fs');
    const unit = readFileSync(join(ROOT, 'systemd', 'clatd@.service'), 'utf8');
    assert.match(unit, /^Type=notify$/m);
    assert.match(unit, /^Restart=on-failure$/m);
    assert.match(unit, /^CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF$/m);
    assert.match(unit, /^AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF$/m);
    assert.match(unit, /^SystemCallFilter=bpf$/m);
    assert.match(unit, /^ProtectSystem=strict$/m);
    assert.match(unit, /^RuntimeDirectory=clatd$/m);
    assert.match(unit, /^WatchdogSec=/m);
    assert.match(unit, /^ExecStart=.*clatd run --config \/etc\/clatd\/clatd.toml --interface %I/m);
    // No /bin/kill (procps, missing on a minimal Debian): the shell's built-in.
    assert.match(unit, /^ExecReload=\/bin\/sh -c 'kill -HUP \$\{MAINPID\}'$/m);
    assert.doesNotMatch(unit, /^Exec.*\/bin\/kill/m);
    // The comment says what the code does: READY=1 at start, not once translating.
    assert.match(unit, /READY=1 once clatd manages the uplink .*not once it\n# translates/);
    assert.match(unit, /RELOADING=1 and READY=1/);
  });

  test("the unit's ExecReload sends SIGHUP to $MAINPID with nothing but /bin/sh", async () => {
    const unit = readFileSync(join(ROOT, 'systemd', 'clatd@.service'), 'utf8');
    const line = /^ExecReload=(.*)$/m.exec(unit)?.[1] ?? '';
    // What systemd runs: ${MAINPID} put in, the single-quoted word unquoted.
    const m = /^\/bin\/sh -c '(.*)'$/.exec(line.replace(/\$\{MAINPID\}/, String(process.pid)));
    assert.ok(m, line);
    let got = 0;
    const onHup = () => {
      got++;
    };
    process.on('SIGHUP', onHup);
    try {
      // No kill program on PATH: only the shell's built-in can do it.
      const r = spawnSync('/bin/sh', ['-c', m[1]], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
      assert.equal(r.status, 0, r.stderr);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(got, 1);
    } finally {
      process.off('SIGHUP', onHup);
    }
  });

  test('systemd/clatd@.service passes systemd-analyze verify', { skip: NEED_SYSTEMD_ANALYZE }, async () => {
    const { copyFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'clatd-unit-'));
    try {
      const f = join(dir, 'clatd@eth0.service');
      copyFileSync(join(ROOT, 'systemd', 'clatd@.service'), f);
      const r = spawnSync('systemd-analyze', ['verify', f], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
