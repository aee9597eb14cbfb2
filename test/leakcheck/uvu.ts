/*
 * test/leakcheck/uvu.ts - uvu, with the teardown leak check (kmemleak in
 * spirit, mm/kmemleak.ts) run at the end of every test.
 *
 * tools/run-suites.mjs starts each suite with `--import
 * ./dist/test/leakcheck/register.js`; its loader (./loader.ts) resolves
 * every `import ... from 'uvu'` of a suite to this module, so every suite,
 * old or new, gets the check without editing it. Each test body is
 * wrapped: when it returns, the machine is torn down (every task exits,
 * test/helpers.ts machine_teardown()) and the test fails with what
 * leaked: RAM frames, device pages, swap slots, page-table directories.
 * A test whose body threw is reported as it is, without the check.
 *
 * A test that leaves something in use by design says so by calling
 * kmemleak_exempt(reason) (below) in its body; the reason is printed.
 */
import * as uvu from 'uvu';
import { appendFileSync } from 'node:fs';
import { machine_teardown } from '../helpers.js';
import { machine_booted } from '../../mm/page_alloc.js';
import { lockdep_unseen_warnings } from '../../lib/locking/lockdep.js';

type Context = Record<string, any>;   // eslint-disable-line @typescript-eslint/no-explicit-any
type Handler = uvu.Callback<Context>;
type Suite = uvu.Test<Context>;

let exempt: string | null = null;

/** kmemleak_exempt() - this test leaves something in use on purpose: skip its leak check, saying why. */
export function kmemleak_exempt(reason: string): void { exempt = reason; }

async function checked(fn: Handler, ctx: Parameters<Handler>[0]): Promise<void> {
  exempt = null;
  lockdep_unseen_warnings();                  /* an earlier test's or the suite's own set-up: not this test's */
  await fn(ctx);
  const splats = lockdep_unseen_warnings();
  if (splats.length > 0) {
    if (process.env.LOCKDEP_REPORT_ONLY) appendFileSync(process.env.LOCKDEP_REPORT_ONLY, `${process.argv[1]}: ${splats.join(' | ')}\n`);
    else throw new Error(`lockdep at teardown: ${splats.join(' | ')}`);
  }
  if (exempt !== null || !machine_booted()) return;
  const leaks = machine_teardown();
  if (leaks.length > 0) throw new Error(`kmemleak at teardown: ${leaks.join(' | ')}`);
}

function wrap(s: Suite): Suite {
  const w = ((name: string, fn: Handler) => s(name, (ctx) => checked(fn, ctx))) as Suite;
  w.only = (name: string, fn: Handler) => s.only(name, (ctx) => checked(fn, ctx));
  w.skip = s.skip;
  w.before = s.before;
  w.after = s.after;
  w.run = s.run;
  return w;
}

export const suite = (name?: string, state?: Context): Suite => wrap(uvu.suite(name, state));
export const test = wrap(uvu.test);
export const exec = uvu.exec;
