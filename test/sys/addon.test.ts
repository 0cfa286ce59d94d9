/** The native shim loads (main thread and worker), and its errors are named and clear. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { interfaceIndex, interfaceName, K, native } from '../../src/sys/addon.js';
import { ClosedError, check, Errno, errnoName, SysError, sysError } from '../../src/sys/errors.js';
import { drainEventFd, EventFd } from '../../src/sys/eventfd.js';
import { fixMmapThreshold, MMAP_THRESHOLD } from '../../src/sys/malloc.js';
import { PollSet, pollReadable } from '../../src/sys/poll.js';

/** A full, compacting GC (V8 moves what it can), without starting node with --expose-gc. */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Both ends of a fresh AF_UNIX SOCK_SEQPACKET pair. */
function socketPair(): [number, number] {
  const fds = new Int32Array(2);
  assert.equal(native.socketPair(K.AF_UNIX, K.SOCK_SEQPACKET, fds), 0);
  return [fds[0] as number, fds[1] as number];
}

/**
 * A worker thread that imports poll.js and eventfd.js as `pollReadable` and `EventFd`, makes an
 * eventfd `e` and runs `body` (which may use `parentPort`).
 */
function pollWorker(body: string): Worker {
  const url = new URL('../../src/sys/poll.js', import.meta.url).href;
  const ev = new URL('../../src/sys/eventfd.js', import.meta.url).href;
  const code = `
    const { parentPort } = require('node:worker_threads');
    (async () => {
      const { pollReadable } = await import(${JSON.stringify(url)});
      const { EventFd } = await import(${JSON.stringify(ev)});
      const e = EventFd.create();
      ${body}
    })();`;
  return new Worker(code, { eval: true });
}

describe('addon', () => {
  test('loads and exposes the kernel constants', () => {
    assert.equal(typeof native.tunOpen, 'function');
    assert.equal(K.ETH_P_IPV6, 0x86dd);
    assert.equal(K.AF_INET6, 10);
    assert.equal(K.VIRTIO_NET_HDR_LEN, 10);
    assert.equal(K.SOCKADDR_IN6_LEN, 28);
    assert.equal(K.SKF_NET_OFF, -0x100000);
  });

  test('mallopt fixes the mmap threshold (glibc); a bad argument is a clear error', () => {
    assert.equal(fixMmapThreshold(), true);
    assert.equal(native.mallopt(K.M_MMAP_THRESHOLD, MMAP_THRESHOLD), 1);
    assert.throws(() => native.mallopt('x' as unknown as number, 1), /param must be a number/);
  });

  test('loads inside a worker thread (context-aware) and polls an eventfd there', async () => {
    const w = pollWorker(`
      const p = pollReadable(e.fd, 'eventfd', () => {
        const v = e.drain();
        p.stop();
        e.close();
        parentPort.postMessage(v);
      });
      e.signal(3);
    `);
    const [value] = await Promise.all([
      new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }),
      // The worker exits by itself once its poll is stopped: nothing keeps its loop alive.
      new Promise<number>((resolve) => w.once('exit', resolve)),
    ]);
    assert.equal(value, 3);
  });

  test('a worker terminated with an active poll exits cleanly', async () => {
    const w = pollWorker(`
      pollReadable(e.fd, 'eventfd', () => e.drain());
      parentPort.postMessage('ready');
    `);
    await new Promise((resolve) => w.once('message', resolve));
    assert.equal(await w.terminate(), 1);
  });

  test('a throwing callback stops its poll (no spin) and surfaces as an uncaught exception', async () => {
    const w = pollWorker(`
      let calls = 0;
      const p = pollReadable(e.fd, 'eventfd', () => {
        calls++;
        throw new Error('boom');
      });
      process.on('uncaughtException', (err) => {
        // The eventfd stays readable: a poll still running would call again at once.
        setTimeout(() => {
          parentPort.postMessage({ error: err.message, calls, active: p.active });
          e.close();
        }, 50);
      });
      e.signal();
    `);
    const [msg] = await Promise.all([
      new Promise((resolve) => w.once('message', resolve)),
      new Promise((resolve) => w.once('exit', resolve)),
    ]);
    assert.deepEqual(msg, { error: 'boom', calls: 1, active: false });
  });

  test('poll on the main thread: level-triggered, stop inside the callback, no spin', async () => {
    const e = EventFd.create();
    let calls = 0;
    await new Promise<void>((resolve) => {
      const p = pollReadable(e.fd, 'eventfd', () => {
        calls++;
        // Not drained on the first call: the level-triggered poll must call again.
        if (calls === 2) {
          assert.equal(e.drain(), 1);
          p.stop();
          p.stop();
          assert.equal(p.active, false);
          resolve();
        }
      });
      e.signal();
    });
    // Signalled again after the stop: the callback must not run any more.
    e.signal();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(calls, 2);
    e.close();
    e.close();
  });

  test('PollSet: one blocking poll(2) over several fds, which slot woke, removed slots skipped', () => {
    const a = EventFd.create();
    const b = EventFd.create();
    const set = new PollSet([a.fd, b.fd], 'test set');
    try {
      assert.equal(set.wait(0), 0, 'nothing signalled: a zero timeout returns at once');
      b.signal();
      assert.equal(set.wait(1000), 1);
      assert.equal(set.revents[0], 0);
      assert.equal(set.revents[1] & K.POLLIN, K.POLLIN);
      // Level-triggered: still readable until drained.
      assert.equal(set.wait(0), 1);
      assert.equal(drainEventFd(b.fd), 1);
      assert.equal(set.wait(0), 0);
      // A removed slot is not watched even when its fd is readable.
      a.signal();
      set.remove(0);
      set.remove(0);
      assert.equal(set.wait(0), 0);
      assert.equal(set.fds[0], -1);
      const t0 = performance.now();
      assert.equal(set.wait(30), 0, 'times out');
      assert.ok(performance.now() - t0 >= 20);
    } finally {
      a.close();
      b.close();
    }
  });

  test('PollSet: a closed fd shows as POLLNVAL; bad arguments are refused with a clear error', () => {
    const e = EventFd.create();
    const fd = e.fd;
    e.close();
    const set = new PollSet([fd], 'closed');
    assert.equal(set.wait(0), 1);
    assert.equal(set.revents[0] & K.POLLNVAL, K.POLLNVAL);
    set.close();
    set.close();
    assert.throws(() => set.wait(0), /no such bound array set/, 'a closed set is not polled');
    const bad = (fds: Int32Array | Uint32Array, revents: Int32Array) => {
      const id = native.bind(fds, revents);
      try {
        native.pollMany(id, 0);
      } finally {
        native.unbind(id);
      }
    };
    assert.throws(() => bad(new Int32Array(2), new Int32Array(1)), /as long as fds/);
    assert.throws(() => bad(new Uint32Array(1), new Int32Array(1)), /Int32Array/);
    assert.throws(() => bad(new Int32Array(17), new Int32Array(17)), /at most 16/);
  });

  test('closing an fd stops its polls first (no stale libuv watcher on a reused fd number)', async () => {
    const e = EventFd.create();
    const fd = e.fd;
    let calls = 0;
    const p = pollReadable(fd, 'eventfd', () => calls++);
    e.close();
    assert.equal(p.active, false);
    // The number is reused at once; a poll on the new fd must get its events.
    const e2 = EventFd.create();
    assert.equal(e2.fd, fd);
    await new Promise<void>((resolve) => {
      const p2 = pollReadable(e2.fd, 'eventfd', () => {
        e2.drain();
        p2.stop();
        resolve();
      });
      e2.signal();
    });
    e2.close();
    assert.equal(calls, 0);
  });

  test('poll of a bad fd is a named error', () => {
    assert.throws(
      () => pollReadable(1_000_000, 'fd 1000000', () => {}),
      (err: unknown) =>
        err instanceof SysError && err.errnoName === 'EBADF' && /uv_poll_start fd 1000000/.test(err.message),
    );
  });

  test('socketPair: a SEQPACKET pair keeps packet boundaries both ways; bad arguments are refused', () => {
    const fds = new Int32Array(2);
    assert.equal(native.socketPair(K.AF_UNIX, K.SOCK_SEQPACKET, fds), 0);
    const [a, b] = [fds[0] as number, fds[1] as number];
    try {
      assert.ok(a >= 0 && b >= 0 && a !== b);
      assert.equal(native.write(a, Uint8Array.of(1, 2, 3)), 3);
      assert.equal(native.write(a, Uint8Array.of(4)), 1);
      const buf = new Uint8Array(16);
      assert.equal(native.read(b, buf), 3, 'one packet per read');
      assert.equal(native.read(b, buf), 1);
      assert.equal(native.read(b, buf), -Errno.EAGAIN, 'non-blocking');
      assert.equal(native.write(b, Uint8Array.of(9)), 1);
      assert.equal(native.read(a, buf), 1);
    } finally {
      native.close(a);
      native.close(b);
    }
    assert.equal(errnoName(-native.socketPair(-1, K.SOCK_SEQPACKET, fds)), 'EAFNOSUPPORT');
    assert.throws(() => native.socketPair(K.AF_UNIX, K.SOCK_SEQPACKET, new Int32Array(1)), /Int32Array\(2\)/);
    assert.throws(() => native.socketPair(K.AF_UNIX, K.SOCK_SEQPACKET, new Uint32Array(2) as never), TypeError);
  });

  test('eventfd counts, drains to 0, and refuses use after close', () => {
    const e = EventFd.create(2);
    e.signal(5);
    assert.equal(e.drain(), 7);
    assert.equal(e.drain(), 0);
    e.close();
    assert.throws(() => e.signal(), ClosedError);
  });

  test('bad fds give -EBADF, never a crash', () => {
    assert.equal(native.close(1_000_000), -Errno.EBADF);
    assert.equal(native.read(1_000_000, new Uint8Array(4)), -Errno.EBADF);
    assert.equal(native.setsockoptInt(1_000_000, K.SOL_SOCKET, K.SO_RCVBUF, 1), -Errno.EBADF);
    assert.equal(native.getsockoptBuf(1_000_000, K.SOL_PACKET, K.PACKET_STATISTICS, new Uint32Array(2)), -Errno.EBADF);
    const id = native.bind(new Uint8Array(1024), new Uint32Array(4), new Uint32Array(4));
    assert.equal(native.readBatch(1_000_000, id, 0, 4, 256, 0, 0), -Errno.EBADF);
    native.unbind(id);
  });

  test('bound array sets: numbered, released once, refused when unknown or of the wrong types', () => {
    const a = native.bind(new Uint8Array(8), null, new Uint32Array(1));
    const b = native.bind(new Uint8Array(8));
    assert.notEqual(a, b);
    assert.equal(native.unbind(a), 1);
    assert.equal(native.unbind(a), 0, 'a second unbind is a no-op');
    assert.equal(native.bind(new Uint8Array(8)), a, 'a released number is given out again');
    assert.throws(() => native.readBatch(0, 999_999, 0, 1, 8, 0, 0), /no such bound array set/);
    assert.throws(() => native.bind([1, 2] as never), /typed arrays/);
    const seven = Array.from({ length: 7 }, () => new Uint8Array(1));
    assert.throws(() => native.bind(...seven), /at most 6/);
    // Slot 1 is empty, slot 2 is not a Uint32Array: each call says which slot is wrong.
    const c = native.bind(new Uint8Array(8), null, new Uint32Array(1));
    const d = native.bind(new Uint8Array(8), new Uint32Array(1), new Int32Array(1));
    assert.throws(() => native.readBatch(0, c, 0, 1, 8, 0, 0), /slot 1 \(offs\)/);
    assert.throws(() => native.readBatch(0, d, 0, 1, 8, 0, 0), /slot 2 \(lens\)/);
    assert.throws(() => native.writeBatch(0, d, 0, 0, -1), /slot 2/);
    for (const id of [a, b, c, d]) native.unbind(id);
  });

  test('a bound set keeps its arrays: data written through the shim after a GC lands in them', () => {
    const [r, w] = socketPair();
    try {
      // Small typed arrays start on V8's heap, which moves; binding takes them off it for good.
      const src = Uint8Array.from([1, 2, 3, 4]);
      const out = native.bind(src, Uint32Array.of(0), Uint32Array.of(4), Uint8Array.of(0), null);
      let data: Uint8Array | undefined = new Uint8Array(16);
      let offs: Uint32Array | undefined = new Uint32Array(2);
      let lens: Uint32Array | undefined = new Uint32Array(2);
      const inId = native.bind(data, offs, lens);
      const view = { data, offs, lens };
      data = offs = lens = undefined;
      fullGc();
      assert.equal(native.writeBatch(w, out, 0, 1, -1), 1);
      assert.equal(native.readBatch(r, inId, 0, 2, 8, 2, 0), 1);
      assert.deepEqual([view.offs[0], view.lens[0]], [2, 4]);
      assert.deepEqual([...view.data.subarray(2, 6)], [1, 2, 3, 4]);
      // With a base (a batch carved out of an arena at byte 8): slot 0 starts there.
      assert.equal(native.writeBatch(w, out, 0, 1, -1), 1);
      assert.equal(native.readBatch(r, inId, 0, 1, 8, 2, 8), 1);
      assert.deepEqual([view.offs[0], view.lens[0]], [10, 4]);
      assert.deepEqual([...view.data.subarray(10, 14)], [1, 2, 3, 4]);
      native.unbind(out);
      native.unbind(inId);
    } finally {
      native.close(r);
      native.close(w);
    }
  });

  test('wrong argument types and out-of-range slots throw, not write out of bounds', () => {
    const id = native.bind(new Uint8Array(1024), new Uint32Array(4), new Uint32Array(4));
    const u16 = native.bind(new Uint8Array(1024), new Uint16Array(4) as never, new Uint32Array(4));
    assert.throws(() => native.readBatch(0, id, 0, 5, 256, 0, 0), RangeError);
    assert.throws(() => native.readBatch(0, id, 0, 4, 512, 0, 0), RangeError);
    assert.throws(() => native.readBatch(0, id, 0, 4, 256, 256, 0), RangeError);
    // The base moves every slot: four slots of 256 from byte 1 pass the end of 1024 bytes.
    assert.throws(() => native.readBatch(0, id, 0, 4, 256, 0, 1), RangeError);
    assert.throws(() => native.recvBatch(0, id, 0, 3, 256, 0, 257), RangeError);
    assert.throws(() => native.readBatch(0, u16, 0, 4, 256, 0, 0), TypeError);
    native.unbind(id);
    native.unbind(u16);
    assert.throws(() => native.close('3' as never), TypeError);
    assert.throws(() => native.ifNameToIndex('x'.repeat(40)), RangeError);
  });

  test('a nonexistent interface is an error naming it', () => {
    assert.throws(
      () => interfaceIndex('nonexist0'),
      (err: unknown) =>
        err instanceof SysError &&
        err.code === 'ERR_CLATD_SYS' &&
        err.errnoName === 'ENODEV' &&
        err.object === 'nonexist0' &&
        /nonexist0/.test(err.message),
    );
    assert.throws(() => interfaceIndex(''), SysError);
    assert.equal(interfaceIndex('lo'), 1);
    assert.equal(interfaceName(1), 'lo');
  });

  test('errno names and messages', () => {
    assert.equal(errnoName(Errno.EPERM), 'EPERM');
    assert.equal(errnoName(Errno.EBUSY), 'EBUSY');
    const e = sysError(Errno.EPERM, 'TUNSETIFF', 'v4-eth0', 'clatd needs CAP_NET_ADMIN');
    assert.equal(e.message, 'TUNSETIFF v4-eth0: EPERM (operation not permitted) — clatd needs CAP_NET_ADMIN');
    assert.match(sysError(Errno.EACCES, 'socket').message, /CAP_NET_RAW/);
    assert.equal(check(5, 'x'), 5);
    assert.throws(() => check(-Errno.ENOENT, 'open', '/x'), /open \/x: ENOENT \(no such file or directory\)/);
  });
});
