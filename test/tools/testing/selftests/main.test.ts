/*
 * test/tools/testing/selftests/main.test.ts - the self-test runner
 * (tools/testing/selftests/main.ts) as kselftest's harness: -h, -l, the
 * -t/-T/-v/-V/-f/-F/-r filters, valid TAP when filtered (the plan counts
 * the tests run, numbered 1..N), and kselftest's exit codes. Each case
 * runs the built runner in a child process on a few quick tests.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';

const t = suite('tools/testing/selftests');

function selftests(...args: string[]): { out: string; err: string; rc: number } {
  const r = spawnSync(process.execPath, ['dist/tools/testing/selftests/main.js', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { out: r.stdout, err: r.stderr, rc: r.status ?? -1 };
}

/**
 * tap_results() - check @out is valid TAP 13 (version line, one plan
 * 1..N, N result lines numbered 1..N in order, everything else a
 * comment) and return the names of the results in order.
 */
export function tap_results(out: string): { name: string; ok: boolean; directive: string }[] {
  const lines = out.trimEnd().split('\n');
  assert.is(lines[0], 'TAP version 13');
  const plans = lines.filter((l) => /^1\.\.\d+$/.test(l));
  assert.is(plans.length, 1, 'one plan line');
  const planned = Number(plans[0]!.slice(3));
  const results: { name: string; ok: boolean; directive: string }[] = [];
  for (const l of lines.slice(1)) {
    if (l === plans[0] || l.startsWith('#')) continue;
    const m = /^(ok|not ok) (\d+) ([^#]+?)(?: # (.*))?$/.exec(l);
    assert.ok(m !== null, `not a TAP line: ${JSON.stringify(l)}`);
    assert.is(Number(m![2]), results.length + 1, `result numbered in order: ${l}`);
    results.push({ name: m![3]!, ok: m![1] === 'ok', directive: m![4] ?? '' });
  }
  assert.is(results.length, planned, 'the plan counts the results');
  return results;
}

t('-t migrate: the plan counts the tests run, numbered 1..N (issue: "1..2" then "ok 12", "ok 47")', () => {
  const r = selftests('-t', 'migrate');
  assert.is(r.rc, 0, r.err);
  assert.equal(tap_results(r.out).map((x) => x.name), ['hmm.hmm_device_private.migrate', 'hmm.hmm_device_coherent.migrate']);
  assert.match(r.out, /# Totals: pass:2 fail:0 /);
});

t('-t open_close -V X: the -t matched first, so both variants run', () => {
  const names = tap_results(selftests('-t', 'open_close', '-V', 'hmm_device_coherent').out).map((x) => x.name);
  assert.equal(names, ['hmm.hmm_device_private.open_close', 'hmm.hmm_device_coherent.open_close']);
});

t('filters: first match decides, -r names one test, fixtures and variants, both suites numbered on', () => {
  const a = tap_results(selftests('-V', 'hmm_device_coherent', '-r', 'hmm2.hmm2_device_private.migrate_mixed', '-t', 'sanity_anon001',
    '-t', 'open_close').out);
  assert.equal(a.map((x) => x.name), ['hmm.hmm_device_private.open_close', 'hmm2.hmm2_device_private.migrate_mixed', 'hmm-dummy.sanity_anon001']);
  /* -T before -t: the exclusion matches first; -F drops a whole fixture */
  const b = tap_results(selftests('-T', 'open_close', '-t', 'open_close', '-F', 'hmm-dummy', '-t', 'anon_write', '-t', 'sanity_anon001').out);
  assert.equal(b.map((x) => x.name), ['hmm.hmm_device_private.anon_write', 'hmm.hmm_device_coherent.anon_write']);
});

t('no filter matches: plan 1..0, exit 0 as ksft_exit(); -s picks a suite', () => {
  const r = selftests('-t', 'no_such_test');
  assert.is(r.rc, 0);
  assert.equal(tap_results(r.out), []);
  const d = tap_results(selftests('-s', 'hmm-dummy', '-t', 'sanity_anon001', '-t', 'open_close').out);
  assert.equal(d.map((x) => x.name), ['hmm-dummy.sanity_anon001']);
});

t('-h prints the usage and exits 4 (KSFT_SKIP); -l lists every test and exits 4; a bad option exits 1 (KSFT_FAIL)', () => {
  const h = selftests('-h');
  assert.is(h.rc, 4);
  assert.match(h.err, /^Usage: selftests \[-h\|-l\]/);
  assert.is(h.out, '');
  const l = selftests('-l');
  assert.is(l.rc, 4);
  const rows = l.err.split('\n').filter((x) => x.trim() !== '' && !x.startsWith('#') && !x.startsWith('-'));
  assert.is(rows.length, 98, 'every run listed: 76 mainline, 22 hmm-dummy');
  assert.match(l.err, /^# FIXTURE +VARIANT +TEST\nhmm +hmm_device_private +open_close\n/);
  for (const bad of [['-x'], ['-t'], ['-s', 'nope'], ['stray']]) {
    const r = selftests(...bad);
    assert.is(r.rc, 1, bad.join(' '));
    assert.match(r.err, /Usage: selftests/);
    assert.is(r.out, '');
  }
});

t.run();
