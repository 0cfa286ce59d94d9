/**
 * A translator's working memory: everything the packet path remembers or hands from one function
 * to the next, in one object made once per {@link Translator} and passed explicitly. Nothing in
 * src/core keeps state at module level, so two translators in one thread (two configurations,
 * a test beside a daemon) never see each other's memo, counters or half-written results.
 *
 * Made once, reused for every packet: no field is allocated per packet. Fields are grouped by the
 * file that writes them; "scratch" fields hold one packet's values between functions of that file
 * and mean nothing after the call returns.
 */
import { Ipv6Chain } from '../hdr/ipv6-ext.js';
import type { ResolvedConfig } from './config.js';
import { type ErrorLayout46, newErrorLayout46 } from './icmp46.js';
import { ErrorLayout } from './icmp64.js';
import { Mapped64, Memo46, Pool6Plan } from './mapping.js';
import { ArenaWords } from './words.js';

export class XlatState {
  /** The configuration in force (immutable; {@link configure} swaps it). */
  config: ResolvedConfig;

  // ---- shared ----
  /** The word view of the arena the packets live in (words.ts). */
  readonly words = new ArenaWords();

  // ---- mapping.ts ----
  /** 4→6 address memo, with the delta and sum of the last address mapped. */
  readonly memo46 = new Memo46();
  /** pool6 as prefix words and masks, for the 6→4 lookups. */
  readonly pool6 = new Pool6Plan();
  /** Results of the last 6→4 mapping. */
  readonly mapped64 = new Mapped64();

  // ---- 4to6.ts ----
  /** Where the parts of a translated ICMPv4 error go. */
  readonly errorLayout46: ErrorLayout46 = newErrorLayout46();

  // ---- 6to4.ts ----
  /** The extension header chain of the packet being translated, and of the packet an error quotes. */
  readonly outer = new Ipv6Chain();
  readonly inner = new Ipv6Chain();
  /** Where the parts of a translated ICMPv6 error go. */
  readonly errorLayout64 = new ErrorLayout();
  /** Identification for unfragmented DF=0 results (RFC 7915 §5.1 leaves the generator to us; RFC 6864 §4). */
  nextId = 0;
  /** Scratch: the MTU the result must fit (the IPv4 link's, or no limit for a hairpinned packet). */
  linkMtu = 0xffff;
  /** Scratch: the mapped IPv4 source and destination (signed 32-bit), and the TTL to write. */
  src4 = 0;
  dst4 = 0;
  ttl = 0;
  /** Scratch: 16-bit word sums of the outer IPv6 source and destination. */
  srcSum6 = 0;
  dstSum6 = 0;

  // ---- hairpin.ts ----
  readonly hairpinChain = new Ipv6Chain();
  readonly hairpinInner = new Ipv6Chain();

  constructor(config: ResolvedConfig) {
    this.config = config;
    this.configure(config);
  }

  /** Puts `config` in force: the memo is emptied and the pool6 plan rebuilt for it. */
  configure(config: ResolvedConfig): void {
    this.config = config;
    this.memo46.clear();
    this.pool6.plan(config);
  }
}
