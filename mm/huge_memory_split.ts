/*
 * mm/huge_memory_split.ts - splitting THPs: a huge PMD into PTEs, a
 * large folio into small ones, and the deferred split queue.
 *
 * Models the splitting half of mm/huge_memory.c: __split_huge_pmd() and
 * its callers (split_huge_pmd_address, vma_adjust_trans_huge), and
 * split_huge_page_to_list_to_order() for order 0 (can_split_folio,
 * unmap_folio, __split_huge_page, remap_page) with deferred_split_folio()
 * and the deferred split shrinker. mm/huge_memory.ts (mapping THPs)
 * re-exports the PMD split API.
 *
 * A PMD split keeps the folio large and maps it by 512 PTEs (see
 * __split_huge_pmd_locked); a folio split then goes as follows.
 *
 * The steps, as in Linux:
 *   1. can_split_folio(): every reference is a mapping or the caller's;
 *      a GUP pin or any other reference makes the split fail (-EAGAIN).
 *   2. unmap_folio(): split every PMD mapping it, then replace each PTE
 *      mapping of each page by a migration entry, inside MMU_NOTIFY_CLEAR
 *      of the folio's range in that VMA (try_to_migrate with
 *      TTU_SPLIT_HUGE_PMD). A fault on the range now waits for the folio
 *      lock (migration_entry_wait).
 *   3. the reference count must now be the caller's alone (the freeze).
 *   4. __split_huge_page(): each page becomes an order-0 folio with the
 *      folio's mapping, index + i, flags and memcg, locked, with one
 *      temporary reference.
 *   5. remap_page(): every migration entry becomes a PTE again, now
 *      mapping a small folio (same pfn, same permissions, same
 *      exclusivity).
 *   6. the pages other than the caller's are unlocked and their temporary
 *      reference dropped: a page nobody maps any more is freed here, which
 *      is what gives memory back after a partial munmap of a THP.
 *
 * The deferred split queue holds folios whose PMD was split; the shrinker
 * (deferred_split_scan, run by reclaim or called directly) splits those
 * that are partly unmapped.
 *
 * Simplified: only anonymous folios are split (no page-cache THPs here);
 * migration entries keep write and exclusivity, not the young/dirty bits
 * (the folio's dirty flag carries the latter).
 */
import type { page, vm_area_struct } from '../include/linux/mm_types.js';
import { PAGE_SIZE, VM_HUGETLB, vma_is_anonymous, add_mm_counter, mm_counter } from '../include/linux/mm.js';
import {
  pte_present, pte_write, pte_dirty, pte_pfn, pte_mkwrite, pte_mkdirty, pte_mkyoung, pte_mkold, pte_mkspecial,
  pfn_pte, pmd_trans_huge, pmd_pfn, pmd_write, pmd_young, pmd_dirty, _PAGE_RW, PTE_LEVEL,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_entry_to_pte, is_swap_pte, is_migration_entry, is_writable_migration_entry,
  is_readable_exclusive_migration_entry, make_writable_migration_entry, make_readable_exclusive_migration_entry,
  make_readable_migration_entry, swp_offset_pfn, is_swap_pmd, pmd_is_huge,
} from '../include/linux/swapops.js';
import {
  PageAnonExclusive, SetPageAnonExclusive, ClearPageAnonExclusive, SetPageDirty, PageDirty, PageLocked, folio_test_anon, folio_test_hugetlb,
  PG_head, PG_locked, PG_uptodate, PG_dirty, PG_swapbacked, PG_referenced, PG_active, PG_workingset, PG_mlocked,
  PG_unevictable, PG_anon_exclusive, PG_hwpoison,
} from '../include/linux/page-flags.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import {
  HPAGE_PMD_NR, HPAGE_PMD_SIZE, haddrOf, THP_SPLIT_PAGE, THP_SPLIT_PAGE_FAILED, THP_DEFERRED_SPLIT_PAGE, THP_SPLIT_PMD,
} from '../include/linux/huge_mm.js';
import { EAGAIN, EBUSY } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { charge } from '../lib/sim/clock.js';
import { PTE_UPDATE_NS } from '../lib/sim/costs.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { pfn_to_page, get_page, put_page, ZERO_PAGE } from './page_alloc.js';
import { pmd_off, pmd_lockptr, pte_offset_map, pte_lockptr, ptep_get, ptep_get_and_clear, set_pte_at, flush_tlb_range } from './pgtable.js';
import { mk_pte } from './memory.js';
import { folio_remove_rmap_pte, folio_add_anon_rmap_pte } from './rmap.js';
import { folio_trylock, folio_unlock } from './filemap.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { is_huge_zero_pmd, folio_remove_rmap_pmd } from './huge_memory.js';
import { __split_huge_swap_pmd_locked } from './huge_memory_nonpresent.js';
import { BUG } from '../include/asm-generic/bug.js';
import { lru_add_split_folio } from './swap.js';

/* folios whose PMD mapping was split, waiting for the shrinker, by head pfn (page handles are not unique); reset at boot */
let deferred_split_queue = new Map<number, page>();

/** resetDeferredSplitQueue() - a fresh machine: empty queue (called by hugepage_init). */
export function resetDeferredSplitQueue(): void {
  deferred_split_queue = new Map();
}

/** folio_unqueue_deferred_split() - a folio being freed leaves the queue (__folio_put()). */
export function folio_unqueue_deferred_split(f: page): void {
  if (f.order === 0) return;        /* only large folios are ever queued (deferred_split_folio) */
  deferred_split_queue.delete(f.pfn);
}

/* ------------------------------------------------------------ splitting a PMD */

/*
 * __split_huge_zero_page_pmd() - the huge zero page becomes 512 read-only
 * special PTEs of the ordinary zero page.
 */
function __split_huge_zero_page_pmd(vma: vm_area_struct, pmdp: number, haddr: number): void {
  const mm = vma.vm_mm;
  mm.pgd.set(pmdp, 0);
  const ptep = mm.pgd.populate(haddr, PTE_LEVEL);
  if (ptep < 0) BUG(`split_huge_pmd: no page-table page (${ptep})`);
  const entry = pte_mkspecial(pfn_pte(ZERO_PAGE(haddr).pfn, vma.vm_page_prot & ~_PAGE_RW));
  for (let i = 0; i < HPAGE_PMD_NR; i++) mm.pgd.set(ptep + i, entry);
}

/**
 * __split_huge_pmd_locked() - turn the huge PMD at haddr into a table of
 * 512 PTEs mapping the same pages with the same permissions and state
 * (a PMD migration or device-private entry into 512 PTE entries of the
 * same kind: __split_huge_swap_pmd_locked).
 * The folio stays large and is now PTE-mapped: each page gets a PTE
 * mapping and a reference, the PMD mapping goes. Anonymous exclusivity
 * moves from the head page to every page. The folio joins the deferred
 * split queue: if part of it is unmapped later, the split shrinker
 * (deferred_split_scan) frees that part.
 * Context: PMD lock held; no notifier (see the callers).
 */
export function __split_huge_pmd_locked(vma: vm_area_struct, pmdp: number, haddr: number): void {
  const mm = vma.vm_mm;
  const old = mm.pgd.load(pmdp);
  if (!pmd_is_huge(old)) return;
  count_event(THP_SPLIT_PMD);
  charge(PTE_UPDATE_NS * HPAGE_PMD_NR);
  if (is_swap_pmd(old)) { __split_huge_swap_pmd_locked(vma, pmdp, haddr, old); return; }
  if (is_huge_zero_pmd(old)) { __split_huge_zero_page_pmd(vma, pmdp, haddr); return; }
  const f = pfn_to_page(pmd_pfn(old));
  if (!vma_is_anonymous(vma)) {
    /* a file THP is only unmapped: the PTE level refaults it from the page cache */
    mm.pgd.set(pmdp, 0);
    if (pmd_dirty(old)) SetPageDirty(f);
    folio_remove_rmap_pmd(f);
    add_mm_counter(mm, mm_counter(f), -HPAGE_PMD_NR);
    put_page(f);
    return;
  }
  const write = pmd_write(old), young = pmd_young(old), dirty = pmd_dirty(old);
  const exclusive = PageAnonExclusive(f);
  if (dirty) SetPageDirty(f);
  f._refcount += HPAGE_PMD_NR - 1;               /* folio_ref_add: one per PTE, the PMD's becomes the first */
  mm.pgd.set(pmdp, 0);                           /* pmdp_invalidate */
  const ptep = mm.pgd.populate(haddr, PTE_LEVEL);
  if (ptep < 0) BUG(`split_huge_pmd: no page-table page (${ptep})`);
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const p = i === 0 ? f : pfn_to_page(f.pfn + i);
    p._mapcount++;                               /* folio_add_anon_rmap_ptes */
    if (exclusive) SetPageAnonExclusive(p);
    let pte = mk_pte(p, vma.vm_page_prot);
    if (write) pte = pte_mkwrite(pte);
    if (!young) pte = pte_mkold(pte);
    if (dirty) pte = pte_mkdirty(pte);
    mm.pgd.set(ptep + i, pte);
  }
  folio_remove_rmap_pmd(f);
  deferred_split_folio(f);
}

/**
 * __split_huge_pmd() - split the huge PMD covering address, telling
 * secondary MMUs with MMU_NOTIFY_CLEAR over the 2 MiB range.
 * Context: mmap_lock held; may sleep.
 */
export function* __split_huge_pmd(vma: vm_area_struct, pmdp: number, address: number): Sleepable {
  const mm = vma.vm_mm;
  const haddr = haddrOf(address);
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, haddr, haddr + HPAGE_PMD_SIZE);
  yield* mmu_notifier_invalidate_range_start(range);
  const ptl = pmd_lockptr(mm, pmdp);
  spin_lock(ptl);
  __split_huge_pmd_locked(vma, pmdp, haddr);
  spin_unlock(ptl);
  flush_tlb_range(vma, haddr, haddr + HPAGE_PMD_SIZE);
  yield* mmu_notifier_invalidate_range_end(range);
}

/**
 * split_huge_pmd_address() - split the huge PMD covering address in vma,
 * if there is one (hugetlb PMDs are never split).
 * Context: mmap_lock held; may sleep.
 */
export function* split_huge_pmd_address(vma: vm_area_struct, address: number): Sleepable {
  if (vma.vm_flags & VM_HUGETLB) return;
  const pmdp = pmd_off(vma.vm_mm, haddrOf(address));
  if (pmdp < 0 || !pmd_is_huge(vma.vm_mm.pgd.load(pmdp))) return;
  yield* __split_huge_pmd(vma, pmdp, address);
}

/**
 * vma_adjust_trans_huge() - before a VMA is cut at start and end (munmap,
 * mprotect, mremap of part of it), split any huge PMD a cut would go
 * through: a PMD leaf cannot belong to two VMAs.
 * Context: mmap_lock held for write; may sleep.
 */
export function* vma_adjust_trans_huge(vma: vm_area_struct, start: number, end: number): Sleepable {
  for (const a of [start, end]) {
    if (a % HPAGE_PMD_SIZE === 0) continue;
    const h = haddrOf(a);
    if (h >= vma.vm_start && h + HPAGE_PMD_SIZE <= vma.vm_end) yield* split_huge_pmd_address(vma, a);
  }
}

/* unmap_page_range() met a huge PMD it covers only in part (inside the zap's own invalidation) */
export function splitHugePmdInZap(vma: vm_area_struct, pmdp: number, addr: number): void {
  const ptl = pmd_lockptr(vma.vm_mm, pmdp);
  spin_lock(ptl);
  __split_huge_pmd_locked(vma, pmdp, haddrOf(addr));
  spin_unlock(ptl);
}

/**
 * folio_large_mapcount() - every mapping of a large folio: its PMD/PUD
 * mappings plus the PTE mapping of each page (Linux keeps the sum in
 * folio->_large_mapcount).
 */
export function folio_large_mapcount(f: page): number {
  const h = f.compound_head;
  if (h.order === 0) return h._mapcount + 1;
  let n = h._entire_mapcount + 1 + h._mapcount + 1;
  for (let i = 1; i < 1 << h.order; i++) n += pfn_to_page(h.pfn + i)._mapcount + 1;
  return n;
}

/**
 * can_split_folio() - may the folio be split: is every reference a
 * mapping, or one of the caller's @caller_pins?
 */
export function can_split_folio(f: page, caller_pins = 1): boolean {
  return folio_large_mapcount(f) === f._refcount - caller_pins;
}

/*
 * folio_vma_ranges() - where the nr pages at page offset @index of
 * @mapping may be mapped: [start, end) in each VMA of its rmap (Linux's
 * rmap walk over a folio's pgoff range).
 */
function folio_vma_ranges(m: page['mapping'], index: number, nr: number): { vma: vm_area_struct; start: number; end: number }[] {
  if (m === null) return [];
  const out: { vma: vm_area_struct; start: number; end: number }[] = [];
  const vmas = m.kind === 'anon' ? [...m.vmas] : [...m.i_mmap];
  for (const vma of vmas) {
    const s = vma.vm_start + (index - vma.vm_pgoff) * PAGE_SIZE;
    const start = Math.max(s, vma.vm_start), end = Math.min(s + nr * PAGE_SIZE, vma.vm_end);
    if (start < end) out.push({ vma, start, end });
  }
  return out;
}

/* try_to_migrate_one() for a large folio: the PTEs of [start, end) that map one of its pages */
function unmap_folio_ptes(f: page, vma: vm_area_struct, start: number, end: number): number {
  const mm = vma.vm_mm, first = f.pfn, last = f.pfn + (1 << f.order);
  let n = 0;
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    const ptep = pte_offset_map(mm, addr);
    if (ptep < 0) continue;
    const ptl = pte_lockptr(mm, ptep);
    spin_lock(ptl);
    const pte = ptep_get(mm, ptep);
    if (pte_present(pte) && pte_pfn(pte) >= first && pte_pfn(pte) < last) {
      const p = pfn_to_page(pte_pfn(pte));
      const exclusive = PageAnonExclusive(p);
      ptep_get_and_clear(mm, addr, ptep);
      if (pte_dirty(pte)) SetPageDirty(f);
      const e = pte_write(pte) ? make_writable_migration_entry(p.pfn)
        : exclusive ? make_readable_exclusive_migration_entry(p.pfn) : make_readable_migration_entry(p.pfn);
      if (exclusive) ClearPageAnonExclusive(p);
      set_pte_at(mm, addr, ptep, swp_entry_to_pte(e));
      folio_remove_rmap_pte(p, vma);
      put_page(p);
      n++;
    }
    spin_unlock(ptl);
  }
  if (n > 0) flush_tlb_range(vma, start, end);
  return n;
}

/**
 * unmap_folio() - replace every mapping of the locked large folio by
 * migration entries: PMD mappings are split first, then each VMA's PTEs
 * go inside one MMU_NOTIFY_CLEAR of the folio's range there.
 * Context: folio locked and referenced; mmap_lock held; may sleep.
 */
export function* unmap_folio(f: page): Sleepable {
  const nr = 1 << f.order;
  for (const { vma, start } of folio_vma_ranges(f.mapping, f.index, nr)) {
    const pmdp = pmd_off(vma.vm_mm, start);
    if (pmdp < 0) continue;
    const pmd = vma.vm_mm.pgd.load(pmdp);
    if (pmd_trans_huge(pmd) && pmd_pfn(pmd) === f.pfn) yield* __split_huge_pmd(vma, pmdp, start);
  }
  for (const { vma, start, end } of folio_vma_ranges(f.mapping, f.index, nr)) {
    const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, vma.vm_mm, start, end);
    yield* mmu_notifier_invalidate_range_start(range);
    charge(PTE_UPDATE_NS * unmap_folio_ptes(f, vma, start, end));
    yield* mmu_notifier_invalidate_range_end(range);
  }
}

/*
 * remap_page() - turn the migration entries for pages [first, first + nr)
 * back into PTEs, each mapping the folio its page belongs to now. The
 * walk covers the folio as it was: @m and @index of its head.
 */
function remap_page(m: page['mapping'], index: number, first: number, nr: number): void {
  for (const { vma, start, end } of folio_vma_ranges(m, index, nr)) {
    const mm = vma.vm_mm;
    for (let addr = start; addr < end; addr += PAGE_SIZE) {
      const ptep = pte_offset_map(mm, addr);
      if (ptep < 0) continue;
      const old = ptep_get(mm, ptep);
      if (!is_swap_pte(old)) continue;
      const e = pte_to_swp_entry(old);
      if (!is_migration_entry(e) || swp_offset_pfn(e) < first || swp_offset_pfn(e) >= first + nr) continue;
      const p = pfn_to_page(swp_offset_pfn(e));
      const writable = is_writable_migration_entry(e);
      let pte = pte_mkyoung(mk_pte(p, vma.vm_page_prot));
      if (writable) {
        pte = pte_mkwrite(pte);
        if (PageDirty(p.compound_head)) pte = pte_mkdirty(pte);
      }
      const ptl = pte_lockptr(mm, ptep);
      spin_lock(ptl);
      get_page(p);
      folio_add_anon_rmap_pte(p, vma, addr, writable || is_readable_exclusive_migration_entry(e));
      set_pte_at(mm, addr, ptep, pte);
      spin_unlock(ptl);
    }
  }
}

/* the bits of the head's flags every page of a split folio inherits (__split_huge_page_tail) */
const TAIL_INHERIT = (1 << PG_locked) | (1 << PG_uptodate) | (1 << PG_dirty) | (1 << PG_swapbacked) |
  (1 << PG_referenced) | (1 << PG_active) | (1 << PG_workingset) | (1 << PG_mlocked) | (1 << PG_unevictable);
/* the bits that belong to each page, not to the folio */
const PAGE_OWN = (1 << PG_anon_exclusive) | (1 << PG_hwpoison);

/*
 * __split_huge_page() - the frozen, unmapped folio becomes 2^order small
 * folios. The head keeps the caller's reference; every other page gets a
 * temporary one and stays locked until after remap_page().
 */
function __split_huge_page(h: page): void {
  const nr = 1 << h.order;
  for (let i = 1; i < nr; i++) {
    const t = pfn_to_page(h.pfn + i);
    t.compound_head = t;
    t.order = 0;
    t.flags = (t.flags & PAGE_OWN) | (h.flags & TAIL_INHERIT);
    t.mapping = h.mapping;
    t.index = h.index + i;
    t.memcg = h.memcg;
    t.private = 0;
    t._refcount = 1;
    lru_add_split_folio(h, t);
  }
  h.order = 0;
  h.flags &= ~(1 << PG_head);
  h._entire_mapcount = -1;
}

/**
 * split_folio() - split a large anonymous folio into order-0 folios
 * (split_huge_page_to_list_to_order with new_order 0), with its data
 * where it was: the pages do not move, only the struct pages change.
 * @f: the folio, locked and referenced by the caller; still locked (as
 *     the first small folio) and referenced on return.
 *
 * Context: mmap_lock held; may sleep (notifiers).
 * Return: 0; -EAGAIN when there are references other than mappings and
 * the caller's (a GUP pin: the folio cannot be split now); -EBUSY for a
 * hugetlb or non-anonymous folio.
 */
export function* split_folio(f: page): Sleepable<number> {
  const h = f.compound_head;
  if (!PageLocked(h)) BUG(`split_folio of unlocked folio pfn ${h.pfn}`);
  if (h.order === 0) return 0;
  if (folio_test_hugetlb(h) || !folio_test_anon(h)) return -EBUSY;
  if (!can_split_folio(h)) { count_event(THP_SPLIT_PAGE_FAILED); return -EAGAIN; }
  const nr = 1 << h.order;
  deferred_split_queue.delete(h.pfn);
  yield* unmap_folio(h);
  if (h._refcount !== 1) {
    /* someone took a reference meanwhile: put the mappings back, unsplit */
    remap_page(h.mapping, h.index, h.pfn, nr);
    count_event(THP_SPLIT_PAGE_FAILED);
    return -EAGAIN;
  }
  __split_huge_page(h);
  remap_page(h.mapping, h.index, h.pfn, nr);
  for (let i = 1; i < nr; i++) {
    const t = pfn_to_page(h.pfn + i);
    folio_unlock(t);
    put_page(t);                 /* frees the pages nobody maps any more */
  }
  count_event(THP_SPLIT_PAGE);
  trace_event('split_folio', { pfn: h.pfn, nr });
  return 0;
}

/**
 * deferred_split_folio() - queue a large folio whose PMD mapping was
 * split, so that the split shrinker can split it if it ends up partly
 * mapped.
 */
export function deferred_split_folio(f: page): void {
  const h = f.compound_head;
  if (h.order === 0 || deferred_split_queue.has(h.pfn)) return;
  deferred_split_queue.set(h.pfn, h);
  count_event(THP_DEFERRED_SPLIT_PAGE);
}

/** deferredSplitCount() - folios on the deferred split queue. */
export function deferredSplitCount(): number { return deferred_split_queue.size; }

/* partly mapped: no PMD mapping, some pages mapped and some not */
function folio_partially_mapped(h: page): boolean {
  if (h._entire_mapcount >= 0) return false;
  let mapped = 0;
  const nr = 1 << h.order;
  for (let i = 0; i < nr; i++) if (pfn_to_page(h.pfn + i)._mapcount >= 0) mapped++;
  return mapped > 0 && mapped < nr;
}

/**
 * deferred_split_scan() - the deferred split shrinker: split queued
 * folios that are partly mapped, freeing their unmapped pages. Folios
 * that are mapped whole, or locked, leave the queue untouched.
 * @nr_to_scan: folios to look at (default: all).
 * Context: mmap_lock of the mappings' mms held (or none running); may sleep.
 * Return: folios split.
 */
export function* deferred_split_scan(nr_to_scan = Infinity): Sleepable<number> {
  let split = 0, scanned = 0;
  for (const h of [...deferred_split_queue.values()]) {
    if (scanned++ >= nr_to_scan) break;
    deferred_split_queue.delete(h.pfn);
    if (h.order === 0 || h._refcount === 0 || !folio_partially_mapped(h)) continue;
    get_page(h);
    if (!folio_trylock(h)) { put_page(h); continue; }
    if ((yield* split_folio(h)) === 0) split++;
    folio_unlock(h);
    put_page(h);
  }
  return split;
}
