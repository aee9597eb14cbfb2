/*
 * mm/memory_wp.ts - the write-protect fault: a write to a present entry
 * that is not writable (do_wp_page()), reusing the page when the faulting
 * mm is its only user and copying it otherwise (copy on write).
 *
 * Models do_wp_page(), wp_page_reuse(), wp_page_copy() and
 * wp_can_reuse_anon_folio() of mm/memory.c (Linux 6.x); handle_pte_fault()
 * in mm/memory.ts dispatches here; all of it is mm/memory.c in Linux.
 * Simplified as the rest of the model: no userfaultfd write-protect, no
 * KSM. The _nosleep variants are the same steps for
 * handle_mm_fault_nosleep(), where no preemption point can switch threads
 * and the mm has no MMU notifier subscriber.
 */
import type { page, vm_fault } from '../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, VM_WRITE, VM_SHARED, VM_FAULT_OOM, inc_mm_counter, dec_mm_counter, mm_counter, page_mapcount,
} from '../include/linux/mm.js';
import { pte_mkdirty, pte_mkyoung } from '../include/linux/pgtable.js';
import {
  PageAnonExclusive, SetPageAnonExclusive, SetPageDirty, PageSwapCache, folio_test_anon,
} from '../include/linux/page-flags.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import { cond_resched, type Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { trace_event, count_event, tracing_is_on } from '../lib/sim/trace.js';
import { put_page, get_page, copy_highpage } from './page_alloc.js';
import { pte_lockptr, ptep_get, set_pte_at, flush_tlb_page } from './pgtable.js';
import { anon_vma_prepare, folio_add_new_anon_rmap, folio_remove_rmap_pte } from './rmap.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start_nosubs, mmu_notifier_invalidate_range_end_nosubs,
} from './mmu_notifier.js';
import { folio_trylock, folio_unlock } from './filemap.js';
import { BUG } from '../include/asm-generic/bug.js';
import { folio_add_lru_vma } from './swap.js';
import { folio_free_swap } from './swapfile.js';
import { vm_normal_page, maybe_mkwrite, mk_pte, new_anon_page, alloc_anon_folio } from './memory.js';

/*
 * wp_page_reuse() - the faulting mm is the only user of the page: make the
 * existing entry writable instead of copying. Called with the PTE lock
 * held; drops it.
 */
function wp_page_reuse(vmf: vm_fault): number {
  const mm = vmf.vma.vm_mm;
  const entry = maybe_mkwrite(pte_mkdirty(pte_mkyoung(vmf.orig_pte)), vmf.vma);
  set_pte_at(mm, vmf.address, vmf.pte, entry);
  spin_unlock(pte_lockptr(mm, vmf.pte));
  count_event('fault_wp_reuse');
  return 0;
}

/*
 * wp_page_copy() - break COW: copy the old page (or allocate a zeroed one
 * for the zero page) and map the copy writable. Secondary MMUs are told
 * with MMU_NOTIFY_CLEAR because the old page is replaced under them.
 * Called without the PTE lock. The new page is allocated without
 * __GFP_ZERO when a copy overwrites it (as Linux does); then, around the
 * sleeps, wp_page_copy_install() under the PTE lock and
 * wp_page_copy_done().
 */
function* wp_page_copy(vmf: vm_fault, old: page | null): Sleepable<number> {
  if (anon_vma_prepare(vmf.vma) !== 0) return VM_FAULT_OOM;
  const np = yield* alloc_anon_folio(vmf.vma, old === null);
  if (np === null) return VM_FAULT_OOM;
  if (old !== null) copy_highpage(np, old);
  yield* cond_resched();
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, vmf.vma.vm_mm,
    vmf.address, vmf.address + PAGE_SIZE);
  yield* mmu_notifier_invalidate_range_start(range);
  const installed = wp_page_copy_install(vmf, old, np);
  yield* mmu_notifier_invalidate_range_end(range);
  return wp_page_copy_done(vmf, old, np, installed);
}

/*
 * wp_page_copy() of an mm without MMU notifier subscribers where no
 * preemption point can switch threads (handle_mm_fault_nosleep()).
 */
function wp_page_copy_nosleep(vmf: vm_fault, old: page | null): number {
  if (anon_vma_prepare(vmf.vma) !== 0) return VM_FAULT_OOM;
  const np = new_anon_page(vmf.vma, old === null);
  if (np === null) return VM_FAULT_OOM;
  if (old !== null) copy_highpage(np, old);
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, vmf.vma.vm_mm,
    vmf.address, vmf.address + PAGE_SIZE);
  if (!mmu_notifier_invalidate_range_start_nosubs(range)) BUG('wp_page_copy_nosleep: the mm has MMU notifiers');
  const installed = wp_page_copy_install(vmf, old, np);
  mmu_notifier_invalidate_range_end_nosubs(range);
  return wp_page_copy_done(vmf, old, np, installed);
}

/* Map @np in place of @old if the PTE did not change meanwhile. Return: true if it did not. */
function wp_page_copy_install(vmf: vm_fault, old: page | null, np: page): boolean {
  const vma = vmf.vma, mm = vma.vm_mm;
  const ptl = pte_lockptr(mm, vmf.pte);
  spin_lock(ptl);
  let installed = false;
  if (ptep_get(mm, vmf.pte) === vmf.orig_pte) {
    if (old !== null) {
      if (mm_counter(old) !== MM_ANONPAGES) { dec_mm_counter(mm, mm_counter(old)); inc_mm_counter(mm, MM_ANONPAGES); }
    } else {
      inc_mm_counter(mm, MM_ANONPAGES);
    }
    const entry = maybe_mkwrite(pte_mkdirty(mk_pte(np, vma.vm_page_prot)), vma);
    flush_tlb_page(vma, vmf.address);
    folio_add_new_anon_rmap(np, vma, vmf.address);
    folio_add_lru_vma(np, vma);
    set_pte_at(mm, vmf.address, vmf.pte, entry);
    if (old !== null) folio_remove_rmap_pte(old, vma);
    installed = true;
  }
  spin_unlock(ptl);
  return installed;
}

/* After the invalidation: drop the copy that lost the race, or the old PTE's reference. Return: 0. */
function wp_page_copy_done(vmf: vm_fault, old: page | null, np: page, installed: boolean): number {
  if (!installed) { put_page(np); return 0; }
  if (old !== null) put_page(old);      /* the reference the old PTE held */
  count_event(old === null ? 'fault_cow_zero' : 'fault_cow');
  if (tracing_is_on()) trace_event('wp_page_copy', { addr: vmf.address, old_pfn: old === null ? 0 : old.pfn, new_pfn: np.pfn });
  return 0;
}

/*
 * wp_can_reuse_anon_folio() - is the faulting mm provably the only user of
 * this anonymous page? Exclusive pages are; otherwise one reference and
 * one mapping, checked under the folio lock, after dropping the swap
 * cache's reference when no PTE names the folio's slot any more.
 */
function wp_can_reuse_anon_folio(p: page): boolean {
  if (PageAnonExclusive(p)) return true;
  const swapcache = PageSwapCache(p) ? 1 : 0;       /* the swap cache's reference may be dropped below */
  if (p._refcount !== 1 + swapcache || page_mapcount(p) !== 1) return false;
  if (!folio_trylock(p)) return false;
  if (swapcache) folio_free_swap(p);
  const ok = p._refcount === 1 && page_mapcount(p) === 1;
  if (ok) SetPageAnonExclusive(p);
  folio_unlock(p);
  return ok;
}

/*
 * do_wp_page() up to the copy: reuse the page when the faulting mm is its
 * only user, or reference it for the copy. Called with the PTE lock held;
 * drops it. Return: false when the entry was reused (done); otherwise the
 * page to copy (referenced), or null for the zero page.
 */
function wp_page_reuse_or_get(vmf: vm_fault): page | null | false {
  const vma = vmf.vma;
  const p = vm_normal_page(vma, vmf.address, vmf.orig_pte);
  if ((vma.vm_flags & (VM_SHARED | VM_WRITE)) === (VM_SHARED | VM_WRITE)) {
    /* shared writable mapping: no copy, the page gets dirty */
    if (p !== null) SetPageDirty(p);
    wp_page_reuse(vmf);
    return false;
  }
  if (p !== null && folio_test_anon(p) && wp_can_reuse_anon_folio(p)) {
    wp_page_reuse(vmf);
    return false;
  }
  if (p !== null) get_page(p);          /* keep the old page while we copy it */
  spin_unlock(pte_lockptr(vma.vm_mm, vmf.pte));
  return p;
}

/**
 * do_wp_page() - write fault on a present, write-protected entry.
 * Called with the PTE lock held (it is dropped on every path); also by
 * swap-in (mm/swap_state.ts) for a write to a folio it mapped read-only.
 * Context: mmap_lock held for read. Return: 0 or VM_FAULT_*.
 */
export function* do_wp_page(vmf: vm_fault): Sleepable<number> {
  const p = wp_page_reuse_or_get(vmf);
  if (p === false) return 0;
  const ret = yield* wp_page_copy(vmf, p);
  if (p !== null) put_page(p);
  return ret;
}

/* do_wp_page() for handle_mm_fault_nosleep() (mm/memory.ts): the same without a sleep. */
export function do_wp_page_nosleep(vmf: vm_fault): number {
  const p = wp_page_reuse_or_get(vmf);
  if (p === false) return 0;
  const ret = wp_page_copy_nosleep(vmf, p);
  if (p !== null) put_page(p);
  return ret;
}
