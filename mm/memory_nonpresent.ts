/*
 * mm/memory_nonpresent.ts - the faults on a PTE that holds no present
 * entry, split out of mm/memory.ts (in Linux all of this is mm/memory.c):
 * do_swap_page() dispatches on the swap entry to a swap-in
 * (mm/swap_state.ts), a migration wait, a device-private page's
 * migrate_to_ram(), the removal of a device-exclusive entry (with
 * can_change_pte_writable() and restore_exclusive_pte(), also used by
 * mprotect and fork), hwpoison, or the HMM v8 SWP_HMM handler.
 */
import type { page, vm_area_struct, vm_fault, mm_struct } from '../include/linux/mm_types.js';
import { PAGE_SIZE, VM_WRITE, VM_SHARED, VM_FAULT_SIGBUS, VM_FAULT_HWPOISON } from '../include/linux/mm.js';
import {
  pte_mkwrite, pte_mkdirty, pte_mkold, pte_dirty, _PAGE_SOFT_DIRTY, type pte_t,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, non_swap_entry, is_migration_entry, is_device_private_entry, is_device_exclusive_entry,
  is_hwpoison_entry, is_hmm_entry, swp_offset_pfn, is_writable_device_private_entry, is_pmd_migration_entry,
  pmd_to_swp_entry, _PAGE_SWP_SOFT_DIRTY, type swp_entry_t,
} from '../include/linux/swapops.js';
import { PageAnonExclusive, PageLocked, PageDirty, folio_test_anon } from '../include/linux/page-flags.js';
import { is_device_private_page } from '../include/linux/memremap.js';
import { __GFP_ZERO } from '../include/linux/gfp.js';
import { MMU_NOTIFY_EXCLUSIVE, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import { EBUSY } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { race_mutations } from '../lib/sim/mutations.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { trace_event, count_event } from '../lib/sim/trace.js';
import { pfn_to_page, put_page, get_page, get_page_unless_zero } from './page_alloc.js';
import { pmd_lockptr, pte_lockptr, ptep_get, set_pte_at } from './pgtable.js';
import {
  mmu_notifier_range_init_owner, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { folio_lock, folio_trylock, folio_unlock, folio_wait_locked, migration_entry_wait_on_locked } from './filemap.js';
import { BUG } from '../include/asm-generic/bug.js';
import { doSwapPageSwapin } from './swap_state.js';
import { vm_normal_page, mk_pte } from './memory.js';
import { hmm_v8_hooks } from './hmm_v8/hooks.js';

/*
 * remove_device_exclusive_entry() - the CPU touched a page a device holds
 * exclusively: tell the device (MMU_NOTIFY_EXCLUSIVE, no owner, so the
 * holder does not skip it) and restore the ordinary PTE.
 */
function* remove_device_exclusive_entry(vmf: vm_fault, entry: swp_entry_t): Sleepable<number> {
  const vma = vmf.vma, mm = vma.vm_mm;
  const p = pfn_to_page(swp_offset_pfn(entry));
  /*
   * The entry was read without the PTE lock: a racing zap (MADV_DONTNEED,
   * munmap) may have removed it and freed the page. A free page means the
   * entry is gone: retry the access (folio_try_get() in Linux).
   */
  if (!get_page_unless_zero(p)) return 0;
  yield* folio_lock(p);
  const range = mmu_notifier_range_init_owner(MMU_NOTIFY_EXCLUSIVE, MMU_NOTIFIER_RANGE_BLOCKABLE, mm,
    vmf.address, vmf.address + PAGE_SIZE, null);
  yield* mmu_notifier_invalidate_range_start(range);
  const ptl = pte_lockptr(mm, vmf.pte);
  spin_lock(ptl);
  if (ptep_get(mm, vmf.pte) === vmf.orig_pte || race_mutations.skip_exclusive_restore_recheck) restore_exclusive_pte(vma, p, vmf.address, vmf.pte);
  spin_unlock(ptl);
  yield* mmu_notifier_invalidate_range_end(range);
  folio_unlock(p);
  put_page(p);
  count_event('fault_device_exclusive_restore');
  return 0;
}

/**
 * can_change_pte_writable() - may @pte, in a VM_WRITE mapping, be made
 * writable without a write fault? In a private mapping only if it maps an
 * exclusive anonymous page (the write fault would reuse it); in a shared
 * one only if it is already dirty. (mm/mprotect.c in Linux; here, beside
 * its other user, to keep mprotect.ts -> memory.ts one way.)
 * Context: PTE lock held. Return: true if the PTE may be made writable.
 */
export function can_change_pte_writable(vma: vm_area_struct, addr: number, pte: pte_t): boolean {
  if (!(vma.vm_flags & VM_WRITE)) return false;
  if (vma.vm_flags & VM_SHARED) return pte_dirty(pte);
  const p = vm_normal_page(vma, addr, pte);
  return p !== null && folio_test_anon(p.compound_head) && PageAnonExclusive(p);
}

/**
 * restore_exclusive_pte() - turn a device-exclusive entry back into a
 * present PTE for the same page, as mm/memory.c does: the new PTE is old
 * (the device's accesses do not count as the CPU's), keeps the entry's
 * soft-dirty bit, and is writable (and dirty if the folio is) only where
 * can_change_pte_writable() allows.
 * Context: PTE lock held; the folio should be locked (the CPU fault and
 * fork take it; mprotect's restore does not, see mm/mprotect.ts).
 */
export function restore_exclusive_pte(vma: vm_area_struct, p: page, addr: number, ptep: number): void {
  const orig = ptep_get(vma.vm_mm, ptep);
  let pte = pte_mkold(mk_pte(p, vma.vm_page_prot));
  if (orig & _PAGE_SWP_SOFT_DIRTY) pte |= _PAGE_SOFT_DIRTY;
  if ((vma.vm_flags & VM_WRITE) && can_change_pte_writable(vma, addr, pte)) {
    if (PageDirty(p.compound_head)) pte = pte_mkdirty(pte);
    pte = pte_mkwrite(pte);
  }
  set_pte_at(vma.vm_mm, addr, ptep, pte);
}

/**
 * try_restore_exclusive_pte() - restore a device-exclusive entry if its
 * folio can be locked without sleeping (fork cannot sleep under the PTE
 * lock). Context: PTE lock held. Return: 0, or -EBUSY when the folio is
 * locked by someone else.
 */
export function try_restore_exclusive_pte(vma: vm_area_struct, addr: number, ptep: number): number {
  const p = pfn_to_page(swp_offset_pfn(pte_to_swp_entry(ptep_get(vma.vm_mm, ptep))));
  if (!folio_trylock(p.compound_head)) return -EBUSY;
  restore_exclusive_pte(vma, p, addr, ptep);
  folio_unlock(p.compound_head);
  return 0;
}

/*
 * do_device_private_fault() - the CPU touched a device-private page: lock
 * and reference it and ask its driver to migrate it to RAM
 * (pgmap->ops->migrate_to_ram), as do_swap_page does in Linux.
 */
function* do_device_private_fault(vmf: vm_fault, entry: swp_entry_t): Sleepable<number> {
  const p = pfn_to_page(swp_offset_pfn(entry));
  if (!is_device_private_page(p) || p.pgmap === null) BUG('device-private entry to a non-device page');
  const mm = vmf.vma.vm_mm;
  const ptl = pte_lockptr(mm, vmf.pte);
  spin_lock(ptl);
  if (!race_mutations.skip_device_private_recheck && ptep_get(mm, vmf.pte) !== vmf.orig_pte) { spin_unlock(ptl); return 0; }
  /* the trylock under the PTL: the entry still maps the page, so it cannot be freed under us */
  if (!folio_trylock(p)) {             /* someone is migrating it: wait (no reference) and retry the fault */
    count_event('fault_device_private_wait');
    yield* migration_entry_wait_on_locked(p, ptl);
    return 0;
  }
  /* the reference under the PTL: once it is dropped a zap may put the mapping's, the last one */
  if (!race_mutations.late_device_private_ref) get_page(p);
  spin_unlock(ptl);
  if (race_mutations.late_device_private_ref) get_page(p);
  vmf.page = p;
  const migrate_to_ram = p.pgmap.ops.migrate_to_ram;
  const ret = migrate_to_ram ? yield* migrate_to_ram.call(p.pgmap.ops, vmf) : VM_FAULT_SIGBUS;
  folio_unlock(p);
  put_page(p);
  count_event('fault_device_private');
  trace_event('do_swap_page_device_private', { addr: vmf.address, pfn: p.pfn, ret,
    write: is_writable_device_private_entry(entry) });
  return ret;
}

/**
 * do_swap_page() - fault on a non-present, non-empty entry.
 * Dispatches on the swap type (include/linux/swapops.ts):
 *  - migration entry: wait for the migration to finish, then retry (0);
 *  - device-private: pgmap->ops->migrate_to_ram();
 *  - device-exclusive: tell the device, restore the PTE;
 *  - hwpoison: VM_FAULT_HWPOISON (SIGBUS);
 *  - SWP_HMM (v8): hmm_handle_cpu_fault() through hmm_v8_hooks.cpu_fault;
 *  - a real swap slot: swap-in (doSwapPageSwapin(), mm/swap_state.ts).
 * Context: mmap_lock held for read; may sleep.
 */
export function* do_swap_page(vmf: vm_fault): Sleepable<number> {
  const entry = pte_to_swp_entry(vmf.orig_pte);
  if (non_swap_entry(entry)) {
    if (is_migration_entry(entry)) {
      yield* migration_entry_wait(vmf.vma.vm_mm, entry);
      return 0;
    }
    if (is_device_private_entry(entry)) return yield* do_device_private_fault(vmf, entry);
    if (is_device_exclusive_entry(entry)) return yield* remove_device_exclusive_entry(vmf, entry);
    if (is_hwpoison_entry(entry)) return VM_FAULT_HWPOISON;
    if (is_hmm_entry(entry)) {
      if (hmm_v8_hooks.cpu_fault === null) return VM_FAULT_SIGBUS;
      return yield* hmm_v8_hooks.cpu_fault(vmf, entry);
    }
    return VM_FAULT_SIGBUS;            /* PTE markers: none are installed in this model */
  }
  return yield* doSwapPageSwapin(vmf, entry);
}

/**
 * migration_entry_wait() - a page under migration: sleep until the
 * migrating thread unlocks it, then let the fault retry.
 */
export function* migration_entry_wait(_mm: mm_struct, entry: swp_entry_t): Sleepable {
  const p = pfn_to_page(swp_offset_pfn(entry));
  count_event('fault_migration_wait');
  if (PageLocked(p.compound_head)) yield* folio_wait_locked(p);   /* the folio's lock, also for a page of a large folio */
}

/**
 * pmd_migration_entry_wait() - a THP under migration, mapped by a PMD
 * migration entry: if the entry is still there, sleep until the migrating
 * thread unlocks the folio, then let the fault (or walk) retry.
 * Context: mmap_lock held for read; takes the PMD lock briefly; may sleep.
 */
export function* pmd_migration_entry_wait(mm: mm_struct, pmdp: number): Sleepable {
  const ptl = pmd_lockptr(mm, pmdp);
  spin_lock(ptl);
  const pmd = mm.pgd.load(pmdp);
  if (!is_pmd_migration_entry(pmd)) { spin_unlock(ptl); return; }
  const p = pfn_to_page(swp_offset_pfn(pmd_to_swp_entry(pmd)));
  spin_unlock(ptl);
  count_event('fault_pmd_migration_wait');
  if (PageLocked(p.compound_head)) yield* folio_wait_locked(p);
}
