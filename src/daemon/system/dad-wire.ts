/**
 * DAD on the wire (RFC 4862 §5.4 with RFC 7527 nonces), driven by the core's DadMachine: probes go
 * out through the uplink side's raw socket, Neighbor Solicitations and Advertisements for the
 * address come in through a packet socket of DAD's own (so DAD sees them whatever the datapath
 * does), and time comes from the daemon's clock port.
 *
 * The link may go down under it at any moment (a Wi-Fi roam): a socket error then ends the run as
 * `interrupted`, never as an exception, and the daemon tries again when the link is back.
 */
import { formatIPv6, parseIPv6 } from '../../core/addr/ipv6.js';
import { createBatch } from '../../core/batch.js';
import { type DadAction, DadMachine } from '../../core/nd/dad.js';
import { parseNeighborMessage } from '../../core/nd/nd-parse.js';
import { clatReceiveFilter } from '../../sys/bpf.js';
import { PacketSocket } from '../../sys/packet-socket.js';
import { type PollHandle, pollReadable } from '../../sys/poll.js';
import type { Rtnl } from '../../sys/rtnetlink/index.js';
import type { Clock, DadDuplicate, DadOutcome, DadPort } from '../ports.js';
import type { SystemUplink } from './uplink.js';

const ETH_SOURCE = 6;

export class WireDad implements DadPort {
  constructor(
    private readonly rtnl: Rtnl,
    private readonly clock: Clock,
  ) {}

  async run(o: Parameters<DadPort['run']>[0]): Promise<DadOutcome> {
    const side = o.side as SystemUplink;
    const { clock } = this;
    const own = new Set(this.rtnl.addresses({ family: 6 }).map((a) => a.address));
    let target = parseIPv6(o.first);
    const duplicates: DadDuplicate[] = [];
    let attempts = 1;
    const outcome = (kind: 'interrupted' | 'stopped' | 'duplicates', reason: string): DadOutcome => ({
      ok: false,
      kind,
      address: formatIPv6(target),
      attempts,
      duplicates,
      reason,
    });
    let listen: PacketSocket;
    try {
      listen = PacketSocket.open({
        ifindex: o.uplink.index,
        ifname: o.uplink.name,
        filter: clatReceiveFilter(target),
        linkHeaderLen: side.linkHeaderLen,
        batchSize: 16,
      });
    } catch (e) {
      return outcome('interrupted', (e as Error).message);
    }
    const m = new DadMachine({
      mode: o.params.mode,
      transmits: o.params.transmits,
      retransTimerMs: o.params.retransMs,
      address: o.first,
      // Without a redraw a duplicate ends the run at once (the machine never asks for another).
      nextAddress: o.redraw ?? (() => o.first),
      maxRetries: o.redraw ? undefined : 0,
    });
    try {
      await o.onAddress(o.first);
    } catch (e) {
      listen.close();
      throw e;
    }
    return new Promise<DadOutcome>((resolve, reject) => {
      let timer: unknown;
      let poll: PollHandle | undefined;
      let done = false;
      let chain = Promise.resolve();
      const end = () => {
        if (done) return false;
        done = true;
        if (timer !== undefined) clock.clearTimeout(timer);
        poll?.stop();
        listen.close();
        o.signal.removeEventListener('abort', onAbort);
        return true;
      };
      const finish = (r: DadOutcome) => {
        if (end()) resolve(r);
      };
      // onAddress failed for a drawn address: its error ends the run, as it does for the first.
      const abandon = (e: unknown) => {
        if (end()) reject(e);
      };
      const interrupted = (e: Error) => finish(outcome('interrupted', e.message));
      const onAbort = () => finish(outcome('stopped', 'stopped'));
      const apply = (actions: DadAction[]) => {
        for (const a of actions) {
          if (done) return;
          switch (a.type) {
            case 'send-probe':
              try {
                side.sendDadProbe(a.target, a.nonce);
              } catch {
                // A lost probe is like one lost on the wire: DAD goes on.
              }
              break;
            case 'set-timer':
              if (timer !== undefined) clock.clearTimeout(timer);
              timer = clock.setTimeout(
                () => {
                  timer = undefined;
                  if (!done) apply(m.step({ type: 'timer', now: clock.now() }));
                },
                Math.max(0, a.at - clock.now()),
              );
              break;
            case 'duplicate': {
              const next = formatIPv6(a.next);
              duplicates.push({ address: formatIPv6(a.address), by: a.answeredBy });
              attempts++;
              target = a.next;
              try {
                listen.setFilter(clatReceiveFilter(target));
              } catch (e) {
                interrupted(e as Error);
                return;
              }
              chain = chain.then(() => o.onAddress(next)).catch(abandon);
              break;
            }
            case 'unique':
              void chain.then(() => finish({ ok: true, address: formatIPv6(a.address), attempts, duplicates }));
              break;
            case 'failed':
              // The last address was answered for too: it is a duplicate like the others.
              duplicates.push({ address: formatIPv6(target), by: a.error.answeredBy });
              finish(outcome('duplicates', a.error.message));
              break;
            default:
              break;
          }
        }
      };
      if (o.signal.aborted) {
        onAbort();
        return;
      }
      o.signal.addEventListener('abort', onAbort);
      const batch = createBatch(16, 2048);
      try {
        poll = pollReadable(
          listen.fd,
          `DAD packet socket on ${o.uplink.name}`,
          () => {
            if (done) return;
            batch.count = 0;
            let n: number;
            try {
              n = listen.read(batch, 0);
            } catch (e) {
              interrupted(e as Error);
              return;
            }
            for (let i = 0; i < n && !done; i++) {
              const len = batch.lens[i];
              if (len === 0) continue;
              const off = batch.offs[i];
              const msg = parseNeighborMessage(batch.data, off, len);
              if (!msg.ok) continue;
              const fromSelf = own.has(formatIPv6(msg.source));
              // The frame's Ethernet source names the node that answered (copied: the batch is reused).
              const linkSource =
                side.linkHeaderLen === 14 && off >= 14
                  ? batch.data.slice(off - 14 + ETH_SOURCE, off - 14 + ETH_SOURCE + 6)
                  : undefined;
              apply(m.step({ type: 'nd', now: clock.now(), message: msg, fromSelf, linkSource }));
            }
          },
          interrupted,
        );
      } catch (e) {
        interrupted(e as Error);
        return;
      }
      apply(m.step({ type: 'start', now: clock.now() }));
    });
  }
}
