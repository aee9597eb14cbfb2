/*
 * include/linux/mlx5/odp.ts - what the mock ConnectX NIC and its driver
 * share: the MTT entry format, the page-fault event (EQE) and the ODP
 * constants.
 *
 * Follows include/linux/mlx5/device.h and drivers/infiniband/hw/mlx5/
 * {mlx5_ib.h,odp.c} of Linux v5.10 for names and constants; the entry and
 * EQE layouts are this model's own (a real MTT entry is a big-endian
 * 64-bit bus address whose low bits carry the same read/write flags).
 *
 * The MTT is one lib/gpt table per memory key (struct gpt with the format
 * mlx5_mtt_format below), indexed by I/O virtual address: 4 levels of 512
 * entries over 48 bits, as the CPU's own table, so one engine walks both.
 * A leaf:
 *
 *    52                                  12 11                  2   1   0
 *   +--------------------------------------+---------------------+---+---+
 *   |   bus address of the page (IOVA)     |          0          | W | R |
 *   +--------------------------------------+---------------------+---+---+
 *     R  MLX5_IB_MTT_READ    the NIC may read (RDMA READ responder, send gather)
 *     W  MLX5_IB_MTT_WRITE   the NIC may write (RDMA WRITE responder, receive
 *                            scatter, READ response landing, atomics)
 *   0 = not present: the access raises a page fault (ODP) or, for a
 *   pinned MR, a protection error.
 * A directory entry is (child slot << 12) | MLX5_MTT_PDE (bit 2), never at
 * the last level, so R/W never collide with it.
 *
 * Page-fault EQE (struct mlx5_pagefault, simplified):
 *   type     MLX5_PFAULT_SUBTYPE_WQE: a WQE needs pages. The driver reads the
 *            WQE (requester: the send queue, responder: the receive queue)
 *            and faults every SGE of it.
 *            MLX5_PFAULT_SUBTYPE_RDMA: an incoming RDMA READ/WRITE/atomic hit
 *            a missing page: rkey, va, packet length, and op length (the
 *            whole operation, for the post-fault prefetch)
 *   flags    MLX5_PFAULT_REQUESTOR, MLX5_PFAULT_WRITE, MLX5_PFAULT_RDMA
 *   token    the QP number to resume
 */
import type { gpt_format } from '../gpt.js';

export const MLX5_IB_MTT_READ = 1 << 0;
export const MLX5_IB_MTT_WRITE = 1 << 1;
export const MLX5_IB_MTT_PRESENT = MLX5_IB_MTT_READ | MLX5_IB_MTT_WRITE;
export const MLX5_MTT_PDE = 1 << 2;

/* the descriptor lib/gpt builds the table from (defined in drivers/infiniband/hw/mlx5/mr.ts) */
export type mlx5_mtt_format_t = gpt_format;

/** mlx5_mtt_make() - a leaf for page-aligned bus address @dma with R/W bits @perm. */
export function mlx5_mtt_make(dma: number, perm: number): number { return dma - (dma % 4096) + (perm & MLX5_IB_MTT_PRESENT); }
/** mlx5_mtt_dma() - the bus address of a leaf. */
export function mlx5_mtt_dma(e: number): number { return e - (e % 4096); }
/** mlx5_mtt_perm() - the R/W bits of a leaf. */
export function mlx5_mtt_perm(e: number): number { return e & MLX5_IB_MTT_PRESENT; }

/* page-fault EQ */
export const MLX5_IB_NUM_PF_EQE = 0x1000;          /* 4096 EQEs (odp.c) */
export const MLX5_PFAULT_SUBTYPE_WQE = 0;
export const MLX5_PFAULT_SUBTYPE_RDMA = 1;
export const MLX5_PFAULT_REQUESTOR = 1 << 0;
export const MLX5_PFAULT_WRITE = 1 << 1;
export const MLX5_PFAULT_RDMA = 1 << 2;

/** struct mlx5_pagefault - one EQE of the page-fault EQ. */
export interface mlx5_pagefault {
  type: number;             /* MLX5_PFAULT_SUBTYPE_* */
  flags: number;            /* MLX5_PFAULT_* */
  token: number;            /* qp_num to resume */
  wqe_index: number;        /* WQE faults: index in the SQ (requester) or RQ (responder) */
  rkey: number;             /* RDMA faults */
  va: number;
  length: number;           /* the packet's bytes */
  op_len: number;           /* the whole operation's bytes (post-fault prefetch) */
}

/* ODP constants of drivers/infiniband/hw/mlx5/odp.c */
export const MAX_PREFETCH_LEN = 4 * 1024 * 1024;   /* post-fault prefetch of RDMA responder faults */
export const MLX5_IMR_MTT_BITS = 30 - 12;           /* implicit children span 2^30 = 1 GiB */
export const MLX5_IMR_MTT_SIZE = 2 ** 30;
export const MMU_NOTIFIER_TIMEOUT_MS = 1000;        /* how long a fault waits for running notifiers */
export const MLX5_MAX_UMR_PAGES = 512;               /* pages per UMR post when updating the MTT */
/* ibv_reg_mr(pd, NULL, SIZE_MAX, ON_DEMAND) asks for the implicit MR */
export const IB_IMPLICIT_MR_LENGTH = Number.MAX_SAFE_INTEGER;

/** struct mlx5_odp_stats - per-MR counters (mlx5_update_odp_stats). */
export interface mlx5_odp_stats {
  faults: number;           /* pages made present by faults */
  invalidations: number;    /* pages zapped by notifiers */
  prefetch: number;         /* pages made present by advise_mr or the post-fault prefetch */
}
