/**
 * The Debian package: `npm run package` builds it; its metadata and contents are checked with
 * dpkg-deb (and lintian, when installed: no errors, no warnings), and it is unpacked into a
 * throwaway directory — never this machine's own system — where the installed `clatd --version`
 * and `--help` run, the addon loads into /usr/bin/node, the default config parses, and
 * `systemd-analyze verify` accepts the installed units. dpkg itself installs, upgrades, removes and
 * purges it in a throwaway root (`dpkg --root`, its maintainer scripts run with DPKG_ROOT set, so
 * they leave this machine's systemd alone), beside a stand-in for Debian's clatd.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { RUN_OPTIONS, resolveConfig, tomlToRaw } from '../../src/daemon/config.js';
import { DAEMON_NODE_FLAGS } from '../../src/options/node-flags.js';
import { ROOT } from '../helpers/paths.js';
import { after, before, describe, test } from '../helpers/suite.js';

function needs(tool: string, pkg: string, arg = '--version'): string | false {
  return spawnSync(tool, [arg]).status === 0 ? false : `needs ${tool} (Debian package ${pkg})`;
}
const NODE_MAJOR = Number(
  spawnSync('/usr/bin/node', ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout,
);
const NEED =
  needs('dpkg-deb', 'dpkg') ||
  needs('g++', 'g++') ||
  (NODE_MAJOR >= 20 ? false : 'needs /usr/bin/node 20 or later (Debian package nodejs)') ||
  (existsSync('/usr/include/node/node_api.h') ? false : 'needs /usr/include/node (Debian package libnode-dev)');
const NEED_ANALYZE = needs('systemd-analyze', 'systemd');
const NEED_LINTIAN = needs('lintian', 'lintian');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('the Debian package (npm run package)', { skip: NEED }, () => {
  let tmp = '';
  let deb = '';
  let root = '';
  const run = (cmd: string, args: string[], opts = {}) =>
    execFileSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'clatd-deb-test-'));
    const r = spawnSync('npm', ['run', '--silent', 'package'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, CLATD_DEB_OUT: join(tmp, 'out') },
    });
    assert.equal(r.status, 0, r.stderr);
    deb = r.stdout.trimEnd().split('\n').at(-1) ?? '';
    root = join(tmp, 'root');
    run('dpkg', ['-x', deb, root]);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('prints the path of the .deb as its last line', () => {
    const arch = run('dpkg', ['--print-architecture']).trim();
    assert.equal(deb, join(tmp, 'out', `clatd-node_${VERSION}_${arch}.deb`));
    assert.ok(existsSync(deb));
  });

  test('metadata: name, version, dependencies, the relation to Debian’s clatd, conffile', () => {
    const field = (f: string) => run('dpkg-deb', ['-f', deb, f]).trim();
    assert.equal(field('Package'), 'clatd-node');
    assert.equal(field('Version'), VERSION);
    assert.equal(field('Architecture'), run('dpkg', ['--print-architecture']).trim());
    assert.match(field('Depends'), /^nodejs \(>= 20\), libc6 \(>= [\d.]+\), nftables$/);
    assert.equal(field('Conflicts'), 'clatd');
    assert.equal(field('Replaces'), 'clatd');
    assert.equal(field('Provides'), '', 'not a drop-in for Debian’s clatd: other options, other config');
    const info = run('dpkg-deb', ['-I', deb]);
    for (const f of ['conffiles', 'md5sums', 'postinst', 'prerm', 'postrm']) assert.match(info, new RegExp(` ${f} `));
    const ctl = join(tmp, 'control');
    run('dpkg-deb', ['-e', deb, ctl]);
    assert.equal(readFileSync(join(ctl, 'conffiles'), 'utf8'), '/etc/clatd/clatd.toml\n');
    const postinst = readFileSync(join(ctl, 'postinst'), 'utf8');
    assert.match(postinst, /daemon-reload/);
    // Nothing enabled or started by the package: the administrator picks the uplink.
    assert.doesNotMatch(postinst, /\benable\b|\bstart\b(?!s)/);
    assert.match(readFileSync(join(ctl, 'prerm'), 'utf8'), /stop 'clatd.service' 'clatd@\*.service'/);
    for (const s of ['postinst', 'prerm', 'postrm']) assert.equal(spawnSync('sh', ['-n', join(ctl, s)]).status, 0);
  });

  test('contents: the layout, owned by root, no TypeScript, no dev dependencies', () => {
    const list = run('dpkg-deb', ['-c', deb]).trimEnd().split('\n');
    const paths = list.map((l) => l.split(/\s+/).slice(5).join(' '));
    for (const p of [
      './usr/bin/clatd -> ../lib/clatd/dist/src/cli/main.js',
      './usr/lib/clatd/package.json',
      './usr/lib/clatd/dist/src/cli/main.js',
      './usr/lib/clatd/build/Release/clatd_native.node',
      './usr/lib/clatd/node_modules/smol-toml/package.json',
      './usr/lib/systemd/system/clatd@.service',
      './usr/lib/systemd/system/clatd.service',
      './etc/clatd/clatd.toml',
      './usr/share/man/man8/clatd.8.gz',
      './usr/share/doc/clatd-node/copyright',
      './usr/share/doc/clatd-node/changelog.gz',
    ]) {
      assert.ok(paths.includes(p), `${p} in the package`);
    }
    for (const l of list) assert.match(l, /^\S+ root\/root /, l);
    assert.ok(
      !paths.some((p) => /\.ts$|\.map$|typescript|biome|fast-check|\/test\//.test(p)),
      'nothing of development',
    );
  });

  test('lintian: no errors and no warnings', { skip: NEED_LINTIAN }, () => {
    const r = spawnSync('lintian', ['--no-cfg', deb], { encoding: 'utf8', timeout: 120_000 });
    const tags = r.stdout.split('\n').filter((l) => /^[EW]: /.test(l));
    assert.deepEqual(tags, []);
  });

  test('the installed clatd runs /usr/bin/node by absolute path: --version, --help', () => {
    const main = join(root, 'usr', 'lib', 'clatd', 'dist', 'src', 'cli', 'main.js');
    assert.equal(readFileSync(main, 'utf8').split('\n', 1)[0], ['#!/usr/bin/node', ...DAEMON_NODE_FLAGS].join(' '));
    assert.equal(readlinkSync(join(root, 'usr', 'bin', 'clatd')), '../lib/clatd/dist/src/cli/main.js');
    // No PATH at all: nothing may depend on finding node there.
    const env = { PATH: '/nonexistent' };
    const bin = join(root, 'usr', 'bin', 'clatd');
    assert.equal(run(bin, ['--version'], { env }), `clatd ${VERSION}\n`);
    const help = run(bin, ['--help'], { env });
    assert.match(help, /^Usage: clatd \[COMMAND\] \[OPTIONS\]/);
    assert.match(help, /install-service/);
    assert.equal(
      run(bin, ['run', '--help'], { env }),
      run(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), 'run', '--help']),
    );
  });

  test('the addon loads into /usr/bin/node', () => {
    const addon = join(root, 'usr', 'lib', 'clatd', 'build', 'Release', 'clatd_native.node');
    const out = run('/usr/bin/node', [
      '-e',
      `process.stdout.write(typeof require(${JSON.stringify(addon)}).constants)`,
    ]);
    assert.equal(out, 'object');
  });

  test('the man page documents every option of clatd run and each command', () => {
    const man = gunzipSync(readFileSync(join(root, 'usr', 'share', 'man', 'man8', 'clatd.8.gz'))).toString('utf8');
    assert.match(man, /^\.TH CLATD 8 /);
    for (const name of Object.keys(RUN_OPTIONS))
      assert.ok(man.includes(`\\fB\\-\\-${name.replace(/-/g, '\\-')}\\fR`), name);
    for (const c of ['run', 'status', 'discover', 'cleanup', 'install-service', 'translate', 'lab']) {
      assert.ok(man.includes(`.SH "CLATD ${c.toUpperCase()}"`), c);
    }
    const r = spawnSync('man', ['--warnings', '-l', '-'], {
      input: man,
      encoding: 'utf8',
      env: { ...process.env, MANWIDTH: '80', LC_ALL: 'C.UTF-8' },
    });
    if (r.error === undefined) assert.equal(r.stderr, '', 'groff warnings');
  });

  test('the default config: all commented out, and each line valid once uncommented', () => {
    const text = readFileSync(join(root, 'etc', 'clatd', 'clatd.toml'), 'utf8');
    assert.deepEqual(tomlToRaw(text, 'clatd.toml'), {});
    const keys = new Set<string>();
    for (const line of text.split('\n').filter((l) => /^#[a-z0-9-]+ = /.test(l))) {
      const raw = tomlToRaw(line.slice(1), 'clatd.toml');
      for (const k of Object.keys(raw)) keys.add(k);
      // lan needs the uplink named, as clatd@<uplink>.service names it (--interface %I).
      resolveConfig(raw.lan === undefined ? {} : { interface: 'eth0' }, raw, 'clatd.toml');
    }
    assert.deepEqual(
      [...keys].sort(),
      Object.keys(RUN_OPTIONS)
        .filter((k) => k !== 'config')
        .sort(),
    );
  });

  test('the units pass --config /etc/clatd/clatd.toml and /usr/bin/clatd by absolute path', () => {
    const dir = join(root, 'usr', 'lib', 'systemd', 'system');
    const inst = readFileSync(join(dir, 'clatd@.service'), 'utf8');
    const single = readFileSync(join(dir, 'clatd.service'), 'utf8');
    assert.match(
      inst,
      /^ExecStart=\/usr\/bin\/clatd run --config \/etc\/clatd\/clatd.toml --interface %I --control \/run\/clatd\/%I.sock$/m,
    );
    assert.match(single, /^ExecStart=\/usr\/bin\/clatd run --config \/etc\/clatd\/clatd.toml$/m);
    assert.match(single, /^ExecStopPost=-\/usr\/bin\/clatd cleanup --config \/etc\/clatd\/clatd.toml$/m);
    assert.doesNotMatch(single, /%[iI]/);
    for (const u of [inst, single]) assert.doesNotMatch(u, /\/usr\/bin\/env/);
  });

  test('systemd-analyze verify accepts the installed units', { skip: NEED_ANALYZE }, () => {
    // verify checks that ExecStart's program exists: point it at the unpacked /usr/bin/clatd.
    const dir = join(tmp, 'units');
    mkdirSync(dir);
    const bin = join(root, 'usr', 'bin', 'clatd');
    for (const [from, to] of [
      ['clatd@.service', 'clatd@eth0.service'],
      ['clatd.service', 'clatd.service'],
    ]) {
      const text = readFileSync(join(root, 'usr', 'lib', 'systemd', 'system', from), 'utf8');
      writeFileSync(join(dir, to), text.replaceAll('/usr/bin/clatd ', `${bin} `));
      const r = spawnSync('systemd-analyze', ['verify', join(dir, to)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', r.stderr);
    }
  });

  test('dpkg --root: replaces Debian’s clatd; install, upgrade, remove, purge keep the conffile rules', () => {
    const r = join(tmp, 'dpkg-root');
    mkdirSync(join(r, 'var', 'lib', 'dpkg', 'info'), { recursive: true });
    mkdirSync(join(r, 'var', 'lib', 'dpkg', 'updates'));
    writeFileSync(join(r, 'var', 'lib', 'dpkg', 'status'), '');
    // The empty root has no nodejs, libc6 or nftables: their dependencies are forced, nothing else.
    const dpkg = (...args: string[]) =>
      spawnSync(
        'dpkg',
        ['--root', r, '--force-script-chrootless', '--force-depends', '--force-not-root', '--log=/dev/null', ...args],
        { encoding: 'utf8', timeout: 60_000 },
      );
    const installed = () =>
      dpkg('-l')
        .stdout.split('\n')
        .filter((l) => /^[a-z]{2} /.test(l))
        .map((l) => l.split(/\s+/).slice(0, 3).join(' '));
    const standin = join(tmp, 'standin');
    mkdirSync(join(standin, 'DEBIAN'), { recursive: true });
    mkdirSync(join(standin, 'usr', 'sbin'), { recursive: true });
    writeFileSync(join(standin, 'usr', 'sbin', 'clatd'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(
      join(standin, 'DEBIAN', 'control'),
      'Package: clatd\nVersion: 1.6-1\nArchitecture: all\nMaintainer: x <x@example.org>\nDescription: stand-in for the Perl clatd\n stand-in\n',
    );
    run('dpkg-deb', ['--root-owner-group', '--build', standin, `${standin}.deb`]);
    assert.equal(dpkg('-i', `${standin}.deb`).status, 0);

    let res = dpkg('-i', deb);
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /Removing clatd \(1\.6-1\), to allow configuration of clatd-node/);
    assert.deepEqual(installed(), [`ii clatd-node ${VERSION}`]);
    assert.equal(run(join(r, 'usr', 'bin', 'clatd'), ['--version']), `clatd ${VERSION}\n`);
    // Debian's clatd cannot come back while this one is installed.
    assert.notEqual(dpkg('-i', `${standin}.deb`).status, 0);

    // The administrator's edit survives an upgrade (same version again) and a removal; a purge ends it.
    const conf = join(r, 'etc', 'clatd', 'clatd.toml');
    writeFileSync(conf, `${readFileSync(conf, 'utf8')}mode = "always"\n`);
    res = dpkg('--force-confold', '-i', deb);
    assert.equal(res.status, 0, res.stderr);
    assert.match(readFileSync(conf, 'utf8'), /^mode = "always"$/m);
    assert.equal(dpkg('-r', 'clatd-node').status, 0);
    assert.ok(!existsSync(join(r, 'usr', 'bin', 'clatd')));
    assert.match(readFileSync(conf, 'utf8'), /^mode = "always"$/m);
    assert.equal(dpkg('-P', 'clatd-node').status, 0);
    assert.ok(!existsSync(join(r, 'etc', 'clatd')));
    assert.deepEqual(installed(), []);
  });
});
