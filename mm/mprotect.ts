/*
 * mm/mprotect.ts - mprotect(): change the protection of a range.
 *
 * Models mm/mprotect.c: the syscall checks, mprotect_fixup() (split the
 * VMA at the range edges, set the new flags, merge) and
 * change_protection() (rewrite the PTEs of the range under one
 * MMU_NOTIFY_PROTECTION_VMA invalidation).
 *
 * Which PTEs become writable: a private writable VMA's vm_page_prot is
 * read-only (COW), so change_protection() makes an entry writable only
 * where Linux's can_change_pte_writable() would: an anonymous page that
 * is exclusive to this mm and already dirty. Shared writable mappings get
 * writable entries from vm_page_prot. Writable migration and
 * device-private entries are downgraded to read-only ones; a
 * device-exclusive entry is restored to a present PTE of the new
 * protection (the invalidation revoked the device's access).
 */
import type { vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, PAGE_ALIGN, VM_READ, VM_WRITE, VM_EXEC, VM_ACCESS_FLAGS, VM_HUGETLB,
} from '../include/linux/mm.js';
import { pte_none, pte_present, pte_modify, pte_mkwrite, pte_dirty, pmd_is_table, pmd_addr_end } from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_entry_to_pte, is_writable_migration_entry, is_writable_device_private_entry,
  make_readable_migration_entry, make_readable_device_private_entry, swp_offset_pfn, pte_swp_exclusive,
  pte_swp_mkexclusive, is_device_exclusive_entry, make_readable_exclusive_migration_entry, _PAGE_SWP_SOFT_DIRTY,
} from '../include/linux/swapops.js';
import { folio_test_anon } from '../include/linux/page-flags.js';
import { PROT_READ, PROT_WRITE, PROT_EXEC, PROT_GROWSDOWN, PROT_GROWSUP } from '../include/uapi/asm-generic/mman.js';
import { EINVAL, ENOMEM, EACCES } from '../include/uapi/asm-generic/errno.js';
import { MMU_NOTIFY_PROTECTION_VMA, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import { cond_resched, type Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { mmap_write_lock, mmap_write_unlock } from './mmap_lock.js';
import { find_vma, split_vma, vma_merge } from './vma.js';
import { vm_get_page_prot, calc_vm_prot_bits } from './mmap.js';
import { pmd_off, pte_offset_map, pte_lockptr, ptep_get, set_pte_at, flush_tlb_range } from './pgtable.js';
import { can_change_pte_writable, restore_exclusive_pte } from './memory.js';
import { vma_adjust_trans_huge } from './huge_memory.js';
import { hugetlb_vm_op_split } from './hugetlb.js';
import { pfn_to_page } from './page_alloc.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { change_huge_pmd } from './huge_memory_pmd.js';
import { hugetlb_change_protection } from './hugetlb.js';

/* change_pte_range() - rewrite the PTEs of one PTE page. Returns entries changed. */
function change_pte_range(vma: vm_area_struct, ptep: number, addr: number, end: number, newprot: number): number {
  const mm = vma.vm_mm;
  const ptl = pte_lockptr(mm, ptep);
  let pages = 0;
  spin_lock(ptl);
  for (; addr < end; addr += PAGE_SIZE, ptep++) {
    const old = ptep_get(mm, ptep);
    if (pte_none(old)) continue;
    if (pte_present(old)) {
      let pte = pte_modify(old, newprot);
      if (!(newprot & 2 /* _PAGE_RW */) && pte_dirty(pte) && can_change_pte_writable(vma, addr, pte)) pte = pte_mkwrite(pte);
      if (pte !== old) { set_pte_at(mm, addr, ptep, pte); pages++; }
      continue;
    }
    const entry = pte_to_swp_entry(old);
    if (is_device_exclusive_entry(entry)) {
      /* this invalidation ends the device's exclusive access: restore the PTE with the new protection */
      restore_exclusive_pte(vma, pfn_to_page(swp_offset_pfn(entry)), addr, ptep);
      count_event('mprotect_restore_exclusive');
      pages++;
      continue;
    }
    let npte = old;
    if (is_writable_migration_entry(entry)) {
      /* write permission goes; an anonymous page stays exclusive to this mm (no COW copy after the restore) */
      const pfn = swp_offset_pfn(entry);
      npte = swp_entry_to_pte(folio_test_anon(pfn_to_page(pfn).compound_head)
        ? make_readable_exclusive_migration_entry(pfn) : make_readable_migration_entry(pfn));
      npte += old & _PAGE_SWP_SOFT_DIRTY;
    } else if (is_writable_device_private_entry(entry)) {
      npte = swp_entry_to_pte(make_readable_device_private_entry(swp_offset_pfn(entry)));
    }
    if (npte !== old) {
      if (pte_swp_exclusive(old)) npte = pte_swp_mkexclusive(npte);
      set_pte_at(mm, addr, ptep, npte);
      pages++;
    }
  }
  spin_unlock(ptl);
  return pages;
}

/**
 * change_protection() - apply newprot to the entries of [start, end) of
 * vma, inside one MMU_NOTIFY_PROTECTION_VMA invalidation.
 * Context: mmap_lock held for write; may sleep. Return: entries changed.
 */
export function* change_protection(vma: vm_area_struct, start: number, end: number, newprot: number): Sleepable<number> {
  const mm = vma.vm_mm;
  const range = mmu_notifier_range_init(MMU_NOTIFY_PROTECTION_VMA, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, start, end);
  yield* mmu_notifier_invalidate_range_start(range);
  let pages = 0;
  const hugetlb = (vma.vm_flags & VM_HUGETLB) !== 0;
  if (hugetlb) pages = hugetlb_change_protection(vma, start, end, newprot);
  for (let addr = hugetlb ? end : start; addr < end;) {
    const next = pmd_addr_end(addr, end);
    const pmdp = pmd_off(mm, addr);
    if (pmdp >= 0) {
      const pmd = mm.pgd.load(pmdp);
      if (pmd !== 0 && !pmd_is_table(pmd)) {
        if (change_huge_pmd(vma, pmdp, addr, next, newprot)) { pages += (next - addr) / PAGE_SIZE; addr = next; continue; }
      }
      if (pmd_is_table(mm.pgd.load(pmdp))) pages += change_pte_range(vma, pte_offset_map(mm, addr), addr, next, newprot);
    }
    yield* cond_resched();        /* change_pmd_range() reschedules per PMD */
    addr = next;
  }
  if (pages > 0) flush_tlb_range(vma, start, end);
  yield* mmu_notifier_invalidate_range_end(range);
  count_event('mprotect_pages', pages);
  return pages;
}

/**
 * mprotect_fixup() - give [start, end) of vma the flags newflags: split
 * the VMA at the edges, update it, rewrite the PTEs, merge neighbours.
 * @pprev: receives the VMA that covers [start, end) afterwards (vma
 *         itself, or what it merged into, which may reach past @end).
 * Return: 0 or -errno.
 */
export function* mprotect_fixup(mm: mm_struct, vma: vm_area_struct, start: number, end: number,
                                newflags: number, pprev: { vma: vm_area_struct } = { vma }): Sleepable<number> {
  pprev.vma = vma;
  if (newflags === vma.vm_flags) return 0;
  if (hugetlb_vm_op_split(vma, start) < 0 || hugetlb_vm_op_split(vma, end) < 0) return -EINVAL;
  yield* vma_adjust_trans_huge(vma, start, end);     /* a cut through a huge PMD splits it first */
  if (start > vma.vm_start) {
    const r = split_vma(mm, vma, start, true);
    if (r < 0) return r;
  }
  if (end < vma.vm_end) {
    const r = split_vma(mm, vma, end, false);
    if (r < 0) return r;
  }
  vma.vm_flags = newflags;
  vma.vm_page_prot = vm_get_page_prot(newflags);
  yield* change_protection(vma, start, end, vma.vm_page_prot);
  pprev.vma = vma_merge(mm, vma);
  return 0;
}

/**
 * do_mprotect_pkey() - mprotect(2).
 * Return: 0; -EINVAL for a misaligned start or unknown prot bits;
 * -ENOMEM when part of the range is not mapped (the mapped part before the
 * hole is already changed, as in Linux); -EACCES when the mapping may
 * never get the requested access (a read-only file mapped shared).
 */
export function* do_mprotect_pkey(mm: mm_struct, start: number, len: number, prot: number): Sleepable<number> {
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  if (len === 0) return 0;
  len = PAGE_ALIGN(len);
  const end = start + len;
  if (end <= start) return -ENOMEM;
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  if ((prot & (PROT_GROWSDOWN | PROT_GROWSUP)) === (PROT_GROWSDOWN | PROT_GROWSUP)) return -EINVAL;
  const reqflags = calc_vm_prot_bits(prot);

  yield* mmap_write_lock(mm);
  let error = 0;
  let vma = find_vma(mm, start);
  if (vma === null || vma.vm_start > start) error = -ENOMEM;
  let nstart = start;
  while (error === 0 && vma !== null) {
    const newflags = reqflags | (vma.vm_flags & ~(VM_READ | VM_WRITE | VM_EXEC));
    /* VM_MAYREAD/MAYWRITE/MAYEXEC sit 4 bits above READ/WRITE/EXEC */
    if ((newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS) { error = -EACCES; break; }
    const tmp = Math.min(vma.vm_end, end);
    const pprev = { vma };
    error = yield* mprotect_fixup(mm, vma, nstart, tmp, newflags, pprev);
    if (error) break;
    /* go on from the end of the VMA that now covers the range: it may have merged with its successor */
    nstart = pprev.vma.vm_end;
    if (nstart >= end) break;
    vma = find_vma(mm, nstart);
    if (vma === null || vma.vm_start !== nstart) error = -ENOMEM;
  }
  mmap_write_unlock(mm);
  trace_event('mprotect', { mm: mm.id, start, end, prot, ret: error });
  return error;
}
