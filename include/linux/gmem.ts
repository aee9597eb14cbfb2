/*
 * include/linux/gmem.ts - GMEM (Generalized Memory Management), the RFC of
 * Nov 2023 ("[RFC PATCH 0/6] Supporting GMEM ... for external memory
 * devices", Weixi Zhu; not merged): a device registers its MMU as a table
 * of functions (struct gm_mmu), attaches a device context to the process's
 * mm (struct gm_as, struct gm_context) and hands every device page fault
 * to one core entry, gm_dev_fault(). Core mm keeps a logical page table
 * per mm (struct vm_object) whose entries say where a virtual page lives:
 * on the CPU (the CPU page table maps it) or on a device.
 *
 * Values as in the RFC's include/linux/gmem.h and uapi headers
 * (enum gm_ret, enum gm_mmu_mode, GM_DEV_CAP_*, GM_PAGE_*, MAP_PEER_SHARED
 * 0x8000000, MADV_PREFETCH 26, __NR_hmadvise 453). The code is mm/gmem.ts.
 *
 * Simplified, each said where it is used: pages are 4 KiB (the RFC moves
 * HPAGE_SIZE units); dma addresses are struct pages (no IOMMU); one device
 * may hold a page at a time (no peer-to-peer moves).
 */
import type { mm_struct, page } from './mm_types.js';
import type { Sleepable } from './sched.js';

/* enum gm_ret: what the GMEM core and the MMU functions return */
export const GM_RET_SUCCESS = 0;
export const GM_RET_NOMEM = 1;
export const GM_RET_PAGE_EXIST = 2;
export const GM_RET_MIGRATING = 3;
export const GM_RET_FAILURE_UNKNOWN = 4;

/* enum gm_mmu_mode: how the device's page table relates to the CPU's */
export const GM_MMU_MODE_SHARE = 0;
export const GM_MMU_MODE_COHERENT_EXCLUSIVE = 1;
export const GM_MMU_MODE_REPLICATE = 2;

/* enum gm_fault_hint (the RFC has one; a plain device fault passes null here) */
export const GM_FAULT_HINT_MARK_HOT = 0;

/* gm_dev capabilities */
export const GM_DEV_CAP_REPLAYABLE = 0x00000001;
export const GM_DEV_CAP_PEER = 0x00000010;

/* logical page table entry flags (gm_mapping flags) */
export const GM_PAGE_CPU = 0x10;
export const GM_PAGE_DEVICE = 0x20;
export const GM_PAGE_NOMAP = 0x40;

/* uapi: the mmap flag of GMEM memory, the new advice, the syscall number */
export { MAP_PEER_SHARED, MADV_PREFETCH } from '../uapi/asm-generic/mman.js';
export const __NR_hmadvise = 453;

/**
 * struct gm_fault_t - the argument of peer_map/peer_unmap.
 * @pmap: the attached context's page table (sim: the RFC's driver finds it
 *   through dev->current_ctx, one active context per device)
 * @prot: PROT_READ/PROT_WRITE the device may use
 * @copy: peer_map: copy @dma_page to the device page first;
 *   peer_unmap: copy the device page back into @dma_page
 * @pfn: the device page (from gm_mmu.alloc_page)
 */
export interface gm_fault_t {
  mm: mm_struct;
  dev: gm_dev;
  pmap: unknown;
  va: number;
  size: number;
  prot: number;
  copy: boolean;
  dma_page: page | null;
  pfn: number;
  hint: number | null;
}

/**
 * struct gm_mmu - the device's MMU functions, called by the GMEM core.
 * Return GM_RET_* (or -errno for pmap_*). The core calls alloc_page,
 * free_page, peer_map, peer_unmap, pmap_create and pmap_destroy; the rest
 * are the driver's own building blocks, listed because the RFC lists them.
 *  alloc_page/free_page: device physical pages (the cover letter's "PA"
 *    functions); alloc_page returns a device pfn or -1
 *  peer_map: allocate-copy-map in one device round trip
 *  peer_unmap: unmap, invalidate the device TLB, copy back if asked
 */
export interface gm_mmu {
  peer_va_alloc_fixed?(mm: mm_struct, va: number, size: number, prot: number): number;
  peer_va_free?(mm: mm_struct, va: number, size: number): number;
  alloc_page(dev: gm_dev): number;
  free_page(dev: gm_dev, pfn: number): void;
  peer_map(gmf: gm_fault_t): Sleepable<number>;
  peer_unmap(gmf: gm_fault_t): Sleepable<number>;
  pmap_create(dev: gm_dev, out: { pmap: unknown }): number;
  pmap_destroy(pmap: unknown): Sleepable<number>;
  pmap_enter?(pmap: unknown, va: number, size: number, pa: number, prot: number): Sleepable<number>;
  pmap_release?(pmap: unknown, va: number, size: number): Sleepable<number>;
  pmap_protect?(pmap: unknown, va: number, size: number, new_prot: number): Sleepable<number>;
  tlb_invl(pmap: unknown, va: number, size: number): Sleepable<number>;
}

/** struct gm_dev - a device registered with GMEM. */
export interface gm_dev {
  id: number;
  capability: number;
  mmu: gm_mmu;
  dev_data: unknown;
  current_ctx: gm_context | null;
  ctx_list: gm_context[];
  /* heterogeneous NUMA nodes of its memory (gm_dev_register_physmem) */
  registered_hnodes: Set<number>;
}

/** struct gm_context - a device context attached to an address space. */
export interface gm_context {
  as: gm_as;
  dev: gm_dev;
  pmap: unknown;
}

/**
 * struct gm_as - the unified address space of one mm (mm->gm_as).
 * @hnodes_allowed: the hnodes of attached devices (the RFC adds them to
 *   current->mems_allowed; we keep them here)
 */
export interface gm_as {
  start_va: number;
  end_va: number;
  ctx_list: gm_context[];
  hnodes_allowed: Set<number>;
}

/** A page that lives on a device, as its hnode's active list holds it. */
export interface gm_active_page {
  mm: mm_struct;
  va: number;
}

/**
 * struct hnode - a heterogeneous NUMA node: the memory a device registered
 * (gm_dev_register_physmem).
 * @activelist: the pages mapped on the device, oldest first (eviction
 *   order; openEuler's hnode->activelist of struct gm_page), keyed by mm id
 *   and address
 */
export interface hnode {
  id: number;
  dev: gm_dev;
  activelist: Map<string, gm_active_page>;
}
