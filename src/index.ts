/**
 * The public library surface of clatd. Everything not exported here is internal.
 */

export { formatIPv4, parseIPv4 } from './core/addr/ipv4.js';
export { formatIPv6, parseIPv6 } from './core/addr/ipv6.js';
export type { Prefix4, Prefix6 } from './core/addr/prefix.js';
export { formatPrefix4, formatPrefix6, parsePrefix4, parsePrefix6 } from './core/addr/prefix.js';
export { embed as rfc6052Embed, extract as rfc6052Extract, RFC6052_LENGTHS } from './core/addr/rfc6052.js';
export type { PacketBatch } from './core/batch.js';
export { createBatch, Disposition } from './core/batch.js';
export { AddressError, ClatdError, ConfigError } from './core/errors.js';
