/*
 * mm/swap.ts - the LRU lists: adding folios, aging them, isolating them
 * for reclaim and putting them back.
 *
 * Models mm/swap.c (folio_add_lru, folio_add_lru_vma, folio_mark_accessed,
 * folio_activate, folio_mark_lazyfree and the release of a folio from the
 * LRU when its last reference goes), include/linux/mm_inline.h
 * (folio_lru_list, lruvec_add_folio, lruvec_del_folio) and the isolation
 * helpers of mm/vmscan.c (folio_isolate_lru, folio_putback_lru). The lists
 * and their rules are drawn in include/linux/mmzone.ts.
 *
 * Who puts folios on the LRU: the fault path for every new anonymous
 * folio (folio_add_lru_vma), swap-in for every folio
 * read from swap, tmpfs for every new shmem folio (folio_add_lru), and a
 * THP split for the pages of a folio that was on a list
 * (lru_add_split_folio). New folios start on the inactive list; a second look
 * (folio_mark_accessed, or reclaim seeing the accessed bit twice) moves
 * them to the active list.
 *
 * Simplified: no per-CPU folio batches. Linux queues additions and
 * activations in cpu_fbatches (holding a reference) and moves them under
 * one lru_lock round, lru_add_drain() flushing them; here a folio is on
 * its list as soon as folio_add_lru() returns, so refcounts never carry
 * a batch reference. A caller that adds many folios in a row may fill a
 * folio_batch itself and move it with folio_batch_move_lru(fb, lru_add)
 * (device migration's finalize does): one lru_lock hold per lruvec run,
 * as Linux's drain of its lru_add batch.
 */
import type { page, vm_area_struct } from '../include/linux/mm_types.js';
import { SECTION_MASK, __pfn_to_section, type mem_section } from '../include/linux/mm_types.js';
import {
  LRU_INACTIVE_ANON, LRU_ACTIVE, LRU_FILE, LRU_UNEVICTABLE, type lru_list, type lruvec,
} from '../include/linux/mmzone.js';
import {
  PageLRU, SetPageLRU, ClearPageLRU, TestClearPageLRU, PageActive, SetPageActive, ClearPageActive,
  PageReferenced, SetPageReferenced, TestClearPageReferenced, PageSwapBacked, SetPageSwapBacked, ClearPageSwapBacked,
  PageSwapCache, PageUnevictable, folio_test_anon, PG_unevictable, PG_swapbacked, PG_active,
} from '../include/linux/page-flags.js';
import { BUG } from '../include/asm-generic/bug.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event } from '../lib/sim/trace.js';
import { put_page, free_unref_folios, is_zero_page } from './page_alloc.js';
import { folio_lruvec, mem_cgroup_uncharge_folios } from './memcontrol.js';
import { folio_batch_reinit, type folio_batch } from '../include/linux/pagevec.js';
import { is_zone_device_page } from '../include/linux/memremap.js';
import { folio_test_hugetlb } from '../include/linux/page-flags.js';
import { free_zone_device_folio } from './memremap.js';
import { free_huge_folio } from './hugetlb.js';
import { folio_unqueue_deferred_split } from './huge_memory_split.js';

/** folio_lru_list() - the list a folio belongs on, from its flags. */
export function folio_lru_list(f: page): lru_list {
  return flags_lru_list(f.flags);
}

/*
 * flags_lru_list() - folio_lru_list() of a folio whose flags word is
 * @flags. No Linux twin: its body, for the section-array paths.
 * Context: any. Return: the list.
 */
function flags_lru_list(flags: number): lru_list {
  if (flags & (1 << PG_unevictable)) return LRU_UNEVICTABLE;
  let lru = flags & (1 << PG_swapbacked) ? LRU_INACTIVE_ANON : LRU_INACTIVE_ANON + LRU_FILE;
  if (flags & (1 << PG_active)) lru += LRU_ACTIVE;
  return lru;
}

/** folio_is_file_lru() - the folio ages on the file lists (not swap-backed). */
export function folio_is_file_lru(f: page): boolean {
  return !PageSwapBacked(f);
}

/*
 * Link f at the head (or tail) of its list. Caller holds lv.lru_lock. The
 * links are pfns in the struct pages, relinked through the sections'
 * arrays as lruvec_del_folio() does: no page handle is made.
 */
function list_add(lv: lruvec, f: page, tail: boolean): void {
  const lru = folio_lru_list(f);
  const l = lv.lists[lru];
  const ms = f.section, pfn = f.pfn, i = pfn & SECTION_MASK;
  if (tail) {
    const t = l.tail_pfn;
    ms.lru_prev[i] = t;
    ms.lru_next[i] = -1;
    if (t >= 0) __pfn_to_section(t)!.lru_next[t & SECTION_MASK] = pfn; else l.head_pfn = pfn;
    l.tail_pfn = pfn;
  } else {
    const h = l.head_pfn;
    ms.lru_next[i] = h;
    ms.lru_prev[i] = -1;
    if (h >= 0) __pfn_to_section(h)!.lru_prev[h & SECTION_MASK] = pfn; else l.tail_pfn = pfn;
    l.head_pfn = pfn;
  }
  lv.nr_pages[lru] += 1 << ms.order[i];
}

/** lruvec_add_folio() - put f at the head of its list. Caller holds lv.lru_lock. */
export function lruvec_add_folio(lv: lruvec, f: page): void { list_add(lv, f, false); }

/** lruvec_add_folio_tail() - put f at the tail: the next one reclaim looks at. */
export function lruvec_add_folio_tail(lv: lruvec, f: page): void { list_add(lv, f, true); }

/**
 * lruvec_del_folio() - unlink f from its list. The links are pfns in the
 * struct pages (include/linux/mm_types.ts): the neighbours are relinked
 * through their sections' arrays and the list's ends are pfns too, so no
 * page handle is made. Caller holds lv.lru_lock.
 */
export function lruvec_del_folio(lv: lruvec, f: page): void {
  lruvec_del_pfn(lv, f.section, f.pfn);
}

/**
 * lruvec_del_pfn() - lruvec_del_folio() of the folio at @pfn, whose
 * struct page is in section @ms. No Linux twin: the body of
 * lruvec_del_folio() by pfn, for mm/swap_release.ts.
 * Context: lv.lru_lock held.
 */
export function lruvec_del_pfn(lv: lruvec, ms: mem_section, pfn: number): void {
  const i = pfn & SECTION_MASK;
  const lru = flags_lru_list(ms.flags[i]);
  const l = lv.lists[lru];
  const prev = ms.lru_prev[i], next = ms.lru_next[i];
  if (prev >= 0) __pfn_to_section(prev)!.lru_next[prev & SECTION_MASK] = next; else l.head_pfn = next;
  if (next >= 0) __pfn_to_section(next)!.lru_prev[next & SECTION_MASK] = prev; else l.tail_pfn = prev;
  ms.lru_prev[i] = -1;
  ms.lru_next[i] = -1;
  lv.nr_pages[lru] -= 1 << ms.order[i];
  if (lv.nr_pages[lru] < 0) BUG(`lru list ${lru} size underflow removing pfn ${pfn}`);
}

/** lruvec_lru_size() - pages on one list. */
export function lruvec_lru_size(lv: lruvec, lru: lru_list): number { return lv.nr_pages[lru]; }

/**
 * folio_add_lru() - a new folio joins the inactive list of its memcg.
 * Context: any; takes the lru_lock. The folio must not be on an LRU.
 */
export function folio_add_lru(f: page): void {
  if (PageLRU(f)) BUG(`folio_add_lru: pfn ${f.pfn} already on the LRU`);
  const lv = folio_lruvec(f);
  spin_lock(lv.lru_lock);
  lru_add(lv, f);
  spin_unlock(lv.lru_lock);
}

/**
 * lru_add() - the move function of folio_add_lru() (for
 * folio_batch_move_lru()): PG_lru set, the folio on the head of its list.
 * Context: lv.lru_lock held; the folio on no LRU.
 */
export function lru_add(lv: lruvec, f: page): void {
  SetPageLRU(f);
  lruvec_add_folio(lv, f);
}

/**
 * folio_batch_move_lru() - @move_fn on every folio of @fb under the
 * lru_lock: the lock of the first folio's lruvec, kept while the next
 * folio is on the same lruvec (folio_lruvec_relock_irqsave()), as Linux
 * drains its per-CPU batches. With lru_add() it is folio_add_lru() of
 * each folio (Linux's cpu_fbatches.lru_add). The batch is empty afterwards.
 * Simplified: the caller fills @fb itself (Linux's cpu_fbatches.lru_add,
 * filled by folio_add_lru(), holds a reference per folio that
 * folios_put() drops after the move; here the caller's own references
 * keep the folios alive, so the batch takes none).
 * Context: any; takes the lru_lock. With lru_add(), no folio may be on an LRU.
 */
export function folio_batch_move_lru(fb: folio_batch, move_fn: (lv: lruvec, f: page) => void): void {
  let locked: lruvec | null = null;
  for (let i = 0; i < fb.nr; i++) {
    const f = fb.folios[i];
    if (move_fn === lru_add && PageLRU(f)) BUG(`folio_add_lru: pfn ${f.pfn} already on the LRU`);
    const lv = folio_lruvec(f);
    if (lv !== locked) {
      if (locked !== null) spin_unlock(locked.lru_lock);
      spin_lock(lv.lru_lock);
      locked = lv;
    }
    move_fn(lv, f);
  }
  if (locked !== null) spin_unlock(locked.lru_lock);
  folio_batch_reinit(fb);
}

/**
 * folio_add_lru_vma() - folio_add_lru() for a folio just mapped into vma
 * (Linux sends folios of VM_LOCKED VMAs to the unevictable list; mlock is
 * not modelled).
 *
 * A new anonymous folio is swap-backed: folio_add_new_anon_rmap() says so
 * in Linux for every size. It is asserted again here because the list is
 * chosen from that flag, and an anonymous folio without it would be taken
 * for a lazily freed one (MADV_FREE) and discarded by reclaim.
 */
export function folio_add_lru_vma(f: page, _vma: vm_area_struct): void {
  if (folio_test_anon(f) && !PageSwapBacked(f)) {
    count_event('lru_add_anon_not_swapbacked');
    SetPageSwapBacked(f);
  }
  folio_add_lru(f);
}

/**
 * folio_isolate_lru() - take a folio off its LRU for reclaim or migration,
 * with a reference the caller gives back through folio_putback_lru().
 * Return: false if it was not on an LRU (someone else isolated it).
 */
export function folio_isolate_lru(f: page): boolean {
  const lv = folio_lruvec(f);
  spin_lock(lv.lru_lock);
  const was = TestClearPageLRU(f);
  if (was) {
    lruvec_del_folio(lv, f);
    f._refcount++;                     /* folio_get under the lock: the folio is live, it was on the LRU */
  }
  spin_unlock(lv.lru_lock);
  return was;
}

/**
 * folio_putback_lru() - return an isolated folio to the head of its list
 * (PG_active picks the list) and drop the isolation reference; if that
 * was the last one the folio is freed (it was unmapped meanwhile).
 */
export function folio_putback_lru(f: page): void {
  const lv = folio_lruvec(f);
  spin_lock(lv.lru_lock);
  SetPageLRU(f);
  lruvec_add_folio(lv, f);
  spin_unlock(lv.lru_lock);
  put_page(f);
}

/* Move a folio on the LRU to the active list (folio_activate's lru_activate). */
function lru_activate(f: page): void {
  const lv = folio_lruvec(f);
  spin_lock(lv.lru_lock);
  if (PageLRU(f) && !PageActive(f) && !PageUnevictable(f)) {
    lruvec_del_folio(lv, f);
    SetPageActive(f);
    lruvec_add_folio(lv, f);
    count_event('pgactivate', 1 << f.order);
  }
  spin_unlock(lv.lru_lock);
}

/** folio_activate() - a folio on the inactive list proved it is used: activate it. */
export function folio_activate(f: page): void { lru_activate(f); }

/**
 * folio_mark_accessed() - the kernel used the folio (a read(), a GUP):
 * inactive,unreferenced -> inactive,referenced -> active,unreferenced.
 * Mapped folios are aged through their PTEs' accessed bits instead.
 */
export function folio_mark_accessed(f: page): void {
  if (!PageReferenced(f)) {
    SetPageReferenced(f);
  } else if (!PageActive(f) && !PageUnevictable(f)) {
    if (PageLRU(f)) lru_activate(f); else SetPageActive(f);
    TestClearPageReferenced(f);
  }
}
export const mark_page_accessed = folio_mark_accessed;

/**
 * folio_mark_lazyfree() - MADV_FREE: a clean anonymous folio moves to the
 * inactive FILE list with PG_swapbacked cleared, so reclaim frees it
 * without writing it to swap unless it is dirtied again first.
 */
export function folio_mark_lazyfree(f: page): void {
  if (!folio_test_anon(f) || !PageSwapBacked(f) || PageSwapCache(f) || PageUnevictable(f)) return;
  const lv = folio_lruvec(f);
  spin_lock(lv.lru_lock);
  if (PageLRU(f)) {
    lruvec_del_folio(lv, f);
    ClearPageActive(f);
    TestClearPageReferenced(f);
    ClearPageSwapBacked(f);
    lruvec_add_folio(lv, f);
    count_event('pglazyfree', 1 << f.order);
  }
  spin_unlock(lv.lru_lock);
}

/**
 * __page_cache_release() - the last reference to @f went away
 * (__folio_put()): unlink it from its LRU list. The caller uncharges its
 * memcg after this, as the memcg names the list. Context: takes the lru_lock.
 */
export function __page_cache_release(f: page): void {
  if (!PageLRU(f)) return;
  const lv = folio_lruvec(f);
  spin_lock(lv.lru_lock);
  lruvec_del_folio(lv, f);
  ClearPageLRU(f);
  spin_unlock(lv.lru_lock);
}

/*
 * __page_cache_release_relock() - __page_cache_release() inside a batch:
 * the lru_lock of @locked (or none) is held and kept while the next folio
 * is on the same lruvec (folio_lruvec_relock_irqsave() in Linux).
 * Return: the lruvec whose lock is held now, or null.
 */
function __page_cache_release_relock(f: page, locked: lruvec | null): lruvec | null {
  if (!PageLRU(f)) return locked;
  const lv = folio_lruvec(f);
  if (lv !== locked) {
    if (locked !== null) spin_unlock(locked.lru_lock);
    spin_lock(lv.lru_lock);
  }
  lruvec_del_folio(lv, f);
  ClearPageLRU(f);
  return lv;
}

/**
 * folios_put_refs() - drop @refs[i] references (1 each without @refs) on
 * each folio of the batch; the folios whose last reference went are
 * freed together: off the deferred split queue and their LRU lists under
 * one lru_lock hold, uncharged from their memcgs in one step
 * (mem_cgroup_uncharge_folios()), then handed to the allocator
 * (free_unref_folios()). ZONE_DEVICE folios go back to their driver and
 * hugetlb folios to their pool, as __folio_put() does. The batch is
 * empty afterwards.
 * Context: takes the lru_lock; no PTE lock held.
 */
export function folios_put_refs(fb: folio_batch, refs: readonly number[] | null): void {
  let locked: lruvec | null = null, j = 0;
  for (let i = 0; i < fb.nr; i++) {
    const f = fb.folios[i];
    const nr = refs === null ? 1 : refs[i];
    const ref = f._refcount - nr;               /* folio_ref_sub_and_test(): one read, one write */
    if (ref < 0) BUG(`put_page underflow pfn ${f.pfn}`);
    if (is_zone_device_page(f)) {
      if (locked !== null) { spin_unlock(locked.lru_lock); locked = null; }
      f._refcount = ref;
      if (ref === 0) free_zone_device_folio(f);
      continue;
    }
    f._refcount = ref;
    if (ref > 0) continue;
    if (is_zero_page(f)) BUG('zero page refcount dropped to 0');
    if (folio_test_hugetlb(f)) {
      if (locked !== null) { spin_unlock(locked.lru_lock); locked = null; }
      free_huge_folio(f);
      continue;
    }
    folio_unqueue_deferred_split(f);
    locked = __page_cache_release_relock(f, locked);
    fb.folios[j++] = f;
  }
  if (locked !== null) spin_unlock(locked.lru_lock);
  fb.nr = j;
  if (j > 0) {
    mem_cgroup_uncharge_folios(fb);
    free_unref_folios(fb);
  }
  folio_batch_reinit(fb);
}

/**
 * lru_add_split_folio() - a large folio on the LRU was split (mm/huge_memory_split.ts):
 * each new small folio joins the list right behind the head. The list
 * already counts all the pages of the folio, so sizes do not change. A
 * head off the LRU (isolated) leaves its tails to be added like new folios.
 */
export function lru_add_split_folio(head: page, tail: page): void {
  if (PageLRU(tail)) BUG(`lru_add_split_folio: tail pfn ${tail.pfn} already on the LRU`);
  if (!PageLRU(head)) { folio_add_lru(tail); return; }
  const lv = folio_lruvec(head);
  const l = lv.lists[folio_lru_list(head)];
  spin_lock(lv.lru_lock);
  tail.lru_prev = head;
  tail.lru_next = head.lru_next;
  if (head.lru_next !== null) head.lru_next.lru_prev = tail; else l.tail = tail;
  head.lru_next = tail;
  SetPageLRU(tail);
  spin_unlock(lv.lru_lock);
}
