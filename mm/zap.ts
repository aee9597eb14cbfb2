/*
 * mm/zap.ts - tearing down page-table entries: munmap, exit, MADV_DONTNEED.
 *
 * Models zap_pte_range()/unmap_page_range()/unmap_vmas()/
 * zap_page_range_single() of mm/memory.c and the mmu_gather batching of
 * mm/mmu_gather.c: entries are cleared under the PTE lock, the pages they
 * referenced are collected, the TLB is flushed, and only then are the
 * pages released, so no CPU (or device told through the notifier) can
 * still reach a freed page.
 *
 * Every zap is bracketed by mmu_notifier_invalidate_range_start/end with
 * MMU_NOTIFY_UNMAP (munmap, exit) or MMU_NOTIFY_CLEAR (madvise).
 */
import type { page, vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import { MM_SWAPENTS } from '../include/linux/mm_types.js';
import { PAGE_SIZE, PMD_SIZE, VM_HUGETLB, dec_mm_counter, mm_counter } from '../include/linux/mm.js';
import { pte_none, pte_present, pte_dirty, pmd_is_table, pmd_addr_end } from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, non_swap_entry, is_device_private_entry, is_device_exclusive_entry, is_migration_entry,
  is_hmm_entry, swp_offset_pfn, type swp_entry_t,
} from '../include/linux/swapops.js';
import { SetPageDirty, folio_test_anon } from '../include/linux/page-flags.js';
import {
  MMU_NOTIFY_UNMAP, MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, type mmu_notifier_event,
} from '../include/linux/mmu_notifier.js';
import { cond_resched, type Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event } from '../lib/sim/trace.js';
import { pfn_to_page, put_page } from './page_alloc.js';
import { pte_offset_map, pte_lockptr, ptep_get, pte_clear, flush_tlb_range, pmd_off } from './pgtable.js';
import { vm_normal_page } from './memory.js';
import { folio_remove_rmap_pte } from './rmap.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { free_swap_and_cache, free_swap_cache } from './swapfile.js';
import { zap_huge_pmd } from './huge_memory_pmd.js';
import { splitHugePmdInZap, vma_adjust_trans_huge } from './huge_memory_split.js';
import { unmap_hugepage_range } from './hugetlb.js';

/** struct mmu_gather - pages whose last mapping went away, freed after the TLB flush. */
export interface mmu_gather {
  mm: mm_struct;
  pages: page[];
  start: number;
  end: number;
}

/** tlb_gather_mmu() - start a batch. */
export function tlb_gather_mmu(mm: mm_struct): mmu_gather {
  return { mm, pages: [], start: Infinity, end: 0 };
}

/**
 * MMU_GATHER_MAX_PAGES - pages a gather holds before the zap flushes the
 * TLB and frees them (tlb_flush_mmu()) at the end of a PTE page, as
 * Linux does when its batches (MAX_GATHER_BATCH_COUNT pages of about 510
 * pointers) are full: about 10,000 pages.
 */
export const MMU_GATHER_MAX_PAGES = 10000;

/** tlb_remove_page() - the page will be released once the TLB is flushed. */
export function tlb_remove_page(tlb: mmu_gather, p: page): void {
  tlb.pages.push(p);
}

/**
 * tlb_flush_mmu() - flush the TLB for the range touched so far, then
 * release the gathered pages (free_pages_and_swap_cache: a swap-cache
 * folio mapped nowhere any more also leaves the swap cache,
 * free_swap_cache()). The gather stays usable.
 * Context: no PTE lock held.
 */
export function tlb_flush_mmu(tlb: mmu_gather, vma: vm_area_struct | null): void {
  if (tlb.end > tlb.start && vma !== null) flush_tlb_range(vma, tlb.start, tlb.end);
  tlb.start = Infinity;
  tlb.end = 0;
  const pages = tlb.pages;
  for (let i = 0; i < pages.length; i++) {
    free_swap_cache(pages[i]);
    put_page(pages[i]);
  }
  pages.length = 0;
}

/** tlb_finish_mmu() - the end of a batch: tlb_flush_mmu() of what is left. */
export function tlb_finish_mmu(tlb: mmu_gather, vma: vm_area_struct | null): void {
  tlb_flush_mmu(tlb, vma);
}

/* Tear down one non-present entry (its PTE is cleared by the caller). */
function zap_nonpresent(vma: vm_area_struct, entry: swp_entry_t): void {
  const mm = vma.vm_mm;
  if (!non_swap_entry(entry)) {
    dec_mm_counter(mm, MM_SWAPENTS);
    free_swap_and_cache(entry);
    return;
  }
  if (is_device_private_entry(entry) || is_device_exclusive_entry(entry)) {
    /* the entry maps a page: drop its rmap and reference like a present PTE */
    const p = pfn_to_page(swp_offset_pfn(entry));
    dec_mm_counter(mm, mm_counter(p));
    folio_remove_rmap_pte(p, vma);
    put_page(p);
    return;
  }
  if (is_migration_entry(entry)) {
    /* migration holds the page; only the rss accounting goes with the entry */
    dec_mm_counter(mm, mm_counter(pfn_to_page(swp_offset_pfn(entry))));
    return;
  }
  if (is_hmm_entry(entry)) count_event('zap_hmm_entry');
  /* hwpoison and markers: nothing mapped */
}

/*
 * zap_pte_range() - clear the PTEs of [addr, end) in one PTE page.
 */
function zap_pte_range(tlb: mmu_gather, vma: vm_area_struct, ptep: number, addr: number, end: number): void {
  const mm = vma.vm_mm;
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  for (; addr < end; addr += PAGE_SIZE, ptep++) {
    const pte = ptep_get(mm, ptep);
    if (pte_none(pte)) continue;
    pte_clear(mm, addr, ptep);
    tlb.start = Math.min(tlb.start, addr);
    tlb.end = Math.max(tlb.end, addr + PAGE_SIZE);
    if (!pte_present(pte)) { zap_nonpresent(vma, pte_to_swp_entry(pte)); continue; }
    const p = vm_normal_page(vma, addr, pte);
    if (p === null) continue;
    if (pte_dirty(pte) && !folio_test_anon(p)) SetPageDirty(p);
    dec_mm_counter(mm, mm_counter(p));
    folio_remove_rmap_pte(p, vma);
    tlb_remove_page(tlb, p);
    count_event('zap_page');
  }
  spin_unlock(ptl);
  if (tlb.pages.length >= MMU_GATHER_MAX_PAGES) tlb_flush_mmu(tlb, vma);   /* the batches are full: free them now */
}

/**
 * unmap_page_range() - clear every entry of [addr, end) inside vma.
 * Context: mmap_lock held; does not sleep.
 */
export function unmap_page_range(tlb: mmu_gather, vma: vm_area_struct, addr: number, end: number): void {
  const mm = vma.vm_mm;
  if (vma.vm_flags & VM_HUGETLB) {
    unmap_hugepage_range(tlb, vma, addr, end);
    return;
  }
  while (addr < end) {
    const next = pmd_addr_end(addr, end);
    const pmdp = pmd_off(mm, addr);
    if (pmdp >= 0) {
      const pmd = mm.pgd.load(pmdp);
      if (pmd !== 0 && !pmd_is_table(pmd)) {
        if (next - addr === PMD_SIZE) zap_huge_pmd(tlb, vma, pmdp, addr);
        else splitHugePmdInZap(vma, pmdp, addr);    /* part of it: split, then zap those PTEs */
      }
      if (pmd_is_table(mm.pgd.load(pmdp))) zap_pte_range(tlb, vma, pte_offset_map(mm, addr), addr, next);
    }
    addr = next;
  }
}

/**
 * unmap_vmas() - zap [start, end) across the given VMAs, telling secondary
 * MMUs with one MMU_NOTIFY_UNMAP range around the whole teardown.
 * Context: mmap_lock held; may sleep (notifiers).
 */
export function* unmap_vmas(mm: mm_struct, vmas: vm_area_struct[], start: number, end: number): Sleepable {
  if (vmas.length === 0) return;
  const range = mmu_notifier_range_init(MMU_NOTIFY_UNMAP, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, start, end);
  yield* mmu_notifier_invalidate_range_start(range);
  const tlb = tlb_gather_mmu(mm);
  for (const vma of vmas) {
    const s = Math.max(start, vma.vm_start), e = Math.min(end, vma.vm_end);
    if (s < e) unmap_page_range(tlb, vma, s, e);
    yield* cond_resched();      /* zap_pmd_range() reschedules; the pages are still in the gather */
  }
  tlb_finish_mmu(tlb, vmas[0]);
  yield* mmu_notifier_invalidate_range_end(range);
}

/**
 * zap_page_range_single() - zap [start, start + size) of one VMA with the
 * given notifier event (MMU_NOTIFY_CLEAR for madvise).
 * Context: mmap_lock held; may sleep.
 */
export function* zap_page_range_single(vma: vm_area_struct, start: number, size: number,
                                       event: mmu_notifier_event = MMU_NOTIFY_CLEAR): Sleepable {
  const mm = vma.vm_mm;
  const end = Math.min(start + size, vma.vm_end);
  const range = mmu_notifier_range_init(event, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, start, end);
  yield* mmu_notifier_invalidate_range_start(range);
  /*
   * A huge PMD the range covers in part is split with its own 2 MiB
   * invalidation (zap_pmd_range() -> __split_huge_pmd()): the split can
   * change pfns outside [start, end) (the huge zero page becomes the small
   * one), and a mirror must drop them too.
   */
  yield* vma_adjust_trans_huge(vma, start, end);
  const tlb = tlb_gather_mmu(mm);
  unmap_page_range(tlb, vma, start, end);
  tlb_finish_mmu(tlb, vma);
  yield* mmu_notifier_invalidate_range_end(range);
}
