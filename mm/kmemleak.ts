/*
 * mm/kmemleak.ts - a teardown leak check, kmemleak in spirit.
 *
 * Linux's mm/kmemleak.c scans memory for pointers to allocated objects
 * and reports the unreferenced ones. A simulated machine can do better at
 * its end: once every task has exited (machine_teardown(), tools/ and
 * test/ helpers), nothing a process owned may still be in use. This scan
 * proves that every
 *   - RAM frame is free, or held by something that outlives processes by
 *     design: the zero page, the huge zero folio, a hugetlb pool page, a
 *     page-cache page of a file (tmpfs keeps a file's pages until it is
 *     truncated), a swap-cache page (reclaimable cache);
 *   - device page (every ZONE_DEVICE range) is idle (refcount 0: back on
 *     its driver's free list through ->folio_free);
 *   - swap slot is free, or held only by the swap cache (SWAP_HAS_CACHE
 *     with no count: reclaim frees it);
 *   - page-table directory of every address space that was torn down is
 *     gone (only the top-level directory remains).
 * Return value: one line per leaked object, empty when nothing leaked.
 *
 * Simplified: no scanning for stray references (the model knows every
 * owner); objects that are not frames (JS objects) are the GC's business.
 */
import type { mm_struct } from '../include/linux/mm_types.js';
import { folio_test_anon, folio_test_hugetlb, PageSwapCache } from '../include/linux/page-flags.js';
import { SWAP_HAS_CACHE } from '../include/linux/swap.js';
import { for_each_pfn_range, is_zero_pfn } from './page_alloc.js';
import { for_each_present_page } from './sparse.js';
import { is_huge_zero_folio } from './huge_memory.js';
import { swap_devices } from './swapfile.js';

/* at most this many objects are named per kind; the rest are counted */
const KMEMLEAK_REPORT_MAX = 8;

function report(out: string[], kind: string, items: string[]): void {
  if (items.length === 0) return;
  const shown = items.slice(0, KMEMLEAK_REPORT_MAX).join('; ');
  out.push(`${items.length} ${kind} leaked: ${shown}${items.length > KMEMLEAK_REPORT_MAX ? '; ...' : ''}`);
}

/* a frame in use that nothing process-owned explains */
function frame_leaked(pfn: number, head_anon: boolean, p: import('../include/linux/mm_types.js').page): boolean {
  if (p._refcount <= 0) return false;
  if (is_zero_pfn(pfn) || is_huge_zero_folio(p)) return false;
  const h = p.compound_head;
  if (folio_test_hugetlb(h)) return false;               /* the hugetlb pool */
  if (PageSwapCache(h)) return false;                    /* reclaimable cache */
  if (!head_anon && h.mapping !== null) return false;    /* page cache of a file */
  return true;
}

/**
 * kmemleak_scan() - after every task has exited, list what is still in
 * use that should not be.
 * @mms: the address spaces torn down (their page-table directories are
 *       checked); may be empty.
 * Context: no task alive; does not sleep. Return: one line per kind of
 * leaked object, empty if none.
 */
export function kmemleak_scan(mms: readonly mm_struct[] = []): string[] {
  const out: string[] = [];
  const ram: string[] = [], dev: string[] = [];
  for (const r of for_each_pfn_range()) {
    /* a frame whose struct page was never created was never allocated */
    for_each_present_page(r, (p) => {
      if (r.owner === 'ram') {
        if (frame_leaked(p.pfn, folio_test_anon(p.compound_head), p)) {
          ram.push(`pfn ${p.pfn} ref ${p._refcount} map ${p._mapcount + 1}${folio_test_anon(p.compound_head) ? ' anon' : ''}`);
        }
      } else if (p._refcount > 0) {
        dev.push(`${r.owner} pfn ${p.pfn} ref ${p._refcount}`);
      }
    });
  }
  report(out, 'RAM frames', ram);
  report(out, 'device pages', dev);
  const swap: string[] = [];
  for (const si of swap_devices()) {
    for (let off = 1; off < si.max; off++) {
      const v = si.swap_map[off];
      if (v !== 0 && v !== SWAP_HAS_CACHE) swap.push(`type ${si.type} offset ${off} map 0x${v.toString(16)}`);
    }
  }
  report(out, 'swap slots', swap);
  const dirs: string[] = [];
  for (const mm of mms) {
    const per = mm.pgd.stats().dirs_per_level;
    const below_top = per.slice(1).reduce((a, b) => a + b, 0);
    if (below_top > 0) dirs.push(`mm ${mm.id}: ${per.slice(1).join('/')} below the top level`);
  }
  report(out, 'page-table directories', dirs);
  return out;
}
