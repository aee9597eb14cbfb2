/*
 * mm/huge_memory.ts - transparent huge pages mapped by PMD leaves.
 *
 * Models mm/huge_memory.c (Linux 6.x): the global mode of
 * /sys/kernel/mm/transparent_hugepage/enabled, the huge zero page,
 * do_huge_pmd_anonymous_page(), the write fault on a huge PMD
 * (do_huge_pmd_wp_page(): reuse an exclusive THP, replace the huge zero
 * page by a new THP, otherwise split the PMD and let the PTE path copy
 * one 4 KiB page, as current Linux does), split_huge_pmd(), zap_huge_pmd(),
 * copy_huge_pmd(), change_huge_pmd(), move_huge_pmd(), GUP of a huge PMD,
 * and the anonymous THP get_unmapped_area. Splitting (split_huge_pmd,
 * split_folio, the deferred split queue) is mm/huge_memory_split.ts;
 * MADV_COLLAPSE is mm/khugepaged.ts; hugetlb is mm/hugetlb.ts. Sizes, counts and the lock
 * order are in include/linux/huge_mm.ts.
 *
 * The hooks the core files left for THP are filled by hugepage_init() at
 * boot (fault_hooks.huge_pmd_anonymous / huge_pmd_fault, zap_hooks,
 * fork_hooks.copy_huge_pmd, mprotect_hooks.change_huge_pmd,
 * gup_hooks.follow_huge_pmd).
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
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, VM_NOHUGEPAGE, VM_HUGEPAGE, VM_HUGETLB, VM_PFNMAP, VM_MIXEDMAP, VM_IO, VM_WRITE, VM_SHARED,
  FAULT_FLAG_WRITE, FAULT_FLAG_UNSHARE, VM_FAULT_FALLBACK, VM_FAULT_OOM, VM_FAULT_SIGBUS,
  FOLL_WRITE, FOLL_PIN, vma_is_anonymous, add_mm_counter, mm_counter,
} from '../include/linux/mm.js';
import {
  pmd_write, pmd_dirty, pmd_pfn, pmd_mkwrite, pmd_wrprotect, pmd_mkdirty, pmd_mkyoung, pmd_mkold,
  pmd_trans_huge, pmd_modify, pmd_protnone, pfn_pmd, _PAGE_RW, type pmd_t,
} from '../include/linux/pgtable.js';
import {
  is_swap_pmd, is_pmd_device_private_entry, is_pmd_migration_entry, is_pmd_non_present_folio_entry, pmd_is_huge,
} from '../include/linux/swapops.js';
import {
  PageAnonExclusive, SetPageAnonExclusive, ClearPageAnonExclusive, SetPageDirty, folio_test_anon,
} from '../include/linux/page-flags.js';
import { GFP_TRANSHUGE_LIGHT, __GFP_ZERO, __GFP_NORETRY, __GFP_MOVABLE } from '../include/linux/gfp.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import {
  HPAGE_PMD_NR, HPAGE_PMD_ORDER, HPAGE_PMD_SIZE, haddr_of, TVA_IN_PF, TVA_ENFORCE_SYSFS, type thp_mode,
  THP_FAULT_ALLOC, THP_FAULT_FALLBACK, THP_FAULT_FALLBACK_CHARGE, THP_ZERO_PAGE_ALLOC,
} from '../include/linux/huge_mm.js';
import { EAGAIN, EINVAL, ENOMEM } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { alloc_pages, pfn_to_page, put_page, get_page } from './page_alloc.js';
import { pmd_off, pmd_alloc, pmd_lockptr, flush_tlb_range } from './pgtable.js';
import { fault_hooks, pmd_migration_entry_wait } from './memory.js';
import { zap_hooks, tlb_remove_page, type mmu_gather } from './zap.js';
import { fork_hooks } from './fork.js';
import { mprotect_hooks } from './mprotect.js';
import { gup_hooks, folio_maybe_dma_pinned } from './gup.js';
import { anon_vma_prepare } from './rmap.js';
import { folio_trylock, folio_lock, folio_unlock } from './filemap.js';
import { get_unmapped_area } from './vma.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { follow_hugetlb_page } from './hugetlb.js';
import {
  folio_large_mapcount, huge_memory_split_reset, __split_huge_pmd, __split_huge_pmd_locked, split_huge_pmd_in_zap,
} from './huge_memory_split.js';

/* the PMD split API, for the other paths of mm (mprotect, munmap, madvise, mremap, migration) */
export { __split_huge_pmd, __split_huge_pmd_locked, split_huge_pmd_address, vma_adjust_trans_huge } from './huge_memory_split.js';
import { khugepaged_init } from './khugepaged.js';
import {
  do_huge_pmd_device_private, zap_huge_non_present_pmd, copy_huge_non_present_pmd, change_non_present_huge_pmd,
} from './huge_memory_nonpresent.js';
import { BUG } from '../include/asm-generic/bug.js';

/* ------------------------------------------------------------ global state */

/*
 * The sysfs knobs and the huge zero folio. One per machine; reset by
 * hugepage_init() at every boot.
 */
interface thp_state {
  mode: thp_mode;                 /* transparent_hugepage/enabled */
  use_zero_page: boolean;         /* transparent_hugepage/use_zero_page */
  huge_zero_folio: page | null;   /* allocated on the first read fault that wants it */
  nr_anon_thps: number;           /* NR_ANON_THPS: pages of anon THPs mapped by a PMD (meminfo AnonHugePages) */
}
let thp: thp_state = { mode: 'madvise', use_zero_page: true, huge_zero_folio: null, nr_anon_thps: 0 };

/**
 * hugepage_init() - boot THP: the mode from the transparent_hugepage=
 * boot parameter, and the hooks of the core fault, zap, fork, mprotect
 * and GUP paths.
 * @mode: 'always', 'madvise' or 'never'. The simulated default is
 *   'madvise' (what Debian and Ubuntu ship; Linux's Kconfig default is
 *   'always'), so a mapping gets THPs when it asks with MADV_HUGEPAGE.
 */
export function hugepage_init(mode: thp_mode = 'madvise'): void {
  thp = { mode, use_zero_page: true, huge_zero_folio: null, nr_anon_thps: 0 };
  huge_memory_split_reset();
  fault_hooks.huge_pmd_anonymous = create_huge_pmd;
  fault_hooks.huge_pmd_fault = huge_pmd_fault;
  zap_hooks.zap_huge_pmd = zap_huge_pmd;
  zap_hooks.split_huge_pmd = split_huge_pmd_in_zap;
  fork_hooks.copy_huge_pmd = copy_huge_pmd;
  mprotect_hooks.change_huge_pmd = change_huge_pmd;
  gup_hooks.follow_huge_pmd = follow_huge_pmd;
  khugepaged_init();
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
  if (!(tva_flags & TVA_IN_PF) && !thp_vma_suitable(vma, haddr_of(vma.vm_end - HPAGE_PMD_SIZE))) return false;
  return true;
}

/* ------------------------------------------------------------ rmap of a PMD-mapped folio */

/** is_huge_zero_folio() - the folio is the huge zero page. */
export function is_huge_zero_folio(f: page): boolean {
  return thp.huge_zero_folio !== null && f.compound_head === thp.huge_zero_folio;
}

/** is_huge_zero_pmd() - the PMD leaf maps the huge zero page. */
export function is_huge_zero_pmd(pmd: pmd_t): boolean {
  return thp.huge_zero_folio !== null && pmd_pfn(pmd) === thp.huge_zero_folio.pfn;
}

/**
 * mm_get_huge_zero_folio() - the huge zero page, allocated on first use
 * (never movable, never freed until the next boot).
 * Return: the folio, or null when 2 MiB cannot be found.
 */
export function mm_get_huge_zero_folio(): page | null {
  if (thp.huge_zero_folio !== null) return thp.huge_zero_folio;
  const f = alloc_pages((GFP_TRANSHUGE_LIGHT | __GFP_ZERO | __GFP_NORETRY) & ~__GFP_MOVABLE, HPAGE_PMD_ORDER);
  if (f === null) return null;
  count_event(THP_ZERO_PAGE_ALLOC);
  thp.huge_zero_folio = f;
  return f;
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
  fault_hooks.lru_add?.(f, vma);
  mm.pgd.set(pmdp, entry);
  add_mm_counter(mm, MM_ANONPAGES, HPAGE_PMD_NR);
}

/* vma_alloc_anon_folio_pmd() - a zeroed, charged 2 MiB folio, or null (counted as a fallback) */
function vma_alloc_anon_folio_pmd(vma: vm_area_struct): page | null {
  const f = alloc_pages(GFP_TRANSHUGE_LIGHT | __GFP_NORETRY | __GFP_ZERO, HPAGE_PMD_ORDER);
  if (f === null) { count_event(THP_FAULT_FALLBACK); return null; }
  if (fault_hooks.memcg_charge !== null && fault_hooks.memcg_charge(f, vma.vm_mm) !== 0) {
    put_page(f);
    count_event(THP_FAULT_FALLBACK);
    count_event(THP_FAULT_FALLBACK_CHARGE);
    return null;
  }
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
  const haddr = haddr_of(vmf.address);
  if (!thp_vma_suitable(vma, haddr)) return VM_FAULT_FALLBACK;
  if (anon_vma_prepare(vma) !== 0) return VM_FAULT_OOM;
  const ptl = pmd_lockptr(mm, vmf.pmd);
  if (!(vmf.flags & FAULT_FLAG_WRITE) && thp.use_zero_page) {
    const zero = mm_get_huge_zero_folio();
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

/* create_huge_pmd() - fault_hooks.huge_pmd_anonymous: an empty PMD, is a THP allowed here? */
function* create_huge_pmd(vmf: vm_fault): Sleepable<number> {
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
  const haddr = haddr_of(vmf.address);
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
 * huge_pmd_fault() - fault_hooks.huge_pmd_fault: an access to a PMD leaf
 * that the MMU refused. A device-private THP goes to its driver
 * (do_huge_pmd_device_private), a THP under migration is waited for (the
 * access is then retried); on a present huge PMD a write to a read-only
 * PMD goes to wp_huge_pmd() and anything else only sets the accessed (and
 * dirty) bits. VM_FAULT_FALLBACK tells handle_mm_fault to go on at PTE
 * level.
 */
function* huge_pmd_fault(vmf: vm_fault, pmdp: number): Sleepable<number> {
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

/* ------------------------------------------------------------ zap, fork, mprotect */

/**
 * zap_huge_pmd() - zap_hooks.zap_huge_pmd: unmap a whole huge PMD. The
 * folio's reference goes to the mmu_gather and is dropped after the TLB
 * flush. The huge zero page holds no reference and no rss. A PMD swap
 * entry (migration, device-private) needs no flush:
 * zap_huge_non_present_pmd().
 * Context: mmap_lock held, inside the caller's invalidation.
 */
export function zap_huge_pmd(tlb: mmu_gather, vma: vm_area_struct, pmdp: number, addr: number): void {
  const mm = vma.vm_mm;
  const haddr = haddr_of(addr);
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
 * copy_huge_pmd() - fork_hooks.copy_huge_pmd: share an anonymous THP
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
  if (!is_huge_zero_pmd(pmd)) {
    const f = pfn_to_page(pmd_pfn(pmd));
    if (PageAnonExclusive(f) && folio_maybe_dma_pinned(f)) {
      /* folio_try_dup_anon_rmap_pmd() failed: split, and let the PTE copy handle the pinned pages */
      __split_huge_pmd_locked(src, src_pmdp, haddr_of(addr));
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
 * change_huge_pmd() - mprotect_hooks.change_huge_pmd: apply newprot to a
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
    __split_huge_pmd_locked(vma, pmdp, haddr_of(addr));
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
 * follow_huge_pmd() - gup_hooks.follow_huge_pmd: GUP found no PTE for
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
  return pfn_to_page(head.pfn + (addr - haddr_of(addr)) / PAGE_SIZE);
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
  return haddr_of(pad + HPAGE_PMD_SIZE);
}

