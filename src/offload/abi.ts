/**
 * Numbers of the tc program ABI (linux/bpf.h, linux/pkt_cls.h): helper ids, `struct __sk_buff`
 * offsets, return codes and flags. All of them are stable kernel ABI.
 */

// Helpers (enum bpf_func_id).
export const MAP_LOOKUP_ELEM = 1;
export const GET_PRANDOM_U32 = 7;
export const SKB_STORE_BYTES = 9;
export const L4_CSUM_REPLACE = 11;
export const REDIRECT = 23;
export const SKB_LOAD_BYTES = 26;
export const CSUM_DIFF = 28;
export const SKB_CHANGE_HEAD = 43;
export const SKB_CHANGE_PROTO = 31;
export const REDIRECT_NEIGH = 152;

// struct __sk_buff
export const SKB_LEN = 0;
export const SKB_PKT_TYPE = 4;
export const SKB_PROTOCOL = 16;
export const SKB_GSO_SEGS = 164;
export const SKB_GSO_SIZE = 176;

// Return codes: TCX_NEXT (= TC_ACT_UNSPEC) hands the packet on unchanged, to the next program or
// the stack; TC_ACT_SHOT drops it; the redirect helpers return TC_ACT_REDIRECT themselves.
export const TCX_NEXT = -1;
export const TC_ACT_SHOT = 2;
export const TC_ACT_REDIRECT = 7;

// Flags.
export const BPF_F_RECOMPUTE_CSUM = 1;
export const BPF_F_INGRESS = 1;
export const BPF_F_PSEUDO_HDR = 0x10;
export const BPF_F_MARK_MANGLED_0 = 0x20;
/** l4_csum_replace: the low bits give the size of the field changed (0: `to` is a checksum difference). */
export const CSUM_SIZE_2 = 2;

/** skb->protocol values as a program reads them (network order in the low 16 bits, on little-endian). */
export const PROTO_IPV6_BE = 0xdd86;
export const PROTO_IP_BE = 0x0008;
/** PACKET_HOST: a unicast frame for this host. */
export const PACKET_HOST = 0;

/** The priority of clatd's classic tc filters (kernels without tcx): "c1a7", unlikely to be taken. */
export const OFFLOAD_TC_PRIO = 0xc1a7;
