/*
 * mm/swapfile.ts - swap devices: slots, swap counts, and the slot I/O.
 *
 * Models mm/swapfile.c (swapon, get_swap_pages/folio_alloc_swap,
 * swap_duplicate, swapcache_prepare, swap_free, put_swap_folio,
 * free_swap_and_cache, folio_free_swap, the swap_map counting) and the
 * I/O of mm/page_io.c (swap_writepage, swap_read_folio). The encoding of
 * swap_map and the life of a slot are drawn in include/linux/swap.ts.
 *
 * Simplified:
 *  - a device is an in-memory array of slots (a RAM disk with synchronous
 *    I/O, like zram without compression); a write or read costs a 4 KiB
 *    memcpy of simulated time;
 *  - slots are found by a next-fit scan instead of Linux's per-CPU
 *    clusters; devices are used in priority order;
 *  - a freed slot is filled with POISON_FREE, so that a read of a slot
 *    nobody owns shows up as corrupt data in the tests;
 *  - no swapoff (try_to_unuse); swapon() happens at boot (boot param
 *    swap_bytes) or from a test.
 */
import type { page } from '../include/linux/mm_types.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import {
  swap_info_struct, SWAP_HAS_CACHE, COUNT_CONTINUED, SWAP_MAP_MAX, SWAP_COUNT_MASK, SWP_WRITEOK,
} from '../include/linux/swap.js';
import { swp_entry, swp_type, swp_offset, MAX_SWAPFILES, type swp_entry_t } from '../include/linux/swapops.js';
import {
  PageLocked, PageWriteback, PageSwapCache, SetPageDirty, SetPageUptodate, ClearPageDirty,
} from '../include/linux/page-flags.js';
import { EINVAL, EPERM, EEXIST, ENOENT } from '../include/uapi/asm-generic/errno.js';
import { BUG } from '../include/asm-generic/bug.js';
import { charge } from '../lib/sim/clock.js';
import { copy_cost_ns, SYSTEM_MEMCPY_BW } from '../lib/sim/costs.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { kmap_local_page, put_page } from './page_alloc.js';
import { folio_trylock, folio_unlock } from './filemap.js';
import { delete_from_swap_cache, swap_cache_get_folio } from './swap_state.js';
import { mem_cgroup_try_charge_swap, mem_cgroup_uncharge_swap } from './memcontrol.js';

/* what a freed slot is filled with (include/linux/poison.h) */
export const POISON_FREE = 0x6b;

interface swap_state {
  swap_info: (swap_info_struct | null)[];   /* by type */
  nr_swap_pages: number;                    /* free slots on all devices */
  total_swap_pages: number;                 /* usable slots on all devices */
}
let ss: swap_state = { swap_info: [], nr_swap_pages: 0, total_swap_pages: 0 };

/**
 * swapon() - add a swap device of nr_pages pages (slot 0 is its header).
 * @prio: higher is used first; devices of one priority in type order.
 * Return: the swap type, -EINVAL for a device of fewer than 2 pages,
 * -EPERM when MAX_SWAPFILES devices exist (as sys_swapon).
 */
export function swapon(nr_pages: number, prio = -1): number {
  if (!Number.isInteger(nr_pages) || nr_pages < 2) return -EINVAL;
  const type = ss.swap_info.findIndex((s) => s === null);
  const t = type >= 0 ? type : ss.swap_info.length;
  if (t >= MAX_SWAPFILES) return -EPERM;
  const si = new swap_info_struct(t, nr_pages, prio, PAGE_SIZE);
  ss.swap_info[t] = si;
  ss.nr_swap_pages += si.pages;
  ss.total_swap_pages += si.pages;
  trace_event('swapon', { type: t, pages: si.pages, prio });
  return t;
}

/** total_swap_pages() - usable slots of every device. */
export function total_swap_pages(): number { return ss.total_swap_pages; }
/** get_nr_swap_pages() - free slots of every device. */
export function get_nr_swap_pages(): number { return ss.nr_swap_pages; }
/** swap_devices() - the configured devices, by type. */
export function swap_devices(): swap_info_struct[] {
  return ss.swap_info.filter((s): s is swap_info_struct => s !== null);
}
/** swap_type_to_swap_info() - the device of a swap type, or null (for tests and /proc). */
export function swap_type_to_swap_info(type: number): swap_info_struct | null { return ss.swap_info[type] ?? null; }

/**
 * vm_swap_full() - more than half the swap is in use: swap-in then frees
 * a slot as soon as its folio is mapped again (should_try_to_free_swap).
 */
export function vm_swap_full(): boolean {
  return ss.nr_swap_pages * 2 < ss.total_swap_pages;
}

/**
 * get_swap_device() - the device an entry names, or null for an entry of
 * no device or an offset past its end ("Bad swap file entry").
 */
export function get_swap_device(entry: swp_entry_t): swap_info_struct | null {
  const si = ss.swap_info[swp_type(entry)] ?? null;
  if (si === null) return null;
  const off = swp_offset(entry);
  return off > 0 && off < si.max ? si : null;
}

function si_of(entry: swp_entry_t): swap_info_struct {
  const si = get_swap_device(entry);
  if (si === null) BUG(`bad swap entry 0x${entry.toString(16)}`);
  return si;
}

/* The count of a slot without SWAP_HAS_CACHE, continuation included. */
function slot_count(si: swap_info_struct, off: number): number {
  return (si.swap_map[off] & SWAP_COUNT_MASK) + (si.cont.get(off) ?? 0);
}

/** __swap_count() - how many PTEs (and shmem entries) name this slot. */
export function __swap_count(entry: swp_entry_t): number {
  const si = get_swap_device(entry);
  return si === null ? 0 : slot_count(si, swp_offset(entry));
}
export const swp_swapcount = __swap_count;

/** folio_swapped() - does any page table still name the folio's slot? */
export function folio_swapped(f: page): boolean {
  return PageSwapCache(f) && __swap_count(f.private) > 0;
}

/* Take one free slot of si with SWAP_HAS_CACHE set (scan_swap_map_slots). */
function scan_swap_map_slots(si: swap_info_struct): number {
  if (!(si.flags & SWP_WRITEOK) || si.inuse_pages === si.pages) return 0;
  for (let n = 0, off = si.cluster_next; n < si.max; n++, off++) {
    if (off >= si.max) off = 1;
    if (si.swap_map[off] !== 0) continue;
    si.swap_map[off] = SWAP_HAS_CACHE;
    si.inuse_pages++;
    ss.nr_swap_pages--;
    si.cluster_next = off + 1;
    return off;
  }
  BUG(`swap type ${si.type}: inuse_pages ${si.inuse_pages} but no free slot`);
}

/**
 * folio_alloc_swap() - give a folio a slot on the highest-priority device
 * with room, charged to the folio's memcg (memory.swap).
 * Return: the entry with SWAP_HAS_CACHE set, or 0 when swap is full or the
 * memcg's swap limit is reached.
 * Context: folio locked.
 */
export function folio_alloc_swap(f: page): swp_entry_t {
  if (f.order > 0) return 0;                       /* large folios are split before swap-out */
  const devs = swap_devices().sort((a, b) => b.prio - a.prio || a.type - b.type);
  for (const si of devs) {
    const off = scan_swap_map_slots(si);
    if (off === 0) continue;
    const entry = swp_entry(si.type, off);
    if (mem_cgroup_try_charge_swap(f, entry) !== 0) {
      put_swap_folio(f, entry);
      return 0;
    }
    return entry;
  }
  count_event('swap_alloc_fail');
  return 0;
}

/* The slot is unused: give it back (swap_entry_range_free). */
function swap_entry_free(si: swap_info_struct, off: number): void {
  si.swap_map[off] = 0;
  si.inuse_pages--;
  ss.nr_swap_pages++;
  mem_cgroup_uncharge_swap(swp_entry(si.type, off));
  si.data.fill(POISON_FREE, off * PAGE_SIZE, (off + 1) * PAGE_SIZE);
  count_event('swap_slot_free');
}

/*
 * __swap_entry_free() - drop one count (usage 1) or the cache bit
 * (usage SWAP_HAS_CACHE); free the slot when nothing is left.
 * Return: what remains in swap_map (0 once freed).
 */
function __swap_entry_free(si: swap_info_struct, off: number, usage: number): number {
  let map = si.swap_map[off];
  if (usage === SWAP_HAS_CACHE) {
    if (!(map & SWAP_HAS_CACHE)) BUG(`put_swap_folio: slot ${si.type}:${off} has no cache`);
    map &= ~SWAP_HAS_CACHE;
  } else {
    const cont = si.cont.get(off) ?? 0;
    if (cont > 0) {
      if (cont === 1) { si.cont.delete(off); map &= ~COUNT_CONTINUED; } else si.cont.set(off, cont - 1);
    } else {
      if ((map & SWAP_COUNT_MASK) === 0) BUG(`swap_free: slot ${si.type}:${off} count underflow`);
      map--;
    }
  }
  si.swap_map[off] = map;
  if (map === 0) swap_entry_free(si, off);
  return map;
}

/**
 * swap_duplicate() - one more page table names the slot (fork copying a
 * swap PTE, try_to_unmap installing one).
 * Return: 0; -ENOENT for a slot in no use; -EINVAL for a bad entry.
 */
export function swap_duplicate(entry: swp_entry_t): number {
  const si = get_swap_device(entry);
  if (si === null) return -EINVAL;
  const off = swp_offset(entry);
  const map = si.swap_map[off];
  if (map === 0) return -ENOENT;
  if ((map & SWAP_COUNT_MASK) < SWAP_MAP_MAX) si.swap_map[off] = map + 1;
  else { si.cont.set(off, (si.cont.get(off) ?? 0) + 1); si.swap_map[off] = map | COUNT_CONTINUED; }
  return 0;
}

/**
 * swapcache_prepare() - claim the slot's cache bit before adding a folio
 * read from it to the swap cache.
 * Return: 0; -EEXIST when a folio is already cached for it; -ENOENT when
 * the slot has no user any more (the PTE changed under us).
 */
export function swapcache_prepare(entry: swp_entry_t): number {
  const si = get_swap_device(entry);
  if (si === null) return -EINVAL;
  const off = swp_offset(entry);
  const map = si.swap_map[off];
  if (map & SWAP_HAS_CACHE) return -EEXIST;
  if (slot_count(si, off) === 0) return -ENOENT;
  si.swap_map[off] = map | SWAP_HAS_CACHE;
  return 0;
}

/** swap_free() - a page table stopped naming the slot. */
export function swap_free(entry: swp_entry_t): void {
  __swap_entry_free(si_of(entry), swp_offset(entry), 1);
}

/** put_swap_folio() - the folio for this slot left the swap cache (or never entered it). */
export function put_swap_folio(_f: page, entry: swp_entry_t): void {
  __swap_entry_free(si_of(entry), swp_offset(entry), SWAP_HAS_CACHE);
}

/**
 * folio_free_swap() - drop the folio's slot when no page table names it
 * any more: the folio leaves the swap cache and becomes dirty (memory is
 * now the only copy).
 * Context: folio locked. Return: true if the slot was freed.
 */
export function folio_free_swap(f: page): boolean {
  if (!PageLocked(f)) BUG(`folio_free_swap: folio pfn ${f.pfn} not locked`);
  if (!PageSwapCache(f) || PageWriteback(f) || folio_swapped(f)) return false;
  delete_from_swap_cache(f);
  SetPageDirty(f);
  return true;
}

/*
 * __try_to_reclaim_swap() - the last page table naming a slot went away:
 * if the cached folio is mapped nowhere, drop it from the swap cache too.
 */
function __try_to_reclaim_swap(entry: swp_entry_t): void {
  const f = swap_cache_get_folio(entry);
  if (f === null) return;
  if (folio_trylock(f)) {
    if (f._mapcount < 0) folio_free_swap(f);
    folio_unlock(f);
  }
  put_page(f);
}

/**
 * free_swap_and_cache() - a swap PTE is zapped (munmap, exit,
 * MADV_FREE, MADV_DONTNEED): drop its count, and the cached folio too if
 * nothing else uses it (zap_pte_range()).
 */
export function free_swap_and_cache(entry: swp_entry_t): void {
  const si = get_swap_device(entry);
  if (si === null) return;
  const left = __swap_entry_free(si, swp_offset(entry), 1);
  if (left === SWAP_HAS_CACHE) __try_to_reclaim_swap(entry);
}

/**
 * free_swap_cache() - a present PTE of a swap-cache folio was zapped: if
 * the folio is now mapped nowhere and no PTE names its slot, free both
 * (free_pages_and_swap_cache).
 */
export function free_swap_cache(f: page): void {
  const h = f.compound_head;
  if (PageSwapCache(h) && h._mapcount < 0 && folio_trylock(h)) {
    folio_free_swap(h);
    folio_unlock(h);
  }
}

/**
 * swap_writepage() - write the folio to its slot (pageout of a swap-cache
 * folio). Synchronous: writeback starts and ends here.
 * Context: folio locked, in the swap cache, PG_dirty already cleared by
 * the caller (folio_clear_dirty_for_io).
 */
export function swap_writepage(f: page): void {
  const entry = f.private;
  const si = si_of(entry);
  const off = swp_offset(entry);
  if (!PageSwapCache(f)) BUG(`swap_writepage: pfn ${f.pfn} not in the swap cache`);
  si.data.set(kmap_local_page(f), off * PAGE_SIZE);
  charge(copy_cost_ns(PAGE_SIZE, SYSTEM_MEMCPY_BW));
  count_event('pswpout');
  trace_event('swap_writepage', { pfn: f.pfn, type: si.type, offset: off });
}

/**
 * swap_read_folio() - read the folio's slot into it and mark it uptodate.
 * Context: folio locked, in the swap cache.
 */
export function swap_read_folio(f: page): void {
  const entry = f.private;
  const si = si_of(entry);
  const off = swp_offset(entry);
  kmap_local_page(f).set(si.data.subarray(off * PAGE_SIZE, (off + 1) * PAGE_SIZE));
  charge(copy_cost_ns(PAGE_SIZE, SYSTEM_MEMCPY_BW));
  SetPageUptodate(f);
  ClearPageDirty(f);
  count_event('pswpin');
  trace_event('swap_read_folio', { pfn: f.pfn, type: si.type, offset: off });
}

/** swap_slot_bytes() - the bytes a slot holds (tests compare them with the page). */
export function swap_slot_bytes(entry: swp_entry_t): Uint8Array {
  const si = si_of(entry);
  const off = swp_offset(entry);
  return si.data.subarray(off * PAGE_SIZE, (off + 1) * PAGE_SIZE);
}

/** swapMapOf() - the raw swap_map byte of an entry (tests). */
export function swapMapOf(entry: swp_entry_t): number {
  return si_of(entry).swap_map[swp_offset(entry)];
}

/** swapfile_init() - boot: no swap device. Context: start_kernel(), which then swapon()s the boot swap. */
export function swapfile_init(): void {
  ss = { swap_info: [], nr_swap_pages: 0, total_swap_pages: 0 };
}
