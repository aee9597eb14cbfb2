/*
 * mm/migrate_device_huge.ts - large folios in device migration: a THP
 * migrated to device memory as one unit, and the splits when it cannot
 * be.
 *
 * Models the large-folio half of mm/migrate_device.c (Linux 6.19, Balbir
 * Singh's "mm: support device-private THP" series:
 * MIGRATE_VMA_SELECT_COMPOUND, MIGRATE_PFN_COMPOUND,
 * migrate_vma_collect_huge_pmd(), migrate_vma_insert_huge_pmd_page(), the
 * split fallback, and pgmap->ops->folio_split for device THPs). The base
 * API is in mm/migrate_device.ts; the flags in include/linux/migrate.ts;
 * the PMD entries in mm/huge_memory_nonpresent.ts.
 *
 * With MIGRATE_VMA_SELECT_COMPOUND, a PMD-aligned 2 MiB chunk of the range
 * is collected as ONE entry when a PMD maps a whole order-9 folio (a
 * present THP, or a device-private THP of the caller's pgmap owner), or
 * nothing at all (a hole, or the huge zero page):
 *
 *     src[i]        = migrate_pfn(head) | MIGRATE | COMPOUND [| WRITE]
 *     src[i+1..511] = 0
 *
 * The PMD becomes one PMD migration entry (set_pmd_migration_entry). The
 * driver answers with a folio of the same order (dst[i] | COMPOUND):
 * finalize maps it with one PMD, a device-private PMD (SWP_DEVICE_WRITE/
 * READ, head pfn) for device-private memory, a present huge PMD
 * otherwise; a hole gets the same from migrate_vma_insert_huge_pmd_page().
 * When the driver has no large folio it answers with 512 small pages (no
 * COMPOUND): the core then splits the PMD migration entry into 512 PTE
 * ones, and the source folio with it, and migrates page by page.
 *
 * Without COMPOUND (or for a chunk the range covers only in part) a huge
 * PMD is split first and its folio split by the PTE walk: a system THP
 * with split_folio(), a device folio in place with
 * migrate_device_split_folio(). That is how a CPU fault through a PTE
 * (after a partial munmap or mprotect split the device PMD) brings back
 * a single page.
 *
 * A compound hole is a PMD with nothing at all (or the huge zero page):
 * under a PTE page, even one holding only none and zero-page entries,
 * each page is its own entry, and a large folio mapped by PTEs is split,
 * as in Linux.
 */
import type { page, vm_area_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, PMD_SIZE, HPAGE_PMD_NR, HPAGE_PMD_ORDER, VM_WRITE, vma_is_anonymous, add_mm_counter,
} from '../include/linux/mm.js';
import {
  pte_present, pmd_trans_huge, pmd_write, pmd_pfn, pmd_mkwrite, pmd_mkdirty, pfn_pmd, type pte_t, type pmd_t,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, is_swap_pte, is_device_private_entry, make_writable_device_private_entry,
  make_readable_device_private_entry, is_writable_device_private_entry, swp_offset_pfn, swp_entry_to_pmd,
  pmd_to_swp_entry, is_pmd_device_private_entry, is_pmd_migration_entry,
} from '../include/linux/swapops.js';
import {
  SetPageUptodate, PG_locked, PG_head, PG_anon_exclusive, PG_hwpoison,
} from '../include/linux/page-flags.js';
import {
  is_device_private_page, is_device_coherent_page, is_zone_device_page,
} from '../include/linux/memremap.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, MIGRATE_VMA_SELECT_SYSTEM,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_COMPOUND,
  migrate_pfn, type migrate_vma,
} from '../include/linux/migrate.js';
import { EAGAIN, ENOENT } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { pfn_to_page, get_page, put_page } from './page_alloc.js';
import { pte_offset_map, pmd_off, pmd_alloc, pmd_lockptr, ptep_get, flush_tlb_range } from './pgtable.js';
import { vm_normal_page } from './memory.js';
import { anon_vma_prepare } from './rmap.js';
import { folio_trylock, folio_unlock } from './filemap.js';
import { split_folio, __split_huge_pmd } from './huge_memory_split.js';
import { is_huge_zero_pmd, folio_add_new_anon_rmap_pmd } from './huge_memory.js';
import { set_pmd_migration_entry } from './huge_memory_nonpresent.js';
import { folio_total_mapcount, folio_vma_ranges } from './migrate.js';
import { mem_cgroup_charge_sleepable } from './memcontrol.js';
import { folio_add_lru_vma } from './swap.js';
import { GFP_KERNEL } from '../include/linux/gfp.js';

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

/* migrate_vma_collect_skip() for [start, end): entries the migration does not touch */
function collect_skip_range(m: migrate_vma, start: number, end: number): void {
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    m.src[m.npages] = 0;
    m.dst[m.npages++] = 0;
  }
}

/* the folio a PMD leaf maps, if the migration may select it; null to skip the chunk */
function pmd_selectable(m: migrate_vma, pmd: pmd_t): page | null {
  if (pmd_trans_huge(pmd)) {
    const f = pfn_to_page(pmd_pfn(pmd));
    if (is_device_coherent_page(f)) {
      return (m.flags & MIGRATE_VMA_SELECT_DEVICE_COHERENT) && f.pgmap!.owner === m.pgmap_owner ? f : null;
    }
    return !is_zone_device_page(f) && (m.flags & MIGRATE_VMA_SELECT_SYSTEM) ? f : null;
  }
  if (!is_pmd_device_private_entry(pmd)) return null;        /* a THP someone else is migrating */
  const f = pfn_to_page(swp_offset_pfn(pmd_to_swp_entry(pmd)));
  return (m.flags & MIGRATE_VMA_SELECT_DEVICE_PRIVATE) && f.pgmap!.owner === m.pgmap_owner ? f : null;
}

/**
 * migrate_vma_collect_huge_pmd() - collect the chunk [start, end) that
 * the PMD leaf at @pmdp maps: a present THP (not the huge zero page, see
 * the caller) or a device-private PMD. With MIGRATE_VMA_SELECT_COMPOUND
 * and a whole aligned chunk, the folio is locked and its PMD replaced by
 * a PMD migration entry: one compound entry. Otherwise (or when the THP
 * may be DMA-pinned) the PMD is split and the PTE walk goes on.
 * Context: mmap_lock held; takes the PMD lock; may sleep (the split).
 * Return: 0 when the chunk's entries were recorded (migrating, or
 * skipped: not selected, or locked by someone else); -ENOENT after a
 * split: collect the PTEs.
 */
export function* migrate_vma_collect_huge_pmd(m: migrate_vma, pmdp: number, start: number,
                                              end: number): Sleepable<number> {
  const vma = m.vma, mm = vma.vm_mm;
  const fault_folio = m.fault_page !== null ? m.fault_page.compound_head : null;
  const ptl = pmd_lockptr(mm, pmdp);
  spin_lock(ptl);
  const pmd = mm.pgd.load(pmdp);
  const f = pmd_selectable(m, pmd);
  if (f === null) { spin_unlock(ptl); collect_skip_range(m, start, end); return 0; }
  const write = pmd_trans_huge(pmd) ? pmd_write(pmd) : is_writable_device_private_entry(pmd_to_swp_entry(pmd));
  get_page(f);
  if (fault_folio?.pfn !== f.pfn && !folio_trylock(f)) {
    spin_unlock(ptl);
    put_page(f);
    collect_skip_range(m, start, end);
    return 0;
  }
  if (compound_chunk(m, start, end) && set_pmd_migration_entry(vma, pmdp, start, f) === 0) {
    record_compound(m, migrate_pfn(f.pfn) | MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND |
      (write ? MIGRATE_PFN_WRITE : 0));
    m.cpages++;
    spin_unlock(ptl);
    count_event('migrate_collect_compound');
    trace_event('migrate_vma_collect_huge_pmd', { mm: mm.id, addr: start, pfn: f.pfn, write });
    return 0;
  }
  /* fallback: split the PMD; the PTE walk splits the folio (or skips it if it cannot be split) */
  spin_unlock(ptl);
  if (fault_folio?.pfn !== f.pfn) folio_unlock(f);
  put_page(f);
  yield* __split_huge_pmd(vma, pmdp, start);
  count_event('migrate_collect_huge_pmd_split');
  return -ENOENT;
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
 * migrate_device_split_folio() - split a PTE-mapped device folio (private
 * or coherent) into small folios where it is: each page keeps its
 * mappings and gets one reference per mapping; the extra references the
 * caller accounts for (@fault_page's, from do_swap_page, and @own, a
 * temporary one on the head) move to their pages. The driver's
 * folio_split callback runs for every new folio, then once with null;
 * then the pages nobody maps any more (after a partial munmap) go back to
 * the driver.
 * The folio lock goes to @fault_page if there is one, else stays on the
 * head (now a small folio the caller unlocks).
 * Context: folio locked. Return: 0, or -EAGAIN if a reference is unaccounted for.
 */
export function migrate_device_split_folio(h: page, fault_page: page | null, own: number): number {
  const nr = 1 << h.order;
  const fault_in = fault_page !== null && fault_page.compound_head.pfn === h.pfn ? 1 : 0;
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
  for (let j = 1; j < nr; j++) {
    const t = pfn_to_page(h.pfn + j);
    if (t._refcount === 0) { t._refcount = 1; put_page(t); }      /* unmapped: free it */
  }
  /* the folio lock stays with the faulting page (do_swap_page unlocks it); otherwise on the head */
  if (fault_in && fault_page!.pfn !== h.pfn) {
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
      if (fault_folio?.pfn === f.pfn) migrate_device_split_folio(f, m.fault_page, 1);
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
 * it 2^order small folios, each locked and held the same way. When the
 * migration serves a CPU fault on @h (@fault_page, the head that
 * do_huge_pmd_device_private() locked and referenced), that fault's
 * reference stays with the head: the tails must not inherit it, or no
 * later migration could ever take them (migrate_vma_check_page).
 * Context: folio locked.
 */
export function split_unmapped_folio(h: page, fault_page: page | null = null): void {
  const nr = 1 << h.order;
  const tail_ref = h._refcount - (fault_page?.pfn === h.pfn ? 1 : 0);
  const keep = h.flags & ~((1 << PG_head) | (1 << PG_anon_exclusive) | (1 << PG_hwpoison));
  for (let j = 1; j < nr; j++) {
    const t = pfn_to_page(h.pfn + j);
    t.compound_head = t;
    t.flags = (t.flags & ((1 << PG_anon_exclusive) | (1 << PG_hwpoison))) | keep;
    t.mapping = h.mapping;
    t.index = h.index + j;
    t.memcg = h.memcg;
    t._refcount = tail_ref;
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

/*
 * split_pmd_migration_entries() - before the unmapped folio @h is split:
 * every PMD migration entry for it, in every VMA of its rmap, becomes 512
 * PTE migration entries (split_huge_pmd_address with freeze in Linux,
 * which does it in the migrating VMA only).
 */
function* split_pmd_migration_entries(h: page): Sleepable {
  for (const { vma, base, start, end } of folio_vma_ranges(h)) {
    if (base % PMD_SIZE !== 0 || start !== base || end !== base + PMD_SIZE) continue;
    const pmdp = pmd_off(vma.vm_mm, base);
    if (pmdp < 0) continue;
    const pmd = vma.vm_mm.pgd.load(pmdp);
    if (!is_pmd_migration_entry(pmd) || swp_offset_pfn(pmd_to_swp_entry(pmd)) !== h.pfn) continue;
    yield* __split_huge_pmd(vma, pmdp, base);
  }
}

/**
 * expand_compound_entry() - the driver answered a compound entry with
 * small pages: turn src[i] into 2^order small entries (splitting the PMD
 * migration entries of the source folio, if any, then the folio) so that
 * each is migrated on its own. @fault_page: the migration's fault page.
 * Context: source locked and unmapped; may sleep (the PMD splits).
 */
export function* expand_compound_entry(src: Float64Array | number[], i: number, npages: number,
                                       p: page | null, fault_page: page | null = null): Sleepable {
  const write = src[i] & MIGRATE_PFN_WRITE;
  const nr = p !== null ? 1 << p.compound_head.order : HPAGE_PMD_NR;
  if (p !== null) {
    yield* split_pmd_migration_entries(p.compound_head);
    split_unmapped_folio(p.compound_head, fault_page);
  }
  for (let j = 0; j < nr && i + j < npages; j++) {
    src[i + j] = p !== null ? migrate_pfn(p.pfn + j) | MIGRATE_PFN_MIGRATE | write : MIGRATE_PFN_MIGRATE;
  }
  count_event('migrate_compound_fallback');
}

/*
 * pmd_for_huge_leaf() - the PMD at @addr, if a huge leaf may go there:
 * empty, or the huge zero page (to be replaced: flush). Anything else
 * (a PTE page, another leaf) was mapped since the hole was collected.
 * Context: PMD lock held. Return: the PMD pointer, or -1.
 */
function pmd_for_huge_leaf(mm: vm_area_struct['vm_mm'], addr: number): { pmdp: number; flush: boolean } {
  const pmdp = pmd_off(mm, addr);
  if (pmdp < 0) return { pmdp: -1, flush: false };
  const pmd = mm.pgd.load(pmdp);
  if (pmd === 0) return { pmdp, flush: false };
  return pmd_trans_huge(pmd) && is_huge_zero_pmd(pmd) ? { pmdp, flush: true } : { pmdp: -1, flush: false };
}

/**
 * migrate_vma_insert_huge_pmd_page() - populate a compound hole with a
 * whole destination folio mapped by ONE PMD: a device-private PMD
 * (writable if the VMA is) for device-private memory, a present huge PMD
 * (writable and dirty if the VMA is writable) for a device-coherent or
 * system folio. The huge-PMD twin of migrate_vma_insert_page(), after
 * __do_huge_pmd_anonymous_page(). Clears MIGRATE in src[i] on any
 * failure (not anonymous, not a whole aligned 2 MiB inside the VMA,
 * charge, something mapped meanwhile).
 * Context: mmap_lock held; inside the caller's invalidation; may sleep (the
 * memcg charge); takes the PMD lock.
 */
export function* migrate_vma_insert_huge_pmd_page(m: migrate_vma, addr: number, f: page, src: Float64Array | number[],
                                                  i: number): Sleepable {
  const vma: vm_area_struct = m.vma, mm = vma.vm_mm;
  const abort = () => { src[i] -= src[i] & MIGRATE_PFN_MIGRATE; count_event('migrate_insert_abort'); };
  if (f.order !== HPAGE_PMD_ORDER || !vma_is_anonymous(vma) || addr % PMD_SIZE !== 0 || addr < vma.vm_start ||
      addr + PMD_SIZE > vma.vm_end) return abort();
  if (anon_vma_prepare(vma) !== 0) return abort();
  if ((yield* mem_cgroup_charge_sleepable(f, mm, GFP_KERNEL)) !== 0) return abort();   /* may sleep, as Linux's charge */
  SetPageUptodate(f);
  const writable = (vma.vm_flags & VM_WRITE) !== 0;
  let entry: pmd_t;
  if (is_device_private_page(f)) {
    const e = writable ? make_writable_device_private_entry(f.pfn) : make_readable_device_private_entry(f.pfn);
    entry = swp_entry_to_pmd(e);
  } else {
    if (is_zone_device_page(f) && !is_device_coherent_page(f)) return abort();
    entry = pfn_pmd(f.pfn, vma.vm_page_prot);
    if (writable) entry = pmd_mkwrite(pmd_mkdirty(entry));
  }
  if (pmd_alloc(mm, addr) < 0) return abort();
  const ptl = pmd_lockptr(mm, pmd_off(mm, addr));
  spin_lock(ptl);
  const { pmdp, flush } = pmd_for_huge_leaf(mm, addr);
  if (pmdp < 0) { spin_unlock(ptl); return abort(); }
  add_mm_counter(mm, MM_ANONPAGES, HPAGE_PMD_NR);
  folio_add_new_anon_rmap_pmd(f, vma, addr);
  if (!is_zone_device_page(f)) folio_add_lru_vma(f, vma);
  get_page(f);
  if (flush) {
    mm.pgd.set(pmdp, 0);
    flush_tlb_range(vma, addr, addr + PMD_SIZE);
  }
  mm.pgd.set(pmdp, entry);
  spin_unlock(ptl);
  src[i] = MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND;
  count_event('migrate_insert_huge_pmd_page');
  trace_event('migrate_vma_insert_huge_pmd_page', { mm: mm.id, addr, pfn: f.pfn, private: is_device_private_page(f) });
}
