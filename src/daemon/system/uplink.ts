/**
 * The uplink side of the CLAT: the raw socket, which holds the CLAT address as anycast (so the
 * kernel answers neighbor solicitations for it) or, when clatd answers them itself, the address's
 * solicited-node group and clatd's neighbor responder; the nftables rule that drops what arrives
 * for it before the kernel's own stack answers with errors; with anycast, the uplink's proxy_delay
 * set to 0 while it runs. The datapath's and DAD's packet sockets belong to their readers.
 */
import { formatIPv6, parseIPv6 } from '../../core/addr/ipv6.js';
import type { Prefix6 } from '../../core/addr/prefix.js';
import { buildDadSolicitation } from '../../core/nd/dad-probe.js';
import { parseMac } from '../../core/nd/mac.js';
import {
  clatFilterIntact,
  clatTableName,
  installClatFilter,
  removeClatFilter,
  updateClatFilter,
} from '../../sys/nft.js';
import { Raw6Socket } from '../../sys/raw6.js';
import type { Announce, LinkInfo, ResponderStatus, UplinkSide } from '../ports.js';
import type { HostSettings } from './host-settings.js';
import { WireResponder } from './nd-responder.js';

const ARPHRD_ETHER = 1;

export class SystemUplink implements UplinkSide {
  readonly raw: Raw6Socket;
  readonly linkHeaderLen: number;
  #clat6: Uint8Array;
  #nft = false;
  #closed = false;
  /** With `respond`: clatd's answers to neighbor solicitations. */
  readonly #responder: WireResponder | undefined;

  constructor(
    /** `lladdr`: the link-layer address (`aa:bb:…`), which `respond` advertises. */
    readonly link: LinkInfo & { linkType: number; lladdr?: string },
    clat6: string,
    private readonly settings: HostSettings,
    readonly announce: Announce = 'anycast',
  ) {
    this.linkHeaderLen = link.linkType === ARPHRD_ETHER ? 14 : 0;
    this.#clat6 = parseIPv6(clat6);
    const mac = announce === 'respond' ? linkAddress(link, this.linkHeaderLen) : undefined;
    this.raw = Raw6Socket.open({ ifname: link.name, ifindex: link.index });
    try {
      if (announce === 'anycast') this.raw.joinAnycast(this.#clat6);
      if (announce === 'respond') {
        this.#responder = new WireResponder({
          ifindex: link.index,
          ifname: link.name,
          linkHeaderLen: this.linkHeaderLen,
          linkAddress: mac,
          raw: this.raw,
          target: this.#clat6,
        });
      }
      installClatFilter(link.name, clat6);
      this.#nft = true;
    } catch (e) {
      this.#responder?.close();
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
    // A DAD run follows each retarget, of the same address too (a link that came back): the
    // responder waits for it before it answers again.
    this.#responder?.retarget(next);
    if (formatIPv6(next) === formatIPv6(this.#clat6)) return;
    // Join the new address before leaving the old, so the kernel never stops answering for us.
    if (this.announce === 'anycast') {
      this.raw.joinAnycast(next);
      this.raw.leaveAnycast(this.#clat6);
    }
    updateClatFilter(this.link.name, clat6);
    this.#clat6 = next;
  }

  dadPassed(clat6: string): void {
    this.#responder?.confirm(parseIPv6(clat6));
  }

  responder(): ResponderStatus | undefined {
    return this.#responder?.status();
  }

  /**
   * Sends a DAD probe for `target` with `nonce` (RFC 4862 §5.4.2, RFC 7527), telling the
   * responder its nonce first so that the probe, looped back, is never taken for another node's.
   */
  sendDadProbe(target: Uint8Array, nonce: Uint8Array): void {
    this.#responder?.noteOwnNonce(nonce);
    this.raw.sendOne(buildDadSolicitation(target, nonce));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Every step runs whatever the one before did (a failing `nft` once left proxy_delay at 0);
    // the first error is thrown afterwards.
    const steps = [
      () => this.#responder?.close(),
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

/**
 * The link-layer address `respond` advertises: the uplink's MAC on Ethernet; none on a link
 * without link-layer headers (no option is sent). An Ethernet uplink without one cannot be
 * answered for, which is said at once rather than advertised wrong.
 */
function linkAddress(link: { name: string; lladdr?: string }, linkHeaderLen: number): Uint8Array | undefined {
  if (linkHeaderLen === 0) return undefined;
  if (link.lladdr === undefined) {
    throw new Error(`${link.name} has no link-layer address to advertise for the CLAT address`);
  }
  return parseMac(link.lladdr);
}
