/**
 * Encoders and decoders for the rtnetlink family headers clatd uses (`linux/rtnetlink.h`,
 * `linux/if_link.h`, `linux/if_addr.h`, `linux/neighbour.h`): ifinfomsg (links), ifaddrmsg
 * (addresses), rtmsg (routes) and nduseroptmsg (ND options the kernel hands to user space).
 * Addresses are strings here because this is an edge: callers log, compare and configure them.
 * Pure: decoders never throw on received bytes, they return undefined for a message too short.
 */
import { formatIPv4, parseIPv4, readIPv4, writeIPv4 } from '../../core/addr/ipv4.js';
import { formatIPv6, parseIPv6 } from '../../core/addr/ipv6.js';
import {
  AF_INET,
  AF_INET6,
  IFA_ADDRESS,
  IFA_CACHEINFO,
  IFA_F_DADFAILED,
  IFA_F_DEPRECATED,
  IFA_F_NODAD,
  IFA_F_OPTIMISTIC,
  IFA_F_PERMANENT,
  IFA_F_TENTATIVE,
  IFA_FLAGS,
  IFA_LABEL,
  IFA_LOCAL,
  IFADDRMSG_LEN,
  IFF_LOWER_UP,
  IFF_RUNNING,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MTU,
  IFLA_OPERSTATE,
  NDA_DST,
  NDMSG_LEN,
  NDUSEROPT_SRCADDR,
  NDUSEROPTMSG_LEN,
  NTF_ROUTER,
  OPERSTATES,
  type OperState,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTA_DST,
  RTA_GATEWAY,
  RTA_METRICS,
  RTA_MULTIPATH,
  RTA_OIF,
  RTA_PREF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_SRC,
  RTA_TABLE,
  RTAX_ADVMSS,
  RTAX_MTU,
  RTM_F_FIB_MATCH,
  RTM_F_LOOKUP_TABLE,
  RTMSG_LEN,
  RTN_UNICAST,
  RTNEXTHOP_LEN,
  RTPROT_CLATD,
  TCMSG_LEN,
} from './consts.js';
import { attrStr, attrU8, attrU32, LE, MessageBuilder, parseAttrs, view } from './wire.js';

export type Family = 4 | 6;

export function afOf(family: Family): number {
  return family === 4 ? AF_INET : AF_INET6;
}

function familyOf(af: number): Family | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

/** The family of a textual address: IPv6 text always holds a colon. */
export function familyOfText(text: string): Family {
  return text.includes(':') ? 6 : 4;
}

/** Address text to wire bytes. Throws AddressError on bad text. */
export function addrBytes(family: Family, text: string): Uint8Array {
  if (family === 6) return parseIPv6(text);
  const b = new Uint8Array(4);
  writeIPv4(b, 0, parseIPv4(text));
  return b;
}

/** Wire bytes to address text, or undefined when the length does not fit the family. */
export function addrText(family: Family, b: Uint8Array | undefined): string | undefined {
  if (!b) return undefined;
  if (family === 4) return b.length === 4 ? formatIPv4(readIPv4(b, 0)) : undefined;
  return b.length === 16 ? formatIPv6(b) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Links: struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; }

export interface Link {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
  /** IFF_* flags. */
  readonly flags: number;
  /** Administratively up (IFF_UP). */
  readonly up: boolean;
  /** IFF_RUNNING: up and the carrier is there. */
  readonly running: boolean;
  readonly operstate: OperState;
  /** ARPHRD_* link type (1 ether, 65534 none for TUN, 772 loopback). */
  readonly linkType: number;
  /** IFLA_INFO_KIND for virtual links (`veth`, `dummy`, `tun`), undefined for hardware. */
  readonly kind?: string;
  /** Link-layer address as colon-separated hex, when the link has one. */
  readonly lladdr?: string;
}

export interface LinkChange {
  readonly index: number;
  /** Name for a lookup by name (index 0) or a rename. */
  readonly name?: string;
  /** Set or clear IFF_UP. */
  readonly up?: boolean;
  readonly mtu?: number;
}

export function encodeLink(type: number, flags: number, c: LinkChange): MessageBuilder {
  const m = new MessageBuilder(type, flags);
  const h = m.header(IFINFOMSG_LEN);
  h.setInt32(4, c.index, LE);
  if (c.up !== undefined) {
    h.setUint32(8, c.up ? IFF_UP : 0, LE);
    h.setUint32(12, IFF_UP, LE);
  }
  if (c.name !== undefined) m.str(IFLA_IFNAME, c.name);
  if (c.mtu !== undefined) m.u32(IFLA_MTU, c.mtu);
  return m;
}

export function decodeLink(body: Uint8Array): Link | undefined {
  if (body.length < IFINFOMSG_LEN) return undefined;
  const dv = view(body);
  const flags = dv.getUint32(8, LE);
  const a = parseAttrs(body, IFINFOMSG_LEN);
  const info = a.get(IFLA_LINKINFO);
  const ll = a.get(IFLA_ADDRESS);
  const op = attrU8(a.get(IFLA_OPERSTATE)) ?? 0;
  return {
    index: dv.getInt32(4, LE),
    name: attrStr(a.get(IFLA_IFNAME)) ?? '',
    mtu: attrU32(a.get(IFLA_MTU)) ?? 0,
    flags,
    up: (flags & IFF_UP) !== 0,
    running: (flags & IFF_RUNNING) !== 0 && (flags & IFF_LOWER_UP) !== 0,
    operstate: OPERSTATES[op] ?? 'unknown',
    linkType: dv.getUint16(2, LE),
    kind: info ? attrStr(parseAttrs(info).get(IFLA_INFO_KIND)) : undefined,
    lladdr: ll && ll.length > 0 ? Array.from(ll, (x) => x.toString(16).padStart(2, '0')).join(':') : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Addresses: struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }

export interface Address {
  readonly family: Family;
  readonly ifindex: number;
  /** IFA_LOCAL when present (IPv4: the interface's own address), else IFA_ADDRESS. */
  readonly address: string;
  readonly prefixLen: number;
  /** IFA_F_* flags, from IFA_FLAGS when the kernel sends it (it holds the bits above 0xff). */
  readonly flags: number;
  readonly tentative: boolean;
  readonly deprecated: boolean;
  readonly permanent: boolean;
  readonly dadFailed: boolean;
  readonly optimistic: boolean;
  readonly noDad: boolean;
  /** RT_SCOPE_*: 0 global, 253 link, 254 host. */
  readonly scope: number;
  readonly label?: string;
  /** Seconds; 0xffffffff is forever. */
  readonly preferredLft?: number;
  readonly validLft?: number;
}

export interface AddressSpec {
  readonly family: Family;
  readonly ifindex: number;
  readonly address: string;
  readonly prefixLen: number;
  /** IFA_F_* flags (IFA_F_NODAD to skip DAD for an IPv6 address). */
  readonly flags?: number;
  readonly scope?: number;
  /** Lifetimes in seconds (IFA_CACHEINFO); both default to forever (0xffffffff). */
  readonly preferredLft?: number;
  readonly validLft?: number;
}

export function encodeAddress(type: number, flags: number, s: AddressSpec): MessageBuilder {
  const m = new MessageBuilder(type, flags);
  const h = m.header(IFADDRMSG_LEN);
  h.setUint8(0, afOf(s.family));
  h.setUint8(1, s.prefixLen);
  h.setUint8(2, (s.flags ?? 0) & 0xff);
  h.setUint8(3, s.scope ?? RT_SCOPE_UNIVERSE);
  h.setUint32(4, s.ifindex, LE);
  const bytes = addrBytes(s.family, s.address);
  // IPv4 wants IFA_LOCAL (the address) and IFA_ADDRESS (the peer, equal on non-point-to-point
  // links); IPv6 uses IFA_ADDRESS alone, as iproute2 sends it.
  if (s.family === 4) m.attr(IFA_LOCAL, bytes);
  m.attr(IFA_ADDRESS, bytes);
  if ((s.flags ?? 0) > 0xff) m.u32(IFA_FLAGS, s.flags ?? 0);
  if (s.preferredLft !== undefined || s.validLft !== undefined) {
    // struct ifa_cacheinfo { u32 ifa_prefered, ifa_valid, cstamp, tstamp }: the kernel reads the first two.
    const ci = new Uint8Array(16);
    const dv = view(ci);
    dv.setUint32(0, s.preferredLft ?? 0xffffffff, LE);
    dv.setUint32(4, s.validLft ?? 0xffffffff, LE);
    m.attr(IFA_CACHEINFO, ci);
  }
  return m;
}

export function decodeAddress(body: Uint8Array): Address | undefined {
  if (body.length < IFADDRMSG_LEN) return undefined;
  const dv = view(body);
  const family = familyOf(dv.getUint8(0));
  if (family === undefined) return undefined;
  const a = parseAttrs(body, IFADDRMSG_LEN);
  const address = addrText(family, a.get(IFA_LOCAL)) ?? addrText(family, a.get(IFA_ADDRESS));
  if (address === undefined) return undefined;
  const flags = attrU32(a.get(IFA_FLAGS)) ?? dv.getUint8(2);
  const ci = a.get(IFA_CACHEINFO);
  const civ = ci && ci.length >= 8 ? view(ci) : undefined;
  return {
    family,
    ifindex: dv.getUint32(4, LE),
    address,
    prefixLen: dv.getUint8(1),
    flags,
    tentative: (flags & IFA_F_TENTATIVE) !== 0,
    deprecated: (flags & IFA_F_DEPRECATED) !== 0,
    permanent: (flags & IFA_F_PERMANENT) !== 0,
    dadFailed: (flags & IFA_F_DADFAILED) !== 0,
    optimistic: (flags & IFA_F_OPTIMISTIC) !== 0,
    noDad: (flags & IFA_F_NODAD) !== 0,
    scope: dv.getUint8(3),
    label: attrStr(a.get(IFA_LABEL)),
    preferredLft: civ?.getUint32(0, LE),
    validLft: civ?.getUint32(4, LE),
  };
}

/** The name of an RT_SCOPE_* value as `ip` prints it (`global`, `site`, `link`, `host`, `nowhere`). */
export function scopeName(scope: number): string {
  switch (scope) {
    case 0:
      return 'global';
    case 200:
      return 'site';
    case 253:
      return 'link';
    case 254:
      return 'host';
    case 255:
      return 'nowhere';
    default:
      return String(scope);
  }
}

// ---------------------------------------------------------------------------------------------
// Routes: struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }

export interface Route {
  readonly family: Family;
  /** Destination network address ('0.0.0.0' or '::' for a default route). */
  readonly dst: string;
  readonly dstLen: number;
  /** Full routing table number (RTA_TABLE when present; 254 is main). */
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  /** RTN_*: 1 unicast, 2 local, 7 unreachable... */
  readonly type: number;
  readonly flags: number;
  readonly oif?: number;
  readonly gateway?: string;
  /** Preferred source address (for RTM_GETROUTE: the source the kernel would pick). */
  readonly prefsrc?: string;
  /** RTA_PRIORITY, the metric. */
  readonly priority?: number;
  /** RTAX_MTU from RTA_METRICS. */
  readonly mtu?: number;
  /** RTAX_ADVMSS from RTA_METRICS. */
  readonly advmss?: number;
  /** RTA_PREF, IPv6 router preference. */
  readonly pref?: number;
  /**
   * The next hops of a multipath route (RTA_MULTIPATH; e.g. an IPv6 default route through two
   * routers). `oif` and `gateway` above then come from the first one.
   */
  readonly nexthops?: readonly NextHop[];
}

export interface NextHop {
  readonly oif: number;
  readonly gateway?: string;
  /** rtnh_hops + 1, as `ip route` prints it. */
  readonly weight: number;
}

/** Decodes the rtnexthop list of RTA_MULTIPATH; stops at a malformed entry. */
function decodeNextHops(family: Family, b: Uint8Array): NextHop[] {
  const out: NextHop[] = [];
  const dv = view(b);
  let off = 0;
  while (off + RTNEXTHOP_LEN <= b.length) {
    const len = dv.getUint16(off, LE);
    if (len < RTNEXTHOP_LEN || off + len > b.length) break;
    const a = parseAttrs(b.subarray(off, off + len), RTNEXTHOP_LEN);
    out.push({ oif: dv.getInt32(off + 4, LE), gateway: addrText(family, a.get(RTA_GATEWAY)), weight: b[off + 3] + 1 });
    off += (len + 3) & ~3;
  }
  return out;
}

export interface RouteSpec {
  readonly family: Family;
  readonly dst: string;
  readonly dstLen: number;
  readonly oif?: number;
  readonly gateway?: string;
  readonly prefsrc?: string;
  readonly table?: number;
  /** Defaults to RTPROT_CLATD so clatd can find its own routes after a crash. */
  readonly protocol?: number;
  /** Defaults to link scope for an IPv4 route without a gateway (as `ip route` does), else universe. */
  readonly scope?: number;
  readonly type?: number;
  readonly priority?: number;
  readonly mtu?: number;
  readonly advmss?: number;
}

/** Encodes RTM_NEWROUTE / RTM_DELROUTE. */
export function encodeRoute(type: number, flags: number, s: RouteSpec): MessageBuilder {
  const m = new MessageBuilder(type, flags);
  const h = m.header(RTMSG_LEN);
  const table = s.table ?? RT_TABLE_MAIN;
  h.setUint8(0, afOf(s.family));
  h.setUint8(1, s.dstLen);
  h.setUint8(4, table < 256 ? table : 0);
  h.setUint8(5, s.protocol ?? RTPROT_CLATD);
  h.setUint8(6, s.scope ?? (s.family === 4 && s.gateway === undefined ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE));
  h.setUint8(7, s.type ?? RTN_UNICAST);
  if (s.dstLen > 0) m.attr(RTA_DST, addrBytes(s.family, s.dst));
  if (table >= 256) m.u32(RTA_TABLE, table);
  if (s.oif !== undefined) m.u32(RTA_OIF, s.oif);
  if (s.gateway !== undefined) m.attr(RTA_GATEWAY, addrBytes(s.family, s.gateway));
  if (s.prefsrc !== undefined) m.attr(RTA_PREFSRC, addrBytes(s.family, s.prefsrc));
  if (s.priority !== undefined) m.u32(RTA_PRIORITY, s.priority);
  if (s.mtu !== undefined || s.advmss !== undefined) {
    // RTA_METRICS is a nest of RTAX_* u32 attributes (iproute2 does not set NLA_F_NESTED on it,
    // and the kernel accepts either).
    m.begin(RTA_METRICS);
    if (s.mtu !== undefined) m.u32(RTAX_MTU, s.mtu);
    if (s.advmss !== undefined) m.u32(RTAX_ADVMSS, s.advmss);
    m.end();
  }
  return m;
}

/**
 * Encodes RTM_GETROUTE for one destination address (a host route lookup, like `ip route get`),
 * from `o.src` when given (source-based policy rules apply); `o.fibMatch` asks for the table entry
 * that matched (`ip route get fibmatch`: a multipath route's every next hop) instead of one path.
 */
export function encodeRouteGet(
  type: number,
  flags: number,
  family: Family,
  dst: string,
  oif?: number,
  o: { src?: string; fibMatch?: boolean } = {},
): MessageBuilder {
  const m = new MessageBuilder(type, flags);
  const h = m.header(RTMSG_LEN);
  h.setUint8(0, afOf(family));
  h.setUint8(1, family === 4 ? 32 : 128);
  // Without RTM_F_LOOKUP_TABLE the kernel reports table main whatever table matched.
  h.setUint32(8, RTM_F_LOOKUP_TABLE | (o.fibMatch ? RTM_F_FIB_MATCH : 0), LE);
  m.attr(RTA_DST, addrBytes(family, dst));
  if (o.src !== undefined) {
    h.setUint8(2, family === 4 ? 32 : 128);
    m.attr(RTA_SRC, addrBytes(family, o.src));
  }
  if (oif !== undefined) m.u32(RTA_OIF, oif);
  return m;
}

export function decodeRoute(body: Uint8Array): Route | undefined {
  if (body.length < RTMSG_LEN) return undefined;
  const dv = view(body);
  const family = familyOf(dv.getUint8(0));
  if (family === undefined) return undefined;
  const a = parseAttrs(body, RTMSG_LEN);
  const metrics = a.get(RTA_METRICS);
  const mx = metrics ? parseAttrs(metrics) : undefined;
  const mp = a.get(RTA_MULTIPATH);
  const nexthops = mp ? decodeNextHops(family, mp) : undefined;
  return {
    family,
    dst: addrText(family, a.get(RTA_DST)) ?? (family === 4 ? '0.0.0.0' : '::'),
    dstLen: dv.getUint8(1),
    table: attrU32(a.get(RTA_TABLE)) ?? dv.getUint8(4),
    protocol: dv.getUint8(5),
    scope: dv.getUint8(6),
    type: dv.getUint8(7),
    flags: dv.getUint32(8, LE),
    oif: attrU32(a.get(RTA_OIF)) ?? nexthops?.[0]?.oif,
    gateway: addrText(family, a.get(RTA_GATEWAY)) ?? nexthops?.[0]?.gateway,
    prefsrc: addrText(family, a.get(RTA_PREFSRC)),
    priority: attrU32(a.get(RTA_PRIORITY)),
    mtu: attrU32(mx?.get(RTAX_MTU)),
    advmss: attrU32(mx?.get(RTAX_ADVMSS)),
    pref: attrU8(a.get(RTA_PREF)),
    nexthops,
  };
}

/** A one-byte-family dump request (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE with NLM_F_DUMP). */
export function encodeDump(type: number, flags: number, af: number, headerLen: number): MessageBuilder {
  const m = new MessageBuilder(type, flags);
  m.header(headerLen).setUint8(0, af);
  return m;
}

// ---------------------------------------------------------------------------------------------
// ND user options: struct nduseroptmsg { u8 family; u8 pad1; u16 opts_len; s32 ifindex;
// u8 icmp_type; u8 icmp_code; u16 pad2; u32 pad3; }, then opts_len bytes of options, then attributes.

export interface NdUserOption {
  readonly ifindex: number;
  /** ICMPv6 type of the carrying message (134 for a Router Advertisement). */
  readonly icmpType: number;
  readonly icmpCode: number;
  /** The raw ND option(s), type and length bytes included (RFC 4861 §4.6); a copy. */
  readonly options: Uint8Array;
  /** The router's source address (NDUSEROPT_SRCADDR), when sent. */
  readonly source?: string;
}

export function decodeNdUserOption(body: Uint8Array): NdUserOption | undefined {
  if (body.length < NDUSEROPTMSG_LEN) return undefined;
  const dv = view(body);
  const optsLen = dv.getUint16(2, LE);
  if (NDUSEROPTMSG_LEN + optsLen > body.length) return undefined;
  const attrsAt = NDUSEROPTMSG_LEN + ((optsLen + 3) & ~3);
  const a = parseAttrs(body, Math.min(attrsAt, body.length));
  return {
    ifindex: dv.getInt32(4, LE),
    icmpType: dv.getUint8(8),
    icmpCode: dv.getUint8(9),
    options: body.slice(NDUSEROPTMSG_LEN, NDUSEROPTMSG_LEN + optsLen),
    source: addrText(6, a.get(NDUSEROPT_SRCADDR)),
  };
}

/** The tc message header: device, handle, parent and (for filters) priority and protocol. */
export interface TcSpec {
  ifindex: number;
  handle: number;
  parent: number;
  /** Filters: priority << 16 | protocol (network order). */
  info: number;
}

export function encodeTc(type: number, flags: number, t: TcSpec): MessageBuilder {
  const m = new MessageBuilder(type, flags);
  const h = m.header(TCMSG_LEN);
  h.setInt32(4, t.ifindex, LE);
  h.setUint32(8, t.handle >>> 0, LE);
  h.setUint32(12, t.parent >>> 0, LE);
  h.setUint32(16, t.info >>> 0, LE);
  return m;
}

/** A neighbour table entry (RTM_NEWNEIGH / RTM_DELNEIGH). */
export interface Neighbour {
  readonly family: Family;
  readonly ifindex: number;
  readonly address: string;
  /** NUD_* state bits. */
  readonly state: number;
  /** It is a router (NTF_ROUTER). */
  readonly router: boolean;
}

export function decodeNeighbour(body: Uint8Array): Neighbour | undefined {
  if (body.length < NDMSG_LEN) return undefined;
  const dv = view(body);
  const family = familyOf(dv.getUint8(0));
  if (family === undefined) return undefined;
  const address = addrText(family, parseAttrs(body, NDMSG_LEN).get(NDA_DST));
  if (address === undefined) return undefined;
  return {
    family,
    ifindex: dv.getInt32(4, LE),
    address,
    state: dv.getUint16(8, LE),
    router: (dv.getUint8(10) & NTF_ROUTER) !== 0,
  };
}
