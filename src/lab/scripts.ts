/**
 * Small Python 3 helpers (standard library only) that the lab writes into its run directory: Node
 * has no raw or packet sockets of its own, and the daemon's native addon is not lab tooling.
 */

/**
 * An RA sender with PREF64 (RFC 8781 §4), used when the installed radvd predates `nat64prefix`
 * (radvd < 2.20, e.g. Debian 12). It sends what radvd would send (the M flag, the prefix with its
 * L and A flags, RDNSS, SLLA) plus the PREF64 option, answers Router Solicitations, and re-reads
 * its JSON config on SIGHUP like radvd. A config without `managed` and `autonomous` (other tests
 * write their own) gets a SLAAC RA.
 */
export const RA_SENDER_PY = `
import json, random, select, signal, socket, struct, sys, time
path = sys.argv[1]
state = {'reload': False}
def on_hup(*_): state['reload'] = True
def on_term(*_): sys.exit(0)
signal.signal(signal.SIGHUP, on_hup)
signal.signal(signal.SIGTERM, on_term)
def load():
    with open(path) as f: return json.load(f)
cfg = load()
iface = cfg['iface']
ifindex = socket.if_nametoindex(iface)
with open('/sys/class/net/%s/address' % iface) as f:
    mac = bytes.fromhex(f.read().strip().replace(':', ''))
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
PLC = {96: 0, 64: 1, 56: 2, 48: 3, 40: 4, 32: 5}
def ra(c):
    b = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0x80 if c.get('managed') else 0, c['routerLifetimeS'], 0, 0)
    b += struct.pack('!BB', 1, 1) + mac
    b += struct.pack('!BBBBIII', 3, 4, c['prefixLen'], 0xC0 if c.get('autonomous', True) else 0x80, 86400, 14400, 0)
    b += socket.inet_pton(socket.AF_INET6, c['prefix'])
    b += struct.pack('!BBHI', 25, 3, 0, max(60, 3 * c['intervalS']))
    b += socket.inet_pton(socket.AF_INET6, c['rdnss'])
    if c['pref64']:
        p, l = c['pref64'].split('/')
        scaled = min(8191, (c['pref64LifetimeS'] + 7) // 8)
        b += struct.pack('!BBH', 38, 2, (scaled << 3) | PLC[int(l)])
        b += socket.inet_pton(socket.AF_INET6, p)[:12]
    return b
def send():
    global cfg
    if state['reload']:
        state['reload'] = False
        cfg = load()
        print('ra-sender: reloaded, PREF64 %s' % cfg['pref64'], flush=True)
    s.sendto(ra(cfg), ('ff02::1', 0, 0, ifindex))
print('ra-sender: advertising on %s, PREF64 %s' % (iface, cfg['pref64']), flush=True)
send()
nxt = time.monotonic() + cfg['intervalS']
while True:
    if state['reload']:
        send()
    try:
        r, _, _ = select.select([s], [], [], max(0.0, min(0.5, nxt - time.monotonic())))
    except InterruptedError:
        continue
    if r:
        data, src = s.recvfrom(2048)
        if data and data[0] == 133:
            send()
    if time.monotonic() >= nxt:
        send()
        nxt = time.monotonic() + cfg['intervalS'] * random.uniform(0.75, 1.0)
`;

/**
 * Sends each hex-encoded frame given on the command line, as is, through a packet socket on the
 * interface: an Ethernet frame on a veth, a bare IP packet on a TUN. Prints the count sent.
 */
export const INJECT_PY = `
import socket, sys
iface = sys.argv[1]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.bind((iface, 0))
n = 0
for h in sys.argv[2:]:
    s.send(bytes.fromhex(h))
    n += 1
print(n)
`;
