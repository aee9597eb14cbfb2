/*
 * drivers/infiniband/core/umem_odp.ts - on-demand paging umems: creation,
 * the DMA bookkeeping all designs share, and the mainline design.
 *
 * Follows drivers/infiniband/core/umem_odp.c of Linux v5.10 (the first
 * release where the fault path is hmm_range_fault() over one
 * mmu_interval_notifier per umem): ib_umem_odp_get,
 * ib_umem_odp_alloc_implicit, ib_umem_odp_alloc_child, ib_umem_odp_release,
 * ib_umem_odp_map_dma_single_page, ib_umem_odp_map_dma_and_lock,
 * ib_umem_odp_unmap_dma_pages. The other two designs are
 * umem_odp_2014.ts (Linux v3.19) and umem_odp_hmm_v8.ts (HMM v8 patches
 * 29-36); include/rdma/ib_umem_odp.ts compares the three. A device picks
 * one when it is created (ib_device.odp_design) and every umem of its
 * contexts uses it: ib_umem_odp_map_dma_and_lock() below dispatches.
 *
 * The contract every design keeps, so that hw/mlx5/odp.ts is the same for
 * all three: map_dma_and_lock() returns the number of pages, from the page
 * of @user_virt on, whose dma_list entries are now valid with at least
 * @access_mask, and returns with umem_mutex HELD; every invalidation
 * clears dma_list and zaps the MTT under the same mutex. So an MTT
 * written from dma_list under umem_mutex never holds a stale address.
 *
 * Simplified: page_shift is always PAGE_SHIFT (no IB_ACCESS_HUGETLB);
 * the owning task is the mm (no get_pid_task); no per_mm sharing.
 */
import type { page } from '../../../include/linux/mm_types.js';
import {
  type ib_umem_odp, type ib_ucontext_odp, ODP_READ_ALLOWED_BIT, ODP_WRITE_ALLOWED_BIT, odp_dma_addr,
  ib_umem_start, ib_umem_end,
} from '../../../include/rdma/ib_umem_odp.js';
import type { mmu_interval_notifier, mmu_notifier_range } from '../../../include/linux/mmu_notifier.js';
import { PAGE_SIZE, PAGE_SHIFT, page_folio } from '../../../include/linux/mm.js';
import { SetPageDirty } from '../../../include/linux/page-flags.js';
import {
  HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_PFN_VALID, HMM_PFN_WRITE, HMM_RANGE_DEFAULT_TIMEOUT_NS,
  hmm_pfn_flags, hmm_pfn_to_page, type hmm_range,
} from '../../../include/linux/hmm.js';
import { EBUSY, EFAULT, EINVAL } from '../../../include/uapi/asm-generic/errno.js';
import { cond_resched, type Sleepable } from '../../../lib/sim/sched.js';
import { now, charge } from '../../../lib/sim/clock.js';
import { PAGE_TABLE_WALK_NS, PTE_UPDATE_NS } from '../../../lib/sim/costs.js';
import { mutex, mutex_lock, mutex_unlock, mutex_trylock } from '../../../lib/locking/mutex.js';
import { lockdep_set_class } from '../../../lib/locking/lockdep.js';
import { completion } from '../../../lib/locking/completion.js';
import { count_event, trace_event } from '../../../lib/sim/trace.js';
import { device, dma_map_page, dma_mapping_error, dma_unmap_page, DMA_BIDIRECTIONAL } from '../../../lib/dma/mapping.js';
import {
  mmu_interval_notifier_insert, mmu_interval_notifier_remove, mmu_interval_read_begin, mmu_interval_read_retry,
  mmu_interval_set_seq, mmu_notifier_range_blockable,
} from '../../../mm/mmu_notifier.js';
import { mmap_read_lock, mmap_read_unlock } from '../../../mm/mmap_lock.js';
import { mmget_not_zero, mmput, mmgrab, mmdrop } from '../../../mm/task.js';
import { hmm_range_fault } from '../../../mm/hmm.js';
import { umem_odp_2014_init, umem_odp_2014_release, umem_odp_2014_map_dma_and_lock } from './umem_odp_2014.js';
import { umem_odp_v8_init, umem_odp_v8_release, umem_odp_v8_map_dma_and_lock } from './umem_odp_hmm_v8.js';

/**
 * ib_umem_odp_params - teaching switches, off by default.
 * @broken_skip_retry: the 2014 and mainline fault paths publish without
 *   the notifier retry check (ib_umem_mmu_notifier_retry /
 *   mmu_interval_read_retry): the race the check exists for then leaves a
 *   stale address in the MTT; test/drivers/infiniband/core/umem_odp_races
 *   finds it. (HMM v8 has its own switch: hmm_v8_config.no_fault_backoff.)
 */
export const ib_umem_odp_params = { broken_skip_retry: false };

interface odp_interval extends mmu_interval_notifier { odp: ib_umem_odp; }

function odp_new(uctx: ib_ucontext_odp, addr: number, length: number, writable: boolean, implicit: boolean): ib_umem_odp {
  const npages = implicit ? 0 : length / PAGE_SIZE;
  return {
    umem: { mm: uctx.mm, address: addr, length, writable, is_odp: true, pages: [] },
    design: uctx.design, uctx, page_shift: PAGE_SHIFT, umem_mutex: lockdep_set_class(new mutex(`ib_umem_odp@${addr.toString(16)}.umem_mutex`), '&umem_odp->umem_mutex'),
    dma_list: new Float64Array(npages), page_list: new Array<page | null>(npages).fill(null), npages: 0,
    notifiers_seq: 0, notifiers_count: 0, mn_counters_active: false,
    notifier_completion: new completion('ib_umem_odp.notifier_completion'), notifier: null,
    is_implicit_odp: implicit, private: null, dead: false, start: addr, last: addr + Math.max(length, 1) - 1,
  };
}

/* Per-design set-up after the umem exists: the notifier it hangs on. */
function* odp_init(odp: ib_umem_odp): Sleepable<number> {
  switch (odp.design) {
    case '2014': return yield* umem_odp_2014_init(odp);
    case 'hmm_v8': return yield* umem_odp_v8_init(odp);
    case 'mainline': {
      const sub = { odp } as odp_interval;
      const ret = yield* mmu_interval_notifier_insert(sub, odp.umem.mm, odp.umem.address, odp.umem.length, ib_umem_notifier_ops);
      if (ret) return ret;
      odp.notifier = sub;
      return 0;
    }
  }
}

/**
 * ib_umem_odp_get() - an ODP umem over [addr, addr + size); nothing is
 * faulted or pinned.
 * Context: may sleep (the notifier registration takes mmap_lock for write).
 * Return: the umem, or -EINVAL for an empty or wrapping range.
 */
export function* ib_umem_odp_get(uctx: ib_ucontext_odp, addr: number, size: number, writable: boolean): Sleepable<ib_umem_odp | number> {
  if (!(size > 0) || addr + size < addr) return -EINVAL;
  const start = addr - (addr % PAGE_SIZE);
  const end = Math.ceil((addr + size) / PAGE_SIZE) * PAGE_SIZE;
  const odp = odp_new(uctx, start, end - start, writable, false);
  const ret = yield* odp_init(odp);
  if (ret) return ret;
  mmgrab(uctx.mm);
  trace_event('ib_umem_odp_get', { design: odp.design, start, npages: (end - start) / PAGE_SIZE, writable });
  return odp;
}

/**
 * ib_umem_odp_alloc_implicit() - the parent umem of an implicit MR: it
 * covers the whole address space and has no pages; children do.
 */
export function ib_umem_odp_alloc_implicit(uctx: ib_ucontext_odp, writable: boolean): ib_umem_odp {
  mmgrab(uctx.mm);
  return odp_new(uctx, 0, 0, writable, true);
}

/**
 * ib_umem_odp_alloc_child() - a child of an implicit MR over [addr, addr + size).
 * Context: may sleep. Return: the umem or -errno.
 */
export function* ib_umem_odp_alloc_child(root: ib_umem_odp, addr: number, size: number): Sleepable<ib_umem_odp | number> {
  const odp = odp_new(root.uctx, addr, size, root.umem.writable, false);
  const ret = yield* odp_init(odp);
  if (ret) return ret;
  mmgrab(root.uctx.mm);
  return odp;
}

/**
 * ib_umem_odp_release() - stop notifications, unmap every page, free.
 * Context: may sleep; umem_mutex not held.
 */
export function* ib_umem_odp_release(odp: ib_umem_odp): Sleepable {
  if (!odp.is_implicit_odp) {
    if (odp.design === 'mainline' && odp.notifier !== null) yield* mmu_interval_notifier_remove(odp.notifier);
    if (odp.design === '2014') yield* umem_odp_2014_release(odp);
    if (odp.design === 'hmm_v8') yield* umem_odp_v8_release(odp);
    yield* mutex_lock(odp.umem_mutex);
    ib_umem_odp_unmap_dma_pages(odp, ib_umem_start(odp), ib_umem_end(odp));
    odp.dead = true;
    mutex_unlock(odp.umem_mutex);
  }
  mmdrop(odp.umem.mm);
}

/**
 * ib_umem_odp_map_dma_single_page() - make dma_list[idx] map @p with
 * @access_mask. An entry already mapped keeps its bus address and only
 * takes the new permission bits (read-only -> writable without unmapping).
 * Linux v5.10 resyncs the bits to @access_mask exactly; this model keeps a
 * W bit already granted, so a read prefetch cannot lose the dirty marking.
 * Context: umem_mutex held. Return: 0, or -EFAULT if the DMA mapping failed.
 */
export function ib_umem_odp_map_dma_single_page(odp: ib_umem_odp, idx: number, p: page, access_mask: number): number {
  const cur = odp.dma_list[idx];
  const dev = odp.uctx.dma_device as device;
  if (cur !== 0 && odp.page_list[idx]?.pfn === p.pfn) {
    const bits = (cur % 4) | access_mask;
    if (bits !== cur % 4) { count_event('ib_umem_odp_perm_upgrade'); trace_event('ib_umem_odp_perm_upgrade', { idx, bits }); }
    odp.dma_list[idx] = odp_dma_addr(cur) + bits;
    return 0;
  }
  if (cur !== 0) ib_umem_odp_unmap_one(odp, idx);
  const dma = dma_map_page(dev, p, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
  if (dma_mapping_error(dev, dma)) return -EFAULT;
  odp.dma_list[idx] = dma + access_mask;
  odp.page_list[idx] = p;
  odp.npages++;
  return 0;
}

function ib_umem_odp_unmap_one(odp: ib_umem_odp, idx: number): void {
  const e = odp.dma_list[idx];
  const p = odp.page_list[idx];
  if (odp.design !== 'hmm_v8') dma_unmap_page(odp.uctx.dma_device as device, odp_dma_addr(e), PAGE_SIZE, DMA_BIDIRECTIONAL);
  if ((e & ODP_WRITE_ALLOWED_BIT) && p !== null) SetPageDirty(page_folio(p));
  odp.dma_list[idx] = 0;
  odp.page_list[idx] = null;
  odp.npages--;
}

/**
 * ib_umem_odp_unmap_dma_pages() - forget [virt, bound): DMA-unmap each
 * mapped page (HMM v8 owns its mappings, so there only the entry goes) and
 * set_page_dirty() on pages the NIC was allowed to write.
 * Context: umem_mutex held.
 */
export function ib_umem_odp_unmap_dma_pages(odp: ib_umem_odp, virt: number, bound: number): void {
  const from = Math.max(virt, ib_umem_start(odp)), to = Math.min(bound, ib_umem_end(odp));
  for (let a = from; a < to; a += PAGE_SIZE) {
    const idx = (a - ib_umem_start(odp)) / PAGE_SIZE;
    if (odp.dma_list[idx] !== 0) ib_umem_odp_unmap_one(odp, idx);
  }
}

/* ---- the mainline design: one interval notifier per umem ---- */

/*
 * ib_umem_notifier_invalidate() - mmu_interval_notifier_ops.invalidate
 * (mlx5_ib_invalidate_range's front half in Linux): under umem_mutex,
 * record the sequence, then let the driver zap the MTT and unmap.
 */
function* ib_umem_notifier_invalidate(mni: mmu_interval_notifier, range: mmu_notifier_range, cur_seq: number): Sleepable<boolean> {
  const odp = (mni as odp_interval).odp;
  if (mmu_notifier_range_blockable(range)) yield* mutex_lock(odp.umem_mutex);
  else if (!mutex_trylock(odp.umem_mutex)) return false;
  mmu_interval_set_seq(mni, cur_seq);
  if (odp.npages > 0) odp.uctx.invalidate_range(odp, range.start, range.end);
  mutex_unlock(odp.umem_mutex);
  return true;
}

const ib_umem_notifier_ops = Object.freeze({ invalidate: ib_umem_notifier_invalidate });

/**
 * ib_umem_odp_map_dma_and_lock() - fault and DMA-map the pages of
 * [user_virt, user_virt + bcnt) and return with umem_mutex held.
 * @access_mask: ODP_READ_ALLOWED_BIT, plus ODP_WRITE_ALLOWED_BIT to ask
 *   for write access.
 * @fault: false for PREFETCH_NO_FAULT: map only pages the CPU already maps.
 * Context: may sleep; takes mmap_lock for read, then umem_mutex.
 * Return: pages mapped from the first page on (>= 0; umem_mutex HELD), or
 * -errno without the mutex: -EFAULT outside the umem or no VMA, -EPERM for
 * a write to read-only memory, -EBUSY when notifiers kept the range busy
 * past HMM_RANGE_DEFAULT_TIMEOUT, -EINVAL when the mm is gone.
 */
export function* ib_umem_odp_map_dma_and_lock(odp: ib_umem_odp, user_virt: number, bcnt: number, access_mask: number,
                                              fault: boolean): Sleepable<number> {
  if (access_mask === 0 || odp.dead) return -EINVAL;
  if (user_virt < ib_umem_start(odp) || user_virt + bcnt > ib_umem_end(odp) || bcnt <= 0) return -EFAULT;
  if (odp.design === '2014') return yield* umem_odp_2014_map_dma_and_lock(odp, user_virt, bcnt, access_mask, fault);
  if (odp.design === 'hmm_v8') return yield* umem_odp_v8_map_dma_and_lock(odp, user_virt, bcnt, access_mask, fault);
  const mm = odp.umem.mm;
  if (!mmget_not_zero(mm)) return -EINVAL;
  const start = user_virt - (user_virt % PAGE_SIZE);
  const end = Math.min(Math.ceil((user_virt + bcnt) / PAGE_SIZE) * PAGE_SIZE, ib_umem_end(odp));
  const want_write = (access_mask & ODP_WRITE_ALLOWED_BIT) !== 0;
  const range: hmm_range = {
    notifier: odp.notifier!, notifier_seq: 0, start, end, hmm_pfns: new Float64Array((end - start) / PAGE_SIZE),
    default_flags: fault ? HMM_PFN_REQ_FAULT | (want_write ? HMM_PFN_REQ_WRITE : 0) : 0, pfn_flags_mask: 0,
    dev_private_owner: null,
  };
  const timeout = now() + HMM_RANGE_DEFAULT_TIMEOUT_NS;
  let ret: number;
  for (;;) {
    range.notifier_seq = yield* mmu_interval_read_begin(range.notifier);
    yield* mmap_read_lock(mm);
    ret = yield* hmm_range_fault(range);
    mmap_read_unlock(mm);
    if (ret === -EBUSY && now() < timeout) { range.hmm_pfns.fill(0); continue; }
    if (ret) break;
    yield* cond_resched();            /* the window mmu_interval_read_retry closes */
    yield* mutex_lock(odp.umem_mutex);
    if (mmu_interval_read_retry(range.notifier, range.notifier_seq) && !ib_umem_odp_params.broken_skip_retry) {
      mutex_unlock(odp.umem_mutex);
      count_event('ib_umem_odp_retry');
      range.hmm_pfns.fill(0);
      continue;
    }
    ret = odp_publish_pfns(odp, range, fault, access_mask);
    /* hmm_range_fault walks down once per PMD and reads each PTE */
    charge(Math.ceil(range.hmm_pfns.length / 512) * PAGE_TABLE_WALK_NS + range.hmm_pfns.length * PTE_UPDATE_NS);
    if (ret < 0) mutex_unlock(odp.umem_mutex);
    break;
  }
  yield* mmput(mm);
  trace_event('ib_umem_odp_map_dma_and_lock', { design: 'mainline', start, end, write: want_write, fault, ret });
  return ret;
}

/*
 * Map what hmm_range_fault() found; umem_mutex held. A fault maps with the
 * access asked for (a read fault maps read-only even where the CPU may
 * write, so a later write fault is an in-place upgrade); NO_FAULT maps with
 * what the CPU PTE allows and skips holes.
 * Return: pages mapped contiguously from the first (NO_FAULT: pages mapped
 * anywhere in the range), or -errno: -EFAULT when a DMA mapping failed
 * (Linux v5.10 returns the error, not the pages mapped before it).
 */
function odp_publish_pfns(odp: ib_umem_odp, range: hmm_range, fault: boolean, access_mask: number): number {
  const base = (range.start - ib_umem_start(odp)) / PAGE_SIZE;
  let k = 0;
  for (let i = 0; i < range.hmm_pfns.length; i++) {
    const f = hmm_pfn_flags(range.hmm_pfns[i]);
    let access = access_mask;
    if (!(f & HMM_PFN_VALID)) {
      if (fault) return k > 0 ? k : -EFAULT;   /* hmm_range_fault promised every page */
      continue;
    }
    if (!fault) access = ODP_READ_ALLOWED_BIT | (f & HMM_PFN_WRITE ? ODP_WRITE_ALLOWED_BIT : 0);
    const ret = ib_umem_odp_map_dma_single_page(odp, base + i, hmm_pfn_to_page(range.hmm_pfns[i]), access);
    if (ret) return ret;      /* a DMA mapping failure fails the whole call (-EFAULT), pages mapped so far stay mapped */
    if (k === i || !fault) k++;
  }
  return k;
}

