import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIPv4, parseIPv4 } from '../../../src/core/addr/ipv4.js';
import { ClatdError } from '../../../src/core/errors.js';
import { clatIPv4Candidates, selectClatIPv4 } from '../../../src/core/nd/clat-ipv4.js';
import { ClatAddressError } from '../../../src/core/nd/errors.js';

test('an empty host gets 192.0.0.4 (RFC 7335, Android first choice)', () => {
  assert.equal(formatIPv4(selectClatIPv4()), '192.0.0.4');
  assert.equal(formatIPv4(selectClatIPv4(new Set<number>())), '192.0.0.4');
});

test('candidates walk the /29 from .4 with wrap-around, as Android does', () => {
  assert.deepEqual(clatIPv4Candidates().map(formatIPv4), [
    '192.0.0.4',
    '192.0.0.5',
    '192.0.0.6',
    '192.0.0.7',
    '192.0.0.0',
    '192.0.0.1',
    '192.0.0.2',
    '192.0.0.3',
  ]);
});

test('addresses in use are skipped; strings and numbers both count', () => {
  assert.equal(formatIPv4(selectClatIPv4(['192.0.0.4'])), '192.0.0.5');
  assert.equal(formatIPv4(selectClatIPv4([parseIPv4('192.0.0.4'), '192.0.0.5', '192.0.0.6'])), '192.0.0.7');
  // Wrap-around: .4-.7 taken gives .0.
  assert.equal(formatIPv4(selectClatIPv4(['192.0.0.4', '192.0.0.5', '192.0.0.6', '192.0.0.7'])), '192.0.0.0');
  // Addresses outside the block do not matter.
  assert.equal(formatIPv4(selectClatIPv4(['192.0.2.1', '10.0.0.4', '192.0.0.8'])), '192.0.0.4');
});

test('a full block is an error with a stable code', () => {
  const all = clatIPv4Candidates();
  assert.throws(
    () => selectClatIPv4(all),
    (e: unknown) =>
      e instanceof ClatAddressError &&
      e instanceof ClatdError &&
      e.code === 'ERR_CLATD_CLAT_ADDRESS' &&
      /192\.0\.0\.0\/29/.test(e.message),
  );
  // One free slot anywhere is found.
  for (const free of all) {
    assert.equal(selectClatIPv4(all.filter((a) => a !== free)), free);
  }
});
