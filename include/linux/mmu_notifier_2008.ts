/*
 * include/linux/mmu_notifier_2008.ts - the mmu notifier API as first
 * merged, in Linux 2.6.27 (July 2008, Andrea Arcangeli's design after the
 * Feb 2008 debate with Christoph Lameter, Nick Piggin and Robin Holt).
 *
 * Follows include/linux/mmu_notifier.h of v2.6.27. Five callbacks of a
 * struct mmu_notifier_ops, each with (mn, mm, address or range):
 *
 *   release(mn, mm)                  exit_mmap: the mm is going away
 *   clear_flush_young(mn, mm, addr)  reclaim ages a page: did the
 *                                    secondary MMU use it? (returns young)
 *   invalidate_page(mn, mm, addr)    ptep_clear_flush_notify(): one PTE was
 *                                    cleared and the CPU TLB flushed, and
 *                                    the page is still referenced: the
 *                                    secondary MMU drops its mapping now,
 *                                    before the VM releases the page
 *   invalidate_range_start(mn, mm, start, end)
 *   invalidate_range_end(mn, mm, start, end)
 *                                    around changes of many PTEs (zap,
 *                                    mprotect, fork's COW, mremap); the
 *                                    VM may free the pages BEFORE the end
 *                                    call, so a user that holds no page
 *                                    reference must drop its mappings at
 *                                    start and refuse to create new ones
 *                                    until end. That is the pair's whole
 *                                    reason (Arcangeli, Feb 2008): KVM
 *                                    holds a reference on every page its
 *                                    shadow table maps, SGI's GRU does not.
 *
 * change_pte() is not in 2.6.27: it came with KSM (2.6.32).
 * invalidate_range() (non-sleeping, from the TLB flush) came in 3.19 for
 * IOMMUv2 and became arch_invalidate_secondary_tlbs in 6.6.
 *
 * In 2.6.27 none of the five may sleep: invalidate_page runs under the
 * page-table lock, the range pair under i_mmap_lock (a spinlock then);
 * sleeping range callbacks came later (2.6.29's XPMEM debate, then
 * mainline's blockable ranges). Here they are plain functions, not
 * generators: the type says they cannot sleep.
 *
 * How the model delivers them (mm/mmu_notifier_2008.ts): the range pair
 * and release come from one mainline subscription (the "hub") per mm;
 * invalidate_page is called by flush_tlb_page() (mm/pgtable.ts), where
 * 2.6.27's ptep_clear_flush_notify() called it; clear_flush_young from
 * the hub's clear_young.
 */
import type { mm_struct } from './mm_types.js';

/** struct mmu_notifier_ops, 2.6.27. Every callback is optional; none may sleep. */
export interface mmu_notifier_ops_2008 {
  release?(mn: mmu_notifier_2008, mm: mm_struct): void;
  clear_flush_young?(mn: mmu_notifier_2008, mm: mm_struct, address: number): number;
  invalidate_page?(mn: mmu_notifier_2008, mm: mm_struct, address: number): void;
  invalidate_range_start?(mn: mmu_notifier_2008, mm: mm_struct, start: number, end: number): void;
  invalidate_range_end?(mn: mmu_notifier_2008, mm: mm_struct, start: number, end: number): void;
}

/** struct mmu_notifier, 2.6.27: the subscriber's handle. */
export interface mmu_notifier_2008 {
  ops: mmu_notifier_ops_2008;
  mm: mm_struct | null;
}
