/*
 * drivers/gpu/mockgpu/uvm_gmem_mmu.ts - the mock GPU's MMU functions for
 * GMEM (struct gm_mmu, include/linux/gmem.ts): what the RFC leaves to the
 * driver. The glue that uses them is uvm_gmem.ts; the split is the RFC's
 * own ("a simulated GPU driver in under 70 lines besides MMU functions"),
 * so the two files are counted apart (tools/hmm-sim/driver_lines.ts).
 *
 * Everything goes through the GPU's channels as in the HMM glues: VRAM
 * copies on the copy engine, PTE writes, clears and TLB invalidates on the
 * host channel, fences waited for before a function returns (peer_unmap
 * must not copy before the GPU stopped writing the page). Pushes that
 * write the GPU page table are made under uvm_va_space.mutex, as in the
 * HMM glues; the GMEM core calls these with vm_object.lock held, so the
 * order is vm_object.lock -> uvm_va_space.mutex.
 *
 * The pmap of a context is { vs }: the va_space whose page table the SMs
 * walk (the mock GPU creates it at open; uvm_gmem.ts binds it after
 * gm_as_attach).
 */
import {
  GM_RET_SUCCESS, type gm_dev, type gm_fault_t, type gm_mmu,
} from '../../../include/linux/gmem.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_WRITE } from '../../../include/uapi/asm-generic/mman.js';
import { UVM_APERTURE_VID, UvmEventTypeMigration, mockgpu_pte_make } from '../../../include/linux/mockgpu.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { PCIE_BW } from '../../../lib/sim/costs.js';
import { mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';
import { kmap_local_page } from '../../../mm/page_alloc.js';
import { uvm_gpu_stat_add, uvm_tools_record_event, type uvm_gpu, type uvm_va_space } from './uvm_gpu.js';
import { uvm_pmm_gpu_alloc_page, uvm_pmm_gpu_free_page } from './uvm_pmm_gpu.js';
import { uvm_push_begin, uvm_push_end, uvm_channel_wait } from './uvm_channel.js';
import { uvm_hmm_unmap_gpu } from './uvm_hmm.js';

/** The page table of one attached context. */
export interface uvm_gmem_pmap { vs: uvm_va_space | null }

function gpu_of(dev: gm_dev): uvm_gpu { return dev.dev_data as uvm_gpu; }

/* gm_mmu.alloc_page: a 4 KiB VRAM chunk, or -1 */
function uvm_gmem_alloc_page(dev: gm_dev): number {
  return uvm_pmm_gpu_alloc_page(gpu_of(dev).pmm);
}

/* gm_mmu.free_page */
function uvm_gmem_free_page(dev: gm_dev, pfn: number): void {
  uvm_pmm_gpu_free_page(gpu_of(dev).pmm, pfn);
}

/* gm_mmu.peer_map: copy the CPU page in (or zero the VRAM page), then map it */
function* uvm_gmem_peer_map(gmf: gm_fault_t): Sleepable<number> {
  const vs = (gmf.pmap as uvm_gmem_pmap).vs!, gpu = vs.gpu;
  const ce = uvm_push_begin(gpu.ce, 'migrate_to_vram');
  ce.cmds.push({ kind: 'copy', dst: gpu.pmm.vram(gmf.pfn), src: gmf.copy ? kmap_local_page(gmf.dma_page!) : null, bw: PCIE_BW });
  yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(ce));
  const write = (gmf.prot & PROT_WRITE) !== 0;
  yield* mutex_lock(vs.mutex);
  const p = uvm_push_begin(gpu.channel, 'map');
  p.cmds.push({ kind: 'pte_write', pt: vs.pt, vs_id: vs.id, va: gmf.va, pte: mockgpu_pte_make(UVM_APERTURE_VID, gmf.pfn, write, write) });
  yield* uvm_push_end(p);
  mutex_unlock(vs.mutex);
  if (gmf.copy) {
    uvm_gpu_stat_add(gpu, 'migrated_to_vram');
    uvm_tools_record_event(UvmEventTypeMigration, { from: 'SYS', to: 'VID', start: gmf.va, end: gmf.va + PAGE_SIZE, pages: 1, cause: 'gpu_fault' });
  }
  return GM_RET_SUCCESS;
}

/* gm_mmu.tlb_invl: clear the PTEs of [va, va + size) and invalidate the TLB; wait for the GPU */
function* uvm_gmem_tlb_invl(pmap: unknown, va: number, size: number): Sleepable<number> {
  const vs = (pmap as uvm_gmem_pmap).vs!;
  yield* mutex_lock(vs.mutex);
  const fence = yield* uvm_hmm_unmap_gpu(vs, va, va + size);
  mutex_unlock(vs.mutex);
  yield* uvm_channel_wait(vs.gpu.channel, fence);
  return GM_RET_SUCCESS;
}

/* gm_mmu.peer_unmap: unmap (the GPU stops using the page), then copy it back if asked */
function* uvm_gmem_peer_unmap(gmf: gm_fault_t): Sleepable<number> {
  const vs = (gmf.pmap as uvm_gmem_pmap).vs!, gpu = vs.gpu;
  yield* uvm_gmem_tlb_invl(gmf.pmap, gmf.va, gmf.size);
  if (!gmf.copy) return GM_RET_SUCCESS;
  const ce = uvm_push_begin(gpu.ce, 'migrate_to_sysmem');
  ce.cmds.push({ kind: 'copy', dst: kmap_local_page(gmf.dma_page!), src: gpu.pmm.vram(gmf.pfn), bw: PCIE_BW });
  yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(ce));
  uvm_gpu_stat_add(gpu, 'cpu_faults');
  uvm_gpu_stat_add(gpu, 'migrated_to_sysmem');
  uvm_tools_record_event(UvmEventTypeMigration, { from: 'VID', to: 'SYS', start: gmf.va, end: gmf.va + PAGE_SIZE, pages: 1, cause: 'cpu_fault' });
  return GM_RET_SUCCESS;
}

/* gm_mmu.pmap_create: the context's page table, bound to its va_space by the glue */
function uvm_gmem_pmap_create(_dev: gm_dev, out: { pmap: unknown }): number {
  out.pmap = { vs: null } satisfies uvm_gmem_pmap;
  return 0;
}

/* gm_mmu.pmap_destroy: nothing stays mapped */
function* uvm_gmem_pmap_destroy(pmap: unknown): Sleepable<number> {
  const vs = (pmap as uvm_gmem_pmap).vs;
  if (vs !== null) yield* uvm_gmem_tlb_invl(pmap, 0, 2 ** 48);
  return 0;
}

/** The mock GPU's struct gm_mmu. */
export const uvm_gmem_mmu: gm_mmu = Object.freeze({
  alloc_page: uvm_gmem_alloc_page,
  free_page: uvm_gmem_free_page,
  peer_map: uvm_gmem_peer_map,
  peer_unmap: uvm_gmem_peer_unmap,
  pmap_create: uvm_gmem_pmap_create,
  pmap_destroy: uvm_gmem_pmap_destroy,
  tlb_invl: uvm_gmem_tlb_invl,
});
