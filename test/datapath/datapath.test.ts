/**
 * The Datapath in process (`workers: 0`) over in-memory PacketIo fakes and the real translator:
 * a CLAT configured as `--pref64` would (pool6 64:ff9b::/96, EAM 192.0.0.4/32 ↔ the CLAT /128).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatIPv6 } from '../../src/core/addr/ipv6.js';
import type { TranslatorConfig } from '../../src/core/xlat/config.js';
import { Datapath, DatapathError, type DatapathEvent } from '../../src/datapath/datapath.js';
import type { DatapathDevices } from '../../src/datapath/devices.js';
import { TURN_MS } from '../../src/datapath/protocol.js';
import { FakePacketIo } from '../fakes/packet-io.js';
import { checksumProblems, ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../pkt/build.js';

const CLAT4 = '192.0.0.4';
const CLAT6 = '2001:db8:1::4';
const SERVER4 = '192.0.2.1';
const SERVER6 = '64:ff9b::c000:201';
const CONFIG: TranslatorConfig = {
  pool6: '64:ff9b::/96',
  eam: [{ v4: `${CLAT4}/32`, v6: `${CLAT6}/128` }],
  ownV4: CLAT4,
  ownV6: CLAT6,
  hairpin: false,
  // 192.0.2.1 is a documentation address, not global: allow it under the well-known prefix.
  wkpGlobalOnly: false,
};

function fakes() {
  return {
    tun: new FakePacketIo({ name: 'tun' }),
    packet: new FakePacketIo({ name: 'packet' }),
    raw: new FakePacketIo({ name: 'raw' }),
  };
}

/** Waits until `cond` holds (the fakes report readability on later event-loop turns). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const udp4 = (ttl = 64) =>
  ipv4Packet(
    { src: CLAT4, dst: SERVER4, ttl },
    { proto: PROTO_UDP, sport: 40000, dport: 53, payload: new Uint8Array(20).fill(7) },
  );
const udp6 = () =>
  ipv6Packet(
    { src: SERVER6, dst: CLAT6 },
    { proto: PROTO_UDP, sport: 53, dport: 40000, payload: new Uint8Array(20).fill(9) },
  );

describe('Datapath in process, real translator', () => {
  test('IPv4 UDP, TCP and ping out of the TUN come out of the raw socket as IPv6', async () => {
    const io = fakes();
    const dp = await Datapath.start({ translator: CONFIG, workers: 0, io });
    try {
      const tcp = ipv4Packet(
        { src: CLAT4, dst: SERVER4 },
        { proto: PROTO_TCP, sport: 40001, dport: 80, payload: new Uint8Array(1400).fill(1) },
      );
      const ping = ipv4Packet(
        { src: CLAT4, dst: SERVER4 },
        { proto: PROTO_ICMP, sport: 77, dport: 1, payload: new Uint8Array(56).fill(2) },
      );
      io.tun.inject(udp4(), tcp, ping);
      await until(() => io.raw.written.length === 3, '3 packets on the raw socket');
      for (const w of io.raw.written) {
        const p = w.bytes;
        assert.equal(p[0] >>> 4, 6);
        assert.equal(formatIPv6(p, 8), CLAT6);
        assert.equal(formatIPv6(p, 24), SERVER6);
        assert.deepEqual(checksumProblems(p), []);
      }
      assert.deepEqual(
        io.raw.written.map((w) => w.bytes[6]),
        [PROTO_UDP, PROTO_TCP, 58],
      );
      const c = dp.counters();
      assert.equal(c['46'].packets, 3);
      assert.equal(c['46'].translated, 3);
      assert.equal(c['46'].packetsOut, 3);
      assert.equal(c['46'].bytesOut, c['46'].bytes + 3 * 20);
    } finally {
      await dp.stop();
    }
  });

  test('IPv6 from the uplink comes out of the TUN as IPv4', async () => {
    const io = fakes();
    const dp = await Datapath.start({ translator: CONFIG, workers: 0, io });
    try {
      io.packet.inject(udp6());
      await until(() => io.tun.written.length === 1, 'a packet on the TUN');
      const p = io.tun.written[0].bytes;
      assert.equal(p[0], 0x45);
      assert.deepEqual([...p.subarray(12, 20)], [192, 0, 2, 1, 192, 0, 0, 4]);
      assert.deepEqual(checksumProblems(p), []);
      assert.equal(dp.counters()['64'].translated, 1);
    } finally {
      await dp.stop();
    }
  });

  test('an ICMP error the translator generates goes back out of the side it came from', async () => {
    const io = fakes();
    const dp = await Datapath.start({ translator: CONFIG, workers: 0, io });
    try {
      io.tun.inject(udp4(1));
      await until(() => io.tun.written.length === 1, 'an ICMPv4 error on the TUN');
      const e = io.tun.written[0].bytes;
      assert.equal(e[0] >>> 4, 4);
      assert.equal(e[9], PROTO_ICMP);
      assert.equal(e[20], 11, 'Time Exceeded');
      assert.deepEqual(checksumProblems(e), []);
      assert.equal(io.raw.written.length, 0);
      const c = dp.counters()['46'];
      assert.equal(c.icmpErrors, 1);
      assert.equal(c.drops.v4_ttl_expired, 1);
    } finally {
      await dp.stop();
    }
  });

  test('malformed packets are counted by reason, and the loop keeps going', async () => {
    const io = fakes();
    const dp = await Datapath.start({ translator: CONFIG, workers: 0, io });
    try {
      const badSum = udp4();
      badSum[10] ^= 0xff;
      const short = udp4().subarray(0, 12);
      io.tun.inject(badSum, short, new Uint8Array([0x45]), udp4());
      io.packet.inject(new Uint8Array(30).fill(0x60), udp6());
      await until(() => io.raw.written.length === 1 && io.tun.written.length === 1, 'the two good packets');
      const c = dp.counters();
      assert.equal(c['46'].packets, 4);
      assert.equal(c['46'].dropped, 3);
      assert.equal(c['46'].drops.v4_bad_header_checksum, 1);
      assert.equal(c['64'].dropped, 1);
      assert.equal(c['64'].drops.v6_truncated, 1);
    } finally {
      await dp.stop();
    }
  });

  test('reconfigure swaps the translator atomically; a bad configuration is refused and the old stays', async () => {
    const io = fakes();
    const dp = await Datapath.start({ translator: CONFIG, workers: 0, io });
    try {
      await assert.rejects(dp.reconfigure({ ...CONFIG, pool6: '64:ff9b::/95' }), { code: 'ERR_CLATD_CONFIG' });
      io.tun.inject(udp4());
      await until(() => io.raw.written.length === 1, 'translation under the old prefix');
      assert.equal(formatIPv6(io.raw.written[0].bytes, 24), SERVER6);
      await dp.reconfigure({ ...CONFIG, pool6: '2001:db8:64::/96' });
      io.tun.inject(udp4());
      await until(() => io.raw.written.length === 2, 'translation under the new prefix');
      assert.equal(formatIPv6(io.raw.written[1].bytes, 24), '2001:db8:64::c000:201');
    } finally {
      await dp.stop();
    }
  });

  test('pause drops and counts, resume translates again', async () => {
    const io = fakes();
    const dp = await Datapath.start({ translator: CONFIG, workers: 0, io });
    try {
      await dp.pause();
      assert.equal(dp.state, 'paused');
      io.tun.inject(udp4(), udp4());
      await until(() => dp.counters()['46'].paused === 2, 'two paused drops');
      assert.equal(io.raw.written.length, 0);
      await dp.resume();
      assert.equal(dp.state, 'running');
      io.tun.inject(udp4());
      await until(() => io.raw.written.length === 1, 'translation after resume');
    } finally {
      await dp.stop();
    }
  });

  test('started paused: input is counted, nothing translated until resume', async () => {
    const io = fakes();
    const dp = await Datapath.start({ translator: CONFIG, workers: 0, io, paused: true });
    try {
      assert.equal(dp.state, 'paused');
      io.tun.inject(udp4());
      await until(() => dp.counters()['46'].paused === 1, 'a paused drop');
      assert.equal(io.raw.written.length, 0);
      await dp.resume();
      io.tun.inject(udp4());
      await until(() => io.raw.written.length === 1, 'translation after resume');
    } finally {
      await dp.stop();
    }
  });
});

describe('Datapath lifecycle', () => {
  test('start then stop twice (and concurrently): one completion, io closed, counters kept', async () => {
    const io = fakes();
    const dp = await Datapath.start({ translator: CONFIG, workers: 0, io });
    io.tun.inject(udp4());
    await until(() => io.raw.written.length === 1, 'one packet');
    const a = dp.stop();
    const b = dp.stop();
    assert.equal(a, b);
    await a;
    await dp.stop();
    assert.equal(dp.state, 'stopped');
    assert.ok(io.tun.closed && io.packet.closed && io.raw.closed);
    assert.equal(dp.counters()['46'].packets, 1);
    await assert.rejects(dp.pause(), DatapathError);
    await assert.rejects(dp.reconfigure(CONFIG), { code: 'ERR_CLATD_DATAPATH' });
  });

  test('no handles left: a process that starts and stops a datapath exits by itself', async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./exit-child.js', import.meta.url)), 'fakes'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    const code = await new Promise((r) => child.once('exit', (c, sig) => r(c ?? sig)));
    clearTimeout(timer);
    assert.equal(code, 0, 'exited by itself within 5 s');
    assert.match(out, /stopped/);
  });

  test('stop while idle, right after start', async () => {
    const io = fakes();
    const dp = await Datapath.start({ translator: CONFIG, workers: 0, io });
    await dp.stop();
    assert.equal(dp.state, 'stopped');
    io.tun.inject(udp4());
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(dp.counters()['46'].packets, 0, 'nothing is read after stop');
  });

  test('a bad configuration fails start before anything is opened', async () => {
    const io = fakes();
    await assert.rejects(Datapath.start({ translator: { pool6: 'nonsense' }, workers: 0, io }), {
      code: 'ERR_CLATD_CONFIG',
    });
    assert.equal(io.tun.closed, false);
  });

  test("the main thread moves the workers' turn counter every TURN_MS while running", async () => {
    const events: DatapathEvent[] = [];
    const dp = await Datapath.start({
      translator: CONFIG,
      workers: 1,
      // Never opened: the stand-in worker only watches the counter.
      devices: {} as DatapathDevices,
      workerUrl: new URL('./turns-worker.js', import.meta.url),
      warmUp: false,
      onEvent: (e) => events.push(e),
    });
    try {
      const deadline = Date.now() + TURN_MS + 2000;
      while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(events.length, 1, 'the counter moved once within TURN_MS (and a little)');
      const e = events[0] as DatapathEvent & { error?: Error };
      assert.match(e.error?.message ?? '', /^moved after \d+ ms$/);
    } finally {
      await dp.stop();
    }
  });

  test('fakes cannot cross into workers: a clear error', async () => {
    await assert.rejects(Datapath.start({ translator: CONFIG, workers: 2, io: fakes() }), {
      code: 'ERR_CLATD_DATAPATH',
      message: /devices/,
    });
  });

  test('a closed side is reported as an event; the other side keeps working', async () => {
    const io = fakes();
    const events: string[] = [];
    const dp = await Datapath.start({
      translator: CONFIG,
      workers: 0,
      io,
      onEvent: (e) => events.push(`${e.type}:${e.type === 'side-closed' ? e.side : ''}`),
    });
    try {
      io.packet.vanish();
      await until(() => events.length === 1, 'the side-closed event');
      assert.deepEqual(events, ['side-closed:packet']);
      io.tun.inject(udp4());
      await until(() => io.raw.written.length === 1, 'the TUN side still working');
    } finally {
      await dp.stop();
    }
  });
});
