/*
 * mm/hugetlb.ts - hugetlb: pools of 2 MiB and 1 GiB pages reserved at
 * boot, mapped by PMD and PUD leaves.
 *
 * Models mm/hugetlb.c: hugetlb_init() fills the pools (hugepagesz=2M
 * hugepages=N, hugepagesz=1G hugepages=N), hugetlb_reserve_pages()
 * promises pages to a mapping (-ENOMEM when the pool cannot back it; the
 * hugetlbfs file of a MAP_HUGETLB mapping calls it from its ->mmap, see
 * mm/hugetlbfs.ts), hugetlb_fault() -> hugetlb_no_page() maps a page from the pool (shared:
 * through the file's page cache; private: as an anonymous page) and
 * hugetlb_wp() copies on write. The core paths call in here where Linux
 * tests is_vm_hugetlb_page(): the fault (hugetlb_fault), zap
 * (unmap_hugepage_range), fork (copy_hugetlb_page_range), mprotect
 * (hugetlb_change_protection), GUP (follow_hugetlb_page) and mremap.
 * Pools and reservations are described in include/linux/hugetlb.ts.
 *
 * Simplified: no surplus pages (nr_overcommit_hugepages is 0), no
 * subpools or hugetlb cgroups, no PMD sharing, no hugetlbfs mounts (only
 * the anonymous files of MAP_HUGETLB), and a 1 GiB page is carved from
 * 256 contiguous, aligned 4 MiB buddy blocks at boot (Linux takes
 * gigantic pages from memblock).
 */
import type { page, vm_area_struct, mm_struct, vm_operations_struct } from '../include/linux/mm_types.js';
import type { file } from '../include/linux/sched.js';
import {
  PAGE_SIZE, PUD_SIZE, VM_HUGETLB, VM_MAYSHARE, VM_WRITE, FAULT_FLAG_WRITE,
  FAULT_FLAG_UNSHARE, VM_FAULT_OOM, VM_FAULT_SIGBUS, FOLL_WRITE, FOLL_PIN, is_cow_mapping,
} from '../include/linux/mm.js';
import {
  pmd_write, pmd_pfn, pmd_mkwrite, pmd_wrprotect, pmd_mkdirty, pmd_mkyoung, pmd_mkold, pmd_trans_huge,
  pmd_modify, pmd_dirty, pfn_pmd, PMD_LEVEL, PUD_LEVEL, type pmd_t,
} from '../include/linux/pgtable.js';
import {
  PageAnonExclusive, SetPageAnonExclusive, ClearPageAnonExclusive, SetPageDirty, folio_test_anon,
  __folio_set_hugetlb, PG_head, PG_hugetlb,
} from '../include/linux/page-flags.js';
import {
  hstate, huge_page_size, pages_per_huge_page, HUGETLB_DEFAULT_ORDER, HUGETLB_GIGANTIC_ORDER, type resv_map,
} from '../include/linux/hugetlb.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_COMP, __GFP_NORETRY, __GFP_NOWARN } from '../include/linux/gfp.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import { EINVAL, ENOMEM, ENOSPC } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { charge } from '../lib/sim/clock.js';
import { PAGE_ZERO_NS, SYSTEM_MEMCPY_BW, copy_cost_ns } from '../lib/sim/costs.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { zero_pages, copy_pages } from './sparse.js';
import {
  alloc_pages, pfn_to_page, get_page, put_page, prep_compound_page, MAX_ORDER,
} from './page_alloc.js';
import { flush_tlb_range } from './pgtable.js';
import { tlb_remove_page, type mmu_gather } from './zap.js';
import { folio_maybe_dma_pinned } from './gup.js';
import { anon_vma_prepare } from './rmap.js';
import { mmap_assert_locked } from './mmap_lock.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { hugetlb_info } from './hugetlbfs.js';
import { BUG } from '../include/asm-generic/bug.js';

/* ------------------------------------------------------------ state */

interface hugetlb_state {
  hstates: hstate[];                              /* [2 MiB, 1 GiB] */
  usage: WeakMap<mm_struct, number>;              /* hugetlb_usage, in base pages */
}
let hs: hugetlb_state = fresh();
function fresh(): hugetlb_state {
  return { hstates: [new hstate(HUGETLB_DEFAULT_ORDER, 'hugepages-2048kB'), new hstate(HUGETLB_GIGANTIC_ORDER, 'hugepages-1048576kB')],
    usage: new WeakMap() };
}

/** size_to_hstate() - the hstate of a huge page size in bytes, or null. */
export function size_to_hstate(size: number): hstate | null {
  return hs.hstates.find((h) => huge_page_size(h) === size) ?? null;
}

/** default_hstate() - the 2 MiB pool. */
export function default_hstate(): hstate { return hs.hstates[0]; }

/** hstate_vma() - the hstate of a hugetlb VMA. */
export function hstate_vma(vma: vm_area_struct): hstate {
  return hugetlb_info((vma.vm_file as file).f_inode).hstate;
}

/** hugetlb_usage() - base pages of hugetlb memory mapped by mm (HugetlbPages). */
export function hugetlb_usage(mm: mm_struct): number { return hs.usage.get(mm) ?? 0; }
function hugetlb_count_add(mm: mm_struct, n: number): void { hs.usage.set(mm, hugetlb_usage(mm) + n); }

/** hugetlb_report_meminfo() - the HugePages_* lines of /proc/meminfo, per size. */
export function hugetlb_report_meminfo(): { size: number; total: number; free: number; rsvd: number }[] {
  return hs.hstates.map((h) => ({ size: huge_page_size(h), total: h.nr_huge_pages, free: h.free_huge_pages, rsvd: h.resv_huge_pages }));
}

/* ------------------------------------------------------------ the pools */

function enqueue_hugetlb_folio(h: hstate, f: page): void {
  h.hugepage_freelist.push(f);
  h.free_huge_pages++;
}

/* prep_new_hugetlb_folio() - a fresh folio joins the pool, free */
function prep_new_hugetlb_folio(h: hstate, f: page): void {
  __folio_set_hugetlb(f);
  f._entire_mapcount = -1;
  f._refcount = 0;
  h.nr_huge_pages++;
  enqueue_hugetlb_folio(h, f);
}

/*
 * alloc_gigantic_folio_boot() - 2^order contiguous, aligned frames from
 * the buddy allocator at boot: take MAX_ORDER blocks until one aligned run
 * is complete, give back the others.
 */
function alloc_gigantic_folio_boot(order: number): page | null {
  const span = 2 ** order, blk = 1 << MAX_ORDER, nblk = span / blk;
  const got = new Map<number, page>();
  let head = -1;
  for (;;) {
    const p = alloc_pages(__GFP_NORETRY | __GFP_NOWARN, MAX_ORDER);
    if (p === null) break;
    got.set(p.pfn, p);
    const base = p.pfn - (p.pfn % span);
    let k = 0;
    while (k < nblk && got.has(base + k * blk)) k++;
    if (k === nblk) { head = base; break; }
  }
  for (const [pfn, p] of got) if (head < 0 || pfn < head || pfn >= head + span) put_page(p);
  if (head < 0) return null;
  for (let k = 1; k < nblk; k++) pfn_to_page(head + k * blk).flags &= ~(1 << PG_head);
  const f = pfn_to_page(head);
  prep_compound_page(f, order);
  return f;
}

/* alloc_pool_huge_folio() - one more page for the pool, or false */
function alloc_pool_huge_folio(h: hstate): boolean {
  const f = h.order > MAX_ORDER ? alloc_gigantic_folio_boot(h.order)
    : alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NORETRY | __GFP_NOWARN, h.order);
  if (f === null) return false;
  prep_new_hugetlb_folio(h, f);
  return true;
}

/**
 * set_max_huge_pages() - /sys/kernel/mm/hugepages/hugepages-<size>kB/nr_hugepages:
 * grow the pool by allocating, or shrink it by giving free pages back.
 * Return: the new pool size (may be less than asked if memory is short).
 */
export function set_max_huge_pages(h: hstate, count: number): number {
  while (h.nr_huge_pages < count && alloc_pool_huge_folio(h)) { /* grow */ }
  while (h.nr_huge_pages > count && h.free_huge_pages - h.resv_huge_pages > 0) {
    const f = h.hugepage_freelist.pop()!;
    h.free_huge_pages--;
    h.nr_huge_pages--;
    f.flags &= ~(1 << PG_hugetlb);
    if (h.order > MAX_ORDER) BUG('gigantic pages are not given back at run time here');
    f._refcount = 1;
    put_page(f);
  }
  return h.nr_huge_pages;
}

/*
 * free_huge_folio() - the last reference to a hugetlb folio went: it
 * returns to its pool's free list (installed as a page allocator free hook).
 */
export function free_huge_folio(f: page): void {
  const h = hs.hstates.find((x) => x.order === f.order);
  if (h === undefined) BUG(`hugetlb folio of order ${f.order}`);
  f.mapping = null;
  f.index = 0;
  f._mapcount = -1;
  f._entire_mapcount = -1;
  f._pincount = 0;
  f.flags &= (1 << PG_head) | (1 << PG_hugetlb);
  enqueue_hugetlb_folio(h, f);
  count_event('hugetlb_free');
}

/**
 * hugetlb_init() - boot: fill the pools and install the hugetlb hooks of
 * the fault, zap, fork and mprotect paths.
 * @nr_2m: hugepagesz=2M hugepages=<nr_2m>
 * @nr_1g: hugepagesz=1G hugepages=<nr_1g> (needs RAM with a 1 GiB-aligned
 *   gigantic page inside: at least 2 GiB)
 */
export function hugetlb_init(nr_2m = 0, nr_1g = 0): void {
  hs = fresh();
  for (let i = 0; i < nr_1g && alloc_pool_huge_folio(hs.hstates[1]); i++) { /* boot allocation */ }
  for (let i = 0; i < nr_2m && alloc_pool_huge_folio(hs.hstates[0]); i++) { /* boot allocation */ }
}

/* ------------------------------------------------------------ reservations */

function resv_chg(m: resv_map, from: number, to: number, cached: Map<number, page> | null): number {
  let chg = 0;
  for (let i = from; i < to; i++) if (!m.reserved.has(i) && !(cached?.has(i) ?? false)) chg++;
  return chg;
}

/**
 * hugetlb_reserve_pages() - promise the pages of indexes [from, to) to a
 * mapping. Return: 0, or -ENOMEM when the pool's unpromised free pages
 * cannot cover it.
 */
export function hugetlb_reserve_pages(h: hstate, m: resv_map, from: number, to: number, cached: Map<number, page> | null): number {
  const chg = resv_chg(m, from, to, cached);
  if (h.free_huge_pages - h.resv_huge_pages < chg) return -ENOMEM;
  for (let i = from; i < to; i++) if (!(cached?.has(i) ?? false)) m.reserved.add(i);
  h.resv_huge_pages += chg;
  return 0;
}

/* give back the reservations of [from, to) still in the map */
export function hugetlb_unreserve_pages(h: hstate, m: resv_map, from: number, to: number): void {
  for (let i = from; i < to; i++) if (m.reserved.delete(i)) h.resv_huge_pages--;
}

/** vma_hugecache_offset() - the huge-page index of address in the VMA's file. */
export function vma_hugecache_offset(h: hstate, vma: vm_area_struct, address: number): number {
  const hp = pages_per_huge_page(h);
  return Math.floor((address - vma.vm_start) / huge_page_size(h)) + Math.floor(vma.vm_pgoff / hp);
}

function vma_resv_map(vma: vm_area_struct): resv_map | null {
  if (vma.vm_flags & VM_MAYSHARE) return hugetlb_info((vma.vm_file as file).f_inode).resv;
  return vma.vm_private_data as resv_map | null;
}

/*
 * alloc_hugetlb_folio() - a page from the pool for a fault at addr: the
 * mapping's reservation for that index if it has one, else an unpromised
 * free page. Return: the folio (refcount 1), or -ENOSPC.
 */
function alloc_hugetlb_folio(vma: vm_area_struct, addr: number, avoid_reserve: boolean): page | number {
  const h = hstate_vma(vma);
  const m = vma_resv_map(vma);
  const idx = vma_hugecache_offset(h, vma, addr);
  if (!avoid_reserve && m !== null && m.reserved.delete(idx)) h.resv_huge_pages--;
  else if (h.free_huge_pages - h.resv_huge_pages <= 0) { count_event('hugetlb_alloc_fail'); return -ENOSPC; }
  const f = h.hugepage_freelist.pop();
  if (f === undefined) BUG('hugetlb reservation without a free page');
  h.free_huge_pages--;
  f._refcount = 1;
  return f;
}

/* folio_zero_user() / copy_user_large_folio(): the bytes, with their cost */
function folio_zero_user(f: page, nr: number): void {
  zero_pages(f, nr);
  charge(PAGE_ZERO_NS * nr);
}
function copy_user_large_folio(dst: page, src: page, nr: number): void {
  copy_pages(dst, src, nr);
  charge(copy_cost_ns(nr * PAGE_SIZE, SYSTEM_MEMCPY_BW));
}

/* ------------------------------------------------------------ the VMA operations */

function hugetlb_vm_op_open(vma: vm_area_struct): void {
  const ino = (vma.vm_file as file).f_inode;
  ino.i_mapping!.i_mmap.add(vma);
  const m = vma.vm_private_data as resv_map | null;
  if (m === null || (vma.vm_flags & VM_MAYSHARE)) return;
  if (m.owner !== vma.vm_mm) vma.vm_private_data = null;   /* fork: hugetlb_dup_vma_private(), the child reserves nothing */
  else m.refs++;                                           /* split: both pieces share the owner's map */
}

function hugetlb_vm_op_close(vma: vm_area_struct): void {
  const ino = (vma.vm_file as file).f_inode;
  ino.i_mapping!.i_mmap.delete(vma);
  const m = vma.vm_private_data as resv_map | null;
  if (m === null || (vma.vm_flags & VM_MAYSHARE)) return;
  const h = hstate_vma(vma);
  hugetlb_unreserve_pages(h, m, vma_hugecache_offset(h, vma, vma.vm_start), vma_hugecache_offset(h, vma, vma.vm_end));
  m.refs--;
}

/* ->fault is never called: handle_mm_fault() sends hugetlb VMAs to hugetlb_fault() */
export const hugetlb_vm_ops: vm_operations_struct = Object.freeze({
  fault: function* () { return VM_FAULT_SIGBUS; },
  open: hugetlb_vm_op_open,
  close: hugetlb_vm_op_close,
  name: () => 'anon_hugepage (deleted)',
});

/* ------------------------------------------------------------ faults */

function hugetlb_level(h: hstate): number { return h.order === HUGETLB_GIGANTIC_ORDER ? PUD_LEVEL : PMD_LEVEL; }

/* make_huge_pte() - a leaf for the folio with the VMA's protection */
function make_huge_pte(vma: vm_area_struct, f: page, writable: boolean): pmd_t {
  let e = pmd_mkyoung(pfn_pmd(f.pfn, vma.vm_page_prot));
  if (writable) e = pmd_mkdirty(pmd_mkwrite(e));
  else e = pmd_wrprotect(e);
  return e;
}

/* hugetlb_add_new_anon_rmap() - a private page mapped for the first time: anon, exclusive */
function hugetlb_add_new_anon_rmap(f: page, vma: vm_area_struct, haddr: number): void {
  f.mapping = vma.anon_vma;
  f.index = (haddr - vma.vm_start) / PAGE_SIZE + vma.vm_pgoff;
  f._entire_mapcount = 0;
  SetPageAnonExclusive(f);
}

/*
 * hugetlb_wp() - write (or unshare) fault on a read-only huge leaf of a
 * private mapping: reuse a page only this mm maps, else copy it to a new
 * page from the pool, inside MMU_NOTIFY_CLEAR of the huge page.
 * Return: 0, or VM_FAULT_SIGBUS when the pool has no page for the copy.
 */
function* hugetlb_wp(vma: vm_area_struct, haddr: number, ptep: number, flags: number): Sleepable<number> {
  const mm = vma.vm_mm, h = hstate_vma(vma), nr = pages_per_huge_page(h), size = huge_page_size(h);
  const orig = mm.pgd.load(ptep);
  const old = pfn_to_page(pmd_pfn(orig));
  const unshare = (flags & FAULT_FLAG_UNSHARE) !== 0;
  if (folio_test_anon(old) && (PageAnonExclusive(old) || (old._refcount === 1 && old._entire_mapcount === 0))) {
    SetPageAnonExclusive(old);
    if (!unshare) mm.pgd.set(ptep, pmd_mkdirty(pmd_mkwrite(pmd_mkyoung(orig))));
    return 0;
  }
  if (anon_vma_prepare(vma) !== 0) return VM_FAULT_OOM;
  const nf = alloc_hugetlb_folio(vma, haddr, false);
  if (typeof nf === 'number') return VM_FAULT_SIGBUS;
  copy_user_large_folio(nf, old, nr);
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, haddr, haddr + size);
  yield* mmu_notifier_invalidate_range_start(range);
  const ptl = mm.page_table_lock;
  spin_lock(ptl);
  let installed = false;
  if (mm.pgd.load(ptep) === orig) {
    mm.pgd.set(ptep, 0);
    flush_tlb_range(vma, haddr, haddr + size);
    old._entire_mapcount--;
    hugetlb_add_new_anon_rmap(nf, vma, haddr);
    mm.pgd.set(ptep, make_huge_pte(vma, nf, !unshare));
    installed = true;
  }
  spin_unlock(ptl);
  yield* mmu_notifier_invalidate_range_end(range);
  put_page(installed ? old : nf);
  count_event('hugetlb_cow');
  return 0;
}

/*
 * hugetlb_no_page() - first touch of a huge page: from the file's page
 * cache (shared) or a new anonymous page (private), zeroed when new.
 */
function* hugetlb_no_page(vma: vm_area_struct, haddr: number, ptep: number, flags: number): Sleepable<number> {
  const mm = vma.vm_mm, h = hstate_vma(vma), nr = pages_per_huge_page(h);
  const ino = (vma.vm_file as file).f_inode, mapping = ino.i_mapping!;
  const idx = vma_hugecache_offset(h, vma, haddr);
  if (idx * huge_page_size(h) >= ino.i_size) return VM_FAULT_SIGBUS;
  const shared = (vma.vm_flags & VM_MAYSHARE) !== 0;
  let f = shared ? mapping.i_pages.get(idx) ?? null : null;
  if (f !== null) {
    get_page(f);
  } else {
    if (!shared && anon_vma_prepare(vma) !== 0) return VM_FAULT_OOM;
    const r = alloc_hugetlb_folio(vma, haddr, false);
    if (typeof r === 'number') return VM_FAULT_SIGBUS;    /* vmf_error(-ENOSPC) */
    f = r;
    folio_zero_user(f, nr);
    if (shared) {
      f.mapping = mapping;
      f.index = idx;
      mapping.i_pages.set(idx, f);                       /* the page cache keeps the allocation's reference */
      get_page(f);
    }
  }
  if (shared) f._entire_mapcount++;                      /* hugetlb_add_file_rmap() */
  else hugetlb_add_new_anon_rmap(f, vma, haddr);
  mm.pgd.set(ptep, make_huge_pte(vma, f, shared && (vma.vm_flags & VM_WRITE) !== 0));
  hugetlb_count_add(mm, nr);
  count_event('hugetlb_fault');
  trace_event('hugetlb_no_page', { mm: mm.id, addr: haddr, pfn: f.pfn, size: huge_page_size(h) });
  if ((flags & FAULT_FLAG_WRITE) && !shared) return yield* hugetlb_wp(vma, haddr, ptep, flags);
  return 0;
}

/**
 * hugetlb_fault() - handle_mm_fault() in a VM_HUGETLB VMA: a fault anywhere in a
 * hugetlb VMA (handle_mm_fault sends every one here).
 * Context: mmap_lock held for read; may sleep.
 * Return: 0, VM_FAULT_OOM (no page-table page), VM_FAULT_SIGBUS (beyond
 * the file, or no page in the pool for a NORESERVE mapping or a COW).
 */
export function* hugetlb_fault(vma: vm_area_struct, address: number, flags: number): Sleepable<number> {
  const mm = vma.vm_mm, h = hstate_vma(vma), size = huge_page_size(h);
  mmap_assert_locked(mm);
  const haddr = address - (address % size);
  let ptep = mm.pgd.populate(haddr, hugetlb_level(h));
  if (ptep === -ENOMEM) return VM_FAULT_OOM;
  if (ptep < 0) return VM_FAULT_SIGBUS;
  let entry = mm.pgd.load(ptep);
  if (entry !== 0 && !pmd_trans_huge(entry)) {
    /* an empty lower table left by an earlier mapping: prune it (free_pgtables) and look again */
    mm.pgd.prune(haddr, haddr + size);
    ptep = mm.pgd.populate(haddr, hugetlb_level(h));
    if (ptep < 0) return VM_FAULT_OOM;
    entry = mm.pgd.load(ptep);
    if (entry !== 0 && !pmd_trans_huge(entry)) return VM_FAULT_SIGBUS;
  }
  if (entry === 0) return yield* hugetlb_no_page(vma, haddr, ptep, flags);
  if ((flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE)) && !pmd_write(entry)) {
    if (vma.vm_flags & VM_MAYSHARE) { mm.pgd.set(ptep, pmd_mkdirty(pmd_mkwrite(entry))); return 0; }
    return yield* hugetlb_wp(vma, haddr, ptep, flags);
  }
  let e = pmd_mkyoung(entry);
  if (flags & FAULT_FLAG_WRITE) e = pmd_mkdirty(e);
  if (e !== entry) mm.pgd.set(ptep, e);
  return 0;
}

/* ------------------------------------------------------------ zap, fork, mprotect, GUP, mremap */

/**
 * huge_pte_offset() - the leaf slot of the huge page of size @sz at @addr
 * (aligned to @sz), or -1 when a directory above that level is missing.
 */
export function huge_pte_offset(mm: mm_struct, addr: number, sz: number): number {
  const ptep = mm.pgd.lookup(addr, sz === PUD_SIZE ? PUD_LEVEL : PMD_LEVEL);
  return ptep < 0 ? -1 : ptep;
}

/* hugetlb_ptep() - the leaf slot of haddr in a hugetlb VMA, or -1 */
function hugetlb_ptep(mm: mm_struct, h: hstate, haddr: number): number {
  return huge_pte_offset(mm, haddr, huge_page_size(h));
}

/**
 * unmap_hugepage_range() - unmap_page_range() of a VM_HUGETLB VMA: clear the huge
 * leaves of [start, end); their references go to the mmu_gather, and a
 * page whose last reference drops returns to the pool.
 * Context: mmap_lock held, inside the caller's invalidation.
 */
export function unmap_hugepage_range(tlb: mmu_gather, vma: vm_area_struct, start: number, end: number): void {
  const mm = vma.vm_mm, h = hstate_vma(vma), size = huge_page_size(h);
  for (let a = start - (start % size); a < end; a += size) {
    const ptep = hugetlb_ptep(mm, h, a);
    if (ptep < 0) continue;
    const e = mm.pgd.load(ptep);
    if (!pmd_trans_huge(e)) continue;
    mm.pgd.set(ptep, 0);
    tlb.start = Math.min(tlb.start, a);
    tlb.end = Math.max(tlb.end, a + size);
    const f = pfn_to_page(pmd_pfn(e));
    f._entire_mapcount--;
    if (!folio_test_anon(f) && pmd_dirty(e)) SetPageDirty(f);
    hugetlb_count_add(mm, -pages_per_huge_page(h));
    tlb_remove_page(tlb, f);
  }
}

/**
 * copy_hugetlb_page_range() - copy_page_range() of a VM_HUGETLB VMA: share
 * every huge page of a private mapping with the child, write-protected in
 * both (MMU_NOTIFY_CLEAR over the parent's VMA first); a DMA-pinned
 * exclusive page is copied for the child at once.
 * Context: both mmap_locks held for write; may sleep. Return: 0 or -ENOMEM.
 */
export function* copy_hugetlb_page_range(dst: vm_area_struct, src: vm_area_struct): Sleepable<number> {
  const h = hstate_vma(src), size = huge_page_size(h), nr = pages_per_huge_page(h);
  const cow = is_cow_mapping(src.vm_flags);
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, src.vm_mm, src.vm_start, src.vm_end);
  if (cow) yield* mmu_notifier_invalidate_range_start(range);
  let ret = 0;
  for (let a = src.vm_start; a < src.vm_end && ret === 0; a += size) {
    const sp = hugetlb_ptep(src.vm_mm, h, a);
    if (sp < 0) continue;
    let e = src.vm_mm.pgd.load(sp);
    if (!pmd_trans_huge(e)) continue;
    const dp = dst.vm_mm.pgd.populate(a, hugetlb_level(h));
    if (dp < 0) { ret = -ENOMEM; break; }
    const f = pfn_to_page(pmd_pfn(e));
    if (folio_test_anon(f) && PageAnonExclusive(f) && folio_maybe_dma_pinned(f)) {
      const nf = alloc_hugetlb_folio(dst, a, true);
      if (typeof nf === 'number') { ret = -ENOMEM; break; }
      copy_user_large_folio(nf, f, nr);
      hugetlb_add_new_anon_rmap(nf, dst, a);
      dst.vm_mm.pgd.set(dp, make_huge_pte(dst, nf, (dst.vm_flags & VM_WRITE) !== 0));
    } else {
      get_page(f);
      f._entire_mapcount++;
      if (folio_test_anon(f)) ClearPageAnonExclusive(f);
      if (cow && pmd_write(e)) { e = pmd_wrprotect(e); src.vm_mm.pgd.set(sp, e); }
      dst.vm_mm.pgd.set(dp, pmd_mkold(e));
    }
    hugetlb_count_add(dst.vm_mm, nr);
  }
  if (cow) {
    flush_tlb_range(src, src.vm_start, src.vm_end);
    yield* mmu_notifier_invalidate_range_end(range);
  }
  return ret;
}

/**
 * hugetlb_change_protection() - change_protection() of a VM_HUGETLB VMA:
 * apply newprot to the huge leaves of [start, end).
 * Context: mmap_lock held for write, inside the caller's invalidation.
 * Return: base pages changed.
 */
export function hugetlb_change_protection(vma: vm_area_struct, start: number, end: number, newprot: number): number {
  const mm = vma.vm_mm, h = hstate_vma(vma), size = huge_page_size(h);
  let pages = 0;
  for (let a = start; a < end; a += size) {
    const ptep = hugetlb_ptep(mm, h, a);
    if (ptep < 0) continue;
    const e = mm.pgd.load(ptep);
    if (!pmd_trans_huge(e)) continue;
    const n = pmd_modify(e, newprot);
    if (n !== e) { mm.pgd.set(ptep, n); pages += pages_per_huge_page(h); }
  }
  return pages;
}

/**
 * follow_hugetlb_page() - GUP of a hugetlb address: the page of the huge
 * leaf mapping addr, null when a fault must come first (none, write to a
 * read-only leaf, pin of a shared anonymous page), or 'fault'.
 */
export function follow_hugetlb_page(vma: vm_area_struct, addr: number, flags: number): page | null | 'fault' {
  const mm = vma.vm_mm, h = hstate_vma(vma), size = huge_page_size(h);
  const haddr = addr - (addr % size);
  const ptep = hugetlb_ptep(mm, h, haddr);
  if (ptep < 0) return 'fault';
  const e = mm.pgd.load(ptep);
  if (!pmd_trans_huge(e)) return 'fault';
  if ((flags & FOLL_WRITE) && !pmd_write(e)) return null;
  const f = pfn_to_page(pmd_pfn(e));
  if ((flags & FOLL_PIN) && !pmd_write(e) && folio_test_anon(f) && !PageAnonExclusive(f)) return null;
  return pfn_to_page(f.pfn + (addr - haddr) / PAGE_SIZE);
}

/**
 * move_hugetlb_page_tables() - mremap of a hugetlb VMA: move the huge
 * leaves of [old_addr, old_addr + len) to new_addr (all aligned to the
 * huge page size; the caller checked). Context: mmap_lock held for write,
 * inside the caller's MMU_NOTIFY_UNMAP. Return: bytes moved, or -ENOMEM.
 */
export function move_hugetlb_page_tables(vma: vm_area_struct, old_addr: number, new_addr: number, len: number): number {
  const mm = vma.vm_mm, h = hstate_vma(vma), size = huge_page_size(h);
  for (let off = 0; off < len; off += size) {
    const op = hugetlb_ptep(mm, h, old_addr + off);
    if (op < 0 || mm.pgd.load(op) === 0) continue;
    const np = mm.pgd.populate(new_addr + off, hugetlb_level(h));
    if (np < 0) return -ENOMEM;
    const e = mm.pgd.load(op);
    mm.pgd.set(op, 0);
    mm.pgd.set(np, e);
  }
  flush_tlb_range(vma, old_addr, old_addr + len);
  return len;
}

/**
 * hugetlb_vm_op_split() - vm_ops->may_split: a hugetlb VMA may only be
 * cut at a huge page boundary. Return: 0 or -EINVAL.
 */
export function hugetlb_vm_op_split(vma: vm_area_struct, addr: number): number {
  if (!(vma.vm_flags & VM_HUGETLB) || addr <= vma.vm_start || addr >= vma.vm_end) return 0;
  return addr % huge_page_size(hstate_vma(vma)) === 0 ? 0 : -EINVAL;
}

/**
 * clear_vma_resv_huge_pages() - mremap moved a private hugetlb VMA's
 * pages to a new VMA, which now owns the reservations: the old VMA must
 * not give them back when it is unmapped.
 */
export function clear_vma_resv_huge_pages(vma: vm_area_struct): void {
  const m = vma.vm_private_data as resv_map | null;
  if (m === null || (vma.vm_flags & VM_MAYSHARE)) return;
  m.refs--;
  vma.vm_private_data = null;
}

export { VM_HUGETLB };
