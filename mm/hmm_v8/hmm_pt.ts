/*
 * mm/hmm_v8/hmm_pt.ts - HMM v8 patches 06, 17, 18, 23: the mirror page
 * table, as a lib/gpt instance.
 *
 *   [PATCH 06/36] HMM: add HMM page table v2
 *   [PATCH 17/36] HMM: add new HMM page table flag (valid device memory)
 *   [PATCH 18/36] HMM: add new HMM page table flag (select flag)
 *   [PATCH 23/36] HMM: allow to get pointer to spinlock protecting a directory
 *
 * Why a page table and not a radix tree: each entry needs more flag bits
 * than radix tags offer and must hold a dma_addr_t. The entry layout
 * (VALID_DEV / VALID_DMA / VALID_PFN / SELECT / WRITE / DIRTY, driver bits
 * from HMM_PTE_HW_SHIFT, address from PAGE_SHIFT) is drawn in
 * include/linux/gpt.ts; value helpers are in include/linux/hmm_v8.ts.
 *
 * hmm_pt is what the 2014 gpt became: lib/gpt is the engine (its header
 * states the refcount, lock and ordering rules once), hmm_pt_format the
 * entry format. The v8 names map onto it like this:
 *
 *   hmm_pt_init(pt) / hmm_pt_fini(pt)      new gpt(47-bit geometry, hmm_pt_format) / clear + prune
 *   hmm_pt_iter_init / hmm_pt_iter_fini     gpt.iter_init() / gpt_iter.fini()
 *   hmm_pt_iter_update(iter, addr)          gpt_iter.lookup()   (v9: hmm_pt_iter_lookup)
 *   hmm_pt_iter_fault(iter, addr)           gpt_iter.populate() (v9: hmm_pt_iter_populate)
 *   hmm_pt_iter_next(iter, addr, end)       gpt.lookup_leaf() + level_end(): skip a missing directory
 *   hmm_pt_level_next(pt, addr, end, lvl)   gpt.level_end(), clamped to end
 *   hmm_pt_iter_walk (v9)                   gpt_iter.walk()
 *   hmm_pt_iter_directory_lock/unlock       gpt.dir_lock/dir_unlock + preempt_disable (a spinlock)
 *   hmm_pt_directory_lock_ptr (patch 23)    the directory slot, i.e. which lock
 *   hmm_pt_iter_directory_ref/unref         implicit: gpt.set() counts a directory's valid entries
 *   directory death / dead_directories      gpt.prune() + the epoch grace period (no synchronize_rcu)
 *
 * Every reader in the simulator is a simulated thread of one JS thread,
 * so the table is a private gpt (plain typed-array accesses); the locks
 * still matter because a simulated thread may be switched out anywhere it
 * yields, and a directory lock held across a yield is reported at once as
 * "scheduling while atomic". lib/gpt is tested with real worker threads
 * (test/lib/gpt/smp.test.ts); the same code runs here.
 */
import { TASK_SIZE, PAGE_SIZE } from '../../include/linux/mm.js';
import { GPT_NO_DIR, HMM_PTE_DIRTY, type gpt_walk_ops } from '../../include/linux/gpt.js';
import { gpt } from '../../lib/gpt/gpt.js';
import type { gpt_iter } from '../../lib/gpt/iter.js';
import { hmm_pt_format } from '../../lib/gpt/formats.js';
import { preempt_disable, preempt_enable } from '../../lib/sim/sched.js';
import { KernelBugError } from '../../include/asm-generic/bug.js';
import { count_event } from '../../lib/sim/trace.js';

export { GPT_NO_DIR };

/** Bits of address the mirror covers: last = TASK_SIZE - 1 needs 47. */
function address_bits(last: number): number {
  return Math.max(13, Math.ceil(Math.log2(last + 1)));
}

/**
 * struct hmm_pt - one mirror (or device) page table.
 * @last: last address covered (TASK_SIZE - 1 for a mirror)
 * @gpt: the engine instance (directory slots, entries, locks)
 * @llevel: the leaf level (3 for 47 bits: shifts 39/30/21/12)
 */
export class hmm_pt {
  readonly gpt: gpt;
  readonly llevel: number;
  dead = false;
  /* @counter: the event counter entry writes go to (a mirror table, or a driver's own table) */
  constructor(readonly last: number, readonly counter = 'hmm_v8_pte_touched') {
    this.gpt = new gpt({ address_bits: address_bits(last), level_bits: 9, page_shift: 12 }, hmm_pt_format,
      { initialSlots: 8 });
    this.llevel = this.gpt.llevel;
  }
}

/**
 * hmm_pt_init() - a new, empty mirror table covering [0, last].
 * @counter: event counter of entry writes (default hmm_v8_pte_touched;
 *   a driver using hmm_pt for its own table names its own)
 * Context: allocates the root directory.
 */
export function hmm_pt_init(last: number = TASK_SIZE - 1, counter?: string): hmm_pt {
  return new hmm_pt(last, counter);
}

/**
 * hmm_pt_fini() - empty the table and free every directory but the root.
 * The caller made sure no iterator is live (directories held by one are
 * left; prune never frees a held directory). Valid entries left here are
 * a leak the caller should have cleared: they are counted.
 */
export function hmm_pt_fini(pt: hmm_pt): void {
  const left = pt.gpt.clear_range(0, pt.gpt.limit);
  if (left > 0) count_event('hmm_pt_fini_entries_left', left);
  pt.gpt.prune(0, pt.gpt.limit);
  pt.dead = true;
}

/**
 * struct hmm_pt_iter - a walker that holds references on the directories
 * it returns entry pointers into (so they cannot be freed under it).
 */
export class hmm_pt_iter {
  readonly it: gpt_iter;
  constructor(readonly pt: hmm_pt) {
    if (pt.dead) throw new KernelBugError('hmm_pt_iter_init() on a table after hmm_pt_fini()');
    this.it = pt.gpt.iter_init(0);
  }
}

/** hmm_pt_iter_init() - start iterating @pt. */
export function hmm_pt_iter_init(pt: hmm_pt): hmm_pt_iter {
  return new hmm_pt_iter(pt);
}

/** hmm_pt_iter_fini() - drop every directory reference the iterator holds. */
export function hmm_pt_iter_fini(iter: hmm_pt_iter): void {
  iter.it.fini();
}

/**
 * hmm_pt_iter_update() - the leaf entry for @addr, or GPT_NO_DIR when its
 * directory does not exist (v9: hmm_pt_iter_lookup). Lockless; the pointer
 * stays valid until the iterator moves to another leaf directory.
 */
export function hmm_pt_iter_update(iter: hmm_pt_iter, addr: number): number {
  return iter.it.lookup(addr);
}
export const hmm_pt_iter_lookup = hmm_pt_iter_update;

/**
 * hmm_pt_iter_fault() - like hmm_pt_iter_update(), creating the missing
 * directories (v9: hmm_pt_iter_populate). Context: takes directory locks.
 * Return: the entry pointer, or -ENOMEM.
 */
export function hmm_pt_iter_fault(iter: hmm_pt_iter, addr: number): number {
  return iter.it.populate(addr);
}
export const hmm_pt_iter_populate = hmm_pt_iter_fault;

/**
 * hmm_pt_level_next() - the first address after the directory entry at
 * @level covering @addr, clamped to @end.
 */
export function hmm_pt_level_next(pt: hmm_pt, addr: number, end: number, level: number): number {
  const next = pt.gpt.level_end(addr, level);
  return next < end ? next : end;
}

/**
 * hmm_pt_iter_next() - the next address at or after @addr + 1 page that
 * may have a valid entry: when the directory covering @addr is missing,
 * the end of the range that missing directory would cover.
 */
export function hmm_pt_iter_next(iter: hmm_pt_iter, addr: number, end: number): number {
  const g = iter.pt.gpt;
  const ptr = g.lookup_leaf(addr);
  if (ptr < 0) return end;
  const level = g.entry_level(ptr);
  if (level === g.llevel) return Math.min(end, addr - (addr % PAGE_SIZE) + PAGE_SIZE);
  return hmm_pt_level_next(iter.pt, addr, end, level);
}

/** hmm_pt_iter_walk() - walk [start, end) with gpt walk callbacks (v9). */
export function hmm_pt_iter_walk(iter: hmm_pt_iter, start: number, end: number, ops: gpt_walk_ops): number {
  return iter.it.walk(start, end, ops);
}

/** hmm_pt_directory_lock_ptr() - which lock protects the entry @ptr (patch 23): its directory slot. */
export function hmm_pt_directory_lock_ptr(pt: hmm_pt, ptr: number): number {
  return pt.gpt.dir_of(ptr);
}

/**
 * hmm_pt_directory_lock() - lock the directory holding @ptr. A spinlock:
 * preemption is off until hmm_pt_directory_unlock(), so a yield in between
 * is a BUG.
 */
export function hmm_pt_directory_lock(pt: hmm_pt, ptr: number): void {
  preempt_disable();
  pt.gpt.dir_lock(pt.gpt.dir_of(ptr));
}

/** hmm_pt_directory_unlock() - release the lock taken above. */
export function hmm_pt_directory_unlock(pt: hmm_pt, ptr: number): void {
  pt.gpt.dir_unlock(pt.gpt.dir_of(ptr));
  preempt_enable();
}

export function hmm_pt_iter_directory_lock(iter: hmm_pt_iter, ptr: number): void { hmm_pt_directory_lock(iter.pt, ptr); }
export function hmm_pt_iter_directory_unlock(iter: hmm_pt_iter, ptr: number): void { hmm_pt_directory_unlock(iter.pt, ptr); }

/** hmm_pt_load() - read an entry (READ_ONCE). Lockless. */
export function hmm_pt_load(pt: hmm_pt, ptr: number): number {
  return pt.gpt.load(ptr);
}

/**
 * hmm_pt_store() - write an entry; the directory's valid-entry count
 * follows (hmm_pt_iter_directory_ref/unref). Context: directory lock held.
 * Return: the previous value.
 */
export function hmm_pt_store(pt: hmm_pt, ptr: number, e: number): number {
  count_event(pt.counter);
  return pt.gpt.set(ptr, e);
}

/**
 * hmm_pt_set_dirty() - atomically set DIRTY on a valid entry without the
 * directory lock (what a driver does from update()). Return: the old low word.
 */
export function hmm_pt_set_dirty(pt: hmm_pt, ptr: number): number {
  return pt.gpt.set_bits(ptr, HMM_PTE_DIRTY);
}

/** hmm_pt_lookup() - lockless lookup without an iterator (short reads under the caller's locks). */
export function hmm_pt_lookup(pt: hmm_pt, addr: number): number {
  return pt.gpt.lookup(addr);
}

/** hmm_pt_prune() - free the empty directories in [start, end) (after an MUNMAP). */
export function hmm_pt_prune(pt: hmm_pt, start: number, end: number): number {
  return pt.gpt.prune(start, end);
}

/** hmm_pt_directories() - live directories, root included (leak checks). */
export function hmm_pt_directories(pt: hmm_pt): number {
  return pt.gpt.stats().slots_used;
}
