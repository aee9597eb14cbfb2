/*
 * include/linux/pagewalk.ts - struct mm_walk_ops and struct mm_walk: the
 * callbacks a user of walk_page_range() (mm/pagewalk.ts) fills.
 *
 * Models include/linux/pagewalk.h. Entry "pointers" (pgdp .. ptep) are
 * gpt entry pointers of mm.pgd (mm/pgtable.ts): read them with
 * walk.mm.pgd.load(p). Addresses [addr, next) are what the entry covers
 * inside the walked range.
 *
 * Return values, for every callback that returns a number:
 *   0    go on;
 *   > 0  stop the walk; walk_page_range() returns the value (a caller's
 *        private code, e.g. "fault this span and walk again");
 *   < 0  stop the walk with that -errno.
 * test_walk() is the exception: 1 skips the VMA, 0 walks it, < 0 fails.
 *
 * Callbacks that may sleep (pgd_entry .. pmd_entry, pte_hole,
 * hugetlb_entry, pre_vma) may be generator functions (Sleepable<number>):
 * the walker runs them with yield*. pte_entry runs under the PTE page's
 * lock and test_walk decides synchronously, so both return a plain number.
 *
 * Lock order: mmap_lock (held by the caller, checked per walk_lock) ->
 * PTE lock (taken by the walker around pte_entry calls).
 */
import type { mm_struct, vm_area_struct } from './mm_types.js';
import type { Sleepable } from './sched.js';

/** What a callback returns: a number, or a generator that yields until it has one. */
export type walk_ret = number | Sleepable<number>;

/*
 * enum page_walk_action - what the walker does after pud_entry/pmd_entry
 * returned 0 (the walker sets ACTION_SUBTREE before each call):
 */
export type page_walk_action = 0 | 1 | 2;
export const ACTION_SUBTREE: page_walk_action = 0;    /* descend to the next level (if a lower callback is set) */
export const ACTION_CONTINUE: page_walk_action = 1;   /* the callback handled the entry: go to the next one */
export const ACTION_AGAIN: page_walk_action = 2;      /* the entry changed under the callback: look at it again */

/*
 * enum page_walk_lock - which mmap_lock hold the walk requires (asserted
 * at entry). Per-VMA locks are not modelled: WRLOCK and WRLOCK_VERIFY both
 * assert mmap_lock held for write, which in Linux implies the VMA locks.
 */
export type page_walk_lock = 0 | 1 | 2;
export const PGWALK_RDLOCK: page_walk_lock = 0;         /* mmap_lock held for read (or write) */
export const PGWALK_WRLOCK: page_walk_lock = 1;         /* mmap_lock held for write; Linux also write-locks each VMA */
export const PGWALK_WRLOCK_VERIFY: page_walk_lock = 2;  /* mmap_lock held for write; Linux verifies each VMA is write-locked */

/** struct mm_walk - the state of one walk, passed to every callback. */
export interface mm_walk<T = unknown> {
  readonly ops: mm_walk_ops<T>;
  readonly mm: mm_struct;
  vma: vm_area_struct | null;       /* the VMA being walked; null in a gap between VMAs */
  action: page_walk_action;         /* set by pud_entry / pmd_entry, read by the walker */
  readonly private: T;              /* the caller's walk state */
}

/**
 * struct mm_walk_ops - the callbacks of one kind of walk. Users define one
 * frozen object per kind (hmm_walk_ops, migrate_vma_walk_ops, ...) with
 * only the callbacks they need; a level without a callback below it is
 * not entered.
 */
export interface mm_walk_ops<T = unknown> {
  /* a present PGD entry (the P4D level is folded: p4d_entry gets the same pointer) */
  pgd_entry?(pgdp: number, addr: number, next: number, walk: mm_walk<T>): walk_ret;
  p4d_entry?(p4dp: number, addr: number, next: number, walk: mm_walk<T>): walk_ret;
  /* a non-empty PUD entry: a directory, or a 1 GiB leaf; may set walk.action */
  pud_entry?(pudp: number, addr: number, next: number, walk: mm_walk<T>): walk_ret;
  /* a non-empty PMD entry: a PTE page, a huge leaf, or a swap-type PMD; may set walk.action */
  pmd_entry?(pmdp: number, addr: number, next: number, walk: mm_walk<T>): walk_ret;
  /* every PTE of the range, none included, with the PTE lock held: must not sleep */
  pte_entry?(ptep: number, addr: number, next: number, walk: mm_walk<T>): number;
  /*
   * [addr, next) has no entry at @depth (0 PGD, 2 PUD, 3 PMD), or is
   * outside any VMA, or in a VM_PFNMAP VMA without test_walk (depth -1)
   */
  pte_hole?(addr: number, next: number, depth: number, walk: mm_walk<T>): walk_ret;
  /* each huge page of a VM_HUGETLB VMA whose upper directories exist (the entry may be none) */
  /* @hmask: -(huge page size), i.e. ~(size - 1); the page starts at addr - (addr % -hmask) */
  hugetlb_entry?(ptep: number, hmask: number, addr: number, next: number, walk: mm_walk<T>): walk_ret;
  /* walk this VMA? 0 yes, 1 skip it, < 0 fail the walk */
  test_walk?(addr: number, next: number, walk: mm_walk<T>): number;
  /* before and after the page tables of each walked VMA */
  pre_vma?(start: number, end: number, walk: mm_walk<T>): walk_ret;
  post_vma?(walk: mm_walk<T>): void;
  readonly walk_lock: page_walk_lock;
}
