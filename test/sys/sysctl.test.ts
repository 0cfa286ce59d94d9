/** sysctl helpers: names are checked before any file is touched; reads parse; errors name the key. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkIfName, readIpv6Conf, readSysctl, SysctlError, writeIpv6Conf } from '../../src/sys/sysctl.js';

describe('sysctl', () => {
  test('interface names are checked (no path tricks)', () => {
    for (const bad of ['', '.', '..', 'a/b', 'a b', 'x:1', 'sixteen-bytes-xx']) {
      assert.throws(
        () => checkIfName(bad),
        (e: unknown) => e instanceof SysctlError && e.code === 'ERR_CLATD_SYSCTL',
      );
    }
    checkIfName('eth0.100');
    assert.throws(() => readIpv6Conf('../../kernel', 'mtu'), /not a valid interface name/);
    assert.throws(() => writeIpv6Conf('../x', 'disable_ipv6', 1), /not a valid interface name/);
    assert.throws(() => readSysctl('net/../../etc/passwd'), /not a valid sysctl key/);
  });

  test('reads numbers; a missing interface is named', () => {
    // Read-only, and lo exists in every namespace.
    assert.equal(readIpv6Conf('lo', 'mtu') >= 1280, true);
    assert.equal(typeof readIpv6Conf('lo', 'retrans_time_ms'), 'number');
    assert.throws(
      () => readIpv6Conf('nosuch0', 'dad_transmits'),
      (e: unknown) =>
        e instanceof SysctlError &&
        e.errnoName === 'ENOENT' &&
        e.message === 'sysctl read net/ipv6/conf/nosuch0/dad_transmits: ENOENT (no interface "nosuch0" with IPv6)',
    );
  });
});
