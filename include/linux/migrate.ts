/*
 * include/linux/migrate.ts - device memory migration: struct migrate_vma
 * and the migrate_pfn encoding of its src[] and dst[] arrays.
 *
 * Models the device part of include/linux/migrate.h (Linux 6.x, with the
 * 2025 large-folio flags). The code is mm/migrate_device.ts; the long
 * explanation is the "Migration" section of Documentation/vm/hmm.txt.
 *
 * One src[] and one dst[] element per page of [start, end):
 *
 *     52                                          6   5   4   3   2   1   0
 *   +----------------------------------------------+---+---+---+---+---+---+
 *   |                     pfn                      | 0 | C | W | 0 | M | V |
 *   +----------------------------------------------+---+---+---+---+---+---+
 *     V  MIGRATE_PFN_VALID     the pfn field names a page
 *     M  MIGRATE_PFN_MIGRATE   src only: this entry is (still) migrating
 *     W  MIGRATE_PFN_WRITE     the mapping was / will be writable
 *     C  MIGRATE_PFN_COMPOUND  the page heads a large folio migrated as one
 *        unit (the following 2^order - 1 elements are then 0)
 *     bit 2 was MIGRATE_PFN_LOCKED until Linux 5.16; it stays unused.
 *
 * Elements are JS numbers. While pfn < 2^25 (128 GiB of 4 KiB pages; the
 * simulated machine stays far below) an element fits in 31 bits, so the
 * Linux idioms `migrate_pfn(pfn) | MIGRATE_PFN_MIGRATE` and
 * `src[i] & MIGRATE_PFN_MIGRATE` are exact; migrate_pfn() BUGs beyond.
 *
 * src[i] = MIGRATE_PFN_MIGRATE with no VALID means "no page here (a hole,
 * or the zero page): the driver may populate it"; src[i] = 0 means "do
 * not touch". A driver sets dst[i] = migrate_pfn(pfn of a locked page),
 * or leaves 0 to skip the entry.
 *
 * Lock order: mmap_lock (read) -> folio locks of the sources (trylock,
 * taken by migrate_vma_setup) -> folio locks of the destinations (taken by
 * the driver) -> PTE lock.
 */
import type { page, vm_area_struct } from './mm_types.js';
import { __pfn_to_section } from './mm_types.js';
import { pfn_to_page_new } from '../asm-generic/memory_model.js';
import { BUG } from '../asm-generic/bug.js';

export const MIGRATE_PFN_VALID = 1 << 0;
export const MIGRATE_PFN_MIGRATE = 1 << 1;
export const MIGRATE_PFN_WRITE = 1 << 3;
export const MIGRATE_PFN_COMPOUND = 1 << 4;
export const MIGRATE_PFN_SHIFT = 6;
const MIGRATE_PFN_BASE = 1 << MIGRATE_PFN_SHIFT;
const MIGRATE_PFN_MAX = 2 ** (31 - MIGRATE_PFN_SHIFT);

/* enum migrate_vma_direction: which source pages migrate_vma_setup() may select */
export const MIGRATE_VMA_SELECT_SYSTEM = 1 << 0;
export const MIGRATE_VMA_SELECT_DEVICE_PRIVATE = 1 << 1;
export const MIGRATE_VMA_SELECT_DEVICE_COHERENT = 1 << 2;
export const MIGRATE_VMA_SELECT_COMPOUND = 1 << 3;

/**
 * struct migrate_vma - one migration of a virtual range of one VMA.
 * The driver fills vma, start, end, src, dst, pgmap_owner, flags and
 * fault_page; migrate_vma_setup() fills src, cpages and npages.
 */
export interface migrate_vma {
  vma: vm_area_struct;
  src: Float64Array | number[];   /* migrate_pfn entries, (end - start) / PAGE_SIZE of them */
  dst: Float64Array | number[];   /* the driver's destinations, same size */
  cpages: number;                 /* entries collected and still migrating */
  npages: number;                 /* entries walked */
  start: number;                  /* page aligned, inside vma */
  end: number;                    /* page aligned, inside vma */
  pgmap_owner: unknown;           /* select device pages of this owner; tags the MIGRATE notifier */
  flags: number;                  /* MIGRATE_VMA_SELECT_* */
  fault_page: page | null;        /* the locked device page do_swap_page is faulting on, or null */
}

/** migrate_pfn() - the VALID element for pfn. */
export function migrate_pfn(pfn: number): number {
  if (!(pfn >= 0 && pfn < MIGRATE_PFN_MAX)) BUG(`migrate_pfn(${pfn}) does not fit in 31 bits`);
  return pfn * MIGRATE_PFN_BASE + MIGRATE_PFN_VALID;
}

/** migrate_pfn_flags() - the MIGRATE_PFN_* bits of an element. */
export function migrate_pfn_flags(x: number): number {
  return x & (MIGRATE_PFN_BASE - 1);
}

/** migrate_pfn_to_pfn() - the pfn field of an element (meaningful only if VALID). */
export function migrate_pfn_to_pfn(x: number): number {
  return Math.floor(x / MIGRATE_PFN_BASE);
}

/**
 * migrate_pfn_to_page() - the page of a VALID element, or null.
 *
 * The element's frame has struct pages (it was looked up to make the
 * element), so the handle comes straight from its section and bypasses
 * the handle cache: the migration loops ask for each frame once per pass
 * and drop the handle with the iteration, so a cache store would only
 * cost a write barrier and keep the handle alive across GCs
 * (mem_section.page_new(), include/linux/mm_types.ts).
 */
export function migrate_pfn_to_page(x: number): page | null {
  if (!(x & MIGRATE_PFN_VALID)) return null;
  return pfn_to_page_new(migrate_pfn_to_pfn(x));
}
