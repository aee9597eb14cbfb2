/*
 * mm/page_alloc.ts - physical memory: the page frames, their bytes, and the
 * buddy allocator.
 *
 * Models mm/page_alloc.c, mm/mm_init.c (memmap) and the refcount helpers
 * of include/linux/mm.h. The struct pages and the bytes of the frames
 * live in sections that exist only once used (mm/sparse.ts); ZONE_DEVICE
 * ranges (mm/memremap.ts) register theirs with register_pfn_range() so
 * that pfn_to_page() finds them. Like Linux's deferred struct page init,
 * the MAX_ORDER blocks never used yet are not on the free lists: they are
 * taken in pfn order from fresh_pfn up when the lists run dry, so boot
 * costs nothing per frame and a machine of 256 GiB boots at once. A
 * block the allocator merges back to MAX_ORDER (a whole free section)
 * gives its bytes back to the host.
 *
 * Two entry points, because a function that sleeps is a generator here.
 * Linux has one alloc_pages(); it may sleep exactly when the gfp has
 * __GFP_DIRECT_RECLAIM (direct reclaim, waiting for OOM victims). The
 * model splits it by the caller's context:
 *
 *   alloc_pages_sleepable()  the Sleepable twin (yield*), for callers that
 *     may sleep (faults, swap-in, migration targets, exit and RELEASE
 *     paths): direct reclaim with blockable notifier ranges, then the OOM
 *     killer; __GFP_NOFAIL sleeps and retries while OOM victims exit.
 *   alloc_pages()  plain, for callers that cannot yield: without
 *     __GFP_DIRECT_RECLAIM (GFP_NOWAIT, GFP_ATOMIC: what a caller under a
 *     spinlock uses) no direct reclaim at all, as in Linux. With it,
 *     might_alloc(): in atomic context that is a might_sleep() BUG at
 *     once, as in Linux; otherwise it may be used while no reclaim is
 *     needed, and when it is, the reclaim (mm/vmscan.ts) is a might_sleep()
 *     BUG with lockdep on (tests, fuzzing): Linux's direct reclaim sleeps
 *     and sends blockable ranges, which a caller that cannot yield cannot
 *     do. With lockdep off (benchmarks) a model fallback runs reclaim
 *     inline with non-blockable ranges and the OOM killer, nothing waits;
 *     a __GFP_NOFAIL that fails here is a BUG (it needs the sleepable path).
 *
 * The slow path (direct reclaim, the OOM killer, the bounded __GFP_NOFAIL
 * retry) is mm/page_alloc_slowpath.ts.
 *
 * Simplified: one node, one zone, no per-cpu lists, no watermarks here
 * (direct reclaim and kswapd are mm/vmscan.ts), no compaction. As in
 * Linux, the buddy lists cost no memory of their own: a free block's
 * first struct page is PageBuddy, its LRU links (unused while it is free)
 * thread the doubly linked list of its order and page->order holds
 * buddy_order(), so allocation and freeing of any order are O(order):
 *
 *   free_head[order] -> pfn A            pfn B              pfn C
 *                       flags PG_buddy   flags PG_buddy     ...
 *                       order  o         order  o
 *                       lru_next B  ->   lru_next C  ->
 *                 -1 <- lru_prev     <-  lru_prev A
 *
 * Model split (session 8): free_unref_folios() gives a run of order-0
 * folios of consecutive pfns in one section (an exit or munmap frees in
 * address order, and pages faulted in address order have consecutive
 * pfns) to __free_one_page() as the aligned blocks it merges into
 * (free_pages_run()), each page still checked and reset as Linux's
 * free_pages_prepare() does. Freeing a run page by page in ascending
 * order ends in the same state: the pages of an aligned block have their
 * buddies below the block's order inside the block, so they only merge
 * with each other until the last one completes it, and every partial
 * block put on a list meanwhile is the head of its list until it is
 * taken off again (nothing else is freed at that order before). Tested
 * against the per-page path: test/mm/page_alloc.test.ts.
 *
 * The making of a compound page (prep_compound_page()) is
 * mm/page_alloc_compound.ts, re-exported here.
 */
import { page, type mem_section, SECTION_MASK, PAGES_PER_SECTION, __pfn_to_section } from '../include/linux/mm_types.js';
import type { folio_batch } from '../include/linux/pagevec.js';
import { memory_model } from '../include/asm-generic/memory_model.js';
import { PAGE_SHIFT, PAGE_SIZE } from '../include/linux/mm.js';
import { PG_reserved, PG_buddy, PG_lru } from '../include/linux/page-flags.js';
import {
  __GFP_ZERO, __GFP_NOFAIL, __GFP_DIRECT_RECLAIM, __GFP_HIGHMEM, __GFP_NOWARN, type gfp_t,
} from '../include/linux/gfp.js';
import { FAULT_NOWARN } from '../include/linux/fault-inject.js';
import { fail_page_alloc, should_fail_ex } from '../lib/fault-inject.js';
import { WMARK_LOW } from '../include/linux/mmzone.js';
import { charge } from '../lib/sim/clock.js';
import { PAGE_ZERO_NS } from '../lib/sim/costs.js';
import { count_event } from '../lib/sim/trace.js';
import { might_sleep, type Sleepable } from '../lib/sim/sched.js';
import { BUG } from '../include/asm-generic/bug.js';
import { lockdep_map, lock_map_acquire, lock_map_release, lockdep_enabled } from '../lib/locking/lockdep.js';
import { __alloc_pages_slowpath, __alloc_pages_slowpath_sleepable } from './page_alloc_slowpath.js';
import { prep_compound_page } from './page_alloc_compound.js';
import {
  sparse_init, sparse_free_section_bytes, sparse_section, pfn_to_page, kmap_local_page, zero_pages, copy_pages,
} from './sparse.js';

export const MAX_ORDER = 10;          /* largest block: 2^10 pages = 4 MiB */

interface mem_state {
  nr_pages: number;
  fresh_pfn: number;                  /* MAX_ORDER blocks from here up were never used: free, on no list */
  free_head: Int32Array;              /* per order: first free block pfn or -1 (free_area[order].free_list) */
  nr_free: number;
  zero_page: page;
  watermark: number[];                /* [WMARK_MIN, WMARK_LOW, WMARK_HIGH] in pages (include/linux/mmzone.ts) */
  stats: { pgalloc: number; pgfree: number; alloc_fail: number };
}

let mem: mem_state;

/**
 * mem_init() - boot the physical memory: nr_pages frames of RAM, all free
 * except the zero page (pfn 0, reserved and never freed).
 * @nr_pages: RAM size in pages; rounded up to a multiple of 2^MAX_ORDER.
 */
export function mem_init(nr_pages: number): void {
  memory_model.pfn_to_page = pfn_to_page;     /* the headers' pfn_to_page() reads this memory map */
  const block = 1 << MAX_ORDER;
  nr_pages = Math.ceil(nr_pages / block) * block;
  sparse_init(nr_pages);
  mem = {
    nr_pages, fresh_pfn: 0,
    free_head: new Int32Array(MAX_ORDER + 1).fill(-1),
    nr_free: nr_pages, zero_page: null as unknown as page, watermark: [0, 0, 0],
    stats: { pgalloc: 0, pgfree: 0, alloc_fail: 0 },
  };
  /* carve the zero page out of the first block */
  const zp = __alloc_pages_nocharge(0);
  if (zp === null || zp.pfn !== 0) BUG('zero page is not pfn 0');
  zp.flags |= 1 << PG_reserved;
  zp._refcount = 1;
  mem.zero_page = zp;
}

/** totalram_pages() - frames of RAM. */
export function totalram_pages(): number { return mem.nr_pages; }
/** machine_booted() - has mem_init() run in this process (is there a machine to check)? */
export function machine_booted(): boolean { return mem !== undefined; }


/** nr_free_pages() - frames on the free lists. */
export function nr_free_pages(): number { return mem.nr_free; }
/** pageAllocStats() - allocation counters (pgalloc, pgfree, alloc_fail). */
export function pageAllocStats(): Readonly<mem_state['stats']> { return mem.stats; }

/** ZERO_PAGE() - the shared page of zeroes mapped read-only by read faults. */
export function ZERO_PAGE(_addr = 0): page { return mem.zero_page; }
/** is_zero_pfn() - true for the zero page's pfn. */
export function is_zero_pfn(pfn: number): boolean { return pfn === 0; }
export function is_zero_page(p: page): boolean { return is_zero_pfn(p.pfn); }

/*
 * The struct page arrays of a frame in a free block: its section exists
 * (take_fresh_block() created it before the block went on a list).
 */
function buddy_section(pfn: number): mem_section {
  return __pfn_to_section(pfn) ?? sparse_section(pfn);
}

/* list_add() - put the free block at @pfn (frame @i of @ms) on the list of @order (__add_to_free_list): set_buddy_order, __SetPageBuddy */
function list_add(ms: mem_section, i: number, pfn: number, order: number): void {
  const head = mem.free_head[order];
  ms.lru_next[i] = head;
  ms.lru_prev[i] = -1;
  ms.order[i] = order;
  ms.flags[i] |= 1 << PG_buddy;
  if (head >= 0) buddy_section(head).lru_prev[head & SECTION_MASK] = pfn;
  mem.free_head[order] = pfn;
}

/* list_del() - take the free block at frame @i of @ms off the list of @order (del_page_from_free_list): its links, order and PG_buddy cleared */
function list_del(ms: mem_section, i: number, order: number): void {
  const next = ms.lru_next[i], prev = ms.lru_prev[i];
  if (prev >= 0) buddy_section(prev).lru_next[prev & SECTION_MASK] = next; else mem.free_head[order] = next;
  if (next >= 0) buddy_section(next).lru_prev[next & SECTION_MASK] = prev;
  ms.lru_next[i] = -1;
  ms.lru_prev[i] = -1;
  ms.order[i] = 0;
  ms.flags[i] &= ~(1 << PG_buddy);
}

/* page_is_buddy() - frame @i of @ms heads a free block of @order (PageBuddy and buddy_order() == order) */
function page_is_buddy(ms: mem_section, i: number, order: number): boolean {
  return (ms.flags[i] & (1 << PG_buddy)) !== 0 && ms.order[i] === order;
}

/*
 * free_block() - return a block to the free lists, merging with free
 * buddies (__free_one_page()). A block and its buddies below MAX_ORDER
 * lie in one section (MAX_ORDER = PFN_SECTION_SHIFT, blocks are aligned),
 * so the section is looked up once.
 */
function free_block(pfn: number, order: number): void {
  const ms = buddy_section(pfn);
  mem.nr_free += 1 << order;
  while (order < MAX_ORDER) {
    const buddy = pfn ^ (1 << order);
    if (buddy >= mem.nr_pages || !page_is_buddy(ms, buddy & SECTION_MASK, order)) break;
    list_del(ms, buddy & SECTION_MASK, order);
    pfn &= ~(1 << order);
    order++;
  }
  list_add(ms, pfn & SECTION_MASK, pfn, order);
  if (order === MAX_ORDER) sparse_free_section_bytes(pfn);
}

/* Put the next never-used MAX_ORDER block on its free list; false when there is none. */
function take_fresh_block(): boolean {
  if (mem.fresh_pfn >= mem.nr_pages) return false;
  list_add(sparse_section(mem.fresh_pfn), 0, mem.fresh_pfn, MAX_ORDER);
  mem.fresh_pfn += 1 << MAX_ORDER;
  return true;
}

function __alloc_pages_nocharge(order: number): page | null {
  let o = order;
  while (o <= MAX_ORDER && mem.free_head[o] < 0) o++;
  if (o > MAX_ORDER) {
    if (!take_fresh_block()) return null;
    o = MAX_ORDER;
  }
  const pfn = mem.free_head[o], ms = buddy_section(pfn), i = pfn & SECTION_MASK;
  list_del(ms, i, o);
  while (o > order) {          /* split: keep the low half, free the high half */
    o--;
    list_add(ms, i + (1 << o), pfn + (1 << o), o);
  }
  mem.nr_free -= 1 << order;
  ms._refcount[i] = 1;                  /* set_page_refcounted(), into the section found above */
  /*
   * A new handle, past the handle cache (mem_section.page_new()): the
   * frame was free, so no cached handle of it is worth keeping, and a
   * store into the cache costs a write barrier per allocation (the
   * migration loops allocate one page per entry).
   */
  return ms.page_new(pfn);
}

/**
 * setup_per_zone_wmarks() - derive the watermarks from vm.min_free_kbytes
 * as Linux does: min is the reserve, low and high sit above it by a
 * quarter of min or 0.1% of RAM (watermark_scale_factor 10), whichever
 * is larger. 0 turns them off.
 */
export function setup_per_zone_wmarks(min_free_kbytes: number): void {
  const min = Math.floor(min_free_kbytes / (PAGE_SIZE / 1024));
  const tmp = min === 0 ? 0 : Math.max(min >> 2, Math.floor(mem.nr_pages * 10 / 10000));
  mem.watermark = [min, min + tmp, min + 2 * tmp];
}

/** wmark_pages() - a watermark (WMARK_MIN, WMARK_LOW, WMARK_HIGH) in pages. */
export function wmark_pages(which: number): number { return mem.watermark[which]; }

/**
 * zone_watermark_ok() - would free memory stay at or above mark after an
 * allocation of 2^order pages?
 */
export function zone_watermark_ok(order: number, mark: number): boolean {
  return mem.nr_free - (1 << order) >= mark;
}

/** get_page_from_freelist() - allocate unless it takes free memory below mark. Return: the page or null. */
export function get_page_from_freelist(order: number, mark: number): page | null {
  return zone_watermark_ok(order, mark) ? __alloc_pages_nocharge(order) : null;
}

/**
 * should_fail_alloc_page() - fail_page_alloc (lib/fault-inject.ts): should
 * this allocation fail on purpose? Never a __GFP_NOFAIL one; by default
 * (ignore-gfp-highmem, ignore-gfp-wait, min-order 1, as Linux's
 * mm/fail_page_alloc.c) not a user page nor one that may reclaim.
 * Return: true if alloc_pages() must return NULL.
 */
export function should_fail_alloc_page(gfp: gfp_t, order: number): boolean {
  if (order < fail_page_alloc.min_order) return false;
  if (gfp & __GFP_NOFAIL) return false;
  if (fail_page_alloc.ignore_gfp_highmem && (gfp & __GFP_HIGHMEM)) return false;
  if (fail_page_alloc.ignore_gfp_reclaim && (gfp & __GFP_DIRECT_RECLAIM)) return false;
  return should_fail_ex(fail_page_alloc.attr, 1 << order, (gfp & __GFP_NOWARN) ? FAULT_NOWARN : 0);
}

/* the common end of both entry points: count, make the folio, clear it; or count the failure */
function alloc_pages_done(p: page | null, gfp: gfp_t, order: number): page | null {
  if (p === null) {
    mem.stats.alloc_fail++;
    count_event('alloc_fail');
    return null;
  }
  mem.stats.pgalloc += 1 << order;
  if (order > 0) prep_compound_page(p, order);
  if (gfp & __GFP_ZERO) clear_pages(p, 1 << order);
  return p;
}

/**
 * alloc_pages() - allocate 2^order contiguous frames, without sleeping.
 * @gfp: GFP_* flags; __GFP_ZERO clears the bytes, __GFP_COMP makes a folio.
 * @order: 0 for one page, HPAGE_PMD_ORDER for a PMD-sized folio.
 *
 * The first page comes back with _refcount 1; for a compound allocation
 * the tail pages point at it through compound_head.
 *
 * The fast path allocates while free memory stays above the low
 * watermark; below it, __alloc_pages_slowpath() wakes kswapd and, under
 * the min watermark, reclaims directly when @gfp allows it
 * (include/linux/mmzone.ts draws the watermarks; they are all 0 unless
 * booted with min_free_kbytes).
 *
 * Context: never sleeps; with __GFP_DIRECT_RECLAIM not in atomic context
 * (might_sleep() BUG), and a BUG under lockdep if it needs direct reclaim
 * (see the file header). Callers that may sleep use alloc_pages_sleepable().
 * Return: the first page, or null when memory is exhausted and reclaim
 * could not free enough, or fail_page_alloc failed it (the caller turns
 * that into -ENOMEM/VM_FAULT_OOM). A __GFP_NOFAIL allocation that fails
 * here is a BUG.
 */
export function alloc_pages(gfp: gfp_t, order = 0): page | null {
  might_alloc(gfp);                /* a blocking gfp: not in atomic context; the fs_reclaim lock order */
  let p: page | null = null;
  if (!should_fail_alloc_page(gfp, order)) {
    p = get_page_from_freelist(order, mem.watermark[WMARK_LOW]);
    if (p === null) p = __alloc_pages_slowpath(gfp, order);
  }
  if (p === null && (gfp & __GFP_NOFAIL)) {
    BUG('__GFP_NOFAIL allocation failed in a caller that cannot sleep (alloc_pages): out of memory, the OOM killer found no victim');
  }
  return alloc_pages_done(p, gfp, order);
}

/*
 * fs_reclaim - the lockdep class of "may enter direct reclaim" (Linux's
 * fs_reclaim map, mm/page_alloc.c). might_alloc() touches it for every
 * blocking gfp, recording "held lock -> fs_reclaim"; a blockable
 * notifier invalidation holds it around its subscribers' callbacks
 * (mm/mmu_notifier.ts), recording "fs_reclaim -> the subscriber's lock".
 * So a driver that allocates with a blocking gfp while holding a lock its
 * invalidate callback takes (reclaim would deadlock on it) is a lockdep
 * warning even if this run never reclaimed. Simplified: Linux keeps a
 * separate __mmu_notifier_invalidate_range_start_map and primes the order
 * fs_reclaim -> that map at registration; one class here gives the same
 * inversion, which the model's pairwise lockdep can see.
 */
export const fs_reclaim_map = new lockdep_map('fs_reclaim');

/* might_alloc() - the debug checks of an allocation with @gfp: might_sleep() and the fs_reclaim order */
function might_alloc(gfp: gfp_t): void {
  if (!(gfp & __GFP_DIRECT_RECLAIM)) return;
  might_sleep();
  if (!lockdep_enabled()) return;
  lock_map_acquire(fs_reclaim_map);
  lock_map_release(fs_reclaim_map);
}

/**
 * alloc_pages_sleepable() - alloc_pages() for a caller that may sleep:
 * Linux's alloc_pages() with a gfp that has __GFP_DIRECT_RECLAIM.
 * @gfp: GFP_* flags (see alloc_pages()); __GFP_NOFAIL never returns null.
 * @order: as alloc_pages().
 *
 * Direct reclaim sends blockable notifier ranges (a subscriber may sleep
 * and its page is reclaimed); when it cannot free enough the OOM killer
 * runs and the allocation is retried; __GFP_NOFAIL waits for OOM victims
 * to exit (see the file header for the bound). Without
 * __GFP_DIRECT_RECLAIM it is alloc_pages() and does not sleep.
 * Context: may sleep (might_sleep(): a BUG in atomic context when @gfp
 * may reclaim); not under a lock a notifier subscriber takes.
 * Return: the first page, or null (only without __GFP_NOFAIL) when memory
 * is exhausted, the caller is an OOM victim, or fail_page_alloc failed it.
 */
export function* alloc_pages_sleepable(gfp: gfp_t, order = 0): Sleepable<page | null> {
  if (!(gfp & __GFP_DIRECT_RECLAIM)) return alloc_pages(gfp, order);
  might_alloc(gfp);
  let p: page | null = null;
  if (!should_fail_alloc_page(gfp, order)) {
    p = get_page_from_freelist(order, mem.watermark[WMARK_LOW]);
    if (p === null) p = yield* __alloc_pages_slowpath_sleepable(gfp, order);
  }
  return alloc_pages_done(p, gfp, order);
}

/**
 * alloc_pages_fastpath() - the first get_page_from_freelist() of
 * alloc_pages_sleepable() (Linux's __alloc_pages() fast path, above the
 * low watermark) as a plain call, for callers that allocate in a loop and
 * would otherwise pay a Sleepable frame per page:
 * `alloc_pages_fastpath(gfp, order) ?? (yield* alloc_pages_sleepable(gfp, order))`.
 * @gfp, @order: as alloc_pages_sleepable().
 * Context: as alloc_pages_sleepable() (might_alloc() when @gfp may reclaim).
 * Return: the page, counted and prepared as alloc_pages_sleepable() would;
 * or null, having changed and counted nothing, when the fast path is not
 * enough (below the low watermark, no block of @order) or fail_page_alloc
 * is armed (its decision belongs to the full call).
 */
export function alloc_pages_fastpath(gfp: gfp_t, order = 0): page | null {
  if (fail_page_alloc.attr.probability !== 0 || !zone_watermark_ok(order, mem.watermark[WMARK_LOW])) return null;
  might_alloc(gfp);                /* as the full call: might_sleep() and the fs_reclaim lock order */
  const p = __alloc_pages_nocharge(order);
  if (p === null) return null;
  should_fail_alloc_page(gfp, order);       /* counts the hit, as the full call would; cannot fire unarmed */
  return alloc_pages_done(p, gfp, order);
}

/** alloc_page_sleepable() - alloc_pages_sleepable() of one page. Context: may sleep. */
export function* alloc_page_sleepable(gfp: gfp_t): Sleepable<page | null> {
  return yield* alloc_pages_sleepable(gfp, 0);
}

/** folio_alloc_sleepable() - a folio of 2^order pages from alloc_pages_sleepable(). Context: may sleep. */
export function* folio_alloc_sleepable(gfp: gfp_t, order: number): Sleepable<page | null> {
  return yield* alloc_pages_sleepable(gfp, order);
}

/** alloc_page() - allocate one page. */
export function alloc_page(gfp: gfp_t): page | null { return alloc_pages(gfp, 0); }

/** folio_alloc() - allocate a folio of 2^order pages. */
export function folio_alloc(gfp: gfp_t, order: number): page | null { return alloc_pages(gfp, order); }

/*
 * reset_page() - the struct page of a frame being freed back to its free
 * state (free_pages_prepare(): flags, mapping, memcg, counts), written
 * straight into its section's arrays: a free block's frames are one
 * section (blocks are aligned and at most MAX_ORDER = PFN_SECTION_SHIFT).
 */
function reset_page(ms: mem_section, i: number): void {
  ms.flags[i] = 0;
  ms.mapping[i] = null;
  ms.index[i] = 0;
  ms._mapcount[i] = -1;
  ms.order[i] = 0;
  if (ms.private !== null) ms.private[i] = 0;
  if (ms.memcg !== null) ms.memcg[i] = 0;
  if (ms._entire_mapcount !== null) ms._entire_mapcount[i] = -1;
  if (ms._pincount !== null) ms._pincount[i] = 0;
  if (ms.compound_head !== null) ms.compound_head[i] = 0;
}

/*
 * free_page_is_bad() - the frame being freed (@i of @ms) is not RAM, is
 * the zero page, or is still free, mapped or on an LRU list; bad_page()
 * then names the first such fault. As in Linux, the check is one test on
 * the fast path and the report is out of line (which also keeps
 * __free_pages() small enough for the JIT to inline into its callers).
 */
function free_page_is_bad(ms: mem_section, i: number, pfn: number): boolean {
  return pfn >= mem.nr_pages || is_zero_pfn(pfn) || (ms.flags[i] & (1 << PG_buddy | 1 << PG_lru)) !== 0 ||
    ms._mapcount[i] !== -1;
}

/* bad_page() - the BUG of a bad free, naming what free_page_is_bad() found (checked in this order) */
function bad_page(ms: mem_section, i: number, pfn: number): never {
  if (pfn >= mem.nr_pages) BUG(`__free_pages of non-RAM pfn ${pfn}`);
  if (is_zero_pfn(pfn)) BUG('freeing the zero page');
  const flags = ms.flags[i];
  if (flags & (1 << PG_buddy)) BUG(`freeing free page pfn ${pfn}`);
  if (ms._mapcount[i] !== -1) BUG(`freeing mapped page pfn ${pfn} mapcount ${ms._mapcount[i] + 1}`);
  BUG(`freeing page on LRU pfn ${pfn}`);
}

/**
 * __free_pages() - return a block of 2^order frames to the allocator.
 * The caller dropped the last reference. Freeing a mapped page, a page on
 * the LRU or the zero page is a simulator bug and throws.
 */
export function __free_pages(p: page, order = 0): void {
  const pfn = p.pfn, ms = p.section, i = pfn & SECTION_MASK;
  if (free_page_is_bad(ms, i, pfn)) bad_page(ms, i, pfn);
  for (let j = 0; j < 1 << order; j++) reset_page(ms, i + j);
  ms._refcount[i] = 0;
  mem.stats.pgfree += 1 << order;
  free_block(pfn, order);
}

/*
 * Observers of the last put of a RAM page, before it goes back to the
 * buddy allocator (tools: the race checkers; a tracepoint in spirit, like
 * trace_mm_page_free). An observer returning true took the page. Core mm
 * does not use them: __folio_put() calls its subsystems directly.
 */
type free_hook = (p: page) => boolean;
const free_hooks: free_hook[] = [];

/** register_free_hook() - add an observer of page frees (tools; never reset). */
export function register_free_hook(fn: free_hook): void { free_hooks.push(fn); }

/*
 * free_hooks_registered() - does some observer watch frees? No Linux
 * twin (mm/swap_release.ts frees runs only when none does).
 * Context: any. Return: true if one is registered.
 */
export function free_hooks_registered(): boolean { return free_hooks.length !== 0; }

/* free_hook_took() - show @f to the observers (if any); true if one took it (mm/page_ref.ts too) */
export function free_hook_took(f: page): boolean {
  if (free_hooks.length === 0) return false;
  for (const fn of free_hooks) if (fn(f)) return true;
  return false;
}

/**
 * free_unref_folios() - give the folios of a batch back to the allocator:
 * the end of folios_put_refs() (mm/swap.ts), after the LRU and memcg were
 * left. The free observers see each folio as in __folio_put(). A run of
 * order-0 folios of consecutive pfns in one section goes to
 * free_pages_run() (the model split in the header).
 * Context: any; no lock needed (one zone, the model's zone lock is implicit).
 */
export function free_unref_folios(fb: folio_batch): void {
  const runs = free_hooks.length === 0 && free_unref_folios_params.runs;
  for (let i = 0; i < fb.nr;) {
    const f = fb.folios[i];
    const ms = f.section, pfn = f.pfn, x = pfn & SECTION_MASK;
    let n = 1;
    if (runs && ms.order[x] === 0) {
      while (i + n < fb.nr && x + n < PAGES_PER_SECTION && fb.folios[i + n].pfn === pfn + n && ms.order[x + n] === 0) n++;
    }
    if (n > 1) free_pages_run(ms, pfn, n);
    else if (free_hooks.length === 0 || !free_hook_took(f)) __free_pages(f, ms.order[x]);
    i += n;
  }
}

/**
 * free_unref_folios_params - TEST ONLY: @runs false frees every folio
 * with its own __free_pages(), the path free_pages_run() is tested against.
 */
export const free_unref_folios_params = { runs: true };

/**
 * free_pages_run() - __free_pages() of the @n order-0 pages of
 * consecutive pfns from @pfn, all in section @ms, in ascending order: each
 * page checked and reset (free_pages_prepare()), then the run handed to
 * __free_one_page() (free_block()) as its largest aligned blocks, lowest
 * first. No Linux twin (the model split in the header). A bad page sends
 * the whole run through __free_pages() page by page, which BUGs at it
 * with the pages before it freed, as the per-page path would.
 * Context: any (one zone: the zone lock is implicit); the caller dropped
 * the last reference of each page and took them off the LRU and memcg.
 */
export function free_pages_run(ms: mem_section, pfn: number, n: number): void {
  const x = pfn & SECTION_MASK, end = pfn + n;
  for (let k = 0; k < n; k++) {
    if (free_page_is_bad(ms, x + k, pfn + k)) {
      for (let j = 0; j < n; j++) __free_pages(ms.page_new(pfn + j), 0);
      return;
    }
  }
  for (let k = 0; k < n; k++) {
    reset_page(ms, x + k);
    ms._refcount[x + k] = 0;
  }
  mem.stats.pgfree += n;
  while (pfn < end) {
    let order = 0;        /* the largest block at pfn that is aligned and inside the run */
    while (order < MAX_ORDER && (pfn & ((2 << order) - 1)) === 0 && pfn + (2 << order) <= end) order++;
    free_block(pfn, order);
    pfn += 1 << order;
  }
}

export {
  get_page, folio_get, get_page_unless_zero, put_page, folio_put, folio_ref_add,
} from './page_ref.js';

export { NOFAIL_RETRY_NS, NOFAIL_WAIT_NS } from './page_alloc_slowpath.js';
export { prep_compound_page } from './page_alloc_compound.js';
export {
  type pfn_range, register_pfn_range, unregister_pfn_range, for_each_pfn_range, pfn_valid, pfn_to_page, page_to_pfn,
  is_ram_page, page_backing, kmap_local_page, ram_content_bytes,
} from './sparse.js';

function clear_pages(p: page, nr: number): void {
  zero_pages(p, nr);
  charge(PAGE_ZERO_NS * nr);
}

/** clear_highpage() - fill a page with zeroes. */
export function clear_highpage(p: page): void { clear_pages(p, 1); }

/** copy_highpage() - copy one page's bytes to another. */
export function copy_highpage(to: page, from: page): void {
  copy_pages(to, from, 1);
}

/**
 * copy_highpages() - copy @nr pages of consecutive frames from @from to
 * @to: what a loop of copy_highpage() over a folio does (folio_copy()),
 * done section by section in bulk.
 */
export function copy_highpages(to: page, from: page, nr: number): void {
  copy_pages(to, from, nr);
}

/** clear_highpages() - fill @nr pages of consecutive frames from @p with zeroes. */
export function clear_highpages(p: page, nr: number): void { clear_pages(p, nr); }

/** pages_identical() - compare two pages' bytes (KSM-style; used by tests and checks). */
export function pages_identical(a: page, b: page): boolean {
  const x = kmap_local_page(a), y = kmap_local_page(b);
  for (let i = 0; i < PAGE_SIZE; i++) if (x[i] !== y[i]) return false;
  return true;
}

export { PAGE_SHIFT };
