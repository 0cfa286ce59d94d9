/**
 * The shim's contracts that a mistake would break silently: every constant the TypeScript side uses
 * is a number; both batch writers follow one errno policy, which the TypeScript side reads the same
 * way; and no error path of tunOpen leaves an fd open.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBatch, type PacketBatch } from '../../src/core/batch.js';
import { AddonError, CONSTANT_NAMES, checkConstants, K, native } from '../../src/sys/addon.js';
import { ClosedError, Errno, isClosedErrno } from '../../src/sys/errors.js';
import { Raw6Socket } from '../../src/sys/raw6.js';
import { Tun } from '../../src/sys/tun.js';
import { NEED_ROOT, withNetns } from '../helpers/netns.js';
import { ROOT } from '../helpers/paths.js';
import { describe, test } from '../helpers/suite.js';

/** Both ends of a fresh AF_UNIX SOCK_SEQPACKET pair (what the datapath's stand-ins use). */
function socketPair(): [number, number] {
  const fds = new Int32Array(2);
  assert.equal(native.socketPair(K.AF_UNIX, K.SOCK_SEQPACKET, fds), 0);
  return [fds[0] as number, fds[1] as number];
}

/** Far above any fd this process has: every call on it fails with EBADF, and no reuse can change that. */
const BAD_FD = 1_000_000;

/** A batch of packets of the given lengths (bytes set to their slot index). */
function batchOf(lens: number[]): PacketBatch {
  const stride = Math.max(...lens, 64);
  const b = createBatch(lens.length, stride);
  lens.forEach((len, i) => {
    b.data.fill(i + 1, b.offs[i], b.offs[i] + len);
    b.lens[i] = len;
  });
  b.count = lens.length;
  return b;
}

type Writer = 'writeBatch' | 'sendBatch';
const NAME_LEN = K.SOCKADDR_IN6_LEN;

/** One call of `writer` over `b` on `fd`: its result and the set's stats [failed, last errno]. */
function writeWith(writer: Writer, fd: number, b: PacketBatch): { n: number; failed: number; errno: number } {
  const stats = new Int32Array(2);
  // Names are ignored on a connected AF_UNIX socket; sendBatch still needs one per slot.
  const names = new Uint8Array(b.capacity * NAME_LEN);
  const id = native.bind(b.data, b.offs, b.lens, b.disp, stats, names);
  try {
    const n =
      writer === 'writeBatch'
        ? native.writeBatch(fd, id, 0, b.count, -1)
        : native.sendBatch(fd, id, 0, b.count, -1, NAME_LEN);
    return { n, failed: stats[0] as number, errno: stats[1] as number };
  } finally {
    native.unbind(id);
  }
}

/** Fills the socket's send buffer (the peer reads nothing) until a write says EAGAIN. */
function fill(fd: number): void {
  const p = new Uint8Array(1024);
  for (let i = 0; i < 1_000_000; i++) {
    const r = native.write(fd, p);
    if (r === -Errno.EAGAIN) return;
    assert.ok(r > 0, `write while filling: ${r}`);
  }
  assert.fail('the socket never filled');
}

/** The fds this process has open, by number. */
function openFds(): string[] {
  return readdirSync('/proc/self/fd').sort();
}

describe('addon constants', () => {
  test('every constant the TypeScript side lists is an integer from the shim', () => {
    for (const name of CONSTANT_NAMES) {
      assert.ok(Number.isInteger(native.constants[name]), `native.constants.${name} = ${native.constants[name]}`);
      assert.equal(K[name], native.constants[name], name);
    }
  });

  test('every K.NAME used in src/ is listed (and so checked at load)', () => {
    const listed = new Set<string>(CONSTANT_NAMES);
    const used = new Set<string>();
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts'))
          for (const m of readFileSync(p, 'utf8').matchAll(/\bK\.([A-Z][A-Z0-9_]*)/g)) used.add(m[1] as string);
      }
    };
    walk(join(ROOT, 'src'));
    assert.ok(used.size > 20, `found only ${used.size} uses: the scan is broken`);
    const unlisted = [...used].filter((n) => !listed.has(n));
    assert.deepEqual(unlisted, [], 'constants used but not in CONSTANT_NAMES');
  });

  test('a missing or non-numeric constant fails the load loudly, naming it', () => {
    const { IFF_NO_PI: _, ...missing } = native.constants;
    assert.throws(
      () => checkConstants(missing, 'clatd_native.node'),
      (e: unknown) => e instanceof AddonError && /IFF_NO_PI/.test(e.message) && /rebuild/.test(e.message),
    );
    assert.throws(() => checkConstants({ ...native.constants, POLLIN: '1' }, 'x'), /lacks the constants POLLIN\b/);
    assert.throws(() => checkConstants(undefined, 'x'), AddonError);
    checkConstants(native.constants, 'x');
  });
});

describe('batch writers: one errno policy', () => {
  test('the fatal class is exactly isClosedErrno, for every errno', () => {
    for (let e = 1; e < 134; e++) {
      const c = native.writeErrnoClass(e);
      assert.ok([K.WRITE_SKIP, K.WRITE_END, K.WRITE_FATAL].includes(c), `errno ${e}: class ${c}`);
      assert.equal(c === K.WRITE_FATAL, isClosedErrno(e), `errno ${e}`);
    }
    assert.equal(native.writeErrnoClass(Errno.EAGAIN), K.WRITE_END);
    assert.equal(native.writeErrnoClass(Errno.ENOBUFS), K.WRITE_END);
    assert.equal(native.writeErrnoClass(Errno.EIO), K.WRITE_END, 'a TUN that is down: the fd is fine');
    assert.equal(native.writeErrnoClass(Errno.ENETDOWN), K.WRITE_END);
    assert.equal(native.writeErrnoClass(Errno.EMSGSIZE), K.WRITE_SKIP);
    assert.equal(native.writeErrnoClass(Errno.ENETUNREACH), K.WRITE_SKIP);
    assert.equal(native.writeErrnoClass(Errno.EBADFD), K.WRITE_FATAL);
  });

  for (const writer of ['writeBatch', 'sendBatch'] as const) {
    test(`${writer}: a bad fd is fatal: every packet counted, -EBADF`, () => {
      assert.deepEqual(writeWith(writer, BAD_FD, batchOf([60, 60, 60])), {
        n: -Errno.EBADF,
        failed: 3,
        errno: Errno.EBADF,
      });
    });

    test(`${writer}: a full queue ends the batch: every packet counted, -EAGAIN, the fd still works`, () => {
      const [a, b] = socketPair();
      try {
        fill(a);
        assert.deepEqual(writeWith(writer, a, batchOf([60, 60, 60])), {
          n: -Errno.EAGAIN,
          failed: 3,
          errno: Errno.EAGAIN,
        });
        // Room again after the peer reads: the same fd takes the next batch whole.
        const buf = new Uint8Array(2048);
        while (native.read(b, buf) > 0);
        assert.deepEqual(writeWith(writer, a, batchOf([60, 60, 60])), { n: 3, failed: 0, errno: 0 });
      } finally {
        native.close(a);
        native.close(b);
      }
    });

    test(`${writer}: a packet the kernel refuses alone is skipped; the rest go out`, () => {
      const [a, b] = socketPair();
      try {
        // AF_UNIX datagrams larger than the send buffer are EMSGSIZE, whatever the queue holds.
        const sndbuf = native.getsockoptInt(a, K.SOL_SOCKET, K.SO_SNDBUF);
        assert.ok(sndbuf > 0);
        assert.deepEqual(writeWith(writer, a, batchOf([60, sndbuf + 1, 70])), {
          n: 2,
          failed: 1,
          errno: Errno.EMSGSIZE,
        });
        const buf = new Uint8Array(256);
        assert.equal(native.read(b, buf), 60);
        assert.equal(native.read(b, buf), 70, 'the packet after the refused one went out');
        // Only the refused packet: nothing went out, so its errno is the result.
        assert.deepEqual(writeWith(writer, a, batchOf([sndbuf + 1])), {
          n: -Errno.EMSGSIZE,
          failed: 1,
          errno: Errno.EMSGSIZE,
        });
      } finally {
        native.close(a);
        native.close(b);
      }
    });
  }

  test('Tun.write and Raw6Socket.write read the results alike: a drop is counted, a bad fd closes', () => {
    const [a, b] = socketPair();
    const [c, d] = socketPair();
    const tun = Tun.overFd(a, 'stand-in TUN');
    const raw = Raw6Socket.overFd(c, { ifname: 'stand-in', ifindex: 1 });
    try {
      fill(a);
      fill(c);
      for (const io of [tun, raw]) {
        assert.equal(io.write(batchOf([60, 60])), 0);
        assert.deepEqual(io.errors, { readErrors: 0, writeErrors: 2, lastErrno: Errno.EAGAIN });
      }
      const badTun = Tun.overFd(BAD_FD, 'bad TUN');
      const badRaw = Raw6Socket.overFd(BAD_FD, { ifname: 'bad', ifindex: 1 });
      assert.throws(() => badTun.write(batchOf([60])), ClosedError);
      assert.throws(() => badRaw.write(batchOf([60])), ClosedError);
      badTun.forgetFd();
      badTun.close();
      badRaw.close();
    } finally {
      tun.close();
      raw.close();
      native.close(b);
      native.close(d);
    }
  });
});

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
