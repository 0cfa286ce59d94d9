/**
 * The daemon's LanPort over the system layer (router mode, NAT44): clatd's LAN table through
 * src/sys/nft-lan.ts, and the IPv4 `forwarding` of the LAN interfaces and the TUN, each recorded
 * with the host's value before it changes (in `<uplink>:lan.host-settings.json`, beside the
 * uplink's record) and given back when the LANs stop being served, on exit, and after a crash.
 */
import { installLanTable, lanTableName, readLanTable, removeLanTable } from '../../sys/nft-lan.js';
import type { LanPlan, LanPort, LanTraffic } from '../ports.js';
import { HostSettings } from './host-settings.js';

const ROLE = 'lan';

/** Uplinks whose LAN table this process holds: the clean-up of leftovers leaves those alone. */
const live = new Set<string>();

export class SystemLan implements LanPort {
  /** Opened at the first change, so it never holds a record that a clean-up has since given back. */
  #settings: HostSettings | undefined;

  constructor(
    readonly uplink: string,
    /** Where the record lives (the control socket's folder). */
    readonly stateDir: string,
  ) {}

  async install(plan: LanPlan): Promise<void> {
    installLanTable({ uplink: this.uplink, ...plan });
    live.add(this.uplink);
  }

  async forward(ifaces: string[]): Promise<string[]> {
    this.#settings ??= new HostSettings(this.stateDir, this.uplink, ROLE);
    const written: string[] = [];
    for (const i of ifaces) if (this.#settings.setIpv4Conf(i, 'forwarding', 1) === 'written') written.push(i);
    return written;
  }

  async release(): Promise<string[]> {
    const s = this.#settings ?? new HostSettings(this.stateDir, this.uplink, ROLE);
    this.#settings = undefined;
    return s.restore();
  }

  async read(): Promise<{ traffic: Record<string, LanTraffic>; rules: number } | undefined> {
    const r = readLanTable(this.uplink);
    return r && { traffic: r.counters, rules: r.rules };
  }

  async close(): Promise<string[]> {
    const failed: string[] = [];
    // Forwarding first: from then on the kernel forwards nothing from the LANs, table or not.
    try {
      await this.release();
    } catch (e) {
      failed.push(`giving back IPv4 forwarding failed: ${(e as Error).message}`);
    }
    try {
      removeLanTable(this.uplink);
      live.delete(this.uplink);
    } catch (e) {
      failed.push(`removing nft table inet ${lanTableName(this.uplink)} failed: ${(e as Error).message}`);
    }
    return failed;
  }
}

/**
 * What a crashed clatd in router mode left for `uplink`: the forwarding settings (given back with
 * the host's values) and the LAN table. Nothing while this process serves LANs on that uplink.
 */
export function removeLanLeftovers(uplink: string, stateDir: string): string[] {
  if (live.has(uplink)) return [];
  const removed = new HostSettings(stateDir, uplink, ROLE).restore();
  if (removeLanTable(uplink)) removed.push(`nft table inet ${lanTableName(uplink)}`);
  return removed;
}
