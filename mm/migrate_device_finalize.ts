/*
 * mm/migrate_device_finalize.ts - the last step of a device migration:
 * migrate_vma_finalize() and migrate_device_finalize().
 *
 * Models __migrate_device_finalize() of mm/migrate_device.c (Linux 6.x).
 * For each entry Linux releases a destination that is not used, puts the
 * winner (the destination while the entry still migrates, else the
 * source) on the LRU, replaces the migration entries by mappings of the
 * winner with remove_migration_ptes(), then unlocks and releases the
 * source and the destination.
 *
 * Model split, the finalize batch (finalize_batch_prepare() and its two
 * companions): Linux takes the anon_vma lock inside each
 * remove_migration_ptes() call (rmap_walk_anon -> anon_vma_lock_read), a
 * few atomic instructions; the simulated rwsem keeps per-thread reader
 * bookkeeping (Map updates, lockdep, a preemption point) on every take and
 * release. A run of up to FINALIZE_BATCH consecutive entries whose
 * folios are order-0 and share one anon_vma is finalized in three passes
 * that keep Linux's per-entry steps and their order inside each entry:
 *   1. release unused destinations, folio_add_lru() each winner (the
 *      winners queued in a folio_batch and moved to the LRU with
 *      folio_batch_move_lru(fb, lru_add): one lru_lock hold per lruvec
 *      run, what Linux's folio_add_lru() does through its per-CPU
 *      lru_add batch; the batch takes no reference, see mm/swap.ts);
 *   2. the anon_vma rwsem for read ONCE (down_read_trylock(), or the
 *      sleeping down_read() where Linux's remove_migration_ptes() would
 *      sleep), then remove_migration_ptes()'s rmap walk for each entry
 *      (per folio, per VMA, each PTE under its own PTE lock), up_read();
 *      the remove_migration_ptes counter gets the batch's total at once;
 *   3. folio_unlock() and folio_put() of each source, then of its
 *      destination.
 * Across entries the order differs from Linux's: a source stays locked
 * until the whole run's mappings are back. Nothing can see it: the passes
 * do not sleep (only preemption points, in exploration runs, switch
 * threads), and a locked, unmapped, isolated source is what a pfn walker
 * finds during Linux's own remove_migration_ptes(). Entries that do not
 * fit (large folios, file pages, a source without mapping) take the
 * per-entry path, finalize_entry(), which is Linux's loop body.
 *
 * Model split (session 8, mig4k): pass 3's folio_unlock() and put_page()
 * of the batch's order-0 folios are done by unlock_put() on the folio's
 * mem_section arrays (clear PG_locked, drop the reference, put_page()'s
 * preemption point), the helpers themselves only where something is
 * rare (waiters to wake, an unlocked folio's BUG, the last reference).
 * struct_page_direct(false) (TEST ONLY, mm/internal.ts) keeps the helpers, and
 * test/mm/migrate_device_collect.test.ts compares the two.
 * Documentation/vm/hmm.txt Part 17.5, "session 8, mig4k".
 */
import { SECTION_MASK, type page, type anon_vma, type vm_area_struct } from '../include/linux/mm_types.js';
import { MIGRATE_PFN_VALID, MIGRATE_PFN_MIGRATE, migrate_pfn_to_page } from '../include/linux/migrate.js';
import { is_zone_device_page } from '../include/linux/memremap.js';
import { might_sleep, preempt_point, type Sleepable } from '../lib/sim/sched.js';
import { PG_locked } from '../include/linux/page-flags.js';
import { down_read, down_read_trylock, up_read } from '../lib/locking/rwsem.js';
import { count_event } from '../lib/sim/trace.js';
import { BUG } from '../include/asm-generic/bug.js';
import { put_page } from './page_alloc.js';
import { folio_unlock } from './filemap.js';
import { struct_page_paths } from './internal.js';
import { folio_add_lru, folio_batch_move_lru, lru_add } from './swap.js';
import { folio_batch_init, folio_batch_add, type folio_batch } from '../include/linux/pagevec.js';
import { remove_migration_ptes, remove_migration_ptes_trylock, remove_migration_ptes_walk } from './migrate.js';

/* entries finalized under one take of the anon_vma rwsem (the model split above) */
export const FINALIZE_BATCH = 64;
let batch_limit = FINALIZE_BATCH;

/**
 * finalize_batch_max() - TEST ONLY: the most entries one finalize batch
 * takes (0: every entry through Linux's per-entry loop body), so that a
 * test can run the same migration both ways and compare the results.
 * Return: the previous limit.
 */
export function finalize_batch_max(n: number): number {
  const old = batch_limit;
  batch_limit = Math.max(0, Math.min(FINALIZE_BATCH, n));
  return old;
}

function release_dst(d: page, fault_folio: page | null): void {
  if (fault_folio?.pfn === d.pfn) BUG('the faulting page used as a destination');
  folio_unlock(d);
  put_page(d);
}

/* finalize_entry() - Linux's loop body for entry @i (the path of every entry the batch does not take) */
function* finalize_entry(src: Float64Array | number[], dst: Float64Array | number[], i: number,
                         fault_folio: page | null): Sleepable {
  const newp = migrate_pfn_to_page(dst[i]);
  const p = migrate_pfn_to_page(src[i]);
  let d = newp !== null ? newp.compound_head : null;
  if (p === null) {
    if (d !== null) release_dst(d, fault_folio);
    return;
  }
  const s = p.compound_head;
  if (!(src[i] & MIGRATE_PFN_MIGRATE) || d === null) {
    if (d !== null) release_dst(d, fault_folio);
    d = s;
  }
  if (!is_zone_device_page(d)) folio_add_lru(d);
  if (remove_migration_ptes_trylock(s, d) < 0) yield* remove_migration_ptes(s, d);
  if (fault_folio?.pfn !== s.pfn) folio_unlock(s);
  put_page(s);
  if (d.pfn !== s.pfn) release_dst(d, fault_folio);
}

/*
 * One finalize call's batch: per entry the source folio (null for a hole),
 * the winner, and the destination when it is not used. Per call, not
 * shared: the call may sleep between the passes (down_read()).
 */
interface finalize_batch {
  readonly src: (page | null)[];
  readonly win: (page | null)[];
  readonly lost: (page | null)[];
  anon_vma: anon_vma | null;            /* the run's anon_vma; null when it holds only holes */
  readonly lru: folio_batch;            /* winners for folio_add_lru(), moved to the LRU together */
}

function finalize_batch_alloc(npages: number): finalize_batch {
  const n = Math.min(npages, FINALIZE_BATCH);
  return {
    src: new Array<page | null>(n).fill(null), win: new Array<page | null>(n).fill(null),
    lost: new Array<page | null>(n).fill(null), anon_vma: null, lru: folio_batch_init(),
  };
}

/*
 * finalize_batch_prepare() - pass 1 of the finalize batch from entry @i:
 * find the run (order-0 folios of one anon_vma; holes ride along), release
 * the destinations not used and put the winners on the LRU. Return: the
 * run's length (b.anon_vma its anon_vma, null when only holes), or 0
 * (nothing done) when entry @i needs finalize_entry().
 */
function finalize_batch_prepare(b: finalize_batch, src: Float64Array | number[], dst: Float64Array | number[],
                                i: number, npages: number, fault_folio: page | null): number {
  let av: anon_vma | null = null, n = 0;
  const max = Math.min(b.src.length, batch_limit);
  for (; n < max && i + n < npages; n++) {
    const j = i + n;
    const newp = migrate_pfn_to_page(dst[j]);
    const d = newp !== null ? newp.compound_head : null;
    const p = migrate_pfn_to_page(src[j]);
    if (p === null) {
      b.src[n] = null;
      b.win[n] = null;
      b.lost[n] = d;
      continue;
    }
    const s = p.compound_head;
    const w = (src[j] & MIGRATE_PFN_MIGRATE) && d !== null ? d : s;
    if (s.order !== 0 || w.order !== 0) break;
    const m = s.mapping !== null ? s.mapping : w.mapping;     /* as remove_migration_ptes() finds it */
    if (m === null || m.kind !== 'anon' || (av !== null && m !== av)) break;
    av = m;
    b.src[n] = s;
    b.win[n] = w;
    b.lost[n] = w === s ? d : null;
  }
  b.anon_vma = av;
  const lru = b.lru;
  for (let k = 0; k < n; k++) {
    const lost = b.lost[k], w = b.win[k];
    b.lost[k] = null;
    if (lost !== null) release_dst(lost, fault_folio);
    /* folio_add_lru(w): queued, and moved under one lru_lock hold per lruvec (Linux's lru_add batch) */
    if (w !== null && !is_zone_device_page(w) && folio_batch_add(lru, w) === 0) folio_batch_move_lru(lru, lru_add);
  }
  if (lru.nr !== 0) folio_batch_move_lru(lru, lru_add);
  return n;
}

/*
 * finalize_batch_restore() - pass 2: remove_migration_ptes()'s walk for
 * each entry of the batch, the caller having taken the anon_vma rwsem
 * (dropped here). Return: mappings restored.
 */
function finalize_batch_restore(b: finalize_batch, n: number, av: anon_vma): number {
  const vmas: vm_area_struct[] = [...av.vmas];      /* stable while the rwsem is held */
  let restored = 0;
  for (let k = 0; k < n; k++) {
    const s = b.src[k];
    if (s !== null) restored += remove_migration_ptes_walk(s, b.win[k]!, vmas);
  }
  if (av.rwsem !== null) up_read(av.rwsem);
  count_event('remove_migration_ptes', restored);
  return restored;
}

/*
 * unlock_put() - folio_unlock() (unless @unlock is false) and put_page()
 * of an order-0 folio of the batch, on its mem_section arrays: clear
 * PG_locked, drop the reference with put_page()'s preemption point. What
 * is rare goes through the helpers themselves: an unlock with waiters to
 * wake (or of an unlocked folio: its BUG), the last reference.
 */
function unlock_put(f: page, unlock: boolean): void {
  if (!struct_page_paths.direct) {
    if (unlock) folio_unlock(f);
    put_page(f);
    return;
  }
  const ms = f.section, i = f.pfn & SECTION_MASK, flags = ms.flags, ref = ms._refcount;
  if (unlock) {
    const waitq = ms.waitq === null ? null : ms.waitq[i];
    if ((flags[i] & (1 << PG_locked)) === 0 || waitq !== null) folio_unlock(f);
    else flags[i] &= ~(1 << PG_locked);                     /* folio_unlock(): nobody waits */
  }
  if (ref[i] <= 1) { put_page(f); return; }                 /* the last reference (or a bad one): put_page() */
  ref[i]--;                                                 /* put_page() */
  preempt_point('put_page');
}

/* finalize_batch_release() - pass 3: unlock and release each source, then its destination (release_dst()) */
function finalize_batch_release(b: finalize_batch, n: number, fault_folio: page | null): void {
  for (let k = 0; k < n; k++) {
    const s = b.src[k], w = b.win[k];
    b.src[k] = b.win[k] = null;
    if (s === null) continue;                   /* a hole: pass 1 released its destination */
    unlock_put(s, fault_folio?.pfn !== s.pfn);
    if (w!.pfn === s.pfn) continue;
    if (fault_folio?.pfn === w!.pfn) BUG('the faulting page used as a destination');
    unlock_put(w!, true);
  }
}

/**
 * __migrate_device_finalize() - the body of migrate_vma_finalize() and
 * migrate_device_finalize() (mm/migrate_device.ts): runs of entries in
 * finalize batches, the others one by one.
 * Context: sources and destinations locked; may sleep (anon_vma rwsem).
 */
export function* __migrate_device_finalize(src: Float64Array | number[], dst: Float64Array | number[], npages: number,
                                           fault_page: page | null): Sleepable {
  const fault_folio = fault_page !== null ? fault_page.compound_head : null;
  const b = finalize_batch_alloc(npages);
  for (let i = 0; i < npages;) {
    if (!(src[i] & MIGRATE_PFN_VALID) && !(dst[i] & MIGRATE_PFN_VALID)) { i++; continue; }   /* nothing to release */
    const n = finalize_batch_prepare(b, src, dst, i, npages, fault_folio);
    if (n === 0) {
      yield* finalize_entry(src, dst, i, fault_folio);
      i++;
      continue;
    }
    const av = b.anon_vma;
    b.anon_vma = null;
    if (av !== null) {
      count_event('migrate_finalize_batch');
      const sem = av.rwsem;
      if (sem !== null) {
        might_sleep();
        if (!down_read_trylock(sem)) {
          count_event('migrate_finalize_batch_wait');
          yield* down_read(sem);
        }
      }
      finalize_batch_restore(b, n, av);
    }
    finalize_batch_release(b, n, fault_folio);
    i += n;
  }
}
