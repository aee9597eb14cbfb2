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

/** Print one result row: name, figure with unit, baseline, ratio. */
export function row(name: string, value: number, unit: string, baseName: string, base: number, note = ''): void {
  const ratio = base > 0 ? value / base : NaN;
  const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(3));
  console.log(`  ${name.padEnd(38)} ${fmt(value).padStart(12)} ${unit.padEnd(10)} ` +
    `${baseName}: ${fmt(base).padStart(10)}  ratio ${Number.isFinite(ratio) ? ratio.toFixed(2) : 'n/a'}${note ? '  ' + note : ''}`);
}
