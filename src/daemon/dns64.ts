/**
 * RFC 7050 NAT64 prefix discovery over DNS: ask for the AAAA records of ipv4only.arpa, which has
 * only A records (192.0.0.170, 192.0.0.171), so any AAAA answer was synthesised by a DNS64 and
 * carries the NAT64 prefix. The search of the answers is pure and lives in the core.
 */
import { Resolver } from 'node:dns/promises';
import type { Prefix6 } from '../core/addr/prefix.js';
import { formatPrefix6 } from '../core/addr/prefix.js';
import { Pref64DiscoveryError } from '../core/nd/errors.js';
import { IPV4ONLY_ARPA, pref64FromDns64Answers } from '../core/nd/pref64.js';

export const DEFAULT_DNS64_TIMEOUT_MS = 2000;

/** The part of `node:dns` Resolver used here, so tests can pass a fake. */
export interface Aaaa6Resolver {
  resolve6(name: string): Promise<string[]>;
}

/**
 * The NAT64 prefixes announced by the DNS64 at `servers` (`addr` or `[addr]:port`; the system's
 * resolvers when omitted), in answer order. Throws {@link Pref64DiscoveryError} naming the servers
 * and the cause: no DNS64 (no AAAA for ipv4only.arpa), timeout, or answers without the
 * well-known addresses.
 */
export async function discoverPref64ViaDns(
  servers?: string[],
  timeoutMs = DEFAULT_DNS64_TIMEOUT_MS,
  resolver?: Aaaa6Resolver,
): Promise<Prefix6[]> {
  const where = servers && servers.length > 0 ? servers.join(', ') : 'the system resolvers';
  let r = resolver;
  if (!r) {
    const real = new Resolver({ timeout: timeoutMs, tries: 2 });
    if (servers && servers.length > 0) {
      try {
        real.setServers(servers);
      } catch (e) {
        throw new Pref64DiscoveryError(`bad DNS server list "${where}": ${(e as Error).message}`);
      }
    }
    r = real;
  }
  let answers: string[];
  try {
    answers = await r.resolve6(IPV4ONLY_ARPA);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why =
      code === 'ENODATA' || code === 'ENOTFOUND'
        ? 'no AAAA record for ipv4only.arpa: the resolver does no DNS64'
        : code === 'ETIMEOUT'
          ? `no answer within ${timeoutMs} ms`
          : `${code ?? 'error'}: ${(e as Error).message}`;
    throw new Pref64DiscoveryError(`asking ${where} for AAAA ${IPV4ONLY_ARPA}: ${why}`);
  }
  const { prefixes, rejected } = pref64FromDns64Answers(answers);
  if (prefixes.length === 0) {
    const list = rejected.map((x) => `${x.answer} (${x.reason})`).join(', ');
    throw new Pref64DiscoveryError(
      `${where} answered AAAA ${IPV4ONLY_ARPA} without a NAT64 prefix: ${list || 'empty answer'}`,
    );
  }
  return prefixes;
}

/** Text form of discovered prefixes, for logs and status. */
export function formatPrefixes(prefixes: readonly Prefix6[]): string {
  return prefixes.map(formatPrefix6).join(', ');
}
