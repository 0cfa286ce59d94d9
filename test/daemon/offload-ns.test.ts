/**
 * KernelOffload's life in a namespace: the programs attach to a real uplink and TUN as tcx links,
 * detach and re-attach (pause, new addresses), and leave nothing behind on close; a device that is
 * not there, or a configuration the programs cannot serve, leaves translation to the workers with
 * one clear log line.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { Logger } from '../../src/daemon/log.js';
import { KernelOffload, type OffloadDevices } from '../../src/daemon/offload.js';
import type { XlatParams } from '../../src/daemon/ports.js';
import { NEED_ROOT, NEED_TCX, type Netns, withNetns } from '../helpers/netns.js';

/** This process's open bpf objects by kind: `link_type` (tcx links), `prog_type`, `map_type`. */
function bpfFds(): { links: number; progs: number; maps: number } {
  const n = { links: 0, progs: 0, maps: 0 };
  for (const fd of readdirSync('/proc/self/fdinfo')) {
    let info = '';
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile (the readdir's own fd)
    }
    if (/^link_type:/m.test(info)) n.links++;
    else if (/^prog_type:/m.test(info)) n.progs++;
    else if (/^map_type:/m.test(info)) n.maps++;
  }
  return n;
}

const params = (clat6: string, pref64 = '2001:db8:64::/96'): XlatParams => ({
  pref64: parsePrefix6(pref64),
  clat4: '192.0.0.4',
  clat6,
  mtu: 1472,
  translator: {
    trafficClass: 'copy',
    udpZeroChecksum: 'compute',
    icmpSrcV4: '192.0.0.8',
    lowestIpv6Mtu: 1280,
    wkpGlobalOnly: true,
  },
});

/**
 * An uplink (veth up0) and a TUN (v4-up0) in `ns`, and `fn` run inside the namespace (bpf(2) finds
 * devices by index in the calling thread's namespace) with the devices' description and a logger
 * whose lines it can read.
 */
function onDevices(
  ns: Netns,
  fn: (dev: OffloadDevices, log: Logger, lines: string[]) => void,
  o: { tunIndex?: number } = {},
): void {
  ns.sh('ip link add up0 type veth peer name peer0; ip link set up0 up; ip tuntap add mode tun name v4-up0');
  const dev: OffloadDevices = {
    uplinkIfindex: ns.ifindex('up0'),
    uplinkName: 'up0',
    linkHeaderLen: 14,
    tunIfindex: o.tunIndex ?? ns.ifindex('v4-up0'),
    tunName: o.tunIndex === undefined ? 'v4-up0' : 'v4-gone',
  };
  const lines: string[] = [];
  const log = new Logger({ level: 'debug', write: (l) => lines.push(l) });
  ns.enter(() => fn(dev, log, lines));
}

describe('kernel offload on real devices', { skip: NEED_ROOT || NEED_TCX }, () => {
  test('attaches, detaches, re-attaches for new addresses, and closes without leftovers', async () => {
    await withNetns((ns) =>
      onDevices(ns, (dev, log, lines) => {
        const before = bpfFds();
        const off = KernelOffload.open(dev, log);
        assert.ok(off instanceof KernelOffload, lines.join('\n'));
        assert.equal(off.describe(), 'detached while translation is paused');
        assert.equal(off.attach(params('2001:db8:1::4')), true, lines.join('\n'));
        assert.equal(off.attached, true);
        assert.equal(off.describe(), 'in use (up0 ingress, v4-up0 egress)');
        assert.deepEqual(bpfFds(), { links: before.links + 2, progs: before.progs + 2, maps: before.maps + 1 });
        assert.match(lines.join('\n'), /translated in the kernel \(up0 ingress, v4-up0 egress\)/);

        off.detach(); // paused
        assert.equal(off.attached, false);
        assert.deepEqual(bpfFds(), { ...before, maps: before.maps + 1 });
        assert.equal(off.attach(params('2001:db8:1::5')), true); // a new address after DAD
        assert.equal(off.attach(params('2001:db8:1::6')), true); // re-attaching replaces, never stacks
        assert.deepEqual(bpfFds(), { links: before.links + 2, progs: before.progs + 2, maps: before.maps + 1 });
        assert.deepEqual(off.counts(), {
          '46': { packets: 0, bytes: 0, failed: 0 },
          '64': { packets: 0, bytes: 0, failed: 0 },
        });

        off.close();
        off.close(); // idempotent
        assert.equal(off.describe(), 'stopped');
        assert.deepEqual(bpfFds(), before);
        assert.equal(off.attach(params('2001:db8:1::7')), false, 'a closed offload stays closed');
        assert.deepEqual(off.counts()['46'], { packets: 0, bytes: 0, failed: 0 }, 'its last counts stay readable');
      }),
    );
  });

  test('a configuration the programs cannot serve is left to the workers, said once', async () => {
    await withNetns((ns) =>
      onDevices(ns, (dev, log, lines) => {
        const off = KernelOffload.open(dev, log);
        assert.ok(off instanceof KernelOffload);
        const p64 = params('2001:db8:1::4', '2001:db8:64::/64');
        assert.equal(off.attach(p64), false);
        assert.equal(off.attach(p64), false);
        const said = lines.filter((l) => /offload/.test(l));
        assert.equal(said.length, 1, said.join('\n'));
        assert.match(said[0], /not used for 2001:db8:1::4: the NAT64 prefix is not a \/96/);
        assert.equal(off.describe(), 'not used for 2001:db8:1::4: the NAT64 prefix is not a /96');
        off.close();
      }),
    );
  });

  test('a device that is gone: a warning naming the call and the device, and no half-attached state', async () => {
    await withNetns((ns) =>
      onDevices(
        ns,
        (dev, log, lines) => {
          const before = bpfFds();
          const off = KernelOffload.open(dev, log);
          assert.ok(off instanceof KernelOffload);
          assert.equal(off.attach(params('2001:db8:1::4')), false);
          assert.equal(off.attached, false);
          assert.match(
            lines.join('\n'),
            /warn .*offload: not used, all packets go through the workers: .*v4-gone: ENODEV/,
          );
          off.close();
          assert.deepEqual(bpfFds(), before);
        },
        { tunIndex: 999 },
      ),
    );
  });

  test('an uplink without a 14-byte link header is not offloaded', () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'info', write: (l) => lines.push(l) });
    const off = KernelOffload.open(
      { uplinkIfindex: 1, uplinkName: 'gre1', linkHeaderLen: 4, tunIfindex: 2, tunName: 'v4-gre1' },
      log,
    );
    assert.equal(off, 'not used: gre1 has a 4-byte link header');
    assert.match(lines.join('\n'), /not used: gre1 has a 4-byte link header/);
  });
});
