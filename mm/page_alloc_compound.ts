/*
 * mm/page_alloc_compound.ts - making a compound page: prep_compound_page()
 * of mm/page_alloc.c, split out of mm/page_alloc.ts (which re-exports it)
 * to keep that file under 600 lines. The buddy allocator calls it for
 * every allocation of order > 0 (alloc_pages_done()); hugetlb and
 * ZONE_DEVICE (zone_device_page_init(), as zone_device_folio_init() in
 * Linux 6.19) make their folios with it too.
 *
 * Model split (session 8, migthp): prep_compound_page() stores the head's
 * order and PG_head and each tail's compound_head (as its pfn distance to
 * the head, the section's compound_head array) and zero refcount straight
 * into the section's arrays, not through a page handle per tail
 * (pfn_to_page() and the accessors): the same stores, tail by tail in pfn
 * order, as Linux's prep_compound_tail() does them. A folio lies in one
 * section (buddy blocks and device folios are aligned and at most
 * MAX_ORDER = PFN_SECTION_SHIFT); one that did not would take the
 * accessor path. struct_page_direct(false) (TEST ONLY, mm/internal.ts) selects the
 * accessor path here and in free_zone_device_tails() (mm/memremap.ts);
 * test/mm/device_private_thp.test.ts compares the two over a THP round
 * trip to device-private memory and back. Simplified: no TAIL_MAPPING
 * poison in a tail's mapping, no _folio_nr_pages (page->order of the
 * head gives it).
 */
import type { page } from '../include/linux/mm_types.js';
import { SECTION_MASK } from '../include/linux/mm_types.js';
import { PG_head } from '../include/linux/page-flags.js';
import { pfn_to_page } from './sparse.js';
import { struct_page_paths } from './internal.js';

/**
 * prep_compound_page() - make pages [head, head + 2^order) one folio: the
 * head gets its order and PG_head, each tail (prep_compound_tail() in
 * Linux) points at the head and holds no reference. The stores go
 * straight into the section's arrays (the model split in the file
 * header); struct_page_direct(false) selects
 * prep_compound_page_helpers(), the same stores through the page
 * accessors. A folio that does not lie in one section (none does today:
 * buddy blocks and device folios are aligned and at most MAX_ORDER) takes
 * the accessor path too.
 * Context: any; the pages are the caller's (just allocated, or free device pages).
 */
export function prep_compound_page(head: page, order: number): void {
  const ms = head.section, i = head.pfn & SECTION_MASK, nr = 1 << order;
  if (!struct_page_paths.direct || i + nr > ms.nr) { prep_compound_page_helpers(head, order); return; }
  ms.order[i] = order;
  ms.flags[i] |= 1 << PG_head;
  let ch = ms.compound_head;
  if (ch === null) ch = ms.compound_head = new Int32Array(ms.nr);
  const rc = ms._refcount;
  for (let k = 1; k < nr; k++) {
    ch[i + k] = k;                     /* prep_compound_tail(): tail->compound_head = head (its pfn distance) */
    rc[i + k] = 0;                     /* set_page_count(tail, 0) */
  }
}

/* prep_compound_page() through the page accessors: the path struct_page_direct(false) selects, for the tests */
function prep_compound_page_helpers(head: page, order: number): void {
  head.order = order;
  head.flags |= 1 << PG_head;
  for (let i = 1; i < 1 << order; i++) {
    const t = pfn_to_page(head.pfn + i);
    t.compound_head = head;
    t._refcount = 0;
  }
}
