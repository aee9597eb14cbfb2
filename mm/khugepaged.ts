/*
 * mm/khugepaged.ts - MADV_COLLAPSE: build a THP from the small pages of a
 * 2 MiB range.
 *
 * Models the anonymous part of mm/khugepaged.c as madvise_collapse() runs
 * it (Linux 6.1+): for each PMD-aligned 2 MiB of the range,
 * hpage_collapse_scan_pmd() checks the 512 PTEs (present anonymous pages
 * with no extra references, at least one writable; none and zero-page
 * PTEs are fine; swap entries are swapped in first), then
 * collapse_huge_page() allocates a 2 MiB folio, invalidates the range for
 * secondary MMUs (MMU_NOTIFY_CLEAR), copies every page into it (zeroes
 * for the holes), frees the old pages and installs one PMD leaf.
 * madvise_collapse() reports the transient-failure errno MADV_COLLAPSE
 * defines (madvise_collapse_errno).
 *
 * MADV_COLLAPSE does not look at the transparent_hugepage/enabled mode
 * (only VM_NOHUGEPAGE and the VMA kind stop it), as in Linux.
 *
 * Simplified: there is no khugepaged thread (only the synchronous
 * collapse), no file/shmem collapse, and the whole madvise call holds
 * mmap_lock for write (Linux takes it for read and upgrades for each
 * collapse).
 */
import type { page, vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import { PAGE_SIZE, FAULT_FLAG_ALLOW_RETRY, VM_FAULT_ERROR, add_mm_counter } from '../include/linux/mm.js';
import { pte_none, pte_present, pte_write, pte_pfn, pmd_trans_huge, pmd_present } from '../include/linux/pgtable.js';
import { is_swap_pte, pte_to_swp_entry, non_swap_entry } from '../include/linux/swapops.js';
import { folio_test_anon, folio_test_swapcache, folio_mark_uptodate } from '../include/linux/page-flags.js';
import { is_zone_device_page } from '../include/linux/memremap.js';
import { GFP_TRANSHUGE_LIGHT, __GFP_NORETRY } from '../include/linux/gfp.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import {
  HPAGE_PMD_NR, HPAGE_PMD_ORDER, HPAGE_PMD_SIZE, haddrOf, THP_COLLAPSE_ALLOC, THP_COLLAPSE_ALLOC_FAILED,
} from '../include/linux/huge_mm.js';
import { EAGAIN, EBUSY, EINVAL, ENOMEM } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { charge } from '../lib/sim/clock.js';
import { SYSTEM_MEMCPY_BW, copy_cost_ns } from '../lib/sim/costs.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { alloc_pages, pfn_to_page, put_page, copy_highpage, clear_highpage, is_zero_pfn } from './page_alloc.js';
import { pmd_off, pmd_alloc, pmd_lockptr, pte_offset_map, ptep_get, ptep_get_and_clear, flush_tlb_range } from './pgtable.js';
import { vm_normal_page, handle_mm_fault } from './memory.js';
import { folio_remove_rmap_pte } from './rmap.js';
import { folio_trylock, folio_unlock } from './filemap.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { thp_vma_allowable, map_anon_folio_pmd } from './huge_memory.js';
import { folio_large_mapcount } from './huge_memory_split.js';
import { BUG } from '../include/asm-generic/bug.js';
import { mem_cgroup_charge } from './memcontrol.js';

/* enum scan_result (the ones this model can produce) */
export const SCAN_FAIL = 0;
export const SCAN_SUCCEED = 1;
export const SCAN_PMD_NULL = 2;
export const SCAN_PMD_MAPPED = 3;
export const SCAN_PTE_NON_PRESENT = 4;
export const SCAN_PAGE_RO = 5;
export const SCAN_PAGE_NULL = 6;
export const SCAN_PAGE_COUNT = 7;
export const SCAN_PAGE_LOCK = 8;
export const SCAN_PAGE_ANON = 9;
export const SCAN_ALLOC_HUGE_PAGE_FAIL = 10;
export const SCAN_CGROUP_CHARGE_FAIL = 11;


/* folio_expected_ref_count(): the references a folio has when only its mappings hold it */
function folio_expected_ref_count(f: page): number {
  return folio_large_mapcount(f) + (folio_test_swapcache(f) ? 1 << f.order : 0);
}

/*
 * hpage_collapse_scan_pmd() - may the 2 MiB at address be collapsed?
 * Return: a SCAN_* result, and how many PTEs are swap entries.
 */
function hpage_collapse_scan_pmd(mm: mm_struct, vma: vm_area_struct, address: number): { result: number; unmapped: number } {
  const pmdp = pmd_off(mm, address);
  if (pmdp < 0 || mm.pgd.load(pmdp) === 0) return { result: SCAN_PMD_NULL, unmapped: 0 };
  if (!pmd_present(mm.pgd.load(pmdp))) return { result: SCAN_PMD_NULL, unmapped: 0 };   /* THP migration, device THP */
  if (pmd_trans_huge(mm.pgd.load(pmdp))) return { result: SCAN_PMD_MAPPED, unmapped: 0 };
  let unmapped = 0, writable = false;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const addr = address + i * PAGE_SIZE;
    const ptep = pte_offset_map(mm, addr);
    const pte = ptep < 0 ? 0 : ptep_get(mm, ptep);
    if (is_swap_pte(pte)) {
      if (non_swap_entry(pte_to_swp_entry(pte))) return { result: SCAN_PTE_NON_PRESENT, unmapped };
      unmapped++;
      continue;
    }
    if (pte_none(pte) || is_zero_pfn(pte_pfn(pte))) continue;
    const p = vm_normal_page(vma, addr, pte);
    if (p === null || is_zone_device_page(p)) return { result: SCAN_PAGE_NULL, unmapped };
    const f = p.compound_head;
    if (!folio_test_anon(f)) return { result: SCAN_PAGE_ANON, unmapped };
    /* a GUP pin or any other reference: the copy would lose what the holder writes */
    if (f._refcount !== folio_expected_ref_count(f)) return { result: SCAN_PAGE_COUNT, unmapped };
    if (pte_write(pte)) writable = true;
  }
  return { result: writable ? SCAN_SUCCEED : SCAN_PAGE_RO, unmapped };
}

/* __collapse_huge_page_swapin() - bring the swapped-out pages of the range back first */
function* __collapse_huge_page_swapin(vma: vm_area_struct, address: number): Sleepable<number> {
  const mm = vma.vm_mm;
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const addr = address + i * PAGE_SIZE;
    const ptep = pte_offset_map(mm, addr);
    if (ptep < 0 || !is_swap_pte(ptep_get(mm, ptep))) continue;
    const ret = yield* handle_mm_fault(vma, addr, FAULT_FLAG_ALLOW_RETRY);
    if (ret & VM_FAULT_ERROR) return SCAN_FAIL;
  }
  return SCAN_SUCCEED;
}

/* the locked folios of the range, or null (and nothing locked) when one is busy */
function __collapse_huge_page_isolate(vma: vm_area_struct, address: number): page[] | null {
  const mm = vma.vm_mm, locked: page[] = [];
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const addr = address + i * PAGE_SIZE;
    const ptep = pte_offset_map(mm, addr);
    const pte = ptep < 0 ? 0 : ptep_get(mm, ptep);
    if (!pte_present(pte) || is_zero_pfn(pte_pfn(pte))) continue;
    const f = vm_normal_page(vma, addr, pte)!.compound_head;
    if (locked.some((l) => l.pfn === f.pfn)) continue;
    const busy = !folio_trylock(f);
    if (busy || f._refcount !== folio_expected_ref_count(f)) {
      if (!busy) folio_unlock(f);
      for (const l of locked) folio_unlock(l);
      return null;
    }
    locked.push(f);
  }
  return locked;
}

/*
 * __collapse_huge_page_copy() - copy the 512 PTEs' pages into the new
 * folio (zeroes for none and zero-page PTEs) and clear the PTEs. Caller
 * holds the PMD lock. Return: the old pages, whose PTE references the
 * caller drops once their folios are unlocked.
 */
function __collapse_huge_page_copy(vma: vm_area_struct, address: number, nf: page): page[] {
  const mm = vma.vm_mm, old: page[] = [];
  for (let i = 0; i < HPAGE_PMD_NR; i++) {
    const addr = address + i * PAGE_SIZE;
    const dst = pfn_to_page(nf.pfn + i);
    const ptep = pte_offset_map(mm, addr);
    const pte = ptep < 0 ? 0 : ptep_get(mm, ptep);
    if (!pte_present(pte) || is_zero_pfn(pte_pfn(pte))) { clear_highpage(dst); if (ptep >= 0) ptep_get_and_clear(mm, addr, ptep); continue; }
    const src = vm_normal_page(vma, addr, pte)!;
    copy_highpage(dst, src);
    ptep_get_and_clear(mm, addr, ptep);
    folio_remove_rmap_pte(src, vma);
    old.push(src);
  }
  charge(copy_cost_ns(old.length * PAGE_SIZE, SYSTEM_MEMCPY_BW));
  add_mm_counter(mm, MM_ANONPAGES, -old.length);   /* map_anon_folio_pmd() counts all 512 again */
  return old;
}

/*
 * collapse_huge_page() - replace the 2 MiB at address, which scanned
 * SCAN_SUCCEED, by a new THP holding the same data.
 * Context: mmap_lock held for write; may sleep.
 */
function* collapse_huge_page(vma: vm_area_struct, address: number, unmapped: number): Sleepable<number> {
  const mm = vma.vm_mm;
  const gfp = GFP_TRANSHUGE_LIGHT | __GFP_NORETRY;
  const nf = alloc_pages(gfp, HPAGE_PMD_ORDER);
  if (nf === null) { count_event(THP_COLLAPSE_ALLOC_FAILED); return SCAN_ALLOC_HUGE_PAGE_FAIL; }
  nf._entire_mapcount = -1;
  if (mem_cgroup_charge(nf, mm, gfp) !== 0) { put_page(nf); return SCAN_CGROUP_CHARGE_FAIL; }   /* alloc_charge_folio: the same gfp */
  count_event(THP_COLLAPSE_ALLOC);
  if (unmapped > 0 && (yield* __collapse_huge_page_swapin(vma, address)) !== SCAN_SUCCEED) { put_page(nf); return SCAN_FAIL; }
  const rescan = hpage_collapse_scan_pmd(mm, vma, address);
  if (rescan.result !== SCAN_SUCCEED) { put_page(nf); return rescan.result; }
  const locked = __collapse_huge_page_isolate(vma, address);
  if (locked === null) { put_page(nf); return SCAN_PAGE_LOCK; }

  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, address, address + HPAGE_PMD_SIZE);
  yield* mmu_notifier_invalidate_range_start(range);
  const ptl = pmd_lockptr(mm, pmd_off(mm, address));
  spin_lock(ptl);
  const old = __collapse_huge_page_copy(vma, address, nf);
  folio_mark_uptodate(nf);
  flush_tlb_range(vma, address, address + HPAGE_PMD_SIZE);
  /* the empty PTE page goes (pmdp_collapse_flush), the PMD becomes the leaf */
  mm.pgd.prune(address, address + HPAGE_PMD_SIZE);
  const pmdp = pmd_alloc(mm, address);
  if (pmdp < 0 || mm.pgd.load(pmdp) !== 0) BUG(`collapse: PMD of ${address.toString(16)} not free`);
  map_anon_folio_pmd(nf, pmdp, vma, address);
  spin_unlock(ptl);
  yield* mmu_notifier_invalidate_range_end(range);
  for (const f of locked) folio_unlock(f);
  for (const p of old) put_page(p);               /* release_pte_folio(): the old pages go */
  count_event('thp_collapse');
  trace_event('collapse_huge_page', { mm: mm.id, addr: address, pfn: nf.pfn });
  return SCAN_SUCCEED;
}

/* results after which madvise_collapse() goes on with the next 2 MiB */
const SCAN_CONTINUE = new Set([SCAN_PMD_NULL, SCAN_PTE_NON_PRESENT, SCAN_PAGE_RO, SCAN_PAGE_NULL, SCAN_PAGE_COUNT, SCAN_PAGE_LOCK]);

/* madvise_collapse_errno() - MADV_COLLAPSE's errno for the last failure */
function madvise_collapse_errno(r: number): number {
  switch (r) {
    case SCAN_ALLOC_HUGE_PAGE_FAIL: return -ENOMEM;
    case SCAN_CGROUP_CHARGE_FAIL: return -EBUSY;
    case SCAN_PAGE_COUNT: case SCAN_PAGE_LOCK: return -EAGAIN;     /* try again later */
    default: return -EINVAL;                                         /* will not succeed here */
  }
}

/**
 * madvise_collapse() - MADV_COLLAPSE over [start, end) of vma: collapse
 * every PMD-aligned 2 MiB inside.
 * Context: mmap_lock held for write; may sleep.
 * Return: 0 when every 2 MiB is now a THP; -EINVAL when the VMA may not
 * have THPs or a range cannot be collapsed (not populated, read-only,
 * special entries); -EAGAIN for pinned or locked pages; -ENOMEM when no
 * 2 MiB folio can be allocated; -EBUSY when the memcg charge fails.
 */
export function* madvise_collapse(vma: vm_area_struct, start: number, end: number): Sleepable<number> {
  if (!thp_vma_allowable(vma, 0)) return -EINVAL;
  const hstart = haddrOf(start + HPAGE_PMD_SIZE - 1), hend = haddrOf(end);
  let thps = 0, last_fail = SCAN_FAIL;
  for (let addr = hstart; addr < hend; addr += HPAGE_PMD_SIZE) {
    let { result, unmapped } = hpage_collapse_scan_pmd(vma.vm_mm, vma, addr);
    if (result === SCAN_SUCCEED) result = yield* collapse_huge_page(vma, addr, unmapped);
    if (result === SCAN_SUCCEED || result === SCAN_PMD_MAPPED) { thps++; continue; }
    last_fail = result;
    if (!SCAN_CONTINUE.has(result)) break;        /* an error of the whole call, not of this 2 MiB */
  }
  return thps === (hend - hstart) / HPAGE_PMD_SIZE ? 0 : madvise_collapse_errno(last_fail);
}
