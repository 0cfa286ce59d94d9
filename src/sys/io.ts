/**
 * The batch-first seam between the system layer and the datapath (after wireguard-go's
 * `tun.Device` and `conn.Bind`): a TUN queue, the packet socket, the raw socket and the test fakes
 * all implement it. The caller owns every buffer; nothing here allocates per packet.
 */
import type { PacketBatch } from '../core/batch.js';

export interface PacketIo {
  /** Most packets one `read` or `write` call moves; fixed for the object's lifetime. */
  readonly batchSize: number;
  /** The file descriptor to poll for readability (a worker's PollSet, or uv_poll in process), or -1 for fakes. */
  readonly fd: number;
  /**
   * Reads up to `batchSize` (or `limit`, when smaller) ready packets into `into`, starting at slot
   * `into.count`; packet i is placed `headroom` bytes into its slot (so 4→6 can grow the header in
   * place). Sets `offs`/`lens`, advances `count`, and returns how many packets it read: 0 means
   * nothing is ready now.
   * Transient errors are counted by the implementation and give 0; a closed device throws `ClosedError`.
   * `vnet` (core/vnet.ts, a header per slot of `into`): where a device with offloads (a `vnet` TUN,
   * a packet socket keeping TCP super-packets) puts each packet's virtio_net_hdr; others ignore it.
   */
  read(into: PacketBatch, headroom: number, limit?: number, vnet?: Uint8Array): number;
  /**
   * Writes the packets of `from` whose `disp` equals `disp` (all packets when `disp` is undefined)
   * and returns how many the kernel accepted. `vnet`: the header of each slot, for a device that
   * takes one (a `vnet` TUN); others ignore it.
   */
  write(from: PacketBatch, disp?: number, vnet?: Uint8Array): number;
  /** Idempotent. */
  close(): void;
}
