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
import type { page } from '../linux/mm_types.js';
import { BUG } from './bug.js';

/** The memory map's lookup, installed by mem_init() at boot. */
export const memory_model: { pfn_to_page: ((pfn: number) => page) | null } = { pfn_to_page: null };

/** pfn_to_page() - the struct page of a pfn (a BUG before mm/ installed the memory map). */
export function pfn_to_page(pfn: number): page {
  const fn = memory_model.pfn_to_page;
  if (fn === null) BUG('pfn_to_page() from include/ before mm/ installed the memory map');
  return fn(pfn);
}
