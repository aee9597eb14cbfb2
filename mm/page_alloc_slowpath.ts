/*
 * mm/page_alloc_slowpath.ts - the slow path of the page allocator: what
 * an allocation does when the fast path (get_page_from_freelist() above
 * the low watermark, mm/page_alloc.ts) failed.
 *
 * Models __alloc_pages_slowpath() and its helpers of Linux's
 * mm/page_alloc.c (6.10: __alloc_pages_direct_reclaim,
 * __alloc_pages_may_oom, should_reclaim_retry's MAX_RECLAIM_RETRIES, the
 * __GFP_NOFAIL "nopage" retry). Linux keeps them in page_alloc.c; the
 * model keeps them apart so that each file stays readable. The two entry
 * points of mm/page_alloc.ts call them: alloc_pages() the plain
 * __alloc_pages_slowpath(), alloc_pages_sleepable() the Sleepable
 * __alloc_pages_slowpath_sleepable() (a function that sleeps is a
 * generator here; see mm/page_alloc.ts's header for the split).
 *
 * The __GFP_NOFAIL loop (Linux's __alloc_pages_slowpath "nopage" retry)
 * is bounded here: Linux loops forever, and panics ("System is
 * deadlocked on memory") only when out_of_memory() finds nothing to
 * kill. This model sleeps one jiffy per round while some OOM victim is
 * still exiting, for at most NOFAIL_WAIT_NS of simulated time after the
 * last kill, then BUGs; with nothing to kill and no victim to wait for it
 * BUGs at once. The message says which of the two Linux outcomes it
 * stands for (see __alloc_pages_nofail_stall()).
 *
 * Simplified: no compaction, no ALLOC_* flag word (the marks are passed
 * as numbers), one zone.
 */
import type { page } from '../include/linux/mm_types.js';
import {
  __GFP_NOFAIL, __GFP_NORETRY, __GFP_DIRECT_RECLAIM, __GFP_KSWAPD_RECLAIM, __GFP_RETRY_MAYFAIL, type gfp_t,
} from '../include/linux/gfp.js';
import { WMARK_MIN, PAGE_ALLOC_COSTLY_ORDER } from '../include/linux/mmzone.js';
import { MAX_RECLAIM_RETRIES } from '../include/linux/swap.js';
import { count_event } from '../lib/sim/trace.js';
import { current, type Sleepable } from '../lib/sim/sched.js';
import { schedule_timeout, now, NSEC_PER_MSEC, NSEC_PER_SEC } from '../lib/sim/clock.js';
import { BUG } from '../include/asm-generic/bug.js';
import { out_of_memory, oom_kills, oom_victims_exiting } from './oom_kill.js';
import { try_to_free_pages, try_to_free_pages_sleepable, wakeup_kswapd } from './vmscan.js';
import { get_page_from_freelist, wmark_pages } from './page_alloc.js';

/*
 * __alloc_pages_slowpath() - free memory is below the low watermark: wake
 * kswapd, allow down to min (half of min for callers that cannot
 * reclaim: ALLOC_NON_BLOCK), then reclaim directly while it makes
 * progress.
 */
export function __alloc_pages_slowpath(gfp: gfp_t, order: number): page | null {
  if (gfp & __GFP_KSWAPD_RECLAIM) wakeup_kswapd(order);
  const can_reclaim = (gfp & __GFP_DIRECT_RECLAIM) !== 0;
  const min = wmark_pages(WMARK_MIN);
  const mark = can_reclaim ? min : min - (min >> 1);
  let p = get_page_from_freelist(order, mark);
  if (p !== null || !can_reclaim || (gfp & __GFP_NORETRY)) return p;
  for (let retries = 0; p === null && retries < MAX_RECLAIM_RETRIES; retries++) {
    const progress = try_to_free_pages(gfp, order);
    p = get_page_from_freelist(order, mark);
    if (progress === 0) break;
  }
  /* costly orders fail without killing anyone, unless they must not fail */
  if (p !== null || (order > PAGE_ALLOC_COSTLY_ORDER && !(gfp & __GFP_NOFAIL))) return p;
  /* each round kills a new task (a victim's mm is MMF_OOM_SKIP afterwards): bounded by the tasks */
  while (p === null && __alloc_pages_may_oom(gfp, order)) {
    p = get_page_from_freelist(order, mark);
    if (p === null && oom_victim_current()) p = get_page_from_freelist(order, 0);   /* ALLOC_OOM: the reserves */
    if (p === null && oom_victim_current()) break;   /* the caller is dying: let it fail and exit */
  }
  return p;
}

/* __alloc_pages_may_oom() - run the OOM killer for a failed allocation. Return: true to retry. */
function __alloc_pages_may_oom(gfp: gfp_t, order: number): boolean {
  const before = oom_kills().length;
  if (!out_of_memory({ gfp_mask: gfp, order, chosen: null, chosen_points: -Infinity })) return false;
  if (oom_kills().length > before) try_to_free_pages(gfp, order);   /* the reaped victim's swap cache and LRU */
  return oom_kills().length > before || oom_victim_current();
}

/* the allocating task is an OOM victim (tsk_is_oom_victim(current)) */
function oom_victim_current(): boolean {
  const t = current().task as { oom_mm: unknown } | null;
  return t !== null && t !== undefined && t.oom_mm !== null && t.oom_mm !== undefined;
}

/* One jiffy at HZ=250: how long an allocation sleeps between rounds while OOM victims exit. */
export const NOFAIL_RETRY_NS = 4 * NSEC_PER_MSEC;
/*
 * How long an allocation waits in all for OOM victims to exit: then an
 * ordinary one fails and a __GFP_NOFAIL one BUGs (no Linux twin: Linux
 * retries for as long as the victim takes; this is the OOM reaper's own
 * patience, MAX_OOM_REAP_RETRIES x HZ/10).
 */
export const NOFAIL_WAIT_NS = NSEC_PER_SEC;

/*
 * __alloc_pages_may_oom_sleepable() - reclaim made no progress: run the
 * OOM killer. Return: 'killed' (a new victim: retry at once), 'exiting'
 * (no new victim, but some victim has not exited yet, or the caller is
 * dying itself: worth waiting for), or 'none' (nothing left to kill).
 */
function* __alloc_pages_may_oom_sleepable(gfp: gfp_t, order: number): Sleepable<'killed' | 'exiting' | 'none'> {
  const before = oom_kills().length;
  const ret = out_of_memory({ gfp_mask: gfp, order, chosen: null, chosen_points: -Infinity, may_wait: true });
  if (oom_kills().length > before) {
    yield* try_to_free_pages_sleepable(gfp, order);     /* the reaped victim's swap cache and LRU */
    return 'killed';
  }
  if (oom_victims_exiting() > 0) return 'exiting';
  return ret && oom_victim_current() ? 'exiting' : 'none';
}

/*
 * __alloc_pages_nofail_stall() - a __GFP_NOFAIL allocation has waited
 * NOFAIL_WAIT_NS and nothing freed memory. Linux keeps looping while a
 * victim is on its way out (or the caller is a dying victim itself), and
 * panics from out_of_memory() when nothing is killable at all; the model
 * stops here with a BUG naming which of the two it stands for.
 */
function __alloc_pages_nofail_stall(order: number, waited_ns: number, last: 'exiting' | 'none'): never {
  count_event('nofail_stall');
  const ms = Math.round(waited_ns / NSEC_PER_MSEC);
  if (last === 'none') {
    BUG(`__GFP_NOFAIL order-${order} allocation: out of memory and no killable processes after waiting ${ms} ms ` +
        '(Linux panics: System is deadlocked on memory)');
  }
  BUG(`__GFP_NOFAIL order-${order} allocation: no memory came back in ${ms} ms of waiting for OOM victims to exit ` +
      '(Linux keeps retrying for as long as they take: a livelock if they never free enough)');
}

/*
 * __alloc_pages_slowpath_sleepable() - the Sleepable slow path (Linux's
 * __alloc_pages_slowpath() for a gfp with __GFP_DIRECT_RECLAIM): wake
 * kswapd; retry blockable direct reclaim while it makes progress (up to
 * MAX_RECLAIM_RETRIES rounds); then the OOM killer, retrying after every
 * kill. While an earlier victim has not exited yet (nothing new to kill)
 * it sleeps a jiffy per round, so the victims' threads run and free their
 * memory at exit, and retries: for at most NOFAIL_WAIT_NS after the last
 * kill, then an ordinary allocation fails. A dying caller (an OOM victim)
 * may use the reserves once and then fails, unless __GFP_NOFAIL.
 * __GFP_NOFAIL never returns null: it also takes half of the min reserve
 * (ALLOC_HARDER); with nothing left to kill and no victim to wait for, or
 * after NOFAIL_WAIT_NS, it BUGs (__alloc_pages_nofail_stall()).
 */
export function* __alloc_pages_slowpath_sleepable(gfp: gfp_t, order: number): Sleepable<page | null> {
  const nofail = (gfp & __GFP_NOFAIL) !== 0;
  const min = wmark_pages(WMARK_MIN);
  let reclaim_retries = 0, waited = 0;
  for (;;) {
    if (gfp & __GFP_KSWAPD_RECLAIM) wakeup_kswapd(order);
    let p = get_page_from_freelist(order, min);
    if (p !== null) return p;
    if (oom_victim_current()) {
      p = get_page_from_freelist(order, 0);              /* ALLOC_OOM: the reserves */
      if (p !== null || !nofail) return p;               /* the caller is dying: let it fail and exit */
    }
    const progress = yield* try_to_free_pages_sleepable(gfp, order);     /* __alloc_pages_direct_reclaim */
    p = get_page_from_freelist(order, min);
    if (p !== null) return p;
    if (!nofail && (gfp & __GFP_NORETRY)) return null;
    if (!nofail && order > PAGE_ALLOC_COSTLY_ORDER && !(gfp & __GFP_RETRY_MAYFAIL)) return null;
    if (progress > 0 && ++reclaim_retries < MAX_RECLAIM_RETRIES) continue;
    const oom = yield* __alloc_pages_may_oom_sleepable(gfp, order);
    if (oom === 'killed') { reclaim_retries = 0; waited = 0; continue; }
    if (nofail) {
      p = get_page_from_freelist(order, min - (min >> 1));  /* ALLOC_HARDER for non-failing allocations */
      if (p !== null) return p;
      if (oom === 'none' || waited >= NOFAIL_WAIT_NS) __alloc_pages_nofail_stall(order, waited, oom);
    } else if (oom === 'none' || oom_victim_current() || waited >= NOFAIL_WAIT_NS) {
      return oom_victim_current() ? get_page_from_freelist(order, 0) : null;
    }
    count_event('oom_victim_wait');
    const t0 = now();
    yield* schedule_timeout(NOFAIL_RETRY_NS);            /* schedule_timeout_uninterruptible(1) */
    waited += Math.max(now() - t0, NOFAIL_RETRY_NS);
    reclaim_retries = 0;
  }
}
