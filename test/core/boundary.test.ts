/**
 * The core is pure: no file, network or process I/O and no native code, so it runs anywhere
 * (workers, offline tools, tests) and cannot block. This test reads every core source file and
 * rejects imports of Node's I/O modules, of the native addon, and of anything outside src/core.
 * The offload programs' builders (src/offload) are held to the same rule: they may use the core.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/paths.js';

const FORBIDDEN_NODE =
  /^(node:)?(fs|fs\/promises|net|dgram|child_process|worker_threads|cluster|http|https|http2|tls|dns|os)$/;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

for (const [folder, allowed] of [
  ['core', ['core']],
  ['offload', ['core', 'offload']],
] as const) {
  test(`src/${folder} imports no I/O module, no native addon and nothing outside ${allowed.map((a) => `src/${a}`).join(', ')}`, () => {
    const files = walk(join(ROOT, 'src', folder));
    assert.ok(files.length > 0, `no ${folder} sources found`);
    const problems: string[] = [];
    const spec =
      /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g;
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(spec)) {
        const s = m[1] ?? m[2] ?? m[3];
        const where = relative(ROOT, f);
        if (FORBIDDEN_NODE.test(s)) problems.push(`${where}: imports ${s}`);
        else if (s.endsWith('.node') || /addon|bindings/.test(s)) problems.push(`${where}: imports native code ${s}`);
        else if (s.startsWith('.')) {
          const target = resolve(join(f, '..'), s);
          if (!allowed.some((a) => target.startsWith(join(ROOT, 'src', a))))
            problems.push(`${where}: imports ${s}, outside ${allowed.join(', ')}`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });
}
