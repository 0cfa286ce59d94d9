/**
 * Addresses clatd took off the uplink (a leased --v6 address it serves itself: a kernel owning the
 * address would answer the CLAT's traffic with resets), recorded before each removal in a small
 * file under /run beside the control socket, as host-settings.ts records sysctls:
 *
 *   take:        write {"address", "prefixLen", "flags", lifetimes as deadlines}, then delete it
 *   clean exit:  add it back as it was, with what is left of its lifetimes; delete the record
 *   crash:       the record stays; the next start (or `clatd cleanup`) adds it back first
 *
 * Lifetimes are kept as wall-clock deadlines, so an address put back after a while keeps only what
 * was left of its lease (an expired one is not put back: its lease is over).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  IFA_F_MANAGETEMPADDR,
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  NetlinkError,
  type Rtnl,
} from '../../sys/rtnetlink/index.js';
import { keepRecord, saveRecord } from './record-file.js';

const FOREVER = 0xffffffff;
/** The flags worth giving back: the rest are state the kernel sets itself. */
const KEPT_FLAGS = IFA_F_NODAD | IFA_F_NOPREFIXROUTE | IFA_F_MANAGETEMPADDR;

interface Entry {
  address: string;
  prefixLen: number;
  flags: number;
  /** ms since the epoch when the preferred and valid lifetimes end; undefined: forever. */
  preferredUntil?: number;
  validUntil?: number;
}

export class TakenAddresses {
  readonly file: string;
  #entries: Entry[];

  /** `dir`: where the record lives (the control socket's folder); one file per uplink. */
  constructor(
    dir: string,
    readonly uplink: string,
    private readonly now: () => number = Date.now,
  ) {
    this.file = join(dir, `${uplink}.taken-addresses.json`);
    this.#entries = readRecord(this.file);
  }

  /**
   * Takes `address` off the uplink after recording it. Undefined when it is not configured there.
   * Taking it again (put back by a DHCPv6 client) refreshes the record with its new lifetimes.
   */
  take(rtnl: Rtnl, address: string): Entry | undefined {
    const a = rtnl.addresses({ family: 6, dev: this.uplink }).find((x) => x.address === address);
    if (!a) return undefined;
    const t = this.now();
    const until = (lft: number | undefined) => (lft === undefined || lft === FOREVER ? undefined : t + lft * 1000);
    const entry: Entry = {
      address,
      prefixLen: a.prefixLen,
      flags: a.flags & KEPT_FLAGS,
      preferredUntil: until(a.preferredLft),
      validUntil: until(a.validLft),
    };
    this.#entries = [...this.#entries.filter((e) => e.address !== address), entry];
    this.#save();
    rtnl.deleteAddress(this.uplink, address, a.prefixLen);
    return entry;
  }

  /**
   * Puts back `address` (every recorded one when undefined); returns what it put back, in words.
   * One already there again (a DHCPv6 client renewed it) or whose lease ran out is only forgotten;
   * one that could not be added (other than on a vanished uplink) stays recorded for later.
   */
  giveBack(rtnl: Rtnl, address?: string): string[] {
    const done: string[] = [];
    const left: Entry[] = [];
    for (const e of this.#entries) {
      if (address !== undefined && e.address !== address) {
        left.push(e);
        continue;
      }
      const t = this.now();
      const secs = (until: number | undefined) => (until === undefined ? FOREVER : Math.floor((until - t) / 1000));
      const valid = secs(e.validUntil);
      const what = `${e.address}/${e.prefixLen} on ${this.uplink}`;
      if (valid <= 0) {
        done.push(`${what} not put back: its lease ended while clatd held it`);
        continue;
      }
      try {
        rtnl.addAddress(this.uplink, e.address, e.prefixLen, {
          flags: e.flags,
          preferredLft: Math.max(0, Math.min(secs(e.preferredUntil), valid)),
          validLft: valid,
        });
        done.push(`${what} put back (clatd had taken it off to serve it)`);
      } catch (err) {
        const name = err instanceof NetlinkError ? err.errnoName : undefined;
        if (name === 'EEXIST') done.push(`${what} is there again (put back by another program)`);
        else if (name !== 'ENODEV') left.push(e);
      }
    }
    this.#entries = left;
    keepRecord(this.file, this.#entries, left.length === 0);
    return done;
  }

  #save(): void {
    saveRecord(this.file, this.#entries);
  }
}

function readRecord(file: string): Entry[] {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (!Array.isArray(v)) return [];
    const num = (x: unknown) => (typeof x === 'number' && Number.isSafeInteger(x) ? x : undefined);
    const out: Entry[] = [];
    for (const e of v as Record<string, unknown>[]) {
      if (typeof e?.address !== 'string' || num(e.prefixLen) === undefined) continue;
      out.push({
        address: e.address,
        prefixLen: num(e.prefixLen) as number,
        flags: num(e.flags) ?? 0,
        preferredUntil: num(e.preferredUntil),
        validUntil: num(e.validUntil),
      });
    }
    return out;
  } catch {
    return [];
  }
}
