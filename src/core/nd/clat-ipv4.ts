/**
 * The CLAT's own IPv4 address (RFC 7335): 192.0.0.0/29 is set aside for the IPv4 side of 464XLAT.
 * Like Android (`selectIpv4Address` in libclat), try 192.0.0.4 first, then walk the block with
 * wrap-around: .4 .5 .6 .7 .0 .1 .2 .3. The address is assigned as a /32 on the TUN device, so
 * .0 and .7 carry no network or broadcast meaning and are as usable as the others.
 */
import { formatIPv4, parseIPv4 } from '../addr/ipv4.js';
import { ClatAddressError } from './errors.js';

/** 192.0.0.0, the RFC 7335 block. */
export const CLAT_IPV4_BLOCK = 0xc0000000;
export const CLAT_IPV4_BLOCK_LEN = 29;
/** 192.0.0.4, the first choice. */
export const CLAT_IPV4_FIRST = 0xc0000004;

/** The order in which addresses of the block are tried. */
export function clatIPv4Candidates(): number[] {
  const out: number[] = [];
  for (let i = 0; i < 8; i++) out.push((CLAT_IPV4_BLOCK + ((4 + i) & 7)) >>> 0);
  return out;
}

/**
 * The first address of 192.0.0.0/29 (from .4, wrapping) that is not in `inUse`, which holds the
 * IPv4 addresses already configured on the host (numbers or dotted quads). Throws
 * {@link ClatAddressError} when all eight are taken.
 */
export function selectClatIPv4(inUse: Iterable<number | string> = []): number {
  const taken = new Set<number>();
  for (const a of inUse) taken.add(typeof a === 'string' ? parseIPv4(a) : a >>> 0);
  for (const c of clatIPv4Candidates()) if (!taken.has(c)) return c;
  throw new ClatAddressError(
    `selectClatIPv4: no free address in ${formatIPv4(CLAT_IPV4_BLOCK)}/${CLAT_IPV4_BLOCK_LEN}; all eight are in use`,
  );
}
