/*
 * mm/hmm_v8/mmu_notifier.ts - HMM v8 patches 01-04: the 2015 extensions of
 * the mmu_notifier API, as a layer over the mainline mm/mmu_notifier.ts.
 *
 *   [PATCH 01/36] mmu_notifier: add event information to address invalidation v7
 *   [PATCH 02/36] mmu_notifier: keep track of active invalidation ranges v3
 *   [PATCH 03/36] mmu_notifier: pass page pointer to mmu_notifier_invalidate_page()
 *   [PATCH 04/36] mmu_notifier: allow range invalidation to exclude a specific mmu_notifier
 *
 * Patch 01 gives every invalidation a reason (enum mmu_event, in
 * include/linux/hmm_v8.ts) so that a secondary MMU can do less than "drop
 * everything": keep the mapping but drop write for a fork, keep reads
 * during writeback. Patch 02 links every range on a per-mm list while it
 * runs, so a device fault can ask "is [start, end) being invalidated right
 * now?" (mmu_notifier_range_is_valid) and sleep until it is not
 * (mmu_notifier_range_wait_valid). Patch 03 hands invalidate_page() the
 * struct page, which HMM needs once its mirror stores DMA addresses.
 * Patch 04 lets HMM's own migration invalidate every listener but itself.
 *
 * How this sits on the mainline core: the core calls (every path of mm/)
 * send mainline events; two hooks in mm/mmu_notifier.ts (the only edit to
 * that file) let this layer link and unlink each range around all of its
 * callbacks and tag it with the 2015 event from the table below, unless
 * the caller set range.v8_event itself. The 2015 listeners of an mm are
 * served by a mainline whole-mm subscription, the "hub", which calls
 * their v8 ops. The hub also counts callbacks in flight, standing for the
 * notifier SRCU that the v9 lifetime fix synchronizes with.
 *
 * Non-blockable ranges (the OOM reaper, mainline since 4.19): every 2015
 * callback may sleep (hmm.rwsem, waiting out device faults), and the 2015
 * API has no way to say "do not sleep", so the hub refuses such a range
 * with -EAGAIN and the reaper skips the VMA; the victim's memory comes
 * back when it exits. Mainline requires a start that can fail to have no
 * end (every end is called after any start failed), so the ends of the
 * 2015 listeners are sent by a second, end-only subscription ("hub_end"),
 * which forwards only the ranges the hub accepted.
 *
 * Mainline event -> 2015 event (patch 01's callers, seen from mainline):
 *
 *   MMU_NOTIFY_UNMAP            -> MMU_MUNMAP    munmap, mremap, exit
 *   MMU_NOTIFY_CLEAR            -> MMU_MIGRATE   COW, reclaim, madvise, THP split, page replacement
 *   MMU_NOTIFY_PROTECTION_VMA   -> MMU_MPROT     mprotect (new rights are in the VMA)
 *   MMU_NOTIFY_PROTECTION_PAGE  -> MMU_FORK      copy_page_range (page_mkclean would be MMU_WRITE_BACK:
 *                                                such a caller sets range.v8_event)
 *   MMU_NOTIFY_SOFT_DIRTY       -> MMU_ISDIRTY   clear_refs
 *   MMU_NOTIFY_RELEASE          -> MMU_MUNMAP    teardown (interval notifiers)
 *   MMU_NOTIFY_MIGRATE          -> MMU_MIGRATE   migrate_vma (mainline device migration)
 *   MMU_NOTIFY_EXCLUSIVE        -> MMU_MIGRATE   make_device_exclusive
 *   (no mainline event)            MMU_HSPLIT, MMU_MUNLOCK, MMU_WRITE_PROTECT: only set by a caller
 *
 * MMU_MIGRATE is the 2015 "safe default" for a reason nobody named.
 * What is simplified: SRCU is a counter and a wait queue; the list lock is
 * a simulated spinlock.
 */
import type { mm_struct, page } from '../../include/linux/mm_types.js';
import {
  MMU_NOTIFY_UNMAP, MMU_NOTIFY_CLEAR, MMU_NOTIFY_PROTECTION_VMA, MMU_NOTIFY_PROTECTION_PAGE, MMU_NOTIFY_SOFT_DIRTY,
  MMU_NOTIFY_RELEASE, MMU_NOTIFY_MIGRATE, MMU_NOTIFY_EXCLUSIVE, type mmu_notifier, type mmu_notifier_range,
} from '../../include/linux/mmu_notifier.js';
import {
  MMU_MUNMAP, MMU_MIGRATE, MMU_MPROT, MMU_FORK, MMU_ISDIRTY, mmu_event_names, type mmu_event, type mmu_notifier_v8,
} from '../../include/linux/hmm_v8.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { spinlock_t, spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { wait_queue_head, wait_event, wake_up_all } from '../../lib/locking/wait.js';
import { count_event, trace_event } from '../../lib/sim/trace.js';
import { __mmu_notifier_register, mmu_notifier_invalidate_range_start,
  mmu_notifier_invalidate_range_end, mmu_notifier_range_blockable } from '../mmu_notifier.js';
import { EAGAIN } from '../../include/uapi/asm-generic/errno.js';
import { mmap_write_lock, mmap_write_unlock } from '../mmap_lock.js';
import { hmm_v8_hooks } from './hooks.js';

/** The table above, indexed by enum mmu_notifier_event. */
export const mmu_event_from_mainline: readonly mmu_event[] = Object.freeze([
  /* UNMAP */ MMU_MUNMAP, /* CLEAR */ MMU_MIGRATE, /* PROTECTION_VMA */ MMU_MPROT,
  /* PROTECTION_PAGE */ MMU_FORK, /* SOFT_DIRTY */ MMU_ISDIRTY, /* RELEASE */ MMU_MUNMAP,
  /* MIGRATE */ MMU_MIGRATE, /* EXCLUSIVE */ MMU_MIGRATE,
]);
/* the same, checked by name at load time against the mainline constants */
const TABLE_CHECK: [number, mmu_event][] = [
  [MMU_NOTIFY_UNMAP, MMU_MUNMAP], [MMU_NOTIFY_CLEAR, MMU_MIGRATE], [MMU_NOTIFY_PROTECTION_VMA, MMU_MPROT],
  [MMU_NOTIFY_PROTECTION_PAGE, MMU_FORK], [MMU_NOTIFY_SOFT_DIRTY, MMU_ISDIRTY], [MMU_NOTIFY_RELEASE, MMU_MUNMAP],
  [MMU_NOTIFY_MIGRATE, MMU_MIGRATE], [MMU_NOTIFY_EXCLUSIVE, MMU_MIGRATE],
];
for (const [m, v] of TABLE_CHECK) if (mmu_event_from_mainline[m] !== v) throw new Error('mmu_event table out of order');

/**
 * struct mmu_notifier_mm (2015 part) - per-mm state of this layer.
 * @lock: protects @ranges and @nranges
 * @ranges: invalidations in flight (patch 02), linked before their first
 *   start callback and unlinked after their last end callback
 * @nranges: the list length; waiters sleep until it changes
 * @wait_queue: woken when a range is unlinked
 * @list: the 2015 listeners; changed with mmap_lock held for write
 * @hub: the mainline subscription that calls their start and release
 * @hub_end: the end-only mainline subscription that calls their end
 * @srcu_readers, @srcu_wq: callbacks in flight (the SRCU read side)
 */
export class mmu_notifier_mm_v8 {
  readonly lock = new spinlock_t('mmu_notifier_mm.lock');
  ranges: mmu_notifier_range[] = [];
  nranges = 0;
  readonly wait_queue = new wait_queue_head('mmu_notifier_mm.wait_queue');
  list: mmu_notifier_v8[] = [];
  hub: mmu_notifier | null = null;
  hub_end: mmu_notifier | null = null;
  srcu_readers = 0;
  readonly srcu_wq = new wait_queue_head('mmu_notifier_mm.srcu');
  released = false;
}

const state = new WeakMap<mm_struct, mmu_notifier_mm_v8>();
/* the listener a *_excluding() invalidation skips, per range */
const excluded = new WeakMap<mmu_notifier_range, mmu_notifier_v8>();
/* the non-blockable ranges the hub refused: no 2015 listener saw their start, none may see their end */
const refused = new WeakSet<mmu_notifier_range>();

/** mmuNotifierMmV8Of() - the 2015 per-mm state, or null (tests, dumps). */
export function mmuNotifierMmV8Of(mm: mm_struct): mmu_notifier_mm_v8 | null {
  return state.get(mm) ?? null;
}

/* patch 01 + 02, called by mm/mmu_notifier.ts before any start callback */
function v8_range_start(range: mmu_notifier_range): void {
  if (range.v8_event === undefined) range.v8_event = mmu_event_from_mainline[range.event] ?? MMU_MIGRATE;
  const s = state.get(range.mm);
  if (s === undefined) return;
  spin_lock(s.lock);
  s.ranges.push(range);
  s.nranges++;
  spin_unlock(s.lock);
}

/* patch 02, called by mm/mmu_notifier.ts after the last end callback */
function v8_range_end(range: mmu_notifier_range): void {
  const s = state.get(range.mm);
  if (s === undefined) return;
  spin_lock(s.lock);
  const i = s.ranges.indexOf(range);
  if (i >= 0) { s.ranges.splice(i, 1); s.nranges--; }
  spin_unlock(s.lock);
  if (i >= 0) wake_up_all(s.wait_queue);
}

/** mmuNotifierV8Init() - fill places 1 and 2 of hmm_v8_hooks (mm/hmm_v8/hooks.ts). */
export function mmuNotifierV8Init(): void {
  hmm_v8_hooks.range_start = v8_range_start;
  hmm_v8_hooks.range_end = v8_range_end;
}

function overlaps(r: mmu_notifier_range, start: number, end: number): boolean {
  return r.start < end && start < r.end;
}

/**
 * mmu_notifier_range_is_valid() - no invalidation of [start, end) of @mm
 * is in flight right now (patch 02).
 * Context: takes the list spinlock; does not sleep. A caller that wants the
 * answer to stay true must also block new invalidations from its own start
 * callback (HMM does it with its device-fault list): a range can be linked
 * right after this returns.
 */
export function mmu_notifier_range_is_valid(mm: mm_struct, start: number, end: number): boolean {
  const s = state.get(mm);
  if (s === undefined) return true;
  spin_lock(s.lock);
  let valid = true;
  for (const r of s.ranges) if (overlaps(r, start, end)) { valid = false; break; }
  spin_unlock(s.lock);
  return valid;
}

/**
 * mmu_notifier_range_wait_valid() - sleep until no invalidation of
 * [start, end) is in flight (patch 02): snapshot nranges, test, sleep until
 * nranges changes, test again.
 * Context: may sleep; no spinlock held.
 */
export function* mmu_notifier_range_wait_valid(mm: mm_struct, start: number, end: number): Sleepable {
  const s = state.get(mm);
  if (s === undefined) return;
  for (;;) {
    const snap = s.nranges;
    if (mmu_notifier_range_is_valid(mm, start, end)) return;
    count_event('mmu_notifier_range_wait_valid_sleep');
    yield* wait_event(s.wait_queue, () => s.nranges !== snap);
  }
}

/* ---- the hub: one mainline subscription serving the 2015 listeners ---- */

function* hub_each(s: mmu_notifier_mm_v8, skip: mmu_notifier_v8 | undefined,
                   fn: (mn: mmu_notifier_v8) => Sleepable): Sleepable {
  s.srcu_readers++;
  try {
    for (const mn of s.list.slice()) if (mn !== skip) yield* fn(mn);
  } finally {
    if (--s.srcu_readers === 0) wake_up_all(s.srcu_wq);
  }
}

function make_hub(s: mmu_notifier_mm_v8): mmu_notifier {
  return {
    mm: null,
    ops: {
      *invalidate_range_start(_sub, range) {
        if (!mmu_notifier_range_blockable(range)) {
          refused.add(range);
          count_event('mmu_notifier_v8_nonblock_refused');
          trace_event('mmu_notifier_v8_nonblock_refused', { mm: range.mm.id, start: range.start, end: range.end });
          return -EAGAIN;
        }
        trace_event('mmu_notifier_v8_range_start', { mm: range.mm.id, start: range.start, end: range.end,
          event: mmu_event_names[range.v8_event ?? MMU_MIGRATE] });
        yield* hub_each(s, excluded.get(range), function* (mn) {
          if (mn.ops.invalidate_range_start) yield* mn.ops.invalidate_range_start(mn, range.mm, range);
        });
        return 0;
      },
      *release(_sub, mm) {
        s.released = true;
        yield* hub_each(s, undefined, function* (mn) { if (mn.ops.release) yield* mn.ops.release(mn, mm); });
      },
    },
  };
}

function make_hub_end(s: mmu_notifier_mm_v8): mmu_notifier {
  return {
    mm: null,
    ops: {
      *invalidate_range_end(_sub, range) {
        if (refused.has(range)) return;
        yield* hub_each(s, excluded.get(range), function* (mn) {
          if (mn.ops.invalidate_range_end) yield* mn.ops.invalidate_range_end(mn, range.mm, range);
        });
      },
    },
  };
}

/**
 * __mmu_notifier_register_v8() - add a 2015 listener to @mm.
 * Context: mmap_lock held for write (as mmu_notifier_register takes it).
 * Return: 0.
 */
export function __mmu_notifier_register_v8(mn: mmu_notifier_v8, mm: mm_struct): number {
  let s = state.get(mm);
  if (s === undefined) { s = new mmu_notifier_mm_v8(); state.set(mm, s); }
  if (s.hub === null) {
    s.hub = make_hub(s);
    s.hub_end = make_hub_end(s);
    __mmu_notifier_register(s.hub, mm);
    __mmu_notifier_register(s.hub_end, mm);
  }
  mn.mm = mm;
  s.list.push(mn);
  return 0;
}

/** mmu_notifier_register_v8() - take mmap_lock for write and register. Context: may sleep. */
export function* mmu_notifier_register_v8(mn: mmu_notifier_v8, mm: mm_struct): Sleepable<number> {
  yield* mmap_write_lock(mm);
  const ret = __mmu_notifier_register_v8(mn, mm);
  mmap_write_unlock(mm);
  return ret;
}

/**
 * mmu_notifier_unregister_no_release_v8() - remove a listener without
 * calling its release(); the caller synchronizes with callbacks in flight
 * (mmu_notifier_synchronize_v8) before freeing it.
 */
export function mmu_notifier_unregister_no_release_v8(mn: mmu_notifier_v8, mm: mm_struct): void {
  const s = state.get(mm);
  if (s === undefined) return;
  const i = s.list.indexOf(mn);
  if (i >= 0) s.list.splice(i, 1);
}

/**
 * mmu_notifier_synchronize_v8() - wait until no callback of @mm's 2015
 * listeners is running (synchronize_srcu(&srcu) in the v9 fix).
 * Context: may sleep; must not be called from a notifier callback.
 */
export function* mmu_notifier_synchronize_v8(mm: mm_struct): Sleepable {
  const s = state.get(mm);
  if (s === undefined || s.srcu_readers === 0) return;
  count_event('mmu_notifier_synchronize_wait');
  yield* wait_event(s.srcu_wq, () => s.srcu_readers === 0);
}

/**
 * mmu_notifier_invalidate_page() - one page of @mm changes (patch 03):
 * @page is the page being unmapped, so a listener that stores DMA
 * addresses can still find it (to set_page_dirty()).
 * Context: may sleep.
 */
export function* mmu_notifier_invalidate_page(mm: mm_struct, addr: number, p: page | null, event: mmu_event): Sleepable {
  const s = state.get(mm);
  count_event('mmu_notifier_invalidate_page');
  if (s === undefined) return;
  trace_event('mmu_notifier_invalidate_page', { mm: mm.id, addr, pfn: p === null ? -1 : p.pfn, event: mmu_event_names[event] });
  yield* hub_each(s, undefined, function* (mn) {
    if (mn.ops.invalidate_page) yield* mn.ops.invalidate_page(mn, mm, addr, p, event);
  });
}

/**
 * mmu_notifier_invalidate_range_start_excluding() - start @range for every
 * listener (mainline and 2015) except @exclude (patch 04).
 * Context: may sleep. Return: 0.
 */
export function* mmu_notifier_invalidate_range_start_excluding(range: mmu_notifier_range,
                                                               exclude: mmu_notifier_v8): Sleepable<number> {
  excluded.set(range, exclude);
  return yield* mmu_notifier_invalidate_range_start(range);
}

/** mmu_notifier_invalidate_range_end_excluding() - end a range started with the call above. */
export function* mmu_notifier_invalidate_range_end_excluding(range: mmu_notifier_range,
                                                             exclude: mmu_notifier_v8): Sleepable {
  excluded.set(range, exclude);
  yield* mmu_notifier_invalidate_range_end(range);
  excluded.delete(range);
}

/**
 * mmu_notifier_invalidate_range_excluding() - ask every 2015 listener but
 * @exclude to flush its TLB for [start, end) (the ->invalidate_range
 * callback, called between start and end). Context: atomic-safe.
 */
export function mmu_notifier_invalidate_range_excluding(mm: mm_struct, start: number, end: number,
                                                        exclude: mmu_notifier_v8 | null): void {
  const s = state.get(mm);
  if (s === undefined) return;
  for (const mn of s.list) if (mn !== exclude && mn.ops.invalidate_range) mn.ops.invalidate_range(mn, mm, start, end);
}
