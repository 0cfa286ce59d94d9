/**
 * Every option of `clatd run` as one table: the command line, the TOML file (every flag is also a
 * key of the same name), `--help` and the man page read it; config.ts checks and merges the values.
 */
import type { CommandSpec, OptionSpec } from '../options/args.js';

/** Every option of `clatd run`. Defaults are shown in the help text but applied by resolveConfig (config.ts). */
export const RUN_OPTIONS: Record<string, OptionSpec> = {
  interface: {
    type: 'string',
    short: 'i',
    value: 'IF',
    help: 'uplink interface (default: that of the IPv6 default route)',
  },
  pref64: {
    type: 'string',
    value: 'PREFIX',
    help: 'NAT64 prefix, e.g. 64:ff9b::/96 (default: from RAs, then RFC 7050)',
  },
  'pref64-timeout': {
    type: 'string',
    value: 'SECONDS',
    help: 'give up when no NAT64 prefix is found in time (default: wait)',
  },
  'dns64-server': {
    type: 'string',
    multiple: true,
    value: 'ADDR',
    help: 'DNS server for RFC 7050 discovery (default: the system resolvers)',
  },
  mode: { type: 'string', value: 'auto|always', help: 'auto: stay idle while native IPv4 exists (default: auto)' },
  v4: { type: 'string', value: 'ADDR', help: 'CLAT IPv4 address (default: first free of 192.0.0.4/29, RFC 7335)' },
  v6: {
    type: 'string',
    value: 'ADDR|shared',
    help: "CLAT IPv6 address leased to this host (DHCPv6, cloud), taken off the uplink while clatd runs; or 'shared': the host's own address, NAT66 (default: drawn in the uplink /64)",
  },
  'v6-prefix': {
    type: 'string',
    value: 'PREFIX',
    help: 'prefix routed to this host, /32 to /96: the CLAT IPv6 address is drawn in it, without DAD (default: the uplink /64)',
  },
  'shared-prefix': {
    type: 'string',
    value: 'PREFIX',
    help: "with --v6 shared: the private /64 the CLAT's own address is drawn in, translated to the host's address by the kernel's NAT (default: a random ULA /64 per run)",
  },
  dad: { type: 'string', value: 'strict|optimistic|off', help: 'duplicate address detection mode (default: strict)' },
  'route-metric': {
    type: 'string',
    value: 'N',
    help: "metric of the IPv4 default route (default: 2048 plus the uplink's place in the IPv6 default route order, followed live)",
  },
  mtu: {
    type: 'string',
    value: 'N',
    help: 'IPv4 MTU of the TUN (default: uplink path MTU clamped to 1280..1528, minus 28)',
  },
  workers: {
    type: 'string',
    value: 'N',
    help: 'datapath worker threads; 0 runs the loop on the main thread (default: one per core)',
  },
  offload: {
    type: 'string',
    value: 'auto|off',
    help: 'translate plain TCP, UDP and ping in the kernel with tc eBPF programs; off: all in user space (default: auto)',
  },
  'traffic-class': {
    type: 'string',
    value: 'copy|zero',
    help: 'copy TOS <-> traffic class, or zero it (default: copy)',
  },
  'udp-zero-checksum': {
    type: 'string',
    value: 'compute|drop',
    help: 'IPv4 UDP packets without checksum (default: compute)',
  },
  'icmp-src-v4': {
    type: 'string',
    value: 'ADDR',
    help: 'source of ICMPv4 errors from unmappable IPv6 senders (default: 192.0.0.8)',
  },
  'lowest-ipv6-mtu': { type: 'string', value: 'N', help: 'smallest IPv6 MTU assumed on the path (default: 1280)' },
  'wkp-global-only': {
    type: 'string',
    value: 'on|off',
    help: 'only global IPv4 under 64:ff9b::/96, RFC 6052 §3.1 (default: on)',
  },
  lan: {
    type: 'string',
    multiple: true,
    value: 'IF',
    help:
      'router mode: serve the IPv4 LAN on IF through the CLAT, its sources masqueraded into the CLAT IPv4 address ' +
      '(NAT44; see --lan-mode); needs --interface (default: none, the host alone)',
  },
  'lan-mode': {
    type: 'string',
    value: 'nat44|stateless',
    help:
      'router mode: nat44 masquerades the LAN into the CLAT address; stateless maps each LAN address 1:1 into ' +
      'the first /96 of --v6-prefix, PREFIX::a.b.c.d (EAM, no NAT44; needs --v6-prefix /95 or shorter) (default: nat44)',
  },
  config: { type: 'string', short: 'c', value: 'FILE', help: 'TOML file; every flag is a key of the same name' },
  'log-level': { type: 'string', value: 'LEVEL', help: 'debug, info, warn or error (default: info)' },
  'log-format': { type: 'string', value: 'text|json', help: 'log line format (default: text)' },
  control: { type: 'string', value: 'PATH', help: 'control socket (default: /run/clatd/<uplink>.sock)' },
  metrics: { type: 'string', value: 'HOST:PORT', help: 'serve Prometheus metrics here (default: off)' },
  'metrics-allow-remote': { type: 'boolean', help: 'allow --metrics on a non-loopback address' },
  user: {
    type: 'string',
    value: 'NAME',
    help: 'started as root, run as this user (or UID[:GID]) with only CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF (default: stay)',
  },
};

export const RUN_SPEC: CommandSpec = {
  name: 'run',
  summary:
    'Run the CLAT on this host: find the uplink and the NAT64 prefix, pick and announce the CLAT addresses,\n' +
    'create the TUN v4-<uplink> with an IPv4 default route, and translate until SIGTERM. SIGHUP re-reads --config.',
  usage: 'clatd [run] [OPTIONS]',
  options: RUN_OPTIONS,
};
