/**
 * clatd's own nftables table, through the `nft` tool (set-up time only). Like Android's clatd, the
 * CLAT address is joined as anycast and its packets are read from a packet socket; the kernel still
 * gets its own copy of each, finds no local address and would answer with ICMPv6 errors. A
 * prerouting rule at priority raw drops that copy, except Neighbor Solicitations and Advertisements,
 * which the kernel must still see to answer NS for the anycast address (RFC 4861 §7.2.4).
 *
 * Table: `inet clatd-<uplink>` (sanitised), tagged with a comment; every change is one `nft -f -`
 * transaction, so the filter never exists half-written.
 *
 * Address mode 5 (the host's own address, daemon/system/shared.ts) adds, in the same transaction,
 * an `ip6` table of the same name (nft's `dup` exists only there): a masquerade of the CLAT's
 * private address on the uplink, and after the de-NAT of what comes back, a `dup` of it into
 * clatd's veth pair and a drop of the original; the inet table also drops the kernel's copy
 * arriving on the pair. Deleting the table of an uplink deletes both.
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
  const match = `iifname "${uplink}" ip6 daddr ${addr}`;
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
  const table = clatTableName(uplink);
  const addr = canonical(clatAddr);
  return [
    // "add" then "delete" then define: replaces a leftover table of the same name atomically.
    `add table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    `  comment "${TABLE_COMMENT} on ${uplink}"`,
    `  chain ${CHAIN} {`,
    '    type filter hook prerouting priority raw; policy accept;',
    ...rules(uplink, addr).map((r) => `    ${r}`),
    '  }',
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
 * Address mode 5's ruleset: the inet table of {@link clatRuleset} with the kernel's copy on the
 * pair dropped too, and the ip6 table with the NAT and the `dup` (see the header).
 */
export function sharedRuleset(uplink: string, clatAddr: string, pair: SharedPairNames): string {
  const table = clatTableName(uplink);
  const addr = canonical(clatAddr);
  checkUplink(pair.tx);
  checkUplink(pair.rx);
  const inet = clatRuleset(uplink, clatAddr).replace(
    '  }\n}\n',
    `    iifname "${pair.rx}" ip6 daddr ${addr} counter drop\n  }\n}\n`,
  );
  return [
    inet.trimEnd(),
    `add table ip6 ${table}`,
    `delete table ip6 ${table}`,
    `table ip6 ${table} {`,
    `  comment "clatd: address mode 5 on ${uplink}, the host's address shared (NAT66)"`,
    // After conntrack's de-NAT (dstnat, -100): the destination is the CLAT's private address now.
    '  chain shared-in {',
    '    type filter hook prerouting priority 0; policy accept;',
    `    iifname "${uplink}" ip6 daddr ${addr} counter dup to ${addr} device "${pair.tx}" drop`,
    '  }',
    '  chain shared-out {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${uplink}" ip6 saddr ${addr} counter masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Creates (or atomically replaces) address mode 5's tables for `uplink` and `clatAddr`. */
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
    `flush chain inet ${table} ${CHAIN}`,
    ...rules(uplink, addr).map((r) => `add rule inet ${table} ${CHAIN} ${r}`),
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
  // the ip6 table of the same name is address mode 5's.
  runNft(
    ['-f', '-'],
    `add table inet ${table}\ndelete table inet ${table}\nadd table ip6 ${table}\ndelete table ip6 ${table}\n`,
    `nft delete table inet ${table}`,
    opts,
  );
}

/**
 * Whether the table of `uplink` holds clatd's filter for `clatAddr` as installed: the prerouting
 * chain with the ND accept rule before the drop rule, both on that address. A missing table is
 * `false`; other failures throw.
 */
export function clatFilterIntact(uplink: string, clatAddr: string, opts: NftOptions = {}): boolean {
  const addr = JSON.stringify(canonical(clatAddr));
  const items = listTable('inet', clatTableName(uplink), opts);
  if (!items) return false;
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
 * Address mode 5: the inet filter intact (as {@link clatFilterIntact}), and the ip6 table holding
 * both the `dup` and the masquerade for `clatAddr`.
 */
export function sharedFilterIntact(uplink: string, clatAddr: string, opts: NftOptions = {}): boolean {
  if (!clatFilterIntact(uplink, clatAddr, opts)) return false;
  const addr = JSON.stringify(canonical(clatAddr));
  const items = listTable('ip6', clatTableName(uplink), opts);
  if (!items) return false;
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

/** Names of the `inet` tables whose names start with `clatd-`: leftovers after a crash, or live ones. */
export function listClatTables(opts: NftOptions = {}): string[] {
  const names: string[] = [];
  for (const item of listJson(['list', 'tables', 'inet'], 'nft list tables', opts)) {
    const t = item.table;
    if (t?.family === 'inet' && t.name?.startsWith(TABLE_PREFIX)) names.push(t.name);
  }
  return names;
}
