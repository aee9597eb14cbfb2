/*
 * mm/swap_state.ts - the swap cache, add_to_swap(), and swap-in.
 *
 * Models mm/swap_state.c (add_to_swap_cache, __delete_from_swap_cache,
 * delete_from_swap_cache, swap_cache_get_folio, __read_swap_cache_async,
 * add_to_swap from mm/swap.h's helpers) and the swap half of
 * do_swap_page() in mm/memory.c (doSwapPageSwapin()): mm/memory.ts
 * dispatches the special entries (migration, device-private,
 * device-exclusive, hwpoison, SWP_HMM) and hands a real swap entry here.
 *
 * The swap cache is what makes a slot shareable: between "the folio got
 * a slot" and "the folio is freed", and again between "the slot was read"
 * and "no PTE names the slot", the folio is findable by its entry, so that
 * every PTE naming the slot maps the same folio (fork shares swap entries
 * just as it shares pages). A folio in the swap cache has PG_swapcache,
 * folio->private = its entry, and one reference held by the cache.
 *
 * Simplified: no swap readahead (swapin_readahead reads the one slot), no
 * workingset shadow entries, no SWP_SYNCHRONOUS_IO bypass of the cache.
 */
import type { page, vm_fault, mm_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES, MM_SWAPENTS, SECTION_MASK, __pfn_to_section } from '../include/linux/mm_types.js';
import {
  VM_LOCKED, FAULT_FLAG_WRITE, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_FAULT_MAJOR, VM_FAULT_ERROR,
  inc_mm_counter, dec_mm_counter,
} from '../include/linux/mm.js';
import { pte_mkdirty, pte_set_flags, _PAGE_SOFT_DIRTY, type pte_t } from '../include/linux/pgtable.js';
import { swp_offset, pte_swp_exclusive, _PAGE_SWP_SOFT_DIRTY, type swp_entry_t } from '../include/linux/swapops.js';
import {
  PageLocked, PageSwapCache, PageUptodate, SetPageSwapCache, ClearPageSwapCache, SetPageSwapBacked,
  SetPageDirty, ClearPageAnonExclusive, PG_locked, PG_swapcache, PG_swapbacked, folio_test_anon,
} from '../include/linux/page-flags.js';
import { GFP_HIGHUSER_MOVABLE, type gfp_t } from '../include/linux/gfp.js';
import { EEXIST } from '../include/uapi/asm-generic/errno.js';
import { preempt_point, type Sleepable } from '../lib/sim/sched.js';
import { BUG } from '../include/asm-generic/bug.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { alloc_page_sleepable, get_page, put_page, pfn_to_page } from './page_alloc.js';
import { pte_lockptr, ptep_get, set_pte_at } from './pgtable.js';
import { mk_pte, maybe_mkwrite, do_wp_page } from './memory.js';
import { folio_add_new_anon_rmap, folio_add_anon_rmap_pte } from './rmap.js';
import { folio_lock, folio_unlock } from './filemap.js';
import {
  get_swap_device, folio_alloc_swap, swapcache_prepare, put_swap_folio, swap_free, folio_free_swap,
  swap_read_folio, __swap_count, swap_devices, free_swap_cache,
} from './swapfile.js';
import { folio_add_lru, folios_put_refs } from './swap.js';
import { folio_batch_init, folio_batch_add, folio_pfn_batch_init, PAGEVEC_SIZE } from '../include/linux/pagevec.js';
import { folios_put_refs_pfn } from './swap_release.js';
import { struct_page_paths } from './internal.js';
import { mem_cgroup_swapin_charge_folio, mem_cgroup_swap_full } from './memcontrol.js';

/**
 * add_to_swap_cache() - make the folio findable by its swap entry.
 * Context: folio locked; the slot's SWAP_HAS_CACHE is already claimed.
 * Return: 0, or -EEXIST when another folio is cached for the entry.
 */
export function add_to_swap_cache(f: page, entry: swp_entry_t): number {
  const si = get_swap_device(entry);
  if (si === null) BUG(`add_to_swap_cache: bad entry 0x${entry.toString(16)}`);
  if (!PageLocked(f) || PageSwapCache(f)) BUG(`add_to_swap_cache: pfn ${f.pfn} unlocked or already cached`);
  const off = swp_offset(entry);
  if (si.swap_cache.has(off)) return -EEXIST;
  si.swap_cache.set(off, f);
  f._refcount++;                     /* the cache's reference */
  SetPageSwapBacked(f);
  SetPageSwapCache(f);
  f.private = entry;
  return 0;
}

/**
 * __delete_from_swap_cache() - remove the folio from the cache; the
 * caller drops the slot's cache bit and the cache's reference.
 * Context: folio locked.
 */
export function __delete_from_swap_cache(f: page, entry: swp_entry_t): void {
  const si = get_swap_device(entry);
  if (si === null || si.swap_cache.get(swp_offset(entry))?.pfn !== f.pfn) BUG(`swap cache does not hold pfn ${f.pfn}`);
  si.swap_cache.delete(swp_offset(entry));
  ClearPageSwapCache(f);
  f.private = 0;
}

/**
 * delete_from_swap_cache() - remove the folio from the cache, give up
 * its claim on the slot and drop the cache's reference.
 * Context: folio locked; the caller holds its own reference.
 */
export function delete_from_swap_cache(f: page): void {
  const entry = f.private;
  __delete_from_swap_cache(f, entry);
  put_swap_folio(f, entry);
  if (--f._refcount <= 0) BUG(`delete_from_swap_cache: the caller held no reference on pfn ${f.pfn}`);
}

/** swap_cache_get_folio() - the folio cached for entry, with a reference, or null. */
export function swap_cache_get_folio(entry: swp_entry_t): page | null {
  const si = get_swap_device(entry);
  const f = si === null ? undefined : si.swap_cache.get(swp_offset(entry));
  if (f === undefined) return null;
  get_page(f);
  return f;
}

/** total_swapcache_pages() - folios in the swap cache of every device (tests, meminfo SwapCached). */
export function total_swapcache_pages(): number {
  let n = 0;
  for (const si of swap_devices()) n += si.swap_cache.size;
  return n;
}

/**
 * free_pages_and_swap_cache() - release the references an mmu_gather
 * collected: the folios of the pages @pfns[0 .. nr), each standing for
 * @refs[i] PTE references. A folio that is in the swap cache and mapped
 * nowhere any more leaves it first (free_swap_cache()); the references
 * then go in folio batches (folios_put_refs()), with a preemption point
 * after each batch as the cond_resched() of tlb_batch_pages_flush().
 * The batches name folios by pfn (folios_put_refs_pfn(), the model split
 * of mm/swap_release.ts); struct_page_direct(false) (TEST ONLY) takes
 * the handle path instead.
 * Context: no PTE lock held.
 */
export function free_pages_and_swap_cache(pfns: Int32Array, refs: Int32Array, nr: number): void {
  if (!struct_page_paths.direct) { free_pages_and_swap_cache_helpers(pfns, refs, nr); return; }
  const fb = folio_pfn_batch_init();
  for (let i = 0; i < nr; i++) {
    let pfn = pfns[i], ms = __pfn_to_section(pfn)!, x = pfn & SECTION_MASK;
    const heads = ms.compound_head;
    if (heads !== null && heads[x] !== 0) {          /* page_folio() */
      pfn -= heads[x];
      ms = __pfn_to_section(pfn)!;
      x = pfn & SECTION_MASK;
    }
    if ((ms.flags[x] & SWAPCACHE_FLAGS) === SWAPCACHE_FLAGS) free_swap_cache(ms.page_new(pfn));
    fb.pfns[fb.nr] = pfn;
    fb.refs[fb.nr++] = refs[i];
    if (fb.nr === PAGEVEC_SIZE) {
      folios_put_refs_pfn(fb);
      preempt_point('free_pages_and_swap_cache');
    }
  }
  if (fb.nr > 0) folios_put_refs_pfn(fb);
}

/* PageSwapCache(): both bits */
const SWAPCACHE_FLAGS = 1 << PG_swapcache | 1 << PG_swapbacked;

/*
 * free_pages_and_swap_cache_helpers() - free_pages_and_swap_cache()
 * through page handles and folios_put_refs(): the path
 * struct_page_direct(false) (TEST ONLY) selects. Context: as
 * free_pages_and_swap_cache().
 */
function free_pages_and_swap_cache_helpers(pfns: Int32Array, refs: Int32Array, nr: number): void {
  const fb = folio_batch_init();
  const r = new Array<number>(PAGEVEC_SIZE);
  for (let i = 0; i < nr; i++) {
    const f = pfn_to_page(pfns[i]).compound_head;
    free_swap_cache(f);
    r[fb.nr] = refs[i];
    if (folio_batch_add(fb, f) === 0) {
      folios_put_refs(fb, r);
      preempt_point('free_pages_and_swap_cache');
    }
  }
  if (fb.nr > 0) folios_put_refs(fb, r);
}

/**
 * add_to_swap() - give an anonymous folio a slot and put it in the swap
 * cache, dirty so that pageout writes it (a lazily freed page that was
 * written again may have a clean PTE but must still be written).
 * Context: folio locked, isolated from the LRU. Return: false when no
 * slot could be had (swap full, or the memcg's swap limit).
 */
export function add_to_swap(f: page): boolean {
  const entry = folio_alloc_swap(f);
  if (entry === 0) return false;
  if (add_to_swap_cache(f, entry) !== 0) {
    put_swap_folio(f, entry);
    return false;
  }
  SetPageDirty(f);
  trace_event('add_to_swap', { pfn: f.pfn, entry });
  return true;
}

/**
 * read_swap_cache_async() - the folio for entry: from the swap cache, or
 * a new one charged to mm's memcg (the slot's owner first), put in the
 * cache and on the LRU, and read from the slot.
 * Return: the folio with a reference, unlocked and uptodate; or null when
 * memory (or the memcg) is exhausted or the slot was freed meanwhile.
 * Context: may sleep (the allocation: alloc_pages_sleepable()).
 */
export function* read_swap_cache_async(entry: swp_entry_t, gfp: gfp_t, mm: mm_struct): Sleepable<page | null> {
  for (let tries = 0; tries < 4; tries++) {
    const cached = swap_cache_get_folio(entry);
    if (cached !== null) return cached;
    if (__swap_count(entry) === 0) return null;
    const f = yield* alloc_page_sleepable(gfp);
    if (f === null) return null;
    const err = swapcache_prepare(entry);
    if (err === -EEXIST) { put_page(f); continue; }
    if (err !== 0) { put_page(f); return null; }
    f.flags |= 1 << PG_locked;
    SetPageSwapBacked(f);
    if ((yield* mem_cgroup_swapin_charge_folio(f, mm, gfp, entry)) !== 0) {
      put_swap_folio(f, entry);
      folio_unlock(f);
      put_page(f);
      return null;
    }
    add_to_swap_cache(f, entry);
    folio_add_lru(f);
    swap_read_folio(f);
    folio_unlock(f);                   /* I/O completion unlocks the folio */
    return f;
  }
  return null;
}

/* should_try_to_free_swap() - drop the slot at swap-in when swap is tight or the write makes it useless. */
function should_try_to_free_swap(f: page, vm_flags: number, fault_flags: number): boolean {
  if (!PageSwapCache(f)) return false;
  if (mem_cgroup_swap_full(f) || (vm_flags & VM_LOCKED)) return true;
  return (fault_flags & FAULT_FLAG_WRITE) !== 0 && f._refcount === 2;
}

/* Map the locked swap-cache folio at vmf.address in place of the swap PTE. Caller holds the PTE lock. */
function map_swapped_folio(vmf: vm_fault, f: page, entry: swp_entry_t): void {
  const vma = vmf.vma, mm = vma.vm_mm;
  const exclusive = pte_swp_exclusive(vmf.orig_pte);
  swap_free(entry);
  if (should_try_to_free_swap(f, vma.vm_flags, vmf.flags)) folio_free_swap(f);
  inc_mm_counter(mm, MM_ANONPAGES);
  dec_mm_counter(mm, MM_SWAPENTS);
  let pte: pte_t = mk_pte(f, vma.vm_page_prot);
  /* as do_wp_page: a page nobody else can reach may be mapped writable right away */
  let rmap_exclusive = false;
  if (exclusive || f._refcount === 1) {
    if (vmf.flags & FAULT_FLAG_WRITE) {
      pte = maybe_mkwrite(pte_mkdirty(pte), vma);
      vmf.flags &= ~FAULT_FLAG_WRITE;
    }
    rmap_exclusive = true;
  }
  if (vmf.orig_pte & _PAGE_SWP_SOFT_DIRTY) pte = pte_set_flags(pte, _PAGE_SOFT_DIRTY);
  vmf.orig_pte = pte;
  if (!folio_test_anon(f)) {
    folio_add_new_anon_rmap(f, vma, vmf.address);
    if (!rmap_exclusive) ClearPageAnonExclusive(f);
  } else {
    folio_add_anon_rmap_pte(f, vma, vmf.address, rmap_exclusive);
  }
  set_pte_at(mm, vmf.address, vmf.pte, pte);
}

/**
 * doSwapPageSwapin() - the real-swap-entry half of do_swap_page()
 * (Linux keeps both halves in one function): find or read the folio,
 * lock it, check that the PTE still names the slot, then map it,
 * writable at once when the swap PTE said exclusive, and break COW
 * (do_wp_page) for a write to a shared one.
 * Context: mmap_lock held for read; may sleep (folio lock).
 * Return: 0 or VM_FAULT_MAJOR when handled (or raced: the access retries),
 * VM_FAULT_OOM when no folio could be had, VM_FAULT_SIGBUS for an entry
 * of no swap device (a corrupt PTE: print_bad_pte in Linux) or a folio
 * the PTE still names that is not uptodate (its read failed).
 */
export function* doSwapPageSwapin(vmf: vm_fault, entry: swp_entry_t): Sleepable<number> {
  const vma = vmf.vma, mm = vma.vm_mm;
  if (get_swap_device(entry) === null) return VM_FAULT_SIGBUS;
  const ptl = pte_lockptr(mm, vmf.pte);
  let ret = 0;
  let f = swap_cache_get_folio(entry);
  if (f === null) {
    f = yield* read_swap_cache_async(entry, GFP_HIGHUSER_MOVABLE, mm);
    if (f === null) return ptep_get(mm, vmf.pte) === vmf.orig_pte ? VM_FAULT_OOM : 0;
    ret = VM_FAULT_MAJOR;
    count_event('pgmajfault');
  } else {
    count_event('swap_cache_hit');
  }
  yield* folio_lock(f);
  if (!PageSwapCache(f) || f.private !== entry) {     /* reclaimed or freed while we slept: retry */
    folio_unlock(f);
    put_page(f);
    return ret;
  }
  spin_lock(ptl);
  if (ptep_get(mm, vmf.pte) !== vmf.orig_pte || !PageUptodate(f)) {
    const bad = ptep_get(mm, vmf.pte) === vmf.orig_pte ? VM_FAULT_SIGBUS : 0;     /* a failed read (raced: retry) */
    spin_unlock(ptl);
    folio_unlock(f);
    put_page(f);
    return ret | bad;
  }
  map_swapped_folio(vmf, f, entry);                   /* our reference becomes the PTE's */
  folio_unlock(f);
  trace_event('do_swap_page', { mm: mm.id, addr: vmf.address, pfn: f.pfn, entry, major: ret !== 0 });
  if (vmf.flags & FAULT_FLAG_WRITE) {
    ret |= yield* do_wp_page(vmf);                     /* drops the PTE lock */
    if (ret & VM_FAULT_ERROR) ret &= VM_FAULT_ERROR;
    return ret;
  }
  spin_unlock(ptl);
  return ret;
}

