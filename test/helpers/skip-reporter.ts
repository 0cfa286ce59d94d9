/**
 * A node:test reporter that writes one JSON line per skipped test (and per skipped suite, whose
 * tests node does not count): `{ "file", "test", "reason", "suite" }`. scripts/test.sh sends it to
 * a file beside the usual reporter and hands that file to skip-check.js, which prints the skips by
 * reason and fails in CI on a reason not allowed there.
 *
 *   node --test --test-reporter=tap --test-reporter-destination=stdout \
 *     --test-reporter=./dist/test/helpers/skip-reporter.js --test-reporter-destination=skips.jsonl …
 */
import { relative } from 'node:path';
import type { TestEvent } from 'node:test/reporters';

export interface SkipRecord {
  /** The test file, relative to the working directory. */
  file: string;
  /** The test's name with its suites', joined by " › ". */
  test: string;
  reason: string;
  /** A whole suite skipped by node:test: its tests are not counted anywhere. */
  suite: boolean;
}

export default async function* skipReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  // Names of the tests being run, by nesting level (a test's suites are the levels above it).
  const path: string[] = [];
  // The file being run: with --test-concurrency=1 the runner dequeues one file (a test named by its
  // path) and reports its tests before the next. Tests registered through test/helpers/suite.js
  // carry that helper as their file.
  let current = '?';
  for await (const event of source) {
    if (event.type === 'test:dequeue' && event.data.nesting === 0 && event.data.name === event.data.file) {
      current = event.data.file;
      continue;
    }
    if (event.type === 'test:start') {
      path.length = event.data.nesting;
      path[event.data.nesting] = event.data.name;
      continue;
    }
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip, nesting, name, file } = event.data;
    if (skip === undefined || skip === false) continue;
    const names = [...path.slice(0, nesting), name];
    const record: SkipRecord = {
      file: relative(process.cwd(), file && !file.endsWith('/helpers/suite.js') ? file : current),
      test: names.join(' › '),
      reason: skip === true ? '(no reason given)' : skip,
      suite: event.data.details.type === 'suite',
    };
    yield `${JSON.stringify(record)}\n`;
  }
}
