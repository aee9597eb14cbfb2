/*
 * lib/gpt/iter.ts - the reference-holding iterator: lookup and populate
 * for threads that share a table.
 *
 * Models hmm_pt_iter of HMM v8 (patch 06/23; v9 names hmm_pt_iter_lookup,
 * hmm_pt_iter_populate, hmm_pt_iter_walk) with the 2014 gpt's lock_fault /
 * lock_update serial rule folded into its flags:
 *
 *  - the iterator caches, per level, the directory it "protects" (holds a
 *    reference on), so consecutive lookups in one directory cost no atomic;
 *    moving to an address another directory covers drops the references
 *    that do not cover it, deepest first, and takes new ones with
 *    inc-not-zero inside an epoch read section;
 *  - a dying directory (inc-not-zero fails) is absent to lookup and is
 *    replaced by populate (under the parent's lock, where the pruner has
 *    already cleared the link);
 *  - GPT_ITER_FAULT: the iterator is a faulter; it takes a serial, and the
 *    directories it creates are stamped with it (young) until fini();
 *  - GPT_ITER_UPDATE: the iterator is a reader; it snapshots the oldest
 *    in-flight serial and treats younger directories as absent.
 *
 * An entry pointer returned by lookup() or populate() stays valid, and its
 * directory stays linked, until the iterator moves to a directory that does
 * not cover it, or fini(). The holder may lock that directory and set().
 *
 * What differs from hmm_pt: dropping the last walker reference never kills
 * a directory here (prune() does); the 2014 per-iterator "locked" bitmap is
 * replaced by these counted references, as Jerome's later versions did.
 */
import {
  GPT_ITER_FAULT, GPT_ITER_UPDATE, GPT_NO_DIR, type gpt_walk_ops,
} from '../../include/linux/gpt.js';
import { EEXIST, EFAULT } from '../../include/uapi/asm-generic/errno.js';
import type { gpt } from './gpt.js';
import { gpt_dir_span } from './geometry.js';
import {
  gpt_serial_fault_begin, gpt_serial_fault_end, gpt_serial_snapshot, gpt_serial_young,
} from './epoch.js';
import { gpt_walk_range } from './walk.js';
import { M_SERIAL, META_WORDS } from './shm.js';
import { BUG } from '../../include/asm-generic/bug.js';

export class gpt_iter {
  readonly pt: gpt;
  readonly flags: number;
  /** faulter serial stamped on created directories (0: not a faulter) */
  readonly serial: number;
  /** reader snapshot of the oldest in-flight serial (0: sees everything) */
  readonly snap: number;
  /* protected directory per level (index 0, the root, is never held) */
  private readonly ptd: Int32Array;
  private readonly gen: Int32Array;
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;
  /* directories this faulter created (to clear their young stamp) */
  private readonly created: number[] = [];
  private done = false;

  /**
   * gpt_iter() - see gpt.iter_init().
   * Context: GPT_ITER_FAULT takes the fault lock briefly.
   */
  constructor(pt: gpt, flags: number) {
    this.pt = pt;
    this.flags = flags;
    this.serial = (flags & GPT_ITER_FAULT) !== 0 ? gpt_serial_fault_begin(pt.hdr) : 0;
    this.snap = (flags & GPT_ITER_FAULT) === 0 && (flags & GPT_ITER_UPDATE) !== 0
      ? gpt_serial_snapshot(pt.hdr) : 0;
    this.ptd = new Int32Array(pt.levels).fill(-1);
    this.gen = new Int32Array(pt.levels);
    this.lo = new Float64Array(pt.levels);
    this.hi = new Float64Array(pt.levels);
  }

  /**
   * lookup() - the entry at @level covering @addr, holding references on
   * every directory above it (hmm_pt_iter_lookup).
   * Context: lockless. Return: the pointer, or GPT_NO_DIR when a directory
   * is missing, dying, young (GPT_ITER_UPDATE) or a leaf sits above.
   */
  lookup(addr: number, level: number = this.pt.llevel): number {
    return this.descend(addr, level, false);
  }

  /**
   * populate() - like lookup(), creating missing directories
   * (hmm_pt_iter_populate); faulters stamp them with their serial.
   * Context: takes directory locks and the pool lock.
   * Return: the pointer; -ENOMEM; -EEXIST (a leaf above @level); -EFAULT.
   */
  populate(addr: number, level: number = this.pt.llevel): number {
    return this.descend(addr, level, true);
  }

  /**
   * walk() - gpt.walk() under this iterator's serial snapshot.
   * Return: as gpt.walk().
   */
  walk(start: number, end: number, ops: gpt_walk_ops): number {
    return gpt_walk_range(this.pt, start, end, ops, this.snap);
  }

  /**
   * fini() - drop every reference; a faulter makes its directories old and
   * leaves the in-flight set (gpt_unlock_fault / hmm_pt_iter_fini).
   * Context: GPT_ITER_FAULT takes the fault lock briefly.
   */
  fini(): void {
    if (this.done) return;
    this.done = true;
    this.release_from(1);
    if (this.serial === 0) return;
    const meta = this.pt.meta;
    for (const s of this.created)     /* only if the slot still carries our stamp */
      Atomics.compareExchange(meta, s * META_WORDS + M_SERIAL, this.serial, 0);
    gpt_serial_fault_end(this.pt.hdr, this.serial);
  }

  private descend(addr: number, level: number, create: boolean): number {
    const pt = this.pt;
    if (!(addr >= 0 && addr < pt.limit)) return create ? -EFAULT : GPT_NO_DIR;
    if (this.done || !(level >= 0 && level <= pt.llevel)) BUG('gpt: iterator misuse');
    let l = 1;
    while (l <= level && this.ptd[l] >= 0 && addr >= this.lo[l] && addr < this.hi[l]) l++;
    if (l > level) return (level === 0 ? pt.root : this.ptd[level]) * pt.entries_per_dir + pt.index(addr, level);
    this.release_from(l);
    let slot = l === 1 ? pt.root : this.ptd[l - 1];
    pt.rcu_read_lock();
    try {
      for (; l <= level; l++) {
        const ptr = slot * pt.entries_per_dir + pt.index(addr, l - 1);
        let child = pt.child_at(ptr);
        const linked = child >= 0;
        if (linked && !pt.dir_get(child)) child = -1;            /* dying */
        if (child >= 0 && this.snap !== 0 && gpt_serial_young(pt.dir_serial(child), this.snap)) {
          pt.dir_put(child);
          return GPT_NO_DIR;
        }
        if (child < 0) {
          if (!create) return GPT_NO_DIR;
          if (!linked && pt.load(ptr) !== 0) return -EEXIST;
          child = pt.install_child(ptr, l - 1, this.serial, true);
          if (child < 0) return child;
          if (this.serial !== 0 && pt.dir_serial(child) === this.serial) this.created.push(child);
        }
        this.hold(l, child);
        slot = child;
      }
    } finally {
      pt.rcu_read_unlock();
    }
    return slot * pt.entries_per_dir + pt.index(addr, level);
  }

  private hold(l: number, slot: number): void {
    const pt = this.pt;
    this.ptd[l] = slot;
    this.gen[l] = pt.dir_gen(slot);
    this.lo[l] = pt.dir_base(slot);
    this.hi[l] = this.lo[l] + gpt_dir_span(pt.layout, l);
  }

  /* drop protected directories at levels >= l, deepest first */
  private release_from(l: number): void {
    const pt = this.pt;
    for (let k = pt.levels - 1; k >= l; k--) {
      const s = this.ptd[k];
      if (s < 0) continue;
      if (pt.dir_gen(s) !== this.gen[k]) pt.note_uaf();   /* recycled under our reference */
      pt.dir_put(s);
      this.ptd[k] = -1;
    }
  }
}
