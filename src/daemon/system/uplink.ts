/**
 * The uplink side of the CLAT: the raw socket holding the CLAT address as anycast (so the kernel
 * answers neighbor solicitations for it), the nftables rule that drops what arrives for it before
 * the kernel's own stack answers with errors, and the uplink's proxy_delay set to 0 while it runs.
 * The packet sockets belong to their readers (each datapath loop, and DAD).
 */
import { formatIPv6, parseIPv6 } from '../../core/addr/ipv6.js';
import type { Prefix6 } from '../../core/addr/prefix.js';
import {
  clatFilterIntact,
  clatTableName,
  installClatFilter,
  removeClatFilter,
  updateClatFilter,
} from '../../sys/nft.js';
import { Raw6Socket } from '../../sys/raw6.js';
import type { Announce, LinkInfo, UplinkSide } from '../ports.js';
import type { HostSettings } from './host-settings.js';

const ARPHRD_ETHER = 1;

export class SystemUplink implements UplinkSide {
  readonly raw: Raw6Socket;
  readonly linkHeaderLen: number;
  #clat6: Uint8Array;
  #nft = false;
  #closed = false;

  constructor(
    readonly link: LinkInfo & { linkType: number },
    clat6: string,
    private readonly settings: HostSettings,
    readonly announce: Announce = 'anycast',
  ) {
    if (announce === 'respond') throw new Error('clatd cannot answer neighbor solicitations itself yet');
    this.linkHeaderLen = link.linkType === ARPHRD_ETHER ? 14 : 0;
    this.#clat6 = parseIPv6(clat6);
    this.raw = Raw6Socket.open({ ifname: link.name, ifindex: link.index });
    try {
      if (announce === 'anycast') this.raw.joinAnycast(this.#clat6);
      installClatFilter(link.name, clat6);
      this.#nft = true;
    } catch (e) {
      this.raw.close();
      throw e;
    }
    if (announce === 'anycast') this.#noAnycastDelay();
  }

  /**
   * The kernel answers a multicast Neighbor Solicitation for an anycast address after a random
   * 0..proxy_delay (0.8 s by default; RFC 4861 §7.2.7, so that several holders of one anycast
   * address do not answer at once). The CLAT address is anycast only so that the kernel answers
   * for it, and it has one holder (DAD checked): the delay would only hold up the first packet back
   * to the CLAT whenever the router resolves it anew. So it is 0 on the uplink while clatd runs,
   * recorded in the host settings so that exit, or the next start after a crash, gives it back.
   */
  #noAnycastDelay(): void {
    this.settings.setIpv6Conf(this.link.name, 'proxy_delay', 0);
  }

  get clat6(): Uint8Array {
    return this.#clat6;
  }

  get table(): string {
    return clatTableName(this.link.name);
  }

  async filterIntact(): Promise<boolean> {
    return clatFilterIntact(this.link.name, formatIPv6(this.#clat6));
  }

  async restoreFilter(): Promise<void> {
    installClatFilter(this.link.name, formatIPv6(this.#clat6));
    this.#nft = true;
  }

  async retarget(clat6: string, _pref64: Prefix6): Promise<void> {
    const next = parseIPv6(clat6);
    if (formatIPv6(next) === formatIPv6(this.#clat6)) return;
    // Join the new address before leaving the old, so the kernel never stops answering for us.
    if (this.announce === 'anycast') {
      this.raw.joinAnycast(next);
      this.raw.leaveAnycast(this.#clat6);
    }
    updateClatFilter(this.link.name, clat6);
    this.#clat6 = next;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Every step runs whatever the one before did (a failing `nft` once left proxy_delay at 0);
    // the first error is thrown afterwards.
    const steps = [
      () => this.raw.close(),
      () => this.#nft && removeClatFilter(this.link.name),
      () => this.settings.restore(),
    ];
    let failed: { e: unknown } | undefined;
    for (const step of steps) {
      try {
        step();
      } catch (e) {
        failed ??= { e };
      }
    }
    if (failed) throw failed.e;
  }
}
