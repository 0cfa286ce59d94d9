/** RFC 7915 §5: translating IPv6 into IPv4. Not written yet. */
import type { PacketBatch } from '../batch.js';
import type { ResolvedConfig } from './config.js';
import { Drop } from './drop.js';

export function translate6to4(_c: ResolvedConfig, _b: Uint8Array, _off: number, _len: number, _out: PacketBatch): Drop {
  return Drop.UNKNOWN;
}
