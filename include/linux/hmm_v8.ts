/*
 * include/linux/hmm_v8.ts - HMM as Jerome Glisse proposed it in 2015 (the v8
 * series, 36 patches): the types a driver and the core share.
 *
 * Follows, in one header, what the series spread over
 * include/linux/mmu_notifier.h (patches 01-04), include/linux/hmm.h
 * (05, 07, 08, 22) and include/linux/hmm_pt.h (06, 17, 18, 23). The
 * behaviour is in mm/hmm_v8/ (one module per patch group, in series order;
 * Documentation/vm/hmm.txt, part "HMM v8", walks them) and the mainline
 * design lives beside it in include/linux/hmm.ts and mm/hmm.ts.
 *
 * The design in five lines:
 *  - every CPU page-table invalidation carries an event (enum mmu_event) and
 *    is linked on a per-mm list of active ranges while it runs;
 *  - HMM keeps, per (device, mm) pair, a mirror page table (hmm_pt) that it
 *    fills on device faults and clears on invalidations; the driver reads it
 *    only inside its update() callback and programs its own MMU from it;
 *  - HMM never takes page references: safety comes from the fault /
 *    invalidate handshake (a device fault registers itself; an invalidation
 *    sets "backoff" on overlapping faults and waits for them to leave);
 *  - HMM may DMA-map pages on the driver's behalf (hmm_device.dev);
 *  - anonymous memory can migrate to device memory: the CPU PTE then holds a
 *    special SWP_HMM entry and only the mirror tables know where the data is.
 *
 * Lock order (outermost first):
 *     mmap_lock
 *       -> hmm.rwsem (mirror list; read side held across driver update())
 *         -> hmm_device.mutex (device's mirror list)
 *         -> hmm.lock (device-fault list, spinlock)
 *           -> mmu_notifier_mm.lock (active-range list, spinlock)
 *       -> page-table lock of the CPU table
 *         -> hmm_pt directory lock (mirror table; never held across a yield)
 * Driver locks taken in update() nest inside hmm.rwsem; a driver must not
 * call hmm_mirror_fault() with a lock its update() takes.
 */
import type { mm_struct, page, vm_area_struct } from './mm_types.js';
import type { mmu_notifier_range } from './mmu_notifier.js';
import type { Sleepable } from './sched.js';
import type { device } from './device.js';
import type { mutex } from './mutex_types.js';
import {
  HMM_PTE_VALID_DEV, HMM_PTE_VALID_DMA, HMM_PTE_VALID_PFN, HMM_PTE_SELECT, HMM_PTE_WRITE, HMM_PTE_DIRTY,
} from './gpt.js';

export {
  HMM_PTE_VALID_DEV, HMM_PTE_VALID_DMA, HMM_PTE_VALID_PFN, HMM_PTE_SELECT, HMM_PTE_WRITE, HMM_PTE_DIRTY,
  HMM_PTE_VALID_DEV_BIT, HMM_PTE_VALID_DMA_BIT, HMM_PTE_VALID_PFN_BIT, HMM_PTE_SELECT_BIT, HMM_PTE_WRITE_BIT,
  HMM_PTE_DIRTY_BIT, HMM_PTE_HW_SHIFT, HMM_PDE_VALID,
} from './gpt.js';

/* ---- patch 01: enum mmu_event, the reason of an invalidation ---- */

export const MMU_FORK = 0;          /* fork: COW write-protect of the parent */
export const MMU_HSPLIT = 1;        /* huge page split: same memory, new table shape */
export const MMU_ISDIRTY = 2;       /* soft-dirty clear (clear_refs) */
export const MMU_MIGRATE = 3;       /* pages replaced or freed: stop all access at start() */
export const MMU_MPROT = 4;         /* mprotect: read the new rights from the VMA */
export const MMU_MUNLOCK = 5;       /* munlock: nothing changes in the table */
export const MMU_MUNMAP = 6;        /* munmap / exit: the range goes away */
export const MMU_WRITE_BACK = 7;    /* writeback: stop writes, reads are fine */
export const MMU_WRITE_PROTECT = 8; /* write-protect (KSM) */
export type mmu_event = number;
export const mmu_event_names = [
  'MMU_FORK', 'MMU_HSPLIT', 'MMU_ISDIRTY', 'MMU_MIGRATE', 'MMU_MPROT', 'MMU_MUNLOCK', 'MMU_MUNMAP',
  'MMU_WRITE_BACK', 'MMU_WRITE_PROTECT',
] as const;

/**
 * struct mmu_notifier_ops_v8 - the 2015 callbacks (patches 01-03).
 *
 * The range passed is the core's struct mmu_notifier_range; its v8_event
 * field holds the enum mmu_event (patch 01) and, while the callbacks run,
 * the range is on the mm's active list (patch 02).
 *
 * @release: the mm is being torn down; after it returns the secondary MMU
 *   must not touch the mm. Context: may sleep.
 * @invalidate_page: one page of @mm at @addr changes; @page is the struct
 *   page being unmapped (patch 03) when the caller knows it, else null.
 *   Context: may sleep.
 * @invalidate_range_start: [range.start, range.end) is about to change;
 *   the secondary MMU must stop using it (for MMU_MIGRATE / MMU_MUNMAP) or
 *   stop writing (write-protect events) before returning. Context: may sleep.
 * @invalidate_range_end: the CPU change is done. Context: may sleep.
 * @invalidate_range: flush secondary TLBs for the range (called between
 *   start and end by the page-table code). Context: atomic, must not sleep.
 */
export interface mmu_notifier_ops_v8 {
  release?(mn: mmu_notifier_v8, mm: mm_struct): Sleepable;
  invalidate_page?(mn: mmu_notifier_v8, mm: mm_struct, addr: number, page: page | null, event: mmu_event): Sleepable;
  invalidate_range_start?(mn: mmu_notifier_v8, mm: mm_struct, range: mmu_notifier_range): Sleepable;
  invalidate_range_end?(mn: mmu_notifier_v8, mm: mm_struct, range: mmu_notifier_range): Sleepable;
  invalidate_range?(mn: mmu_notifier_v8, mm: mm_struct, start: number, end: number): void;
}

/** struct mmu_notifier (2015 flavour): one listener of an mm. */
export interface mmu_notifier_v8 {
  readonly ops: mmu_notifier_ops_v8;
  mm: mm_struct | null;
}

/* ---- patch 07: enum hmm_etype and struct hmm_event ---- */

export const HMM_NONE = 0;
export const HMM_FORK = 1;
export const HMM_ISDIRTY = 2;
export const HMM_MIGRATE = 3;
export const HMM_MUNMAP = 4;
export const HMM_DEVICE_RFAULT = 5;
export const HMM_DEVICE_WFAULT = 6;
export const HMM_WRITE_PROTECT = 7;
export const HMM_COPY_FROM_DEVICE = 8;
export const HMM_COPY_TO_DEVICE = 9;
export type hmm_etype = number;
export const hmm_etype_names = [
  'HMM_NONE', 'HMM_FORK', 'HMM_ISDIRTY', 'HMM_MIGRATE', 'HMM_MUNMAP', 'HMM_DEVICE_RFAULT',
  'HMM_DEVICE_WFAULT', 'HMM_WRITE_PROTECT', 'HMM_COPY_FROM_DEVICE', 'HMM_COPY_TO_DEVICE',
] as const;

/*
 * pte_mask values (hmm_event_init): the mirror update applies
 * new = old & pte_mask to the flag bits; a mask of 0 drops the entry.
 */
export const HMM_PTE_MASK_ALL = 0xfff;
export const HMM_PTE_MASK_NONE = 0;

/**
 * struct hmm_event - one operation on a range: a CPU-side invalidation as
 * HMM forwards it to drivers, or a device fault / migration a driver asks
 * for. The same object is on hmm.device_faults while a fault runs.
 * @start, @end: page-aligned range, end exclusive
 * @etype: enum hmm_etype
 * @pte_mask: flag mask the mirror update applies (see above)
 * @backoff: set by an overlapping invalidation; the fault must give up
 *   (-EAGAIN) before publishing anything. Protected by hmm.lock.
 */
export interface hmm_event {
  start: number;
  end: number;
  etype: hmm_etype;
  pte_mask: number;
  backoff: boolean;
  owner?: unknown;        /* model only: the thread that registered it as a device fault (hmm_device_fault_start) */
}

/* ---- patches 05, 07, 22: the device, its ops, the mirror ---- */

/**
 * struct hmm_device_ops - what HMM asks of a driver. A frozen object.
 *
 * @release: the mirror is dead: the mm is going away (or, with the v8
 *   lifetime rules, its last reference was dropped); the device must stop
 *   using the address space. Context: may sleep; no HMM lock held.
 * @free: (v9) the last reference is gone; the driver may free the memory
 *   holding its mirror. Never called with the v8 lifetime rules, where the
 *   driver frees after hmm_mirror_unregister() returns (the bug Mark
 *   Hairgrove found, see mm/hmm_v8/hmm.ts).
 * @update: bring the device's page table in line with @event: for
 *   invalidations drop or write-protect [start, end) and report dirty pages
 *   (hmm_pte_set_dirty on the mirror entries); for device faults program
 *   the entries HMM just SELECTed. Everything must be done when it returns.
 *   The mirror table may be read only inside this callback. Return 0,
 *   -ENOMEM or -EIO; any error kills the mirror.
 *   Context: hmm.rwsem held for read; may sleep.
 * @copy_from_device: migrate back: for each i with dst[i] SELECTed and a
 *   VALID_DEV mirror entry, copy the device page into the system page of
 *   dst[i]; set DIRTY if the device wrote it, clear the valid bit of dst[i]
 *   on failure. For HMM_COPY_FROM_DEVICE also repoint the device at dst[i]
 *   and free the device page; for HMM_FORK only copy. Return 0 or -errno
 *   (kills the mirror). Context: may sleep.
 * @copy_to_device: migrate to the device: for each SELECTed pfn/DMA mirror
 *   entry in [start, end), allocate device memory, copy, and set dst[i] =
 *   hmm_pte_from_dev_addr(); leave dst[i] 0 for pages it could not take.
 *   Return 0, or -errno to abort the whole migration. Context: may sleep.
 */
export interface hmm_device_ops {
  release(mirror: hmm_mirror): Sleepable;
  free?(mirror: hmm_mirror): void;
  update(mirror: hmm_mirror, event: hmm_event): Sleepable<number>;
  copy_from_device(mirror: hmm_mirror, event: hmm_event, dst: Float64Array, start: number, end: number): Sleepable<number>;
  copy_to_device(mirror: hmm_mirror, event: hmm_event, vma: vm_area_struct, dst: Float64Array,
                 start: number, end: number): Sleepable<number>;
}

/**
 * struct hmm_device - one device that mirrors address spaces.
 * @name: for traces
 * @dev: the DMA device; null means HMM stores raw pfns, otherwise it
 *   DMA-maps pages and stores bus addresses (VALID_DMA entries)
 * @ops: the driver's callbacks
 * @mirrors: the device's mirrors; protected by @mutex
 */
export interface hmm_device {
  readonly name: string;
  dev: device | null;
  readonly ops: hmm_device_ops;
  mirrors: hmm_mirror[];
  readonly mutex: mutex;
}

/**
 * struct hmm_mirror - one device mirroring one mm. The driver embeds it
 * (here: points to it) and sets @device before hmm_mirror_register().
 * @device: the device
 * @hmm: the struct hmm of the mm, null once unregistered
 * @kref: references (see the lifetime rules in mm/hmm_v8/hmm.ts)
 * @pt: the mirror page table (mm/hmm_v8/hmm_pt.ts); read by the driver
 *   only inside update()
 * @dead: set once killed or released; faults return -ENODEV
 * @driver_data: the driver's own structure (container_of)
 */
export interface hmm_mirror {
  device: hmm_device;
  hmm: unknown;
  kref: number;
  pt: unknown;
  dead: boolean;
  driver_data: unknown;
}

/* ---- patches 06, 13, 17, 18: hmm_pt entry helpers ---- */

/*
 * A mirror entry is a number below 2^53 (include/linux/gpt.ts draws the
 * layout): flags in bits 0..11, the pfn / DMA / device address from bit
 * PAGE_SHIFT. Flag helpers work on the value (the v8 helpers took a
 * pointer); the atomic dirty-bit update a driver makes without the
 * directory lock is hmm_pt_set_dirty() in mm/hmm_v8/hmm_pt.ts.
 */
const PTE_PAGE = 4096;
const PTE_FLAGS = PTE_PAGE - 1;

export function hmm_pte_test_valid_dev(e: number): boolean { return (e & HMM_PTE_VALID_DEV) !== 0; }
export function hmm_pte_test_valid_dma(e: number): boolean { return (e & HMM_PTE_VALID_DMA) !== 0; }
export function hmm_pte_test_valid_pfn(e: number): boolean { return (e & HMM_PTE_VALID_PFN) !== 0; }
export function hmm_pte_test_select(e: number): boolean { return (e & HMM_PTE_SELECT) !== 0; }
export function hmm_pte_test_write(e: number): boolean { return (e & HMM_PTE_WRITE) !== 0; }
export function hmm_pte_test_dirty(e: number): boolean { return (e & HMM_PTE_DIRTY) !== 0; }
/** hmm_pte_valid() - the entry maps something (device, DMA or pfn). */
export function hmm_pte_valid(e: number): boolean {
  return (e & (HMM_PTE_VALID_DEV | HMM_PTE_VALID_DMA | HMM_PTE_VALID_PFN)) !== 0;
}
/** hmm_pte_set() - @e with flag bits @bits set. */
export function hmm_pte_set(e: number, bits: number): number { return e + (bits & ~e & PTE_FLAGS); }
/** hmm_pte_clear() - @e with flag bits @bits cleared. */
export function hmm_pte_clear(e: number, bits: number): number { return e - (e & bits & PTE_FLAGS); }
export function hmm_pte_set_select(e: number): number { return hmm_pte_set(e, HMM_PTE_SELECT); }
export function hmm_pte_clear_select(e: number): number { return hmm_pte_clear(e, HMM_PTE_SELECT); }
export function hmm_pte_set_write(e: number): number { return hmm_pte_set(e, HMM_PTE_WRITE); }
export function hmm_pte_clear_write(e: number): number { return hmm_pte_clear(e, HMM_PTE_WRITE); }
export function hmm_pte_set_dirty(e: number): number { return hmm_pte_set(e, HMM_PTE_DIRTY); }
export function hmm_pte_clear_dirty(e: number): number { return hmm_pte_clear(e, HMM_PTE_DIRTY); }
/** hmm_pte_mask() - apply an hmm_event pte_mask: 0 drops the entry, else keeps the flags in @mask. */
export function hmm_pte_mask(e: number, mask: number): number {
  if (mask === HMM_PTE_MASK_NONE) return 0;
  return e - (e & ~mask & PTE_FLAGS);
}

/** hmm_pte_from_pfn() - a pfn entry (VALID_PFN). */
export function hmm_pte_from_pfn(pfn: number): number { return pfn * PTE_PAGE + HMM_PTE_VALID_PFN; }
/** hmm_pte_from_dma_addr() - a DMA entry for page-aligned bus address @dma (VALID_DMA). */
export function hmm_pte_from_dma_addr(dma: number): number { return dma - (dma % PTE_PAGE) + HMM_PTE_VALID_DMA; }
/** hmm_pte_from_dev_addr() - a device-memory entry for page-aligned device address @addr (VALID_DEV). */
export function hmm_pte_from_dev_addr(addr: number): number { return addr - (addr % PTE_PAGE) + HMM_PTE_VALID_DEV; }
/** hmm_pte_pfn() - the pfn of a VALID_PFN entry. */
export function hmm_pte_pfn(e: number): number { return Math.floor(e / PTE_PAGE); }
/** hmm_pte_dma_addr() - the bus address of a VALID_DMA entry. */
export function hmm_pte_dma_addr(e: number): number { return e - (e % PTE_PAGE); }
/** hmm_pte_dev_addr() - the device address of a VALID_DEV entry. */
export function hmm_pte_dev_addr(e: number): number { return e - (e % PTE_PAGE); }
