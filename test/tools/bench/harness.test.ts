/*
 * test/tools/bench/harness.test.ts - benchmark targets (tools/bench/
 * harness.ts): a ratio target is checked and recorded, a missed one makes
 * `npm run bench -- --check` exit 1, and the bench command refuses an
 * unknown option with exit 2 (without running a benchmark).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { row, check_target, bench_targets, bench_summary } from '../../../tools/bench/harness.js';

test.before.each(() => { bench_targets.length = 0; });

test('a ratio target is met or MISSED by the measured ratio, and recorded', () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => { lines.push(s); };
  try {
    row('fast enough', 30, 'M/s', 'base', 100, { ratio_min: 0.25 });
    row('too slow', 20, 'M/s', 'base', 100, { ratio_min: 0.25 });
    row('cheap enough', 150, 'ns', 'real', 100, { ratio_max: 2 });
    row('no baseline', 150, 'ns', 'real', NaN, { ratio_max: 2 });
  } finally {
    console.log = log;
  }
  assert.match(lines[0]!, /ratio 0\.30  \(target ratio >= 0\.25: met\)$/);
  assert.match(lines[1]!, /ratio 0\.20  \(target ratio >= 0\.25: MISSED\)$/);
  assert.match(lines[2]!, /\(target ratio <= 2: met\)$/);
  assert.match(lines[3]!, /not checked, no baseline/);
  assert.equal(bench_targets.map((t) => [t.name, t.ok]), [['fast enough', true], ['too slow', false], ['cheap enough', true]]);
});

test('bench_summary: exit 1 only with --check and a missed target', () => {
  assert.is(check_target('a', true), 'met');
  assert.equal(bench_summary(bench_targets, true), { line: 'targets: 1 met, 0 missed', status: 0 });
  assert.is(check_target('b', false, 'x0.1'), 'MISSED');
  assert.equal(bench_summary(bench_targets, true), { line: 'targets: 1 met, 1 missed: b (x0.1)', status: 1 });
  assert.is(bench_summary(bench_targets, false).status, 0);
  assert.is(bench_summary([], true).line, null);
});

test('npm run bench -- --bogus exits 2 with the usage, before any benchmark runs', () => {
  const r = spawnSync(process.execPath, ['dist/tools/bench/main.js', '--bogus'], { encoding: 'utf8' });
  assert.is(r.status, 2);
  assert.match(r.stderr, /unknown option '--bogus'\nusage: npm run bench -- \[--check\]/);
  assert.is(r.stdout, '');
});

test.run();
