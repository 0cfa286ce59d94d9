/**
 * Numbers from the kernel's uapi headers that clatd's netlink code uses: `linux/netlink.h`,
 * `linux/rtnetlink.h`, `linux/if_link.h`, `linux/if_addr.h`, `linux/neighbour.h`, `linux/if.h`.
 * Only what is used; names as in the headers so they can be grepped there.
 */

// linux/netlink.h
export const AF_NETLINK = 16;
export const NETLINK_ROUTE = 0;
export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_DUMP_INTR = 0x10;
/** On a request: GET flags. */
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
/** On a request: NEW flags. */
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
/** On an NLMSG_ERROR reply: extended-ack TLVs follow the quoted request. */
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;
export const NLMSGERR_ATTR_MSG = 1;
export const NLA_TYPE_MASK = 0x3fff;
export const NLA_F_NESTED = 0x8000;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;

// linux/rtnetlink.h: message types
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWQDISC = 36;
export const RTM_DELQDISC = 37;
export const RTM_NEWTFILTER = 44;
export const RTM_DELTFILTER = 45;
export const RTM_GETTFILTER = 46;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_NEWNDUSEROPT = 68;

/** Names for error messages and logs. */
export const RTM_NAMES: Readonly<Record<number, string>> = {
  [RTM_NEWLINK]: 'RTM_NEWLINK',
  [RTM_DELLINK]: 'RTM_DELLINK',
  [RTM_GETLINK]: 'RTM_GETLINK',
  [RTM_NEWADDR]: 'RTM_NEWADDR',
  [RTM_DELADDR]: 'RTM_DELADDR',
  [RTM_GETADDR]: 'RTM_GETADDR',
  [RTM_NEWROUTE]: 'RTM_NEWROUTE',
  [RTM_DELROUTE]: 'RTM_DELROUTE',
  [RTM_GETROUTE]: 'RTM_GETROUTE',
  [RTM_NEWQDISC]: 'RTM_NEWQDISC',
  [RTM_DELQDISC]: 'RTM_DELQDISC',
  [RTM_NEWTFILTER]: 'RTM_NEWTFILTER',
  [RTM_DELTFILTER]: 'RTM_DELTFILTER',
  [RTM_GETTFILTER]: 'RTM_GETTFILTER',
  [RTM_NEWNEIGH]: 'RTM_NEWNEIGH',
  [RTM_DELNEIGH]: 'RTM_DELNEIGH',
  [RTM_NEWNDUSEROPT]: 'RTM_NEWNDUSEROPT',
};

// linux/rtnetlink.h (struct tcmsg, TCA_*), linux/pkt_sched.h, linux/pkt_cls.h: classic tc, for
// attaching the offload programs on kernels without tcx links.
/** sizeof(struct tcmsg): family, 3 pad bytes, ifindex, handle, parent, info. */
export const TCMSG_LEN = 20;
export const TCA_KIND = 1;
export const TCA_OPTIONS = 2;
/** The clsact qdisc's handle and parent, and its two hooks as a filter's parent. */
export const TC_H_CLSACT = 0xfffffff1;
export const TC_H_CLSACT_HANDLE = 0xffff0000;
export const TC_H_INGRESS_HOOK = 0xfffffff2;
export const TC_H_EGRESS_HOOK = 0xfffffff3;
export const TCA_BPF_FD = 6;
export const TCA_BPF_NAME = 7;
export const TCA_BPF_FLAGS = 8;
/** The program's return value is the action (TC_ACT_*): no separate action needed. */
export const TCA_BPF_FLAG_ACT_DIRECT = 1;
/** ETH_P_ALL in network order, as a filter's protocol (the low half of tcm_info). */
export const ETH_P_ALL_BE = 0x0300;

// linux/rtnetlink.h: multicast groups (enum rtnetlink_groups). All are <= 32, so the legacy
// nl_groups bit mask (bit g-1) of sockaddr_nl can join them at bind time.
export const RTNLGRP_LINK = 1;
export const RTNLGRP_NEIGH = 3;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV4_ROUTE = 7;
export const RTNLGRP_IPV6_IFADDR = 9;
export const RTNLGRP_IPV6_ROUTE = 11;
export const RTNLGRP_ND_USEROPT = 20;

/** The nl_groups bit mask for a list of RTNLGRP_* numbers. */
export function groupMask(groups: readonly number[]): number {
  let m = 0;
  for (const g of groups) m |= 1 << (g - 1);
  return m >>> 0;
}

// address families (linux/socket.h)
export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

// linux/if.h: net_device_flags
export const IFF_UP = 0x1;
export const IFF_LOOPBACK = 0x8;
export const IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40;
export const IFF_NOARP = 0x80;
export const IFF_LOWER_UP = 0x10000;

// linux/if_link.h: struct ifinfomsg is 16 bytes
export const IFINFOMSG_LEN = 16;
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_INFO_KIND = 1;

/** RFC 2863 operational states, indexed by IFLA_OPERSTATE's value. */
export const OPERSTATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;
export type OperState = (typeof OPERSTATES)[number];

// linux/if_addr.h: struct ifaddrmsg is 8 bytes
export const IFADDRMSG_LEN = 8;
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_CACHEINFO = 6;
export const IFA_FLAGS = 8;
export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_OPTIMISTIC = 0x04;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_HOMEADDRESS = 0x10;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;
export const IFA_F_MANAGETEMPADDR = 0x100;
export const IFA_F_NOPREFIXROUTE = 0x200;

// linux/rtnetlink.h: struct rtmsg is 12 bytes
export const RTMSG_LEN = 12;
export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_IIF = 3;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_METRICS = 8;
export const RTA_MULTIPATH = 9;
export const RTA_TABLE = 15;
export const RTA_PREF = 20;
/** struct rtnexthop { u16 len; u8 flags; u8 hops; s32 ifindex; } inside RTA_MULTIPATH, then attributes. */
export const RTNEXTHOP_LEN = 8;
export const RTAX_MTU = 2;
export const RTAX_ADVMSS = 8;
export const RT_TABLE_UNSPEC = 0;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;
export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_UNREACHABLE = 7;
export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;
export const RTPROT_UNSPEC = 0;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
export const RTPROT_RA = 9;
/**
 * The rtm_protocol clatd stamps on every route it adds, so that routes left behind by a crashed
 * clatd can be found (`ip route show proto 199`) and removed at the next start. 199 (0xc7) is not
 * taken in iproute2's /etc/iproute2/rt_protos nor in the kernel's RTPROT_* list; a site that wants a
 * name for it can add `199 clatd` to /etc/iproute2/rt_protos.d/clatd.conf.
 */
export const RTPROT_CLATD = 199;
/** rtm_flags: a cached (cloned) route; on RTM_GETROUTE, report the table that matched. */
export const RTM_F_CLONED = 0x200;
export const RTM_F_LOOKUP_TABLE = 0x1000;
/** RTM_GETROUTE: answer with the routing table entry that matched, not the resolved path. */
export const RTM_F_FIB_MATCH = 0x2000;

// linux/neighbour.h: struct nduseroptmsg is 16 bytes, followed by the option bytes, then attributes
export const NDUSEROPTMSG_LEN = 16;
export const NDUSEROPT_SRCADDR = 1;

// linux/neighbour.h: struct ndmsg { u8 family, pad1; u16 pad2; s32 ifindex; u16 state; u8 flags, type; }
export const NDMSG_LEN = 12;
export const NDA_DST = 1;
/** ndm_flags: the neighbour is a router (it sent Router Advertisements or NAs with the R flag). */
export const NTF_ROUTER = 0x80;
