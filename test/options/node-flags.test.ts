/** The Node.js flags of the daemon: the bin's shebang carries them, and running the bin applies them. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { DAEMON_NODE_FLAGS } from '../../src/options/node-flags.js';
import { CLI } from '../helpers/paths.js';

describe('daemon Node.js flags', () => {
  test("the bin's shebang passes exactly DAEMON_NODE_FLAGS", () => {
    const first = readFileSync(CLI, 'utf8').split('\n', 1)[0];
    assert.equal(first, ['#!/usr/bin/env -S node', ...DAEMON_NODE_FLAGS].join(' '));
  });

  test('the bin runs as a program (env -S splits the flags), and node accepts them', () => {
    // Executed directly, as `npx clatd`, `sudo clatd` and the systemd unit do: the kernel reads the
    // shebang (the build marks the file executable).
    const out = execFileSync(CLI, ['--help'], { encoding: 'utf8', timeout: 20_000 });
    assert.match(out, /Usage: clatd/);
    const args = execFileSync(process.execPath, [...DAEMON_NODE_FLAGS, '-p', 'process.execArgv.join(" ")'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    for (const f of DAEMON_NODE_FLAGS) assert.ok(args.includes(f), `${f} in ${args}`);
  });
});
