/*
 * mm/memremap.ts - ZONE_DEVICE memory: struct pages for device memory.
 *
 * Models mm/memremap.c (memremap_pages, memunmap_pages,
 * free_zone_device_folio, zone_device_page_init) and the
 * request_free_mem_region() of kernel/resource.c. A driver describes its
 * memory with a dev_pagemap (include/linux/memremap.ts) and gets one
 * struct page per frame; core mm then maps, refcounts, rmaps and migrates
 * those pages like anonymous memory, except that they never sit on the
 * LRU and never go back to the buddy allocator: the last put_page() hands
 * them to the driver through pgmap->ops->folio_free().
 *
 * Simplified: the struct pages and the bytes of a range come from
 * page_alloc.register_pfn_range(), which also places the range above RAM
 * (so request_free_mem_region() only reserves a name and a size); there is
 * no percpu_ref: pgmap.ref counts the pages handed out with
 * zone_device_page_init(), memunmap_pages() marks the pagemap dying
 * (percpu_ref_kill) and sleeps until the last page comes back
 * (wait_for_completion(&pgmap->done) in Linux), as mm/memremap.c does.
 *
 * Bytes: a device-coherent page's bytes are what the CPU reads and writes
 * through its PTE (page_backing() gives them). A device-private page's
 * bytes are "device memory": the CPU never maps them, the driver may keep
 * the device's copy of the data there (or elsewhere, as lib/test_hmm does
 * with a backing RAM page).
 *
 * Model split (session 8, mig4k): free_zone_device_folio() clears the
 * struct page on its section's arrays rather than through the page
 * accessors (the same stores); struct_page_direct(false) (TEST ONLY,
 * mm/internal.ts) selects free_zone_device_folio_helpers(), and
 * test/mm/migrate_device_collect.test.ts compares the two.
 *
 * Model split (session 8, migthp): a device folio is made with
 * prep_compound_page() (mm/page_alloc.ts, which stores each tail on the
 * section's arrays), as zone_device_folio_init() does in Linux 6.19, and
 * free_zone_device_tails() points the tails back at themselves on the
 * section's compound_head array, without a page handle per tail.
 * struct_page_direct(false) (TEST ONLY, mm/internal.ts) selects the
 * accessor path for both; test/mm/device_private_thp.test.ts compares.
 */
import { SECTION_MASK, type page } from '../include/linux/mm_types.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import {
  MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT, type dev_pagemap,
} from '../include/linux/memremap.js';
import { ClearPageAnonExclusive, PG_anon_exclusive } from '../include/linux/page-flags.js';
import { EINVAL, EBUSY } from '../include/uapi/asm-generic/errno.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import {
  register_pfn_range, unregister_pfn_range, pfn_to_page, prep_compound_page, type pfn_range,
} from './page_alloc.js';
import { __folio_set_locked } from './filemap.js';
import { struct_page_paths } from './internal.js';
import { BUG, WARN_ON_ONCE } from '../include/asm-generic/bug.js';
import { mem_cgroup_uncharge } from './memcontrol.js';
import { wait_queue_head, wait_event, wake_up } from '../lib/locking/wait.js';
import type { Sleepable } from '../lib/sim/sched.js';


/* the pfn range behind every live pagemap; the pagemaps memunmap_pages() is draining, with their waiter */
interface memremap_state {
  ranges: Map<dev_pagemap, pfn_range>;
  dying: Map<dev_pagemap, wait_queue_head>;
  next_region: number;
}
let ms: memremap_state = fresh();
function fresh(): memremap_state { return { ranges: new Map(), dying: new Map(), next_region: 0 }; }

/**
 * request_free_mem_region() - reserve a physical address range no RAM or
 * device uses, to give device-private pages an identity.
 * @size: bytes, a multiple of PAGE_SIZE.
 * @name: for dumps.
 *
 * The simulated machine places every ZONE_DEVICE range above RAM when
 * memremap_pages() runs, so this only checks the size and hands back a
 * cookie range; pgmap.range is overwritten with the real one.
 * Return: the range, or null for a bad size.
 */
export function request_free_mem_region(size: number, name: string): { start: number; end: number; name: string } | null {
  if (size <= 0 || size % PAGE_SIZE !== 0) return null;
  const start = ms.next_region;
  ms.next_region += size;
  return { start, end: start + size - 1, name };
}

/** release_mem_region() - give a reserved region back (nothing to do here). */
export function release_mem_region(_start: number, _size: number): void {}

/**
 * memremap_pages() - create the struct pages of a device memory range.
 * @pgmap: type, ops and owner filled by the driver; range, start_pfn,
 *         nr_pages and ref are filled here.
 * @nr_pages: size of the range in pages.
 *
 * Device-private memory needs ops.migrate_to_ram (the CPU must always be
 * able to get its data back), ops.folio_free and an owner; coherent
 * memory needs folio_free and an owner. The new pages have refcount 0 and
 * belong to the driver until zone_device_page_init() hands one out.
 *
 * Context: process context. Return: 0, or -EINVAL for a bad pagemap or
 * size, -EBUSY if the pagemap is already mapped.
 */
export function memremap_pages(pgmap: dev_pagemap, nr_pages: number): number {
  if (!Number.isInteger(nr_pages) || nr_pages <= 0) return -EINVAL;
  if (ms.ranges.has(pgmap)) return -EBUSY;
  switch (pgmap.type) {
    case MEMORY_DEVICE_PRIVATE:
      if (!pgmap.ops || !pgmap.ops.migrate_to_ram || !pgmap.ops.folio_free) return -EINVAL;
      if (pgmap.owner === null || pgmap.owner === undefined) return -EINVAL;
      break;
    case MEMORY_DEVICE_COHERENT:
      if (!pgmap.ops || !pgmap.ops.folio_free) return -EINVAL;
      if (pgmap.owner === null || pgmap.owner === undefined) return -EINVAL;
      break;
    default:
      return -EINVAL;
  }
  const r = register_pfn_range(nr_pages, pgmap.name ?? `pgmap-${pgmap.type}`, pgmap);
  pgmap.start_pfn = r.start_pfn;
  pgmap.nr_pages = nr_pages;
  pgmap.range = { start: r.start_pfn * PAGE_SIZE, end: (r.start_pfn + nr_pages) * PAGE_SIZE - 1 };
  pgmap.nr_range = 1;
  pgmap.ref = 0;
  pgmap.ref_live = true;
  ms.ranges.set(pgmap, r);
  trace_event('memremap_pages', { type: pgmap.type, start_pfn: r.start_pfn, nr_pages });
  return 0;
}

/**
 * memunmap_pages() - remove the struct pages of a pagemap. The driver
 * should first have migrated every page back (dmirror_device_evict_chunk);
 * the pagemap is then marked dying (percpu_ref_kill: no page may be handed
 * out any more) and the caller sleeps until every page handed out came
 * back through free_zone_device_folio() (Linux waits on pgmap->done), so a
 * device page still mapped or referenced somewhere can never outlive its
 * struct page. A reference nobody drops makes the caller wait forever, as
 * in Linux (the scheduler reports that as a deadlock on the queue).
 * Context: process context; may sleep.
 */
export function* memunmap_pages(pgmap: dev_pagemap): Sleepable {
  const r = ms.ranges.get(pgmap);
  if (r === undefined || ms.dying.has(pgmap)) {
    WARN_ON_ONCE(true, 'memunmap_pages of a pagemap that is not mapped');
    return;
  }
  const done = new wait_queue_head(`pgmap ${r.owner} done`);
  ms.dying.set(pgmap, done);
  pgmap.ref_live = false;                       /* percpu_ref_kill() */
  if ((pgmap.ref ?? 0) !== 0) count_event('memunmap_pages_wait');
  yield* wait_event(done, () => (pgmap.ref ?? 0) === 0);
  ms.dying.delete(pgmap);
  unregister_pfn_range(r);
  ms.ranges.delete(pgmap);
  trace_event('memunmap_pages', { start_pfn: r.start_pfn, nr_pages: r.nr_pages });
}

/**
 * pgmap_pages() - the struct pages of a mapped pagemap, in pfn order
 * (tests, and drivers that fill free lists from it). Creates every struct
 * page of the range (mm/sparse.ts makes them on first use otherwise).
 */
export function pgmap_pages(pgmap: dev_pagemap): readonly page[] {
  const r = ms.ranges.get(pgmap);
  if (r === undefined) return [];
  const pages = new Array<page>(r.nr_pages);
  for (let i = 0; i < r.nr_pages; i++) pages[i] = pfn_to_page(r.start_pfn + i);
  return pages;
}

/**
 * zone_device_page_init() - hand a free device page (or, with @order, a
 * folio of 2^order pages) to its driver's user: refcount 1, locked, as
 * migrate_vma_pages() expects of a destination page.
 * Context: any; the page must be free (refcount 0).
 */
export function zone_device_page_init(p: page, order = 0): void {
  const pgmap = p.pgmap;
  if (pgmap === null || p._refcount !== 0) zone_device_page_init_bug(p);
  /* WARN_ON_ONCE(!percpu_ref_tryget_live(&pgmap->ref)): mapped and not being torn down */
  WARN_ON_ONCE(pgmap.ref_live !== true, 'zone_device_page_init after memunmap_pages');
  pgmap.ref = (pgmap.ref ?? 0) + (1 << order);
  p._refcount = 1;
  __folio_set_locked(p);
  if (order > 0) prep_compound_page(p, order);     /* as zone_device_folio_init() in Linux 6.19 */
}

/* the BUG of zone_device_page_init() on a page that is not device memory or not free (out of line) */
function zone_device_page_init_bug(p: page): never {
  if (p.pgmap === null) BUG(`zone_device_page_init of non-device pfn ${p.pfn}`);
  BUG(`zone_device_page_init of busy device pfn ${p.pfn}`);
}

/** zone_device_folio_init() - the folio spelling of zone_device_page_init(). */
export const zone_device_folio_init = zone_device_page_init;

/* dev_pagemap_percpu_release() - the pagemap's last page came back: once memunmap_pages() killed the ref, complete(&pgmap->done) */
function dev_pagemap_percpu_release(pgmap: dev_pagemap): void {
  const done = ms.dying.get(pgmap);
  if (done !== undefined) wake_up(done);
}

/*
 * free_zone_device_tails() - the tail pages of a freed device folio point
 * at themselves again: compound_head cleared on the section's array (the
 * model split of session 8, migthp, in the file header), or through the
 * page accessors when struct_page_direct(false) (TEST ONLY) or when the
 * folio does not lie in one section.
 */
function free_zone_device_tails(f: page, nr: number): void {
  const ms = f.section, i = f.pfn & SECTION_MASK, ch = ms.compound_head;
  if (!struct_page_paths.direct || i + nr > ms.nr) {
    for (let k = 1; k < nr; k++) pfn_to_page(f.pfn + k).compound_head = pfn_to_page(f.pfn + k);
    return;
  }
  if (ch === null) return;                     /* no tail of the section points anywhere */
  for (let k = 1; k < nr; k++) ch[i + k] = 0;  /* tail->compound_head = tail (distance 0) */
}

/**
 * free_zone_device_folio() - the last reference to a device folio went
 * away (__folio_put()): clear what core mm left in it and give it to the
 * driver. The struct page is cleared on its section's arrays (the model
 * split of session 8 in the file header; free_zone_device_folio_helpers()
 * is the same through the accessors). Context: any.
 */
export function free_zone_device_folio(f: page): void {
  if (!struct_page_paths.direct) { free_zone_device_folio_helpers(f); return; }
  const ms = f.section, i = f.pfn & SECTION_MASK;
  const pgmap = (ms.pgmap_of === null ? ms.pgmap : ms.pgmap_of[i])!;      /* f->pgmap */
  mem_cgroup_uncharge(f);
  /* what core mm left in the struct page, cleared on its section's arrays (f->memcg, ->mapping, ->index, ->_mapcount) */
  if (ms.memcg !== null) ms.memcg[i] = 0;
  const mapping = ms.mapping[i];
  if (mapping !== null && mapping.kind === 'anon') ms.flags[i] &= ~(1 << PG_anon_exclusive);   /* ClearPageAnonExclusive() */
  ms.mapping[i] = null;
  ms.index[i] = 0;
  ms._mapcount[i] = -1;
  const nr = 1 << ms.order[i];
  zone_device_folio_free_ops(f, pgmap, nr);
  ms.order[i] = 0;
  ms.flags[i] = 0;
  count_event('zone_device_free', nr);
}

/* free_zone_device_folio() through the page accessors: the path struct_page_direct(false) selects, for the tests */
function free_zone_device_folio_helpers(f: page): void {
  const pgmap = f.pgmap!;
  mem_cgroup_uncharge(f);
  f.memcg = null;
  if (f.mapping !== null && f.mapping.kind === 'anon') ClearPageAnonExclusive(f);
  f.mapping = null;
  f.index = 0;
  f._mapcount = -1;
  const nr = 1 << f.order;
  zone_device_folio_free_ops(f, pgmap, nr);
  f.order = 0;
  f.flags = 0;
  count_event('zone_device_free', nr);
}

/* the driver's folio_free() and the pagemap's reference, for free_zone_device_folio() */
function zone_device_folio_free_ops(f: page, pgmap: dev_pagemap, nr: number): void {
  switch (pgmap.type) {
    case MEMORY_DEVICE_PRIVATE:
    case MEMORY_DEVICE_COHERENT:
      pgmap.ops.folio_free(f);          /* the driver still sees the folio's order */
      pgmap.ref = (pgmap.ref ?? 0) - nr;
      if (pgmap.ref === 0) dev_pagemap_percpu_release(pgmap);
      break;
    default:
      WARN_ON_ONCE(true, `free of a device page of unsupported type ${pgmap.type}`);
  }
  if (nr > 1) free_zone_device_tails(f, nr);
}

/** resetMemremap() - a fresh machine: no pagemap mapped (start_kernel()). */
export function resetMemremap(): void {
  ms = fresh();
}
