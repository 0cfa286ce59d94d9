/**
 * The health warning on real kernels (the host/router pair of test/helpers/clatd-run.ts): the
 * router stops delivering to the CLAT address (an nft drop for packets to it, as a network that
 * delivers only to addresses it assigned), IPv4 keeps leaving, and clatd warns once, in its log
 * and its status; when the drop goes, the first reply clears it with one info line.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { PREFIX, running, setUp, startClatd, statusOf, withHostAndRouter } from '../helpers/clatd-run.js';
import { NEED_ROOT } from '../helpers/netns.js';
import { CLI } from '../helpers/paths.js';
import { describe, test } from '../helpers/suite.js';

describe('health', { skip: NEED_ROOT }, () => {
  test('nothing comes back to the CLAT address: one warning in log and status; cleared when replies return', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock, '--dad', 'off', '--log-level', 'info']);
      try {
        await c.waitFor(running);
        const clat6 = statusOf(p.a, sock).clat6 as string;
        assert.match(p.a.exec('ping', '-c', '2', '-i', '0.2', '-W', '3', '192.0.2.1'), /2 received/);

        // The router drops everything addressed to the CLAT address (its neighbor solicitations,
        // to the solicited-node group, still go out).
        p.b.sh(
          `nft add table ip6 cltdrop; nft add chain ip6 cltdrop out '{ type filter hook output priority 0; }'; ` +
            `nft add rule ip6 cltdrop out ip6 daddr ${clat6} drop`,
        );
        const ping = p.a.spawn('ping', ['-i', '0.2', '-w', '40', '192.0.2.1'], { stdio: 'ignore' });
        const warn = await c.waitFor((l) => l.event === 'health' && l.level === 'warn', 30_000);
        assert.match(String(warn.msg), new RegExp(`nothing came back to the CLAT address ${clat6}`));
        assert.match(String(warn.msg), /try --v6 with an address the network assigned/);
        const st = statusOf(p.a, sock);
        assert.equal(st.state, 'running');
        assert.equal(st.health.state, 'no-replies');
        assert.equal(st.health.message, warn.msg);
        assert.match(p.a.exec('node', CLI, 'status', '--control', sock), /health +WARNING: no replies/);

        // The drop goes: the next reply clears the warning, once.
        p.b.exec('nft', 'delete', 'table', 'ip6', 'cltdrop');
        const info = await c.waitFor((l) => l.event === 'health' && l.level === 'info', 15_000);
        assert.equal(info.msg, `packets come back to ${clat6} again`);
        assert.equal(statusOf(p.a, sock).health.state, 'ok');
        ping.kill('SIGTERM');
        const health = c.lines.filter((l) => l.event === 'health');
        assert.deepEqual(
          health.map((l) => l.level),
          ['warn', 'info'],
          'one warning, one line when it clears',
        );
      } finally {
        c.child.kill('SIGTERM');
        assert.equal((await c.exited).code, 0);
      }
    });
  });
});
