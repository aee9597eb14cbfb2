/*
 * mm/pgtable.ts - the CPU page table of an mm, as a lib/gpt instance.
 *
 * Models the page-table accessors of include/linux/pgtable.h and
 * mm/pgtable-generic.c (pgd_offset/pmd_offset/pte_offset_map_lock,
 * pte_alloc, set_pte_at, ptep_get_and_clear, the split PTE locks of
 * include/linux/mm.h). The table itself is the generic engine of lib/gpt
 * with the x86-64 entry format: four levels of 512 entries, PGD/PUD/PMD/PTE.
 *
 * "Pointers" to entries (pmdp, ptep) are numbers that gpt hands out; they
 * stay valid while the directory holding them is not pruned, which happens
 * only with mmap_lock held for write (free_pgtables on munmap/exit).
 *
 * Locking, as in Linux with split PTE locks: the entries of one PTE page
 * are changed under that page's ptl (pte_lockptr); PMD and upper entries
 * under mm->page_table_lock. The hardware-side updates of the accessed
 * and dirty bits happen without a lock (atomic bit set), as on x86.
 */
import type { mm_struct, vm_area_struct, page } from '../include/linux/mm_types.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import {
  PMD_LEVEL, PTE_LEVEL, _PAGE_RW, _PAGE_DIRTY, _PAGE_ACCESSED, _PAGE_SOFT_DIRTY, pte_set_flags, pte_clear_flags,
  pte_write, pte_pfn, pte_present, type pte_t,
} from '../include/linux/pgtable.js';
import { ENOMEM } from '../include/uapi/asm-generic/errno.js';
import { gpt } from '../lib/gpt/gpt.js';
import { GPT_NO_DIR } from '../include/linux/gpt.js';
import { x86_64_pgtable_format } from '../lib/gpt/formats.js';
import { spinlock_t, spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { lockdep_set_class } from '../lib/locking/lockdep.js';
import { charge } from '../lib/sim/clock.js';
import { preempt_point } from '../lib/sim/sched.js';
import { TLB_FLUSH_PAGE_NS } from '../lib/sim/costs.js';
import { count_event } from '../lib/sim/trace.js';
import { mmu_notifier_arch_invalidate_secondary_tlbs } from './mmu_notifier.js';
import { mmu_notifier_invalidate_page } from './mmu_notifier_2008.js';

export { GPT_NO_DIR };

/** pgd_alloc() - a new, empty page table for an mm. */
export function pgd_alloc(): gpt {
  return new gpt({ address_bits: 48, level_bits: 9, page_shift: 12 }, x86_64_pgtable_format);
}

/* one simulated spinlock per PTE page, created with the page */
const ptlocks = new WeakMap<gpt, Map<number, spinlock_t>>();

/**
 * pte_lockptr() - the split page-table lock of the PTE page holding ptep.
 */
export function pte_lockptr(mm: mm_struct, ptep: number): spinlock_t {
  let m = ptlocks.get(mm.pgd);
  if (m === undefined) { m = new Map(); ptlocks.set(mm.pgd, m); }
  const slot = mm.pgd.dir_of(ptep);
  let l = m.get(slot);
  if (l === undefined) { l = lockdep_set_class(new spinlock_t(`ptl[mm${mm.id}:${slot}]`), 'ptlock'); m.set(slot, l); }
  return l;
}

/** pmd_lockptr() - the lock of PMD entries: mm->page_table_lock, as without split PMD locks. */
export function pmd_lockptr(mm: mm_struct, _pmdp: number): spinlock_t {
  return mm.page_table_lock;
}

/**
 * pmd_off() - the PMD entry covering addr, or GPT_NO_DIR when an upper
 * level has no directory. Lockless (mmap_lock held keeps it stable).
 */
export function pmd_off(mm: mm_struct, addr: number): number {
  return mm.pgd.lookup(addr, PMD_LEVEL);
}

/**
 * pmd_alloc() - make sure the PUD and PMD directories for addr exist.
 * Return: the PMD entry pointer, or -ENOMEM.
 */
export function pmd_alloc(mm: mm_struct, addr: number): number {
  const pmdp = mm.pgd.populate(addr, PMD_LEVEL);
  return pmdp < 0 && pmdp !== GPT_NO_DIR ? pmdp : pmdp;
}

/**
 * pte_offset_map() - the PTE entry for addr, or GPT_NO_DIR when the PMD is
 * empty or a huge leaf. Takes no lock.
 */
export function pte_offset_map(mm: mm_struct, addr: number): number {
  return mm.pgd.lookup(addr, PTE_LEVEL);
}

/**
 * pte_alloc_map() - populate the page-table pages down to the PTE level.
 * Return: the PTE entry pointer, -ENOMEM, or -EEXIST when a huge PMD maps
 * the range (the caller handles the huge entry instead).
 */
export function pte_alloc_map(mm: mm_struct, addr: number): number {
  const ptep = mm.pgd.populate(addr, PTE_LEVEL);
  if (ptep === GPT_NO_DIR) return -ENOMEM;
  return ptep;
}

/**
 * pte_offset_map_lock() - find the PTE for addr and take its page's lock.
 * Return: the PTE pointer with the lock held, or GPT_NO_DIR (no lock taken).
 */
export function pte_offset_map_lock(mm: mm_struct, addr: number): number {
  const ptep = mm.pgd.lookup(addr, PTE_LEVEL);
  if (ptep >= 0) spin_lock(pte_lockptr(mm, ptep));
  return ptep;
}

/** pte_unmap_unlock() - drop the lock taken by pte_offset_map_lock(). */
export function pte_unmap_unlock(mm: mm_struct, ptep: number): void {
  spin_unlock(pte_lockptr(mm, ptep));
}

/** ptep_get() - read a PTE (READ_ONCE). */
export function ptep_get(mm: mm_struct, ptep: number): pte_t {
  return mm.pgd.load(ptep);
}

/** set_pte_at() - install a PTE value. Caller holds the PTE lock. */
export function set_pte_at(mm: mm_struct, _addr: number, ptep: number, pte: pte_t): void {
  mm.pgd.set(ptep, pte);
  preempt_point('set_pte_at');
}

/** ptep_get_and_clear() - read and clear a PTE. Caller holds the PTE lock. */
export function ptep_get_and_clear(mm: mm_struct, _addr: number, ptep: number): pte_t {
  const old = mm.pgd.load(ptep);
  if (old !== 0) mm.pgd.set(ptep, 0);
  return old;
}

/**
 * ptep_clear_flush() - clear a PTE and flush its translation if it was
 * present (mm/pgtable-generic.c; x86 flushes when the entry was
 * accessible, which a present entry is here).
 * Context: PTE lock held. Return: the old entry.
 */
export function ptep_clear_flush(vma: vm_area_struct, addr: number, ptep: number): pte_t {
  const old = ptep_get_and_clear(vma.vm_mm, addr, ptep);
  if (pte_present(old)) flush_tlb_page(vma, addr);
  return old;
}

/** pte_clear() - empty a PTE. */
export function pte_clear(mm: mm_struct, _addr: number, ptep: number): void {
  mm.pgd.set(ptep, 0);
}

/*
 * PTE batches: runs of PTEs that map consecutive pages of one large folio
 * (include/linux/pgtable.h and mm/internal.h, Linux 6.8-6.10). fork and
 * the zap handle such a run with one rmap, refcount and rss update; an
 * order-0 folio is a run of one.
 */

/** set_ptes() - map @nr consecutive pages: @pte at @ptep, the next pfn at ptep + 1 ... Caller holds the PTE lock. */
export function set_ptes(mm: mm_struct, addr: number, ptep: number, pte: pte_t, nr: number): void {
  for (let i = 0; i < nr; i++) mm.pgd.set(ptep + i, pte + i * PAGE_SIZE);
  preempt_point('set_pte_at');
}

/**
 * wrprotect_ptes() - clear the write bit of @nr present PTEs from @ptep:
 * ptep_set_wrprotect() of each, an atomic bit clear of _PAGE_RW as on
 * x86 (gpt clear_bits()), which keeps the accessed and dirty bits a
 * hardware walker may set meanwhile and leaves the entry count of the PTE
 * page alone (the entries stay present).
 * Context: PTE lock held.
 */
export function wrprotect_ptes(mm: mm_struct, _addr: number, ptep: number, nr: number): void {
  const g = mm.pgd;
  for (let i = 0; i < nr; i++) g.clear_bits(ptep + i, _PAGE_RW);
}

/**
 * get_and_clear_full_ptes() - clear @nr present PTEs from @ptep, whose
 * first value the caller read as @pte. Return: @pte with the dirty and
 * accessed bits of all of them (the folio's state is per folio).
 * Context: PTE lock held.
 */
export function get_and_clear_full_ptes(mm: mm_struct, ptep: number, pte: pte_t, nr: number): pte_t {
  const g = mm.pgd;
  g.set(ptep, 0);
  for (let i = 1; i < nr; i++) {
    const o = g.set(ptep + i, 0);
    pte = pte_set_flags(pte, o & (_PAGE_DIRTY | _PAGE_ACCESSED));
  }
  return pte;
}

/** folio_pte_batch() flags: differences in these bits do not end a batch. */
export const FPB_IGNORE_DIRTY = 1 << 0;
export const FPB_IGNORE_SOFT_DIRTY = 1 << 1;

/* the bits a batch compares: pfn and protection, not the ignored ones, accessed or write */
function pte_batch_clear_ignored(pte: pte_t, flags: number): pte_t {
  let bits = _PAGE_ACCESSED | _PAGE_RW;
  if (flags & FPB_IGNORE_DIRTY) bits |= _PAGE_DIRTY;
  if (flags & FPB_IGNORE_SOFT_DIRTY) bits |= _PAGE_SOFT_DIRTY;
  return pte_clear_flags(pte, bits);
}

/**
 * folio_pte_batch() - how many PTEs from @ptep (whose value is @pte, a
 * present entry mapping a page of the large @folio) map consecutive pages
 * of @folio with the same protection, at most @max_nr.
 * @flags: FPB_IGNORE_DIRTY, FPB_IGNORE_SOFT_DIRTY
 * @any_writable: if given, any_writable.value is set when one of them is writable
 * Context: PTE lock held. Return: 1 .. @max_nr.
 */
export function folio_pte_batch(folio: page, mm: mm_struct, ptep: number, pte: pte_t, max_nr: number,
                                flags: number, any_writable?: { value: boolean }): number {
  const g = mm.pgd;
  const folio_end_pfn = folio.pfn + (1 << folio.order);
  let writable = pte_write(pte);
  let expected = pte_batch_clear_ignored(pte, flags) + PAGE_SIZE;
  let nr = 1;
  for (; nr < max_nr; nr++) {
    const e = g.load(ptep + nr);
    if (pte_batch_clear_ignored(e, flags) !== expected || pte_pfn(e) >= folio_end_pfn) break;
    writable ||= pte_write(e);
    expected += PAGE_SIZE;
  }
  if (any_writable !== undefined) any_writable.value = writable;
  return nr;
}

/** pte_addr() - the first virtual address an entry pointer covers. */
export function pte_addr(mm: mm_struct, ptep: number): number {
  return mm.pgd.entry_addr(ptep);
}

/**
 * flush_tlb_range() - drop stale translations for [start, end).
 *
 * The simulated MMU has no TLB: every access walks the table, so a stale
 * translation cannot survive a PTE change. The call still charges the
 * time a shootdown costs and counts it, so traces show where Linux
 * flushes.
 */
export function flush_tlb_range(vma: vm_area_struct, start: number, end: number): void {
  charge(TLB_FLUSH_PAGE_NS);
  count_event('tlb_flush');
  count_event('tlb_flush_pages', Math.ceil((end - start) / PAGE_SIZE));
  /* secondary TLBs that share this page table (IOMMU SVA), as x86's flush_tlb_mm_range ends */
  mmu_notifier_arch_invalidate_secondary_tlbs(vma.vm_mm, start, end);
}

/**
 * flush_tlb_page() - flush one page's translation. Its callers have just
 * cleared or replaced one PTE and still hold the page: this is where
 * 2.6.27's ptep_clear_flush_notify() called invalidate_page, which the
 * 2008 notifier API (mm/mmu_notifier_2008.ts) still gets from here.
 */
export function flush_tlb_page(vma: vm_area_struct, addr: number): void {
  flush_tlb_range(vma, addr, addr + PAGE_SIZE);
  mmu_notifier_invalidate_page(vma.vm_mm, addr);
}

/*
 * Per-page flushes accounted per PTE lock hold (a model split, for host
 * cost only). A loop that clears many PTEs under one PTE lock with
 * ptep_clear_flush(), as the migration's collect does for every
 * anon-exclusive page (mm/migrate_device_collect.ts), can use
 * ptep_clear_flush_batched() instead: each page's flush still reaches
 * the secondary MMUs (IOMMU SVA) and the 2008 notifier at once, in
 * Linux's order, but the simulated cost and the tlb_flush /
 * tlb_flush_pages counters of the n flushes are added once, by
 * tlb_flush_batch_account() before the lock is dropped: n charges of
 * TLB_FLUSH_PAGE_NS and n one-page flushes, the same totals as n
 * flush_tlb_page() calls. Nothing can read them in between: the PTE
 * lock is held, so no other thread runs. The simulated MMU has no TLB,
 * so nothing is left stale either way.
 */

/** struct tlb_flush_batch - the flushes of one PTE lock hold not accounted yet. */
export interface tlb_flush_batch { vma: vm_area_struct; nr: number }

/* TEST ONLY: false makes ptep_clear_flush_batched() plain ptep_clear_flush() (the slow path to compare with) */
let tlb_flush_batching = true;
/** tlb_flush_batch_enable() - TEST ONLY: turn the per-lock-hold accounting on or off; returns the old setting. */
export function tlb_flush_batch_enable(on: boolean): boolean {
  const old = tlb_flush_batching;
  tlb_flush_batching = on;
  return old;
}

/** tlb_flush_batch_init() - an empty batch for the PTE lock hold about to start in @vma. */
export function tlb_flush_batch_init(vma: vm_area_struct): tlb_flush_batch {
  return { vma, nr: 0 };
}

/**
 * ptep_clear_flush_batched() - ptep_clear_flush() of @tlb's VMA whose
 * flush is accounted in @tlb (see above).
 * Context: PTE lock held until tlb_flush_batch_account(). Return: the old entry.
 */
export function ptep_clear_flush_batched(tlb: tlb_flush_batch, addr: number, ptep: number): pte_t {
  const vma = tlb.vma;
  if (!tlb_flush_batching) return ptep_clear_flush(vma, addr, ptep);
  const old = ptep_get_and_clear(vma.vm_mm, addr, ptep);
  if (pte_present(old)) {
    tlb.nr++;
    mmu_notifier_arch_invalidate_secondary_tlbs(vma.vm_mm, addr, addr + PAGE_SIZE);
    mmu_notifier_invalidate_page(vma.vm_mm, addr);
  }
  return old;
}

/**
 * tlb_flush_batch_account() - the cost and counters of @tlb's flushes,
 * as flush_tlb_page() would have added them one by one; empties @tlb.
 * Context: the PTE lock of the batch still held.
 */
export function tlb_flush_batch_account(tlb: tlb_flush_batch): void {
  const n = tlb.nr;
  if (n === 0) return;
  tlb.nr = 0;
  charge(n * TLB_FLUSH_PAGE_NS);
  count_event('tlb_flush', n);
  count_event('tlb_flush_pages', n);
}

/**
 * free_pgtables() - release the page-table pages no VMA needs any more in
 * [start, end). Called with mmap_lock held for write after the range was
 * zapped; gpt prunes the empty directories past any lockless walker.
 */
export function free_pgtables(mm: mm_struct, start: number, end: number): void {
  const freed = mm.pgd.prune(start, end);
  if (freed > 0) count_event('pgtable_free', freed);
}
