/** Pure tests of the netlink message layer: encoding, decoding, acks, errors, dumps, events. */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { describe, test } from 'node:test';
import {
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  IFA_F_PERMANENT,
  IFA_F_TENTATIVE,
  IFF_LOWER_UP,
  IFF_RUNNING,
  IFF_UP,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_EXCL,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  RT_SCOPE_LINK,
  RTM_DELADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNDUSEROPT,
  RTM_NEWROUTE,
  RTPROT_CLATD,
} from '../../src/sys/rtnetlink/consts.js';
import { NetlinkError } from '../../src/sys/rtnetlink/errors.js';
import {
  decodeAddress,
  decodeLink,
  decodeNdUserOption,
  decodeRoute,
  encodeAddress,
  encodeLink,
  encodeRoute,
} from '../../src/sys/rtnetlink/messages.js';
import { RtnlMonitor } from '../../src/sys/rtnetlink/monitor.js';
import { Rtnl } from '../../src/sys/rtnetlink/rtnl.js';
import { NetlinkSocket, type NetlinkTransport } from '../../src/sys/rtnetlink/socket.js';
import { MessageBuilder, parseAttrs, splitMessages } from '../../src/sys/rtnetlink/wire.js';

const { EAGAIN, EEXIST, ENOBUFS, ENODEV } = constants.errno;

/** Little-endian byte helpers for hand-written kernel messages (x86 and arm64 are little-endian). */
const u16 = (v: number) => [v & 0xff, v >>> 8];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const rta = (type: number, data: number[]) => {
  const len = 4 + data.length;
  const pad = (4 - (len % 4)) % 4;
  return [...u16(len), ...u16(type), ...data, ...new Array(pad).fill(0)];
};
const nlmsg = (type: number, flags: number, seq: number, body: number[]) => [
  ...u32(16 + body.length),
  ...u16(type),
  ...u16(flags),
  ...u32(seq),
  ...u32(0),
  ...body,
];

/** A transport that answers each request with datagrams built by `reply` from the parsed request. */
class ScriptedTransport implements NetlinkTransport {
  readonly fd = -1;
  readonly sent: Uint8Array[] = [];
  private queue: (Uint8Array | number)[] = [];
  closed = false;
  constructor(private readonly reply: (req: ReturnType<typeof splitMessages>[0]) => (number[] | number)[]) {}
  send(buf: Uint8Array): number {
    this.sent.push(Uint8Array.from(buf));
    const [req] = splitMessages(buf);
    for (const d of this.reply(req)) this.queue.push(typeof d === 'number' ? d : Uint8Array.from(d));
    return buf.length;
  }
  push(d: number[] | number): void {
    this.queue.push(typeof d === 'number' ? d : Uint8Array.from(d));
  }
  recv(buf: Uint8Array): number {
    const d = this.queue.shift();
    if (d === undefined) return -EAGAIN;
    if (typeof d === 'number') return d;
    buf.set(d);
    return d.length;
  }
  close(): void {
    this.closed = true;
  }
}

const ack = (seq: number, errno = 0, extack?: string) => {
  const quoted = nlmsg(0, 0, seq, []); // capped: header only
  const tlv = extack ? rta(1, [...Buffer.from(`${extack}\0`)]) : [];
  const flags = 0x100 | (extack ? NLM_F_ACK_TLVS : 0);
  return nlmsg(NLMSG_ERROR, flags, seq, [...u32(-errno >>> 0), ...quoted, ...tlv]);
};

describe('MessageBuilder', () => {
  test('header, family header, attribute alignment, nesting', () => {
    const m = new MessageBuilder(RTM_NEWLINK, NLM_F_ACK);
    m.header(16).setInt32(4, 7, true);
    m.str(3, 'eth0'); // 4 + 5 bytes, padded to 12
    m.begin(8).u32(2, 1280).end();
    const b = m.finish(42, 0);
    assert.equal(b.length, 16 + 16 + 12 + 12);
    const [msg] = splitMessages(b);
    assert.equal(msg.type, RTM_NEWLINK);
    assert.equal(msg.flags, NLM_F_ACK | NLM_F_REQUEST);
    assert.equal(msg.seq, 42);
    assert.deepEqual([...b.subarray(32, 44)], [9, 0, 3, 0, 0x65, 0x74, 0x68, 0x30, 0, 0, 0, 0]);
    const attrs = parseAttrs(msg.body, 16);
    assert.equal(Buffer.from(attrs.get(3)!).toString(), 'eth0\0');
    const nest = attrs.get(8)!; // NLA_F_NESTED masked off
    assert.equal(nest.length, 8);
    assert.equal(parseAttrs(nest).get(2)![1], 1280 >>> 8);
  });

  test('splitMessages stops at a truncated or malformed header instead of throwing', () => {
    const one = nlmsg(NLMSG_DONE, 0, 1, [0, 0, 0, 0]);
    const bad = [...one, ...u32(100), 0, 0, 0, 0]; // claims 100 bytes, has 8
    assert.equal(splitMessages(Uint8Array.from(bad)).length, 1);
    assert.equal(splitMessages(Uint8Array.from([...u32(3), 0, 0, 0, 0])).length, 0);
  });
});

describe('links', () => {
  test('decodes a hand-written RTM_NEWLINK as the kernel sends it', () => {
    const flags = IFF_UP | IFF_RUNNING | IFF_LOWER_UP | 0x1000; // | IFF_MULTICAST
    const body = [
      2,
      0,
      ...u16(1),
      ...u32(3),
      ...u32(flags),
      ...u32(0), // ifinfomsg: ether, index 3
      ...rta(3, [...Buffer.from('veth0\0')]),
      ...rta(4, u32(1500)),
      ...rta(16, [6]), // IF_OPER_UP
      ...rta(1, [0x02, 0, 0, 0, 0, 0x01]),
      ...rta(18, rta(1, [...Buffer.from('veth\0')])), // IFLA_LINKINFO { IFLA_INFO_KIND }
    ];
    const l = decodeLink(Uint8Array.from(body))!;
    assert.deepEqual(
      { ...l },
      {
        index: 3,
        name: 'veth0',
        mtu: 1500,
        flags,
        up: true,
        running: true,
        operstate: 'up',
        linkType: 1,
        kind: 'veth',
        lladdr: '02:00:00:00:00:01',
      },
    );
  });

  test('set-up request: change mask and flags; MTU request', () => {
    const [up] = splitMessages(encodeLink(RTM_NEWLINK, 0, { index: 9, up: true }).finish(1));
    assert.deepEqual([...up.body.subarray(4, 16)], [...u32(9), ...u32(IFF_UP), ...u32(IFF_UP)]);
    const [down] = splitMessages(encodeLink(RTM_NEWLINK, 0, { index: 9, up: false }).finish(1));
    assert.deepEqual([...down.body.subarray(8, 16)], [...u32(0), ...u32(IFF_UP)]);
    const [mtu] = splitMessages(encodeLink(RTM_NEWLINK, 0, { index: 9, mtu: 1260 }).finish(1));
    assert.deepEqual([...mtu.body.subarray(8, 16)], [...u32(0), ...u32(0)]); // flags untouched
    assert.deepEqual([...parseAttrs(mtu.body, 16).get(4)!], u32(1260));
  });

  test('a short message decodes to undefined', () => {
    assert.equal(decodeLink(new Uint8Array(8)), undefined);
  });
});

describe('addresses', () => {
  test('IPv4 request carries IFA_LOCAL and IFA_ADDRESS; flags above 8 bits go in IFA_FLAGS', () => {
    const [m4] = splitMessages(
      encodeAddress(RTM_NEWADDR, 0, { family: 4, ifindex: 5, address: '192.0.0.1', prefixLen: 32 }).finish(1),
    );
    assert.deepEqual([...m4.body.subarray(0, 8)], [2, 32, 0, 0, ...u32(5)]);
    const a = parseAttrs(m4.body, 8);
    assert.deepEqual([...a.get(2)!], [192, 0, 0, 1]);
    assert.deepEqual([...a.get(1)!], [192, 0, 0, 1]);
    const flags = IFA_F_NODAD | IFA_F_NOPREFIXROUTE;
    const [m6] = splitMessages(
      encodeAddress(RTM_NEWADDR, 0, { family: 6, ifindex: 5, address: '2001:db8::1', prefixLen: 64, flags }).finish(1),
    );
    assert.equal(m6.body[0], 10);
    assert.equal(m6.body[2], IFA_F_NODAD);
    const a6 = parseAttrs(m6.body, 8);
    assert.equal(a6.has(2), false);
    assert.deepEqual([...a6.get(8)!], u32(flags));
  });

  test('lifetimes go in IFA_CACHEINFO (preferred, valid, two zero stamps); none without them', () => {
    const spec = { family: 6, ifindex: 5, address: '2001:db8::a5', prefixLen: 128 } as const;
    const [m] = splitMessages(encodeAddress(RTM_NEWADDR, 0, { ...spec, preferredLft: 1800, validLft: 3600 }).finish(1));
    assert.deepEqual([...parseAttrs(m.body, 8).get(6)!], [...u32(1800), ...u32(3600), ...u32(0), ...u32(0)]);
    const [v] = splitMessages(encodeAddress(RTM_NEWADDR, 0, { ...spec, validLft: 60 }).finish(1));
    assert.deepEqual([...parseAttrs(v.body, 8).get(6)!], [...u32(0xffffffff), ...u32(60), ...u32(0), ...u32(0)]);
    const [f] = splitMessages(encodeAddress(RTM_NEWADDR, 0, spec).finish(1));
    assert.equal(parseAttrs(f.body, 8).has(6), false);
  });

  test('decodes flags (IFA_FLAGS wins over the 8-bit field), scope, lifetimes', () => {
    const addr = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 0x42];
    const body = [
      10,
      64,
      IFA_F_TENTATIVE,
      0,
      ...u32(4),
      ...rta(1, addr),
      ...rta(6, [...u32(100), ...u32(200), ...u32(0), ...u32(0)]),
      ...rta(8, u32(IFA_F_TENTATIVE | IFA_F_PERMANENT | IFA_F_NOPREFIXROUTE)),
    ];
    const a = decodeAddress(Uint8Array.from(body))!;
    assert.equal(a.family, 6);
    assert.equal(a.address, '2001:db8::42');
    assert.equal(a.prefixLen, 64);
    assert.equal(a.ifindex, 4);
    assert.equal(a.tentative, true);
    assert.equal(a.permanent, true);
    assert.equal(a.deprecated, false);
    assert.equal(a.flags & IFA_F_NOPREFIXROUTE, IFA_F_NOPREFIXROUTE);
    assert.equal(a.preferredLft, 100);
    assert.equal(a.validLft, 200);
  });
});

describe('routes', () => {
  test('encode then decode keeps every field; metrics are a nest of RTAX_MTU and RTAX_ADVMSS', () => {
    const spec = {
      family: 4 as const,
      dst: '0.0.0.0',
      dstLen: 0,
      oif: 12,
      table: 1000,
      priority: 2048,
      mtu: 1260,
      advmss: 1220,
    };
    const [m] = splitMessages(encodeRoute(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, spec).finish(3));
    const r = decodeRoute(m.body)!;
    assert.equal(r.family, 4);
    assert.equal(r.dst, '0.0.0.0');
    assert.equal(r.dstLen, 0);
    assert.equal(r.table, 1000);
    assert.equal(m.body[4], 0); // table > 255 lives only in RTA_TABLE
    assert.equal(r.protocol, RTPROT_CLATD);
    assert.equal(r.scope, RT_SCOPE_LINK); // IPv4 without gateway, as `ip route` does
    assert.equal(r.oif, 12);
    assert.equal(r.priority, 2048);
    assert.equal(r.mtu, 1260);
    assert.equal(r.advmss, 1220);
    assert.equal(r.gateway, undefined);
  });

  test('IPv6 route with gateway', () => {
    const spec = {
      family: 6 as const,
      dst: '64:ff9b::',
      dstLen: 96,
      gateway: 'fe80::1',
      oif: 2,
      prefsrc: '2001:db8::5',
    };
    const [m] = splitMessages(encodeRoute(RTM_NEWROUTE, 0, spec).finish(3));
    const r = decodeRoute(m.body)!;
    assert.equal(r.dst, '64:ff9b::');
    assert.equal(r.dstLen, 96);
    assert.equal(r.gateway, 'fe80::1');
    assert.equal(r.prefsrc, '2001:db8::5');
    assert.equal(r.scope, 0);
    assert.equal(r.table, 254);
  });
});

describe('multipath routes', () => {
  test('decodes RTA_MULTIPATH next hops; oif and gateway come from the first', () => {
    const gw = (last: number) => [0xfe, 0x80, ...new Array(13).fill(0), last];
    const hop = (ifindex: number, hops: number, g: number[]) => {
      const attrs = rta(5, g);
      return [...u16(8 + attrs.length), 0, hops, ...u32(ifindex), ...attrs];
    };
    const body = [
      10,
      0,
      0,
      0,
      254,
      9,
      0,
      1,
      ...u32(0), // ::/0, main, proto ra, unicast
      ...rta(6, u32(1024)),
      ...rta(9, [...hop(4, 0, gw(1)), ...hop(5, 2, gw(2))]),
    ];
    const r = decodeRoute(Uint8Array.from(body))!;
    assert.equal(r.dstLen, 0);
    assert.equal(r.oif, 4);
    assert.equal(r.gateway, 'fe80::1');
    assert.deepEqual(r.nexthops, [
      { oif: 4, gateway: 'fe80::1', weight: 1 },
      { oif: 5, gateway: 'fe80::2', weight: 3 },
    ]);
  });
});

describe('ND user options', () => {
  test('decodes a PREF64 option (RFC 8781) and the router address', () => {
    // PREF64: type 38, length 2 (16 bytes), scaled lifetime 600 s | PLC 1 (/96), prefix 64:ff9b::
    const opt = [38, 2, 0x02, 0x59, 0x00, 0x64, 0xff, 0x9b, ...new Array(8).fill(0)]; // 600 s = 75 << 3 | 1
    const router = [0xfe, 0x80, ...new Array(13).fill(0), 1];
    const body = [
      10,
      0,
      ...u16(16),
      ...u32(6),
      134,
      0,
      0,
      0,
      ...u32(0), // nduseroptmsg
      ...opt,
      ...rta(1, router),
    ];
    const o = decodeNdUserOption(Uint8Array.from(body))!;
    assert.equal(o.ifindex, 6);
    assert.equal(o.icmpType, 134);
    assert.deepEqual([...o.options], opt);
    assert.equal(o.source, 'fe80::1');
  });

  test('an option length past the end decodes to undefined', () => {
    const body = [10, 0, ...u16(64), ...u32(6), 134, 0, 0, 0, ...u32(0), 38, 2];
    assert.equal(decodeNdUserOption(Uint8Array.from(body)), undefined);
  });
});

describe('NetlinkSocket', () => {
  test('an ack ends a request; the kernel error becomes a NetlinkError naming the request', () => {
    const t = new ScriptedTransport((req) => [ack(req.seq, EEXIST, 'Route exists')]);
    const nl = new NetlinkSocket(t);
    const m = encodeRoute(RTM_NEWROUTE, NLM_F_CREATE, { family: 4, dst: '0.0.0.0', dstLen: 0, oif: 3 });
    assert.throws(
      () => nl.request(m, 'RTM_NEWROUTE 0.0.0.0/0 dev v4-eth0'),
      (e: unknown) => {
        assert.ok(e instanceof NetlinkError);
        assert.equal(e.code, 'ERR_CLATD_NETLINK');
        assert.equal(e.errnoName, 'EEXIST');
        assert.equal(e.errno, EEXIST);
        assert.match(e.message, /^RTM_NEWROUTE 0\.0\.0\.0\/0 dev v4-eth0: EEXIST \(.+\): Route exists$/);
        return true;
      },
    );
    const [sent] = splitMessages(t.sent[0]);
    assert.equal(sent.flags & (NLM_F_ACK | NLM_F_REQUEST), NLM_F_ACK | NLM_F_REQUEST);
  });

  test('replies with another sequence number are skipped; the reply before the ack is delivered', () => {
    const t = new ScriptedTransport((req) => [
      [...ack(req.seq - 1, ENODEV), ...nlmsg(RTM_NEWLINK, 0, req.seq, [0, 0, 0, 0, ...u32(1), ...u32(0), ...u32(0)])],
      ack(req.seq),
    ]);
    const nl = new NetlinkSocket(t);
    const got: number[] = [];
    nl.request(encodeLink(RTM_GETLINK, 0, { index: 1 }), 'RTM_GETLINK lo', (m) => got.push(m.type));
    assert.deepEqual(got, [RTM_NEWLINK]);
  });

  test('a dump collects parts across datagrams until NLMSG_DONE', () => {
    const link = (seq: number, i: number) =>
      nlmsg(RTM_NEWLINK, NLM_F_MULTI, seq, [
        0,
        0,
        0,
        0,
        ...u32(i),
        ...u32(0),
        ...u32(0),
        ...rta(3, [...Buffer.from(`l${i}\0`)]),
      ]);
    const t = new ScriptedTransport((req) => [
      [...link(req.seq, 1), ...link(req.seq, 2)],
      link(req.seq, 3),
      nlmsg(NLMSG_DONE, NLM_F_MULTI, req.seq, u32(0)),
    ]);
    const rt = new Rtnl(t);
    assert.deepEqual(
      rt.links().map((l) => l.name),
      ['l1', 'l2', 'l3'],
    );
    const [sent] = splitMessages(t.sent[0]);
    assert.equal(sent.flags & NLM_F_DUMP, NLM_F_DUMP);
  });

  test('a dump the kernel marks interrupted is redone, without duplicates', () => {
    let n = 0;
    const link = (seq: number, i: number, flags: number) =>
      nlmsg(RTM_NEWLINK, NLM_F_MULTI | flags, seq, [0, 0, 0, 0, ...u32(i), ...u32(0), ...u32(0)]);
    const t = new ScriptedTransport((req) => {
      const intr = n++ === 0 ? NLM_F_DUMP_INTR : 0;
      return [
        [...link(req.seq, 1, 0), ...link(req.seq, 2, intr)],
        nlmsg(NLMSG_DONE, NLM_F_MULTI | intr, req.seq, u32(0)),
      ];
    });
    assert.deepEqual(
      new Rtnl(t).links().map((l) => l.index),
      [1, 2],
    );
    assert.equal(t.sent.length, 2);
  });

  test('no reply is a timeout error, not a hang', () => {
    const nl = new NetlinkSocket(new ScriptedTransport(() => []), { timeoutMs: 20 });
    assert.throws(
      () => nl.request(encodeLink(RTM_GETLINK, 0, { index: 1 }), 'RTM_GETLINK lo'),
      /RTM_GETLINK lo: ETIMEDOUT/,
    );
  });

  test('Rtnl names the missing link in the error', () => {
    const rt = new Rtnl(new ScriptedTransport((req) => [ack(req.seq, ENODEV)]));
    assert.throws(() => rt.link('nosuch0'), /^NetlinkError: RTM_GETLINK nosuch0: ENODEV/);
    assert.equal(rt.findLink('nosuch0'), undefined);
  });

  test('Rtnl rejects a bad prefix before sending anything', () => {
    const t = new ScriptedTransport((req) => [ack(req.seq)]);
    const rt = new Rtnl(t);
    assert.throws(() => rt.addRoute({ dst: '192.0.2.1/24', dev: 3 }), /host bits/);
    assert.throws(() => rt.addAddress(3, '2001:db8::1', 129), /IPv6 prefix length 129 is not within 0\.\.128/);
    assert.throws(() => rt.addAddress(3, '192.0.2.1', 33), /IPv4 prefix length 33/);
    assert.equal(t.sent.length, 0);
  });
});

describe('RtnlMonitor', () => {
  test('drains datagrams into typed events; ENOBUFS becomes an overrun event', () => {
    const t = new ScriptedTransport(() => []);
    const addr = [192, 0, 0, 1];
    t.push([
      ...nlmsg(RTM_NEWADDR, 0, 0, [2, 32, IFA_F_PERMANENT, 0, ...u32(7), ...rta(2, addr), ...rta(1, addr)]),
      ...nlmsg(RTM_DELADDR, 0, 0, [2, 32, 0, 0, ...u32(7), ...rta(2, addr)]),
    ]);
    t.push(-ENOBUFS);
    t.push(
      nlmsg(RTM_NEWNDUSEROPT, 0, 0, [10, 0, ...u16(8), ...u32(3), 134, 0, 0, 0, ...u32(0), 25, 1, 0, 0, 0, 0, 0, 0]),
    );
    t.push(nlmsg(99, 0, 0, [1, 2, 3, 4])); // unknown types are ignored
    const events: string[] = [];
    const mon = new RtnlMonitor(t, (e) => {
      if (e.kind === 'address')
        events.push(`${e.removed ? 'del' : 'new'} ${e.address.address}/${e.address.prefixLen} if${e.address.ifindex}`);
      else if (e.kind === 'nduseropt') events.push(`nduseropt if${e.option.ifindex} type ${e.option.options[0]}`);
      else events.push(e.kind);
    });
    assert.equal(mon.drain(), 4);
    assert.deepEqual(events, ['new 192.0.0.1/32 if7', 'del 192.0.0.1/32 if7', 'overrun', 'nduseropt if3 type 25']);
    mon.close();
    assert.equal(t.closed, true);
  });

  test('drain reads at most the datagrams it is allowed, the rest on the next call', () => {
    const t = new ScriptedTransport(() => []);
    for (let i = 1; i <= 3; i++) t.push(nlmsg(RTM_NEWLINK, 0, 0, [0, 0, 0, 0, ...u32(i), ...u32(0), ...u32(0)]));
    const seen: number[] = [];
    const mon = new RtnlMonitor(t, (e) => e.kind === 'link' && seen.push(e.link.index));
    assert.equal(mon.drain(2), 2);
    assert.deepEqual(seen, [1, 2]);
    assert.equal(mon.drain(), 1);
    assert.equal(mon.drain(), 0);
    assert.deepEqual(seen, [1, 2, 3]);
  });
});

describe('neighbour events and route lookups from a source', () => {
  test('RTM_NEWNEIGH / RTM_DELNEIGH decode to the entry, its interface and its router flag', async () => {
    const { decodeEvent } = await import('../../src/sys/rtnetlink/monitor.js');
    const { RTM_DELNEIGH, RTM_NEWNEIGH } = await import('../../src/sys/rtnetlink/consts.js');
    const body = new Uint8Array(12 + 20);
    const v = new DataView(body.buffer);
    v.setUint8(0, 10); // AF_INET6
    v.setInt32(4, 7, true);
    v.setUint16(8, 0x02, true); // NUD_REACHABLE
    v.setUint8(10, 0x80); // NTF_ROUTER
    v.setUint16(12, 20, true); // NDA_DST
    v.setUint16(14, 1, true);
    body.set([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 16);
    assert.deepEqual(decodeEvent({ type: RTM_NEWNEIGH, flags: 0, seq: 0, pid: 0, body }), {
      kind: 'neigh',
      removed: false,
      neighbour: { family: 6, ifindex: 7, address: 'fe80::1', state: 2, router: true },
    });
    const e = decodeEvent({ type: RTM_DELNEIGH, flags: 0, seq: 0, pid: 0, body: body.subarray(0, 12) });
    assert.equal(e, undefined, 'an entry without its address is not one');
  });

  test('RTM_GETROUTE from a source: src_len 128 and RTA_SRC; fibmatch sets RTM_F_FIB_MATCH', async () => {
    const { encodeRouteGet } = await import('../../src/sys/rtnetlink/messages.js');
    const m = encodeRouteGet(26, 0, 6, '64:ff9b::1', 2, { src: '2001:db8:1::4', fibMatch: true }).finish(1);
    const rtm = m.subarray(16);
    assert.equal(rtm[1], 128);
    assert.equal(rtm[2], 128);
    assert.equal(new DataView(rtm.buffer, rtm.byteOffset).getUint32(8, true), 0x1000 | 0x2000);
    assert.ok(Buffer.from(m).includes(Buffer.from('20010db8000100000000000000000004', 'hex')), 'RTA_SRC');
  });
});
