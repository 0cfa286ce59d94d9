/**
 * The in-process mode (`workers: 0`): one loop on this thread, over the devices it opens or over
 * ready PacketIo objects (the test fakes), polled by fd or through their readable handler.
 */
import type { ClatdError } from '../core/errors.js';
import type { Translator } from '../core/xlat/translator.js';
import { type PollHandle, pollReadable } from '../sys/poll.js';
import { CounterWriter, createCounterBuffer } from './counters.js';
import { type OpenedDevices, offloadOptions, openDevices } from './devices.js';
import { DatapathLoop, type Side } from './loop.js';
import type { LoopIo } from './loop-io.js';
import { DatapathError, type DatapathOptions } from './options.js';
import { warmUp } from './warmup.js';

/** The loop of in-process mode and what it polls. */
export interface InlineLoop {
  loop: DatapathLoop;
  io: LoopIo;
  dev: OpenedDevices | undefined;
  polls: Partial<Record<Side, PollHandle>>;
}

interface Readiness {
  setReadableHandler(h: (() => void) | undefined): void;
}

function hasReadiness(io: unknown): io is Readiness {
  return typeof (io as Partial<Readiness>).setReadableHandler === 'function';
}

/**
 * Opens the loop's devices (synchronously, so a caller's namespace applies) and starts polling
 * them; throws with nothing left open.
 */
export function openInline(
  o: DatapathOptions,
  translator: Translator,
): { inline: InlineLoop; buffer: SharedArrayBuffer } {
  const buffer = createCounterBuffer();
  let dev: OpenedDevices | undefined;
  let io: LoopIo;
  if (o.io) io = o.io;
  else if (o.devices) {
    if (o.warmUp ?? true) warmUp(translator, o.translator);
    // Synchronously within start(): a caller may have moved this thread into a namespace for the call.
    dev = openDevices(o.devices, undefined);
    io = dev.io;
  } else throw new DatapathError('the datapath needs `devices` or (with workers: 0) `io`');
  const loop = new DatapathLoop(translator, io, new CounterWriter(buffer), {
    stride: o.stride,
    maxBatchesPerWake: o.maxBatchesPerWake,
    icmpErrorsPerSec: o.icmpErrorsPerSec,
    ...(dev ? offloadOptions(dev.tun) : {}),
  });
  loop.paused = o.paused ?? false;
  const inline: InlineLoop = { loop, io, dev, polls: {} };
  if (dev) loop.beforePublish = dev.syncCounters;
  const sideClosed = (side: Side, e: unknown) => {
    inline.polls[side]?.stop();
    if (side === 'tun' && hasReadiness(io.tun)) io.tun.setReadableHandler(undefined);
    if (side === 'packet' && hasReadiness(io.packet)) io.packet.setReadableHandler(undefined);
    const err = e instanceof Error ? e : new Error(String(e));
    o.onEvent?.({
      type: 'side-closed',
      worker: -1,
      side,
      error: new DatapathError(err.message, (err as ClatdError).code),
    });
  };
  loop.onClosed = sideClosed;
  try {
    for (const [side, pio, handler] of [
      ['tun', io.tun, loop.tunReadable],
      ['packet', io.packet, loop.packetReadable],
    ] as const) {
      if (pio.fd >= 0) {
        inline.polls[side] = pollReadable(pio.fd, `${side} fd ${pio.fd}`, handler, (e) => sideClosed(side, e));
      } else if (hasReadiness(pio)) pio.setReadableHandler(handler);
      else throw new DatapathError(`the ${side} PacketIo has no fd to poll and no setReadableHandler`);
    }
  } catch (e) {
    closeInline(inline);
    throw e;
  }
  return { inline, buffer };
}

/** Stops polling and closes the loop's devices (the ones it opened, or the `io` it was given). */
export function closeInline(l: InlineLoop): void {
  l.polls.tun?.stop();
  l.polls.packet?.stop();
  for (const pio of [l.io.tun, l.io.packet]) if (hasReadiness(pio)) pio.setReadableHandler(undefined);
  if (l.dev) l.dev.close();
  else {
    l.io.tun.close();
    l.io.packet.close();
    l.io.raw.close();
  }
}
