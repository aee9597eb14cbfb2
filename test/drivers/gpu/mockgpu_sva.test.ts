/*
 * test/drivers/gpu/mockgpu_sva.test.ts - the mock GPU in SVA mode
 * (drivers/gpu/mockgpu/mockgpu_sva.ts over drivers/iommu/): the device
 * uses the CPU page table through the IOMMU, page requests are resolved
 * with handle_mm_fault, the ATC is invalidated from the CPU's TLB flush
 * under the page-table lock and never sleeps; what SVA cannot do.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, MAP_SHARED, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { EFAULT, EOPNOTSUPP } from '../../../include/uapi/asm-generic/errno.js';
import { _PAGE_DIRTY, _PAGE_ACCESSED } from '../../../include/linux/pgtable.js';
import { MOCKGPU_OP_INC, MOCKGPU_OP_READ, MOCKGPU_OP_WRITE } from '../../../include/uapi/linux/mockgpu.js';
import { gpuOpen, gpuSession, type GpuHandle } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, mockgpu_set_era, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { uvm_hmm_ops } from '../../../drivers/gpu/mockgpu/uvm_hmm.js';
import { mockgpuParamsReset, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import {
  mockgpu_sva_ops, mockgpu_sva_params, mockgpuSvaParamsReset, mockgpuSvaBondOf, mockgpuSvaOf,
  mockgpu_sva_migrate_to_vram,
} from '../../../drivers/gpu/mockgpu/mockgpu_sva.js';
import type { Process } from '../../../tools/include/nolibc/nolibc.js';
import { kmemleak_exempt } from '../../leakcheck/uvu.js';

test.before.each(() => { mockgpuParamsReset(); mockgpuSvaParamsReset(); });

const N = 16;

function sva_boot(): Process {
  const p = boot();
  uvm_gpu_init();
  mockgpu_set_era(mockgpu_sva_ops);
  return p;
}

/* open the GPU, run @body with the handle and the address space inside a session */
function session<T>(p: Process, body: (g: GpuHandle, vs: uvm_va_space, ctx: number) => Generator<any, T, any>): T {
  return gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open: ${g}`);
    const vs = [...mockgpu_get()!.va_spaces].at(-1)!;
    const ctx = yield* g.ctxCreate();
    return yield* body(g, vs, ctx);
  });
}

function gpu_ptes(vs: uvm_va_space): number {
  let n = 0;
  uvm_pt_for_each_valid(vs.pt, 0, 2 ** 47, () => n++);
  return n;
}

test('SVA: a kernel changes malloc\'d memory in place through the CPU page table; no GPU page table, no VRAM, no page request', () => {
  const p = sva_boot();
  const buf = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  p.fill32(buf, N * PAGE_SIZE, 1000);
  const r = session(p, function* (g, vs, ctx) {
    yield* g.launch(ctx, { base: buf, size: N * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 64 });
    const w = yield* g.wait(ctx);
    const bond = mockgpuSvaBondOf(vs)!;
    return { w, stats: yield* g.stats(), ptes: gpu_ptes(vs), pasid: bond.pasid, ats: bond.ats_translations, prq: bond.page_requests };
  });
  assert.is(r.w.status, 0);
  assert.ok(r.pasid > 0, 'bound with a PASID');
  assert.is(r.ptes, 0, 'the GPU has no page table of its own');
  assert.equal([r.stats.migrated_to_vram, r.stats.vram_pages_used, r.stats.gpu_faults, r.prq], [0, 0, 0, 0]);
  assert.is(r.ats, N, 'one ATS translation per page; every other access hit the ATC');
  assert.is(p.check32(buf, N * PAGE_SIZE, 1001), -1, 'every word incremented once, in system memory');
  assert.is(mockgpu_get()!.stats[10], 0, 'no CPU fault: nothing ever moved');
});

test('SVA: untouched memory is faulted in by page requests that the IOMMU resolves with handle_mm_fault', () => {
  const p = sva_boot();
  const buf = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  const r = session(p, function* (g, vs, ctx) {
    yield* g.launch(ctx, { base: buf, size: N * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 0xabcd, elem: 256 });
    const w = yield* g.wait(ctx);
    return { w, prq: mockgpuSvaBondOf(vs)!.page_requests, stats: yield* g.stats() };
  });
  assert.is(r.w.status, 0);
  assert.is(r.prq, N, 'one page request per page (duplicates from other warps are not resent)');
  assert.is(r.stats.faults_serviced, N);
  assert.is(p.read32(buf + 7 * PAGE_SIZE + 1020), 0xabcd);
  assert.ok((pte_at(p.mm, buf) & _PAGE_DIRTY) !== 0);
});

test('SVA: a device read sets ACCESSED only; a device write through the IOMMU sets the CPU PTE\'s DIRTY bit', () => {
  const p = sva_boot();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
  p.read32(buf);                                          /* a read fault: writable, clean */
  p.read32(buf + PAGE_SIZE);
  assert.is(pte_at(p.mm, buf) & _PAGE_DIRTY, 0, 'clean before the device');
  const r = session(p, function* (g, vs, ctx) {
    yield* g.launch(ctx, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_READ });
    yield* g.wait(ctx);
    const after_read = pte_at(p.mm, buf);
    yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 5 });
    const w = yield* g.wait(ctx);
    return { w, after_read, prq: mockgpuSvaBondOf(vs)!.page_requests };
  });
  assert.is(r.w.status, 0);
  assert.is(r.after_read & _PAGE_DIRTY, 0, 'a read leaves the PTE clean (the ATC got no write permission)');
  assert.ok((r.after_read & _PAGE_ACCESSED) !== 0);
  assert.ok((pte_at(p.mm, buf) & _PAGE_DIRTY) !== 0, 'the device write set DIRTY in the CPU PTE');
  assert.is(pte_at(p.mm, buf + PAGE_SIZE) & _PAGE_DIRTY, 0, 'the page it did not write stays clean');
  assert.is(r.prq, 0, 'the PTE was writable: the IOMMU walk granted the write without a page request');
  assert.is(p.read32(buf + 100), 5);
});

test('SVA: a CPU COW invalidates the ATC from the TLB flush, under the page-table lock; the device sees the new page at once', () => {
  const p = sva_boot();
  const buf = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 4 * PAGE_SIZE, 0);
  const r = session(p, function* (g, vs, ctx) {
    const bond = mockgpuSvaBondOf(vs)!;
    yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_READ });
    const w1 = yield* g.wait(ctx);
    const child = yield* p.sys.fork();
    const inv0 = bond.atc_invalidations, ptl0 = bond.atc_inv_under_ptl;
    yield* p.sys.store(buf + 8, 4, 1000);                /* COW: wp_page_copy -> flush_tlb_page under the PTL */
    const inv1 = bond.atc_invalidations, ptl1 = bond.atc_inv_under_ptl;
    yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_READ });
    const w2 = yield* g.wait(ctx);
    return { w1, w2, child, inv: inv1 - inv0, ptl: ptl1 - ptl0 };
  });
  assert.ok(r.child > 0);
  assert.ok(r.inv >= 1, 'the COW flushed the ATC');
  assert.ok(r.ptl >= 1, 'with the page-table lock held');
  /* the context's checksum accumulates: the second read adds the page again, word 2 now 1000 instead of 2 */
  assert.is((r.w2.checksum - 2 * r.w1.checksum) >>> 0, 1000 - 2, 'the device read the parent\'s new copy, not the old page');
});

test('SVA: an ATC invalidation that sleeps is caught as sleeping in atomic context (broken variant)', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine mid-race (mmap_lock held by an exited thread)');
  const p = sva_boot();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 2 * PAGE_SIZE, 0);
  assert.throws(() => session(p, function* (g, _vs, ctx) {
    yield* g.launch(ctx, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_READ });
    yield* g.wait(ctx);
    mockgpu_sva_params.broken_sleep_in_atc_invalidate = true;
    yield* p.sys.munmap(buf, 2 * PAGE_SIZE);
    return 0;
  }), /sleeping function called from invalid context/);
});

test('SVA: munmap empties the ATC before the pages are freed; a later device access gets INVALID and -EFAULT', () => {
  const p = sva_boot();
  const buf = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 4 * PAGE_SIZE, 0);
  const r = session(p, function* (g, _vs, ctx) {
    yield* g.launch(ctx, { base: buf, size: 4 * PAGE_SIZE, op: MOCKGPU_OP_READ });
    const w1 = yield* g.wait(ctx);
    const atc_before = mockgpuSvaOf(mockgpu_get()!).atc.map.size;
    yield* p.sys.munmap(buf, 4 * PAGE_SIZE);
    const atc_after = mockgpuSvaOf(mockgpu_get()!).atc.map.size;
    yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_READ });
    const w2 = yield* g.wait(ctx);
    return { w1, w2, atc_before, atc_after };
  });
  assert.is(r.w1.status, 0);
  assert.is(r.atc_before, 4);
  assert.is(r.atc_after, 0);
  assert.is(r.w2.status, -EFAULT, 'the page request found no VMA: IOMMU_PAGE_RESP_INVALID');
});

test('SVA: a device write to a read-only mapping is refused (-EFAULT) and the bytes are unchanged', () => {
  const p = sva_boot();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.fill32(buf, PAGE_SIZE, 7);
  assert.is(p.mprotect(buf, PAGE_SIZE, PROT_READ), 0);
  const w = session(p, function* (g, _vs, ctx) {
    yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 1 });
    return yield* g.wait(ctx);
  });
  assert.is(w.status, -EFAULT);
  assert.is(p.check32(buf, PAGE_SIZE, 7), -1);
});

test('SVA cannot hold VRAM: migration is refused with -EOPNOTSUPP, and pages another mode put in VRAM are faulted back to RAM', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  p.fill32(buf, N * PAGE_SIZE, 0);
  mockgpu_set_era(uvm_hmm_ops);
  const gpu = mockgpu_get()!;
  session(p, function* (g, _vs, ctx) {
    yield* g.launch(ctx, { base: buf, size: N * PAGE_SIZE, op: MOCKGPU_OP_INC });
    yield* g.wait(ctx);
    return 0;
  });
  assert.is(gpu.pmm.pages_used, N, 'mainline HMM mode migrated the pages to VRAM');
  mockgpu_set_era(mockgpu_sva_ops);
  const r = session(p, function* (g, vs, ctx) {
    const refused = mockgpu_sva_migrate_to_vram(vs, buf, N * PAGE_SIZE);
    yield* g.launch(ctx, { base: buf, size: N * PAGE_SIZE, op: MOCKGPU_OP_INC });
    const w = yield* g.wait(ctx);
    return { refused, w, prq: mockgpuSvaBondOf(vs)!.page_requests };
  });
  assert.is(r.refused, -EOPNOTSUPP);
  assert.is(r.w.status, 0);
  assert.is(r.prq, N, 'a device-private CPU PTE is not present to the IOMMU walk: one page request each');
  assert.is(gpu.pmm.pages_used, 0, 'handle_mm_fault migrated every page back to RAM');
  assert.is(p.check32(buf, N * PAGE_SIZE, 2), -1, 'both increments are in the bytes');
});

test('SVA: a process that exits with the device bound releases the bond; nothing hangs', () => {
  const p = sva_boot();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 2 * PAGE_SIZE, 0);
  session(p, function* (g, _vs, ctx) {
    yield* g.launch(ctx, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_READ });
    yield* g.wait(ctx);
    return 0;
  });
  p.exit(0);
  assert.is(mockgpu_get()!.va_spaces.size, 0);
  assert.is(mockgpuSvaOf(mockgpu_get()!).atc.map.size, 0);
});

test.run();
