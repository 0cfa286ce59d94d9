/**
 * How the CLAT is expressed as a SIIT translator configuration: the NAT64 prefix as pool6 and one
 * EAM entry for its own address pair (a CLAT is one case of SIIT).
 */
import { formatPrefix6 } from '../core/addr/prefix.js';
import type { TranslatorConfig } from '../core/xlat/config.js';
import type { XlatParams } from './ports.js';

export function translatorConfig(p: XlatParams, ipv6Mtu?: number): TranslatorConfig {
  return {
    pool6: formatPrefix6(p.pref64),
    // Router mode, stateless: each LAN subnet mapped 1:1 into the routed prefix (RFC 7757).
    eam: [{ v4: `${p.clat4}/32`, v6: `${p.clat6}/128` }, ...(p.lanEam ?? [])],
    // The host's kernel treats packets from its own address arriving on the TUN as martians, so
    // errors the translator itself sends toward the host come from the RFC 7600 address instead.
    ownV4: p.translator.icmpSrcV4,
    ownV6: p.clat6,
    // Only the CLAT's own IPv4 address (and mapped LAN subnets) is translated: anything else in the
    // TUN is not ours to send.
    v4Sources: 'eam',
    icmpSrcV4: p.translator.icmpSrcV4,
    lowestIpv6Mtu: p.translator.lowestIpv6Mtu,
    // Packets written into the TUN are delivered to this host, never forwarded, so no IPv4 link
    // MTU applies to them. The packet socket may hand over a TCP GRO/TSO super-packet whole (up to
    // 64 KiB) when the batch has no room to split it; translated as one packet, it is still valid.
    ipv4Mtu: 65535,
    ipv6Mtu: ipv6Mtu ?? p.mtu + 28,
    udpZeroChecksum: p.translator.udpZeroChecksum,
    trafficClass: p.translator.trafficClass,
    wkpGlobalOnly: p.translator.wkpGlobalOnly,
    hairpin: false,
  };
}
