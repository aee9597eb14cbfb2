/*
 * tools/testing/selftests/main.ts - `npm run selftests`: run the ported
 * HMM self-tests and report them as kselftest does.
 *
 * Follows the runner half of tools/testing/selftests/kselftest_harness.h
 * (TEST_HARNESS_MAIN: test_harness_argv_check, test_enabled,
 * test_harness_run) and the TAP output of kselftest.h:
 *
 *   TAP version 13
 *   1..98
 *   # Starting 98 tests from 5 test cases.
 *   #  RUN           hmm.hmm_device_private.migrate ...
 *   #            OK  hmm.hmm_device_private.migrate
 *   ok 12 hmm.hmm_device_private.migrate
 *   ...
 *   # Totals: pass:98 fail:0 xfail:0 xpass:0 skip:0 error:0
 *
 * The 76 mainline runs (fixtures hmm and hmm2, two variants each) come
 * first, then the 22 programs of Glisse's 2015 dummy-driver suite
 * (tools/testing/selftests/hmm-dummy) as fixture "hmm-dummy" without a
 * variant: `ok 80 hmm-dummy.sanity_anon001`.
 *
 * Options, as the harness's getopt("hlF:f:V:v:t:T:r:"):
 *   -h          usage; exit 4 (KSFT_SKIP)
 *   -l          list every test (fixture, variant, test); exit 4
 *   -t/-T name  include/exclude a test;  -v/-V a variant;  -f/-F a fixture
 *   -r name     run one test by its full name, fixture.variant.test
 *               (fixture.test without a variant)
 * Filters apply in the order given and the first that matches decides; a
 * test no filter matches runs only when no including filter was given.
 * Each run boots a fresh simulated machine. Only the selected tests are
 * counted and numbered (the plan is 1..N for N selected). Exit status as
 * ksft_exit(): 0 (KSFT_PASS) when every selected test passed, also when
 * none was selected; 1 (KSFT_FAIL) when one failed or on a bad option.
 *
 * Not kselftest: `-s hmm` or `-s hmm-dummy` selects one suite.
 */
import '../../include/v8_flags.js';       /* first: the JIT setting (tools/include/v8_flags.ts) */
import { start_kernel } from '../../../mm/init.js';
import { hmm_test_runs, hmm_test_boot_params } from './mm/hmm-tests.js';
import { runTest } from './mm/hmm-tests-helpers.js';
import { hmm_dummy_selftests, hmm_dummy_programs } from './hmm-dummy/main.js';

export const KSFT_PASS = 0, KSFT_FAIL = 1, KSFT_XFAIL = 2, KSFT_XPASS = 3, KSFT_SKIP = 4;

/** One test of the run: its kselftest coordinates and how to run it. */
interface selftest { fixture: string; variant: string; test: string; suite: 'hmm' | 'hmm-dummy'; run: number }

type filter = { opt: 't' | 'T' | 'v' | 'V' | 'f' | 'F' | 'r' | 's'; arg: string };

const USAGE = `Usage: selftests [-h|-l] [-t|-T|-v|-V|-f|-F|-r name] [-s hmm|hmm-dummy]
\t-h       print help
\t-l       list all tests

\t-t name  include test
\t-T name  exclude test
\t-v name  include variant
\t-V name  exclude variant
\t-f name  include fixture
\t-F name  exclude fixture
\t-r name  run specified test (fixture.variant.test)
\t-s name  run one suite only: hmm or hmm-dummy

Test filter options can be specified multiple times. The filtering stops
at the first match. For example to include all tests from variant 'bla'
but not test 'foo' specify '-T foo -v bla'.
`;

/** every test there is, in run order */
function all_tests(): selftest[] {
  const out: selftest[] = hmm_test_runs().map((r, i) => ({
    fixture: r.tc.fixture, variant: r.variant.name, test: r.tc.name, suite: 'hmm' as const, run: i,
  }));
  hmm_dummy_programs.forEach((p, i) => out.push({ fixture: 'hmm-dummy', variant: '', test: p.name, suite: 'hmm-dummy', run: i }));
  return out;
}

function full_name(t: selftest): string {
  return `${t.fixture}${t.variant ? '.' + t.variant : ''}.${t.test}`;
}

/** test_enabled() - the harness's rule: the first filter that matches decides. */
export function test_enabled(t: selftest, filters: readonly filter[]): boolean {
  let has_positive = false;
  for (const f of filters) {
    if (f.opt === 's') continue;
    const include = f.opt === f.opt.toLowerCase();
    has_positive ||= include;
    switch (f.opt.toLowerCase()) {
      case 't': if (t.test === f.arg) return include; break;
      case 'v': if (t.variant === f.arg) return include; break;
      case 'f': if (t.fixture === f.arg) return include; break;
      case 'r': if (full_name(t) === f.arg) return true; break;
    }
  }
  return !has_positive;
}

/** parse() - getopt over @argv; null on a bad option (usage printed). */
function parse(argv: string[]): { filters: filter[]; list: boolean; help: boolean } | null {
  const res = { filters: [] as filter[], list: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^-([hltTvVfFrs])(.*)$/.exec(a);
    if (m === null) { process.stderr.write(`selftests: unknown argument '${a}'\n`); return null; }
    const opt = m[1] as filter['opt'] | 'h' | 'l';
    if (opt === 'h') { res.help = true; continue; }
    if (opt === 'l') { res.list = true; continue; }
    const arg = m[2] !== '' ? m[2]! : argv[++i];
    if (arg === undefined) { process.stderr.write(`selftests: option requires an argument -- '${opt}'\n`); return null; }
    if (opt === 's' && arg !== 'hmm' && arg !== 'hmm-dummy') { process.stderr.write(`selftests: no suite '${arg}'\n`); return null; }
    res.filters.push({ opt, arg });
  }
  return res;
}

function main(argv: string[]): number {
  const o = parse(argv);
  if (o === null) { process.stderr.write(USAGE); return KSFT_FAIL; }
  if (o.help) { process.stderr.write(USAGE); return KSFT_SKIP; }
  const every = all_tests();
  if (o.list) {
    process.stderr.write(`${'# FIXTURE'.padEnd(20)} ${'VARIANT'.padEnd(25)} TEST\n`);
    let last = '';
    for (const t of every) {
      if (last !== '' && t.fixture !== last) process.stderr.write(`${'-'.repeat(80)}\n`);
      process.stderr.write(`${(t.fixture === last ? '' : t.fixture).padEnd(20)} ${t.variant.padEnd(25)} ${t.test}\n`);
      last = t.fixture;
    }
    return KSFT_SKIP;
  }
  const suites = o.filters.filter((f) => f.opt === 's').map((f) => f.arg);
  const selected = every.filter((t) => (suites.length === 0 || suites.includes(t.suite)) && test_enabled(t, o.filters));
  const cases = new Set(selected.map((t) => `${t.fixture}.${t.variant}`)).size;
  const out = (s: string) => process.stdout.write(s + '\n');
  out('TAP version 13');
  out(`1..${selected.length}`);
  out(`# Starting ${selected.length} tests from ${cases} test cases.`);
  const runs = hmm_test_runs();
  let n = 0, pass = 0, fail = 0, skip = 0;
  for (const t of selected.filter((x) => x.suite === 'hmm')) {
    const r = runs[t.run]!;
    const name = full_name(t);
    n++;
    out(`#  RUN           ${name} ...`);
    const res = runTest(r.tc, r.variant, () => { start_kernel(hmm_test_boot_params(r.tc)); });
    for (const line of res.output) out(`# ${line}`);
    for (const line of res.messages) out(`# ${r.tc.name}: ${line}`);
    if (res.skipped) {
      skip++;
      out(`#      SKIP      ${res.messages[0] ?? ''}`);
      out(`#            OK  ${name}`);
      out(`ok ${n} ${name} # SKIP`);
    } else if (res.passed) {
      pass++;
      out(`#            OK  ${name}`);
      out(`ok ${n} ${name}`);
    } else {
      fail++;
      out(`#          FAIL  ${name}`);
      out(`not ok ${n} ${name}`);
    }
  }
  const dummies = selected.filter((x) => x.suite === 'hmm-dummy').map((x) => x.test);
  if (dummies.length > 0) {
    const d = hmm_dummy_selftests(out, { names: dummies, first: n + 1 });
    pass += d.pass;
    fail += d.fail;
    n += d.total;
  }
  out(`# ${fail === 0 ? 'PASSED' : 'FAILED'}: ${pass + skip} / ${n} tests passed.`);
  out(`# Totals: pass:${pass} fail:${fail} xfail:0 xpass:0 skip:${skip} error:0`);
  return fail > 0 ? KSFT_FAIL : KSFT_PASS;
}

process.exitCode = main(process.argv.slice(2));
