/**
 * The stateless IP/ICMP translator (RFC 7915): the only face of src/core/xlat/. It picks the
 * direction by the IP version and appends 0..n packets to the caller's output batch, each marked
 * Forward (out of the other side) or Back (an ICMP error it generated, out of the side the packet
 * came from), or returns a Drop reason.
 */
import { createBatch, type PacketBatch } from '../batch.js';
import { translate4to6 } from './4to6.js';
import { translate6to4 } from './6to4.js';
import { type ResolvedConfig, resolveConfig, type TranslatorConfig } from './config.js';
import { Drop, dropName } from './drop.js';
import { XlatState } from './state.js';

export interface TranslateResult {
  forward: Uint8Array[];
  back: Uint8Array[];
  drop?: string;
}

export class Translator {
  /** This translator's configuration, memo and scratch: made once, reused for every packet. */
  readonly #state: XlatState;

  constructor(config: TranslatorConfig) {
    this.#state = new XlatState(resolveConfig(config));
  }

  get config(): ResolvedConfig {
    return this.#state.config;
  }

  /** Swaps in a new configuration (validated first; the old one stays on error). */
  reconfigure(config: TranslatorConfig): void {
    this.#state.configure(resolveConfig(config));
  }

  /**
   * Translates the packet at `data[off, off+len)` and appends the results to `out`. Allocation-free
   * when `data === out.data` (one arena). Returns Drop.NONE when something was appended, otherwise
   * the reason; a packet answered with a generated ICMP error returns its drop reason too, with the
   * error appended as Back.
   */
  translatePacket(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop {
    if (len < 1) return Drop.BAD_VERSION;
    const v = data[off] >>> 4;
    if (v === 4) return translate4to6(this.#state, data, off, len, out);
    if (v === 6) return translate6to4(this.#state, data, off, len, out);
    return Drop.BAD_VERSION;
  }

  /** IPv4 input only (the TUN side); anything else is BAD_VERSION. */
  translate4(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop {
    if (len < 1 || data[off] >>> 4 !== 4) return Drop.BAD_VERSION;
    return translate4to6(this.#state, data, off, len, out);
  }

  /** IPv6 input only (the uplink side); anything else is BAD_VERSION. */
  translate6(data: Uint8Array, off: number, len: number, out: PacketBatch): Drop {
    if (len < 1 || data[off] >>> 4 !== 6) return Drop.BAD_VERSION;
    return translate6to4(this.#state, data, off, len, out);
  }

  /** Convenience form for tools and tests (allocates). */
  translate(packet: Uint8Array): TranslateResult {
    const out = createBatch(64, 65536 + 256);
    const d = this.translatePacket(packet, 0, packet.length, out);
    const res: TranslateResult = { forward: [], back: [] };
    for (let i = 0; i < out.count; i++) {
      const p = out.data.slice(out.offs[i], out.offs[i] + out.lens[i]);
      (out.disp[i] === 1 ? res.back : res.forward).push(p);
    }
    if (d !== Drop.NONE) res.drop = dropName(d);
    return res;
  }
}
