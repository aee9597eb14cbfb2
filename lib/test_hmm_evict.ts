/*
 * lib/test_hmm_evict.ts - the dmirror driver gives its device memory back:
 * every in-use page of a chunk migrated to RAM whoever maps it, then the
 * chunk's struct pages unmapped (HMM_DMIRROR_RELEASE, module unload).
 *
 * Follows lib/test_hmm.c of Linux (dmirror_device_evict_chunk,
 * dmirror_remove_free_pages, dmirror_device_remove_chunks); the chunks,
 * free lists and allocation are lib/test_hmm_devmem.ts.
 *
 * Differs from Linux: Linux evicts once; a page a concurrent migration
 * to the device held locked during that pass would keep memunmap_pages()
 * waiting, so remove evicts again a bounded number of times
 * (DMIRROR_EVICT_RETRIES; race_mutations.single_evict_pass restores the
 * single pass, as the deliberately broken variant of the race checks).
 */
import type { page } from '../include/linux/mm_types.js';
import { PAGE_SIZE, folio_order } from '../include/linux/mm.js';
import { MEMORY_DEVICE_PRIVATE, is_device_private_page, is_device_coherent_page } from '../include/linux/memremap.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_NOFAIL } from '../include/linux/gfp.js';
import { type Sleepable } from './sim/sched.js';
import { mutex_lock, mutex_unlock } from './locking/mutex.js';
import { spin_lock, spin_unlock } from './locking/spinlock.js';
import { trace_event, count_event } from './sim/trace.js';
import { charge, msleep } from './sim/clock.js';
import { race_mutations } from './sim/mutations.js';
import { copy_cost_ns, PCIE_BW } from './sim/costs.js';
import { alloc_page_sleepable, folio_alloc_sleepable, copy_highpages } from '../mm/page_alloc.js';
import { memunmap_pages, release_mem_region } from '../mm/memremap.js';
import { folio_lock } from '../mm/filemap.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, migrate_pfn, migrate_pfn_to_page,
} from '../include/linux/migrate.js';
import { migrate_device_range, migrate_device_pages, migrate_device_finalize } from '../mm/migrate_device.js';
import { WARN_ON } from '../include/asm-generic/bug.js';
import { type dmirror_chunk, type dmirror_device, BACKING_PAGE, DEVMEM_CHUNK_SIZE } from './test_hmm_devmem.js';

/**
 * dmirror_device_evict_chunk() - migrate every in-use page of a chunk back
 * to system memory, whoever maps it (migrate_device_range): allocate a RAM
 * page or folio per source, copy, then let core mm switch the mappings.
 * Context: may sleep; no mmap_lock needed (the core finds the mappings
 * through rmap).
 */
export function* dmirror_device_evict_chunk(chunk: dmirror_chunk): Sleepable {
  const start_pfn = chunk.pagemap.start_pfn!;
  const npages = chunk.pagemap.nr_pages!;
  const src = new Array<number>(npages).fill(0);
  const dst = new Array<number>(npages).fill(0);
  yield* migrate_device_range(src, start_pfn, npages);
  for (let i = 0; i < npages; i++) {
    const sp = migrate_pfn_to_page(src[i]);
    if (sp === null || !(src[i] & MIGRATE_PFN_MIGRATE)) continue;
    if (WARN_ON(!is_device_private_page(sp) && !is_device_coherent_page(sp), 'dmirror_device_evict_chunk: not device memory')) {
      continue;
    }
    let order = folio_order(sp.compound_head);
    const spage = BACKING_PAGE(sp);
    let dpage: page;
    if (src[i] & MIGRATE_PFN_COMPOUND) {
      dpage = (yield* folio_alloc_sleepable(GFP_HIGHUSER_MOVABLE | __GFP_NOFAIL, order))!;
    } else {
      dpage = (yield* alloc_page_sleepable(GFP_HIGHUSER_MOVABLE | __GFP_NOFAIL))!;
      order = 0;
    }
    yield* folio_lock(dpage);
    dst[i] = migrate_pfn(dpage.pfn) + (src[i] & MIGRATE_PFN_WRITE) + (order ? MIGRATE_PFN_COMPOUND : 0);
    copy_highpages(dpage, spage, 1 << order);
    charge(copy_cost_ns(PAGE_SIZE << order, PCIE_BW));
  }
  yield* migrate_device_pages(src, dst, npages);
  yield* migrate_device_finalize(src, dst, npages);
}

/* Take a chunk's free pages off both free lists so they are not handed out again. */
function dmirror_remove_free_pages(devmem: dmirror_chunk): void {
  const mdevice = devmem.mdevice;
  const first = devmem.pagemap.start_pfn!, end = first + devmem.pagemap.nr_pages!;
  const keep = (pfn: number): boolean => pfn < first || pfn >= end;
  mdevice.free_folios.filter(keep);
  mdevice.free_pages.filter(keep);
}

/** Eviction passes after the first before memunmap_pages() is left to wait. */
export const DMIRROR_EVICT_RETRIES = 8;

/*
 * A migration to the device that took a page of the chunk off the free
 * list before remove was set holds it locked until migrate_vma_finalize(),
 * so the eviction pass skips it (migrate_device_range() only trylocks)
 * and the process maps it afterwards; memunmap_pages() would then wait
 * until the process lets go of the page (Linux's lib/test_hmm.c evicts
 * once and has this window). Sleep and evict again while pages of the
 * chunk are in use, a bounded number of times.
 */
function* dmirror_evict_stragglers(devmem: dmirror_chunk): Sleepable {
  if (race_mutations.single_evict_pass) return;
  for (let pass = 0; pass < DMIRROR_EVICT_RETRIES && (devmem.pagemap.ref ?? 0) !== 0; pass++) {
    count_event('dmirror_evict_retry');
    yield* msleep(1);
    yield* dmirror_device_evict_chunk(devmem);
  }
}

/**
 * dmirror_device_remove_chunks() - HMM_DMIRROR_RELEASE and module unload:
 * evict every chunk, unmap its struct pages and forget it. Later
 * allocations add new chunks on demand.
 * Context: may sleep.
 */
export function* dmirror_device_remove_chunks(mdevice: dmirror_device): Sleepable {
  yield* mutex_lock(mdevice.devmem_lock);
  if (mdevice.devmem_chunks !== null) {
    for (let i = 0; i < mdevice.devmem_count; i++) {
      const devmem = mdevice.devmem_chunks[i];
      spin_lock(mdevice.lock);
      devmem.remove = true;
      dmirror_remove_free_pages(devmem);
      spin_unlock(mdevice.lock);
      yield* dmirror_device_evict_chunk(devmem);
      yield* dmirror_evict_stragglers(devmem);
      yield* memunmap_pages(devmem.pagemap);
      if (devmem.pagemap.type === MEMORY_DEVICE_PRIVATE) release_mem_region(devmem.pagemap.range.start, DEVMEM_CHUNK_SIZE);
    }
    mdevice.devmem_count = 0;
    mdevice.devmem_capacity = 0;
    mdevice.free_pages.clear();
    mdevice.free_folios.clear();
    mdevice.devmem_chunks = null;
  }
  mutex_unlock(mdevice.devmem_lock);
  trace_event('dmirror_remove_chunks', { dev: mdevice.minor });
}
