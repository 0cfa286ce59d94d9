#!/usr/bin/env -S node --use-largepages=silent
/**
 * The `clatd` entry point: picks the subcommand and runs it. Each subcommand lives in its own file
 * and is loaded on demand, so `clatd translate` never loads the system layer's native addon.
 * The shebang's flags are DAEMON_NODE_FLAGS (src/options/node-flags.ts says why).
 */
import { ClatdError } from '../core/errors.js';
import { UsageError } from '../options/args.js';

interface Subcommand {
  summary: string;
  load: () => Promise<{ main(argv: string[]): Promise<number> }>;
}

const COMMANDS: Record<string, Subcommand> = {
  run: { summary: 'run the CLAT on this host (the default command)', load: () => import('./run.js') },
  status: { summary: 'show the state and counters of a running clatd', load: () => import('./status.js') },
  discover: { summary: 'print what `run` would choose, changing nothing', load: () => import('./discover.js') },
  cleanup: {
    summary: 'remove what a clatd that is no longer running left behind',
    load: () => import('./cleanup.js'),
  },
  translate: { summary: 'translate the packets of a pcap file offline', load: () => import('./translate.js') },
  lab: { summary: 'build an IPv6-only network in namespaces and run clatd in it', load: () => import('./lab.js') },
};

export function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const rows = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`);
  return [
    'Usage: clatd [COMMAND] [OPTIONS]',
    '',
    'clatd gives an IPv6-only Linux host working IPv4 (464XLAT CLAT, RFC 6877).',
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

/** The command being run, so that an error names it (`clatd lab: …`). */
let command = 'run';

async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write('clatd 0.1.0\n');
    return 0;
  }
  let rest = argv;
  if (first !== undefined && !first.startsWith('-')) {
    if (!(first in COMMANDS)) throw new UsageError(`clatd: unknown command "${first}" (try clatd --help)`);
    command = first;
    rest = argv.slice(1);
  }
  const mod = await COMMANDS[command].load();
  return mod.main(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // A UsageError's message names the command already (`clatd run: --pref64 …`); other errors
    // are named here, once.
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof ClatdError) {
      process.stderr.write(`clatd ${command}: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(
        `clatd ${command}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 70;
    }
  },
);
