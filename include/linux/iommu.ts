/*
 * include/linux/iommu.ts - Shared Virtual Addressing (SVA): a device bound
 * to a process by a PASID uses the process's own CPU page table.
 *
 * Models the SVA part of include/linux/iommu.h as of Linux 6.8-6.9
 * (drivers/iommu/iommu-sva.c, io-pgfault.c, and the SMMUv3 SVA glue
 * arm-smmu-v3-sva.c / Intel's svm.c). This is the design Linus argued for
 * in 2014: the device does not keep a mirror; the IOMMU walks the CPU page
 * table on the device's behalf and the device caches what it learnt in its
 * ATC (Address Translation Cache), a TLB kept coherent like the CPU's:
 *
 *   device access   ATC hit ------------------------------> memory
 *        |          ATC miss: ATS Translation Request
 *        v             IOMMU walks mm->pgd (first stage = the CPU table),
 *                      sets ACCESSED (and DIRTY for a write) like the CPU MMU
 *                      ok  -> completion (pfn, R, W) -> ATC fill -> memory
 *                      no  -> device sends a PRI Page Request (PASID, addr, perm)
 *   iopf work       iommu_sva_handle_mm(): mmap_read_lock, vma_lookup,
 *                   handle_mm_fault(FAULT_FLAG_REMOTE | WRITE)
 *                   -> Page Response SUCCESS (device retries) or INVALID
 *   CPU changes a PTE, flushes its TLB -> flush_tlb_range()
 *                   -> mmu_notifier_arch_invalidate_secondary_tlbs()
 *                   -> IOMMU sends ATC Invalidate (PASID, range) -> done,
 *                      atomically, before the old page can be freed
 *
 * What it buys: one table, no second copy to keep in sync, no sequence
 * count, no window in which device and CPU disagree. What it cannot do:
 * the table holds CPU PTEs only, so it cannot point at memory the CPU
 * cannot map (device-private VRAM): no migration; no device-only PTE bits.
 *
 * Lock order: iommu_sva_lock (bind/unbind) -> mmap_lock (bind registers the
 * notifier) ; the iopf worker takes mmap_lock for read ; the ATC
 * invalidation runs in atomic context (page-table lock, preemption off)
 * and takes no lock that sleeps.
 *
 * Simplified: one IOMMU, no domains or groups as objects (a bond is the
 * domain); every page request is its own group (LAST_PAGE set); no stall
 * model (SMMU stall vs PRI): PRI only.
 */
import type { mm_struct } from './mm_types.js';
import type { mmu_notifier } from './mmu_notifier.js';

/* PASIDs are 20 bits (PCIe); 0 is reserved (IOMMU_NO_PASID) */
export const IOMMU_NO_PASID = 0;
export const IOMMU_MAX_PASID_BITS = 20;

/* struct iommu_fault_page_request.flags */
export const IOMMU_FAULT_PAGE_REQUEST_PASID_VALID = 1 << 0;
export const IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE = 1 << 1;
/* struct iommu_fault_page_request.perm */
export const IOMMU_FAULT_PERM_READ = 1 << 0;
export const IOMMU_FAULT_PERM_WRITE = 1 << 1;
export const IOMMU_FAULT_PERM_EXEC = 1 << 2;
export const IOMMU_FAULT_PERM_PRIV = 1 << 3;

/* enum iommu_page_response_code */
export const IOMMU_PAGE_RESP_SUCCESS = 0;   /* fault handled: the device retries the translation */
export const IOMMU_PAGE_RESP_INVALID = 1;   /* no mapping possible: the device reports an error */
export const IOMMU_PAGE_RESP_FAILURE = 2;   /* the device must stop sending requests */
export const iommu_page_response_names = ['SUCCESS', 'INVALID', 'FAILURE'] as const;

/** struct iommu_fault_page_request - one PRI Page Request as the IOMMU reports it. */
export interface iommu_fault_page_request {
  flags: number;              /* IOMMU_FAULT_PAGE_REQUEST_* */
  pasid: number;
  grpid: number;              /* Page Request Group index, echoed in the response */
  perm: number;               /* IOMMU_FAULT_PERM_* */
  addr: number;               /* page-aligned virtual address */
}

/** struct iommu_page_response - what the IOMMU driver answers. */
export interface iommu_page_response {
  pasid: number;
  grpid: number;
  code: number;               /* IOMMU_PAGE_RESP_* */
}

/**
 * struct iommu_sva_device_ops - the PCIe messages the IOMMU sends the
 * endpoint (no Linux struct: the hardware protocol, ATS and PRI).
 * @atc_invalidate: ATS Invalidate Request for [start, end) of @pasid; the
 *   device drops those ATC entries before it returns (the invalidation
 *   completion). Context: atomic (called from the CPU TLB-flush path):
 *   must not sleep.
 * @page_response: PRG Response for group @resp.grpid. Context: the iopf
 *   worker; must not sleep.
 */
export interface iommu_sva_device_ops {
  atc_invalidate(pasid: number, start: number, end: number): void;
  page_response(resp: iommu_page_response): void;
}

/** An endpoint that can be bound: its name, ops, and how many PASIDs it supports. */
export interface iommu_sva_device {
  readonly name: string;
  readonly sva_ops: iommu_sva_device_ops;
  readonly max_pasids: number;
}

/**
 * struct iommu_sva - one bond of a device to an mm (iommu_sva_bind_device).
 * Also stands for the SVA iommu_domain and the SMMU driver's notifier: the
 * model keeps one object per (device, mm).
 */
export interface iommu_sva {
  dev: iommu_sva_device;
  mm: mm_struct;
  pasid: number;
  /* the IOMMU driver's whole-mm subscription (arch_invalidate_secondary_tlbs, release) */
  notifier: mmu_notifier;
  /* bind_device calls not yet matched by unbind_device */
  users: number;
  /* set by ->release (exit_mmap): page requests are answered INVALID from then on */
  released: boolean;
  /* page requests queued or being handled (iopf_queue_flush_dev waits for 0) */
  iopf_pending: number;
  /* counters */
  ats_translations: number;   /* first-stage walks that succeeded */
  ats_misses: number;         /* walks that found no usable PTE (the device sent a page request) */
  page_requests: number;
  atc_invalidations: number;  /* ATC Invalidate Requests sent */
  atc_inv_under_ptl: number;  /* ... of which with a page-table lock of @mm held */
  atc_inv_atomic: number;     /* ... of which in atomic context (all of them, unless the core is broken) */
}
