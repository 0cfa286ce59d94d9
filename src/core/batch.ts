/**
 * A batch of packets in one contiguous store: the seam between the system layer (which reads and
 * writes many packets per system call) and the translator (which reads one packet and appends its
 * results). Shaped after wireguard-go's `tun.Device` (`bufs`, `sizes`, `offset`), but strided over
 * one buffer because the native shim fills one Buffer per call.
 *
 *   data: | slot 0 (stride bytes)        | slot 1               | ...
 *         | headroom | packet 0 | unused | headroom | packet 1 | ...
 *                    ^ offs[0]  ^ offs[0] + lens[0]
 *
 * Allocated once per loop; nothing here allocates per packet.
 */

/** Where a translator output goes. */
export const enum Disposition {
  /** Out of the other side: the translated packet. */
  Forward = 0,
  /** Back out of the side it came from: an ICMP error the translator generated. */
  Back = 1,
}

export interface PacketBatch {
  /** `capacity * stride` bytes. */
  readonly data: Uint8Array;
  readonly stride: number;
  readonly capacity: number;
  /** Byte offset of slot 0 in `data` (non-zero when several batches share one arena). */
  readonly base: number;
  /** Absolute offset in `data` where packet i starts (inside slot i). */
  readonly offs: Uint32Array;
  /** Length of packet i; 0 means "nothing here, skip". */
  readonly lens: Uint32Array;
  /** {@link Disposition} of packet i, for translator outputs. */
  readonly disp: Uint8Array;
  /** Packets currently in the batch. */
  count: number;
}

/** Default slot size: a 64 KiB IP packet plus room for the header growth of 4→6 and link framing. */
export const DEFAULT_STRIDE = 65536 + 256;

/**
 * Creates a batch of `capacity` slots. With `data` and `base`, the slots are carved out of a
 * caller's arena starting at byte `base`: an input batch and an output batch over the *same*
 * Uint8Array let the translator move payloads with `copyWithin`, which allocates nothing.
 */
export function createBatch(capacity: number, stride = DEFAULT_STRIDE, data?: Uint8Array, base = 0): PacketBatch {
  const store = data ?? new Uint8Array(capacity * stride);
  if (store.length < base + capacity * stride)
    throw new RangeError('batch store smaller than base + capacity * stride');
  const offs = new Uint32Array(capacity);
  for (let i = 0; i < capacity; i++) offs[i] = base + i * stride;
  return {
    data: store,
    stride,
    capacity,
    base,
    offs,
    lens: new Uint32Array(capacity),
    disp: new Uint8Array(capacity),
    count: 0,
  };
}

/**
 * Appends the packet the translator built at `data[o, o+len)` as the batch's next entry, with
 * disposition `disp`: the one way results enter an output batch. The caller has checked that
 * `count < capacity`.
 */
export function appendPacket(b: PacketBatch, o: number, len: number, disp: Disposition): void {
  const i = b.count;
  b.offs[i] = o;
  b.lens[i] = len;
  b.disp[i] = disp;
  b.count = i + 1;
}

/** Byte offset where slot `i` of `b` begins. */
export function slotStart(b: PacketBatch, i: number): number {
  return b.base + i * b.stride;
}

/**
 * Copies `len` bytes from `src[srcOff]` to `dst[dstOff]`. When both are the same array (the
 * datapath's single arena) this is `copyWithin` and allocates nothing; otherwise it makes one view.
 */
export function copyBytes(src: Uint8Array, srcOff: number, len: number, dst: Uint8Array, dstOff: number): void {
  if (src === dst) dst.copyWithin(dstOff, srcOff, srcOff + len);
  else dst.set(src.subarray(srcOff, srcOff + len), dstOff);
}
