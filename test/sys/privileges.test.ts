/**
 * src/sys/privileges.ts and the shim's dropPrivileges: naming the user, and the switch itself, run
 * in a child process (it cannot be undone) started as root.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test as nodeTest } from 'node:test';
import { native } from '../../src/sys/addon.js';
import { keptCapabilities, lastCapability, PrivilegeError, resolveUser } from '../../src/sys/privileges.js';
import { NEED_ROOT } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

const PASSWD: Record<string, string> = {
  clatd: 'clatd:x:999:996::/nonexistent:/usr/sbin/nologin',
  '999': 'clatd:x:999:996::/nonexistent:/usr/sbin/nologin',
  root: 'root:x:0:0:root:/root:/bin/bash',
};
const lookup = (k: string) => PASSWD[k];

nodeTest('resolveUser: a name, a uid, uid:gid; root and strangers are refused', () => {
  assert.deepEqual(resolveUser('clatd', lookup), { name: 'clatd', uid: 999, gid: 996 });
  assert.deepEqual(resolveUser('999', lookup), { name: 'clatd', uid: 999, gid: 996 });
  // A uid the user database does not know: its own number as the group.
  assert.deepEqual(resolveUser('4242', lookup), { name: '4242', uid: 4242, gid: 4242 });
  assert.deepEqual(resolveUser('4242:100', lookup), { name: '4242:100', uid: 4242, gid: 100 });
  assert.throws(() => resolveUser('nobody-here', lookup), /--user: no such user "nobody-here"/);
  assert.throws(
    () => resolveUser('root', lookup),
    (e) => e instanceof PrivilegeError && /is root/.test(e.message),
  );
  assert.throws(() => resolveUser('0:0', lookup), /is root/);
});

nodeTest('the capabilities kept: the three, without CAP_BPF on a kernel that has none (before 5.8)', () => {
  const names = (last?: number) => keptCapabilities(last).map(([, n]) => n);
  assert.deepEqual(names(40), ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_BPF']);
  assert.deepEqual(names(37), ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
  assert.deepEqual(names(undefined), ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_BPF']);
  assert.equal(
    lastCapability(() => '40\n'),
    40,
  );
  assert.equal(
    lastCapability(() => {
      throw new Error('no /proc');
    }),
    undefined,
  );
});

nodeTest('dropPrivileges checks its arguments before any system call', () => {
  assert.throws(() => native.dropPrivileges(65534, 65534, 'x' as never), TypeError);
  assert.throws(() => native.dropPrivileges('a' as never, 65534, []), TypeError);
  assert.throws(() => native.dropPrivileges(65534, 65534, [64]), RangeError);
});

const privUrl = new URL('../../src/sys/privileges.js', import.meta.url).href;

/** In a child started as root: drop to nobody, start a worker, spawn `cat`, report every set. */
const CHILD = `
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
const { dropPrivileges, resolveUser } = await import(${JSON.stringify(privUrl)});
dropPrivileges(resolveUser('65534:65534'));
const field = (st, n) => new RegExp('^' + n + ':[ \\\\t]*(.*)$', 'm').exec(st)[1];
const pick = (st) => ({ uid: field(st, 'Uid'), gid: field(st, 'Gid'), groups: field(st, 'Groups'),
  eff: field(st, 'CapEff'), prm: field(st, 'CapPrm'), inh: field(st, 'CapInh'), amb: field(st, 'CapAmb'), bnd: field(st, 'CapBnd') });
const w = new Worker("import { parentPort } from 'node:worker_threads'; import { readFileSync } from 'node:fs'; parentPort.postMessage(readFileSync('/proc/thread-self/status', 'utf8'))", { eval: true });
const workerStatus = await new Promise((r) => w.once('message', r));
await w.terminate();
const threads = readdirSync('/proc/self/task').map((t) => pick(readFileSync('/proc/self/task/' + t + '/status', 'utf8')));
const child = pick(execFileSync('cat', ['/proc/self/status'], { encoding: 'utf8' }));
console.log(JSON.stringify({ main: pick(readFileSync('/proc/thread-self/status', 'utf8')), worker: pick(workerStatus), threads, child }));
`;

describe('dropPrivileges as root', { skip: NEED_ROOT }, () => {
  test('every thread becomes nobody; the main thread, a later worker and a spawned program keep only the three', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', CHILD], { encoding: 'utf8' });
    const r = JSON.parse(out);
    const three = '0000008000003000'; // CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF
    for (const who of ['main', 'worker', 'child'] as const) {
      const c = r[who];
      assert.equal(c.uid, '65534\t65534\t65534\t65534', who);
      assert.equal(c.gid, '65534\t65534\t65534\t65534', who);
      assert.equal(c.groups, '', who);
      for (const set of ['eff', 'prm', 'inh', 'amb', 'bnd']) assert.equal(c[set], three, `${who} ${set}`);
    }
    // V8's and libuv's threads started before the switch: the uid changed (glibc's setxid), and
    // their capabilities went with it; none is left root.
    for (const t of r.threads) {
      assert.equal(t.uid, '65534\t65534\t65534\t65534');
      assert.equal(BigInt(`0x${t.eff}`) & ~BigInt(`0x${three}`), 0n, `a thread holds ${t.eff}`);
    }
  });

  test('a process that is not root is told it must start as root', () => {
    const body = `const { dropPrivileges } = await import(${JSON.stringify(privUrl)});
      try { dropPrivileges({ name: 'x', uid: 4242, gid: 4242 }); console.log('no error'); } catch (e) { console.log(e.message); }`;
    const out = execFileSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', body],
      { encoding: 'utf8' },
    );
    assert.match(out, /--user x: clatd must be started as root to switch users \(it runs as uid 65534\)/);
  });
});

nodeTest('the systemd unit runs clatd as a user, not root, holding exactly the capabilities --user keeps', async () => {
  const { readFileSync } = await import('node:fs');
  const { KEPT_CAPABILITIES } = await import('../../src/sys/privileges.js');
  const unit = readFileSync(new URL('../../../systemd/clatd@.service', import.meta.url), 'utf8');
  const values = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]);
  assert.deepEqual(values('User'), ['clatd']);
  assert.deepEqual(values('DynamicUser'), ['yes']);
  const three = KEPT_CAPABILITIES.map(([, n]) => n).join(' ');
  assert.deepEqual(values('AmbientCapabilities'), [three]);
  assert.deepEqual(values('CapabilityBoundingSet'), [three]);
  // The records of host settings live in the runtime directory: it must outlive an instance.
  assert.deepEqual(values('RuntimeDirectory'), ['clatd']);
  assert.deepEqual(values('RuntimeDirectoryPreserve'), ['yes']);
  // Clean-up needs no more than the daemon: no `+` (full privileges) on it.
  assert.ok(values('ExecStopPost').every((v) => !v.startsWith('+') && !v.startsWith('-+')));
});

describe('handing the control folder and its records to the user', { skip: NEED_ROOT }, () => {
  test('a plain file is given; a symlink is not followed and a hard link is left alone', async () => {
    const { giveTo } = await import('../../src/cli/run.js');
    const fs = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = fs.mkdtempSync(join(tmpdir(), 'clatd-give-'));
    try {
      const nobody = { uid: 65534, gid: 65534 };
      const target = join(dir, 'root-file');
      fs.writeFileSync(target, 'x', { mode: 0o600 });
      fs.writeFileSync(join(dir, 'a.host-settings.json'), '{}', { mode: 0o600 });
      fs.symlinkSync(target, join(dir, 'b.host-settings.json'));
      fs.linkSync(target, join(dir, 'c.host-settings.json'));
      giveTo(join(dir, 'a.host-settings.json'), nobody, false);
      assert.equal(fs.statSync(join(dir, 'a.host-settings.json')).uid, 65534);
      assert.throws(() => giveTo(join(dir, 'b.host-settings.json'), nobody, false), /ELOOP/);
      giveTo(join(dir, 'c.host-settings.json'), nobody, false);
      assert.equal(fs.statSync(target).uid, 0, 'neither link handed over the file it points at');
      giveTo(dir, nobody, true);
      assert.equal(fs.statSync(dir).uid, 65534);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
