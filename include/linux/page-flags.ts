/*
 * include/linux/page-flags.ts - the bits of page->flags and their tests.
 *
 * Models include/linux/page-flags.h. Bit numbers follow the order of
 * enum pageflags; only the flags this simulator uses are defined. The
 * tests are plain functions named as in Linux (PageLocked, SetPageDirty,
 * folio_test_lru ...), so a reader can grep for them.
 */
import type { page } from './mm_types.js';

export const PG_locked = 0;        /* page is locked: someone is doing I/O or migration on it */
export const PG_writeback = 1;     /* page is under writeback */
export const PG_referenced = 2;    /* recently accessed (second-chance LRU) */
export const PG_uptodate = 3;      /* contents are valid */
export const PG_dirty = 4;         /* contents differ from backing store */
export const PG_lru = 5;           /* page is on an LRU list */
export const PG_head = 6;          /* first page of a compound page (folio) */
export const PG_active = 7;        /* on the active LRU list */
export const PG_workingset = 8;
export const PG_owner_priv_1 = 9;  /* owner's use; PG_swapcache for anon */
export const PG_reserved = 10;     /* never freed, never on LRU (zero page) */
export const PG_private = 11;      /* page->private is in use */
export const PG_swapbacked = 12;   /* backed by swap (anon and shmem) */
export const PG_unevictable = 13;
export const PG_mlocked = 14;
export const PG_hwpoison = 15;     /* hardware poisoned: any access is SIGBUS */
export const PG_anon_exclusive = 16; /* anon page mapped by exactly one process, may be reused on write fault */
export const PG_swapcache = PG_owner_priv_1;
/*
 * A hugetlb folio (head page). Linux keeps this in page->page_type
 * (PGTY_hugetlb), not in the flags; a high bit stands for it here, clear
 * of the bits above that other subsystems may still take.
 */
export const PG_hugetlb = 28;
/*
 * A free block's first frame, on a buddy free list (mm/page_alloc.ts):
 * Linux's PageBuddy, also a page type (PGTY_buddy) there. While it is
 * set, page->lru links the block into its free list and page->order is
 * the block's order (buddy_order(), page_private in Linux).
 */
export const PG_buddy = 27;

function test(p: page, bit: number): boolean { return (p.flags & (1 << bit)) !== 0; }
function set(p: page, bit: number): void { p.flags |= 1 << bit; }
function clear(p: page, bit: number): void { p.flags &= ~(1 << bit); }
function test_and_set(p: page, bit: number): boolean { const was = test(p, bit); set(p, bit); return was; }
function test_and_clear(p: page, bit: number): boolean { const was = test(p, bit); clear(p, bit); return was; }

export const PageLocked = (p: page) => test(p, PG_locked);
export const __SetPageLocked = (p: page) => set(p, PG_locked);
export const __ClearPageLocked = (p: page) => clear(p, PG_locked);
export const TestSetPageLocked = (p: page) => test_and_set(p, PG_locked);
export const PageDirty = (p: page) => test(p, PG_dirty);
export const SetPageDirty = (p: page) => set(p, PG_dirty);
export const ClearPageDirty = (p: page) => clear(p, PG_dirty);
export const TestClearPageDirty = (p: page) => test_and_clear(p, PG_dirty);
export const PageUptodate = (p: page) => test(p, PG_uptodate);
export const SetPageUptodate = (p: page) => set(p, PG_uptodate);
export const ClearPageUptodate = (p: page) => clear(p, PG_uptodate);
export const PageLRU = (p: page) => test(p, PG_lru);
export const SetPageLRU = (p: page) => set(p, PG_lru);
export const ClearPageLRU = (p: page) => clear(p, PG_lru);
export const TestClearPageLRU = (p: page) => test_and_clear(p, PG_lru);
export const PageActive = (p: page) => test(p, PG_active);
export const SetPageActive = (p: page) => set(p, PG_active);
export const ClearPageActive = (p: page) => clear(p, PG_active);
export const PageReferenced = (p: page) => test(p, PG_referenced);
export const SetPageReferenced = (p: page) => set(p, PG_referenced);
export const TestClearPageReferenced = (p: page) => test_and_clear(p, PG_referenced);
export const PageReserved = (p: page) => test(p, PG_reserved);
export const SetPageReserved = (p: page) => set(p, PG_reserved);
export const PageSwapBacked = (p: page) => test(p, PG_swapbacked);
export const SetPageSwapBacked = (p: page) => set(p, PG_swapbacked);
export const ClearPageSwapBacked = (p: page) => clear(p, PG_swapbacked);
export const PageSwapCache = (p: page) => test(p, PG_swapcache) && test(p, PG_swapbacked);
export const SetPageSwapCache = (p: page) => set(p, PG_swapcache);
export const ClearPageSwapCache = (p: page) => clear(p, PG_swapcache);
export const PageHWPoison = (p: page) => test(p, PG_hwpoison);
export const SetPageHWPoison = (p: page) => set(p, PG_hwpoison);
export const PageWriteback = (p: page) => test(p, PG_writeback);
export const SetPageWriteback = (p: page) => set(p, PG_writeback);
export const ClearPageWriteback = (p: page) => clear(p, PG_writeback);
export const PageHead = (p: page) => test(p, PG_head);
export const PageAnonExclusive = (p: page) => test(p, PG_anon_exclusive);
export const SetPageAnonExclusive = (p: page) => set(p, PG_anon_exclusive);
export const ClearPageAnonExclusive = (p: page) => clear(p, PG_anon_exclusive);
export const PageMlocked = (p: page) => test(p, PG_mlocked);
export const PageUnevictable = (p: page) => test(p, PG_unevictable);
export const folio_test_hugetlb = (p: page) => test(p, PG_hugetlb);
export const PageBuddy = (p: page) => test(p, PG_buddy);
export const __folio_set_hugetlb = (p: page) => set(p, PG_hugetlb);
export const __folio_clear_hugetlb = (p: page) => clear(p, PG_hugetlb);

/* folio spellings of the same tests: a folio is its head page here */
export const folio_test_locked = PageLocked;
export const folio_test_dirty = PageDirty;
export const folio_test_lru = PageLRU;
export const folio_test_uptodate = PageUptodate;
export const folio_test_swapcache = PageSwapCache;
export const folio_test_swapbacked = PageSwapBacked;
export const folio_mark_uptodate = SetPageUptodate;
export const folio_test_large = (p: page) => p.order > 0;
/* anonymous: the folio's mapping is an anon_vma (a page of a large folio asks its head) */
export const folio_test_anon = (p: page) => { const m = p.compound_head.mapping; return m !== null && m.kind === 'anon'; };
export const PageAnon = folio_test_anon;
