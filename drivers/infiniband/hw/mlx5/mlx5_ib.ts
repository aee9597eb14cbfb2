/*
 * drivers/infiniband/hw/mlx5/mlx5_ib.ts - the mock ConnectX NIC: its
 * device, memory regions, queues and the user context, and the
 * ib_device_ops table it registers with the IB core.
 *
 * Follows drivers/infiniband/hw/mlx5/mlx5_ib.h and main.c of Linux v5.10
 * for names (mlx5_ib_dev, mlx5_ib_mr, mlx5_ib_qp, mlx5_ib_cq). The
 * hardware is this model's own: one port per device, ports of all devices
 * on one loss-free switch (hw/mlx5/qp.ts carries the packets), an MTT per
 * memory key on lib/gpt (include/linux/mlx5/odp.ts draws the entry), a
 * page-fault EQ of MLX5_IB_NUM_PF_EQE entries.
 *
 * Where the NIC's work runs: the NIC processes a send queue when the
 * doorbell rings, in the thread that rang it (ibv_post_send), and the
 * page-fault work queue runs its EQEs at once in that same thread, as if
 * the mlx5_ib_page_fault kworker had a CPU of its own; its time is charged
 * to the same clock, so a fault shows up as latency of the operation that
 * hit it. Asynchronous advise_mr work waits on dev.prefetch_wq until the
 * next doorbell, poll or flush (hw/mlx5/odp.ts).
 */
import type { ib_device, ib_pd, ib_mr, ib_cq, ib_qp, ib_wc, ib_send_wr, ib_recv_wr, ib_odp_design } from '../../../../include/rdma/ib_verbs.js';
import type { ib_umem, ib_umem_odp, ib_ucontext_odp } from '../../../../include/rdma/ib_umem_odp.js';
import type { mm_struct } from '../../../../include/linux/mm_types.js';
import type { mlx5_pagefault, mlx5_odp_stats } from '../../../../include/linux/mlx5/odp.js';
import type { gpt } from '../../../../lib/gpt/gpt.js';
import { device } from '../../../../lib/dma/mapping.js';
import { interval_tree } from '../../../../lib/interval_tree.js';

/**
 * struct mlx5_ib_mr - one memory key.
 * @ibmr: what the core sees (lkey == rkey, as on mlx5)
 * @umem: pinned umem, or null for ODP
 * @odp: the ib_umem_odp of an ODP MR (for an implicit parent: the root)
 * @mtt: the translation table (null for an implicit parent: it has children)
 * @implicit_children: implicit parent only: 1 GiB index -> child MR
 * @parent: implicit child only
 * @odp_stats: per-MR counters (rdma stat)
 * @live: false once deregistration began; the NIC treats the key as invalid
 */
export interface mlx5_ib_mr {
  ibmr: ib_mr;
  dev: mlx5_ib_dev;
  umem: ib_umem | null;
  odp: ib_umem_odp | null;
  mtt: gpt | null;
  implicit_children: Map<number, mlx5_ib_mr> | null;
  parent: mlx5_ib_mr | null;
  odp_stats: mlx5_odp_stats;
  live: boolean;
}

/** struct mlx5_ib_cq - completions, oldest first. */
export interface mlx5_ib_cq extends ib_cq { wcs: ib_wc[]; overflowed: boolean; }

/**
 * struct mlx5_ib_qp - an RC queue pair.
 * @sq, @rq: posted WQEs not yet completed (the SQ is what a requester
 *   WQE fault makes the driver read: sq[wqe_index])
 * @state: IB_QPS_*; @dest_qp_num: the peer, set at RTR
 * @min_rnr_timer, @timeout, @retry_cnt, @rnr_retry: as set by modify_qp
 * @paused_on_fault: the NIC stopped the QP on a page fault until
 *   PAGE_FAULT_RESUME
 */
export interface mlx5_ib_qp extends ib_qp {
  dev: mlx5_ib_dev;
  send_cq: mlx5_ib_cq;
  recv_cq: mlx5_ib_cq;
  max_send_wr: number;
  max_recv_wr: number;
  sq: ib_send_wr[];
  rq: ib_recv_wr[];
  state: number;
  dest_qp_num: number;
  qp_access_flags: number;
  min_rnr_timer: number;
  timeout: number;
  retry_cnt: number;
  rnr_retry: number;
  paused_on_fault: boolean;
  pf_resume_error: boolean;
  /* statistics for the trace and the benchmark */
  rnr_naks: number;
  retransmits: number;
}

/**
 * struct mlx5_ib_dev - one NIC.
 * @dma: its DMA device (bus addresses in the MTT come from here)
 * @odp_design: the ib_umem_odp design chosen at creation
 * @mkeys: key index -> MR; @qps: qp_num -> QP
 * @pf_eq: the page-fault EQ (at most MLX5_IB_NUM_PF_EQE entries pending)
 * @prefetch_wq: asynchronous advise_mr work not yet run
 * @odp_post_fault_prefetch: do the MAX_PREFETCH_LEN prefetch after an RDMA
 *   responder fault (on by default, as in Linux)
 */
export interface mlx5_ib_dev {
  ibdev: ib_device;
  name: string;
  dma: device;
  odp_design: ib_odp_design;
  mkeys: Map<number, mlx5_ib_mr>;
  qps: Map<number, mlx5_ib_qp>;
  next_mkey: number;
  next_qpn: number;
  next_pdn: number;
  pf_eq: mlx5_pagefault[];
  pf_eq_max_depth: number;
  prefetch_wq: (() => Generator<unknown, unknown, unknown>)[];
  odp_post_fault_prefetch: boolean;
  /* device-wide ODP counters */
  pf_events: number;
  pf_resume_errors: number;
}

/** struct mlx5_ib_ucontext - one process' use of the device. */
export interface mlx5_ib_ucontext { dev: mlx5_ib_dev; mm: mm_struct; odp: ib_ucontext_odp; }

/** to_mdev(), to_mmr(), to_mqp(), to_mcq() - container_of */
export function to_mdev(ibdev: ib_device): mlx5_ib_dev { return ibdev.driver_data as mlx5_ib_dev; }
export function to_mqp(qp: ib_qp): mlx5_ib_qp { return qp as mlx5_ib_qp; }
export function to_mcq(cq: ib_cq): mlx5_ib_cq { return cq as mlx5_ib_cq; }
export function to_mucontext(pd: ib_pd): mlx5_ib_ucontext { return pd.uctx as mlx5_ib_ucontext; }

/** mlx5_ib_dev_new() - the device structure (registered by hw/mlx5/main.ts). */
export function mlx5_ib_dev_new(name: string, design: ib_odp_design): mlx5_ib_dev {
  return {
    ibdev: null as unknown as ib_device, name, dma: new device(name), odp_design: design,
    mkeys: new Map(), qps: new Map(), next_mkey: 1, next_qpn: 0x100, next_pdn: 1,
    pf_eq: [], pf_eq_max_depth: 0, prefetch_wq: [], odp_post_fault_prefetch: true,
    pf_events: 0, pf_resume_errors: 0,
  };
}

/** mlx5_ib_ucontext_new() - a context for @mm; @invalidate is the driver's MTT zap. */
export function mlx5_ib_ucontext_new(dev: mlx5_ib_dev, mm: mm_struct,
                                     invalidate: ib_ucontext_odp['invalidate_range']): mlx5_ib_ucontext {
  const odp: ib_ucontext_odp = {
    mm, design: dev.odp_design, invalidate_range: invalidate, umem_tree: new interval_tree<ib_umem_odp>(),
    notifier_count: 0, no_private_counters: [], mn: null, mirror: null, dma_device: dev.dma,
  };
  return { dev, mm, odp };
}

/** mlx5_key_index() - the MR table index of a key (low 8 bits are the variant, 0 here). */
export function mlx5_key_index(key: number): number { return key >>> 8; }

/** mlx5_ib_mr_of_key() - the live MR of @key on @dev, or null (an invalid key). */
export function mlx5_ib_mr_of_key(dev: mlx5_ib_dev, key: number): mlx5_ib_mr | null {
  const mr = dev.mkeys.get(mlx5_key_index(key)) ?? null;
  return mr !== null && mr.live && mr.ibmr.lkey === key ? mr : null;
}
