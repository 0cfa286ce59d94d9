/**
 * The virtio_net_hdr (linux/virtio_net.h) that a TUN opened with IFF_VNET_HDR, and a packet socket
 * with PACKET_VNET_HDR, put in front of every packet: whether the L4 checksum is left partial and
 * whether the packet is a GSO super-packet. After wireguard-go's `tun/offload_linux.go
 * virtioNetHdr`, kept per batch slot in one Uint8Array of 10 bytes a slot (the shim writes it out
 * as is), fields in host order, i.e. little-endian on the hosts clatd runs on (unlike the packet
 * headers).
 *
 *   flags u8 | gso_type u8 | hdr_len u16 | gso_size u16 | csum_start u16 | csum_offset u16
 */

/** sizeof(struct virtio_net_hdr). */
export const VNET_HDR_LEN = 10;
/** flags: the L4 checksum field holds the pseudo-header sum only (CHECKSUM_PARTIAL). */
export const VNET_F_NEEDS_CSUM = 1;
/** gso_type values. */
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_UDP_L4 = 5;
/** Or-ed into gso_type: the stream uses ECN (CWR only on the first segment). */
export const VNET_GSO_ECN = 0x80;

/** Per-slot headers for a batch of `capacity` slots. */
export function createVnetHeaders(capacity: number): Uint8Array {
  return new Uint8Array(capacity * VNET_HDR_LEN);
}

function u16(v: Uint8Array, at: number): number {
  return v[at] | (v[at + 1] << 8);
}

function put16(v: Uint8Array, at: number, x: number): void {
  v[at] = x & 0xff;
  v[at + 1] = x >>> 8;
}

export function vnetFlags(v: Uint8Array, i: number): number {
  return v[i * VNET_HDR_LEN];
}

export function vnetGsoType(v: Uint8Array, i: number): number {
  return v[i * VNET_HDR_LEN + 1];
}

export function vnetHdrLen(v: Uint8Array, i: number): number {
  return u16(v, i * VNET_HDR_LEN + 2);
}

export function vnetGsoSize(v: Uint8Array, i: number): number {
  return u16(v, i * VNET_HDR_LEN + 4);
}

export function vnetCsumStart(v: Uint8Array, i: number): number {
  return u16(v, i * VNET_HDR_LEN + 6);
}

export function vnetCsumOffset(v: Uint8Array, i: number): number {
  return u16(v, i * VNET_HDR_LEN + 8);
}

/** Sets slot `i`'s header. */
export function vnetSet(
  v: Uint8Array,
  i: number,
  flags: number,
  gsoType: number,
  hdrLen: number,
  gsoSize: number,
  csumStart: number,
  csumOffset: number,
): void {
  const at = i * VNET_HDR_LEN;
  v[at] = flags;
  v[at + 1] = gsoType;
  put16(v, at + 2, hdrLen);
  put16(v, at + 4, gsoSize);
  put16(v, at + 6, csumStart);
  put16(v, at + 8, csumOffset);
}

/** Slot `i` carries a plain packet: complete checksum, no GSO. */
export function vnetClear(v: Uint8Array, i: number): void {
  v.fill(0, i * VNET_HDR_LEN, (i + 1) * VNET_HDR_LEN);
}

/** Copies the header at `src[at, at+10)` (as read from a device) into slot `i`. */
export function vnetCopyIn(v: Uint8Array, i: number, src: Uint8Array, at: number): void {
  const o = i * VNET_HDR_LEN;
  for (let k = 0; k < VNET_HDR_LEN; k++) v[o + k] = src[at + k]; // no subarray: nothing allocated per packet
}
