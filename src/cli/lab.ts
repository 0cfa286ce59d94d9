/**
 * `clatd lab`: builds the IPv6-only network of src/lab/topology.ts, runs `clatd run` in its host
 * namespace exactly as a user would, and shows what happens: clatd's start-up lines, its DAD probe
 * as the router sees it, then IPv4 traffic to the IPv4-only server (ping, HTTP, UDP) with clatd's
 * counters, every few seconds until Ctrl-C. Then it removes everything it made.
 */
import { ClatdError } from '../core/errors.js';
import { Lab } from '../lab/lab.js';
import { ndOfFrame } from '../lab/pcap.js';
import { destroyKeptLab, keptLabs } from '../lab/state.js';
import { parseStatus, summarize } from '../lab/status.js';
import { ADDR, IFACE, UPLINK_SHAPES, type UplinkShape, usesDhcpv6 } from '../lab/topology.js';
import { type CommandSpec, intFlag, parseCommand, UsageError } from '../options/args.js';

export const LAB_SPEC: CommandSpec = {
  name: 'lab',
  summary:
    'Build an IPv6-only network in network namespaces (router with radvd, DNS64 and NAT64; an IPv4-only server), run clatd in it and show IPv4 traffic flowing until Ctrl-C.',
  usage: 'clatd lab [OPTIONS]',
  options: {
    shell: { type: 'boolean', help: 'leave the network (and clatd) running and print how to enter it' },
    'no-clatd': { type: 'boolean', help: 'build the network only; traffic goes over native IPv6 to the NAT64' },
    duration: { type: 'string', value: 'SECONDS', help: 'stop by itself after this many seconds' },
    interval: { type: 'string', value: 'SECONDS', help: 'seconds between traffic rounds', default: '3' },
    'no-ra-pref64': { type: 'boolean', help: 'leave PREF64 out of the RA, so only DNS64 tells the prefix' },
    lan: {
      type: 'boolean',
      help: "add an IPv4-only LAN client behind the host (address by DHCPv4 from dnsmasq on the host's lan0) and run clatd in router mode (--lan lan0, NAT44)",
    },
    'lan-mode': {
      type: 'string',
      value: 'nat44|stateless',
      help: 'with --lan: NAT44 into the CLAT address, or stateless (each LAN device mapped into the routed /64 by EAM; needs --uplink routed)',
      default: 'nat44',
    },
    uplink: {
      type: 'string',
      value: 'SHAPE',
      help: 'how the host gets IPv6: slaac (SLAAC /64), dhcpv6 (a /128 from a DHCPv6 server, no SLAAC), routed (slaac plus a /64 routed to the host), cloud (two DHCPv6 leases; the router delivers only to them)',
      default: 'slaac',
    },
    'clatd-flags': {
      type: 'boolean',
      help: 'run clatd with what the uplink offers for it: --v6-prefix with the routed /64 (routed), --v6 with the second lease (cloud)',
    },
    destroy: { type: 'string', value: 'TAG', help: 'remove a lab left by --shell (see --list)' },
    list: { type: 'boolean', help: 'list labs left running by --shell' },
  },
};

/** Set once stdout's reader is gone (`clatd lab | head`): the lab then stops, as on Ctrl-C, quietly. */
let stdoutGone = false;
const say = (s: string) => {
  if (!stdoutGone) process.stdout.write(`${s}\n`);
};
const stamp = () => new Date().toISOString().slice(11, 19);

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand(LAB_SPEC, argv);
  if (parsed === null) return 0;
  const v = parsed.values;
  if (v.list) {
    const tags = keptLabs();
    say(tags.length ? tags.join('\n') : 'no labs kept');
    return 0;
  }
  if (typeof v.destroy === 'string') {
    if (!/^[0-9a-z]+$/.test(v.destroy))
      throw new UsageError(`clatd lab: --destroy needs a lab tag, got "${v.destroy}"`);
    if (!destroyKeptLab(v.destroy))
      throw new ClatdError(`no kept lab with tag ${v.destroy} (clatd lab --list shows them)`);
    say(`removed lab ${v.destroy}`);
    return 0;
  }
  const duration = intFlag('lab', 'duration', v.duration as string | undefined, 1, 86_400);
  const interval = intFlag('lab', 'interval', v.interval as string | undefined, 1, 3600) ?? 3;
  const withClatd = !v['no-clatd'];
  const withLan = v.lan === true;
  const uplink = v.uplink as string;
  if (!(UPLINK_SHAPES as readonly string[]).includes(uplink)) {
    throw new UsageError(`clatd lab: --uplink must be one of ${UPLINK_SHAPES.join(', ')}, got "${uplink}"`);
  }
  const lanMode = v['lan-mode'] as string;
  if (lanMode !== 'nat44' && lanMode !== 'stateless') {
    throw new UsageError(`clatd lab: --lan-mode must be nat44 or stateless, got "${lanMode}"`);
  }
  if (lanMode === 'stateless' && (!withLan || uplink !== 'routed')) {
    throw new UsageError(
      'clatd lab: --lan-mode stateless needs --lan and --uplink routed (the LAN is mapped into the /64 routed to the host)',
    );
  }
  const clatdFlags = v['clatd-flags'] === true;
  if (clatdFlags && uplink !== 'routed' && uplink !== 'cloud') {
    throw new UsageError(`clatd lab: --clatd-flags is for --uplink routed or cloud; ${uplink} needs no flags`);
  }

  let stopRequested = false;
  let wake: () => void = () => {};
  const onSignal = () => {
    stopRequested = true;
    wake();
  };
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    stdoutGone = true;
    onSignal();
  };
  process.stdout.on('error', onStdoutError);
  say(
    `clatd lab: building an IPv6-only network (namespaces host, router, internet${withLan ? ', LAN client' : ''}), uplink ${uplink}`,
  );
  const lab = await Lab.create({
    uplink: uplink as UplinkShape,
    raPref64: !v['no-ra-pref64'],
    lan: withLan,
    handleSignals: false,
    log: (s) => say(`  ${s}`),
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await session(
      lab,
      { withClatd, clatdFlags, stateless: lanMode === 'stateless', shell: v.shell === true, duration, interval },
      () => stopRequested,
      (w) => {
        wake = w;
      },
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (v.shell !== true) {
      say('clatd lab: removing the network');
      await lab.destroy();
    }
  }
}

interface SessionOptions {
  withClatd: boolean;
  clatdFlags: boolean;
  /** Router mode's stateless LAN mode: the LAN mapped into the routed prefix (which clatd then gets). */
  stateless: boolean;
  shell: boolean;
  duration: number | undefined;
  interval: number;
}

async function session(
  lab: Lab,
  o: SessionOptions,
  stopped: () => boolean,
  setWake: (w: () => void) => void,
): Promise<number> {
  const n = lab.names;
  // The router's view of the host's link: every Neighbor Solicitation from the unspecified address
  // is a DAD probe (RFC 4862 §5.4.2).
  const dad = await lab.capture(n.router, IFACE.routerBridge, 'icmp6 and ip6[40] == 135 and src host ::');
  let seenDad = 0;
  const showDad = () => {
    const frames = dad.frames();
    for (; seenDad < frames.length; seenDad++) {
      const nd = ndOfFrame(frames[seenDad].data);
      if (nd) say(`${stamp()} router saw DAD probe: ${describeProbe(nd)}`);
    }
  };

  let clatd = null as ReturnType<Lab['startClatd']> | null;
  let unfollow = () => {};
  if (o.withClatd) {
    const lanArgs = lab.lan
      ? ['--interface', IFACE.host, '--lan', lab.lan.hostIface, ...(o.stateless ? ['--lan-mode', 'stateless'] : [])]
      : [];
    const shapeArgs = o.clatdFlags || o.stateless ? lab.clatdFlagsForUplink() : [];
    const args = [...lanArgs, ...shapeArgs];
    const why = [
      lanArgs.length > 0
        ? `router mode (${o.stateless ? 'stateless: the LAN client gets its own IPv6 address' : 'NAT44'}): the LAN client's IPv4 goes through the CLAT`
        : '',
      shapeArgs.length > 0
        ? `the uplink's ${lab.uplink === 'routed' ? 'routed prefix' : 'second lease'} for the CLAT`
        : '',
    ]
      .filter(Boolean)
      .join('; ');
    say(
      args.length > 0
        ? `clatd lab: starting \`clatd run ${args.join(' ')}\` in ${n.host} (${why})`
        : `clatd lab: starting \`clatd run\` in ${n.host} (no flags: it finds the uplink, PREF64 and addresses itself)`,
    );
    const started = lab.startClatdAndWait(args);
    // startClatdAndWait spawns synchronously before its first await, so the process is known here.
    clatd = lab.findProc('clatd') ?? null;
    unfollow = clatd ? clatd.follow((l) => say(`  clatd | ${l}`)) : () => {};
    const { proc, up } = await started;
    clatd = proc;
    showDad();
    if (!up) {
      unfollow();
      const ex = await Promise.race([clatd.exited, new Promise<null>((r) => setTimeout(() => r(null), 100))]);
      say(
        ex
          ? `clatd lab: clatd exited (${ex.signal ?? `code ${ex.code}`}) before IPv4 came up; the network stays correct, see above`
          : 'clatd lab: clatd is running but v4-eth0 with an IPv4 default route did not appear within 20 s',
      );
      if (!o.shell) return 1;
    } else {
      await sayUplinkMode(lab, clatd);
      if (lab.uplink === 'cloud' && !o.clatdFlags) {
        say(
          'clatd lab: this router delivers only to the addresses it leased, so a self-chosen one gets nothing back; --clatd-flags runs clatd with --v6 and the second lease',
        );
      }
    }
  }

  if (o.shell) {
    unfollow();
    await dad.stop();
    lab.keep();
    printShell(lab, clatd?.logFile ?? null);
    return 0;
  }

  const target = o.withClatd ? ADDR.server : nat64Literal(lab);
  say(
    o.withClatd
      ? `clatd lab: IPv4 traffic from ${n.host} to the IPv4-only server ${ADDR.server} every ${o.interval} s (Ctrl-C stops)`
      : `clatd lab: no clatd; native IPv6 to the server through the NAT64 as [${target}] every ${o.interval} s (Ctrl-C stops)`,
  );
  const end = o.duration === undefined ? Infinity : Date.now() + o.duration * 1000;
  let failures = 0;
  let rounds = 0;
  while (!stopped() && Date.now() < end) {
    rounds++;
    const ok = await trafficRound(lab, target, clatd);
    if (!ok) failures++;
    showDad();
    if (clatd && !clatd.running) {
      say('clatd lab: clatd exited');
      break;
    }
    await new Promise<void>((r) => {
      const t = setTimeout(r, Math.max(0, Math.min(o.interval * 1000, end - Date.now())));
      setWake(() => {
        clearTimeout(t);
        r();
      });
    });
  }
  unfollow();
  await dad.stop();
  if (clatd?.running) {
    say('clatd lab: stopping clatd (SIGTERM)');
    await clatd.stop('SIGTERM', 3000);
    const left = (await lab.hostLeftovers()).join('; ');
    say(left ? `clatd lab: clatd left behind: ${left}` : 'clatd lab: clatd removed everything it made');
  }
  say(`clatd lab: ${rounds} rounds, ${rounds - failures} fully working`);
  return failures === 0 && rounds > 0 ? 0 : 1;
}

/** The way clatd took for its IPv6 address, and in the /128-only shapes who answers for it. */
async function sayUplinkMode(lab: Lab, clatd: ReturnType<Lab['startClatd']>): Promise<void> {
  const s = await lab.clatdStatus(clatd);
  const m = s?.uplinkMode;
  if (!s || !m) return;
  say(`clatd lab: CLAT address ${s.clat6 ?? '(none yet)'} by address mode ${m.mode} (${m.name}): ${m.how}`);
  for (const w of m.why) say(`clatd lab:   not mode ${w.mode}: ${w.why}`);
  if (m.announce === 'respond' && s.clat6) {
    say(`clatd lab: clatd answers neighbor solicitations for it (the router's entry: ip -6 neigh show ${s.clat6})`);
  }
}

function nat64Literal(lab: Lab): string {
  const [p] = lab.pref64.split('/');
  return `${p}${ADDR.server}`;
}

async function trafficRound(lab: Lab, target: string, clatd: ReturnType<Lab['startClatd']> | null): Promise<boolean> {
  const h = lab.names.host;
  const host = target.includes(':') ? `[${target}]` : target;
  const [ping, http, udp] = await Promise.all([
    lab.exec(h, ['ping', '-c', '1', '-W', '2', target], { allowFail: true }),
    lab.probe(h, ['http', `http://${host}/index.html`]),
    lab.probe(h, ['udp', target, String(ADDR.udpEchoPort), '200', '2000']),
  ]);
  const rtt = /time=([\d.]+) ms/.exec(ping.stdout)?.[1];
  let lanOk = true;
  let lanPart = '';
  if (lab.lan && !target.includes(':')) {
    const [lping, lhttp] = await Promise.all([
      lab.exec(lab.lan.ns, ['ping', '-c', '1', '-W', '2', target], { allowFail: true }),
      lab.probe(lab.lan.ns, ['http', `http://${host}/index.html`]),
    ]);
    const lrtt = /time=([\d.]+) ms/.exec(lping.stdout)?.[1];
    lanOk = lrtt !== undefined && lhttp.ok === true;
    lanPart = `LAN ${lab.lan.client}: ping ${lrtt ? `${lrtt} ms` : 'FAILED'}, HTTP ${lhttp.ok ? `${lhttp.status}` : 'FAILED'}`;
  }
  const parts = [
    `ping ${rtt ? `${rtt} ms` : 'FAILED'}`,
    `HTTP ${http.ok ? `${http.status} ${http.bytes} B` : `FAILED (${String(http.error ?? http.status)})`}`,
    `UDP echo ${udp.ok ? `${udp.bytes} B in ${udp.ms} ms` : `FAILED (${String(udp.error)})`}`,
  ];
  if (lanPart) parts.push(lanPart);
  const refused = await lab.refusedByRouter();
  if (refused !== null) parts.push(`router refused ${refused} pkts to unleased addresses`);
  if (clatd) {
    const st = await lab.clatdCli(clatd, ['status', '--json'], { timeoutMs: 5000 });
    const status = st.code === 0 ? parseStatus(st.stdout) : null;
    if (status) {
      const c = summarize(status);
      const k = (n: number) => (n > 0 ? ` (${n} in the kernel)` : '');
      parts.push(
        `counters 4→6 ${c.packets46} pkts${k(c.kernel46)}, 6→4 ${c.packets64} pkts${k(c.kernel64)}, drops ${c.drops}`,
      );
    } else if (st.code === 0) {
      parts.push('status: not a clatd status');
    } else {
      parts.push(`status: ${(st.stderr || st.stdout).trim().split('\n')[0]}`);
    }
  }
  say(`${stamp()} ${parts.join(' | ')}`);
  return rtt !== undefined && http.ok === true && udp.ok === true && lanOk;
}

function describeProbe(nd: NonNullable<ReturnType<typeof ndOfFrame>>): string {
  const opts = nd.options
    .map((o) => (o.type === 14 ? `nonce ${o.body.toString('hex')} (${o.body.length} bytes)` : `option ${o.type}`))
    .join(', ');
  return `NS ${nd.ip.src} → ${nd.ip.dst} hop limit ${nd.ip.hopLimit}, target ${nd.target}${opts ? `, ${opts}` : ', no options'}`;
}

function printShell(lab: Lab, clatdLog: string | null): void {
  const n = lab.names;
  say('');
  say(`clatd lab: the network stays up (tag ${n.tag}). Enter a namespace with:`);
  say(`  host:     ip netns exec ${n.host} bash     (IPv6 only, ${hostSays(lab)}${clatdLog ? ', clatd running' : ''})`);
  say(`  router:   ip netns exec ${n.router} bash     (${routerSays(lab)})`);
  say(`  internet: ip netns exec ${n.internet} bash     (IPv4 only, ${ADDR.server}: HTTP :80, UDP echo :7)`);
  if (lab.lan)
    say(
      `  LAN:      ip netns exec ${lab.lan.ns} bash     (IPv4 only, ${lab.lan.client} by DHCPv4, via ${lab.lan.gateway})`,
    );
  say('Try, in the host:');
  say(`  ping ${ADDR.server}; curl http://${ADDR.server}/index.html; getent ahostsv6 ${ADDR.serverName.slice(0, -1)}`);
  if (clatdLog) say(`clatd's log: ${clatdLog}`);
  say(`Logs and configs: ${lab.dir}`);
  say(`Remove it all with: clatd lab --destroy ${n.tag}`);
  say(`  (or: ip netns del ${n.host}; ip netns del ${n.router}; ip netns del ${n.internet})`);
}

/** What the host's uplink has, for the shell hints. */
function hostSays(lab: Lab): string {
  if (!usesDhcpv6(lab.uplink)) {
    return `SLAAC on ${IFACE.host}${lab.uplink === 'routed' ? `, ${ADDR.routedPrefix} routed to it` : ''}`;
  }
  const leases = lab.leases().map((l) => `${l.address} (IA_NA ${l.iaid})`);
  return `DHCPv6 by dhcpcd on ${IFACE.host}: ${leases.join(', ') || 'no lease'}`;
}

/** What runs on the router, for the shell hints. */
function routerSays(lab: Lab): string {
  const parts = ['radvd/RA, unbound DNS64, TAYGA'];
  if (usesDhcpv6(lab.uplink)) parts.push(`dnsmasq DHCPv6, leases in ${lab.dir}/dnsmasq/leases`);
  if (lab.uplink === 'routed') parts.push(`ip -6 route: ${ADDR.routedPrefix} via the host`);
  if (lab.uplink === 'cloud') parts.push('nft list table ip6 clatd_lab_cloud: what it refuses to deliver');
  return parts.join('; ');
}
