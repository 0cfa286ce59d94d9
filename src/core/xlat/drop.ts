/**
 * Every reason a packet does not come out of the translator (after Jool's JSTAT_* counters). The
 * translator drops only by returning one of these, so each lost packet is counted exactly once,
 * under a name. `DROP_INFO` explains each; a missing explanation is a compile error.
 *
 * Prefixes: `D46_` only for IPv4 input, `D64_` only for IPv6 input, none for both.
 * Values are dense (they index counter arrays); add new reasons before COUNT.
 */
export const enum Drop {
  /** Not a drop: the packet was translated (or answered with an ICMP error counted separately). */
  NONE = 0,
  /** "Can't happen": an internal inconsistency. */
  UNKNOWN,
  /** The output batch had no room for the result. */
  OUTPUT_FULL,
  /** First nibble is neither 4 nor 6, or the packet is shorter than any IP header. */
  BAD_VERSION,

  // ---- IPv4 input (4→6) ----
  /** IPv4 header shorter than 20 bytes, IHL < 5, or longer than the data. */
  D46_TRUNCATED,
  /** Total Length disagrees with the bytes received. */
  D46_BAD_LENGTH,
  /** IPv4 header checksum does not verify. */
  D46_BAD_HEADER_CHECKSUM,
  /** Source address has no IPv6 mapping. */
  D46_SRC_UNMAPPED,
  /** Destination address has no IPv6 mapping. */
  D46_DST_UNMAPPED,
  /** TTL reached zero (answered with ICMPv4 Time Exceeded). */
  D46_TTL_EXPIRED,
  /** An unexpired source route option (answered with ICMPv4 Destination Unreachable, source route failed). */
  D46_SRC_ROUTE,
  /** DF=1 and the translation is larger than the IPv6 MTU (answered with Fragmentation Needed). */
  D46_TOO_BIG,
  /** UDP with checksum zero that cannot or may not be computed (fragment, or policy drop). */
  D46_UDP_ZERO_CHECKSUM,
  /** An ICMPv4 type or code that has no ICMPv6 counterpart. */
  D46_ICMP_UNTRANSLATABLE,
  /** An ICMPv4 message that is too short or whose inner packet cannot be translated. */
  D46_ICMP_BAD_INNER,
  /** An ICMPv4 error about an ICMP error (never answer errors with errors). */
  D46_ICMP_ERROR_IN_ERROR,
  /** L4 header too short for its protocol. */
  D46_L4_TRUNCATED,
  /** Fragmentation would produce more fragments than the output batch holds. */
  D46_TOO_MANY_FRAGMENTS,
  /** A fragmented ICMPv4 message: the ICMPv6 checksum covers a pseudo-header with the whole message length, unknown per fragment. */
  D46_FRAGMENTED_ICMP,
  /** An ICMPv4 error whose checksum does not verify (its ICMPv6 checksum is recomputed, which would hide the damage). */
  D46_ICMP_BAD_CHECKSUM,
  /** The IPv4 source has no EAM entry while only EAM sources are translated (a CLAT translates only its own address). */
  D46_SRC_NOT_EAM,

  // ---- IPv6 input (6→4) ----
  /** IPv6 header shorter than 40 bytes or extension headers run past the data. */
  D64_TRUNCATED,
  /** Payload Length disagrees with the bytes received (or is 0: jumbograms are not translated). */
  D64_BAD_LENGTH,
  /** Source address has no IPv4 mapping. */
  D64_SRC_UNMAPPED,
  /** Destination address has no IPv4 mapping. */
  D64_DST_UNMAPPED,
  /** Hop limit reached zero (answered with ICMPv6 Time Exceeded). */
  D64_HOP_LIMIT_EXPIRED,
  /** A Routing header with Segments Left > 0 (answered with ICMPv6 Parameter Problem, RFC 7915 §5.1). */
  D64_SEGMENTS_LEFT,
  /** An extension header after the Fragment header, or an unrecognised header chain. */
  D64_BAD_EXT_HEADER,
  /** The result is larger than the IPv4 MTU with DF (answered with Packet Too Big). */
  D64_TOO_BIG,
  /** An ICMPv6 type or code that has no ICMPv4 counterpart. */
  D64_ICMP_UNTRANSLATABLE,
  /** An ICMPv6 message that is too short or whose inner packet cannot be translated. */
  D64_ICMP_BAD_INNER,
  /** An ICMPv6 error about an ICMP error. */
  D64_ICMP_ERROR_IN_ERROR,
  /** L4 header too short for its protocol. */
  D64_L4_TRUNCATED,
  /** A fragmented ICMPv6 message (its checksum covers a pseudo-header that cannot be updated per fragment). */
  D64_FRAGMENTED_ICMP,
  /** Hairpinning is off and the destination maps back to the IPv6 side. */
  D64_HAIRPIN_OFF,

  // ---- added later (values are dense and index counters: new reasons go last) ----
  /**
   * IPv4 Protocol 0, 43, 44 or 60: an IPv6 extension header number (Hop-by-Hop, Routing, Fragment,
   * Destination Options). Copied as the IPv6 Next Header it would make the receiver parse the
   * IPv4 payload as that header; no IPv4 host sends them.
   */
  D46_PROTOCOL_IS_V6_EXT,
  /** IPv4 source in 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 or 240.0.0.0/4 (a martian). */
  D46_SRC_MARTIAN,
  /** IPv4 destination in 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 or 240.0.0.0/4 (incl. 255.255.255.255). */
  D46_DST_MARTIAN,
  /** The IPv6 source maps (pool6 or EAM) to a martian IPv4 address. */
  D64_SRC_MARTIAN,
  /** The IPv6 destination maps (pool6 or EAM) to a martian IPv4 address. */
  D64_DST_MARTIAN,
  /** IPv4 Protocol 58: ICMPv6 inside IPv4, which no IPv4 host sends. */
  D46_PROTOCOL_IS_ICMPV6,
  /** IPv6 Next Header 1: ICMPv4 inside IPv6, which no IPv6 host sends. */
  D64_NEXT_HEADER_IS_ICMPV4,

  COUNT,
}

export interface DropInfo {
  /** Stable snake_case name, used in status, metrics and logs. */
  readonly name: string;
  /** What happened and, where useful, what to check. */
  readonly doc: string;
  /** The RFC text that makes it a drop, if any. */
  readonly rfc?: string;
}

export const DROP_INFO = {
  [Drop.NONE]: { name: 'none', doc: 'Not a drop.' },
  [Drop.UNKNOWN]: { name: 'unknown', doc: 'Internal inconsistency in the translator; please report it.' },
  [Drop.OUTPUT_FULL]: { name: 'output_full', doc: 'The output batch had no room left for the translation.' },
  [Drop.BAD_VERSION]: { name: 'bad_version', doc: 'Not an IPv4 or IPv6 packet.' },
  [Drop.D46_TRUNCATED]: { name: 'v4_truncated', doc: 'IPv4 header truncated or IHL invalid.', rfc: 'RFC 791' },
  [Drop.D46_BAD_LENGTH]: { name: 'v4_bad_length', doc: 'IPv4 Total Length does not match the packet.', rfc: 'RFC 791' },
  [Drop.D46_BAD_HEADER_CHECKSUM]: {
    name: 'v4_bad_header_checksum',
    doc: 'IPv4 header checksum does not verify.',
    rfc: 'RFC 791',
  },
  [Drop.D46_SRC_UNMAPPED]: {
    name: 'v4_src_unmapped',
    doc: 'IPv4 source has no IPv6 mapping (check the EAM / CLAT address).',
    rfc: 'RFC 7915 §4.1',
  },
  [Drop.D46_DST_UNMAPPED]: {
    name: 'v4_dst_unmapped',
    doc: 'IPv4 destination has no IPv6 mapping (non-global address under the well-known prefix?).',
    rfc: 'RFC 6052 §3.1',
  },
  [Drop.D46_TTL_EXPIRED]: {
    name: 'v4_ttl_expired',
    doc: 'TTL expired; ICMPv4 Time Exceeded sent back.',
    rfc: 'RFC 7915 §4.1',
  },
  [Drop.D46_SRC_ROUTE]: {
    name: 'v4_source_route',
    doc: 'Unexpired IPv4 source route; ICMPv4 error sent back.',
    rfc: 'RFC 7915 §4.1',
  },
  [Drop.D46_TOO_BIG]: {
    name: 'v4_too_big',
    doc: 'DF set and too big for the IPv6 path; Fragmentation Needed sent back.',
    rfc: 'RFC 7915 §4.1',
  },
  [Drop.D46_UDP_ZERO_CHECKSUM]: {
    name: 'v4_udp_zero_checksum',
    doc: 'IPv4 UDP with zero checksum that cannot be computed (fragment) or policy says drop.',
    rfc: 'RFC 7915 §4.5',
  },
  [Drop.D46_ICMP_UNTRANSLATABLE]: {
    name: 'v4_icmp_untranslatable',
    doc: 'ICMPv4 type/code with no ICMPv6 equivalent.',
    rfc: 'RFC 7915 §4.2',
  },
  [Drop.D46_ICMP_BAD_INNER]: {
    name: 'v4_icmp_bad_inner',
    doc: 'ICMPv4 error too short or its inner packet untranslatable.',
    rfc: 'RFC 7915 §4.3',
  },
  [Drop.D46_ICMP_ERROR_IN_ERROR]: {
    name: 'v4_icmp_error_in_error',
    doc: 'ICMPv4 error about an ICMP error.',
    rfc: 'RFC 1122 §3.2.2',
  },
  [Drop.D46_L4_TRUNCATED]: { name: 'v4_l4_truncated', doc: 'Transport header truncated.' },
  [Drop.D46_TOO_MANY_FRAGMENTS]: { name: 'v4_too_many_fragments', doc: 'Fragmenting would exceed the output batch.' },
  [Drop.D46_FRAGMENTED_ICMP]: {
    name: 'v4_fragmented_icmp',
    doc: 'Fragmented ICMPv4 cannot be translated statelessly (the ICMPv6 pseudo-header needs the whole length).',
    rfc: 'RFC 7915 §4.2',
  },
  [Drop.D46_ICMP_BAD_CHECKSUM]: {
    name: 'v4_icmp_bad_checksum',
    doc: 'ICMPv4 error with a wrong checksum; not translated so the damage is not hidden.',
    rfc: 'RFC 7915 §4.3',
  },
  [Drop.D46_SRC_NOT_EAM]: {
    name: 'v4_src_not_local',
    doc: 'IPv4 source is not the CLAT address (only EAM sources are translated); check what routes other sources into the TUN.',
    rfc: 'RFC 6877 §6.3',
  },
  [Drop.D64_TRUNCATED]: {
    name: 'v6_truncated',
    doc: 'IPv6 header or extension header chain truncated.',
    rfc: 'RFC 8200',
  },
  [Drop.D64_BAD_LENGTH]: {
    name: 'v6_bad_length',
    doc: 'IPv6 Payload Length does not match the packet.',
    rfc: 'RFC 8200',
  },
  [Drop.D64_SRC_UNMAPPED]: {
    name: 'v6_src_unmapped',
    doc: 'IPv6 source has no IPv4 mapping (not under the NAT64 prefix).',
    rfc: 'RFC 7915 §5.1',
  },
  [Drop.D64_DST_UNMAPPED]: {
    name: 'v6_dst_unmapped',
    doc: 'IPv6 destination has no IPv4 mapping (not the CLAT address).',
    rfc: 'RFC 7915 §5.1',
  },
  [Drop.D64_HOP_LIMIT_EXPIRED]: {
    name: 'v6_hop_limit_expired',
    doc: 'Hop limit expired; ICMPv6 Time Exceeded sent back.',
    rfc: 'RFC 7915 §5.1',
  },
  [Drop.D64_SEGMENTS_LEFT]: {
    name: 'v6_segments_left',
    doc: 'Routing header with Segments Left > 0; Parameter Problem sent back.',
    rfc: 'RFC 7915 §5.1',
  },
  [Drop.D64_BAD_EXT_HEADER]: {
    name: 'v6_bad_extension_header',
    doc: 'Extension header after a Fragment header or malformed chain.',
    rfc: 'RFC 7915 §5.1',
  },
  [Drop.D64_TOO_BIG]: {
    name: 'v6_too_big',
    doc: 'Too big for the IPv4 link; Packet Too Big sent back.',
    rfc: 'RFC 7915 §5.1',
  },
  [Drop.D64_ICMP_UNTRANSLATABLE]: {
    name: 'v6_icmp_untranslatable',
    doc: 'ICMPv6 type/code with no ICMPv4 equivalent (e.g. MLD, ND).',
    rfc: 'RFC 7915 §5.2',
  },
  [Drop.D64_ICMP_BAD_INNER]: {
    name: 'v6_icmp_bad_inner',
    doc: 'ICMPv6 error too short or its inner packet untranslatable.',
    rfc: 'RFC 7915 §5.3',
  },
  [Drop.D64_ICMP_ERROR_IN_ERROR]: {
    name: 'v6_icmp_error_in_error',
    doc: 'ICMPv6 error about an ICMP error.',
    rfc: 'RFC 4443 §2.4',
  },
  [Drop.D64_L4_TRUNCATED]: { name: 'v6_l4_truncated', doc: 'Transport header truncated.' },
  [Drop.D64_FRAGMENTED_ICMP]: {
    name: 'v6_fragmented_icmp',
    doc: 'Fragmented ICMPv6 cannot be translated statelessly.',
    rfc: 'RFC 7915 §5.2',
  },
  [Drop.D64_HAIRPIN_OFF]: {
    name: 'v6_hairpin_off',
    doc: 'Destination maps back to IPv6 and hairpinning is off.',
    rfc: 'RFC 7757 §4',
  },
  [Drop.D46_PROTOCOL_IS_V6_EXT]: {
    name: 'v4_protocol_is_v6_extension',
    doc: 'IPv4 Protocol is an IPv6 extension header number (0, 43, 44, 60); as the IPv6 Next Header it would be parsed as that header.',
  },
  [Drop.D46_SRC_MARTIAN]: {
    name: 'v4_src_martian',
    doc: 'IPv4 source is a martian (0.0.0.0/8, 127.0.0.0/8, multicast 224.0.0.0/4 or reserved 240.0.0.0/4): never translated, whatever the pool; silently dropped. Check what sends such packets into the TUN.',
    rfc: 'RFC 7915 §4.1; RFC 1812 §5.3.7',
  },
  [Drop.D46_DST_MARTIAN]: {
    name: 'v4_dst_martian',
    doc: 'IPv4 destination is a martian (0.0.0.0/8, 127.0.0.0/8, multicast 224.0.0.0/4, reserved 240.0.0.0/4 or the limited broadcast 255.255.255.255): not translated into a unicast IPv6 packet.',
    rfc: 'RFC 1812 §5.3.7, §5.3.5.1',
  },
  [Drop.D64_SRC_MARTIAN]: {
    name: 'v6_src_martian',
    doc: 'IPv6 source maps (through pool6 or an EAM entry) to a martian IPv4 address (0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4, 240.0.0.0/4): a spoofed source the IPv4 host must never see.',
    rfc: 'RFC 7915 §5.1; RFC 1812 §5.3.7',
  },
  [Drop.D64_DST_MARTIAN]: {
    name: 'v6_dst_martian',
    doc: 'IPv6 destination maps (through pool6 or an EAM entry) to a martian IPv4 address (0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4, 240.0.0.0/4 incl. 255.255.255.255).',
    rfc: 'RFC 1812 §5.3.7, §5.3.5.1',
  },
  [Drop.D46_PROTOCOL_IS_ICMPV6]: {
    name: 'v4_protocol_is_icmpv6',
    doc: 'IPv4 Protocol 58 (ICMPv6 inside IPv4): copied as the IPv6 Next Header it would let an IPv4 sender inject unchecked ICMPv6 (e.g. Packet Too Big, Neighbor Discovery) into the IPv6 side.',
    rfc: 'RFC 7915 §4.1',
  },
  [Drop.D64_NEXT_HEADER_IS_ICMPV4]: {
    name: 'v6_next_header_is_icmpv4',
    doc: 'IPv6 Next Header 1 (ICMPv4 inside IPv6): copied as the IPv4 Protocol it would reach the IPv4 host as an ICMPv4 message the translator never checked (e.g. a forged Fragmentation Needed).',
    rfc: 'RFC 7915 §5.1',
  },
} as const satisfies Record<Exclude<Drop, Drop.COUNT>, DropInfo>;

/** The name of a drop reason, for status, metrics and the offline tool. */
export function dropName(d: Drop): string {
  return (DROP_INFO as Record<number, DropInfo>)[d]?.name ?? `drop_${d}`;
}
