/**
 * clatd's own nftables table, through the `nft` tool (set-up time only). Like Android's clatd, the
 * CLAT address is joined as anycast and its packets are read from a packet socket; the kernel still
 * gets its own copy of each, finds no local address and would answer with ICMPv6 errors. A
 * prerouting rule at priority raw drops that copy, except Neighbor Solicitations and Advertisements,
 * which the kernel must still see to answer NS for the anycast address (RFC 4861 §7.2.4).
 *
 * Table: `ip6 clatd-<uplink>` (sanitised), tagged with a comment; every change is one `nft -f -`
 * transaction, so the filter never exists half-written. The family is `ip6`, not `inet`: an inet
 * base chain runs for every IPv4 packet too, only to find rules that can only match IPv6. The
 * destination is matched before the interface because it is what rejects nearly every packet.
 * Earlier versions used an `inet` table of the same name; installing or deleting removes that too.
 *
 * Address mode 5 (the host's own address, daemon/system/shared.ts) adds chains to the same table
 * (nft's `dup` exists only in ip6 and netdev): a masquerade of the CLAT's private address on the
 * uplink, and after the de-NAT of what comes back, a `dup` of it into clatd's veth pair and a drop
 * of the original; the prerouting chain also drops the kernel's copy arriving on the pair.
 */
import { spawnSync } from 'node:child_process';
import { formatIPv6, parseIPv6 } from '../core/addr/ipv6.js';
import { ClatdError } from '../core/errors.js';
import { isFdShortage, withSpareFds } from './fd-reserve.js';

export class NftError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_NFT');
    this.name = 'NftError';
  }
}

/** Every clatd table name starts with this; crash recovery lists tables by it. */
export const TABLE_PREFIX = 'clatd-';
export const TABLE_COMMENT = 'clatd: drops the kernel copy of packets to the CLAT address';
const CHAIN = 'prerouting';

export interface NftOptions {
  /** The nft binary (default `nft` from PATH). */
  readonly nft?: string;
}

/**
 * The table name for an uplink: `clatd-` plus the name with every character nft would not accept
 * in an identifier replaced by `_`.
 */
export function clatTableName(uplink: string): string {
  checkUplink(uplink);
  return TABLE_PREFIX + uplink.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function checkUplink(uplink: string): void {
  // Linux allows almost any byte in a name; nft strings cannot hold '"' or '\', so refuse those.
  if (uplink.length === 0 || Buffer.byteLength(uplink) > 15 || /["\\\s/:]|[^\x21-\x7e]/.test(uplink))
    throw new NftError(`nft: not a usable interface name: "${uplink}"`);
}

/** The rules of the chain, as nft statements (without the `add rule` prefix). */
function rules(uplink: string, addr: string): string[] {
  // The address first: it rejects almost every packet after one payload compare.
  const match = `ip6 daddr ${addr} iifname "${uplink}"`;
  // Counters cost little and tell an operator (and the tests) that the filter is doing its job.
  return [`${match} icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } counter accept`, `${match} counter drop`];
}

function canonical(clatAddr: string): string {
  try {
    return formatIPv6(parseIPv6(clatAddr));
  } catch {
    throw new NftError(`nft: not an IPv6 address: "${clatAddr}"`);
  }
}

/** The whole ruleset text for an uplink and CLAT address (exported for tests and logs). */
export function clatRuleset(uplink: string, clatAddr: string): string {
  return tableText(uplink, canonical(clatAddr), [], []);
}

/**
 * The table, replacing one of the same name (and an earlier version's inet one) atomically:
 * "add" then "delete" then define. `extraRules` go at the end of the prerouting chain,
 * `extraChains` (lines) after it.
 */
function tableText(uplink: string, addr: string, extraRules: string[], extraChains: string[]): string {
  const table = clatTableName(uplink);
  return [
    `add table inet ${table}`,
    `delete table inet ${table}`,
    `add table ip6 ${table}`,
    `delete table ip6 ${table}`,
    `table ip6 ${table} {`,
    `  comment "${TABLE_COMMENT} on ${uplink}"`,
    `  chain ${CHAIN} {`,
    '    type filter hook prerouting priority raw; policy accept;',
    ...[...rules(uplink, addr), ...extraRules].map((r) => `    ${r}`),
    '  }',
    ...extraChains,
    '}',
    '',
  ].join('\n');
}

/** Address mode 5: the veth pair (`tx` the kernel sends into, `rx` clatd reads). */
export interface SharedPairNames {
  readonly tx: string;
  readonly rx: string;
}

/**
 * Address mode 5's ruleset: the table of {@link clatRuleset} with the kernel's copy on the pair
 * dropped too, and the chains of the NAT and the `dup` (see the header).
 */
export function sharedRuleset(uplink: string, clatAddr: string, pair: SharedPairNames): string {
  const addr = canonical(clatAddr);
  checkUplink(pair.tx);
  checkUplink(pair.rx);
  return tableText(
    uplink,
    addr,
    [`ip6 daddr ${addr} iifname "${pair.rx}" counter drop`],
    [
      // After conntrack's de-NAT (dstnat, -100): the destination is the CLAT's private address now.
      '  chain shared-in {',
      '    type filter hook prerouting priority 0; policy accept;',
      `    ip6 daddr ${addr} iifname "${uplink}" counter dup to ${addr} device "${pair.tx}" drop`,
      '  }',
      '  chain shared-out {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    oifname "${uplink}" ip6 saddr ${addr} counter masquerade`,
      '  }',
    ],
  );
}

/** Creates (or atomically replaces) address mode 5's table for `uplink` and `clatAddr`. */
export function installSharedFilter(
  uplink: string,
  clatAddr: string,
  pair: SharedPairNames,
  opts: NftOptions = {},
): string {
  const table = clatTableName(uplink);
  runNft(['-f', '-'], sharedRuleset(uplink, clatAddr, pair), `nft install ${table} (shared) for ${clatAddr}`, opts);
  return table;
}

/** The PIDs of this process's last `nft` runs. */
const ownRuns: number[] = [];
const OWN_RUNS_KEPT = 16;

/**
 * Whether `pid` is one of this process's recent `nft` runs: the kernel names the committing process
 * of each nftables change (nft-events.ts), and clatd's own replace its table by deleting it.
 */
export function isOwnNftRun(pid: number): boolean {
  return ownRuns.includes(pid);
}

/** Runs `nft` with `args`, feeding `input` on stdin; returns stdout. Throws {@link NftError}. */
export function runNft(args: string[], input: string | undefined, what: string, opts: NftOptions): string {
  const bin = opts.nft ?? 'nft';
  // At the fd limit the spare fds make room for it: clean-up must not fail with EMFILE.
  const r = withSpareFds(
    () => spawnSync(bin, args, { input, encoding: 'utf8', timeout: 10_000 }),
    (x) => isFdShortage(x.error),
  );
  if (r.pid) {
    ownRuns.push(r.pid);
    if (ownRuns.length > OWN_RUNS_KEPT) ownRuns.shift();
  }
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NftError(`${what}: ${bin} not found: install the nftables package`);
    throw new NftError(`${what}: running ${bin} failed: ${code ?? r.error.message}`);
  }
  if (r.status !== 0) {
    const why = (r.stderr || r.stdout || '').trim() || `exit status ${r.status ?? r.signal}`;
    throw new NftError(`${what}: nft ${args.join(' ')} failed: ${why}`);
  }
  return r.stdout;
}

/**
 * Creates (or atomically replaces) the table for `uplink` with a filter for `clatAddr`.
 * Returns the table name.
 */
export function installClatFilter(uplink: string, clatAddr: string, opts: NftOptions = {}): string {
  const table = clatTableName(uplink);
  runNft(['-f', '-'], clatRuleset(uplink, clatAddr), `nft install ${table} for ${clatAddr}`, opts);
  return table;
}

/**
 * Points the existing filter at a new CLAT address: the chain is flushed and refilled in one
 * transaction, so no packet sees an empty chain. Fails if the table does not exist.
 */
export function updateClatFilter(uplink: string, clatAddr: string, opts: NftOptions = {}): void {
  const table = clatTableName(uplink);
  const addr = canonical(clatAddr);
  const script = [
    `flush chain ip6 ${table} ${CHAIN}`,
    ...rules(uplink, addr).map((r) => `add rule ip6 ${table} ${CHAIN} ${r}`),
    '',
  ].join('\n');
  runNft(['-f', '-'], script, `nft update ${table} to ${clatAddr}`, opts);
}

/** Deletes the table of `uplink`; a missing table is not an error (clean-up must be idempotent). */
export function removeClatFilter(uplink: string, opts: NftOptions = {}): void {
  deleteClatTable(clatTableName(uplink), opts);
}

/** Deletes a clatd table by name (from {@link listClatTables}); missing is fine. */
export function deleteClatTable(table: string, opts: NftOptions = {}): void {
  if (!table.startsWith(TABLE_PREFIX) || !/^[A-Za-z0-9_.-]+$/.test(table))
    throw new NftError(`nft: "${table}" is not a clatd table name`);
  // "add" first makes the delete succeed whether or not the table exists, in one transaction;
  // the inet table of the same name is an earlier version's.
  runNft(
    ['-f', '-'],
    `add table inet ${table}\ndelete table inet ${table}\nadd table ip6 ${table}\ndelete table ip6 ${table}\n`,
    `nft delete table ip6 ${table}`,
    opts,
  );
}

/**
 * Whether the table of `uplink` holds clatd's filter for `clatAddr` as installed: the prerouting
 * chain with the ND accept rule before the drop rule, both on that address. A missing table is
 * `false`; other failures throw.
 */
export function clatFilterIntact(uplink: string, clatAddr: string, opts: NftOptions = {}): boolean {
  const items = listTable('ip6', clatTableName(uplink), opts);
  return items !== undefined && filterIntact(items, JSON.stringify(canonical(clatAddr)));
}

/** Whether the table's `items` hold the prerouting chain with the ND accept before the drop on `addr` (JSON). */
function filterIntact(items: NftJsonItem[], addr: string): boolean {
  if (!items.some((i) => i.chain?.name === CHAIN && i.chain.hook === 'prerouting')) return false;
  // The verdicts of the chain's rules on our address, in order.
  const verdicts = items
    .filter((i) => i.rule?.chain === CHAIN)
    .map((i) => JSON.stringify(i.rule?.expr))
    .filter((e) => e.includes(`"right":${addr}`))
    .map((e) => (e.includes('{"accept":null}') ? 'accept' : e.includes('{"drop":null}') ? 'drop' : 'other'));
  const accept = verdicts.indexOf('accept');
  return accept >= 0 && verdicts.indexOf('drop', accept) > accept;
}

/**
 * Address mode 5: the filter intact (as {@link clatFilterIntact}), and the table holding both the
 * `dup` and the masquerade for `clatAddr`.
 */
export function sharedFilterIntact(uplink: string, clatAddr: string, opts: NftOptions = {}): boolean {
  const addr = JSON.stringify(canonical(clatAddr));
  const items = listTable('ip6', clatTableName(uplink), opts);
  if (!items || !filterIntact(items, addr)) return false;
  const exprs = items.filter((i) => i.rule).map((i) => JSON.stringify(i.rule?.expr));
  const has = (verdict: string) => exprs.some((e) => e.includes(`"right":${addr}`) && e.includes(verdict));
  return has('"dup"') && has('"masquerade"');
}

/** One object of `nft -j` output, by kind (`table`, `chain`, `rule`, …); only the fields read here. */
export type NftJsonItem = Record<
  string,
  { family?: string; name?: string; chain?: string; hook?: string; expr?: unknown; comment?: string } | undefined
>;

/** Runs `nft -j` with `args` and returns its objects. Throws {@link NftError}. */
export function listJson(args: string[], what: string, opts: NftOptions): NftJsonItem[] {
  const out = runNft(['-j', ...args], undefined, what, opts);
  try {
    return (JSON.parse(out) as { nftables?: NftJsonItem[] }).nftables ?? [];
  } catch {
    throw new NftError(`${what}: unreadable JSON output: ${out.slice(0, 200)}`);
  }
}

/** The items of one table (`nft -j list table`); undefined when there is no such table. */
export function listTable(family: 'inet' | 'ip6', table: string, opts: NftOptions): NftJsonItem[] | undefined {
  try {
    return listJson(['list', 'table', family, table], `nft list table ${family} ${table}`, opts);
  } catch (e) {
    if (e instanceof NftError && /No such file or directory/.test(e.message)) return undefined;
    throw e;
  }
}

/** A clatd table as listed: its family and name. */
export interface ClatTable {
  readonly family: 'ip6' | 'inet';
  readonly name: string;
}

/**
 * The clatd tables (`ip6`, and an earlier version's `inet` ones of the same names; not the LAN
 * tables of nft-lan.ts): leftovers after a crash, or live ones.
 */
export function findClatTables(opts: NftOptions = {}): ClatTable[] {
  const found: ClatTable[] = [];
  for (const item of listJson(['list', 'tables'], 'nft list tables', opts)) {
    const t = item.table;
    if ((t?.family === 'ip6' || t?.family === 'inet') && t.name?.startsWith(TABLE_PREFIX) && !t.name.includes('/'))
      found.push({ family: t.family, name: t.name });
  }
  return found;
}

/** Names of the clatd tables ({@link findClatTables}), each once. */
export function listClatTables(opts: NftOptions = {}): string[] {
  return [...new Set(findClatTables(opts).map((t) => t.name))];
}
