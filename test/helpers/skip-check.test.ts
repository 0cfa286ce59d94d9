/** The skip accounting of scripts/test.sh: skips by reason, and what fails a CI run. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judge } from './skip-check.js';
import type { SkipRecord } from './skip-reporter.js';

const skip = (reason: string, name = 't', suite = false): SkipRecord => ({
  file: 'f.test.js',
  test: name,
  reason,
  suite,
});
const TCX = 'needs Linux 6.6 or later for tcx links (this is 6.1.0-28-amd64)';
const ROOT = 'needs root (network namespaces, TUN, raw sockets); CI runs it as root';

test('outside CI: skips are counted by reason and never fail the run', () => {
  const v = judge([skip(ROOT, 'a'), skip(ROOT, 'b'), skip(TCX, 'c')], false);
  assert.equal(v.fail, false);
  assert.equal(v.lines[0], 'skips by reason: 3 test(s) skipped');
  assert.match(v.lines[1], /^ +2 {2}needs root/);
  assert.match(v.lines[2], /^ +1 {2}needs Linux 6\.6/);
});

test('in CI: an allowed reason passes; any other fails, naming each test', () => {
  assert.equal(judge([skip(TCX)], true).fail, false);
  assert.equal(judge([], true).fail, false);
  const v = judge([skip(TCX), skip(ROOT, 'a'), skip('needs the Jool SIIT corpus at /x', 'b')], true);
  assert.equal(v.fail, true);
  assert.ok(v.lines.some((l) => l.includes('[NOT ALLOWED IN CI]') && l.includes('needs root')));
  assert.ok(v.lines.some((l) => l.trim() === 'f.test.js: a'));
  assert.ok(v.lines.some((l) => l.trim() === 'f.test.js: b'));
});

test('a whole suite skipped (its tests uncounted) is named, and fails in CI even for an allowed reason', () => {
  const v = judge([skip(TCX, 's', true)], true);
  assert.equal(v.fail, true);
  assert.ok(v.lines.some((l) => l.includes('whole suite skipped') && l.includes('f.test.js: s')));
  assert.equal(judge([skip(TCX, 's', true)], false).fail, false);
});
