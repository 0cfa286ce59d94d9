/**
 * The typed arrays of the shim's batched calls, handed over once instead of on every call: the
 * shim keeps them as a numbered set (native.bind), and readBatch, recvBatch, writeBatch, sendBatch
 * and pollMany take that number. Why (measured, bench/README.md): Node-API checks a typed-array
 * argument by reaching into several V8 objects, and after an idle gap each of them is a cache and
 * TLB miss — about 1 µs per array per call, and a ping's round trip passed nineteen.
 *
 * A device keeps one {@link BatchBinding} per direction: the batch it is handed is bound on first
 * use and bound again only when another batch comes (the datapath hands each device the same one
 * for its whole life); the device's close releases it.
 */
import type { PacketBatch } from '../core/batch.js';
import { native } from './addon.js';
import { check } from './errors.js';

/** What a bound set may hold. */
export type BindableArray = Uint8Array | Uint32Array | Int32Array;

/** Binds `arrays` (null: an empty slot) as one set, for as long as it is not unbound: its number. */
export function bindArrays(what: string, ...arrays: (BindableArray | null)[]): number {
  return check(native.bind(...arrays), 'bind', what);
}

export class BatchBinding {
  #batch: PacketBatch | undefined = undefined;
  #id = -1;

  /**
   * `extras` follow the batch's four arrays (data, offs, lens, disp) in the set: a write's stats
   * (Int32Array(2)), a send's sockaddrs. `what` names the owner in errors.
   */
  constructor(
    readonly what: string,
    readonly extras: readonly (BindableArray | null)[] = [],
  ) {}

  /** The set's number for `b`, binding it when it is not the batch bound last. */
  idFor(b: PacketBatch): number {
    return b === this.#batch ? this.#id : this.#bind(b);
  }

  /** Lets the shim drop its references. Idempotent; a later idFor binds again. */
  release(): void {
    if (this.#id >= 0) native.unbind(this.#id);
    this.#id = -1;
    this.#batch = undefined;
  }

  #bind(b: PacketBatch): number {
    this.release();
    this.#id = bindArrays(this.what, b.data, b.offs, b.lens, b.disp, ...this.extras);
    this.#batch = b;
    return this.#id;
  }
}
