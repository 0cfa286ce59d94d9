/**
 * clatd answering neighbor solicitations for the CLAT address itself (announce `respond`), on a
 * host whose only global address is a /128 inside the on-link /64, as a DHCPv6 lease gives it:
 *
 *   +------------------ host ------------------+          +------------- router -------------+
 *   | veth-a 2001:db8:1::a5/128 noprefixroute  |          | veth-b 2001:db8:1::1/64           |
 *   |        2001:db8:1::/64 on-link (the RA)  | -- veth --|  ndisc6, ping, ip -6 neigh, and  |
 *   | SystemUplink 'respond' for 2001:db8:1::5e:1234      |  ND_PY (unicast NUD, DAD probes)  |
 *   +------------------------------------------+          +-----------------------------------+
 *
 * The kernel refuses the anycast join there; the side answers instead: only after DAD passed,
 * with the host's MAC, for resolution and unreachability probes, defending the address against
 * another node's DAD, and not at all once closed. No sysctl of the host changes.
 *
 * The responder reads on this process's event loop: every command from the router runs as an
 * asynchronous child (a synchronous one would block the loop that answers it).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIPv6, parseIPv6, solicitedNode } from '../../src/core/addr/ipv6.js';
import { parsePrefix6 } from '../../src/core/addr/prefix.js';
import { HostSettings } from '../../src/daemon/system/host-settings.js';
import { SystemUplink } from '../../src/daemon/system/uplink.js';
import { assertPings, leftovers, running, SERVER6, startClatd, startRaSender, statusOf } from '../helpers/clatd-run.js';
import { GOOD_PY } from '../helpers/fuzz-py.js';
import { NEED_ROOT, type Netns, type VethPair, withVethPair } from '../helpers/netns.js';
import { CLI } from '../helpers/paths.js';
import { describe, test } from '../helpers/suite.js';

const HOST = '2001:db8:1::a5';
const CLAT = '2001:db8:1::5e:1234';
const GROUP = 'ff02::1:ff5e:1234';

/**
 * One Neighbor Solicitation for a target from the router's side, through a packet socket, and the
 * first Neighbor Advertisement for that target seen within the wait, as one JSON line. Arguments:
 * interface, kind (resolve: from the router's link-local to the solicited-node group, with its
 * MAC; nud: the same, unicast to the target and the given MAC; dad: from :: with a nonce), target,
 * the router's link-local address, the host's MAC (for nud), milliseconds to wait.
 */
const ND_PY = `
import json, os, select, socket, struct, sys, time
iface, kind, target, ll, host_mac, wait = sys.argv[1:7]
a6 = lambda s: socket.inet_pton(socket.AF_INET6, s)
mac = bytes.fromhex(open('/sys/class/net/%s/address' % iface).read().strip().replace(':', ''))
t = a6(target)
def csum(b):
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
group = a6('ff02::1:ff00:0')[:13] + t[13:]
if kind == 'dad':
    src, dst, dmac = bytes(16), group, b'\\x33\\x33' + group[12:]
    opts = struct.pack('!BB', 14, 1) + os.urandom(6)
else:
    src = a6(ll)
    if kind == 'nud': dst, dmac = t, bytes.fromhex(host_mac.replace(':', ''))
    else: dst, dmac = group, b'\\x33\\x33' + group[12:]
    opts = struct.pack('!BB', 1, 1) + mac
ns = struct.pack('!BBHI', 135, 0, 0, 0) + t + opts
c = csum(src + dst + struct.pack('!I3xB', len(ns), 58) + ns)
ns = ns[:2] + struct.pack('!H', c) + ns[4:]
ip = struct.pack('!IHBB', 0x60000000, len(ns), 58, 255) + src + dst
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
s.bind((iface, 0x86dd))
s.send(dmac + mac + b'\\x86\\xdd' + ip + ns)
end = time.monotonic() + int(wait) / 1000
out = {'answered': False}
while time.monotonic() < end:
    r, _, _ = select.select([s], [], [], max(0, end - time.monotonic()))
    if not r: break
    f, where = s.recvfrom(2048)
    if where[2] == socket.PACKET_OUTGOING: continue
    if len(f) < 78 or f[20] != 58 or f[54] != 136 or f[62:78] != t: continue
    tlla = f[80:86].hex(':') if len(f) >= 86 and f[78] == 2 else None
    out = {'answered': True, 'ethSrc': f[6:12].hex(':'), 'ethDst': f[0:6].hex(':'),
           'src': socket.inet_ntop(socket.AF_INET6, f[22:38]), 'dst': socket.inet_ntop(socket.AF_INET6, f[38:54]),
           'hop': f[21], 'router': bool(f[58] & 0x80), 'solicited': bool(f[58] & 0x40),
           'override': bool(f[58] & 0x20), 'tlla': tlla}
    break
print(json.dumps(out), flush=True)
`;

interface NdReply {
  answered: boolean;
  ethSrc?: string;
  ethDst?: string;
  src?: string;
  dst?: string;
  hop?: number;
  router?: boolean;
  solicited?: boolean;
  override?: boolean;
  tlla?: string | null;
}

/** Runs a command in `ns` without blocking this event loop; its exit status and output. */
function run(ns: Netns, cmd: string, ...args: string[]): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = ns.spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.on('error', reject);
    child.on('exit', (status) => resolve({ status, stdout }));
  });
}

async function solicit(p: VethPair, kind: 'resolve' | 'nud' | 'dad', waitMs = 1000): Promise<NdReply> {
  const ll = routerLinkLocal(p.b);
  const r = await run(p.b, 'python3', '-c', ND_PY, 'veth-b', kind, CLAT, ll, p.aMac, String(waitMs));
  assert.equal(r.status, 0, `ND_PY ${kind} failed`);
  return JSON.parse(r.stdout.trim()) as NdReply;
}

function routerLinkLocal(ns: Netns): string {
  const m = /inet6 (fe80::[0-9a-f:]+)\//.exec(ns.exec('ip', '-6', 'addr', 'show', 'dev', 'veth-b', 'scope', 'link'));
  assert.ok(m, 'the router has a link-local address');
  return m[1];
}

/** Every sysctl of the host namespace's network stack but the counters that move by themselves. */
function sysctls(ns: Netns): string {
  return ns
    .exec('sysctl', '-a', '--ignore', '-r', '^net\\.')
    .split('\n')
    .filter((l) => !/^net\.(netfilter\.nf_conntrack_count|ipv6\.route\.(gc|flush)|core\.netdev_rss_key)/.test(l))
    .sort()
    .join('\n');
}

/** ndisc6 from the router: the MAC it resolved the CLAT address to, or undefined. */
async function ndisc6(p: VethPair): Promise<string | undefined> {
  const r = await run(p.b, 'ndisc6', '-1', '-n', '-r', '1', '-w', '700', CLAT, 'veth-b');
  return r.status === 0 ? /Target link-layer address: ([0-9A-Fa-f:]+)/.exec(r.stdout)?.[1]?.toLowerCase() : undefined;
}

function hostSetUp(p: VethPair): void {
  // What a DHCPv6 lease and an RA with the /64 on-link but not autonomous leave on a host.
  p.a.sh(
    `ip addr add ${HOST}/128 dev veth-a noprefixroute nodad; ip -6 route add 2001:db8:1::/64 dev veth-a; ` +
      `ip -6 route add default via 2001:db8:1::1 dev veth-a`,
  );
  p.b.sh('ip addr add 2001:db8:1::1/64 dev veth-b nodad');
}

function open(p: VethPair, dir: string, announce: 'anycast' | 'respond'): SystemUplink {
  return p.a.enter(
    () =>
      new SystemUplink(
        { index: p.aIndex, name: 'veth-a', up: true, mtu: 1500, linkType: 1, lladdr: p.aMac },
        CLAT,
        new HostSettings(dir, 'veth-a'),
        announce,
      ),
  );
}

describe('clatd answers neighbor solicitations for the CLAT address (respond)', { skip: NEED_ROOT }, () => {
  test('on a host with only a /128: nothing before DAD, then resolution, NUD and DAD probes answered with the host MAC, again after the link went down and up; close stops it; no sysctl changed', async () => {
    await withVethPair(
      async (p) => {
        hostSetUp(p);
        const dir = mkdtempSync(join(tmpdir(), 'clatd-ndresp-'));
        try {
          const before = sysctls(p.a);
          assert.ok(before.split('\n').length > 200, 'sysctl -a lists the network settings');
          // Why this mode exists: the kernel will not hold the address as anycast here.
          assert.throws(() => open(p, dir, 'anycast'), /EADDRNOTAVAIL/);

          const up = open(p, dir, 'respond');
          let closed = false;
          try {
            assert.match(p.a.exec('ip', '-6', 'maddr', 'show', 'dev', 'veth-a'), new RegExp(GROUP));
            // DAD has not passed: silence, counted.
            assert.equal(await ndisc6(p), undefined, 'answered before DAD passed');
            assert.equal((await solicit(p, 'nud', 400)).answered, false);
            const early = up.responder();
            assert.ok(early && !early.answering && (early.ignored['before-dad'] ?? 0) >= 2, JSON.stringify(early));

            up.dadPassed(CLAT);
            assert.equal(up.responder()?.announced, 1, 'one unsolicited NA to all nodes');
            assert.equal(await ndisc6(p), p.aMac, 'ndisc6 resolves the CLAT address to the host MAC');

            const res = await solicit(p, 'resolve');
            assert.deepEqual(
              { ...res },
              {
                answered: true,
                ethSrc: p.aMac,
                ethDst: p.bMac,
                src: CLAT,
                dst: routerLinkLocal(p.b),
                hop: 255,
                router: false,
                solicited: true,
                override: true,
                tlla: p.aMac,
              },
            );
            const nud = await solicit(p, 'nud');
            assert.ok(nud.answered && nud.solicited && nud.tlla === p.aMac, `NUD probe: ${JSON.stringify(nud)}`);
            const dad = await solicit(p, 'dad');
            assert.ok(dad.answered, 'a DAD probe for our address is defended');
            assert.equal(dad.dst, 'ff02::1');
            assert.deepEqual([dad.solicited, dad.override], [false, true]);

            // The router's own resolution, as traffic to the CLAT address triggers it.
            p.b.exec('ip', '-6', 'neigh', 'flush', 'dev', 'veth-b');
            await run(p.b, 'ping', '-6', '-c', '1', '-W', '1', CLAT);
            const neigh = p.b.exec('ip', '-6', 'neigh', 'show', CLAT, 'dev', 'veth-b');
            assert.match(neigh, new RegExp(`lladdr ${p.aMac} (router )?REACHABLE`), neigh);

            const st = up.responder();
            assert.ok(st);
            assert.equal(st.address, CLAT);
            assert.ok(st.answering);
            assert.ok(st.answered >= 4, JSON.stringify(st));
            assert.equal(st.nud, 1);
            assert.equal(st.defended, 1);
            assert.equal(st.sendErrors, 0);

            // The link going down stops the socket under the poll (ENETDOWN); the retarget before
            // the DAD that follows its return starts it again.
            p.a.sh('ip link set veth-a down; ip link set veth-a up');
            await waitFor(async () => up.responder()?.failed !== undefined, 5000);
            await waitFor(
              async () => (await run(p.a, 'cat', '/sys/class/net/veth-a/operstate')).stdout.trim() === 'up',
            );
            await p.a.enter(() => up.retarget(CLAT, parsePrefix6('64:ff9b::/96')));
            assert.equal(up.responder()?.failed, undefined);
            up.dadPassed(CLAT);
            await waitFor(async () => (await ndisc6(p)) === p.aMac, 10_000);

            // A retarget is a new DAD: silent again until it passes.
            // In the host namespace: `nft` runs as a child of this thread (and nothing in retarget or close awaits).
            const pref64 = parsePrefix6('64:ff9b::/96');
            await p.a.enter(() => up.retarget('2001:db8:1::5e:9999', pref64));
            assert.doesNotMatch(p.a.exec('ip', '-6', 'maddr', 'show', 'dev', 'veth-a'), new RegExp(GROUP));
            assert.match(p.a.exec('ip', '-6', 'maddr', 'show', 'dev', 'veth-a'), /ff02::1:ff5e:9999/);
            await p.a.enter(() => up.retarget(CLAT, pref64));
            assert.equal(await ndisc6(p), undefined, 'answered after a retarget, before DAD');
            up.dadPassed(CLAT);
            assert.equal(await ndisc6(p), p.aMac);

            await p.a.enter(() => up.close());
            closed = true;
            assert.equal(await ndisc6(p), undefined, 'answered after close');
            assert.doesNotMatch(p.a.exec('ip', '-6', 'maddr', 'show', 'dev', 'veth-a'), new RegExp(GROUP));
            assert.equal(sysctls(p.a), before, 'a sysctl changed');
          } finally {
            if (!closed) await p.a.enter(() => up.close());
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
      { tag: 'ndr' },
    );
  });

  test('`clatd run` with no flags on such a host: mode 2, IPv4 up (ping, UDP), the router resolves the CLAT address to the host MAC, also after a link flap; SIGTERM leaves nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clatd-ndresp-'));
    try {
      await withVethPair(
        async (p) => {
          // The router forwards (its NAs carry the Router flag) and answers for the NAT64 prefix's
          // server itself; its RAs carry the /64 and PREF64. The host, as a DHCPv6-only host, does no
          // SLAAC: its one global address is the /128 (nodad, as a DHCPv6 client's after DAD).
          p.b.sh(
            `sysctl -qw net.ipv6.conf.all.forwarding=1; ip addr add ${SERVER6}/128 dev lo; ` +
              'ip addr add 2001:db8:1::1/64 dev veth-b nodad',
          );
          p.a.sh(`sysctl -qw net.ipv6.conf.veth-a.autoconf=0; ip addr add ${HOST}/128 dev veth-a noprefixroute nodad`);
          startRaSender(p, dir, 1800);
          await waitFor(async () => (await run(p.a, 'ip', '-6', 'route', 'show', 'default')).stdout.includes('via'));
          const before = sysctls(p.a);
          const sock = join(dir, 'c.sock');
          const c = startClatd(p.a, ['--control', sock]);
          await c.waitFor(running, 30_000);
          const st = statusOf(p.a, sock);
          assert.equal(st.uplinkMode?.mode, 2, JSON.stringify(st.uplinkMode));
          assert.equal(st.uplinkMode.announce, 'respond');
          assert.match(st.clat6, /^2001:db8:1:0:/);
          assert.equal(st.dad.result, 'unique');
          assert.equal(st.responder?.address, st.clat6);
          assert.equal(st.responder.answering, true);

          assertPings(p.a);
          const echo = p.b.spawn('python3', ['-c', GOOD_PY, 'server', SERVER6, '7'], {
            stdio: ['ignore', 'pipe', 'ignore'],
          });
          await waitFor(async () => echo.stdout?.read()?.toString().includes('ready') ?? false);
          const udp = await run(p.a, 'python3', '-c', GOOD_PY, 'client', '192.0.2.1', '7', '20', '1');
          const u = JSON.parse(udp.stdout.trim()) as { sent: number; answered: number };
          assert.ok(u.answered >= u.sent - 1 && u.answered > 0, `UDP: ${udp.stdout}`);
          echo.kill();

          // The router's entry for the CLAT address came from clatd's NA: the host's MAC, confirmed.
          const neigh = p.b.exec('ip', '-6', 'neigh', 'show', st.clat6, 'dev', 'veth-b');
          assert.match(neigh, new RegExp(`lladdr ${p.aMac} (router )?REACHABLE`), neigh);
          const after = statusOf(p.a, sock);
          assert.ok(after.responder.answered >= 1, JSON.stringify(after.responder));
          const group = new RegExp(`inet6 ${formatIPv6(solicitedNode(parseIPv6(st.clat6)))}\n`);
          assert.match(
            p.a.exec('ip', '-6', 'maddr', 'show', 'dev', 'veth-a'),
            group,
            "the CLAT address's group joined",
          );
          const text = p.a.exec('node', CLI, 'status', '--control', sock);
          assert.match(text, /mode\s+2, /);
          assert.match(text, /ND\s+clatd answers neighbor solicitations itself \(answering for /);

          // A link that goes down and up: clatd pauses, probes the address again, and answers again.
          // The kernel flushes the /128 with the link (keep_addr_on_down 0); the DHCPv6 client
          // would put it back, as the test does.
          const resumed = c.lines.length;
          p.a.sh(
            `ip link set veth-a down; sleep 0.2; ip link set veth-a up; ip addr add ${HOST}/128 dev veth-a noprefixroute nodad`,
          );
          await c.waitFor((l) => running(l) && c.lines.indexOf(l) >= resumed, 30_000);
          p.b.exec('ip', '-6', 'neigh', 'flush', 'dev', 'veth-b');
          assertPings(p.a);
          assert.match(
            p.b.exec('ip', '-6', 'neigh', 'show', st.clat6, 'dev', 'veth-b'),
            new RegExp(`lladdr ${p.aMac} (router )?REACHABLE`),
          );

          c.child.kill('SIGTERM');
          assert.equal((await c.exited).code, 0);
          assert.deepEqual(leftovers(p.a), []);
          assert.doesNotMatch(p.a.exec('ip', '-6', 'maddr', 'show', 'dev', 'veth-a'), group, 'the group left');
          assert.equal(sysctls(p.a), before, 'a sysctl changed');
        },
        { tag: 'ndr2' },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function waitFor(cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
