/**
 * With the kernel fast path, `clatd run` starts its worker threads only when the fast path hands a
 * packet on (the host/router pair of clatd-run.ts):
 *
 *   host: clatd run, ping 192.0.2.1  ── veth ──  router: 2001:db8:64::c000:201 on lo
 *
 * Plain pings go through the kernel and leave the workers unstarted; the first packet only the
 * workers translate waits in the devices opened for them while they start, and is translated: an
 * IPv4 echo request with an option (4→6, answered), an IPv6 packet with hop limit 1 (6→4, answered
 * with Time Exceeded by the translator).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  PREFIX,
  type Running,
  running,
  SERVER6,
  said,
  setUp,
  startClatd,
  statusOf,
  withHostAndRouter,
} from '../helpers/clatd-run.js';
import { NEED_ROOT, type VethPair } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

const started = (l: Record<string, unknown>) =>
  l.event === 'datapath' && /workers running now, for input the kernel handed on/.test(String(l.msg));

/** Runs `fn` with a clatd whose workers wait for input, or skips when this host has no fast path. */
async function withWaitingWorkers(
  t: { skip(why: string): void },
  fn: (p: VethPair, c: Running, status: () => ReturnType<typeof statusOf>) => Promise<void>,
): Promise<void> {
  await withHostAndRouter(async (p, dir) => {
    setUp(p);
    const sock = join(dir, 'c.sock');
    const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock, '--dad', 'off']);
    try {
      await c.waitFor(running);
      const st = statusOf(p.a, sock);
      if (!String(st.offload).startsWith('in use')) {
        t.skip(`the kernel fast path is not in use here (${st.offload}): the workers start at once`);
        return;
      }
      const waiting = /started when the kernel fast path hands a packet on/;
      assert.ok(
        c.lines.some((l) => l.event === 'datapath' && waiting.test(String(l.msg))),
        said(c.lines),
      );
      assert.equal(st.memory.workerThreads, 0);
      await fn(p, c, () => statusOf(p.a, sock));
    } finally {
      c.child.kill('SIGTERM');
      await c.exited;
    }
  });
}

/** From the router's server address to the CLAT address: one UDP datagram with hop limit 1. */
const HOP_LIMIT_1_PY = (clat6: string) => `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(('${SERVER6}', 0))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 1)
s.sendto(b'x' * 20, ('${clat6}', 9))
`;

describe('worker threads started on input beside the kernel fast path', { skip: NEED_ROOT }, () => {
  test('plain pings leave them unstarted; the first ping with an IPv4 option starts them and is answered', async (t) => {
    await withWaitingWorkers(t, async (p, c, status) => {
      assert.match(p.a.exec('ping', '-c', '3', '-i', '0.3', '-W', '3', '192.0.2.1'), / 3 received/);
      const plain = status();
      assert.equal(plain.memory.workerThreads, 0, 'plain pings went through the kernel alone');
      assert.ok(plain.memory.rssBytes > 0 && plain.memory.heapUsedBytes > 0, JSON.stringify(plain.memory));
      assert.equal(c.lines.find(started), undefined, said(c.lines));

      // One request only: it must itself get through, not a later one after a warm start. Its
      // IPv4 option (record route) is one the programs hand on; the reply is plain again.
      const r = p.a.tryExec('ping', '-c', '1', '-R', '-W', '20', '192.0.2.1');
      assert.match(r.stdout, / 1 received/, `${r.stdout}${r.stderr}\n${said(c.lines)}`);
      await c.waitFor(started);
      const after = status();
      assert.equal(after.memory.workerThreads, 2);
      const c46 = after.counters['46'];
      assert.equal(
        c46.translated - (c46.offloaded ?? 0),
        1,
        `the request went through the workers: ${JSON.stringify(c46)}`,
      );
    });
  });

  test('the first IPv6 packet only the workers handle (hop limit 1) starts them and is answered', async (t) => {
    await withWaitingWorkers(t, async (p, c, status) => {
      p.b.exec('python3', '-c', HOP_LIMIT_1_PY(status().clat6));
      await c.waitFor(started, 20_000);
      // Read once the workers have published (they do at the end of each wake-up).
      let c64 = status().counters['64'];
      for (let i = 0; i < 50 && c64.icmpErrors < 1; i++) {
        await new Promise((r) => setTimeout(r, 100));
        c64 = status().counters['64'];
      }
      assert.equal(c64.drops.v6_hop_limit_expired, 1, JSON.stringify(c64));
      assert.equal(c64.icmpErrors, 1, `Time Exceeded sent back: ${JSON.stringify(c64)}`);
    });
  });
});
