/*
 * drivers/gpu/mockgpu/uvm_migrate.ts - explicit migration of a range to a
 * processor (cudaMemPrefetchAsync, UVM_MIGRATE, KFD's PREFETCH_LOC), and
 * the migration an access-counter notification asks for.
 *
 * Follows NVIDIA UVM's uvm_migrate.c (uvm_api_migrate: per VA block, make
 * the pages resident on the destination, then map them there) on top of
 * the HMM calls of uvm_hmm.c: to VRAM with migrate_vma_*() from system
 * memory (uvm_hmm_migrate_run), then hmm_range_fault() mapping on the
 * GPU; to the CPU with migrate_vma_*() selecting this GPU's
 * device-private pages. Memory that must stay in system memory (file,
 * shared, special VMAs) is left where it is, as UVM leaves it.
 *
 * Simplified: synchronous (UVM can return a tracker to wait on); no CPU
 * pre-unmap optimisation (uvm_perf_migrate_cpu_preunmap_enable).
 */
import type { page, vm_area_struct } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_DEVICE_PRIVATE, migrate_pfn, migrate_pfn_to_page,
  type migrate_vma,
} from '../../../include/linux/migrate.js';
import { MOCKGPU_FAULT_ACCESS_READ, UVM_VA_BLOCK_SIZE, UvmEventTypeMigration } from '../../../include/linux/mockgpu.js';
import { MOCKGPU_PROCESSOR_CPU } from '../../../include/uapi/linux/mockgpu.js';
import { GFP_HIGHUSER_MOVABLE } from '../../../include/linux/gfp.js';
import { EFAULT } from '../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { PCIE_BW } from '../../../lib/sim/costs.js';
import { alloc_page_sleepable, kmap_local_page } from '../../../mm/page_alloc.js';
import { folio_lock } from '../../../mm/filemap.js';
import { vma_lookup } from '../../../mm/vma.js';
import { migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize } from '../../../mm/migrate_device.js';
import { gpu_context, uvm_gpu_stat_add, uvm_tools_record_event, type uvm_service_fault, type uvm_va_space } from './uvm_gpu.js';
import { uvm_pmm_gpu_page_to_vpfn } from './uvm_pmm_gpu.js';
import { uvm_push_begin, uvm_push_end, uvm_push_copy, uvm_channel_wait, type uvm_copy_cmd } from './uvm_channel.js';
import { uvm_hmm_migrate_run, uvm_hmm_map_run, uvm_hmm_must_use_sysmem } from './uvm_hmm.js';
import { uvm_release_dst_page } from './uvm_hmm_evict.js';

/**
 * uvm_migrate_to_sysmem() - move this GPU's VRAM pages of [start, end)
 * (inside @vma) back to system memory.
 * Context: mmap_lock held for read; may sleep. Return: pages moved.
 */
export function* uvm_migrate_to_sysmem(vs: uvm_va_space, vma: vm_area_struct, start: number, end: number,
                                       cause: string): Sleepable<number> {
  const gpu = vs.gpu, n = (end - start) / PAGE_SIZE;
  const args: migrate_vma = { vma, src: new Float64Array(n), dst: new Float64Array(n), cpages: 0, npages: 0, start, end,
    pgmap_owner: gpu, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, fault_page: null };
  if ((yield* migrate_vma_setup(args)) !== 0 || args.cpages === 0) return 0;
  const p = uvm_push_begin(gpu.ce, 'migrate_to_sysmem');
  const copies: { i: number; dpage: page; c: uvm_copy_cmd }[] = [];
  for (let i = 0; i < n; i++) {
    const spage = migrate_pfn_to_page(args.src[i]!);
    if (!(args.src[i]! & MIGRATE_PFN_MIGRATE) || spage === null) continue;
    const dpage = yield* alloc_page_sleepable(GFP_HIGHUSER_MOVABLE);   /* may sleep in direct reclaim */
    if (dpage === null) continue;           /* stays in VRAM */
    yield* folio_lock(dpage);
    copies.push({ i, dpage, c: uvm_push_copy(p, kmap_local_page(dpage), gpu.pmm.vram(uvm_pmm_gpu_page_to_vpfn(gpu.pmm, spage)), PCIE_BW) });
    args.dst[i] = migrate_pfn(dpage.pfn) + (args.src[i]! & MIGRATE_PFN_WRITE);
  }
  if (p.cmds.length > 0) yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(p));
  for (const { i, dpage, c } of copies) if (c.status) uvm_release_dst_page(args.dst, i, dpage);   /* stays in VRAM */
  yield* migrate_vma_pages(args);
  let moved = 0;
  for (let i = 0; i < n; i++) if ((args.src[i]! & MIGRATE_PFN_MIGRATE) && args.dst[i]) moved++;
  yield* migrate_vma_finalize(args);
  if (moved > 0) {
    uvm_gpu_stat_add(gpu, 'migrated_to_sysmem', moved);
    uvm_tools_record_event(UvmEventTypeMigration, { from: 'VID', to: 'SYS', start, end, pages: moved, cause });
  }
  return moved;
}

/* map [start, end) of @vma on the GPU (the pages are where they are) */
function* uvm_migrate_map(vs: uvm_va_space, start: number, end: number): Sleepable {
  const ctx = new gpu_context(0, vs);       /* the driver's own: no kernel runs on it */
  const run: uvm_service_fault[] = [];
  for (let va = start; va < end; va += PAGE_SIZE) run.push({ va, access: MOCKGPU_FAULT_ACCESS_READ, ctx, fatal: 0 });
  yield* uvm_hmm_map_run(vs, run);
  yield* uvm_channel_wait(vs.gpu.channel, vs.gpu.channel.put);    /* synchronous, as UVM_MIGRATE without a tracker */
}

/**
 * uvm_migrate() - make [start, end) resident on processor @dest (the CPU
 * or this GPU) and, for the GPU, map it there. @cause names the Migration
 * events ('user' for the ioctl, 'access_counters').
 * Context: mmap_lock held for read; may sleep.
 * Return: pages moved, or -EFAULT when part of the range is not mapped.
 */
export function* uvm_migrate(vs: uvm_va_space, start: number, end: number, dest: number, cause: string): Sleepable<number> {
  let moved = 0;
  for (let va = start; va < end;) {
    const vma = vma_lookup(vs.mm, va);
    if (vma === null) return -EFAULT;
    /* per VA block, clamped to the VMA, as UVM walks an HMM range */
    const next = Math.min(end, vma.vm_end, va - (va % UVM_VA_BLOCK_SIZE) + UVM_VA_BLOCK_SIZE);
    if (dest === MOCKGPU_PROCESSOR_CPU) moved += yield* uvm_migrate_to_sysmem(vs, vma, va, next, cause);
    else if (!uvm_hmm_must_use_sysmem(vma)) {
      moved += yield* uvm_hmm_migrate_run(vs, vma, va, next, cause);
      yield* uvm_migrate_map(vs, va, next);
    }
    va = next;
  }
  return moved;
}
