/*
 * drivers/infiniband/hw/mlx5/mr.ts - memory keys and their MTT: pinned MRs,
 * explicit ODP MRs, the implicit ODP MR, and how the NIC moves bytes
 * through a key.
 *
 * Follows drivers/infiniband/hw/mlx5/mr.c of Linux v5.10
 * (mlx5_ib_reg_user_mr, mlx5_ib_dereg_mr) and the UMR helper that updates
 * MTT entries (mlx5_ib_update_xlt, MLX5_IB_UPD_XLT_ZAP). The MTT is a
 * lib/gpt table per key (format drawn in include/linux/mlx5/odp.ts),
 * indexed by the I/O virtual address (iova == the user address here).
 * Simplified: no mkey cache, no KSM for the implicit parent (the children
 * map plays its part; a missing child is the null_mkey), one UMR post per
 * MLX5_MAX_UMR_PAGES entries charged as MLX5_UMR_NS.
 */
import type { ib_mr, ib_pd } from '../../../../include/rdma/ib_verbs.js';
import { IB_ACCESS_ON_DEMAND, ib_access_writable } from '../../../../include/rdma/ib_verbs.js';
import {
  ODP_WRITE_ALLOWED_BIT, ODP_READ_ALLOWED_BIT, odp_dma_addr, ib_umem_start,
} from '../../../../include/rdma/ib_umem_odp.js';
import {
  MLX5_IB_MTT_READ, MLX5_IB_MTT_WRITE, MLX5_MTT_PDE, MLX5_MAX_UMR_PAGES, MLX5_IMR_MTT_SIZE, IB_IMPLICIT_MR_LENGTH,
  mlx5_mtt_make, mlx5_mtt_dma, mlx5_mtt_perm,
} from '../../../../include/linux/mlx5/odp.js';
import { PAGE_SIZE } from '../../../../include/linux/mm.js';
import { EINVAL, ENOMEM, EOPNOTSUPP } from '../../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../../lib/sim/sched.js';
import { charge } from '../../../../lib/sim/clock.js';
import { MLX5_UMR_NS, MLX5_CREATE_MKEY_NS } from '../../../../lib/sim/costs.js';
import { trace_event, count_event } from '../../../../lib/sim/trace.js';
import { gpt } from '../../../../lib/gpt/gpt.js';
import { gpt_format_define, gpt_format_register } from '../../../../lib/gpt/formats.js';
import { dma_map_page, dma_mapping_error, dma_unmap_page, dma_to_pfn, DMA_BIDIRECTIONAL } from '../../../../lib/dma/mapping.js';
import { kmap_local_page, pfn_to_page } from '../../../../mm/page_alloc.js';
import { ib_umem_get, ib_umem_release } from '../../core/umem.js';
import { ib_umem_odp_get, ib_umem_odp_alloc_implicit, ib_umem_odp_release } from '../../core/umem_odp.js';
import { type mlx5_ib_dev, type mlx5_ib_mr, to_mdev, to_mucontext, mlx5_key_index } from './mlx5_ib.js';
import { BUG } from '../../../../include/asm-generic/bug.js';

/** The NIC's MTT format for lib/gpt: leaves only at the last level, links carry MLX5_MTT_PDE. */
export const mlx5_mtt_format = gpt_format_define({
  name: 'mlx5_mtt', entry_bits: 64, leaf_levels: [], pde_mask: MLX5_MTT_PDE, pde_value: MLX5_MTT_PDE,
  pde_shift: 12, pde_bits: MLX5_MTT_PDE, last_level: 3,
});
gpt_format_register(mlx5_mtt_format);

/** mlx5_mtt_alloc() - an empty MTT over 48 bits of iova. */
export function mlx5_mtt_alloc(): gpt {
  return new gpt({ address_bits: 48, level_bits: 9, page_shift: 12 }, mlx5_mtt_format, { initialSlots: 4 });
}

function mr_new(dev: mlx5_ib_dev, pd: ib_pd, iova: number, length: number, access: number): mlx5_ib_mr {
  const idx = dev.next_mkey++;
  const key = idx << 8;
  const ibmr: ib_mr = { device: dev.ibdev, pd, lkey: key, rkey: key, iova, length, access };
  const mr: mlx5_ib_mr = {
    ibmr, dev, umem: null, odp: null, mtt: null, implicit_children: null, parent: null,
    odp_stats: { faults: 0, invalidations: 0, prefetch: 0 }, live: true,
  };
  dev.mkeys.set(idx, mr);
  charge(MLX5_CREATE_MKEY_NS);
  return mr;
}

/**
 * mlx5_ib_update_mtt() - program MTT entries for pages [start_idx,
 * start_idx + npages) of an ODP MR from its umem's dma_list (UMR posts).
 * Context: umem_mutex held. Return: entries written.
 */
export function mlx5_ib_update_mtt(mr: mlx5_ib_mr, start_idx: number, npages: number): number {
  const odp = mr.odp!, mtt = mr.mtt!;
  let n = 0;
  for (let i = start_idx; i < start_idx + npages; i++) {
    const e = odp.dma_list[i];
    if (e === 0) continue;
    const perm = (e & ODP_READ_ALLOWED_BIT ? MLX5_IB_MTT_READ : 0) | (e & ODP_WRITE_ALLOWED_BIT ? MLX5_IB_MTT_WRITE : 0);
    const ptr = mtt.populate(ib_umem_start(odp) + i * PAGE_SIZE);
    if (ptr < 0) BUG(`MTT populate ${ptr}`);
    mtt.set(ptr, mlx5_mtt_make(odp_dma_addr(e), perm));
    n++;
  }
  charge(MLX5_UMR_NS * Math.ceil(Math.max(n, 1) / MLX5_MAX_UMR_PAGES));
  return n;
}

/**
 * mlx5_ib_zap_mtt() - clear the MTT entries of [start, end) (UMR with
 * MLX5_IB_UPD_XLT_ZAP). Return: entries cleared.
 */
export function mlx5_ib_zap_mtt(mr: mlx5_ib_mr, start: number, end: number): number {
  const n = mr.mtt!.clear_range(start, end);
  if (n > 0) charge(MLX5_UMR_NS * Math.ceil(n / MLX5_MAX_UMR_PAGES));
  return n;
}

/*
 * A pinned MR: pin, map, fill the whole MTT now. A DMA mapping failure
 * (fail_dma_map) undoes the mappings made so far and unpins: -ENOMEM, as
 * ib_umem_get() returns when ib_dma_map_sgtable_attrs() fails; nothing
 * of the failed mapping reaches the MTT.
 */
function* reg_pinned(mr: mlx5_ib_mr, start: number, length: number): Sleepable<number> {
  const uctx = to_mucontext(mr.ibmr.pd);
  const writable = ib_access_writable(mr.ibmr.access);
  const umem = yield* ib_umem_get(uctx.mm, start, length, writable);
  if (typeof umem === 'number') return umem;
  const perm = MLX5_IB_MTT_READ | (writable ? MLX5_IB_MTT_WRITE : 0);
  const dmas: number[] = [];
  for (const p of umem.pages) {
    const dma = dma_map_page(mr.dev.dma, p, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
    if (dma_mapping_error(mr.dev.dma, dma)) {
      for (const d of dmas) dma_unmap_page(mr.dev.dma, d, PAGE_SIZE, DMA_BIDIRECTIONAL);
      ib_umem_release(umem);
      return -ENOMEM;
    }
    dmas.push(dma);
  }
  mr.umem = umem;
  mr.mtt = mlx5_mtt_alloc();
  dmas.forEach((dma, i) => mr.mtt!.set(mr.mtt!.populate(umem.address + i * PAGE_SIZE), mlx5_mtt_make(dma, perm)));
  charge(MLX5_UMR_NS * Math.ceil(umem.pages.length / MLX5_MAX_UMR_PAGES));
  return 0;
}

/**
 * mlx5_ib_reg_user_mr() - ib_device_ops.reg_user_mr.
 * ON_DEMAND with start 0 and length IB_IMPLICIT_MR_LENGTH (SIZE_MAX) is
 * the implicit MR: one key for the whole address space, children on
 * demand. Other ON_DEMAND MRs get an empty MTT and an ib_umem_odp.
 * Context: may sleep. Return: the MR, or -EINVAL (an implicit MR not at
 * 0, a bad range), -EFAULT / -ENOMEM from pinning.
 */
export function* mlx5_ib_reg_user_mr(pd: ib_pd, start: number, length: number, iova: number,
                                     access: number): Sleepable<ib_mr | number> {
  const dev = to_mdev(pd.device);
  const uctx = to_mucontext(pd);
  if (iova !== start) return -EOPNOTSUPP;         /* this model maps iova == va */
  const implicit = (access & IB_ACCESS_ON_DEMAND) !== 0 && length === IB_IMPLICIT_MR_LENGTH;
  if (length === IB_IMPLICIT_MR_LENGTH && !implicit) return -EINVAL;
  if (implicit && start !== 0) return -EINVAL;
  const mr = mr_new(dev, pd, start, length, access);
  let ret = 0;
  if (implicit) {
    mr.odp = ib_umem_odp_alloc_implicit(uctx.odp, ib_access_writable(access));
    mr.odp.private = mr;
    mr.implicit_children = new Map();
  } else if (access & IB_ACCESS_ON_DEMAND) {
    const odp = yield* ib_umem_odp_get(uctx.odp, start, length, ib_access_writable(access));
    if (typeof odp === 'number') ret = odp;
    else { mr.odp = odp; odp.private = mr; mr.mtt = mlx5_mtt_alloc(); }
  } else {
    ret = yield* reg_pinned(mr, start, length);
  }
  if (ret) { dev.mkeys.delete(mlx5_key_index(mr.ibmr.lkey)); return ret; }
  pd.usecnt++;
  count_event(implicit ? 'mlx5_ib_reg_implicit_mr' : access & IB_ACCESS_ON_DEMAND ? 'mlx5_ib_reg_odp_mr' : 'mlx5_ib_reg_pinned_mr');
  trace_event('mlx5_ib_reg_user_mr', { dev: dev.name, key: mr.ibmr.lkey, start, length: implicit ? -1 : length,
    odp: (access & IB_ACCESS_ON_DEMAND) !== 0, implicit, design: dev.odp_design });
  return mr.ibmr;
}

/** mlx5_ib_free_odp_mr() - release an ODP MR's umem (children first for the implicit parent). */
export function* mlx5_ib_free_odp_mr(mr: mlx5_ib_mr): Sleepable {
  if (mr.implicit_children !== null) {
    for (const child of [...mr.implicit_children.values()]) { child.live = false; yield* ib_umem_odp_release(child.odp!); }
    mr.implicit_children.clear();
  }
  yield* ib_umem_odp_release(mr.odp!);
}

/**
 * mlx5_ib_dereg_mr() - ib_device_ops.dereg_mr: invalidate the key, then
 * unpin (pinned) or stop notifications and unmap (ODP).
 * Context: may sleep. Return: 0, -EINVAL for an unknown MR.
 */
export function* mlx5_ib_dereg_mr(ibmr: ib_mr): Sleepable<number> {
  const dev = to_mdev(ibmr.device);
  const mr = dev.mkeys.get(mlx5_key_index(ibmr.lkey));
  if (mr === undefined || !mr.live) return -EINVAL;
  mr.live = false;
  if (mr.umem !== null) {
    for (let a = mr.umem.address; a < mr.umem.address + mr.umem.length; a += PAGE_SIZE) {
      const ptr = mr.mtt!.lookup(a);
      const e = ptr < 0 ? 0 : mr.mtt!.load(ptr);
      if (e !== 0) dma_unmap_page(dev.dma, mlx5_mtt_dma(e), PAGE_SIZE, DMA_BIDIRECTIONAL);
    }
    ib_umem_release(mr.umem);
  } else {
    yield* mlx5_ib_free_odp_mr(mr);
  }
  dev.mkeys.delete(mlx5_key_index(ibmr.lkey));
  ibmr.pd.usecnt--;
  trace_event('mlx5_ib_dereg_mr', { dev: dev.name, key: ibmr.lkey });
  return 0;
}

/**
 * mlx5_mr_for_va() - the MR whose MTT holds @va: the MR itself, or the
 * implicit parent's child for va's 1 GiB slot (null: the null_mkey, a miss).
 */
export function mlx5_mr_for_va(mr: mlx5_ib_mr, va: number): mlx5_ib_mr | null {
  if (mr.implicit_children === null) return mr;
  return mr.implicit_children.get(Math.floor(va / MLX5_IMR_MTT_SIZE)) ?? null;
}

/**
 * mlx5_mr_dma() - what the NIC does to move bytes through a key: copy
 * between @buf and [va, va + buf.length) page by page through the MTT,
 * stopping at the first page that is absent or lacks the permission.
 * @write: the NIC writes memory (else it reads it into @buf).
 * Context: any; never sleeps. Return: bytes moved (== buf.length when
 * every page was there).
 */
export function mlx5_mr_dma(mr: mlx5_ib_mr, va: number, buf: Uint8Array, write: boolean): number {
  const need = write ? MLX5_IB_MTT_WRITE : MLX5_IB_MTT_READ;
  let done = 0;
  while (done < buf.length) {
    const a = va + done;
    const m = mlx5_mr_for_va(mr, a);
    const ptr = m === null || m.mtt === null ? -1 : m.mtt.lookup(a - (a % PAGE_SIZE));
    const e = ptr < 0 ? 0 : m!.mtt!.load(ptr);
    if ((mlx5_mtt_perm(e) & need) === 0) break;
    const bytes = kmap_local_page(pfn_to_page(dma_to_pfn(mr.dev.dma, mlx5_mtt_dma(e))));
    const off = a % PAGE_SIZE, n = Math.min(PAGE_SIZE - off, buf.length - done);
    if (write) bytes.set(buf.subarray(done, done + n), off);
    else buf.set(bytes.subarray(off, off + n), done);
    done += n;
  }
  return done;
}

/** mlx5_mr_mtt_entry() - the raw MTT entry for @va (0 when absent), for tests and dumps. */
export function mlx5_mr_mtt_entry(mr: mlx5_ib_mr, va: number): number {
  const m = mlx5_mr_for_va(mr, va);
  if (m === null || m.mtt === null) return 0;
  const ptr = m.mtt.lookup(va - (va % PAGE_SIZE));
  return ptr < 0 ? 0 : m.mtt.load(ptr);
}

