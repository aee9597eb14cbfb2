/*
 * mm/hmm_v8/update.ts - HMM v8 patches 07, 09-12: applying an invalidation
 * to one mirror, and the driver's range helpers.
 *
 *   [PATCH 07/36] HMM: add per mirror page table v3      (update(), hmm_mirror_update_pt)
 *   [PATCH 09/36] HMM: add mm page table iterator helpers (mm_pt_iter)
 *   [PATCH 10/36] HMM: use CPU page table during invalidation (dirty -> set_page_dirty)
 *   [PATCH 11/36] HMM: add discard range helper          (hmm_mirror_range_discard)
 *   [PATCH 12/36] HMM: add dirty range helper            (hmm_mirror_range_dirty)
 *
 * hmm_update() (mm/hmm_v8/hmm.ts) calls hmm_mirror_update() for each
 * mirror: first the driver's update() (it must have stopped using the range
 * and reported dirty pages when it returns), then hmm_mirror_update_pt(),
 * which applies the event's mask to every mirror entry of the range:
 *
 *   VALID_PFN  entry & mask; the page is dirtied if DIRTY was set
 *   VALID_DEV  left alone for HMM_FORK (the device copy stays writable:
 *              the child gets a system copy), else entry & mask
 *   VALID_DMA  if the mask drops the entry, dma_unmap_page() first; dirty
 *              pages are found through the page invalidate_page() passed
 *              (patch 03) or the CPU page table (mm_pt_iter, patch 09):
 *              a DMA address does not lead back to a struct page
 *
 * The CPU table still maps the old page when this runs: v8 does all of its
 * work in invalidate_range_start(), before the core changes the PTEs.
 */
import type { mm_struct, page } from '../../include/linux/mm_types.js';
import { PAGE_SIZE, PMD_SIZE } from '../../include/linux/mm.js';
import { pte_present, pte_pfn, pmd_trans_huge, pmd_pfn, PMD_LEVEL } from '../../include/linux/pgtable.js';
import {
  HMM_FORK, HMM_MUNMAP, HMM_PTE_MASK_NONE, HMM_PTE_WRITE, HMM_PTE_DIRTY, hmm_pte_valid, hmm_pte_test_valid_dev,
  hmm_pte_test_valid_dma, hmm_pte_test_valid_pfn, hmm_pte_test_dirty, hmm_pte_mask, hmm_pte_clear_dirty,
  hmm_pte_pfn, hmm_pte_dma_addr, type hmm_event, type hmm_mirror,
} from '../../include/linux/hmm_v8.js';
import { SetPageDirty } from '../../include/linux/page-flags.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { dma_unmap_page, DMA_BIDIRECTIONAL } from '../../lib/dma/mapping.js';
import { count_event } from '../../lib/sim/trace.js';
import { pfn_to_page, pfn_valid, is_zero_pfn } from '../page_alloc.js';
import { pte_offset_map, ptep_get } from '../pgtable.js';
import {
  hmm_pt_iter_init, hmm_pt_iter_fini, hmm_pt_iter_update, hmm_pt_iter_next, hmm_pt_level_next,
  hmm_pt_directory_lock, hmm_pt_directory_unlock, hmm_pt_load, hmm_pt_store, hmm_pt_set_dirty, hmm_pt_prune,
  type hmm_pt,
} from './hmm_pt.js';
import { kasan_check } from './kasan.js';

/**
 * struct mm_pt_iter - a read-only walker of the CPU page table, legal inside
 * a notifier callback because every invalidation caller holds mmap_lock or
 * the i_mmap lock (patch 09).
 */
export interface mm_pt_iter { mm: mm_struct; }

export function mm_pt_iter_init(mm: mm_struct): mm_pt_iter { return { mm }; }
export function mm_pt_iter_fini(_iter: mm_pt_iter): void { /* nothing cached */ }

/**
 * mm_pt_iter_page() - the struct page the CPU maps at @addr (PTE or huge
 * PMD), or null (not present, zero page, no struct page).
 */
export function mm_pt_iter_page(iter: mm_pt_iter, addr: number): page | null {
  const mm = iter.mm;
  const ptep = pte_offset_map(mm, addr);
  let pfn: number;
  if (ptep >= 0) {
    const pte = ptep_get(mm, ptep);
    if (!pte_present(pte)) return null;
    pfn = pte_pfn(pte);
  } else {
    const pmdp = mm.pgd.lookup(addr, PMD_LEVEL);
    if (pmdp < 0) return null;
    const pmd = mm.pgd.load(pmdp);
    if (!pmd_trans_huge(pmd)) return null;
    pfn = pmd_pfn(pmd) + Math.floor((addr % PMD_SIZE) / PAGE_SIZE);
  }
  if (is_zero_pfn(pfn) || !pfn_valid(pfn)) return null;
  return pfn_to_page(pfn);
}

/** set_page_dirty() - the device wrote @p: its data must reach backing store. */
function set_page_dirty(p: page): void {
  SetPageDirty(p.compound_head);
  count_event('hmm_v8_set_page_dirty');
}

/* Per-walk context, passed along (never a module global). */
interface update_ctx {
  mirror: hmm_mirror;
  pt: hmm_pt;
  event: hmm_event;
  page: page | null;
  iter: mm_pt_iter | null;
  dirty: page[];
}

/*
 * hmm_mirror_update_pte() - apply the event to one entry. Called with the
 * directory lock held; pages to dirty are collected and dirtied after it.
 */
function hmm_mirror_update_pte(c: update_ctx, ptr: number, addr: number): void {
  const e = hmm_pt_load(c.pt, ptr);
  if (!hmm_pte_valid(e)) return;
  const dirty = hmm_pte_test_dirty(e);
  let n: number;
  if (hmm_pte_test_valid_dev(e)) {
    if (c.event.etype === HMM_FORK) return;       /* parent keeps a writable device copy */
    n = hmm_pte_mask(e, c.event.pte_mask);
  } else if (hmm_pte_test_valid_dma(e)) {
    n = hmm_pte_mask(e, c.event.pte_mask);
    if (n === 0) dma_unmap_page(c.mirror.device.dev!, hmm_pte_dma_addr(e), PAGE_SIZE, DMA_BIDIRECTIONAL);
  } else {
    n = hmm_pte_mask(e, c.event.pte_mask);
  }
  if (dirty && n !== 0) n = hmm_pte_clear_dirty(n);
  if (n !== e) hmm_pt_store(c.pt, ptr, n);
  if (!dirty || hmm_pte_test_valid_dev(e)) return;
  let p: page | null = null;
  if (hmm_pte_test_valid_pfn(e)) {
    const pfn = hmm_pte_pfn(e);
    if (!is_zero_pfn(pfn) && pfn_valid(pfn)) p = pfn_to_page(pfn);
  } else if (c.page !== null && c.event.end - c.event.start === PAGE_SIZE) {
    p = c.page;                                   /* patch 03: the caller told us */
  } else {
    if (c.iter === null) c.iter = mm_pt_iter_init(mirror_mm(c.mirror));
    p = mm_pt_iter_page(c.iter, addr);            /* patch 09/10: ask the CPU table */
  }
  if (p !== null) c.dirty.push(p);
}

function mirror_mm(mirror: hmm_mirror): mm_struct {
  return (mirror.hmm as { mm: mm_struct }).mm;
}

/**
 * hmm_mirror_update_pt() - apply @event to @mirror's table over
 * [event.start, event.end): mask entries, unmap DMA, dirty pages. An MUNMAP
 * also frees the directories it emptied.
 * @p: the page invalidate_page() passed, or null.
 * Context: takes directory locks; does not sleep.
 */
export function hmm_mirror_update_pt(mirror: hmm_mirror, event: hmm_event, p: page | null): void {
  kasan_check(mirror, 'hmm_mirror_update_pt');
  const pt = mirror.pt as hmm_pt;
  const c: update_ctx = { mirror, pt, event, page: p, iter: null, dirty: [] };
  const iter = hmm_pt_iter_init(pt);
  const end = event.end;
  let addr = event.start;
  while (addr < end) {
    const ptr = hmm_pt_iter_update(iter, addr);
    if (ptr < 0) { addr = hmm_pt_iter_next(iter, addr, end); continue; }
    const next = hmm_pt_level_next(pt, addr, end, pt.llevel - 1);
    hmm_pt_directory_lock(pt, ptr);
    for (let q = ptr; addr < next; addr += PAGE_SIZE, q++) hmm_mirror_update_pte(c, q, addr);
    hmm_pt_directory_unlock(pt, ptr);
  }
  hmm_pt_iter_fini(iter);
  for (const d of c.dirty) set_page_dirty(d);
  if (event.etype === HMM_MUNMAP && event.pte_mask === HMM_PTE_MASK_NONE) hmm_pt_prune(pt, event.start, event.end);
}

/**
 * hmm_mirror_update() - forward @event to one mirror: the driver first,
 * then the mirror table.
 * Context: hmm.rwsem held for read; may sleep (the driver's update()).
 * Return: the driver's 0 / -errno (hmm_update kills a failing mirror).
 */
export function* hmm_mirror_update(mirror: hmm_mirror, event: hmm_event, p: page | null): Sleepable<number> {
  kasan_check(mirror, 'hmm_mirror_update');
  count_event('hmm_v8_mirror_update');
  const ret = yield* mirror.device.ops.update(mirror, event);
  hmm_mirror_update_pt(mirror, event, p);
  return ret;
}

/**
 * hmm_mirror_range_discard() - the driver no longer uses [start, end):
 * clear the mirror entries and their DMA mappings as an MUNMAP would,
 * without calling the driver back (patch 11).
 * Context: the driver makes sure no fault of its own runs on the range.
 */
export function hmm_mirror_range_discard(mirror: hmm_mirror, start: number, end: number): void {
  const event: hmm_event = { start, end, etype: HMM_MUNMAP, pte_mask: HMM_PTE_MASK_NONE, backoff: false };
  hmm_mirror_update_pt(mirror, event, null);
}

/**
 * hmm_mirror_range_dirty() - mark every valid, writable entry of
 * [start, end) dirty, so the pages get dirtied at the next invalidation
 * (patch 12). Lockless (atomic bit set). Return: entries marked.
 */
export function hmm_mirror_range_dirty(mirror: hmm_mirror, start: number, end: number): number {
  const pt = mirror.pt as hmm_pt;
  const iter = hmm_pt_iter_init(pt);
  let n = 0;
  for (let addr = start; addr < end;) {
    const ptr = hmm_pt_iter_update(iter, addr);
    if (ptr < 0) { addr = hmm_pt_iter_next(iter, addr, end); continue; }
    const e = hmm_pt_load(pt, ptr);
    if (hmm_pte_valid(e) && (e & HMM_PTE_WRITE) !== 0 && (e & HMM_PTE_DIRTY) === 0) { hmm_pt_set_dirty(pt, ptr); n++; }
    addr += PAGE_SIZE;
  }
  hmm_pt_iter_fini(iter);
  return n;
}
