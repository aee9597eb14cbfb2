/*
 * tools/bench/main.ts - `npm run bench [-- [--check] name ...]`: run the
 * named benchmarks (all when none is named). Each prints its figures
 * beside a baseline measured in the same run, and its targets with
 * "met" or "MISSED". With --check the exit status is 1 when a target was
 * missed (for CI on a quiet machine); without it, 0. An unknown name or
 * option exits 2.
 */
import { bench_targets, bench_summary } from './harness.js';

const benches: Record<string, () => Promise<void>> = {
  fault: async () => (await import('./fault.js')).bench_fault(),
  gpt: async () => (await import('./gpt.js')).bench_gpt(),
  thp: async () => (await import('./thp.js')).bench_thp(),
  hmm: async () => (await import('./hmm.js')).bench_hmm(),
  era: async () => (await import('./era.js')).bench_era(),
  odp: async () => (await import('./odp.js')).bench_odp(),
  gpu: async () => (await import('./gpu.js')).bench_gpu(),
  'gpu-policies': async () => (await import('./gpu_policies.js')).bench_gpu_policies(),
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const bad = args.filter((a) => a.startsWith('-') && a !== '--check');
  if (bad.length > 0) {
    console.error(`bench: unknown option '${bad[0]}'\nusage: npm run bench -- [--check] [${Object.keys(benches).join('|')} ...]`);
    process.exitCode = 2;
    return;
  }
  const names = args.filter((a) => !a.startsWith('-'));
  const run = names.length > 0 ? names : Object.keys(benches);
  for (const n of run) {
    const b = benches[n];
    if (b === undefined) {
      console.error(`unknown benchmark '${n}'; have: ${Object.keys(benches).join(', ')}`);
      process.exitCode = 2;
      continue;
    }
    try {
      await b();
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') console.log(`${n}: not built yet`);
      else throw e;
    }
  }
  const { line, status } = bench_summary(bench_targets, check);
  if (line !== null) console.log(line);
  if (status !== 0) process.exitCode = status;
}

await main();
