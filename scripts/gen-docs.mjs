// Writes the generated man page (clatd.8) and default config (clatd.toml) into the directory given,
// from the compiled option tables (dist/src/cli/docs.js): run `npx tsc -p .` first.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node scripts/gen-docs.mjs DIR\n');
  process.exit(2);
}
const { manPage, defaultConfig } = await import('../dist/src/cli/docs.js');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'clatd.8'), manPage());
writeFileSync(join(dir, 'clatd.toml'), defaultConfig());
