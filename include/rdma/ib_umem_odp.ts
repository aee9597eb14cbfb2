/*
 * include/rdma/ib_umem_odp.ts - a user memory region as the IB core keeps
 * it: pinned (struct ib_umem) or on-demand (struct ib_umem_odp), and the
 * three ODP designs.
 *
 * Follows include/rdma/ib_umem.h and include/rdma/ib_umem_odp.h of Linux
 * v3.19 (the 2014 design) and v5.10 (mainline), with the HMM v8 variant of
 * the 2015 series (patches 29-36, "IB/odp/hmm") beside them.
 *
 * Why a NIC needs this: a pinned MR takes a long-term pin on every page at
 * registration (pin_user_pages(FOLL_LONGTERM)), so a 1 GiB MR costs 262144
 * pins before the first byte moves and the pages can never be reclaimed,
 * migrated or COW-broken under the NIC. An ODP MR pins nothing: the NIC's
 * translation table (MTT) starts empty, a miss raises a page fault that the
 * driver resolves against the CPU page table, and CPU-side changes reach
 * the NIC through MMU notifiers that zap the MTT.
 *
 * dma_list[i] of a umem, one per page (2014 and mainline):
 *
 *    52                                   12 11                 2   1   0
 *   +---------------------------------------+--------------------+---+---+
 *   |        bus address (dma_map_page)     |         0          | W | R |
 *   +---------------------------------------+--------------------+---+---+
 *     R  ODP_READ_ALLOWED_BIT   the NIC may read the page
 *     W  ODP_WRITE_ALLOWED_BIT  the NIC may write it; set_page_dirty on unmap
 *   0 = not mapped. A read-only entry gains W in place when a write fault
 *   comes (the "non-invalidating transition" of ib_umem_odp_map_dma_single_page).
 *
 * The designs (the code is in drivers/infiniband/core/):
 *  '2014' (umem_odp_2014.ts, v3.19): one whole-mm mmu_notifier per
 *    ib_ucontext and an interval tree of the context's umems. A fault reads
 *    notifiers_seq, faults pages with get_user_pages() and drops each
 *    reference at once ("on-demand pinning"), then under umem_mutex checks
 *    ib_umem_mmu_notifier_retry() (a notifier running, or seq moved) before
 *    programming the MTT. invalidate_range_start bumps notifiers_count and
 *    zaps; invalidate_range_end bumps notifiers_seq and completes waiters.
 *  'hmm_v8' (umem_odp_hmm_v8.ts): the context is an hmm_mirror; a fault is
 *    hmm_mirror_fault() (HMM walks the CPU table, DMA-maps, and calls the
 *    driver's update() with the selected entries); invalidations arrive as
 *    update() events. Safety comes from HMM's fault/invalidate backoff.
 *  'mainline' (umem_odp.ts, v5.10): one mmu_interval_notifier per umem;
 *    ib_umem_odp_map_dma_and_lock() = mmu_interval_read_begin +
 *    hmm_range_fault + umem_mutex + mmu_interval_read_retry, and returns
 *    with umem_mutex held so the driver programs the MTT before any
 *    invalidation can run.
 */
import type { mm_struct, page } from '../linux/mm_types.js';
import type { mmu_interval_notifier } from '../linux/mmu_notifier.js';
import type { interval_tree_node } from '../linux/interval_tree.js';
import type { mutex } from '../linux/mutex_types.js';
import type { completion } from '../linux/completion.js';
import type { ib_odp_design } from './ib_verbs.js';

export const ODP_READ_ALLOWED_BIT = 1 << 0;
export const ODP_WRITE_ALLOWED_BIT = 1 << 1;
export const ODP_DMA_ADDR_MASK = ~(ODP_READ_ALLOWED_BIT | ODP_WRITE_ALLOWED_BIT);

/** odp_dma_addr() - the bus address of a dma_list element (bits 0-1 are permissions). */
export function odp_dma_addr(e: number): number { return e - (e % 4); }

/**
 * struct ib_umem - a registered user range.
 * @mm: the owner's address space (mmgrab'ed while the umem lives)
 * @address, @length: the user range, page aligned here
 * @writable: ib_access_writable(access): faults ask for write access
 * @is_odp: an ib_umem_odp (no pages pinned)
 * @pages: pinned MRs only: the FOLL_LONGTERM-pinned pages, in order
 */
export interface ib_umem {
  mm: mm_struct;
  address: number;
  length: number;
  writable: boolean;
  is_odp: boolean;
  pages: page[];
}

/**
 * struct ib_umem_odp - an on-demand umem.
 *
 * protected by umem_mutex:
 * @dma_list: per page, bus address | ODP_*_ALLOWED_BIT (see above)
 * @page_list: per page, the page behind dma_list (to unmap and dirty it)
 * @npages: pages currently mapped; an implicit child with 0 is freed
 * 2014 design, protected by umem_mutex:
 * @notifiers_seq: bumped at every invalidate_range_end overlapping us
 * @notifiers_count: invalidations overlapping us now running
 * @mn_counters_active: false while the umem was created under a running
 *   notifier: faults are refused until every notifier has ended
 * @notifier_completion: completed when notifiers_count drops to 0
 * mainline design:
 * @notifier: the interval notifier over [start, end) (its seq is guarded
 *   by umem_mutex: the invalidate callback sets it under that mutex)
 * hmm_v8 design: faults and updates go through the context's mirror.
 *
 * @is_implicit_odp: the parent of an implicit MR (no pages of its own)
 * @private: the driver's MR (mlx5_ib_mr)
 */
export interface ib_umem_odp extends interval_tree_node {
  umem: ib_umem;
  design: ib_odp_design;
  uctx: ib_ucontext_odp;
  page_shift: number;
  umem_mutex: mutex;
  dma_list: Float64Array;
  page_list: (page | null)[];
  npages: number;
  notifiers_seq: number;
  notifiers_count: number;
  mn_counters_active: boolean;
  notifier_completion: completion;
  notifier: mmu_interval_notifier | null;
  is_implicit_odp: boolean;
  private: unknown;
  dead: boolean;
}

/** ib_umem_start(), ib_umem_end(), ib_umem_odp_num_pages() */
export function ib_umem_start(odp: ib_umem_odp): number { return odp.umem.address; }
export function ib_umem_end(odp: ib_umem_odp): number { return odp.umem.address + odp.umem.length; }
export function ib_umem_odp_num_pages(odp: ib_umem_odp): number { return odp.umem.length >> odp.page_shift; }

/**
 * struct ib_ucontext (the ODP part) - one process' use of one device.
 * @mm: the process' mm
 * @invalidate_range: the driver's zap callback (mlx5_ib_invalidate_range);
 *   called with umem_mutex held, must leave no MTT entry of [start, end)
 * 2014: @umem_tree (interval tree of ODP umems), @notifier_count (notifiers
 *   running on the mm right now), @no_private_counters (umems created while
 *   one ran), @mn (the whole-mm notifier, registered on first ODP umem)
 * hmm_v8: @mirror (one mirror per context; its update() walks @umem_tree)
 */
export interface ib_ucontext_odp {
  mm: mm_struct;
  design: ib_odp_design;
  invalidate_range: (odp: ib_umem_odp, start: number, end: number) => void;
  umem_tree: { insert(n: ib_umem_odp): void; remove(n: ib_umem_odp): boolean; overlapping(s: number, l: number): ib_umem_odp[]; size: number };
  notifier_count: number;
  no_private_counters: ib_umem_odp[];
  mn: unknown;
  mirror: unknown;
  dma_device: unknown;
}
