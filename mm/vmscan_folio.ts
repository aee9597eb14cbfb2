/*
 * mm/vmscan_folio.ts - reclaim of one isolated folio: shrink_folio_list()
 * and the decisions it makes per folio.
 *
 * Models the per-folio half of mm/vmscan.c: folio_check_references()
 * (keep, activate or reclaim by the accessed bits), add_to_swap() for
 * anonymous folios, try_to_unmap() (mm/rmap_reclaim.ts), pageout() of a
 * dirty swap-cache folio, __remove_mapping() out of the swap cache, and
 * the free of the isolation reference. Split out of mm/vmscan.ts for size
 * only; the LRU scanning that isolates the folios, direct reclaim and
 * kswapd stay there. Simplifications are those of mm/vmscan.ts (no file
 * writeback, synchronous swap device).
 */
import type { page } from '../include/linux/mm_types.js';
import type { mem_cgroup } from '../include/linux/memcontrol.js';
import { VM_EXEC } from '../include/linux/mm.js';
import {
  SetPageActive, SetPageReferenced, TestClearPageReferenced, PageSwapBacked, PageSwapCache, PageDirty, ClearPageDirty,
  SetPageWriteback, ClearPageWriteback, PageWriteback, PageUnevictable, folio_test_anon,
} from '../include/linux/page-flags.js';
import { __GFP_IO } from '../include/linux/gfp.js';
import { type Sleepable } from '../lib/sim/sched.js';
import { count_event } from '../lib/sim/trace.js';
import { put_page, pfn_to_page } from './page_alloc.js';
import { folio_trylock, folio_unlock } from './filemap.js';
import { folio_maybe_dma_pinned } from './gup.js';
import { folio_is_file_lru, folio_isolate_lru } from './swap.js';
import { folio_referenced, try_to_unmap } from './rmap_reclaim.js';
import { add_to_swap, __delete_from_swap_cache } from './swap_state.js';
import { swap_writepage, put_swap_folio, folio_free_swap } from './swapfile.js';
import { mem_cgroup_swap_full, folio_lruvec } from './memcontrol.js';
import { split_folio } from './huge_memory_split.js';
import type { scan_control } from './vmscan.js';

enum folio_references { FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, FOLIOREF_KEEP, FOLIOREF_ACTIVATE }

/*
 * folio_check_references() - mapped folios start with one young PTE from
 * the fault, so reclaim looks twice: young once -> keep (and remember it
 * in PG_referenced); young again, or young in several places -> activate.
 */
function folio_check_references(f: page): folio_references {
  const { referenced, vm_flags } = folio_referenced(f);
  const referenced_folio = TestClearPageReferenced(f);
  if (referenced > 0) {
    SetPageReferenced(f);
    if (referenced_folio || referenced > 1) return folio_references.FOLIOREF_ACTIVATE;
    if ((vm_flags & VM_EXEC) && folio_is_file_lru(f)) return folio_references.FOLIOREF_ACTIVATE;
    return folio_references.FOLIOREF_KEEP;
  }
  if (referenced_folio && folio_is_file_lru(f)) return folio_references.FOLIOREF_RECLAIM_CLEAN;
  return folio_references.FOLIOREF_RECLAIM;
}

/* pageout() - write a dirty swap-cache folio to its slot. Return: false to keep the folio. */
function pageout(f: page): boolean {
  if (!PageSwapCache(f)) return false;          /* file writeback is not modelled */
  ClearPageDirty(f);                             /* folio_clear_dirty_for_io */
  SetPageWriteback(f);
  swap_writepage(f);
  ClearPageWriteback(f);                         /* synchronous device: writeback ends at once */
  return true;
}

/*
 * __remove_mapping() - take an unmapped, clean folio out of the swap
 * cache, if nobody else holds a reference: only the isolation and the
 * cache's may remain (Linux freezes the refcount at that value; here no
 * one can take a reference between the check and the free).
 */
function __remove_mapping(f: page): boolean {
  if (f._refcount !== 2 || PageDirty(f)) return false;
  const entry = f.private;
  __delete_from_swap_cache(f, entry);
  put_swap_folio(f, entry);
  f._refcount--;                                 /* the cache's reference */
  return true;
}

/* Outcome of one folio in shrink_folio_list. */
type verdict = 'free' | 'keep' | 'activate';

/* The decisions of shrink_folio_list for one locked folio. */
function* shrink_folio(f: page, sc: scan_control, more: page[], ignore_references: boolean): Sleepable<verdict> {
  if (PageUnevictable(f)) return 'activate';
  if (!sc.may_unmap && f._mapcount >= 0) return 'keep';
  if (!folio_test_anon(f) && !PageSwapCache(f)) { count_event('reclaim_skip_file'); return 'keep'; }
  if (f.order > 0) {
    /*
     * Swap holds small pages: split the THP first (split_folio_to_list),
     * only where the split's notifiers may sleep. The new small folios
     * join this list, isolated like the head.
     */
    const nr = 1 << f.order;
    if (!sc.blockable || !folio_test_anon(f) || (yield* split_folio(f)) !== 0) return 'keep';
    for (let i = 1; i < nr; i++) {
      const t = pfn_to_page(f.pfn + i);
      if (folio_isolate_lru(t)) more.push(t);
    }
    count_event('thp_split_for_reclaim');
  }
  if (PageWriteback(f)) return 'keep';
  const references = ignore_references ? folio_references.FOLIOREF_RECLAIM : folio_check_references(f);
  if (references === folio_references.FOLIOREF_ACTIVATE) return 'activate';
  if (references === folio_references.FOLIOREF_KEEP) return 'keep';
  if (folio_test_anon(f) && PageSwapBacked(f) && !PageSwapCache(f)) {
    if (!(sc.gfp_mask & __GFP_IO) || folio_maybe_dma_pinned(f)) return 'keep';
    if (!add_to_swap(f)) return 'activate';
  }
  if (f._mapcount >= 0) {
    const was_swapbacked = PageSwapBacked(f);
    if (!(yield* try_to_unmap(f, sc.blockable))) {
      count_event(!was_swapbacked && PageSwapBacked(f) ? 'pglazyfree_fail' : 'unmap_fail');
      return 'activate';
    }
  }
  if (PageDirty(f)) {
    if (references === folio_references.FOLIOREF_RECLAIM_CLEAN || !pageout(f)) return 'keep';
  }
  if (PageSwapCache(f)) return __remove_mapping(f) ? 'free' : 'keep';
  if (folio_test_anon(f) && !PageSwapBacked(f) && f._refcount === 1) {
    count_event('pglazyfreed');
    return 'free';
  }
  return 'keep';
}

/**
 * shrink_folio_list() - try to free each isolated folio of list.
 * @ignore_references: reclaim even recently used folios (MADV_PAGEOUT).
 * Return: pages freed; the folios that stay are left in list (with their
 * isolation reference), PG_active set on those to promote.
 * Context: may sleep (notifiers) when sc.blockable.
 */
export function* shrink_folio_list(list: page[], sc: scan_control, ignore_references = false): Sleepable<number> {
  const kept: page[] = [];
  let nr_reclaimed = 0;
  for (let i = 0; i < list.length; i++) {
    const f = list[i];
    if (!folio_trylock(f)) { kept.push(f); continue; }
    sc.nr_scanned += 1 << f.order;
    const v = yield* shrink_folio(f, sc, list, ignore_references);
    if (v === 'activate') {
      if (PageSwapCache(f) && mem_cgroup_swap_full(f)) folio_free_swap(f);
      SetPageActive(f);
      count_event('pgactivate', 1 << f.order);
      (folio_lruvec(f).owner as mem_cgroup).stat.pgactivate += 1 << f.order;
    }
    folio_unlock(f);
    if (v === 'free') {
      nr_reclaimed += 1 << f.order;
      put_page(f);                                /* the isolation reference: the folio is freed */
    } else {
      kept.push(f);
    }
  }
  list.length = 0;
  list.push(...kept);
  return nr_reclaimed;
}

