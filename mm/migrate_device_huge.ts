/*
 * mm/migrate_device_huge.ts - large folios in device migration: a THP
 * migrated to device memory as one unit, and the splits when it cannot
 * be.
 *
 * Models the large-folio half of mm/migrate_device.c (Linux 6.19-era:
 * MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_PFN_COMPOUND, the split fallback,
 * and pgmap->ops->folio_split for device THPs). The base API is in
 * mm/migrate_device.ts; the flags in include/linux/migrate.ts.
 *
 * With MIGRATE_VMA_SELECT_COMPOUND, a PMD-aligned 2 MiB chunk of the range
 * is collected as ONE entry when it holds a whole order-9 folio mapped in
 * order, or nothing at all (a hole, or the huge zero page):
 *
 *     src[i]       = migrate_pfn(head) | MIGRATE | COMPOUND [| WRITE]
 *     src[i+1..511] = 0
 *
 * The driver answers with a folio of the same order (dst[i] | COMPOUND)
 * or, when it has none, with 512 small pages (no COMPOUND): the core then
 * splits the source entry, and the source folio with it, into 512 small
 * entries and migrates those.
 *
 * Where this model differs from Linux: there are no PMD-level migration or
 * device-private entries (mm/huge_memory.ts splits a huge PMD before
 * anything else is done with it). A THP is therefore collected after its
 * PMD was split, and a device THP is mapped by 512 device-private PTEs:
 * it migrates and is freed as one folio, but hmm_range_fault() reports it
 * with order 0, and a CPU fault, which always comes through a PTE, splits
 * it (as Linux does for a PTE-mapped device THP).
 */
import type { page, vm_area_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, PMD_SIZE, HPAGE_PMD_NR, HPAGE_PMD_ORDER, VM_WRITE, vma_is_anonymous, add_mm_counter,
} from '../include/linux/mm.js';
import {
  pte_none, pte_present, pte_write, pte_dirty, pte_pfn, pte_soft_dirty, pte_mkwrite, pte_mkdirty, type pte_t,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_entry_to_pte, is_swap_pte, is_device_private_entry, make_writable_migration_entry,
  make_readable_exclusive_migration_entry, make_readable_migration_entry, make_writable_device_private_entry,
  make_readable_device_private_entry, is_writable_device_private_entry, swp_offset_pfn, _PAGE_SWP_SOFT_DIRTY,
} from '../include/linux/swapops.js';
import {
  PageAnonExclusive, SetPageAnonExclusive, ClearPageAnonExclusive, SetPageDirty, SetPageUptodate,
  PG_locked, PG_head, PG_anon_exclusive, PG_hwpoison, folio_test_anon,
} from '../include/linux/page-flags.js';
import {
  is_device_private_page, is_device_coherent_page, is_zone_device_page,
} from '../include/linux/memremap.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, MIGRATE_VMA_SELECT_SYSTEM,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_COMPOUND,
  migrate_pfn, type migrate_vma,
} from '../include/linux/migrate.js';
import { EAGAIN } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { pfn_to_page, get_page, put_page, is_zero_pfn } from './page_alloc.js';
import {
  pte_offset_map, pte_alloc_map, pmd_alloc, pte_lockptr, ptep_get, ptep_get_and_clear, set_pte_at, flush_tlb_range,
} from './pgtable.js';
import { vm_normal_page, mk_pte, fault_hooks } from './memory.js';
import { anon_vma_prepare, folio_remove_rmap_pte } from './rmap.js';
import { folio_maybe_dma_pinned } from './gup.js';
import { folio_trylock, folio_unlock } from './filemap.js';
import { split_folio } from './huge_memory_split.js';
import { folio_total_mapcount } from './migrate.js';

/** compound_chunk() - may [start, end) be collected as one compound entry? */
export function compound_chunk(m: migrate_vma, start: number, end: number): boolean {
  return (m.flags & MIGRATE_VMA_SELECT_COMPOUND) !== 0 && start % PMD_SIZE === 0 && end - start === PMD_SIZE;
}

/* record one compound entry followed by 511 empty ones */
function record_compound(m: migrate_vma, mpfn: number): void {
  m.src[m.npages] = mpfn;
  m.dst[m.npages++] = 0;
  for (let j = 1; j < HPAGE_PMD_NR; j++) {
    m.src[m.npages] = 0;
    m.dst[m.npages++] = 0;
  }
}

/**
 * collect_compound_hole() - a whole PMD with nothing (or the zero page)
 * mapped, in an anonymous VMA: one MIGRATE | COMPOUND entry without a page.
 */
export function collect_compound_hole(m: migrate_vma): void {
  record_compound(m, MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
  m.cpages++;
}

/* the page an entry maps, if the migration may select it (the rules of select_pte) */
function selectable(m: migrate_vma, addr: number, pte: pte_t): page | null {
  if (pte_present(pte)) {
    const p = vm_normal_page(m.vma, addr, pte);
    if (p === null) return null;
    if (is_device_coherent_page(p)) {
      return (m.flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT) && p.pgmap!.owner === m.pgmap_owner ? p : null;
    }
    return !is_zone_device_page(p) && (m.flags & MIGRATE_VMA_SELECT_SYSTEM) ? p : null;
  }
  if (!is_swap_pte(pte)) return null;
  const e = pte_to_swp_entry(pte);
  if (!is_device_private_entry(e)) return null;
  const p = pfn_to_page(swp_offset_pfn(e));
  return (m.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) && p.pgmap!.owner === m.pgmap_owner ? p : null;
}

/*
 * classify_chunk() - what the 512 PTEs from ptep hold: 'hole' (none or
 * zero page, when holes may be populated), the head of one selectable
 * order-9 folio mapped page by page in order, or null (anything else).
 */
function classify_chunk(m: migrate_vma, start: number, ptep: number): 'hole' | page | null {
  const mm = m.vma.vm_mm;
  const first = ptep_get(mm, ptep);
  if (pte_none(first) || (pte_present(first) && is_zero_pfn(pte_pfn(first)))) {
    if (!vma_is_anonymous(m.vma)) return null;
    for (let j = 0; j < HPAGE_PMD_NR; j++) {
      const pte = ptep_get(mm, ptep + j);
      if (pte_none(pte)) continue;
      if (pte_present(pte) && is_zero_pfn(pte_pfn(pte)) && (m.flags & MIGRATE_VMA_SELECT_SYSTEM)) continue;
      return null;
    }
    return 'hole';
  }
  const head = selectable(m, start, first);
  if (head === null || head.compound_head !== head || head.order !== HPAGE_PMD_ORDER || head.mapping === null) return null;
  for (let j = 1; j < HPAGE_PMD_NR; j++) {
    const pte = ptep_get(mm, ptep + j);
    const pfn = pte_present(pte) ? pte_pfn(pte) : is_swap_pte(pte) ? swp_offset_pfn(pte_to_swp_entry(pte)) : -1;
    if (pfn !== head.pfn + j || selectable(m, start + j * PAGE_SIZE, pte) === null) return null;
  }
  return head;
}

/*
 * collect_compound_folio() - lock the folio and replace its 512 PTEs by
 * migration entries (as collect_one does for a small page). A folio
 * locked by someone else, or maybe DMA-pinned, is skipped as a whole.
 * Called with the PTE lock held. Return: true if a PTE was present.
 */
function collect_compound_folio(m: migrate_vma, start: number, ptep: number, f: page): boolean {
  const mm = m.vma.vm_mm;
  const fault_folio = m.fault_page !== null ? m.fault_page.compound_head : null;
  get_page(f);
  if (fault_folio !== f && !folio_trylock(f)) { put_page(f); record_compound(m, 0); return false; }
  if (!is_device_private_page(f) && folio_test_anon(f) && folio_maybe_dma_pinned(f)) {
    if (fault_folio !== f) folio_unlock(f);
    put_page(f);
    record_compound(m, 0);
    count_event('migrate_collect_pinned');
    return false;
  }
  let present = false;
  const first = ptep_get(mm, ptep);
  const write = pte_present(first) ? pte_write(first) : is_writable_device_private_entry(pte_to_swp_entry(first));
  for (let j = 0; j < HPAGE_PMD_NR; j++) {
    const p = j === 0 ? f : pfn_to_page(f.pfn + j);
    const old = ptep_get_and_clear(mm, start + j * PAGE_SIZE, ptep + j);
    const exclusive = folio_test_anon(f) && PageAnonExclusive(p);
    if (exclusive) ClearPageAnonExclusive(p);
    let writable: boolean;
    if (pte_present(old)) {
      present = true;
      writable = pte_write(old);
      if (pte_dirty(old)) SetPageDirty(f);
    } else {
      writable = is_writable_device_private_entry(pte_to_swp_entry(old));
    }
    const e = writable ? make_writable_migration_entry(p.pfn)
      : exclusive ? make_readable_exclusive_migration_entry(p.pfn) : make_readable_migration_entry(p.pfn);
    let swp = swp_entry_to_pte(e);
    if (pte_present(old) ? pte_soft_dirty(old) : (old & _PAGE_SWP_SOFT_DIRTY) !== 0) swp += _PAGE_SWP_SOFT_DIRTY;
    set_pte_at(mm, start + j * PAGE_SIZE, ptep + j, swp);
    folio_remove_rmap_pte(p, m.vma);
    put_page(p);
  }
  record_compound(m, migrate_pfn(f.pfn) | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND | (write ? MIGRATE_PFN_WRITE : 0));
  m.cpages++;
  count_event('migrate_collect_compound');
  return present;
}

/**
 * migrate_vma_collect_huge() - collect the PMD chunk [start, start + 2 MiB)
 * (already split to PTEs) as one compound entry if it qualifies.
 * Context: mmap_lock held; takes the PTE lock.
 * Return: true if the chunk's 512 entries were recorded.
 */
export function migrate_vma_collect_huge(m: migrate_vma, start: number): boolean {
  const mm = m.vma.vm_mm;
  const ptep = pte_offset_map(mm, start);
  if (ptep < 0) return false;
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  const what = classify_chunk(m, start, ptep);
  let done = false, unmapped = false;
  if (what === 'hole') {
    collect_compound_hole(m);
    done = true;
  } else if (what !== null) {
    unmapped = collect_compound_folio(m, start, ptep, what);
    done = true;
  }
  if (unmapped) flush_tlb_range(m.vma, start, start + PMD_SIZE);
  spin_unlock(ptl);
  return done;
}

/*
 * migrate_device_split_folio() - split a PTE-mapped device folio (private
 * or coherent) into small folios where it is: each page keeps its
 * mappings and gets one reference per mapping; the extra references the
 * caller accounts for (@fault_page's, from do_swap_page, and @own, a
 * temporary one on the head) move to their pages. The driver's
 * folio_split callback runs for every new folio, then once with null.
 * The folio lock goes to @fault_page if there is one, else stays on the
 * head (now a small folio the caller unlocks).
 * Context: folio locked. Return: 0, or -EAGAIN if a reference is unaccounted for.
 */
export function migrate_device_split_folio(h: page, fault_page: page | null, own: number): number {
  const nr = 1 << h.order;
  const fault_in = fault_page !== null && fault_page.compound_head === h ? 1 : 0;
  if (h._refcount !== folio_total_mapcount(h) + fault_in + own || h._entire_mapcount >= 0) return -EAGAIN;
  const pgmap = h.pgmap!;
  const keep = h.flags & ~((1 << PG_head) | (1 << PG_locked) | (1 << PG_anon_exclusive) | (1 << PG_hwpoison));
  for (let j = 0; j < nr; j++) {
    const t = pfn_to_page(h.pfn + j);
    t.compound_head = t;
    t._refcount = t._mapcount + 1;
    if (j > 0) {
      t.flags = (t.flags & ((1 << PG_anon_exclusive) | (1 << PG_hwpoison))) | keep;
      t.mapping = h.mapping;
      t.index = h.index + j;
      t.memcg = h.memcg;
      t.pgmap = pgmap;
    }
  }
  h.order = 0;
  h.flags &= ~(1 << PG_head);
  h._refcount += own;
  if (fault_in) fault_page!._refcount++;
  const split = pgmap.ops.folio_split as ((head: page, tail: page | null) => void) | undefined;
  if (split) {
    for (let j = 1; j < nr; j++) split(h, pfn_to_page(h.pfn + j));
    split(h, null);
  }
  /* the folio lock stays with the faulting page (do_swap_page unlocks it); otherwise on the head */
  if (fault_in && fault_page !== h) {
    fault_page!.flags |= 1 << PG_locked;
    folio_unlock(h);
  }
  count_event('migrate_device_split_folio');
  trace_event('migrate_device_split_folio', { pfn: h.pfn, nr });
  return 0;
}

/**
 * split_large_folios() - before the PTE walk of [start, end), split every
 * large folio mapped there that is not migrated as a unit: system THPs
 * with split_folio() (mm/huge_memory_split.ts), device folios in place
 * with migrate_device_split_folio(). A folio that cannot be split now
 * stays large and the walk skips its pages.
 * Context: mmap_lock held; may sleep.
 */
export function* split_large_folios(m: migrate_vma, start: number, end: number): Sleepable {
  const mm = m.vma.vm_mm;
  const fault_folio = m.fault_page !== null ? m.fault_page.compound_head : null;
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    const ptep = pte_offset_map(mm, addr);
    if (ptep < 0) return;
    const pte = ptep_get(mm, ptep);
    let p: page | null = null;
    if (pte_present(pte)) p = vm_normal_page(m.vma, addr, pte);
    else if (is_swap_pte(pte) && is_device_private_entry(pte_to_swp_entry(pte))) p = pfn_to_page(swp_offset_pfn(pte_to_swp_entry(pte)));
    if (p === null || p.compound_head.order === 0) continue;
    const f = p.compound_head;
    if (selectable(m, addr, pte) === null) continue;
    get_page(f);
    if (is_zone_device_page(f)) {
      if (fault_folio === f) migrate_device_split_folio(f, m.fault_page, 1);
      else if (folio_trylock(f)) {
        migrate_device_split_folio(f, null, 1);
        folio_unlock(f);
      }
      put_page(f);
      continue;
    }
    if (folio_trylock(f)) {
      yield* split_folio(f);
      folio_unlock(f);
    }
    put_page(f);
  }
}

/**
 * split_unmapped_folio() - the source of a compound entry is unmapped
 * (every mapping is a migration entry), locked, and held by the
 * migration's one reference; the driver gave small destinations, so make
 * it 2^order small folios, each locked and held the same way.
 * Context: folio locked.
 */
export function split_unmapped_folio(h: page): void {
  const nr = 1 << h.order;
  const keep = h.flags & ~((1 << PG_head) | (1 << PG_anon_exclusive) | (1 << PG_hwpoison));
  for (let j = 1; j < nr; j++) {
    const t = pfn_to_page(h.pfn + j);
    t.compound_head = t;
    t.flags = (t.flags & ((1 << PG_anon_exclusive) | (1 << PG_hwpoison))) | keep;
    t.mapping = h.mapping;
    t.index = h.index + j;
    t.memcg = h.memcg;
    t._refcount = h._refcount;
  }
  h.order = 0;
  h.flags &= ~(1 << PG_head);
  h._entire_mapcount = -1;
  if (h.pgmap !== null) {
    const split = h.pgmap.ops.folio_split as ((head: page, tail: page | null) => void) | undefined;
    if (split) {
      for (let j = 1; j < nr; j++) split(h, pfn_to_page(h.pfn + j));
      split(h, null);
    }
  }
  count_event('migrate_split_unmapped_folio');
}

/**
 * expand_compound_entry() - the driver answered a compound entry with
 * small pages: turn src[i] into 2^order small entries (splitting the
 * source folio, if any) so that each is migrated on its own.
 */
export function expand_compound_entry(src: Float64Array | number[], i: number, npages: number, p: page | null): void {
  const write = src[i] & MIGRATE_PFN_WRITE;
  const nr = p !== null ? 1 << p.compound_head.order : HPAGE_PMD_NR;
  if (p !== null) split_unmapped_folio(p.compound_head);
  for (let j = 0; j < nr && i + j < npages; j++) {
    src[i + j] = p !== null ? migrate_pfn(p.pfn + j) | MIGRATE_PFN_MIGRATE | write : MIGRATE_PFN_MIGRATE;
  }
  count_event('migrate_compound_fallback');
}

/**
 * migrate_vma_insert_folio() - populate a compound hole with a whole
 * destination folio, mapped page by page: the large-folio twin of
 * migrate_vma_insert_page(). Clears MIGRATE in src[i] on any failure.
 */
export function migrate_vma_insert_folio(m: migrate_vma, addr: number, f: page, src: Float64Array | number[], i: number): void {
  const vma: vm_area_struct = m.vma, mm = vma.vm_mm;
  const nr = 1 << f.order;
  const abort = () => { src[i] -= src[i] & MIGRATE_PFN_MIGRATE; count_event('migrate_insert_abort'); };
  if (!vma_is_anonymous(vma) || addr % (nr * PAGE_SIZE) !== 0 || addr + nr * PAGE_SIZE > vma.vm_end) return abort();
  if (pmd_alloc(mm, addr) < 0) return abort();
  const ptep = pte_alloc_map(mm, addr);
  if (ptep < 0) return abort();
  if (anon_vma_prepare(vma) !== 0) return abort();
  if (fault_hooks.memcg_charge !== null && fault_hooks.memcg_charge(f, mm) !== 0) return abort();
  SetPageUptodate(f);
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  for (let j = 0; j < nr; j++) {
    const orig = ptep_get(mm, ptep + j);
    if (!(pte_none(orig) || (pte_present(orig) && is_zero_pfn(pte_pfn(orig))))) { spin_unlock(ptl); return abort(); }
  }
  f.mapping = vma.anon_vma;
  f.index = (addr - vma.vm_start) / PAGE_SIZE + vma.vm_pgoff;
  const writable = (vma.vm_flags & VM_WRITE) !== 0;
  for (let j = 0; j < nr; j++) {
    const p = j === 0 ? f : pfn_to_page(f.pfn + j);
    let entry: pte_t;
    if (is_device_private_page(f)) {
      entry = swp_entry_to_pte(writable ? make_writable_device_private_entry(p.pfn) : make_readable_device_private_entry(p.pfn));
    } else {
      entry = mk_pte(p, vma.vm_page_prot);
      if (writable) entry = pte_mkwrite(pte_mkdirty(entry));
    }
    p._mapcount = 0;
    SetPageAnonExclusive(p);
    get_page(p);
    ptep_get_and_clear(mm, addr + j * PAGE_SIZE, ptep + j);
    set_pte_at(mm, addr + j * PAGE_SIZE, ptep + j, entry);
  }
  add_mm_counter(mm, MM_ANONPAGES, nr);
  flush_tlb_range(vma, addr, addr + nr * PAGE_SIZE);
  spin_unlock(ptl);
  src[i] = MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND;
  count_event('migrate_insert_folio');
}
