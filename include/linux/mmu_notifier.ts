/*
 * include/linux/mmu_notifier.ts - telling secondary MMUs that CPU page
 * tables change.
 *
 * Models include/linux/mmu_notifier.h (mainline). Two kinds of subscribers:
 *
 *  - struct mmu_notifier with mmu_notifier_ops: called for every
 *    invalidation of the mm (invalidate_range_start/end) and at teardown
 *    (release). ODP-era drivers and the v8 HMM core use these.
 *  - struct mmu_interval_notifier with mmu_interval_notifier_ops: called
 *    only for invalidations that overlap [start, last]; the driver keeps
 *    its device page table coherent with the sequence-count protocol:
 *
 *      reader (device fault)                writer (core mm)
 *      seq = mmu_interval_read_begin(sub)   invalidate_range_start:
 *      hmm_range_fault(...) under mmap_lock    mm seq becomes odd
 *      lock(driver)                            ops->invalidate(sub, range, cur_seq):
 *      if mmu_interval_read_retry(sub, seq)      lock(driver)
 *         unlock, start over                     mmu_interval_set_seq(sub, cur_seq)
 *      program device PTEs                       zap device PTEs; unlock(driver)
 *      unlock(driver)                          change CPU PTEs
 *                                            invalidate_range_end: seq becomes even
 *
 * The driver lock orders "publish" against "set_seq": either the reader
 * sees the new seq and retries, or the invalidation runs after the publish
 * and zaps it.
 */
import type { mm_struct } from './mm_types.js';
import type { Sleepable } from './sched.js';
import type { interval_tree_node } from './interval_tree.js';

/* enum mmu_notifier_event: why the range is being invalidated */
export const MMU_NOTIFY_UNMAP = 0;            /* munmap, mremap: the range goes away */
export const MMU_NOTIFY_CLEAR = 1;            /* PTEs cleared: COW, reclaim, madvise, migration */
export const MMU_NOTIFY_PROTECTION_VMA = 2;   /* mprotect: look at the VMA for the new protection */
export const MMU_NOTIFY_PROTECTION_PAGE = 3;  /* per-page protection change (fork COW, KSM) */
export const MMU_NOTIFY_SOFT_DIRTY = 4;       /* soft-dirty tracking cleared */
export const MMU_NOTIFY_RELEASE = 5;          /* the mm is being torn down (interval notifiers) */
export const MMU_NOTIFY_MIGRATE = 6;          /* migrate_vma_setup(); owner = pgmap owner */
export const MMU_NOTIFY_EXCLUSIVE = 7;        /* make_device_exclusive(); owner = requester */
export type mmu_notifier_event = number;

export const mmu_notifier_event_names = [
  'UNMAP', 'CLEAR', 'PROTECTION_VMA', 'PROTECTION_PAGE', 'SOFT_DIRTY', 'RELEASE', 'MIGRATE', 'EXCLUSIVE',
] as const;

/* range flags */
export const MMU_NOTIFIER_RANGE_BLOCKABLE = 1 << 0;

/** struct mmu_notifier_range - one invalidation: [start, end) of mm. */
export interface mmu_notifier_range {
  mm: mm_struct;
  start: number;
  end: number;                 /* exclusive */
  flags: number;               /* MMU_NOTIFIER_RANGE_BLOCKABLE */
  event: mmu_notifier_event;
  owner: unknown;              /* MIGRATE/EXCLUSIVE: who asked, so it can skip its own invalidation */
  /* HMM v8 (patch 01): the 2015 event, carried alongside (see mm/hmm_v8 notifier events) */
  v8_event?: number;
}

/** struct mmu_notifier_ops - callbacks of a whole-mm subscription. */
export interface mmu_notifier_ops {
  /**
   * release() - the mm is being torn down (exit_mmap) or the notifier is
   * unregistered while the mm lives. After it returns the device must not
   * access the mm. Context: may sleep.
   */
  release?(sub: mmu_notifier, mm: mm_struct): Sleepable;
  /**
   * invalidate_range_start() - PTEs in [start, end) are about to change;
   * the device must stop using them before returning. Return 0, or
   * -EAGAIN when the range is not blockable and the driver would sleep.
   * Context: mmap_lock may be held; may sleep only if blockable.
   */
  invalidate_range_start?(sub: mmu_notifier, range: mmu_notifier_range): Sleepable<number>;
  /** invalidate_range_end() - the CPU page-table change is complete. */
  invalidate_range_end?(sub: mmu_notifier, range: mmu_notifier_range): Sleepable;
  /**
   * clear_young() - reclaim ages [start, end): report whether the
   * secondary MMU accessed it since the last call, and forget that it did.
   * Optional (KVM has accessed bits to report; HMM mirrors do not).
   * Context: called under the CPU page-table lock: must not sleep.
   * Return: nonzero if young.
   */
  clear_young?(sub: mmu_notifier, mm: mm_struct, start: number, end: number): number;
  /**
   * arch_invalidate_secondary_tlbs() - the CPU's TLB for [start, end) of
   * @mm was just flushed; flush the secondary TLB of the same range (an
   * IOMMU's device ATC for an SVA bond). Called from the TLB-flush path
   * (flush_tlb_range in mm/pgtable.ts, x86's flush_tlb_mm_range), after
   * the PTEs changed and before the pages they mapped are freed; for a
   * single-PTE change (ptep_clear_flush: COW, reclaim, migration) with the
   * PTE's page-table lock held. Only for users that share the CPU page
   * table and keep no table of their own (Linux 6.6+; before 6.6 this was
   * ->invalidate_range). Context: atomic: must not sleep; the model runs
   * it with preemption disabled, so a callback that sleeps is a BUG.
   */
  arch_invalidate_secondary_tlbs?(sub: mmu_notifier, mm: mm_struct, start: number, end: number): void;
}

/** struct mmu_notifier - a whole-mm subscription. */
export interface mmu_notifier {
  ops: mmu_notifier_ops;
  mm: mm_struct | null;
  /* set once release() ran or the notifier was unregistered */
  released?: boolean;
}

/** struct mmu_interval_notifier_ops */
export interface mmu_interval_notifier_ops {
  /**
   * invalidate() - [range.start, range.end) overlapping this subscription
   * is changing. Must call mmu_interval_set_seq(sub, cur_seq) under the
   * driver lock that also guards the reader's publish, then tear down
   * device mappings of the range. Return false only when the range is not
   * blockable and the driver would have to sleep.
   */
  invalidate(sub: mmu_interval_notifier, range: mmu_notifier_range, cur_seq: number): Sleepable<boolean>;
}

/** struct mmu_interval_notifier - a subscription to [start, last] of one mm. */
export interface mmu_interval_notifier extends interval_tree_node {
  ops: mmu_interval_notifier_ops;
  mm: mm_struct;
  /* the odd seq of the last invalidation that hit this subscription; written by set_seq */
  invalidate_seq: number;
}
