/**
 * clatd's nftables table for router mode (NAT44): the IPv4 LANs behind the host reach the IPv4
 * internet through the CLAT, their sources masqueraded into the CLAT IPv4 address, so the TUN sees
 * packets from its own address and the translator (and the kernel fast path) treat them as the
 * host's own. Set-up time only, through the `nft` tool, one transaction per change.
 *
 * Table `inet clatd-<uplink>/lan` (a '/' is in no interface name, so it never meets the uplink
 * table `clatd-<uplink>` of another uplink), all rules for IPv4 only:
 *
 *   chain forward   (filter, priority mangle: before the host's own filter chains)
 *     serving   drop from a LAN with no IPv4 address, from a source outside its subnets, and to
 *               anywhere but the TUN or a LAN; count per LAN out and in; clamp the TCP MSS of
 *               SYNs through the TUN to its MTU - 40
 *     idle      reject everything forwarded from a LAN (counted, ICMP host unreachable): no LAN
 *               traffic leaks elsewhere
 *   chain postrouting (nat, priority srcnat)
 *     serving   LAN sources out of the TUN: masquerade (NAT44 mode only)
 *   chain prerouting (filter, priority raw; stateless mode only)
 *     always    drop the kernel's copy of what arrives on the uplink for the LANs' mapped IPv6
 *               prefixes: the datapath reads it from its packet socket (as for the CLAT address),
 *               and the kernel, which holds no such address, would answer with errors or route it
 *               back to the uplink
 *
 * Nothing here accepts: an accept in this table would not bind the host's chains anyway, and the
 * host's own FORWARD policy still decides about what this table lets through.
 */
import { formatPrefix6, parsePrefix6 } from '../core/addr/prefix.js';
import { clatTableName, listJson, listTable, NftError, type NftOptions, runNft } from './nft.js';

export interface LanRuleInput {
  uplink: string;
  /** The CLAT to serve the LANs through; undefined: not served, everything from a LAN is dropped. */
  serve?: { tun: string; clat4: string; mtu: number };
  /** The LAN interfaces and their IPv4 subnets (`203.0.113.0/24`); none: it has no IPv4 address. */
  lans: { name: string; subnets: string[] }[];
  /** Stateless mode: the IPv6 prefixes the LAN subnets are mapped to (EAM); no masquerade. */
  mapped?: string[];
}

/** Why a LAN packet was dropped, as counted (and named in status and metrics). */
export type LanDrop = 'no-address' | 'wrong-source' | 'elsewhere' | 'not-served';

/** A LAN interface's counters, from the rules' counters. */
export interface LanRuleCounters {
  packetsOut: number;
  bytesOut: number;
  packetsIn: number;
  bytesIn: number;
  drops: Record<LanDrop, number>;
}

export const LAN_TABLE_COMMENT = 'clatd: IPv4 LANs served through the CLAT (NAT44)';
export const LAN_TABLE_COMMENT_STATELESS = 'clatd: IPv4 LANs served through the CLAT (stateless, EAM)';

/** The table of router mode for `uplink`. */
export function lanTableName(uplink: string): string {
  return `${clatTableName(uplink)}/lan`;
}

function checkName(name: string): string {
  // Same rule as the uplink table's: nft strings cannot hold '"' or '\'.
  if (name.length === 0 || Buffer.byteLength(name) > 15 || /["\\\s/:]|[^\x21-\x7e]/.test(name))
    throw new NftError(`nft: not a usable interface name: "${name}"`);
  return `"${name}"`;
}

function checkV4(text: string, prefix: boolean): string {
  const m = prefix ? /^(\d{1,3}(\.\d{1,3}){3})\/(\d{1,2})$/.exec(text) : /^(\d{1,3}(\.\d{1,3}){3})$/.exec(text);
  if (!m || m[1].split('.').some((o) => Number(o) > 255) || (prefix && Number(m[3]) > 32))
    throw new NftError(`nft: not an IPv4 ${prefix ? 'prefix' : 'address'}: "${text}"`);
  return text;
}

function checkV6Prefix(text: string): string {
  try {
    return formatPrefix6(parsePrefix6(text));
  } catch {
    throw new NftError(`nft: not an IPv6 prefix: "${text}"`);
  }
}

/** The comment of the stateless mode's drop rule (one word: never read as a LAN's counter). */
export const MAPPED_DROP_COMMENT = 'mapped-kernel-copy';

/** The comment naming a counted rule, by which its counters are read back. */
function tag(what: 'out' | 'in' | LanDrop, lan: string): string {
  return `comment "${what} ${lan}"`;
}

/** The rules of the forward chain and of the postrouting chain (nft statements, no `add rule`). */
export function lanRules(r: LanRuleInput): { forward: string[]; postrouting: string[]; prerouting: string[] } {
  const v4 = 'meta nfproto ipv4';
  const forward: string[] = [];
  const postrouting: string[] = [];
  const prerouting: string[] = [];
  const lans = r.lans.map((l) => ({ ...l, q: checkName(l.name), subnets: l.subnets.map((s) => checkV4(s, true)) }));
  const mapped = r.mapped?.map(checkV6Prefix);
  if (mapped && mapped.length > 0)
    prerouting.push(
      `meta nfproto ipv6 iifname ${checkName(r.uplink)} ip6 daddr { ${mapped.join(', ')} } counter drop comment "${MAPPED_DROP_COMMENT}"`,
    );
  if (!r.serve) {
    // Rejected rather than dropped: a LAN device learns at once that there is no way out now.
    for (const l of lans)
      forward.push(`${v4} iifname ${l.q} counter reject with icmp type host-unreachable ${tag('not-served', l.name)}`);
    return { forward, postrouting, prerouting };
  }
  const tun = checkName(r.serve.tun);
  const clat4 = checkV4(r.serve.clat4, false);
  const mss = r.serve.mtu - 40;
  if (!Number.isInteger(mss) || mss < 536 || mss > 65495) throw new NftError(`nft: not a usable MTU: ${r.serve.mtu}`);
  const allowedOut = [tun, ...lans.map((l) => l.q)].join(', ');
  for (const l of lans) {
    if (l.subnets.length === 0) {
      forward.push(`${v4} iifname ${l.q} counter drop ${tag('no-address', l.name)}`);
      continue;
    }
    forward.push(
      `${v4} iifname ${l.q} ip saddr != { ${l.subnets.join(', ')} } counter drop ${tag('wrong-source', l.name)}`,
      `${v4} iifname ${l.q} oifname != { ${allowedOut} } counter drop ${tag('elsewhere', l.name)}`,
      `${v4} iifname ${l.q} oifname ${tun} counter ${tag('out', l.name)}`,
      `${v4} iifname ${tun} oifname ${l.q} counter ${tag('in', l.name)}`,
    );
  }
  // Both ways: the LAN device's SYN and the server's SYN-ACK each announce an MSS the CLAT's
  // smaller MTU cannot carry.
  const clamp = `tcp flags syn / syn,rst tcp option maxseg size > ${mss} tcp option maxseg size set ${mss}`;
  forward.push(`${v4} oifname ${tun} ${clamp}`, `${v4} iifname ${tun} ${clamp}`);
  // Stateless mode: the translator maps each LAN source itself; nothing is rewritten here.
  const sources = lans.flatMap((l) => l.subnets);
  if (sources.length > 0 && !mapped)
    postrouting.push(`${v4} oifname ${tun} ip saddr { ${sources.join(', ')} } ip saddr != ${clat4} masquerade`);
  return { forward, postrouting, prerouting };
}

/** The whole table as one `nft -f` script that replaces any table of the same name atomically. */
export function lanRuleset(r: LanRuleInput): string {
  const table = lanTableName(r.uplink);
  const { forward, postrouting, prerouting } = lanRules(r);
  const lines = [
    `add table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    `  comment "${r.mapped ? LAN_TABLE_COMMENT_STATELESS : LAN_TABLE_COMMENT} on ${r.uplink}"`,
    '  chain forward {',
    '    type filter hook forward priority mangle; policy accept;',
    ...forward.map((x) => `    ${x}`),
    '  }',
  ];
  if (prerouting.length > 0)
    lines.push(
      '  chain prerouting {',
      '    type filter hook prerouting priority raw; policy accept;',
      ...prerouting.map((x) => `    ${x}`),
      '  }',
    );
  if (postrouting.length > 0)
    lines.push(
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      ...postrouting.map((x) => `    ${x}`),
      '  }',
    );
  lines.push('}', '');
  return lines.join('\n');
}

/** Installs (or atomically replaces) the LAN table; returns its name. */
export function installLanTable(r: LanRuleInput, opts: NftOptions = {}): string {
  const table = lanTableName(r.uplink);
  runNft(['-f', '-'], lanRuleset(r), `nft install ${table}`, opts);
  return table;
}

/** Deletes the LAN table of `uplink`; a missing one is fine. Returns whether it existed. */
export function removeLanTable(uplink: string, opts: NftOptions = {}): boolean {
  const table = lanTableName(uplink);
  const existed = listJson(['list', 'tables', 'inet'], 'nft list tables', opts).some((i) => i.table?.name === table);
  // "add" first makes the delete succeed whether or not the table exists, in one transaction.
  runNft(['-f', '-'], `add table inet ${table}\ndelete table inet ${table}\n`, `nft delete table inet ${table}`, opts);
  return existed;
}

/**
 * The counters of the LAN table by LAN interface, and how many rules it has; undefined when the
 * table is missing (deleted by someone: `flush ruleset`).
 */
export function readLanTable(
  uplink: string,
  opts: NftOptions = {},
): { counters: Record<string, LanRuleCounters>; rules: number } | undefined {
  const items = listTable('inet', lanTableName(uplink), opts);
  if (!items) return undefined;
  const counters: Record<string, LanRuleCounters> = {};
  let rules = 0;
  for (const i of items) {
    const rule = i.rule;
    if (rule === undefined) continue;
    rules++;
    const m = /^(\S+) (\S+)$/.exec(rule.comment ?? '');
    if (!m) continue;
    const [, what, lan] = m;
    const c = (Array.isArray(rule.expr) ? rule.expr : []).find(
      (x): x is { counter: { packets: number; bytes: number } } =>
        typeof x === 'object' && x !== null && 'counter' in x,
    )?.counter;
    if (!c) continue;
    counters[lan] ??= emptyLanCounters();
    const into = counters[lan];
    if (what === 'out') {
      into.packetsOut += c.packets;
      into.bytesOut += c.bytes;
    } else if (what === 'in') {
      into.packetsIn += c.packets;
      into.bytesIn += c.bytes;
    } else if (what in into.drops) into.drops[what as LanDrop] += c.packets;
  }
  return { counters, rules };
}

export function emptyLanCounters(): LanRuleCounters {
  return {
    packetsOut: 0,
    bytesOut: 0,
    packetsIn: 0,
    bytesIn: 0,
    drops: { 'no-address': 0, 'wrong-source': 0, elsewhere: 0, 'not-served': 0 },
  };
}
