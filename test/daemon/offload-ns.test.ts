/**
 * KernelOffload's life in a namespace: the programs attach to a real uplink and TUN as tcx links,
 * detach and re-attach (pause, new addresses), and leave nothing behind on close; a device that is
 * not there, or a configuration the programs cannot serve, leaves translation to the workers with
 * one clear log line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIPv6 } from '../../src/core/addr/ipv6.js';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { Logger } from '../../src/daemon/log.js';
import { KernelOffload, type OffloadDevices } from '../../src/daemon/offload.js';
import type { XlatParams } from '../../src/daemon/ports.js';
import { SystemPlumbing } from '../../src/daemon/system/index.js';
import { OFFLOAD_TC_PRIO } from '../../src/offload/abi.js';
import { Asm, R0 } from '../../src/offload/asm.js';
import { native } from '../../src/sys/addon.js';
import { closeBpf, loadTcProgram } from '../../src/sys/ebpf.js';
import { openRtnl } from '../../src/sys/rtnetlink/index.js';
import { Tun } from '../../src/sys/tun.js';
import { NEED_ROOT, NEED_TCX, type Netns, withNetns, withVethPair } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';
import { checksumProblems } from '../pkt/build.js';

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

describe('kernel offload on real devices', { skip: NEED_ROOT }, () => {
  test('attaches, detaches, re-attaches for new addresses, and closes without leftovers', {
    skip: NEED_TCX,
  }, async () => {
    await withNetns((ns) =>
      onDevices(ns, (dev, log, lines) => {
        const before = bpfFds();
        const off = KernelOffload.open(dev, log);
        assert.ok(off instanceof KernelOffload, lines.join('\n'));
        assert.equal(off.describe(), 'detached while translation is paused');
        assert.equal(off.attach(params('2001:db8:1::4')), true, lines.join('\n'));
        assert.equal(off.attached, true);
        assert.equal(
          off.describe(),
          'in use (up0 ingress, v4-up0 egress; kernel route lookup: next hop not resolved yet)',
        );
        off.setNextHop({ address: 'fe80::1', why: 'the gateway' });
        assert.equal(off.describe(), 'in use (up0 ingress, v4-up0 egress; next hop fe80::1)');
        off.setNextHop({ why: 'the NAT64 prefix is on-link' });
        assert.match(off.describe(), /; kernel route lookup: the NAT64 prefix is on-link\)$/);
        // The counters and the next hop.
        assert.deepEqual(bpfFds(), { links: before.links + 2, progs: before.progs + 2, maps: before.maps + 2 });
        assert.match(lines.join('\n'), /translated in the kernel \(up0 ingress, v4-up0 egress\)/);

        off.detach(); // paused
        assert.equal(off.attached, false);
        assert.deepEqual(bpfFds(), { ...before, maps: before.maps + 2 });
        assert.equal(off.attach(params('2001:db8:1::5')), true); // a new address after DAD
        assert.equal(off.attach(params('2001:db8:1::6')), true); // re-attaching replaces, never stacks
        assert.deepEqual(bpfFds(), { links: before.links + 2, progs: before.progs + 2, maps: before.maps + 2 });
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

  test('a device that is gone: a warning naming the call and the device, and no half-attached state', {
    skip: NEED_TCX,
  }, async () => {
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

  for (const via of ['tcx', 'tc'] as const) {
    test(`a ping goes out and back through both programs alone (${via === 'tc' ? 'classic tc filters' : 'tcx links'})`, {
      skip: via === 'tcx' && NEED_TCX,
    }, async () => {
      // Namespace a: the uplink veth-a and the TUN, which nothing reads; b: an IPv6 host holding
      // 2001:db8:64::c633:6407 (198.51.100.7 under the prefix) that answers pings. The reply can
      // come back only if 4→6 left by the uplink and 6→4 went into the TUN, both in the kernel.
      await withVethPair(
        async (pair) => {
          pair.a.sh(
            'ip tuntap add mode tun name v4-veth-a; ip link set v4-veth-a up; ' +
              'ip addr add 192.0.0.4/32 dev v4-veth-a; ip route add default dev v4-veth-a; ' +
              'ip -6 route add 2001:db8:64::/96 dev veth-a; ' +
              `ip -6 neigh add 2001:db8:64::c633:6407 lladdr ${pair.bMac} dev veth-a`,
          );
          pair.b.sh(
            'ip -6 route add 2001:db8:1::4/128 dev veth-b; ' +
              `ip -6 neigh add 2001:db8:1::4 lladdr ${pair.aMac} dev veth-b`,
          );
          const dev: OffloadDevices = {
            uplinkIfindex: pair.aIndex,
            uplinkName: 'veth-a',
            linkHeaderLen: 14,
            tunIfindex: pair.a.ifindex('v4-veth-a'),
            tunName: 'v4-veth-a',
          };
          const lines: string[] = [];
          const log = new Logger({ level: 'debug', write: (l) => lines.push(l) });
          const rtnl = pair.a.enter(() => openRtnl());
          try {
            const off = pair.a.enter(() => KernelOffload.open(dev, log, { rtnl, via }));
            assert.ok(off instanceof KernelOffload, lines.join('\n'));
            assert.equal(
              pair.a.enter(() => off.attach(params('2001:db8:1::4'))),
              true,
              lines.join('\n'),
            );
            if (via === 'tc') {
              assert.match(
                pair.a.exec('tc', 'filter', 'show', 'dev', 'veth-a', 'ingress'),
                /clatd_ingress6 direct-action/,
              );
              assert.match(
                pair.a.exec('tc', 'filter', 'show', 'dev', 'v4-veth-a', 'egress'),
                /clatd_egress4 direct-action/,
              );
              assert.match(off.describe(), /classic tc filters/);
            }
            const r = pair.a.tryExec('ping', '-c', '2', '-i', '0.2', '-W', '2', '198.51.100.7');
            assert.match(r.stdout, / 2 received/, r.stdout + r.stderr);
            const c = off.counts();
            assert.ok(c['46'].packets >= 2 && c['64'].packets >= 2, JSON.stringify(c));
            assert.equal(c['46'].bytes, c['46'].packets * 84, 'input bytes: 84-byte IPv4 echoes');
            // The next hop in the map is where packets go: the server itself (its neighbour entry
            // is there), an address no one answers for (nothing comes back), none (the route).
            off.setNextHop({ address: '2001:db8:64::c633:6407', why: 'test' });
            const direct = pair.a.tryExec('ping', '-c', '1', '-W', '2', '198.51.100.7');
            assert.match(direct.stdout, / 1 received/, direct.stdout + direct.stderr);
            off.setNextHop({ address: '2001:db8:1::99', why: 'test' });
            const nowhere = pair.a.tryExec('ping', '-c', '1', '-W', '1', '198.51.100.7');
            assert.match(nowhere.stdout, / 0 received/, 'sent to the next hop in the map, which is nobody');
            off.setNextHop({ why: 'test' });
            const again = pair.a.tryExec('ping', '-c', '1', '-W', '2', '198.51.100.7');
            assert.match(again.stdout, / 1 received/, again.stdout + again.stderr);
            pair.a.enter(() => off.close());
            if (via === 'tc') {
              assert.doesNotMatch(pair.a.exec('tc', 'filter', 'show', 'dev', 'veth-a', 'ingress'), /clatd/);
              assert.doesNotMatch(pair.a.exec('tc', 'filter', 'show', 'dev', 'v4-veth-a', 'egress'), /clatd/);
            }
            const gone = pair.a.tryExec('ping', '-c', '1', '-W', '1', '198.51.100.7');
            assert.match(gone.stdout, / 0 received/, 'nothing translates once closed');
          } finally {
            rtnl.close();
          }
        },
        { tag: 'off', bAddr: '2001:db8:64::c633:6407/128' },
      );
    });
  }

  test('a raw-IP uplink (no link header, like a cellular modem): a ping out and back through both programs', {
    skip: NEED_TCX,
  }, async () => {
    // The uplink is a TUN too: what the 4→6 program sends out of it, the test reads from its fd;
    // the test writes the echo reply back into it, as the network would, for the 6→4 program.
    await withNetns(async (ns) => {
      const up = ns.enter(() => Tun.open('up0'));
      try {
        ns.sh(
          'ip link set up0 up; ip -6 route add 2001:db8:64::/96 dev up0; ' +
            'ip tuntap add mode tun name v4-up0; ip link set v4-up0 up; ' +
            'ip addr add 192.0.0.4/32 dev v4-up0; ip route add default dev v4-up0',
        );
        const dev: OffloadDevices = {
          uplinkIfindex: ns.ifindex('up0'),
          uplinkName: 'up0',
          linkHeaderLen: 0,
          tunIfindex: ns.ifindex('v4-up0'),
          tunName: 'v4-up0',
        };
        const lines: string[] = [];
        const log = new Logger({ level: 'debug', write: (l) => lines.push(l) });
        const off = ns.enter(() => KernelOffload.open(dev, log));
        assert.ok(off instanceof KernelOffload, lines.join('\n'));
        assert.equal(
          ns.enter(() => off.attach(params('2001:db8:1::4'))),
          true,
          lines.join('\n'),
        );
        const ping = ns.spawn('ping', ['-c', '1', '-W', '5', '198.51.100.7']);
        const exited = new Promise<number>((res) => ping.on('exit', (code) => res(code ?? -1)));
        // The translated echo request, as it left by the uplink (skipping the router solicitations
        // and such the kernel may send there too).
        const buf = new Uint8Array(2048);
        let req: Uint8Array | null = null;
        for (let i = 0; i < 300 && req === null; i++) {
          const n = native.read(up.fd, buf);
          if (n > 0 && buf[0] >>> 4 === 6 && buf[6] === 58 && buf[40] === 128) req = buf.slice(0, n);
          else if (n <= 0) await new Promise((res) => setTimeout(res, 10));
        }
        assert.ok(req, 'no echo request left by the uplink');
        assert.equal(formatIPv6(req.subarray(8, 24)), '2001:db8:1::4');
        assert.equal(formatIPv6(req.subarray(24, 40)), '2001:db8:64::c633:6407');
        assert.deepEqual(checksumProblems(req), []);
        // The reply: addresses swapped, type 129, checksum moved by the type's change.
        const reply = req.slice();
        reply.set(req.subarray(24, 40), 8);
        reply.set(req.subarray(8, 24), 24);
        reply[40] = 129;
        const ck = ((reply[42] << 8) | reply[43]) - 0x0100;
        reply[42] = (ck + (ck < 0 ? 0xffff : 0)) >>> 8;
        reply[43] = (ck + (ck < 0 ? 0xffff : 0)) & 0xff;
        assert.deepEqual(checksumProblems(reply), []);
        assert.equal(native.write(up.fd, reply), reply.length);
        assert.equal(await exited, 0, 'ping got its reply through the 6→4 program');
        const c = off.counts();
        assert.ok(c['46'].packets >= 1 && c['64'].packets >= 1, JSON.stringify(c));
        ns.enter(() => off.close());
      } finally {
        up.close();
      }
    });
  });

  test('a classic tc filter left by a crash is removed by the next start, with its clsact qdisc unless that holds others', async () => {
    await withNetns(async (ns) => {
      ns.sh('ip link add up0 type veth peer name peer0; ip link set up0 up');
      const rtnl = ns.enter(() => openRtnl()); // its socket stays in the namespace
      try {
        const a = new Asm();
        a.mov(R0, -1).exit();
        const prog = loadTcProgram('clatd_ingress6', a.encode());
        rtnl.addClsact('up0');
        rtnl.addBpfFilter('up0', 'ingress', prog, 'clatd_ingress6', OFFLOAD_TC_PRIO);
        closeBpf(prog); // the filter holds it, as after a kill -9
        const plumbing = new SystemPlumbing(
          rtnl,
          async () => assert.fail('no datapath here'),
          1,
          mkdtempSync(join(tmpdir(), 'clatd-state-')),
        );
        // Inside the namespace: cleanupLeftovers also asks nft (a child process) for tables.
        const removed = await ns.enter(() => plumbing.cleanupLeftovers('up0'));
        assert.deepEqual(removed, [`tc filter on up0 ingress, priority ${OFFLOAD_TC_PRIO}`, 'clsact qdisc on up0']);
        assert.doesNotMatch(ns.exec('tc', 'filter', 'show', 'dev', 'up0', 'ingress'), /clatd/);
        assert.doesNotMatch(ns.exec('tc', 'qdisc', 'show', 'dev', 'up0'), /clsact/, 'the qdisc added for it too');
        assert.deepEqual(await ns.enter(() => plumbing.cleanupLeftovers('up0')), [], 'nothing the second time');

        // A clsact that also holds someone else's filter stays, with that filter.
        const prog2 = loadTcProgram('clatd_ingress6', a.encode());
        rtnl.addClsact('up0');
        rtnl.addBpfFilter('up0', 'ingress', prog2, 'clatd_ingress6', OFFLOAD_TC_PRIO);
        rtnl.addBpfFilter('up0', 'egress', prog2, 'someone_else', 7);
        closeBpf(prog2);
        const again = await ns.enter(() => plumbing.cleanupLeftovers('up0'));
        assert.deepEqual(again, [`tc filter on up0 ingress, priority ${OFFLOAD_TC_PRIO}`]);
        assert.match(ns.exec('tc', 'qdisc', 'show', 'dev', 'up0'), /clsact/);
        assert.match(ns.exec('tc', 'filter', 'show', 'dev', 'up0', 'egress'), /someone_else/);
      } finally {
        rtnl.close();
      }
    });
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
