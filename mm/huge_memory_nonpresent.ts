/*
 * mm/huge_memory_nonpresent.ts - PMD leaves that are not present: THP
 * migration entries and device-private THPs.
 *
 * Models the non-present-PMD half of mm/huge_memory.c as Balbir Singh's
 * "mm: support device-private THP" series left it (Linux 6.19):
 * set_pmd_migration_entry(), remove_migration_pmd(),
 * do_huge_pmd_device_private(), and the non-present branches of
 * zap_huge_pmd(), copy_huge_pmd() (copy_huge_non_present_pmd),
 * change_huge_pmd() (change_non_present_huge_pmd) and
 * __split_huge_pmd_locked(). mm/huge_memory.ts dispatches here;
 * pmd_migration_entry_wait() sits with migration_entry_wait() in
 * mm/memory.ts; the entry encoding is at the end of
 * include/linux/swapops.ts.
 *
 * The life of a device-private THP (anonymous memory only):
 *
 *   migrate_vma_setup()     present huge PMD -> PMD migration entry
 *   migrate_vma_finalize()  PMD migration entry -> device-private PMD
 *                           (SWP_DEVICE_WRITE/READ, offset = head pfn)
 *   CPU access              do_huge_pmd_device_private(): the driver's
 *                           migrate_to_ram() with vmf.page = the head
 *   back in RAM             device-private PMD -> PMD migration entry
 *                           -> present huge PMD
 *   munmap, exit            zap: rmap, rss and the PMD's reference go,
 *                           and the driver gets its folio back
 *   fork                    both PMDs read-only; the child holds its own
 *                           reference and entire mapping
 *   mprotect                a writable entry becomes read-only
 *   part of it unmapped or  split: 512 device-private PTEs, the folio
 *   protected               stays large (split further only when it
 *                           migrates, mm/migrate_device_huge.ts)
 *
 * Counts: a device-private PMD holds one reference and one entire mapping
 * (head._entire_mapcount) of its folio and HPAGE_PMD_NR pages of
 * MM_ANONPAGES, like a present huge PMD; a PMD migration entry holds only
 * the rss (the migration holds the folio), like migration PTEs.
 *
 * Simplified: migration entries keep write and exclusivity, not the
 * young/dirty bits (the folio's dirty flag carries the latter); no
 * uffd-wp; no deposited page table (a split takes its PTE page from
 * lib/gpt).
 */
import type { page, vm_area_struct, vm_fault, mm_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import { VM_FAULT_SIGBUS, add_mm_counter, mm_counter } from '../include/linux/mm.js';
import {
  pmd_present, pmd_write, pmd_dirty, pmd_mkwrite, pmd_mkdirty, pmd_mkyoung, pfn_pmd, _PAGE_SOFT_DIRTY,
  PTE_LEVEL, type pmd_t, type pte_t,
} from '../include/linux/pgtable.js';
import {
  pmd_to_swp_entry, swp_entry_to_pmd, swp_entry_to_pte, is_pmd_migration_entry, is_pmd_device_private_entry,
  is_writable_migration_entry, is_readable_exclusive_migration_entry, is_writable_device_private_entry,
  make_writable_migration_entry, make_readable_exclusive_migration_entry, make_readable_migration_entry,
  make_writable_device_private_entry, make_readable_device_private_entry, swp_offset_pfn, swp_type, swp_entry,
  pmd_swp_soft_dirty, pmd_swp_mksoft_dirty, _PAGE_SWP_SOFT_DIRTY,
} from '../include/linux/swapops.js';
import {
  PageAnonExclusive, SetPageAnonExclusive, ClearPageAnonExclusive, SetPageDirty, PageDirty, folio_test_anon,
} from '../include/linux/page-flags.js';
import { is_device_private_page } from '../include/linux/memremap.js';
import { HPAGE_PMD_NR, HPAGE_PMD_SIZE } from '../include/linux/huge_mm.js';
import { EBUSY } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { pfn_to_page, get_page, put_page } from './page_alloc.js';
import { pmd_off, pmd_lockptr, flush_tlb_range } from './pgtable.js';
import { folio_maybe_dma_pinned } from './gup.js';
import { folio_trylock, folio_unlock, folio_wait_locked } from './filemap.js';
import { folio_add_anon_rmap_pmd, folio_remove_rmap_pmd } from './huge_memory.js';
import { BUG } from '../include/asm-generic/bug.js';

/** pmd_folio_of_entry() - the head page a PMD swap entry names (pfn_swap_entry_folio). */
export function pmd_folio_of_entry(pmd: pmd_t): page {
  return pfn_to_page(swp_offset_pfn(pmd_to_swp_entry(pmd)));
}

/* ------------------------------------------------------------ migration entries */

/**
 * set_pmd_migration_entry() - replace the PMD mapping of folio @f at
 * @haddr (a present huge PMD or a device-private PMD) by a PMD migration
 * entry that remembers whether it was writable, or read-only but
 * exclusive. The mapping's rmap and reference go, as for a PTE.
 * @vma: the VMA; @pmdp: its PMD entry; @haddr: the 2 MiB it maps.
 * Context: PMD lock held; @f locked and referenced by the caller.
 * Return: 0; -EBUSY (nothing changed) for an exclusive anonymous THP that
 * may be DMA-pinned (folio_try_share_anon_rmap_pmd fails: the pin must
 * keep seeing this folio).
 */
export function set_pmd_migration_entry(vma: vm_area_struct, pmdp: number, haddr: number, f: page): number {
  const mm = vma.vm_mm;
  const old = mm.pgd.load(pmdp);
  const present = pmd_present(old);
  const anon_exclusive = folio_test_anon(f) && PageAnonExclusive(f);
  if (anon_exclusive && !is_device_private_page(f) && folio_maybe_dma_pinned(f)) return -EBUSY;
  let writable: boolean, soft_dirty: boolean;
  if (present) {
    writable = pmd_write(old);
    soft_dirty = (old & _PAGE_SOFT_DIRTY) !== 0;
    if (pmd_dirty(old)) SetPageDirty(f);
  } else {
    writable = is_writable_device_private_entry(pmd_to_swp_entry(old));
    soft_dirty = pmd_swp_soft_dirty(old);
  }
  if (anon_exclusive) ClearPageAnonExclusive(f);
  const e = writable ? make_writable_migration_entry(f.pfn)
    : anon_exclusive ? make_readable_exclusive_migration_entry(f.pfn) : make_readable_migration_entry(f.pfn);
  let pmd = swp_entry_to_pmd(e);
  if (soft_dirty) pmd = pmd_swp_mksoft_dirty(pmd);
  mm.pgd.set(pmdp, pmd);
  if (present) flush_tlb_range(vma, haddr, haddr + HPAGE_PMD_SIZE);
  folio_remove_rmap_pmd(f);
  put_page(f);
  count_event('set_pmd_migration_entry');
  return 0;
}

/**
 * remove_migration_pmd() - turn the PMD migration entry for the folio
 * whose head pfn is @src_pfn, at @haddr of @vma, into a PMD mapping of
 * folio @dst (the migration's destination, or the source itself when the
 * migration is undone): a device-private PMD for a device-private @dst,
 * a present huge PMD otherwise, with the write permission and anonymous
 * exclusivity the entry remembered.
 * Context: @dst locked; takes the PMD lock.
 * Return: true if an entry was replaced.
 */
export function remove_migration_pmd(dst: page, src_pfn: number, vma: vm_area_struct, haddr: number): boolean {
  const mm = vma.vm_mm;
  const pmdp = pmd_off(mm, haddr);
  if (pmdp < 0) return false;
  const ptl = pmd_lockptr(mm, pmdp);
  spin_lock(ptl);
  const old = mm.pgd.load(pmdp);
  if (!is_pmd_migration_entry(old) || swp_offset_pfn(pmd_to_swp_entry(old)) !== src_pfn) {
    spin_unlock(ptl);
    return false;
  }
  const e = pmd_to_swp_entry(old);
  const writable = is_writable_migration_entry(e);
  const exclusive = writable || is_readable_exclusive_migration_entry(e);
  let pmd: pmd_t;
  if (is_device_private_page(dst)) {
    const e2 = writable ? make_writable_device_private_entry(dst.pfn) : make_readable_device_private_entry(dst.pfn);
    pmd = swp_entry_to_pmd(e2);
    if (pmd_swp_soft_dirty(old)) pmd = pmd_swp_mksoft_dirty(pmd);
  } else {
    pmd = pmd_mkyoung(pfn_pmd(dst.pfn, vma.vm_page_prot));
    pmd -= pmd & _PAGE_SOFT_DIRTY;
    if (pmd_swp_soft_dirty(old)) pmd += _PAGE_SOFT_DIRTY;
    if (writable) {
      pmd = pmd_mkwrite(pmd);
      if (PageDirty(dst)) pmd = pmd_mkdirty(pmd);
    }
  }
  get_page(dst);
  folio_add_anon_rmap_pmd(dst);
  if (exclusive) SetPageAnonExclusive(dst);
  mm.pgd.set(pmdp, pmd);
  spin_unlock(ptl);
  count_event('remove_migration_pmd');
  return true;
}

/* ------------------------------------------------------------ fault */

/**
 * do_huge_pmd_device_private() - the CPU touched a PMD-sized
 * device-private folio: lock and reference it and hand it to its driver
 * (pgmap->ops->migrate_to_ram) with vmf.page the head page and no PTE
 * (vmf.pte = -1), so that the driver may bring the whole THP back.
 * @vmf: the fault; vmf.orig_pmd is the entry seen by __handle_mm_fault.
 * Context: mmap_lock held for read; may sleep.
 * Return: 0 (also when the entry changed meanwhile, or after waiting for
 * someone else's migration: the access is retried), or what
 * migrate_to_ram returned (VM_FAULT_SIGBUS without one).
 */
export function* do_huge_pmd_device_private(vmf: vm_fault): Sleepable<number> {
  const mm = vmf.vma.vm_mm;
  const ptl = pmd_lockptr(mm, vmf.pmd);
  spin_lock(ptl);
  if (mm.pgd.load(vmf.pmd) !== vmf.orig_pmd) { spin_unlock(ptl); return 0; }
  const f = pmd_folio_of_entry(vmf.orig_pmd!);
  if (!is_device_private_page(f) || f.pgmap === null) BUG('device-private PMD to a non-device page');
  vmf.page = f;
  vmf.pte = -1;
  get_page(f);
  spin_unlock(ptl);
  if (!folio_trylock(f)) {             /* someone is migrating it: wait, then retry the access */
    put_page(f);
    yield* folio_wait_locked(f);
    return 0;
  }
  const migrate_to_ram = f.pgmap.ops.migrate_to_ram;
  const ret = migrate_to_ram ? yield* migrate_to_ram.call(f.pgmap.ops, vmf) : VM_FAULT_SIGBUS;
  folio_unlock(f);
  put_page(f);
  count_event('fault_huge_pmd_device_private');
  trace_event('do_huge_pmd_device_private', { addr: vmf.address, pfn: f.pfn, ret });
  return ret;
}

/* ------------------------------------------------------------ zap, fork, mprotect */

/**
 * zap_huge_non_present_pmd() - the non-present branch of zap_huge_pmd():
 * clear a PMD migration entry (its rss goes; the migration keeps the
 * folio) or a device-private PMD (rss, entire mapping and reference go
 * now: no TLB entry can point at device-private memory, so the reference
 * is not deferred to the mmu_gather).
 * Context: PMD lock held, inside the caller's invalidation.
 */
export function zap_huge_non_present_pmd(vma: vm_area_struct, pmdp: number, orig: pmd_t): void {
  const mm = vma.vm_mm;
  const f = pmd_folio_of_entry(orig);
  mm.pgd.set(pmdp, 0);
  add_mm_counter(mm, mm_counter(f), -HPAGE_PMD_NR);
  if (is_pmd_device_private_entry(orig)) {
    folio_remove_rmap_pmd(f);
    put_page(f);
    count_event('zap_huge_pmd_device_private');
  }
}

/**
 * copy_huge_non_present_pmd() - fork of a PMD swap entry. A writable (or
 * read-exclusive) migration entry becomes a read-only one in both mms; a
 * device-private PMD becomes read-only in both, and the child takes a
 * reference and an entire mapping of the folio, now shared (a
 * device-private folio cannot be DMA-pinned, so the dup never fails).
 * Context: both PMD locks held, inside fork's invalidation.
 */
export function copy_huge_non_present_pmd(dst: vm_area_struct, src: vm_area_struct, dst_pmdp: number,
                                          src_pmdp: number, pmd: pmd_t): void {
  const e = pmd_to_swp_entry(pmd);
  const f = pmd_folio_of_entry(pmd);
  let readonly = pmd;
  if (is_pmd_migration_entry(pmd)) {
    if (is_writable_migration_entry(e) || is_readable_exclusive_migration_entry(e)) {
      readonly = swp_entry_to_pmd(make_readable_migration_entry(swp_offset_pfn(e)));
    }
  } else {
    if (is_writable_device_private_entry(e)) {
      readonly = swp_entry_to_pmd(make_readable_device_private_entry(swp_offset_pfn(e)));
    }
    get_page(f);
    ClearPageAnonExclusive(f);        /* folio_try_dup_anon_rmap_pmd() */
    folio_add_anon_rmap_pmd(f);
  }
  if (pmd_swp_soft_dirty(pmd)) readonly = pmd_swp_mksoft_dirty(readonly);
  if (readonly !== pmd) src.vm_mm.pgd.set(src_pmdp, readonly);
  add_mm_counter(dst.vm_mm, MM_ANONPAGES, HPAGE_PMD_NR);
  dst.vm_mm.pgd.set(dst_pmdp, readonly);
  count_event('copy_huge_non_present_pmd');
}

/**
 * change_non_present_huge_pmd() - mprotect of a PMD swap entry: a
 * writable migration entry becomes read-only (still exclusive for an
 * anonymous folio), a writable device-private entry read-only; a CPU
 * write then faults, migrates the THP back and gets write access again
 * through the write fault. Read-only entries stay as they are.
 * Context: PMD lock held, inside the caller's invalidation.
 * Return: true if the entry changed.
 */
export function change_non_present_huge_pmd(vma: vm_area_struct, pmdp: number, pmd: pmd_t): boolean {
  const e = pmd_to_swp_entry(pmd);
  let npmd = pmd;
  if (is_writable_migration_entry(e)) {
    const f = pmd_folio_of_entry(pmd);
    npmd = swp_entry_to_pmd(folio_test_anon(f) ? make_readable_exclusive_migration_entry(swp_offset_pfn(e))
      : make_readable_migration_entry(swp_offset_pfn(e)));
  } else if (is_writable_device_private_entry(e)) {
    npmd = swp_entry_to_pmd(make_readable_device_private_entry(swp_offset_pfn(e)));
  }
  if (npmd === pmd) return false;
  if (pmd_swp_soft_dirty(pmd)) npmd = pmd_swp_mksoft_dirty(npmd);
  vma.vm_mm.pgd.set(pmdp, npmd);
  return true;
}

/* ------------------------------------------------------------ split */

/**
 * __split_huge_swap_pmd_locked() - the non-present branch of
 * __split_huge_pmd_locked(): the PMD swap entry at @haddr becomes a table
 * of 512 PTE swap entries of the same kind, one per page. Migration
 * entries carry no reference or mapping, so only the entries change. A
 * device-private PMD becomes 512 device-private PTEs: each page gets a
 * PTE mapping and a reference (the PMD's becomes the first), exclusivity
 * moves from the head to every page, and the entire mapping goes. The
 * folio stays large; it is not queued for the deferred split (device
 * folios are split by the migration that moves them).
 * Context: PMD lock held; no notifier (see the callers).
 */
export function __split_huge_swap_pmd_locked(vma: vm_area_struct, pmdp: number, haddr: number, old: pmd_t): void {
  const mm = vma.vm_mm;
  const e = pmd_to_swp_entry(old);
  const f = pmd_folio_of_entry(old);
  const type = swp_type(e);
  const device = is_pmd_device_private_entry(old);
  const exclusive = device && PageAnonExclusive(f);
  mm.pgd.set(pmdp, 0);
  const ptep = pte_populate(mm, haddr);
  if (device) f._refcount += HPAGE_PMD_NR - 1;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    let pte: pte_t = swp_entry_to_pte(swp_entry(type, f.pfn + i));
    if (pmd_swp_soft_dirty(old)) pte += _PAGE_SWP_SOFT_DIRTY;
    if (device) {
      const p = i === 0 ? f : pfn_to_page(f.pfn + i);
      p._mapcount++;
      if (exclusive) SetPageAnonExclusive(p);
    }
    mm.pgd.set(ptep + i, pte);
  }
  if (device) folio_remove_rmap_pmd(f);
  count_event(device ? 'split_huge_pmd_device_private' : 'split_huge_pmd_migration');
  trace_event('split_huge_swap_pmd', { mm: mm.id, addr: haddr, pfn: f.pfn, device });
}

/* the PTE page a split fills (pte_alloc under the PMD lock: lib/gpt never sleeps) */
function pte_populate(mm: mm_struct, haddr: number): number {
  const ptep = mm.pgd.populate(haddr, PTE_LEVEL);
  if (ptep < 0) BUG(`split_huge_pmd: no page-table page (${ptep})`);
  return ptep;
}
