/*
 * include/linux/huge_mm.ts - transparent huge pages: sizes, the global
 * mode, and the events THP counts.
 *
 * Models include/linux/huge_mm.h. The code is mm/huge_memory.ts (fault,
 * COW, split, zap, fork, mprotect, GUP of huge PMDs) and mm/khugepaged.ts
 * (MADV_COLLAPSE); the long explanation is the THP section of
 * Documentation/vm/hmm.txt (Part 4).
 *
 * A PMD-mapped THP is one folio of HPAGE_PMD_NR pages mapped by a single
 * PMD leaf (_PAGE_PSE). Its counts live in the head page:
 *
 *   head._entire_mapcount   PMD mappings of the whole folio, minus one
 *   page._mapcount          PTE mappings of that one page, minus one
 *                           (after a split_huge_pmd the folio is PTE-mapped)
 *   head._refcount          one per PMD mapping, one per PTE mapping,
 *                           plus GUP pins (1 each, and _pincount) and temporary gets
 *
 * The PMD leaf may also be non-present: a PMD migration entry while the
 * THP migrates as a whole, or a device-private PMD for a THP in device
 * memory (include/linux/swapops.ts, mm/huge_memory_nonpresent.ts). A
 * device-private PMD counts like a present one (one reference, one entire
 * mapping); a migration entry counts nothing but rss.
 *
 * A split comes in two steps, as in Linux: split_huge_pmd() turns the PMD
 * leaf into a table of 512 PTEs mapping the same pages (the folio stays
 * large), split_folio() turns the large folio into 512 small ones (which
 * is what frees the unmapped part after a partial munmap).
 *
 * Lock order: mmap_lock -> folio lock -> the PMD lock (mm->page_table_lock
 * here, no split PMD locks) -> PTE locks.
 */
import { PMD_SHIFT, PMD_SIZE, HPAGE_PMD_ORDER, HPAGE_PMD_NR, PUD_SIZE } from './mm.js';

export const HPAGE_PMD_SHIFT = PMD_SHIFT;
export const HPAGE_PMD_SIZE = PMD_SIZE;
export { HPAGE_PMD_ORDER, HPAGE_PMD_NR };
export const HPAGE_PUD_SIZE = PUD_SIZE;

/** haddrOf() - the PMD-aligned start of the huge page covering addr (addr & HPAGE_PMD_MASK). */
export function haddrOf(addr: number): number {
  return addr - (addr % HPAGE_PMD_SIZE);
}

/** IS_PMD_ALIGNED() - addr is a multiple of HPAGE_PMD_SIZE. */
export function IS_PMD_ALIGNED(addr: number): boolean {
  return addr % HPAGE_PMD_SIZE === 0;
}

/*
 * enum transparent_hugepage_flag, as far as this model has it: the
 * /sys/kernel/mm/transparent_hugepage/enabled mode is one of three
 * strings, use_zero_page a boolean.
 */
export type thp_mode = 'always' | 'madvise' | 'never';

/* thp_vma_allowable_order() flags (enum tva_type in Linux 6.x) */
export const TVA_SMAPS = 1 << 0;          /* will be used for procfs: ignore the sysfs mode */
export const TVA_IN_PF = 1 << 1;          /* asked from the page fault path */
export const TVA_ENFORCE_SYSFS = 1 << 2;  /* obey the sysfs mode (not MADV_COLLAPSE) */

/*
 * The vmstat events of include/linux/vm_event_item.h that THP counts, as
 * the counter names lib/sim/trace.ts count_event() uses.
 */
export const THP_FAULT_ALLOC = 'thp_fault_alloc';
export const THP_FAULT_FALLBACK = 'thp_fault_fallback';
export const THP_FAULT_FALLBACK_CHARGE = 'thp_fault_fallback_charge';
export const THP_COLLAPSE_ALLOC = 'thp_collapse_alloc';
export const THP_COLLAPSE_ALLOC_FAILED = 'thp_collapse_alloc_failed';
export const THP_SPLIT_PAGE = 'thp_split_page';
export const THP_SPLIT_PAGE_FAILED = 'thp_split_page_failed';
export const THP_DEFERRED_SPLIT_PAGE = 'thp_deferred_split_page';
export const THP_SPLIT_PMD = 'thp_split_pmd';
export const THP_ZERO_PAGE_ALLOC = 'thp_zero_page_alloc';
export const THP_MIGRATION_SPLIT = 'thp_migration_split';
