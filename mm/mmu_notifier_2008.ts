/*
 * mm/mmu_notifier_2008.ts - the 2008 mmu notifier API (Linux 2.6.27),
 * selectable beside the mainline API (mm/mmu_notifier.ts) and the 2015 v8
 * extensions (mm/hmm_v8/mmu_notifier.ts), as a layer over the mainline
 * core. The API, its five callbacks and why the range pair exists are in
 * include/linux/mmu_notifier_2008.ts.
 *
 * Follows mm/mmu_notifier.c of v2.6.27 (mmu_notifier_register,
 * mmu_notifier_unregister calling ->release, __mmu_notifier_invalidate_page,
 * __mmu_notifier_invalidate_range_start/end, __mmu_notifier_clear_flush_young,
 * __mmu_notifier_release).
 *
 * Where each call comes from (the core mm call sites stay explicit):
 *
 *   2.6.27 call                 here
 *   invalidate_page             flush_tlb_page() in mm/pgtable.ts, the place
 *                               2.6.27's ptep_clear_flush_notify() called it:
 *                               after the PTE is cleared and the TLB flushed,
 *                               before the caller drops the page (COW,
 *                               reclaim, migration, device exclusive)
 *   invalidate_range_start/end  the mainline range pair, through one
 *                               whole-mm mainline subscription per mm (the
 *                               hub); zap frees the pages before the end
 *                               call, as unmap_vmas + tlb_finish_mmu did
 *   clear_flush_young           the hub's clear_young, page by page
 *   release                     the hub's release (exit_mmap)
 *
 * Mainline wraps single-PTE changes in a range pair too; a 2008 user
 * therefore sees a pair around some invalidate_page calls where 2.6.27
 * sent invalidate_page alone. That is a superset and harmless.
 *
 * The broken variant (mmu_notifier_2008_params.broken_no_range_pair): the
 * pair collapses into one call made after the change, when the VM has
 * already released the pages (what invalidate_range-after-the-fact
 * designs of the 2008 debate did). Arcangeli's point, checked by the
 * notifiers-2008 scenario and its explore test: a user that pins its
 * pages (drivers/kvm-like) stays correct, a pinless one (drivers/misc/
 * sgi-gru) reads a freed page.
 */
import type { mm_struct } from '../include/linux/mm_types.js';
import type { mmu_notifier, mmu_notifier_range } from '../include/linux/mmu_notifier.js';
import type { mmu_notifier_2008 } from '../include/linux/mmu_notifier_2008.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import { preempt_point, type Sleepable } from '../lib/sim/sched.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { __mmu_notifier_register } from './mmu_notifier.js';
import { mmap_write_lock, mmap_write_unlock } from './mmap_lock.js';

/**
 * Parameters (tests, the notifiers-2008 scenario).
 *  broken_no_range_pair: TEST ONLY - no call before the change; start and
 *      end are made back to back after it (see the header).
 */
export const mmu_notifier_2008_params = { broken_no_range_pair: false };

/** mmuNotifier2008ParamsReset() - defaults back (tests). */
export function mmuNotifier2008ParamsReset(): void {
  mmu_notifier_2008_params.broken_no_range_pair = false;
}

/**
 * struct mmu_notifier_mm (2.6.27) - per-mm state of this layer.
 * @list: the 2008 subscribers; changed with mmap_lock held for write
 * @hub: the mainline subscription that calls them
 */
interface mmu_notifier_mm_2008 {
  list: mmu_notifier_2008[];
  hub: mmu_notifier;
}

const state = new WeakMap<mm_struct, mmu_notifier_mm_2008>();
/* mms that ever had 2008 state: 0 lets the per-page hook return at once (2.6.27's mm_has_notifiers() test) */
let nr_state = 0;
/* subscribers ->release was called for (by exit or unregister) */
const released = new WeakSet<mmu_notifier_2008>();

function each(s: mmu_notifier_mm_2008, fn: (mn: mmu_notifier_2008) => void): void {
  for (const mn of s.list.slice()) fn(mn);
}

function trace_2008(name: string, mm: mm_struct, start: number, end: number): void {
  count_event(name);
  trace_event(name, { mm: mm.id, start, end });
}

function make_hub(s: mmu_notifier_mm_2008): mmu_notifier {
  return {
    mm: null,
    ops: {
      *invalidate_range_start(_sub: mmu_notifier, r: mmu_notifier_range): Sleepable<number> {
        if (mmu_notifier_2008_params.broken_no_range_pair) return 0;
        trace_2008('mmu_notifier_2008_range_start', r.mm, r.start, r.end);
        each(s, (mn) => mn.ops.invalidate_range_start?.(mn, r.mm, r.start, r.end));
        return 0;
      },
      *invalidate_range_end(_sub: mmu_notifier, r: mmu_notifier_range): Sleepable {
        /* another CPU may run here; a zap has already freed its pages */
        preempt_point('mmu_notifier_2008: before range_end');
        if (mmu_notifier_2008_params.broken_no_range_pair)
          each(s, (mn) => mn.ops.invalidate_range_start?.(mn, r.mm, r.start, r.end));
        trace_2008('mmu_notifier_2008_range_end', r.mm, r.start, r.end);
        each(s, (mn) => mn.ops.invalidate_range_end?.(mn, r.mm, r.start, r.end));
      },
      *release(_sub: mmu_notifier, mm: mm_struct): Sleepable {
        trace_2008('mmu_notifier_2008_release', mm, 0, 0);
        each(s, (mn) => {
          if (released.has(mn)) return;
          released.add(mn);
          mn.ops.release?.(mn, mm);
        });
      },
      clear_young(_sub: mmu_notifier, mm: mm_struct, start: number, end: number): number {
        let young = 0;
        for (let a = start; a < end; a += PAGE_SIZE)
          each(s, (mn) => { young |= mn.ops.clear_flush_young?.(mn, mm, a) ?? 0; });
        return young;
      },
    },
  };
}

/**
 * mmu_notifier_invalidate_page() - one PTE of @mm at @address was cleared
 * and the CPU TLB flushed; the page is still referenced by the caller.
 * Called by flush_tlb_page() (mm/pgtable.ts).
 * Context: usually the page-table lock held; never sleeps.
 */
export function mmu_notifier_invalidate_page(mm: mm_struct, address: number): void {
  if (nr_state === 0) return;
  const s = state.get(mm);
  if (s === undefined || s.list.length === 0) return;
  trace_2008('mmu_notifier_2008_invalidate_page', mm, address, address + PAGE_SIZE);
  each(s, (mn) => mn.ops.invalidate_page?.(mn, mm, address));
}

/**
 * mmu_notifier_register_2008() - subscribe @mn to @mm's invalidations,
 * 2.6.27 style (mmu_notifier_register took every VM lock of the mm,
 * mm_take_all_locks, to order the subscription against running ones;
 * here mmap_lock for write does it).
 * Context: may sleep. Return: 0.
 */
export function* mmu_notifier_register_2008(mn: mmu_notifier_2008, mm: mm_struct): Sleepable<number> {
  yield* mmap_write_lock(mm);
  let s = state.get(mm);
  if (s === undefined) {
    const fresh: mmu_notifier_mm_2008 = { list: [], hub: null as unknown as mmu_notifier };
    fresh.hub = make_hub(fresh);
    __mmu_notifier_register(fresh.hub, mm);
    state.set(mm, fresh);
    nr_state++;
    s = fresh;
  }
  mn.mm = mm;
  released.delete(mn);
  s.list.push(mn);
  mmap_write_unlock(mm);
  return 0;
}

/**
 * mmu_notifier_unregister_2008() - unsubscribe; calls ->release unless the
 * mm's teardown already did (2.6.27 semantics: after it returns no
 * callback runs for @mn).
 * Context: may sleep.
 */
export function* mmu_notifier_unregister_2008(mn: mmu_notifier_2008, mm: mm_struct): Sleepable {
  const s = state.get(mm);
  if (s === undefined) return;
  const i = s.list.indexOf(mn);
  if (i < 0) return;
  if (!released.has(mn)) { released.add(mn); mn.ops.release?.(mn, mm); }
  yield* mmap_write_lock(mm);
  s.list.splice(i, 1);
  mmap_write_unlock(mm);
}
