/*
 * mm/vmscan.ts - page reclaim: shrinking the LRU lists, direct reclaim,
 * memcg reclaim and kswapd.
 *
 * Models mm/vmscan.c (the classic two-list LRU, not MGLRU):
 *
 *   kswapd ------------------> balance_pgdat --+
 *   alloc_pages slowpath ----> try_to_free_pages[_sleepable] --> do_try_to_free_pages
 *   memcg charge over max ---> try_to_free_mem_cgroup_pages --+
 *                                                             |
 *     shrink_node: for each memcg of the target subtree       v
 *       shrink_lruvec: get_scan_count, then in SWAP_CLUSTER_MAX batches
 *         shrink_active_list: deactivate (accessed bits cleared on the way)
 *         shrink_inactive_list: isolate from the tail, then
 *           shrink_folio_list: per folio (mm/vmscan_folio.ts)
 *             folio_check_references   -> keep / activate / reclaim
 *             add_to_swap              (anon, not yet in the swap cache)
 *             try_to_unmap             (PTEs -> swap entries, MMU_NOTIFY_CLEAR)
 *             pageout -> swap_writepage (dirty)
 *             __remove_mapping + free  (out of the swap cache, back to the buddy)
 *
 * Anonymous folios are only scanned while swap has free slots (and the
 * memcg's swap limit allows); lazily freed folios sit on the file list
 * and are always reclaimable. Each PTE that reclaim clears is announced to
 * secondary MMUs with MMU_NOTIFY_CLEAR over exactly that page
 * (mm/rmap_reclaim.ts).
 *
 * Sleeping: shrink_* are Sleepable and kswapd runs them as a kernel
 * thread, so notifier callbacks may sleep there. Direct reclaim from
 * alloc_pages_sleepable() (try_to_free_pages_sleepable()) and memcg
 * reclaim from mem_cgroup_charge_sleepable() are blockable too, as in
 * Linux. Reclaim for the plain alloc_pages() and mem_cgroup_charge()
 * cannot yield in this model. In Linux every direct reclaim may sleep
 * (only the OOM reaper sends non-blockable ranges), so a blocking gfp
 * that needs reclaim in a caller that cannot sleep is a might_sleep()
 * BUG whenever lockdep is on, as in every test and fuzz run
 * (reclaim_nosleep_check()); such callers must use the _sleepable
 * allocator and charge, or a gfp without __GFP_DIRECT_RECLAIM. With
 * lockdep off (benchmarks) the model's fallback stays: the same code runs
 * inline (runSync) with non-blockable notifier ranges; a subscriber that
 * would have to sleep answers -EAGAIN and the folio stays mapped; in
 * atomic context (a spinlock held) no direct reclaim runs.
 *
 * Simplified: no MGLRU, no shrinkers, no writeback throttling, no
 * compaction, no memory.low protection, no swappiness (anon and file are
 * scanned equally when both may be reclaimed), one node.
 */
import type { page } from '../include/linux/mm_types.js';
import type { mem_cgroup } from '../include/linux/memcontrol.js';
import {
  LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE, LRU_ACTIVE, WMARK_HIGH,
  is_active_lru, is_file_lru, type lru_list, type lruvec,
} from '../include/linux/mmzone.js';
import { SWAP_CLUSTER_MAX, DEF_PRIORITY } from '../include/linux/swap.js';
import { VM_EXEC, PAGE_SHIFT } from '../include/linux/mm.js';
import { SetPageLRU, TestClearPageLRU, ClearPageActive } from '../include/linux/page-flags.js';
import { GFP_KERNEL, __GFP_IO, __GFP_DIRECT_RECLAIM, type gfp_t } from '../include/linux/gfp.js';
import { lockdep_enabled } from '../lib/locking/lockdep.js';
import { runSync, in_atomic, current, cond_resched, kthread_run, type Sleepable, type Thread } from '../lib/sim/sched.js';
import { BUG } from '../include/asm-generic/bug.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { wait_queue_head, wait_event, wake_up_interruptible, waitqueue_active } from '../lib/locking/wait.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { put_page, nr_free_pages, zone_watermark_ok, wmark_pages } from './page_alloc.js';
import { lruvec_add_folio, lruvec_del_folio, lruvec_lru_size, folio_is_file_lru, folio_putback_lru } from './swap.js';
import { folio_referenced } from './rmap_reclaim.js';
import { shrink_folio_list } from './vmscan_folio.js';
import { __delete_from_swap_cache } from './swap_state.js';
import { get_nr_swap_pages } from './swapfile.js';
import { mem_cgroup_subtree, root_mem_cgroup } from './memcontrol.js';
import { deferred_split_scan } from './huge_memory_split.js';
import { shrink_huge_zero_folio_scan } from './huge_memory.js';

/** struct scan_control - one reclaim pass: what to reclaim and what it did. */
export interface scan_control {
  nr_to_reclaim: number;        /* stop once this many pages are freed */
  gfp_mask: gfp_t;              /* of the allocation that asked; __GFP_IO allows swap-out */
  order: number;
  priority: number;             /* scan lru_size >> priority per round; DEF_PRIORITY down to 0 */
  may_unmap: boolean;           /* may unmap mapped folios */
  may_swap: boolean;            /* may swap anonymous folios out */
  target_mem_cgroup: mem_cgroup | null;   /* memcg reclaim: only this subtree; null: all */
  nr_scanned: number;
  nr_reclaimed: number;
  /* may notifier callbacks sleep (kswapd), or must they not (inline reclaim)? No Linux twin */
  blockable: boolean;
}

function new_scan_control(nr_to_reclaim: number, gfp: gfp_t, target: mem_cgroup | null, blockable: boolean,
                          may_swap = true): scan_control {
  return { nr_to_reclaim, gfp_mask: gfp, order: 0, priority: DEF_PRIORITY, may_unmap: true, may_swap,
    target_mem_cgroup: target, nr_scanned: 0, nr_reclaimed: 0, blockable };
}

interface kswapd_state {
  thread: Thread | null;
  wait: wait_queue_head;          /* pgdat->kswapd_wait */
  order: number;                  /* largest order asked for since the last run */
  pending: boolean;               /* woken, not yet run */
  should_stop: boolean;           /* kthread_should_stop() */
}
let ks: kswapd_state = fresh_kswapd();
function fresh_kswapd(): kswapd_state {
  return { thread: null, wait: new wait_queue_head('kswapd_wait'), order: 0, pending: false, should_stop: false };
}
/* threads inside reclaim (PF_MEMALLOC): their own allocations do not recurse into it */
let in_reclaim = new WeakSet<Thread>();

/** current_is_kswapd() - is the running thread kswapd? */
export function current_is_kswapd(): boolean { return ks.thread !== null && current() === ks.thread; }

/* isolate_lru_folios() - take up to nr_to_scan pages from the tail of one list. */
function isolate_lru_folios(nr_to_scan: number, lv: lruvec, lru: lru_list): page[] {
  const out: page[] = [];
  spin_lock(lv.lru_lock);
  for (let scanned = 0; scanned < nr_to_scan;) {
    const f = lv.lists[lru].tail;
    if (f === null) break;
    scanned += 1 << f.order;
    if (!TestClearPageLRU(f)) BUG(`pfn ${f.pfn} on an LRU list without PG_lru`);
    lruvec_del_folio(lv, f);
    f._refcount++;                                 /* the isolation reference */
    out.push(f);
  }
  spin_unlock(lv.lru_lock);
  return out;
}

/* move_folios_to_lru() - put isolated folios back (PG_active picks the list) and drop the isolation references. */
function move_folios_to_lru(lv: lruvec, list: page[]): number {
  let moved = 0;
  spin_lock(lv.lru_lock);
  for (const f of list) {
    SetPageLRU(f);
    lruvec_add_folio(lv, f);
    moved += 1 << f.order;
  }
  spin_unlock(lv.lru_lock);
  for (const f of list) put_page(f);             /* may free a folio unmapped meanwhile (off the LRU again) */
  return moved;
}

/*
 * shrink_active_list() - age the active list: every folio goes to the
 * inactive list (its accessed bits cleared on the way), except
 * referenced executable file folios, which get another round.
 */
function shrink_active_list(nr_to_scan: number, lv: lruvec, lru: lru_list): void {
  const hold = isolate_lru_folios(nr_to_scan, lv, lru);
  count_event('pgrefill', hold.length);
  const l_active: page[] = [], l_inactive: page[] = [];
  for (const f of hold) {
    const { referenced, vm_flags } = folio_referenced(f);
    if (referenced > 0 && (vm_flags & VM_EXEC) && folio_is_file_lru(f)) { l_active.push(f); continue; }
    ClearPageActive(f);
    l_inactive.push(f);
  }
  move_folios_to_lru(lv, l_active);
  const n = move_folios_to_lru(lv, l_inactive);
  count_event('pgdeactivate', n);
  (lv.owner as mem_cgroup).stat.pgdeactivate += n;
}

/* shrink_inactive_list() - isolate a batch from the tail of an inactive list and try to free it. */
function* shrink_inactive_list(nr_to_scan: number, lv: lruvec, sc: scan_control, lru: lru_list): Sleepable<number> {
  const list = isolate_lru_folios(nr_to_scan, lv, lru);
  if (list.length === 0) return 0;
  const kswapd = current_is_kswapd();
  count_event(kswapd ? 'pgscan_kswapd' : 'pgscan_direct', list.length);
  const memcg = lv.owner as mem_cgroup;
  memcg.stat.pgscan += list.length;
  const nr = yield* shrink_folio_list(list, sc);
  move_folios_to_lru(lv, list);
  count_event(kswapd ? 'pgsteal_kswapd' : 'pgsteal_direct', nr);
  memcg.stat.pgsteal += nr;
  return nr;
}

/* inactive_is_low() - should the active list be aged into the inactive one? */
function inactive_is_low(lv: lruvec, inactive_lru: lru_list): boolean {
  const inactive = lruvec_lru_size(lv, inactive_lru);
  const active = lruvec_lru_size(lv, inactive_lru + LRU_ACTIVE);
  const gb = (inactive + active) / 2 ** (30 - PAGE_SHIFT);
  const ratio = gb >= 1 ? Math.floor(Math.sqrt(10 * Math.floor(gb))) : 1;
  return inactive * ratio < active;
}

/* can_reclaim_anon_pages() - is there swap to put anonymous pages in? */
function can_reclaim_anon_pages(sc: scan_control): boolean {
  if (!sc.may_swap || get_nr_swap_pages() <= 0) return false;
  for (let m = sc.target_mem_cgroup; m !== null; m = m.parent) if (m.swap.usage >= m.swap.max) return false;
  return true;
}

/* get_scan_count() - how many pages of each evictable list to scan at this priority. */
function get_scan_count(lv: lruvec, sc: scan_control): number[] {
  const anon = can_reclaim_anon_pages(sc);
  const nr = [0, 0, 0, 0];
  for (const lru of [LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE]) {
    if (!anon && !is_file_lru(lru)) continue;
    nr[lru] = Math.floor(lruvec_lru_size(lv, lru) / 2 ** sc.priority);
  }
  return nr;
}

/* shrink_lruvec() - one priority round over the lists of one memcg. */
function* shrink_lruvec(lv: lruvec, sc: scan_control): Sleepable {
  const nr = get_scan_count(lv, sc);
  const start = sc.nr_reclaimed;
  while (nr[LRU_INACTIVE_ANON] > 0 || nr[LRU_ACTIVE_FILE] > 0 || nr[LRU_INACTIVE_FILE] > 0) {
    for (let lru = LRU_INACTIVE_ANON; lru <= LRU_ACTIVE_FILE; lru++) {
      if (nr[lru] === 0) continue;
      const n = Math.min(nr[lru], SWAP_CLUSTER_MAX);
      nr[lru] -= n;
      if (is_active_lru(lru)) {
        if (inactive_is_low(lv, lru - LRU_ACTIVE)) shrink_active_list(n, lv, lru);
      } else {
        sc.nr_reclaimed += yield* shrink_inactive_list(n, lv, sc, lru);
      }
    }
    yield* cond_resched();
    if (sc.nr_reclaimed - start >= sc.nr_to_reclaim) break;
  }
  /* keep the anon inactive list fed even when anon was not scanned */
  if (can_reclaim_anon_pages(sc) && inactive_is_low(lv, LRU_INACTIVE_ANON)) {
    shrink_active_list(SWAP_CLUSTER_MAX, lv, LRU_ACTIVE_ANON);
  }
}

/*
 * shrink_node() - shrink the lruvec of every memcg under the target (all,
 * for global reclaim), then the shrinkers (shrink_slab). Two are
 * modelled: the huge zero folio (freed once no mm holds it; global reclaim
 * only, as it is not memcg-aware), and the THP deferred-split queue:
 * partly unmapped THPs are split so their unmapped tails can be freed. The
 * split may sleep (notifiers), so only reclaim that may block runs it.
 */
function* shrink_node(sc: scan_control): Sleepable {
  for (const memcg of mem_cgroup_subtree(sc.target_mem_cgroup ?? root_mem_cgroup())) {
    yield* shrink_lruvec(memcg.lruvec, sc);
    if (!current_is_kswapd() && sc.nr_reclaimed >= sc.nr_to_reclaim) break;
  }
  if (sc.target_mem_cgroup === null) shrink_huge_zero_folio_scan();
  if (sc.blockable && sc.target_mem_cgroup === null) yield* deferred_split_scan(SWAP_CLUSTER_MAX);
}

/*
 * do_try_to_free_pages() - raise the scan priority until enough pages are
 * freed or everything was looked at. Return: pages freed.
 */
function* do_try_to_free_pages(sc: scan_control): Sleepable<number> {
  do {
    sc.nr_scanned = 0;
    yield* shrink_node(sc);
    if (sc.nr_reclaimed >= sc.nr_to_reclaim) break;
  } while (--sc.priority >= 0);
  return sc.nr_reclaimed;
}

/*
 * reclaim_nosleep_check() - the might_sleep() of direct reclaim: a gfp with
 * __GFP_DIRECT_RECLAIM asked for reclaim from a caller that cannot sleep
 * (atomic context, or a plain, non-generator caller). Linux's reclaim
 * always may sleep, and sends blockable ranges; this model would have to
 * send non-blockable ones (the OOM reaper's rule), so with lockdep on
 * (tests, fuzzing) it is a BUG naming the fix. Counted as reclaim_nosleep.
 */
function reclaim_nosleep_check(sc: scan_control): void {
  if (!(sc.gfp_mask & __GFP_DIRECT_RECLAIM) || in_reclaim.has(current())) return;
  count_event('reclaim_nosleep');
  if (!lockdep_enabled()) return;
  const what = sc.target_mem_cgroup === null ? 'direct reclaim' : `memcg ${sc.target_mem_cgroup.name} limit reclaim`;
  BUG(`sleeping function called from invalid context: ${what} for a blocking gfp (0x${sc.gfp_mask.toString(16)}) ` +
      `in a caller that cannot sleep${in_atomic() ? ' (atomic context)' : ''}: ` +
      'use alloc_pages_sleepable()/mem_cgroup_charge_sleepable(), or GFP_NOWAIT/GFP_ATOMIC under a spinlock');
}

/* Run reclaim inline for a caller that cannot yield (see the header). */
function reclaim_inline(sc: scan_control): number {
  const t = current();
  reclaim_nosleep_check(sc);
  if (in_atomic() || in_reclaim.has(t)) return 0;
  in_reclaim.add(t);
  try {
    return runSync(do_try_to_free_pages(sc));
  } finally {
    in_reclaim.delete(t);
  }
}

/**
 * try_to_free_pages() - direct reclaim for the plain alloc_pages(): an
 * allocation found free memory below the min watermark and cannot sleep
 * (see try_to_free_pages_sleepable() for the Linux behaviour).
 * Context: cannot sleep: a might_sleep() BUG with lockdep on
 * (reclaim_nosleep_check()); otherwise inline with non-blockable
 * notifiers, nothing in atomic context. Return: pages freed.
 */
export function try_to_free_pages(gfp: gfp_t, order: number): number {
  count_event('allocstall');
  const sc = new_scan_control(Math.max(SWAP_CLUSTER_MAX, 1 << order), gfp, null, false);
  sc.order = order;
  const nr = reclaim_inline(sc);
  trace_event('mm_vmscan_direct_reclaim', { order, nr_reclaimed: nr });
  return nr;
}

/**
 * try_to_free_pages_sleepable() - direct reclaim for an allocation that
 * may sleep (alloc_pages_sleepable()): Linux's try_to_free_pages(). The
 * notifier ranges are blockable, so a subscriber may sleep in its
 * invalidate callback and the page is reclaimed. A thread already in
 * reclaim (PF_MEMALLOC) does not recurse.
 * Context: may sleep; not in atomic context. Return: pages freed.
 */
export function* try_to_free_pages_sleepable(gfp: gfp_t, order: number): Sleepable<number> {
  if (in_reclaim.has(current())) return 0;
  count_event('allocstall');
  const sc = new_scan_control(Math.max(SWAP_CLUSTER_MAX, 1 << order), gfp, null, true);
  sc.order = order;
  const nr = yield* reclaim_sleepable(sc);
  trace_event('mm_vmscan_direct_reclaim', { order, nr_reclaimed: nr, blockable: true });
  return nr;
}

/* Run reclaim for a caller that may sleep, marked as in reclaim (PF_MEMALLOC) meanwhile. */
function* reclaim_sleepable(sc: scan_control): Sleepable<number> {
  const t = current();
  if (in_reclaim.has(t)) return 0;
  in_reclaim.add(t);
  try {
    return yield* do_try_to_free_pages(sc);
  } finally {
    in_reclaim.delete(t);
  }
}

/**
 * try_to_free_mem_cgroup_pages_sleepable() - memcg limit reclaim for a
 * charge that may sleep (mem_cgroup_charge_sleepable()): Linux's
 * try_to_free_mem_cgroup_pages(), blockable notifier ranges.
 * Context: may sleep. Return: pages freed.
 */
export function* try_to_free_mem_cgroup_pages_sleepable(memcg: mem_cgroup, nr_pages: number, gfp: gfp_t,
                                                        may_swap: boolean): Sleepable<number> {
  const sc = new_scan_control(Math.max(nr_pages, SWAP_CLUSTER_MAX), gfp, memcg, true, may_swap);
  const nr = yield* reclaim_sleepable(sc);
  trace_event('mm_vmscan_memcg_reclaim', { memcg: memcg.name, nr_reclaimed: nr, blockable: true });
  return nr;
}

/**
 * try_to_free_mem_cgroup_pages() - reclaim inside memcg's subtree so that
 * a charge of nr_pages fits (memcg limit reclaim).
 * Context: inline, as try_to_free_pages. Return: pages freed.
 */
export function try_to_free_mem_cgroup_pages(memcg: mem_cgroup, nr_pages: number, gfp: gfp_t,
                                             may_swap: boolean): number {
  const sc = new_scan_control(Math.max(nr_pages, SWAP_CLUSTER_MAX), gfp, memcg, false, may_swap);
  const nr = reclaim_inline(sc);
  trace_event('mm_vmscan_memcg_reclaim', { memcg: memcg.name, nr_reclaimed: nr });
  return nr;
}

/**
 * reclaim_pages() - reclaim the isolated folios of list now, whatever
 * their accessed bits say (MADV_PAGEOUT); the survivors go back to their
 * LRU. Context: may sleep (blockable notifiers). Return: pages freed.
 */
export function* reclaim_pages(list: page[]): Sleepable<number> {
  const sc = new_scan_control(SWAP_CLUSTER_MAX, GFP_KERNEL, null, true);
  const nr = yield* shrink_folio_list(list, sc, true);
  for (const f of list) folio_putback_lru(f);
  list.length = 0;
  count_event('pgsteal_pageout', nr);
  return nr;
}

/** shrink_all_memory() - reclaim as much as possible, blockable (tests and hibernation). */
export function* shrink_all_memory(nr_to_reclaim: number): Sleepable<number> {
  return yield* do_try_to_free_pages(new_scan_control(nr_to_reclaim, GFP_KERNEL, null, true));
}

/** pgdat_balanced() - free memory is at or above the high watermark for this order. */
export function pgdat_balanced(order: number): boolean {
  return zone_watermark_ok(order, wmark_pages(WMARK_HIGH));
}

/*
 * balance_pgdat() - kswapd's work: reclaim until the high watermark is
 * met, raising the priority when a round frees nothing.
 */
function* balance_pgdat(order: number): Sleepable<number> {
  const sc = new_scan_control(0, GFP_KERNEL, null, true);
  sc.order = order;
  count_event('pageoutrun');
  let total = 0;
  while (sc.priority >= 0 && !pgdat_balanced(order)) {
    sc.nr_reclaimed = 0;
    sc.nr_to_reclaim = Math.max(SWAP_CLUSTER_MAX, wmark_pages(WMARK_HIGH));
    yield* shrink_node(sc);
    total += sc.nr_reclaimed;
    if (sc.nr_reclaimed === 0) sc.priority--;
    yield* cond_resched();
  }
  trace_event('mm_vmscan_kswapd_balanced', { order, nr_reclaimed: total, free: nr_free_pages() });
  return total;
}

/* kswapd() - the thread: sleep until woken, balance, sleep again. */
function* kswapd(): Sleepable<number> {
  in_reclaim.add(current());
  let runs = 0;
  for (;;) {
    yield* wait_event(ks.wait, () => ks.pending || ks.should_stop);
    if (ks.should_stop) break;
    const order = ks.order;
    ks.pending = false;
    ks.order = 0;
    yield* balance_pgdat(order);
    runs++;
  }
  in_reclaim.delete(current());
  return runs;
}

/**
 * kswapd_run() - start kswapd0 on the current Scheduler (kthread_run).
 * Return: the thread (existing one if already running).
 */
export function kswapd_run(): Thread {
  if (ks.thread !== null && ks.thread.state !== 'done') return ks.thread;
  ks.should_stop = false;
  ks.thread = kthread_run('kswapd0', kswapd);
  return ks.thread;
}

/** kswapd_stop() - kthread_stop(): ask kswapd to exit and wake it. */
export function kswapd_stop(): void {
  ks.should_stop = true;
  wake_up_interruptible(ks.wait);
}

/**
 * wakeup_kswapd() - an allocation went below the low watermark: wake
 * kswapd if it sleeps and memory is not balanced (__alloc_pages_slowpath()).
 * Context: any; never sleeps.
 */
export function wakeup_kswapd(order: number): void {
  if (ks.thread === null || pgdat_balanced(order)) return;
  ks.order = Math.max(ks.order, order);
  ks.pending = true;
  if (!waitqueue_active(ks.wait)) return;
  count_event('kswapd_wakeup');
  trace_event('mm_vmscan_wakeup_kswapd', { order, free: nr_free_pages() });
  wake_up_interruptible(ks.wait);
}

/**
 * kswapd_init() - boot: forget the last machine's kswapd and reclaimers.
 * Linux starts kswapd0 here; this model starts it on demand (kswapd_run()).
 * Context: start_kernel(), before memory is handed out.
 */
export function kswapd_init(): void {
  ks = fresh_kswapd();
  in_reclaim = new WeakSet();
}
