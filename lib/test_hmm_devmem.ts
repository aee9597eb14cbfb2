/*
 * lib/test_hmm_devmem.ts - the dmirror driver's data structures and its
 * device memory: chunks of ZONE_DEVICE pages, free lists, allocation, the
 * free and split callbacks (eviction back to RAM: lib/test_hmm_evict.ts).
 *
 * Follows lib/test_hmm.c of Linux (the devmem half: dmirror_allocate_chunk,
 * dmirror_devmem_alloc_page, dmirror_devmem_free, dmirror_devmem_folio_split;
 * eviction and removal, dmirror_device_evict_chunk and
 * dmirror_device_remove_chunks, are lib/test_hmm_evict.ts). The front door
 * (devices, ioctls) is lib/test_hmm.ts, the mirror (device faults,
 * snapshot, exclusive access) lib/test_hmm_mirror.ts, the device page table
 * and bounce buffers lib/test_hmm_dpt.ts, the migrations
 * lib/test_hmm_migrate.ts; Documentation/vm/hmm.txt, Part 7 walks through
 * them.
 *
 * Simplified or scaled:
 *  - A chunk is DEVMEM_CHUNK_SIZE = 16 MiB (4096 pages) instead of Linux's
 *    256 MiB, so that four devices fit a simulated machine cheaply; chunks
 *    are still added on demand, so nothing else changes.
 *  - The device page table is a gpt (lib/test_hmm_pt.ts) where Linux has
 *    an xarray of tagged page pointers: entries tag a pfn with Linux's
 *    values (0 read, 1 atomic, 3 write).
 *  - struct dmirror_chunk embeds its dev_pagemap at offset 0 as in Linux;
 *    here the chunk object is the pagemap object itself (chunk.pagemap ===
 *    chunk), so container_of(page->pgmap) is a type cast, no lookup.
 *  - Device-coherent memory is "special purpose memory" the simulated
 *    machine always provides (Linux needs the spm_addr_dev0/1 module
 *    parameters); dmirror_params.spm can turn it off to see the skip path.
 *
 * Ownership chain of a device-private page (as in Linux):
 *
 *   device page (ZONE_DEVICE, no bytes the CPU can map)
 *     .zone_device_data -> backing RAM page (holds the data)
 *                            .zone_device_data -> the dmirror that migrated it
 *
 * Model split: a device-private page's zone_device_data holds the backing
 * page's pfn where Linux keeps a struct page pointer; BACKING_PAGE() makes
 * the handle when the driver follows it. A stored handle would be a new
 * object written into the section's array on every migration to the
 * device (a write barrier, and a handle kept alive through every minor GC
 * until the page comes back); a pfn is a small integer. Same page, same
 * lifetime: set when the device page is allocated, cleared when it is
 * freed or split.
 *
 * A device-coherent page holds its data itself (BACKING_PAGE(p) is p: the same pfn).
 * A free device page is linked into its device's free list through
 * .zone_device_data instead.
 *
 * Lock order: dmirror_device.devmem_lock (mutex) -> dmirror_device.lock
 * (spinlock). dmirror.mutex is never held while allocating device memory.
 */
import { pfn_to_page_new } from '../include/asm-generic/memory_model.js';
import { type page, type vm_fault, __pfn_to_section, SECTION_MASK } from '../include/linux/mm_types.js';
import { PG_head } from '../include/linux/page-flags.js';
import { PAGE_SIZE, HPAGE_PMD_NR, HPAGE_PMD_ORDER, folio_order } from '../include/linux/mm.js';
import {
  MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT, is_device_private_page, type dev_pagemap, type dev_pagemap_ops,
} from '../include/linux/memremap.js';
import type { mmu_interval_notifier } from '../include/linux/mmu_notifier.js';
import {
  HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, HMM_DMIRROR_MEMORY_DEVICE_COHERENT,
} from '../include/uapi/linux/test_hmm.js';
import { GFP_HIGHUSER } from '../include/linux/gfp.js';
import { ENOMEM, EINVAL } from '../include/uapi/asm-generic/errno.js';
import { fail_devmem_alloc, should_fail } from './fault-inject.js';
import { current, type Sleepable, type Thread } from './sim/sched.js';
import { mutex, mutex_lock, mutex_unlock } from './locking/mutex.js';
import { lockdep_set_class } from './locking/lockdep.js';
import { spinlock_t, spin_lock, spin_unlock } from './locking/spinlock.js';
import { trace_event, count_event } from './sim/trace.js';
import { alloc_pages_sleepable, alloc_pages_fastpath, __free_pages, pfn_to_page } from '../mm/page_alloc.js';
import {
  memremap_pages, request_free_mem_region, release_mem_region, zone_device_folio_init,
} from '../mm/memremap.js';
import { dmirror_devmem_fault } from './test_hmm_migrate.js';
import { BUG } from '../include/asm-generic/bug.js';
import { dmirror_pt } from './test_hmm_pt.js';
export const DMIRROR_NDEVICES = 4;
export const DMIRROR_RANGE_FAULT_TIMEOUT = 1000;                 /* ms */
/** Bytes per chunk of device memory: 16 MiB here, 256 MiB in Linux (scaled, see header). */
export const DEVMEM_CHUNK_SIZE = 16 * 1024 * 1024;
export const DEVMEM_CHUNK_PAGES = DEVMEM_CHUNK_SIZE / PAGE_SIZE;
/** Chunk-array growth step. */
export const DEVMEM_CHUNKS_RESERVE = 16;

/* device page table tags (low bits of the xarray entry in Linux) */
export const DPT_XA_TAG_READ = 0;
export const DPT_XA_TAG_ATOMIC = 1;
export const DPT_XA_TAG_WRITE = 3;

/**
 * Module parameters.
 *  spm: the machine provides special-purpose memory for the coherent
 *       devices 2 and 3 (Linux: spm_addr_dev0/1); without it they are
 *       not created and the coherent self-test variants skip.
 *  broken_skip_read_retry: TEST ONLY - publish device faults without
 *       checking mmu_interval_read_retry(), the bug the retry protocol
 *       exists to prevent; race checkers use it to prove they would
 *       catch it. Never set outside such a check.
 *  copy_queue: TEST ONLY - off, the migration loops copy each page at
 *       once, as Linux's loop does, instead of queueing a window's copies
 *       and doing them in source-frame order at its end (the model split
 *       of lib/test_hmm_copy.ts); a test compares the two. On by default.
 */
export const dmirror_params = { spm: true, broken_skip_read_retry: false, copy_queue: true };

export type { dpt_entry } from './test_hmm_pt.js';

/**
 * struct dmirror_chunk - one memremap_pages() range of a device. The
 * dev_pagemap comes first, as in Linux: the chunk is its own pagemap
 * (@pagemap points back at the object), so page->pgmap leads to the chunk.
 */
export interface dmirror_chunk extends dev_pagemap {
  readonly pagemap: dmirror_chunk;
  readonly mdevice: dmirror_device;
  remove: boolean;                /* being torn down: freed pages are not recycled */
}

/**
 * struct dmirror_free_list - a device's free pages (or free PMD-sized
 * folio heads), the last one freed handed out first.
 *
 * Linux threads the list through page->zone_device_data of the free pages
 * (page->zone_device_data = mdevice->free_pages; mdevice->free_pages =
 * page). Here it is a stack of pfns: a model split standing for that
 * list, with the same pages in the same order, that does not store into
 * the struct page of every free page nor load the next one's on every
 * allocation. A free device page's zone_device_data is null.
 * Protected by dmirror_device.lock.
 */
export class dmirror_free_list {
  private pfns = new Float64Array(64);
  /* pages (or folio heads) on the list */
  nr = 0;

  /** push() - put frame @pfn on the list (it becomes the next one handed out). */
  push(pfn: number): void {
    if (this.nr === this.pfns.length) {
      const grown = new Float64Array(this.pfns.length * 2);
      grown.set(this.pfns);
      this.pfns = grown;
    }
    this.pfns[this.nr++] = pfn;
  }

  /** pop() - take the most recently freed frame off the list; -1 when empty. */
  pop(): number {
    return this.nr === 0 ? -1 : this.pfns[--this.nr];
  }

  /** peek() - the frame pop() would return, without taking it; -1 when empty. */
  peek(): number {
    return this.nr === 0 ? -1 : this.pfns[this.nr - 1];
  }

  /** filter() - keep only the frames @keep accepts, in their order. */
  filter(keep: (pfn: number) => boolean): void {
    let n = 0;
    for (let i = 0; i < this.nr; i++) if (keep(this.pfns[i])) this.pfns[n++] = this.pfns[i];
    this.nr = n;
  }

  /** clear() - empty the list. */
  clear(): void {
    this.nr = 0;
  }
}

/**
 * struct dmirror_device - one /dev/hmm_dmirror<N>.
 */
export class dmirror_device {
  /* minor number N of /dev/hmm_dmirror<N> */
  readonly minor: number;
  /* HMM_DMIRROR_MEMORY_DEVICE_PRIVATE or _COHERENT */
  readonly zone_device_type: number;

  /* protected by devmem_lock */
  devmem_capacity = 0;            /* slots in devmem_chunks */
  devmem_count = 0;               /* chunks in use */
  devmem_chunks: dmirror_chunk[] | null = null;
  readonly devmem_lock: mutex;

  /* protected by lock */
  calloc = 0;                     /* device pages handed out (512 per THP) */
  cfree = 0;                      /* device pages returned */
  readonly free_pages = new dmirror_free_list();   /* single pages */
  readonly free_folios = new dmirror_free_list();  /* PMD-sized folio heads */
  readonly lock: spinlock_t;

  constructor(minor: number, type: number) {
    this.minor = minor;
    this.zone_device_type = type;
    this.devmem_lock = lockdep_set_class(new mutex(`hmm_dmirror${minor}.devmem_lock`), '&mdevice->devmem_lock');
    this.lock = lockdep_set_class(new spinlock_t(`hmm_dmirror${minor}.lock`), '&mdevice->lock');
  }
}

/**
 * struct dmirror - the state of one open file: a mirror of the opener's
 * address space on one device. Shared by every fd that refers to the
 * same open file (dup, fork), and it keeps following the opener's mm.
 */
export class dmirror {
  readonly mdevice: dmirror_device;
  /* the device page table: virtual page number -> tagged pfn; protected by mutex */
  readonly pt = new dmirror_pt();
  /* the interval notifier over the whole address space (filled by open) */
  notifier!: mmu_interval_notifier;
  readonly mutex: mutex;
  /* HMM_DMIRROR_FLAG_*, set by HMM_DMIRROR_FLAGS; FAIL_ALLOC is consumed once */
  flags = 0n;

  constructor(mdevice: dmirror_device, id: number) {
    this.mdevice = mdevice;
    this.mutex = lockdep_set_class(new mutex(`dmirror${mdevice.minor}.${id}.mutex`), '&dmirror->mutex');
  }
}

/* ---- whose migration is this? ---- */

/* the mirror each thread is migrating for right now (dmirror_migrate_begin) */
const dmirror_migrating = new WeakMap<Thread, dmirror | null>();

/**
 * dmirror_migrate_begin() - the current thread starts a migration for
 * mirror @d (a closed mirror, for the CPU fault on a page it left behind,
 * has no notifier left to skip anything). Until dmirror_migrate_end(),
 * @d's interval notifier skips the MMU_NOTIFY_MIGRATE invalidations of
 * its device; every other mirror of the device handles them like any other
 * invalidation
 * (dmirror_interval_invalidate(), and the model note in lib/test_hmm.ts).
 * Context: any; does not sleep. Return: the previous mirror, to restore
 * (migrations nest: a fault inside a migration may migrate another page).
 */
export function dmirror_migrate_begin(d: dmirror | null): dmirror | null {
  const t = current();
  const prev = dmirror_migrating.get(t) ?? null;
  dmirror_migrating.set(t, d);
  return prev;
}

/** dmirror_migrate_end() - the migration of dmirror_migrate_begin() is over; @prev is what it returned. */
export function dmirror_migrate_end(prev: dmirror | null): void {
  dmirror_migrating.set(current(), prev);
}

/** dmirror_migrating_for() - is the current thread migrating for mirror @d? */
export function dmirror_migrating_for(d: dmirror): boolean {
  return dmirror_migrating.get(current()) === d;
}

/* ---- chunks and pages ---- */

/*
 * container_of(page->pgmap, struct dmirror_chunk, pagemap): the pagemap is
 * the chunk. A pagemap of another driver has other ops (Linux's
 * container_of would give a pointer that compares unequal to every dmirror
 * device); null for those.
 */
function pgmap_to_chunk(pgmap: dev_pagemap | null): dmirror_chunk | null {
  return pgmap !== null && pgmap.ops === dmirror_devmem_ops ? pgmap as dmirror_chunk : null;
}

/** dmirror_page_to_chunk() - the chunk a device page belongs to. */
export function dmirror_page_to_chunk(p: page): dmirror_chunk {
  const c = pgmap_to_chunk(p.pgmap);
  if (c === null) BUG(`pfn ${p.pfn} is not dmirror device memory`);
  return c;
}

/**
 * dmirror_page_to_device() - the dmirror device a device page belongs to,
 * or null for device memory of another driver.
 */
export function dmirror_page_to_device(p: page): dmirror_device | null {
  const c = pgmap_to_chunk(p.pgmap);
  return c === null ? null : c.mdevice;
}

/** dmirror_is_private_zone() - does this device have device-private memory? */
export function dmirror_is_private_zone(mdevice: dmirror_device): boolean {
  return mdevice.zone_device_type === HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
}

/**
 * BACKING_PAGE() - the page that holds a device page's data: the hidden
 * RAM page of a device-private page, the page itself when coherent.
 */
export function BACKING_PAGE(p: page): page {
  return is_device_private_page(p) ? backing_page(p.zone_device_data) as page : p;
}

/* the backing page a device-private page's zone_device_data names (a pfn, see the header), or null for none */
function backing_page(zdd: unknown): page | null {
  return zdd === null ? null : pfn_to_page_new(zdd as number);
}

/**
 * dmirror_page_data() - the page whose bytes the device reads or writes
 * through a device page table entry for @p: BACKING_PAGE(@p), or, for a
 * device-private page without one (a free page that a racing device
 * fault published: a driver bug the race checkers provoke), the device
 * page's own frame, which is what Linux's memcpy_from_page() of that
 * entry would touch.
 */
export function dmirror_page_data(p: page): page {
  return (BACKING_PAGE(p) as page | null) ?? p;
}

/*
 * Fields of the struct page of frame @pfn read straight from its
 * section's arrays (the memory map, include/linux/mm_types.ts), without
 * a page handle: what one load from the struct page is in Linux. For the
 * per-page loops of the migrations, which often need one field of a page
 * and nothing else. The frame's section must exist (a page the core put
 * in src[] or dst[]).
 */

/** pfn_pgmap() - page->pgmap of frame @pfn (null for RAM). */
export function pfn_pgmap(pfn: number): dev_pagemap | null {
  const ms = __pfn_to_section(pfn)!;
  return ms.pgmap_of === null ? ms.pgmap : ms.pgmap_of[pfn & SECTION_MASK];
}

/** pfn_zone_device_data() - page->zone_device_data of frame @pfn. */
export function pfn_zone_device_data(pfn: number): unknown {
  const a = __pfn_to_section(pfn)!.zone_device_data;
  return a === null ? null : a[pfn & SECTION_MASK];
}

/**
 * BACKING_PAGE_PFN() - BACKING_PAGE(pfn_to_page(@pfn)) without a handle of
 * the device page itself: its zone_device_data (private; null, as from
 * BACKING_PAGE(), for a free page), or the page (coherent, or not device
 * memory).
 */
export function BACKING_PAGE_PFN(pfn: number): page {
  return pfn_pgmap(pfn)?.type === MEMORY_DEVICE_PRIVATE ? backing_page(pfn_zone_device_data(pfn)) as page : pfn_to_page(pfn);
}

function push_free(mdevice: dmirror_device, p: page, large: boolean): void {
  (large ? mdevice.free_folios : mdevice.free_pages).push(p.pfn);
}

function pop_free(mdevice: dmirror_device, large: boolean): page | null {
  const pfn = (large ? mdevice.free_folios : mdevice.free_pages).pop();
  if (pfn < 0) return null;
  const p = pfn_to_page_new(pfn);                /* a free page's section exists: its chunk was mapped */
  mdevice.calloc += large ? HPAGE_PMD_NR : 1;
  /*
   * Take the pgmap reference before the lock is dropped: a RELEASE that
   * sets remove under this lock then either finds the page on the free
   * list or counted in pgmap.ref, never in between (where memunmap_pages()
   * would finish with the page about to be used).
   */
  zone_device_folio_init(p, large ? HPAGE_PMD_ORDER : 0);
  return p;
}

/*
 * A new chunk and its pagemap (one object, see struct dmirror_chunk): a
 * reserved physical region for device-private memory, the SPM range for
 * coherent memory.
 */
function dmirror_chunk_new(mdevice: dmirror_device): dmirror_chunk | null {
  const name = `hmm_dmirror${mdevice.minor}`;
  let type: dev_pagemap['type'], range: { start: number; end: number };
  switch (mdevice.zone_device_type) {
    case HMM_DMIRROR_MEMORY_DEVICE_PRIVATE: {
      const res = request_free_mem_region(DEVMEM_CHUNK_SIZE, 'hmm_dmirror');
      if (res === null) return null;
      type = MEMORY_DEVICE_PRIVATE;
      range = { start: res.start, end: res.end };
      break;
    }
    case HMM_DMIRROR_MEMORY_DEVICE_COHERENT:
      type = MEMORY_DEVICE_COHERENT;
      range = { start: 0, end: DEVMEM_CHUNK_SIZE - 1 };
      break;
    default:
      return null;
  }
  const c = { type, range, nr_range: 1, ops: dmirror_devmem_ops, owner: mdevice, name,
    pagemap: null as unknown as dmirror_chunk, mdevice, remove: false };
  c.pagemap = c;
  return c;
}

/**
 * dmirror_allocate_chunk() - add a chunk of device memory and put its
 * pages on the free lists.
 * @mdevice: the device.
 * @want: if not null, one page (or a PMD folio when @is_large) is taken
 *        for the caller and stored in want.page.
 * @is_large: the chunk serves a huge request: every PMD-aligned run of
 *            HPAGE_PMD_NR pages goes on the folio free list.
 *
 * Context: may sleep (devmem_lock). Return: 0, -ENOMEM, -EINVAL for an
 * unknown device type, or the memremap_pages() error.
 */
export function* dmirror_allocate_chunk(mdevice: dmirror_device, want: { page: page | null } | null,
                                        is_large: boolean): Sleepable<number> {
  const devmem = dmirror_chunk_new(mdevice);
  if (devmem === null) return mdevice.zone_device_type === HMM_DMIRROR_MEMORY_DEVICE_PRIVATE ? -ENOMEM : -EINVAL;
  const pagemap = devmem.pagemap;

  yield* mutex_lock(mdevice.devmem_lock);
  if (mdevice.devmem_count === mdevice.devmem_capacity) {
    mdevice.devmem_capacity += DEVMEM_CHUNKS_RESERVE;
    mdevice.devmem_chunks = (mdevice.devmem_chunks ?? []).slice();
  }
  const ret = memremap_pages(pagemap, DEVMEM_CHUNK_PAGES);
  if (ret < 0) {
    mutex_unlock(mdevice.devmem_lock);
    if (pagemap.type === MEMORY_DEVICE_PRIVATE) release_mem_region(pagemap.range.start, DEVMEM_CHUNK_SIZE);
    return ret;
  }
  mdevice.devmem_chunks![mdevice.devmem_count++] = devmem;
  mutex_unlock(mdevice.devmem_lock);

  const pfn_first = pagemap.start_pfn!, pfn_last = pfn_first + DEVMEM_CHUNK_PAGES;
  trace_event('dmirror_allocate_chunk', { dev: mdevice.minor, chunks: mdevice.devmem_count,
    start_pfn: pfn_first, end_pfn: pfn_last, large: is_large });

  spin_lock(mdevice.lock);
  for (let pfn = pfn_first; pfn < pfn_last;) {
    const p = pfn_to_page(pfn);
    if (is_large && pfn % HPAGE_PMD_NR === 0 && pfn + HPAGE_PMD_NR <= pfn_last) {
      push_free(mdevice, p, true);
      pfn += HPAGE_PMD_NR;
      continue;
    }
    push_free(mdevice, p, false);
    pfn++;
  }
  let err = 0;
  if (want !== null) {
    want.page = pop_free(mdevice, is_large);
    if (want.page === null) err = -ENOMEM;
  }
  spin_unlock(mdevice.lock);
  return err;
}

/**
 * dmirror_devmem_alloc_page() - a device page (or a PMD-sized device
 * folio) for a migration, refcounted and locked.
 * @d: the mirror doing the migration (its device provides the memory).
 * @is_large: a PMD-sized folio instead of one page.
 *
 * On a private device a RAM page (or folio) is allocated first as the
 * backing store and hung off the device page's zone_device_data; a
 * coherent device page stores its data itself.
 * Context: may sleep (a new chunk may be added).
 * Return: the device page, or null when RAM or device memory ran out
 * (or the fail_devmem_alloc site, lib/fault-inject.ts, failed it).
 */
export function* dmirror_devmem_alloc_page(d: dmirror, is_large: boolean): Sleepable<page | null> {
  const mdevice = d.mdevice;
  const order = is_large ? HPAGE_PMD_ORDER : 0;
  if (should_fail(fail_devmem_alloc, PAGE_SIZE << order)) return null;
  let rpage: page | null = null;
  if (dmirror_is_private_zone(mdevice)) {
    rpage = yield* alloc_pages_sleepable(GFP_HIGHUSER, order);
    if (rpage === null) return null;
  }
  spin_lock(mdevice.lock);
  let dpage = pop_free(mdevice, is_large);
  spin_unlock(mdevice.lock);
  if (dpage === null) {
    const want = { page: null as page | null };
    const ret = yield* dmirror_allocate_chunk(mdevice, want, is_large);
    if (ret !== 0 || want.page === null) {
      if (rpage !== null) __free_pages(rpage, order);
      return null;
    }
    dpage = want.page;
  }
  dpage.zone_device_data = rpage === null ? null : rpage.pfn;     /* the backing page, by pfn (see the header) */
  count_event('dmirror_devmem_alloc', 1 << order);
  return dpage;
}

/**
 * dmirror_devmem_alloc_page_fast() - dmirror_devmem_alloc_page() as a
 * plain call when nothing in it needs to sleep: a free device page (or
 * folio) is on the list and the backing RAM comes from the allocator's
 * fast path (alloc_pages_fastpath()). Migration loops call it first and
 * the Sleepable one only when it returns null.
 * Context: may sleep (the caller's context; this call itself does not).
 * Return: the device page, refcounted and locked; or null, having changed
 * and counted nothing, when the full call is needed (no free device page,
 * RAM below the low watermark, or fail_devmem_alloc armed).
 */
export function dmirror_devmem_alloc_page_fast(d: dmirror, is_large: boolean): page | null {
  const mdevice = d.mdevice;
  if (fail_devmem_alloc.probability !== 0) return null;
  if ((is_large ? mdevice.free_folios : mdevice.free_pages).nr === 0) return null;
  const order = is_large ? HPAGE_PMD_ORDER : 0;
  let rpage: page | null = null;
  if (dmirror_is_private_zone(mdevice)) {
    rpage = alloc_pages_fastpath(GFP_HIGHUSER, order);
    if (rpage === null) return null;
  }
  should_fail(fail_devmem_alloc, PAGE_SIZE << order);   /* counts the hit; cannot fire unarmed */
  spin_lock(mdevice.lock);
  const dpage = pop_free(mdevice, is_large)!;           /* nothing ran since the check: no sleep, no preemption */
  spin_unlock(mdevice.lock);
  dpage.zone_device_data = rpage === null ? null : rpage.pfn;     /* the backing page, by pfn (see the header) */
  count_event('dmirror_devmem_alloc', 1 << order);
  return dpage;
}

/**
 * dmirror_devmem_free() - dev_pagemap_ops.folio_free: the last reference
 * to a device folio is gone. Free the backing RAM and recycle the device
 * page unless its chunk is being removed.
 * Context: any; does not sleep.
 */
export function dmirror_devmem_free(f: page): void {
  const chunk = dmirror_page_to_chunk(f), mdevice = chunk.mdevice;
  /* BACKING_PAGE(f), the chunk being f's pagemap */
  let rpage: page | null = chunk.type === MEMORY_DEVICE_PRIVATE ? backing_page(f.zone_device_data) : f;
  const order = rpage !== null ? folio_order(rpage) : folio_order(f);
  if (rpage?.pfn !== f.pfn) {
    if (rpage !== null) {
      rpage.zone_device_data = null;
      rpage._refcount = 0;
      __free_pages(rpage, order);
    }
    rpage = null;
  }
  f.zone_device_data = null;
  spin_lock(mdevice.lock);
  if (!chunk.remove) {
    mdevice.cfree += 1 << order;
    push_free(mdevice, f, order > 0);
  }
  spin_unlock(mdevice.lock);
}

/**
 * dmirror_devmem_folio_split() - dev_pagemap_ops.folio_split: core mm
 * splits a device THP. Split the backing folio the same way so that each
 * device page keeps pointing at its own backing page, which points at the
 * mirror. @tail null means "the split is done": the head's backing folio
 * becomes a single page.
 * Context: any; does not sleep.
 */
export function dmirror_devmem_folio_split(head: page, tail: page | null): void {
  const rpage = BACKING_PAGE(head);
  if (tail !== null && rpage === null) { tail.zone_device_data = null; return; }
  if (rpage === null) return;
  if (tail === null) {
    if (rpage.pfn !== head.pfn) {
      rpage.order = 0;
      rpage.flags &= ~(1 << PG_head);
      rpage.mapping = null;
      rpage._refcount = 1;
    }
    return;
  }
  if (rpage.pfn === head.pfn) return;    /* coherent: the device page holds its data */
  const rpage_tail = pfn_to_page(rpage.pfn + (tail.pfn - head.pfn));
  tail.zone_device_data = rpage_tail.pfn;
  rpage_tail.zone_device_data = rpage.zone_device_data;
  rpage_tail.compound_head = rpage_tail;
  rpage_tail.mapping = null;
  rpage_tail._refcount = 1;
  tail.mapping = head.mapping;
  tail.pgmap = head.pgmap;
}

/** The dev_pagemap_ops of every chunk of every dmirror device. */
export const dmirror_devmem_ops: dev_pagemap_ops = Object.freeze({
  folio_free: dmirror_devmem_free,
  migrate_to_ram: (vmf: vm_fault) => dmirror_devmem_fault(vmf),
  folio_split: dmirror_devmem_folio_split,
});
