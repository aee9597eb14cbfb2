/*
 * mm/madvise_free.ts - MADV_FREE (lazily freed anonymous memory) and
 * MADV_PAGEOUT (reclaim this range now): the advice that hands memory to
 * reclaim.
 *
 * Models madvise_free_single_vma()/madvise_free_pte_range() and
 * madvise_pageout()/madvise_cold_or_pageout_pte_range() of mm/madvise.c
 * (the rest of madvise is mm/madvise.ts, which calls these two).
 *
 * MADV_FREE tells the kernel that the contents of a private anonymous
 * range are no longer needed, but does not drop them now:
 *
 *   madvise(MADV_FREE)   PTEs made clean and old, PG_dirty cleared, the
 *                        folio moved to the inactive file list with
 *                        PG_swapbacked cleared (folio_mark_lazyfree);
 *                        swap entries in the range are freed at once
 *                        (those pages read back as zeroes)
 *   no write, reclaim    try_to_unmap discards the folio: the PTE becomes
 *                        empty, a later read sees zeroes (no swap I/O)
 *   write, then reclaim  the MMU set the PTE's dirty bit: try_to_unmap
 *                        puts the PTE back and makes the folio swap-backed
 *                        again; every byte is kept
 *
 * Secondary MMUs are told with one MMU_NOTIFY_CLEAR over the advised part
 * of each VMA (the PTEs lose their dirty and accessed bits, so a device
 * mapping must be dropped too), and again per page if reclaim discards it.
 *
 * MADV_PAGEOUT isolates the private anonymous folios of the range that
 * no other mm maps and runs them through reclaim at once, ignoring their
 * accessed bits (reclaim_pages): each is swapped out, with the usual
 * MMU_NOTIFY_CLEAR per PTE from try_to_unmap.
 *
 * A THP in a MADV_PAGEOUT range is isolated whole and split by reclaim
 * (mm/vmscan.ts). Simplified: MADV_FREE leaves large folios alone rather
 * than splitting them (madvise_free_huge_pmd belongs to mm/huge_memory.ts).
 */
import type { vm_area_struct } from '../include/linux/mm_types.js';
import { MM_SWAPENTS } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, PMD_SIZE, VM_LOCKED, VM_PFNMAP, VM_HUGETLB, vma_is_anonymous, folio_mapcount, add_mm_counter,
} from '../include/linux/mm.js';
import {
  pte_none, pte_present, pte_young, pte_dirty, pte_mkold, pte_mkclean, pmd_is_table, pmd_trans_huge,
  pmd_present, pmd_pfn,
} from '../include/linux/pgtable.js';
import { pte_to_swp_entry, non_swap_entry, is_hwpoison_entry } from '../include/linux/swapops.js';
import { PageSwapCache, PageDirty, ClearPageDirty, TestClearPageReferenced } from '../include/linux/page-flags.js';
import type { page } from '../include/linux/mm_types.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import { EINVAL } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event } from '../lib/sim/trace.js';
import { pte_offset_map, pte_lockptr, ptep_get, set_pte_at, pte_clear, flush_tlb_range } from './pgtable.js';
import { vm_normal_page } from './memory.js';
import { pfn_to_page, get_page_unless_zero, put_page } from './page_alloc.js';
import { split_huge_pmd_address, split_folio } from './huge_memory_split.js';
import { walk_page_range, PGWALK_RDLOCK, type mm_walk, type mm_walk_ops } from './pagewalk.js';
import { folio_trylock, folio_unlock } from './filemap.js';
import { folio_mark_lazyfree, folio_isolate_lru } from './swap.js';
import { reclaim_pages } from './vmscan.js';
import { free_swap_and_cache, folio_free_swap } from './swapfile.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';

/*
 * struct madvise_walk_private - the state a madvise walk carries from PMD
 * to PMD (Linux keeps it in the mmu_gather): whether a present PTE changed,
 * so the TLB must be flushed once the walk is over.
 */
interface madvise_walk_private {
  flush: boolean;
}

/*
 * madvise_free_pte_range() - pmd_entry of madvise_free_walk_ops: the PTEs
 * of [addr, end) in one PTE page (a huge PMD is left alone, see the header).
 */
function madvise_free_pte_range(pmdp: number, addr: number, end: number, walk: mm_walk<madvise_walk_private>): number {
  const mm = walk.mm, vma = walk.vma!;
  if (!pmd_is_table(mm.pgd.load(pmdp))) return 0;
  let ptep = pte_offset_map(mm, addr);
  if (ptep < 0) return 0;
  const ptl = pte_lockptr(mm, ptep);
  let nr_swap = 0, flush = false;
  spin_lock(ptl);
  for (; addr < end; addr += PAGE_SIZE, ptep++) {
    const pte = ptep_get(mm, ptep);
    if (pte_none(pte)) continue;
    if (!pte_present(pte)) {
      /* a swapped-out page: dropping it now is cheaper than a swap-in later */
      const entry = pte_to_swp_entry(pte);
      if (!non_swap_entry(entry)) {
        nr_swap--;
        free_swap_and_cache(entry);
        pte_clear(mm, addr, ptep);
      } else if (is_hwpoison_entry(entry)) {
        pte_clear(mm, addr, ptep);
      }
      continue;
    }
    const f = vm_normal_page(vma, addr, pte);
    if (f === null || f.pgmap !== null || f.compound_head.order > 0) continue;
    if (PageSwapCache(f) || PageDirty(f)) {
      if (!folio_trylock(f)) continue;
      /* shared with another mm (after fork): its data must stay */
      if (folio_mapcount(f) !== 1 || (PageSwapCache(f) && !folio_free_swap(f))) { folio_unlock(f); continue; }
      ClearPageDirty(f);
      folio_unlock(f);
    }
    if (pte_young(pte) || pte_dirty(pte)) {
      set_pte_at(mm, addr, ptep, pte_mkclean(pte_mkold(pte)));
      flush = true;
    }
    folio_mark_lazyfree(f);
  }
  spin_unlock(ptl);
  if (nr_swap !== 0) add_mm_counter(mm, MM_SWAPENTS, nr_swap);
  if (flush) walk.private.flush = true;
  return 0;
}

const madvise_free_walk_ops: mm_walk_ops<madvise_walk_private> = Object.freeze({
  pmd_entry: madvise_free_pte_range,
  walk_lock: PGWALK_RDLOCK,
});

/**
 * madvise_free_single_vma() - MADV_FREE over [start, end) of one VMA.
 * Called by madvise_vma_behavior() (mmap_lock held for read).
 * Context: may sleep (notifiers).
 * Return: 0; -EINVAL for a VMA that is not private anonymous memory, or
 * is locked, VM_PFNMAP or hugetlb (madvise_dontneed_free_valid_vma).
 */
export function* madvise_free_single_vma(vma: vm_area_struct, start: number, end: number): Sleepable<number> {
  if (vma.vm_flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) return -EINVAL;
  if (!vma_is_anonymous(vma)) return -EINVAL;
  const mm = vma.vm_mm;
  const s = Math.max(vma.vm_start, start), e = Math.min(vma.vm_end, end);
  if (s >= e) return -EINVAL;
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, s, e);
  yield* mmu_notifier_invalidate_range_start(range);
  const priv: madvise_walk_private = { flush: false };
  yield* walk_page_range(mm, s, e, madvise_free_walk_ops, priv);
  if (priv.flush) flush_tlb_range(vma, s, e);
  yield* mmu_notifier_invalidate_range_end(range);
  count_event('madvise_free');
  return 0;
}

/*
 * folio_maybe_mapped_shared() - might another mapping (another mm after
 * fork) use this folio? Any page mapped twice, or the whole folio.
 */
function folio_maybe_mapped_shared(f: page): boolean {
  if (f.order === 0) return folio_mapcount(f) > 1;
  if (f._entire_mapcount > 0) return true;
  for (let i = 0; i < 1 << f.order; i++) {
    const n = pfn_to_page(f.pfn + i)._mapcount + 1 + (f._entire_mapcount + 1);
    if (n > 1) return true;
  }
  return false;
}

/* Isolate one folio for MADV_PAGEOUT unless another mm may use it (a large one once, by its head). */
function pageout_isolate(f: page, list: page[]): void {
  const h = f.compound_head;
  if (h.pgmap !== null || folio_maybe_mapped_shared(h)) return;
  TestClearPageReferenced(h);
  if (folio_isolate_lru(h)) list.push(h);
}

/* madvise_pageout_pte_range() - isolate the folios of [addr, end) in one PTE page that only this mm maps. */
function madvise_pageout_pte_range(vma: vm_area_struct, addr: number, end: number, list: page[]): void {
  const mm = vma.vm_mm;
  let ptep = pte_offset_map(mm, addr);
  if (ptep < 0) return;
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  for (; addr < end; addr += PAGE_SIZE, ptep++) {
    const pte = ptep_get(mm, ptep);
    if (!pte_present(pte)) continue;
    const f = vm_normal_page(vma, addr, pte);
    if (f !== null) pageout_isolate(f, list);
  }
  spin_unlock(ptl);
}

/*
 * pageout_split_partial_folios() - a large folio that [addr, end) covers
 * only in part is split first (madvise_cold_or_pageout_pte_range drops the
 * PTE lock and calls split_folio), so only the advised pages go to swap.
 * A folio that cannot be split now (pinned) is left alone.
 */
function* pageout_split_partial_folios(vma: vm_area_struct, addr: number, end: number): Sleepable {
  const mm = vma.vm_mm;
  for (; addr < end; addr += PAGE_SIZE) {
    const ptep = pte_offset_map(mm, addr);
    if (ptep < 0) return;
    const pte = ptep_get(mm, ptep);
    if (!pte_present(pte)) continue;
    const p = vm_normal_page(vma, addr, pte);
    if (p === null || p.compound_head.order === 0) continue;
    const h = p.compound_head;
    const first = addr - (p.pfn - h.pfn) * PAGE_SIZE;
    if (first >= vma.vm_start && first >= addr && first + (PAGE_SIZE << h.order) <= end) continue;
    if (!get_page_unless_zero(h)) continue;
    if (folio_trylock(h)) {
      yield* split_folio(h);
      folio_unlock(h);
    }
    put_page(h);
  }
}

/*
 * madvise_cold_or_pageout_pte_range() - pmd_entry of cold_walk_ops: isolate
 * the folios [addr, end) maps in one PMD (a THP the range covers only in
 * part is split first) and reclaim them before the next PMD.
 */
function* madvise_cold_or_pageout_pte_range(pmdp: number, addr: number, end: number,
                                            walk: mm_walk<null>): Sleepable<number> {
  const mm = walk.mm, vma = walk.vma!;
  const list: page[] = [];
  let pmd = mm.pgd.load(pmdp);
  if (pmd_trans_huge(pmd) && pmd_present(pmd) && end - addr < PMD_SIZE) {
    /* only part of the THP is advised: split the PMD, then the folio below */
    yield* split_huge_pmd_address(vma, addr);
    pmd = mm.pgd.load(pmdp);
  }
  if (pmd_is_table(pmd)) {
    yield* pageout_split_partial_folios(vma, addr, end);
    madvise_pageout_pte_range(vma, addr, end, list);
  } else if (pmd_trans_huge(pmd) && pmd_present(pmd)) {
    pageout_isolate(pfn_to_page(pmd_pfn(pmd)), list);
  }
  if (list.length > 0) yield* reclaim_pages(list);   /* reclaim splits a THP into small folios first */
  return 0;
}

/* cold_walk_ops - MADV_PAGEOUT's walk (Linux shares it with MADV_COLD, which this model does not have) */
const cold_walk_ops: mm_walk_ops<null> = Object.freeze({
  pmd_entry: madvise_cold_or_pageout_pte_range,
  walk_lock: PGWALK_RDLOCK,
});

/**
 * madvise_pageout() - MADV_PAGEOUT over [start, end) of one VMA. Installed
 * by madvise_vma_behavior() (mmap_lock held for read).
 * Context: may sleep (notifiers). Return: 0; -EINVAL for a locked,
 * VM_PFNMAP or hugetlb VMA (can_madv_lru_vma). File mappings are skipped
 * (file writeback is not modelled).
 */
export function* madvise_pageout(vma: vm_area_struct, start: number, end: number): Sleepable<number> {
  if (vma.vm_flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) return -EINVAL;
  if (!vma_is_anonymous(vma)) return 0;
  const s = Math.max(vma.vm_start, start), e = Math.min(vma.vm_end, end);
  if (s < e) yield* walk_page_range(vma.vm_mm, s, e, cold_walk_ops, null);
  count_event('madvise_pageout');
  return 0;
}

