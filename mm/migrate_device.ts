/*
 * mm/migrate_device.ts - migrating a virtual range to device memory and
 * back: migrate_vma_setup() / migrate_vma_pages() / migrate_vma_finalize(),
 * and the driver-side eviction migrate_device_range() / _pages() /
 * _finalize().
 *
 * Models mm/migrate_device.c (Linux 6.x; split out of mm/migrate.c in
 * 6.0). The API, the encoding of src[]/dst[] and the lock order are in
 * include/linux/migrate.ts; the walk-through is the "Migration" section
 * of Documentation/vm/hmm.txt. The steps, as Linux orders them:
 *
 *   setup:    collect   walk the range under one MMU_NOTIFY_MIGRATE
 *                       invalidation tagged with pgmap_owner; select pages
 *                       by the SELECT flags and owner; trylock each one and
 *                       replace its PTE by a migration entry on the spot
 *                       (mm/migrate_device_collect.ts)
 *             unmap     isolate from the LRU, try_to_migrate() mappings in
 *                       other mms, check for extra references (GUP pins);
 *                       a page that fails gets its mappings back (restore)
 *   driver:             allocate, lock and fill destinations; set dst[]
 *   pages:              move each source's identity (anon rmap anchor,
 *                       index, flags, memcg) to its destination; holes in
 *                       anonymous VMAs get a brand new mapping
 *   driver:             update the device page table
 *   finalize:           migration entries become mappings of the winner
 *                       (the destination if still MIGRATE, else the
 *                       source); unlock and release both
 *
 * The collect walk is in mm/migrate_device_collect.ts, finalize (and its
 * batch) in mm/migrate_device_finalize.ts. Large folios
 * (MIGRATE_VMA_SELECT_COMPOUND: a THP collected into one PMD migration entry and mapped on the device
 * side by one device-private PMD; the split fallback) are in
 * mm/migrate_device_huge.ts.
 */
import type { page } from '../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, HPAGE_PMD_NR, VM_WRITE, VM_SPECIAL, VM_HUGETLB, vma_is_anonymous, inc_mm_counter,
} from '../include/linux/mm.js';
import {
  pte_none, pte_present, pte_pfn, pte_mkwrite, pte_mkdirty, pmd_trans_huge, pmd_is_table, type pte_t,
} from '../include/linux/pgtable.js';
import {
  swp_entry_to_pte, make_writable_device_private_entry, make_readable_device_private_entry,
} from '../include/linux/swapops.js';
import { PageLocked, PageWriteback, SetPageUptodate, folio_test_large } from '../include/linux/page-flags.js';
import {
  is_device_private_page, is_device_coherent_page, is_zone_device_page, MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT,
} from '../include/linux/memremap.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_COMPOUND, migrate_pfn, migrate_pfn_to_page, type migrate_vma,
} from '../include/linux/migrate.js';
import {
  MMU_NOTIFY_MIGRATE, MMU_NOTIFIER_RANGE_BLOCKABLE, type mmu_notifier_range,
} from '../include/linux/mmu_notifier.js';
import { GFP_USER, __GFP_NOWARN } from '../include/linux/gfp.js';
import { EINVAL, EBUSY } from '../include/uapi/asm-generic/errno.js';
import { cond_resched, type Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event, trace_event_begin } from '../lib/sim/trace.js';
import {
  pfn_to_page, pfn_valid, put_page, get_page, get_page_unless_zero, is_zero_pfn, alloc_pages_sleepable, copy_highpage,
} from './page_alloc.js';
import {
  pmd_alloc, pte_alloc_map, pte_lockptr, ptep_get, ptep_get_and_clear, set_pte_at, flush_tlb_page,
} from './pgtable.js';
import { mk_pte } from './memory.js';
import { anon_vma_prepare, folio_add_new_anon_rmap } from './rmap.js';
import { folio_trylock, folio_lock, folio_unlock, __folio_set_locked } from './filemap.js';
import {
  folio_mapping, folio_total_mapcount, try_to_migrate, remove_migration_ptes,
  folio_migrate_mapping,
  folio_migrate_flags, MIGRATEPAGE_SUCCESS,
} from './migrate.js';
import {
  mmu_notifier_range_init_owner, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { mmap_assert_locked } from './mmap_lock.js';
import { __split_huge_pmd, is_huge_zero_pmd } from './huge_memory.js';
import { expand_compound_entry, migrate_vma_insert_huge_pmd_page } from './migrate_device_huge.js';
import { BUG } from '../include/asm-generic/bug.js';
import { mem_cgroup_charge_sleepable } from './memcontrol.js';
import { folio_add_lru, folio_isolate_lru, folio_putback_lru } from './swap.js';
import { GFP_KERNEL } from '../include/linux/gfp.js';
import { migrate_vma_collect } from './migrate_device_collect.js';
import { __migrate_device_finalize } from './migrate_device_finalize.js';
/* -------------------------------------------------------------------- unmap */

/*
 * migrate_vma_check_page() - no reference beyond what the migration
 * itself holds may remain (a GUP pin, a racing lookup).
 * @mapcount: folio_mapcount() of @f, which the caller has just read.
 */
function migrate_vma_check_page(p: page, f: page, zone_device: boolean, fault_pfn: number, mapcount: number): boolean {
  let extra = 1 + (p.pfn === fault_pfn ? 1 : 0);   /* collect's (or isolation's) reference, do_swap_page's */
  if (zone_device) extra++;
  if (folio_mapping(f) !== null) extra += 1;    /* the page cache */
  return f._refcount - extra <= mapcount;
}

/* folio_isolate_lru(), whose reference replaces collect's */
function isolate(f: page): boolean {
  if (!folio_isolate_lru(f)) return false;
  put_page(f);          /* isolation took its own reference: drop collect's */
  return true;
}

function putback(f: page): void {
  folio_putback_lru(f);
}

/**
 * migrate_device_unmap() - make sure no mapping is left of each selected
 * source and that nothing else holds it; give the rest their mappings
 * back. Return: entries still migrating.
 * Context: sources locked and referenced; may sleep (try_to_migrate).
 */
function* migrate_device_unmap(src: Float64Array | number[], npages: number, fault_page: page | null): Sleepable<number> {
  const fault_folio = fault_page !== null ? fault_page.compound_head : null;
  const fault_pfn = fault_page !== null ? fault_page.pfn : -1;
  let restore = 0, unmapped = 0;
  yield* cond_resched();        /* lru_add_drain() may sleep: the sources are locked, their entries in place */
  for (let i = 0; i < npages; i++) {
    const p = migrate_pfn_to_page(src[i]);
    if (p === null) {
      if (src[i] & MIGRATE_PFN_MIGRATE) unmapped++;
      continue;
    }
    const f = p.compound_head;
    const zone_device = is_zone_device_page(f);
    if (!zone_device && !isolate(f)) {
      src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
      restore++;
      continue;
    }
    /* one mapcount read per step: a large folio's sums every page */
    let mapcount = folio_total_mapcount(f);
    if (mapcount > 0) {
      yield* try_to_migrate(f);
      mapcount = folio_total_mapcount(f);
    }
    if (mapcount > 0 || !migrate_vma_check_page(p, f, zone_device, fault_pfn, mapcount)) {
      if (!zone_device) { get_page(f); putback(f); }
      src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
      restore++;
      count_event('migrate_unmap_busy');
      continue;
    }
    unmapped++;
  }
  for (let i = 0; i < npages && restore > 0; i++) {
    const p = migrate_pfn_to_page(src[i]);
    if (p === null || (src[i] & MIGRATE_PFN_MIGRATE)) continue;
    const f = p.compound_head;
    yield* remove_migration_ptes(f, f);
    src[i] = 0;
    if (fault_folio?.pfn !== f.pfn) folio_unlock(f);
    put_page(f);
    restore--;
  }
  return unmapped;
}

/* -------------------------------------------------------------------- setup */

function align_down(x: number): number { return x - (x % PAGE_SIZE); }

/**
 * migrate_vma_setup() - collect, lock and unmap the pages of a range.
 * @args: vma, start, end, src, dst, pgmap_owner, flags (MIGRATE_VMA_SELECT_*)
 *        and fault_page filled by the driver.
 *
 * On return, src[i] has MIGRATE set for every entry that may migrate:
 * with VALID and a locked, unmapped page (replaced in the page table by a
 * migration entry), or without VALID for a hole or the zero page in an
 * anonymous VMA (the driver may populate it). Entries that cannot move
 * (pinned, locked by someone else, not selected) are 0. args.cpages is
 * the number of MIGRATE entries, args.npages the number walked. The
 * driver then fills dst[] and calls migrate_vma_pages(); it must always
 * call migrate_vma_finalize() afterwards, even if it migrates nothing.
 *
 * Context: mmap_lock held for read; may sleep (notifiers, try_to_migrate).
 * Return: 0; -EINVAL for a missing, hugetlb or VM_SPECIAL VMA, a range
 * that is empty or not inside the VMA, missing or short src/dst arrays,
 * or a fault_page that is not a locked device-private page.
 */
export function* migrate_vma_setup(args: migrate_vma): Sleepable<number> {
  const nr_pages = Math.floor((args.end - args.start) / PAGE_SIZE);
  args.start = align_down(args.start);
  args.end = align_down(args.end);
  const vma = args.vma;
  if (!vma || (vma.vm_flags & (VM_HUGETLB | VM_SPECIAL))) return -EINVAL;
  if (nr_pages <= 0) return -EINVAL;
  if (args.start < vma.vm_start || args.start >= vma.vm_end) return -EINVAL;
  if (args.end <= vma.vm_start || args.end > vma.vm_end) return -EINVAL;
  if (!args.src || !args.dst || args.src.length < nr_pages || args.dst.length < nr_pages) return -EINVAL;
  args.fault_page = args.fault_page ?? null;
  if (args.fault_page && !is_device_private_page(args.fault_page)) return -EINVAL;
  if (args.fault_page && !PageLocked(args.fault_page.compound_head)) return -EINVAL;
  mmap_assert_locked(vma.vm_mm);

  trace_event_begin('migrate_vma_setup', { mm: vma.vm_mm.id, start: args.start, end: args.end, flags: args.flags });
  for (let i = 0; i < nr_pages; i++) args.src[i] = 0;
  args.cpages = 0;
  args.npages = 0;
  yield* migrate_vma_collect(args);
  if (args.cpages) args.cpages = yield* migrate_device_unmap(args.src, args.npages, args.fault_page);
  trace_event('migrate_vma_setup', {
    mm: vma.vm_mm.id, start: args.start, end: args.end, npages: args.npages, cpages: args.cpages, flags: args.flags,
  });
  return 0;
}

/* -------------------------------------------------------------------- pages */

/*
 * migrate_vma_insert_page() - map a driver-provided page where nothing
 * (or the zero page) was mapped: the do_anonymous_page() of device
 * memory. The huge zero page is split first; any other PMD leaf means
 * something was mapped meanwhile. Clears MIGRATE in *src on any failure.
 * May sleep (the split).
 */
function* migrate_vma_insert_page(m: migrate_vma, addr: number, p: page, src: Float64Array | number[], i: number): Sleepable {
  const vma = m.vma, mm = vma.vm_mm;
  const abort = () => { src[i] -= src[i] & MIGRATE_PFN_MIGRATE; count_event('migrate_insert_abort'); };
  if (!vma_is_anonymous(vma)) return abort();
  const pmdp = pmd_alloc(mm, addr);
  if (pmdp < 0) return abort();
  let pmd = mm.pgd.load(pmdp);
  if (pmd_trans_huge(pmd) && is_huge_zero_pmd(pmd)) {
    yield* __split_huge_pmd(vma, pmdp, addr);
    pmd = mm.pgd.load(pmdp);
  }
  if (pmd !== 0 && !pmd_is_table(pmd)) return abort();
  const ptep = pte_alloc_map(mm, addr);
  if (ptep < 0) return abort();
  if (anon_vma_prepare(vma) !== 0) return abort();
  if ((yield* mem_cgroup_charge_sleepable(p, mm, GFP_KERNEL)) !== 0) return abort();   /* may sleep, as Linux's charge */
  SetPageUptodate(p);

  let entry: pte_t;
  if (is_device_private_page(p)) {
    const e = (vma.vm_flags & VM_WRITE) ? make_writable_device_private_entry(p.pfn)
      : make_readable_device_private_entry(p.pfn);
    entry = swp_entry_to_pte(e);
  } else {
    if (is_zone_device_page(p) && !is_device_coherent_page(p)) return abort();
    entry = mk_pte(p, vma.vm_page_prot);
    if (vma.vm_flags & VM_WRITE) entry = pte_mkwrite(pte_mkdirty(entry));
  }
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  const orig = ptep_get(mm, ptep);
  let flush = false;
  if (pte_present(orig)) {
    if (!is_zero_pfn(pte_pfn(orig))) { spin_unlock(ptl); return abort(); }
    flush = true;
  } else if (!pte_none(orig)) {
    spin_unlock(ptl);
    return abort();
  }
  inc_mm_counter(mm, MM_ANONPAGES);
  folio_add_new_anon_rmap(p, vma, addr);
  if (!is_zone_device_page(p)) folio_add_lru(p);
  get_page(p);
  if (flush) { ptep_get_and_clear(mm, addr, ptep); flush_tlb_page(vma, addr); }
  set_pte_at(mm, addr, ptep, entry);
  spin_unlock(ptl);
  src[i] = MIGRATE_PFN_MIGRATE;
  count_event('migrate_insert_page');
}

/* any destination among the entries a compound source covers? */
function any_dst(dst: Float64Array | number[], i: number, npages: number): boolean {
  for (let j = i; j < i + HPAGE_PMD_NR && j < npages; j++) if (migrate_pfn_to_page(dst[j]) !== null) return true;
  return false;
}

/* __migrate_device_pages() - the body of migrate_vma_pages() and migrate_device_pages() */
function* __migrate_device_pages(src: Float64Array | number[], dst: Float64Array | number[], npages: number,
                                 m: migrate_vma | null): Sleepable {
  let range: mmu_notifier_range | null = null;
  const fault_pfn = m !== null && m.fault_page !== null ? m.fault_page.pfn : -1;
  for (let i = 0; i < npages; i++) {
    if ((src[i] & MIGRATE_PFN_COMPOUND) && (src[i] & MIGRATE_PFN_MIGRATE) && !(dst[i] & MIGRATE_PFN_COMPOUND) &&
        any_dst(dst, i, npages)) {
      if (m === null && migrate_pfn_to_page(src[i]) !== null) {
        /* no VMA to split the PMD migration entries in: the folio stays where it is */
        src[i] -= src[i] & (MIGRATE_PFN_MIGRATE | MIGRATE_PFN_COMPOUND);
        continue;
      }
      /* small destinations for a compound source: split it and migrate page by page */
      yield* expand_compound_entry(src, i, npages, migrate_pfn_to_page(src[i]), m?.fault_page ?? null);
    }
    const newp = migrate_pfn_to_page(dst[i]);
    if (newp === null) { src[i] -= src[i] & MIGRATE_PFN_MIGRATE; continue; }
    if ((dst[i] & MIGRATE_PFN_COMPOUND) && !(src[i] & MIGRATE_PFN_COMPOUND)) {
      src[i] -= src[i] & MIGRATE_PFN_MIGRATE;   /* a large destination needs a compound source */
      continue;
    }
    const p = migrate_pfn_to_page(src[i]);
    if (p === null) {
      if (!(src[i] & MIGRATE_PFN_MIGRATE)) continue;
      if (m === null) BUG('hole to populate without a VMA (migrate_device_pages)');
      const addr = m.start + i * PAGE_SIZE;
      if (range === null) {
        range = mmu_notifier_range_init_owner(MMU_NOTIFY_MIGRATE, MMU_NOTIFIER_RANGE_BLOCKABLE, m.vma.vm_mm,
          addr, m.end, m.pgmap_owner);
        yield* mmu_notifier_invalidate_range_start(range);
      }
      if (dst[i] & MIGRATE_PFN_COMPOUND) yield* migrate_vma_insert_huge_pmd_page(m, addr, newp.compound_head, src, i);
      else yield* migrate_vma_insert_page(m, addr, newp, src, i);
      continue;
    }
    const newf = newp.compound_head, f = p.compound_head;
    const mapping = folio_mapping(f);
    const pgmap = newf.pgmap;   /* is_zone_device_page(), is_device_private/coherent_page(): one read */
    if (pgmap !== null) {
      if (pgmap.type !== MEMORY_DEVICE_PRIVATE && pgmap.type !== MEMORY_DEVICE_COHERENT) {
        src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
        continue;
      }
      /* only anonymous memory may move to a device (a swap-cache copy would be dropped first) */
      if (mapping !== null) { src[i] -= src[i] & MIGRATE_PFN_MIGRATE; count_event('migrate_refuse_file'); continue; }
    }
    if (PageWriteback(f)) BUG(`migrating a folio under writeback pfn ${f.pfn}`);
    const extra = p.pfn === fault_pfn ? 1 : 0;
    const r = folio_migrate_mapping(mapping, newf, f, extra);
    if (r !== MIGRATEPAGE_SUCCESS) src[i] -= src[i] & MIGRATE_PFN_MIGRATE;
    else folio_migrate_flags(newf, f);
  }
  if (range !== null) yield* mmu_notifier_invalidate_range_end(range);
}

/**
 * migrate_vma_pages() - move the identity of each source page to its
 * destination; populate the holes the driver filled.
 * @m: as returned by migrate_vma_setup(), dst[] filled by the driver with
 *     locked pages (an entry with no dst stops migrating).
 *
 * After it returns, src[i] still has MIGRATE for the entries that moved;
 * the others (destination missing, source referenced elsewhere, file page
 * to device memory, hole that could not be populated) lost it. It is safe
 * to update the device page table now: both pages stay locked until
 * migrate_vma_finalize().
 * Context: mmap_lock held for read; may sleep (notifier for holes).
 */
export function* migrate_vma_pages(m: migrate_vma): Sleepable {
  trace_event('migrate_vma_pages', { mm: m.vma.vm_mm.id, start: m.start, npages: m.npages, cpages: m.cpages });
  yield* __migrate_device_pages(m.src, m.dst, m.npages, m);
}

/**
 * migrate_device_pages() - migrate_vma_pages() for a migrate_device_range()
 * (no VMA: there are no holes to populate).
 * Context: may sleep. Return: 0.
 */
export function* migrate_device_pages(src: Float64Array | number[], dst: Float64Array | number[],
                                      npages: number): Sleepable<number> {
  yield* __migrate_device_pages(src, dst, npages, null);
  return 0;
}

/* ----------------------------------------------------------------- finalize */

/**
 * migrate_vma_finalize() - replace the migration entries by mappings of
 * the new pages (or of the old ones where migration failed), unlock and
 * release every source and destination (except the caller's fault_page,
 * which do_swap_page unlocks). Sources that moved are freed here when
 * their last reference goes.
 * Context: mmap_lock held for read.
 */
export function* migrate_vma_finalize(m: migrate_vma): Sleepable {
  yield* __migrate_device_finalize(m.src, m.dst, m.npages, m.fault_page);
  trace_event('migrate_vma_finalize', { mm: m.vma.vm_mm.id, start: m.start, npages: m.npages });
}

/** migrate_device_finalize() - migrate_vma_finalize() for migrate_device_range(). Context: may sleep. */
export function* migrate_device_finalize(src: Float64Array | number[], dst: Float64Array | number[],
                                         npages: number): Sleepable {
  yield* __migrate_device_finalize(src, dst, npages, null);
}

/* ---------------------------------------------------------- device eviction */

/* migrate_device_pfn_lock() - reference and trylock one device pfn; 0 if free or busy */
function migrate_device_pfn_lock(pfn: number): number {
  if (!pfn_valid(pfn)) return 0;
  const p = pfn_to_page(pfn);
  if (p.compound_head.pfn !== p.pfn) return 0;              /* folio_get_nontail_page() */
  if (!get_page_unless_zero(p)) return 0;
  if (!folio_trylock(p)) { put_page(p); return 0; }
  return migrate_pfn(pfn) | MIGRATE_PFN_MIGRATE | (p.order > 0 ? MIGRATE_PFN_COMPOUND : 0);
}

/**
 * migrate_device_range() - start migrating the device pages of a pfn
 * range back to system memory, wherever (and in whichever mm) they are
 * mapped: the driver's tool to empty its memory (unbind, RELEASE).
 * @src_pfns: filled with one migrate_pfn entry per pfn (0 for free pages
 *            and pages someone else is migrating).
 * @start_pfn: first device pfn. @npages: how many.
 *
 * Like migrate_vma_setup(), the selected pages come back locked and
 * unmapped (every mapping replaced by a migration entry). The driver then
 * allocates system pages, copies, and calls migrate_device_pages() and
 * migrate_device_finalize().
 * Context: no mmap_lock needed; may sleep. Return: 0.
 */
export function* migrate_device_range(src_pfns: Float64Array | number[], start_pfn: number,
                                      npages: number): Sleepable<number> {
  for (let i = 0; i < npages; i++) src_pfns[i] = migrate_device_pfn_lock(start_pfn + i);
  yield* migrate_device_unmap(src_pfns, npages, null);
  yield* cond_resched();        /* the driver allocates and copies next: migration entries in place */
  trace_event('migrate_device_range', { start_pfn, npages });
  return 0;
}

/**
 * migrate_device_pfns() - migrate_device_range() for a list of pfns
 * given in @src_pfns (replaced by their migrate_pfn entries).
 * Context: may sleep. Return: 0.
 */
export function* migrate_device_pfns(src_pfns: Float64Array | number[], npages: number): Sleepable<number> {
  for (let i = 0; i < npages; i++) src_pfns[i] = migrate_device_pfn_lock(src_pfns[i]);
  yield* migrate_device_unmap(src_pfns, npages, null);
  return 0;
}

/**
 * migrate_device_coherent_folio() - move one device-coherent page to
 * system memory (before a long-term pin, which must not hold device
 * memory). The caller's reference moves to the new page on success and is
 * dropped on failure.
 * Context: may sleep (folio lock). Return: 0, or -EBUSY when the page is
 * still referenced elsewhere or no system page is available.
 */
export function* migrate_device_coherent_folio(f: page): Sleepable<number> {
  if (folio_test_large(f)) count_event('migrate_coherent_large');
  yield* folio_lock(f);
  const src = [migrate_pfn(f.pfn) | MIGRATE_PFN_MIGRATE];
  const dst = [0];
  yield* migrate_device_unmap(src, 1, null);
  if (!(src[0] & MIGRATE_PFN_MIGRATE)) return -EBUSY;
  const d = yield* alloc_pages_sleepable(GFP_USER | __GFP_NOWARN, 0);
  if (d !== null) {
    __folio_set_locked(d);
    dst[0] = migrate_pfn(d.pfn);
  }
  yield* migrate_device_pages(src, dst, 1);
  if (src[0] & MIGRATE_PFN_MIGRATE) copy_highpage(d!, f);
  yield* migrate_device_finalize(src, dst, 1);
  count_event('migrate_device_coherent');
  return (src[0] & MIGRATE_PFN_MIGRATE) ? 0 : -EBUSY;
}
