/**
 * nftables events (src/sys/nft-events.ts): the decoder over hand-made messages, and in a namespace
 * made for the test, the deletions that `nft flush ruleset` and clatd's own `nft` runs announce.
 */
import assert from 'node:assert/strict';
import { installClatFilter, isOwnNftRun, removeClatFilter } from '../../src/sys/nft.js';
import {
  NFNL_SUBSYS_NFTABLES,
  NFPROTO_INET,
  NFPROTO_IPV6,
  NFT_MSG_DELCHAIN,
  NFT_MSG_DELRULE,
  NFT_MSG_DELTABLE,
  NFT_MSG_NEWGEN,
  NftDeletionDecoder,
  type NftEvent,
  openNftMonitor,
} from '../../src/sys/nft-events.js';
import { splitMessages } from '../../src/sys/rtnetlink/wire.js';
import { NEED_ROOT, withNetns } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

const NFPROTO_IPV4 = 2;

/** A netlink attribute; `be32` values are big-endian, as nfnetlink's are. */
function attr(type: number, value: string | { be32: number }): Buffer {
  const payload =
    typeof value === 'string'
      ? Buffer.from(`${value}\0`)
      : Buffer.from([value.be32 >>> 24, (value.be32 >>> 16) & 0xff, (value.be32 >>> 8) & 0xff, value.be32 & 0xff]);
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

/** One nftables netlink message of type `msg` for `family`, as the kernel multicasts it. */
function message(msg: number, family: number, ...attrs: Buffer[]) {
  const body = Buffer.concat([Buffer.from([family, 0, 0, 0]), ...attrs]);
  const hdr = Buffer.alloc(16);
  hdr.writeUInt32LE(16 + body.length, 0);
  hdr.writeUInt16LE((NFNL_SUBSYS_NFTABLES << 8) | msg, 4);
  const [m] = splitMessages(Buffer.concat([hdr, body]));
  return m;
}

const gen = (pid: number, proc: string) =>
  message(NFT_MSG_NEWGEN, 0, attr(1, { be32: 7 }), attr(2, { be32: pid }), attr(3, proc));

describe('nftables event decoder', () => {
  test('deletions in clatd tables are gathered per transaction and named with its process', () => {
    const d = new NftDeletionDecoder('clatd-');
    assert.deepEqual(d.feed(message(NFT_MSG_DELRULE, NFPROTO_IPV6, attr(1, 'clatd-eth0'))), []);
    assert.deepEqual(d.feed(message(NFT_MSG_DELCHAIN, NFPROTO_IPV6, attr(1, 'clatd-eth0'), attr(3, 'prerouting'))), []);
    assert.deepEqual(d.feed(message(NFT_MSG_DELTABLE, NFPROTO_IPV6, attr(1, 'clatd-eth0'))), []);
    assert.deepEqual(d.feed(message(NFT_MSG_DELTABLE, NFPROTO_IPV6, attr(1, 'clatd-wlan0'))), []);
    assert.deepEqual(d.feed(gen(4242, 'nft')), [
      { kind: 'deleted', table: 'clatd-eth0', objects: ['rule', 'chain', 'table'], pid: 4242, proc: 'nft' },
      { kind: 'deleted', table: 'clatd-wlan0', objects: ['table'], pid: 4242, proc: 'nft' },
    ]);
    assert.deepEqual(d.feed(gen(4243, 'nft')), [], 'a transaction without deletions in clatd tables');
  });

  test("an inet table (the LAN's, or an earlier version's uplink table) is reported too", () => {
    const d = new NftDeletionDecoder('clatd-');
    d.feed(message(NFT_MSG_DELTABLE, NFPROTO_INET, attr(1, 'clatd-eth0')));
    assert.deepEqual(d.feed(gen(7, 'nft')), [
      { kind: 'deleted', table: 'clatd-eth0', objects: ['table'], pid: 7, proc: 'nft' },
    ]);
  });

  test('other tables, other families, additions and short or foreign messages are not reported', () => {
    const d = new NftDeletionDecoder('clatd-');
    d.feed(message(NFT_MSG_DELTABLE, NFPROTO_INET, attr(1, 'filter')));
    d.feed(message(NFT_MSG_DELTABLE, NFPROTO_IPV4, attr(1, 'clatd-eth0')));
    d.feed(message(0 /* NEWTABLE */, NFPROTO_INET, attr(1, 'clatd-eth0')));
    d.feed(message(NFT_MSG_DELTABLE, NFPROTO_INET)); // no name
    const [short] = splitMessages(
      Buffer.from([16, 0, 0, 0, NFT_MSG_DELTABLE, NFNL_SUBSYS_NFTABLES, 0, 0, ...Array(8).fill(0)]),
    );
    d.feed(short);
    const [route] = splitMessages(Buffer.from([20, 0, 0, 0, 17, 0, 0, 0, ...Array(12).fill(0)]));
    d.feed(route);
    assert.deepEqual(d.feed(message(NFT_MSG_NEWGEN, 0)), []);
  });

  test('a generation message without the process attributes still reports, without them', () => {
    const d = new NftDeletionDecoder('clatd-');
    d.feed(message(NFT_MSG_DELTABLE, NFPROTO_INET, attr(1, 'clatd-eth0')));
    assert.deepEqual(d.feed(message(NFT_MSG_NEWGEN, 0, attr(1, { be32: 1 }))), [
      { kind: 'deleted', table: 'clatd-eth0', objects: ['table'], pid: undefined, proc: undefined },
    ]);
  });
});

/** Collects the monitor's events until `until` holds of them, or 3 s pass. */
function collect(events: NftEvent[], until: (e: NftEvent[]) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const check = () => {
      if (until(events)) resolve();
      else if (Date.now() - t0 > 3000) reject(new Error(`timed out; events: ${JSON.stringify(events)}`));
      else setTimeout(check, 10);
    };
    check();
  });
}

describe('nftables events in a network namespace', { skip: NEED_ROOT }, () => {
  test('clatd’s own nft runs are known as such; flush ruleset by someone else names the table and nft', async () => {
    await withNetns(async (ns) => {
      const events: NftEvent[] = [];
      const errors: Error[] = [];
      const mon = ns.enter(() =>
        openNftMonitor(
          'clatd-',
          (e) => events.push(e),
          (e) => errors.push(e),
        ),
      );
      try {
        // Installing replaces the table by deleting it first: a deletion, by this process's nft.
        ns.enter(() => installClatFilter('eth0', '2001:db8::c1a7'));
        await collect(events, (e) => e.length >= 1);
        const own = events.shift();
        assert.ok(own?.kind === 'deleted' && own.table === 'clatd-eth0', JSON.stringify(own));
        assert.ok(own.pid !== undefined && isOwnNftRun(own.pid), 'the pid is that of our nft run');

        // A table that is not clatd's, then the firewall reload that takes everything.
        ns.exec('nft', 'add', 'table', 'inet', 'filter');
        ns.exec('nft', 'delete', 'table', 'inet', 'filter');
        ns.exec('nft', 'flush', 'ruleset');
        await collect(events, (e) => e.length >= 1);
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(events.length, 1, JSON.stringify(events));
        const e = events[0];
        assert.ok(e.kind === 'deleted');
        assert.equal(e.table, 'clatd-eth0');
        assert.ok(e.objects.includes('table'));
        assert.equal(e.proc, 'nft');
        assert.ok(e.pid !== undefined && !isOwnNftRun(e.pid), 'not one of ours');
        assert.deepEqual(errors, []);
      } finally {
        mon.close();
        mon.close(); // idempotent
        ns.enter(() => removeClatFilter('eth0'));
      }
    }, 'nftev');
  });
});
