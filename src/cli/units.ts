/**
 * The systemd units an installed clatd uses, written from one template, systemd/clatd@.service:
 * `clatd@.service` (one uplink, the instance name) and `clatd.service` (the uplink of the IPv6
 * default route, found by clatd itself). Both the Debian package (scripts/package-deb.sh) and
 * `clatd install-service` call {@link renderUnits}, so the two installs run the same units.
 */
import { readFileSync } from 'node:fs';

export const TEMPLATE_COMMAND = '/usr/bin/env clatd';
export const TEMPLATE_CONFIG = '/etc/clatd/clatd.toml';

export interface UnitOptions {
  /** The command that runs clatd, absolute: `/usr/bin/clatd`, or `/path/node --flags /path/main.js`. */
  command: string;
  /** The config file the units pass with --config. */
  config: string;
  /** ProtectHome=read-only instead of yes: the node or clatd being run lives under /home or /root. */
  homeReadable?: boolean;
}

export function readTemplate(): string {
  return readFileSync(new URL('../../../systemd/clatd@.service', import.meta.url), 'utf8');
}

/** Returns the unit files by name. Throws when the template no longer has a line this relies on. */
export function renderUnits(opts: UnitOptions, template: string = readTemplate()): Record<string, string> {
  if (!opts.command.startsWith('/')) throw new Error(`the command of the units must be absolute: ${opts.command}`);
  const replaceAll = (s: string, from: string, to: string) => {
    if (!s.includes(from)) throw new Error(`systemd/clatd@.service has no "${from}"`);
    return s.split(from).join(to);
  };
  let t = template;
  const header = t.slice(0, t.indexOf('[Unit]'));
  t = t.slice(header.length);
  t = replaceAll(t, `=${TEMPLATE_COMMAND} `, `=${opts.command} `);
  t = replaceAll(t, `=-${TEMPLATE_COMMAND} `, `=-${opts.command} `);
  // Both run and cleanup read the file (cleanup for its interface and control keys).
  t = replaceAll(t, ` --config ${TEMPLATE_CONFIG} `, ` --config ${opts.config} `);
  if (opts.homeReadable) {
    t = replaceAll(
      t,
      '\nProtectHome=yes\n',
      '\n# read-only, not yes: clatd (or its node) is installed under /home or /root.\nProtectHome=read-only\n',
    );
  }
  const instance =
    '# clatd on one uplink: `systemctl enable --now clatd@eth0`. The instance name is the uplink\n' +
    '# interface; its control socket is /run/clatd/<uplink>.sock (`clatd status -i eth0`).\n' +
    '# clatd.service is the same with the uplink found by clatd itself; run one or the other on an uplink.\n' +
    `# Settings: ${opts.config} (--interface here wins over its "interface" key).\n`;
  const plain =
    '# clatd on the uplink of the IPv6 default route, found by clatd itself: `systemctl enable --now clatd`.\n' +
    '# Its control socket is /run/clatd/<uplink>.sock (`clatd status`). For a given interface use\n' +
    '# clatd@<interface>.service instead; run one or the other on an uplink.\n' +
    `# Settings: ${opts.config} (its "interface" key, when set, names the uplink).\n`;
  let single = replaceAll(t, 'Description=464XLAT CLAT (clatd) on %I', 'Description=464XLAT CLAT (clatd)');
  single = replaceAll(single, ' --interface %I --control /run/clatd/%I.sock', '');
  if (single.includes('%I') || single.includes('%i')) throw new Error('clatd.service still names an instance');
  return { 'clatd@.service': instance + t, 'clatd.service': plain + single };
}
