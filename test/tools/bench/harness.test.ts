/*
 * test/tools/bench/harness.test.ts - benchmark targets (tools/bench/
 * harness.ts): a ratio target is checked and recorded, a missed one makes
 * `npm run bench -- --check` exit 1, and the bench command refuses an
 * unknown option with exit 2 (without running a benchmark).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { row, check_target, bench_targets, bench_summary, bench_rows, bench_table, setCurrentBench, skipped, stats, spreadPct, measure, measureInterleaved, forceGc, heapAllocated, warmUp, hostFaults } from '../../../tools/bench/harness.js';
import { lockdepAtBoot, lockdep_enabled, resetLockdep } from '../../../lib/locking/lockdep.js';

test.before.each(() => { bench_targets.length = 0; bench_rows.length = 0; });

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

test('stats: the median of an even and an odd count, the extremes, and the spread as half the range over the median', () => {
  assert.equal(stats([5, 1, 3]), { median: 3, min: 1, max: 5, n: 3 });
  assert.equal(stats([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, n: 4 });
  assert.is(spreadPct(stats([90, 100, 110])), 10);
});

test('measure: runs setup and fn warmup + reps times and times only the reps', () => {
  let setups = 0, runs = 0;
  const t = measure(() => { runs++; }, { warmup: 2, reps: 3, setup: () => { setups++; } });
  assert.is(runs, 5);
  assert.is(setups, 5);
  assert.is(t.cpu.n, 3);
  assert.is(t.wall.n, 3);
  assert.ok(t.wall.min >= 0 && t.wall.min <= t.wall.median && t.wall.median <= t.wall.max);
});

test('measureInterleaved: warm-ups first, then each repetition runs every function once, the first one rotating; Stats per function', () => {
  const log: string[] = [];
  const spin = (ms: number) => { const t0 = process.cpuUsage(); while ((process.cpuUsage(t0).user + process.cpuUsage(t0).system) / 1000 < ms) { /* burn */ } };
  const [a, b, c] = measureInterleaved([
    () => { log.push('a'); spin(4); }, () => { log.push('b'); }, () => { log.push('c'); },
  ], { warmup: 1, reps: 4 });
  assert.is(log.join(''), 'abc' + 'abc' + 'bca' + 'cab' + 'abc');
  for (const t of [a, b, c]) { assert.is(t.cpu.n, 4); assert.is(t.wall.n, 4); }
  /* each figure is its own function's: the 4 ms spinner is measured as such, the empty ones far below it */
  assert.ok(a.cpu.median >= 3e6, `a: ${a.cpu.median} ns`);
  assert.ok(b.cpu.median < a.cpu.median / 2 && c.cpu.median < a.cpu.median / 2, `b ${b.cpu.median}, c ${c.cpu.median}`);
});

test('measure times each rep as a settledRun: a minor GC before it and one after it, no full GC (with --expose-gc)', () => {
  /* a child with --expose-gc counts the GCs each way; fn allocates nothing, so every GC seen is the harness's */
  const probe = `
    import { GCProfiler } from 'node:v8';
    import { measure, youngSpace, minorGc } from './dist/tools/bench/harness.js';
    const count = (settle) => {
      const p = new GCProfiler(); p.start();
      measure(() => {}, { warmup: 1, reps: 4, settle });
      const k = {}; for (const g of p.stop().statistics) k[g.gcType] = (k[g.gcType] ?? 0) + 1;
      return k;
    };
    minorGc();
    const y0 = youngSpace();
    let keep = [];
    for (let i = 0; i < 300; i++) keep = new Array(64).fill(i);    /* ~160 KB of garbage (less than the young generation holds), one array live */
    const y1 = youngSpace();
    minorGc();
    const y2 = youngSpace();
    console.log(JSON.stringify([count(true), count(false), y1.used - y0.used, y1.used - y2.used, keep.length]));`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', probe], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const [on, off, grew, freed] = JSON.parse(r.stdout) as [Record<string, number>, Record<string, number>, number, number];
  assert.equal(on, { Scavenge: 8 }, 'two minor GCs per measured rep (before it; after it, charged by share), none for the warm-up');
  assert.equal(off, {}, 'settle: false adds no GC');
  assert.ok(grew > 100e3 && freed > 100e3, `young generation: ${grew} B more after allocating, ${freed} B freed by the minor GC (what settledRun charges by)`);
});

test('the closing table has every row with its bench, spread, baseline, ratio, target and verdict, and skipped rows with their reason', () => {
  const log = console.log;
  console.log = () => {};
  try {
    setCurrentBench('fault');
    row('anon fault', { median: 200, min: 180, max: 220, n: 5 }, 'ns', 'Linux', 100, { ratio_max: 1.0 });
    setCurrentBench('scaling');
    skipped('fault @4M', 'needs ~33 GiB of host memory');
  } finally {
    console.log = log;
  }
  const t = bench_table(bench_rows);
  const a = t.find((l) => l.includes('anon fault'))!;
  assert.match(a, /^  fault +anon fault +200 ±10% ns +Linux +100 +2\.00  <= 1 MISSED$/);
  assert.match(t.find((l) => l.includes('@4M'))!, /^  scaling +fault @4M +skipped: needs ~33 GiB of host memory$/);
  assert.equal(bench_targets.map((x) => x.ok), [false]);
});

test('lockdepAtBoot(false) keeps the order checker off across boots; true (the tests default) turns it back on', () => {
  lockdepAtBoot(false);
  resetLockdep();
  assert.is(lockdep_enabled(), false);
  lockdepAtBoot(true);
  resetLockdep();
  assert.is(lockdep_enabled(), true);
});

test('heapAllocated counts what the call allocated, the garbage the GCs freed during it included', () => {
  let keep: number[][] = [];
  const r = heapAllocated(() => {
    for (let i = 0; i < 4000; i++) {
      keep.push(new Array<number>(1000).fill(i + 0.5));     /* ~8 KB each, 32 MB in all */
      if (keep.length > 10) keep = [];                      /* most of it garbage at once */
    }
  });
  assert.ok(r.bytes >= 30e6, `counted ${r.bytes} bytes`);
  assert.ok(r.bytes < 80e6, `counted ${r.bytes} bytes`);
  assert.ok(r.gcs >= 1, 'young-generation GCs ran during the call');
  assert.ok(heapAllocated(() => { keep.length = 0; }).bytes < 1e6, 'a call that allocates nothing counts ~0');
});

test('forceGc: false without --expose-gc, and the bench runner restarts node with it (and with --single-threaded unless HMM_SIM_BENCH_THREADS=1)', () => {
  assert.is(forceGc(), typeof (globalThis as { gc?: unknown }).gc === 'function');
  const r = spawnSync(process.execPath, ['dist/tools/bench/main.js', 'nosuchbench'], { encoding: 'utf8' });
  assert.is(r.status, 2);
  assert.match(r.stdout, /--expose-gc, V8 .*, lockdep off.*, V8 --single-threaded/);
  const t = spawnSync(process.execPath, ['dist/tools/bench/main.js', 'nosuchbench'], { encoding: 'utf8', env: { ...process.env, HMM_SIM_BENCH_THREADS: '1' } });
  assert.match(t.stdout, /V8 helper threads on \(HMM_SIM_BENCH_THREADS=1\)/);
  assert.match(r.stderr, /unknown benchmark 'nosuchbench'/);
});

test('warmUp() runs at least min times, again while a run takes host page faults, at most max times', () => {
  /* a run that faults in fresh host memory (kept, so the host cannot hand back pages it mapped before) */
  const kept: Uint8Array[] = [];
  const grow = () => { const b = new Uint8Array(8 << 20); for (let i = 0; i < b.length; i += 4096) b[i] = 1; kept.push(b); };
  let n = 0;
  const f0 = hostFaults();
  grow();
  /* a host with transparent huge pages always on faults 2 MiB at a time: the threshold follows what one run took */
  const g = hostFaults() - f0;
  assert.ok(g >= 2, `8 MiB touched page by page took ${g} host faults`);
  const limit = g / 2;
  /* three growing runs, then quiet ones: the warm-up ends on the first quiet run */
  let w = warmUp(() => { if (n++ < 3) grow(); }, { min: 1, max: 10, faults: limit });
  assert.ok(w.runs >= 4 && w.runs <= 10 && (w.runs === 10 || w.faults <= limit), JSON.stringify(w));
  /* never quiet: stops at max */
  w = warmUp(grow, { min: 1, max: 3, faults: limit });
  assert.is(w.runs, 3);
  assert.ok(w.faults > limit, JSON.stringify(w));
  /* quiet from the start: exactly min */
  w = warmUp(() => {}, { min: 2, max: 10, faults: limit });
  assert.is(w.runs, 2);
  kept.length = 0;
});

test.run();
