/** The spare fds: one retry with them closed when a step fails for lack of fds, then held again. */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { isFdShortage, releaseFds, reservedFds, reserveFds, withSpareFds } from '../../src/sys/fd-reserve.js';

const emfile = () => Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });

describe('fd reserve', () => {
  afterEach(() => releaseFds());

  test('holds the fds it opened, closes them on release', () => {
    assert.equal(reserveFds(4), 4);
    assert.equal(reserveFds(4), 4, 'reserving again opens no more');
    assert.equal(reservedFds(), 4);
    assert.equal(releaseFds(), 4);
    assert.equal(reservedFds(), 0);
  });

  test('a step failing with EMFILE runs again with the spare fds closed, then they are held again', () => {
    reserveFds(3);
    const seen: number[] = [];
    const r = withSpareFds(() => {
      seen.push(reservedFds());
      if (seen.length === 1) throw emfile();
      return 'done';
    });
    assert.equal(r, 'done');
    assert.deepEqual(seen, [3, 0]);
    assert.equal(reservedFds(), 3);
  });

  test('a result that says EMFILE (spawnSync) is retried the same way', () => {
    reserveFds(2);
    let n = 0;
    const r = withSpareFds(
      () => ({ error: ++n === 1 ? emfile() : undefined }),
      (x) => isFdShortage(x.error),
    );
    assert.equal(r.error, undefined);
    assert.equal(n, 2);
  });

  test('other errors, and any error without spare fds, are thrown at once', () => {
    reserveFds(2);
    let n = 0;
    const failWith = (e: Error) => () => {
      n++;
      throw e;
    };
    assert.throws(() => withSpareFds(failWith(Object.assign(new Error('EACCES'), { code: 'EACCES' }))), /EACCES/);
    assert.equal(n, 1);
    releaseFds();
    assert.throws(() => withSpareFds(failWith(emfile())), /EMFILE/);
    assert.equal(n, 2);
  });

  test('fd shortage: EMFILE and ENFILE, as code or as errnoName (SysctlError)', () => {
    assert.equal(isFdShortage(emfile()), true);
    assert.equal(isFdShortage({ code: 'ENFILE' }), true);
    assert.equal(isFdShortage({ code: 'ERR_CLATD_SYSCTL', errnoName: 'EMFILE' }), true);
    assert.equal(isFdShortage({ code: 'ENOENT' }), false);
    assert.equal(isFdShortage(undefined), false);
  });
});
