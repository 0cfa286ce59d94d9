/**
 * Child process for the "no handles left" tests: starts a Datapath, stops it, and then just ends
 * its script. The parent checks that the process exits on its own (nothing keeps the loop alive).
 *
 *   node exit-child.js fakes            in process, over the in-memory fakes
 *   node exit-child.js workers IFNAME   2 workers over real devices (run inside a namespace)
 */
import { parseIPv6 } from '../../src/core/addr/ipv6.js';
import { Datapath } from '../../src/datapath/datapath.js';
import { FakePacketIo } from '../fakes/packet-io.js';

const CONFIG = { pool6: '64:ff9b::/96', eam: [{ v4: '192.0.0.4/32', v6: '2001:db8:1::4/128' }] };
const [mode, ifname] = process.argv.slice(2);

// `node --test dist/test` also runs this file without arguments: then there is nothing to do.
if (mode === 'fakes') {
  const io = { tun: new FakePacketIo(), packet: new FakePacketIo(), raw: new FakePacketIo() };
  const dp = await Datapath.start({ translator: CONFIG, workers: 0, io });
  await dp.stop();
  console.log('stopped');
} else if (mode === 'workers') {
  const { Tun } = await import('../../src/sys/tun.js');
  const { clatReceiveFilter } = await import('../../src/sys/bpf.js');
  const { interfaceIndex } = await import('../../src/sys/addon.js');
  const ifindex = interfaceIndex(ifname);
  const holder = Tun.open('v4-exit', { multiQueue: true });
  const dp = await Datapath.start({
    translator: CONFIG,
    workers: 2,
    devices: {
      tun: { name: 'v4-exit' },
      packet: { ifindex, ifname, filter: clatReceiveFilter(parseIPv6('2001:db8:1::4')) },
      raw: { ifname, ifindex },
    },
    detachQueues: [holder.fd],
  });
  await dp.stop();
  holder.close();
  console.log('stopped');
}
