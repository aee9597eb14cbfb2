/*
 * mm/memcontrol.ts - memory cgroups: charging, limits, reclaim inside a
 * cgroup, and the out-of-memory outcome.
 *
 * Models mm/memcontrol.c and mm/page_counter.c for cgroup v2:
 * mem_cgroup_charge() (charge_memcg -> try_charge_memcg -> commit_charge),
 * mem_cgroup_uncharge(), get_mem_cgroup_from_mm() (exported for HMM by
 * patch 15 of the 2015 series), the swap charge (mem_cgroup_try_charge_swap,
 * mem_cgroup_uncharge_swap, the swap_cgroup record of mm/swap_cgroup.c),
 * mem_cgroup_swapin_charge_folio(), memory.max / memory.swap.max, and the
 * memcg LRU lists that reclaim walks (mem_cgroup_lruvec, folio_lruvec).
 * Types and the charging rules are in include/linux/memcontrol.ts.
 *
 * Simplified:
 *  - the OOM killer of a memcg picks the task that is charging: the charge
 *    records the memcg in current->memcg_in_oom, its fault returns
 *    VM_FAULT_OOM and pagefault_out_of_memory() (mm/oom_kill.ts) delivers
 *    SIGKILL. Linux selects the largest task of the cgroup (oom_badness),
 *    kills it and retries the charge;
 *  - a cgroup is a tree node made by mem_cgroup_create(); a process
 *    joins it with mem_cgroup_attach_task() (writing cgroup.procs), and
 *    a fork child inherits its parent's (mm/fork.ts copies mm->memcg);
 *  - no memory.high/low/min, no per-CPU charge stock, no kmem accounting.
 */
import { type page, type mm_struct, SECTION_MASK, __pfn_to_section, memcg_of_slot } from '../include/linux/mm_types.js';
import type { task_struct } from '../include/linux/sched.js';
import type { lruvec } from '../include/linux/mmzone.js';
import type { folio_batch, folio_pfn_batch } from '../include/linux/pagevec.js';
import {
  mem_cgroup, page_counter, folio_memcg, PAGE_COUNTER_MAX, MEMCG_MAX, MEMCG_OOM, MEMCG_OOM_KILL,
  MEMCG_SWAP_MAX, MEMCG_SWAP_FAIL,
} from '../include/linux/memcontrol.js';
import { MAX_RECLAIM_RETRIES } from '../include/linux/swap.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import { swp_type, swp_offset, type swp_entry_t } from '../include/linux/swapops.js';
import { GFP_KERNEL, __GFP_DIRECT_RECLAIM, __GFP_NORETRY, __GFP_NOFAIL, type gfp_t } from '../include/linux/gfp.js';
import { ENOMEM, EINVAL, EBUSY } from '../include/uapi/asm-generic/errno.js';
import { BUG } from '../include/asm-generic/bug.js';
import { spinlock_t } from '../lib/locking/spinlock.js';
import { lockdep_set_class } from '../lib/locking/lockdep.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { swap_type_to_swap_info, vm_swap_full } from './swapfile.js';
import { try_to_free_mem_cgroup_pages, try_to_free_mem_cgroup_pages_sleepable } from './vmscan.js';
import { current, runSync, type Sleepable } from '../lib/sim/sched.js';

/* charges larger than 2^this pages do not loop on partial reclaim progress (include/linux/mmzone.h) */
const PAGE_ALLOC_COSTLY_ORDER = 3;

interface memcg_state {
  root: mem_cgroup;
  by_id: Map<number, mem_cgroup>;     /* mem_cgroup_from_id(): the swap_cgroup records hold ids */
  next_id: number;
}
let ms: memcg_state = fresh();

function new_memcg(name: string, parent: mem_cgroup | null, id: number): mem_cgroup {
  return new mem_cgroup(id, name, parent, lockdep_set_class(new spinlock_t(`lru_lock[memcg ${name}]`), '&lruvec->lru_lock'));
}

function fresh(): memcg_state {
  const root = new_memcg('/', null, 1);
  return { root, by_id: new Map([[1, root]]), next_id: 2 };
}

/** root_mem_cgroup() - the root of the tree: no limit. */
export function root_mem_cgroup(): mem_cgroup { return ms.root; }

/** mem_cgroup_from_id() - the memcg with this id, or null (0 and removed ids). */
export function mem_cgroup_from_id(id: number): mem_cgroup | null { return ms.by_id.get(id) ?? null; }

/**
 * mem_cgroup_create() - mkdir of a cgroup under parent (root by default).
 * Return: the new memcg, unlimited until memory.max is written.
 */
export function mem_cgroup_create(name: string, parent: mem_cgroup = ms.root): mem_cgroup {
  const memcg = new_memcg(parent === ms.root ? `/${name}` : `${parent.name}/${name}`, parent, ms.next_id++);
  parent.children.push(memcg);
  ms.by_id.set(memcg.id, memcg);
  return memcg;
}

/** mem_cgroup_attach_task() - write the task's pid to cgroup.procs: its new charges go to memcg. */
export function mem_cgroup_attach_task(memcg: mem_cgroup, task: task_struct): void {
  if (task.mm !== null) task.mm.memcg = memcg;
}

/**
 * get_mem_cgroup_from_mm() - the memcg charges of mm go to: the one its
 * owner task was attached to, or the root.
 */
export function get_mem_cgroup_from_mm(mm: mm_struct | null): mem_cgroup {
  const memcg = mm === null ? null : (mm.memcg as mem_cgroup | null);
  return memcg ?? ms.root;
}

/** mem_cgroup_lruvec() - the LRU lists of a memcg (the root's for null). */
export function mem_cgroup_lruvec(memcg: mem_cgroup | null): lruvec {
  return (memcg ?? ms.root).lruvec;
}

/** folio_lruvec() - the lists a folio lives on: its memcg's, or the root's if uncharged. */
export function folio_lruvec(f: page): lruvec {
  return mem_cgroup_lruvec(folio_memcg(f));
}

/** mem_cgroup_subtree() - memcg and its descendants, parents first (mem_cgroup_iter). */
export function mem_cgroup_subtree(memcg: mem_cgroup = ms.root): mem_cgroup[] {
  const out: mem_cgroup[] = [];
  const walk = (m: mem_cgroup) => { out.push(m); for (const c of m.children) walk(c); };
  walk(memcg);
  return out;
}

/* memcg_memory_event() - count an event in memcg and every ancestor (memory.events is hierarchical). */
function memcg_memory_event(memcg: mem_cgroup, event: number): void {
  for (let m: mem_cgroup | null = memcg; m !== null; m = m.parent) m.events[event]++;
}

/**
 * page_counter_try_charge() - add nr to counter and its ancestors unless
 * one would pass its max.
 * Return: null on success, else the counter that refused (nothing charged).
 */
export function page_counter_try_charge(counter: page_counter, nr: number): page_counter | null {
  for (let c: page_counter | null = counter; c !== null; c = c.parent) {
    if (c.usage + nr > c.max) {
      c.failcnt++;
      for (let u: page_counter | null = counter; u !== c; u = u!.parent) u!.usage -= nr;
      return c;
    }
    c.usage += nr;
    if (c.usage > c.watermark) c.watermark = c.usage;
  }
  return null;
}

/** page_counter_uncharge() - remove nr from counter and its ancestors. */
export function page_counter_uncharge(counter: page_counter, nr: number): void {
  for (let c: page_counter | null = counter; c !== null; c = c.parent) {
    c.usage -= nr;
    if (c.usage < 0) BUG(`page_counter underflow (${c.usage})`);
  }
}

/* The memcg a memory page_counter belongs to (the one that refused a charge). */
function memcg_of_counter(c: page_counter): mem_cgroup {
  for (const m of ms.by_id.values()) if (m.memory === c) return m;
  BUG('page_counter of no memcg');
}

/** mem_cgroup_margin() - pages memcg can still charge before a limit on its path. */
export function mem_cgroup_margin(memcg: mem_cgroup): number {
  let margin = PAGE_COUNTER_MAX;
  for (let c: page_counter | null = memcg.memory; c !== null; c = c.parent) margin = Math.min(margin, c.max - c.usage);
  return Math.max(0, margin);
}

/*
 * mem_cgroup_oom() - reclaim could not bring the memcg under its limit.
 * The victim is the charging task (see the header); return false: there
 * is no progress to retry on.
 */
function mem_cgroup_oom(memcg: mem_cgroup, nr: number): boolean {
  const task = current().task as task_struct | null;
  if (task !== null && task !== undefined) task.memcg_in_oom = memcg;
  memcg_memory_event(memcg, MEMCG_OOM);
  memcg_memory_event(memcg, MEMCG_OOM_KILL);
  count_event('memcg_oom');
  trace_event('mem_cgroup_oom', { memcg: memcg.name, usage: memcg.memory.usage, max: memcg.memory.max, nr });
  return false;
}

/*
 * try_charge_memcg() - charge nr pages to memcg, reclaiming inside the
 * subtree that is over its limit when needed. With @blockable (a caller
 * that may sleep) that reclaim sends blockable notifier ranges, as in
 * Linux; without, it runs inline and never yields (see mm/vmscan.ts).
 * Return: 0 or -ENOMEM.
 */
function* try_charge_memcg(memcg: mem_cgroup, gfp: gfp_t, nr: number, blockable: boolean): Sleepable<number> {
  let retries = MAX_RECLAIM_RETRIES;
  for (let rounds = 0; ; rounds++) {
    if (rounds > 64 * MAX_RECLAIM_RETRIES) BUG(`memcg ${memcg.name}: charge retried ${rounds} times (reclaim livelock)`);
    const refused = page_counter_try_charge(memcg.memory, nr);
    if (refused === null) return 0;
    const over = memcg_of_counter(refused);
    memcg_memory_event(over, MEMCG_MAX);
    if (!(gfp & __GFP_DIRECT_RECLAIM)) return -ENOMEM;
    const reclaimed = blockable ? yield* try_to_free_mem_cgroup_pages_sleepable(over, nr, gfp, true)
      : try_to_free_mem_cgroup_pages(over, nr, gfp, true);
    if (mem_cgroup_margin(over) >= nr) continue;
    if (gfp & __GFP_NORETRY) return -ENOMEM;
    if (reclaimed > 0 && nr <= 1 << PAGE_ALLOC_COSTLY_ORDER) continue;
    if (retries-- > 0) continue;
    if (gfp & __GFP_NOFAIL) BUG('__GFP_NOFAIL memcg charge cannot be forced in this model');
    mem_cgroup_oom(over, nr);
    return -ENOMEM;
  }
}

/* commit_charge() - the folio now belongs to memcg. */
function commit_charge(f: page, memcg: mem_cgroup): void {
  if (f.memcg !== null) BUG(`commit_charge: pfn ${f.pfn} is already charged`);
  f.memcg = memcg;
}

function* charge_memcg(f: page, memcg: mem_cgroup, gfp: gfp_t, blockable: boolean): Sleepable<number> {
  const ret = yield* try_charge_memcg(memcg, gfp, 1 << f.order, blockable);
  if (ret === 0) commit_charge(f, memcg);
  return ret;
}

/**
 * mem_cgroup_charge() - charge a new folio for a mapping of mm to mm's
 * memcg, from a caller that cannot sleep.
 * Context: never yields; with a blocking @gfp, limit reclaim here is a
 * might_sleep() BUG under lockdep (mm/vmscan.ts): callers that may sleep
 * use mem_cgroup_charge_sleepable(), the others a gfp without
 * __GFP_DIRECT_RECLAIM (then a memcg at its limit fails the charge).
 * Return: 0, or -ENOMEM when the memcg is out of memory after reclaim.
 */
export function mem_cgroup_charge(f: page, mm: mm_struct | null, gfp: gfp_t): number {
  return runSync(charge_memcg(f, get_mem_cgroup_from_mm(mm), gfp, false));      /* never yields: not blockable */
}

/**
 * mem_cgroup_charge_sleepable() - mem_cgroup_charge() for a caller that
 * may sleep (the fault paths): the memcg's reclaim sends blockable ranges.
 * Context: may sleep. Return: 0, or -ENOMEM.
 */
export function* mem_cgroup_charge_sleepable(f: page, mm: mm_struct | null, gfp: gfp_t): Sleepable<number> {
  return yield* charge_memcg(f, get_mem_cgroup_from_mm(mm), gfp, true);
}

/**
 * mem_cgroup_swapin_charge_folio() - charge a folio being read from swap:
 * to the memcg that owned the slot if it still exists, else to mm's.
 * Context: may sleep (blockable memcg reclaim). Return: 0 or -ENOMEM.
 */
export function* mem_cgroup_swapin_charge_folio(f: page, mm: mm_struct | null, gfp: gfp_t,
                                                entry: swp_entry_t): Sleepable<number> {
  const owner = mem_cgroup_from_id(lookup_swap_cgroup_id(entry));
  const memcg = owner ?? get_mem_cgroup_from_mm(mm);
  return yield* charge_memcg(f, memcg, gfp, true);
}

/** mem_cgroup_uncharge() - the folio is being freed: give its pages back to its memcg. */
export function mem_cgroup_uncharge(f: page): void {
  const memcg = folio_memcg(f);
  if (memcg === null) return;
  page_counter_uncharge(memcg.memory, 1 << f.order);
  f.memcg = null;
}

/**
 * mem_cgroup_uncharge_folios() - mem_cgroup_uncharge() of every folio of
 * a batch being freed, one page_counter update per run of folios of the
 * same memcg (uncharge_batch() in Linux).
 */
export function mem_cgroup_uncharge_folios(fb: folio_batch): void {
  let memcg: mem_cgroup | null = null, nr = 0;
  for (let i = 0; i < fb.nr; i++) {
    const f = fb.folios[i];
    const m = folio_memcg(f);
    if (m === null) continue;
    if (m !== memcg) {
      if (memcg !== null) page_counter_uncharge(memcg.memory, nr);
      memcg = m;
      nr = 0;
    }
    nr += 1 << f.order;
    f.memcg = null;
  }
  if (memcg !== null) page_counter_uncharge(memcg.memory, nr);
}

/**
 * mem_cgroup_uncharge_folios_pfn() - mem_cgroup_uncharge_folios() of a
 * batch of pfns (struct folio_pfn_batch): the same page_counter updates
 * and page->memcg stores, on the section arrays.
 * Context: as mem_cgroup_uncharge_folios().
 */
export function mem_cgroup_uncharge_folios_pfn(fb: folio_pfn_batch): void {
  let memcg: mem_cgroup | null = null, nr = 0;
  for (let i = 0; i < fb.nr; i++) {
    const pfn = fb.pfns[i], ms = __pfn_to_section(pfn)!, x = pfn & SECTION_MASK;
    const slots = ms.memcg;
    if (slots === null || slots[x] === 0) continue;
    const m = memcg_of_slot(slots[x]) as mem_cgroup;
    if (m !== memcg) {
      if (memcg !== null) page_counter_uncharge(memcg.memory, nr);
      memcg = m;
      nr = 0;
    }
    nr += 1 << ms.order[x];
    slots[x] = 0;
  }
  if (memcg !== null) page_counter_uncharge(memcg.memory, nr);
}

/* mm/swap_cgroup.c: the memcg id recorded for a slot. */
function swap_cgroup_record(entry: swp_entry_t, id: number): number {
  const si = swap_type_to_swap_info(swp_type(entry));
  if (si === null) BUG(`swap_cgroup_record: bad entry 0x${entry.toString(16)}`);
  const old = si.swap_cgroup[swp_offset(entry)];
  si.swap_cgroup[swp_offset(entry)] = id;
  return old;
}

/** lookup_swap_cgroup_id() - the id of the memcg a slot is charged to, 0 for none. */
export function lookup_swap_cgroup_id(entry: swp_entry_t): number {
  const si = swap_type_to_swap_info(swp_type(entry));
  return si === null ? 0 : si.swap_cgroup[swp_offset(entry)];
}

/**
 * mem_cgroup_try_charge_swap() - charge the slot a folio is given to the
 * folio's memcg (memory.swap.max).
 * Return: 0, or -ENOMEM when a swap limit on the path is reached.
 */
export function mem_cgroup_try_charge_swap(f: page, entry: swp_entry_t): number {
  const memcg = folio_memcg(f);
  if (memcg === null) return 0;
  const refused = page_counter_try_charge(memcg.swap, 1);
  if (refused !== null) {
    memcg_memory_event(memcg, MEMCG_SWAP_MAX);
    memcg_memory_event(memcg, MEMCG_SWAP_FAIL);
    return -ENOMEM;
  }
  swap_cgroup_record(entry, memcg.id);
  return 0;
}

/** mem_cgroup_uncharge_swap() - the slot was freed: uncharge it from its memcg. */
export function mem_cgroup_uncharge_swap(entry: swp_entry_t): void {
  const memcg = mem_cgroup_from_id(swap_cgroup_record(entry, 0));
  if (memcg !== null) page_counter_uncharge(memcg.swap, 1);
}

/**
 * mem_cgroup_swap_full() - swap is tight for this folio: globally
 * (vm_swap_full) or in a memcg on its path (half of memory.swap.max used).
 */
export function mem_cgroup_swap_full(f: page): boolean {
  if (vm_swap_full()) return true;
  for (let m = folio_memcg(f); m !== null && m !== ms.root; m = m.parent) {
    if (m.swap.usage * 2 >= m.swap.max) return true;
  }
  return false;
}

/*
 * Shrink memcg until its usage fits max (memory_max_write): the limit is
 * set first, so new charges already see it. Return: 0, or -EBUSY when
 * reclaim could not get there (Linux would OOM-kill tasks of the cgroup).
 */
function reclaim_to_max(memcg: mem_cgroup): number {
  for (let tries = MAX_RECLAIM_RETRIES; memcg.memory.usage > memcg.memory.max; tries--) {
    if (tries === 0) { mem_cgroup_oom(memcg, memcg.memory.usage - memcg.memory.max); return -EBUSY; }
    /* the writer may sleep (blockable ranges, as Linux): driven here, as the write is plain code */
    runSync(try_to_free_mem_cgroup_pages_sleepable(memcg, memcg.memory.usage - memcg.memory.max, GFP_KERNEL, true));
  }
  return 0;
}

/**
 * memory_max_write() - set memory.max in bytes (rounded down to pages;
 * Infinity for "max"), reclaiming down to it.
 * Return: 0, -EINVAL for a negative limit, -EBUSY (see reclaim_to_max).
 */
export function memory_max_write(memcg: mem_cgroup, bytes: number): number {
  if (!(bytes >= 0)) return -EINVAL;
  memcg.memory.max = bytes === Infinity ? PAGE_COUNTER_MAX : Math.floor(bytes / PAGE_SIZE);
  return reclaim_to_max(memcg);
}

/** swap_max_write() - set memory.swap.max in bytes (Infinity for "max"). Return: 0 or -EINVAL. */
export function swap_max_write(memcg: mem_cgroup, bytes: number): number {
  if (!(bytes >= 0)) return -EINVAL;
  memcg.swap.max = bytes === Infinity ? PAGE_COUNTER_MAX : Math.floor(bytes / PAGE_SIZE);
  return 0;
}

/** mem_cgroup_init() - boot: a fresh tree with only the root. Context: start_kernel(). */
export function mem_cgroup_init(): void {
  ms = fresh();
}
