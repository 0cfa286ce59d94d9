/**
 * discoverPref64ViaDns through node:dns for real, against a fake DNS64 on [::1] inside a network
 * namespace the test creates and always deletes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NEED_ROOT } from '../helpers/netns.js';
import { after, before, describe, test } from '../helpers/suite.js';

const NS = `clt-dns64-${process.pid}`;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'dns64-netns-child.js');

function runChild(mode: string): { ok: boolean; prefixes?: string[]; code?: string; message?: string } {
  const out = execFileSync('ip', ['netns', 'exec', NS, process.execPath, CHILD, '--run', mode], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}');
}

describe('RFC 7050 discovery over real DNS', { skip: NEED_ROOT }, () => {
  before(() => {
    execFileSync('ip', ['netns', 'add', NS]);
    execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  });
  after(() => {
    try {
      execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
  });

  test('a DNS64 that synthesises 64:ff9b::/96', () => {
    assert.deepEqual(runChild('dns64'), { ok: true, prefixes: ['64:ff9b::/96'] });
  });

  test('a resolver without DNS64 (no AAAA for ipv4only.arpa)', () => {
    const r = runChild('nodata');
    assert.equal(r.ok, false);
    assert.equal(r.code, 'ERR_CLATD_PREF64_DISCOVERY');
    assert.match(r.message ?? '', /\[::1\]:\d+/);
    assert.match(r.message ?? '', /does no DNS64/);
  });

  test('a server that never answers times out', () => {
    const r = runChild('silent');
    assert.equal(r.ok, false);
    assert.equal(r.code, 'ERR_CLATD_PREF64_DISCOVERY');
    assert.match(r.message ?? '', /no answer within 300 ms/);
  });
});
