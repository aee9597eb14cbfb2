/*
 * mm/fork.ts - duplicating an address space at fork().
 *
 * Models dup_mm()/dup_mmap() of kernel/fork.c and copy_page_range() of
 * mm/memory.c (the tree has no kernel/; fork's mm half lives here):
 *
 *  - every VMA is copied unless VM_DONTCOPY; VM_WIPEONFORK VMAs are copied
 *    empty; the child's VMAs join the parent's anon_vma;
 *  - page tables are copied only where a refault could not rebuild them
 *    (VMAs with an anon_vma, or VM_PFNMAP/VM_MIXEDMAP): shared file and
 *    shmem mappings are left for the child to fault;
 *  - in private writable (COW) mappings both parent and child entries
 *    lose write permission, inside one MMU_NOTIFY_PROTECTION_PAGE
 *    invalidation of the parent's range; anonymous pages become shared
 *    (PageAnonExclusive cleared) unless a DMA pin forces an immediate copy;
 *  - swap entries and the special entries are copied by the rules of
 *    copy_nonpresent_pte(): writable migration and device-private entries
 *    become read-only in both (so do readable-exclusive migration
 *    entries: the page is shared from now on), device-exclusive entries
 *    are restored in the parent first under a folio trylock; when the
 *    folio is locked by someone else the fork fails with -EBUSY, as
 *    copy_pte_range() does in Linux;
 *  - a DMA-pinned page the child must get a copy of is allocated with
 *    both PTE locks dropped (folio_prealloc(), GFP_HIGHUSER_MOVABLE: it
 *    may sleep in direct reclaim), then the PTE page is walked again from
 *    that entry, as copy_pte_range() does;
 *  - runs of PTEs that map consecutive pages of one large folio are
 *    copied together (folio_pte_batch(), Linux 6.8's batched fork), and
 *    the child's rss is counted in a local vector applied once per PTE
 *    page (add_mm_rss_vec()).
 *
 * Model split (session 9, exit3; mm/swap_release.ts describes the zap's
 * half): copy_present_ptes() copies the common PTE, one mapping an
 * order-0 anonymous folio that cannot be DMA-pinned, on the section
 * arrays (copy_present_pte_pfn(): no page handle); every other PTE takes
 * the handle path, as all do with struct_page_direct(false) (TEST ONLY,
 * mm/internal.ts). test/mm/zap_release.test.ts compares the two.
 */
import type { page, vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES, MM_SWAPENTS, SECTION_MASK, __pfn_to_section } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, VM_DONTCOPY, VM_WIPEONFORK, VM_PFNMAP, VM_MIXEDMAP, VM_SHARED, VM_HUGETLB,
  is_cow_mapping, mm_counter, mm_counter_file, add_mm_rss_vec,
} from '../include/linux/mm.js';
import {
  pte_none, pte_present, pte_write, pte_wrprotect, pte_mkclean, pte_mkold, pte_mkdirty, pte_mkwrite, pmd_is_table,
  pmd_addr_end, pte_pfn, pte_special, type pte_t,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_entry_to_pte, non_swap_entry, is_readable_migration_entry, _PAGE_SWP_SOFT_DIRTY,
  make_readable_migration_entry, is_device_private_entry, is_writable_device_private_entry,
  make_readable_device_private_entry, is_device_exclusive_entry, is_migration_entry, is_hmm_entry,
  swp_offset_pfn, pte_swp_clear_exclusive,
} from '../include/linux/swapops.js';
import { ClearPageAnonExclusive, folio_test_anon, PG_anon_exclusive } from '../include/linux/page-flags.js';
import { struct_page_paths } from './internal.js';
import { MMU_NOTIFY_PROTECTION_PAGE, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import { ENOMEM, EAGAIN, EBUSY, ENOENT } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { get_page, put_page, pfn_to_page, copy_highpage, folio_ref_add, is_zero_pfn } from './page_alloc.js';
import {
  pte_offset_map, pte_alloc_map, pte_lockptr, ptep_get, set_pte_at, set_ptes, wrprotect_ptes, flush_tlb_range, pmd_off,
  folio_pte_batch, FPB_IGNORE_DIRTY,
} from './pgtable.js';
import { vm_normal_page, mk_pte, maybe_mkwrite, try_restore_exclusive_pte, alloc_anon_folio } from './memory.js';
import {
  anon_vma_fork_locked, folio_add_new_anon_rmap, folio_add_anon_rmap_pte, folio_try_dup_anon_rmap_ptes,
  folio_dup_file_rmap_ptes,
} from './rmap.js';
import { folio_maybe_dma_pinned, GUP_PIN_COUNTING_BIAS } from './gup.js';
import { vm_area_dup, vma_link } from './vma.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { mmap_write_lock, mmap_write_unlock } from './mmap_lock.js';
import { folio_add_lru_vma } from './swap.js';
import { swap_duplicate } from './swapfile.js';
import { copy_huge_pmd } from './huge_memory_pmd.js';
import { copy_hugetlb_page_range } from './hugetlb.js';
import { hmm_v8_hooks } from './hmm_v8/hooks.js';
import { BUG } from '../include/asm-generic/bug.js';

/* vma_needs_copy() - must fork copy the page tables of this VMA? */
function vma_needs_copy(src: vm_area_struct): boolean {
  if (src.vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) return true;
  return src.anon_vma !== null;
}

/*
 * copy_present_page() - a DMA-pinned exclusive anon page cannot be shared
 * with the child (the device would write under the child's COW): give the
 * child its own copy now, in @prealloc's page (allocated and charged by
 * folio_prealloc() with the PTE locks dropped). The parent's PTE stays as
 * it is.
 * Context: both PTE locks held. Return: 0, or -EAGAIN when there is no
 * preallocated page yet (the caller drops the locks, allocates, retries).
 */
function copy_present_page(dst: vm_area_struct, addr: number, dst_ptep: number, src_page: page,
                           prealloc: { p: page | null }, rss: number[]): number {
  const np = prealloc.p;
  if (np === null) return -EAGAIN;
  prealloc.p = null;
  copy_highpage(np, src_page);
  folio_add_new_anon_rmap(np, dst, addr);
  folio_add_lru_vma(np, dst);
  rss[MM_ANONPAGES]++;
  set_pte_at(dst.vm_mm, addr, dst_ptep, maybe_mkwrite(pte_mkdirty(mk_pte(np, dst.vm_page_prot)), dst));
  count_event('fork_copy_pinned');
  return 0;
}

/**
 * fork_params - a teaching switch, off by default.
 * @share_dma_pinned: copy_present_pte() shares a DMA-pinned anonymous page
 *   with the child like any other page, as Linux did before 5.9 (the
 *   commit "mm: Do early cow for pinned pages during fork() for ptes"):
 *   the parent's next write then breaks COW away from the page the device
 *   keeps using, the RDMA fork problem (tools/hmm-sim/scenarios/odp.ts,
 *   pitfall "fork"). Callers set it and restore it.
 */
export const fork_params = { share_dma_pinned: false };

/*
 * __copy_present_ptes() - install @nr PTEs in the child from @pte (the
 * first of a run mapping consecutive pages): write-protected in both for
 * a COW mapping, clean in the child of a shared one, old in the child.
 */
function __copy_present_ptes(dst: vm_area_struct, src: vm_area_struct, dst_ptep: number, src_ptep: number,
                             pte: pte_t, addr: number, nr: number): void {
  if (is_cow_mapping(src.vm_flags) && pte_write(pte)) {
    wrprotect_ptes(src.vm_mm, addr, src_ptep, nr);
    pte = pte_wrprotect(pte);
  }
  if (src.vm_flags & VM_SHARED) pte = pte_mkclean(pte);
  set_ptes(dst.vm_mm, addr, dst_ptep, pte_mkold(pte), nr);
}

/* the any_writable output of folio_pte_batch() (fork never nests: one is enough) */
const fork_any_writable = { value: false };

/*
 * copy_present_pte_pfn() - copy_present_ptes() of the common PTE, one
 * that maps an order-0 anonymous folio that cannot be DMA-pinned, on the
 * section arrays: the steps of vm_normal_page(), folio_maybe_dma_pinned(),
 * folio_try_dup_anon_rmap_ptes() (mapcount, PG_anon_exclusive),
 * folio_ref_add() and __copy_present_ptes(), in that order, with no page
 * handle (the model split in the file header). No Linux twin: the body of
 * copy_present_ptes() for that case. Its opening test (vm_normal_page()
 * and the order-0 anonymous check on the arrays) repeats
 * zap_present_pte_pfn()'s in mm/zap.ts on purpose: a shared helper
 * measured 2-6% slower on exit (session 9 A/B).
 * Context: both PTE locks held. Return: true when it copied the PTE;
 * false, nothing changed, for any other PTE (the handle path copies it).
 */
function copy_present_pte_pfn(dst: vm_area_struct, src: vm_area_struct, dst_ptep: number, src_ptep: number,
                              pte: pte_t, addr: number, rss: number[]): boolean {
  const pfn = pte_pfn(pte);
  if (pte_special(pte) || is_zero_pfn(pfn) || (src.vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) !== 0) return false;
  const ms = __pfn_to_section(pfn);
  if (ms === undefined) return false;
  const x = pfn & SECTION_MASK;
  if (ms.order[x] !== 0 || (ms.compound_head !== null && ms.compound_head[x] !== 0)) return false;   /* a large folio */
  const m = ms.mapping[x];
  if (m === null || m.kind !== 'anon') return false;                    /* !folio_test_anon() */
  const ref = ms._refcount[x];
  if (!fork_params.share_dma_pinned && ref >= GUP_PIN_COUNTING_BIAS) return false;     /* folio_maybe_dma_pinned() */
  ms._mapcount[x]++;                                                     /* folio_try_dup_anon_rmap_ptes() */
  ms.flags[x] &= ~(1 << PG_anon_exclusive);
  rss[MM_ANONPAGES]++;
  if (ref <= 0) BUG(`fork: get_page on free page pfn ${pfn}`);
  ms._refcount[x] = ref + 1;                                             /* folio_ref_add() */
  __copy_present_ptes(dst, src, dst_ptep, src_ptep, pte, addr, 1);
  return true;
}

/*
 * copy_present_ptes() - share the present PTE at @src_ptep and, when it
 * maps a large folio, the run of following PTEs that map the next pages of
 * the same folio (folio_pte_batch(), Linux 6.8's batched fork) with the
 * child: one reference, rmap and rss update for the run. An exclusive
 * anonymous page that may be DMA-pinned is copied for the child instead.
 * Return: the number of PTEs copied (>= 1), or -EAGAIN (copy_present_page()).
 */
function copy_present_ptes(dst: vm_area_struct, src: vm_area_struct, dst_ptep: number, src_ptep: number,
                           pte: pte_t, addr: number, max_nr: number, rss: number[], prealloc: { p: page | null }): number {
  if (struct_page_paths.direct && copy_present_pte_pfn(dst, src, dst_ptep, src_ptep, pte, addr, rss)) return 1;
  const p = vm_normal_page(src, addr, pte);
  if (p === null) {                                   /* zero page, special or PFNMAP entry: no page to share */
    __copy_present_ptes(dst, src, dst_ptep, src_ptep, pte, addr, 1);
    return 1;
  }
  const folio = p.compound_head;
  let nr = 1;
  if (folio.order > 0 && max_nr !== 1) {
    const flags = src.vm_flags & VM_SHARED ? FPB_IGNORE_DIRTY : 0;
    nr = folio_pte_batch(folio, src.vm_mm, src_ptep, pte, max_nr, flags, fork_any_writable);
    if (fork_any_writable.value) pte = pte_mkwrite(pte);
    if (nr > 1) count_event('fork_pte_batch');
  }
  if (folio_test_anon(folio)) {
    const maybe_pinned = !fork_params.share_dma_pinned && folio_maybe_dma_pinned(folio);
    if (folio_try_dup_anon_rmap_ptes(folio, p, nr, maybe_pinned) !== 0) {
      if (nr > 1) return copy_present_ptes(dst, src, dst_ptep, src_ptep, ptep_get(src.vm_mm, src_ptep), addr, 1, rss, prealloc);
      const ret = copy_present_page(dst, addr, dst_ptep, p, prealloc, rss);
      return ret < 0 ? ret : 1;
    }
    rss[MM_ANONPAGES] += nr;
  } else {
    folio_dup_file_rmap_ptes(folio, p, nr);
    rss[mm_counter_file(folio)] += nr;
  }
  if (folio._refcount <= 0) BUG(`fork: get_page on free page pfn ${folio.pfn}`);
  folio_ref_add(folio, nr);
  __copy_present_ptes(dst, src, dst_ptep, src_ptep, pte, addr, nr);
  return nr;
}

/*
 * copy_nonpresent_pte() - copy a swap or special entry.
 * Return: 0; -ENOENT when a device-exclusive entry was restored in the
 * parent (the caller copies the now present PTE); -EBUSY when its folio
 * was locked (the fork fails).
 */
function copy_nonpresent_pte(dst: vm_area_struct, src: vm_area_struct, dst_ptep: number, src_ptep: number,
                             addr: number, pte: pte_t, rss: number[]): number {
  const entry = pte_to_swp_entry(pte);
  const cow = is_cow_mapping(src.vm_flags);
  if (!non_swap_entry(entry)) {
    swap_duplicate(entry);
    rss[MM_SWAPENTS]++;
    set_pte_at(dst.vm_mm, addr, dst_ptep, pte_swp_clear_exclusive(pte));
    if (cow) set_pte_at(src.vm_mm, addr, src_ptep, pte_swp_clear_exclusive(pte));
    return 0;
  }
  if (is_migration_entry(entry)) {
    rss[mm_counter(pfn_to_page(swp_offset_pfn(entry)))]++;
    /* writable and readable-exclusive entries alike: the page is now shared, read-only in both */
    if (!is_readable_migration_entry(entry) && cow) {
      const sd = pte & _PAGE_SWP_SOFT_DIRTY;
      pte = swp_entry_to_pte(make_readable_migration_entry(swp_offset_pfn(entry))) + sd;
      set_pte_at(src.vm_mm, addr, src_ptep, pte);
    }
    set_pte_at(dst.vm_mm, addr, dst_ptep, pte);
    return 0;
  }
  if (is_device_private_entry(entry)) {
    const p = pfn_to_page(swp_offset_pfn(entry));
    get_page(p);
    ClearPageAnonExclusive(p);
    folio_add_anon_rmap_pte(p, dst, addr, false);
    rss[mm_counter(p)]++;
    if (is_writable_device_private_entry(entry) && cow) {
      pte = swp_entry_to_pte(make_readable_device_private_entry(swp_offset_pfn(entry)));
      set_pte_at(src.vm_mm, addr, src_ptep, pte);
    }
    set_pte_at(dst.vm_mm, addr, dst_ptep, pte_swp_clear_exclusive(pte));
    return 0;
  }
  if (is_device_exclusive_entry(entry)) {
    /* the device gives the page up: restore the ordinary PTE (if its folio is free to lock), then copy that */
    if (try_restore_exclusive_pte(src, addr, src_ptep) !== 0) return -EBUSY;
    count_event('fork_restore_exclusive');
    return -ENOENT;
  }
  if (is_hmm_entry(entry)) {
    /* v8: the child gets a system copy through hmm_mm_fork after the PTE block */
    return 0;
  }
  set_pte_at(dst.vm_mm, addr, dst_ptep, pte);   /* hwpoison, markers */
  return 0;
}

/*
 * copy_pte_range() - copy the entries of one PTE page from @addr. The
 * child's rss changes are collected in a local vector and applied once
 * (add_mm_rss_vec()).
 * Context: takes and drops both PTE locks; does not sleep.
 * Return: ret 0, -ENOMEM, -EBUSY, or -EAGAIN with @addr where a pinned
 * page needs @prealloc (the caller allocates it and calls again from
 * there); hmm: the v8 entries seen.
 */
function copy_pte_range(dst: vm_area_struct, src: vm_area_struct, addr: number, end: number,
                        prealloc: { p: page | null }): { ret: number; hmm: number[]; addr: number } {
  const src_mm = src.vm_mm, dst_mm = dst.vm_mm;
  const hmm: number[] = [];
  let src_ptep = pte_offset_map(src_mm, addr);
  if (src_ptep < 0) return { ret: 0, hmm, addr: end };
  let dst_ptep = pte_alloc_map(dst_mm, addr);
  if (dst_ptep < 0) return { ret: -ENOMEM, hmm, addr };
  const src_ptl = pte_lockptr(src_mm, src_ptep), dst_ptl = pte_lockptr(dst_mm, dst_ptep);
  const rss = [0, 0, 0, 0];
  spin_lock(dst_ptl);
  spin_lock(src_ptl);
  let ret = 0;
  for (let nr = 1; addr < end; addr += nr * PAGE_SIZE, src_ptep += nr, dst_ptep += nr) {
    const pte = ptep_get(src_mm, src_ptep);
    nr = 1;
    if (pte_none(pte)) continue;
    if (!pte_present(pte)) {
      const r = copy_nonpresent_pte(dst, src, dst_ptep, src_ptep, addr, pte, rss);
      if (r === -ENOENT) { nr = 0; continue; }   /* restored: copy it again, as present */
      if (r === -EBUSY) { ret = r; break; }      /* the fork fails with -EBUSY, as in Linux */
      if (is_hmm_entry(pte_to_swp_entry(pte))) hmm.push(addr);
      continue;
    }
    nr = copy_present_ptes(dst, src, dst_ptep, src_ptep, pte, addr, (end - addr) / PAGE_SIZE, rss, prealloc);
    if (nr < 0) { ret = nr; break; }
  }
  spin_unlock(src_ptl);
  spin_unlock(dst_ptl);
  add_mm_rss_vec(dst_mm, rss);
  return { ret, hmm, addr };
}

/*
 * copy_pte_range_prealloc() - copy_pte_range() over [addr, end), dropping
 * the PTE locks to allocate a page for each pinned page the child must
 * get a copy of (folio_prealloc(): alloc_anon_folio() charges the
 * parent's memcg, as Linux charges src_mm). A page left unused (the entry
 * changed meanwhile) is freed. Context: may sleep. Return: as copy_pte_range().
 */
function* copy_pte_range_prealloc(dst: vm_area_struct, src: vm_area_struct, addr: number, end: number,
                                  hmm_addrs: number[]): Sleepable<number> {
  const prealloc: { p: page | null } = { p: null };
  let ret = 0;
  for (;;) {
    const r = copy_pte_range(dst, src, addr, end, prealloc);
    if (r.hmm.length > 0) hmm_addrs.push(...r.hmm);
    ret = r.ret;
    if (ret !== -EAGAIN) break;
    addr = r.addr;
    prealloc.p = yield* alloc_anon_folio(src, false);
    if (prealloc.p === null) { ret = -ENOMEM; break; }
  }
  if (prealloc.p !== null) put_page(prealloc.p);
  return ret;
}

/**
 * copy_page_range() - copy the page-table entries of src into dst (the
 * child's copy of the VMA), write-protecting COW mappings in both.
 * Context: both mmap_locks held for write; may sleep (notifiers).
 * Return: 0, -ENOMEM, or -EBUSY (a device-exclusive entry whose folio
 * someone else holds locked).
 */
export function* copy_page_range(dst: vm_area_struct, src: vm_area_struct): Sleepable<number> {
  if (!vma_needs_copy(src)) return 0;
  if (src.vm_flags & VM_HUGETLB) {
    return yield* copy_hugetlb_page_range(dst, src);
  }
  const cow = is_cow_mapping(src.vm_flags);
  const range = mmu_notifier_range_init(MMU_NOTIFY_PROTECTION_PAGE, MMU_NOTIFIER_RANGE_BLOCKABLE, src.vm_mm,
    src.vm_start, src.vm_end);
  if (cow) yield* mmu_notifier_invalidate_range_start(range);
  let ret = 0;
  const hmm_addrs: number[] = [];
  for (let addr = src.vm_start; addr < src.vm_end && ret === 0;) {
    const next = pmd_addr_end(addr, src.vm_end);
    const pmdp = pmd_off(src.vm_mm, addr);
    if (pmdp >= 0) {
      const pmd = src.vm_mm.pgd.load(pmdp);
      if (pmd !== 0 && !pmd_is_table(pmd)) {
        ret = copy_huge_pmd(dst, src, -1, pmdp, addr);
        if (ret === -EAGAIN) ret = 0;            /* split: its PTEs are copied below */
      }
      if (ret === 0 && pmd_is_table(src.vm_mm.pgd.load(pmdp))) ret = yield* copy_pte_range_prealloc(dst, src, addr, next, hmm_addrs);
    }
    addr = next;
  }
  if (cow) {
    flush_tlb_range(src, src.vm_start, src.vm_end);
    yield* mmu_notifier_invalidate_range_end(range);
  }
  if (ret === 0 && hmm_addrs.length > 0 && hmm_v8_hooks.mm_fork !== null) {
    for (const a of hmm_addrs) {
      ret = yield* hmm_v8_hooks.mm_fork(src, dst, a);      /* HMM v8 place 4 */
      if (ret) break;
    }
  }
  return ret;
}

/**
 * dup_mmap() - copy the parent's VMAs and page tables into the child's
 * empty mm. Context: may sleep; takes both mmap_locks for write.
 * Return: 0 or -ENOMEM.
 */
export function* dup_mmap(mm: mm_struct, oldmm: mm_struct): Sleepable<number> {
  yield* mmap_write_lock(oldmm);
  yield* mmap_write_lock(mm);
  mm.memcg = oldmm.memcg;              /* the child starts in its parent's memory cgroup (cgroup_fork) */
  let ret = 0;
  for (const src of oldmm.mmap) {
    if (src.vm_flags & VM_DONTCOPY) continue;
    const dst = vm_area_dup(src, mm);
    if (!(src.vm_flags & VM_WIPEONFORK)) yield* anon_vma_fork_locked(dst, src);
    dst.vm_ops?.open?.(dst);
    vma_link(mm, dst);
    mm.total_vm += (dst.vm_end - dst.vm_start) / PAGE_SIZE;
    if (!(src.vm_flags & VM_WIPEONFORK)) ret = yield* copy_page_range(dst, src);
    if (ret) break;
  }
  mmap_write_unlock(mm);
  mmap_write_unlock(oldmm);
  trace_event('dup_mmap', { parent: oldmm.id, child: mm.id, vmas: mm.map_count, ret });
  return ret;
}

