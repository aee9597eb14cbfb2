/*
 * drivers/infiniband/core/umem_odp_2014.ts - ODP as merged in Linux 3.19
 * (December 2014, "IB/core: Add support for on demand paging regions" and
 * "IB/core: Implement support for MMU notifiers regarding on demand paging
 * regions", Eran, Raindel, Grimberg).
 *
 * Follows drivers/infiniband/core/umem_odp.c and umem_rbtree.c of Linux
 * v3.19, on the classic whole-mm mmu_notifier API of mm/mmu_notifier.ts
 * (invalidate_range_start/end per mm):
 *
 *  - each ib_ucontext registers ONE mmu_notifier on the process' mm when
 *    its first ODP umem is created, and keeps its ODP umems in an interval
 *    tree (umem_tree); every invalidation of the mm walks that tree;
 *  - per umem, notifiers_count (invalidations running over it) and
 *    notifiers_seq (invalidations finished), the scheme KVM uses
 *    (mmu_notifier_retry): a fault samples notifiers_seq BEFORE it looks at
 *    the CPU page table, and publishes only if, under umem_mutex, no
 *    invalidation is running and the seq has not moved;
 *  - the context's notifier_count and its no_private_counters list: a umem
 *    created while an invalidation is already running did not see that
 *    invalidation's start, so its counters cannot be trusted until every
 *    running invalidation has ended (mn_counters_active);
 *  - faults use get_user_pages() and drop each page reference as soon as
 *    the page is DMA-mapped ("on-demand pinning"): nothing stays pinned;
 *    the notifier is what keeps the NIC off a freed page;
 *  - a fault that loses the race waits on notifier_completion (completed
 *    when notifiers_count drops to 0), up to MMU_NOTIFIER_TIMEOUT.
 *
 * Simplified: the context's umem_rwsem is not modelled (the cooperative
 * scheduler cannot run the tree walk and an insert at once); the 3.19
 * invalidate_page callback is covered by range start/end, as the mm of
 * this tree sends ranges only. No NO_FAULT prefetch existed (-EOPNOTSUPP).
 */
import type { mmu_notifier, mmu_notifier_range } from '../../../include/linux/mmu_notifier.js';
import {
  type ib_umem_odp, type ib_ucontext_odp, ODP_WRITE_ALLOWED_BIT, ib_umem_start, ib_umem_end,
} from '../../../include/rdma/ib_umem_odp.js';
import type { page } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE, FOLL_WRITE } from '../../../include/linux/mm.js';
import { MMU_NOTIFIER_TIMEOUT_MS } from '../../../include/linux/mlx5/odp.js';
import { EAGAIN, EOPNOTSUPP, EINVAL, EBUSY } from '../../../include/uapi/asm-generic/errno.js';
import { cond_resched, type Sleepable } from '../../../lib/sim/sched.js';
import { now, charge, NSEC_PER_MSEC } from '../../../lib/sim/clock.js';
import { PAGE_TABLE_WALK_NS, LOCK_ACQUIRE_NS } from '../../../lib/sim/costs.js';
import { mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';
import { complete_all, reinit_completion, wait_for_completion_timeout } from '../../../lib/locking/completion.js';
import { count_event, trace_event } from '../../../lib/sim/trace.js';
import { mmu_notifier_register, mmu_notifier_unregister } from '../../../mm/mmu_notifier.js';
import { get_user_pages } from '../../../mm/gup.js';
import { mmap_read_lock, mmap_read_unlock } from '../../../mm/mmap_lock.js';
import { mmget_not_zero, mmput } from '../../../mm/task.js';
import { put_page } from '../../../mm/page_alloc.js';
import { ib_umem_odp_map_dma_single_page, ib_umem_odp_params } from './umem_odp.js';

interface ib_ucontext_mn extends mmu_notifier { uctx: ib_ucontext_odp; }

/* ib_umem_notifier_start_account() / _end_account(): the per-umem counters */
function* ib_umem_notifier_start(odp: ib_umem_odp, start: number, end: number): Sleepable {
  yield* mutex_lock(odp.umem_mutex);
  if (odp.mn_counters_active) {
    if (odp.notifiers_count++ === 0) reinit_completion(odp.notifier_completion);
  }
  if (odp.npages > 0) odp.uctx.invalidate_range(odp, start, end);
  mutex_unlock(odp.umem_mutex);
}

function* ib_umem_notifier_end(odp: ib_umem_odp): Sleepable {
  yield* mutex_lock(odp.umem_mutex);
  if (odp.mn_counters_active) {
    odp.notifiers_seq++;
    if (--odp.notifiers_count === 0) complete_all(odp.notifier_completion);
  }
  mutex_unlock(odp.umem_mutex);
}

/*
 * ib_umem_notifier_invalidate_range_start() - the context's notifier: count
 * the invalidation in the context, then in every overlapping umem, zapping
 * each (the driver's invalidate_range under umem_mutex).
 */
function* ib_umem_notifier_invalidate_range_start(mn: mmu_notifier, range: mmu_notifier_range): Sleepable<number> {
  const uctx = (mn as ib_ucontext_mn).uctx;
  uctx.notifier_count++;
  for (const odp of uctx.umem_tree.overlapping(range.start, range.end - 1))
    yield* ib_umem_notifier_start(odp, range.start, range.end);
  return 0;
}

function* ib_umem_notifier_invalidate_range_end(mn: mmu_notifier, range: mmu_notifier_range): Sleepable {
  const uctx = (mn as ib_ucontext_mn).uctx;
  for (const odp of uctx.umem_tree.overlapping(range.start, range.end - 1)) yield* ib_umem_notifier_end(odp);
  if (--uctx.notifier_count === 0 && uctx.no_private_counters.length > 0) {
    /* every invalidation the late umems missed has ended: their counters are valid now */
    for (const odp of uctx.no_private_counters.splice(0)) {
      yield* mutex_lock(odp.umem_mutex);
      odp.mn_counters_active = true;
      complete_all(odp.notifier_completion);
      mutex_unlock(odp.umem_mutex);
    }
  }
}

/* ib_umem_notifier_release(): the mm goes away; every umem is zapped for good */
function* ib_umem_notifier_release(mn: mmu_notifier): Sleepable {
  const uctx = (mn as ib_ucontext_mn).uctx;
  for (const odp of uctx.umem_tree.overlapping(0, Number.MAX_SAFE_INTEGER)) {
    yield* mutex_lock(odp.umem_mutex);
    if (odp.npages > 0) uctx.invalidate_range(odp, ib_umem_start(odp), ib_umem_end(odp));
    odp.dead = true;
    mutex_unlock(odp.umem_mutex);
  }
}

const ib_umem_notifiers = Object.freeze({
  release: ib_umem_notifier_release,
  invalidate_range_start: ib_umem_notifier_invalidate_range_start,
  invalidate_range_end: ib_umem_notifier_invalidate_range_end,
});

/**
 * umem_odp_2014_init() - insert the umem in the context's tree; register
 * the context's notifier with the first umem.
 * Context: may sleep (mmu_notifier_register takes mmap_lock for write).
 * Return: 0.
 */
export function* umem_odp_2014_init(odp: ib_umem_odp): Sleepable<number> {
  const uctx = odp.uctx;
  if (uctx.mn === null) {
    const mn: ib_ucontext_mn = { ops: ib_umem_notifiers, mm: null, uctx };
    uctx.mn = mn;
    yield* mmu_notifier_register(mn, uctx.mm);
  }
  uctx.umem_tree.insert(odp);
  if (uctx.notifier_count === 0) odp.mn_counters_active = true;
  else { uctx.no_private_counters.push(odp); count_event('ib_umem_odp_no_private_counters'); }
  return 0;
}

/** umem_odp_2014_release() - out of the tree; the last umem unregisters the notifier. */
export function* umem_odp_2014_release(odp: ib_umem_odp): Sleepable {
  const uctx = odp.uctx;
  uctx.umem_tree.remove(odp);
  const i = uctx.no_private_counters.indexOf(odp);
  if (i >= 0) uctx.no_private_counters.splice(i, 1);
  if (uctx.umem_tree.size === 0 && uctx.mn !== null) {
    const mn = uctx.mn as ib_ucontext_mn;
    uctx.mn = null;
    yield* mmu_notifier_unregister(mn, uctx.mm);
  }
}

/**
 * ib_umem_mmu_notifier_retry() - must a fault that sampled @mmu_seq throw
 * its work away? Yes while the umem's counters are not active yet, while
 * an invalidation runs over it, or once one finished since the sample.
 * Context: umem_mutex held.
 */
export function ib_umem_mmu_notifier_retry(odp: ib_umem_odp, mmu_seq: number): boolean {
  if (!odp.mn_counters_active) return true;
  if (odp.notifiers_count !== 0) return true;
  return odp.notifiers_seq !== mmu_seq;
}

/**
 * umem_odp_2014_map_dma_and_lock() - ib_umem_odp_map_dma_pages() of 3.19
 * with the caller's seq check folded in (see umem_odp.ts for the contract).
 * Context: may sleep. Return: pages mapped (umem_mutex held) or -errno:
 * -EFAULT (get_user_pages found no VMA or no permission: a write fault on
 * read-only memory), -EBUSY after MMU_NOTIFIER_TIMEOUT of lost races,
 * -EOPNOTSUPP for a no-fault prefetch.
 */
export function* umem_odp_2014_map_dma_and_lock(odp: ib_umem_odp, user_virt: number, bcnt: number,
                                                access_mask: number, fault: boolean): Sleepable<number> {
  if (!fault) return -EOPNOTSUPP;
  const mm = odp.umem.mm;
  if (!mmget_not_zero(mm)) return -EINVAL;
  const start = user_virt - (user_virt % PAGE_SIZE);
  const end = Math.min(Math.ceil((user_virt + bcnt) / PAGE_SIZE) * PAGE_SIZE, ib_umem_end(odp));
  const write = (access_mask & ODP_WRITE_ALLOWED_BIT) !== 0;
  const deadline = now() + MMU_NOTIFIER_TIMEOUT_MS * NSEC_PER_MSEC;
  let ret: number;
  for (;;) {
    const current_seq = odp.notifiers_seq;          /* sampled before the CPU table is read (smp_rmb) */
    const pages: page[] = [];
    yield* mmap_read_lock(mm);
    ret = yield* get_user_pages(mm, start, (end - start) / PAGE_SIZE, write ? FOLL_WRITE : 0, pages);
    mmap_read_unlock(mm);
    if (ret < 0) break;
    yield* cond_resched();                          /* an invalidation may run here */
    yield* mutex_lock(odp.umem_mutex);
    if (ib_umem_mmu_notifier_retry(odp, current_seq) && !ib_umem_odp_params.broken_skip_retry) {
      mutex_unlock(odp.umem_mutex);
      for (const p of pages) put_page(p);
      count_event('ib_umem_odp_retry');
      trace_event('ib_umem_mmu_notifier_retry', { start, seq: current_seq, now_seq: odp.notifiers_seq, count: odp.notifiers_count });
      if (now() >= deadline) { ret = -EBUSY; break; }
      yield* wait_for_completion_timeout(odp.notifier_completion, deadline - now());
      continue;
    }
    ret = map_pages(odp, start, pages, access_mask);
    /* GUP walks the CPU table once per page (follow_page_mask) and takes and drops a reference on each */
    charge(pages.length * (PAGE_TABLE_WALK_NS + 2 * LOCK_ACQUIRE_NS));
    for (const p of pages) put_page(p);             /* the reference GUP took goes at once */
    if (ret <= 0) { mutex_unlock(odp.umem_mutex); if (ret === 0) ret = -EAGAIN; }
    break;
  }
  yield* mmput(mm);
  trace_event('ib_umem_odp_map_dma_pages', { design: '2014', start, end, write, ret });
  return ret;
}

function map_pages(odp: ib_umem_odp, start: number, pages: page[], access_mask: number): number {
  const base = (start - ib_umem_start(odp)) / PAGE_SIZE;
  let k = 0;
  for (; k < pages.length; k++) {
    const ret = ib_umem_odp_map_dma_single_page(odp, base + k, pages[k], access_mask);
    if (ret) return k > 0 ? k : ret;
  }
  return k;
}
