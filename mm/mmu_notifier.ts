/*
 * mm/mmu_notifier.ts - invalidation callbacks for secondary MMUs.
 *
 * Models mm/mmu_notifier.c (mainline): the per-mm subscription state,
 * whole-mm notifiers (hlist) and interval notifiers (itree) with the
 * invalidate_seq protocol described in include/linux/mmu_notifier.ts.
 *
 * Simplified: SRCU becomes plain iteration over a snapshot of the list
 * (the cooperative scheduler cannot free a subscriber under the walker);
 * the interval tree is lib/interval_tree.ts.
 */
import type { mm_struct } from '../include/linux/mm_types.js';
import {
  MMU_NOTIFIER_RANGE_BLOCKABLE, MMU_NOTIFY_RELEASE, mmu_notifier_event_names,
  type mmu_notifier, type mmu_notifier_range, type mmu_interval_notifier,
  type mmu_interval_notifier_ops, type mmu_notifier_event,
} from '../include/linux/mmu_notifier.js';
import { EAGAIN, EINVAL } from '../include/uapi/asm-generic/errno.js';
import { interval_tree } from '../lib/interval_tree.js';
import { spinlock_t, spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { wait_queue_head, wait_event, wake_up_all } from '../lib/locking/wait.js';
import { preempt_point, preempt_disable, preempt_enable, type Sleepable } from '../lib/sim/sched.js';
import { trace_event, count_event } from '../lib/sim/trace.js';
import { mmap_write_lock, mmap_write_unlock, mmap_assert_write_locked } from './mmap_lock.js';
import { BUG, WARN_ON } from '../include/asm-generic/bug.js';
import { hmm_v8_hooks } from './hmm_v8/hooks.js';   /* HMM v8 places 1 and 2 */
import { fail_hmm_retry, should_fail } from '../lib/fault-inject.js';
import { lock_map_acquire, lock_map_release, lockdep_enabled } from '../lib/locking/lockdep.js';
import { fs_reclaim_map } from './page_alloc.js';

/** struct mmu_notifier_subscriptions - per-mm notifier state. */
export class mmu_notifier_subscriptions {
  /* whole-mm subscriptions; changed under mmap_lock held for write */
  list: mmu_notifier[] = [];
  has_itree = false;
  /* protects invalidate_seq, active_invalidate_ranges, itree, deferred_list */
  lock = new spinlock_t('mmu_notifier_subscriptions.lock');
  /* even: no interval invalidation running; odd: one is */
  invalidate_seq = 2;
  /* invalidations in flight, interval-relevant or not */
  active_invalidate_ranges = 0;
  itree = new interval_tree<mmu_interval_notifier>();
  /* inserts (true) and removals (false) postponed until the seq goes even */
  deferred_list: { sub: mmu_interval_notifier; insert: boolean }[] = [];
  wq = new wait_queue_head('mmu_notifier_subscriptions.wq');
}

function subs_of(mm: mm_struct): mmu_notifier_subscriptions | null {
  return mm.notifier_subscriptions as mmu_notifier_subscriptions | null;
}

function get_subs(mm: mm_struct): mmu_notifier_subscriptions {
  let s = subs_of(mm);
  if (s === null) { s = new mmu_notifier_subscriptions(); mm.notifier_subscriptions = s; }
  return s;
}

/**
 * mmu_notifier_range_init() - describe an invalidation.
 * @event: MMU_NOTIFY_*; @flags: MMU_NOTIFIER_RANGE_BLOCKABLE or 0.
 */
export function mmu_notifier_range_init(event: mmu_notifier_event, flags: number, mm: mm_struct,
                                        start: number, end: number): mmu_notifier_range {
  return { mm, start, end, flags, event, owner: null };
}

/** mmu_notifier_range_init_owner() - as above, naming the requester (MIGRATE, EXCLUSIVE). */
export function mmu_notifier_range_init_owner(event: mmu_notifier_event, flags: number, mm: mm_struct,
                                              start: number, end: number, owner: unknown): mmu_notifier_range {
  return { mm, start, end, flags, event, owner };
}

/** mmu_notifier_range_blockable() - may the callbacks sleep? */
export function mmu_notifier_range_blockable(range: mmu_notifier_range): boolean {
  return (range.flags & MMU_NOTIFIER_RANGE_BLOCKABLE) !== 0;
}

/** mm_has_notifiers() - any subscription on this mm? */
export function mm_has_notifiers(mm: mm_struct): boolean {
  return mm.notifier_subscriptions !== null;
}

function mn_itree_is_invalidating(s: mmu_notifier_subscriptions): boolean {
  return (s.invalidate_seq & 1) !== 0;
}

/* Start of an invalidation: count it, make the seq odd if a subscription overlaps. */
function mn_itree_inv_start_range(s: mmu_notifier_subscriptions, range: mmu_notifier_range):
    { subs: mmu_interval_notifier[]; seq: number } {
  spin_lock(s.lock);
  s.active_invalidate_ranges++;
  const subs = s.itree.overlapping(range.start, range.end - 1);
  if (subs.length > 0) s.invalidate_seq |= 1;
  const seq = s.invalidate_seq;
  spin_unlock(s.lock);
  return { subs, seq };
}

/* End of an invalidation: the last one makes the seq even, applies deferred changes, wakes readers. */
function mn_itree_inv_end(s: mmu_notifier_subscriptions): void {
  spin_lock(s.lock);
  if (--s.active_invalidate_ranges > 0 || !mn_itree_is_invalidating(s)) {
    spin_unlock(s.lock);
    return;
  }
  s.invalidate_seq++;
  for (const d of s.deferred_list) {
    if (d.insert) s.itree.insert(d.sub); else s.itree.remove(d.sub);
  }
  s.deferred_list = [];
  spin_unlock(s.lock);
  wake_up_all(s.wq);
}

function* mn_itree_invalidate(s: mmu_notifier_subscriptions, range: mmu_notifier_range): Sleepable<number> {
  const { subs, seq } = mn_itree_inv_start_range(s, range);
  for (const sub of subs) {
    const ok = yield* sub.ops.invalidate(sub, range, seq);
    if (!ok) {
      if (mmu_notifier_range_blockable(range)) BUG('blockable invalidate() returned false');
      mn_itree_inv_end(s);
      return -EAGAIN;
    }
  }
  return 0;
}


function trace_range(name: string, range: mmu_notifier_range): void {
  trace_event(name, {
    mm: range.mm.id, start: range.start, end: range.end,
    event: mmu_notifier_event_names[range.event] ?? String(range.event),
    blockable: mmu_notifier_range_blockable(range),
  });
}

/**
 * mmu_notifier_invalidate_range_start() - tell every subscriber that
 * [range.start, range.end) is about to change. Interval subscribers first,
 * then whole-mm subscribers, as Linux does.
 * Context: may sleep (blockable ranges). Return: 0 (blockable ranges
 * cannot fail).
 */
export function* mmu_notifier_invalidate_range_start(range: mmu_notifier_range): Sleepable<number> {
  if (mmu_notifier_invalidate_range_start_nosubs(range)) return 0;
  count_event('mmu_notifier_invalidate');
  trace_range('mmu_notifier_invalidate_range_start', range);
  if (!mmu_notifier_range_blockable(range) || !lockdep_enabled()) return yield* __mmu_notifier_invalidate_range_start(range);
  lock_map_acquire(fs_reclaim_map);      /* reclaim may be why we are here: the locks taken below nest in it */
  try {
    return yield* __mmu_notifier_invalidate_range_start(range);
  } finally {
    lock_map_release(fs_reclaim_map);
  }
}

/* the subscribers' starts of mmu_notifier_invalidate_range_start() */
function* __mmu_notifier_invalidate_range_start(range: mmu_notifier_range): Sleepable<number> {
  const s = subs_of(range.mm)!;
  hmm_v8_hooks.range_start?.(range);
  if (s.has_itree) {
    const ret = yield* mn_itree_invalidate(s, range);
    if (ret) { hmm_v8_hooks.range_end?.(range); return ret; }
  }
  const ret = yield* mn_hlist_invalidate_range_start(s, range);
  if (ret) {
    if (s.has_itree) mn_itree_inv_end(s);   /* Linux leaves the interval tree's count raised here; we close it */
    hmm_v8_hooks.range_end?.(range);
  }
  return ret;
}

/**
 * mmu_notifier_invalidate_range_start_nosubs() - the start of an
 * invalidation of an mm that has no subscriber (what Linux's inline
 * wrapper tests before calling in): counted and traced, nothing to call.
 * Return: true if done; false, having done nothing, when the mm has
 * subscribers (use mmu_notifier_invalidate_range_start()).
 * Context: any; never sleeps.
 */
export function mmu_notifier_invalidate_range_start_nosubs(range: mmu_notifier_range): boolean {
  if (subs_of(range.mm) !== null) return false;
  count_event('mmu_notifier_invalidate');
  trace_range('mmu_notifier_invalidate_range_start', range);
  return true;
}

/**
 * mmu_notifier_invalidate_range_end_nosubs() - the end of an invalidation
 * of an mm that has no subscriber: traced only.
 * Return: true if done; false, having done nothing, when the mm has
 * subscribers (use mmu_notifier_invalidate_range_end()).
 * Context: any; never sleeps.
 */
export function mmu_notifier_invalidate_range_end_nosubs(range: mmu_notifier_range): boolean {
  if (subs_of(range.mm) !== null) return false;
  trace_range('mmu_notifier_invalidate_range_end', range);
  return true;
}

/*
 * mn_hlist_invalidate_range_start() - call every whole-mm subscriber's
 * start, even after one failed (a start cannot know whether another
 * one's failed, so none may be skipped); if any failed (only a
 * non-blockable range may: -EAGAIN), call every subscriber's end, so the
 * ones that started are closed. A subscriber whose start can fail must
 * not have an end (Linux WARNs). Return: 0 or the last failure.
 */
function* mn_hlist_invalidate_range_start(s: mmu_notifier_subscriptions, range: mmu_notifier_range):
    Sleepable<number> {
  let ret = 0;
  for (const sub of s.list.slice()) {
    if (sub.ops.invalidate_range_start === undefined) continue;
    const r = yield* sub.ops.invalidate_range_start(sub, range);
    if (r === 0) continue;
    if (mmu_notifier_range_blockable(range)) BUG('blockable invalidate_range_start failed');
    WARN_ON(sub.ops.invalidate_range_end !== undefined, 'a start that can fail must not have an end');
    ret = r;
  }
  if (ret) {
    for (const sub of s.list.slice()) {
      if (sub.ops.invalidate_range_end) yield* sub.ops.invalidate_range_end(sub, range);
    }
  }
  return ret;
}

/**
 * mmu_notifier_invalidate_range_start_nonblock() - the OOM reaper's
 * variant: callbacks must not sleep and may return -EAGAIN.
 */
export function* mmu_notifier_invalidate_range_start_nonblock(range: mmu_notifier_range): Sleepable<number> {
  range.flags &= ~MMU_NOTIFIER_RANGE_BLOCKABLE;
  return yield* mmu_notifier_invalidate_range_start(range);
}

/**
 * mmu_notifier_invalidate_range_end() - the CPU page-table change of
 * range is done. Context: may sleep.
 */
export function* mmu_notifier_invalidate_range_end(range: mmu_notifier_range): Sleepable {
  if (mmu_notifier_invalidate_range_end_nosubs(range)) return;
  const s = subs_of(range.mm)!;
  if (s.has_itree) mn_itree_inv_end(s);
  for (const sub of s.list.slice()) {
    if (sub.ops.invalidate_range_end) yield* sub.ops.invalidate_range_end(sub, range);
  }
  hmm_v8_hooks.range_end?.(range);
  trace_range('mmu_notifier_invalidate_range_end', range);
}

/**
 * mmu_notifier_clear_young() - ask whole-mm subscribers whether a
 * secondary MMU accessed [start, end), clearing their accessed state
 * (reclaim's aging, mm/rmap_reclaim.ts).
 * Context: page-table lock held; never sleeps. Return: nonzero if young.
 */
export function mmu_notifier_clear_young(mm: mm_struct, start: number, end: number): number {
  const s = subs_of(mm);
  if (s === null) return 0;
  let young = 0;
  for (const sub of s.list) if (sub.ops.clear_young !== undefined) young |= sub.ops.clear_young(sub, mm, start, end);
  return young;
}

/**
 * mmu_notifier_arch_invalidate_secondary_tlbs() - the CPU TLB of
 * [start, end) of @mm was flushed: tell every whole-mm subscriber that
 * shares the CPU page table (IOMMU SVA) to flush its device TLB too.
 * Linux calls it from the architecture's flush (x86 flush_tlb_mm_range,
 * arm64 __flush_tlb_range), under SRCU; here from flush_tlb_range().
 * Context: atomic; often with a page-table lock held. Preemption is
 * disabled around the callbacks so that one that sleeps is caught as
 * "sleeping function called from invalid context" (the contract Linux
 * states in mmu_notifier.h and lockdep checks for the locks it takes).
 */
export function mmu_notifier_arch_invalidate_secondary_tlbs(mm: mm_struct, start: number, end: number): void {
  const s = subs_of(mm);
  /* no whole-mm subscriber (interval notifiers have no such op): nothing to walk, as Linux's empty hlist */
  if (s === null || s.list.length === 0) return;
  preempt_disable();
  try {
    for (const sub of s.list) {
      if (sub.ops.arch_invalidate_secondary_tlbs === undefined) continue;
      count_event('mmu_notifier_arch_invalidate_secondary_tlbs');
      sub.ops.arch_invalidate_secondary_tlbs(sub, mm, start, end);
    }
  } finally {
    preempt_enable();
  }
}

/**
 * __mmu_notifier_register() - subscribe to every invalidation of mm.
 * Context: mmap_lock held for write.
 */
export function __mmu_notifier_register(sub: mmu_notifier, mm: mm_struct): number {
  mmap_assert_write_locked(mm);
  const s = get_subs(mm);
  sub.mm = mm;
  sub.released = false;
  mm.mm_count++;
  s.list.push(sub);
  return 0;
}

/**
 * mmu_notifier_register() - take mmap_lock for write and subscribe.
 * Context: may sleep. Return: 0.
 */
export function* mmu_notifier_register(sub: mmu_notifier, mm: mm_struct): Sleepable<number> {
  yield* mmap_write_lock(mm);
  const ret = __mmu_notifier_register(sub, mm);
  mmap_write_unlock(mm);
  return ret;
}

/**
 * mmu_notifier_unregister() - unsubscribe; calls ->release if the mm's
 * teardown has not already done so. Context: may sleep.
 */
export function* mmu_notifier_unregister(sub: mmu_notifier, mm: mm_struct): Sleepable {
  const s = subs_of(mm);
  if (s === null) return;
  const i = s.list.indexOf(sub);
  if (i >= 0) {
    if (!sub.released && sub.ops.release) yield* sub.ops.release(sub, mm);
    s.list.splice(i, 1);
  }
  sub.released = true;
  mm.mm_count--;
}

/**
 * mmu_notifier_release() - the mm is being torn down (exit_mmap): send
 * MMU_NOTIFY_RELEASE over the whole address space to interval subscribers
 * and call ->release of whole-mm subscribers, which are then unlinked.
 * Context: may sleep.
 */
export function* mmu_notifier_release(mm: mm_struct): Sleepable {
  const s = subs_of(mm);
  if (s === null) return;
  if (s.has_itree) {
    const range = mmu_notifier_range_init(MMU_NOTIFY_RELEASE, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, 0, 2 ** 53);
    trace_range('mmu_notifier_release', range);
    yield* mn_itree_invalidate(s, range);
    mn_itree_inv_end(s);
  }
  const list = s.list;
  s.list = [];
  for (const sub of list) {
    if (!sub.released && sub.ops.release) yield* sub.ops.release(sub, mm);
    sub.released = true;
  }
}

/**
 * mmu_interval_notifier_insert() - subscribe to invalidations of
 * [start, start + length - 1] of mm.
 * Return: 0, or -EINVAL for an empty or wrapping range.
 * Context: may sleep (takes mmap_lock for write, like Linux's
 * mmu_interval_notifier_insert, which registers the subscriptions first).
 */
export function* mmu_interval_notifier_insert(sub: mmu_interval_notifier, mm: mm_struct, start: number,
                                              length: number, ops: mmu_interval_notifier_ops): Sleepable<number> {
  yield* mmap_write_lock(mm);
  const ret = mmu_interval_notifier_insert_locked(sub, mm, start, length, ops);
  mmap_write_unlock(mm);
  return ret;
}

/** mmu_interval_notifier_insert_locked() - as above with mmap_lock held for write. */
export function mmu_interval_notifier_insert_locked(sub: mmu_interval_notifier, mm: mm_struct, start: number,
                                                    length: number, ops: mmu_interval_notifier_ops): number {
  if (length <= 0 || start + length - 1 < start) return -EINVAL;
  const s = get_subs(mm);
  s.has_itree = true;
  sub.ops = ops;
  sub.mm = mm;
  sub.start = start;
  sub.last = start + length - 1;
  mm.mm_count++;
  spin_lock(s.lock);
  if (s.active_invalidate_ranges > 0) {
    /* an invalidation is running: make the new subscription look hit by it */
    if (mn_itree_is_invalidating(s)) s.deferred_list.push({ sub, insert: true });
    else { s.invalidate_seq |= 1; s.itree.insert(sub); }
    sub.invalidate_seq = s.invalidate_seq;
  } else {
    sub.invalidate_seq = s.invalidate_seq - 1;
    s.itree.insert(sub);
  }
  spin_unlock(s.lock);
  return 0;
}

/**
 * mmu_interval_notifier_remove() - unsubscribe. If an invalidation is in
 * flight the removal is deferred and this waits for it to finish, so when
 * it returns ops->invalidate() will not be called again.
 * Context: may sleep; must not hold locks the invalidate callback takes.
 */
export function* mmu_interval_notifier_remove(sub: mmu_interval_notifier): Sleepable {
  const mm = sub.mm;
  const s = subs_of(mm);
  if (s === null) return;
  let seq = 0;
  spin_lock(s.lock);
  if (mn_itree_is_invalidating(s)) {
    const pending = s.deferred_list.findIndex((d) => d.sub === sub && d.insert);
    if (pending >= 0) s.deferred_list.splice(pending, 1);
    else s.deferred_list.push({ sub, insert: false });
    seq = s.invalidate_seq;
  } else {
    s.itree.remove(sub);
  }
  spin_unlock(s.lock);
  if (seq !== 0) yield* wait_event(s.wq, () => s.invalidate_seq !== seq);
  mm.mm_count--;
}

/**
 * mmu_interval_read_begin() - start a read side critical section: returns
 * the sequence to check later with mmu_interval_read_retry(). If an
 * invalidation of this subscription is in flight, sleeps until it ends.
 * Context: may sleep; must not hold the driver lock the invalidation takes.
 */
export function* mmu_interval_read_begin(sub: mmu_interval_notifier): Sleepable<number> {
  const s = subs_of(sub.mm)!;
  spin_lock(s.lock);
  const seq = sub.invalidate_seq;
  const is_invalidating = seq === s.invalidate_seq;
  spin_unlock(s.lock);
  if (is_invalidating) {
    count_event('mmu_interval_read_begin_wait');
    yield* wait_event(s.wq, () => s.invalidate_seq !== seq);
  }
  trace_event('mmu_interval_read_begin', { start: sub.start, seq, waited: is_invalidating });
  return seq;
}

/**
 * mmu_interval_read_retry() - true if an invalidation hit the subscription
 * since mmu_interval_read_begin() returned seq. Call with the driver lock
 * held, before publishing anything derived from the read. The
 * fail_hmm_retry site (lib/fault-inject.ts) makes it report a retry
 * that no invalidation caused.
 */
export function mmu_interval_read_retry(sub: mmu_interval_notifier, seq: number): boolean {
  const retry = sub.invalidate_seq !== seq || should_fail(fail_hmm_retry, 1);
  if (retry) {
    count_event('mmu_interval_read_retry');
    trace_event('mmu_interval_read_retry', { start: sub.start, seq, now: sub.invalidate_seq });
  }
  return retry;
}

/**
 * mmu_interval_check_retry() - the same test without the driver lock: an
 * early hint that the read will have to be retried (hmm_range_fault uses
 * it to return -EBUSY early).
 */
export function mmu_interval_check_retry(sub: mmu_interval_notifier, seq: number): boolean {
  return sub.invalidate_seq !== seq || should_fail(fail_hmm_retry, 1);
}

/**
 * mmu_interval_set_seq() - record the invalidation's seq in the
 * subscription. Called from ops->invalidate under the driver lock.
 */
export function mmu_interval_set_seq(sub: mmu_interval_notifier, cur_seq: number): void {
  sub.invalidate_seq = cur_seq;
  trace_event('mmu_interval_set_seq', { start: sub.start, seq: cur_seq });
  preempt_point('mmu_interval_set_seq');
}

/** notifierSubscriptionsOf() - the per-mm state, for tests and dumps. */
export function notifierSubscriptionsOf(mm: mm_struct): mmu_notifier_subscriptions | null {
  return subs_of(mm);
}
