/*
 * tools/bench/era.ts - `npm run bench -- era`: one workload under the 2015
 * design (HMM v8, the dummy driver) and under mainline HMM (the dmirror
 * driver), host time and simulated time side by side.
 *
 * The workload, on a fresh machine per era (ERA_PAGES = 262,144 pages =
 * 1 GiB of anonymous memory the CPU never touched):
 *   1. the device reads every page (READ in 512-page chunks into a 2 MiB
 *      host buffer): device faults, the zero page mirrored;
 *   2. the device migrates every page to its memory (512-page chunks, the
 *      2015 batch limit): v8 fills each zero-page PTE with a fresh page
 *      first, mainline migrates the hole as a new device page;
 *   3. the CPU reads every other page: half of them fault back to RAM
 *      (v8: hmm_handle_cpu_fault -> copy_from_device, one page per fault;
 *      mainline: do_swap_page -> migrate_to_ram).
 * Each phase prints host ms for both eras with v8 / mainline as the ratio,
 * and the simulated time both models charge. The v8 column is the figure,
 * mainline the baseline measured in the same run: host CPU time
 * (median of HMM_BENCH_ERA_REPS runs after a small warm-up) and simulated
 * time.
 *
 * HMM_BENCH_ERA_PAGES overrides the size (tests run it small).
 */
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';
import { machineTime } from '../../lib/sim/clock.js';
import { tracing_off, get_counter } from '../../lib/sim/trace.js';
import { start_kernel } from '../../mm/init.js';
import { Process } from '../include/nolibc/nolibc.js';
import { v8_dev, mainline_dev, era_sync, type era, type era_dev } from '../hmm-sim/era.js';
import { hmm_dummy_params, hmm_dummy_init, insmodHmmDummy } from '../../drivers/char/hmm_dummy.js';
import { cpuNs, hostNs, row, stats } from './harness.js';
import { hmm_dmirror_init } from '../../lib/test_hmm.js';

export const ERA_PAGES = 262144;
const CHUNK = 512;

interface phase { host_ns: number; cpu_ns: number; sim_ns: number }
interface era_run { read: phase; migrate: phase; fault_back: phase; ok: boolean; faults_back: number }

function timed(fn: () => void): phase {
  const s0 = machineTime(), h0 = hostNs(), c0 = cpuNs();
  fn();
  return { host_ns: hostNs() - h0, cpu_ns: cpuNs() - c0, sim_ns: machineTime() - s0 };
}

/** run_era_workload() - the three phases for one era on a fresh machine of @npages. */
export function run_era_workload(e: era, npages: number): era_run {
  const ram = Math.ceil((npages * 2 * PAGE_SIZE + (64 << 20)) / (4 << 20)) * (4 << 20);
  start_kernel({ ram_bytes: ram });
  hmm_dmirror_init();
  insmodHmmDummy();
  tracing_off();
  if (e === 'v8') { hmm_dummy_params.rmem_pages = npages + CHUNK; hmm_dummy_init(); }
  const p = Process.spawn(`bench-${e}`);
  const dev: era_dev = e === 'v8' ? v8_dev(p) : mainline_dev(p);
  const len = npages * PAGE_SIZE;
  const buf = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const host = p.mmap(0, CHUNK * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.fill32(host, CHUNK * PAGE_SIZE, 0);
  let ok = true;
  const chunks = (fn: (a: number, n: number) => number) => {
    for (let off = 0; off < npages; off += CHUNK) {
      const n = Math.min(CHUNK, npages - off);
      if (fn(buf + off * PAGE_SIZE, n) !== 0) ok = false;
    }
  };
  const read = timed(() => chunks((a, n) => era_sync(p, dev.read(p, a, n, host))));
  const migrate = timed(() => chunks((a, n) => era_sync(p, dev.migrate(p, a, n, host))));
  const faults0 = get_counter('pgfault');
  const fault_back = timed(() => {
    for (let i = 0; i < npages; i += 2) if (p.read32(buf + i * PAGE_SIZE) !== 0) ok = false;
  });
  return { read, migrate, fault_back, ok, faults_back: get_counter('pgfault') - faults0 };
}

/** bench_era() - the benchmark entry point (tools/bench/main.ts). */
export async function bench_era(): Promise<void> {
  const npages = Number(process.env.HMM_BENCH_ERA_PAGES ?? ERA_PAGES);
  const reps = Number(process.env.HMM_BENCH_ERA_REPS ?? 3);
  console.log(`era: ${npages} pages (${(npages * PAGE_SIZE) >> 20} MiB): device read, migrate, CPU faults half back; ` +
    `a warm-up at 1/16 size, then the median of ${reps} runs per era, eras interleaved`);
  run_era_workload('v8', Math.max(CHUNK, npages >> 4));
  run_era_workload('mainline', Math.max(CHUNK, npages >> 4));
  const v8s: era_run[] = [], mls: era_run[] = [];
  for (let r = 0; r < reps; r++) {
    v8s.push(run_era_workload('v8', npages));
    mls.push(run_era_workload('mainline', npages));
  }
  const v8 = v8s[0], ml = mls[0];
  const phases: ['read' | 'migrate' | 'fault_back', string][] = [['read', 'device read'], ['migrate', 'migrate to device'], ['fault_back', 'CPU fault back (half)']];
  const ms = (runs: era_run[], k: 'read' | 'migrate' | 'fault_back', f: keyof phase) => stats(runs.map((x) => x[k][f] / 1e6));
  for (const [k, name] of phases) {
    row(`${name}, host CPU`, ms(v8s, k, 'cpu_ns'), 'ms', 'mainline', ms(mls, k, 'cpu_ns'));
    row(`${name}, simulated`, ms(v8s, k, 'sim_ns'), 'ms', 'mainline', ms(mls, k, 'sim_ns'));
  }
  const ok = v8s.every((x) => x.ok) && mls.every((x) => x.ok);
  console.log(`  CPU faults in phase 3: v8 ${v8.faults_back}, mainline ${ml.faults_back}; data ${ok ? 'intact in both' : 'WRONG'}`);
}
