/**
 * `describe`, `test` and the hooks of node:test, with a suite's skip handed to every test in it.
 *
 * On Node 20 `describe(name, { skip: reason }, …)` reports the suite as one skipped suite and its
 * tests not at all (`# skipped 0`): they vanish from the summary. Here a suite's skip reason goes to
 * each `test` inside it (nested suites included), so every test is reported as skipped with the
 * reason and counted, and the suite's hooks are not registered (they would run, and fail, with
 * every test skipped). Import these instead of node:test's in any file that skips a suite:
 *
 *   import { after, before, describe, test } from '../helpers/suite.js';
 *   describe('Tun', { skip: NEED_ROOT }, () => {
 *     before(() => …);          // not run when NEED_ROOT is a reason
 *     test('opens', () => …);   // reported as "# SKIP needs root …"
 *   });
 *
 * A suite's body must register its tests synchronously (as node:test's bodies do anyway).
 */
import * as nt from 'node:test';

type Skip = boolean | string | undefined;
type TestFn = nt.TestFn;
type SuiteFn = nt.SuiteFn;
type HookFn = nt.HookFn;

/** The skip of the suite whose body is being run (tests registered now inherit it), or false. */
let inherited: string | true | false = false;

function own(skip: Skip): string | true | false {
  return typeof skip === 'string' ? skip : skip === true;
}

function split<F>(a: nt.TestOptions | F | undefined, b: F | undefined): [nt.TestOptions, F | undefined] {
  return typeof a === 'function' ? [{}, a as F] : [(a as nt.TestOptions | undefined) ?? {}, b];
}

/** A suite; with `skip`, every test inside it is skipped with that reason and its hooks do not run. */
export function describe(name: string, fn: SuiteFn): Promise<void>;
export function describe(name: string, options: nt.TestOptions, fn: SuiteFn): Promise<void>;
export function describe(name: string, a?: nt.TestOptions | SuiteFn, b?: SuiteFn): Promise<void> {
  const [options, fn] = split(a, b);
  const skip = own(options.skip) || inherited;
  return nt.describe(name, { ...options, skip: false }, (s) => {
    const outer = inherited;
    inherited = skip;
    try {
      const r = fn?.(s);
      if (skip && r && typeof (r as Promise<void>).then === 'function') {
        throw new Error(`suite "${name}": a skipped suite's body must be synchronous`);
      }
      return r;
    } finally {
      inherited = outer;
    }
  });
}

/** A test; skipped with its own reason, or its suite's. */
export function test(name: string, fn: TestFn): Promise<void>;
export function test(name: string, options: nt.TestOptions, fn: TestFn): Promise<void>;
export function test(name: string, a?: nt.TestOptions | TestFn, b?: TestFn): Promise<void> {
  const [options, fn] = split(a, b);
  const skip = own(options.skip) || inherited;
  return nt.test(name, { ...options, skip }, fn);
}

export const it = test;

function hook(register: (fn: HookFn, options?: nt.HookOptions) => void) {
  return (fn: HookFn, options?: nt.HookOptions): void => {
    if (inherited) return; // every test of this suite is skipped: nothing to set up or tear down
    register(fn, options);
  };
}

export const before = hook(nt.before);
export const after = hook(nt.after);
export const beforeEach = hook(nt.beforeEach);
export const afterEach = hook(nt.afterEach);
export type { TestContext } from 'node:test';
