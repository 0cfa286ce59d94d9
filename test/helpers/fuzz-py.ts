/**
 * Python 3 scripts (standard library only: no scapy on the test machines) for hostile traffic
 * through a live clatd (test/helpers/fuzz-live.ts): Node has no raw or packet sockets of its own.
 *
 * - FUZZ_NET_PY, on the router's side of the link: Ethernet frames toward the CLAT's IPv6 address
 *   (and ND/RA around it) through a packet socket, so nothing in the sender's kernel repairs them.
 * - FUZZ_TUN_PY, in the host: bare IPv4 packets written into the TUN's transmit path through a
 *   packet socket, so clatd reads exactly these bytes (a raw IPv4 socket would have the kernel
 *   fix the header checksum and length).
 * - CAPTURE_PY: reads what clatd emits on an interface and verifies its checksums.
 * - GOOD_PY: a UDP echo server and a client that counts its answers (the good traffic).
 *
 * Each fuzzer pre-builds a pool of templates (building is what costs in Python), sends them in a
 * tight loop paced to a rate, and rebuilds a slice of the pool every cycle for variety.
 */

/** Packet builders shared by the two fuzzers (prepended to each). */
const COMMON_PY = `
import json, os, random, signal, socket, struct, sys, time
def csum(b):
    if len(b) & 1: b += b'\\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
def a6(s): return socket.inet_pton(socket.AF_INET6, s)
def a4(s): return socket.inet_aton(s)
R = random.Random(int(os.environ.get('FUZZ_SEED', '1')))
def rb(n): return bytes(R.getrandbits(8) for _ in range(n))
# Packets built with a checksum that is wrong on purpose (or may be: random bytes) carry MARK as
# their source port or echo identifier. A translator keeps a wrong checksum wrong (RFC 7915 updates
# checksums, it does not verify them), so CAPTURE_PY counts what it sees with MARK apart.
MARK = 0xBADC
def pace(sent, t0, rate):
    if rate <= 0: return
    ahead = sent / rate - (time.monotonic() - t0)
    if ahead > 0.002: time.sleep(ahead)
`;

/**
 * The fuzzers' send loop, after their `build()` and socket `s`: a pool of 8192 frames built ahead,
 * sent in turn at `cfg.rate` per second (an eighth of the pool rebuilt after each pass) until
 * `cfg.count` are sent or SIGTERM; then one JSON line with the counts per class.
 */
const SEND_LOOP_PY = `POOLN = 8192
tpl = [build() for _ in range(POOLN)]
stop = {'now': False}
signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
count, rate = cfg['count'], cfg['rate']
per = {}
sent = errors = 0
t0 = time.monotonic()
i = 0
while sent + errors < count and not stop['now']:
    name, p = tpl[i]
    try:
        s.send(p)
        sent += 1
        per[name] = per.get(name, 0) + 1
    except OSError:
        errors += 1
        time.sleep(0.001)
    i += 1
    if i == POOLN:
        i = 0
        for j in R.sample(range(POOLN), POOLN // 8): tpl[j] = build()
    if (sent & 255) == 0: pace(sent, t0, rate)
print(json.dumps({'sent': sent, 'sendErrors': errors, 'seconds': round(time.monotonic() - t0, 2), 'classes': per}), flush=True)
`;

/**
 * argv: JSON {iface, dstMac, srcMac, clat6, pool (the /96 as 12 bytes' worth of text, e.g.
 * 2001:db8:64::), count, rate (packets/s, 0: unpaced)}. Prints one JSON line: sent, send errors,
 * per-class counts.
 */
export const FUZZ_NET_PY = `${COMMON_PY}
cfg = json.loads(sys.argv[1])
CLAT = a6(cfg['clat6'])
POOL = a6(cfg['pool'])[:12]
SOL = a6('ff02::1:ff00:0')[:13] + CLAT[13:]
ALLN = a6('ff02::1')
eth = bytes.fromhex(cfg['dstMac'].replace(':', '')) + bytes.fromhex(cfg['srcMac'].replace(':', '')) + b'\\x86\\xdd'
eth_mc = lambda dst: bytes([0x33, 0x33]) + dst[12:] + eth[6:]
def pool(v4): return POOL + a4(v4)
GOOD4 = ['192.0.2.1', '198.51.100.7', '203.0.113.9', '8.8.8.8', '1.1.1.1']
MARTIAN4 = ['127.0.0.1', '0.0.0.0', '0.1.2.3', '224.0.0.5', '239.1.2.3', '255.255.255.255', '240.0.0.1',
            '192.0.0.4', '192.0.0.1', '169.254.1.1', '10.0.0.1', '100.64.0.1']
def src_good(): return pool(R.choice(GOOD4)) if R.random() < 0.7 else POOL + rb(4)
def ip6(src, dst, nh, pl, hl=64, plen=None, ver=0x60000000):
    return struct.pack('!IHBB', ver | R.getrandbits(20), len(pl) if plen is None else plen, nh, hl) + src + dst + pl
def l4sum(src, dst, nh, seg, off):
    c = csum(src + dst + struct.pack('!I3xB', len(seg), nh) + seg)
    return seg[:off] + struct.pack('!H', c) + seg[off + 2:]
def udp(src, dst, data, sport=None, dport=None, ck=True):
    seg = struct.pack('!HHHH', sport or R.randrange(1, 0xbad0), dport or R.randrange(1, 65536), 8 + len(data), 0) + data
    return l4sum(src, dst, 17, seg, 6) if ck else seg
def tcp(src, dst, data=b'', sport=None):
    opts = R.choice([b'', b'\\x02\\x04\\x05\\xb4', b'\\x01\\x01\\x08\\x0a' + rb(8), rb(R.randrange(0, 11) * 4)])
    hl = (20 + len(opts)) // 4
    seg = struct.pack('!HHIIBBHHH', sport or R.randrange(1, 0xbad0), R.randrange(1, 65536), R.getrandbits(32), R.getrandbits(32),
                      hl << 4, R.getrandbits(8), R.randrange(65536), 0, 0) + opts + data
    return l4sum(src, dst, 6, seg, 16)
def icmp6(src, dst, t, c, body):
    return l4sum(src, dst, 58, struct.pack('!BBH', t, c, 0) + body, 2)
def l4(src, dst, mark=False):
    k = R.randrange(3)
    if k == 0: return 17, udp(src, dst, rb(R.randrange(0, 200)), sport=MARK if mark else None)
    if k == 1: return 6, tcp(src, dst, rb(R.randrange(0, 100)), sport=MARK if mark else None)
    return 58, icmp6(src, dst, R.choice([128, 129]), 0, struct.pack('!H', MARK if mark else R.randrange(0, 0xbad0)) + rb(2 + R.randrange(0, 100)))
def good(src=None, mark=False):
    src = src or src_good()
    nh, seg = l4(src, CLAT, mark)
    return ip6(src, CLAT, nh, seg)
def ext(nh, body_len=None):
    n = R.randrange(0, 4) if body_len is None else body_len
    opts = bytes(R.choice([[0], [1, 0], [1, 2, 0, 0], [5, 2, 0, 0], [0xc2, 4] + list(rb(4)), [0x80 | R.getrandbits(7), 2, 0, 0],
                           [R.getrandbits(8), R.randrange(0, 8)]]))
    body = (opts + rb(6 + 8 * n))[:6 + 8 * n]
    return struct.pack('!BB', nh, n) + body
def chain():
    src = src_good()
    nh, seg = l4(src, CLAT)
    hdrs = []
    for _ in range(R.randrange(1, 7)):
        kind = R.choice([0, 43, 60, 44, 51, 50, 59, 135, 139, 140, 253])
        if kind == 44:
            h = struct.pack('!BBHI', nh, 0, (R.randrange(0, 8192) << 3) | R.getrandbits(1), R.getrandbits(32))
        elif kind == 43:
            segs = R.randrange(0, 3)
            h = struct.pack('!BBBB', nh, 2 * segs, R.choice([0, 2, 3, 4, 253]), R.randrange(0, segs + 2)) + bytes(4) + rb(16 * segs)
        elif kind == 51:
            h = struct.pack('!BBH', nh, 4, 0) + rb(20)
        elif kind == 50:
            h, nh = rb(R.randrange(8, 64)), 50
            hdrs.append(h)
            continue
        elif kind == 59:
            nh = 59
            hdrs.append(b'')
            continue
        else:
            h = ext(nh)
        hdrs.append(h)
        nh = kind
    return ip6(src, CLAT, nh, b''.join(reversed(hdrs)) + seg)
def frag():
    src = src_good()
    ident = R.getrandbits(32)
    nh, seg = l4(src, CLAT)
    k = R.randrange(6)
    if k == 0:  # atomic fragment
        return ip6(src, CLAT, 44, struct.pack('!BBHI', nh, 0, 0, ident) + seg)
    if k == 1:  # a first fragment whose rest never comes
        return ip6(src, CLAT, 44, struct.pack('!BBHI', nh, 0, 1, ident) + seg[:max(8, len(seg) & ~7)])
    if k == 2:  # a later fragment, nothing before it
        return ip6(src, CLAT, 44, struct.pack('!BBHI', nh, 0, (R.randrange(1, 8192) << 3) | R.getrandbits(1), ident) + rb(8 * R.randrange(1, 20)))
    if k == 3:  # overlapping: offset inside the first's range
        return ip6(src, CLAT, 44, struct.pack('!BBHI', nh, 0, (R.randrange(0, 4) << 3) | 1, ident & 0xff) + rb(8 * R.randrange(1, 12)))
    if k == 4:  # tiny: a first fragment that does not hold the transport header
        return ip6(src, CLAT, 44, struct.pack('!BBHI', nh, 0, 1, ident) + seg[:R.randrange(0, 8)])
    # ICMPv6 in fragments
    return ip6(src, CLAT, 44, struct.pack('!BBHI', 58, 0, R.choice([0, 1, 9]), ident) + icmp6(src, CLAT, 128, 0, rb(40)))
def martian():
    k = R.randrange(4)
    if k == 0: src = pool(R.choice(MARTIAN4))
    elif k == 1: src = R.choice([CLAT, a6('::'), a6('::1'), a6('ff02::1'), a6('fe80::1'), a6('2001:db8:99::1'), a6('::ffff:192.0.2.1'), POOL + a4('192.0.0.4')])
    elif k == 2: src = pool(R.choice(GOOD4)); return ip6(src, CLAT, 17, udp(src, CLAT, rb(20)), hl=R.choice([0, 1, 2]))
    else: src = pool(R.choice(GOOD4)); return ip6(src, CLAT, 17, udp(src, CLAT, rb(20), dport=R.choice([0, 7, 53, 67, 68, 123, 137])))
    nh, seg = l4(src, CLAT)
    return ip6(src, CLAT, nh, seg)
def icmperr():
    src = src_good()
    inner_dst = src if R.random() < 0.8 else POOL + rb(4)
    qnh, qseg = l4(CLAT, inner_dst)
    inner = ip6(CLAT, inner_dst, qnh, qseg)
    if R.random() < 0.2: inner = ip6(CLAT, inner_dst, 58, icmp6(CLAT, inner_dst, 1, 4, bytes(4) + inner[:R.randrange(0, 80)]))
    if R.random() < 0.2: inner = ip6(CLAT, inner_dst, 0, ext(qnh) + qseg)
    inner = inner[:R.choice([len(inner), R.randrange(0, len(inner) + 1), 40, 48])]
    t, c, word = R.choice([(1, R.randrange(0, 8), 0), (2, 0, R.choice([0, 40, 68, 1279, 1280, 1500, 65535, 0xffffffff])),
                           (3, R.randrange(0, 3), 0), (4, R.randrange(0, 4), R.randrange(0, 80)), (R.randrange(5, 128), 0, 0)])
    return ip6(src, CLAT, 58, icmp6(src, CLAT, t, c, struct.pack('!I', word) + inner))
def nd():
    ll = a6('fe80::') [:8] + rb(8)
    k = R.randrange(4)
    opt = R.choice([b'', struct.pack('!BB', 1, 1) + rb(6), struct.pack('!BB', 2, 1) + rb(6), struct.pack('!BB', R.randrange(0, 256), R.randrange(1, 3)) + rb(6), b'\\x01\\x00'])
    if k == 0: return eth_mc(SOL), ip6(a6('::'), SOL, 58, icmp6(a6('::'), SOL, 135, 0, bytes(4) + CLAT + opt), hl=255)
    if k == 1: return eth_mc(SOL), ip6(ll, SOL, 58, icmp6(ll, SOL, 135, 0, bytes(4) + CLAT + opt), hl=R.choice([255, 255, 64]))
    if k == 2: return eth_mc(ALLN), ip6(ll, ALLN, 58, icmp6(ll, ALLN, 136, 0, struct.pack('!I', R.getrandbits(32)) + CLAT + opt), hl=255)
    return None, ip6(ll, CLAT, 58, icmp6(ll, CLAT, 135, 0, bytes(4) + CLAT + opt), hl=255)
def ra():
    ll = a6('fe80::')[:8] + rb(8)
    opts = b''
    for _ in range(R.randrange(1, 4)):
        k = R.randrange(7)
        if k == 0: opts += struct.pack('!BBH', 38, 2, (R.randrange(0, 8192) << 3) | R.randrange(6, 8)) + rb(12)  # bad PLC
        elif k == 1: opts += struct.pack('!BBH', 38, R.choice([1, 3, 4]), R.randrange(65536)) + rb(4 + 8 * R.randrange(0, 3))  # bad length
        elif k == 2: opts += struct.pack('!BBH', 38, 2, 0) + POOL  # lifetime 0 from a router nobody chose
        elif k == 3: opts += struct.pack('!BBH', 38, 2, (R.randrange(1, 8192) << 3)) + R.choice([a6('ff00::')[:12], bytes(12), a6('fe80::')[:12], CLAT[:12], a6('::ffff:0:0')[:12]])  # prefixes no one may use
        elif k == 4: opts += struct.pack('!BB', 38, 0)  # zero length: the kernel drops the whole RA
        elif k == 5: opts += struct.pack('!BB', R.randrange(0, 256), 1) + rb(6)
        else: opts += struct.pack('!BBH', 38, 2, R.choice([1, 8191]) << 3) + rb(4) + bytes(8)  # valid format, a new source each time, 8 s or 18 h
    body = struct.pack('!BBHII', 64, 0, 0, 0, 0) + opts  # router lifetime 0: never a default router
    return eth_mc(ALLN), ip6(ll, ALLN, 58, icmp6(ll, ALLN, 134, 0, body), hl=R.choice([255, 255, 255, 64]))
def rnd():
    nh, pl = R.getrandbits(8), bytearray(rb(R.randrange(0, 300)))
    if nh in (6, 17) and len(pl) >= 2: pl[0:2] = struct.pack('!H', MARK)
    if nh == 58 and len(pl) >= 6: pl[4:6] = struct.pack('!H', MARK)
    return ip6(rb(16) if R.random() < 0.5 else src_good(), CLAT, nh, bytes(pl),
               plen=R.choice([None, R.randrange(65536)]), ver=R.getrandbits(4) << 28 if R.random() < 0.3 else 0x60000000)
def trunc():
    p = R.choice([good, chain, frag, icmperr])()
    return p[:R.randrange(14, len(p) + 1)] if R.random() < 0.9 else p[:R.randrange(0, 14)] + bytes(0)
def badsum():
    p = bytearray(good(mark=True))
    # Bytes 2-3 and 6-7 of the transport header: never the MARK (bytes 0-1, or 4-5 of an echo).
    p[40 + R.choice([2, 3, 6, 7])] ^= 1 + R.getrandbits(7)
    if R.random() < 0.3 and p[6] == 17: p[46:48] = b'\\0\\0'  # UDP without a checksum: illegal in IPv6
    return bytes(p)
def bigpkt():
    src = src_good()
    return ip6(src, CLAT, 17, udp(src, CLAT, rb(R.randrange(1200, 1453))))
CLASSES = [('random', rnd, 12), ('truncated', trunc, 10), ('badsum', badsum, 10), ('exthdr', chain, 12), ('frag', frag, 14),
           ('martian', martian, 10), ('icmperr', icmperr, 10), ('good', good, 6), ('big', bigpkt, 2), ('nd', nd, 8), ('ra', ra, 6)]
WEIGHTED = [c for c in CLASSES for _ in range(c[2])]
def build():
    name, fn, _ = R.choice(WEIGHTED)
    r = fn()
    e, p = r if isinstance(r, tuple) else (None, r)
    return name, (e or eth) + p[:1500]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind((cfg['iface'], 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
${SEND_LOOP_PY}`;

/**
 * argv: JSON {iface (the TUN), clat4, count, rate}. Bare IPv4 packets (and junk) into the TUN's
 * transmit path, which clatd reads. Prints one JSON line like FUZZ_NET_PY.
 */
export const FUZZ_TUN_PY = `${COMMON_PY}
cfg = json.loads(sys.argv[1])
CLAT4 = a4(cfg['clat4'])
DSTS = ['192.0.2.1', '198.51.100.7', '203.0.113.9', '8.8.8.8']
MARTIAN4 = ['127.0.0.1', '0.0.0.0', '224.0.0.1', '239.1.2.3', '255.255.255.255', '240.0.0.1', '192.0.0.4', '169.254.1.1']
def ip4(src, dst, proto, pl, ttl=64, opts=b'', frag=0, tl=None, ident=None, fix=True):
    ihl = 5 + len(opts) // 4
    h = struct.pack('!BBHHHBBH4s4s', 0x40 | ihl, R.getrandbits(8) & 0xfc, (ihl * 4 + len(pl)) if tl is None else tl,
                    R.getrandbits(16) if ident is None else ident, frag, ttl, proto, 0, src, dst) + opts
    if fix: h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    return h + pl
def l4sum(src, dst, proto, seg, off):
    c = csum(src + dst + struct.pack('!xBH', proto, len(seg)) + seg)
    return seg[:off] + struct.pack('!H', c) + seg[off + 2:]
def udp(src, dst, data, ck=True, dport=None, sport=None):
    seg = struct.pack('!HHHH', sport or R.randrange(1, 0xbad0), dport or R.randrange(1, 65536), 8 + len(data), 0) + data
    return l4sum(src, dst, 17, seg, 6) if ck else seg
def tcp(src, dst, data=b'', sport=None):
    seg = struct.pack('!HHIIBBHHH', sport or R.randrange(1, 0xbad0), R.randrange(1, 65536), R.getrandbits(32), R.getrandbits(32), 0x50, R.getrandbits(8), 65535, 0, 0) + data
    return l4sum(src, dst, 6, seg, 16)
def icmp4(t, c, body):
    m = struct.pack('!BBH', t, c, 0) + body
    return m[:2] + struct.pack('!H', csum(m)) + m[4:]
def l4(src, dst, mark=False):
    sport = MARK if mark else None
    k = R.randrange(4)
    if k == 0: return 17, udp(src, dst, rb(R.randrange(0, 200)), sport=sport)
    if k == 1: return 6, tcp(src, dst, rb(R.randrange(0, 100)), sport=sport)
    if k == 2 and not mark: return 17, udp(src, dst, rb(20), ck=False)  # no checksum: legal in IPv4, computed for IPv6
    return 1, icmp4(8, 0, struct.pack('!H', MARK if mark else R.randrange(0, 0xbad0)) + rb(2 + R.randrange(0, 60)))
def good(src=None, dst=None, mark=False):
    src, dst = src or CLAT4, dst or a4(R.choice(DSTS))
    proto, seg = l4(src, dst, mark)
    return ip4(src, dst, proto, seg)
def rnd():
    return R.choice([rb(R.randrange(0, 400)), b'\\x45' + rb(R.randrange(0, 60)), b'\\x60' + rb(R.randrange(39, 200))])
def trunc():
    p = good()
    return p[:R.randrange(1, len(p) + 1)]
def badsum():
    p = bytearray(good(mark=True))
    p[R.choice([10, 11, 22, 23, 26, 27])] ^= 1 + R.getrandbits(7)  # the header checksum, or the transport's bytes 2-3, 6-7
    return bytes(p)
def options():
    opts = R.choice([bytes([7, 7, 4]) + bytes(4) + b'\\x00', bytes([0x83, 7, 4]) + a4('192.0.2.9') + b'\\x00', bytes([0x89, 7, 4]) + a4('192.0.2.9') + b'\\x00',
                     bytes([68, 8, 5, 0]) + bytes(4), bytes([0x94, 4, 0, 0]), rb(4 * R.randrange(1, 11)), bytes([1, 1, 1, 0])])
    src, dst = CLAT4, a4(R.choice(DSTS))
    proto, seg = l4(src, dst)
    return ip4(src, dst, proto, seg, opts=opts)
def frag():
    src, dst = CLAT4, a4(R.choice(DSTS))
    proto, seg = l4(src, dst)
    ident = R.getrandbits(16)
    k = R.randrange(5)
    if k == 0: return ip4(src, dst, proto, seg[:max(8, len(seg) & ~7)], frag=0x2000, ident=ident)  # first, the rest never comes
    if k == 1: return ip4(src, dst, proto, rb(8 * R.randrange(1, 20)), frag=0x2000 | R.randrange(1, 8192), ident=ident)
    if k == 2: return ip4(src, dst, proto, rb(8 * R.randrange(1, 10)), frag=R.choice([0x6000, 0x4000 | R.randrange(1, 8192)]), ident=ident & 7)  # DF with MF / offset
    if k == 3: return ip4(src, dst, proto, seg[:R.randrange(0, 8)], frag=0x2000, ident=ident)  # tiny first fragment
    return ip4(src, dst, proto, rb(8 * R.randrange(1, 4)), frag=0x2000 | R.randrange(0, 3), ident=ident & 3)  # overlapping
def martian():
    k = R.randrange(3)
    if k == 0: src, dst = a4(R.choice(MARTIAN4)), a4(R.choice(DSTS))
    elif k == 1: src, dst = CLAT4, a4(R.choice(MARTIAN4))
    else: src, dst = a4(R.choice(['198.51.100.1', '10.1.1.1', '192.0.0.5'])), a4(R.choice(DSTS))  # not the CLAT's address
    proto, seg = l4(src, dst)
    return ip4(src, dst, proto, seg, ttl=R.choice([64, 64, 1, 0]))
def proto58():
    dst = a4(R.choice(DSTS))
    return ip4(CLAT4, dst, 58, struct.pack('!BBH', 128, 0, 0) + rb(20))
def icmperr():
    dst = a4(R.choice(DSTS))
    proto, seg = l4(dst, CLAT4)
    inner = ip4(dst, CLAT4, proto, seg)
    inner = inner[:R.choice([len(inner), R.randrange(0, len(inner) + 1), 28])]
    t, c, word = R.choice([(3, R.randrange(0, 16), 0), (3, 4, R.choice([0, 20, 40, 67, 68, 576, 1500, 65535])), (11, R.randrange(0, 2), 0),
                           (12, R.randrange(0, 3), R.getrandbits(32)), (R.randrange(4, 256), 0, 0), (5, 0, 0), (4, 0, 0)])
    return ip4(CLAT4, dst, 1, icmp4(t, c, struct.pack('!I', word) + inner))
def badhdr():
    src, dst = CLAT4, a4(R.choice(DSTS))
    # Marked: a Total Length below the bytes sent is legal (the rest is link padding), and the
    # transport checksum, made over all of them, is then wrong.
    proto, seg = l4(src, dst, mark=True)
    k = R.randrange(4)
    if k == 0: return ip4(src, dst, proto, seg, tl=R.randrange(0, 20))
    if k == 1: return ip4(src, dst, proto, seg, tl=R.randrange(40, 65536))
    if k == 2: return ip4(src, dst, proto, seg, fix=False)
    p = bytearray(ip4(src, dst, proto, seg)); p[0] = 0x40 | R.choice([0, 1, 4, 15]); return bytes(p)
def big():
    dst = a4(R.choice(DSTS))
    return ip4(CLAT4, dst, 17, udp(CLAT4, dst, rb(R.randrange(1200, 1452))), frag=R.choice([0, 0x4000]))
CLASSES = [('random', rnd, 10), ('truncated', trunc, 10), ('badsum', badsum, 10), ('options', options, 10), ('frag', frag, 14),
           ('martian', martian, 12), ('proto58', proto58, 4), ('icmperr', icmperr, 12), ('badhdr', badhdr, 10), ('good', good, 6), ('big', big, 2)]
WEIGHTED = [c for c in CLASSES for _ in range(c[2])]
def build():
    name, fn, _ = R.choice(WEIGHTED)
    p = fn()
    return name, (p or b'\\x45')[:cfg.get('mtu', 1480)]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((cfg['iface'], 0x0800))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
${SEND_LOOP_PY}`;

/**
 * argv: interface, 6|4 (what to verify), optional source filter (an IPv6 address: only packets from
 * it). Reads every frame the interface receives from the other end (not its own sends) and checks
 * the IP header checksum (IPv4) and the transport checksum of every unfragmented UDP, TCP, ICMP
 * and ICMPv6 packet. Frames the kernel marks as checksum-not-yet-computed (CHECKSUM_PARTIAL, a GSO
 * segment on its way) are counted apart, not verified. Prints `ready`, then on SIGTERM one JSON
 * line: seen, verified, bad (with up to 5 hex samples), partial, kernel drops.
 */
export const CAPTURE_PY = `
import json, signal, socket, struct, sys
iface, fam = sys.argv[1], sys.argv[2]
only = socket.inet_pton(socket.AF_INET6, sys.argv[3]) if len(sys.argv) > 3 else None
SOL_PACKET, PACKET_AUXDATA, PACKET_STATISTICS = 263, 8, 6
TP_STATUS_CSUMNOTREADY = 8
MARK = b'\\xba\\xdc'  # FUZZ_*_PY's mark of a checksum wrong on purpose
def marked(proto, seg):
    if proto in (6, 17): return seg[0:2] == MARK
    if proto in (1, 58) and len(seg) >= 6 and seg[0] in (0, 8, 128, 129): return seg[4:6] == MARK
    return False
def csum(b):
    if len(b) & 1: b += b'\\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return t & 0xffff
proto = 0x86dd if fam == '6' else 0x0800
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
s.bind((iface, 0x0003))
s.settimeout(0.2)
hdr = 14 if fam == '6' else 0
st = {'seen': 0, 'verified': 0, 'bad': 0, 'partial': 0, 'skipped': 0, 'inheritedBad': 0, 'inheritedOk': 0, 'samples': [], 'kinds': {}}
stop = {'now': False}
signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
def bad(p, why):
    st['bad'] += 1
    if len(st['samples']) < 5: st['samples'].append(why + ' ' + p[:96].hex())
def inherited(ok):
    k = 'inheritedOk' if ok else 'inheritedBad'
    st[k] += 1
def kind(k): st['kinds'][k] = st['kinds'].get(k, 0) + 1
def v6(p):
    if len(p) < 40 or p[0] >> 4 != 6: return st.update(skipped=st['skipped'] + 1)
    if only and p[8:24] != only: return st.update(skipped=st['skipped'] + 1)
    nh, seg = p[6], p[40:40 + struct.unpack('!H', p[4:6])[0]]
    if nh not in (6, 17, 58): return kind('v6-nh%d' % nh)
    kind('v6-%d' % nh)
    if nh == 17 and len(seg) >= 8 and seg[6:8] == b'\\0\\0': return bad(p, 'udp6-zero-checksum')
    ok = csum(p[8:40] + struct.pack('!I3xB', len(seg), nh) + seg) == 0xffff
    if marked(nh, seg): return inherited(ok)
    if not ok: return bad(p, 'l4-6')
    st['verified'] += 1
def v4(p):
    if len(p) < 20 or p[0] >> 4 != 4: return st.update(skipped=st['skipped'] + 1)
    ihl = (p[0] & 15) * 4
    if csum(p[:ihl]) != 0xffff: return bad(p, 'ip4-header')
    proto, tl, fr = p[9], struct.unpack('!H', p[2:4])[0], struct.unpack('!H', p[6:8])[0]
    kind('v4-%d' % proto)
    if fr & 0x3fff: st['verified'] += 1; return  # a fragment: the header checked, the transport spans fragments
    seg = p[ihl:tl]
    if proto == 1: ok = csum(seg) == 0xffff
    elif proto in (6, 17):
        if proto == 17 and len(seg) >= 8 and seg[6:8] == b'\\0\\0': st['verified'] += 1; return
        ok = csum(p[12:20] + struct.pack('!xBH', proto, len(seg)) + seg) == 0xffff
    else: ok = True
    if marked(proto, seg): return inherited(ok)
    if not ok: return bad(p, 'l4-4')
    st['verified'] += 1
print('ready', flush=True)
while not stop['now']:
    try:
        data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(20))
    except socket.timeout:
        continue
    except InterruptedError:
        continue
    if addr[2] == socket.PACKET_OUTGOING or addr[1] != proto: continue
    st['seen'] += 1
    status = 0
    for lvl, typ, d in anc:
        if lvl == SOL_PACKET and typ == PACKET_AUXDATA: status = struct.unpack('I', d[:4])[0]
    if status & TP_STATUS_CSUMNOTREADY:
        st['partial'] += 1
        continue
    (v6 if fam == '6' else v4)(data[hdr:])
st['kernelDrops'] = struct.unpack('II', s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
print(json.dumps(st), flush=True)
`;

/**
 * \`server ADDR PORT\`: a UDP echo server (IPv6 or IPv4 by the address). \`client ADDR PORT RATE SECONDS\`:
 * sends numbered datagrams at RATE a second for SECONDS and prints one JSON line, sent and answered.
 */
export const GOOD_PY = `
import json, select, signal, socket, sys, time
mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ':' in addr else socket.AF_INET
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(fam, socket.SOCK_DGRAM)
if mode == 'server':
    s.bind((addr, port))
    print('ready', flush=True)
    while True:
        d, a = s.recvfrom(65535)
        s.sendto(d, a)
rate, secs = float(sys.argv[4]), float(sys.argv[5])
s.connect((addr, port))
s.setblocking(False)
sent, got = 0, set()
t0 = time.monotonic()
end = t0 + secs
while True:
    now = time.monotonic()
    if now >= end + 1: break
    if now < end and sent < (now - t0) * rate:
        try:
            s.send(b'good %d' % sent)
        except OSError:
            pass
        sent += 1
    r, _, _ = select.select([s], [], [], 0.005)
    if r:
        try:
            d = s.recv(2048)
            if d.startswith(b'good '): got.add(int(d[5:]))
        except OSError:
            pass
print(json.dumps({'sent': sent, 'answered': len(got)}), flush=True)
`;
