/**
 * The two ways a host learns the NAT64 prefix: the PREF64 Router Advertisement option (RFC 8781)
 * and the DNS64 heuristic of RFC 7050 (AAAA answers for ipv4only.arpa). Both are pure here; the
 * RA arrives through rtnetlink and the DNS query is made by src/daemon/dns64.ts.
 */
import { formatIPv6, matchPrefix6, parseIPv6 } from '../addr/ipv6.js';
import type { Prefix6 } from '../addr/prefix.js';
import { extract, RFC6052_LENGTHS } from '../addr/rfc6052.js';
import { ND_OPT_PREF64 } from './nd-wire.js';

/**
 * RFC 8781 §4:
 *
 *    0                   1                   2                   3
 *   |     Type      |    Length     |     Scaled Lifetime     | PLC |
 *   |                  Highest 96 bits of the Prefix                |  (12 bytes)
 */
export const PREF64_OPTION_LEN = 16;
/** PLC (Prefix Length Code) → prefix length; codes 6 and 7 are invalid. */
export const PREF64_PLC_LENGTHS: readonly number[] = [96, 64, 56, 48, 40, 32];

export type Pref64Rejection =
  /** Fewer than 16 bytes. */
  | 'truncated'
  /** The type is not 38. */
  | 'not-pref64'
  /** RFC 8781 §4: the receiver must ignore the option unless Length is 2. */
  | 'bad-length'
  /** PLC 6 or 7. */
  | 'bad-plc'
  /** Bits 64..71 of a /96 prefix are not zero (RFC 6052 §2.2). */
  | 'u-octet-nonzero';

export interface Pref64Option {
  readonly ok: true;
  /** The prefix; bits past its length are cleared. */
  readonly prefix: Prefix6;
  /** Seconds (the scaled lifetime × 8); 0 means the prefix is withdrawn. */
  readonly lifetime: number;
}
export type Pref64Result = Pref64Option | { readonly ok: false; readonly reason: Pref64Rejection };

/** Parses one PREF64 option at `off` of `b` (`len` bytes available). Never throws. */
export function parsePref64Option(b: Uint8Array, off = 0, len = b.length - off): Pref64Result {
  if (off < 0 || len < PREF64_OPTION_LEN || off + PREF64_OPTION_LEN > b.length)
    return { ok: false, reason: 'truncated' };
  if (b[off] !== ND_OPT_PREF64) return { ok: false, reason: 'not-pref64' };
  if (b[off + 1] !== 2) return { ok: false, reason: 'bad-length' };
  const word = (b[off + 2] << 8) | b[off + 3];
  const plc = word & 7;
  if (plc >= PREF64_PLC_LENGTHS.length) return { ok: false, reason: 'bad-plc' };
  const prefixLen = PREF64_PLC_LENGTHS[plc];
  const addr = new Uint8Array(16);
  // Only the prefix bits count; the rest of the 96-bit field is ignored (RFC 8781 §4).
  addr.set(b.subarray(off + 4, off + 4 + prefixLen / 8), 0);
  if (prefixLen === 96 && addr[8] !== 0) return { ok: false, reason: 'u-octet-nonzero' };
  return { ok: true, prefix: { addr, len: prefixLen }, lifetime: (word >>> 3) * 8 };
}

/**
 * Every PREF64 option in a run of ND options (e.g. the options of a Router Advertisement),
 * each parsed or rejected. A zero-length or overrunning option ends the walk (RFC 4861 §4.6).
 */
export function findPref64Options(b: Uint8Array, off = 0, len = b.length - off): Pref64Result[] {
  const out: Pref64Result[] = [];
  const end = Math.min(b.length, off + Math.max(0, len));
  for (let o = Math.max(0, off); o + 2 <= end; ) {
    const optLen = b[o + 1] * 8;
    if (optLen === 0 || o + optLen > end) break;
    if (b[o] === ND_OPT_PREF64) out.push(parsePref64Option(b, o, optLen));
    o += optLen;
  }
  return out;
}

/** The well-known IPv4-only addresses of ipv4only.arpa (RFC 7050 §2.1). */
export const WKA_170 = 0xc00000aa;
export const WKA_171 = 0xc00000ab;
/** The name to query for AAAA records (RFC 7050 §2.1). */
export const IPV4ONLY_ARPA = 'ipv4only.arpa';

export interface Dns64Prefixes {
  /** The prefixes found, in order of the answers, without duplicates. */
  readonly prefixes: Prefix6[];
  /** Answers that gave no prefix, with why. */
  readonly rejected: { readonly answer: string; readonly reason: string }[];
}

/**
 * The prefix and length inside one AAAA answer, or null when neither 192.0.0.170 nor .171 sits at
 * an RFC 6052 position with a zero u octet. When the pattern appears at several positions the
 * longest prefix wins: the synthesised IPv4 address follows the prefix, so a match further left
 * lies inside the prefix bits by coincidence.
 */
export function pref64FromAnswer(a: Uint8Array): Prefix6 | null {
  // Byte 8 is the u octet for /32../64 and inside a /96 prefix; RFC 6052 §2.2 wants it zero either way.
  if (a[8] !== 0) return null;
  for (let i = RFC6052_LENGTHS.length - 1; i >= 0; i--) {
    const len = RFC6052_LENGTHS[i];
    const v4 = extract(a, 0, len);
    if (v4 !== WKA_170 && v4 !== WKA_171) continue;
    const addr = new Uint8Array(16);
    addr.set(a.subarray(0, len / 8), 0);
    return { addr, len };
  }
  return null;
}

/**
 * RFC 7050 §3: the NAT64 prefixes behind the AAAA answers for ipv4only.arpa (16-byte arrays or
 * text). Each answer is searched for the well-known addresses at every RFC 6052 position; answers
 * without them are rejected, duplicates dropped. Never throws.
 */
export function pref64FromDns64Answers(answers: Iterable<Uint8Array | string>): Dns64Prefixes {
  const prefixes: Prefix6[] = [];
  const seen = new Set<string>();
  const rejected: { answer: string; reason: string }[] = [];
  for (const ans of answers) {
    let bytes: Uint8Array;
    let text: string;
    if (typeof ans === 'string') {
      text = ans;
      try {
        bytes = parseIPv6(ans);
      } catch {
        rejected.push({ answer: text, reason: 'not an IPv6 address' });
        continue;
      }
    } else {
      if (ans.length !== 16) {
        rejected.push({ answer: `${ans.length} bytes`, reason: 'not 16 bytes' });
        continue;
      }
      bytes = ans;
      text = formatIPv6(ans);
    }
    const p = pref64FromAnswer(bytes);
    if (!p) {
      rejected.push({ answer: text, reason: 'neither 192.0.0.170 nor 192.0.0.171 at an RFC 6052 position' });
      continue;
    }
    const key = `${formatIPv6(p.addr)}/${p.len}`;
    if (seen.has(key)) continue;
    seen.add(key);
    prefixes.push(p);
  }
  return { prefixes, rejected };
}

/**
 * Why `p` cannot be a NAT64 prefix, or null when it can. A NAT64 prefix is where the host sends
 * unicast traffic for the whole IPv4 internet, so it must be global unicast (RFC 4291 §2.4): not
 * multicast (ff00::/8), link-local (fe80::/10), the unspecified, loopback and IPv4-compatible
 * block (::/96, which holds :: and ::1), IPv4-mapped (::ffff:0:0/96), nor overlap one of the
 * uplink's on-link prefixes (`onLink`), where its addresses would be neighbours, not the PLAT.
 * Applied to PREF64s from Router Advertisements and DNS64 answers: both come from the network.
 */
export function pref64Problem(p: Prefix6, onLink: readonly Prefix6[] = []): string | null {
  const a = p.addr;
  if (a[0] === 0xff) return 'multicast (ff00::/8)';
  if (a[0] === 0xfe && (a[1] & 0xc0) === 0x80) return 'link-local (fe80::/10)';
  let zeros = 0;
  while (zeros < 10 && a[zeros] === 0) zeros++;
  if (zeros === 10 && a[10] === 0xff && a[11] === 0xff) return 'IPv4-mapped (::ffff:0:0/96)';
  if (zeros === 10 && a[10] === 0 && a[11] === 0) return 'unspecified, loopback or IPv4-compatible (::/96)';
  for (const l of onLink) {
    const len = Math.min(l.len, p.len);
    if (matchPrefix6(a, 0, l.addr, len)) return `inside the uplink's on-link prefix ${formatIPv6(l.addr)}/${l.len}`;
  }
  return null;
}
