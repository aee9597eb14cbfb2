/*
 * mm/hmm_v8/hooks.ts - hmm_v8_hooks: the one table of places where the HMM
 * v8 series (Jérôme Glisse, 2015, 36 patches; see mm/hmm_v8/hmm.ts) reaches
 * into core mm.
 *
 * Core mm calls everything else directly. These four calls are different:
 * they are the series' patches to mainline files, and the v8 code they
 * call lives under mm/hmm_v8/. Core mm tests the slot, so it also runs
 * without the series; hmmV8Init() (mm/hmm_v8/hmm.ts, called by
 * start_kernel()) fills them. Counting them is the point of the table:
 *
 *   1. range_start  mm/mmu_notifier.ts mmu_notifier_invalidate_range_start():
 *                   link the range on the 2015 per-mm active list and tag
 *                   it with its 2015 event, before any start callback
 *                   (patches 01, 02)
 *   2. range_end    mm/mmu_notifier.ts mmu_notifier_invalidate_range_end()
 *                   (and the failed-start path): unlink it after the last
 *                   end callback (patch 02)
 *   3. cpu_fault    mm/memory.ts do_swap_page(): a CPU fault on a SWP_HMM
 *                   entry (hmm_handle_cpu_fault, patches 20, 25)
 *   4. mm_fork      mm/fork.ts copy_page_range(): fork of a range holding
 *                   SWP_HMM entries (hmm_mm_fork, patches 26, 27)
 *
 * None of them is called with a spinlock held; range_start and range_end
 * do not sleep, cpu_fault and mm_fork may.
 */
import type { vm_area_struct, vm_fault } from '../../include/linux/mm_types.js';
import type { mmu_notifier_range } from '../../include/linux/mmu_notifier.js';
import type { swp_entry_t } from '../../include/linux/swapops.js';
import type { Sleepable } from '../../lib/sim/sched.js';

export interface hmm_v8_hooks_t {
  range_start: ((range: mmu_notifier_range) => void) | null;
  range_end: ((range: mmu_notifier_range) => void) | null;
  cpu_fault: ((vmf: vm_fault, entry: swp_entry_t) => Sleepable<number>) | null;
  mm_fork: ((src: vm_area_struct, dst: vm_area_struct, addr: number) => Sleepable<number>) | null;
}

export const hmm_v8_hooks: hmm_v8_hooks_t = { range_start: null, range_end: null, cpu_fault: null, mm_fork: null };
