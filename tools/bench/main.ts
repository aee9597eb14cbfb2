/*
 * tools/bench/main.ts - `npm run bench [-- name ...]`: run the named
 * benchmarks (all when none is named). Each prints its figures beside a
 * baseline measured in the same run.
 */
const benches: Record<string, () => Promise<void>> = {
  fault: async () => (await import('./fault.js')).bench_fault(),
  gpt: async () => (await import('./gpt.js')).bench_gpt(),
  thp: async () => (await import('./thp.js')).bench_thp(),
  hmm: async () => (await import('./hmm.js')).bench_hmm(),
  era: async () => (await import('./era.js')).bench_era(),
  odp: async () => (await import('./odp.js')).bench_odp(),
};

async function main(): Promise<void> {
  const names = process.argv.slice(2);
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
}

await main();
