/*
 * tools/bench/harness.ts - measuring and reporting for the benchmarks.
 *
 * Rules every benchmark follows (issue 17, item 5):
 *  - the figure and its baseline are measured in the same process run;
 *  - each is warmed up first, then repeated: the median is the figure and
 *    the spread ((max - min) / 2 / median) is printed beside it;
 *  - CPU time (process.cpuUsage, user + system) is measured beside wall
 *    time; the table uses CPU time, because on a shared machine wall time
 *    drifts with the other tenants' load and CPU time much less;
 *  - memory figures are taken after a forced GC (the bench runner starts
 *    node with --expose-gc; without it the figure says "no forced GC").
 * Every row() lands in one table that tools/bench/main.ts prints at the
 * end: bench, figure, baseline, ratio, target and verdict.
 */
import { GCProfiler, getHeapStatistics, getHeapSpaceStatistics } from 'node:v8';

export function hostNs(): number {
  return Number(process.hrtime.bigint());
}

/** cpuNs() - CPU time (user + system) this process has used, in ns. */
export function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** Time fn once; returns host nanoseconds. */
export function timeIt(fn: () => void): number {
  const t0 = hostNs();
  fn();
  return hostNs() - t0;
}

/** Best of n runs of fn (the least disturbed one). */
export function bestOf(n: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < n; i++) best = Math.min(best, timeIt(fn));
  return best;
}

/** Median and extremes of repeated measurements. */
export interface Stats { median: number; min: number; max: number; n: number }

/** stats() - median, min and max of @xs (not empty). */
export function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const median = s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

/** spreadPct() - half the range as a percentage of the median. */
export function spreadPct(s: Stats): number {
  return s.median === 0 ? 0 : (s.max - s.min) / 2 / s.median * 100;
}

/** One measured quantity: CPU and wall time over the repetitions, in ns. */
export interface Timing { cpu: Stats; wall: Stats }

export interface MeasureOpts {
  warmup?: number;                 /* unmeasured runs first (default 1) */
  reps?: number;                   /* measured runs (default 5) */
  setup?: () => void;              /* before each run, not measured */
  settle?: boolean;                /* young-generation GC around each run (default true), see measure() */
}

/**
 * measure() - run @fn warmup times, then reps times measuring CPU and
 * wall time of each run (setup() before each, outside the measurement).
 *
 * With @opts.settle (the default) each run is a settledRun(): it starts
 * on an empty young generation and pays for its own garbage at the
 * average rate, instead of paying for a whole scavenge or none depending
 * on what an earlier run left (a scavenge costs 1-5 ms of CPU even when
 * nearly empty, 25 ms of wall time at load 15: in a short run that was
 * most of its spread). No full GC between runs: its sweeping continues
 * on V8's background threads, whose CPU time process.cpuUsage() would
 * count in the run.
 */
export function measure(fn: () => void, opts: MeasureOpts = {}): Timing {
  const warmup = opts.warmup ?? 1, reps = opts.reps ?? 5, settle = opts.settle ?? true;
  for (let i = 0; i < warmup; i++) { opts.setup?.(); fn(); }
  const cpu: number[] = [], wall: number[] = [];
  for (let i = 0; i < reps; i++) {
    opts.setup?.();
    if (settle) {
      const t = settledRun(fn);
      wall.push(t.wall);
      cpu.push(t.cpu);
      continue;
    }
    const c0 = cpuNs(), w0 = hostNs();
    fn();
    wall.push(hostNs() - w0);
    cpu.push(cpuNs() - c0);
  }
  return { cpu: stats(cpu), wall: stats(wall) };
}

/**
 * measureInterleaved() - measure several functions whose figures are
 * compared with each other, their repetitions interleaved: repetition r
 * runs each once, starting with fns[r % n], each as a settledRun(). A
 * slow stretch of a shared host (another process on the sibling core
 * halves the speed here for seconds at a time) then falls on all of them
 * alike instead of on whichever ran during it. @opts.warmup rounds first.
 * Return: the CPU and wall Stats of each function, in @fns' order.
 */
export function measureInterleaved(fns: readonly (() => void)[], opts: { warmup?: number; reps?: number } = {}): Timing[] {
  const warmup = opts.warmup ?? 1, reps = opts.reps ?? 5, n = fns.length;
  for (let i = 0; i < warmup; i++) for (const fn of fns) fn();
  const cpu: number[][] = fns.map(() => []), wall: number[][] = fns.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (let j = 0; j < n; j++) {
      const i = (r + j) % n;
      const t = settledRun(fns[i]);
      cpu[i].push(t.cpu);
      wall[i].push(t.wall);
    }
  }
  return fns.map((_, i) => ({ cpu: stats(cpu[i]), wall: stats(wall[i]) }));
}

/** hostFaults() - the host minor page faults this process has taken so far. */
export function hostFaults(): number {
  return process.resourceUsage().minorPageFault;
}

/**
 * warmUp() - run @fn as warm-up until the host is done growing under it:
 * at least @opts.min times, then again while a run took more than
 * @opts.faults host page faults (the host still mapping memory for the
 * simulator's buffers or a JS heap that grows), at most @opts.max times.
 * The criterion is the host's fault count, never a timing, so it cannot
 * pick a fast run. CPU time is the whole process's, so a run during which
 * the host faults in memory or the JIT compiles in the background is not
 * the steady state a median should describe.
 * Return: the number of warm-up runs and the host faults of the last.
 */
export function warmUp(fn: () => void, opts: { min: number; max: number; faults: number }): { runs: number; faults: number } {
  let runs = 0, faults = Infinity;
  while (runs < opts.max && (runs < opts.min || faults > opts.faults)) {
    const f0 = hostFaults();
    fn();
    faults = hostFaults() - f0;
    runs++;
  }
  return { runs, faults };
}

/** perUnit() - a timing divided by @n (ns per page, per op). */
export function perUnit(t: Timing, n: number): Timing {
  const d = (s: Stats): Stats => ({ median: s.median / n, min: s.min / n, max: s.max / n, n: s.n });
  return { cpu: d(t.cpu), wall: d(t.wall) };
}

/** forceGc() - collect garbage if node runs with --expose-gc; false when it cannot. */
export function forceGc(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return false;
  gc();
  gc();
  return true;
}

/**
 * minorGc() - a scavenge of the young generation now (--expose-gc; no-op
 * without it): before a measured run, so that it starts with an empty
 * young generation.
 */
export function minorGc(): void {
  const gc = (globalThis as { gc?: (o?: { type: 'minor' | 'major' }) => void }).gc;
  gc?.({ type: 'minor' });
}

/** youngSpace() - bytes in use and capacity of the young generation now. */
export function youngSpace(): { used: number; capacity: number } {
  const s = getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
  return s === undefined ? { used: 0, capacity: 0 } : { used: s.space_used_size, capacity: s.space_used_size + s.space_available_size };
}

/**
 * settledRun() - run @fn on an empty young generation and return its CPU
 * and wall ns, garbage collection paid at its average rate.
 *
 * Before @fn: a minor GC, not measured, so @fn does not pay for garbage an
 * earlier run left. During @fn: the scavenges its own allocation
 * triggers, measured as they happen. After it: the young garbage it left
 * is collected by one more minor GC, of which @fn is charged the share of
 * the young generation's capacity that this GC freed (a run that left it
 * half full of garbage pays half a scavenge), which is what that garbage
 * costs on average when runs follow each other. So every run pays for its own garbage, no more and
 * no less, and the figure does not jump by a whole scavenge (1-5 ms of
 * CPU) with where the previous run left the young generation. Without
 * --expose-gc: @fn timed as it is.
 */
export function settledRun(fn: () => void): { cpu: number; wall: number } {
  const gc = typeof (globalThis as { gc?: unknown }).gc === 'function';
  if (gc) minorGc();
  const c0 = cpuNs(), w0 = hostNs();
  fn();
  const c1 = cpuNs(), w1 = hostNs();
  if (!gc) return { cpu: c1 - c0, wall: w1 - w0 };
  const y0 = youngSpace();
  const g0 = cpuNs(), v0 = hostNs();
  minorGc();
  const g1 = cpuNs(), v1 = hostNs();
  const share = y0.capacity > 0 ? Math.max(0, y0.used - youngSpace().used) / y0.capacity : 0;
  return { cpu: c1 - c0 + share * (g1 - g0), wall: w1 - w0 + share * (v1 - v0) };
}

/** hostMemory() - after a forced GC: JS heap used and ArrayBuffer bytes (typed arrays), in bytes. */
export function hostMemory(): { heap: number; buffers: number; rss: number; gc: boolean } {
  const gc = forceGc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers, rss: m.rss, gc };
}

/**
 * heapAllocated() - bytes of JS heap that @fn allocates, garbage
 * included: the heap's growth over the call plus what every GC during it
 * (major and minor) freed, from v8.GCProfiler's per-GC heap statistics.
 * A forced GC first (when --expose-gc) starts it from a settled heap.
 */
export function heapAllocated(fn: () => void): { bytes: number; gcs: number; gc_ms: number } {
  forceGc();
  const prof = new GCProfiler();
  prof.start();
  const u0 = getHeapStatistics().used_heap_size;
  fn();
  const u1 = getHeapStatistics().used_heap_size;
  const r = prof.stop() as { statistics: { cost: number; beforeGC: GcHeap; afterGC: GcHeap }[] } | undefined;
  let freed = 0, cost = 0;
  for (const g of r?.statistics ?? []) {
    freed += g.beforeGC.heapStatistics.usedHeapSize - g.afterGC.heapStatistics.usedHeapSize;
    cost += g.cost;
  }
  return { bytes: u1 - u0 + freed, gcs: r?.statistics.length ?? 0, gc_ms: cost / 1000 };
}
interface GcHeap { heapStatistics: { usedHeapSize: number } }

/** A target a benchmark states: met or missed in this run. */
export interface bench_target { name: string; ok: boolean; detail: string }

/** Every target checked in this process, in order (`npm run bench -- --check` exits 1 if one was missed). */
export const bench_targets: bench_target[] = [];

/**
 * check_target() - record target @name (met when @ok) with @detail.
 * Return: "met" or "MISSED", for the benchmark's own line.
 */
export function check_target(name: string, ok: boolean, detail = ''): 'met' | 'MISSED' {
  bench_targets.push({ name, ok, detail });
  return ok ? 'met' : 'MISSED';
}

/**
 * bench_summary() - the closing line over @targets and the exit status:
 * 1 when @check and a target was missed, else 0.
 */
export function bench_summary(targets: readonly bench_target[], check: boolean): { line: string | null; status: number } {
  const missed = targets.filter((t) => !t.ok);
  const line = targets.length === 0 ? null : `targets: ${targets.length - missed.length} met, ${missed.length} missed` +
    (missed.length > 0 ? `: ${missed.map((t) => t.name + (t.detail ? ` (${t.detail})` : '')).join('; ')}` : '');
  return { line, status: check && missed.length > 0 ? 1 : 0 };
}

/** A ratio target of a row: value / base >= min, or <= max. */
export interface ratio_target { ratio_min?: number; ratio_max?: number }

/** One line of the closing table. */
export interface BenchRow {
  bench: string; name: string; value: number; unit: string; spread: number | null;
  baseName: string; base: number; baseSpread: number | null; ratio: number; target: string; verdict: string;
}

/** Every row printed in this process, for the closing table (tools/bench/main.ts). */
export const bench_rows: BenchRow[] = [];
let currentBench = '';

/** setCurrentBench() - the bench name the following rows belong to (main.ts). */
export function setCurrentBench(name: string): void { currentBench = name; }

const fmt = (v: number): string => (!Number.isFinite(v) ? 'n/a' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3));
const fmtSpread = (s: number | null): string => (s === null ? '' : `±${s.toFixed(0)}%`);

/** The value of a row: a plain number or the median of repeated measurements. */
export type Figure = number | Stats;

/**
 * Print one result row: name, figure with unit, baseline, ratio, and a
 * note or a ratio target (recorded with check_target(), printed with its
 * verdict). A figure given as Stats prints its median and spread. A
 * target whose baseline could not be measured is not checked.
 */
export function row(name: string, value: Figure, unit: string, baseName: string, base: Figure, note: string | ratio_target = ''): void {
  const v = typeof value === 'number' ? value : value.median;
  const b = typeof base === 'number' ? base : base.median;
  const vs = typeof value === 'number' ? null : spreadPct(value);
  const bs = typeof base === 'number' ? null : spreadPct(base);
  const ratio = b > 0 ? v / b : NaN;
  let target = '', verdict = '';
  if (typeof note !== 'string') {
    target = note.ratio_min !== undefined ? `>= ${note.ratio_min}` : `<= ${note.ratio_max}`;
    if (Number.isFinite(ratio)) {
      const ok = note.ratio_min !== undefined ? ratio >= note.ratio_min : ratio <= note.ratio_max!;
      verdict = check_target(name, ok, `ratio ${ratio.toFixed(2)} ${target}`);
    } else {
      verdict = 'not checked';
    }
    note = verdict === 'not checked' ? `(target ratio ${target}: not checked, no baseline)` : `(target ratio ${target}: ${verdict})`;
  }
  bench_rows.push({ bench: currentBench, name, value: v, unit, spread: vs, baseName, base: b, baseSpread: bs, ratio, target, verdict });
  console.log(`  ${name.padEnd(38)} ${fmt(v).padStart(12)}${vs === null ? '' : ' ' + fmtSpread(vs).padStart(5)} ${unit.padEnd(10)} ` +
    `${baseName}: ${fmt(b).padStart(10)}${bs === null ? '' : ' ' + fmtSpread(bs)}  ratio ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'}${note ? '  ' + note : ''}`);
}

/** skipped() - a figure that could not be measured in this run, with the reason (in the table too). */
export function skipped(name: string, reason: string): void {
  bench_rows.push({ bench: currentBench, name, value: NaN, unit: '', spread: null, baseName: '', base: NaN, baseSpread: null,
    ratio: NaN, target: '', verdict: `skipped: ${reason}` });
  console.log(`  ${name.padEnd(38)} skipped: ${reason}`);
}

/**
 * bench_table() - the closing table over @rows: every figure with its
 * spread, its baseline, the ratio, the target and the verdict.
 */
export function bench_table(rows: readonly BenchRow[]): string[] {
  const out = ['', 'summary (medians; ±spread = half the range over the repetitions):',
    `  ${'bench'.padEnd(9)} ${'figure'.padEnd(40)} ${'value'.padStart(12)} ${'unit'.padEnd(9)} ${'baseline'.padEnd(20)} ${'base value'.padStart(12)} ${'ratio'.padStart(7)}  target`];
  for (const r of rows) {
    if (r.verdict.startsWith('skipped')) {
      out.push(`  ${r.bench.padEnd(9)} ${r.name.padEnd(40)} ${r.verdict}`);
      continue;
    }
    const val = `${fmt(r.value)}${r.spread === null ? '' : ' ' + fmtSpread(r.spread)}`;
    const base = `${fmt(r.base)}${r.baseSpread === null ? '' : ' ' + fmtSpread(r.baseSpread)}`;
    out.push(`  ${r.bench.padEnd(9)} ${r.name.padEnd(40)} ${val.padStart(12)} ${r.unit.padEnd(9)} ${r.baseName.padEnd(20)} ` +
      `${base.padStart(12)} ${(Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : 'n/a').padStart(7)}  ${r.target ? `${r.target} ${r.verdict}` : '-'}`);
  }
  return out;
}
