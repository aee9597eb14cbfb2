/*
 * drivers/gpu/mockgpu/mockgpu_sva.ts - the mock GPU in SVA mode: bound to
 * the process by a PASID, it uses the process's own CPU page table
 * through the IOMMU, with no mirror and no page table of its own.
 *
 * The third glue beside uvm_hmm.ts (mainline HMM) and uvm_hmm_v8.ts
 * (2015): selected with mockgpu_set_era(mockgpu_sva_ops) before open().
 * It models what an SVA-capable device and its driver do in Linux 6.x
 * (a driver calls iommu_sva_bind_device at open and programs the PASID
 * into its contexts, as idxd and uacce users do; the hardware side is PCIe
 * ATS and PRI). Design and diagram: include/linux/iommu.ts.
 *
 *   an SM access -> ATC (the device TLB of CPU translations) hit: go
 *   ATC miss     -> ATS translation (drivers/iommu/iommu-sva.ts walks the
 *                   CPU table, sets ACCESSED/DIRTY) -> fill the ATC
 *   walk fails   -> PRI page request (io-pgfault.ts: handle_mm_fault in a
 *                   worker) and the warp stalls; the Page Response wakes it
 *                   (SUCCESS: retry) or cancels its context (INVALID: -EFAULT)
 *   CPU TLB flush -> ATC invalidation, synchronous, in atomic context
 *
 * What it cannot do: the table is the CPU's, so every translation is a CPU
 * PTE of system memory. No page can live in VRAM (a device-private entry
 * is "not present" to the walk: the page request faults it back to RAM),
 * a migration request is refused with -EOPNOTSUPP, and no device-only PTE
 * bit (aperture, atomic, compression) exists.
 *
 * Simplified: the ATC caches an ATS completion as a mock GPU PTE of the
 * SYS aperture (pfn, write); one outstanding request per (page, access).
 */
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE, IOMMU_PAGE_RESP_SUCCESS, type iommu_page_response, type iommu_sva,
  type iommu_sva_device,
} from '../../../include/linux/iommu.js';
import {
  MOCKGPU_FAULT_ACCESS_READ, UVM_APERTURE_SYS, mockgpu_pte_allows, mockgpu_pte_make,
} from '../../../include/linux/mockgpu.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { EFAULT, EOPNOTSUPP } from '../../../include/uapi/asm-generic/errno.js';
import { might_sleep, type Sleepable } from '../../../lib/sim/sched.js';
import { wake_up_all } from '../../../lib/locking/wait.js';
import { charge } from '../../../lib/sim/clock.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { GPU_FAULT_INTERRUPT_NS, GPU_TLB_HIT_NS, GPU_TLB_INVALIDATE_NS, IOMMU_ATS_TRANSLATION_NS } from '../../../lib/sim/costs.js';
import { iommu_ats_translate, iommu_sva_bind_device, iommu_sva_unbind_device } from '../../iommu/iommu-sva.js';
import { iommu_report_device_fault } from '../../iommu/io-pgfault.js';
import {
  mockgpu_params, uvm_gpu_stat_add, type gpu_context, type mockgpu_hmm_ops, type uvm_gpu, type uvm_service_fault,
  type uvm_va_space,
} from './uvm_gpu.js';
import { uvm_tlb, uvm_tlb_invalidate } from './uvm_mmu.js';
import { uvm_gpu_cancel_context } from './uvm_gpu_replayable_faults.js';

/**
 * Parameters of SVA mode (tests).
 *  broken_sleep_in_atc_invalidate: TEST ONLY - the ATC invalidation waits
 *      like a command-queue driver would (might_sleep), which the CPU's
 *      TLB-flush path forbids; the model must catch it.
 */
export const mockgpu_sva_params = { broken_sleep_in_atc_invalidate: false };

/** mockgpuSvaParamsReset() - defaults back (tests). */
export function mockgpuSvaParamsReset(): void {
  mockgpu_sva_params.broken_sleep_in_atc_invalidate = false;
}

/** A page request the device is waiting for: who stalled on it. */
interface sva_request { key: string; ctx: gpu_context; addr: number; }

/**
 * struct mockgpu_sva - the GPU's PCIe endpoint side of SVA: its ATC and
 * its outstanding page requests, shared by every PASID bound on it.
 */
export class mockgpu_sva implements iommu_sva_device {
  readonly name: string;
  readonly max_pasids = 1 << 20;
  /* the ATC: key = PASID * 2^36 + virtual page, value = SYS-aperture PTE; LRU */
  readonly atc: uvm_tlb;
  /* page requests sent and not yet answered, by Page Request Group index */
  readonly pending = new Map<number, sva_request>();
  readonly outstanding = new Set<string>();
  next_grpid = 1;
  atc_entries_invalidated = 0;
  readonly sva_ops;
  constructor(readonly gpu: uvm_gpu) {
    this.name = gpu.name;
    this.atc = new uvm_tlb(mockgpu_params.tlb_entries);
    this.sva_ops = Object.freeze({
      atc_invalidate: (pasid: number, start: number, end: number) => mockgpu_sva_atc_invalidate(this, pasid, start, end),
      page_response: (resp: iommu_page_response) => mockgpu_sva_page_response(this, resp),
    });
  }
}

const sva_of_gpu = new WeakMap<uvm_gpu, mockgpu_sva>();

/** mockgpuSvaOf() - the GPU's SVA endpoint (created on first bind). */
export function mockgpuSvaOf(gpu: uvm_gpu): mockgpu_sva {
  let s = sva_of_gpu.get(gpu);
  if (s === undefined) { s = new mockgpu_sva(gpu); sva_of_gpu.set(gpu, s); }
  return s;
}

/** mockgpuSvaBondOf() - the IOMMU bond of an SVA-mode address space, or null. */
export function mockgpuSvaBondOf(vs: uvm_va_space): iommu_sva | null {
  return vs.glue.name === 'sva' ? vs.glue_data as iommu_sva | null : null;
}

/*
 * The device's ATS Invalidate handling: drop [start, end) of @pasid from
 * the ATC and complete. Runs in the CPU thread that flushed its TLB.
 */
function mockgpu_sva_atc_invalidate(s: mockgpu_sva, pasid: number, start: number, end: number): void {
  if (mockgpu_sva_params.broken_sleep_in_atc_invalidate) might_sleep();
  charge(GPU_TLB_INVALIDATE_NS);
  s.atc_entries_invalidated += uvm_tlb_invalidate(s.atc, pasid, start, end);
  uvm_gpu_stat_add(s.gpu, 'tlb_invalidates');
}

/* The PRG Response: SUCCESS replays the stalled warps; anything else cancels the context. */
function mockgpu_sva_page_response(s: mockgpu_sva, resp: iommu_page_response): void {
  const req = s.pending.get(resp.grpid);
  if (req === undefined) return;
  s.pending.delete(resp.grpid);
  s.outstanding.delete(req.key);
  if (resp.code === IOMMU_PAGE_RESP_SUCCESS) {
    uvm_gpu_stat_add(s.gpu, 'faults_serviced');
    uvm_gpu_stat_add(s.gpu, 'replays');
    s.gpu.replay_seq++;
    wake_up_all(s.gpu.replay_wq);
  } else {
    uvm_gpu_cancel_context(s.gpu, req.ctx, -EFAULT, req.addr);
  }
}

/*
 * mockgpu_sva_translate() - the SM's translation in SVA mode.
 * Return: a SYS-aperture PTE allowing @access, or 0 when the warp must
 * stall (a page request is out; the response bumps replay_seq).
 */
function mockgpu_sva_translate(vs: uvm_va_space, va: number, access: number, ctx: gpu_context): number {
  const s = mockgpuSvaOf(vs.gpu);
  const bond = vs.glue_data as iommu_sva;
  const key = bond.pasid * 2 ** 36 + Math.floor(va / PAGE_SIZE);
  const hit = s.atc.map.get(key);
  if (hit !== undefined && mockgpu_pte_allows(hit, access)) {
    charge(GPU_TLB_HIT_NS);
    s.atc.hits++;
    s.atc.map.delete(key);
    s.atc.map.set(key, hit);
    return hit;
  }
  s.atc.misses++;
  charge(IOMMU_ATS_TRANSLATION_NS);
  const write = access !== MOCKGPU_FAULT_ACCESS_READ;
  const tr = iommu_ats_translate(bond, va, write);
  if (tr !== null) {
    const pte = mockgpu_pte_make(UVM_APERTURE_SYS, tr.pfn, tr.write, tr.write);
    if (hit === undefined && s.atc.map.size >= s.atc.capacity) {
      const oldest = s.atc.map.keys().next().value;
      if (oldest !== undefined) s.atc.map.delete(oldest);
    }
    s.atc.map.set(key, pte);
    return pte;
  }
  mockgpu_sva_page_request(s, bond, va - (va % PAGE_SIZE), write, ctx);
  return 0;
}

/* send a PRI Page Request for @addr unless the same one is already out */
function mockgpu_sva_page_request(s: mockgpu_sva, bond: iommu_sva, addr: number, write: boolean, ctx: gpu_context): void {
  const key = `${bond.pasid}:${addr}:${write ? 'w' : 'r'}`;
  if (s.outstanding.has(key)) return;
  charge(GPU_FAULT_INTERRUPT_NS);
  uvm_gpu_stat_add(s.gpu, 'gpu_faults');
  const grpid = s.next_grpid++;
  s.outstanding.add(key);
  s.pending.set(grpid, { key, ctx, addr });
  const ret = iommu_report_device_fault(s, {
    flags: IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
    pasid: bond.pasid, grpid, addr,
    perm: IOMMU_FAULT_PERM_READ | (write ? IOMMU_FAULT_PERM_WRITE : 0),
  });
  if (ret) { s.pending.delete(grpid); s.outstanding.delete(key); uvm_gpu_cancel_context(s.gpu, ctx, -EFAULT, addr); }
}

function* sva_va_space_init(vs: uvm_va_space): Sleepable<number> {
  const bond = yield* iommu_sva_bind_device(mockgpuSvaOf(vs.gpu), vs.mm);
  if (typeof bond === 'number') return bond;
  vs.glue_data = bond;
  return 0;
}

function* sva_va_space_fini(vs: uvm_va_space): Sleepable {
  const bond = vs.glue_data as iommu_sva | null;
  if (bond !== null) yield* iommu_sva_unbind_device(bond);
  vs.glue_data = null;
}

/* SVA faults never reach the replayable fault buffer; should one, it cannot be serviced here */
function* sva_service_block(_vs: uvm_va_space, faults: uvm_service_fault[]): Sleepable {
  for (const f of faults) f.fatal = -EOPNOTSUPP;
}

/** The SVA glue: no mirror, the CPU table through the IOMMU. */
export const mockgpu_sva_ops: mockgpu_hmm_ops = Object.freeze({
  name: 'sva' as const,
  va_space_init: sva_va_space_init,
  va_space_fini: sva_va_space_fini,
  service_block: sva_service_block,
  translate: mockgpu_sva_translate,
});

/**
 * mockgpu_sva_migrate_to_vram() - a request to move [start, start + len)
 * of an SVA-mode address space into VRAM (what uvm_hmm.ts does on fault).
 * The device uses the CPU's page table, whose PTEs can only hold memory
 * the CPU maps; VRAM here is device-private, so it cannot be done.
 * Return: -EOPNOTSUPP (the kernel's "operation not supported" for a
 * request the bound mode has no way to carry out); nothing moves.
 */
export function mockgpu_sva_migrate_to_vram(vs: uvm_va_space, start: number, len: number): number {
  trace_event('mockgpu_sva_migrate_refused', { vs: vs.id, start, len });
  return -EOPNOTSUPP;
}
