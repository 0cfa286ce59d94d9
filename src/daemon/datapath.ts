/**
 * Starts the datapath of src/datapath/ for the daemon: N worker threads (or one loop on the main
 * thread with `--workers 0`), each opening its own TUN queue, packet socket (in one PACKET_FANOUT
 * group, filtered on the CLAT address) and raw socket. The daemon's own TUN queue is detached while
 * the workers run, so the kernel steers no flow to a queue nobody reads.
 */
import { parseIPv6 } from '../core/addr/ipv6.js';
import { parsePrefix6 } from '../core/addr/prefix.js';
import { Datapath } from '../datapath/datapath.js';
import { clatReceiveFilter } from '../sys/bpf.js';
import type { Rtnl } from '../sys/rtnetlink/index.js';
import type { Logger } from './log.js';
import { RELEASE_AFTER_WORKERS_MS, releaseStartPages } from './memory.js';
import { KernelOffload, type OffloadMode, withOffload } from './offload.js';
import type { DatapathHandle, XlatParams } from './ports.js';
import type { DatapathFactory } from './system/index.js';
import { translatorConfig } from './translator-config.js';

export function datapathFactory(
  workers: number,
  log: Logger,
  offload: OffloadMode = 'auto',
  rtnl?: Rtnl,
): DatapathFactory {
  return async ({ uplink, ipv4, params, paused, onFailure }) => {
    let failed = false;
    // The daemon logs the first report of a datapath it still runs; the rest (other workers
    // losing the same device) usually follow from it, and a replaced datapath's are stale.
    const failure = (why: string) => {
      if (failed) {
        log.debug('datapath', why);
        return;
      }
      failed = true;
      onFailure(why);
    };
    const filter = (p: XlatParams) =>
      clatReceiveFilter(
        parseIPv6(p.clat6),
        (p.lanEam ?? []).map((e) => parsePrefix6(e.v6)),
      );
    // The kernel fast path runs only while the workers translate too, for the same addresses.
    const opened =
      offload === 'off'
        ? 'off (--offload off)'
        : uplink.announce === 'shared'
          ? // Its programs read the uplink before netfilter and send past it: they would see the
            // host's address, not the CLAT's, and send the private address out unNATed.
            "off in address mode 5: the kernel's NAT, which the fast path would bypass, shares the host's address"
          : KernelOffload.open(
              {
                uplinkIfindex: uplink.link.index,
                uplinkName: uplink.link.name,
                linkHeaderLen: uplink.linkHeaderLen,
                tunIfindex: ipv4.ifindex,
                tunName: ipv4.name,
              },
              log,
              { rtnl },
            );
    const kernel = typeof opened === 'string' ? null : opened;
    let dp: Datapath;
    try {
      dp = await Datapath.start({
        translator: translatorConfig(params),
        workers,
        devices: {
          tun: { name: ipv4.name },
          // What comes back for the CLAT address: on the uplink, or (address mode 5) on clatd's veth pair.
          packet: {
            ifindex: uplink.receive.index,
            ifname: uplink.receive.name,
            filter: filter(params),
            linkHeaderLen: uplink.receive.linkHeaderLen,
          },
          raw: { ifname: uplink.link.name, ifindex: uplink.link.index },
        },
        detachQueues: ipv4.queues.map((q) => q.fd),
        paused,
        // Beside the fast path the workers see only what it hands on (ICMP errors, fragments,
        // options...): they start with the first such packet, which waits for them meanwhile.
        // Not with LAN subnets mapped by EAM (stateless router mode): the fast path hands all their
        // traffic on, so the workers are needed from the start.
        startOnInput: kernel !== null && (params.lanEam?.length ?? 0) === 0,
        // SIGTERM must end the process within 2 s, teardown included.
        stopTimeoutMs: 1000,
        onEvent: (e) => {
          if (e.type === 'workers-started') {
            setTimeout(() => releaseStartPages(log, 'the workers started'), RELEASE_AFTER_WORKERS_MS).unref();
            log.info(
              'datapath',
              `${e.workers} datapath workers running now, for input the kernel handed on (started in ${e.ms} ms)`,
            );
            return;
          }
          const who = e.worker < 0 ? 'the loop' : `worker ${e.worker}`;
          if (e.type === 'side-closed') failure(`${who} lost its ${e.side} side: ${e.error.message}`);
          else failure(`${who} exited (code ${e.exitCode})${e.error ? `: ${e.error.message}` : ''}`);
        },
      });
    } catch (e) {
      kernel?.close();
      throw e;
    }
    log.info(
      'datapath',
      workers === 0
        ? 'one loop on the main thread'
        : dp.waitingForInput
          ? `${workers} worker thread(s), started when the kernel fast path hands a packet on`
          : `${dp.loops} worker thread(s)`,
    );
    let current = params;
    let running = !paused;
    // Without the fast path for these addresses, every packet needs the workers: start them now.
    const attach = () => {
      if (!kernel?.attach(current)) void dp.startWorkers();
    };
    if (running) attach();
    const handle: DatapathHandle = {
      reconfigure: async (p) => {
        kernel?.detach();
        current = p;
        await dp.reconfigure(translatorConfig(p), filter(p));
        if (running) attach();
      },
      pause: async () => {
        running = false;
        kernel?.detach();
        await dp.pause();
      },
      resume: async () => {
        await dp.resume();
        running = true;
        attach();
      },
      stop: async () => {
        running = false;
        kernel?.close();
        await dp.stop();
      },
      counters: () => (kernel ? withOffload(dp.counters(), kernel.counts()) : dp.counters()),
      offload: () => (kernel ? kernel.describe() : (opened as string)),
    };
    // Only a datapath with a fast path has a next hop to be given.
    if (kernel) handle.nextHop = (c) => kernel.setNextHop(c);
    return handle;
  };
}
