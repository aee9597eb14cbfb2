/*
 * tools/testing/fuzz/ops.ts - the operations of the differential fuzzer
 * and their seeded generator.
 *
 * An operation is a plain record: a kind, the process slot it runs in and
 * up to four integer arguments. Every argument is explicit (an arena page
 * offset, a length, a protection, a value the bytes are derived from), so
 * that a recorded sequence replays without its generator and any subset of
 * it is still a valid sequence: an operation whose slot holds no process,
 * or that needs a device file the slot has not opened, is skipped. That is
 * what lets the shrinker (shrink.ts) delete operations freely.
 *
 * A process, and every process forked from it, uses either dmirror
 * (mainline HMM) or hmm_dummy (HMM v8), never both (a child inherits its
 * parent's device entries): the two eras never ran in one kernel, and a v8
 * SWP_HMM entry is, to mainline's hmm_range_fault(), an unknown non-swap
 * entry that it refuses with -EFAULT as Linux's does for any such entry.
 *
 * hmm_dummy files are closed only by exit: closing one with data in its
 * device memory loses that data (v8's poisonous SWP_HMM entry, SIGBUS on
 * access, mm/hmm_v8/migrate_back.ts), which the model does not track.
 *
 * The generator looks at which slots are alive and which files they hold
 * (World) only to pick useful operations; the sequence it produces for a
 * seed is the same on every run because execution is deterministic.
 */
import { Rng } from '../../../lib/sim/rng.js';
import { PROT_NONE, PROT_READ, PROT_WRITE } from '../../../include/uapi/asm-generic/mman.js';
import {
  MADV_DONTNEED, MADV_PAGEOUT, MADV_WILLNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTFORK, MADV_DOFORK,
  MADV_COLLAPSE,
} from '../../../include/uapi/asm-generic/mman.js';
import { ARENA_PAGES, MAX_DEV_PAGES } from './model.js';

export const MAX_SLOTS = 4;

export type OpKind =
  | 'spawn' | 'fork' | 'exit'
  | 'mmap' | 'munmap' | 'mprotect' | 'madvise' | 'mremap'
  | 'load' | 'store' | 'atomic' | 'rbulk' | 'wbulk'
  | 'dm_open' | 'dm_close' | 'dm_read' | 'dm_write' | 'dm_to_dev' | 'dm_to_sys' | 'dm_snapshot'
  | 'dm_excl' | 'dm_check_excl' | 'dm_release' | 'dm_flags' | 'dm_read_unlockable'
  | 'du_open' | 'du_close' | 'du_read' | 'du_write' | 'du_migrate'
  | 'reclaim';

/** One operation: kind, slot, arguments (meaning per kind, see machine.ts). */
export interface Op { k: OpKind; s: number; a: number[] }

/** What the generator may look at. */
export interface GenView {
  alive(slot: number): boolean;
  hasDmirror(slot: number): boolean;
  hasDummy(slot: number): boolean;
  /* the era a slot's lineage uses: a fork child inherits its parent's device entries */
  era(slot: number): 'dm' | 'du' | null;
}

/** fmtOp() - one operation as text: "mmap s1 [0, 64, 3]". */
export function fmtOp(op: Op): string { return `${op.k} s${op.s} [${op.a.join(', ')}]`; }

export const PROTS = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE];
export const ADVICES = [MADV_DONTNEED, MADV_PAGEOUT, MADV_PAGEOUT, MADV_WILLNEED, MADV_HUGEPAGE,
  MADV_NOHUGEPAGE, MADV_DONTFORK, MADV_DOFORK, MADV_COLLAPSE];

/* weights of the operation kinds, per 1000 */
const WEIGHTS: [OpKind, number][] = [
  ['spawn', 6], ['fork', 14], ['exit', 8],
  ['mmap', 50], ['munmap', 20], ['mprotect', 40], ['madvise', 45], ['mremap', 25],
  ['load', 110], ['store', 150], ['atomic', 40], ['rbulk', 40], ['wbulk', 50],
  ['dm_open', 15], ['dm_close', 4], ['dm_read', 50], ['dm_write', 50], ['dm_to_dev', 70], ['dm_to_sys', 40],
  ['dm_snapshot', 20], ['dm_excl', 25], ['dm_check_excl', 10], ['dm_release', 4], ['dm_flags', 0],
  ['dm_read_unlockable', 10],
  ['du_open', 12], ['du_close', 0], ['du_read', 30], ['du_write', 30], ['du_migrate', 30],
  ['reclaim', 15],
];

/** Generator options. */
export interface GenOptions {
  /* weight of HMM_DMIRROR_FLAGS(FAIL_ALLOC); 0 by default, as drawing it changes every seed's sequence (inject.ts accepts what taking the flag returns) */
  failAlloc?: number;
  /* operation kinds never drawn (e.g. one that hits a known, open bug) */
  without?: OpKind[];
}

/** OpGen - seeded operation generator. */
export class OpGen {
  private readonly rng: Rng;
  private readonly table: [OpKind, number][];
  private readonly total: number;

  constructor(seed: number, opts: GenOptions = {}) {
    this.rng = new Rng(seed);
    this.table = WEIGHTS.map(([k, w]) => [k, opts.without?.includes(k) ? 0 : k === 'dm_flags' ? opts.failAlloc ?? 0 : w]);
    this.total = this.table.reduce((s, [, w]) => s + w, 0);
  }

  private pick(): OpKind {
    let r = this.rng.int(this.total);
    for (const [k, w] of this.table) { if (r < w) return k; r -= w; }
    return 'load';
  }

  private slot(v: GenView, want: (s: number) => boolean): number {
    const c: number[] = [];
    for (let s = 0; s < MAX_SLOTS; s++) if (want(s)) c.push(s);
    return c.length === 0 ? -1 : c[this.rng.int(c.length)];
  }

  /* a page range in the arena: mostly small, sometimes PMD-sized and aligned */
  private range(max = ARENA_PAGES): [number, number] {
    const r = this.rng.next();
    let n: number;
    if (r < 0.55) n = 1 + this.rng.int(8);
    else if (r < 0.85) n = 1 + this.rng.int(64);
    else n = 512 + this.rng.int(2) * this.rng.int(512);
    n = Math.min(n, max);
    let off = this.rng.chance(0.3) ? this.rng.int(2) * 512 : this.rng.int(ARENA_PAGES - n + 1);
    off = Math.min(off, ARENA_PAGES - n);
    return [off, n];
  }

  private addr(): number { return this.rng.int(ARENA_PAGES * 4096); }
  private value(): number { return this.rng.int(2 ** 31); }

  /** next() - the next operation, or null if no slot is alive and none may be spawned. */
  next(v: GenView): Op {
    for (;;) {
      const k = this.pick();
      const op = this.make(k, v);
      if (op !== null) return op;
    }
  }

  private make(k: OpKind, v: GenView): Op | null {
    const alive = (s: number) => v.alive(s);
    const free = this.slot(v, (s) => !v.alive(s));
    const any = this.slot(v, alive);
    if (any < 0 && k !== 'spawn') return null;
    const rng = this.rng;
    switch (k) {
      case 'spawn': return free < 0 ? null : { k, s: free, a: [] };
      case 'fork': return free < 0 ? null : { k, s: any, a: [free] };
      case 'exit': return { k, s: any, a: [] };
      case 'mmap': { const [o, n] = this.range(); return { k, s: any, a: [o, n, PROTS[1 + rng.int(3)]] }; }
      case 'munmap': { const [o, n] = this.range(); return { k, s: any, a: [o, n] }; }
      case 'mprotect': { const [o, n] = this.range(); return { k, s: any, a: [o, n, PROTS[rng.int(4)]] }; }
      case 'madvise': { const [o, n] = this.range(); return { k, s: any, a: [o, n, ADVICES[rng.int(ADVICES.length)]] }; }
      case 'mremap': {
        const [o, n] = this.range(256);
        const nn = Math.max(1, n + rng.int(9) - 4);
        return { k, s: any, a: [o, n, nn, rng.int(ARENA_PAGES - nn + 1)] };
      }
      case 'load': return { k, s: any, a: [this.addr(), [1, 2, 4][rng.int(3)]] };
      case 'store': return { k, s: any, a: [this.addr(), [1, 2, 4][rng.int(3)], this.value()] };
      case 'atomic': return { k, s: any, a: [this.addr() & ~3, this.value()] };
      case 'rbulk': case 'wbulk': return { k, s: any, a: [this.addr(), 1 + rng.int(3 * 4096), this.value()] };
      case 'reclaim': return { k, s: any, a: [1 + rng.int(512)] };
      case 'dm_open': { const s = this.slot(v, (x) => alive(x) && !v.hasDmirror(x) && v.era(x) !== 'du'); return s < 0 ? null : { k, s, a: [rng.int(4)] }; }
      case 'du_open': { const s = this.slot(v, (x) => alive(x) && !v.hasDummy(x) && v.era(x) !== 'dm'); return s < 0 ? null : { k, s, a: [rng.int(2)] }; }
      default: break;
    }
    if (k.startsWith('dm_')) {
      const s = this.slot(v, (x) => alive(x) && v.hasDmirror(x));
      if (s < 0) return null;
      const [o, n] = this.range(MAX_DEV_PAGES);
      return { k, s, a: [o, n, this.value()] };
    }
    const s = this.slot(v, (x) => alive(x) && v.hasDummy(x));
    if (s < 0) return null;
    if (k === 'du_migrate') { const [o, n] = this.range(MAX_DEV_PAGES); return { k, s, a: [o, n] }; }
    if (k === 'du_close') return { k, s, a: [] };
    const len = 1 + rng.int(MAX_DEV_PAGES * 4096 / 2);
    return { k, s, a: [this.addr(), len, this.value()] };
  }
}
