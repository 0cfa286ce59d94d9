/**
 * A datapath on the main thread: one DatapathLoop over the IPv4 side's own TUN queue, a packet
 * socket of its own on the uplink and the uplink side's raw socket, driven by uv_poll. It is the
 * fallback for `--workers 0`-like setups and for hosts where worker threads are not wanted; the
 * worker datapath (src/datapath/) is the default.
 */
import { parseIPv6 } from '../core/addr/ipv6.js';
import { Translator } from '../core/xlat/translator.js';
import { CounterWriter, createCounterBuffer, readCounters } from '../datapath/counters.js';
import { DatapathLoop } from '../datapath/loop.js';
import { clatReceiveFilter } from '../sys/bpf.js';
import { PacketSocket } from '../sys/packet-socket.js';
import { type PollHandle, pollReadable } from '../sys/poll.js';
import type { DatapathHandle, XlatParams } from './ports.js';
import { type DatapathFactory, translatorConfig } from './system.js';

export const inlineDatapath: DatapathFactory = async ({ uplink, ipv4, params }) => {
  const translator = new Translator(translatorConfig(params));
  const packet = PacketSocket.open({
    ifindex: uplink.link.index,
    ifname: uplink.link.name,
    filter: clatReceiveFilter(parseIPv6(params.clat6)),
    linkHeaderLen: uplink.linkHeaderLen,
  });
  const buffer = createCounterBuffer();
  const loop = new DatapathLoop(translator, { tun: ipv4.tun, packet, raw: uplink.raw }, new CounterWriter(buffer));
  const polls: PollHandle[] = [];
  try {
    polls.push(pollReadable(ipv4.tun.fd, `TUN ${ipv4.name}`, () => void loop.tunReadable()));
    polls.push(pollReadable(packet.fd, `packet socket on ${uplink.link.name}`, () => void loop.packetReadable()));
  } catch (e) {
    for (const p of polls) p.stop();
    packet.close();
    throw e;
  }
  let stopped = false;
  const handle: DatapathHandle = {
    async reconfigure(p: XlatParams) {
      translator.reconfigure(translatorConfig(p));
      packet.setFilter(clatReceiveFilter(parseIPv6(p.clat6)));
    },
    async pause() {
      loop.paused = true;
    },
    async resume() {
      loop.paused = false;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const p of polls) p.stop();
      packet.close();
    },
    counters: () => readCounters([buffer]),
  };
  return handle;
};
