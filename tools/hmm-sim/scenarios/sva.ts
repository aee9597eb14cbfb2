/*
 * tools/hmm-sim/scenarios/sva.ts - `hmm-sim run sva`: the mock GPU bound
 * to the process by a PASID (drivers/gpu/mockgpu/mockgpu_sva.ts over
 * drivers/iommu/), running the gpu scenario's workload on the CPU page
 * table itself. Documentation/vm/hmm.txt, "SVA".
 *
 *  1. the process mallocs 64 pages and fills them; the GPU binds (PASID);
 *  2. an "inc" kernel: every ATC miss is an ATS translation, the IOMMU
 *     walks the CPU page table; no page request (the pages are present),
 *     no GPU page table, no migration: the bytes change in RAM;
 *  3. the CPU reads back with no fault at all;
 *  4. fork + a CPU write: COW replaces a page; the TLB flush invalidates
 *     the device's ATC under the page-table lock, atomically, and the next
 *     kernel sees the new page (no window, no sequence count);
 *  5. a fresh, untouched buffer: page requests, resolved with
 *     handle_mm_fault by the IOMMU's fault worker;
 *  6. what it cannot do: a migration request gets -EOPNOTSUPP; a device
 *     write sets the CPU PTE's dirty bit (the CPU's format is the only one).
 */
import { defineScenario } from '../api.js';
import { start_kernel } from '../../../mm/init.js';
import { Process } from '../../include/nolibc/nolibc.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_SHARED, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { MOCKGPU_OP_INC, MOCKGPU_OP_READ, MOCKGPU_OP_WRITE } from '../../../include/uapi/linux/mockgpu.js';
import { _PAGE_DIRTY } from '../../../include/linux/pgtable.js';
import { errno_name } from '../../../include/uapi/asm-generic/errno.js';
import { tracing_on, trace_set_buffer_size, get_counter } from '../../../lib/sim/trace.js';
import { formatNs, machineTime } from '../../../lib/sim/clock.js';
import { pte_offset_map, ptep_get } from '../../../mm/pgtable.js';
import { gpuOpen, gpuSession, type GpuStats } from '../../include/mockgpu.js';
import { mockgpu_get, mockgpu_set_era, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import {
  mockgpu_sva_ops, mockgpuSvaBondOf, mockgpu_sva_migrate_to_vram, mockgpuSvaParamsReset,
} from '../../../drivers/gpu/mockgpu/mockgpu_sva.js';
import { iommuSvaReset } from '../../../drivers/iommu/iommu-sva.js';

const NPAGES = 64;

/** What the SVA run measured (the design-debate table reads these). */
export interface sva_result {
  lines: string[];
  stats: GpuStats;
  readback_ok: boolean;
  cow_seen: boolean;
  ns: number;                 /* simulated time when the first kernel finished */
  ats: number; page_requests: number; atc_invalidations: number; atc_inv_under_ptl: number; atc_inv_atomic: number;
  dirty_after_device_write: boolean;
  migrate_ret: number;
}

/**
 * sva_scenario_run() - boot, bind, run the steps above. Return: the lines
 * and the figures; every check is a field a test asserts.
 */
export function sva_scenario_run(): sva_result {
  mockgpuParamsReset();
  mockgpuSvaParamsReset();
  iommuSvaReset();
  start_kernel({ ram_bytes: 32 << 20 });
  uvm_gpu_init();
  mockgpu_set_era(mockgpu_sva_ops);
  trace_set_buffer_size(1 << 16);
  tracing_on();
  const p = Process.spawn('sva_app');
  const len = NPAGES * PAGE_SIZE;
  const buf = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const fresh = p.mmap(0, 8 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const shared = p.mmap(0, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  p.fill32(buf, len, 100);
  p.read32(shared);                                   /* present, writable, clean */
  let t1 = 0;
  const out = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open /dev/mockgpu0: ${g}`);
    const vs = [...mockgpu_get()!.va_spaces].at(-1)!;
    const bond = mockgpuSvaBondOf(vs)!;
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 256 });
    const w1 = yield* g.wait(ctx);
    t1 = machineTime();
    const prq1 = bond.page_requests, ats1 = bond.ats_translations;
    /* COW: the parent writes a page the child shares */
    yield* p.sys.fork();
    const inv0 = bond.atc_invalidations, ptl0 = bond.atc_inv_under_ptl;
    yield* p.sys.store(buf + 4, 4, 7777);
    const cow_inv = bond.atc_invalidations - inv0, cow_ptl = bond.atc_inv_under_ptl - ptl0;
    const c0 = (yield* g.wait(ctx)).checksum;
    yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_READ, elem: 4, count: 2 });
    const cow_word = ((yield* g.wait(ctx)).checksum - c0 - 101) >>> 0;   /* word 0 is 100 + 1 */
    /* untouched memory: page requests */
    yield* g.launch(ctx, { base: fresh, size: 8 * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 0x5a5a, elem: 1024 });
    const w3 = yield* g.wait(ctx);
    const prq_fresh = bond.page_requests - prq1;
    /* the device's write sets DIRTY in the CPU PTE */
    yield* g.launch(ctx, { base: shared, size: PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 1, elem: 4, count: 1 });
    yield* g.wait(ctx);
    const migrate_ret = mockgpu_sva_migrate_to_vram(vs, buf, len);
    return { w1, w3, prq1, ats1, cow_inv, cow_ptl, cow_word, prq_fresh, migrate_ret, bond, stats: yield* g.stats() };
  });
  const readback_ok = p.check32(buf + PAGE_SIZE, len - PAGE_SIZE, 101 + PAGE_SIZE / 4) === -1;
  const dirty = (ptep_get(p.mm, pte_offset_map(p.mm, shared)) & _PAGE_DIRTY) !== 0;
  const b = out.bond;
  const lines = [
    `bind: /dev/mockgpu0 bound to mm${p.mm.id} with PASID ${b.pasid}; the GPU page table stays empty (SVA has none)`,
    `kernel 1 (inc over ${NPAGES} malloc'd pages): status ${out.w1.status}, done at ${formatNs(t1)} s simulated`,
    `  ${out.ats1} ATS translations (IOMMU walks of the CPU page table), ${out.prq1} page requests, ` +
      `${out.stats.migrated_to_vram} pages migrated, ${out.stats.vram_pages_used} VRAM pages used`,
    `CPU read-back: ${get_counter('mockgpu_cpu_faults')} CPU faults; every word is old + 1: ${readback_ok}`,
    `fork + CPU write (COW): ${out.cow_inv} ATC invalidation(s) from the TLB flush, ${out.cow_ptl} under the page-table lock, ` +
      'in atomic context',
    `  the next kernel reads the parent's new page at once: word 1 = ${out.cow_word} (7777 expected)`,
    `untouched buffer (8 pages, write): ${out.prq_fresh} page requests resolved with handle_mm_fault, status ${out.w3.status}, ` +
      `the CPU sees 0x${p.read32(fresh + 5 * PAGE_SIZE).toString(16)}`,
    'what SVA cannot do:',
    `  migrate to VRAM: ${errno_name(-out.migrate_ret)} (the CPU page table can only point at memory the CPU maps)`,
    `  a device write through the IOMMU set the CPU PTE's dirty bit: ${dirty} (CPU PTE format only, A/D set by the walker)`,
    `totals: ${b.ats_translations} ATS translations, ${b.page_requests} page requests, ${b.atc_invalidations} ATC invalidations ` +
      `(${b.atc_inv_under_ptl} under a page-table lock, ${b.atc_inv_atomic} in atomic context)`,
  ];
  return {
    lines, stats: out.stats, readback_ok, cow_seen: out.cow_word === 7777, ns: t1, ats: b.ats_translations,
    page_requests: b.page_requests, atc_invalidations: b.atc_invalidations, atc_inv_under_ptl: b.atc_inv_under_ptl, atc_inv_atomic: b.atc_inv_atomic,
    dirty_after_device_write: dirty, migrate_ret: out.migrate_ret,
  };
}

export const sva_scenario = defineScenario({
  name: 'sva',
  description: 'the mock GPU bound by PASID walks the CPU page table: ATS, page requests, ATC shootdown under the PTL',
  run() { return sva_scenario_run().lines; },
});
