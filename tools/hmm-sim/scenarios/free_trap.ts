/*
 * tools/hmm-sim/scenarios/free_trap.ts - `hmm-sim run free_trap`: the
 * "stays on the device after free()" trap (ROCm rocm-libraries PR 12323,
 * ../shared/reference/peers.md section 3 item 4), on the mock GPU.
 *
 * A heap allocator does not give freed memory back to the kernel: free()
 * only marks it reusable, so no munmap, no invalidation, and the driver
 * never learns that the data in VRAM is dead. The next calloc() of the
 * same size returns the same addresses and zeroes them with the CPU;
 * every page is then a CPU fault on a device-private entry and is
 * migrated back (migrate_to_ram, a copy of data about to be overwritten),
 * one 4 KiB page at a time.
 *
 *  trap         free() does nothing: calloc's memset faults every page back
 *  MADV_FREE    free() marks the range lazily freeable: Linux skips
 *               device-private entries (madvise_free_pte_range only drops
 *               swap entries), so nothing changes
 *  MADV_DONTNEED free() drops the pages: the device-private entries are
 *               zapped, VRAM goes back to the GPU (folio_free) without a
 *               copy, and calloc's memset takes plain zero-fill faults
 * Each variant checks that calloc'd memory reads zero and that the data
 * written before free() was what the GPU produced.
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MADV_DONTNEED, MADV_FREE,
} from '../../../include/uapi/asm-generic/mman.js';
import { MOCKGPU_OP_WRITE } from '../../../include/uapi/linux/mockgpu.js';
import { tracing_on, trace_set_buffer_size } from '../../../lib/sim/trace.js';
import { formatNs, machineTime } from '../../../lib/sim/clock.js';
import { runSync } from '../../../lib/sim/sched.js';
import { gpuRunKernel } from '../../include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset, uvm_gpu_stat } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';

const NPAGES = 64;

export type free_variant = 'trap' | 'MADV_FREE' | 'MADV_DONTNEED';

/** What one variant cost: CPU faults on VRAM pages and pages copied back during calloc, its simulated time. */
export interface free_trap_result {
  variant: free_variant;
  gpu_ok: boolean;
  vram_after_free: number;
  cpu_faults: number;
  copied_back: number;
  calloc_ns: number;
  zeroed: boolean;
}

/** free_trap_run() - malloc, GPU writes, free (per @variant), calloc, on a fresh machine. */
export function free_trap_run(variant: free_variant): free_trap_result {
  mockgpuParamsReset();
  start_kernel({ ram_bytes: 32 << 20 });
  uvm_gpu_init();
  trace_set_buffer_size(1 << 15);
  tracing_on();
  const p = Process.spawn('cuda_app');
  const len = NPAGES * PAGE_SIZE;
  /* the allocator's arena: malloc() hands out its start */
  const arena = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const r = gpuRunKernel(p, { base: arena, size: len, op: MOCKGPU_OP_WRITE, value: 0x5a5a5a5a, elem: 256 });
  const gpu = mockgpu_get()!;
  const gpu_ok = r.status === 0 && r.stats.migrated_to_vram === NPAGES;
  /* free(): the allocator keeps the arena */
  if (variant !== 'trap') runSync(p.sys.madvise(arena, len, variant === 'MADV_FREE' ? MADV_FREE : MADV_DONTNEED));
  const vram_after_free = gpu.pmm.pages_used;
  const faults0 = uvm_gpu_stat(gpu, 'cpu_faults'), back0 = uvm_gpu_stat(gpu, 'migrated_to_sysmem');
  /* calloc(): the same arena, zeroed by the CPU */
  const t0 = machineTime();
  for (let a = arena; a < arena + len; a += 4) p.write32(a, 0);
  const calloc_ns = machineTime() - t0;
  return { variant, gpu_ok, vram_after_free, cpu_faults: uvm_gpu_stat(gpu, 'cpu_faults') - faults0,
    copied_back: uvm_gpu_stat(gpu, 'migrated_to_sysmem') - back0, calloc_ns, zeroed: isZero(p, arena, len) };
}

function isZero(p: Process, a: number, len: number): boolean {
  for (let x = a; x < a + len; x += 4) if (p.read32(x) !== 0) return false;
  return true;
}

export default defineScenario({
  name: 'free_trap',
  description: 'the "stays on the device after free()" trap: calloc faults freed VRAM pages back one by one; MADV_DONTNEED avoids it',
  run() {
    const out = [`# ${NPAGES} pages malloc'd, written by the GPU (migrated to VRAM), free()d, calloc()ed again`];
    for (const v of ['trap', 'MADV_FREE', 'MADV_DONTNEED'] as const) {
      const r = free_trap_run(v);
      out.push(`${v.padEnd(14)} VRAM pages still used after free(): ${String(r.vram_after_free).padStart(3)}; ` +
        `calloc: ${String(r.cpu_faults).padStart(3)} CPU faults on VRAM pages, ${String(r.copied_back).padStart(3)} pages copied back, ` +
        `${formatNs(r.calloc_ns)} s simulated; reads zero: ${r.zeroed}; GPU wrote first: ${r.gpu_ok}`);
    }
    return out;
  },
});
