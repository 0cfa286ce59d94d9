/**
 * The fast path's next hop follows the route, for real (the host/router pair of clatd-run.ts):
 *
 *   host: clatd run, ping 192.0.2.1  ── veth ──  router: 2001:db8:1::1 (then ::2), server on lo
 *
 * With the fast path in use, clatd's next-hop map (read from outside, through the map's id in the
 * daemon's fdinfo) holds the router's address and IPv4 works. Then, while a ping runs every 50 ms,
 * the router gets a second address, the host's default route moves to it and the first address is
 * removed: with a next hop left stale, every later packet would go to an address nobody answers
 * for. The pings go on with at most a short gap, and the map holds the new router.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIPv6 } from '../../src/core/addr/ipv6.js';
import { AF_INET6, NEXT_HOP_LEN } from '../../src/offload/egress4.js';
import { closeBpf, lookupArray, mapFdById } from '../../src/sys/ebpf.js';
import {
  assertPings,
  assertUdpEcho,
  PREFIX,
  type Running,
  running,
  said,
  setUp,
  startClatd,
  statusOf,
  withHostAndRouter,
} from '../helpers/clatd-run.js';
import { NEED_ROOT } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

/** The next hop in clatd's map ('' while not valid), found as its one 20-byte, one-entry array map. */
function mapNextHop(c: Running): string {
  const pid = c.child.pid as number;
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info = '';
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    if (!/^map_type:\s+2$/m.test(info) || !new RegExp(`^value_size:\\s+${NEXT_HOP_LEN}$`, 'm').test(info)) continue;
    const id = Number(/^map_id:\s+(\d+)$/m.exec(info)?.[1]);
    const m = mapFdById(id);
    try {
      const v = new Uint8Array(NEXT_HOP_LEN);
      lookupArray(m, 0, v);
      return v[0] === AF_INET6 ? formatIPv6(v.subarray(4)) : '';
    } finally {
      closeBpf(m);
    }
  }
  throw new Error('no next-hop map in the daemon');
}

async function until(what: string, fn: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the fast path next hop on a real route', { skip: NEED_ROOT }, () => {
  test('holds the router, follows the default route to a second router, no blackhole when the first goes', async (t) => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock, '--dad', 'off']);
      try {
        await c.waitFor(running);
        const st = statusOf(p.a, sock);
        if (!String(st.offload).startsWith('in use')) {
          t.skip(`the kernel fast path is not in use here (${st.offload})`);
          return;
        }
        await until('the first next hop', () => mapNextHop(c) === '2001:db8:1::1');
        assert.match(statusOf(p.a, sock).offload, /next hop 2001:db8:1::1\)/);
        assertPings(p.a);
        await assertUdpEcho(p);

        // Mid-traffic: a second router address, the default route moved to it, the first removed.
        const ping = p.a.spawn('ping', ['-c', '80', '-i', '0.05', '-W', '1', '192.0.2.1'], { stdio: 'pipe' });
        let out = '';
        ping.stdout?.on('data', (d) => {
          out += String(d);
        });
        const exited = new Promise((r) => ping.on('exit', r));
        await new Promise((r) => setTimeout(r, 1000));
        p.b.exec('ip', '-6', 'addr', 'add', '2001:db8:1::2/64', 'dev', 'veth-b', 'nodad');
        p.a.exec('ip', '-6', 'route', 'replace', 'default', 'via', '2001:db8:1::2', 'dev', 'veth-a');
        p.b.exec('ip', '-6', 'addr', 'del', '2001:db8:1::1/64', 'dev', 'veth-b');
        await exited;
        const received = Number(/(\d+) received/.exec(out)?.[1] ?? -1);
        // 80 sent in 4 s: a gap of at most half a second (a neighbour resolution of the new router).
        assert.ok(received >= 70, `${received} of 80 answered across the change:\n${out}`);
        await until('the new next hop', () => mapNextHop(c) === '2001:db8:1::2');
        assert.match(statusOf(p.a, sock).offload, /next hop 2001:db8:1::2\)/);
        assertPings(p.a);
        await assertUdpEcho(p);
        const st2 = statusOf(p.a, sock);
        assert.ok(
          st2.counters['46'].offloaded >= 70,
          `the kernel translated the pings: ${JSON.stringify(st2.counters['46'])}`,
        );
      } finally {
        c.child.kill('SIGTERM');
        await c.exited;
      }
      assert.ok(
        c.lines.some((l) => l.event === 'offload' && /next hop 2001:db8:1::2/.test(String(l.msg))),
        said(c.lines),
      );
    });
  });
});
