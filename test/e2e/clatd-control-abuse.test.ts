/**
 * Slow control clients against the running daemon: 2000 connections that each send a byte every
 * 300 ms (never idle long enough for an inactivity timeout) once held an fd each, until the fd
 * limit stopped `nft` and the TUN and the teardown left the nft table and proxy_delay=0 behind.
 * Now the daemon holds at most 16 of them at a time, `clatd status` is answered meanwhile, IPv4
 * works, and SIGTERM leaves nothing behind, proxy_delay given back.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MAX_CLIENTS, request } from '../../src/daemon/control.js';
import { ADDR, type Lab } from '../../src/lab/index.js';
import { clatdSuite, pingStats } from './helpers.js';

const SLOW_CLIENTS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The node process of `clatd run` under `pid` (the lab starts it through wrappers that exec). */
function nodePid(pid: number): number | null {
  if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('main.js')) return pid;
  const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  for (const k of kids) {
    const found = nodePid(Number(k));
    if (found) return found;
  }
  return null;
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const proxyDelay = async (lab: Lab) =>
  (await lab.exec(lab.names.host, ['sysctl', '-n', 'net.ipv6.neigh.eth0.proxy_delay'])).stdout.trim();

describe('clatd in the lab: slow control clients', () => {
  let hostProxyDelay = '';
  const suite = clatdSuite({}, [], async (lab) => {
    hostProxyDelay = await proxyDelay(lab);
    return undefined;
  });

  test(`${SLOW_CLIENTS} trickling clients: at most ${MAX_CLIENTS} held, status answered, SIGTERM leaves nothing`, async (t) => {
    const r = suite.ready(t);
    if (!r) return;
    const { lab, clatd } = r;
    const pid = nodePid(clatd.pid);
    assert.ok(pid, 'the clatd node process');
    const dir = join(lab.dir, 'run-clatd');
    const sock = join(dir, readdirSync(dir).find((f) => f.endsWith('.sock')) ?? 'none');
    assert.equal(await proxyDelay(lab), '0', 'proxy_delay is 0 while clatd runs');
    const before = fdCount(pid);

    const clients = new Set<Socket>();
    let peak = 0;
    const trickle = setInterval(() => {
      for (const c of clients) if (c.writable) c.write(' ');
      peak = Math.max(peak, fdCount(pid));
    }, 300);
    try {
      for (let i = 0; i < SLOW_CLIENTS; i++) {
        const c = createConnection(sock);
        c.on('error', () => {});
        c.resume();
        c.on('close', () => clients.delete(c));
        clients.add(c);
        if (i % 100 === 99) {
          peak = Math.max(peak, fdCount(pid));
          await sleep(50);
        }
      }
      await sleep(400);
      peak = Math.max(peak, fdCount(pid));
      // A status request in the middle of it: the oldest slow client makes room.
      let answer: Record<string, unknown> | undefined;
      for (let k = 0; k < 5 && !answer; k++) answer = await request(sock, 'status').catch(() => undefined);
      assert.equal(answer?.ok, true, 'clatd status answered while slow clients fill the cap');
      t.diagnostic(`daemon fds: ${before} before, at most ${peak} with ${SLOW_CLIENTS} slow clients`);
      assert.ok(
        peak <= before + MAX_CLIENTS + 4,
        `the daemon held at most ${peak - before} more fds (cap ${MAX_CLIENTS}), not one per client`,
      );
      const p = await lab.exec(lab.names.host, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ADDR.server], {
        allowFail: true,
      });
      assert.equal(pingStats(p.stdout).received, 2, p.stdout);
    } finally {
      clearInterval(trickle);
      for (const c of clients) c.destroy();
    }

    clatd.child.kill('SIGTERM');
    const ex = await Promise.race([clatd.exited, sleep(5000).then(() => null)]);
    assert.ok(ex, 'clatd did not exit within 5 s of SIGTERM');
    assert.equal(ex.code, 0, `exit ${ex.code ?? ex.signal}: ${clatd.output().slice(-800)}`);
    assert.deepEqual(await lab.hostLeftovers(), []);
    assert.equal(await proxyDelay(lab), hostProxyDelay, 'proxy_delay given back');
  });
});
