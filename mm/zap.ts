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
 *
 * Model split (session 9, exit3; mm/swap_release.ts has the whole of it):
 * the gather holds pfns in typed arrays, not page handles, and
 * zap_present_ptes() zaps the common PTE, one mapping an order-0
 * anonymous folio, on the section arrays (zap_present_pte_pfn(): the
 * steps of vm_normal_page(), zap_present_folio_ptes() and
 * folio_remove_rmap_pte(), no handle); every other PTE takes the handle
 * path, as all do with struct_page_direct(false) (TEST ONLY).
 */
import type { page, vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import { MM_SWAPENTS, MM_ANONPAGES, SECTION_MASK, __pfn_to_section } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, PMD_SIZE, VM_HUGETLB, VM_PFNMAP, VM_MIXEDMAP, mm_counter, mm_counter_file, add_mm_rss_vec,
} from '../include/linux/mm.js';
import {
  pte_none, pte_present, pte_dirty, pte_special, pte_pfn, pmd_is_table, pmd_addr_end, type pte_t,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, non_swap_entry, is_device_private_entry, is_device_exclusive_entry, is_migration_entry,
  is_hmm_entry, swp_offset_pfn, type swp_entry_t,
} from '../include/linux/swapops.js';
import { SetPageDirty, folio_test_anon, PG_anon_exclusive } from '../include/linux/page-flags.js';
import { BUG } from '../include/asm-generic/bug.js';
import {
  MMU_NOTIFY_UNMAP, MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, type mmu_notifier_event,
} from '../include/linux/mmu_notifier.js';
import { cond_resched, type Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event } from '../lib/sim/trace.js';
import { pfn_to_page, put_page, is_zero_pfn } from './page_alloc.js';
import { struct_page_paths } from './internal.js';
import {
  pte_offset_map, pte_lockptr, ptep_get, pte_clear, flush_tlb_range, pmd_off, get_and_clear_full_ptes,
  folio_pte_batch, FPB_IGNORE_DIRTY, FPB_IGNORE_SOFT_DIRTY,
} from './pgtable.js';
import { vm_normal_page } from './memory.js';
import { folio_remove_rmap_pte, folio_remove_rmap_ptes } from './rmap.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { free_swap_and_cache } from './swapfile.js';
import { free_pages_and_swap_cache } from './swap_state.js';
import { zap_huge_pmd } from './huge_memory_pmd.js';
import { splitHugePmdInZap, vma_adjust_trans_huge } from './huge_memory_split.js';
import { unmap_hugepage_range } from './hugetlb.js';

/**
 * struct mmu_gather - pages whose mapping went away, released after the
 * TLB flush. Linux's encoded_page array with ENCODED_PAGE_BIT_NR_PAGES_NEXT
 * is two parallel typed arrays here: @pfns[i] is a page (a folio's first
 * zapped page) by its pfn, the model's page pointer, and @refs[i] how many
 * PTE references of its folio it stands for (1, or the length of a batch
 * of PTEs mapping one large folio), for i < @nr. The arrays grow by
 * doubling and keep their size across flushes, like Linux's batch pages,
 * so a long zap allocates them a few times and makes no object per page.
 * @start/@end: the virtual range to flush (__tlb_adjust_range()).
 */
export interface mmu_gather {
  mm: mm_struct;
  nr: number;
  pfns: Int32Array;
  refs: Int32Array;
  start: number;
  end: number;
}

/* the gather's first arrays: one PTE page's worth (Linux starts with a local batch of 8 and allocates more) */
const MMU_GATHER_FIRST = 512;

/** tlb_gather_mmu() - start a batch. Context: any. Return: the gather. */
export function tlb_gather_mmu(mm: mm_struct): mmu_gather {
  return { mm, nr: 0, pfns: new Int32Array(MMU_GATHER_FIRST), refs: new Int32Array(MMU_GATHER_FIRST), start: Infinity, end: 0 };
}

/**
 * MMU_GATHER_MAX_PAGES - pages a gather holds before the zap flushes the
 * TLB and frees them (tlb_flush_mmu()) at the end of a PTE page, as
 * Linux does when its batches (MAX_GATHER_BATCH_COUNT pages of about 510
 * pointers) are full: about 10,000 pages.
 */
export const MMU_GATHER_MAX_PAGES = 10000;

/** __tlb_adjust_range() - the gather must flush [addr, addr + size) too. */
export function __tlb_adjust_range(tlb: mmu_gather, addr: number, size: number): void {
  if (addr < tlb.start) tlb.start = addr;
  if (addr + size > tlb.end) tlb.end = addr + size;
}

/*
 * tlb_next_batch() - room for more entries: both arrays doubled (Linux's
 * tlb_next_batch() allocates one more batch page).
 * Context: PTE lock held (the model allocates without sleeping).
 */
function tlb_next_batch(tlb: mmu_gather): void {
  const pfns = new Int32Array(tlb.pfns.length * 2), refs = new Int32Array(tlb.refs.length * 2);
  pfns.set(tlb.pfns);
  refs.set(tlb.refs);
  tlb.pfns = pfns;
  tlb.refs = refs;
}

/**
 * __tlb_remove_folio_pages() - @nr consecutive pages of one folio, from
 * the page of @pfn, lose their PTE references after the flush: one gather
 * entry that carries the count (Linux encodes it in the next slot).
 * Context: PTE lock held.
 */
export function __tlb_remove_folio_pages(tlb: mmu_gather, pfn: number, nr: number): void {
  if (tlb.nr === tlb.pfns.length) tlb_next_batch(tlb);
  tlb.pfns[tlb.nr] = pfn;
  tlb.refs[tlb.nr++] = nr;
}

/** tlb_remove_page() - the page will be released once the TLB is flushed. Context: PTE lock held. */
export function tlb_remove_page(tlb: mmu_gather, p: page): void {
  __tlb_remove_folio_pages(tlb, p.pfn, 1);
}

/**
 * tlb_flush_mmu() - flush the TLB for the range touched so far, then
 * release the gathered pages (tlb_batch_pages_flush() ->
 * free_pages_and_swap_cache(): a swap-cache folio mapped nowhere any more
 * leaves the swap cache, and the references go in folio batches). The
 * gather stays usable.
 * Context: no PTE lock held.
 */
export function tlb_flush_mmu(tlb: mmu_gather, vma: vm_area_struct | null): void {
  if (tlb.end > tlb.start && vma !== null) flush_tlb_range(vma, tlb.start, tlb.end);
  tlb.start = Infinity;
  tlb.end = 0;
  const nr = tlb.nr;
  if (nr === 0) return;
  tlb.nr = 0;
  free_pages_and_swap_cache(tlb.pfns, tlb.refs, nr);
}

/** tlb_finish_mmu() - the end of a batch: tlb_flush_mmu() of what is left. */
export function tlb_finish_mmu(tlb: mmu_gather, vma: vm_area_struct | null): void {
  tlb_flush_mmu(tlb, vma);
}

/* Tear down one non-present entry (its PTE is cleared by the caller); rss is the caller's rss vector. */
function zap_nonpresent(vma: vm_area_struct, entry: swp_entry_t, rss: number[]): void {
  if (!non_swap_entry(entry)) {
    rss[MM_SWAPENTS]--;
    free_swap_and_cache(entry);
    return;
  }
  if (is_device_private_entry(entry) || is_device_exclusive_entry(entry)) {
    /* the entry maps a page: drop its rmap and reference like a present PTE */
    const p = pfn_to_page(swp_offset_pfn(entry));
    rss[mm_counter(p)]--;
    folio_remove_rmap_pte(p, vma);
    put_page(p);
    return;
  }
  if (is_migration_entry(entry)) {
    /* migration holds the page; only the rss accounting goes with the entry */
    rss[mm_counter(pfn_to_page(swp_offset_pfn(entry)))]--;
    return;
  }
  if (is_hmm_entry(entry)) count_event('zap_hmm_entry');
  /* hwpoison and markers: nothing mapped */
}

/*
 * zap_present_folio_ptes() - clear @nr present PTEs from @ptep that map
 * consecutive pages of @folio from @p: one rss update, one rmap update of
 * the run and one gather entry for the run (mm/memory.c, Linux 6.10).
 * Context: PTE lock held.
 */
function zap_present_folio_ptes(tlb: mmu_gather, vma: vm_area_struct, folio: page, p: page, ptep: number,
                                pte: pte_t, nr: number, rss: number[]): void {
  const mm = vma.vm_mm;
  pte = get_and_clear_full_ptes(mm, ptep, pte, nr);
  if (folio_test_anon(folio)) {
    rss[MM_ANONPAGES] -= nr;
  } else {
    if (pte_dirty(pte)) SetPageDirty(folio);
    rss[mm_counter_file(folio)] -= nr;
  }
  if (nr === 1) {
    folio_remove_rmap_pte(p, vma);
    tlb_remove_page(tlb, p);
  } else {
    folio_remove_rmap_ptes(folio, p, nr, vma);
    __tlb_remove_folio_pages(tlb, p.pfn, nr);
  }
}

/*
 * zap_present_pte_pfn() - zap_present_ptes() of the common PTE, one that
 * maps an order-0 anonymous folio, on the section arrays: the steps of
 * vm_normal_page(), zap_present_folio_ptes() and folio_remove_rmap_pte()
 * with no page handle (the model split of mm/swap_release.ts). No Linux
 * twin: the body of zap_present_ptes() for that case. Its opening test
 * repeats copy_present_pte_pfn()'s (mm/fork.ts) on purpose: a shared
 * helper measured 2-6% slower on exit.
 * Context: PTE lock held. Return: true when it zapped the PTE, false
 * (nothing changed) for any other PTE, which the handle path zaps.
 */
function zap_present_pte_pfn(tlb: mmu_gather, vma: vm_area_struct, ptep: number, pte: pte_t, rss: number[]): boolean {
  const pfn = pte_pfn(pte);
  if (pte_special(pte) || is_zero_pfn(pfn) || (vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) !== 0) return false;
  const ms = __pfn_to_section(pfn);
  if (ms === undefined) return false;
  const x = pfn & SECTION_MASK;
  if (ms.order[x] !== 0 || (ms.compound_head !== null && ms.compound_head[x] !== 0)) return false;   /* a large folio */
  const m = ms.mapping[x];
  if (m === null || m.kind !== 'anon') return false;                    /* !folio_test_anon() */
  get_and_clear_full_ptes(vma.vm_mm, ptep, pte, 1);
  rss[MM_ANONPAGES]--;
  const mapcount = ms._mapcount[x] - 1;              /* folio_remove_rmap_pte() */
  if (mapcount < -1) BUG(`mapcount underflow pfn ${pfn}`);
  ms._mapcount[x] = mapcount;
  if (mapcount < 0) ms.flags[x] &= ~(1 << PG_anon_exclusive);
  __tlb_remove_folio_pages(tlb, pfn, 1);
  return true;
}

/*
 * zap_present_ptes() - zap the present PTE at @ptep and, when it maps a
 * large folio, the run of following PTEs that map the next pages of the
 * same folio (folio_pte_batch()). Special and zero-page PTEs are only
 * cleared. Return: the number of PTEs zapped (at least 1).
 * Context: PTE lock held.
 */
function zap_present_ptes(tlb: mmu_gather, vma: vm_area_struct, ptep: number, pte: pte_t, addr: number,
                          max_nr: number, rss: number[]): number {
  if (struct_page_paths.direct && zap_present_pte_pfn(tlb, vma, ptep, pte, rss)) return 1;
  const p = vm_normal_page(vma, addr, pte);
  if (p === null) {
    pte_clear(vma.vm_mm, addr, ptep);
    return 1;
  }
  const folio = p.compound_head;
  if (folio.order > 0 && max_nr !== 1) {
    const nr = folio_pte_batch(folio, vma.vm_mm, ptep, pte, max_nr, FPB_IGNORE_DIRTY | FPB_IGNORE_SOFT_DIRTY);
    if (nr > 1) count_event('zap_pte_batch');
    zap_present_folio_ptes(tlb, vma, folio, p, ptep, pte, nr, rss);
    return nr;
  }
  zap_present_folio_ptes(tlb, vma, folio, p, ptep, pte, 1, rss);
  return 1;
}

/*
 * zap_pte_range() - clear the PTEs of [addr, end) in one PTE page. The
 * rss changes are collected in a local vector and applied once
 * (add_mm_rss_vec()), the flush range once, as Linux does. The walk
 * counts in PTE indexes and computes an entry's address where it is
 * used: a user address is above 2^31, a double in V8, and a loop
 * variable or running maximum of doubles was boxed per PTE (about 40 of
 * the 111 bytes of JS heap an exit allocated per page).
 */
function zap_pte_range(tlb: mmu_gather, vma: vm_area_struct, ptep: number, addr: number, end: number): void {
  const mm = vma.vm_mm;
  const ptl = pte_lockptr(mm, ptep);
  const rss = [0, 0, 0, 0];
  const ptep0 = ptep, addr0 = addr, endp = ptep + (end - addr) / PAGE_SIZE;
  let first = -1, last = 0, zapped = 0;
  spin_lock(ptl);
  for (let nr = 1; ptep < endp; ptep += nr) {
    const pte = ptep_get(mm, ptep);
    nr = 1;
    if (pte_none(pte)) continue;
    if (first < 0) first = ptep;
    if (pte_present(pte)) {
      const g = tlb.nr;
      nr = zap_present_ptes(tlb, vma, ptep, pte, addr0 + (ptep - ptep0) * PAGE_SIZE, endp - ptep, rss);
      if (tlb.nr !== g) zapped += nr;            /* a page went to the gather (not a special or zero-page PTE) */
    } else {
      pte_clear(mm, addr0 + (ptep - ptep0) * PAGE_SIZE, ptep);
      zap_nonpresent(vma, pte_to_swp_entry(pte), rss);
    }
    last = ptep + nr;
  }
  add_mm_rss_vec(mm, rss);
  if (first >= 0) __tlb_adjust_range(tlb, addr0 + (first - ptep0) * PAGE_SIZE, (last - first) * PAGE_SIZE);
  spin_unlock(ptl);
  if (zapped > 0) count_event('zap_page', zapped);
  if (tlb.nr >= MMU_GATHER_MAX_PAGES) tlb_flush_mmu(tlb, vma);   /* the batches are full: free them now */
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
