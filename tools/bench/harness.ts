/*
 * tools/bench/harness.ts - timing helpers for the benchmarks.
 *
 * Every benchmark prints its figure next to a baseline measured in the
 * same run and the ratio of the two, because absolute times on shared
 * machines are noise. Host time comes from process.hrtime.bigint().
 */
export function hostNs(): number {
  return Number(process.hrtime.bigint());
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

/**
 * Print one result row: name, figure with unit, baseline, ratio, and a
 * note or a ratio target (recorded with check_target(), printed with its
 * verdict). A target whose baseline could not be measured is not checked.
 */
export function row(name: string, value: number, unit: string, baseName: string, base: number, note: string | ratio_target = ''): void {
  const ratio = base > 0 ? value / base : NaN;
  if (typeof note !== 'string') {
    const want = note.ratio_min !== undefined ? `>= ${note.ratio_min}` : `<= ${note.ratio_max}`;
    if (Number.isFinite(ratio)) {
      const ok = note.ratio_min !== undefined ? ratio >= note.ratio_min : ratio <= note.ratio_max!;
      note = `(target ratio ${want}: ${check_target(name, ok, `ratio ${ratio.toFixed(2)} ${want}`)})`;
    } else {
      note = `(target ratio ${want}: not checked, no baseline)`;
    }
  }
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(3));
  console.log(`  ${name.padEnd(38)} ${fmt(value).padStart(12)} ${unit.padEnd(10)} ` +
    `${baseName}: ${fmt(base).padStart(10)}  ratio ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'}${note ? '  ' + note : ''}`);
}
