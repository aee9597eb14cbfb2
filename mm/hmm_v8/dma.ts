/*
 * mm/hmm_v8/dma.ts - HMM v8 patches 13 and 24: DMA mapping on behalf of the
 * device driver.
 *
 *   [PATCH 13/36] HMM: DMA map memory on behalf of device driver
 *   [PATCH 24/36] HMM: split DMA mapping function in two
 *
 * When a device registers with a DMA device (hmm_device.dev), HMM maps
 * every page it exposes and stores the bus address in the mirror
 * (VALID_DMA). PFN entries then exist only for the short time between the
 * CPU-table walk and this mapping: a driver with a dev must ignore them.
 * The mapping is torn down by the invalidation path when an event drops the
 * entry (MIGRATE, MUNMAP: mm/hmm_v8/update.ts) and by migration when a page
 * changes hands.
 *
 * hmm_mirror_dma_map_range() maps one leaf directory's worth of entries:
 * map outside the directory lock (an IOMMU update is not free), then take
 * the lock and check the entry did not change meanwhile; if it did, undo
 * the mapping and, if the entry is still a selected pfn entry, try again.
 * A DIRTY bit the driver set in between is kept. Between the map and the
 * lock there is a preemption point, so the race checks can put an
 * invalidation there.
 *
 * Bus addresses come from lib/dma/mapping.ts (an IOMMU: never equal to the
 * physical address). A mapping failure returns -ENOMEM; entries mapped so
 * far stay mapped (valid DMA entries of current pages) and are unmapped by
 * the next invalidation.
 */
import { PAGE_SIZE } from '../../include/linux/mm.js';
import {
  HMM_PTE_WRITE, HMM_PTE_DIRTY, HMM_PTE_SELECT, hmm_pte_test_valid_pfn, hmm_pte_test_select, hmm_pte_pfn,
  hmm_pte_from_dma_addr, hmm_pte_clear_dirty, type hmm_mirror,
} from '../../include/linux/hmm_v8.js';
import { ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import { cond_resched, type Sleepable } from '../../lib/sim/sched.js';
import { dma_map_page, dma_unmap_page, dma_mapping_error, DMA_BIDIRECTIONAL } from '../../lib/dma/mapping.js';
import { count_event } from '../../lib/sim/trace.js';
import { pfn_to_page } from '../page_alloc.js';
import {
  hmm_pt_iter_update, hmm_pt_iter_next, hmm_pt_level_next, hmm_pt_directory_lock, hmm_pt_directory_unlock,
  hmm_pt_load, hmm_pt_store, type hmm_pt, type hmm_pt_iter,
} from './hmm_pt.js';

/**
 * hmm_mirror_dma_map_range() - DMA-map the selected pfn entries of
 * [ptr, ptr + npages) (one leaf directory).
 * Context: may sleep (preemption point); takes the directory lock.
 * Return: 0 or -ENOMEM (a mapping failed).
 */
export function* hmm_mirror_dma_map_range(mirror: hmm_mirror, pt: hmm_pt, ptr: number, npages: number): Sleepable<number> {
  const dev = mirror.device.dev!;
  for (let i = 0; i < npages; i++) {
    const q = ptr + i;
    for (;;) {
      const e = hmm_pt_load(pt, q);
      if (!hmm_pte_test_valid_pfn(e) || !hmm_pte_test_select(e)) break;
      const dma = dma_map_page(dev, pfn_to_page(hmm_pte_pfn(e)), 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
      if (dma_mapping_error(dev, dma)) return -ENOMEM;
      yield* cond_resched();
      hmm_pt_directory_lock(pt, q);
      const cur = hmm_pt_load(pt, q);
      if (hmm_pte_clear_dirty(cur) !== hmm_pte_clear_dirty(e)) {
        hmm_pt_directory_unlock(pt, q);
        dma_unmap_page(dev, dma, PAGE_SIZE, DMA_BIDIRECTIONAL);
        count_event('hmm_v8_dma_map_raced');
        continue;                           /* still a selected pfn entry? map it again */
      }
      hmm_pt_store(pt, q, hmm_pte_from_dma_addr(dma) + (cur & (HMM_PTE_WRITE | HMM_PTE_DIRTY | HMM_PTE_SELECT)));
      hmm_pt_directory_unlock(pt, q);
      count_event('hmm_v8_dma_map');
      break;
    }
  }
  return 0;
}

/**
 * hmm_mirror_dma_map() - DMA-map every selected pfn entry of [start, end)
 * of @mirror's table, one leaf directory at a time.
 * Context: may sleep. Return: 0 or -ENOMEM.
 */
export function* hmm_mirror_dma_map(mirror: hmm_mirror, iter: hmm_pt_iter, start: number, end: number): Sleepable<number> {
  const pt = iter.pt;
  for (let addr = start; addr < end;) {
    const ptr = hmm_pt_iter_update(iter, addr);
    if (ptr < 0) { addr = hmm_pt_iter_next(iter, addr, end); continue; }
    const next = hmm_pt_level_next(pt, addr, end, pt.llevel - 1);
    const ret = yield* hmm_mirror_dma_map_range(mirror, pt, ptr, (next - addr) / PAGE_SIZE);
    if (ret) return ret;
    addr = next;
  }
  return 0;
}
