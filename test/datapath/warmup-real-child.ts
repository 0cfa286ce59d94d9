/**
 * Child of warmup.test.ts, run with `--trace-deopt`: warms a translator up, then builds and drives
 * a loop the way a worker does (its devices, its io object, its counter hooks, its options, its
 * wake-ups) with ping-like traffic. The devices are stand-ins of the real classes (no privilege needed), opened
 * anew as the worker opens its own. Run with `--allow-natives-syntax` as well, it reports whether
 * the worker's wake-up was optimised by the warm-up. The parent reads V8's deoptimisation trace:
 * it must be empty.
 */
import { createBatch } from '../../src/core/batch.js';
import type { TranslatorConfig } from '../../src/core/xlat/config.js';
import { Translator } from '../../src/core/xlat/translator.js';
import { CounterWriter, createCounterBuffer, DIR46, DIR64, Slot } from '../../src/datapath/counters.js';
import { counterSync, offloadOptions } from '../../src/datapath/devices.js';
import { DatapathLoop } from '../../src/datapath/loop.js';
import { frame, StandIns } from '../../src/datapath/stand-ins.js';
import { QUIET, Waker } from '../../src/datapath/waker.js';
import { warmUp } from '../../src/datapath/warmup.js';
import { EventFd } from '../../src/sys/eventfd.js';
import { PacketSocket } from '../../src/sys/packet-socket.js';
import { PollSet } from '../../src/sys/poll.js';
import { Raw6Socket } from '../../src/sys/raw6.js';
import { Tun } from '../../src/sys/tun.js';
import { ipv4Packet, ipv6Packet, PROTO_ICMP, PROTO_ICMPV6 } from '../pkt/build.js';
import { batchOf } from './batch-of.js';

const config: TranslatorConfig = {
  pool6: '2001:db8:64::/96',
  eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }],
  v4Sources: 'eam',
  ownV4: '192.0.0.8',
  icmpSrcV4: '192.0.0.8',
};
const translator = new Translator(config);
warmUp(translator, config);

// The worker calls Waker.slice from its own (interpreted) loop, and the optimised slice calls
// what it did not inline as functions of their own: the warm-up must have optimised each of them
// as such, not only inlined into its loops. V8's status bits (runtime-test.cc): 16 optimised, 64
// by TurboFan; a compile may still be finishing in the background, hence the wait.
const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;
const wait = new Function('%WaitForBackgroundOptimization()') as () => void;
wait();
const entries: Record<string, unknown> = {
  'Waker.slice': Waker.prototype.slice,
  'Waker.wake': Waker.prototype.wake,
  'DatapathLoop.drainBoth': DatapathLoop.prototype.drainBoth,
  'Tun.read': Tun.prototype.read,
  'Tun.write': Tun.prototype.write,
  'PacketSocket.read': PacketSocket.prototype.read,
  'Raw6Socket.write': Raw6Socket.prototype.write,
  'PollSet.wait': PollSet.prototype.wait,
  'CounterWriter.publish': CounterWriter.prototype.publish,
};
const notOptimised = Object.keys(entries).filter((k) => (status(entries[k]) & (16 | 64)) !== (16 | 64));
console.log(`--- not optimised: [${notOptimised.join(', ')}]`);

// As worker.ts and devices.ts do it.
const dev = StandIns.open(64, true);
const io = { tun: dev.tun, packet: dev.packet, raw: dev.raw };
function sideClosed(): void {}
const counters = new CounterWriter(createCounterBuffer());
const loop = new DatapathLoop(translator, io, counters, {
  stride: 65536 + 256,
  maxBatchesPerWake: 8,
  icmpErrorsPerSec: 1000,
  ...offloadOptions(dev.tun),
});
loop.paused = true; // the daemon starts the workers paused while DAD runs…
loop.beforePublish = counterSync(dev.tun, dev.packet);
loop.onClosed = sideClosed;
const control = EventFd.create();
const turns = new Int32Array(new SharedArrayBuffer(4));
const waker = new Waker(new PollSet([dev.tun.fd, dev.packet.fd, control.fd], 'datapath worker 0'), loop, turns);

// ping 192.0.2.1 and its answer, one packet per wake-up (not the warm-up's own packets). Built
// once: the builder's own code is not the subject here, so it must not be optimised either.
const request = ipv4Packet(
  { src: '192.0.0.4', dst: '192.0.2.1', df: true, id: 77 },
  { proto: PROTO_ICMP, sport: 0x1234, dport: 1, payload: new Uint8Array(56).fill(0xa5) },
);
const reply = ipv6Packet(
  { src: '2001:db8:64::c000:201', dst: '2001:db8:1::4' },
  { proto: PROTO_ICMPV6, sport: 0x1234, dport: 1, payload: new Uint8Array(56).fill(0xa5) },
);
reply[40] = 129; // an echo reply: the type grows by 1, so the checksum shrinks by 0x100 (ones' complement)
const c = (((reply[42] as number) << 8) | (reply[43] as number)) - 0x100;
const fixed = c <= 0 ? c + 0xffff : c;
reply[42] = fixed >>> 8;
reply[43] = fixed & 0xff;
const requests = batchOf([request]);
const replies = batchOf([frame(reply)]);
const scratch = createBatch(64, 2048);
// Every other round as a wake-up after a sleep is served (one TUN packet, see Waker.wake): the
// packet is already queued here, so that serve is called as wake calls it then.
const lightWake = (): void => {
  if (waker.polls.wait(1000) === 0) throw new Error('nothing readable');
  waker.serve(true);
};
// …and they read (and count) what comes meanwhile; then DAD passes and they are resumed.
for (let i = 0; i < 4; i++) {
  dev.feedTun(requests, 0, 1);
  waker.slice(0, 1, 1000);
  dev.drain(scratch);
}
loop.paused = false;
// A new configuration (a new address after DAD, a new /64 or prefix, a reload) is a new translator.
loop.setTranslator(new Translator(config));
for (let i = 0; i < 300; i++) {
  dev.feedTun(requests, 0, 1);
  if (i & 1) lightWake();
  else if (waker.slice(0, 1, 1000) !== QUIET) throw new Error('the control eventfd woke');
  dev.feedPacket(replies, 0, 1);
  if (i & 1) lightWake();
  else waker.slice(0, 1, 1000);
  dev.drain(scratch);
}
dev.close();
control.close();
const acc = counters.acc;
console.log(
  `--- done ${acc[DIR46 + Slot.TRANSLATED]} ${acc[DIR64 + Slot.TRANSLATED]} ${acc[DIR46 + Slot.DROPPED] + acc[DIR64 + Slot.DROPPED]}`,
);
