/**
 * The main job, `clatd lab`, as a person runs it (with --duration so it ends by itself): it builds
 * the network, starts clatd, shows the DAD probe and IPv4 traffic with counters, and removes
 * everything at the end. `--no-clatd` shows the network alone.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CHILD_ENV, CLI_PATH, missingTools } from '../../src/lab/index.js';
import { NEED_ROOT } from '../helpers/netns.js';
import { IN_CI } from './helpers.js';

const exec = promisify(execFile);

async function lab(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await exec(process.execPath, [CLI_PATH, 'lab', ...args], { timeout: 90_000, maxBuffer: 16 << 20 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

async function namespacesOf(out: string): Promise<string[]> {
  const tag = /lab: building clatd-([0-9a-z]+)-h/.exec(out)?.[1];
  assert.ok(tag, `no lab tag in the output:\n${out}`);
  const r = await exec('ip', ['netns', 'list'], { env: CHILD_ENV });
  return r.stdout.split('\n').filter((l) => l.startsWith(`clatd-${tag}-`));
}

function skipReason(): string | null {
  if (NEED_ROOT) return NEED_ROOT;
  const missing = missingTools();
  if (missing.length > 0 && !IN_CI) return `missing tools: ${missing.join(', ')}`;
  return null;
}

describe('clatd lab (the main job)', () => {
  test('--no-clatd --duration: the network alone carries traffic to the IPv4 server over NAT64', async (t) => {
    const why = skipReason();
    if (why) return t.skip(why);
    const r = await lab(['--no-clatd', '--duration', '4', '--interval', '1']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /has 2001:db8:1:0:\S+ by SLAAC/);
    assert.match(r.out, /ping [\d.]+ ms \| HTTP 200 \d+ B \| UDP echo 200 B/);
    assert.deepEqual(await namespacesOf(r.out), [], 'namespaces left behind');
  });

  test('--duration: clatd starts, the router sees its DAD probe, IPv4 flows, counters move, all removed', async (t) => {
    const why = skipReason();
    if (why) return t.skip(why);
    const r = await lab(['--duration', '5', '--interval', '2']);
    assert.match(r.out, /clatd \| /, 'no clatd log lines shown');
    assert.equal(r.code, 0, `clatd lab failed:\n${r.out}`);
    assert.match(
      r.out,
      /router saw DAD probe: NS :: → ff02::1:ff\S+ hop limit 255, target 2001:db8:1:0:\S+, nonce [0-9a-f]{12} \(6 bytes\)/,
    );
    const rounds = [...r.out.matchAll(/counters 4→6 (\d+) pkts(?: \(\d+ in the kernel\))?, 6→4 (\d+) pkts/g)].map((m) =>
      Number(m[1]),
    );
    assert.ok(rounds.length >= 2, `fewer than two traffic rounds:\n${r.out}`);
    assert.ok(rounds.at(-1)! > rounds[0], `the 4→6 counter did not move: ${rounds.join(', ')}`);
    assert.match(r.out, /clatd removed everything it made/);
    assert.deepEqual(await namespacesOf(r.out), [], 'namespaces left behind');
  });

  test('`clatd lab | head`: once its reader is gone, the lab stops quietly and removes everything', async (t) => {
    const why = skipReason();
    if (why) return t.skip(why);
    const child = spawn(process.execPath, [CLI_PATH, 'lab', '--no-clatd', '--interval', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => {
      err += String(d);
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    // As head does: read until the lab's name is known, then close the pipe.
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d) => {
        out += String(d);
        if (/lab: building clatd-[0-9a-z]+-h/.test(out)) {
          child.stdout.destroy();
          resolve();
        }
      });
    });
    const code = await exited;
    clearTimeout(killer);
    assert.notEqual(code, null, 'it had to be killed');
    assert.doesNotMatch(err, /EPIPE|Error/, err);
    assert.deepEqual(await namespacesOf(out), [], 'namespaces left behind');
  });
});
