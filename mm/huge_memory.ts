/*
 * mm/huge_memory.ts - transparent huge pages mapped by PMD leaves.
 *
 * Models mm/huge_memory.c (Linux 6.x): the global mode of
 * /sys/kernel/mm/transparent_hugepage/enabled, the huge zero page,
 * do_huge_pmd_anonymous_page(), the write fault on a huge PMD
 * (do_huge_pmd_wp_page(): reuse an exclusive THP, replace the huge zero
 * page by a new THP, otherwise split the PMD and let the PTE path copy
 * one 4 KiB page, as current Linux does), and the rmap of a PMD-mapped
 * folio. Splitting (split_huge_pmd,
 * split_folio, the deferred split queue) is mm/huge_memory_split.ts;
 * MADV_COLLAPSE is mm/khugepaged.ts; hugetlb is mm/hugetlb.ts. Sizes, counts and the lock
 * order are in include/linux/huge_mm.ts.
 *
 * The core fault path calls into this file directly when it meets a huge
 * PMD, as Linux's does; what zap, fork, mprotect, GUP and mremap do with
 * a huge PMD (zap_huge_pmd(), copy_huge_pmd(), change_huge_pmd(),
 * follow_huge_pmd(), move_huge_pmd()) and thp_get_unmapped_area() are in
 * mm/huge_memory_pmd.ts, the other half of mm/huge_memory.c.
 *
 * Secondary MMUs: a split of a present huge PMD, a COW that replaces the
 * huge zero page and a folio split are each bracketed by MMU_NOTIFY_CLEAR
 * over the 2 MiB range (or the folio's range in each VMA), as in Linux.
 * Where the split happens inside an invalidation the caller already sent
 * for the same addresses (zap, fork, mprotect), the hooks cannot sleep
 * and the split sends no nested CLEAR; the page-table change it makes
 * maps the same pages with the same permissions.
 *
 * Non-present PMD leaves (THP migration entries and device-private THPs,
 * include/linux/swapops.ts) go through the same hooks; their halves of
 * the fault, zap, fork, mprotect and split live in
 * mm/huge_memory_nonpresent.ts.
 *
 * Simplified: no THP for files or shmem (tmpfs huge=never), no PMD-level
 * swap slots (reclaim splits a THP first), no mTHP orders, no khugepaged
 * thread, and a THP fault never reclaims to find 2 MiB (it falls back to
 * 4 KiB pages instead).
 */
import type { page, vm_area_struct, vm_fault, mm_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES, MMF_HUGE_ZERO_FOLIO } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, VM_NOHUGEPAGE, VM_HUGEPAGE, VM_HUGETLB, VM_PFNMAP, VM_MIXEDMAP, VM_IO, VM_WRITE,
  FAULT_FLAG_WRITE, FAULT_FLAG_UNSHARE, VM_FAULT_FALLBACK, VM_FAULT_OOM, VM_FAULT_SIGBUS, vma_is_anonymous,
  add_mm_counter,
} from '../include/linux/mm.js';
import {
  pmd_write, pmd_pfn, pmd_mkwrite, pmd_wrprotect, pmd_mkdirty, pmd_mkyoung, pmd_trans_huge, pfn_pmd,
  type pmd_t,
} from '../include/linux/pgtable.js';
import { is_swap_pmd, is_pmd_device_private_entry, is_pmd_migration_entry } from '../include/linux/swapops.js';
import { PageAnonExclusive, SetPageAnonExclusive, folio_test_anon, folio_mark_uptodate } from '../include/linux/page-flags.js';
import { GFP_TRANSHUGE_LIGHT, __GFP_ZERO, __GFP_NORETRY, __GFP_MOVABLE } from '../include/linux/gfp.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import {
  HPAGE_PMD_NR, HPAGE_PMD_ORDER, HPAGE_PMD_SIZE, haddrOf, TVA_IN_PF, TVA_ENFORCE_SYSFS, type thp_mode,
  THP_FAULT_ALLOC, THP_FAULT_FALLBACK, THP_FAULT_FALLBACK_CHARGE, THP_ZERO_PAGE_ALLOC,
} from '../include/linux/huge_mm.js';
import { EINVAL } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { alloc_pages, pfn_to_page, put_page, get_page } from './page_alloc.js';
import { pmd_lockptr, flush_tlb_range } from './pgtable.js';
import { pmd_migration_entry_wait } from './memory.js';
import { anon_vma_prepare } from './rmap.js';
import { folio_trylock, folio_lock, folio_unlock } from './filemap.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import {
  folio_large_mapcount, resetDeferredSplitQueue, __split_huge_pmd, __split_huge_pmd_locked,
} from './huge_memory_split.js';

/* the PMD split API, for the other paths of mm (mprotect, munmap, madvise, mremap, migration) */
export { __split_huge_pmd, __split_huge_pmd_locked, split_huge_pmd_address, vma_adjust_trans_huge } from './huge_memory_split.js';
import { do_huge_pmd_device_private } from './huge_memory_nonpresent.js';
import { BUG } from '../include/asm-generic/bug.js';
import { mem_cgroup_charge } from './memcontrol.js';
import { folio_add_lru_vma } from './swap.js';

/* ------------------------------------------------------------ global state */

/*
 * The sysfs knobs and the huge zero folio. One per machine; reset by
 * hugepage_init() at every boot.
 */
interface thp_state {
  mode: thp_mode;                 /* transparent_hugepage/enabled */
  use_zero_page: boolean;         /* transparent_hugepage/use_zero_page */
  huge_zero_folio: page | null;   /* allocated on the first read fault that wants it */
  huge_zero_refcount: number;     /* mms with MMF_HUGE_ZERO_FOLIO, + 1 for the shrinker; 0: no folio */
  nr_anon_thps: number;           /* NR_ANON_THPS: pages of anon THPs mapped by a PMD (meminfo AnonHugePages) */
}
let thp: thp_state = { mode: 'madvise', use_zero_page: true, huge_zero_folio: null, huge_zero_refcount: 0, nr_anon_thps: 0 };

/**
 * hugepage_init() - boot THP: the mode from the transparent_hugepage=
 * boot parameter and an empty deferred split queue.
 * @mode: 'always', 'madvise' or 'never'. The simulated default is
 *   'madvise' (what Debian and Ubuntu ship; Linux's Kconfig default is
 *   'always'), so a mapping gets THPs when it asks with MADV_HUGEPAGE.
 */
export function hugepage_init(mode: thp_mode = 'madvise'): void {
  thp = { mode, use_zero_page: true, huge_zero_folio: null, huge_zero_refcount: 0, nr_anon_thps: 0 };
  resetDeferredSplitQueue();
}

/**
 * thp_enabled_store() - write /sys/kernel/mm/transparent_hugepage/enabled.
 * Return: 0, or -EINVAL for anything but always, madvise, never.
 */
export function thp_enabled_store(s: string): number {
  const m = s.trim();
  if (m !== 'always' && m !== 'madvise' && m !== 'never') return -EINVAL;
  thp.mode = m;
  return 0;
}

/** thp_enabled_show() - read it back, the current mode in brackets. */
export function thp_enabled_show(): string {
  return (['always', 'madvise', 'never'] as const).map((m) => (m === thp.mode ? `[${m}]` : m)).join(' ');
}

/** thp_use_zero_page_store() - transparent_hugepage/use_zero_page (0 or 1). */
export function thp_use_zero_page_store(on: boolean): void { thp.use_zero_page = on; }

/** hpage_pmd_size() - /sys/kernel/mm/transparent_hugepage/hpage_pmd_size, in bytes. */
export function hpage_pmd_size(): number { return HPAGE_PMD_SIZE; }

/** nr_anon_thps() - NR_ANON_THPS in pages (what /proc/meminfo prints as AnonHugePages, in kB). */
export function nr_anon_thps(): number { return thp.nr_anon_thps; }

/* ------------------------------------------------------------ policy */

/**
 * thp_vma_suitable() - does the PMD-aligned 2 MiB around haddr lie
 * inside the VMA (transhuge_vma_suitable)?
 */
export function thp_vma_suitable(vma: vm_area_struct, haddr: number): boolean {
  return haddr >= vma.vm_start && haddr + HPAGE_PMD_SIZE <= vma.vm_end;
}

/**
 * thp_vma_allowable() - may this VMA have PMD-sized THPs
 * (__thp_vma_allowable_orders for the PMD order)?
 * @tva_flags: TVA_IN_PF from the fault path (which checks the address
 *   itself); TVA_ENFORCE_SYSFS to obey the global mode (MADV_COLLAPSE
 *   does not).
 * Return: false for VM_NOHUGEPAGE, hugetlb and special mappings, files
 * and shmem, a mode that forbids it, or (outside a fault) a VMA with no
 * aligned 2 MiB inside.
 */
export function thp_vma_allowable(vma: vm_area_struct, tva_flags: number): boolean {
  const f = vma.vm_flags;
  if (f & (VM_NOHUGEPAGE | VM_HUGETLB | VM_PFNMAP | VM_MIXEDMAP | VM_IO)) return false;
  if (!vma_is_anonymous(vma)) return false;
  if (tva_flags & TVA_ENFORCE_SYSFS) {
    if (thp.mode === 'never') return false;
    if (thp.mode === 'madvise' && !(f & VM_HUGEPAGE)) return false;
  }
  if (!(tva_flags & TVA_IN_PF) && !thp_vma_suitable(vma, haddrOf(vma.vm_end - HPAGE_PMD_SIZE))) return false;
  return true;
}

/* ------------------------------------------------------------ rmap of a PMD-mapped folio */

/** is_huge_zero_folio() - the folio is the huge zero page. */
export function is_huge_zero_folio(f: page): boolean {
  return thp.huge_zero_folio !== null && f.compound_head.pfn === thp.huge_zero_folio.pfn;
}

/** is_huge_zero_pmd() - the PMD leaf maps the huge zero page. */
export function is_huge_zero_pmd(pmd: pmd_t): boolean {
  return thp.huge_zero_folio !== null && pmd_pfn(pmd) === thp.huge_zero_folio.pfn;
}

/*
 * get_huge_zero_folio() - take a reference on the huge zero folio,
 * allocating it when there is none. A new folio starts with two: the
 * caller's and the one the shrinker drops (Linux's get_huge_zero_page()).
 */
function get_huge_zero_folio(): boolean {
  if (thp.huge_zero_refcount > 0) { thp.huge_zero_refcount++; return true; }
  const f = alloc_pages((GFP_TRANSHUGE_LIGHT | __GFP_ZERO | __GFP_NORETRY) & ~__GFP_MOVABLE, HPAGE_PMD_ORDER);
  if (f === null) return false;
  count_event(THP_ZERO_PAGE_ALLOC);
  thp.huge_zero_folio = f;
  thp.huge_zero_refcount = 2;
  return true;
}

/**
 * mm_get_huge_zero_folio() - the huge zero page for @mm, allocated on
 * first use (never movable). The first call for an mm takes a reference
 * and marks it MMF_HUGE_ZERO_FOLIO; mm_put_huge_zero_folio() drops it
 * when the mm is torn down. A PMD mapping takes no page reference.
 * Return: the folio, or null when 2 MiB cannot be found.
 */
export function mm_get_huge_zero_folio(mm: mm_struct): page | null {
  if (mm.flags & MMF_HUGE_ZERO_FOLIO) return thp.huge_zero_folio;
  if (!get_huge_zero_folio()) return null;
  mm.flags |= MMF_HUGE_ZERO_FOLIO;
  return thp.huge_zero_folio;
}

/**
 * mm_put_huge_zero_folio() - __mmput(): drop @mm's reference on the huge
 * zero folio, if it took one. The last reference is the shrinker's.
 */
export function mm_put_huge_zero_folio(mm: mm_struct): void {
  if (!(mm.flags & MMF_HUGE_ZERO_FOLIO)) return;
  mm.flags &= ~MMF_HUGE_ZERO_FOLIO;
  if (--thp.huge_zero_refcount <= 0) BUG('huge zero folio: an mm dropped the shrinker\'s reference');
}

/**
 * shrink_huge_zero_folio_scan() - the huge zero folio shrinker (Linux's
 * huge_zero_page_shrinker, run by global reclaim from shrink_slab()):
 * free the folio once no mm holds it, only the shrinker's reference left.
 * The next read fault that wants it allocates a new one.
 * Context: any; does not sleep. Return: pages freed (HPAGE_PMD_NR or 0).
 */
export function shrink_huge_zero_folio_scan(): number {
  if (thp.huge_zero_refcount !== 1) return 0;
  const f = thp.huge_zero_folio!;
  thp.huge_zero_refcount = 0;
  thp.huge_zero_folio = null;
  put_page(f);
  count_event('thp_zero_page_free');
  return HPAGE_PMD_NR;
}

/** huge_zero_folio_allocated() - is there a huge zero folio now (for leak checks)? */
export function huge_zero_folio_allocated(): boolean {
  return thp.huge_zero_folio !== null;
}

/**
 * folio_add_new_anon_rmap_pmd() - map a new anonymous THP by a PMD for
 * the first time (folio_add_new_anon_rmap with RMAP_EXCLUSIVE at PMD
 * level): anon, exclusive (on the head page), entire mapcount 1.
 */
export function folio_add_new_anon_rmap_pmd(f: page, vma: vm_area_struct, haddr: number): void {
  if (vma.anon_vma === null) BUG('anon THP rmap without anon_vma');
  f.mapping = vma.anon_vma;
  f.index = (haddr - vma.vm_start) / PAGE_SIZE + vma.vm_pgoff;
  f._entire_mapcount = 0;
  SetPageAnonExclusive(f);
  thp.nr_anon_thps += HPAGE_PMD_NR;
}

/** folio_add_anon_rmap_pmd() - one more PMD maps an existing anonymous THP (fork). */
export function folio_add_anon_rmap_pmd(f: page): void {
  if (++f._entire_mapcount === 0) thp.nr_anon_thps += HPAGE_PMD_NR;
}

/**
 * folio_remove_rmap_pmd() - a PMD no longer maps the folio. The caller
 * drops the PMD's reference afterwards.
 */
export function folio_remove_rmap_pmd(f: page): void {
  if (f._entire_mapcount < 0) BUG(`entire mapcount underflow pfn ${f.pfn}`);
  if (--f._entire_mapcount < 0 && folio_test_anon(f)) thp.nr_anon_thps -= HPAGE_PMD_NR;
}

/* ------------------------------------------------------------ fault */

/*
 * map_anon_folio_pmd() - install a new anonymous THP at haddr: writable
 * and dirty if the VMA allows writes, rmap, LRU, rss. Caller holds the
 * PMD lock and checked the PMD is empty.
 */
export function map_anon_folio_pmd(f: page, pmdp: number, vma: vm_area_struct, haddr: number): void {
  const mm = vma.vm_mm;
  let entry = pmd_mkdirty(pfn_pmd(f.pfn, vma.vm_page_prot));
  if (vma.vm_flags & VM_WRITE) entry = pmd_mkwrite(entry);
  folio_add_new_anon_rmap_pmd(f, vma, haddr);
  folio_add_lru_vma(f, vma);
  mm.pgd.set(pmdp, entry);
  add_mm_counter(mm, MM_ANONPAGES, HPAGE_PMD_NR);
}

/*
 * vma_alloc_anon_folio_pmd() - a zeroed, uptodate, charged 2 MiB folio, or
 * null (counted as a fallback). The charge uses the allocation's THP gfp,
 * as Linux does: without __GFP_DIRECT_RECLAIM a memcg at its limit is not
 * reclaimed for a THP, the fault falls back to small pages.
 */
function vma_alloc_anon_folio_pmd(vma: vm_area_struct): page | null {
  const gfp = GFP_TRANSHUGE_LIGHT | __GFP_NORETRY | __GFP_ZERO;
  const f = alloc_pages(gfp, HPAGE_PMD_ORDER);
  if (f === null) { count_event(THP_FAULT_FALLBACK); return null; }
  if (mem_cgroup_charge(f, vma.vm_mm, gfp) !== 0) {
    put_page(f);
    count_event(THP_FAULT_FALLBACK);
    count_event(THP_FAULT_FALLBACK_CHARGE);
    return null;
  }
  folio_mark_uptodate(f);
  f._entire_mapcount = -1;
  return f;
}

/**
 * do_huge_pmd_anonymous_page() - first touch of an empty PMD in a THP
 * VMA. A read maps the huge zero page read-only; a write maps a new
 * zeroed 2 MiB folio writable and dirty.
 * Context: mmap_lock held for read. Return: 0, VM_FAULT_OOM, or
 * VM_FAULT_FALLBACK (no 2 MiB here: go on with 4 KiB pages).
 */
export function* do_huge_pmd_anonymous_page(vmf: vm_fault): Sleepable<number> {
  const vma = vmf.vma, mm = vma.vm_mm;
  const haddr = haddrOf(vmf.address);
  if (!thp_vma_suitable(vma, haddr)) return VM_FAULT_FALLBACK;
  if (anon_vma_prepare(vma) !== 0) return VM_FAULT_OOM;
  const ptl = pmd_lockptr(mm, vmf.pmd);
  if (!(vmf.flags & FAULT_FLAG_WRITE) && thp.use_zero_page) {
    const zero = mm_get_huge_zero_folio(mm);
    if (zero === null) { count_event(THP_FAULT_FALLBACK); return VM_FAULT_FALLBACK; }
    spin_lock(ptl);
    if (mm.pgd.load(vmf.pmd) === 0) mm.pgd.set(vmf.pmd, pmd_wrprotect(pfn_pmd(zero.pfn, vma.vm_page_prot)));
    spin_unlock(ptl);
    count_event('thp_fault_zero');
    return 0;
  }
  const f = vma_alloc_anon_folio_pmd(vma);
  if (f === null) return VM_FAULT_FALLBACK;
  spin_lock(ptl);
  if (mm.pgd.load(vmf.pmd) !== 0) {          /* raced with another fault */
    spin_unlock(ptl);
    put_page(f);
    return 0;
  }
  map_anon_folio_pmd(f, vmf.pmd, vma, haddr);
  spin_unlock(ptl);
  count_event(THP_FAULT_ALLOC);
  trace_event('do_huge_pmd_anonymous_page', { mm: mm.id, addr: haddr, pfn: f.pfn });
  return 0;
}

/* create_huge_pmd() - __handle_mm_fault() on an empty PMD: is a THP allowed here? */
export function* create_huge_pmd(vmf: vm_fault): Sleepable<number> {
  if (!thp_vma_allowable(vmf.vma, TVA_IN_PF | TVA_ENFORCE_SYSFS)) return VM_FAULT_FALLBACK;
  return yield* do_huge_pmd_anonymous_page(vmf);
}

/*
 * do_huge_zero_wp_pmd() - a write to the huge zero page: map a new zeroed
 * THP in its place (Linux 6.13), inside a CLEAR invalidation of the 2 MiB.
 * Return: 0, or VM_FAULT_FALLBACK when no THP can be had (split instead).
 */
function* do_huge_zero_wp_pmd(vmf: vm_fault, orig: pmd_t): Sleepable<number> {
  const vma = vmf.vma, mm = vma.vm_mm;
  const haddr = haddrOf(vmf.address);
  const f = vma_alloc_anon_folio_pmd(vma);
  if (f === null) return VM_FAULT_FALLBACK;
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, haddr, haddr + HPAGE_PMD_SIZE);
  yield* mmu_notifier_invalidate_range_start(range);
  const ptl = pmd_lockptr(mm, vmf.pmd);
  spin_lock(ptl);
  let done = false;
  if (mm.pgd.load(vmf.pmd) === orig) {
    mm.pgd.set(vmf.pmd, 0);
    flush_tlb_range(vma, haddr, haddr + HPAGE_PMD_SIZE);
    map_anon_folio_pmd(f, vmf.pmd, vma, haddr);
    done = true;
  }
  spin_unlock(ptl);
  yield* mmu_notifier_invalidate_range_end(range);
  if (!done) put_page(f);
  else count_event(THP_FAULT_ALLOC);
  return 0;
}

/*
 * huge_pmd_reuse() - the faulting mm owns the THP alone: make the PMD
 * writable (or, for an unshare fault, leave it as it is). Called with the
 * PMD lock held; drops it.
 */
function huge_pmd_reuse(vmf: vm_fault, orig: pmd_t): number {
  const mm = vmf.vma.vm_mm;
  if (!(vmf.flags & FAULT_FLAG_UNSHARE)) {
    let entry = pmd_mkdirty(pmd_mkyoung(orig));
    if (vmf.vma.vm_flags & VM_WRITE) entry = pmd_mkwrite(entry);
    mm.pgd.set(vmf.pmd, entry);
  }
  spin_unlock(pmd_lockptr(mm, vmf.pmd));
  count_event('thp_wp_reuse');
  return 0;
}

/**
 * do_huge_pmd_wp_page() - write (or unshare) fault on a read-only huge
 * PMD of an anonymous VMA.
 *  - the huge zero page: replaced by a new THP (do_huge_zero_wp_pmd);
 *  - an exclusive THP, or one whose only reference is this PMD: reused;
 *  - a THP shared with another mm (after fork) or holding extra
 *    references: the PMD is split (MMU_NOTIFY_CLEAR) and the fault goes
 *    on at PTE level, where do_wp_page copies one 4 KiB page. Linux
 *    stopped copying whole THPs on COW in 5.8.
 * Context: mmap_lock held for read; may sleep. Return: 0, or
 * VM_FAULT_FALLBACK after the split.
 */
export function* do_huge_pmd_wp_page(vmf: vm_fault, orig: pmd_t): Sleepable<number> {
  const vma = vmf.vma, mm = vma.vm_mm;
  if (is_huge_zero_pmd(orig)) {
    const ret = yield* do_huge_zero_wp_pmd(vmf, orig);
    if (!(ret & VM_FAULT_FALLBACK)) return ret;
  } else {
    const ptl = pmd_lockptr(mm, vmf.pmd);
    spin_lock(ptl);
    if (mm.pgd.load(vmf.pmd) !== orig) { spin_unlock(ptl); return 0; }
    const f = pfn_to_page(pmd_pfn(orig));
    if (PageAnonExclusive(f)) return huge_pmd_reuse(vmf, orig);
    if (!folio_trylock(f)) {
      get_page(f);
      spin_unlock(ptl);
      yield* folio_lock(f);
      spin_lock(ptl);
      if (mm.pgd.load(vmf.pmd) !== orig) { spin_unlock(ptl); folio_unlock(f); put_page(f); return 0; }
      put_page(f);
    }
    if (PageAnonExclusive(f)) { folio_unlock(f); return huge_pmd_reuse(vmf, orig); }
    /* like do_wp_page: reuse only when no one else can see the folio */
    if (f._refcount <= folio_large_mapcount(f) && f._refcount === 1) {
      SetPageAnonExclusive(f);
      folio_unlock(f);
      return huge_pmd_reuse(vmf, orig);
    }
    folio_unlock(f);
    spin_unlock(ptl);
  }
  yield* __split_huge_pmd(vma, vmf.pmd, vmf.address);
  count_event('thp_wp_fallback');
  return VM_FAULT_FALLBACK;
}

/*
 * huge_pmd_fault() - __handle_mm_fault() on a PMD leaf: an access to it
 * that the MMU refused. A device-private THP goes to its driver
 * (do_huge_pmd_device_private), a THP under migration is waited for (the
 * access is then retried); on a present huge PMD a write to a read-only
 * PMD goes to wp_huge_pmd() and anything else only sets the accessed (and
 * dirty) bits. VM_FAULT_FALLBACK tells handle_mm_fault to go on at PTE
 * level.
 */
export function* huge_pmd_fault(vmf: vm_fault, pmdp: number): Sleepable<number> {
  const vma = vmf.vma, mm = vma.vm_mm;
  const orig = mm.pgd.load(pmdp);
  vmf.orig_pmd = orig;
  if (is_swap_pmd(orig)) {
    if (is_pmd_device_private_entry(orig)) return yield* do_huge_pmd_device_private(vmf);
    if (is_pmd_migration_entry(orig)) { yield* pmd_migration_entry_wait(mm, pmdp); return 0; }
    return VM_FAULT_SIGBUS;                          /* no other PMD swap entries in this model */
  }
  if (!pmd_trans_huge(orig)) return VM_FAULT_SIGBUS;
  if ((vmf.flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) && !pmd_write(orig)) {
    if (vma_is_anonymous(vma)) return yield* do_huge_pmd_wp_page(vmf, orig);
    yield* __split_huge_pmd(vma, pmdp, vmf.address);
    return VM_FAULT_FALLBACK;
  }
  /* huge_pmd_set_accessed() */
  const ptl = pmd_lockptr(mm, pmdp);
  spin_lock(ptl);
  if (mm.pgd.load(pmdp) === orig) {
    let entry = pmd_mkyoung(orig);
    if (vmf.flags & FAULT_FLAG_WRITE) entry = pmd_mkdirty(entry);
    mm.pgd.set(pmdp, entry);
  }
  spin_unlock(ptl);
  return 0;
}
