/*
 * mm/rmap_reclaim.ts - the reverse-map walkers of reclaim: folio_referenced()
 * and try_to_unmap().
 *
 * Models folio_referenced()/folio_referenced_one() and
 * try_to_unmap()/try_to_unmap_one() of mm/rmap.c (Linux keeps every rmap
 * walker in rmap.c; here mm/rmap.ts has the walk itself, mm/migrate.ts
 * try_to_migrate(), and this file the two that reclaim uses).
 *
 * folio_referenced() is the accessed-bit aging of reclaim: for each PTE
 * mapping the folio it clears _PAGE_ACCESSED (ptep_test_and_clear_young,
 * which the MMU sets again on the next access) and asks whole-mm MMU
 * notifier subscribers whether a secondary MMU used the page
 * (mmu_notifier_clear_young; optional, KVM-style: HMM mirrors have no
 * accessed bits to report).
 *
 * try_to_unmap() replaces every PTE mapping the folio:
 *   - swap-backed anon folio (in the swap cache by now): the swap entry,
 *     exclusive if the page was PageAnonExclusive, one swap count per PTE;
 *   - lazily freed anon folio (MADV_FREE, !PG_swapbacked): nothing, the
 *     folio is discarded, unless it was written since (dirty PTE or
 *     PG_dirty) or someone holds a reference: then the PTE is put back and
 *     the folio is swap-backed again;
 *   - other folios: nothing (the folio stays in its page cache).
 * Each PTE is cleared inside its own MMU_NOTIFY_CLEAR range
 * [addr, addr + PAGE_SIZE), started before the page-table lock is taken,
 * so that every secondary MMU (an HMM mirror, an ODP MR) drops its
 * mapping before the CPU PTE changes and cannot re-fault the page until
 * the swap entry is in place.
 *
 * Simplified: Linux holds the anon_vma lock across the walk, so VMAs
 * cannot change under it; this model has no rmap lock, and a walk that
 * slept in a notifier revalidates the VMA and the PTE before touching them.
 */
import type { page, vm_area_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES, MM_SWAPENTS } from '../include/linux/mm_types.js';
import { PAGE_SIZE, VM_LOCKED, folio_mapcount, inc_mm_counter, dec_mm_counter, mm_counter } from '../include/linux/mm.js';
import {
  pte_present, pte_pfn, pte_young, pte_dirty, pte_soft_dirty, pte_mkold, type pte_t,
} from '../include/linux/pgtable.js';
import {
  swp_entry_to_pte, pte_swp_mkexclusive, _PAGE_SWP_SOFT_DIRTY, is_swap_pte, pte_to_swp_entry, is_device_exclusive_entry,
  swp_offset_pfn,
} from '../include/linux/swapops.js';
import {
  PageSwapBacked, SetPageSwapBacked, PageSwapCache, PageDirty, SetPageDirty, PageAnonExclusive,
  ClearPageAnonExclusive, folio_test_anon,
} from '../include/linux/page-flags.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { BUG } from '../include/asm-generic/bug.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { put_page } from './page_alloc.js';
import { pte_lockptr, ptep_get, set_pte_at, ptep_get_and_clear, flush_tlb_page } from './pgtable.js';
import { rmap_walk, page_vma_mapped, vma_address, folio_remove_rmap_pte } from './rmap.js';
import { folio_maybe_dma_pinned } from './gup.js';
import { swap_duplicate, swap_free } from './swapfile.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
  mmu_notifier_clear_young,
} from './mmu_notifier.js';

/** What folio_referenced() found. */
export interface referenced_result {
  referenced: number;     /* mappings (CPU or secondary) that were young */
  vm_flags: number;       /* VM_* of every VMA found mapping the folio, or-ed */
}

/* Every (vma, address) that may map the folio: candidates, checked one by one. */
function rmap_candidates(f: page): { vma: vm_area_struct; addr: number }[] {
  const out: { vma: vm_area_struct; addr: number }[] = [];
  rmap_walk(f, { rmap_one(_f, vma, addr) { out.push({ vma, addr }); return true; } });
  return out;
}

/*
 * ptep_clear_young_notify() - test and clear the accessed bit of one
 * present PTE and of the secondary MMUs for the same page.
 * Caller holds the PTE lock.
 */
function ptep_clear_young_notify(vma: vm_area_struct, addr: number, ptep: number, pte: pte_t): boolean {
  const mm = vma.vm_mm;
  let young = false;
  if (pte_young(pte)) {
    set_pte_at(mm, addr, ptep, pte_mkold(pte));     /* ptep_test_and_clear_young: no TLB flush on x86 */
    young = true;
  }
  if (mmu_notifier_clear_young(mm, addr, addr + PAGE_SIZE) !== 0) young = true;
  return young;
}

/**
 * folio_referenced() - how many mappings of the folio were used since the
 * last look, clearing the accessed bits as it goes.
 * Context: does not sleep; takes the page-table locks.
 */
export function folio_referenced(f: page): referenced_result {
  const res: referenced_result = { referenced: 0, vm_flags: 0 };
  if (f._mapcount < 0) return res;
  rmap_walk(f, {
    rmap_one(folio, vma, addr) {
      const ptep = page_vma_mapped(vma, addr, folio);
      if (ptep < 0) return true;
      const ptl = pte_lockptr(vma.vm_mm, ptep);
      spin_lock(ptl);
      const pte = ptep_get(vma.vm_mm, ptep);
      if (pte_present(pte) && pte_pfn(pte) === folio.pfn) {
        if (ptep_clear_young_notify(vma, addr, ptep, pte)) res.referenced++;
        res.vm_flags |= vma.vm_flags;
      }
      spin_unlock(ptl);
      return true;
    },
  });
  return res;
}

/*
 * unmap_one_locked() - clear the PTE at ptep that maps f and install what
 * replaces it. Caller holds the PTE lock; the PTE maps f (checked).
 * Return: false to stop the walk (the folio must stay mapped).
 */
function unmap_one_locked(f: page, vma: vm_area_struct, addr: number, ptep: number): boolean {
  const mm = vma.vm_mm;
  if (vma.vm_flags & VM_LOCKED) return false;
  const pteval = ptep_get_and_clear(mm, addr, ptep);
  const present = pte_present(pteval);        /* else a device-exclusive entry: clean and old for core mm */
  if (present) flush_tlb_page(vma, addr);
  if (present && pte_dirty(pteval)) SetPageDirty(f);
  if (folio_test_anon(f) && !PageSwapBacked(f)) {
    /* MADV_FREE: only the isolation reference and the mappings may remain */
    if (f._refcount === 1 + folio_mapcount(f) && !PageDirty(f)) {
      dec_mm_counter(mm, MM_ANONPAGES);
      count_event('pglazyfree_discard');
    } else {
      set_pte_at(mm, addr, ptep, pteval);
      SetPageSwapBacked(f);
      return false;
    }
  } else if (folio_test_anon(f)) {
    if (!PageSwapCache(f)) BUG(`try_to_unmap: swap-backed anon pfn ${f.pfn} is not in the swap cache`);
    const entry = f.private;
    if (swap_duplicate(entry) < 0) { set_pte_at(mm, addr, ptep, pteval); return false; }
    const anon_exclusive = PageAnonExclusive(f);
    if (anon_exclusive && folio_maybe_dma_pinned(f)) {
      /* folio_try_share_anon_rmap_pte() failed: a device may write it, keep it mapped */
      swap_free(entry);
      set_pte_at(mm, addr, ptep, pteval);
      return false;
    }
    if (anon_exclusive) ClearPageAnonExclusive(f);
    dec_mm_counter(mm, MM_ANONPAGES);
    inc_mm_counter(mm, MM_SWAPENTS);
    let swp_pte = swp_entry_to_pte(entry);
    if (anon_exclusive) swp_pte = pte_swp_mkexclusive(swp_pte);
    if (present ? pte_soft_dirty(pteval) : (pteval & _PAGE_SWP_SOFT_DIRTY) !== 0) swp_pte += _PAGE_SWP_SOFT_DIRTY;
    set_pte_at(mm, addr, ptep, swp_pte);
  } else {
    dec_mm_counter(mm, mm_counter(f));
  }
  folio_remove_rmap_pte(f, vma);
  put_page(f);                        /* the PTE's reference; the caller's isolation reference remains */
  count_event('unmap_pte');
  trace_event('try_to_unmap_one', { mm: mm.id, addr, pfn: f.pfn, swap: folio_test_anon(f) && PageSwapBacked(f) });
  return true;
}

/*
 * maps_page() - a present PTE of @pfn, or (Linux 6.15+ try_to_unmap_one:
 * "PFN swap PTEs, such as device-exclusive ones, that actually map
 * pages") a device-exclusive entry of it; reclaim unmaps both.
 */
function maps_page(pte: pte_t, pfn: number): boolean {
  if (pte_present(pte)) return pte_pfn(pte) === pfn;
  if (!is_swap_pte(pte)) return false;
  const e = pte_to_swp_entry(pte);
  return is_device_exclusive_entry(e) && swp_offset_pfn(e) === pfn;
}

/*
 * try_to_unmap_one() - unmap f at addr of vma inside one MMU_NOTIFY_CLEAR
 * range. Return: false to stop the walk.
 */
function* try_to_unmap_one(f: page, vma: vm_area_struct, addr: number, blockable: boolean): Sleepable<boolean> {
  const mm = vma.vm_mm;
  if (page_vma_mapped(vma, addr, f) < 0) return true;
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, blockable ? MMU_NOTIFIER_RANGE_BLOCKABLE : 0, mm,
    addr, addr + PAGE_SIZE);
  if ((yield* mmu_notifier_invalidate_range_start(range)) !== 0) {
    count_event('unmap_notifier_busy');            /* a subscriber could not invalidate without sleeping */
    return false;
  }
  let ret = true;
  /* revalidate after the notifiers: the VMA may have changed while they slept */
  const still = vma_address(f, vma) === addr && vma.vm_mm === mm ? page_vma_mapped(vma, addr, f) : -1;
  if (still >= 0) {
    const ptl = pte_lockptr(mm, still);
    spin_lock(ptl);
    const pte = ptep_get(mm, still);
    if (maps_page(pte, f.pfn)) ret = unmap_one_locked(f, vma, addr, still);
    spin_unlock(ptl);
  }
  yield* mmu_notifier_invalidate_range_end(range);
  return ret;
}

/**
 * try_to_unmap() - unmap the folio from every page table.
 * @blockable: may the notifier callbacks sleep (false for direct reclaim,
 * which runs inside alloc_pages() and cannot yield in this model).
 * Context: folio locked and isolated (the caller holds a reference).
 * Return: true if the folio is mapped nowhere afterwards.
 */
export function* try_to_unmap(f: page, blockable: boolean): Sleepable<boolean> {
  for (const { vma, addr } of rmap_candidates(f)) {
    if (f._mapcount < 0) break;
    if (!(yield* try_to_unmap_one(f, vma, addr, blockable))) break;
  }
  return f._mapcount < 0;
}
