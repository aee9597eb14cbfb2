/*
 * include/linux/memremap.ts - ZONE_DEVICE memory: struct dev_pagemap.
 *
 * Models include/linux/memremap.h. A driver describes a range of device
 * memory with a dev_pagemap; memremap_pages() (mm/memremap.ts) creates a
 * struct page for every frame of it. Those pages are never on the LRU and
 * never handed out by the page allocator: the driver allocates them and
 * gets them back through ops->folio_free when the last reference drops.
 *
 *  MEMORY_DEVICE_PRIVATE: memory the CPU cannot access. CPU page tables
 *    map it with device-private swap entries (SWP_DEVICE_READ/WRITE with
 *    the device pfn); a CPU access faults and calls ops->migrate_to_ram.
 *  MEMORY_DEVICE_COHERENT: memory the CPU can access coherently (CXL,
 *    AMD APU). Mapped by ordinary present PTEs; migrated back to RAM only
 *    for long-term pins.
 */
import type { page, vm_fault } from './mm_types.js';
import type { Sleepable } from './sched.js';

export const MEMORY_DEVICE_PRIVATE = 1;
export const MEMORY_DEVICE_COHERENT = 2;
export const MEMORY_DEVICE_FS_DAX = 3;
export const MEMORY_DEVICE_GENERIC = 4;
export const MEMORY_DEVICE_PCI_P2PDMA = 5;
export type memory_type = number;

/** struct range - an inclusive physical address range. */
export interface range { start: number; end: number; }

/** struct dev_pagemap_ops - what the owning driver does for core mm. */
export interface dev_pagemap_ops {
  /**
   * folio_free() - the last reference to a device folio was dropped; the
   * driver puts it back on its free list. Context: any; must not sleep.
   */
  folio_free(f: page): void;
  /**
   * migrate_to_ram() - the CPU touched a device-private page (vmf.page,
   * locked and referenced by do_swap_page). Migrate at least that page
   * to system memory with migrate_vma_*(). Return 0, or VM_FAULT_SIGBUS /
   * VM_FAULT_OOM. Context: mmap_lock held for read; may sleep.
   */
  migrate_to_ram?(vmf: vm_fault): Sleepable<number>;
  /** folio_split() - a device THP folio is being split into small folios. */
  folio_split?(head: page, tail: page): void;
}

/** struct dev_pagemap - one ZONE_DEVICE memory range and its owner. */
export interface dev_pagemap {
  type: memory_type;
  range: range;                 /* physical address range, filled by memremap_pages() */
  nr_range: number;
  ops: dev_pagemap_ops;
  owner: unknown;               /* compared with hmm_range.dev_private_owner and migrate_vma.pgmap_owner */
  /* filled by memremap_pages(): first pfn and number of pages */
  start_pfn?: number;
  nr_pages?: number;
  /* references held by device pages in use (percpu_ref in Linux) */
  ref?: number;
  /* percpu_ref_tryget_live(&ref) would succeed: set by memremap_pages(), cleared when memunmap_pages() kills the ref */
  ref_live?: boolean;
  name?: string;
}

/** is_device_private_page() - the page is CPU-inaccessible device memory. */
export function is_device_private_page(p: page): boolean {
  const pgmap = p.pgmap;
  return pgmap !== null && pgmap.type === MEMORY_DEVICE_PRIVATE;
}

/** is_device_coherent_page() - the page is CPU-coherent device memory. */
export function is_device_coherent_page(p: page): boolean {
  const pgmap = p.pgmap;
  return pgmap !== null && pgmap.type === MEMORY_DEVICE_COHERENT;
}

/** is_zone_device_page() - the page belongs to a dev_pagemap. */
export function is_zone_device_page(p: page): boolean {
  return p.pgmap !== null;
}

export const folio_is_device_private = is_device_private_page;
export const folio_is_device_coherent = is_device_coherent_page;
export const folio_is_zone_device = is_zone_device_page;
