// The npm "install" script of clatd (npm runs it in the package's directory, for `npm ci` in a
// checkout as for `npm install -g clatd-*.tgz`). Two jobs:
//
// 1. Build the native addon with node-gyp against the headers of the node that runs the install.
//    node-gyp would otherwise download them from nodejs.org; a node installed with its headers
//    (Debian's nodejs in /usr, an official tarball, a version manager) has them in
//    <prefix>/include/node, so --nodedir points there. An npm config `nodedir` still wins.
// 2. In an installed package (no src/ beside dist/), write this node's absolute path into the bin's
//    shebang, so `clatd` runs with the node it was installed for, whatever PATH holds (sudo's
//    secure_path, systemd, a version manager switched to another node). A checkout keeps
//    `#!/usr/bin/env -S node …`, which its tests check.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

const args = ['rebuild'];
if (!process.env.npm_config_nodedir) {
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
}
const gyp = process.env.npm_config_node_gyp;
const r = gyp?.endsWith('.js')
  ? spawnSync(process.execPath, [gyp, ...args], { cwd: root, stdio: 'inherit' })
  : spawnSync(gyp || 'node-gyp', args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write(
    `clatd: building the native addon failed (${r.error ? r.error.message : `node-gyp exit ${r.status}`}); it needs g++, make and python3\n`,
  );
  process.exit(1);
}

const bin = join(root, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(join(root, 'src')) && existsSync(bin)) {
  const text = readFileSync(bin, 'utf8');
  const m = /^#!\/usr\/bin\/env -S node( [^\n]*)?\n/.exec(text);
  if (m) writeFileSync(bin, `#!/usr/bin/env -S ${process.execPath}${m[1] ?? ''}\n${text.slice(m[0].length)}`);
}
