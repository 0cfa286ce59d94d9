/**
 * The public library surface of clatd. Everything not exported here is internal.
 */

export { EamTable } from './core/addr/eam.js';
export { formatIPv4, parseIPv4 } from './core/addr/ipv4.js';
export { formatIPv6, parseIPv6 } from './core/addr/ipv6.js';
export type { Prefix4, Prefix6 } from './core/addr/prefix.js';
export { formatPrefix4, formatPrefix6, parsePrefix4, parsePrefix6 } from './core/addr/prefix.js';
export {
  embed as rfc6052Embed,
  extract as rfc6052Extract,
  RFC6052_LENGTHS,
  validateRfc6052Prefix,
} from './core/addr/rfc6052.js';
export type { PacketBatch } from './core/batch.js';
export { createBatch, Disposition } from './core/batch.js';
export { AddressError, ClatdError, ConfigError } from './core/errors.js';
export { CLAT_IPV4_FIRST, selectClatIPv4 } from './core/nd/clat-ipv4.js';
export type { DadAction, DadEvent, DadMode, DadOptions, DadState, DadStatus } from './core/nd/dad.js';
export { DadMachine, DEFAULT_DAD_TRANSMITS, DEFAULT_RETRANS_TIMER_MS, IDGEN_RETRIES } from './core/nd/dad.js';
export { buildDadSolicitation, DAD_FRAME_LEN, DAD_PACKET_LEN, frameDadSolicitation } from './core/nd/dad-probe.js';
export { ClatAddressError, DadError, Pref64DiscoveryError } from './core/nd/errors.js';
export type {
  NdMessage,
  NdParseResult,
  NdRejection,
  NeighborAdvertisement,
  NeighborSolicitation,
} from './core/nd/nd-parse.js';
export { parseNeighborMessage } from './core/nd/nd-parse.js';
export {
  embeddedSum,
  generateClatAddress,
  generateClatAddressBytes,
  generateInPrefix,
  generateInPrefixBytes,
  isChecksumNeutral,
  isFullyNeutralMapping,
  isReservedIid,
  neutralityHolds,
  prefixSum,
  remoteMappingDelta,
} from './core/nd/neutral.js';
export type { Dns64Prefixes, Pref64Result } from './core/nd/pref64.js';
export { findPref64Options, parsePref64Option, pref64FromDns64Answers } from './core/nd/pref64.js';
export type { ResolvedConfig, TranslatorConfig } from './core/xlat/config.js';
export { DROP_INFO, Drop, type DropInfo, dropName } from './core/xlat/drop.js';
export { type TranslateResult, Translator } from './core/xlat/translator.js';
export { ipPayload, PcapError, readPcap, writePcap } from './pcap/pcap.js';
