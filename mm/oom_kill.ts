/*
 * mm/oom_kill.ts - the out-of-memory killer and the OOM reaper.
 *
 * Models mm/oom_kill.c (Linux 6.x): when an allocation that may reclaim
 * still fails after direct reclaim, __alloc_pages_may_oom() (mm/page_alloc.ts)
 * calls out_of_memory(), which picks the task whose memory is largest
 * (oom_badness(): resident pages + swap entries; Linux adds the page-table
 * pages, which this model does not count per mm),
 * sends it SIGKILL and lets the OOM reaper strip its private memory right
 * away, so the allocation can be retried without waiting for the victim to
 * run its exit. A CPU fault whose allocation still fails returns
 * VM_FAULT_OOM; pagefault_out_of_memory() (since Linux 5.16) does not
 * kill the faulting task any more: a memcg OOM is handled there, a task
 * with SIGKILL pending dies, anything else only warns and the fault is
 * retried.
 *
 * The reaper (__oom_reap_task_mm) unmaps every private VMA of the victim
 * (not hugetlb, not VM_PFNMAP) inside a NON-blockable MMU_NOTIFY_UNMAP
 * range: it must not wait on a subscriber that may itself be waiting for
 * memory. A subscriber that would have to sleep refuses the range, and
 * that VMA is left for the victim's own exit. It only try-locks the
 * victim's mmap_lock. Afterwards the mm is MMF_OOM_SKIP: never chosen
 * again, so each task is killed at most once and the allocator's
 * kill-and-retry loop ends after at most one round per task.
 *
 * Simplified: the reaper runs inline in the allocating thread (Linux: the
 * oom_reaper kthread, woken by queue_oom_reaper()). When it could not
 * reap everything, an allocation that may sleep (alloc_pages_sleepable()
 * sets oc.may_wait) keeps waiting for that victim and kills nobody else
 * for OOM_REAP_WAIT_NS (Linux's reaper retries MAX_OOM_REAP_RETRIES times,
 * HZ/10 apart, before MMF_OOM_SKIP); then the reaper tries once more and
 * gives up on the mm. An allocation that cannot sleep gives up on it at
 * once (the model's plain alloc_pages() has no way to wait). The allocating
 * task itself, when chosen, is not reaped (it may be in the middle of a
 * fault on that mm): it gets the memory reserves (ALLOC_OOM) and dies on
 * its way back to user space. No oom_score_adj, no cpusets or mempolicy
 * constraints, no init process to protect, no oom_group. The victim ends
 * when its pending SIGKILL is delivered (tools/include/nolibc:
 * Process.run() does that on every return to user space).
 */
import type { mm_struct } from '../include/linux/mm_types.js';
import { MM_SWAPENTS, MMF_OOM_SKIP } from '../include/linux/mm_types.js';
import { type task_struct, fatal_signal_pending } from '../include/linux/sched.js';
import { get_mm_counter, get_mm_rss, vma_is_anonymous, VM_HUGETLB, VM_PFNMAP, VM_SHARED } from '../include/linux/mm.js';
import { MMU_NOTIFY_UNMAP } from '../include/linux/mmu_notifier.js';
import { SIGKILL } from '../include/uapi/asm-generic/signal.js';
import type { gfp_t } from '../include/linux/gfp.js';
import { current, runSync } from '../lib/sim/sched.js';
import { now, NSEC_PER_SEC } from '../lib/sim/clock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { for_each_process } from './task.js';
import { mmap_read_trylock, mmap_read_unlock } from './mmap_lock.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { tlb_gather_mmu, unmap_page_range, tlb_finish_mmu } from './zap.js';

/** struct oom_control - one OOM situation: what failed, and whom it chose. */
export interface oom_control {
  gfp_mask: gfp_t;
  order: number;
  chosen: task_struct | null;
  chosen_points: number;
  /*
   * the allocation may sleep (alloc_pages_sleepable()), so the reaper may
   * keep a victim it could not reap fully for OOM_REAP_WAIT_NS before
   * giving up on it; false: give up at once (no Linux twin, see the header)
   */
  may_wait?: boolean;
}

/* How long the reaper keeps trying a victim's mm before MMF_OOM_SKIP (MAX_OOM_REAP_RETRIES x HZ/10). */
export const OOM_REAP_WAIT_NS = NSEC_PER_SEC;

/* every kill of this boot, in order: for tests and the fuzzer */
let kills: { pid: number; points: number }[] = [];
/* victims' mms the reaper could not reap fully, and until when (simulated ns) it keeps trying */
let reap_pending = new WeakMap<mm_struct, number>();

/** oom_kills() - the pids killed by the OOM killer since boot, with their badness. */
export function oom_kills(): readonly { pid: number; points: number }[] { return kills; }

/** resetOomKill() - a fresh machine (start_kernel()). */
export function resetOomKill(): void { kills = []; reap_pending = new WeakMap(); }

/** current_task() - the task of the running thread, null for a kernel thread. */
function current_task(): task_struct | null {
  return (current().task as task_struct | null) ?? null;
}

/** tsk_is_oom_victim() - the OOM killer already chose @t. */
export function tsk_is_oom_victim(t: task_struct): boolean { return t.oom_mm !== null; }

/**
 * oom_victims_exiting() - victims chosen earlier that have not exited yet
 * (other than the running task): the memory the reaper could not take
 * comes back when they do, so an allocation may wait for them
 * (mm/page_alloc.ts, alloc_pages_sleepable()).
 * Context: any. Return: how many.
 */
export function oom_victims_exiting(): number {
  const self = current_task();
  let n = 0;
  for (const t of for_each_process()) if (t !== self && t.oom_mm !== null && t.exit_state === 0) n++;
  return n;
}

/**
 * oom_badness() - how much memory killing @t would give back: resident
 * pages, swap entries and page-table pages of its mm.
 * Return: the points, or -Infinity (LONG_MIN in Linux) for a task that
 * must not be chosen: no mm, exiting, or its mm is MMF_OOM_SKIP.
 */
export function oom_badness(t: task_struct): number {
  const mm = t.mm;
  if (mm === null || t.exit_state !== 0 || (mm.flags & MMF_OOM_SKIP)) return -Infinity;
  return get_mm_rss(mm) + get_mm_counter(mm, MM_SWAPENTS);
}

/*
 * select_bad_process() - the task with the most points. A victim chosen
 * before whose mm is not MMF_OOM_SKIP yet is still freeing its memory:
 * abort (Linux returns -1 from oom_evaluate_task) rather than kill a second.
 * Return: false if the selection was aborted.
 */
function select_bad_process(oc: oom_control): boolean {
  for (const t of for_each_process()) {
    if (t.mm === null || t.exit_state !== 0) continue;
    if (tsk_is_oom_victim(t) && !(t.oom_mm!.flags & MMF_OOM_SKIP)) {
      const until = reap_pending.get(t.oom_mm!);
      if (until === undefined || (oc.may_wait === true && now() < until)) return false;
      oom_reap_task_mm(t, t.oom_mm!, false);         /* the reaper's last try: then it gives up on this mm */
    }
    const points = oom_badness(t);
    if (points === -Infinity || points < oc.chosen_points) continue;
    if (points === oc.chosen_points && oc.chosen !== null) continue;
    oc.chosen = t;
    oc.chosen_points = points;
  }
  return true;
}

/**
 * __oom_reap_task_mm() - unmap the private memory of a victim's mm without
 * blocking on secondary MMUs.
 * Return: false if some VMA had to be skipped (a subscriber refused).
 * Context: the victim's mmap_lock held for read.
 */
export function __oom_reap_task_mm(mm: mm_struct): boolean {
  let ret = true;
  for (const vma of [...mm.mmap]) {
    if (vma.vm_flags & (VM_HUGETLB | VM_PFNMAP)) continue;
    if (!vma_is_anonymous(vma) && (vma.vm_flags & VM_SHARED)) continue;
    const range = mmu_notifier_range_init(MMU_NOTIFY_UNMAP, 0, mm, vma.vm_start, vma.vm_end);
    if (runSync(mmu_notifier_invalidate_range_start(range)) !== 0) {
      count_event('oom_reap_notifier_busy');
      ret = false;
      continue;
    }
    const tlb = tlb_gather_mmu(mm);
    unmap_page_range(tlb, vma, vma.vm_start, vma.vm_end);
    tlb_finish_mmu(tlb, vma);
    runSync(mmu_notifier_invalidate_range_end(range));
  }
  return ret;
}

/*
 * oom_reap_task_mm() - reap if the victim's mmap_lock is free. When
 * something was left (a subscriber refused, the lock was busy) and the
 * allocation may wait, the reaper keeps the mm for OOM_REAP_WAIT_NS (the
 * victim may exit meanwhile; no other task is killed); otherwise the mm
 * is done for the OOM killer (MMF_OOM_SKIP).
 */
function oom_reap_task_mm(t: task_struct, mm: mm_struct, may_wait: boolean): void {
  let freed_all = false;
  if (mmap_read_trylock(mm)) {
    freed_all = __oom_reap_task_mm(mm);
    mmap_read_unlock(mm);
    count_event('oom_reaped');
    trace_event('oom_reaped', { pid: t.pid, complete: freed_all, rss: get_mm_rss(mm) });
  } else {
    count_event('oom_reap_lock_busy');
  }
  if (!freed_all && may_wait && !reap_pending.has(mm)) {
    reap_pending.set(mm, now() + OOM_REAP_WAIT_NS);
    return;
  }
  reap_pending.delete(mm);
  mm.flags |= MMF_OOM_SKIP;
}

/*
 * oom_kill_process() - SIGKILL the chosen task (and, as Linux, every other
 * task using the same mm), mark it a victim, reap its mm unless it is the
 * allocating task.
 */
function oom_kill_process(oc: oom_control): void {
  const victim = oc.chosen!;
  const mm = victim.mm!;
  kills.push({ pid: victim.pid, points: oc.chosen_points });
  count_event('oom_kill');
  trace_event('oom_kill', { pid: victim.pid, comm: victim.comm, points: oc.chosen_points, order: oc.order });
  for (const t of for_each_process()) {
    if (t.mm !== mm || t.exit_state !== 0) continue;
    t.pending |= 1 << SIGKILL;
    t.oom_mm = mm;
  }
  const self = current_task();
  if (self !== null && self.mm === mm) return;      /* the allocating task: it dies on its way out */
  oom_reap_task_mm(victim, mm, oc.may_wait === true);
}

/**
 * out_of_memory() - reclaim failed: kill the task that frees the most.
 * @oc: the failed allocation; chosen and chosen_points are filled here.
 *
 * A current task that is already dying (SIGKILL pending) only gets to use
 * the reserves (Linux's task_will_free_mem(current) shortcut).
 * Context: the allocating thread, inline (does not sleep in this model).
 * Return: true if a task was killed or is on its way out (retry the
 * allocation), false if there was nothing to kill.
 */
export function out_of_memory(oc: oom_control): boolean {
  const self = current_task();
  if (self !== null && fatal_signal_pending(self)) return true;
  oc.chosen = null;
  oc.chosen_points = -Infinity;
  if (!select_bad_process(oc)) return true;
  if (oc.chosen === null) {
    count_event('oom_no_victim');
    trace_event('oom_no_victim', { order: oc.order });
    return false;
  }
  oom_kill_process(oc);
  return true;
}

/**
 * pagefault_out_of_memory() - a fault came back with VM_FAULT_OOM.
 * A memcg that ran out handles it here (the memcg OOM killer: in this
 * model it chooses the faulting task, see mm/memcontrol.ts); a task with
 * SIGKILL pending dies; otherwise (Linux 5.16+) only warn: the fault is
 * retried, the global OOM killer has already run in the allocator.
 * Context: the faulting task, after mmap_lock was dropped.
 * Return: the signal to deliver (SIGKILL), or 0 to retry the fault.
 */
export function pagefault_out_of_memory(task: task_struct): number {
  if (task.memcg_in_oom !== null) {
    task.memcg_in_oom = null;
    count_event('oom_kill');
    return SIGKILL;
  }
  if (fatal_signal_pending(task)) return SIGKILL;
  count_event('pagefault_oom_retry');      /* Linux: a rate-limited "Huh VM_FAULT_OOM leaked out" warning */
  trace_event('pagefault_out_of_memory', { pid: task.pid });
  return 0;
}
