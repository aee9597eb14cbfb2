/*
 * lib/gpt/walk.ts - range operations: walk, clear_range, prune.
 *
 * walk() follows the generic walker Linus posted in the 2014 review: a
 * range walk that calls pre before entering a directory, leaf for each
 * entry that maps something, hole for each run that maps nothing, and post
 * after a directory, and leaves the locking to the caller's callbacks. The
 * walker itself is lockless in the hmm_pt way (HMM v8 patch 06/23,
 * hmm_pt_iter_walk): inside an epoch read section it reads each directory
 * link once, takes the child's reference with inc-not-zero, treats a dead
 * child as a hole, and (for readers under the 2014 serial rule) treats a
 * directory created by a faulter still in flight as a hole too.
 *
 * clear_range() is a walk whose pre/post take the leaf directory's lock.
 * prune() is the bottom-up pass of free_pgtables(): it kills a directory
 * whose refcount is exactly its link (no entries, no walkers) under the
 * parent's lock, then retires the slot past a grace period.
 *
 * What differs from the 2014 gpt: no walk-time locking bitmap and no
 * pde_post callback that frees; freeing is prune's job and never waits.
 */
import type { gpt_walk_ops } from '../../include/linux/gpt.js';
import type { gpt } from './gpt.js';
import { gpt_serial_young } from './epoch.js';
import { WARN_ON_ONCE } from '../../include/asm-generic/bug.js';

/* walk state, one per walk() call (never a module global) */
class gpt_walk_state {
  hole_start = -1;
  hole_level = 0;
  constructor(readonly pt: gpt, readonly ops: gpt_walk_ops, readonly snap: number) {}
}

function flush_hole(w: gpt_walk_state, upto: number): number {
  const s = w.hole_start;
  if (s < 0) return 0;
  w.hole_start = -1;
  if (w.ops.hole === undefined || upto <= s) return 0;
  return w.ops.hole(s, upto, w.hole_level) || 0;
}

/* the last level: the loop the walk spends its time in */
function walk_leaves(w: gpt_walk_state, base: number, i: number, addr: number,
                     level: number, start: number, end: number): number {
  const pt = w.pt, ops = w.ops, span = pt.span[level];
  const n = Math.min(pt.entries_per_dir - i, Math.ceil((end - addr) / span));
  for (let k = 0; k < n; k++, i++, addr += span) {
    const e = pt.load(base + i);
    if (e === 0) {
      if (w.hole_start < 0) { w.hole_start = addr < start ? start : addr; w.hole_level = level; }
      continue;
    }
    if (w.hole_start >= 0) {
      const r = flush_hole(w, addr < start ? start : addr);
      if (r) return r;
    }
    if (ops.leaf !== undefined) {
      const r = ops.leaf(base + i, addr, level, e);
      if (r) return r;
    }
  }
  return 0;
}

function walk_dir(w: gpt_walk_state, slot: number, level: number, start: number, end: number): number {
  const pt = w.pt, ops = w.ops, span = pt.span[level];
  const base = slot * pt.entries_per_dir;
  let i = (start / span) & pt.mask;
  let addr = Math.floor(start / span) * span;
  if (level === pt.llevel) return walk_leaves(w, base, i, addr, level, start, end);
  for (; i < pt.entries_per_dir && addr < end; i++, addr += span) {
    const e = pt.load(base + i);
    const lo = addr < start ? start : addr;
    if (e === 0) {
      if (w.hole_start < 0) { w.hole_start = lo; w.hole_level = level; }
      continue;
    }
    const hi = addr + span > end ? end : addr + span;
    let r: number;
    if (pt.is_link(e)) {
      const child = pt.link_slot(e);
      if (!pt.dir_get(child)) {               /* dying: absent */
        if (w.hole_start < 0) { w.hole_start = lo; w.hole_level = level; }
        continue;
      }
      if (w.snap !== 0 && gpt_serial_young(pt.dir_serial(child), w.snap)) {
        pt.dir_put(child);                    /* a faulter is still building it */
        if (w.hole_start < 0) { w.hole_start = lo; w.hole_level = level; }
        continue;
      }
      /* a pending hole stays open: it may continue inside the child */
      r = ops.pre !== undefined ? ops.pre(child, level + 1, lo, hi) || 0 : 0;
      if (r) { pt.dir_put(child); return r; }
      r = walk_dir(w, child, level + 1, lo, hi);
      if (ops.post !== undefined) {
        const r2 = ops.post(child, level + 1, lo, hi) || 0;
        if (!r) r = r2;
      }
      pt.dir_put(child);
      if (r) return r;
      continue;
    }
    r = flush_hole(w, lo);
    if (!r && ops.leaf !== undefined) r = ops.leaf(base + i, addr, level, e) || 0;
    if (r) return r;
  }
  return 0;
}

/**
 * gpt_walk_range() - walk [@start, @end) of @pt with @ops.
 * @snap: 0 to see every directory, or a serial snapshot (GPT_ITER_UPDATE
 *   iterators) under which young directories are holes
 * Context: see gpt.walk(). Return: 0 or the first non-zero callback value.
 */
export function gpt_walk_range(pt: gpt, start: number, end: number, ops: gpt_walk_ops, snap: number): number {
  if (start < 0) start = 0;
  if (end > pt.limit) end = pt.limit;
  if (!(start < end)) return 0;
  const w = new gpt_walk_state(pt, ops, snap);
  pt.rcu_read_lock();
  try {
    let r = ops.pre !== undefined ? ops.pre(pt.root, 0, start, end) || 0 : 0;
    if (r) return r;
    r = walk_dir(w, pt.root, 0, start, end);
    if (!r) r = flush_hole(w, end);
    if (ops.post !== undefined) {
      const r2 = ops.post(pt.root, 0, start, end) || 0;
      if (!r) r = r2;
    }
    return r;
  } finally {
    pt.rcu_read_unlock();
  }
}

/* clear_range(): pre/post lock each last-level directory */
class gpt_clear_ops implements gpt_walk_ops {
  cleared = 0;
  constructor(readonly pt: gpt, readonly start: number, readonly end: number) {}
  pre(slot: number, level: number): number {
    if (level === this.pt.llevel) this.pt.dir_lock(slot);
    return 0;
  }
  post(slot: number, level: number): number {
    if (level === this.pt.llevel) this.pt.dir_unlock(slot);
    return 0;
  }
  leaf(ptr: number, addr: number, level: number, _e: number): number {
    const pt = this.pt;
    if (level === pt.llevel) {
      pt.set(ptr, 0);
      this.cleared++;
      return 0;
    }
    if (addr < this.start || addr + pt.span[level] > this.end) {
      pt.warn();                 /* counted in stats().warnings, across threads */
      WARN_ON_ONCE(true, 'gpt clear_range: partial huge leaf (the caller must split it)');
      return 0;
    }
    const s = pt.dir_of(ptr);
    pt.dir_lock(s);
    const e = pt.load(ptr);
    if (e !== 0 && !pt.is_link(e)) { pt.set(ptr, 0); this.cleared++; }
    pt.dir_unlock(s);
    return 0;
  }
}

/** gpt_clear_range() - see gpt.clear_range(). */
export function gpt_clear_range(pt: gpt, start: number, end: number): number {
  const ops = new gpt_clear_ops(pt, start, end);
  gpt_walk_range(pt, start, end, ops, 0);
  return ops.cleared;
}

function prune_dir(pt: gpt, slot: number, level: number, start: number, end: number): number {
  const span = pt.span[level], base = slot * pt.entries_per_dir;
  let i = (start / span) & pt.mask;
  let addr = Math.floor(start / span) * span;
  let n = 0;
  for (; i < pt.entries_per_dir && addr < end; i++, addr += span) {
    const ptr = base + i;
    const e = pt.load(ptr);
    if (e === 0 || !pt.is_link(e)) continue;
    const child = pt.link_slot(e);
    if (level + 1 < pt.llevel) {
      if (!pt.dir_get(child)) continue;       /* dying: someone else prunes it */
      n += prune_dir(pt, child, level + 1, addr < start ? start : addr, addr + span > end ? end : addr + span);
      pt.dir_put(child);
    }
    if (pt.dir_refcount(child) === 1 && pt.unlink_child(ptr, child)) n++;
  }
  return n;
}

/** gpt_prune() - see gpt.prune(). */
export function gpt_prune(pt: gpt, start: number, end: number): number {
  if (start < 0) start = 0;
  if (end > pt.limit) end = pt.limit;
  if (!(start < end) || pt.llevel === 0) return 0;
  let n: number;
  pt.rcu_read_lock();
  try {
    n = prune_dir(pt, pt.root, 0, start, end);
  } finally {
    pt.rcu_read_unlock();
  }
  if (n > 0) pt.reclaim();
  return n;
}
