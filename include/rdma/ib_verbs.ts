/*
 * include/rdma/ib_verbs.ts - the InfiniBand core's objects as a driver and
 * the verbs layer share them: access flags, work requests, completions,
 * queue-pair states, and struct ib_device_ops.
 *
 * Follows include/rdma/ib_verbs.h of Linux v5.10 (names and values of the
 * access flags, enum ib_wc_status, enum ib_qp_state, enum ib_wr_opcode;
 * ib_device_ops as the table of driver callbacks). Simplified: one port per
 * device, RC transport only, no address handles, no SRQ, no memory windows;
 * a work request carries its scatter list as an array of ib_sge.
 * The walk-through is Documentation/vm/hmm.txt, "ODP".
 *
 * Lock order of the RDMA stack (outermost first), stated once here:
 *     mmap_lock (read, while faulting pages for an MR)
 *       -> ib_umem_odp.umem_mutex (one per umem: guards dma_list, npages,
 *          the MTT entries of the umem, and the notifier sequence)
 *         -> mlx5_ib_dev.mtt_lock is not modelled: MTT updates happen
 *            under umem_mutex, as UMR posts do in Linux.
 * The per-context 2014 notifier (drivers/infiniband/core/umem_odp_2014.ts)
 * runs under mmap_lock taken by core mm and takes umem_mutex inside.
 */
import type { Sleepable } from '../linux/sched.js';

/* enum ib_access_flags (values as in Linux and libibverbs) */
export const IB_ACCESS_LOCAL_WRITE = 1 << 0;
export const IB_ACCESS_REMOTE_WRITE = 1 << 1;
export const IB_ACCESS_REMOTE_READ = 1 << 2;
export const IB_ACCESS_REMOTE_ATOMIC = 1 << 3;
export const IB_ACCESS_MW_BIND = 1 << 4;
export const IB_ZERO_BASED = 1 << 5;
export const IB_ACCESS_ON_DEMAND = 1 << 6;
export const IB_ACCESS_HUGETLB = 1 << 7;
export const IB_ACCESS_RELAXED_ORDERING = 1 << 20;
/* flags this model implements; the others are refused with -EOPNOTSUPP */
export const IB_ACCESS_SUPPORTED = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_READ |
  IB_ACCESS_REMOTE_ATOMIC | IB_ACCESS_ON_DEMAND | IB_ACCESS_RELAXED_ORDERING;

/**
 * ib_access_writable() - may the device write through an MR with @access?
 * Remote write and atomics need a writable mapping too (Linux' helper of
 * the same name); this is what makes an ODP fault ask for write access.
 */
export function ib_access_writable(access: number): boolean {
  return (access & (IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_ATOMIC | IB_ACCESS_MW_BIND)) !== 0;
}

/* enum ib_wc_status (the order is the ABI: IBV_WC_* have the same values) */
export const IB_WC_SUCCESS = 0;
export const IB_WC_LOC_LEN_ERR = 1;
export const IB_WC_LOC_QP_OP_ERR = 2;
export const IB_WC_LOC_EEC_OP_ERR = 3;
export const IB_WC_LOC_PROT_ERR = 4;
export const IB_WC_WR_FLUSH_ERR = 5;
export const IB_WC_MW_BIND_ERR = 6;
export const IB_WC_BAD_RESP_ERR = 7;
export const IB_WC_LOC_ACCESS_ERR = 8;
export const IB_WC_REM_INV_REQ_ERR = 9;
export const IB_WC_REM_ACCESS_ERR = 10;
export const IB_WC_REM_OP_ERR = 11;
export const IB_WC_RETRY_EXC_ERR = 12;
export const IB_WC_RNR_RETRY_EXC_ERR = 13;
export const ib_wc_status_names = [
  'SUCCESS', 'LOC_LEN_ERR', 'LOC_QP_OP_ERR', 'LOC_EEC_OP_ERR', 'LOC_PROT_ERR', 'WR_FLUSH_ERR', 'MW_BIND_ERR',
  'BAD_RESP_ERR', 'LOC_ACCESS_ERR', 'REM_INV_REQ_ERR', 'REM_ACCESS_ERR', 'REM_OP_ERR', 'RETRY_EXC_ERR',
  'RNR_RETRY_EXC_ERR',
] as const;

/* enum ib_wr_opcode (send side) */
export const IB_WR_RDMA_WRITE = 0;
export const IB_WR_RDMA_WRITE_WITH_IMM = 1;
export const IB_WR_SEND = 2;
export const IB_WR_SEND_WITH_IMM = 3;
export const IB_WR_RDMA_READ = 4;
export const IB_WR_ATOMIC_CMP_AND_SWP = 5;
export const IB_WR_ATOMIC_FETCH_AND_ADD = 6;
export const ib_wr_opcode_names = ['RDMA_WRITE', 'RDMA_WRITE_WITH_IMM', 'SEND', 'SEND_WITH_IMM', 'RDMA_READ',
  'ATOMIC_CMP_AND_SWP', 'ATOMIC_FETCH_AND_ADD'] as const;

/* enum ib_wc_opcode */
export const IB_WC_SEND = 0;
export const IB_WC_RDMA_WRITE = 1;
export const IB_WC_RDMA_READ = 2;
export const IB_WC_COMP_SWAP = 3;
export const IB_WC_FETCH_ADD = 4;
export const IB_WC_RECV = 128;

/* enum ib_send_flags */
export const IB_SEND_SIGNALED = 1 << 1;

/* enum ib_qp_state */
export const IB_QPS_RESET = 0;
export const IB_QPS_INIT = 1;
export const IB_QPS_RTR = 2;
export const IB_QPS_RTS = 3;
export const IB_QPS_SQD = 4;
export const IB_QPS_SQE = 5;
export const IB_QPS_ERR = 6;
export const ib_qp_state_names = ['RESET', 'INIT', 'RTR', 'RTS', 'SQD', 'SQE', 'ERR'] as const;

/* ib_qp_attr_mask bits this model reads */
export const IB_QP_STATE = 1 << 0;
export const IB_QP_ACCESS_FLAGS = 1 << 3;
export const IB_QP_DEST_QPN = 1 << 20;
export const IB_QP_MIN_RNR_TIMER = 1 << 15;
export const IB_QP_TIMEOUT = 1 << 9;
export const IB_QP_RETRY_CNT = 1 << 10;
export const IB_QP_RNR_RETRY = 1 << 11;

/**
 * ib_rnr_timer_ns() - the IB encoding of min_rnr_timer (5 bits) in ns.
 * Code 0 is the longest wait, 655.36 ms, and it is the default when a user
 * never sets the field; code 1 is 10 us (IBTA spec, table "RNR NAK timer
 * field"; ibv_modify_qp(3)).
 */
export function ib_rnr_timer_ns(code: number): number {
  const us = [655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960, 1280, 1920, 2560, 3840, 5120,
    7680, 10240, 15360, 20480, 30720, 40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520];
  return us[code & 31] * 1000;
}

/** ib_local_ack_timeout_ns() - the transport timer, 4.096 us * 2^timeout (0 = infinite). */
export function ib_local_ack_timeout_ns(timeout: number): number {
  return timeout === 0 ? Infinity : Math.round(4096 * 2 ** timeout);
}

/** rnr_retry / retry_cnt of 7 means "retry forever" for RNR (IBTA). */
export const IB_RNR_RETRY_INFINITE = 7;

/** struct ib_sge - one piece of a scatter/gather list. */
export interface ib_sge { addr: number; length: number; lkey: number; }

/** struct ib_send_wr (RC subset). */
export interface ib_send_wr {
  wr_id: number;
  opcode: number;                     /* IB_WR_* */
  send_flags: number;                 /* IB_SEND_SIGNALED */
  sg_list: ib_sge[];
  remote_addr?: number;               /* RDMA and atomics */
  rkey?: number;
  compare_add?: number;               /* atomics: the add value, or the compare value */
  swap?: number;                      /* CMP_AND_SWP */
}

/** struct ib_recv_wr */
export interface ib_recv_wr { wr_id: number; sg_list: ib_sge[]; }

/** struct ib_wc - one completion. */
export interface ib_wc {
  wr_id: number;
  status: number;                     /* IB_WC_* status */
  opcode: number;                     /* IB_WC_* opcode */
  byte_len: number;
  qp_num: number;
}

/** struct ib_qp_attr (RC subset). */
export interface ib_qp_attr {
  qp_state?: number;
  qp_access_flags?: number;
  dest_qp_num?: number;
  min_rnr_timer?: number;             /* 5-bit code, see ib_rnr_timer_ns() */
  timeout?: number;                   /* 5-bit code, see ib_local_ack_timeout_ns() */
  retry_cnt?: number;                 /* 0..7 */
  rnr_retry?: number;                 /* 0..7, 7 = infinite */
}

/* enum ib_uverbs_advise_mr_advice and its flag */
export const IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH = 0;
export const IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE = 1;
export const IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT = 2;
export const IB_UVERBS_ADVISE_MR_FLAG_FLUSH = 1 << 0;

/** struct ib_pd - a protection domain: MRs and QPs of one PD may work together. */
export interface ib_pd { readonly device: ib_device; readonly uctx: unknown; readonly pdn: number; usecnt: number; }

/** struct ib_mr - what the core knows of a memory region. */
export interface ib_mr {
  readonly device: ib_device;
  readonly pd: ib_pd;
  readonly lkey: number;
  readonly rkey: number;
  readonly iova: number;
  readonly length: number;
  readonly access: number;
}

/** struct ib_cq, struct ib_qp: opaque to the core beyond these fields. */
export interface ib_cq { readonly device: ib_device; readonly cqe: number; }
export interface ib_qp { readonly device: ib_device; readonly pd: ib_pd; readonly qp_num: number; }

/**
 * struct ib_device_ops - the driver's callbacks (a frozen object). Each
 * returns 0 / an object, or a negative errno. All may sleep unless noted.
 *
 * @alloc_pd, @dealloc_pd: protection domains of a user context.
 * @reg_user_mr: register [start, start + length) mapped at @iova; with
 *   IB_ACCESS_ON_DEMAND the driver builds an ODP MR (pages are faulted
 *   later), otherwise it pins the pages now. Context: may sleep, takes
 *   mmap_lock.
 * @dereg_mr: tear the MR down; returns when the device no longer uses it.
 * @create_cq, @create_qp, @modify_qp: queues and their state machine.
 * @post_send, @post_recv: queue work; the device processes it (here: the
 *   NIC runs the send queue in the caller's thread, see hw/mlx5/qp.ts).
 * @poll_cq: take up to @n completions. Context: does not sleep.
 * @advise_mr: ibv_advise_mr(); prefetch ODP pages.
 */
export interface ib_device_ops {
  alloc_pd(pd: ib_pd): number;
  dealloc_pd(pd: ib_pd): number;
  reg_user_mr(pd: ib_pd, start: number, length: number, iova: number, access: number): Sleepable<ib_mr | number>;
  dereg_mr(mr: ib_mr): Sleepable<number>;
  create_cq(dev: ib_device, cqe: number): ib_cq | number;
  create_qp(pd: ib_pd, send_cq: ib_cq, recv_cq: ib_cq, max_send_wr: number, max_recv_wr: number): ib_qp | number;
  modify_qp(qp: ib_qp, attr: ib_qp_attr, mask: number): number;
  post_send(qp: ib_qp, wr: ib_send_wr): Sleepable<number>;
  post_recv(qp: ib_qp, wr: ib_recv_wr): number;
  poll_cq(cq: ib_cq, n: number): ib_wc[];
  advise_mr(pd: ib_pd, advice: number, flags: number, sg_list: ib_sge[]): Sleepable<number>;
}

/** struct ib_device - one registered RDMA device. */
export interface ib_device {
  readonly name: string;
  readonly ops: ib_device_ops;
  /* which ib_umem_odp design this device was created with */
  readonly odp_design: ib_odp_design;
  /* the driver's own structure (container_of) */
  readonly driver_data: unknown;
}

/**
 * The three ODP designs this tree implements side by side
 * (include/rdma/ib_umem_odp.ts explains each):
 *   '2014'     per-context mmu_notifier, interval tree, notifiers_count/seq (v3.19)
 *   'hmm_v8'   the umem is mirrored by HMM v8 (patches 29-36 of the 2015 series)
 *   'mainline' one mmu_interval_notifier per umem, hmm_range_fault (v5.10+)
 */
export type ib_odp_design = '2014' | 'hmm_v8' | 'mainline';
export const ib_odp_designs: readonly ib_odp_design[] = Object.freeze(['2014', 'hmm_v8', 'mainline']);
