/*
 * tools/testing/selftests/hmm-dummy/main.ts - Glisse's 2015 HMM dummy suite
 * as a kselftest group, beside the mainline hmm-tests.
 *
 *   node dist/tools/testing/selftests/hmm-dummy/main.js [--historical] [name ...]
 *
 * prints, per program, what the C program printed and a TAP line:
 *
 *   # (OK)[sanity_anon001] anon read test
 *   ok 1 hmm-dummy.sanity_anon001
 *
 * hmm_dummy_selftests() is what tools/testing/selftests/main.ts calls to
 * run the group after the mainline one (numbering continues from @first).
 * The 15 programs at HEAD always run; --historical adds the 7 older ones.
 */
import { sanity_tests } from './sanity.js';
import { stress_tests } from './stress.js';
import { historical_tests } from './historical.js';
import { hmm_dummy_run, type hmm_dummy_test } from './tests.js';

/** The programs of the suite: HEAD first (sanity, stress), then the historical ones. */
export const hmm_dummy_programs: hmm_dummy_test[] = [...sanity_tests, ...stress_tests, ...historical_tests];

/** hmm_dummy_count() - how many programs a run would execute (HEAD's, plus the historical ones). */
export function hmm_dummy_count(historical: boolean): number {
  return hmm_dummy_programs.filter((t) => historical || !t.historical).length;
}

/**
 * hmm_dummy_selftests() - run the suite, writing TAP lines with @out.
 * @names: run only these (default: HEAD's 15, plus the historical ones with @historical)
 * @first: number of the first TAP line
 * Return: counts.
 */
export function hmm_dummy_selftests(out: (s: string) => void, opts: { names?: string[]; historical?: boolean; first?: number } = {}):
    { pass: number; fail: number; total: number } {
  const list = hmm_dummy_programs.filter((t) => opts.names !== undefined && opts.names.length > 0
    ? opts.names.includes(t.name) : (opts.historical === true || !t.historical));
  let n = opts.first ?? 1, pass = 0, fail = 0;
  for (const t of list) {
    const r = hmm_dummy_run(t);
    for (const line of r.out) out(`# ${line}`);
    if (r.passed) { pass++; out(`ok ${n} hmm-dummy.${t.name}`); }
    else { fail++; out(`not ok ${n} hmm-dummy.${t.name}`); }
    n++;
  }
  return { pass, fail, total: list.length };
}

if (process.argv[1] !== undefined && process.argv[1].endsWith('hmm-dummy/main.js')) {
  const args = process.argv.slice(2);
  const historical = args.includes('--historical');
  const names = args.filter((a) => !a.startsWith('--'));
  const out = (s: string) => process.stdout.write(s + '\n');
  out('TAP version 13');
  const r = hmm_dummy_selftests(out, { names, historical });
  out(`# Totals: pass:${r.pass} fail:${r.fail} xfail:0 xpass:0 skip:0 error:0`);
  process.exitCode = r.fail > 0 || r.total === 0 ? 1 : 0;
}
