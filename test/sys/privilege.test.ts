/**
 * The two set-up failures a user can fix get one clear sentence each: missing privilege, and a
 * missing /dev/net/tun. Each runs the real code in a child process: without capabilities
 * (setpriv), or in a private mount namespace where /dev/net is empty (unshare -m; the host's
 * /dev is untouched).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { NEED_ROOT } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

const tunUrl = new URL('../../src/sys/tun.js', import.meta.url).href;
const rawUrl = new URL('../../src/sys/raw6.js', import.meta.url).href;

/** Runs `body` (ESM, may await) in a child `node` behind `prefix` and returns what it printed. */
function runChild(prefix: string[], body: string): string {
  const [cmd, ...args] = [...prefix, process.execPath, '--input-type=module', '-e', body];
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 20_000 }).trim();
}

const report = (call: string) =>
  `try { ${call}; console.log('no error'); } catch (e) { console.log(e.code + ' ' + e.message); }`;

const unprivileged = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all'];

describe('set-up errors a user can fix', { skip: NEED_ROOT }, () => {
  test('TUN without CAP_NET_ADMIN says which capability is missing', () => {
    const out = runChild(unprivileged, `const { Tun } = await import('${tunUrl}'); ${report("Tun.open('v4-priv')")}`);
    assert.match(out, /^ERR_CLATD_SYS TUNSETIFF v4-priv: (EPERM|EACCES) \(.+\) — clatd needs CAP_NET_ADMIN/);
  });

  test('raw socket without CAP_NET_RAW says what to do', () => {
    const out = runChild(
      unprivileged,
      `const { Raw6Socket } = await import('${rawUrl}'); ${report("Raw6Socket.open({ ifname: 'lo', ifindex: 1 })")}`,
    );
    assert.match(out, /^ERR_CLATD_SYS socket raw IPv6 socket on lo: EPERM .* CAP_NET_RAW: run it as root/);
  });

  test('a missing /dev/net/tun says how to get it', () => {
    const body = `const { Tun } = await import('${tunUrl}'); ${report("Tun.open('v4-nodev')")}`;
    const out = runChild(
      ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$@"', 'sh'],
      body,
    );
    assert.match(
      out,
      /^ERR_CLATD_SYS open \/dev\/net\/tun: ENOENT .* — \/dev\/net\/tun is missing: load the tun module/,
    );
  });
});
