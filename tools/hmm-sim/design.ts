/*
 * tools/hmm-sim/design.ts - the designs the HMM threads argued about, as
 * the mock GPU runs them (`hmm-sim run --design NAME gpu`, and the
 * design-debate scenario that runs them all on one workload):
 *
 *   v8        HMM as posted in 2015: hmm_mirror, the mirror table (hmm_pt),
 *             SWP_HMM entries (drivers/gpu/mockgpu/uvm_hmm_v8.ts)
 *   mainline  HMM as merged: interval notifiers, hmm_range_fault,
 *             migrate_vma, device-private pages (uvm_hmm.ts)
 *   sva       Linus's 2014 position as IOMMU SVA does it: the device walks
 *             the CPU page table (PASID, ATS/PRI), invalidated from the TLB
 *             flush (mockgpu_sva.ts over drivers/iommu/)
 *   gmem      the 2023 GMEM RFC: the device attached to the mm, one fault
 *             entry, core mm moves the pages (uvm_gmem.ts over mm/gmem.ts)
 *
 * For each: the glue the device core runs on, the mmap flags its buffers
 * need, the trace events that are an invalidation delivered to the driver
 * (counted, with the context they ran in, by the design-debate table), and
 * the files that are its driver code (counted by driver_lines.ts).
 */
import type { mockgpu_hmm_ops } from '../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_hmm_ops } from '../../drivers/gpu/mockgpu/uvm_hmm.js';
import { uvm_hmm_v8_ops } from '../../drivers/gpu/mockgpu/uvm_hmm_v8.js';
import { uvm_gmem_ops } from '../../drivers/gpu/mockgpu/uvm_gmem.js';
import { mockgpu_sva_ops } from '../../drivers/gpu/mockgpu/mockgpu_sva.js';
import { MAP_PEER_SHARED, MAP_PRIVATE, MAP_ANONYMOUS } from '../../include/uapi/asm-generic/mman.js';

const ANON_FLAGS = MAP_PRIVATE | MAP_ANONYMOUS;

export type design = 'v8' | 'mainline' | 'sva' | 'gmem';

/**
 * struct design_desc - one design as the mock GPU runs it.
 * @buffer_flags: mmap flags of a buffer the GPU may touch
 * @invalidate_events: trace events that are one invalidation reaching the driver
 * @driver_files: the glue; @mmu_files: MMU functions counted apart (GMEM's split)
 */
export interface design_desc {
  name: design;
  title: string;
  glue: mockgpu_hmm_ops;
  buffer_flags: number;
  invalidate_events: readonly string[];
  driver_files: readonly string[];
  mmu_files: readonly string[];
}

const D = 'drivers/gpu/mockgpu/';

export const DESIGN_TABLE: Readonly<Record<design, design_desc>> = Object.freeze({
  v8: { name: 'v8', title: 'HMM v8 (2015)', glue: uvm_hmm_v8_ops, buffer_flags: ANON_FLAGS,
    invalidate_events: ['uvm_hmm_v8_update', 'uvm_hmm_v8_copy_from_device'], driver_files: [`${D}uvm_hmm_v8.ts`], mmu_files: [] },
  mainline: { name: 'mainline', title: 'mainline HMM', glue: uvm_hmm_ops, buffer_flags: ANON_FLAGS,
    invalidate_events: ['uvm_hmm_invalidate'], driver_files: [`${D}uvm_hmm.ts`], mmu_files: [] },
  sva: { name: 'sva', title: 'IOMMU SVA', glue: mockgpu_sva_ops, buffer_flags: ANON_FLAGS,
    invalidate_events: ['iommu_atc_inv'], driver_files: [`${D}mockgpu_sva.ts`], mmu_files: [] },
  gmem: { name: 'gmem', title: 'GMEM RFC (2023)', glue: uvm_gmem_ops, buffer_flags: ANON_FLAGS | MAP_PEER_SHARED,
    invalidate_events: ['gmem_peer_unmap'], driver_files: [`${D}uvm_gmem.ts`], mmu_files: [`${D}uvm_gmem_mmu.ts`] },
});

/** The designs, in the order the table prints them. */
export const DESIGNS: readonly design[] = Object.freeze(['v8', 'mainline', 'sva', 'gmem'] as design[]);

/** is_design() - is @s a design name? */
export function is_design(s: string): s is design {
  return (DESIGNS as readonly string[]).includes(s);
}

/* the design `--design` selected for the scenario being run (null: its default) */
let selected: design | null = null;

/** design_select() - set (or clear, null) the design scenarios run under. */
export function design_select(d: design | null): void {
  selected = d;
}

/** design_selected() - the design `--design` chose, or null. */
export function design_selected(): design | null {
  return selected;
}
