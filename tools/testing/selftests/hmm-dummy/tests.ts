/*
 * tools/testing/selftests/hmm-dummy/tests.ts - the list of the 2015 HMM
 * dummy suite's programs and the runner that boots a machine for each.
 *
 * The suite at HEAD (0680c47): 12 sanity and 3 stress programs; the
 * historical ones (renamed or replaced before HEAD) follow with their
 * original names. The runner prints, per program, the line the C program
 * printed ("(OK)[argv0] test name") and, for the combined `npm run
 * selftests`, a kselftest line "ok N hmm-dummy.<name>".
 */
import type { boot_params } from '../../../../mm/init.js';
import { start_kernel } from '../../../../mm/init.js';
import { resetScheduler } from '../../../../lib/sim/sched.js';
import { Process } from '../../../include/nolibc/nolibc.js';
import { UserFault } from '../../../../mm/fault.js';
import { hmm_test_seed } from './hmm_test_framework.js';
import { insmodHmmDummy } from '../../../../drivers/char/hmm_dummy.js';

/**
 * One program of the suite.
 * @name: the C file's name (sanity_anon001 ...)
 * @title: its test_name ("anon read test")
 * @boot: the machine it needs (stress_anon001: small RAM and swap)
 * @historical: not in HEAD (kept for the record)
 * @run: the program; returns 0 (pass) or -1 (fail); prints into @out
 */
export interface hmm_dummy_test {
  name: string;
  title: string;
  boot?: boot_params;
  historical?: boolean;
  run(p: Process, out: string[]): number;
}

/** The result of one program. */
export interface hmm_dummy_result { name: string; passed: boolean; out: string[]; error?: string }

/**
 * hmm_dummy_run() - boot a fresh machine, run @t in a new process.
 * A thrown error (a fatal helper error, a signal, a simulator BUG) fails it.
 */
export function hmm_dummy_run(t: hmm_dummy_test): hmm_dummy_result {
  resetScheduler();
  start_kernel(t.boot ?? {});
  insmodHmmDummy();
  hmm_test_seed();
  const p = Process.spawn(t.name);
  const out: string[] = [];
  let rc: number, error: string | undefined;
  try {
    rc = t.run(p, out);
  } catch (e) {
    rc = -1;
    error = e instanceof UserFault ? `signal: ${e.message}` : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    out.push(`(EE) ${error}`);
  }
  const passed = rc === 0;
  out.push(`${passed ? '(OK)' : '(EE)'}[${t.name}] ${t.title}`);
  return { name: t.name, passed, out, ...(error !== undefined ? { error } : {}) };
}
