/** Letting go of the file pages start-up touched: which mappings qualify, and a process that did it goes on. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { releasableMappings } from '../../src/sys/file-pages.js';
import { ROOT } from '../helpers/paths.js';

/** One smaps entry: `fields` are kB values by name; `flags` the VmFlags line. */
function entry(
  range: string,
  perms: string,
  inode: number,
  path: string,
  fields: Record<string, number>,
  flags = 'rd mr me',
): string {
  const kb = { Rss: 8, Anonymous: 0, Swap: 0, Locked: 0, ...fields };
  return [
    `${range} ${perms} 00000000 fe:00 ${inode}${' '.repeat(20)}${path}`,
    'Size:                 16 kB',
    ...Object.entries(kb).map(([k, v]) => `${`${k}:`.padEnd(16)}${String(v).padStart(8)} kB`),
    'THPeligible:           0',
    `VmFlags: ${flags} `,
  ].join('\n');
}

describe('file pages', () => {
  test('only read-only private file mappings without pages of their own qualify', () => {
    const smaps = [
      entry('1000-2000', 'r--p', 7, '/usr/bin/node', { Rss: 4 }),
      entry('2000-5000', 'r-xp', 7, '/usr/bin/node', { Rss: 12 }),
      entry('5000-6000', 'r--p', 7, '/usr/bin/node', { Anonymous: 4 }), // relocated (RELRO)
      entry('6000-7000', 'rw-p', 7, '/usr/bin/node', {}), // data
      entry('7000-8000', 'rw-p', 0, '', {}), // anonymous
      entry('8000-9000', 'rw-p', 0, '[heap]', {}),
      entry('9000-a000', 'r--p', 9, '/usr/lib/libc.so.6', { Swap: 4 }), // a private page swapped out
      entry('a000-b000', 'r-xp', 9, '/usr/lib/libc.so.6', { Locked: 4 }, 'rd ex mr me lo'),
      entry('b000-c000', 'r-xp', 9, '/usr/lib/libc.so.6', { Rss: 0 }), // nothing resident
      entry('c000-d000', 'r--s', 11, '/dev/shm/x', {}), // shared
      entry('ffffffffff600000-ffffffffff601000', '--xp', 0, '[vsyscall]', {}),
      entry('d000-f000', 'r-xp', 12, '/usr/lib/libstdc++.so.6.0.30', { Rss: 8 }),
    ].join('\n');
    assert.deepEqual(
      releasableMappings(smaps).map((m) => [m.start.toString(16), m.end.toString(16), m.rssBytes, m.path]),
      [
        ['1000', '2000', 4096, '/usr/bin/node'],
        ['2000', '5000', 12288, '/usr/bin/node'],
        ['d000', 'f000', 8192, '/usr/lib/libstdc++.so.6.0.30'],
      ],
    );
  });

  test('a process lets go of most of its file pages and goes on: code, the addon, new modules', () => {
    // In a child: the test runner's own process is not ours to change.
    const child = `
      import { readFileSync } from 'node:fs';
      const fileKb = () => Number(/^RssFile:\\s+(\\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
      const { releaseFilePages, releasableMappings } = await import('${ROOT}/dist/src/sys/file-pages.js');
      const { native } = await import('${ROOT}/dist/src/sys/addon.js');
      const before = fileKb();
      const r = releaseFilePages();
      const after = fileKb();
      // Everything runs again: the compiler, a module not loaded yet, the addon, a worker thread.
      const f = new Function('a', 'b', 'return a * b + JSON.parse("[1,2,3]").length');
      const { createHash } = await import('node:crypto');
      const hash = createHash('sha256').update('x').digest('hex').slice(0, 8);
      const { Worker } = await import('node:worker_threads');
      const fromWorker = await new Promise((res, rej) => {
        const w = new Worker('require("node:worker_threads").parentPort.postMessage(6 * 7)', { eval: true, execArgv: [] });
        w.once('message', res);
        w.once('error', rej);
      });
      console.log(JSON.stringify({ before, after, r, left: releasableMappings(readFileSync('/proc/self/smaps', 'utf8')).length,
        f: f(6, 7), hash, closeBad: native.close(-1) === -9 /* EBADF */, fromWorker }));
    `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', child], { encoding: 'utf8', timeout: 30_000 }),
    );
    assert.ok(out.r.mappings > 0 && out.r.bytes > 0, JSON.stringify(out));
    assert.ok(out.after < out.before / 2, `RssFile ${out.before} -> ${out.after} kB`);
    assert.equal(out.f, 45);
    assert.equal(out.hash, '2d711642');
    assert.equal(out.closeBad, true);
    assert.equal(out.fromWorker, 42);
  });
});
