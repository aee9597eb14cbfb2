/*
 * mm/migrate.ts - the generic half of page migration that device
 * migration uses: migration entries in, migration entries out, and the
 * transfer of a folio's identity to its copy.
 *
 * Models, from mm/migrate.c: remove_migration_ptes() (remove_migration_pte),
 * folio_migrate_mapping(), folio_migrate_flags(); and from mm/rmap.c:
 * try_to_migrate() (try_to_migrate_one), which Linux keeps with the other
 * rmap walkers. The device-specific driver API is mm/migrate_device.ts.
 *
 * A migration entry (include/linux/swapops.ts, SWP_MIGRATION_*) replaces
 * every mapping of a page while it is locked and being copied; a CPU or
 * device fault that finds one waits for the folio lock
 * (migration_entry_wait in mm/memory.ts) and retries. The entry records
 * whether the mapping was writable (WRITE), or read-only but exclusive to
 * this mm (READ_EXCLUSIVE), or read-only and maybe shared (READ), so the
 * mapping of the new page gets back exactly what the old one had.
 *
 * A large folio mapped by a PMD (a THP, or a device-private THP) gets
 * one PMD migration entry for the whole folio (set_pmd_migration_entry
 * and remove_migration_pmd, mm/huge_memory_nonpresent.ts); a PTE-mapped
 * large folio gets one migration PTE per page.
 *
 * Simplified: migration entries do not carry the young and dirty bits
 * (Linux keeps them in spare offset bits); the restored PTE is young, and
 * dirty when it is writable and the folio is dirty.
 *
 * Model split (session 8, mig4k): for the head page of the destination
 * (every page of an order-0 folio), remove_migration_pte() finishes in
 * restore_one(), which does Linux's steps (the new entry, get_page(),
 * folio_add_anon_rmap_pte() or folio_add_file_rmap_pte(), set_pte_at())
 * on the folio's mem_section arrays at its index instead of through
 * handle accessors; the PTE lock and the entry checks are unchanged.
 * struct_page_direct(false) (TEST ONLY, mm/internal.ts) keeps the helper path,
 * and test/mm/migrate_device_collect.test.ts compares the two.
 * Documentation/vm/hmm.txt Part 17.5, "session 8, mig4k".
 */
import { SECTION_MASK, type page, type vm_area_struct, type address_space, type anon_vma, type mm_struct } from '../include/linux/mm_types.js';
import type { gpt } from '../lib/gpt/gpt.js';
import { PAGE_SIZE, PMD_SIZE, HPAGE_PMD_ORDER } from '../include/linux/mm.js';
import {
  pte_present, pte_write, pte_dirty, pte_soft_dirty, pte_mkwrite, pte_mkdirty, pte_mkyoung, pte_pfn,
  pmd_trans_huge, pmd_pfn, _PAGE_SOFT_DIRTY, pfn_pte, type pte_t,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_entry_to_pte, is_swap_pte, is_migration_entry, is_writable_migration_entry,
  is_readable_exclusive_migration_entry, is_device_private_entry, is_writable_device_private_entry,
  make_writable_migration_entry, make_readable_exclusive_migration_entry, make_readable_migration_entry,
  make_writable_device_private_entry, make_readable_device_private_entry, swp_offset_pfn, _PAGE_SWP_SOFT_DIRTY,
  is_pmd_device_private_entry, pmd_to_swp_entry, is_device_exclusive_entry,
} from '../include/linux/swapops.js';
import {
  PageAnonExclusive, ClearPageAnonExclusive, SetPageDirty, ClearPageDirty, PageDirty, PG_uptodate, PG_referenced,
  PG_active, PG_swapbacked, PG_mlocked, PG_workingset, folio_test_anon, PG_dirty, PG_anon_exclusive,
} from '../include/linux/page-flags.js';
import { is_device_private_page, MEMORY_DEVICE_PRIVATE } from '../include/linux/memremap.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import { EAGAIN } from '../include/uapi/asm-generic/errno.js';
import { might_sleep, type Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock, type spinlock_t } from '../lib/locking/spinlock.js';
import { down_read, down_read_trylock, up_read } from '../lib/locking/rwsem.js';
import { count_event } from '../lib/sim/trace.js';
import { get_page, put_page, pfn_to_page } from './page_alloc.js';
import { struct_page_paths } from './internal.js';
import {
  pmd_off, pmd_lockptr, pte_offset_map, pte_lockptr, ptep_get, ptep_get_and_clear, set_pte_at, flush_tlb_page,
} from './pgtable.js';
import { mk_pte } from './memory.js';
import { folio_add_anon_rmap_pte, folio_add_file_rmap_pte, folio_remove_rmap_pte } from './rmap.js';
import { folio_maybe_dma_pinned } from './gup.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { set_pmd_migration_entry, remove_migration_pmd } from './huge_memory_nonpresent.js';

export const MIGRATEPAGE_SUCCESS = 0;

/**
 * folio_total_mapcount() - every mapping of a folio: for a large folio its
 * PMD mappings plus the PTE mapping of each page (folio_large_mapcount).
 */
export function folio_total_mapcount(f: page): number {
  const h = f.compound_head;
  if (h.order === 0) return h._mapcount + 1;
  const nr = 1 << h.order;
  let n = h._entire_mapcount + 1 + nr;
  /*
   * Linux reads one counter (folio->_large_mapcount); the model sums the
   * pages' _mapcount, straight from the section's array (a folio never
   * crosses a section: both are aligned and a section is the larger), not
   * through a handle per page.
   */
  const ms = h.section, first = h.pfn & SECTION_MASK;
  if (first + nr <= ms.nr) {
    const a = ms._mapcount;
    for (let i = 0; i < nr; i++) n += a[first + i];
    return n;
  }
  n += h._mapcount;
  for (let i = 1; i < nr; i++) n += pfn_to_page(h.pfn + i)._mapcount;
  return n;
}

/** folio_mapped() - is any page-table entry mapping the folio? */
export function folio_mapped(f: page): boolean {
  return folio_total_mapcount(f) > 0;
}

/** folio_mapping() - the page cache a folio belongs to; null for anonymous memory. */
export function folio_mapping(f: page): address_space | null {
  const m = f.compound_head.mapping;
  return m !== null && m.kind === 'file' ? m : null;
}

/*
 * folio_vma_ranges() - where the pages of folio @f may be mapped: in each
 * VMA of its rmap, the address of its first page (which may lie outside
 * the VMA after a partial munmap or mremap) and the part of the folio's
 * span inside the VMA. The rmap walk finds candidates; callers check the
 * PTE.
 */
export function folio_vma_ranges(f: page): { vma: vm_area_struct; base: number; start: number; end: number }[] {
  const m = f.mapping;
  if (m === null) return [];
  const nr = 1 << f.order;
  const out: { vma: vm_area_struct; base: number; start: number; end: number }[] = [];
  const vmas = m.kind === 'anon' ? [...m.vmas] : [...m.i_mmap];
  for (const vma of vmas) {
    const base = vma.vm_start + (f.index - vma.vm_pgoff) * PAGE_SIZE;
    const start = Math.max(base, vma.vm_start), end = Math.min(base + nr * PAGE_SIZE, vma.vm_end);
    if (start < end) out.push({ vma, base, start, end });
  }
  return out;
}

/*
 * The split PTE lock of the PTE page remove_migration_pte() used last.
 * pte_lockptr() (mm/pgtable.ts) gives one spinlock per PTE page slot of a
 * table for the table's whole life, so a run of pages in one PTE page
 * (the finalize of a migration window) looks it up once; each page still
 * takes and drops it, as Linux's page_vma_mapped_walk() does per folio.
 * Holds the last table's gpt until another table's PTE is restored.
 */
let ptl_pgd: gpt | null = null, ptl_dir = -1, ptl_last: spinlock_t | null = null;

/* migration_pte_lockptr() - pte_lockptr(@mm, @ptep) through the one-entry cache above */
function migration_pte_lockptr(mm: mm_struct, ptep: number): spinlock_t {
  const dir = mm.pgd.dir_of(ptep);
  if (mm.pgd !== ptl_pgd || dir !== ptl_dir || ptl_last === null) {
    ptl_last = pte_lockptr(mm, ptep);
    ptl_pgd = mm.pgd;
    ptl_dir = dir;
  }
  return ptl_last;
}

/*
 * restore_one() - the rest of remove_migration_pte() for the head page
 * of @dst (an order-0 folio, or page 0 of a large one), PTE lock held:
 * the new entry (a device-private entry, or a present PTE young, dirty
 * when writable and PageDirty), get_page(), folio_add_anon_rmap_pte() or
 * folio_add_file_rmap_pte(), set_pte_at(). Linux's steps in Linux's
 * order, each named, on the folio's mem_section arrays at its index
 * rather than through handle accessors; get_page() of a free page goes
 * through the helper for its BUG.
 */
function restore_one(dst: page, vma: vm_area_struct, addr: number, ptep: number, writable: boolean, exclusive: boolean,
                     soft_dirty: boolean): void {
  const ms = dst.section, i = dst.pfn & SECTION_MASK, flags = ms.flags;
  const pgmap = ms.pgmap_of === null ? ms.pgmap : ms.pgmap_of[i];
  let pte: pte_t;
  if (pgmap !== null && pgmap.type === MEMORY_DEVICE_PRIVATE) {         /* is_device_private_page(dst) */
    const e = writable ? make_writable_device_private_entry(dst.pfn) : make_readable_device_private_entry(dst.pfn);
    pte = swp_entry_to_pte(e);
    if (soft_dirty) pte += _PAGE_SWP_SOFT_DIRTY;
  } else {
    pte = pte_mkyoung(pfn_pte(dst.pfn, vma.vm_page_prot));            /* mk_pte() */
    pte -= pte & _PAGE_SOFT_DIRTY;
    if (soft_dirty) pte += _PAGE_SOFT_DIRTY;
    if (writable) {
      pte = pte_mkwrite(pte);
      if ((flags[i] & (1 << PG_dirty)) !== 0) pte = pte_mkdirty(pte);  /* PageDirty(dst) */
    }
  }
  if (ms._refcount[i] <= 0) get_page(dst);                             /* get_page() of a free page: its BUG */
  ms._refcount[i]++;                                                   /* get_page() */
  const mapping = ms.mapping[i];
  const mapcount = ++ms._mapcount[i];                                  /* folio_add_{anon,file}_rmap_pte() */
  if (mapping !== null && mapping.kind === 'anon') {                   /* folio_test_anon(dst) */
    if (exclusive) flags[i] |= 1 << PG_anon_exclusive;
    else if (mapcount > 0) flags[i] &= ~(1 << PG_anon_exclusive);
  }
  set_pte_at(vma.vm_mm, addr, ptep, pte);
}

/*
 * remove_migration_pte() - at one address, turn a migration entry for
 * @src_pfn into a mapping of page @d (a page of the destination folio
 * @dst). Return true if it did.
 */
function remove_migration_pte(dst: page, d: page, src_pfn: number, vma: vm_area_struct, addr: number): boolean {
  const mm = vma.vm_mm;
  const ptep = pte_offset_map(mm, addr);
  if (ptep < 0) return false;
  const ptl = migration_pte_lockptr(mm, ptep);
  spin_lock(ptl);
  const old = ptep_get(mm, ptep);
  if (!is_swap_pte(old)) { spin_unlock(ptl); return false; }
  const entry = pte_to_swp_entry(old);
  if (!is_migration_entry(entry) || swp_offset_pfn(entry) !== src_pfn) { spin_unlock(ptl); return false; }
  const writable = is_writable_migration_entry(entry);
  const exclusive = writable || is_readable_exclusive_migration_entry(entry);
  const soft_dirty = (old & _PAGE_SWP_SOFT_DIRTY) !== 0;
  if (d.pfn === dst.pfn && struct_page_paths.direct) {
    restore_one(dst, vma, addr, ptep, writable, exclusive, soft_dirty);
    spin_unlock(ptl);
    return true;
  }
  let pte: pte_t;
  if (is_device_private_page(dst)) {
    const e = writable ? make_writable_device_private_entry(d.pfn) : make_readable_device_private_entry(d.pfn);
    pte = swp_entry_to_pte(e);
    if (soft_dirty) pte += _PAGE_SWP_SOFT_DIRTY;
  } else {
    pte = pte_mkyoung(mk_pte(d, vma.vm_page_prot));
    pte -= pte & _PAGE_SOFT_DIRTY;
    if (soft_dirty) pte += _PAGE_SOFT_DIRTY;
    if (writable) {
      pte = pte_mkwrite(pte);
      if (PageDirty(dst)) pte = pte_mkdirty(pte);
    }
  }
  get_page(d);
  if (folio_test_anon(dst)) folio_add_anon_rmap_pte(d, vma, addr, exclusive);
  else folio_add_file_rmap_pte(d, vma);
  set_pte_at(mm, addr, ptep, pte);
  spin_unlock(ptl);
  return true;
}

/* does [start, end) of a VMA cover the whole PMD-aligned span of a PMD-sized folio based at @base? */
function pmd_span(f: page, base: number, start: number, end: number): boolean {
  return f.order === HPAGE_PMD_ORDER && base % PMD_SIZE === 0 && start === base && end === base + PMD_SIZE;
}

/**
 * remove_migration_ptes() - replace every migration entry for a page of
 * folio @src by a mapping of the page at the same offset in folio @dst
 * (@dst === @src restores the original mappings after a failed
 * migration). A device-private @dst is mapped with SWP_DEVICE_WRITE/READ
 * entries, anything else with present PTEs; a PMD migration entry (a
 * PMD-sized @src migrated as a whole) becomes one PMD mapping of @dst
 * (remove_migration_pmd), PTE migration entries one PTE each.
 * The walk holds the anon_vma rwsem for read (rmap_walk_anon ->
 * anon_vma_lock_read): fork links a child's VMA under it for write and
 * only then copies the PTEs, so a child either joins before the walk
 * (and its copied migration entries are restored too) or copies PTEs the
 * walk has already restored.
 * Context: @src and @dst locked; mmap_lock of the mm(s) held or the VMAs
 * otherwise stable; may sleep (the anon_vma rwsem); takes PMD and PTE
 * locks. Return: mappings restored.
 */
export function* remove_migration_ptes(src: page, dst: page): Sleepable<number> {
  const n = remove_migration_ptes_trylock(src, dst);
  if (n >= 0) return n;
  const sem = ((src.mapping !== null ? src : dst).mapping as anon_vma).rwsem;
  if (sem !== null) yield* down_read(sem);
  return remove_migration_ptes_locked(src, dst);
}

/**
 * remove_migration_ptes_trylock() - remove_migration_ptes() as a plain
 * call when the anon_vma rwsem is free: down_read()'s own fast path
 * (rwsem_read_trylock), which also lets a caller looping over many folios
 * avoid a Sleepable frame per folio.
 * Context: as remove_migration_ptes(). Return: mappings restored, or -1
 * (nothing done, nothing taken) when the rwsem is contended: call
 * remove_migration_ptes().
 */
export function remove_migration_ptes_trylock(src: page, dst: page): number {
  /* dst took src's mapping and index in folio_migrate_mapping(), so either rmap finds the VMAs */
  const m = (src.mapping !== null ? src : dst).mapping;
  if (m === null) {
    count_event('remove_migration_ptes', 0);
    return 0;
  }
  const sem = m.kind === 'anon' ? m.rwsem : null;
  if (sem !== null) {
    might_sleep();
    if (!down_read_trylock(sem)) return -1;
  }
  return remove_migration_ptes_locked(src, dst);
}

/* the rmap walk of remove_migration_ptes(), the anon_vma rwsem taken (dropped here) */
function remove_migration_ptes_locked(src: page, dst: page): number {
  const m = (src.mapping !== null ? src : dst).mapping!;
  const n = remove_migration_ptes_walk(src, dst, m.kind === 'anon' ? m.vmas : m.i_mmap);
  const sem = m.kind === 'anon' ? m.rwsem : null;
  if (sem !== null) up_read(sem);
  count_event('remove_migration_ptes', n);
  return n;
}

/**
 * remove_migration_ptes_walk() - the rmap walk of remove_migration_ptes()
 * over @vmas (the VMAs of the folio's anon_vma or file), with the lock
 * that keeps them stable already held by the caller; counts nothing.
 * Context: as remove_migration_ptes(), anon_vma rwsem (or i_mmap) held.
 * Return: mappings restored.
 */
export function remove_migration_ptes_walk(src: page, dst: page,
                                           vmas: readonly vm_area_struct[] | Set<vm_area_struct>): number {
  let n = 0;
  const f = src.mapping !== null ? src : dst;
  if (vmas instanceof Set) {
    for (const vma of vmas) n += remove_migration_ptes_vma(src, dst, f, vma);
  } else {
    for (let k = 0; k < vmas.length; k++) n += remove_migration_ptes_vma(src, dst, f, vmas[k]);   /* no iterator per folio */
  }
  return n;
}

/* remove_migration_ptes_walk() in one VMA: the folio's range there (folio_vma_ranges(), without building it) */
function remove_migration_ptes_vma(src: page, dst: page, f: page, vma: vm_area_struct): number {
  const base = vma.vm_start + (f.index - vma.vm_pgoff) * PAGE_SIZE;
  const start = Math.max(base, vma.vm_start), end = Math.min(base + (1 << f.order) * PAGE_SIZE, vma.vm_end);
  if (start >= end) return 0;
  if (pmd_span(src, base, start, end) && dst.order === HPAGE_PMD_ORDER && remove_migration_pmd(dst, src.pfn, vma, base)) {
    return 1;
  }
  let n = 0;
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    const j = (addr - base) / PAGE_SIZE;
    if (remove_migration_pte(dst, j === 0 ? dst : pfn_to_page(dst.pfn + j), src.pfn + j, vma, addr)) n++;
  }
  return n;
}

/*
 * try_to_migrate_one() - in one VMA, replace the mappings of folio @f (present
 * PTEs, device-private or device-exclusive entries, or a PMD mapping the whole folio) in
 * [start, end) by migration entries, inside one MMU_NOTIFY_CLEAR.
 * Return: false if the folio turned out to be DMA-pinned (stop the walk).
 */
function* try_to_migrate_one(f: page, vma: vm_area_struct, base: number, start: number, end: number): Sleepable<boolean> {
  const mm = vma.vm_mm;
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, start, end);
  yield* mmu_notifier_invalidate_range_start(range);
  let ok = true;
  if (pmd_span(f, base, start, end)) ok = migrate_one_pmd(f, vma, base);
  for (let addr = start; addr < end && ok; addr += PAGE_SIZE) {
    const ptep = pte_offset_map(mm, addr);
    if (ptep < 0) continue;
    const ptl = pte_lockptr(mm, ptep);
    spin_lock(ptl);
    ok = migrate_one_pte(f, f.pfn + (addr - base) / PAGE_SIZE, vma, addr, ptep);
    spin_unlock(ptl);
  }
  yield* mmu_notifier_invalidate_range_end(range);
  return ok;
}

/* the PMD of try_to_migrate_one(): a present huge PMD or device-private PMD mapping @f becomes a PMD migration entry */
function migrate_one_pmd(f: page, vma: vm_area_struct, haddr: number): boolean {
  const mm = vma.vm_mm;
  const pmdp = pmd_off(mm, haddr);
  if (pmdp < 0) return true;
  const ptl = pmd_lockptr(mm, pmdp);
  spin_lock(ptl);
  const pmd = mm.pgd.load(pmdp);
  const maps = pmd_trans_huge(pmd) ? pmd_pfn(pmd) === f.pfn
    : is_pmd_device_private_entry(pmd) && swp_offset_pfn(pmd_to_swp_entry(pmd)) === f.pfn;
  const ok = !maps || set_pmd_migration_entry(vma, pmdp, haddr, f) === 0;
  spin_unlock(ptl);
  if (maps && ok) count_event('try_to_migrate_one_pmd');
  return ok;
}

/* the locked part of try_to_migrate_one() for page @pfn of folio @f; caller holds the PTE lock */
function migrate_one_pte(f: page, pfn: number, vma: vm_area_struct, addr: number, ptep: number): boolean {
  const mm = vma.vm_mm;
  const pte = ptep_get(mm, ptep);
  let writable: boolean;
  if (pte_present(pte)) {
    if (pte_pfn(pte) !== pfn) return true;
    writable = pte_write(pte);
  } else if (is_swap_pte(pte)) {
    /*
     * PFN swap entries that map the page: device-private, and (Linux 6.15+)
     * device-exclusive, which counts as an ordinary mapping of the folio. Only
     * a writable device-private entry gives a writable migration entry; an
     * exclusive one becomes readable-exclusive (its page is AnonExclusive).
     */
    const e = pte_to_swp_entry(pte);
    if (!(is_device_private_entry(e) || is_device_exclusive_entry(e)) || swp_offset_pfn(e) !== pfn) return true;
    writable = is_writable_device_private_entry(e);
  } else {
    return true;
  }
  const p = pfn === f.pfn ? f : pfn_to_page(pfn);
  const anon_exclusive = folio_test_anon(f) && PageAnonExclusive(p);
  const old = ptep_get_and_clear(mm, addr, ptep);
  if (pte_present(old)) flush_tlb_page(vma, addr);
  if (anon_exclusive && !is_device_private_page(f)) {
    /* a pinned exclusive page must stay exclusive: give up */
    if (folio_maybe_dma_pinned(f)) { set_pte_at(mm, addr, ptep, old); return false; }
  }
  if (anon_exclusive) ClearPageAnonExclusive(p);
  if (pte_present(old) && pte_dirty(old)) SetPageDirty(f);
  const e = writable ? make_writable_migration_entry(pfn)
    : anon_exclusive ? make_readable_exclusive_migration_entry(pfn)
      : make_readable_migration_entry(pfn);
  let swp = swp_entry_to_pte(e);
  const sd = pte_present(old) ? pte_soft_dirty(old) : (old & _PAGE_SWP_SOFT_DIRTY) !== 0;
  if (sd) swp += _PAGE_SWP_SOFT_DIRTY;
  set_pte_at(mm, addr, ptep, swp);
  folio_remove_rmap_pte(p, vma);
  put_page(p);
  count_event('try_to_migrate_one');
  return true;
}

/**
 * try_to_migrate() - replace every mapping of folio @f, in every mm, by
 * migration entries: each VMA's part inside its own MMU_NOTIFY_CLEAR. A
 * DMA-pinned anonymous page keeps its mappings.
 * Context: @f locked and referenced by the caller; may sleep (notifiers).
 */
export function* try_to_migrate(f: page): Sleepable {
  /* rmap_walk_anon: the anon_vma rwsem for read across the walk (the notifiers may sleep) */
  const sem = f.mapping !== null && f.mapping.kind === 'anon' ? f.mapping.rwsem : null;
  if (sem !== null) yield* down_read(sem);
  try {
    for (const { vma, base, start, end } of folio_vma_ranges(f)) {
      if (!folio_mapped(f)) break;
      if (!(yield* try_to_migrate_one(f, vma, base, start, end))) break;
    }
  } finally {
    if (sem !== null) up_read(sem);
  }
}

/**
 * folio_migrate_mapping() - give @newf the place of @f in its mapping.
 * @mapping: folio_mapping(@f): null for anonymous memory.
 * @extra_count: references the caller holds beyond the usual one
 *               (1 for the faulting page of a device-private fault).
 *
 * Fails if someone else holds a reference (a GUP pin, a racing lookup):
 * the caller must then keep @f. For page-cache folios the cache slot and
 * its reference move to @newf.
 * Context: both folios locked. Return: MIGRATEPAGE_SUCCESS or -EAGAIN.
 */
export function folio_migrate_mapping(mapping: address_space | null, newf: page, f: page, extra_count: number): number {
  const expected = 1 + extra_count + (mapping !== null ? 1 : 0);
  if (f._refcount !== expected) return -EAGAIN;
  newf.index = f.index;
  newf.mapping = f.mapping;
  if (f.flags & (1 << PG_swapbacked)) newf.flags |= 1 << PG_swapbacked;
  if (mapping !== null) {
    mapping.i_pages.set(f.index, newf);
    newf._refcount++;         /* the page cache's reference moves to the copy */
    f._refcount--;
  }
  return MIGRATEPAGE_SUCCESS;
}

/**
 * folio_migrate_flags() - copy the state bits (dirty, uptodate, LRU
 * hints, mlock) and the memcg charge from @f to @newf.
 * Context: both folios locked.
 */
const MIGRATE_FLAGS = (1 << PG_uptodate) | (1 << PG_referenced) | (1 << PG_active) | (1 << PG_workingset) |
  (1 << PG_mlocked);

export function folio_migrate_flags(newf: page, f: page): void {
  if (f.flags & MIGRATE_FLAGS) newf.flags |= f.flags & MIGRATE_FLAGS;
  if (PageDirty(f)) { ClearPageDirty(f); SetPageDirty(newf); }
  newf.memcg = f.memcg;       /* mem_cgroup_migrate(): the charge follows the data */
  f.memcg = null;
}

