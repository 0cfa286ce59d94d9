/**
 * The control socket's limits, over real unix sockets in a temporary folder: a deadline for the
 * whole request (a client trickling bytes is closed as well as a silent one), a cap on clients at
 * once, and `clatd status` still answered while idle clients fill the cap.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlServer, EVICT_AFTER_MS, MAX_CLIENTS, REQUEST_DEADLINE_MS, request } from '../../src/daemon/control.js';

/** For the tests of the cap: idle clients must not reach their deadline before the test is done with them, on a busy machine. */
const SLOW_DEADLINE = { deadlineMs: 4000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Client {
  readonly sock: Socket;
  /** Everything the server sent. */
  text(): string;
  /** Resolves with the time from connect to close. */
  readonly closed: Promise<number>;
}

/** A client that connects and reads whatever comes (so it sees the server close). */
async function connect(path: string): Promise<Client> {
  const sock = createConnection(path);
  let got = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    got += d;
  });
  sock.on('error', () => {});
  const t0 = Date.now();
  const closed = new Promise<number>((resolve) => sock.on('close', () => resolve(Date.now() - t0)));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('close', () => reject(new Error('closed before connecting')));
  });
  return { sock, text: () => got, closed };
}

describe('control socket limits', () => {
  let dir: string;
  let n = 0;
  const servers: ControlServer[] = [];
  const clients: Socket[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'clatd-ctl-'));
  });
  after(() => {
    for (const c of clients) c.destroy();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  async function server(limits = {}): Promise<{ s: ControlServer; path: string }> {
    const path = join(dir, `c${++n}.sock`);
    const s = new ControlServer(path, (req) => ({ ok: true, status: { cmd: req.cmd } }), limits);
    servers.push(s);
    await s.listen();
    return { s, path };
  }
  async function client(path: string): Promise<Client> {
    const c = await connect(path);
    clients.push(c.sock);
    return c;
  }

  test('the constants: 2 s for a whole request, 16 clients at once, eviction after 250 ms', () => {
    assert.equal(REQUEST_DEADLINE_MS, 2000);
    assert.equal(MAX_CLIENTS, 16);
    assert.equal(EVICT_AFTER_MS, 250);
  });

  test('a client trickling a byte every 200 ms is closed at the deadline, with an error line', async () => {
    const { s, path } = await server();
    const c = await client(path);
    // A request that would be whole with its last byte, which never comes.
    const bytes = `{"cmd":"status"${' '.repeat(100)}`;
    let i = 0;
    const trickle = setInterval(() => {
      if (!c.sock.destroyed) c.sock.write(bytes[i++]);
    }, 200);
    try {
      const ms = await c.closed;
      assert.ok(ms >= REQUEST_DEADLINE_MS - 50 && ms < REQUEST_DEADLINE_MS + 1000, `closed after ${ms} ms`);
      assert.ok(i >= 5, `the client kept sending (${i} bytes)`);
      assert.deepEqual(JSON.parse(c.text()), { ok: false, error: 'no whole request within 2000 ms' });
      assert.equal(s.counters.timedOut, 1);
      assert.equal(s.counters.open, 0);
    } finally {
      clearInterval(trickle);
    }
  });

  test('a client that sends its request and never reads or closes is closed after its answer', async () => {
    const { s, path } = await server({ deadlineMs: 300 });
    const sock = createConnection(path);
    clients.push(sock);
    sock.on('error', () => {});
    sock.write('{"cmd":"status"}\n{"cmd":"status"}\n');
    await sleep(100);
    // One request per connection: answered once, then the server's side is gone.
    assert.deepEqual(s.counters, { accepted: 1, answered: 1, refused: 0, evicted: 0, timedOut: 0, open: 0 });
  });

  test(`the ${MAX_CLIENTS + 1}th client at once is refused with a short error; the count stays at the cap`, async () => {
    const { s, path } = await server(SLOW_DEADLINE);
    const idle = await Promise.all(Array.from({ length: MAX_CLIENTS }, () => client(path)));
    await sleep(20);
    assert.equal(s.counters.open, MAX_CLIENTS);
    const extra = await client(path);
    const ms = await extra.closed;
    assert.ok(ms < 500, `refused after ${ms} ms`);
    assert.match(JSON.parse(extra.text()).error, /^busy: 16 control clients are connected/);
    // A burst of 100 more: all refused at once, none of the first 16 closed for them.
    const burst = await Promise.allSettled(Array.from({ length: 100 }, () => client(path)));
    await Promise.all(burst.map((b) => (b.status === 'fulfilled' ? b.value.closed : undefined)));
    assert.equal(s.counters.open, MAX_CLIENTS);
    assert.equal(s.counters.refused, 1 + burst.filter((b) => b.status === 'fulfilled').length);
    assert.equal(s.counters.evicted, 0);
    for (const c of idle) assert.equal(c.sock.destroyed, false);
  });

  test('a status request is answered while idle clients hold every slot: the oldest makes room', async () => {
    const { s, path } = await server(SLOW_DEADLINE);
    const idle: Client[] = [];
    for (let i = 0; i < MAX_CLIENTS; i++) idle.push(await client(path));
    await sleep(EVICT_AFTER_MS + 50);
    assert.deepEqual(await request(path, 'status'), { ok: true, status: { cmd: 'status' } });
    // The first idle client gave up its slot (and was told why); the others are still connected.
    await idle[0].closed;
    assert.deepEqual(JSON.parse(idle[0].text()), {
      ok: false,
      error: 'closed: too slow while another client was waiting',
    });
    for (const c of idle.slice(1)) assert.equal(c.sock.destroyed, false);
    const k = s.counters;
    assert.equal(k.evicted, 1);
    assert.equal(k.answered, 1);
    assert.equal(k.refused, 0);
    // Every idle client is closed at its deadline; the socket holds nothing afterwards.
    await Promise.all(idle.map((c) => c.closed));
    assert.equal(s.counters.open, 0);
    assert.equal(s.counters.timedOut, MAX_CLIENTS - 1);
  });

  test('a request longer than 4096 bytes without a newline is answered with an error at once', async () => {
    const { path } = await server();
    const c = await client(path);
    c.sock.write('x'.repeat(5000));
    await c.closed;
    assert.deepEqual(JSON.parse(c.text()), { ok: false, error: 'request too long' });
  });

  test('close() closes connected clients too', async () => {
    const { s, path } = await server();
    const c = await client(path);
    await sleep(20);
    s.close();
    const ms = await c.closed;
    assert.ok(ms < 1000);
    assert.equal(s.counters.open, 0);
  });
});
