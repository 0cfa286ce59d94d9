/**
 * `clatd install-service`: for a clatd installed with npm (or run from a checkout), writes the
 * systemd units clatd@.service and clatd.service with absolute paths — this node, its flags and this
 * clatd's main.js, so neither PATH nor a version manager's shims matter to systemd — and a commented
 * default config file when there is none, then reloads systemd. The Debian package installs the
 * same units (src/cli/units.ts) and needs none of this.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClatdError } from '../core/errors.js';
import { type CommandSpec, parseCommand, UsageError } from '../options/args.js';
import { DAEMON_NODE_FLAGS } from '../options/node-flags.js';
import { TEMPLATE_CONFIG } from './units.js';

export const INSTALL_SERVICE_SPEC: CommandSpec = {
  name: 'install-service',
  summary:
    'Write the systemd units clatd@.service and clatd.service that run this clatd with this node by absolute\n' +
    'paths, and a commented default config file if there is none; then run systemctl daemon-reload.\n' +
    'Enables and starts nothing: `systemctl enable --now clatd` (or clatd@IF) does that.',
  usage: 'clatd install-service [OPTIONS]',
  options: {
    'unit-dir': { type: 'string', value: 'DIR', help: 'where the units go', default: '/etc/systemd/system' },
    config: {
      type: 'string',
      value: 'FILE',
      help: 'the config file the units pass with --config',
      default: TEMPLATE_CONFIG,
    },
    'no-reload': { type: 'boolean', help: 'do not run systemctl daemon-reload' },
  },
};

const UNDER_HOME = /^\/(home|root)(\/|$)/;

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const parsed = parseCommand(INSTALL_SERVICE_SPEC, argv, out);
  if (!parsed) return 0;
  const unitDir = parsed.values['unit-dir'] as string;
  const config = parsed.values.config as string;
  const mainJs = realpathSync(join(dirname(fileURLToPath(import.meta.url)), 'main.js'));
  if (mainJs.startsWith('/usr/lib/clatd/')) {
    throw new ClatdError(
      'this clatd comes from the Debian package, which installed its units already (systemctl cat clatd@.service)',
    );
  }
  if (!config.startsWith('/')) {
    throw new UsageError(`clatd install-service: --config must be an absolute path, got "${config}"`);
  }
  const node = realpathSync(process.execPath);
  const command = [node, ...DAEMON_NODE_FLAGS, mainJs].join(' ');
  if (/\s/.test(node) || /\s/.test(mainJs))
    throw new ClatdError(`a path with a space cannot go into a unit: ${command}`);
  // Loaded only now: the docs import every command's options.
  const { renderUnits } = await import('./units.js');
  const { defaultConfig } = await import('./docs.js');
  const units = renderUnits({ command, config, homeReadable: UNDER_HOME.test(node) || UNDER_HOME.test(mainJs) });
  mkdirSync(unitDir, { recursive: true });
  for (const [name, text] of Object.entries(units)) {
    writeFileSync(join(unitDir, name), text, { mode: 0o644 });
    out(`wrote ${join(unitDir, name)}\n`);
  }
  if (existsSync(config)) {
    out(`kept ${config}\n`);
  } else {
    mkdirSync(dirname(config), { recursive: true });
    writeFileSync(config, defaultConfig(), { mode: 0o644 });
    out(`wrote ${config}\n`);
  }
  if (!parsed.values['no-reload']) {
    const r = spawnSync('systemctl', ['daemon-reload'], { encoding: 'utf8' });
    if (r.status !== 0) out(`systemctl daemon-reload failed: ${(r.stderr || String(r.error)).trim()}\n`);
  }
  out(`ExecStart runs: ${command}\nStart it with: systemctl enable --now clatd (or clatd@<interface>)\n`);
  return 0;
}
