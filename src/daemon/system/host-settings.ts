/**
 * Host-wide settings clatd changes (the uplink's `proxy_delay`; in router mode the IPv4
 * `forwarding` of the LAN interfaces and the TUN, in a record of their own), recorded before each change
 * in a small file under /run (beside the control socket), with the value the host had:
 *
 *   first start:  read 80, write the record {"eth0/proxy_delay": 80}, set 0
 *   clean exit:   set 80 back, delete the record
 *   crash:        the record stays; the next start (or `clatd cleanup`) sets 80 back before anything
 *
 * So the value given back is always the host's own, never one clatd set itself (reading the live
 * value after a crash would find clatd's 0). The record is written before the setting changes, so
 * no crash between the two can lose it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Ipv4ConfKey,
  type Ipv6ConfKey,
  readIpv4Conf,
  readIpv6Conf,
  SysctlError,
  writeIpv4Conf,
  writeIpv6Conf,
} from '../../sys/sysctl.js';
import { keepRecord, saveRecord } from './record-file.js';

type Record_ = Record<string, number>;

/** Record keys: `IF/KEY` for an IPv6 setting, `IF/ipv4.KEY` for an IPv4 one. */
const V4 = 'ipv4.';

/** What a set did: nothing to do, wrote the value, or could not. */
export type SetResult = 'same' | 'written' | 'failed';

export class HostSettings {
  readonly file: string;
  #record: Record_;

  /**
   * `dir`: where the record lives (the control socket's folder); one file per uplink, and one per
   * `role` of it (`lan`: `eth0:lan.host-settings.json`; no interface name holds a ':').
   */
  constructor(dir: string, uplink: string, role?: string) {
    this.file = join(dir, `${uplink}${role === undefined ? '' : `:${role}`}.host-settings.json`);
    this.#record = readRecord(this.file);
  }

  /** Whether anything is recorded (so given back by {@link restore}). */
  get empty(): boolean {
    return Object.keys(this.#record).length === 0;
  }

  /**
   * Sets the IPv4 setting KEY of IFACE (net.ipv4.conf) to `value`, recording the host's value
   * first. `same`: it already had that value; `failed`: the interface is gone or /proc/sys is
   * read-only.
   */
  setIpv4Conf(iface: string, key: Ipv4ConfKey, value: number): SetResult {
    const id = `${iface}/${V4}${key}`;
    try {
      const old = readIpv4Conf(iface, key);
      if (old === value) return 'same';
      if (this.#record[id] === undefined) {
        this.#record[id] = old;
        this.#save();
      }
      writeIpv4Conf(iface, key, value);
      return 'written';
    } catch {
      return 'failed';
    }
  }

  /**
   * Sets the IPv6 setting KEY of IFACE (net.ipv6.conf or .neigh) to `value`, recording the host's value first. Best effort: a
   * read-only /proc/sys leaves the setting, not clatd, behind. Returns false when it could not.
   */
  setIpv6Conf(iface: string, key: Ipv6ConfKey, value: number): boolean {
    const id = `${iface}/${key}`;
    try {
      const old = readIpv6Conf(iface, key);
      if (old === value && this.#record[id] === undefined) return true;
      if (this.#record[id] === undefined) {
        this.#record[id] = old;
        this.#save();
      }
      writeIpv6Conf(iface, key, value);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Gives back every recorded setting; returns what it gave back, in words. The record is deleted
   * once nothing is left in it; a setting that could not be written (other than for a vanished
   * interface) stays recorded, for the next start or `clatd cleanup` to give back.
   */
  restore(): string[] {
    const done: string[] = [];
    const left: Record_ = {};
    for (const [id, v] of Object.entries(this.#record)) {
      const [iface, key] = id.split('/') as [string, string];
      try {
        if (key.startsWith(V4)) writeIpv4Conf(iface, key.slice(V4.length) as Ipv4ConfKey, v);
        else writeIpv6Conf(iface, key as Ipv6ConfKey, v);
        const what = key.startsWith(V4) ? `IPv4 ${key.slice(V4.length)}` : key;
        done.push(`${what} of ${iface} back to ${v} (the host's value before clatd)`);
      } catch (e) {
        // The interface is gone, and its setting with it; anything else is tried again later.
        if (!(e instanceof SysctlError && e.errnoName === 'ENOENT')) left[id] = v;
      }
    }
    this.#record = left;
    keepRecord(this.file, this.#record, Object.keys(left).length === 0);
    return done;
  }

  #save(): void {
    saveRecord(this.file, this.#record);
  }
}

function readRecord(file: string): Record_ {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (v === null || typeof v !== 'object') return {};
    const out: Record_ = {};
    for (const [k, n] of Object.entries(v))
      if (Number.isSafeInteger(n) && /^[^/]+\/(ipv4\.)?[a-z_]+$/.test(k)) out[k] = n as number;
    return out;
  } catch {
    return {};
  }
}
