/** RFC 7915 §4: translating IPv4 into IPv6. Not written yet. */
import type { PacketBatch } from '../batch.js';
import type { ResolvedConfig } from './config.js';
import { Drop } from './drop.js';

export function translate4to6(_c: ResolvedConfig, _b: Uint8Array, _off: number, _len: number, _out: PacketBatch): Drop {
  return Drop.UNKNOWN;
}
