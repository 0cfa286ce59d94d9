/** Paths the tests need, resolved from the compiled test file's location (dist/test/...). */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
  return dir;
}

/** The project root (where package.json is). */
export const ROOT = findRoot();
/** `../shared` beside the project root; may be absent in a user's clone. */
export const SHARED = resolve(ROOT, '..', 'shared');
export const JOOL_CASES = join(SHARED, 'conformance', 'jool-siit', 'cases.jsonl');
/** The compiled CLI entry. */
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
