/*
 * tools/bench/main.ts - `npm run bench [-- [--check] [--lockdep] name ...]`:
 * run the named benchmarks (all when none is named). Each prints its
 * figures beside a baseline measured in the same run, and its targets
 * with "met" or "MISSED"; the run ends with one table of every figure
 * (tools/bench/harness.ts). With --check the exit status is 1 when a
 * target was missed (for CI on a quiet machine); without it, 0. An
 * unknown name or option exits 2.
 *
 * The runner makes sure node runs with --expose-gc (it starts itself
 * again with the flag when it is missing), so memory figures follow a
 * forced GC, and with V8's --single-threaded: CPU time
 * (process.cpuUsage()) counts every thread of the process, and V8's
 * concurrent GC and compiler threads added their own swings to both a
 * figure and its baseline (session 9: the THP copy baseline's spread fell
 * from +-23-45% to +-10-14%, exit's from +-13-20% to +-8%); on one thread
 * the same work is counted, with less noise. HMM_SIM_BENCH_THREADS=1
 * keeps V8's helper threads. Lockdep's order checker is off in benchmarks (it is on in
 * tests); --lockdep turns it on. The first line of output says which.
 */
import { V8_FLAGS } from '../include/v8_flags.js';   /* first: the JIT setting */
import { spawnSync } from 'node:child_process';
import { bench_targets, bench_summary, bench_rows, bench_table, setCurrentBench } from './harness.js';
import { lockdepAtBoot } from '../../lib/locking/lockdep.js';

/* The benchmark interface: a name and an async function that prints rows (harness.row). */
const benches: Record<string, () => Promise<void>> = {
  fault: async () => (await import('./fault.js')).bench_fault(),
  gpt: async () => (await import('./gpt.js')).bench_gpt(),
  thp: async () => (await import('./thp.js')).bench_thp(),
  hmm: async () => (await import('./hmm.js')).bench_hmm(),
  era: async () => (await import('./era.js')).bench_era(),
  odp: async () => (await import('./odp.js')).bench_odp(),
  gpu: async () => (await import('./gpu.js')).bench_gpu(),
  memory: async () => (await import('./memory.js')).bench_memory(),
  scaling: async () => (await import('./scaling.js')).bench_scaling(),
  bigmachine: async () => (await import('./bigmachine.js')).bench_bigmachine(),
  deopt: async () => (await import('./deopt.js')).bench_deopt(),
  'gpu-policies': async () => (await import('./gpu_policies.js')).bench_gpu_policies(),
};

const OPTIONS = ['--check', '--lockdep'];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const bad = args.filter((a) => a.startsWith('-') && !OPTIONS.includes(a));
  if (bad.length > 0) {
    console.error(`bench: unknown option '${bad[0]}'\nusage: npm run bench -- [--check] [--lockdep] [${Object.keys(benches).join('|')} ...]`);
    process.exitCode = 2;
    return;
  }
  const threads = process.env.HMM_SIM_BENCH_THREADS === '1';
  const single = process.execArgv.includes('--single-threaded');
  if ((globalThis as { gc?: unknown }).gc === undefined || (!threads && !single)) {
    const flags = [...((globalThis as { gc?: unknown }).gc === undefined ? ['--expose-gc'] : []), ...(!threads && !single ? ['--single-threaded'] : [])];
    const r = spawnSync(process.execPath, [...flags, ...process.execArgv, process.argv[1], ...args], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
    return;
  }
  const check = args.includes('--check');
  const lockdep = args.includes('--lockdep');
  lockdepAtBoot(lockdep);
  console.log(`bench: node ${process.version}, --expose-gc, V8 ${V8_FLAGS === '' ? "defaults (HMM_SIM_V8_DEFAULT=1)" : `${V8_FLAGS} (every entry point's JIT setting, tools/include/v8_flags.ts)`}, lockdep ${lockdep ? 'on (--lockdep)' : 'off (tests run it on; --lockdep turns it on)'}, ` +
    `${single ? 'V8 --single-threaded (CPU time is the one thread\'s; HMM_SIM_BENCH_THREADS=1 keeps V8\'s helper threads)' : 'V8 helper threads on (HMM_SIM_BENCH_THREADS=1)'}`);
  const names = args.filter((a) => !a.startsWith('-'));
  const run = names.length > 0 ? names : Object.keys(benches);
  for (const n of run) {
    const b = benches[n];
    if (b === undefined) {
      console.error(`unknown benchmark '${n}'; have: ${Object.keys(benches).join(', ')}`);
      process.exitCode = 2;
      continue;
    }
    setCurrentBench(n);
    try {
      await b();
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') console.log(`${n}: not built yet`);
      else throw e;
    }
  }
  if (bench_rows.length > 0) for (const l of bench_table(bench_rows)) console.log(l);
  const { line, status } = bench_summary(bench_targets, check);
  if (line !== null) console.log(line);
  if (status !== 0) process.exitCode = status;
}

await main();
