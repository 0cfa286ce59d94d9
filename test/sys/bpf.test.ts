/** The cBPF assembler's encoding, and the CLAT receive filter run on crafted packets. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseIPv6, solicitedNode } from '../../src/core/addr/ipv6.js';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import {
  BpfAssembler,
  BpfError,
  clatReceiveFilter,
  decode,
  encode,
  ndSolicitationFilter,
  SKF_NET_OFF,
} from '../../src/sys/bpf.js';
import { runFilter } from './cbpf.js';

describe('bpf assembler', () => {
  test('encodes struct sock_filter little-endian, 8 bytes each', () => {
    const prog = new BpfAssembler().ldh(12).jeq(0x86dd, 0, 'drop').ret(0xffffffff).label('drop').ret(0).assemble();
    // The first two are what `tcpdump -dd ip6` prints: { 0x28, 0, 0, 0x0000000c }, { 0x15, 0, 1, 0x000086dd }.
    assert.deepEqual(
      [...prog],
      [
        0x28, 0, 0, 0, 12, 0, 0, 0, 0x15, 0, 0, 1, 0xdd, 0x86, 0, 0, 0x06, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x06, 0, 0,
        0, 0, 0, 0, 0,
      ],
    );
    assert.deepEqual(decode(prog), [
      { code: 0x28, jt: 0, jf: 0, k: 12 },
      { code: 0x15, jt: 0, jf: 1, k: 0x86dd },
      { code: 0x06, jt: 0, jf: 0, k: 0xffffffff },
      { code: 0x06, jt: 0, jf: 0, k: 0 },
    ]);
    assert.deepEqual(decode(encode(decode(prog))), decode(prog));
  });

  test('negative offsets (SKF_NET_OFF) encode as unsigned k', () => {
    const [insn] = new BpfAssembler()
      .ldw(SKF_NET_OFF + 24)
      .ret(0)
      .instructions();
    assert.equal(insn.k, 0xfff00018);
    assert.equal(insn.code, 0x20);
  });

  test('rejects undefined labels, backward and overlong jumps, empty programs', () => {
    assert.throws(() => new BpfAssembler().jeq(1, 'nowhere', 0).ret(0).assemble(), BpfError);
    assert.throws(() => new BpfAssembler().label('top').ldi(0).jeq(1, 'top', 0).ret(0).assemble(), /backward/);
    const long = new BpfAssembler().jeq(1, 'far', 0);
    for (let i = 0; i < 300; i++) long.ldi(i);
    long.label('far').ret(0);
    assert.throws(() => long.assemble(), /too long/);
    assert.throws(() => encode([]), BpfError);
    assert.throws(() => new BpfAssembler().label('a').label('a'), /twice/);
  });
});

const CLAT = parseIPv6('2001:db8:1:2:aaaa:bbbb:cccc:dddd');
const OTHER = parseIPv6('2001:db8:1:2::99');
const PEER = parseIPv6('2001:db8:1:2::1');

/** An Ethernet frame (netOff 14) carrying an IPv6 packet with `payload`. */
function frame(opts: {
  src?: Uint8Array;
  dst: Uint8Array;
  next: number;
  hop?: number;
  payload: Uint8Array;
}): Uint8Array {
  const f = new Uint8Array(14 + 40 + opts.payload.length);
  f[12] = 0x86;
  f[13] = 0xdd;
  f[14] = 0x60;
  f[18] = opts.payload.length >> 8;
  f[19] = opts.payload.length & 0xff;
  f[20] = opts.next;
  f[21] = opts.hop ?? 64;
  f.set(opts.src ?? PEER, 22);
  f.set(opts.dst, 38);
  f.set(opts.payload, 54);
  return f;
}

function nd(type: number, target: Uint8Array): Uint8Array {
  const p = new Uint8Array(24);
  p[0] = type;
  p.set(target, 8);
  return p;
}

const ALL_NODES = parseIPv6('ff02::1');
const SN = solicitedNode(CLAT);

describe('CLAT receive filter', () => {
  const prog = clatReceiveFilter(CLAT);
  const run = (f: Uint8Array) => runFilter(prog, f, 14);

  test('accepts any packet to the CLAT address', () => {
    assert.equal(run(frame({ dst: CLAT, next: 17, payload: new Uint8Array(8) })), 0xffffffff);
    assert.equal(run(frame({ dst: CLAT, next: 6, payload: new Uint8Array(20) })), 0xffffffff);
    assert.equal(run(frame({ dst: CLAT, next: 58, payload: nd(128, OTHER) })), 0xffffffff);
  });

  test('drops packets to other addresses, and differing in any one word', () => {
    assert.equal(run(frame({ dst: OTHER, next: 17, payload: new Uint8Array(8) })), 0);
    for (let w = 0; w < 4; w++) {
      const d = Uint8Array.from(CLAT);
      d[w * 4 + 3] ^= 1;
      assert.equal(run(frame({ dst: d, next: 17, payload: new Uint8Array(8) })), 0, `word ${w}`);
    }
  });

  test('accepts NS and NA for the CLAT address to its solicited-node group or all-nodes, hop limit 255', () => {
    assert.equal(
      run(frame({ src: new Uint8Array(16), dst: SN, next: 58, hop: 255, payload: nd(135, CLAT) })),
      0xffffffff,
    );
    assert.equal(run(frame({ dst: ALL_NODES, next: 58, hop: 255, payload: nd(136, CLAT) })), 0xffffffff);
    assert.equal(run(frame({ dst: SN, next: 58, hop: 255, payload: nd(136, CLAT) })), 0xffffffff);
  });

  test('drops ND for other targets, other destinations, other hop limits, other ICMPv6 types', () => {
    assert.equal(run(frame({ dst: SN, next: 58, hop: 255, payload: nd(135, OTHER) })), 0);
    assert.equal(run(frame({ dst: solicitedNode(OTHER), next: 58, hop: 255, payload: nd(135, CLAT) })), 0);
    assert.equal(run(frame({ dst: OTHER, next: 58, hop: 255, payload: nd(136, CLAT) })), 0);
    assert.equal(run(frame({ dst: SN, next: 58, hop: 64, payload: nd(135, CLAT) })), 0);
    assert.equal(run(frame({ dst: ALL_NODES, next: 58, hop: 255, payload: nd(134, CLAT) })), 0);
    assert.equal(run(frame({ dst: ALL_NODES, next: 17, hop: 255, payload: nd(136, CLAT) })), 0);
  });

  test('drops truncated packets (loads past the end)', () => {
    const f = frame({ dst: SN, next: 58, hop: 255, payload: nd(135, CLAT) });
    assert.equal(run(f.subarray(0, 14 + 40 + 12)), 0);
  });

  test('works on raw-IP links too (network header at 0)', () => {
    const f = frame({ dst: CLAT, next: 17, payload: new Uint8Array(8) });
    assert.equal(runFilter(prog, f.subarray(14), 0), 0xffffffff);
  });

  test('needs a 16-byte address', () => {
    assert.throws(() => clatReceiveFilter(new Uint8Array(4)), BpfError);
  });
});

describe('neighbor responder filter', () => {
  const prog = ndSolicitationFilter(CLAT);
  const run = (f: Uint8Array) => runFilter(prog, f, 14);

  test('accepts NS for the CLAT address to its solicited-node group (resolution, DAD) or to itself (NUD)', () => {
    assert.equal(run(frame({ dst: SN, next: 58, hop: 255, payload: nd(135, CLAT) })), 0xffffffff);
    assert.equal(
      run(frame({ src: new Uint8Array(16), dst: SN, next: 58, hop: 255, payload: nd(135, CLAT) })),
      0xffffffff,
    );
    assert.equal(run(frame({ dst: CLAT, next: 58, hop: 255, payload: nd(135, CLAT) })), 0xffffffff);
    assert.equal(
      runFilter(prog, frame({ dst: CLAT, next: 58, hop: 255, payload: nd(135, CLAT) }).subarray(14), 0),
      0xffffffff,
    );
  });

  test('drops the traffic to translate, NAs, other targets, destinations and hop limits', () => {
    assert.equal(run(frame({ dst: CLAT, next: 17, payload: new Uint8Array(8) })), 0);
    assert.equal(run(frame({ dst: CLAT, next: 58, hop: 255, payload: nd(128, CLAT) })), 0);
    assert.equal(run(frame({ dst: SN, next: 58, hop: 255, payload: nd(136, CLAT) })), 0);
    assert.equal(run(frame({ dst: SN, next: 58, hop: 255, payload: nd(135, OTHER) })), 0);
    assert.equal(run(frame({ dst: ALL_NODES, next: 58, hop: 255, payload: nd(135, CLAT) })), 0);
    assert.equal(run(frame({ dst: OTHER, next: 58, hop: 255, payload: nd(135, CLAT) })), 0);
    assert.equal(run(frame({ dst: SN, next: 58, hop: 64, payload: nd(135, CLAT) })), 0);
    const f = frame({ dst: SN, next: 58, hop: 255, payload: nd(135, CLAT) });
    assert.equal(run(f.subarray(0, 14 + 40 + 20)), 0);
    assert.throws(() => ndSolicitationFilter(new Uint8Array(4)), BpfError);
  });
});

describe('the two ND filters side by side (one builder, different types and destinations)', () => {
  const receive = clatReceiveFilter(CLAT);
  const responder = ndSolicitationFilter(CLAT);
  const ACCEPT = 0xffffffff;
  // [what, packet, receive filter's verdict, neighbor responder's verdict]
  const cases: [string, Uint8Array, number, number][] = [
    ['NS to the solicited-node group', frame({ dst: SN, next: 58, hop: 255, payload: nd(135, CLAT) }), ACCEPT, ACCEPT],
    ['NS to all-nodes', frame({ dst: ALL_NODES, next: 58, hop: 255, payload: nd(135, CLAT) }), ACCEPT, 0],
    ['NS to the CLAT address itself', frame({ dst: CLAT, next: 58, hop: 255, payload: nd(135, CLAT) }), ACCEPT, ACCEPT],
    ['NA to the solicited-node group', frame({ dst: SN, next: 58, hop: 255, payload: nd(136, CLAT) }), ACCEPT, 0],
    ['NA to all-nodes', frame({ dst: ALL_NODES, next: 58, hop: 255, payload: nd(136, CLAT) }), ACCEPT, 0],
    ['RA type to all-nodes', frame({ dst: ALL_NODES, next: 58, hop: 255, payload: nd(134, CLAT) }), 0, 0],
    ['NS for another target', frame({ dst: SN, next: 58, hop: 255, payload: nd(135, OTHER) }), 0, 0],
    ['NS with hop limit 64', frame({ dst: SN, next: 58, hop: 64, payload: nd(135, CLAT) }), 0, 0],
    ['NS to another address', frame({ dst: OTHER, next: 58, hop: 255, payload: nd(135, CLAT) }), 0, 0],
    ['NS not in ICMPv6', frame({ dst: SN, next: 17, hop: 255, payload: nd(135, CLAT) }), 0, 0],
    ['UDP to the CLAT address', frame({ dst: CLAT, next: 17, payload: new Uint8Array(8) }), ACCEPT, 0],
  ];
  for (const [what, packet, onReceive, onResponder] of cases) {
    test(what, () => {
      assert.equal(runFilter(receive, packet, 14), onReceive, 'receive filter');
      assert.equal(runFilter(responder, packet, 14), onResponder, 'neighbor responder filter');
    });
  }
});

describe('CLAT receive filter with mapped LAN prefixes (router mode, stateless)', () => {
  const mapped = [parsePrefix6('2001:db8:100::cb00:7100/120'), parsePrefix6('2001:db8:100::c633:6480/121')];
  const prog = clatReceiveFilter(CLAT, mapped);
  const run = (dst: string | Uint8Array) =>
    runFilter(
      prog,
      frame({ dst: typeof dst === 'string' ? parseIPv6(dst) : dst, next: 17, payload: new Uint8Array(8) }),
      14,
    );

  test('accepts the CLAT address and every address in each mapped prefix', () => {
    assert.equal(run(CLAT), 0xffffffff);
    for (const a of ['2001:db8:100::203.0.113.0', '2001:db8:100::203.0.113.10', '2001:db8:100::203.0.113.255'])
      assert.equal(run(a), 0xffffffff, a);
    for (const a of ['2001:db8:100::198.51.100.128', '2001:db8:100::198.51.100.255'])
      assert.equal(run(a), 0xffffffff, a);
  });

  test('drops addresses just outside the prefixes, and differing in any earlier word', () => {
    for (const a of [
      '2001:db8:100::203.0.112.255',
      '2001:db8:100::203.0.114.0',
      '2001:db8:100::198.51.100.127',
      '2001:db8:100::1:cb00:710a',
      '2001:db8:101::203.0.113.10',
      '2001:db8:100:0:1::203.0.113.10',
    ])
      assert.equal(run(a), 0, a);
  });

  test('still accepts the ND that DAD must see, and no prefix means the plain filter', () => {
    assert.equal(runFilter(prog, frame({ dst: SN, next: 58, hop: 255, payload: nd(135, CLAT) }), 14), 0xffffffff);
    assert.deepEqual(clatReceiveFilter(CLAT, []), clatReceiveFilter(CLAT));
  });

  test('as many mapped prefixes as router mode maps (16) still assemble and match', () => {
    const many = Array.from({ length: 16 }, (_, i) => parsePrefix6(`2001:db8:100::c633:${(i * 16).toString(16)}/124`));
    const p = clatReceiveFilter(CLAT, many);
    const f = (d: string) => runFilter(p, frame({ dst: parseIPv6(d), next: 17, payload: new Uint8Array(8) }), 14);
    assert.equal(f('2001:db8:100::c633:f5'), 0xffffffff);
    assert.equal(f('2001:db8:100::c633:105'), 0);
    assert.equal(f('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), 0xffffffff);
  });
});
