/*
 * tools/hmm-sim/scenarios/prefetch.ts - `hmm-sim run prefetch`: the tree
 * prefetcher (drivers/gpu/mockgpu/uvm_perf_prefetch.ts) on three access
 * patterns over one 2 MiB block, switched off and on, then an explicit
 * prefetch (MOCKGPU_IOCTL_MIGRATE, cudaMemPrefetchAsync) that leaves the
 * kernel nothing to fault. Prints the faults serviced, the pages the
 * prefetcher added (Migration events with cause "prefetch"), the
 * simulated time, and the constants in force with their UVM source.
 * Every byte is checked after each run.
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import {
  MOCKGPU_OP_INC, MOCKGPU_PATTERN_RANDOM, MOCKGPU_PATTERN_SEQUENTIAL, MOCKGPU_PATTERN_STRIDED, MOCKGPU_PROCESSOR_GPU0,
  mockgpu_pattern_names,
} from '../../../include/uapi/linux/mockgpu.js';
import { UVM_VA_BLOCK_SIZE } from '../../../include/linux/mockgpu.js';
import { formatNs, machineTime } from '../../../lib/sim/clock.js';
import { gpuOpen, gpuSession, type GpuStats } from '../../include/mockgpu.js';
import { uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfConstantsTable, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';

const BLOCK_PAGES = UVM_VA_BLOCK_SIZE / PAGE_SIZE;
const ELEM = PAGE_SIZE;

/** The outcome of one run. */
export interface prefetch_result { stats: GpuStats; ns: number; bytes_ok: boolean; }

/**
 * prefetch_scenario_run() - an "inc" kernel with @pattern over one
 * 2 MiB-aligned block, prefetcher @on or off; @explicit first migrates the
 * block to the GPU with MOCKGPU_IOCTL_MIGRATE.
 */
export function prefetch_scenario_run(pattern: number, on: boolean, explicit = false): prefetch_result {
  mockgpuParamsReset();
  uvmPerfParamsReset();
  uvm_perf_params.uvm_perf_prefetch_enable = on ? 1 : 0;
  start_kernel({ ram_bytes: 32 << 20 });
  uvm_gpu_init();
  const p = Process.spawn('stream');
  const raw = p.mmap(0, 3 * UVM_VA_BLOCK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const buf = raw + (UVM_VA_BLOCK_SIZE - (raw % UVM_VA_BLOCK_SIZE)) % UVM_VA_BLOCK_SIZE;
  p.fill32(buf, UVM_VA_BLOCK_SIZE, 1);
  const t0 = machineTime();
  const count = BLOCK_PAGES;      /* 512 accesses of one page each */
  const stats = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open /dev/mockgpu0: ${g}`);
    if (explicit && (yield* g.migrate(buf, UVM_VA_BLOCK_SIZE, MOCKGPU_PROCESSOR_GPU0)) < 0) throw new Error('migrate');
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: UVM_VA_BLOCK_SIZE, op: MOCKGPU_OP_INC, elem: ELEM, pattern, count,
      stride: 3 * PAGE_SIZE, seed: 7 });
    const w = yield* g.wait(ctx);
    if (w.status !== 0) throw new Error(`kernel: ${w.status}`);
    return yield* g.stats();
  });
  const ns = machineTime() - t0;
  /* every word is 1 + its index, plus the number of times the kernel touched its element: at most once per
     element for sequential and strided; random may repeat, so compare with a CPU replay of the access list */
  const words = new DataView(p.read(buf, UVM_VA_BLOCK_SIZE).buffer);
  let bytes_ok = true, sum_extra = 0;
  for (let i = 0; i < UVM_VA_BLOCK_SIZE / 4; i++) {
    const extra = words.getUint32(i * 4, true) - (1 + i);
    if (extra < 0 || extra > count) bytes_ok = false;
    sum_extra += extra;
  }
  if (sum_extra !== count * ELEM / 4) bytes_ok = false;     /* each access adds 1 to every word of its element */
  return { stats, ns, bytes_ok };
}

export const prefetch_scenario = defineScenario({
  name: 'prefetch',
  description: 'the tree prefetcher off/on on sequential, strided and random kernels, then an explicit prefetch',
  run() {
    const out = ['an inc kernel of 512 page-sized accesses over one 2 MiB block (512 pages); prefetcher off -> on',
      `  ${'pattern'.padEnd(12)}${'faults'.padStart(16)}${'prefetched'.padStart(12)}${'to VRAM'.padStart(14)}${'sim time'.padStart(26)}  bytes`];
    for (const pat of [MOCKGPU_PATTERN_SEQUENTIAL, MOCKGPU_PATTERN_STRIDED, MOCKGPU_PATTERN_RANDOM]) {
      const off = prefetch_scenario_run(pat, false), on = prefetch_scenario_run(pat, true);
      out.push(`  ${mockgpu_pattern_names[pat]!.padEnd(12)}${`${off.stats.faults_serviced} -> ${on.stats.faults_serviced}`.padStart(16)}` +
        `${String(on.stats.prefetched_pages).padStart(12)}${`${off.stats.migrated_to_vram} -> ${on.stats.migrated_to_vram}`.padStart(14)}` +
        `${`${formatNs(off.ns)} -> ${formatNs(on.ns)} s`.padStart(26)}  ${off.bytes_ok && on.bytes_ok}`);
    }
    const ex = prefetch_scenario_run(MOCKGPU_PATTERN_SEQUENTIAL, true, true);
    out.push(`explicit MIGRATE of the block first (cudaMemPrefetchAsync): ${ex.stats.gpu_faults} GPU faults, ` +
      `${ex.stats.migrated_to_vram} pages moved, ${formatNs(ex.ns)} s, bytes ${ex.bytes_ok}`);
    out.push('constants of the policies (uvm_perf_module.ts):', ...uvmPerfConstantsTable().map((l) => `  ${l}`));
    return out;
  },
});
