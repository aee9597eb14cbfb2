/*
 * tools/testing/selftests/main.ts - `npm run selftests`: run the ported
 * HMM self-tests and report them as kselftest does.
 *
 * Follows the runner half of tools/testing/selftests/kselftest_harness.h
 * (TEST_HARNESS_MAIN) and the TAP output of kselftest.h:
 *
 *   TAP version 13
 *   1..76
 *   #  RUN           hmm.hmm_device_private.migrate ...
 *   #            OK  hmm.hmm_device_private.migrate
 *   ok 12 hmm.hmm_device_private.migrate
 *   ...
 *   # Totals: pass:76 fail:0 xfail:0 xpass:0 skip:0 error:0
 *
 * After the 76 mainline runs come the 22 programs of Glisse's 2015 dummy
 * driver suite (tools/testing/selftests/hmm-dummy: the 15 at HEAD and the
 * 7 historical ones), numbered on, as `ok 80 hmm-dummy.sanity_anon001`.
 *
 * Every run boots a fresh simulated machine. Arguments, as the harness's
 * -f/-v/-t: `-f hmm2` (fixture), `-v hmm_device_coherent` (variant),
 * `-t migrate` (test); each may repeat. `-s hmm` or `-s hmm-dummy` runs
 * one suite only. The exit status is 1 when any test failed (or none
 * ran), 0 otherwise.
 */
import { start_kernel } from '../../../mm/init.js';
import { hmm_test_runs, hmm_test_boot_params, type TestRun } from './mm/hmm-tests.js';
import { runTest } from './mm/hmm-tests-helpers.js';
import { hmm_dummy_selftests, hmm_dummy_count } from './hmm-dummy/main.js';

function parseArgs(argv: string[]): { f: string[]; v: string[]; t: string[]; s: string[] } {
  const sel = { f: [] as string[], v: [] as string[], t: [] as string[], s: [] as string[] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if ((a === '-f' || a === '-v' || a === '-t' || a === '-s') && i + 1 < argv.length) {
      sel[a[1] as 'f' | 'v' | 't' | 's'].push(argv[++i]);
    }
  }
  return sel;
}

function selected(r: TestRun, sel: ReturnType<typeof parseArgs>): boolean {
  if (sel.f.length && !sel.f.includes(r.tc.fixture)) return false;
  if (sel.v.length && !sel.v.includes(r.variant.name)) return false;
  if (sel.t.length && !sel.t.includes(r.tc.name)) return false;
  return true;
}

const sel = parseArgs(process.argv.slice(2));
const narrowed = sel.f.length + sel.v.length + sel.t.length > 0;
const want = (suite: string) => sel.s.length === 0 ? !(narrowed && suite === 'hmm-dummy') : sel.s.includes(suite);
const runs = want('hmm') ? hmm_test_runs().filter((r) => selected(r, sel)) : [];
const ndummy = want('hmm-dummy') ? hmm_dummy_count(true) : 0;
const out = (s: string) => process.stdout.write(s + '\n');
out('TAP version 13');
out(`1..${runs.length + ndummy}`);
out(`# Starting ${runs.length + ndummy} tests from ${runs.length > 0 ? 4 : 0} test cases and the hmm-dummy suite.`);
let pass = 0, fail = 0, skip = 0;
for (const r of runs) {
  const name = `${r.tc.fixture}.${r.variant.name}.${r.tc.name}`;
  out(`#  RUN           ${name} ...`);
  const res = runTest(r.tc, r.variant, () => { start_kernel(hmm_test_boot_params(r.tc)); });
  for (const line of res.output) out(`# ${line}`);
  for (const line of res.messages) out(`# ${r.tc.name}: ${line}`);
  if (res.skipped) {
    skip++;
    out(`#      SKIP      ${res.messages[0] ?? ''}`);
    out(`#            OK  ${name}`);
    out(`ok ${r.index} ${name} # SKIP`);
  } else if (res.passed) {
    pass++;
    out(`#            OK  ${name}`);
    out(`ok ${r.index} ${name}`);
  } else {
    fail++;
    out(`#          FAIL  ${name}`);
    out(`not ok ${r.index} ${name}`);
  }
}
if (ndummy > 0) {
  const d = hmm_dummy_selftests(out, { historical: true, first: runs.length + 1 });
  pass += d.pass;
  fail += d.fail;
}
const total = runs.length + ndummy;
out(`# ${fail === 0 ? 'PASSED' : 'FAILED'}: ${pass + skip} / ${total} tests passed.`);
out(`# Totals: pass:${pass} fail:${fail} xfail:0 xpass:0 skip:${skip} error:0`);
process.exitCode = fail > 0 || total === 0 ? 1 : 0;
