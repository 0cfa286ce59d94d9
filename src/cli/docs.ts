/**
 * Text generated from the option tables that `--help` prints: the man page clatd(8) and the
 * commented default config file. The Debian package and `clatd install-service` install them, so
 * neither can drift from the options the program accepts.
 */
import { RUN_OPTIONS, RUN_SPEC } from '../daemon/config.js';
import type { CommandSpec, OptionSpec } from '../options/args.js';
import { CLEANUP_SPEC } from './cleanup.js';
import { COMMANDS, VERSION } from './commands.js';
import { DISCOVER_SPEC } from './discover.js';
import { INSTALL_SERVICE_SPEC } from './install-service.js';
import { LAB_SPEC } from './lab.js';
import { STATUS_SPEC } from './status.js';
import { spec as TRANSLATE_SPEC } from './translate.js';

export const SPECS: CommandSpec[] = [
  RUN_SPEC,
  STATUS_SPEC,
  DISCOVER_SPEC,
  CLEANUP_SPEC,
  INSTALL_SERVICE_SPEC,
  TRANSLATE_SPEC,
  LAB_SPEC,
];

/** Escapes text for roff: backslashes, hyphens of options, a control character at a line start. */
function roff(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

function optionItem(name: string, o: OptionSpec): string {
  const flag = `${o.short ? `\\fB\\-${o.short}\\fR, ` : ''}\\fB\\-\\-${roff(name)}\\fR${o.type === 'string' ? ` \\fI${roff(o.value ?? 'VALUE')}\\fR` : ''}`;
  const def = o.default !== undefined && o.default !== false ? ` (default: ${String(o.default)})` : '';
  return `.TP\n${flag}\n${roff(`${o.help}${o.multiple ? ' (repeatable)' : ''}${def}`)}`;
}

export function manPage(): string {
  const out = [
    `.TH CLATD 8 "" "clatd ${roff(VERSION)}" "System Administration"`,
    '.SH NAME',
    'clatd \\- 464XLAT CLAT daemon: IPv4 for an IPv6\\-only Linux host',
    '.SH SYNOPSIS',
    '.B clatd',
    '[\\fICOMMAND\\fR] [\\fIOPTIONS\\fR]',
    '.SH DESCRIPTION',
    roff(
      'clatd gives an IPv6-only Linux host working IPv4 (464XLAT CLAT, RFC 6877). Applications send IPv4 into a TUN ' +
        'device (v4-<uplink>); clatd translates each packet statelessly (RFC 7915) to IPv6 toward the NAT64 prefix ' +
        'of the network (RFC 6052), and translates the replies back. Without a command, clatd runs the daemon (run).',
    ),
    '.SH COMMANDS',
    ...Object.entries(COMMANDS).map(([k, c]) => `.TP\n\\fB${roff(k)}\\fR\n${roff(c.summary)}`),
    '.SH GLOBAL OPTIONS',
    '.TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nshow the help of clatd, or of a command after it',
    '.TP\n\\fB\\-V\\fR, \\fB\\-\\-version\\fR\nprint the version of clatd',
  ];
  for (const spec of SPECS) {
    out.push(`.SH "CLATD ${spec.name.toUpperCase()}"`, '.PP', roff(`Usage: ${spec.usage}`), '.PP');
    out.push(roff(spec.summary.replace(/\n/g, ' ')));
    for (const [name, o] of Object.entries(spec.options)) out.push(optionItem(name, o));
  }
  out.push(
    '.SH "THE CLAT IPv6 ADDRESS"',
    roff(
      'clatd run takes the first way that fits, and says which and why not the earlier ones (log, status, discover):',
    ),
    ...[
      [
        '1',
        'random in the on-link /64 of the uplink, joined as anycast (a prefix on the uplink covers the /64, e.g. SLAAC).',
      ],
      [
        '2',
        'random in that /64, with clatd answering neighbor solicitations itself (only /128s there, e.g. a DHCPv6 lease).',
      ],
      ['3', '--v6-prefix: random in a prefix routed to the host; nothing announced, no DAD.'],
      [
        '4',
        '--v6: the address leased to the host; taken off the uplink while clatd runs and put back on exit, ' +
          'by clatd cleanup and by the next start after a crash. A duplicate blocks DAD; no other address is drawn.',
      ],
    ].map(([n, t]) => `.TP\n${n}\n${roff(t)}`),
    '.SH FILES',
    '.TP\n\\fI/etc/clatd/clatd.toml\\fR',
    roff(
      'the settings of clatd run as the systemd units start it (--config); every option of clatd run is a key ' +
        'of the same name. SIGHUP (systemctl reload) re-reads it.',
    ),
    '.TP\n\\fI/run/clatd/\\fIuplink\\fI.sock\\fR',
    roff(
      'the control socket of the clatd on an uplink (clatd status), with its records of the host settings it changed ' +
        'and of a leased address it took off the uplink',
    ),
    '.SH EXIT STATUS',
    roff('0 on success, 1 on an error, 2 on a usage error (a bad option or value), 70 on an internal error.'),
    '.SH SEE ALSO',
    '\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1), \\fBnft\\fR(8), RFC 6877, RFC 7915, RFC 6052, RFC 7050, RFC 8781',
    '',
  );
  return out.join('\n');
}

/** Example values for options whose default is computed rather than a literal. */
const EXAMPLES: Record<string, string> = {
  interface: '"eth0"',
  pref64: '"64:ff9b::/96"',
  'pref64-timeout': '60',
  'dns64-server': '["2001:4860:4860::6464"]',
  v4: '"192.0.0.4"',
  v6: '"2001:db8:1:2:0:0:c1a7:1"',
  'v6-prefix': '"2001:db8:99::/64"',
  mtu: '1472',
  workers: '2',
  control: '"/run/clatd/eth0.sock"',
  metrics: '"127.0.0.1:9464"',
};

/** A value for the TOML line of an option: its literal default when the help names one, else an example. */
function exampleValue(name: string, o: OptionSpec): string {
  if (EXAMPLES[name]) return EXAMPLES[name];
  if (o.type === 'boolean') return String(o.default === true);
  const d = /\(default: ([^)]+)\)/.exec(o.help)?.[1];
  if (d === undefined) throw new Error(`no example value for "${name}"`);
  if (/^\d+$/.test(d)) return d;
  return JSON.stringify(d);
}

/** The default /etc/clatd/clatd.toml: every key of `clatd run`, commented out, with its help. */
export function defaultConfig(): string {
  const lines = [
    '# Settings of `clatd run` as the systemd units start it (clatd.service, clatd@<uplink>.service).',
    '# Every option of `clatd run --help` is a key of the same name; an option on the command line wins',
    '# over the key (clatd@<uplink>.service passes --interface and --control). Text values are written in',
    '# quotes. `systemctl reload clatd` (SIGHUP) re-reads this file; clatd logs what it applied and what',
    '# needs a restart. Each line below shows the default, or an example where the default is computed.',
    '',
  ];
  for (const [name, o] of Object.entries(RUN_OPTIONS)) {
    if (name === 'config') continue;
    lines.push(`# ${o.help}${o.multiple ? ' (a list)' : ''}`, `#${name} = ${exampleValue(name, o)}`, '');
  }
  return lines.join('\n');
}
