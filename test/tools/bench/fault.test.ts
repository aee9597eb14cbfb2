/*
 * test/tools/bench/fault.test.ts - `npm run bench -- fault` run small
 * (FAULT_BENCH_PAGES=2048, two warm-ups, three rounds; tools/bench/fault.ts):
 * the header names the warm-up count, the host page faults of the timed
 * rounds are printed, every phase row carries the real kernel's figure
 * from the same run (when the machine has a C compiler) with the ratio of
 * the two and the verdict of the <= 1.0 target.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';

const bench = (env: Record<string, string>) => spawnSync(process.execPath,
  ['--expose-gc', 'dist/tools/bench/main.js', 'fault'], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300e3 });

test('every phase row stands beside the real kernel of the same run, after the stated warm-up', () => {
  const r = bench({ FAULT_BENCH_PAGES: '2048', FAULT_BENCH_REPS: '3', FAULT_BENCH_WARMUPS: '2' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /fault: 2048 pages \(8 MiB\).*(1 real and )?2-8 simulated warm-up rounds \(until a round takes at most 20\.48 host page faults\), median of 3/);
  const warm = r.stdout.match(/warm-up: (\d+) simulated rounds, the last took (\d+) host page faults/);
  assert.ok(warm !== null, r.stdout);
  const [runs, last] = [Number(warm![1]), Number(warm![2])];
  assert.ok(runs >= 2 && runs <= 8 && (runs === 8 || last <= 20.48), warm![0]);
  const flt = r.stdout.match(/host page faults per timed simulated round: median (\d+), max (\d+) \(([\d.]+) per simulated page\)/);
  assert.ok(flt !== null, r.stdout);
  assert.ok(Number(flt![1]) <= Number(flt![2]), flt![0]);
  assert.ok(Math.abs(Number(flt![3]) - Number(flt![1]) / 2048) < 1e-4, flt![0]);
  const rows = r.stdout.split('\n').filter((l) => l.startsWith('  ') && l.includes('CPU ns per page'));
  const noCc = r.stdout.includes('no C compiler found');
  for (const ph of ['anon fault', 'fork', 'COW fault', 'exit', 'munmap']) {
    const line = rows.find((l) => l.trimStart().startsWith(`${ph}, CPU ns per page`));
    assert.ok(line !== undefined, `no "${ph}" row in:\n${rows.join('\n')}`);
    if (noCc) { assert.match(line!, /not checked, no baseline/); continue; }
    const m = line!.match(/([\d.]+) +±\d+% ns +Linux: +([\d.]+) ±\d+% +ratio ([\d.]+) +\(target ratio <= 1: (met|MISSED)\)/);
    assert.ok(m !== null, `row format: ${line}`);
    const [v, b, ratio] = [Number(m![1]), Number(m![2]), Number(m![3])];
    assert.ok(v > 0 && b > 0, line);
    assert.ok(Math.abs(ratio - v / b) <= 0.01 + 0.01 * ratio, `ratio ${ratio} vs ${v}/${b}: ${line}`);
    /* the verdict is the unrounded ratio's: at the printed 1.00 (893 ns against 889) it can go either way */
    if (Math.abs(v / b - 1) > 0.01) assert.is(m![4], v / b <= 1 ? 'met' : 'MISSED', line);
  }
});

test.run();
