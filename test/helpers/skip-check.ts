/**
 * Reads the skips skip-reporter.js wrote and prints them by reason. In CI (CI=true) it exits 1 when
 * a skip fired whose reason is not on CI_MAY_SKIP, or when a whole suite was skipped (its tests are
 * counted nowhere); elsewhere it only prints.
 *
 *   node dist/test/helpers/skip-check.js skips.jsonl
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { SkipRecord } from './skip-reporter.js';

/**
 * The reasons a test may skip on the CI machine, and why. CI runs as root, with ../shared beside
 * the project and scripts/install-deps.sh run first, so a skip for want of root, of the shared
 * folder or of a Debian package that script installs means a test did not run where it must.
 * What CI cannot change is its kernel.
 */
export const CI_MAY_SKIP: readonly { reason: RegExp; why: string }[] = [
  {
    reason: /^needs Linux 6\.6 or later for tcx links\b/,
    // Only tests of tcx links themselves skip so; clatd on such a kernel uses classic tc filters,
    // which the daemon and lab tests then run through (and netns.test.ts forces where tcx exists).
    why: 'the kernel is the machine’s; before 6.6 clatd attaches with classic tc filters, tested instead',
  },
];

export interface Verdict {
  /** Lines to print. */
  lines: string[];
  /** True when the run must fail. */
  fail: boolean;
}

export function judge(skips: readonly SkipRecord[], ci: boolean): Verdict {
  const byReason = new Map<string, SkipRecord[]>();
  for (const s of skips) {
    const list = byReason.get(s.reason) ?? [];
    list.push(s);
    byReason.set(s.reason, list);
  }
  const tests = skips.filter((s) => !s.suite).length;
  const lines = [`skips by reason: ${tests} test(s) skipped${ci ? ' (CI=true: checked against CI_MAY_SKIP)' : ''}`];
  let fail = false;
  for (const [reason, list] of [...byReason].sort((a, b) => b[1].length - a[1].length)) {
    const allowed = CI_MAY_SKIP.some((a) => a.reason.test(reason));
    const suites = list.filter((s) => s.suite);
    const mark = !ci ? '' : allowed && suites.length === 0 ? ' [allowed in CI]' : ' [NOT ALLOWED IN CI]';
    lines.push(`  ${String(list.length - suites.length).padStart(4)}  ${reason}${mark}`);
    for (const s of suites) {
      lines.push(`        whole suite skipped, its tests uncounted (use test/helpers/suite.js): ${s.file}: ${s.test}`);
    }
    if (ci && (!allowed || suites.length > 0)) {
      fail = true;
      for (const s of list.filter((x) => !x.suite)) lines.push(`        ${s.file}: ${s.test}`);
    }
  }
  if (fail) lines.push('skips: a test skipped on CI for a reason CI must not have (see above)');
  return { lines, fail };
}

export function readSkips(path: string): SkipRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as SkipRecord);
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: skip-check.js SKIPS.jsonl…\n');
    process.exit(2);
  }
  const v = judge(files.flatMap(readSkips), process.env.CI === 'true');
  process.stdout.write(`${v.lines.join('\n')}\n`);
  process.exit(v.fail ? 1 : 0);
}
