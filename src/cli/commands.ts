/**
 * The subcommands of `clatd` with their one-line summaries, the top-level help and the version:
 * shared by the entry point (main.ts, which runs on import) and the generated man page (docs.ts).
 */
import { readFileSync } from 'node:fs';

export interface Subcommand {
  summary: string;
  load: () => Promise<{ main(argv: string[]): Promise<number> }>;
}

export const COMMANDS: Record<string, Subcommand> = {
  run: { summary: 'run the CLAT on this host (the default command)', load: () => import('./run.js') },
  status: { summary: 'show the state and counters of a running clatd', load: () => import('./status.js') },
  discover: { summary: 'print what `run` would choose, changing nothing', load: () => import('./discover.js') },
  cleanup: {
    summary: 'remove what a clatd that is no longer running left behind',
    load: () => import('./cleanup.js'),
  },
  'install-service': {
    summary: 'install the systemd units and a default config for this clatd',
    load: () => import('./install-service.js'),
  },
  translate: { summary: 'translate the packets of a pcap file offline', load: () => import('./translate.js') },
  lab: { summary: 'build an IPv6-only network in namespaces and run clatd in it', load: () => import('./lab.js') },
};

/** The version in package.json, which ships beside dist/ in every install (npm, the .deb, a checkout). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const rows = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`);
  return [
    'Usage: clatd [COMMAND] [OPTIONS]',
    '',
    'clatd gives an IPv6-only Linux host working IPv4 (464XLAT CLAT, RFC 6877);',
    'with `clatd run --lan IF` also the IPv4-only devices of a LAN behind it (router mode, NAT44).',
    '',
    'Commands:',
    ...rows,
    '',
    'Options:',
    '  -h, --help     show this help',
    '  -V, --version  print the version of clatd',
    '',
    'Run `clatd COMMAND --help` for the options of a command.',
    '',
  ].join('\n');
}
