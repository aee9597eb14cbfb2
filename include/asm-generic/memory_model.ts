/*
 * include/asm-generic/memory_model.ts - pfn <-> struct page for headers.
 *
 * Models the pfn_to_page() of include/asm-generic/memory_model.h, which
 * Linux computes in a header from the memory map (vmemmap). Here the
 * memory map belongs to mm/page_alloc.ts, and include/ may not import mm/
 * at runtime (test/tree.test.ts), so the inline helpers of
 * include/linux/hmm.ts and include/linux/migrate.ts (hmm_pfn_to_page,
 * migrate_pfn_to_page) look pages up through this slot, which
 * mem_init() (mm/page_alloc.ts) fills at boot, as the kernel sets up
 * mem_map before anything calls pfn_to_page().
 */
import { __pfn_to_section, type page } from '../linux/mm_types.js';
import { BUG } from './bug.js';

/** The memory map's lookup, installed by mem_init() at boot. */
export const memory_model: { pfn_to_page: ((pfn: number) => page) | null } = { pfn_to_page: null };

/** pfn_to_page() - the struct page of a pfn (a BUG before mm/ installed the memory map). */
export function pfn_to_page(pfn: number): page {
  const fn = memory_model.pfn_to_page;
  if (fn === null) BUG('pfn_to_page() from include/ before mm/ installed the memory map');
  return fn(pfn);
}

/**
 * pfn_to_page_new() - pfn_to_page() for a loop that uses the handle within
 * one iteration and meets each frame once per pass (the migration passes,
 * the driver's copy runs, vm_normal_page() for the page-table walkers of
 * fork, zap and the fault path): a new handle from the frame's section
 * (mem_section.page_new()), past the handle cache; a pfn with no section
 * yet goes through pfn_to_page(), which BUGs on one that is no memory.
 * No Linux twin: in Linux pfn_to_page() is pointer arithmetic on the
 * memory map and has no cache to bypass.
 */
export function pfn_to_page_new(pfn: number): page {
  const ms = __pfn_to_section(pfn);
  if (ms !== undefined && pfn - ms.start_pfn < ms.nr) return ms.page_new(pfn);
  return pfn_to_page(pfn);
}
