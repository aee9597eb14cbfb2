/*
 * mm/memory.ts - the page fault handlers.
 *
 * Models the fault half of mm/memory.c: handle_mm_fault() ->
 * __handle_mm_fault() -> handle_pte_fault(), which dispatches on the
 * entry found in the page table:
 *
 *   none            anonymous VMA: do_anonymous_page()  (zero page on read,
 *                                                       new zeroed page on write)
 *                   file/driver VMA: do_fault() -> vm_ops->fault
 *   present, write  not writable: do_wp_page()  (reuse or copy on write)
 *   not present     do_swap_page(): swap, migration, device-private,
 *                   device-exclusive, hwpoison, HMM v8 entries
 *
 * Zapping (munmap) lives in mm/zap.ts, fork's copy_page_range in
 * mm/fork.ts, the write-protect fault (do_wp_page(), re-exported here) in
 * mm/memory_wp.ts, and the faults on non-present entries (do_swap_page()
 * and the device-exclusive helpers, re-exported here) in
 * mm/memory_nonpresent.ts: all parts of mm/memory.c in Linux.
 *
 * Swap-in (mm/swap_state.ts), THP (mm/huge_memory.ts) and hugetlb
 * (mm/hugetlb.ts) are called directly, as in Linux; the HMM v8 SWP_HMM
 * handler is one of the places the v8 series hooks into core mm
 * (hmm_v8_hooks, mm/hmm_v8/hooks.ts).
 */
import type { page, vm_area_struct, vm_fault, mm_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, VM_WRITE, VM_SHARED, VM_PFNMAP, VM_MIXEDMAP, VM_HUGETLB, FAULT_FLAG_WRITE, FAULT_FLAG_UNSHARE,
  FAULT_FLAG_REMOTE, FAULT_FLAG_ORIG_PTE_VALID, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_FALLBACK,
  VM_FAULT_NOPAGE, VM_FAULT_RETRY, VM_FAULT_ERROR, vma_is_anonymous, linear_page_index, inc_mm_counter,
  mm_counter,
} from '../include/linux/mm.js';
import {
  pte_none, pte_present, pte_write, pte_protnone, pte_special, pte_pfn, pfn_pte, pte_mkwrite, pte_mkdirty,
  pte_mkyoung, pte_mkspecial, pte_modify, pmd_is_table, _PAGE_SOFT_DIRTY, PMD_LEVEL, type pte_t,
} from '../include/linux/pgtable.js';
import { _PAGE_SWP_SOFT_DIRTY } from '../include/linux/swapops.js';
import { SetPageDirty, folio_mark_uptodate } from '../include/linux/page-flags.js';
import { pfn_to_page_new } from '../include/asm-generic/memory_model.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_ZERO } from '../include/linux/gfp.js';
import { ENOMEM } from '../include/uapi/asm-generic/errno.js';
import { cond_resched, preempt_point, preemption_points_free, type Sleepable } from '../lib/sim/sched.js';
import { race_mutations } from '../lib/sim/mutations.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { charge } from '../lib/sim/clock.js';
import { MINOR_FAULT_NS } from '../lib/sim/costs.js';
import { trace_event, trace_event_begin, count_event, tracing_is_on } from '../lib/sim/trace.js';
import {
  alloc_page, pfn_valid, put_page, get_page, copy_highpage, is_zero_pfn, ZERO_PAGE,
  alloc_page_sleepable, zone_watermark_ok, wmark_pages,
} from './page_alloc.js';
import { WMARK_LOW } from '../include/linux/mmzone.js';
import { pmd_alloc, pte_offset_map, pte_alloc_map, pte_lockptr, ptep_get, set_pte_at } from './pgtable.js';
import { anon_vma_prepare, folio_add_new_anon_rmap, folio_add_file_rmap_pte } from './rmap.js';
import { mm_has_notifiers } from './mmu_notifier.js';
import { mmap_assert_locked } from './mmap_lock.js';
import { BUG } from '../include/asm-generic/bug.js';
import { GFP_KERNEL } from '../include/linux/gfp.js';
import { mem_cgroup_charge, mem_cgroup_charge_sleepable, mem_cgroup_margin, get_mem_cgroup_from_mm } from './memcontrol.js';
import { folio_add_lru_vma } from './swap.js';
import { create_huge_pmd, huge_pmd_fault, thp_vma_allowable } from './huge_memory.js';
import { TVA_IN_PF, TVA_ENFORCE_SYSFS } from '../include/linux/huge_mm.js';
import { hugetlb_fault } from './hugetlb.js';
import { vma_is_peer_shared, do_peer_shared_anonymous_page } from './gmem.js';
import { do_swap_page } from './memory_nonpresent.js';
import { do_wp_page, do_wp_page_nosleep } from './memory_wp.js';

export { do_wp_page } from './memory_wp.js';
export {
  can_change_pte_writable, restore_exclusive_pte, try_restore_exclusive_pte, do_swap_page, migration_entry_wait,
  pmd_migration_entry_wait,
} from './memory_nonpresent.js';

/**
 * vm_normal_page() - the struct page behind a present PTE, or null for
 * entries that map no normal page: the zero page, raw pfns of VM_PFNMAP
 * and special entries of VM_MIXEDMAP.
 *
 * The handle is a new one from the frame's section (pfn_to_page_new()),
 * not the handle cache's: the page-table walkers that call this meet each
 * frame once per pass (fork's copy_present_ptes(), the zap, the fault on
 * a present PTE), so a cache slot would only be overwritten, and storing
 * a young handle into the long-lived cache costs a write barrier with a
 * remembered-set entry per page. In-process A/B of `bench fault` rounds,
 * 131,072 pages: fork 0.88, exit 0.82-0.88, munmap 0.81-0.88, COW
 * fault 0.89 (session 8, /tmp/teardown3/ab.mjs).
 * Context: PTE lock held (or the entry otherwise stable). Return: the
 * page, or null.
 */
export function vm_normal_page(vma: vm_area_struct, _addr: number, pte: pte_t): page | null {
  const pfn = pte_pfn(pte);
  if (pte_special(pte)) return null;
  if (is_zero_pfn(pfn)) return null;
  if ((vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) !== 0 && !pfn_valid(pfn)) return null;
  return pfn_to_page_new(pfn);
}

/** maybe_mkwrite() - make the entry writable if the VMA allows writes. */
export function maybe_mkwrite(pte: pte_t, vma: vm_area_struct): pte_t {
  return (vma.vm_flags & VM_WRITE) !== 0 ? pte_mkwrite(pte) : pte;
}

/** mk_pte() - a present entry mapping page with the VMA's protection. */
export function mk_pte(p: page, prot: number): pte_t {
  return pfn_pte(p.pfn, prot);
}

/* The gfp of a new anonymous page: zeroed unless a copy is about to overwrite it (Linux's wp_page_copy). */
const anon_gfp = (zero: boolean) => (zero ? GFP_HIGHUSER_MOVABLE | __GFP_ZERO : GFP_HIGHUSER_MOVABLE);

/**
 * new_anon_page() - an uptodate page charged to @vma's mm, or null; for
 * callers that cannot sleep (and for handle_mm_fault_nosleep(), which
 * checked that neither the allocation nor the charge needs reclaim).
 * Every anonymous folio is uptodate (do_anonymous_page, wp_page_copy and
 * do_cow_fault mark it once filled; nobody can see it before it is
 * mapped, so here): a swap-cache hit on one that is not is SIGBUS.
 * @zero: zero it (false for a page a copy overwrites).
 */
export function new_anon_page(vma: vm_area_struct, zero = true): page | null {
  const p = alloc_page(anon_gfp(zero));
  if (p === null) return null;
  if (mem_cgroup_charge(p, vma.vm_mm, GFP_KERNEL) !== 0) {
    put_page(p);
    return null;
  }
  folio_mark_uptodate(p);
  return p;
}

/**
 * alloc_anon_folio() - an uptodate page charged to @vma's mm, for the
 * fault paths: the allocation and the charge may sleep (blockable direct
 * and memcg reclaim, waiting for OOM victims: alloc_pages_sleepable()).
 * @zero: zero it (false for a page a copy overwrites).
 * Context: may sleep; mmap_lock held for read. Return: the page, or null.
 */
export function* alloc_anon_folio(vma: vm_area_struct, zero = true): Sleepable<page | null> {
  const p = yield* alloc_page_sleepable(anon_gfp(zero));
  if (p === null) return null;
  if ((yield* mem_cgroup_charge_sleepable(p, vma.vm_mm, GFP_KERNEL)) !== 0) {
    put_page(p);
    return null;
  }
  folio_mark_uptodate(p);
  return p;
}

function lru_add(p: page, vma: vm_area_struct): void {
  folio_add_lru_vma(p, vma);
}

const ANON_NEED_PAGE = -3;     /* anon_fault_prepare(): a write, the page is to be allocated */

/*
 * do_anonymous_page() first half: map the zero page for a read (done), or
 * get the PTE and the anon_vma ready for the page a write maps.
 * Return: 0, VM_FAULT_OOM, or ANON_NEED_PAGE.
 */
function anon_fault_prepare(vmf: vm_fault): number {
  const vma = vmf.vma, mm = vma.vm_mm;
  if (vma.vm_flags & VM_SHARED) BUG('shared anonymous VMA without shmem vm_ops');
  const ptep = vmf.pte >= 0 ? vmf.pte : pte_alloc_map(mm, vmf.address);
  if (ptep < 0) return VM_FAULT_OOM;
  vmf.pte = ptep;
  if (!(vmf.flags & FAULT_FLAG_WRITE)) {
    const entry = pte_mkspecial(pfn_pte(ZERO_PAGE(vmf.address).pfn, vma.vm_page_prot));
    const ptl = pte_lockptr(mm, ptep);
    spin_lock(ptl);
    if (pte_none(ptep_get(mm, ptep))) set_pte_at(mm, vmf.address, ptep, entry);
    spin_unlock(ptl);
    count_event('fault_anon_zero');
    return 0;
  }
  return anon_vma_prepare(vma) !== 0 ? VM_FAULT_OOM : ANON_NEED_PAGE;
}

/* do_anonymous_page() second half: map @p writable and dirty unless someone else faulted it in. Return: 0. */
function anon_fault_map(vmf: vm_fault, p: page): number {
  const vma = vmf.vma, mm = vma.vm_mm, ptep = vmf.pte;
  const entry = maybe_mkwrite(pte_mkdirty(mk_pte(p, vma.vm_page_prot)), vma);
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  if (!pte_none(ptep_get(mm, ptep))) {     /* someone else faulted it in */
    spin_unlock(ptl);
    put_page(p);
    return 0;
  }
  inc_mm_counter(mm, MM_ANONPAGES);
  folio_add_new_anon_rmap(p, vma, vmf.address);
  lru_add(p, vma);
  set_pte_at(mm, vmf.address, ptep, entry);
  spin_unlock(ptl);
  count_event('fault_anon');
  return 0;
}

/**
 * do_anonymous_page() - first touch of an anonymous page.
 *
 * A read maps the shared zero page read-only (a later write copies it); a
 * write allocates a zeroed page and maps it writable and dirty.
 * Context: mmap_lock held for read. Return: 0 or VM_FAULT_OOM.
 */
function* do_anonymous_page(vmf: vm_fault): Sleepable<number> {
  const vma = vmf.vma;
  if (vma.vm_flags & VM_SHARED) BUG('shared anonymous VMA without shmem vm_ops');
  if (vma_is_peer_shared(vma)) return yield* do_peer_shared_anonymous_page(vmf);   /* GMEM place 2 */
  const ret = anon_fault_prepare(vmf);
  if (ret !== ANON_NEED_PAGE) return ret;
  const p = yield* alloc_anon_folio(vma);
  if (p === null) return VM_FAULT_OOM;
  yield* cond_resched();        /* the allocation may sleep in Linux: another thread can fault here */
  return anon_fault_map(vmf, p);
}

/* do_anonymous_page() where nothing can sleep (handle_mm_fault_nosleep()). */
function do_anonymous_page_nosleep(vmf: vm_fault): number {
  const ret = anon_fault_prepare(vmf);
  if (ret !== ANON_NEED_PAGE) return ret;
  const p = new_anon_page(vmf.vma);
  return p === null ? VM_FAULT_OOM : anon_fault_map(vmf, p);
}

/*
 * finish_fault() - map the page a ->fault handler returned (vmf.page, with
 * a reference), or a private copy of it for a write to a private mapping.
 */
function* finish_fault(vmf: vm_fault): Sleepable<number> {
  const vma = vmf.vma, mm = vma.vm_mm;
  const p = vmf.cow_page ?? vmf.page!;
  const ptep = vmf.pte >= 0 ? vmf.pte : pte_alloc_map(mm, vmf.address);
  if (ptep < 0) return VM_FAULT_OOM;
  vmf.pte = ptep;
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  if (!pte_none(ptep_get(mm, ptep))) { spin_unlock(ptl); return VM_FAULT_NOPAGE; }
  let entry = mk_pte(p, vma.vm_page_prot);
  const write = (vmf.flags & FAULT_FLAG_WRITE) !== 0;
  if (vmf.cow_page !== null) {
    entry = maybe_mkwrite(pte_mkdirty(entry), vma);
    inc_mm_counter(mm, MM_ANONPAGES);
    folio_add_new_anon_rmap(p, vma, vmf.address);
    lru_add(p, vma);
  } else {
    if (write) entry = maybe_mkwrite(pte_mkdirty(entry), vma);
    if (write) SetPageDirty(p);
    inc_mm_counter(mm, mm_counter(p));
    folio_add_file_rmap_pte(p, vma);
  }
  set_pte_at(mm, vmf.address, ptep, entry);
  spin_unlock(ptl);
  return 0;
}

/**
 * do_fault() - fault in a VMA with vm_ops: ask ->fault for the page, then
 * map it (do_read_fault / do_shared_fault), or copy it first for a write
 * to a private mapping (do_cow_fault). A handler that installed the PTE
 * itself (vmf_insert_pfn) returns VM_FAULT_NOPAGE.
 */
function* do_fault(vmf: vm_fault): Sleepable<number> {
  const vma = vmf.vma;
  if (vma.vm_ops === null || vma.vm_ops.fault === undefined) return VM_FAULT_SIGBUS;
  const cow = (vmf.flags & FAULT_FLAG_WRITE) !== 0 && (vma.vm_flags & VM_SHARED) === 0;
  if (cow) {
    if (anon_vma_prepare(vma) !== 0) return VM_FAULT_OOM;
    vmf.cow_page = yield* alloc_anon_folio(vma);
    if (vmf.cow_page === null) return VM_FAULT_OOM;
  }
  let ret = yield* vma.vm_ops.fault(vmf);
  if (ret & (VM_FAULT_ERROR | VM_FAULT_NOPAGE | VM_FAULT_RETRY)) {
    if (vmf.cow_page !== null) put_page(vmf.cow_page);
    return ret;
  }
  if (cow) copy_highpage(vmf.cow_page!, vmf.page!);
  ret |= yield* finish_fault(vmf);
  /* the file page's reference from ->fault: kept by the PTE unless we copied it or lost the race */
  if (cow || (ret & VM_FAULT_NOPAGE)) put_page(vmf.page!);
  if (cow && (ret & VM_FAULT_NOPAGE)) put_page(vmf.cow_page!);
  count_event(cow ? 'fault_file_cow' : 'fault_file');
  return ret & ~VM_FAULT_NOPAGE;
}

/* handle_pte_fault() found a present entry whose write needs do_wp_page() (the PTE lock is held). */
const NEED_WP_PAGE = -2;

/*
 * handle_pte_fault() for a present entry: under the PTE lock, recheck it,
 * make a NUMA hinting entry present again, or mark it young (and dirty
 * for a write). Return: 0, or NEED_WP_PAGE with the PTE lock still held
 * for a write to a write-protected entry.
 */
function handle_pte_present(vmf: vm_fault): number {
  const vma = vmf.vma, mm = vma.vm_mm;
  const ptl = pte_lockptr(mm, vmf.pte);
  spin_lock(ptl);
  let entry = ptep_get(mm, vmf.pte);
  if (entry !== vmf.orig_pte && !race_mutations.skip_pte_fault_recheck) { spin_unlock(ptl); return 0; }   /* raced: retry from user space */
  if (pte_protnone(entry)) {
    /* NUMA hinting entry in an accessible VMA: make it present again */
    entry = pte_modify(entry, vma.vm_page_prot);
    set_pte_at(mm, vmf.address, vmf.pte, entry);
    spin_unlock(ptl);
    return 0;
  }
  if (vmf.flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) {
    if (!pte_write(entry)) return NEED_WP_PAGE;
    entry = pte_mkdirty(entry);
  }
  set_pte_at(mm, vmf.address, vmf.pte, pte_mkyoung(entry));
  spin_unlock(ptl);
  count_event('fault_spurious');
  return 0;
}

/* Read the PTE of the faulting address without its lock. */
function handle_pte_fault_read(vmf: vm_fault): void {
  const mm = vmf.vma.vm_mm;
  vmf.pte = pte_offset_map(mm, vmf.address);
  vmf.orig_pte = vmf.pte >= 0 ? ptep_get(mm, vmf.pte) : 0;
  preempt_point('handle_pte_fault: lockless read of the PTE');  /* another CPU may change it until the PTE lock */
}

/*
 * handle_pte_fault() - dispatch on the PTE for the faulting address.
 */
function* handle_pte_fault(vmf: vm_fault): Sleepable<number> {
  const vma = vmf.vma;
  handle_pte_fault_read(vmf);
  if (pte_none(vmf.orig_pte)) {
    return vma_is_anonymous(vma) ? yield* do_anonymous_page(vmf) : yield* do_fault(vmf);
  }
  vmf.flags |= FAULT_FLAG_ORIG_PTE_VALID;
  if (!pte_present(vmf.orig_pte)) return yield* do_swap_page(vmf);
  const ret = handle_pte_present(vmf);
  return ret === NEED_WP_PAGE ? yield* do_wp_page(vmf) : ret;
}

/* A vm_fault for @address in @vma (the PMD entry pointer @pmd). */
function vmf_init(vmf: vm_fault, vma: vm_area_struct, address: number, flags: number, pmd: number): vm_fault {
  const addr = address - (address % PAGE_SIZE);
  vmf.vma = vma;
  vmf.address = addr;
  vmf.real_address = address;
  vmf.flags = flags;
  vmf.pgoff = linear_page_index(vma, addr);
  vmf.pmd = pmd;
  vmf.pte = -1;
  vmf.orig_pte = 0;
  vmf.page = null;
  vmf.cow_page = null;
  return vmf;
}

/*
 * __handle_mm_fault() - walk (and build) the upper levels, then handle the
 * PMD level (THP) or go down to the PTE.
 */
function* __handle_mm_fault(vma: vm_area_struct, address: number, flags: number): Sleepable<number> {
  const mm = vma.vm_mm;
  const pmd = pmd_alloc(mm, address - (address % PAGE_SIZE));
  if (pmd < 0) return VM_FAULT_OOM;
  const vmf = vmf_init({} as vm_fault, vma, address, flags, pmd);
  const pmdval = mm.pgd.load(pmd);
  if (pmdval === 0) {
    if (thp_vma_allowable(vma, TVA_IN_PF | TVA_ENFORCE_SYSFS)) {
      const ret = yield* create_huge_pmd(vmf);
      if (!(ret & VM_FAULT_FALLBACK)) return ret;
    }
  } else if (!pmd_is_table(pmdval)) {
    const ret = yield* huge_pmd_fault(vmf, pmd);
    if (!(ret & VM_FAULT_FALLBACK)) return ret;
  }
  return yield* handle_pte_fault(vmf);
}

/* handle_mm_fault()'s accounting at entry: the fault is counted and charged once, whichever path takes it. */
function handle_mm_fault_enter(mm: mm_struct, address: number, flags: number): void {
  mmap_assert_locked(mm);
  if (tracing_is_on()) trace_event_begin('handle_mm_fault', { mm: mm.id, addr: address, flags });
  charge(MINOR_FAULT_NS);
  count_event('pgfault');
  if (flags & FAULT_FLAG_REMOTE) count_event('pgfault_remote');
}

function handle_mm_fault_exit(mm: mm_struct, address: number, flags: number, ret: number): number {
  if (tracing_is_on()) trace_event('handle_mm_fault', { mm: mm.id, addr: address, write: (flags & FAULT_FLAG_WRITE) !== 0, ret });
  return ret;
}

/**
 * handle_mm_fault() - resolve a fault at address in vma.
 * @flags: FAULT_FLAG_WRITE for writes, FAULT_FLAG_REMOTE for GUP of
 * another mm, FAULT_FLAG_USER from user mode...
 *
 * The caller checked that the VMA allows the access (access_error()).
 * Context: mmap_lock held for read; may sleep. Return: 0 or VM_FAULT_*
 * bits (VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, VM_FAULT_HWPOISON,
 * VM_FAULT_RETRY); the arch code turns them into signals.
 */
export function* handle_mm_fault(vma: vm_area_struct, address: number, flags: number): Sleepable<number> {
  const mm = vma.vm_mm;
  handle_mm_fault_enter(mm, address, flags);
  let ret: number;
  if (vma.vm_flags & VM_HUGETLB) ret = yield* hugetlb_fault(vma, address, flags);
  else ret = yield* __handle_mm_fault(vma, address, flags);
  return handle_mm_fault_exit(mm, address, flags, ret);
}

/**
 * FAULT_WOULD_SLEEP - handle_mm_fault_nosleep() left the fault to the
 * sleeping path, having changed nothing. Not a VM_FAULT_* bit: a model
 * value, compared with ===.
 */
export const FAULT_WOULD_SLEEP = -1;

/* The fast path's vm_fault: it never sleeps, so one (like a per-CPU one) is enough and no fault allocates one. */
const nosleep_vmf: vm_fault = {
  vma: null as unknown as vm_area_struct, address: 0, real_address: 0, flags: 0, pgoff: 0,
  pmd: -1, pte: -1, orig_pte: 0, page: null, cow_page: null,
};

/**
 * handle_mm_fault_nosleep() - handle_mm_fault() as plain calls, for the
 * common faults that cannot sleep: a first touch of a private anonymous
 * page and a write to a present entry (spurious, NUMA hinting, reuse or
 * COW of a page of an mm without MMU notifier subscribers), when no
 * preemption point can switch threads (preemption_points_free()). The
 * steps and their order are those of handle_mm_fault(); what differs is
 * only that no generator frame is built for a sleep that cannot happen.
 * Anything else (hugetlb, THP, swap and migration entries, device
 * entries, ->fault, peer-shared VMAs, MMU notifiers, free memory below
 * the low watermark or a memcg at its limit, where the fault's allocation
 * or charge would reclaim and may sleep) returns FAULT_WOULD_SLEEP before any change, and
 * the caller takes handle_mm_fault().
 * Context: mmap_lock held for read; never sleeps.
 * Return: as handle_mm_fault(), or FAULT_WOULD_SLEEP.
 */
export function handle_mm_fault_nosleep(vma: vm_area_struct, address: number, flags: number): number {
  /* a page allocation and its charge must not need reclaim (alloc_anon_folio() would sleep there) */
  const mm = vma.vm_mm, pgt = mm.pgd;
  if ((vma.vm_flags & VM_HUGETLB) || !preemption_points_free() || !zone_watermark_ok(0, wmark_pages(WMARK_LOW)) ||
      mem_cgroup_margin(get_mem_cgroup_from_mm(mm)) < 1) {
    return FAULT_WOULD_SLEEP;
  }
  const addr = address - (address % PAGE_SIZE);
  const pmdp = pgt.lookup(addr, PMD_LEVEL);
  const pmdval = pmdp >= 0 ? pgt.load(pmdp) : 0;
  if (pmdval === 0 ? thp_vma_allowable(vma, TVA_IN_PF | TVA_ENFORCE_SYSFS) : !pmd_is_table(pmdval)) return FAULT_WOULD_SLEEP;
  const ptep = pte_offset_map(mm, addr);
  const orig = ptep >= 0 ? ptep_get(mm, ptep) : 0;
  if (pte_none(orig)) {
    if (!vma_is_anonymous(vma) || vma_is_peer_shared(vma)) return FAULT_WOULD_SLEEP;
  } else if (!pte_present(orig) || ((flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) && mm_has_notifiers(mm))) {
    return FAULT_WOULD_SLEEP;
  }
  handle_mm_fault_enter(mm, address, flags);
  const pmd = pmdp >= 0 ? pmdp : pmd_alloc(mm, addr);
  if (pmd < 0) return handle_mm_fault_exit(mm, address, flags, VM_FAULT_OOM);
  const vmf = vmf_init(nosleep_vmf, vma, address, flags, pmd);
  handle_pte_fault_read(vmf);
  let ret: number;
  if (pte_none(vmf.orig_pte)) {
    ret = do_anonymous_page_nosleep(vmf);
  } else {
    vmf.flags |= FAULT_FLAG_ORIG_PTE_VALID;
    ret = handle_pte_present(vmf);
    if (ret === NEED_WP_PAGE) ret = do_wp_page_nosleep(vmf);
  }
  vmf.vma = null as unknown as vm_area_struct;     /* keep no mm alive through the static vm_fault */
  vmf.page = null;
  return handle_mm_fault_exit(mm, address, flags, ret);
}

/**
 * vmf_insert_pfn() - a driver's ->fault maps a raw pfn (VM_PFNMAP): the
 * entry is special, so no struct page is referenced or rmapped.
 * Return: VM_FAULT_NOPAGE, or VM_FAULT_OOM.
 */
export function vmf_insert_pfn(vma: vm_area_struct, addr: number, pfn: number): number {
  const mm = vma.vm_mm;
  const ptep = pte_alloc_map(mm, addr);
  if (ptep < 0) return ptep === -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  if (pte_none(ptep_get(mm, ptep))) set_pte_at(mm, addr, ptep, pte_mkspecial(pfn_pte(pfn, vma.vm_page_prot)));
  spin_unlock(ptl);
  return VM_FAULT_NOPAGE;
}

/**
 * vm_insert_page() - a driver maps one of its pages into a VM_MIXEDMAP
 * VMA: the page is referenced and counted like a file page.
 * Return: 0, -ENOMEM, or -EBUSY when the address is already mapped.
 */
export function vm_insert_page(vma: vm_area_struct, addr: number, p: page): number {
  const mm = vma.vm_mm;
  const ptep = pte_alloc_map(mm, addr);
  if (ptep < 0) return -ENOMEM;
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  if (!pte_none(ptep_get(mm, ptep))) { spin_unlock(ptl); return -16; /* -EBUSY */ }
  get_page(p);
  inc_mm_counter(mm, mm_counter(p));
  folio_add_file_rmap_pte(p, vma);
  set_pte_at(mm, addr, ptep, mk_pte(p, vma.vm_page_prot));
  spin_unlock(ptl);
  return 0;
}
