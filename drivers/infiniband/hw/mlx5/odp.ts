/*
 * drivers/infiniband/hw/mlx5/odp.ts - the NIC side of on-demand paging:
 * the page-fault EQ and its work, faults on explicit and implicit MRs,
 * invalidation, prefetch (ibv_advise_mr and after a fault), counters.
 *
 * Follows drivers/infiniband/hw/mlx5/odp.c of Linux v5.10:
 * mlx5_ib_eq_pf_process / mlx5_ib_pfault (the EQ and its work),
 * mlx5_ib_mr_wqe_pfault_handler (requester and responder WQE faults: read
 * the WQE, fault each scatter entry), mlx5_ib_mr_rdma_pfault_handler
 * (responder RDMA faults: rkey + va + length, then a prefetch of up to
 * MAX_PREFETCH_LEN after resuming), pagefault_mr / pagefault_real_mr /
 * pagefault_implicit_mr, mlx5_ib_invalidate_range,
 * destroy_unused_implicit_child_mr, mlx5_ib_advise_mr_prefetch,
 * mlx5_update_odp_stats. The same code serves the three ib_umem_odp
 * designs: it only calls ib_umem_odp_map_dma_and_lock() and relies on its
 * contract (drivers/infiniband/core/umem_odp.ts).
 *
 * Simplified: the EQ is drained at once by the faulting thread (see
 * hw/mlx5/mlx5_ib.ts); one fault EQE per QP at a time; the WQE is read from
 * the driver's copy of the queue, not parsed from user memory.
 */
import type { ib_pd, ib_sge } from '../../../../include/rdma/ib_verbs.js';
import {
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH, IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE,
  IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT, IB_UVERBS_ADVISE_MR_FLAG_FLUSH, IB_ACCESS_ON_DEMAND,
} from '../../../../include/rdma/ib_verbs.js';
import {
  ODP_READ_ALLOWED_BIT, ODP_WRITE_ALLOWED_BIT, ib_umem_start, ib_umem_end, type ib_umem_odp,
} from '../../../../include/rdma/ib_umem_odp.js';
import {
  MLX5_IB_NUM_PF_EQE, MLX5_PFAULT_SUBTYPE_WQE, MLX5_PFAULT_SUBTYPE_RDMA, MLX5_PFAULT_REQUESTOR, MAX_PREFETCH_LEN,
  MLX5_IMR_MTT_SIZE, type mlx5_pagefault,
} from '../../../../include/linux/mlx5/odp.js';
import { PAGE_SIZE } from '../../../../include/linux/mm.js';
import { EINVAL, ENOENT, EOPNOTSUPP, EFAULT, ENOSPC } from '../../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../../lib/sim/sched.js';
import { charge } from '../../../../lib/sim/clock.js';
import { ODP_PF_SERVICE_NS } from '../../../../lib/sim/costs.js';
import { mutex_unlock } from '../../../../lib/locking/mutex.js';
import { count_event, trace_event } from '../../../../lib/sim/trace.js';
import { ib_umem_odp_map_dma_and_lock, ib_umem_odp_alloc_child, ib_umem_odp_release, ib_umem_odp_unmap_dma_pages } from '../../core/umem_odp.js';
import { type mlx5_ib_dev, type mlx5_ib_mr, mlx5_ib_mr_of_key, to_mdev } from './mlx5_ib.js';
import { mlx5_ib_update_mtt, mlx5_ib_zap_mtt, mlx5_mtt_alloc } from './mr.js';

/* pagefault_mr() flags */
export const MLX5_PF_FLAGS_PREFETCH = 1 << 0;   /* advise_mr or post-fault prefetch: counts as prefetch */
export const MLX5_PF_FLAGS_DOWNGRADE = 1 << 1;  /* map read-only even if the MR is writable */
export const MLX5_PF_FLAGS_SNAPSHOT = 1 << 2;   /* PREFETCH_NO_FAULT: map only what the CPU maps */

/**
 * mlx5_ib_invalidate_range() - the ib_ucontext's invalidate_range: zap
 * the MTT of [start, end) of this umem, unmap its pages (dirtying what the
 * NIC could write), and free an implicit child left with no page.
 * Context: umem_mutex held; may not sleep.
 */
export function mlx5_ib_invalidate_range(odp: ib_umem_odp, start: number, end: number): void {
  const mr = odp.private as mlx5_ib_mr | null;
  if (mr === null || mr.mtt === null) return;
  const s = Math.max(start, ib_umem_start(odp)), e = Math.min(end, ib_umem_end(odp));
  if (s >= e) return;
  let mapped = 0;
  for (let a = s; a < e; a += PAGE_SIZE) if (odp.dma_list[(a - ib_umem_start(odp)) / PAGE_SIZE] !== 0) mapped++;
  mlx5_ib_zap_mtt(mr, s, e);
  ib_umem_odp_unmap_dma_pages(odp, s, e);
  if (mapped > 0) {
    mr.odp_stats.invalidations += mapped;
    if (mr.parent !== null) mr.parent.odp_stats.invalidations += mapped;
    count_event('mlx5_ib_odp_invalidated_pages', mapped);
    trace_event('mlx5_ib_invalidate_range', { dev: mr.dev.name, key: (mr.parent ?? mr).ibmr.lkey, start: s, end: e, pages: mapped });
  }
  if (odp.npages === 0 && mr.parent !== null) destroy_unused_implicit_child_mr(mr);
}

/* The child's last page went: unlink it now (the NIC sees the null_mkey), free it from the work queue. */
function destroy_unused_implicit_child_mr(child: mlx5_ib_mr): void {
  const parent = child.parent!;
  const idx = Math.floor(ib_umem_start(child.odp!) / MLX5_IMR_MTT_SIZE);
  if (parent.implicit_children?.get(idx) !== child) return;
  parent.implicit_children.delete(idx);
  child.live = false;
  trace_event('mlx5_ib_implicit_child_free', { key: parent.ibmr.lkey, child: idx });
  count_event('mlx5_ib_implicit_child_free');
  child.dev.prefetch_wq.push(function* () { yield* ib_umem_odp_release(child.odp!); });
}

/* implicit_get_child_mr(): the 1 GiB child for @idx, created on first fault */
function* implicit_get_child_mr(imr: mlx5_ib_mr, idx: number): Sleepable<mlx5_ib_mr | number> {
  const cur = imr.implicit_children!.get(idx);
  if (cur !== undefined) return cur;
  const odp = yield* ib_umem_odp_alloc_child(imr.odp!, idx * MLX5_IMR_MTT_SIZE, MLX5_IMR_MTT_SIZE);
  if (typeof odp === 'number') return odp;
  const raced = imr.implicit_children!.get(idx);
  if (raced !== undefined) { yield* ib_umem_odp_release(odp); return raced; }
  const child: mlx5_ib_mr = {
    ibmr: imr.ibmr, dev: imr.dev, umem: null, odp, mtt: mlx5_mtt_alloc(), implicit_children: null, parent: imr,
    odp_stats: { faults: 0, invalidations: 0, prefetch: 0 }, live: true,
  };
  odp.private = child;
  imr.implicit_children!.set(idx, child);
  count_event('mlx5_ib_implicit_child_alloc');
  trace_event('mlx5_ib_implicit_child_alloc', { key: imr.ibmr.lkey, child: idx, start: idx * MLX5_IMR_MTT_SIZE });
  return child;
}

/* pagefault_real_mr(): fault [va, va + bcnt) of one MTT-backed MR. Return: pages or -errno. */
function* pagefault_real_mr(mr: mlx5_ib_mr, va: number, bcnt: number, flags: number): Sleepable<number> {
  const odp = mr.odp!;
  let access_mask = ODP_READ_ALLOWED_BIT;
  if (odp.umem.writable && !(flags & MLX5_PF_FLAGS_DOWNGRADE)) access_mask |= ODP_WRITE_ALLOWED_BIT;
  const np = yield* ib_umem_odp_map_dma_and_lock(odp, va, bcnt, access_mask, !(flags & MLX5_PF_FLAGS_SNAPSHOT));
  if (np < 0) return np;
  const first = Math.floor((va - ib_umem_start(odp)) / PAGE_SIZE);
  const last = Math.ceil((Math.min(va + bcnt, ib_umem_end(odp)) - ib_umem_start(odp)) / PAGE_SIZE);
  mlx5_ib_update_mtt(mr, first, last - first);
  mutex_unlock(odp.umem_mutex);
  const stats = [mr.odp_stats, ...(mr.parent !== null ? [mr.parent.odp_stats] : [])];
  for (const s of stats) { if (flags & MLX5_PF_FLAGS_PREFETCH) s.prefetch += np; else s.faults += np; }
  return np;
}

/**
 * pagefault_mr() - make [va, va + bcnt) of @mr present in its MTT.
 * Implicit MRs split the range at 1 GiB child boundaries.
 * Context: may sleep. Return: pages mapped, or -errno: -EFAULT outside the
 * MR or no VMA, -EPERM / -EACCES for write to read-only memory (design
 * dependent spelling), -EBUSY, -EOPNOTSUPP (a mode the design lacks).
 */
export function* pagefault_mr(mr: mlx5_ib_mr, va: number, bcnt: number, flags: number): Sleepable<number> {
  if (mr.implicit_children === null) {
    if (va < mr.ibmr.iova || va + bcnt > mr.ibmr.iova + mr.ibmr.length) return -EFAULT;
    return yield* pagefault_real_mr(mr, va, bcnt, flags);
  }
  let total = 0;
  for (let a = va; a < va + bcnt;) {
    const idx = Math.floor(a / MLX5_IMR_MTT_SIZE);
    const len = Math.min(va + bcnt, (idx + 1) * MLX5_IMR_MTT_SIZE) - a;
    const child = yield* implicit_get_child_mr(mr, idx);
    if (typeof child === 'number') return total > 0 ? total : child;
    const np = yield* pagefault_real_mr(child, a, len, flags);
    if (np < 0) return total > 0 ? total : np;
    total += np;
    a += len;
  }
  return total;
}

/* pagefault_single_data_segment(): one (key, va, len) of a WQE or an RDMA packet */
function* pagefault_segment(dev: mlx5_ib_dev, key: number, va: number, len: number, flags: number): Sleepable<number> {
  const mr = mlx5_ib_mr_of_key(dev, key);
  if (mr === null || mr.odp === null) return -EFAULT;      /* no such key, or not ODP: nothing to fault */
  const np = yield* pagefault_mr(mr, va, len, flags);
  if (np > 0) trace_event('mlx5_ib_pagefault_segment', { dev: dev.name, key, va, len, pages: np, prefetch: (flags & MLX5_PF_FLAGS_PREFETCH) !== 0 });
  return np;
}

/**
 * mlx5_ib_pf_eqe_push() - the NIC writes a page-fault EQE.
 * Return: 0, or -ENOSPC when the EQ already holds MLX5_IB_NUM_PF_EQE
 * entries (an EQ overrun: the NIC would stop the QP with an error).
 */
export function mlx5_ib_pf_eqe_push(dev: mlx5_ib_dev, pf: mlx5_pagefault): number {
  if (dev.pf_eq.length >= MLX5_IB_NUM_PF_EQE) { count_event('mlx5_ib_pf_eq_overrun'); return -ENOSPC; }
  dev.pf_eq.push(pf);
  dev.pf_eq_max_depth = Math.max(dev.pf_eq_max_depth, dev.pf_eq.length);
  dev.pf_events++;
  trace_event('mlx5_ib_pf_eqe', { dev: dev.name, qpn: pf.token, type: pf.type === MLX5_PFAULT_SUBTYPE_WQE ? 'WQE' : 'RDMA',
    requestor: (pf.flags & MLX5_PFAULT_REQUESTOR) !== 0, rkey: pf.rkey, va: pf.va, len: pf.length });
  return 0;
}

/* mlx5_ib_page_fault_resume(): PAGE_FAULT_RESUME, with the error bit when the fault failed */
function mlx5_ib_page_fault_resume(dev: mlx5_ib_dev, pf: mlx5_pagefault, error: boolean): void {
  const qp = dev.qps.get(pf.token);
  if (qp !== undefined) { qp.paused_on_fault = false; qp.pf_resume_error = error; }
  if (error) dev.pf_resume_errors++;
  trace_event('mlx5_ib_page_fault_resume', { dev: dev.name, qpn: pf.token, error });
}

/* mlx5_ib_mr_wqe_pfault_handler(): fault every scatter entry of the WQE */
function* wqe_pfault(dev: mlx5_ib_dev, pf: mlx5_pagefault): Sleepable<number> {
  const qp = dev.qps.get(pf.token);
  if (qp === undefined) return -ENOENT;
  const wqe = pf.flags & MLX5_PFAULT_REQUESTOR ? qp.sq[pf.wqe_index] : qp.rq[pf.wqe_index];
  if (wqe === undefined) return -ENOENT;
  for (const sge of wqe.sg_list) {
    if (sge.length === 0) continue;
    const ret = yield* pagefault_segment(dev, sge.lkey, sge.addr, sge.length, 0);
    if (ret < 0) return ret;
  }
  return 0;
}

/* mlx5_ib_mr_rdma_pfault_handler(): the packet first, resume, then prefetch the rest of the operation */
function* rdma_pfault(dev: mlx5_ib_dev, pf: mlx5_pagefault): Sleepable<number> {
  const ret = yield* pagefault_segment(dev, pf.rkey, pf.va, pf.length, 0);
  mlx5_ib_page_fault_resume(dev, pf, ret < 0);
  const prefetch_len = Math.min(MAX_PREFETCH_LEN, pf.op_len);
  if (ret >= 0 && dev.odp_post_fault_prefetch && prefetch_len > pf.length) {
    const mr = mlx5_ib_mr_of_key(dev, pf.rkey)!;
    const end = Math.min(pf.va + prefetch_len, mr.implicit_children !== null ? Infinity : mr.ibmr.iova + mr.ibmr.length);
    if (end > pf.va + pf.length) yield* pagefault_segment(dev, pf.rkey, pf.va + pf.length, end - pf.va - pf.length, MLX5_PF_FLAGS_PREFETCH);
  }
  return ret;
}

/**
 * mlx5_ib_eq_pf_process() - the page-fault work: take every pending EQE,
 * resolve it, and resume its QP (with the error bit if it failed).
 * Context: may sleep (the mlx5_ib_page_fault work queue).
 */
export function* mlx5_ib_eq_pf_process(dev: mlx5_ib_dev): Sleepable {
  while (dev.pf_eq.length > 0) {
    const pf = dev.pf_eq.shift()!;
    charge(ODP_PF_SERVICE_NS);
    count_event('mlx5_ib_page_fault');
    if (pf.type === MLX5_PFAULT_SUBTYPE_RDMA) { yield* rdma_pfault(dev, pf); continue; }
    const ret = yield* wqe_pfault(dev, pf);
    mlx5_ib_page_fault_resume(dev, pf, ret < 0);
  }
}

/**
 * mlx5_ib_advise_mr() - ib_device_ops.advise_mr (ibv_advise_mr).
 * PREFETCH maps read-only, PREFETCH_WRITE maps for write, PREFETCH_NO_FAULT
 * maps only pages the CPU already maps (no fault). With
 * IB_UVERBS_ADVISE_MR_FLAG_FLUSH the work is done before returning;
 * otherwise it is queued (dev.prefetch_wq) and errors are not reported.
 * Context: may sleep. Return: 0, -EOPNOTSUPP (unknown advice or flag),
 * -EINVAL (empty list), -ENOENT (a key that is not an ODP MR of this PD),
 * or the first fault error with FLUSH.
 */
export function* mlx5_ib_advise_mr(pd: ib_pd, advice: number, flags: number, sg_list: ib_sge[]): Sleepable<number> {
  const dev = to_mdev(pd.device);
  if (flags & ~IB_UVERBS_ADVISE_MR_FLAG_FLUSH) return -EOPNOTSUPP;
  let pf_flags: number;
  switch (advice) {
    case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH: pf_flags = MLX5_PF_FLAGS_PREFETCH | MLX5_PF_FLAGS_DOWNGRADE; break;
    case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE: pf_flags = MLX5_PF_FLAGS_PREFETCH; break;
    case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT: pf_flags = MLX5_PF_FLAGS_PREFETCH | MLX5_PF_FLAGS_SNAPSHOT; break;
    default: return -EOPNOTSUPP;
  }
  if (sg_list.length === 0) return -EINVAL;
  for (const sge of sg_list) {
    const mr = mlx5_ib_mr_of_key(dev, sge.lkey);
    if (mr === null || mr.ibmr.pd !== pd || !(mr.ibmr.access & IB_ACCESS_ON_DEMAND)) return -ENOENT;
  }
  const work = function* (): Sleepable<number> {
    for (const sge of sg_list) {
      const ret = yield* pagefault_segment(dev, sge.lkey, sge.addr, sge.length, pf_flags);
      if (ret < 0) return ret;
    }
    return 0;
  };
  trace_event('mlx5_ib_advise_mr', { dev: dev.name, advice, flush: (flags & IB_UVERBS_ADVISE_MR_FLAG_FLUSH) !== 0, sges: sg_list.length });
  if (flags & IB_UVERBS_ADVISE_MR_FLAG_FLUSH) return yield* work();
  dev.prefetch_wq.push(work);
  return 0;
}

/**
 * mlx5_ib_flush_wq() - run the queued work (async prefetch, freeing of
 * implicit children): what the kworker does once it gets a CPU.
 * Context: may sleep.
 */
export function* mlx5_ib_flush_wq(dev: mlx5_ib_dev): Sleepable {
  while (dev.prefetch_wq.length > 0) yield* (dev.prefetch_wq.shift()!() as Sleepable<unknown>);
}

/** mlx5_ib_rdma_stat() - `rdma stat show mr`-like lines: one per live MR with its ODP counters. */
export function mlx5_ib_rdma_stat(dev: mlx5_ib_dev): string[] {
  const out: string[] = [];
  for (const mr of dev.mkeys.values()) {
    if (!mr.live || mr.odp === null) continue;
    const s = mr.odp_stats;
    const kids = mr.implicit_children !== null ? ` children ${mr.implicit_children.size}` : '';
    out.push(`dev ${dev.name} mrn ${mr.ibmr.lkey >>> 8} lkey 0x${mr.ibmr.lkey.toString(16)} page_faults ${s.faults} ` +
      `page_invalidations ${s.invalidations} page_prefetch ${s.prefetch}${kids}`);
  }
  return out;
}
