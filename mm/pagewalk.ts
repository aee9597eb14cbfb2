/*
 * mm/pagewalk.ts - the one page-table walker: walk_page_range() and
 * walk_page_vma() with per-user callbacks (struct mm_walk_ops,
 * include/linux/pagewalk.ts).
 *
 * Models mm/pagewalk.c (Linux 6.6). The walker owns the loops; a user
 * supplies only what it does with an entry. For each VMA of [start, end):
 *
 *   gap before / after a VMA      pte_hole(addr, next, -1)
 *   test_walk (or the default:    1: skip the VMA; < 0: stop
 *     VM_PFNMAP -> pte_hole(-1), skip)
 *   pre_vma
 *   VM_HUGETLB: per huge page     hugetlb_entry, or pte_hole(-1) when no
 *                                 directory reaches that level
 *   otherwise, per level          none -> pte_hole(addr, next, depth);
 *     PGD (P4D folded), PUD, PMD    else the level's *_entry, then, if a
 *                                   lower callback exists and walk.action
 *                                   is ACTION_SUBTREE, the level below
 *     PTE                         pte_entry per PTE under the PTE lock;
 *                                 a huge PMD is split first
 *   post_vma
 *
 * The first non-zero callback value stops the walk and is returned; only
 * test_walk's 1 ("skip") is swallowed. ACTION_AGAIN makes the walker look
 * at the same PUD or PMD entry again (recomputing its hole or callback).
 *
 * Differences from Linux: the P4D level is folded into the PGD (x86-64
 * with 4 levels), so p4d_entry gets the PGD pointer and no P4D hole is
 * reported; no hugepd (powerpc), no walk_page_range_novma() (no caller:
 * the model has no kernel page table), no walk_page_mapping(); a huge PUD
 * outside a hugetlb VMA does not exist here, so nothing splits PUDs.
 */
import type { mm_struct, vm_area_struct } from '../include/linux/mm_types.js';
import { PAGE_SIZE, VM_HUGETLB, VM_PFNMAP } from '../include/linux/mm.js';
import {
  PGD_LEVEL, PUD_LEVEL, PMD_LEVEL, pgd_addr_end, p4d_addr_end, pud_addr_end, pmd_addr_end, pmd_is_table,
  pud_leaf, pud_present,
} from '../include/linux/pgtable.js';
import {
  ACTION_SUBTREE, ACTION_CONTINUE, ACTION_AGAIN, PGWALK_RDLOCK, type mm_walk, type mm_walk_ops,
  type page_walk_lock,
} from '../include/linux/pagewalk.js';
import { huge_page_size } from '../include/linux/hugetlb.js';
import { EINVAL } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { find_vma } from './vma.js';
import { mmap_assert_locked, mmap_assert_write_locked } from './mmap_lock.js';
import { pte_offset_map_lock, pte_unmap_unlock } from './pgtable.js';
import { split_huge_pmd_address } from './huge_memory_split.js';
import { hstate_vma, huge_pte_offset } from './hugetlb.js';

export * from '../include/linux/pagewalk.js';

/* pte_hole depths of the 4-level table (Linux's real_depth() with a folded P4D) */
const DEPTH_PGD = 0, DEPTH_PUD = 2, DEPTH_PMD = 3;

/*
 * Each callback that may sleep returns a number or a generator; the walker
 * takes the number as it is and runs a generator to its value:
 *
 *   const r = ops.pmd_entry(...);  err = typeof r === 'number' ? r : yield* r;
 */

/* walk_pte_range() - pte_entry for each PTE of [addr, end), all under the PTE page's lock */
function walk_pte_range(addr: number, end: number, walk: mm_walk): number {
  const mm = walk.mm, pte_entry = walk.ops.pte_entry!;
  let ptep = pte_offset_map_lock(mm, addr);
  if (ptep < 0) { walk.action = ACTION_AGAIN; return 0; }    /* no PTE page after all: look again */
  const first = ptep;
  let err = 0;
  for (; addr < end; addr += PAGE_SIZE, ptep++) {
    err = pte_entry(ptep, addr, addr + PAGE_SIZE, walk);
    if (err) break;
  }
  pte_unmap_unlock(mm, first);
  return err;
}

/* walk_pmd_range() - the PMD entries of [addr, end), all in one PMD page */
function* walk_pmd_range(addr: number, end: number, walk: mm_walk): Sleepable<number> {
  const ops = walk.ops, pgd = walk.mm.pgd;
  let pmdp = pgd.lookup(addr, PMD_LEVEL);
  do {
    const next = pmd_addr_end(addr, end);
    let err = 0;
    for (;;) {                                          /* again: */
      if (pgd.load(pmdp) === 0) {
        if (ops.pte_hole !== undefined) {
          const r = ops.pte_hole(addr, next, DEPTH_PMD, walk);
          err = typeof r === 'number' ? r : yield* r;
        }
        break;
      }
      walk.action = ACTION_SUBTREE;
      if (ops.pmd_entry !== undefined) {
        const r = ops.pmd_entry(pmdp, addr, next, walk);
        err = typeof r === 'number' ? r : yield* r;
        if (err) break;
      }
      if (walk.action === ACTION_AGAIN) continue;
      if (walk.action === ACTION_CONTINUE || ops.pte_entry === undefined) break;
      if (!pmd_is_table(pgd.load(pmdp))) {
        /* pte_entry wants PTEs: a huge PMD is split first (its folio stays whole) */
        if (walk.vma !== null) yield* split_huge_pmd_address(walk.vma, addr);
        const pmd = pgd.load(pmdp);
        if (pmd === 0) continue;                        /* it went away: report the hole */
        if (!pmd_is_table(pmd)) break;                  /* nothing to split it into (hugetlb, swap PMD) */
      }
      err = walk_pte_range(addr, next, walk);
      if (err || walk.action !== ACTION_AGAIN) break;
    }
    if (err) return err;
    pmdp++;
    addr = next;
  } while (addr !== end);
  return 0;
}

/* walk_pud_range() - the PUD entries of [addr, end), all in one PUD page */
function* walk_pud_range(addr: number, end: number, walk: mm_walk): Sleepable<number> {
  const ops = walk.ops, pgd = walk.mm.pgd;
  let pudp = pgd.lookup(addr, PUD_LEVEL);
  do {
    const next = pud_addr_end(addr, end);
    let err = 0;
    for (;;) {                                          /* again: */
      const pud = pgd.load(pudp);
      if (pud === 0) {
        if (ops.pte_hole !== undefined) {
          const r = ops.pte_hole(addr, next, DEPTH_PUD, walk);
          err = typeof r === 'number' ? r : yield* r;
        }
        break;
      }
      walk.action = ACTION_SUBTREE;
      if (ops.pud_entry !== undefined) {
        const r = ops.pud_entry(pudp, addr, next, walk);
        err = typeof r === 'number' ? r : yield* r;
        if (err) break;
      }
      if (walk.action === ACTION_AGAIN) continue;
      if (walk.action === ACTION_CONTINUE || (ops.pmd_entry === undefined && ops.pte_entry === undefined)) break;
      const cur = pgd.load(pudp);                      /* pud_entry may have changed it */
      if (cur === 0) continue;
      if (pud_leaf(cur) || !pud_present(cur)) break;   /* no PMD page below a leaf */
      err = yield* walk_pmd_range(addr, next, walk);
      break;
    }
    if (err) return err;
    pudp++;
    addr = next;
  } while (addr !== end);
  return 0;
}

/* walk_p4d_range() - the folded P4D level: one entry, the PGD entry itself */
function* walk_p4d_range(pgdp: number, addr: number, end: number, walk: mm_walk): Sleepable<number> {
  const ops = walk.ops;
  const next = p4d_addr_end(addr, end);
  if (ops.p4d_entry !== undefined) {
    const r = ops.p4d_entry(pgdp, addr, next, walk);
    const err = typeof r === 'number' ? r : yield* r;
    if (err) return err;
  }
  if (ops.pud_entry === undefined && ops.pmd_entry === undefined && ops.pte_entry === undefined) return 0;
  return yield* walk_pud_range(addr, next, walk);
}

/* walk_pgd_range() - the top level of [addr, end) */
function* walk_pgd_range(addr: number, end: number, walk: mm_walk): Sleepable<number> {
  const ops = walk.ops, pgd = walk.mm.pgd;
  const descend = ops.p4d_entry !== undefined || ops.pud_entry !== undefined ||
    ops.pmd_entry !== undefined || ops.pte_entry !== undefined;
  let pgdp = pgd.lookup(addr, PGD_LEVEL);
  do {
    const next = pgd_addr_end(addr, end);
    let err = 0;
    if (pgd.load(pgdp) === 0) {
      if (ops.pte_hole !== undefined) {
        const r = ops.pte_hole(addr, next, DEPTH_PGD, walk);
        err = typeof r === 'number' ? r : yield* r;
      }
    } else {
      if (ops.pgd_entry !== undefined) {
        const r = ops.pgd_entry(pgdp, addr, next, walk);
        err = typeof r === 'number' ? r : yield* r;
      }
      if (!err && descend) err = yield* walk_p4d_range(pgdp, addr, next, walk);
    }
    if (err) return err;
    pgdp++;
    addr = next;
  } while (addr !== end);
  return 0;
}

/* walk_hugetlb_range() - hugetlb_entry per huge page of a VM_HUGETLB VMA */
function* walk_hugetlb_range(addr: number, end: number, walk: mm_walk): Sleepable<number> {
  const ops = walk.ops, sz = huge_page_size(hstate_vma(walk.vma!)), hmask = -sz;
  do {
    const boundary = (Math.floor(addr / sz) + 1) * sz;
    const next = boundary < end ? boundary : end;
    const ptep = huge_pte_offset(walk.mm, addr - (addr % sz), sz);
    let r: number | Sleepable<number> = 0;
    if (ptep >= 0) r = ops.hugetlb_entry!(ptep, hmask, addr, next, walk);
    else if (ops.pte_hole !== undefined) r = ops.pte_hole(addr, next, -1, walk);
    const err = typeof r === 'number' ? r : yield* r;
    if (err) return err;
    addr = next;
  } while (addr !== end);
  return 0;
}

/*
 * walk_page_test() - walk this VMA? The user's test_walk decides; without
 * one a VM_PFNMAP VMA (raw pfns, no struct page) is only a hole.
 * Return: 0 to walk, 1 to skip, or the hole callback's non-zero value.
 */
function* walk_page_test(start: number, end: number, walk: mm_walk): Sleepable<number> {
  const ops = walk.ops;
  if (ops.test_walk !== undefined) return ops.test_walk(start, end, walk);
  if (walk.vma!.vm_flags & VM_PFNMAP) {
    let err = 1;
    if (ops.pte_hole !== undefined) {
      const r = ops.pte_hole(start, end, -1, walk);
      err = typeof r === 'number' ? r : yield* r;
    }
    return err || 1;
  }
  return 0;
}

/* __walk_page_range() - the page tables of [start, end) inside walk.vma */
function* __walk_page_range(start: number, end: number, walk: mm_walk): Sleepable<number> {
  const ops = walk.ops;
  let err = 0;
  if (ops.pre_vma !== undefined) {
    const r = ops.pre_vma(start, end, walk);
    err = typeof r === 'number' ? r : yield* r;
    if (err) return err;
  }
  if (walk.vma!.vm_flags & VM_HUGETLB) {
    if (ops.hugetlb_entry !== undefined) err = yield* walk_hugetlb_range(start, end, walk);
  } else {
    err = yield* walk_pgd_range(start, end, walk);
  }
  ops.post_vma?.(walk);
  return err;
}

/* process_mm_walk_lock() - the mmap_lock hold the walk's ops asked for */
function process_mm_walk_lock(mm: mm_struct, walk_lock: page_walk_lock): void {
  if (walk_lock === PGWALK_RDLOCK) mmap_assert_locked(mm);
  else mmap_assert_write_locked(mm);
}

/**
 * walk_page_range() - walk the page tables of @mm over [@start, @end),
 * calling @ops for holes and entries (see the file header for the order).
 * @mm: the address space; its mmap_lock is held as @ops.walk_lock says
 * @start, @end: page-aligned, start < end
 * @ops: the user's callbacks (a frozen mm_walk_ops)
 * @priv: the user's walk state, walk.private in every callback
 *
 * Context: mmap_lock held (for write with PGWALK_WRLOCK*; BUG otherwise);
 * may sleep when a callback or a PMD split does; takes PTE locks around
 * pte_entry calls.
 * Return: 0 when the whole range was walked; -EINVAL for an empty range;
 * otherwise the first non-zero value a callback returned (test_walk's 1
 * only skips its VMA).
 */
export function* walk_page_range<T>(mm: mm_struct, start: number, end: number, ops: mm_walk_ops<T>,
                                    priv: T): Sleepable<number> {
  if (start >= end) return -EINVAL;
  process_mm_walk_lock(mm, ops.walk_lock);
  const walk: mm_walk<T> = { ops, mm, vma: null, action: ACTION_SUBTREE, private: priv };
  const w = walk as mm_walk;
  let vma: vm_area_struct | null = find_vma(mm, start);
  let err = 0;
  do {
    let next: number;
    if (vma === null || start < vma.vm_start) {        /* after the last VMA, or in a gap */
      walk.vma = null;
      next = vma === null ? end : Math.min(end, vma.vm_start);
      if (ops.pte_hole !== undefined) {
        const r = ops.pte_hole(start, next, -1, walk);
        err = typeof r === 'number' ? r : yield* r;
      }
    } else {
      walk.vma = vma;
      next = Math.min(end, vma.vm_end);
      vma = find_vma(mm, vma.vm_end);
      err = yield* walk_page_test(start, next, w);
      if (err > 0) err = 0;                             /* skip this VMA: not the caller's business */
      else if (err === 0) err = yield* __walk_page_range(start, next, w);
    }
    if (err) break;
    start = next;
  } while (start < end);
  return err;
}

/**
 * walk_page_vma() - walk_page_range() over the whole of @vma.
 * Context: as walk_page_range(). Return: as walk_page_range().
 */
export function* walk_page_vma<T>(vma: vm_area_struct, ops: mm_walk_ops<T>, priv: T): Sleepable<number> {
  const mm = vma.vm_mm;
  process_mm_walk_lock(mm, ops.walk_lock);
  const walk: mm_walk<T> = { ops, mm, vma, action: ACTION_SUBTREE, private: priv };
  const err = yield* walk_page_test(vma.vm_start, vma.vm_end, walk as mm_walk);
  if (err > 0) return 0;
  if (err < 0) return err;
  return yield* __walk_page_range(vma.vm_start, vma.vm_end, walk as mm_walk);
}
