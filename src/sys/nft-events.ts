/**
 * nftables changes as the kernel announces them: a NETLINK_NETFILTER socket joined to
 * NFNLGRP_NFTABLES (what `nft monitor` reads). clatd follows deletions in its own tables, because
 * without its drop rule the kernel answers every packet to the CLAT address that is not ND — a UDP
 * reply gets an ICMPv6 port unreachable back to the server — and `flush ruleset`, the first line of
 * most firewall configurations (Debian's /etc/nftables.conf), deletes it whenever the firewall is
 * reloaded.
 *
 * The kernel sends one message per object of a committed transaction, then NFT_MSG_NEWGEN naming
 * the process that committed it; so deletions are gathered per transaction and reported with that
 * process, which lets the caller tell its own `nft` runs (which replace the table by deleting it)
 * from anyone else's.
 */
import { NetlinkMonitor } from './rtnetlink/monitor.js';
import { openNetlinkSocket, watchReadable } from './rtnetlink/open.js';
import { attrStr, type NlMessage, parseAttrs, view } from './rtnetlink/wire.js';

// linux/netlink.h, linux/netfilter/nfnetlink.h, linux/netfilter/nf_tables.h
export const NETLINK_NETFILTER = 12;
export const NFNLGRP_NFTABLES = 7;
export const NFNL_SUBSYS_NFTABLES = 10;
/** The LAN tables (nft-lan.ts) and an earlier version's uplink table are `inet`. */
export const NFPROTO_INET = 1;
/** The uplink's table (nft.ts) is `ip6`. */
export const NFPROTO_IPV6 = 10;
export const NFT_MSG_DELTABLE = 2;
export const NFT_MSG_DELCHAIN = 5;
export const NFT_MSG_DELRULE = 8;
export const NFT_MSG_NEWGEN = 15;
export const NFT_MSG_DESTROYTABLE = 26;
export const NFT_MSG_DESTROYCHAIN = 27;
export const NFT_MSG_DESTROYRULE = 28;
/** NFTA_TABLE_NAME, NFTA_CHAIN_TABLE and NFTA_RULE_TABLE: the table's name, attribute 1 in all three. */
const ATTR_TABLE = 1;
const NFTA_GEN_PROC_PID = 2;
const NFTA_GEN_PROC_NAME = 3;
/** struct nfgenmsg: family, version, resource id. */
const NFGENMSG_LEN = 4;

const DELETED: Record<number, 'table' | 'chain' | 'rule'> = {
  [NFT_MSG_DELTABLE]: 'table',
  [NFT_MSG_DESTROYTABLE]: 'table',
  [NFT_MSG_DELCHAIN]: 'chain',
  [NFT_MSG_DESTROYCHAIN]: 'chain',
  [NFT_MSG_DELRULE]: 'rule',
  [NFT_MSG_DESTROYRULE]: 'rule',
};

export type NftEvent =
  /** A committed transaction deleted these objects of the `ip6` or `inet` table `table`. */
  | {
      readonly kind: 'deleted';
      readonly table: string;
      readonly objects: readonly ('table' | 'chain' | 'rule')[];
      /** The process that committed it (NFTA_GEN_PROC_PID / _NAME), when the kernel says. */
      readonly pid?: number;
      readonly proc?: string;
    }
  /** The kernel dropped events (socket buffer full): any table may have changed. */
  | { readonly kind: 'overrun' };

/**
 * Turns the messages of NFNLGRP_NFTABLES into {@link NftEvent}s: deletions in `ip6` and `inet`
 * tables whose name starts with `prefix`, one event per table and transaction, delivered at its NEWGEN.
 */
export class NftDeletionDecoder {
  readonly #pending = new Map<string, Set<'table' | 'chain' | 'rule'>>();

  constructor(private readonly prefix: string) {}

  /** Feeds one message; returns the events it completes (often none). */
  feed(msg: NlMessage): NftEvent[] {
    if (msg.type >>> 8 !== NFNL_SUBSYS_NFTABLES || msg.body.length < NFGENMSG_LEN) return [];
    const type = msg.type & 0xff;
    const attrs = parseAttrs(msg.body, NFGENMSG_LEN);
    if (type === NFT_MSG_NEWGEN) {
      const p = attrs.get(NFTA_GEN_PROC_PID);
      // nfnetlink attributes are big-endian, unlike rtnetlink's.
      const pid = p && p.length >= 4 ? view(p).getUint32(0, false) : undefined;
      const proc = attrStr(attrs.get(NFTA_GEN_PROC_NAME));
      const out: NftEvent[] = [];
      for (const [table, objects] of this.#pending)
        out.push({ kind: 'deleted', table, objects: [...objects], pid, proc });
      this.#pending.clear();
      return out;
    }
    const what = DELETED[type];
    if (what === undefined || (msg.body[0] !== NFPROTO_INET && msg.body[0] !== NFPROTO_IPV6)) return [];
    const table = attrStr(attrs.get(ATTR_TABLE));
    if (table === undefined || !table.startsWith(this.prefix)) return [];
    const set = this.#pending.get(table) ?? new Set();
    set.add(what);
    this.#pending.set(table, set);
    return [];
  }
}

/**
 * Watches nftables on this thread's event loop for deletions in the `ip6` and `inet` tables
 * named `prefix`…; `onError` gets a failed receive or poll (the monitor has stopped then).
 * Throws NetlinkError when the socket cannot be opened (no nf_tables in this kernel). Close it
 * when done.
 */
export function openNftMonitor(
  prefix: string,
  onEvent: (e: NftEvent) => void,
  onError: (e: Error) => void,
): NetlinkMonitor<NftEvent> {
  const decoder = new NftDeletionDecoder(prefix);
  const socket = openNetlinkSocket(NETLINK_NETFILTER, 'NETLINK_NETFILTER', 1 << (NFNLGRP_NFTABLES - 1));
  return new NetlinkMonitor(
    'nftables monitor',
    socket,
    (m) => decoder.feed(m),
    { kind: 'overrun' },
    onEvent,
    onError,
    watchReadable,
  );
}
