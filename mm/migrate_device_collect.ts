/*
 * mm/migrate_device_collect.ts - the collect step of migrate_vma_setup():
 * walk the range and turn each page chosen for migration into a migration
 * entry on the spot.
 *
 * Models migrate_vma_collect() of mm/migrate_device.c and its walk
 * callbacks: walk_page_range() (mm/pagewalk.ts) with migrate_vma_walk_ops
 * (migrate_vma_collect_pmd, migrate_vma_collect_hole), inside one
 * MMU_NOTIFY_MIGRATE invalidation tagged with the pgmap_owner so that the
 * migrating driver can skip its own event. Per PTE, select_pte() applies
 * the SELECT flags and the owner, and collect_one() trylocks the folio and
 * replaces the PTE by a migration entry; src[] gets one entry per page
 * (include/linux/migrate.ts has the encoding). PMD-sized folios and the
 * compound holes are in mm/migrate_device_huge.ts; the steps after
 * collect (unmap, pages, finalize) in mm/migrate_device.ts.
 *
 * Per PTE, the steps and their order are migrate_vma_collect_pmd()'s:
 * select (swap entry: device-private of the owner; present: the zero
 * page, vm_normal_page(), the SELECT flags), folio_get(), folio_trylock()
 * (the fault folio is already locked), ptep_clear_flush() for an
 * anon-exclusive page (ptep_get_and_clear() else), the pin check of
 * folio_try_share_anon_rmap_pte(), the dirty bit to the folio, the
 * migration entry with the soft-dirty bit, folio_remove_rmap_pte(),
 * folio_put(); one flush_tlb_range() per PTE page when a present entry
 * was cleared. What the model does differently, for host cost only
 * (session 7): what does not change from one PTE to the next (the VMA's
 * kind, the fault folio, src[]/dst[] and the entry count) is read once
 * per PTE page; select_pte() returns the page (no module-level result
 * slots); a device-private entry's page comes from
 * pfn_swap_entry_to_page(), a new handle from the section rather than
 * the handle cache (include/linux/swapops.ts); the flush of each
 * anon-exclusive page is ptep_clear_flush_batched() (mm/pgtable.ts): it
 * reaches the secondary MMUs and the 2008 notifier per page, in order,
 * while its simulated cost and counters are added once per PTE lock
 * hold, before the range flush (a model split; the totals are those of
 * ptep_clear_flush() per page, and test/mm/migrate_device_collect.test.ts
 * compares both ways). Documentation/vm/hmm.txt Part 17.5, "session 7,
 * mcollect".
 *
 * Model split (session 8, mig4k): collect_one() does its steps on the
 * struct page (folio_get(), folio_trylock(), folio_test_anon(),
 * PageAnonExclusive()/ClearPageAnonExclusive(), folio_mark_dirty(),
 * folio_maybe_dma_pinned(), folio_remove_rmap_pte(), folio_put()) on the
 * folio's mem_section arrays at its index, each step named where it is
 * done, in Linux's order, instead of through the page helpers on handle
 * accessors: the same loads and stores on the same frame (collect_one()
 * only takes order-0 folios, so the page is the folio). The helpers'
 * checks stay (fail_folio_trylock is asked as folio_trylock() asks it,
 * put_page()'s preemption point is kept), and what is rare calls the
 * helper itself (a BUG on a bad reference or mapcount, the failed
 * trylock's put, the last put). About 7% of the 4 KiB migration round
 * trip of `bench hmm`. collect_one_helpers() is the helper path;
 * struct_page_direct(false) (TEST ONLY, mm/internal.ts) selects it, and
 * test/mm/migrate_device_collect.test.ts compares the two (page tables
 * of parent and forked child, src[], struct pages, counters, virtual
 * time, bytes; with fail_folio_trylock firing too). Part 17.5, "session
 * 8, mig4k".
 */
import { SECTION_MASK, type page } from '../include/linux/mm_types.js';
import { PAGE_SIZE, vma_is_anonymous } from '../include/linux/mm.js';
import {
  pte_none, pte_present, pte_write, pte_dirty, pte_pfn, pte_soft_dirty, pmd_trans_huge, pmd_is_table, pmd_addr_end,
  type pte_t,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_entry_to_pte, is_device_private_entry, is_writable_device_private_entry,
  make_writable_migration_entry, make_readable_exclusive_migration_entry, make_readable_migration_entry,
  pfn_swap_entry_to_page, _PAGE_SWP_SOFT_DIRTY, pmd_is_huge,
} from '../include/linux/swapops.js';
import {
  PageAnonExclusive, ClearPageAnonExclusive, SetPageDirty, folio_test_anon, folio_test_large, PG_locked, PG_dirty,
  PG_anon_exclusive,
} from '../include/linux/page-flags.js';
import { is_device_private_page, MEMORY_DEVICE_COHERENT } from '../include/linux/memremap.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  MIGRATE_VMA_SELECT_DEVICE_COHERENT, migrate_pfn, type migrate_vma,
} from '../include/linux/migrate.js';
import {
  MMU_NOTIFY_MIGRATE, MMU_NOTIFIER_RANGE_BLOCKABLE, type mmu_notifier_range,
} from '../include/linux/mmu_notifier.js';
import { preempt_point, type Sleepable } from '../lib/sim/sched.js';
import { fail_folio_trylock, should_fail } from '../lib/fault-inject.js';
import { race_mutations } from '../lib/sim/mutations.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event } from '../lib/sim/trace.js';
import { folio_put, folio_get, is_zero_pfn } from './page_alloc.js';
import {
  pte_offset_map, pte_lockptr, ptep_get, ptep_get_and_clear, set_pte_at, flush_tlb_range,
  ptep_clear_flush_batched, tlb_flush_batch_init, tlb_flush_batch_account, type tlb_flush_batch,
} from './pgtable.js';
import { vm_normal_page } from './memory.js';
import { struct_page_paths } from './internal.js';
import { folio_remove_rmap_pte } from './rmap.js';
import { folio_maybe_dma_pinned, GUP_PIN_COUNTING_BIAS } from './gup.js';
import { folio_trylock, folio_unlock } from './filemap.js';
import { walk_page_range, PGWALK_RDLOCK, type mm_walk, type mm_walk_ops } from './pagewalk.js';
import {
  mmu_notifier_range_init_owner, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { __split_huge_pmd, is_huge_zero_pmd } from './huge_memory.js';
import {
  compound_chunk, collect_compound_hole, migrate_vma_collect_huge_pmd, split_large_folio_at,
} from './migrate_device_huge.js';

/* ------------------------------------------------------------------ collect */

/*
 * migration_entry_pte() - the swap PTE migrate_vma_collect_pmd() installs
 * for page @pfn after clearing @old: a writable migration entry when the
 * source is writable (@mpfn has MIGRATE_PFN_WRITE), else a readable
 * exclusive one for an exclusive anonymous page, else a readable one; it
 * keeps the soft-dirty bit of the old entry (present or swap). Linux
 * builds it inline there; both ways of collect_one() share it here.
 * Context: PTE lock held. Return: the PTE value.
 */
function migration_entry_pte(pfn: number, mpfn: number, anon_exclusive: boolean, present: boolean, old: pte_t): pte_t {
  const e = (mpfn & MIGRATE_PFN_WRITE) ? make_writable_migration_entry(pfn)
    : anon_exclusive ? make_readable_exclusive_migration_entry(pfn)
      : make_readable_migration_entry(pfn);
  const swp = swp_entry_to_pte(e);
  const sd = present ? pte_soft_dirty(old) : (old & _PAGE_SWP_SOFT_DIRTY) !== 0;
  return sd ? swp + _PAGE_SWP_SOFT_DIRTY : swp;
}

/* migrate_vma_collect_skip() - entries the migration must not touch */
function collect_skip(m: migrate_vma, start: number, end: number): void {
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    m.dst[m.npages] = 0;
    m.src[m.npages++] = 0;
  }
}

/* migrate_vma_collect_hole() - nothing mapped: anonymous VMAs may be populated */
function collect_hole(m: migrate_vma, start: number, end: number): void {
  if (!vma_is_anonymous(m.vma)) { collect_skip(m, start, end); return; }
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    m.src[m.npages] = MIGRATE_PFN_MIGRATE;
    m.dst[m.npages] = 0;
    m.npages++;
    m.cpages++;
  }
}

/*
 * select_swap_entry() - the device-private page a swap entry points to,
 * if the migration selects device-private pages of its owner; else null
 * (other swap entries, and swapped pages, are not migrated).
 */
function select_swap_entry(m: migrate_vma, entry: number): page | null {
  if (!is_device_private_entry(entry)) return null;
  const p = pfn_swap_entry_to_page(entry);
  if (!(m.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) || p.pgmap!.owner !== m.pgmap_owner) return null;
  return p;
}

/*
 * select_pte() - the page behind a present entry if the SELECT flags and
 * the owner make it a candidate, ZERO_SELECTED for the zero page under
 * SELECT_SYSTEM (migrated as if it were a hole), else null. The tests
 * and their order are migrate_vma_collect_pmd()'s.
 */
const ZERO_SELECTED = undefined;
function select_pte(m: migrate_vma, addr: number, pte: pte_t): page | null | undefined {
  if (is_zero_pfn(pte_pfn(pte)) && (m.flags & MIGRATE_VMA_SELECT_SYSTEM)) return ZERO_SELECTED;
  const p = vm_normal_page(m.vma, addr, pte);
  /* no struct page behind it (the zero page without SELECT_SYSTEM, a raw pfn): not migratable */
  if (p === null) return null;
  const pgmap = p.pgmap;         /* is_zone_device_page(), is_device_coherent_page(): one read */
  if (pgmap === null) return (m.flags & MIGRATE_VMA_SELECT_SYSTEM) ? p : null;
  if (pgmap.type === MEMORY_DEVICE_COHERENT &&
      (!(m.flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT) || pgmap.owner !== m.pgmap_owner)) {
    return null;
  }
  return p;
}

/*
 * collect_pinned() - collect_one() found an exclusive page that may be
 * DMA-pinned after clearing its PTE: put the entry back, unlock and drop
 * the reference (out of line: rare, and it keeps collect_one() small).
 */
function collect_pinned(m: migrate_vma, addr: number, ptep: number, old: pte_t, f: page, fault_folio_pfn: number): void {
  set_pte_at(m.vma.vm_mm, addr, ptep, old);
  if (fault_folio_pfn !== f.pfn) folio_unlock(f);
  folio_put(f);
  count_event('migrate_collect_pinned');
}

/*
 * collect_one() - lock the selected page @p of folio @f (order 0, mapped)
 * and replace its entry @pte by a migration entry. Called with the PTE
 * lock held. Return: the mpfn to record, 0 if the page could not be
 * taken (locked by someone else, or an exclusive page that may be pinned).
 * A present entry was cleared exactly when the return is not 0 and
 * @pte is present (the caller flushes the TLB once for those).
 *
 * The steps on the struct page are Linux's, each named where it is done,
 * on the folio's mem_section arrays at index @i rather than through page
 * handle accessors (the model split in the file header; @p is @f, an
 * order-0 folio). What is rare goes through the helper itself: the BUG
 * of a reference or mapcount gone wrong, the failed trylock's put and
 * the last put.
 */
function collect_one(m: migrate_vma, tlb: tlb_flush_batch, addr: number, ptep: number, pte: pte_t, p: page, f: page,
                     mpfn: number, fault_folio_pfn: number): number {
  if (!struct_page_paths.direct) return collect_one_helpers(m, tlb, addr, ptep, pte, p, f, mpfn, fault_folio_pfn);
  const vma = m.vma, mm = vma.vm_mm;
  const ms = f.section, i = f.pfn & SECTION_MASK, flags = ms.flags, ref = ms._refcount;
  if (ref[i] <= 0) folio_get(f);        /* folio_get() of a free page: its BUG */
  ref[i]++;                             /* folio_get(): holds the page, and so the entry, until unmap/restore */
  if (fault_folio_pfn !== f.pfn) {
    /* folio_trylock(): busy if locked, or if fail_folio_trylock fires (asked only of an unlocked folio) */
    if ((flags[i] & (1 << PG_locked)) !== 0 || should_fail(fail_folio_trylock, 1)) { folio_put(f); return 0; }
    flags[i] |= 1 << PG_locked;
  }
  /* folio_test_anon(f) && PageAnonExclusive(p) */
  const mapping = ms.mapping[i];
  const anon_exclusive = mapping !== null && mapping.kind === 'anon' && (flags[i] & (1 << PG_anon_exclusive)) !== 0;
  const present = pte_present(pte);
  let old: pte_t;
  if (anon_exclusive) {
    old = ptep_clear_flush_batched(tlb, addr, ptep);     /* ptep_clear_flush(), accounted per lock hold */
    /* folio_try_share_anon_rmap_pte(): a pinned exclusive page cannot become shared (folio_maybe_dma_pinned(), order 0) */
    if (!is_device_private_page(f) && ref[i] >= GUP_PIN_COUNTING_BIAS) {
      collect_pinned(m, addr, ptep, old, f, fault_folio_pfn);
      return 0;
    }
    flags[i] &= ~(1 << PG_anon_exclusive);              /* ClearPageAnonExclusive(p) */
  } else {
    old = ptep_get_and_clear(mm, addr, ptep);
  }
  m.cpages++;
  if (present && pte_dirty(old)) flags[i] |= 1 << PG_dirty;    /* folio_mark_dirty(): the PTE's dirty bit is gone */
  set_pte_at(mm, addr, ptep, migration_entry_pte(f.pfn, mpfn, anon_exclusive, present, old));
  /* folio_remove_rmap_pte(): one PTE fewer; the last one takes PG_anon_exclusive (an underflow: its BUG) */
  const mapcount = ms._mapcount[i] - 1;
  if (mapcount < -1) folio_remove_rmap_pte(f, vma);
  ms._mapcount[i] = mapcount;
  if (mapcount < 0) flags[i] &= ~(1 << PG_anon_exclusive);
  /* folio_put(): the reference of the mapping just removed; not the last (folio_get() above), with its preemption point */
  if (ref[i] <= 1) folio_put(f);
  else { ref[i]--; preempt_point('put_page'); }
  return mpfn;
}

/*
 * collect_one_helpers() - collect_one() through the page helpers on page
 * handles (folio_get(), folio_trylock(), PageAnonExclusive(), ...): the
 * path collect_one() takes when struct_page_direct(false) (TEST ONLY,
 * mm/internal.ts) turned its direct path off, which the tests compare it with.
 * Same arguments and return.
 */
function collect_one_helpers(m: migrate_vma, tlb: tlb_flush_batch, addr: number, ptep: number, pte: pte_t, p: page, f: page,
                     mpfn: number, fault_folio_pfn: number): number {
  const vma = m.vma, mm = vma.vm_mm;
  folio_get(f);         /* holds the page, and so the entry, until unmap/restore */
  if (fault_folio_pfn !== f.pfn && !folio_trylock(f)) { folio_put(f); return 0; }
  const anon_exclusive = folio_test_anon(f) && PageAnonExclusive(p);
  const present = pte_present(pte);
  let old: pte_t;
  if (anon_exclusive) {
    old = ptep_clear_flush_batched(tlb, addr, ptep);     /* ptep_clear_flush(), accounted per lock hold */
    /* folio_try_share_anon_rmap_pte(): a pinned exclusive page cannot become shared */
    if (!is_device_private_page(f) && folio_maybe_dma_pinned(f)) {
      collect_pinned(m, addr, ptep, old, f, fault_folio_pfn);
      return 0;
    }
    ClearPageAnonExclusive(p);
  } else {
    old = ptep_get_and_clear(mm, addr, ptep);
  }
  m.cpages++;
  if (present && pte_dirty(old)) SetPageDirty(f);       /* folio_mark_dirty(): the PTE's dirty bit is gone */
  set_pte_at(mm, addr, ptep, migration_entry_pte(p.pfn, mpfn, anon_exclusive, present, old));
  folio_remove_rmap_pte(f, vma);
  folio_put(f);         /* the reference of the mapping just removed */
  return mpfn;
}

/*
 * migrate_vma_collect_pmd() for a PMD that points to a PTE page: collect
 * [start, end) until a page of a large folio that is not migrated as a
 * unit, which the caller splits with the PTE lock dropped (Linux's walk
 * unlocks, splits and starts over there). At @skip_large, a large folio
 * the split could not break is skipped instead. Return: @end when the
 * range is done, else the address it stopped at (not recorded yet).
 *
 * What does not change from one PTE to the next is read once before the
 * loop (the VMA's kind, the fault folio, the arrays and the count of
 * entries, stored back at the end); each PTE is read once and its page
 * handle made once.
 */
function collect_pte_range(m: migrate_vma, start: number, end: number, skip_large: number): number {
  const vma = m.vma, mm = vma.vm_mm;
  let ptep = pte_offset_map(mm, start);
  if (ptep < 0) { collect_hole(m, start, end); return end; }
  const ptl = pte_lockptr(mm, ptep);
  const fault_folio_pfn = m.fault_page !== null ? m.fault_page.compound_head.pfn : -1;
  const anon = vma_is_anonymous(vma);
  const src = m.src, dst = m.dst;
  let npages = m.npages, unmapped = 0, addr = start;
  const tlb = tlb_flush_batch_init(vma);
  spin_lock(ptl);
  for (; addr < end; addr += PAGE_SIZE, ptep++) {
    const pte = ptep_get(mm, ptep);
    let mpfn = 0;
    if (pte_none(pte)) {
      if (anon) { mpfn = MIGRATE_PFN_MIGRATE; m.cpages++; }
    } else {
      /* a swap entry is decoded once: its page and its write bit come from the same entry */
      let p: page | null | undefined, write: boolean;
      if (pte_present(pte)) {
        p = select_pte(m, addr, pte);
        write = pte_write(pte);
      } else {
        const entry = pte_to_swp_entry(pte);
        p = select_swap_entry(m, entry);
        write = p !== null && is_writable_device_private_entry(entry);
      }
      if (p === ZERO_SELECTED) {
        mpfn = MIGRATE_PFN_MIGRATE;     /* the zero page: migrate as if it were a hole */
        m.cpages++;
      } else if (p !== null) {
        const f = p.compound_head;
        if (folio_test_large(f) && addr !== skip_large) break;     /* split it first */
        /* only mapped, small pages here; a large folio left is one that could not be split */
        if (p.mapping !== null && !folio_test_large(f)) {
          mpfn = collect_one(m, tlb, addr, ptep, pte, p, f,
            migrate_pfn(p.pfn) | MIGRATE_PFN_MIGRATE | (write ? MIGRATE_PFN_WRITE : 0), fault_folio_pfn);
          if (mpfn !== 0 && pte_present(pte)) unmapped++;
        }
      }
    }
    dst[npages] = 0;
    src[npages++] = mpfn;
  }
  m.npages = npages;
  tlb_flush_batch_account(tlb);
  if (unmapped > 0) flush_tlb_range(vma, start, addr);
  spin_unlock(ptl);
  return addr;
}

/* a hole over [start, end): one compound entry for a whole PMD when asked, else small ones */
function collect_hole_chunk(m: migrate_vma, start: number, end: number): void {
  if (vma_is_anonymous(m.vma) && compound_chunk(m, start, end)) collect_compound_hole(m);
  else collect_hole(m, start, end);
}

/* migrate_vma_collect_hole() - pte_hole: nothing mapped over [start, end); each PMD's worth on its own */
function migrate_vma_collect_hole(start: number, end: number, _depth: number, walk: mm_walk<migrate_vma>): number {
  for (let addr = start; addr < end;) {
    const next = pmd_addr_end(addr, end);
    collect_hole_chunk(walk.private, addr, next);
    addr = next;
  }
  return 0;
}

/*
 * migrate_vma_collect_pmd() - pmd_entry: one PMD's worth of [start, end).
 * A PMD leaf (a THP, or a device-private THP) goes to
 * migrate_vma_collect_huge_pmd() (mm/migrate_device_huge.ts): one compound
 * entry, or a split; the huge zero page is a hole (one compound hole when
 * asked, else it is split first). Under a PTE page, large folios are split
 * and the PTEs collected one by one.
 */
function* migrate_vma_collect_pmd(pmdp: number, start: number, end: number, walk: mm_walk<migrate_vma>): Sleepable<number> {
  const m = walk.private, mm = walk.mm;
  let pmd = mm.pgd.load(pmdp);
  if (pmd_trans_huge(pmd) && is_huge_zero_pmd(pmd)) {
    if (vma_is_anonymous(m.vma) && compound_chunk(m, start, end)) { collect_compound_hole(m); return 0; }
    yield* __split_huge_pmd(m.vma, pmdp, start);
    pmd = mm.pgd.load(pmdp);
  } else if (pmd_is_huge(pmd)) {
    if ((yield* migrate_vma_collect_huge_pmd(m, pmdp, start, end)) === 0) return 0;
    pmd = mm.pgd.load(pmdp);
  }
  if (pmd === 0) { collect_hole_chunk(m, start, end); return 0; }
  if (!pmd_is_table(pmd)) { collect_skip(m, start, end); return 0; }
  for (let addr = start, skip = -1; ; skip = addr) {
    addr = collect_pte_range(m, addr, end, skip);
    if (addr >= end) return 0;
    yield* split_large_folio_at(m, addr);
  }
}

/* migrate_vma_walk_ops - how migrate_vma_collect() walks the range (mmap_lock held for read) */
const migrate_vma_walk_ops: mm_walk_ops<migrate_vma> = Object.freeze({
  pmd_entry: migrate_vma_collect_pmd,
  pte_hole: migrate_vma_collect_hole,
  walk_lock: PGWALK_RDLOCK,
});

/*
 * migrate_vma_collect() - walk [start, end) inside one MMU_NOTIFY_MIGRATE
 * invalidation whose owner lets the migrating driver skip its own event.
 */
export function* migrate_vma_collect(m: migrate_vma): Sleepable {
  const range: mmu_notifier_range = mmu_notifier_range_init_owner(MMU_NOTIFY_MIGRATE, MMU_NOTIFIER_RANGE_BLOCKABLE,
    m.vma.vm_mm, m.start, m.end, m.pgmap_owner);
  yield* mmu_notifier_invalidate_range_start(range);
  const broken = race_mutations.end_invalidation_before_walk;     /* TEST ONLY: lib/sim/mutations.ts */
  if (broken) yield* mmu_notifier_invalidate_range_end(range);
  yield* walk_page_range(m.vma.vm_mm, m.start, m.end, migrate_vma_walk_ops, m);
  if (!broken) yield* mmu_notifier_invalidate_range_end(range);
  m.end = m.start + m.npages * PAGE_SIZE;
}
