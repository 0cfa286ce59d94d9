/**
 * Address mode 5's veth pair: where the CLAT's packets, translated back by the kernel's NAT,
 * reach clatd. The datapath reads the uplink before netfilter, where a packet for a CLAT flow
 * still carries the host's address; only after conntrack has rewritten it to the CLAT's private
 * address (prerouting, at the dstnat priority) can it be told from the host's own. clatd's table
 * then duplicates it out of `x6-<uplink>` (nft `dup`, which sends it as the host's own output, so
 * no forwarding setting is needed) and drops the original; it arrives on the peer `r6-<uplink>`,
 * where the datapath's packet socket reads it and the table drops the kernel's copy.
 *
 *   uplink ──► conntrack de-NAT (host addr → CLAT addr) ──► dup to CLAT addr dev x6-… ──► r6-… ──► clatd
 *   clatd ──► raw socket (src CLAT addr) ──► masquerade on the uplink (CLAT addr → host addr) ──► uplink
 *
 * The pair carries no address (addrgenmode none: no link-local, no RS, no DAD), a /128 route to
 * the CLAT address and a permanent neighbour entry for it (the peer's MAC), so the kernel never
 * solicits. It is not tied to clatd's process: closing deletes it, and so does the clean-up of a
 * crashed run's leftovers (deleting one end deletes both).
 */
import { spawnSync } from 'node:child_process';
import { formatIPv6, parseIPv6 } from '../../core/addr/ipv6.js';
import { ClatdError } from '../../core/errors.js';
import type { Rtnl } from '../../sys/rtnetlink/index.js';
import { deviceName } from '../ports.js';

export class SharedPairError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_SHARED');
    this.name = 'SharedPairError';
  }
}

/** The pair's names for an uplink: `x6-` (the kernel sends into it) and `r6-` (clatd reads it). */
export function sharedPairNames(uplink: string): { tx: string; rx: string } {
  return { tx: deviceName('x6-', uplink), rx: deviceName('r6-', uplink) };
}

/** Runs `ip -batch -` with `lines`; throws {@link SharedPairError} with what ip said. */
function ipBatch(lines: string[], what: string): void {
  const r = spawnSync('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n`, encoding: 'utf8', timeout: 10_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new SharedPairError(
      `${what}: ${code === 'ENOENT' ? 'ip not found: install the iproute2 package' : `running ip failed: ${code}`}`,
    );
  }
  if (r.status !== 0)
    throw new SharedPairError(`${what}: ${(r.stderr || r.stdout || '').trim() || `status ${r.status}`}`);
}

export class SharedPair {
  readonly tx: string;
  readonly rx: string;
  /** The reading end, as the datapath opens its packet socket on it. */
  readonly rxIndex: number;
  #clat6: string;
  #closed = false;

  private constructor(
    private readonly rtnl: Rtnl,
    names: { tx: string; rx: string },
    clat6: string,
  ) {
    this.tx = names.tx;
    this.rx = names.rx;
    this.#clat6 = clat6;
    this.rxIndex = rtnl.index(names.rx);
  }

  /**
   * Creates the pair for `uplink` and points it at `clat6` (a leftover of the same name is
   * replaced). Its MTU is the uplink's, so that whatever the uplink delivered passes the pair.
   */
  static open(rtnl: Rtnl, uplink: string, clat6: string, mtu: number): SharedPair {
    const names = sharedPairNames(uplink);
    removeSharedPair(rtnl, uplink);
    const { tx, rx } = names;
    ipBatch(
      [
        `link add ${tx} mtu ${mtu} type veth peer name ${rx} mtu ${mtu}`,
        `link set dev ${tx} addrgenmode none`,
        `link set dev ${rx} addrgenmode none`,
        `link set dev ${tx} up`,
        `link set dev ${rx} up`,
      ],
      `creating the veth pair ${tx}/${rx}`,
    );
    const pair = new SharedPair(rtnl, names, canonical(clat6));
    try {
      pair.#point(pair.#clat6);
    } catch (e) {
      pair.close();
      throw e;
    }
    return pair;
  }

  get clat6(): string {
    return this.#clat6;
  }

  /** The route and neighbour entry now for `clat6` (the old ones go). */
  retarget(clat6: string): void {
    const next = canonical(clat6);
    if (next === this.#clat6) return;
    const old = this.#clat6;
    this.#point(next);
    this.#clat6 = next;
    try {
      ipBatch([`route del ${old}/128 dev ${this.tx}`, `neigh del ${old} dev ${this.tx}`], 'old CLAT route');
    } catch {
      // Harmless: they point into clatd's own pair, and go with it.
    }
  }

  #point(clat6: string): void {
    const mac = this.rtnl.link(this.rx).lladdr;
    if (mac === undefined) throw new SharedPairError(`${this.rx} has no link-layer address`);
    ipBatch(
      [
        `route replace ${clat6}/128 dev ${this.tx}`,
        `neigh replace ${clat6} lladdr ${mac} dev ${this.tx} nud permanent`,
      ],
      `route to the CLAT address ${clat6} through ${this.tx}`,
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    removeSharedPair(this.rtnl, this.tx);
  }
}

/** Deletes the pair of `uplink` (given as the uplink or its `tx` name) if it exists; says whether it did. */
export function removeSharedPair(rtnl: Rtnl, uplinkOrTx: string): boolean {
  const tx = uplinkOrTx.startsWith('x6-') ? uplinkOrTx : sharedPairNames(uplinkOrTx).tx;
  if (!rtnl.findLink(tx)) return false;
  rtnl.deleteLink(tx);
  return true;
}

function canonical(a: string): string {
  return formatIPv6(parseIPv6(a));
}
