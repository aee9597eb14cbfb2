/*
 * mm/swap_release.ts - folios_put_refs() on a batch of pfns: the release
 * half of a zap (munmap, exit, MADV_DONTNEED) on the section arrays.
 *
 * Model split (session 9, exit3; Documentation/vm/hmm.txt Part 17, "session
 * 9, exit3"). Linux's mmu_gather holds encoded page pointers, and
 * tlb_batch_pages_flush() -> free_pages_and_swap_cache() ->
 * folios_put_refs() -> mem_cgroup_uncharge_folios() -> free_unref_folios()
 * walks them in folio batches. In the model a page pointer is a pfn (a
 * handle object is made on demand, include/linux/mm_types.ts), so the
 * gather (mm/zap.ts) holds pfns in a typed array, and the release path
 * names each folio by its head pfn in a struct folio_pfn_batch
 * (include/linux/pagevec.ts) and does every step of the Linux functions on
 * the section arrays, in Linux's order, with no page handle per folio:
 *
 *   free_pages_and_swap_cache()       mm/swap_state.ts: head pfn, free_swap_cache(), batch
 *   folios_put_refs_pfn()             this file: refcount, ZONE_DEVICE, zero page, hugetlb,
 *                                     deferred split, LRU (one lru_lock hold per lruvec run)
 *   mem_cgroup_uncharge_folios_pfn()  mm/memcontrol.ts: page_counter per memcg run, page->memcg
 *   free_unref_folios_pfn()           this file: runs to free_pages_run(), else __free_pages()
 *
 * The rare cases (a folio in the swap cache, a ZONE_DEVICE or hugetlb
 * folio, a large folio on the deferred split queue, a free observer) make
 * a handle and call the same functions as the handle path. With
 * struct_page_direct(false) (TEST ONLY, mm/internal.ts)
 * free_pages_and_swap_cache() makes a handle per folio and takes the
 * handle path, folios_put_refs() of mm/swap.ts; test/mm/zap_release.test.ts
 * runs one workload both ways and compares every struct page, nr_free,
 * counters, LRU lists, memcg usage and page tables.
 */
import { SECTION_MASK, PAGES_PER_SECTION, __pfn_to_section, memcg_of_slot } from '../include/linux/mm_types.js';
import type { lruvec } from '../include/linux/mmzone.js';
import type { mem_cgroup } from '../include/linux/memcontrol.js';
import { PG_lru, PG_hugetlb } from '../include/linux/page-flags.js';
import type { folio_pfn_batch } from '../include/linux/pagevec.js';
import { BUG } from '../include/asm-generic/bug.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import {
  is_zero_pfn, __free_pages, free_pages_run, free_hooks_registered, free_hook_took, free_unref_folios_params,
} from './page_alloc.js';
import { mem_cgroup_lruvec, mem_cgroup_uncharge_folios_pfn } from './memcontrol.js';
import { lruvec_del_pfn } from './swap.js';
import { free_zone_device_folio } from './memremap.js';
import { free_huge_folio } from './hugetlb.js';
import { folio_unqueue_deferred_split } from './huge_memory_split.js';

/**
 * folios_put_refs_pfn() - folios_put_refs() of a batch of pfns: drop
 * @fb.refs[i] references on the folio at @fb.pfns[i]; the folios whose
 * last reference went are freed together, as folios_put_refs() does:
 * ZONE_DEVICE folios back to their driver and hugetlb folios to their
 * pool at once; the rest off the deferred split queue and their LRU lists
 * under one lru_lock hold per run of one lruvec, then uncharged
 * (mem_cgroup_uncharge_folios_pfn()) and handed to the allocator
 * (free_unref_folios_pfn()). The body of folios_put_refs() by pfn (the
 * model split in the file header). The batch is empty afterwards.
 * Context: takes the lru_lock; no PTE lock held.
 */
export function folios_put_refs_pfn(fb: folio_pfn_batch): void {
  const pfns = fb.pfns, refs = fb.refs;
  let locked: lruvec | null = null, j = 0;
  for (let k = 0; k < fb.nr; k++) {
    const pfn = pfns[k], ms = __pfn_to_section(pfn)!, x = pfn & SECTION_MASK;
    const ref = ms._refcount[x] - refs[k];         /* folio_ref_sub_and_test(): one read, one write */
    if (ref < 0) BUG(`put_page underflow pfn ${pfn}`);
    if ((ms.pgmap_of === null ? ms.pgmap : ms.pgmap_of[x]) !== null) {       /* is_zone_device_page() */
      if (locked !== null) { spin_unlock(locked.lru_lock); locked = null; }
      ms._refcount[x] = ref;
      if (ref === 0) free_zone_device_folio(ms.page_new(pfn));
      continue;
    }
    ms._refcount[x] = ref;
    if (ref > 0) continue;
    if (is_zero_pfn(pfn)) BUG('zero page refcount dropped to 0');
    const flags = ms.flags[x];
    if (flags & (1 << PG_hugetlb)) {
      if (locked !== null) { spin_unlock(locked.lru_lock); locked = null; }
      free_huge_folio(ms.page_new(pfn));
      continue;
    }
    if (ms.order[x] !== 0) folio_unqueue_deferred_split(ms.page_new(pfn));
    if (flags & (1 << PG_lru)) {                     /* __page_cache_release(), relocking as Linux does */
      const slots = ms.memcg;
      const lv = mem_cgroup_lruvec(slots === null ? null : memcg_of_slot(slots[x]) as mem_cgroup | null);
      if (lv !== locked) {
        if (locked !== null) spin_unlock(locked.lru_lock);
        spin_lock(lv.lru_lock);
        locked = lv;
      }
      lruvec_del_pfn(lv, ms, pfn);
      ms.flags[x] = flags & ~(1 << PG_lru);
    }
    pfns[j++] = pfn;
  }
  if (locked !== null) spin_unlock(locked.lru_lock);
  fb.nr = j;
  if (j > 0) {
    mem_cgroup_uncharge_folios_pfn(fb);
    free_unref_folios_pfn(fb);
  }
  fb.nr = 0;
}

/**
 * free_unref_folios_pfn() - free_unref_folios() of a batch of pfns: a run
 * of order-0 folios of consecutive pfns in one section goes to
 * free_pages_run() (the model split of mm/page_alloc.ts), any other folio
 * to the free observers, if any, and __free_pages(), as
 * free_unref_folios() does. Here rather than in mm/page_alloc.ts to keep
 * that file under 600 lines.
 * Context: any; no lock needed (one zone, the zone lock is implicit).
 */
export function free_unref_folios_pfn(fb: folio_pfn_batch): void {
  const hooks = free_hooks_registered(), runs = !hooks && free_unref_folios_params.runs, pfns = fb.pfns, nr = fb.nr;
  for (let i = 0; i < nr;) {
    const pfn = pfns[i], ms = __pfn_to_section(pfn)!, x = pfn & SECTION_MASK;
    let n = 1;
    if (runs && ms.order[x] === 0) {
      while (i + n < nr && x + n < PAGES_PER_SECTION && pfns[i + n] === pfn + n && ms.order[x + n] === 0) n++;
    }
    if (n > 1) {
      free_pages_run(ms, pfn, n);
    } else {
      const f = ms.page_new(pfn);
      if (!hooks || !free_hook_took(f)) __free_pages(f, ms.order[x]);
    }
    i += n;
  }
}
