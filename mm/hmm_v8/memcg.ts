/*
 * mm/hmm_v8/memcg.ts - HMM v8 patch 15: memory cgroup charging as the 2015
 * migration code used it.
 *
 *   [PATCH 15/36] memcg: export get_mem_cgroup_from_mm()
 *
 * The 2015 memcg API had three steps: mem_cgroup_try_charge() reserves the
 * charge, mem_cgroup_commit_charge() binds it to the page once it is
 * mapped, mem_cgroup_cancel_charge() gives it back when the page is not
 * used after all. HMM charges the pages it allocates to fill holes before
 * migrating to the device (mm/hmm_v8/migrate.ts) and the destination pages
 * of a migration back (mm/hmm_v8/migrate_back.ts). Patch 15 exports
 * get_mem_cgroup_from_mm() because HMM works on whole ranges under
 * mmap_lock and wants the memcg once, not per page.
 *
 * The consequence the series acknowledged (patch 25 and a TODO in
 * mm_hmm_migrate_cleanup): a system page freed after its data moved to the
 * device is uncharged like any freed page, so device-resident data is not
 * accounted, and migrating it back can fail on the memcg limit (the CPU
 * fault then gets VM_FAULT_OOM). Mainline instead charges device-private
 * pages like ordinary ones, so migrating back never needs a new charge.
 *
 * How it sits on this tree: the memcg of mm/memcontrol.ts charges new
 * anonymous pages through mem_cgroup_charge() (one step, as Linux's
 * mem_cgroup_charge() is today, with reclaim inside the memcg before it
 * fails) and uncharges in the page-free path. The three 2015 steps map
 * onto that: try = charge, commit = nothing more, cancel = the uncharge
 * that freeing the page does.
 */
import type { mm_struct, page } from '../../include/linux/mm_types.js';
import { ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import { count_event } from '../../lib/sim/trace.js';
import { mem_cgroup_charge_sleepable } from '../memcontrol.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { GFP_KERNEL } from '../../include/linux/gfp.js';
import { get_mem_cgroup_from_mm } from '../memcontrol.js';

/* patch 15's export: mainline has it (mm/memcontrol.ts), HMM uses that one */
export { get_mem_cgroup_from_mm };

/**
 * mem_cgroup_try_charge() - charge @p to @mm's memcg before it is mapped
 * (GFP_KERNEL, as patches 20 and 21 charge).
 * Context: may sleep (blockable reclaim inside the memcg).
 * Return: 0, or -ENOMEM when the memcg is at its limit and reclaim could
 * not make room.
 */
export function* mem_cgroup_try_charge(p: page, mm: mm_struct): Sleepable<number> {
  if ((yield* mem_cgroup_charge_sleepable(p, mm, GFP_KERNEL)) !== 0) {
    count_event('hmm_v8_memcg_charge_fail');
    return -ENOMEM;
  }
  return 0;
}

/** mem_cgroup_commit_charge() - @p is mapped now; the charge stays with it. */
export function mem_cgroup_commit_charge(_p: page): void {
  count_event('hmm_v8_memcg_commit');
}

/**
 * mem_cgroup_cancel_charge() - @p will not be mapped after all: its charge
 * goes back when the caller frees it (the uncharge is in the free path).
 */
export function mem_cgroup_cancel_charge(_p: page): void {
  count_event('hmm_v8_memcg_cancel');
}
