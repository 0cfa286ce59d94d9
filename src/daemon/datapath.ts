/**
 * Starts the datapath of src/datapath/ for the daemon: N worker threads (or one loop on the main
 * thread with `--workers 0`), each opening its own TUN queue, packet socket (in one PACKET_FANOUT
 * group, filtered on the CLAT address) and raw socket. The daemon's own TUN queue is detached while
 * the workers run, so the kernel steers no flow to a queue nobody reads.
 */
import { parseIPv6 } from '../core/addr/ipv6.js';
import { Datapath } from '../datapath/datapath.js';
import { clatReceiveFilter } from '../sys/bpf.js';
import type { Logger } from './log.js';
import type { DatapathHandle, XlatParams } from './ports.js';
import { type DatapathFactory, translatorConfig } from './system.js';

export function datapathFactory(workers: number, log: Logger): DatapathFactory {
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
    const filter = (p: XlatParams) => clatReceiveFilter(parseIPv6(p.clat6));
    const dp = await Datapath.start({
      translator: translatorConfig(params),
      workers,
      devices: {
        tun: { name: ipv4.name },
        packet: {
          ifindex: uplink.link.index,
          ifname: uplink.link.name,
          filter: filter(params),
          linkHeaderLen: uplink.linkHeaderLen,
        },
        raw: { ifname: uplink.link.name, ifindex: uplink.link.index },
      },
      detachQueues: ipv4.queues.map((q) => q.fd),
      paused,
      // SIGTERM must end the process within 2 s, teardown included.
      stopTimeoutMs: 1000,
      onEvent: (e) => {
        const who = e.worker < 0 ? 'the loop' : `worker ${e.worker}`;
        if (e.type === 'side-closed') failure(`${who} lost its ${e.side} side: ${e.error.message}`);
        else failure(`${who} exited (code ${e.exitCode})${e.error ? `: ${e.error.message}` : ''}`);
      },
    });
    log.info('datapath', workers === 0 ? 'one loop on the main thread' : `${dp.loops} worker thread(s)`);
    const handle: DatapathHandle = {
      reconfigure: (p) => dp.reconfigure(translatorConfig(p), filter(p)),
      pause: () => dp.pause(),
      resume: () => dp.resume(),
      stop: () => dp.stop(),
      counters: () => dp.counters(),
    };
    return handle;
  };
}
