/**
 * The real `clatd run` attacked from the link, in namespaces (issue 22's reproductions 1, 2, 3, 6):
 *
 *   +------------------------- host --------------------------+        +------------- router ----------------+
 *   | clatd run   v4-veth-a 192.0.0.4 <-> CLAT IPv6           |        | 2001:db8:64::c000:201 on lo          |
 *   |             veth-a 2001:db8:1::10/64  ------------------ veth ---- | veth-b 2001:db8:1::1/64              |
 *   |             default via 2001:db8:1::1 (or from the RA)  |        |   ra-sender: PREF64 2001:db8:64::/96  |
 *   |   the test sets veth-a down and up (1)                  |        |   DAD responder, MAC 02:de:ad:..  (2) |
 *   |   proxy_delay of veth-a set, read from outside (6)      |        |   RAs from fe80::bad, fe80::bad:1 (3) |
 *   +---------------------------------------------------------+        +--------------------------------------+
 *
 * The responder and the forged RAs are small Python scripts with raw sockets on veth-b (below), as
 * an on-link host would send them. PREF64 2001:db8:64::/96, so 192.0.2.1 is 2001:db8:64::c000:201.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  assertPings,
  type LogLine,
  leftovers,
  PREFIX,
  type Running,
  running,
  SERVER6,
  said,
  setUp,
  startClatd,
  startRaSender,
  statusOf,
  withHostAndRouter,
} from '../helpers/clatd-run.js';
import { NEED_ROOT, type Netns } from '../helpers/netns.js';
import { describe, test } from '../helpers/suite.js';

/**
 * An on-link host that claims every address anyone probes for: each DAD Neighbor Solicitation
 * (source ::) is answered with an all-nodes Neighbor Advertisement (Override) for its target, with
 * the given MAC as Ethernet source and Target Link-Layer Address. Prints `ready`, then one line
 * per answer.
 */
const DAD_RESPONDER_PY = `
import signal, socket, struct, sys
iface, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', ''))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86dd))
s.bind((iface, 0x86dd))
ll = bytes([0xfe, 0x80] + [0] * 6 + [mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]])
all_nodes = socket.inet_pton(socket.AF_INET6, 'ff02::1')
def csum(b):
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
print('ready', flush=True)
while True:
    f, where = s.recvfrom(2048)
    if where[2] == socket.PACKET_OUTGOING: continue
    if len(f) < 78 or f[20] != 58 or f[54] != 135 or f[22:38] != bytes(16): continue
    target = f[62:78]
    na = struct.pack('!BBHI', 136, 0, 0, 0x20000000) + target + struct.pack('!BB', 2, 1) + mac
    c = csum(ll + all_nodes + struct.pack('!I3xB', len(na), 58) + na)
    na = na[:2] + struct.pack('!H', c) + na[4:]
    ip = struct.pack('!IHBB', 0x60000000, len(na), 58, 255) + ll + all_nodes
    s.send(bytes.fromhex('333300000001') + mac + b'\\x86\\xdd' + ip + na)
    print('answered', socket.inet_ntop(socket.AF_INET6, target), flush=True)
`;

/**
 * Router Advertisements from a chosen link-local source, carrying only a PREF64 option. Arguments:
 * interface, source, router lifetime (0: not a default router; the real router's own keeps its
 * default route), milliseconds between RAs, then PREFIX/96:LIFETIME items sent one per RA, in turn.
 */
const RA_FORGER_PY = `
import socket, struct, sys, time
iface, src, router_lifetime, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) / 1000
ifindex = socket.if_nametoindex(iface)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
s.bind((src, 0, 0, ifindex))
for i, item in enumerate(sys.argv[5:]):
    prefix, lifetime = item.rsplit(':', 1)
    p = socket.inet_pton(socket.AF_INET6, prefix.split('/')[0])[:12]
    scaled = (int(lifetime) + 7) // 8
    ra = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, router_lifetime, 0, 0)
    ra += struct.pack('!BBH', 38, 2, scaled << 3) + p
    if i: time.sleep(gap)
    s.sendto(ra, ('ff02::1', 0, 0, ifindex))
`;

const RESPONDER_MAC = '02:de:ad:be:ef:01';

/** The host's link back after a down: the kernel flushed its IPv6 address and routes (keep_addr_on_down=0). */
const LINK_UP =
  'ip link set veth-a up; ip addr replace 2001:db8:1::10/64 dev veth-a nodad; ' +
  'ip -6 route replace default via 2001:db8:1::1 dev veth-a';

const alive = (c: Running) => c.child.exitCode === null && c.child.signalCode === null;

/** Lines from index `from` on that match. */
const since = (c: Running, from: number, pred: (l: LogLine) => boolean) => c.lines.slice(from).filter(pred);

/** When the daemon logged `l` (ms). */
const ts = (l: LogLine | undefined) => Date.parse(String(l?.ts));

const inUse = (l: LogLine) => l.event === 'dad' && l.level === 'warn' && /is in use on the link/.test(String(l.msg));

const dadProbing = (l: LogLine) => l.event === 'dad' && /^probing /.test(String(l.msg));

/** Waits for the `n`th `running` transition. */
const nthRunning = (c: Running, n: number, ms = 10_000) =>
  c.waitFor((l) => running(l) && c.lines.filter(running).length >= n, ms);

function startResponder(ns: Netns, dir: string): Promise<ChildProcess> {
  writeFileSync(join(dir, 'dad-responder.py'), DAD_RESPONDER_PY);
  const child = ns.spawn('python3', [join(dir, 'dad-responder.py'), 'veth-b', RESPONDER_MAC], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d) => {
      err += d;
    });
    child.stdout?.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`the DAD responder exited (${code}): ${err}`)));
  });
}

/** Sends forged RAs (see RA_FORGER_PY); resolves when all are sent. */
function forgeRas(
  ns: Netns,
  dir: string,
  o: { src: string; routerLifetime: number; gapMs: number },
  items: string[],
): Promise<void> {
  const script = join(dir, 'ra-forger.py');
  if (!existsSync(script)) writeFileSync(script, RA_FORGER_PY);
  const child = ns.spawn('python3', [script, 'veth-b', o.src, String(o.routerLifetime), String(o.gapMs), ...items], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ra-forger: ${err}`)))),
  );
}

async function until<T>(what: string, fn: () => T | undefined | false, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function stopCleanly(p: { a: Netns }, c: Running): Promise<void> {
  c.child.kill('SIGTERM');
  const ex = await c.exited;
  assert.equal(ex.code, 0, said(c.lines));
  assert.deepEqual(leftovers(p.a), []);
}

describe('clatd run attacked from the link (namespaces)', { skip: NEED_ROOT }, () => {
  test('the uplink goes down during DAD, at start-up and while resuming: clatd stays, comes back, IPv4 works', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const sock = join(dir, 'c.sock');
      // Strict DAD (the default): the CLAT address is probed for a second at each (re)start.
      const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock]);

      // At start-up: the link goes down 0.2 s into DAD, and is back 0.5 s later, before the
      // first attempt has ended (it waits for the datapath it started meanwhile, ~1-3 s here).
      await c.waitFor(dadProbing);
      await sleep(200);
      p.a.exec('ip', 'link', 'set', 'veth-a', 'down');
      await sleep(500);
      p.a.sh(LINK_UP);
      await nthRunning(c, 1);
      assert.ok(alive(c), `clatd exited:\n${said(c.lines)}`);
      // The TUN built for the first attempt stays with its address, and the datapath uses it.
      assert.equal(statusOf(p.a, sock).clat4, '192.0.0.4');
      assert.match(p.a.exec('ip', '-4', 'addr', 'show', 'v4-veth-a'), /192\.0\.0\.4\/32/);
      assertPings(p.a);

      // While running: down, up with the address and route back, and down again 0.3 s later, while
      // the resumed CLAT probes its address again (a Wi-Fi roam). Three times, as in the report.
      for (let round = 1; round <= 3; round++) {
        const mark = c.lines.length;
        p.a.sh(`ip link set veth-a down; ${LINK_UP}; sleep 0.3; ip link set veth-a down`);
        await sleep(1500);
        assert.ok(alive(c), `clatd exited in round ${round}:\n${said(c.lines)}`);
        // The link went down (the second time) after DAD began and before it passed.
        const log = c.lines.slice(mark);
        const probe = log.findIndex(dadProbing);
        const down = log.findIndex((l, i) => i > probe && l.event === 'change' && l.kind === 'uplink-down');
        const unique = log.findIndex((l, i) => i > probe && l.event === 'dad' && /is unique/.test(String(l.msg)));
        assert.ok(
          probe >= 0 && down > probe && (unique < 0 || unique > down),
          `round ${round}: no DAD was running when the link went down again:\n${said(log)}`,
        );
        assert.notEqual(statusOf(p.a, sock).state, 'running');
        p.a.sh(LINK_UP);
        await nthRunning(c, round + 1);
        assert.equal(statusOf(p.a, sock).state, 'running');
        assertPings(p.a);
      }
      assert.equal(
        c.lines.filter((l) => l.level === 'error').length,
        0,
        `errors logged:\n${said(c.lines.filter((l) => l.level === 'error'))}`,
      );
      await stopCleanly(p, c);
    });
  });

  test('an on-link host answers every DAD probe: clatd stays, shows DAD blocked with its MAC, backs off, and comes up once it stops', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      const responder = await startResponder(p.b, dir);
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, ['--pref64', PREFIX, '--control', sock]);
      const blocked = (n: number) =>
        c.waitFor(
          (l) =>
            l.event === 'wait' &&
            /^DAD blocked/.test(String(l.msg)) &&
            c.lines.filter((x) => x.event === 'teardown' && /DAD blocked/.test(String(x.msg))).length >= n,
          10_000,
        );

      // First round: every address answered for; clatd stays, with the CLAT taken down.
      await c.waitFor((l) => l.event === 'dad' && l.level === 'warn' && /DAD blocked/.test(String(l.msg)));
      // The back-off runs from the verdict, when the duplicates are logged.
      const verdictAt = () => ts(c.lines.filter(inUse).at(-1));
      const first = verdictAt();
      await blocked(1);
      assert.ok(alive(c), said(c.lines));
      let st = statusOf(p.a, sock);
      assert.equal(st.state, 'dad');
      assert.equal(st.dad.result, 'blocked');
      assert.equal(st.dad.blockedRounds, 1);
      assert.ok(st.dad.retryInSec > 0 && st.dad.retryInSec <= 5, `retry in ${st.dad.retryInSec} s`);
      // Each of the round's four addresses (the first and three redraws), the last included.
      assert.equal(st.dad.duplicates.length, 4, JSON.stringify(st.dad));
      for (const d of st.dad.duplicates) {
        assert.match(d.address, /^2001:db8:1:0:/);
        assert.match(d.by, new RegExp(`Neighbor Advertisement from fe80::.*\\(${RESPONDER_MAC}\\)`));
      }
      assert.equal(st.clat6, null, 'no CLAT address while blocked');
      assert.match(String(st.reason), /DAD blocked/);
      assert.deepEqual(leftovers(p.a), [], 'the CLAT is down while it has no address');
      const warnings = c.lines.filter((l) => l.level === 'warn' && l.event === 'dad');
      assert.ok(
        warnings.some((l) => String(l.msg).includes(`is in use on the link`) && String(l.msg).includes(RESPONDER_MAC)),
        said(warnings),
      );

      // Second round after 5 s, answered again: the back-off doubles to 10 s.
      const mark = c.lines.length;
      const again = await c.waitFor((l) => dadProbing(l) && c.lines.indexOf(l) >= mark, 8_000);
      const gap = ts(again) - first;
      assert.ok(gap >= 4_900 && gap <= 6_000, `second round ${gap} ms after the first verdict`);
      await blocked(2);
      st = statusOf(p.a, sock);
      assert.equal(st.dad.blockedRounds, 2);
      assert.equal(st.dad.duplicates.length, 8);
      assert.equal(c.lines.filter(inUse).length, 8, 'a warning for each address answered for');
      assert.ok(st.dad.retryInSec > 5 && st.dad.retryInSec <= 10, `retry in ${st.dad.retryInSec} s`);
      assert.ok(alive(c), said(c.lines));

      // The answers stop: the round after the back-off passes and the CLAT comes up.
      const second = verdictAt();
      responder.kill('SIGTERM');
      const third = await c.waitFor((l) => dadProbing(l) && c.lines.filter(dadProbing).length >= 3, 12_000);
      const gap2 = ts(third) - second;
      assert.ok(gap2 >= 9_900 && gap2 <= 11_000, `third round ${gap2} ms after the second verdict`);
      const up = await nthRunning(c, 1, 5_000);
      assert.ok(ts(up) - ts(third) < 3_000, 'up within DAD and a datapath start of the third round');
      st = statusOf(p.a, sock);
      assert.equal(st.state, 'running');
      assert.equal(st.dad.result, 'unique');
      assert.equal(st.dad.blockedRounds, 0);
      assertPings(p.a);
      await stopCleanly(p, c);
    });
  });

  test('PREF64 abuse: bogus prefixes refused, a foreign withdrawal ignored, a flapping router damped', async () => {
    await withHostAndRouter(async (p, dir) => {
      p.b.exec('ip', 'addr', 'add', `${SERVER6}/128`, 'dev', 'lo');
      p.b.exec('ip', 'addr', 'add', '2001:db8:65::c000:201/128', 'dev', 'lo');
      const router = p.b
        .exec('ip', '-6', '-o', 'addr', 'show', 'dev', 'veth-b', 'scope', 'link')
        .match(/inet6 (fe80::[0-9a-f:]+)\//)?.[1];
      assert.ok(router, 'the router has a link-local address');
      const { sender } = startRaSender(p, dir, 600);
      const sock = join(dir, 'c.sock');
      const c = startClatd(p.a, ['--control', sock, '--dad', 'off']);
      await c.waitFor(running, 15_000);
      const status = () => statusOf(p.a, sock);
      assert.equal(status().pref64, PREFIX);
      // Deprecated (preferred_lft 0), so the router's own RAs keep its own link-local as source.
      p.b.sh(
        'ip addr add fe80::bad/64 dev veth-b nodad preferred_lft 0; ' +
          'ip addr add fe80::bad:1/64 dev veth-b nodad preferred_lft 0',
      );
      const start = c.lines.length;

      // Prefixes that cannot be a NAT64 prefix, the LAN's own last (it is refused when chosen among).
      const bogus = ['ff02::/96', 'fe80::/96', '::/96', '::ffff:0:0/96', '2001:db8:1::/96'];
      await forgeRas(
        p.b,
        dir,
        { src: 'fe80::bad:1', routerLifetime: 0, gapMs: 150 },
        bogus.map((b) => `${b}:600`),
      );
      const refused = await until('the five refusals in status', () => {
        const r = status().pref64Refused as { router: string; prefix: string; why: string }[];
        return bogus.every((b) => r.some((x) => x.prefix === b && x.router === 'fe80::bad:1')) && r;
      });
      for (const r of refused) assert.ok(r.why.length > 0);
      assert.ok(!refused.some((r) => r.router === router), 'the real router’s prefix is not refused');
      const st = status();
      assert.equal(st.pref64, PREFIX);
      assert.equal(st.pref64Source, 'ra');
      assert.ok(
        st.pref64Routers.some((r: { router: string; chosen: boolean }) => r.router === router && r.chosen),
        JSON.stringify(st.pref64Routers),
      );
      const used = c.lines.filter((l) => l.event === 'pref64' && /^NAT64 prefix/.test(String(l.msg)));
      assert.deepEqual(
        used.map((l) => String(l.msg).split(' ')[2]),
        [PREFIX],
        'no bogus prefix was ever used',
      );
      assert.ok(
        c.lines.some((l) => l.level === 'warn' && /refused PREF64 ff02::\/96 from fe80::bad:1/.test(String(l.msg))),
      );

      // Another router withdraws the real router's prefix (lifetime 0), over and over, during pings.
      const withdraw = forgeRas(
        p.b,
        dir,
        { src: 'fe80::bad', routerLifetime: 0, gapMs: 100 },
        Array(10).fill(`${PREFIX}:0`),
      );
      const pings = p.a.tryExec('ping', '-c', '10', '-i', '0.2', '-W', '2', '192.0.2.1');
      await withdraw;
      assert.match(pings.stdout, / (9|10) received/, pings.stdout);
      assert.equal(status().pref64, PREFIX);
      const kinds = since(c, start, (l) => l.event === 'change').map((l) => String(l.kind));
      assert.ok(!kinds.some((k) => k.startsWith('pref64')), kinds.join(', '));

      // The real router flaps between two prefixes every 100 ms for 6 s: clatd follows the first
      // change at once (its prefix has stood for over 5 s), the next only after 10 s (damping).
      const mark = c.lines.length;
      const flaps = Array.from({ length: 60 }, (_, i) => `${i % 2 ? PREFIX : '2001:db8:65::/96'}:600`);
      await forgeRas(p.b, dir, { src: router, routerLifetime: 600, gapMs: 100 }, flaps);
      await sleep(500);
      const heard = since(c, mark, (l) => l.event === 'pref64' && String(l.msg).startsWith(`${router} gives PREF64`));
      assert.ok(heard.length >= 50, `clatd heard ${heard.length} of the router's 60 changes`);
      const repicks = since(c, mark, (l) => l.event === 'change' && l.kind === 'pref64-changed');
      assert.ok(repicks.length <= 1, `${repicks.length} re-picks in 6 s of flapping:\n${said(repicks)}`);
      // (The host's kernel may drop and re-add its RA default route under this storm, pausing
      // clatd for a moment; that is not a re-pick.)
      await until('running', () => status().state === 'running');
      assertPings(p.a);
      await stopCleanly(p, c);
      sender.kill('SIGTERM');
    });
  });

  test('kill -9 then a new start: the host’s proxy_delay is given back at the end, and the record removed', async () => {
    await withHostAndRouter(async (p, dir) => {
      setUp(p);
      // Not the kernel default (80), so that only the host's own value can be the one given back.
      p.a.exec('sysctl', '-qw', 'net.ipv6.neigh.veth-a.proxy_delay=40');
      const delay = () => p.a.exec('sysctl', '-n', 'net.ipv6.neigh.veth-a.proxy_delay').trim();
      const sock = join(dir, 'c.sock');
      const record = join(dir, 'veth-a.host-settings.json');
      const recorded = () => JSON.parse(readFileSync(record, 'utf8'));

      const first = startClatd(p.a, ['--pref64', PREFIX, '--control', sock, '--dad', 'off']);
      await first.waitFor(running);
      assert.equal(delay(), '0', 'clatd sets 0 while it runs');
      assert.deepEqual(recorded(), { 'veth-a/proxy_delay': 40 });
      first.child.kill('SIGKILL');
      await first.exited;
      assert.equal(delay(), '0', 'a crash leaves clatd’s value');
      assert.deepEqual(recorded(), { 'veth-a/proxy_delay': 40 }, 'and the record of the host’s');

      const second = startClatd(p.a, ['--pref64', PREFIX, '--control', sock, '--dad', 'off']);
      await second.waitFor(running);
      assert.ok(
        second.lines.some((l) => l.event === 'recovery' && /proxy_delay of veth-a back to 40/.test(String(l.msg))),
        said(second.lines),
      );
      assert.equal(delay(), '0');
      assert.deepEqual(recorded(), { 'veth-a/proxy_delay': 40 }, 'the second run records the host’s value, not 0');
      assertPings(p.a);
      await stopCleanly(p, second);
      assert.equal(delay(), '40', 'the host’s value is back');
      assert.equal(p.a.exec('cat', '/proc/sys/net/ipv6/neigh/veth-a/proxy_delay').trim(), '40');
      assert.ok(!existsSync(record), 'the record is gone');
    });
  });
});
