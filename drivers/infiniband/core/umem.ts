/*
 * drivers/infiniband/core/umem.ts - pinned user memory regions: the
 * baseline ODP is measured against.
 *
 * Follows drivers/infiniband/core/umem.c of Linux v5.10 (ib_umem_get,
 * ib_umem_release): every page of the range is pinned with
 * pin_user_pages(FOLL_LONGTERM) (and FOLL_WRITE when the MR is writable),
 * then DMA-mapped; the pins hold until deregistration. Simplified: no
 * scatterlist (one bus address per 4 KiB page, kept in the MR's MTT by the
 * driver), no RLIMIT_MEMLOCK accounting, no huge-page coalescing.
 *
 * What a long-term pin means for the process (the pitfalls in
 * Documentation/vm/hmm.txt, "ODP"): the pinned pages never move, so after
 * munmap the NIC keeps reading and writing the old pages, which nobody
 * maps any more; fork copies pinned anonymous pages for the child at once
 * (Linux 5.9 and later, mm/fork.ts), so the parent keeps the page the NIC
 * uses.
 */
import type { page } from '../../../include/linux/mm_types.js';
import type { mm_struct } from '../../../include/linux/mm_types.js';
import type { ib_umem } from '../../../include/rdma/ib_umem_odp.js';
import { PAGE_SIZE, FOLL_WRITE, FOLL_LONGTERM, page_folio } from '../../../include/linux/mm.js';
import { SetPageDirty } from '../../../include/linux/page-flags.js';
import { EFAULT, EINVAL, ENOMEM } from '../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { trace_event, count_event } from '../../../lib/sim/trace.js';
import { pin_user_pages, unpin_user_page } from '../../../mm/gup.js';
import { mmap_read_lock, mmap_read_unlock } from '../../../mm/mmap_lock.js';
import { mmgrab, mmdrop } from '../../../mm/task.js';

/** Largest registration accepted: 2^46 bytes (the size an MTT of 48 bits covers, minus headroom). */
export const IB_UMEM_MAX_LENGTH = 2 ** 46;

/**
 * ib_umem_check_range() - the argument checks every registration makes.
 * Return: 0, -EINVAL for an empty or negative range, -ENOMEM for one that
 * wraps or exceeds what an MTT covers. Unmapped addresses are not checked
 * here: they fail when pinned (-EFAULT) or, for ODP, when faulted.
 */
export function ib_umem_check_range(addr: number, size: number): number {
  if (!(size > 0) || !Number.isInteger(addr) || !Number.isInteger(size) || addr < 0) return -EINVAL;
  if (addr + size < addr || size > IB_UMEM_MAX_LENGTH) return -ENOMEM;
  return 0;
}

/**
 * ib_umem_get() - pin [addr, addr + size) of @mm for DMA.
 * @writable: ib_access_writable(access); pins with FOLL_WRITE (so a
 *   read-only mapping fails here, at registration, with -EFAULT).
 *
 * The range is widened to whole pages.
 * Context: may sleep; takes mmap_lock for read.
 * Return: the umem, or -EINVAL / -ENOMEM for bad sizes, -EFAULT when a
 * page cannot be pinned (no VMA, PROT_NONE, read-only for a writable MR),
 * -ENOMEM when memory runs out. On error nothing stays pinned.
 */
export function* ib_umem_get(mm: mm_struct, addr: number, size: number, writable: boolean): Sleepable<ib_umem | number> {
  const err = ib_umem_check_range(addr, size);
  if (err) return err;
  const start = addr - (addr % PAGE_SIZE);
  const end = Math.ceil((addr + size) / PAGE_SIZE) * PAGE_SIZE;
  const npages = (end - start) / PAGE_SIZE;
  const gup_flags = FOLL_LONGTERM | (writable ? FOLL_WRITE : 0);
  const pages: page[] = [];
  yield* mmap_read_lock(mm);
  let ret = 0;
  while (pages.length < npages) {
    const got: page[] = [];
    const n = yield* pin_user_pages(mm, start + pages.length * PAGE_SIZE, npages - pages.length, gup_flags, got);
    if (n <= 0) { ret = n === 0 ? -EFAULT : n; break; }
    for (const p of got) pages.push(p);
  }
  mmap_read_unlock(mm);
  if (ret) {
    for (const p of pages) unpin_user_page(p);
    trace_event('ib_umem_get_failed', { start, npages, ret });
    return ret;
  }
  mmgrab(mm);
  count_event('ib_umem_pinned_pages', npages);
  trace_event('ib_umem_get', { start, npages, writable, pinned: npages });
  return { mm, address: start, length: end - start, writable, is_odp: false, pages };
}

/**
 * ib_umem_release() - unpin every page; a writable umem marks them dirty
 * first (unpin_user_page_range_dirty_lock), since the NIC may have written.
 * Context: may sleep.
 */
export function ib_umem_release(umem: ib_umem): void {
  for (const p of umem.pages) {
    if (umem.writable) SetPageDirty(page_folio(p));
    unpin_user_page(p);
  }
  trace_event('ib_umem_release', { start: umem.address, npages: umem.pages.length });
  umem.pages = [];
  mmdrop(umem.mm);
}

/** ib_umem_num_pages() - pages a umem spans. */
export function ib_umem_num_pages(umem: ib_umem): number {
  return umem.length / PAGE_SIZE;
}
