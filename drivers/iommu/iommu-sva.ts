/*
 * drivers/iommu/iommu-sva.ts - binding a device to a process address
 * space: PASID allocation, the IOMMU's walk of the CPU page table (ATS
 * translation), the device-TLB (ATC) invalidation from the CPU's TLB-flush
 * path, and the page-request handler.
 *
 * Follows Linux 6.8-6.9: drivers/iommu/iommu-sva.c (iommu_sva_bind_device,
 * iommu_sva_unbind_device, iommu_sva_get_pasid, the global PASID allocator,
 * iommu_sva_handle_mm) and the SMMUv3 SVA glue
 * drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c (its mmu_notifier with
 * ->arch_invalidate_secondary_tlbs, which issues CMD_ATC_INV, and
 * ->release). The design and its diagram are in include/linux/iommu.ts.
 *
 * Simplified: the "IOMMU" is this file; the first-stage walk is the CPU
 * MMU's own walk (mmu_translate), which sets ACCESSED/DIRTY as SMMU HTTU or
 * VT-d first-stage A/D do. A read translation is granted write only if the
 * PTE is already dirty (VT-d's rule), so a later device write through the
 * ATC can never leave a clean PTE behind. Bind takes no iommu_sva_lock
 * (the simulation runs bind/unbind in process context one at a time).
 */
import type { mm_struct } from '../../include/linux/mm_types.js';
import type { mmu_notifier, mmu_notifier_ops } from '../../include/linux/mmu_notifier.js';
import {
  IOMMU_MAX_PASID_BITS, type iommu_sva, type iommu_sva_device,
} from '../../include/linux/iommu.js';
import { PAGE_SIZE, TASK_SIZE } from '../../include/linux/mm.js';
import { _PAGE_DIRTY, PTE_LEVEL } from '../../include/linux/pgtable.js';
import { EINVAL, ENOSPC, ENODEV } from '../../include/uapi/asm-generic/errno.js';
import { current, in_atomic, type Sleepable } from '../../lib/sim/sched.js';
import { wait_queue_head, wait_event } from '../../lib/locking/wait.js';
import { count_event, trace_event } from '../../lib/sim/trace.js';
import { mmu_notifier_register, mmu_notifier_unregister } from '../../mm/mmu_notifier.js';
import { mmu_translate } from '../../mm/fault.js';
import { mmgrab, mmdrop } from '../../mm/task.js';

/* the global PASID space (iommu_global_pasid_ida), and one PASID per mm (mm->iommu_mm->pasid) */
const pasid_of_mm = new WeakMap<mm_struct, number>();
let next_pasid = 1;
/* bonds by (device, mm): bind of an already bound pair takes a reference */
const bonds = new Map<iommu_sva_device, Map<mm_struct, iommu_sva>>();
/* unbind waits here for the bond's page requests to drain (iopf_queue_flush_dev) */
export const iopf_flush_wq = new wait_queue_head('iopf_queue.flush');

/** iommuSvaReset() - forget every bond and PASID (a new boot). */
export function iommuSvaReset(): void {
  bonds.clear();
  next_pasid = 1;
}

/* mm_pasid: the mm's PASID, allocated on its first bind and kept until the mm dies */
function iommu_sva_alloc_pasid(mm: mm_struct, dev: iommu_sva_device): number {
  const have = pasid_of_mm.get(mm);
  if (have !== undefined) return have < dev.max_pasids ? have : -ENOSPC;
  if (next_pasid >= Math.min(dev.max_pasids, 2 ** IOMMU_MAX_PASID_BITS)) return -ENOSPC;
  const pasid = next_pasid++;
  pasid_of_mm.set(mm, pasid);
  return pasid;
}

/* does the running thread hold a page-table lock of @mm (a split PTE lock or page_table_lock)? */
function ptl_held(mm: mm_struct): boolean {
  const prefix = `ptl[mm${mm.id}:`;
  return current().held.some((l) => l === mm.page_table_lock || l.name.startsWith(prefix));
}

/**
 * sva_arch_invalidate_secondary_tlbs() - the SMMU driver's notifier: the
 * CPU flushed [start, end), so send the device an ATC Invalidate for the
 * same range of the bond's PASID, and wait for its completion.
 * Context: atomic (CPU TLB-flush path); never sleeps.
 */
function sva_arch_invalidate_secondary_tlbs(sub: mmu_notifier, mm: mm_struct, start: number, end: number): void {
  const bond = bond_of_notifier.get(sub)!;
  bond.atc_invalidations++;
  if (ptl_held(mm)) bond.atc_inv_under_ptl++;
  if (in_atomic()) bond.atc_inv_atomic++;
  count_event('iommu_atc_inv');
  trace_event('iommu_atc_inv', { dev: bond.dev.name, pasid: bond.pasid, start, end });
  bond.dev.sva_ops.atc_invalidate(bond.pasid, start, end);
}

/**
 * sva_release() - the mm is going away (exit_mmap) before unbind: stop
 * translating for it; the device's ATC is emptied and page requests are
 * answered INVALID (arm_smmu_mm_release clears the context descriptor).
 * Context: may sleep (does not).
 */
function* sva_release(sub: mmu_notifier, _mm: mm_struct): Sleepable {
  const bond = bond_of_notifier.get(sub)!;
  bond.released = true;
  bond.dev.sva_ops.atc_invalidate(bond.pasid, 0, TASK_SIZE);
  trace_event('iommu_sva_release', { dev: bond.dev.name, pasid: bond.pasid });
}

const bond_of_notifier = new WeakMap<mmu_notifier, iommu_sva>();
const iommu_sva_notifier_ops: mmu_notifier_ops = Object.freeze({
  arch_invalidate_secondary_tlbs: sva_arch_invalidate_secondary_tlbs,
  release: sva_release,
});

/**
 * iommu_sva_bind_device() - bind @dev to @mm: allocate (or reuse) the mm's
 * PASID, install the CPU page table as the PASID's first-stage table and
 * subscribe to the CPU's TLB flushes.
 * Context: process context; may sleep (takes mmap_lock for write).
 * Return: the bond, or -ENODEV (device supports no PASID), -ENOSPC (PASID
 * space exhausted), -EINVAL (mm already torn down).
 */
export function* iommu_sva_bind_device(dev: iommu_sva_device, mm: mm_struct): Sleepable<iommu_sva | number> {
  if (dev.max_pasids <= 1) return -ENODEV;
  if (mm.mm_users <= 0) return -EINVAL;
  let per_dev = bonds.get(dev);
  if (per_dev === undefined) { per_dev = new Map(); bonds.set(dev, per_dev); }
  const old = per_dev.get(mm);
  if (old !== undefined) { old.users++; return old; }
  const pasid = iommu_sva_alloc_pasid(mm, dev);
  if (pasid < 0) return pasid;
  const notifier: mmu_notifier = { ops: iommu_sva_notifier_ops, mm: null };
  const bond: iommu_sva = {
    dev, mm, pasid, notifier, users: 1, released: false, iopf_pending: 0,
    ats_translations: 0, ats_misses: 0, page_requests: 0, atc_invalidations: 0, atc_inv_under_ptl: 0, atc_inv_atomic: 0,
  };
  bond_of_notifier.set(notifier, bond);
  mmgrab(mm);
  yield* mmu_notifier_register(notifier, mm);
  per_dev.set(mm, bond);
  trace_event('iommu_sva_bind_device', { dev: dev.name, mm: mm.id, pasid });
  return bond;
}

/**
 * iommu_sva_unbind_device() - drop one reference on @bond; the last one
 * waits for the bond's page requests to be answered, detaches the PASID
 * and unsubscribes. The mm keeps its PASID until it dies (mm_pasid_drop).
 * Context: may sleep.
 */
export function* iommu_sva_unbind_device(bond: iommu_sva): Sleepable {
  if (--bond.users > 0) return;
  yield* wait_event(iopf_flush_wq, () => bond.iopf_pending === 0);
  bonds.get(bond.dev)?.delete(bond.mm);
  bond.released = true;
  bond.dev.sva_ops.atc_invalidate(bond.pasid, 0, TASK_SIZE);
  yield* mmu_notifier_unregister(bond.notifier, bond.mm);
  mmdrop(bond.mm);
  trace_event('iommu_sva_unbind_device', { dev: bond.dev.name, pasid: bond.pasid });
}

/** iommu_sva_get_pasid() - the PASID the device tags its requests with. */
export function iommu_sva_get_pasid(bond: iommu_sva): number {
  return bond.pasid;
}

/** iommuSvaBondOf() - the live bond of (@dev, PASID @pasid), or null (what the IOMMU's PASID table answers). */
export function iommuSvaBondOf(dev: iommu_sva_device, pasid: number): iommu_sva | null {
  for (const b of bonds.get(dev)?.values() ?? []) if (b.pasid === pasid && !b.released) return b;
  return null;
}

/**
 * iommu_ats_translate() - an ATS Translation Request: walk the bond's CPU
 * page table for @va as the IOMMU's first stage does, setting ACCESSED, and
 * DIRTY when @write. Return: { pfn, write } for the ATC, or null when the
 * entry is absent, not present (swap, migration, device-private: the CPU
 * PTE format has nothing the device could use) or read-only for a write:
 * the device must then send a page request.
 * Context: any; never sleeps.
 */
export function iommu_ats_translate(bond: iommu_sva, va: number, write: boolean): { pfn: number; write: boolean } | null {
  if (bond.released) { bond.ats_misses++; return null; }
  const pa = mmu_translate(bond.mm, va, write);
  if (pa < 0) { bond.ats_misses++; return null; }
  bond.ats_translations++;
  let w = write;
  if (!w) {
    /* grant write to a read only if the PTE is already dirty (so device writes keep DIRTY true) */
    const ptep = bond.mm.pgd.lookup(va, PTE_LEVEL);
    w = ptep >= 0 && (bond.mm.pgd.load(ptep) & _PAGE_DIRTY) !== 0 && mmu_translate(bond.mm, va, true) >= 0;
  }
  return { pfn: Math.floor(pa / PAGE_SIZE), write: w };
}
