/*
 * include/linux/hmm.ts - mainline HMM: struct hmm_range and the hmm_pfns
 * encoding that hmm_range_fault() (mm/hmm.ts) reads and writes.
 *
 * Models include/linux/hmm.h (Linux 5.7 and later: the single-argument
 * hmm_range_fault() with fixed HMM_PFN_* bits). The long explanation is
 * the "hmm_range_fault" section of Documentation/vm/hmm.txt.
 *
 * One hmm_pfns[] element per page of [start, end). Linux packs the pfn in
 * the low bits of an unsigned long and the flags in its top bits. A JS
 * number is exact only below 2^53, so here the flags sit just above a
 * 40-bit pfn field (the same 40 bits as the pfn of a CPU PTE, see
 * include/linux/pgtable_types.ts), keeping Linux's order from the top
 * down:
 *
 *     52  51  50  49  48  47  46      42 41  40 39                         0
 *   +---+---+---+---+---+---+----------+------+----------------------------+
 *   | V | W | E | D | P | B |  order   |  0 0 |            pfn             |
 *   +---+---+---+---+---+---+----------+------+----------------------------+
 *   |<------------- flag word (13 bits) ----->|
 *    12  11  10   9   8   7   6 ...  2  1  0    <- bit in the flag word
 *
 *   V  HMM_PFN_VALID       out: pfn is valid, at least readable by the device
 *                          in:  HMM_PFN_REQ_FAULT, the page must become valid
 *   W  HMM_PFN_WRITE       out: the CPU mapping is writable (needs V)
 *                          in:  HMM_PFN_REQ_WRITE, the page must become writable
 *   E  HMM_PFN_ERROR       out: the page cannot be used (no VMA, VM_IO/VM_PFNMAP,
 *                          no read permission, special entry without struct page)
 *   D  HMM_PFN_DMA_MAPPED  sticky in -> out: the driver's DMA state (hmm_dma_map_*)
 *   P  HMM_PFN_P2PDMA      sticky: peer-to-peer DMA page
 *   B  HMM_PFN_P2PDMA_BUS  sticky: mapped by bus address
 *   order  5 bits: log2 of the CPU mapping size in pages (0, 9 for a PMD,
 *          18 for a PUD), read with hmm_pfn_to_map_order()
 *
 * An element is built with hmm_pfn_make(pfn, flags) and taken apart with
 * hmm_pfn_flags() (the 13-bit flag word, to test with the HMM_PFN_*
 * constants below, which are flag-word bits, not element bits) and
 * hmm_pfn_to_pfn(). A zero element means "not present, may be faulted"
 * on output and "just report" on input.
 *
 * default_flags and pfn_flags_mask are flag words too. The request for
 * page i is
 *
 *     (hmm_pfn_flags(hmm_pfns[i]) & pfn_flags_mask) | default_flags
 *
 * so default_flags = HMM_PFN_REQ_FAULT with mask 0 prefaults the whole
 * range, and mask = HMM_PFN_REQ_WRITE lets chosen entries ask for write.
 *
 * Lock order: the caller holds mmap_lock for read across
 * hmm_range_fault(); the driver's own lock (the one its
 * mmu_interval_notifier_ops.invalidate takes) is taken only after
 * hmm_range_fault() returned, to check mmu_interval_read_retry().
 */
import type { mmu_interval_notifier } from './mmu_notifier.js';
import type { page } from './mm_types.js';
import { pfn_to_page } from '../asm-generic/memory_model.js';

/* where the flag word starts in an element: above the 40-bit pfn field */
export const HMM_PFN_FLAGS_SHIFT = 40;
const HMM_PFN_FLAGS_BASE = 2 ** HMM_PFN_FLAGS_SHIFT;
const HMM_PFN_FLAG_BITS = 13;

/* enum hmm_pfn_flags, as bits of the flag word */
export const HMM_PFN_VALID = 1 << (HMM_PFN_FLAG_BITS - 1);
export const HMM_PFN_WRITE = 1 << (HMM_PFN_FLAG_BITS - 2);
export const HMM_PFN_ERROR = 1 << (HMM_PFN_FLAG_BITS - 3);
export const HMM_PFN_DMA_MAPPED = 1 << (HMM_PFN_FLAG_BITS - 4);
export const HMM_PFN_P2PDMA = 1 << (HMM_PFN_FLAG_BITS - 5);
export const HMM_PFN_P2PDMA_BUS = 1 << (HMM_PFN_FLAG_BITS - 6);
/* the order field: 5 bits from bit 2 of the flag word */
export const HMM_PFN_ORDER_SHIFT = HMM_PFN_FLAG_BITS - 11;
export const HMM_PFN_ORDER_MASK = 0x1f << HMM_PFN_ORDER_SHIFT;
/* sticky flags: carried from input to output */
export const HMM_PFN_INOUT_FLAGS = HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS;
/* input flags */
export const HMM_PFN_REQ_FAULT = HMM_PFN_VALID;
export const HMM_PFN_REQ_WRITE = HMM_PFN_WRITE;

/** HMM_RANGE_DEFAULT_TIMEOUT - the driver's retry budget, in ms (1000, as Linux). */
export const HMM_RANGE_DEFAULT_TIMEOUT = 1000;
/* the same budget in simulated ns (lib/sim/costs.ts cites it with the other timings) */
export const HMM_RANGE_DEFAULT_TIMEOUT_NS = HMM_RANGE_DEFAULT_TIMEOUT * 1_000_000;

/**
 * struct hmm_range - one call of hmm_range_fault().
 *
 * The driver fills everything but the outputs in hmm_pfns; the range must
 * be page aligned and inside the notifier's interval.
 */
export interface hmm_range {
  notifier: mmu_interval_notifier;    /* the driver's subscription; gives the mm */
  notifier_seq: number;               /* from mmu_interval_read_begin() */
  start: number;                      /* first address, page aligned */
  end: number;                        /* one past the last address, page aligned */
  hmm_pfns: Float64Array | number[];  /* (end - start) / PAGE_SIZE elements: requests in, results out */
  default_flags: number;              /* flag word OR-ed into every request */
  pfn_flags_mask: number;             /* flag word: which per-element request bits count */
  dev_private_owner: unknown;         /* device-private pages of this owner are reported, not faulted */
}

/** hmm_pfn_make() - build an element from a pfn and a flag word. */
export function hmm_pfn_make(pfn: number, flags: number): number {
  return flags * HMM_PFN_FLAGS_BASE + pfn;
}

/** hmm_pfn_flags() - the flag word of an element (test it with HMM_PFN_*). */
export function hmm_pfn_flags(x: number): number {
  return Math.floor(x / HMM_PFN_FLAGS_BASE);
}

/** hmm_pfn_to_pfn() - the pfn field of an element. */
export function hmm_pfn_to_pfn(x: number): number {
  return x % HMM_PFN_FLAGS_BASE;
}

/**
 * hmm_pfn_to_page() - the struct page of a VALID element. Only call it on
 * elements with HMM_PFN_VALID set (the pfn is meaningless otherwise).
 */
export function hmm_pfn_to_page(x: number): page {
  return pfn_to_page(hmm_pfn_to_pfn(x));
}

/** hmm_pfn_to_phys() - the physical address of a VALID element. */
export function hmm_pfn_to_phys(x: number): number {
  return hmm_pfn_to_pfn(x) * 4096;
}

/**
 * hmm_pfn_to_map_order() - log2 of the number of pages the CPU maps with
 * one entry at this address: 0 for a PTE, HPAGE_PMD_ORDER (9) for a PMD,
 * 18 for a PUD. The device may map that much at once, provided the whole
 * block lies inside its range.
 */
export function hmm_pfn_to_map_order(x: number): number {
  return (hmm_pfn_flags(x) & HMM_PFN_ORDER_MASK) >> HMM_PFN_ORDER_SHIFT;
}

/** hmm_pfn_flags_order() - the flag-word bits that encode a map order. */
export function hmm_pfn_flags_order(order: number): number {
  return (order << HMM_PFN_ORDER_SHIFT) & HMM_PFN_ORDER_MASK;
}
