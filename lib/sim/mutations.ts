/*
 * lib/sim/mutations.ts - TEST ONLY: deliberately broken variants of two
 * core-mm orderings, so that the race explorer's tests can show that the
 * preemption-point mode (lib/sim/sched.ts, preempt_point()) catches them
 * (test/lib/sim/preempt_point.test.ts). No Linux twin.
 *
 * (test/lib/sim/preempt_point.test.ts and preempt_point_cpu.test.ts).
 * Each knob names the step it breaks; every one is false on a real
 * machine, and resetRaceMutations() puts them back. The third mutation
 * (a driver recording its new sequence number after releasing its lock)
 * needs no knob: the test installs a broken notifier callback.
 */

/** The broken variants; all false unless a test turns one on. */
export const race_mutations = {
  /* migrate_vma_collect(): end the MMU_NOTIFY_MIGRATE invalidation BEFORE walking the range (mm/migrate_device.ts) */
  end_invalidation_before_walk: false,
  /* do_device_private_fault(): skip the recheck of the saved PTE under the PTE lock (mm/memory.ts) */
  skip_device_private_recheck: false,
  /* do_device_private_fault(): take the page reference after dropping the PTE lock (mm/memory_nonpresent.ts) */
  late_device_private_ref: false,
  /* handle_pte_fault(): skip the pte_same() recheck of a present PTE under the PTE lock (mm/memory.ts) */
  skip_pte_fault_recheck: false,
  /* remove_device_exclusive_entry(): restore without rechecking the entry under the PTE lock (mm/memory.ts) */
  skip_exclusive_restore_recheck: false,
  /* dmirror_device_remove_chunks(): one eviction pass, as Linux's lib/test_hmm.c (lib/test_hmm_evict.ts) */
  single_evict_pass: false,
};

/** resetRaceMutations() - every knob back to false. */
export function resetRaceMutations(): void {
  race_mutations.end_invalidation_before_walk = false;
  race_mutations.skip_device_private_recheck = false;
  race_mutations.late_device_private_ref = false;
  race_mutations.skip_pte_fault_recheck = false;
  race_mutations.skip_exclusive_restore_recheck = false;
  race_mutations.single_evict_pass = false;
}
