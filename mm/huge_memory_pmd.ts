/*
 * mm/huge_memory_pmd.ts - a huge PMD met by the core page-table walkers.
 *
 * The second half of mm/huge_memory.c (Linux 6.x), split off
 * mm/huge_memory.ts along that seam: what zap (zap_huge_pmd), fork
 * (copy_huge_pmd), mprotect (change_huge_pmd), GUP (follow_huge_pmd) and
 * mremap (move_huge_pmd) do when they find a PMD leaf, and
 * thp_get_unmapped_area(). Each runs inside the invalidation its caller
 * already sent for the range, and does not sleep. Non-present PMD leaves
 * are handed to mm/huge_memory_nonpresent.ts; splitting is
 * mm/huge_memory_split.ts.
 */
import type { page, vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, VM_HUGETLB, VM_WRITE, VM_SHARED, FOLL_WRITE, FOLL_PIN, vma_is_anonymous, add_mm_counter,
  mm_counter,
} from '../include/linux/mm.js';
import {
  pmd_write, pmd_dirty, pmd_pfn, pmd_mkwrite, pmd_wrprotect, pmd_mkold, pmd_trans_huge, pmd_modify,
  pmd_protnone, _PAGE_RW, type pmd_t,
} from '../include/linux/pgtable.js';
import { is_pmd_non_present_folio_entry, pmd_is_huge } from '../include/linux/swapops.js';
import {
  PageAnonExclusive, ClearPageAnonExclusive, SetPageDirty, folio_test_anon,
} from '../include/linux/page-flags.js';
import { HPAGE_PMD_NR, HPAGE_PMD_SIZE, haddrOf } from '../include/linux/huge_mm.js';
import { EAGAIN, ENOMEM } from '../include/uapi/asm-generic/errno.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { pfn_to_page, get_page } from './page_alloc.js';
import { pmd_off, pmd_alloc, pmd_lockptr, flush_tlb_range } from './pgtable.js';
import { tlb_remove_page, type mmu_gather } from './zap.js';
import { folio_maybe_dma_pinned } from './gup.js';
import { get_unmapped_area } from './vma.js';
import { follow_hugetlb_page } from './hugetlb.js';
import { __split_huge_pmd, __split_huge_pmd_locked } from './huge_memory_split.js';

/* the PMD split API, for the other paths of mm (mprotect, munmap, madvise, mremap, migration) */
export { __split_huge_pmd, __split_huge_pmd_locked, split_huge_pmd_address, vma_adjust_trans_huge } from './huge_memory_split.js';
import {
  zap_huge_non_present_pmd, copy_huge_non_present_pmd, change_non_present_huge_pmd,
} from './huge_memory_nonpresent.js';
import {
  is_huge_zero_pmd, folio_add_anon_rmap_pmd, folio_remove_rmap_pmd, mm_get_huge_zero_folio,
} from './huge_memory.js';

/* ------------------------------------------------------------ zap, fork, mprotect */

/**
 * zap_huge_pmd() - unmap_page_range() met a huge PMD its range covers whole. The
 * folio's reference goes to the mmu_gather and is dropped after the TLB
 * flush. The huge zero page holds no reference and no rss. A PMD swap
 * entry (migration, device-private) needs no flush:
 * zap_huge_non_present_pmd().
 * Context: mmap_lock held, inside the caller's invalidation.
 */
export function zap_huge_pmd(tlb: mmu_gather, vma: vm_area_struct, pmdp: number, addr: number): void {
  const mm = vma.vm_mm;
  const haddr = haddrOf(addr);
  const ptl = pmd_lockptr(mm, pmdp);
  spin_lock(ptl);
  const orig = mm.pgd.load(pmdp);
  if (is_pmd_non_present_folio_entry(orig)) { zap_huge_non_present_pmd(vma, pmdp, orig); spin_unlock(ptl); return; }
  if (!pmd_trans_huge(orig)) { spin_unlock(ptl); return; }
  mm.pgd.set(pmdp, 0);
  tlb.start = Math.min(tlb.start, haddr);
  tlb.end = Math.max(tlb.end, haddr + HPAGE_PMD_SIZE);
  if (is_huge_zero_pmd(orig)) { spin_unlock(ptl); return; }
  const f = pfn_to_page(pmd_pfn(orig));
  folio_remove_rmap_pmd(f);
  if (!folio_test_anon(f) && pmd_dirty(orig)) SetPageDirty(f);
  add_mm_counter(mm, mm_counter(f), -HPAGE_PMD_NR);
  spin_unlock(ptl);
  tlb_remove_page(tlb, f);
  count_event('zap_huge_pmd');
}

/**
 * copy_huge_pmd() - copy_page_range() on a huge PMD: share an anonymous THP
 * with the child, write-protected in both (the huge zero page is shared
 * as it is). A DMA-pinned exclusive THP cannot be shared: the parent's
 * PMD is split and -EAGAIN makes fork copy the PTEs, which gives the child
 * its own copy of each pinned page (copy_present_page). A PMD migration
 * entry or device-private THP is copied read-only in both
 * (copy_huge_non_present_pmd).
 * Context: both mmap_locks held for write, inside fork's invalidation.
 * Return: 0, -EAGAIN (copy the PTEs instead) or -ENOMEM.
 */
export function copy_huge_pmd(dst: vm_area_struct, src: vm_area_struct, _dst_pmdp: number, src_pmdp: number,
                              addr: number): number {
  if (!vma_is_anonymous(dst)) return 0;          /* refilled by faults */
  const dst_mm = dst.vm_mm, src_mm = src.vm_mm;
  const dst_pmdp = pmd_alloc(dst_mm, addr);
  if (dst_pmdp < 0) return -ENOMEM;
  const dst_ptl = pmd_lockptr(dst_mm, dst_pmdp), src_ptl = pmd_lockptr(src_mm, src_pmdp);
  spin_lock(dst_ptl);
  spin_lock(src_ptl);
  let pmd = src_mm.pgd.load(src_pmdp);
  if (is_pmd_non_present_folio_entry(pmd)) {
    copy_huge_non_present_pmd(dst, src, dst_pmdp, src_pmdp, pmd);
    spin_unlock(src_ptl);
    spin_unlock(dst_ptl);
    return 0;
  }
  if (!pmd_trans_huge(pmd)) { spin_unlock(src_ptl); spin_unlock(dst_ptl); return -EAGAIN; }
  if (is_huge_zero_pmd(pmd)) mm_get_huge_zero_folio(dst_mm);   /* a reference for the child, never a new folio */
  else {
    const f = pfn_to_page(pmd_pfn(pmd));
    if (PageAnonExclusive(f) && folio_maybe_dma_pinned(f)) {
      /* folio_try_dup_anon_rmap_pmd() failed: split, and let the PTE copy handle the pinned pages */
      __split_huge_pmd_locked(src, src_pmdp, haddrOf(addr));
      spin_unlock(src_ptl);
      spin_unlock(dst_ptl);
      count_event('thp_fork_split_pinned');
      return -EAGAIN;
    }
    get_page(f);
    ClearPageAnonExclusive(f);
    folio_add_anon_rmap_pmd(f);
    add_mm_counter(dst_mm, MM_ANONPAGES, HPAGE_PMD_NR);
  }
  pmd = pmd_wrprotect(pmd);
  src_mm.pgd.set(src_pmdp, pmd);
  dst_mm.pgd.set(dst_pmdp, pmd_mkold(pmd));
  spin_unlock(src_ptl);
  spin_unlock(dst_ptl);
  return 0;
}

/* can_change_pmd_writable() - as can_change_pte_writable() for a private mapping, at PMD level */
function can_change_pmd_writable(vma: vm_area_struct, pmd: pmd_t): boolean {
  if (!(vma.vm_flags & VM_WRITE) || is_huge_zero_pmd(pmd)) return false;
  if (vma.vm_flags & VM_SHARED) return pmd_dirty(pmd);
  return PageAnonExclusive(pfn_to_page(pmd_pfn(pmd))) && pmd_dirty(pmd);
}

/**
 * change_huge_pmd() - change_protection() on a huge PMD: apply newprot to a
 * huge PMD that the range covers whole; a PMD the range covers only in
 * part is split first and left to the PTE loop. A PMD swap entry only
 * loses write permission (change_non_present_huge_pmd).
 * Context: mmap_lock held for write, inside the caller's invalidation.
 * Return: true when the PMD was changed as a whole, false after a split.
 */
export function change_huge_pmd(vma: vm_area_struct, pmdp: number, addr: number, next: number, newprot: number): boolean {
  const mm = vma.vm_mm;
  const ptl = pmd_lockptr(mm, pmdp);
  spin_lock(ptl);
  if (next - addr !== HPAGE_PMD_SIZE) {
    __split_huge_pmd_locked(vma, pmdp, haddrOf(addr));
    spin_unlock(ptl);
    return false;
  }
  const old = mm.pgd.load(pmdp);
  if (is_pmd_non_present_folio_entry(old)) {
    change_non_present_huge_pmd(vma, pmdp, old);
    spin_unlock(ptl);
    return true;
  }
  if (!pmd_trans_huge(old)) { spin_unlock(ptl); return false; }
  let entry = pmd_modify(old, newprot);
  if (!(newprot & _PAGE_RW) && !pmd_protnone(entry) && can_change_pmd_writable(vma, entry)) entry = pmd_mkwrite(entry);
  mm.pgd.set(pmdp, entry);
  spin_unlock(ptl);
  count_event('change_huge_pmd');
  return true;
}

/* ------------------------------------------------------------ GUP, mremap */

/**
 * follow_huge_pmd() - follow_page_pte() found a huge PMD: GUP found no PTE for
 * addr. Returns the page of a huge leaf mapping addr (THP or hugetlb),
 * null when the access needs a fault first (no entry, read-only for a
 * write, or an unshare for a pin of a shared anonymous THP), or 'fault'.
 * Context: mmap_lock held for read.
 */
export function follow_huge_pmd(vma: vm_area_struct, addr: number, flags: number): page | null | 'fault' {
  if (vma.vm_flags & VM_HUGETLB) return follow_hugetlb_page(vma, addr, flags);
  const mm = vma.vm_mm;
  const pmdp = pmd_off(mm, addr);
  if (pmdp < 0) return 'fault';
  const pmd = mm.pgd.load(pmdp);
  if (!pmd_trans_huge(pmd) || pmd_protnone(pmd)) return 'fault';
  if ((flags & FOLL_WRITE) && !pmd_write(pmd)) return null;
  const head = pfn_to_page(pmd_pfn(pmd));
  /* gup_must_unshare(): a pin of a shared anonymous THP must unshare it first */
  if ((flags & FOLL_PIN) && !pmd_write(pmd) && folio_test_anon(head) && !PageAnonExclusive(head)) return null;
  return pfn_to_page(head.pfn + (addr - haddrOf(addr)) / PAGE_SIZE);
}

/**
 * move_huge_pmd() - mremap: move a whole huge PMD from old_pmdp to the
 * empty new_pmdp (same mm, both 2 MiB aligned): a present huge PMD or a
 * PMD swap entry (migration, device-private) alike. The caller's
 * MMU_NOTIFY_UNMAP covers the old range; rmap follows from page->index,
 * which the new VMA's vm_pgoff keeps valid.
 * Context: mmap_lock held for write. Return: true if moved.
 */
export function move_huge_pmd(vma: vm_area_struct, old_addr: number, new_addr: number,
                              old_pmdp: number, new_pmdp: number): boolean {
  const mm = vma.vm_mm;
  const ptl = pmd_lockptr(mm, old_pmdp);
  spin_lock(ptl);
  const pmd = mm.pgd.load(old_pmdp);
  if (!pmd_is_huge(pmd) || mm.pgd.load(new_pmdp) !== 0) { spin_unlock(ptl); return false; }
  mm.pgd.set(old_pmdp, 0);
  mm.pgd.set(new_pmdp, pmd);
  spin_unlock(ptl);
  flush_tlb_range(vma, old_addr, old_addr + HPAGE_PMD_SIZE);
  count_event('thp_mremap_move_pmd');
  trace_event('move_huge_pmd', { mm: mm.id, old_addr, new_addr });
  return true;
}

/**
 * thp_get_unmapped_area() - get_unmapped_area() for an anonymous mapping
 * of a multiple of 2 MiB without an address hint: ask for 2 MiB more and
 * place the mapping at a PMD boundary inside (the top one: mappings grow
 * down), so that it can be mapped by PMD leaves (Linux 6.7).
 * Return: the address, or -ENOMEM.
 */
export function thp_get_unmapped_area(mm: mm_struct, len: number): number {
  const pad = get_unmapped_area(mm, 0, len + HPAGE_PMD_SIZE);
  if (pad < 0) return get_unmapped_area(mm, 0, len);
  return haddrOf(pad + HPAGE_PMD_SIZE);
}

