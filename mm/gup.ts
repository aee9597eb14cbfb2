/*
 * mm/gup.ts - get_user_pages(): take references on user pages from the
 * kernel.
 *
 * Models mm/gup.c: __get_user_pages() looks up each page
 * (follow_page_mask), faults it in when it is absent or not writable
 * enough (faultin_page -> handle_mm_fault with FAULT_FLAG_REMOTE for a
 * foreign mm), and takes a reference (FOLL_GET) or a pin (FOLL_PIN).
 *
 * Pins follow Linux's counting: a pin of a small folio adds
 * GUP_PIN_COUNTING_BIAS (1024) to _refcount, a pin of a large folio adds
 * 1 to _refcount and 1 to _pincount; folio_maybe_dma_pinned() reads those
 * back. Device-private entries are not followed: GUP faults them, which
 * migrates the page back to RAM (do_swap_page -> migrate_to_ram).
 * FOLL_LONGTERM pins of movable memory are refused or migrated with
 * check_and_migrate_movable_pages() (mm/gup_longterm.ts).
 */
import type { page, vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, VM_WRITE, VM_IO, VM_PFNMAP, VM_READ, VM_SHARED, VM_MAYWRITE,
  FOLL_WRITE, FOLL_GET, FOLL_PIN, FOLL_FORCE, FOLL_NOFAULT, FOLL_LONGTERM, FOLL_REMOTE, FOLL_ANON,
  FAULT_FLAG_WRITE, FAULT_FLAG_REMOTE, FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_KILLABLE, FAULT_FLAG_UNSHARE,
  VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_SIGSEGV, VM_FAULT_HWPOISON, VM_FAULT_HWPOISON_LARGE, VM_FAULT_ERROR,
  is_cow_mapping, vma_is_anonymous,
} from '../include/linux/mm.js';
import { pte_present, pte_write, pte_special, pte_pfn, pte_none, pte_dirty } from '../include/linux/pgtable.js';
import { PageAnonExclusive, folio_test_anon } from '../include/linux/page-flags.js';
import { is_zone_device_page } from '../include/linux/memremap.js';
import { EFAULT, ENOMEM, EHWPOISON, EBUSY, EINVAL, EAGAIN } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { count_event } from '../lib/sim/trace.js';
import { pte_offset_map, ptep_get } from './pgtable.js';
import { put_page, is_zero_pfn, ZERO_PAGE } from './page_alloc.js';
import { handle_mm_fault, vm_normal_page } from './memory.js';
import { vma_lookup } from './vma.js';
import { mmap_read_lock, mmap_read_unlock, mmap_assert_locked } from './mmap_lock.js';
import { BUG } from '../include/asm-generic/bug.js';
import { follow_huge_pmd } from './huge_memory_pmd.js';
import { check_and_migrate_movable_pages } from './gup_longterm.js';

export const GUP_PIN_COUNTING_BIAS = 1024;

/**
 * try_grab_folio() - take the reference FOLL_GET or FOLL_PIN asks for.
 * Return: 0 or -ENOMEM (refcount overflow cannot happen here).
 */
export function try_grab_folio(p: page, flags: number): number {
  const f = p.compound_head;
  if (flags & FOLL_PIN) {
    if (f.order > 0) { f._refcount += 1; f._pincount += 1; }
    else f._refcount += GUP_PIN_COUNTING_BIAS;
    count_event('gup_pin');
  } else if (flags & FOLL_GET) {
    f._refcount += 1;
  }
  return 0;
}

/** unpin_user_page() - release a pin taken by pin_user_pages(). */
export function unpin_user_page(p: page): void {
  const f = p.compound_head;
  if (f.order > 0) {
    if (f._pincount <= 0) BUG(`unpin of unpinned folio pfn ${f.pfn}`);
    f._pincount--;
    put_page(f);
    return;
  }
  if (f._refcount < GUP_PIN_COUNTING_BIAS) BUG(`unpin of unpinned page pfn ${f.pfn}`);
  f._refcount -= GUP_PIN_COUNTING_BIAS - 1;
  put_page(f);
}

/** unpin_user_pages() - release pins on an array of pages. */
export function unpin_user_pages(pages: page[]): void {
  for (const p of pages) unpin_user_page(p);
}

/**
 * folio_maybe_dma_pinned() - might a device be doing DMA to this folio?
 * True once pinned (possibly falsely for a small page with 1024+ plain
 * references, exactly as in Linux).
 */
export function folio_maybe_dma_pinned(f: page): boolean {
  const h = f.compound_head;
  if (h.order > 0) return h._pincount > 0;
  return h._refcount >= GUP_PIN_COUNTING_BIAS;
}
export const page_maybe_dma_pinned = folio_maybe_dma_pinned;

/* check_vma_flags() - may GUP touch this VMA with these flags? */
function check_vma_flags(vma: vm_area_struct, gup_flags: number): number {
  const write = (gup_flags & FOLL_WRITE) !== 0;
  if (vma.vm_flags & (VM_IO | VM_PFNMAP)) return -EFAULT;
  if ((gup_flags & FOLL_ANON) && !vma_is_anonymous(vma)) return -EFAULT;
  if (write) {
    if (!(vma.vm_flags & VM_WRITE)) {
      if (!(gup_flags & FOLL_FORCE)) return -EFAULT;
      if (!is_cow_mapping(vma.vm_flags)) return -EFAULT;
    }
  } else if (!(vma.vm_flags & VM_READ) && !(gup_flags & FOLL_FORCE)) {
    return -EFAULT;
  }
  if ((vma.vm_flags & VM_SHARED) === 0 && (vma.vm_flags & VM_MAYWRITE) === 0 && write) return -EFAULT;
  return 0;
}

/*
 * can_follow_write_pte() - FOLL_FORCE may write through a read-only PTE of
 * a private mapping once the write fault has broken COW: the page is then
 * an exclusive anonymous page and the PTE is dirty (how ptrace pokes text).
 */
function can_follow_write_pte(pte: number, p: page | null, vma: vm_area_struct, flags: number): boolean {
  if (!(flags & FOLL_FORCE) || !is_cow_mapping(vma.vm_flags)) return false;
  return p !== null && folio_test_anon(p) && PageAnonExclusive(p) && pte_dirty(pte);
}

/*
 * follow_page_pte() - the page mapped at addr if the entry allows the
 * access, else null (fault needed). Pages reached through device-private
 * or other swap entries are never returned: the fault resolves them.
 */
function follow_page_pte(vma: vm_area_struct, addr: number, flags: number): page | null | 'efault' {
  const mm = vma.vm_mm;
  const ptep = pte_offset_map(mm, addr);
  if (ptep < 0) {
    const r = follow_huge_pmd(vma, addr, flags);
    return r === 'fault' ? null : r;
  }
  const pte = ptep_get(mm, ptep);
  if (pte_none(pte) || !pte_present(pte)) return null;
  const p = vm_normal_page(vma, addr, pte);
  if ((flags & FOLL_WRITE) && !pte_write(pte) && !can_follow_write_pte(pte, p, vma, flags)) return null;
  if (p === null) {
    if (is_zero_pfn(pte_pfn(pte))) return ZERO_PAGE(addr);
    return pte_special(pte) ? 'efault' : null;
  }
  /* a pin of a shared anon page must unshare it first (FAULT_FLAG_UNSHARE) */
  if ((flags & FOLL_PIN) && folio_test_anon(p) && !PageAnonExclusive(p)) return null;
  return p;
}

/* faultin_page() - fault the page in for GUP. Return 0 or -errno. */
function* faultin_page(vma: vm_area_struct, addr: number, flags: number, unshare: boolean): Sleepable<number> {
  let fault_flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE;
  if (flags & FOLL_WRITE) fault_flags |= FAULT_FLAG_WRITE;
  if (flags & FOLL_REMOTE) fault_flags |= FAULT_FLAG_REMOTE;
  if (unshare) fault_flags |= FAULT_FLAG_UNSHARE;
  const ret = yield* handle_mm_fault(vma, addr, fault_flags);
  if (ret & VM_FAULT_ERROR) {
    if (ret & VM_FAULT_OOM) return -ENOMEM;
    if (ret & (VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE)) return -EHWPOISON;
    if (ret & (VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV)) return -EFAULT;
    return -EFAULT;
  }
  return 0;
}

/**
 * __get_user_pages() - reference nr_pages user pages from start.
 * @pages: filled with the pages (may be null to only fault them in).
 * Context: mmap_lock held for read; may sleep.
 * Return: the number of pages done (>0), or -errno if the first failed:
 * -EFAULT (no VMA, wrong permission, VM_IO/VM_PFNMAP, SIGBUS/SIGSEGV
 * fault), -ENOMEM (OOM), -EHWPOISON, -EBUSY (FOLL_NOFAULT and not mapped).
 */
export function* __get_user_pages(mm: mm_struct, start: number, nr_pages: number, gup_flags: number,
                                  pages: page[] | null): Sleepable<number> {
  mmap_assert_locked(mm);
  if ((gup_flags & FOLL_LONGTERM) && !(gup_flags & FOLL_PIN)) return -EINVAL;   /* is_valid_gup_args(): LONGTERM only when pinning */
  let done = 0;
  let vma: vm_area_struct | null = null;
  for (let addr = start - (start % PAGE_SIZE); done < nr_pages; addr += PAGE_SIZE) {
    if (vma === null || addr >= vma.vm_end) {
      vma = vma_lookup(mm, addr);
      const err = vma === null ? -EFAULT : check_vma_flags(vma, gup_flags);
      if (err) return done > 0 ? done : err;
    }
    let tries = 0;
    for (;;) {
      const p = follow_page_pte(vma!, addr, gup_flags);
      if (p === 'efault') return done > 0 ? done : -EFAULT;
      if (p !== null) {
        if (pages !== null) { try_grab_folio(p, gup_flags); pages.push(p); }
        break;
      }
      if (gup_flags & FOLL_NOFAULT) return done > 0 ? done : -EBUSY;
      if (++tries > 8) BUG(`GUP livelock at ${addr.toString(16)}`);
      const unshare = (gup_flags & FOLL_PIN) !== 0 && (gup_flags & FOLL_WRITE) === 0;
      const ret = yield* faultin_page(vma!, addr, gup_flags, unshare);
      if (ret < 0) return done > 0 ? done : ret;
    }
    done++;
  }
  return done;
}

/**
 * get_user_pages_remote() - FOLL_GET references on pages of another mm.
 * Context: mmap_lock of mm held for read; may sleep.
 */
export function* get_user_pages_remote(mm: mm_struct, start: number, nr_pages: number, gup_flags: number,
                                       pages: page[]): Sleepable<number> {
  return yield* __get_user_pages(mm, start, nr_pages, gup_flags | FOLL_GET | FOLL_REMOTE, pages);
}

/** get_user_pages() - FOLL_GET references on pages of mm. Context: mmap_lock held for read. */
export function* get_user_pages(mm: mm_struct, start: number, nr_pages: number, gup_flags: number,
                                pages: page[]): Sleepable<number> {
  return yield* __get_user_pages(mm, start, nr_pages, gup_flags | FOLL_GET, pages);
}

/**
 * pin_user_pages() - FOLL_PIN pins for DMA. With FOLL_LONGTERM, memory
 * that must stay movable is checked by check_and_migrate_movable_pages().
 * Context: mmap_lock held for read; may sleep.
 * Return: pages pinned or -errno (-EINVAL if FOLL_GET is passed).
 */
export function* pin_user_pages(mm: mm_struct, start: number, nr_pages: number, gup_flags: number,
                                pages: page[]): Sleepable<number> {
  if (gup_flags & FOLL_GET) return -EINVAL;
  for (;;) {
    const ret = yield* __get_user_pages(mm, start, nr_pages, gup_flags | FOLL_PIN, pages);
    if (ret <= 0 || !(gup_flags & FOLL_LONGTERM)) return ret;
    const err = yield* check_and_migrate_movable_pages(mm, pages, gup_flags);
    /* -EAGAIN: the check released every pin and migrated what could not stay pinned; pin again */
    if (err === -EAGAIN) continue;
    if (err < 0) { unpin_user_pages(pages.splice(0)); return err; }
    return ret;
  }
}

/** pin_user_pages_unlocked() - pin_user_pages() taking mmap_lock itself. */
export function* pin_user_pages_unlocked(mm: mm_struct, start: number, nr_pages: number, gup_flags: number,
                                         pages: page[]): Sleepable<number> {
  yield* mmap_read_lock(mm);
  const ret = yield* pin_user_pages(mm, start, nr_pages, gup_flags, pages);
  mmap_read_unlock(mm);
  return ret;
}

/** get_user_pages_unlocked() - get_user_pages() taking mmap_lock itself. */
export function* get_user_pages_unlocked(mm: mm_struct, start: number, nr_pages: number, gup_flags: number,
                                         pages: page[]): Sleepable<number> {
  yield* mmap_read_lock(mm);
  const ret = yield* get_user_pages(mm, start, nr_pages, gup_flags, pages);
  mmap_read_unlock(mm);
  return ret;
}

/**
 * populate_vma_page_range() - fault in [start, end) of vma without
 * keeping references (MAP_POPULATE, mlock). Context: mmap_lock held.
 * Return: pages faulted in, or -errno.
 */
export function* populate_vma_page_range(vma: vm_area_struct, start: number, end: number,
                                         gup_flags: number): Sleepable<number> {
  return yield* __get_user_pages(vma.vm_mm, start, (end - start) / PAGE_SIZE, gup_flags | FOLL_FORCE, null);
}

export { is_zone_device_page, EBUSY };
