/** The IPv4 side of the CLAT: the TUN v4-<uplink>, its /32, MTU, and a default route tagged RTPROT_CLATD. */
import { ClatdError } from '../../core/errors.js';
import { RTPROT_CLATD, type Rtnl } from '../../sys/rtnetlink/index.js';
import { setIpv6Disabled } from '../../sys/sysctl.js';
import { Tun } from '../../sys/tun.js';
import type { Ipv4Side } from '../ports.js';

export class SystemIpv4 implements Ipv4Side {
  readonly tun: Tun;
  readonly queues: Tun[];
  readonly ifindex: number;
  #mtu: number;
  /** The default route's metric; undefined while it is withdrawn. */
  #metric: number | undefined;
  #closed = false;

  constructor(
    private readonly rtnl: Rtnl,
    readonly name: string,
    readonly v4: string,
    mtu: number,
    metric: number,
  ) {
    this.#metric = metric;
    // clatd's TUN is not persistent: it goes with its last fd, so one that exists is held by a
    // running process. Opening it would attach a queue to that process's device.
    if (rtnl.findLink(name)) throw new TunInUseError(name);
    // Multi-queue, so datapath workers can attach queues of their own; this one keeps the device.
    // With virtio_net_hdr and offloads (sys/tun.ts): a device keeps its first queue's flags, and
    // the workers' queues carry TCP super-packets.
    this.tun = Tun.open(name, { multiQueue: true, vnet: true });
    this.queues = [this.tun];
    try {
      setIpv6Disabled(name);
      this.ifindex = rtnl.index(name);
      rtnl.setMtu(name, mtu);
      rtnl.addAddress(name, v4, 32);
      rtnl.setUp(name);
      this.#mtu = mtu;
      this.#addRoute(metric, 'append');
    } catch (e) {
      for (const q of this.queues) q.close();
      throw e;
    }
  }

  /**
   * Appended beside a route of the same metric rather than failing with EEXIST: another clatd (on
   * another uplink) given the same --route-metric, or one in the middle of moving its own.
   */
  #addRoute(metric: number, how: true | 'append'): void {
    this.rtnl.addRoute(
      {
        dst: '0.0.0.0/0',
        dev: this.name,
        src: this.v4,
        metric,
        advmss: this.#mtu - 40,
        protocol: RTPROT_CLATD,
      },
      how,
    );
  }

  #deleteRoute(metric: number): void {
    try {
      this.rtnl.deleteRoute({ dst: '0.0.0.0/0', dev: this.name, metric });
    } catch {
      // Gone with the link already, or removed by someone else: nothing to do.
    }
  }

  get metric(): number | undefined {
    return this.#metric;
  }

  async setMtu(mtu: number): Promise<void> {
    this.rtnl.setMtu(this.name, mtu);
    this.#mtu = mtu;
    if (this.#metric !== undefined) this.#addRoute(this.#metric, true);
  }

  async setRoute(metric: number | undefined): Promise<void> {
    const old = this.#metric;
    if (metric === old) return;
    if (metric !== undefined) this.#addRoute(metric, 'append');
    this.#metric = metric;
    if (old !== undefined) this.#deleteRoute(old);
  }

  async repair(): Promise<string[]> {
    const fixed: string[] = [];
    const link = this.rtnl.findLink(this.ifindex);
    if (!link) return fixed; // gone: the daemon builds the whole side again
    if (!link.up) {
      // Setting a link down also takes its routes: the route check below puts ours back.
      this.rtnl.setUp(this.ifindex);
      fixed.push('the link was down');
    }
    if (!this.rtnl.addresses({ dev: this.ifindex, family: 4 }).some((a) => a.address === this.v4)) {
      this.rtnl.addAddress(this.ifindex, this.v4, 32);
      fixed.push(`address ${this.v4}/32`);
    }
    // Withdrawn on purpose (translation paused): nothing to put back.
    const metric = this.#metric;
    const routes = this.rtnl.routes({ family: 4, dev: this.ifindex, protocol: RTPROT_CLATD });
    if (metric !== undefined && !routes.some((r) => r.dstLen === 0)) {
      this.#addRoute(metric, 'append');
      fixed.push('default route');
    }
    return fixed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#metric !== undefined) this.#deleteRoute(this.#metric);
    for (const q of this.queues) q.close();
    // A non-persistent TUN disappears with its last fd; delete it in case something else holds it.
    try {
      if (this.rtnl.findLink(this.name)) this.rtnl.deleteLink(this.name);
    } catch {
      // Already gone.
    }
  }
}

/** The TUN's name is taken: a running process (another clatd?) holds a device of that name. */
export class TunInUseError extends ClatdError {
  constructor(readonly tun: string) {
    super(
      `${tun} already exists and is held by a running process (another clatd on this uplink?); clatd's own TUN goes with its process, so this one is left alone`,
      'ERR_CLATD_TUN_IN_USE',
    );
    this.name = 'TunInUseError';
  }
}
