/**
 * The shim's contracts that a mistake would break silently: no error path of tunOpen leaves an fd
 * open.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { K, native } from '../../src/sys/addon.js';
import { Errno } from '../../src/sys/errors.js';
import { Tun } from '../../src/sys/tun.js';
import { NEED_ROOT, withNetns } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

/** The fds this process has open, by number. */
function openFds(): string[] {
  return readdirSync('/proc/self/fd').sort();
}

describe('tunOpen leaves no fd behind when it fails after open', { skip: NEED_ROOT }, () => {
  test('a name TUNSETIFF refuses: -EINVAL, and the fd of /dev/net/tun is closed', async () => {
    await withNetns((ns) => {
      ns.enter(() => {
        const before = openFds();
        for (let i = 0; i < 20; i++) {
          assert.equal(native.tunOpen('bad/name', K.IFF_TUN | K.IFF_NO_PI), -Errno.EINVAL);
          assert.deepEqual(openFds(), before, `open fds after call ${i + 1}`);
        }
      });
    }, 'tunleak');
  });

  test('a Node-API failure after TUNSETIFF: the error reaches JS, the fd is closed and the TUN is gone', async () => {
    await withNetns((ns) => {
      // Setting `fd` on the result object runs an inherited setter: one that throws makes
      // napi_set_named_property fail after the device was created, the path that leaked.
      const proto = Object.prototype as { fd?: number };
      Object.defineProperty(Object.prototype, 'fd', {
        configurable: true,
        set() {
          throw new Error('no fd for you');
        },
      });
      try {
        ns.enter(() => {
          const before = openFds();
          // Twenty times: a leaked fd would also keep the device, and the next call would get EBUSY.
          for (let i = 0; i < 20; i++) {
            assert.throws(() => native.tunOpen('v4-leak', K.IFF_TUN | K.IFF_NO_PI), /no fd for you/);
            assert.deepEqual(openFds(), before, `open fds after call ${i + 1}`);
          }
        });
      } finally {
        delete proto.fd;
      }
      assert.notEqual(ns.tryExec('ip', 'link', 'show', 'v4-leak').status, 0, 'the TUN went with its fd');
      // And without the setter the same call succeeds: the failure above came from the setter.
      const tun = ns.enter(() => Tun.open('v4-leak'));
      tun.close();
    }, 'tunleak');
  });
});
