/*
 * mm/page_ref.ts - references on folios: get_page(), put_page() and the
 * release of a folio whose last reference went away (__folio_put()).
 *
 * Models the reference helpers of include/linux/mm.h and
 * include/linux/page_ref.h, and __folio_put() of mm/swap.c. Split out
 * of mm/page_alloc.ts (session 8), which re-exports every name, so
 * callers import them from either file. The batched release of many
 * folios (folios_put_refs()) is mm/swap.ts; the buddy allocator that
 * takes the frames back is mm/page_alloc.ts.
 */
import type { page } from '../include/linux/mm_types.js';
import { folio_test_hugetlb } from '../include/linux/page-flags.js';
import { is_zone_device_page } from '../include/linux/memremap.js';
import { BUG } from '../include/asm-generic/bug.js';
import { preempt_point } from '../lib/sim/sched.js';
import { __free_pages, is_zero_pfn, free_hook_took } from './page_alloc.js';
import { free_zone_device_folio } from './memremap.js';
import { free_huge_folio } from './hugetlb.js';
import { __page_cache_release } from './swap.js';
import { folio_unqueue_deferred_split } from './huge_memory_split.js';
import { mem_cgroup_uncharge } from './memcontrol.js';

/*
 * __folio_put() - the last reference to @f went away: a ZONE_DEVICE folio
 * goes back to its driver, a hugetlb folio to its pool; any other leaves
 * the deferred split queue, its LRU list and its memcg, and is freed.
 */
function __folio_put(f: page): void {
  folio_unqueue_deferred_split(f);
  if (is_zone_device_page(f)) { free_zone_device_folio(f); return; }
  if (folio_test_hugetlb(f)) { free_huge_folio(f); return; }
  __page_cache_release(f);
  mem_cgroup_uncharge(f);
  if (free_hook_took(f)) return;           /* the observers of page frees (tools), if any */
  __free_pages(f, f.order);
}

/** get_page() - take a reference on the page's folio. */
export function get_page(p: page): void {
  const h = p.compound_head;
  if (h._refcount <= 0) page_ref_bug('get_page on free page', p);
  h._refcount++;
}

/* the BUG of a reference taken on a free page or dropped below zero (out of line: keeps the callers small) */
function page_ref_bug(what: string, p: page): never {
  BUG(`${what} pfn ${p.pfn}`);
}

/** folio_get() - take a reference on a folio. */
export const folio_get = get_page;

/** get_page_unless_zero() - take a reference unless the page is being freed. */
export function get_page_unless_zero(p: page): boolean {
  const h = p.compound_head;
  if (h._refcount <= 0) return false;
  h._refcount++;
  return true;
}

/**
 * put_page() - drop a reference; the last one frees the folio (or hands a
 * ZONE_DEVICE page back to its driver: __folio_put()).
 */
export function put_page(p: page): void {
  const h = p.compound_head;
  if (h._refcount <= 0) page_ref_bug('put_page underflow', p);
  if (--h._refcount > 0) { preempt_point('put_page'); return; }
  if (is_zero_pfn(h.pfn)) BUG('zero page refcount dropped to 0');
  __folio_put(h);
}

/** folio_put() - drop a reference on a folio. */
export const folio_put = put_page;

/** folio_ref_add() / folio_ref_sub(): bulk reference changes that must not free. */
export function folio_ref_add(f: page, nr: number): void { f._refcount += nr; }
