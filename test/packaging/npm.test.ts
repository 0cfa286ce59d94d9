/**
 * The npm path: `npm pack`, then `npm install -g --prefix <tmp>` of the tarball as a user with no
 * npm configuration (no `nodedir`: the package's install script must find node's headers itself),
 * gives a `clatd` in <tmp>/bin that runs with PATH empty (its shebang names node by absolute
 * path), a built addon, and `clatd install-service` units that systemd-analyze accepts.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DAEMON_NODE_FLAGS } from '../../src/options/node-flags.js';
import { ROOT } from '../helpers/paths.js';
import { after, before, describe, test } from '../helpers/suite.js';

const NEED =
  (spawnSync('npm', ['--version']).status === 0 ? false : 'needs npm (Debian package npm)') ||
  (spawnSync('g++', ['--version']).status === 0 ? false : 'needs g++ (Debian package g++)');
const NEED_ANALYZE =
  spawnSync('systemd-analyze', ['--version']).status === 0 ? false : 'needs systemd-analyze (Debian package systemd)';
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('npm pack + npm install -g --prefix', { skip: NEED }, () => {
  let tmp = '';
  let prefix = '';
  let bin = '';
  const env = () => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // A user without ~/.npmrc; the machine's npm cache, so the one dependency need not be fetched again.
    HOME: join(tmp, 'home'),
    npm_config_cache: process.env.npm_config_cache ?? join(homedir(), '.npm'),
  });

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'clatd-npm-test-'));
    mkdirSync(join(tmp, 'home'));
    // dist/ is built already (the suite runs from it); `npm pack` without scripts packs it as is.
    const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const tgz = join(tmp, packed.trim().split('\n').at(-1) ?? '');
    assert.equal(tgz, join(tmp, `clatd-${VERSION}.tgz`));
    prefix = join(tmp, 'prefix');
    const r = spawnSync(
      'npm',
      ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--no-update-notifier', tgz],
      { cwd: tmp, encoding: 'utf8', timeout: 300_000, env: env() },
    );
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    bin = join(prefix, 'bin', 'clatd');
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('the tarball holds the program, the addon sources and the unit template, no tests', () => {
    const list = execFileSync('tar', ['-tzf', join(tmp, `clatd-${VERSION}.tgz`)], { encoding: 'utf8' }).split('\n');
    for (const f of [
      'package/dist/src/cli/main.js',
      'package/native/clatd.c',
      'package/binding.gyp',
      'package/systemd/clatd@.service',
      'package/scripts/npm-install.mjs',
    ]) {
      assert.ok(list.includes(f), f);
    }
    assert.ok(!list.some((f) => f.startsWith('package/dist/test/') || f.startsWith('package/src/')));
  });

  test('clatd is on the prefix’s PATH and runs with no node on PATH', () => {
    assert.ok(existsSync(bin));
    const main = join(prefix, 'lib', 'node_modules', 'clatd', 'dist', 'src', 'cli', 'main.js');
    assert.equal(realpathSync(bin), main);
    assert.equal(
      readFileSync(main, 'utf8').split('\n', 1)[0],
      [`#!/usr/bin/env -S ${process.execPath}`, ...DAEMON_NODE_FLAGS].join(' '),
    );
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', env: { PATH: '/nonexistent' }, timeout: 20_000 });
    assert.equal(out, `clatd ${VERSION}\n`);
    const help = execFileSync(bin, ['--help'], { encoding: 'utf8', env: { PATH: '/nonexistent' }, timeout: 20_000 });
    assert.match(help, /^Usage: clatd/);
  });

  test('the install built the addon for this node', () => {
    const addon = join(prefix, 'lib', 'node_modules', 'clatd', 'build', 'Release', 'clatd_native.node');
    const out = execFileSync(
      process.execPath,
      ['-e', `process.stdout.write(typeof require(${JSON.stringify(addon)}).constants)`],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(out, 'object');
  });

  test('clatd install-service writes units with absolute paths and a default config', () => {
    const units = join(tmp, 'units');
    const config = join(tmp, 'etc', 'clatd.toml');
    const out = execFileSync(bin, ['install-service', '--unit-dir', units, '--config', config, '--no-reload'], {
      encoding: 'utf8',
      env: { PATH: '/nonexistent' },
      timeout: 20_000,
    });
    assert.match(out, /wrote .*clatd@\.service/);
    assert.deepEqual(readdirSync(units).sort(), ['clatd.service', 'clatd@.service']);
    const main = join(prefix, 'lib', 'node_modules', 'clatd', 'dist', 'src', 'cli', 'main.js');
    const cmd = [realpathSync(process.execPath), ...DAEMON_NODE_FLAGS, main].join(' ');
    const inst = readFileSync(join(units, 'clatd@.service'), 'utf8');
    assert.ok(
      inst.includes(`\nExecStart=${cmd} run --config ${config} --interface %I --control /run/clatd/%I.sock\n`),
      inst,
    );
    assert.ok(inst.includes(`\nExecStopPost=-${cmd} cleanup --config ${config} --interface %I`), inst);
    assert.ok(
      readFileSync(join(units, 'clatd.service'), 'utf8').includes(`\nExecStart=${cmd} run --config ${config}\n`),
    );
    assert.match(readFileSync(config, 'utf8'), /^#pref64 = "64:ff9b::\/96"$/m);
    // A second run keeps the administrator's config.
    writeFileSync(config, 'mode = "always"\n');
    const again = execFileSync(bin, ['install-service', '--unit-dir', units, '--config', config, '--no-reload'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.match(again, /^kept /m);
    assert.equal(readFileSync(config, 'utf8'), 'mode = "always"\n');
  });

  test('systemd-analyze verify accepts the units install-service wrote', { skip: NEED_ANALYZE }, () => {
    const dir = join(tmp, 'verify');
    mkdirSync(dir);
    execFileSync(bin, ['install-service', '--unit-dir', dir, '--config', join(tmp, 'etc', 'c.toml'), '--no-reload']);
    const inst = join(dir, 'clatd@eth0.service');
    writeFileSync(inst, readFileSync(join(dir, 'clatd@.service')));
    rmSync(join(dir, 'clatd@.service'));
    const r = spawnSync('systemd-analyze', ['verify', inst, join(dir, 'clatd.service')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', r.stderr);
  });
});
