/*
 * include/linux/mmzone.ts - LRU lists (struct lruvec) and zone watermarks.
 *
 * Models the parts of include/linux/mmzone.h and include/linux/mm_inline.h
 * that reclaim uses. The machine has one node with one zone, so a lruvec
 * belongs to a memory cgroup only (Linux has one per memcg per node).
 *
 * Each lruvec has five lists. A folio is on at most one of them, and the
 * list follows from its flags, which is why a flag that selects the list
 * (PG_active, PG_swapbacked, PG_unevictable) only changes while the folio
 * is off the LRU:
 *
 *   LRU_INACTIVE_ANON   PG_swapbacked, !PG_active    anon and shmem folios,
 *   LRU_ACTIVE_ANON     PG_swapbacked,  PG_active    reclaimed by swapping
 *   LRU_INACTIVE_FILE  !PG_swapbacked, !PG_active    page cache and lazily
 *   LRU_ACTIVE_FILE    !PG_swapbacked,  PG_active    freed (MADV_FREE) anon
 *   LRU_UNEVICTABLE     PG_unevictable               never reclaimed
 *
 * Lists are doubly linked through page.lru_prev/lru_next. New folios go to
 * the head; reclaim takes from the tail:
 *
 *   head (most recently added) <-> ... <-> tail (scanned first)
 *
 * Locking: lruvec.lru_lock (a spinlock) protects the lists, nr_pages and
 * PG_lru; it nests inside the page-table lock and the folio lock, and no
 * folio reference is dropped while holding it (a last put frees the folio,
 * which takes it again).
 *
 * Watermarks, in pages (setup_per_zone_wmarks, mm/page_alloc.ts):
 *
 *   free pages
 *     ^
 *     |  high  kswapd stops here
 *     |  low   an allocation that would go below wakes kswapd
 *     |  min   an allocation that would go below reclaims directly
 *     |        (one that cannot reclaim may take half of what is left)
 *     0
 */
import type { page } from './mm_types.js';
import { pfn_to_page } from '../asm-generic/memory_model.js';
import type { spinlock_t } from './spinlock_types.js';

/* enum lru_list */
export const LRU_BASE = 0;
export const LRU_ACTIVE = 1;
export const LRU_FILE = 2;
export const LRU_INACTIVE_ANON = LRU_BASE;
export const LRU_ACTIVE_ANON = LRU_BASE + LRU_ACTIVE;
export const LRU_INACTIVE_FILE = LRU_BASE + LRU_FILE;
export const LRU_ACTIVE_FILE = LRU_BASE + LRU_FILE + LRU_ACTIVE;
export const LRU_UNEVICTABLE = 4;
export const NR_LRU_LISTS = 5;
export type lru_list = number;

export const lru_list_names = ['inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable'] as const;

/** is_file_lru() - the list holds folios that are not swap-backed. */
export function is_file_lru(lru: lru_list): boolean { return lru === LRU_INACTIVE_FILE || lru === LRU_ACTIVE_FILE; }
/** is_active_lru() - the list is an active one. */
export function is_active_lru(lru: lru_list): boolean { return lru === LRU_ACTIVE_ANON || lru === LRU_ACTIVE_FILE; }

/* enum zone_watermarks */
export const WMARK_MIN = 0;
export const WMARK_LOW = 1;
export const WMARK_HIGH = 2;
export const NR_WMARK = 3;

/**
 * struct lru_list_head - one LRU list: both ends, for O(1) add at the
 * head and isolation at the tail. The ends are pfns (-1: empty), like the
 * links in the struct pages (include/linux/mm_types.ts lru_prev/lru_next),
 * so the hot paths that relink a list (mm/swap.ts) make no page handle;
 * @head and @tail read them as pages.
 */
export class lru_list_head {
  head_pfn = -1;
  tail_pfn = -1;
  get head(): page | null { return this.head_pfn < 0 ? null : pfn_to_page(this.head_pfn); }
  set head(v: page | null) { this.head_pfn = v === null ? -1 : v.pfn; }
  get tail(): page | null { return this.tail_pfn < 0 ? null : pfn_to_page(this.tail_pfn); }
  set tail(v: page | null) { this.tail_pfn = v === null ? -1 : v.pfn; }
}

/**
 * struct lruvec - the LRU lists of one memory cgroup.
 * @owner: the mem_cgroup (include/linux/memcontrol.ts) these lists belong to.
 * @lru_lock: a spinlock made by the caller (mm/ creates locks; include/ only names them).
 */
export class lruvec {
  /* protected by lru_lock: the five lists, their sizes in pages, and PG_lru of the folios on them */
  readonly lists: lru_list_head[] = [];
  readonly nr_pages = new Array<number>(NR_LRU_LISTS).fill(0);

  constructor(readonly owner: unknown, readonly lru_lock: spinlock_t) {
    for (let i = 0; i < NR_LRU_LISTS; i++) this.lists.push(new lru_list_head());
  }
}

/* allocations above this order are "costly": they fail rather than invoke the OOM killer */
export const PAGE_ALLOC_COSTLY_ORDER = 3;
