/**
 * What a packet loop (loop.ts) is given: a translator, its three sides and its options. Kept apart
 * from the loop so that the devices, the workers and the tests depend on this contract, not on the
 * loop's code.
 */
import type { PacketBatch } from '../core/batch.js';
import type { Drop } from '../core/xlat/drop.js';
import type { PacketIo } from '../sys/io.js';

/** What the loop needs of a translator: `Translator` from src/core/xlat/translator.ts. */
export interface PacketTranslator {
  translate4(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop;
  translate6(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop;
}

export interface LoopIo {
  /** The TUN queue: IPv4 in, translated 64 packets and 46 ICMP errors out. */
  tun: PacketIo;
  /** The packet socket on the uplink: IPv6 in (receive only). */
  packet: PacketIo;
  /** The raw IPv6 socket on the uplink: translated 46 packets and 64 ICMP errors out (send only). */
  raw: PacketIo;
}

export interface LoopOptions {
  /** Slot size of the batches; must hold the largest packet any side delivers plus HEADROOM (loop.ts). */
  stride?: number;
  maxBatchesPerWake?: number;
  /**
   * Most ICMP errors the translator may send per second and direction (RFC 4443 §2.4(f): an IPv6
   * node MUST limit the errors it originates); the excess is discarded and counted
   * (`icmpRateLimited`). 0 turns the limit off.
   */
  icmpErrorsPerSec?: number;
  /** Errors allowed in a burst above the rate (the bucket's size). */
  icmpErrorBurst?: number;
  /** Milliseconds on a monotonic clock; tests pass their own. */
  now?: () => number;
  /**
   * The TUN reads and writes a virtio_net_hdr with each packet (`Tun.vnet`), so it takes TCP
   * super-packets whole (the packet socket's are kept whole for it); `tunTso`: it also hands them
   * over (`Tun.tso`, what the kernel granted).
   */
  tunVnet?: boolean;
  tunTso?: boolean;
}
