/*
 * mm/rmap.ts - reverse mapping: from a page to every PTE that maps it.
 *
 * Models mm/rmap.c. Anonymous pages point at their anon_vma; every VMA
 * that may map them is in anon_vma.vmas, and the address of the page in a
 * VMA follows from page->index (include/linux/mm_types.ts explains the
 * fork simplification). File pages point at their address_space, whose
 * i_mmap lists the VMAs mapping the file.
 *
 * Mapcount rules (as Linux, with one mapcount per page): a PTE mapping
 * the page counts once in _mapcount and holds one reference in _refcount.
 */
import type { page, vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import { anon_vma } from '../include/linux/mm_types.js';
import { PAGE_SIZE, linear_page_index } from '../include/linux/mm.js';
import { PageAnonExclusive, SetPageAnonExclusive, ClearPageAnonExclusive, SetPageSwapBacked } from '../include/linux/page-flags.js';
import { pte_present, pte_pfn, type pte_t } from '../include/linux/pgtable.js';
import { is_swap_pte, pte_to_swp_entry, is_pfn_swap_entry, swp_offset_pfn } from '../include/linux/swapops.js';
import { ENOMEM, EBUSY } from '../include/uapi/asm-generic/errno.js';
import { pte_offset_map, ptep_get } from './pgtable.js';
import { pfn_to_page } from './sparse.js';
import { BUG } from '../include/asm-generic/bug.js';
import { rw_semaphore, down_write, up_write } from '../lib/locking/rwsem.js';
import { lockdep_set_class } from '../lib/locking/lockdep.js';
import type { Sleepable } from '../lib/sim/sched.js';

/**
 * anon_vma_prepare() - give an anonymous VMA its anon_vma before the first
 * anonymous page is mapped into it. Context: mmap_lock held.
 * Return: 0 (allocation cannot fail in this model; Linux may return -ENOMEM).
 */
export function anon_vma_prepare(vma: vm_area_struct): number {
  if (vma.anon_vma !== null) return 0;
  const av = new anon_vma();
  av.rwsem = lockdep_set_class(new rw_semaphore(`anon_vma${++anon_vma_ids}`), '&anon_vma->rwsem');
  av.vmas.add(vma);
  vma.anon_vma = av;
  return av ? 0 : -ENOMEM;
}

let anon_vma_ids = 0;

/**
 * anon_vma_fork_locked() - anon_vma_fork() under the anon_vma's rwsem held
 * for write (anon_vma_lock_write in anon_vma_clone()): the child's VMA
 * cannot join while a sleeping rmap walk (try_to_migrate) holds it for
 * read, so that walk either sees the child or runs before fork copies the
 * parent's PTEs. Context: may sleep.
 */
export function* anon_vma_fork_locked(child: vm_area_struct, parent: vm_area_struct): Sleepable<number> {
  const sem = parent.anon_vma?.rwsem ?? null;
  if (sem !== null) yield* down_write(sem);
  const ret = anon_vma_fork(child, parent);
  if (sem !== null) up_write(sem);
  return ret;
}

/** anon_vma_fork() - the child's copy of a VMA joins the parent's anon_vma. */
export function anon_vma_fork(child: vm_area_struct, parent: vm_area_struct): number {
  if (parent.anon_vma === null) return 0;
  child.anon_vma = parent.anon_vma;
  parent.anon_vma.vmas.add(child);
  parent.anon_vma.refcount++;
  return 0;
}

/** anon_vma_clone() - a VMA created by split_vma shares the original's anon_vma. */
export function anon_vma_clone(dst: vm_area_struct, src: vm_area_struct): number {
  return anon_vma_fork(dst, src);
}

/** unlink_anon_vmas() - the VMA goes away: remove it from its anon_vma. */
export function unlink_anon_vmas(vma: vm_area_struct): void {
  const av = vma.anon_vma;
  if (av === null) return;
  av.vmas.delete(vma);
  av.refcount--;
  vma.anon_vma = null;
}

/**
 * folio_add_new_anon_rmap() - map a freshly allocated anonymous folio for
 * the first time: it becomes anon, swap-backed (reclaim writes it to
 * swap), exclusive to this mm, mapcount 1.
 */
export function folio_add_new_anon_rmap(f: page, vma: vm_area_struct, addr: number): void {
  if (vma.anon_vma === null) BUG('anon rmap without anon_vma');
  SetPageSwapBacked(f);
  f.mapping = vma.anon_vma;
  f.index = linear_page_index(vma, addr);
  f._mapcount = 0;
  SetPageAnonExclusive(f);
}

/** folio_add_anon_rmap_pte() - one more PTE maps an existing anonymous page. */
export function folio_add_anon_rmap_pte(f: page, _vma: vm_area_struct, _addr: number, exclusive: boolean): void {
  f._mapcount++;
  if (exclusive) SetPageAnonExclusive(f); else if (f._mapcount > 0) ClearPageAnonExclusive(f);
}

/** folio_add_file_rmap_pte() - one more PTE maps a page-cache page. */
export function folio_add_file_rmap_pte(f: page, _vma: vm_area_struct): void {
  f._mapcount++;
}

/**
 * folio_remove_rmap_pte() - a PTE no longer maps the page. The caller
 * drops the PTE's reference afterwards (put_page).
 */
export function folio_remove_rmap_pte(f: page, _vma: vm_area_struct): void {
  const mapcount = f._mapcount - 1;           /* atomic_add_negative(-1, &page->_mapcount): one read, one write */
  if (mapcount < -1) BUG(`mapcount underflow pfn ${f.pfn}`);
  f._mapcount = mapcount;
  if (mapcount < 0) ClearPageAnonExclusive(f);
}

/**
 * folio_remove_rmap_ptes() - @nr PTEs no longer map the consecutive pages
 * of @folio from @p (a batch of folio_pte_batch()). The caller drops the
 * @nr references afterwards.
 */
export function folio_remove_rmap_ptes(_folio: page, p: page, nr: number, vma: vm_area_struct): void {
  for (let i = 0; i < nr; i++) folio_remove_rmap_pte(i === 0 ? p : pfn_to_page(p.pfn + i), vma);
}

/**
 * folio_try_dup_anon_rmap_ptes() - fork: the child's @nr PTEs will map the
 * consecutive pages of the anonymous @folio from @p as well. Each page
 * gains a mapcount and is no longer exclusive to the parent.
 * @maybe_pinned: folio_maybe_dma_pinned() of the folio, as the caller
 *   decided it (mm/fork.ts keeps a teaching switch that ignores pins)
 * Return: 0, or -EBUSY with nothing changed when a page is exclusive and
 * may be DMA-pinned: the child must get a copy instead (a pinned page
 * must stay the parent's, or a write fault would replace it under the
 * device).
 */
export function folio_try_dup_anon_rmap_ptes(_folio: page, p: page, nr: number, maybe_pinned: boolean): number {
  if (nr === 1) {
    if (maybe_pinned && PageAnonExclusive(p)) return -EBUSY;
    p._mapcount++;
    ClearPageAnonExclusive(p);
    return 0;
  }
  if (maybe_pinned) {
    for (let i = 0; i < nr; i++) if (PageAnonExclusive(pfn_to_page(p.pfn + i))) return -EBUSY;
  }
  for (let i = 0; i < nr; i++) {
    const sp = i === 0 ? p : pfn_to_page(p.pfn + i);
    sp._mapcount++;
    ClearPageAnonExclusive(sp);
  }
  return 0;
}

/** folio_dup_file_rmap_ptes() - fork: @nr more PTEs map the pages of a page-cache folio from @p. */
export function folio_dup_file_rmap_ptes(_folio: page, p: page, nr: number): void {
  for (let i = 0; i < nr; i++) (i === 0 ? p : pfn_to_page(p.pfn + i))._mapcount++;
}

/**
 * vma_address() - where a page would be mapped in a VMA, or -1 if its
 * index falls outside the VMA.
 */
export function vma_address(p: page, vma: vm_area_struct): number {
  const addr = vma.vm_start + (p.index - vma.vm_pgoff) * PAGE_SIZE;
  return addr >= vma.vm_start && addr < vma.vm_end ? addr : -1;
}

/** pte_maps_pfn() - the PTE maps pfn, present or through a pfn swap entry. */
export function pte_maps_pfn(pte: pte_t, pfn: number): boolean {
  if (pte_present(pte)) return pte_pfn(pte) === pfn;
  if (!is_swap_pte(pte)) return false;
  const e = pte_to_swp_entry(pte);
  return is_pfn_swap_entry(e) && swp_offset_pfn(e) === pfn;
}

/**
 * page_vma_mapped() - the PTE pointer mapping page p at addr of vma, or -1.
 * Models page_vma_mapped_walk() for one small page.
 */
export function page_vma_mapped(vma: vm_area_struct, addr: number, p: page): number {
  const mm: mm_struct = vma.vm_mm;
  const ptep = pte_offset_map(mm, addr);
  if (ptep < 0) return -1;
  return pte_maps_pfn(ptep_get(mm, ptep), p.pfn) ? ptep : -1;
}

/** struct rmap_walk_control - what rmap_walk() does at each mapping. */
export interface rmap_walk_control {
  /* called for each VMA that may map the folio; return false to stop */
  rmap_one(f: page, vma: vm_area_struct, addr: number): boolean;
  /* return true to skip a VMA */
  invalid_vma?(vma: vm_area_struct): boolean;
}

/**
 * rmap_walk() - visit every VMA that may map the folio, with the address
 * the folio has there. rmap_one must check the PTE itself
 * (page_vma_mapped): the walk finds candidates, not proofs.
 * Context: folio locked (as Linux requires for anon/file walks).
 */
export function rmap_walk(f: page, rwc: rmap_walk_control): void {
  const m = f.mapping;
  if (m === null) return;
  const vmas = m.kind === 'anon' ? [...m.vmas] : [...m.i_mmap];
  for (const vma of vmas) {
    if (rwc.invalid_vma?.(vma)) continue;
    const addr = vma_address(f, vma);
    if (addr < 0) continue;
    if (!rwc.rmap_one(f, vma, addr)) break;
  }
}

/**
 * folio_mapped_ptes() - every (mm, address) where the folio is mapped now,
 * found through rmap: a checking helper for tests and invariants.
 */
export function folio_mapped_ptes(f: page): { vma: vm_area_struct; addr: number }[] {
  const out: { vma: vm_area_struct; addr: number }[] = [];
  rmap_walk(f, {
    rmap_one(folio, vma, addr) {
      if (page_vma_mapped(vma, addr, folio) >= 0) out.push({ vma, addr });
      return true;
    },
  });
  return out;
}
