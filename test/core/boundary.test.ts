/**
 * The core is pure: no file, network or process I/O and no native code, so it runs anywhere
 * (workers, offline tools, tests) and cannot block. This test reads every core source file and
 * rejects imports of Node's I/O modules, of the native addon, and of anything outside src/core.
 * The offload programs' builders (src/offload) are held to the same rule: they may use the core.
 * And the layers run one way: nothing below the command line (src/cli) imports from it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/paths.js';

const FORBIDDEN_NODE =
  /^(node:)?(fs|fs\/promises|net|dgram|child_process|worker_threads|cluster|http|https|http2|tls|dns|os)$/;

/** Imports (static, side-effect only, dynamic), re-exports and require() calls: the specifier is one group. */
const IMPORT_SPEC =
  /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)|import\s*['"]([^'"]+)['"]/g;

/** Every module specifier `file` imports. */
function importsOf(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(IMPORT_SPEC)].map((m) => m[1] ?? m[2] ?? m[3] ?? m[4]);
}

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
    for (const f of files) {
      for (const s of importsOf(f)) {
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

// The layers below the command line: the CLI may use all of them, none of them the CLI. What both
// need (option parsing, the daemon's Node flags) lives in src/options.
const BELOW_CLI = ['core', 'offload', 'sys', 'datapath', 'daemon', 'lab', 'options'] as const;

test(`nothing in ${BELOW_CLI.map((f) => `src/${f}`).join(', ')} imports from src/cli`, () => {
  const cli = join(ROOT, 'src', 'cli');
  const problems: string[] = [];
  for (const folder of BELOW_CLI) {
    const files = walk(join(ROOT, 'src', folder));
    assert.ok(files.length > 0, `no ${folder} sources found`);
    for (const f of files) {
      for (const s of importsOf(f)) {
        if (!s.startsWith('.')) continue;
        const target = resolve(join(f, '..'), s);
        if (target === cli || target.startsWith(`${cli}/`)) problems.push(`${relative(ROOT, f)}: imports ${s}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('the import check sees static, type-only, side-effect, re-exported and dynamic imports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clatd-boundary-'));
  try {
    const f = join(dir, 'sample.ts');
    writeFileSync(
      f,
      [
        "import { a } from '../cli/a.js';",
        "import type { B } from '../cli/b.js';",
        "import {\n  c,\n  type D,\n} from '../cli/c.js';",
        "export { e } from '../cli/e.js';",
        "const f = await import('../cli/f.js');",
        "import 'node:fs';",
      ].join('\n'),
    );
    assert.deepEqual(importsOf(f), [
      '../cli/a.js',
      '../cli/b.js',
      '../cli/c.js',
      '../cli/e.js',
      '../cli/f.js',
      'node:fs',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Module-level mutable state in src/core would be shared by every translator in the thread (two
 * configurations would read each other's memo, counters or half-written results): per-translator
 * state lives in XlatState. Immutable tables may stay at module level; an array or object literal
 * must say so in its type (`readonly`, `Readonly<…>`, `ReadonlyArray<…>`) or with `as const`, and
 * anything made with `new` (typed arrays cannot be typed read-only) must be listed here with why.
 */
const FROZEN_TABLES: Record<string, string> = {
  'src/core/xlat/icmp64.ts MAP':
    'the ICMPv6→ICMPv4 type/code table, filled once at load from ERROR_TABLE and INFO_TABLE and only read after',
};

test('src/core has no module-level let and no module-level const bound to a mutable container', () => {
  const problems: string[] = [];
  const allowedSeen = new Set<string>();
  for (const f of walk(join(ROOT, 'src', 'core'))) {
    const where = relative(ROOT, f);
    const text = readFileSync(f, 'utf8');
    // Biome formats top-level declarations at column 0; anything indented is inside a body.
    for (const m of text.matchAll(/^(?:export\s+)?(let|var|const)\s+(?!enum\b)(\w+)\s*(:[^=]*)?=\s*/gm)) {
      const [, kind, name, type = ''] = m;
      const init = text.slice((m.index ?? 0) + m[0].length);
      if (kind !== 'const') {
        problems.push(`${where}: module-level ${kind} ${name}`);
        continue;
      }
      const key = `${where} ${name}`;
      const typedReadonly = /\breadonly\b|Readonly(Array)?</.test(type);
      const firstLine = init.split('\n')[0];
      const statement = init.slice(0, init.search(/;\s*$/m) + 1);
      if (/^new\s/.test(init) && !/[=!]==/.test(statement)) {
        if (key in FROZEN_TABLES) allowedSeen.add(key);
        else problems.push(`${key}: module-level \`${firstLine.trim()}\` (a mutable object)`);
      } else if (/^[[{]/.test(init)) {
        // The literal's end: the first line back at column 0 that closes it.
        const close = init.search(/\n[\]}]/);
        const tail = close < 0 ? firstLine : init.slice(close, close + 60).split(';')[0];
        const asConst = /\bas const\b/.test(tail) || /\bas const\b/.test(firstLine);
        if (!typedReadonly && !asConst) problems.push(`${key}: module-level literal not typed read-only`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(
    Object.keys(FROZEN_TABLES).filter((k) => !allowedSeen.has(k)),
    [],
    'allow-list entries for tables that no longer exist',
  );
});
