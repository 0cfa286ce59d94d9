/** Errors raised at the edges of the neighbor-discovery and CLAT-identity modules. */
import { ClatdError } from '../errors.js';

/** No CLAT address can be chosen: the 192.0.0.0/29 block is full, or the random source misbehaves. */
export class ClatAddressError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_CLAT_ADDRESS');
    this.name = 'ClatAddressError';
  }
}

/** Duplicate Address Detection gave up: every address drawn was answered for by another node. */
export class DadError extends ClatdError {
  /** The addresses tried, in order (text form). */
  readonly addresses: readonly string[];
  /** What answered for the last address, e.g. `Neighbor Advertisement from fe80::1 (02:00:5e:00:53:01)`. */
  readonly answeredBy: string;
  constructor(message: string, addresses: readonly string[], answeredBy: string) {
    super(message, 'ERR_CLATD_DAD_DUPLICATE');
    this.name = 'DadError';
    this.addresses = addresses;
    this.answeredBy = answeredBy;
  }
}

/** RFC 7050 discovery found no NAT64 prefix (no DNS64, no answer, or answers without the well-known address). */
export class Pref64DiscoveryError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_PREF64_DISCOVERY');
    this.name = 'Pref64DiscoveryError';
  }
}
