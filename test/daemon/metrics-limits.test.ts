/**
 * The metrics server's limits, over loopback TCP: connections beyond the cap are closed at once,
 * a connection that sends nothing and one that trickles its headers are closed within about
 * 2 s, and scrapes work again once they are gone.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { METRICS_MAX_CONNECTIONS, METRICS_REQUEST_MS, MetricsServer } from '../../src/daemon/metrics.js';
import type { StatusSnapshot } from '../../src/daemon/status.js';

/** Connects; resolves once connected, with the time from then to the close. */
async function open(port: number): Promise<{ sock: Socket; closed: Promise<number> }> {
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => {});
  sock.resume();
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  const t0 = Date.now();
  return { sock, closed: new Promise((resolve) => sock.once('close', () => resolve(Date.now() - t0))) };
}

describe('metrics server limits', () => {
  test(`${METRICS_MAX_CONNECTIONS} connections at once; silent and trickling clients closed within ~${METRICS_REQUEST_MS} ms`, async () => {
    // Only the HTTP behaviour is under test: the snapshot is never asked for.
    const m = new MetricsServer('127.0.0.1', 0, () => ({}) as StatusSnapshot);
    await m.listen();
    const port = m.address?.port ?? 0;
    const socks: Socket[] = [];
    try {
      const trickler = await open(port);
      socks.push(trickler.sock);
      const header = `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(1000)}`;
      let i = 0;
      const iv = setInterval(() => trickler.sock.writable && trickler.sock.write(header[i++]), 100);
      trickler.closed.then(() => clearInterval(iv));
      const silent = [];
      for (let k = 1; k < METRICS_MAX_CONNECTIONS; k++) silent.push(await open(port));
      socks.push(...silent.map((s) => s.sock));
      const extra = await open(port);
      socks.push(extra.sock);
      assert.ok((await extra.closed) < 500, 'the connection beyond the cap is closed at once');
      const times = await Promise.all([trickler.closed, ...silent.map((s) => s.closed)]);
      for (const t of times) assert.ok(t < METRICS_REQUEST_MS * 2, `closed after ${t} ms`);
      assert.ok(i > 5, 'the trickling client kept sending');
      const r = await fetch(`http://127.0.0.1:${port}/other`);
      assert.equal(r.status, 404);
    } finally {
      for (const s of socks) s.destroy();
      m.close();
    }
  });
});
