/*
 * include/linux/hugetlb.ts - hugetlb pools: struct hstate and the
 * reservation map.
 *
 * Models include/linux/hugetlb.h. The code is mm/hugetlb.ts; the long
 * explanation is the hugetlb part of Documentation/vm/hmm.txt, Part 4.
 *
 * A hugetlb page is a folio of 2^order pages (order 9: 2 MiB, mapped by a
 * PMD leaf; order 18: 1 GiB, mapped by a PUD leaf) that never goes back
 * to the buddy allocator: the pool is filled at boot (hugepagesz=,
 * hugepages=) and a page whose last reference drops returns to its
 * hstate's free list. A mapping reserves its pages when it is created, so
 * mmap(MAP_HUGETLB) fails with -ENOMEM when the pool cannot back it, and a
 * fault can only fail (SIGBUS) for MAP_NORESERVE mappings or for the COW
 * copy a child needs after fork.
 *
 * Counts, per hstate, as /proc/meminfo prints them:
 *
 *   nr_huge_pages     HugePages_Total   pages in the pool
 *   free_huge_pages   HugePages_Free    pages on the free list
 *   resv_huge_pages   HugePages_Rsvd    free pages promised to mappings
 *
 * and free_huge_pages - resv_huge_pages is what a new reservation or an
 * unreserved fault may take.
 *
 * hugetlb pages are not counted in rss: a process's hugetlb use is
 * hugetlb_usage (HugetlbPages in /proc/<pid>/status).
 */
import type { page } from './mm_types.js';
import { PAGE_SHIFT, PAGE_SIZE } from './mm.js';

/** struct hstate - one huge page size and its pool. */
export class hstate {
  /* the pool: changed under hugetlb_lock (the boot thread or the caller's mmap_lock here) */
  nr_huge_pages = 0;
  free_huge_pages = 0;
  resv_huge_pages = 0;
  /* free folios, refcount 0 */
  readonly hugepage_freelist: page[] = [];
  constructor(readonly order: number, readonly name: string) {}
}

/** huge_page_size() - bytes of one huge page of the hstate. */
export function huge_page_size(h: hstate): number { return PAGE_SIZE * 2 ** h.order; }
/** huge_page_shift() - log2 of huge_page_size(). */
export function huge_page_shift(h: hstate): number { return h.order + PAGE_SHIFT; }
/** pages_per_huge_page() - base pages in one huge page. */
export function pages_per_huge_page(h: hstate): number { return 2 ** h.order; }

/**
 * struct resv_map - which huge-page indexes of a mapping hold a
 * reservation not yet turned into a page. A shared mapping's map belongs
 * to the file (every mapping shares it); a private mapping's to the VMA
 * that created it (the "owner"; split pieces share it, a fork child has
 * none).
 */
export interface resv_map {
  reserved: Set<number>;
  owner: unknown;               /* the mm_struct of a private map's owner, null for a file's map */
  refs: number;                 /* VMAs using a private map */
}

/** The default size when MAP_HUGETLB names none (hugepagesz= default_hugepagesz=2M). */
export const HUGETLB_DEFAULT_ORDER = 9;
export const HUGETLB_GIGANTIC_ORDER = 18;
