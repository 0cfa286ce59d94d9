/**
 * The lab's saved state: what a lab records while it is built, which labs count as kept or orphaned,
 * and their removal. Runs in a private TMPDIR with labs that own no namespaces and no processes, so
 * it needs no root and touches nothing on the machine.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  destroyKeptLab,
  isOrphan,
  keptLabs,
  type LabState,
  readState,
  runDir,
  StateFile,
  sweepOrphans,
} from '../../src/lab/state.js';

let home = '';
let saved: string | undefined;

before(() => {
  home = mkdtempSync(join(tmpdir(), 'clatd-lab-state-test-'));
  saved = process.env.TMPDIR;
  // os.tmpdir() reads TMPDIR on each call, so every run directory lands in `home`.
  process.env.TMPDIR = home;
});

after(() => {
  if (saved === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = saved;
  rmSync(home, { recursive: true, force: true });
});

/** Writes the state of a lab with nothing on the machine but its run directory. */
function leave(tag: string, s: Partial<LabState>): void {
  mkdirSync(runDir(tag), { recursive: true });
  const state: LabState = { tag, namespaces: [], pids: [], netnsEtc: null, ...s };
  writeFileSync(join(runDir(tag), 'state.json'), JSON.stringify(state));
}

/** The PID of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.ok(r.pid);
  return r.pid;
}

describe('lab saved state', () => {
  test('run directories live under the temporary directory, named by tag', () => {
    assert.equal(runDir('ab12'), join(home, 'clatd-lab-ab12'));
  });

  test('a state file records each change once the run directory exists', () => {
    const s = new StateFile('rec1', () => [4242]);
    s.addNamespace('clatd-rec1-h');
    assert.equal(existsSync(runDir('rec1')), false, 'nothing is written before the run directory exists');
    mkdirSync(runDir('rec1'));
    s.addNamespace('clatd-rec1-r');
    assert.deepEqual(readState('rec1'), {
      tag: 'rec1',
      ownerPid: process.pid,
      kept: false,
      namespaces: ['clatd-rec1-h', 'clatd-rec1-r'],
      pids: [4242],
      netnsEtc: null,
    });
    s.setNetnsEtc('/etc/netns/clatd-rec1-h');
    assert.equal(readState('rec1')?.netnsEtc, '/etc/netns/clatd-rec1-h');
    s.markKept();
    assert.equal(readState('rec1')?.kept, true);
    rmSync(runDir('rec1'), { recursive: true });
  });

  test('kept labs are those marked kept; with `all`, every lab with a state file', () => {
    leave('keep1', { kept: true, ownerPid: deadPid() });
    leave('live1', { kept: false, ownerPid: process.pid });
    mkdirSync(runDir('nostate1'));
    writeFileSync(join(home, 'clatd-lab-stray'), 'a file, not a run directory');
    assert.deepEqual(keptLabs(), ['keep1']);
    assert.deepEqual(keptLabs(true).sort(), ['keep1', 'live1']);
    for (const t of ['keep1', 'live1', 'nostate1']) rmSync(runDir(t), { recursive: true });
    rmSync(join(home, 'clatd-lab-stray'));
  });

  test('an orphan is a lab not kept whose owner is gone', () => {
    const s: LabState = { tag: 'x', namespaces: [], pids: [], netnsEtc: null };
    const gone = () => false;
    const here = () => true;
    assert.equal(isOrphan({ ...s, ownerPid: 7 }, gone), true);
    assert.equal(isOrphan({ ...s, ownerPid: 7 }, here), false);
    assert.equal(isOrphan({ ...s, ownerPid: 7, kept: true }, gone), false, 'kept on purpose');
    assert.equal(isOrphan(s, gone), false, 'no owner recorded');
    assert.equal(isOrphan({ ...s, ownerPid: process.pid }), false, 'this process is alive');
  });

  test('the sweep removes orphans and leaves kept labs and labs of live processes', () => {
    leave('orph1', { ownerPid: deadPid() });
    leave('keep2', { kept: true, ownerPid: deadPid() });
    leave('live2', { ownerPid: process.pid });
    const said: string[] = [];
    sweepOrphans((l) => said.push(l));
    assert.equal(existsSync(runDir('orph1')), false);
    assert.equal(existsSync(runDir('keep2')), true);
    assert.equal(existsSync(runDir('live2')), true);
    assert.equal(said.length, 1);
    assert.match(said[0], /removing lab orph1 left by process \d+, which is gone/);
    for (const t of ['keep2', 'live2']) rmSync(runDir(t), { recursive: true });
  });

  test('--destroy removes a kept lab by its tag, and says when there is none', () => {
    leave('keep3', { kept: true, ownerPid: deadPid() });
    writeFileSync(join(runDir('keep3'), 'radvd.conf'), 'interface br0 {};\n');
    assert.equal(destroyKeptLab('keep3'), true);
    assert.equal(existsSync(runDir('keep3')), false);
    assert.equal(destroyKeptLab('keep3'), false);
    assert.equal(destroyKeptLab('never1'), false);
  });

  test('a run directory with an unreadable state file has no state', () => {
    mkdirSync(runDir('bad1'));
    writeFileSync(join(runDir('bad1'), 'state.json'), '{not json');
    assert.equal(readState('bad1'), null);
    assert.deepEqual(keptLabs(), []);
    sweepOrphans();
    assert.equal(existsSync(runDir('bad1')), true, 'the sweep leaves what it cannot read');
    rmSync(runDir('bad1'), { recursive: true });
  });
});
