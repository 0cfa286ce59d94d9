#!/usr/bin/env -S node
/**
 * The `clatd` entry point: picks the subcommand and runs it. Each subcommand lives in its own file
 * and is loaded on demand, so `clatd translate` never loads the system layer's native addon.
 * The subcommands, the top-level help and the version are in commands.ts. The shebang's flags are
 * DAEMON_NODE_FLAGS (src/options/node-flags.ts says why); an installed clatd does not rely on the
 * shebang's `env` finding node (scripts/npm-install.cjs, the .deb's /usr/bin/clatd).
 */
import { ClatdError } from '../core/errors.js';
import { UsageError } from '../options/args.js';
import { COMMANDS, usage, VERSION } from './commands.js';

/** The command being run, so that an error names it (`clatd lab: …`). */
let command = 'run';

async function main(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`clatd ${VERSION}\n`);
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
