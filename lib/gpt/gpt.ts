/*
 * lib/gpt/gpt.ts - the generic lockless page table: lookup, populate, prune.
 *
 * Models the 2014 RFC "lib: lockless generic and arch independent page
 * table (gpt)" (lib/gpt.c) with the directory life cycle of hmm_pt in HMM
 * v8 (patch 06/23, mm/hmm_pt.c): one engine that stores any hardware's
 * entries, finds them without locks, creates missing directories under the
 * parent's lock, and frees empty ones after a grace period. The rules
 * (refcount, lock order, memory ordering) are written once, in
 * include/linux/gpt.ts. Entries, links, references and locks are in
 * lib/gpt/entry.ts, range operations in walk.ts, the reference-holding
 * iterator in iter.ts, the pool in storage.ts, grace periods in epoch.ts.
 *
 * What differs from the 2014 patch: locks are real (acquire/release), not
 * bitops; no synchronize_rcu() on the fault or update path; no per-lock
 * bitmap of held directories (walkers hold counted references as in
 * hmm_pt); pruning is explicit (prune()) rather than a side effect of
 * dropping the last reference, which keeps populate-then-set race-free
 * for callers that do not hold references (mm/ under its own locks).
 * Private tables add a paging-structure cache (lib/gpt/pwc.ts) that hmm_pt
 * did not have: last-level lookups skip the upper levels.
 */
import {
  GPT_NO_DIR, type gpt_format, type gpt_geometry, type gpt_opts, type gpt_shared,
  type gpt_stats, type gpt_walk_ops,
} from '../../include/linux/gpt.js';
import { EEXIST, EFAULT } from '../../include/uapi/asm-generic/errno.js';
import { gpt_base } from './entry.js';
import { BUG } from '../../include/asm-generic/bug.js';
import {
  gpt_epoch_enter, gpt_epoch_exit, gpt_epoch_retire_tag, gpt_epoch_safe,
  gpt_reader_register, gpt_reader_unregister,
} from './epoch.js';
import {
  HDR_CAPACITY, HDR_FREE, HDR_GROWS, HDR_LEVEL_COUNT, HDR_MAX_SLOTS, HDR_RECLAIMED,
  HDR_RETIRED, HDR_UAF, HDR_USED, HDR_WARN, HDR_WORDS, M_BASE_F64, M_LEVEL, M_PARENT,
  M_PINDEX, M_REF, M_SERIAL, META_WORDS,
} from './shm.js';
import { gpt_clear_range, gpt_prune, gpt_walk_range } from './walk.js';
import { gpt_iter } from './iter.js';
import { gpt_pwc } from './pwc.js';
import type {} from '../../include/linux/gpt.js';   /* the declaration completed below */

/**
 * struct gpt - one page table (struct gpt of the 2014 RFC, struct hmm_pt).
 * Fields and primitives: lib/gpt/entry.ts (gpt_base).
 */
export class gpt extends gpt_base {
  /* paging-structure cache (private tables only; lib/gpt/pwc.ts) */
  private readonly pwc: gpt_pwc | null;
  /* this thread's epoch reader slot and read-section nesting */
  private rslot = -1;
  private rcu_nest = 0;

  /**
   * gpt() - create a table, or attach to one another thread created.
   * @geom: the geometry (must match the shared header when attaching)
   * @fmt: the entry format (workers: the same registered format)
   * @opts: struct gpt_opts; opts.smp to share it later, opts.shared to attach
   * Context: allocates the pool and the root directory (not when attaching).
   * Throws on an impossible geometry or an inconsistent format (BUG).
   */
  constructor(geom: gpt_geometry, fmt: gpt_format, opts: gpt_opts = {}) {
    super(geom, fmt, opts);
    const L = this.layout;
    this.pwc = this.smp || L.llevel === 0 ? null : new gpt_pwc(L.span[L.llevel], L.entries);
  }

  /* ---- lookup and populate ---- */

  /**
   * lookup() - the entry at @level covering @addr (hmm_pt_iter_lookup
   * without the references).
   * @addr: address; @level: 0..llevel, default llevel (the PTE)
   *
   * Returns the pointer at exactly @level if every entry above it links a
   * directory. A none entry above, or a leaf above (a huge page or a swap
   * entry at PMD level), stops the lookup: GPT_NO_DIR. Callers that care
   * about huge leaves look up level by level (load(lookup(addr, PMD)))
   * or use lookup_leaf().
   * Context: lockless, no reference taken. Private tables: the caller's
   * locks keep the path alive. smp tables: call inside rcu_read_lock(), and
   * the pointer is valid until rcu_read_unlock(); to keep it longer or to
   * write through it use a gpt_iter, which holds references.
   * Return: the entry pointer, or GPT_NO_DIR (also for addresses outside
   * the table).
   */
  lookup(addr: number, level?: number): number {
    const c = this.pwc;
    if (c !== null && (level === undefined || level === this.llevel)) {
      const key = Math.floor(addr * c.inv);
      const h = key & c.mask;
      if (c.tag[h] === key) return c.base[h] + ((addr * c.pinv) & c.emask);
    }
    return this.lookup_walk(addr, level === undefined ? this.llevel : level);
  }

  /* lookup() past the paging-structure cache: walk from the root */
  private lookup_walk(addr: number, level: number): number {
    if (!(addr >= 0 && addr < this.limit) || !(level >= 0 && level <= this.llevel)) return GPT_NO_DIR;
    let slot = this.root;
    for (let l = 0; l < level; l++) {
      slot = this.child_at(slot * this.entries_per_dir + ((addr / this.span[l]) & this.mask));
      if (slot < 0) return GPT_NO_DIR;
    }
    if (this.pwc !== null && level === this.llevel && level > 0)
      this.pwc.fill(addr, slot, this.hdr[HDR_LEVEL_COUNT + level]);
    return slot * this.entries_per_dir + ((addr / this.span[level]) & this.mask);
  }

  /**
   * lookup_leaf() - the deepest entry on the path to @addr: the last-level
   * entry, or a huge leaf, or the none / non-link entry where the path
   * stops. entry_level(ptr) tells which; level_end(addr, entry_level(ptr))
   * is where a hole ends.
   * Context: as lookup(). Return: the pointer, or GPT_NO_DIR out of range.
   */
  lookup_leaf(addr: number): number {
    if (!(addr >= 0 && addr < this.limit)) return GPT_NO_DIR;
    let slot = this.root;
    for (let l = 0; ; l++) {
      const ptr = slot * this.entries_per_dir + ((addr / this.span[l]) & this.mask);
      if (l === this.llevel) return ptr;
      const child = this.child_at(ptr);
      if (child < 0) return ptr;
      slot = child;
    }
  }

  /**
   * populate() - create the missing directories down to @level for @addr
   * (hmm_pt_iter_populate / pte_alloc). Each is installed under its parent's
   * lock; if another thread installed one first, that one is used.
   * @addr: address; @level: 1..llevel (default llevel)
   * Context: takes directory locks and the pool lock; may grow the pool.
   * No reference is kept: on smp tables use gpt_iter.populate() so that a
   * concurrent prune() cannot free the directory before the caller's set().
   * Return: the entry pointer at @level; -ENOMEM when the pool is at
   * max_slots (nothing was changed for the missing level; directories
   * already created stay and are pruned normally); -EEXIST when a leaf
   * (huge page, swap entry) sits above @level, the caller handles it;
   * -EFAULT for an address outside the table.
   */
  populate(addr: number, level: number = this.llevel): number {
    const c = this.pwc;
    if (c !== null && level === this.llevel) {
      const key = Math.floor(addr * c.inv);
      const h = key & c.mask;
      if (c.tag[h] === key) return c.base[h] + ((addr * c.pinv) & c.emask);
    }
    return this.populate_walk(addr, level);
  }

  private populate_walk(addr: number, level: number): number {
    if (!(addr >= 0 && addr < this.limit)) return -EFAULT;
    if (!(level >= 0 && level <= this.llevel)) BUG(`populate() level ${level}`);
    let slot = this.root;
    for (let l = 0; l < level; l++) {
      const ptr = slot * this.entries_per_dir + ((addr / this.span[l]) & this.mask);
      let child = this.child_at(ptr);
      if (child < 0) {
        if (this.load(ptr) !== 0) return -EEXIST;
        child = this.install_child(ptr, l, 0, false);
        if (child < 0) return child;
      }
      slot = child;
    }
    if (this.pwc !== null && level === this.llevel && level > 0)
      this.pwc.fill(addr, slot, this.hdr[HDR_LEVEL_COUNT + level]);
    return slot * this.entries_per_dir + ((addr / this.span[level]) & this.mask);
  }

  /**
   * install_child() - create the directory the none entry @ptr at @level
   * should link, unless someone else did first.
   * @serial: faulter serial to stamp (0: old at once)
   * @ref: take a walker reference on the result for the caller
   * Context: takes the lock of dir_of(ptr), then the pool lock.
   * Return: the child slot (new or the winner's), -ENOMEM, or -EEXIST if a
   * leaf appeared at @ptr meanwhile.
   */
  install_child(ptr: number, level: number, serial: number, ref: boolean): number {
    const child = this.pool_alloc();
    if (child < 0) return child;
    const parent = ptr >>> this.lbits;
    this.dir_lock(parent);
    const cur = this.child_at(ptr);
    if (cur >= 0 || this.load(ptr) !== 0) {
      /* someone else installed a directory (or a leaf) first: use theirs */
      if (cur >= 0 && ref && !this.dir_get(cur)) BUG('linked directory dead under its parent lock');
      this.dir_unlock(parent);
      this.pool_free_unused(child);
      return cur >= 0 ? cur : -EEXIST;
    }
    const m = child * META_WORDS, meta = this.meta;
    meta[m + M_LEVEL] = level + 1;
    meta[m + M_PARENT] = parent;
    meta[m + M_PINDEX] = ptr & this.mask;
    this.metaf[child * 8 + M_BASE_F64] = this.entry_addr(ptr);
    Atomics.store(meta, m + M_SERIAL, serial);
    Atomics.store(meta, m + M_REF, ref ? 2 : 1);
    Atomics.add(this.hdr, HDR_LEVEL_COUNT + level + 1, 1);
    this.xchg_raw(ptr, this.format.pde_make(child, level));   /* publish */
    this.dir_unlock(parent);
    return child;
  }

  /**
   * unlink_child() - prune's kill: if directory @child, linked at @ptr, is
   * empty and unreferenced (ref 1), mark it dead, clear the link and retire
   * the slot for recycling after a grace period.
   * Context: takes the lock of dir_of(ptr), then the pool lock.
   * Return: true if the directory died.
   */
  unlink_child(ptr: number, child: number): boolean {
    const parent = ptr >>> this.lbits;
    this.dir_lock(parent);
    let dead = false;
    if (this.child_at(ptr) === child &&
        Atomics.compareExchange(this.meta, child * META_WORDS + M_REF, 1, 0) === 1) {
      this.xchg_raw(ptr, 0);
      if (this.pwc !== null && this.meta[child * META_WORDS + M_LEVEL] === this.llevel)
        this.pwc.invalidate(this.metaf[child * 8 + M_BASE_F64]);
      this.pool_retire(child, gpt_epoch_retire_tag(this.hdr));
      dead = true;
    }
    this.dir_unlock(parent);
    return dead;
  }

  /* ---- grace periods ---- */

  /**
   * rcu_read_lock() - enter an epoch read section (nests).
   * Context: inside, slots reachable from links read here are not recycled.
   */
  rcu_read_lock(): void {
    if (this.rcu_nest++ !== 0) return;
    if (this.rslot < 0) {
      this.rslot = gpt_reader_register(this.hdr);
      if (this.rslot < 0) BUG('more than GPT_MAX_READERS reader threads');
    }
    gpt_epoch_enter(this.hdr, this.rslot);
  }

  /** rcu_read_unlock() - leave the read section. */
  rcu_read_unlock(): void {
    if (this.rcu_nest <= 0) BUG('rcu_read_unlock() without rcu_read_lock()');
    if (--this.rcu_nest === 0) gpt_epoch_exit(this.hdr, this.rslot);
  }

  /** reclaim() - recycle retired directories whose grace period ended. Return: count. */
  reclaim(): number { return this.pool_reclaim(); }

  /**
   * synchronize() - wait until every directory retired so far can be
   * recycled, and recycle it (synchronize_rcu; for tests and teardown).
   * Context: must not be inside a read section; blocks (Atomics.wait).
   */
  synchronize(): void {
    if (this.rcu_nest > 0) BUG('synchronize() inside a read section');
    const tag = gpt_epoch_retire_tag(this.hdr);
    const nap = new Int32Array(new SharedArrayBuffer(4));
    while (!gpt_epoch_safe(this.hdr, tag)) Atomics.wait(nap, 0, 0, 1);
    this.pool_reclaim();
  }

  /* ---- range operations (lib/gpt/walk.ts) and iterators (lib/gpt/iter.ts) ---- */

  /**
   * walk() - call @ops over [@start, @end): pre / leaf / hole / post
   * (struct gpt_walk_ops). Sees every directory (no serial rule; a
   * gpt_iter with GPT_ITER_UPDATE walks with it).
   * Context: lockless; holds a reference on each directory on its path and
   * an epoch read section for the duration.
   * Return: 0, or the first non-zero value a callback returned.
   */
  walk(start: number, end: number, ops: gpt_walk_ops): number {
    return gpt_walk_range(this, start, end, ops, 0);
  }

  /**
   * clear_range() - set every leaf entry in [@start, @end) to none
   * (zap_pte_range without the struct page work). A huge leaf only partly
   * inside the range is left alone and counted as a warning: the caller
   * splits it first.
   * Context: takes each directory's lock while clearing it.
   * Return: the number of entries cleared.
   */
  clear_range(start: number, end: number): number {
    return gpt_clear_range(this, start, end);
  }

  /**
   * prune() - free the directories inside [@start, @end) that are empty and
   * that no walker holds (free_pgtables). Bottom-up, so a parent emptied by
   * its children's removal goes too; the root stays. Freed slots are
   * recycled only after a grace period.
   * Context: takes directory locks and the pool lock; never waits.
   * Return: the number of directories freed.
   */
  prune(start: number, end: number): number {
    return gpt_prune(this, start, end);
  }

  /**
   * iter_init() - a reference-holding iterator (hmm_pt_iter_init).
   * @flags: 0, GPT_ITER_FAULT (a faulter: serial rule, new directories young
   *   until fini) or GPT_ITER_UPDATE (a reader ignoring young directories)
   * Return: the iterator; call fini() when done.
   */
  iter_init(flags = 0): gpt_iter { return new gpt_iter(this, flags); }

  /* ---- sharing and accounting ---- */

  /**
   * share() - the buffers a worker passes to new gpt(geom, fmt, {shared}).
   * Context: smp tables only.
   */
  share(): gpt_shared {
    if (!this.smp) BUG('share() needs a table created with { smp: true }');
    return { hdr: this.hdr_sab, meta: this.meta_sab, entries: this.ent_sab,
      geometry: this.geometry, format: this.format.name };
  }

  /** detach() - give this thread's reader slot back (worker exit). */
  detach(): void {
    if (this.rcu_nest > 0) BUG('detach() inside a read section');
    if (this.rslot >= 0) gpt_reader_unregister(this.hdr, this.rslot);
    this.rslot = -1;
  }

  /** warn() - record a WARN_ON_ONCE-like event (stats().warnings). */
  warn(): void { Atomics.add(this.hdr, HDR_WARN, 1); }

  /** note_uaf() - record a directory found recycled under a reference. */
  note_uaf(): void { Atomics.add(this.hdr, HDR_UAF, 1); }

  /** stats() - struct gpt_stats: slots, host bytes, counters. */
  stats(): gpt_stats {
    const h = this.hdr;
    const per: number[] = [];
    for (let l = 0; l < this.levels; l++) per.push(Atomics.load(h, HDR_LEVEL_COUNT + l));
    const bytes_entries = this.ent_sab.byteLength, bytes_meta = this.meta_sab.byteLength;
    return {
      slots_used: Atomics.load(h, HDR_USED),
      slots_retired: Atomics.load(h, HDR_RETIRED),
      slots_free: Atomics.load(h, HDR_FREE),
      capacity: Atomics.load(h, HDR_CAPACITY),
      max_slots: h[HDR_MAX_SLOTS],
      dirs_per_level: per,
      bytes: bytes_entries + bytes_meta + HDR_WORDS * 4,
      bytes_entries, bytes_meta,
      grows: Atomics.load(h, HDR_GROWS),
      reclaimed: Atomics.load(h, HDR_RECLAIMED),
      uaf: Atomics.load(h, HDR_UAF),
      warnings: Atomics.load(h, HDR_WARN),
    };
  }

}

/* struct gpt: include/linux/gpt.ts declares it with two fields; its members are this class's */
type gpt_class = gpt;
declare module '../../include/linux/gpt.js' {
  interface gpt extends gpt_class {}
}
