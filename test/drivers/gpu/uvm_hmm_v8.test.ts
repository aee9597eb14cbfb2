/*
 * test/drivers/gpu/uvm_hmm_v8.test.ts - the same GPU on the 2015 HMM v8
 * API (drivers/gpu/mockgpu/uvm_hmm_v8.ts): hmm_mirror, device faults,
 * SWP_HMM migration both ways with every byte checked, remote mapping,
 * fatal faults, close and munmap.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MAP_SHARED, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { EFAULT } from '../../../include/uapi/asm-generic/errno.js';
import { MOCKGPU_OP_INC, MOCKGPU_OP_WRITE, MOCKGPU_OP_READ } from '../../../include/uapi/linux/mockgpu.js';
import { UVM_APERTURE_VID, mockgpu_pte_aperture } from '../../../include/linux/mockgpu.js';
import { pte_present } from '../../../include/linux/pgtable.js';
import { is_hmm_entry, pte_to_swp_entry } from '../../../include/linux/swapops.js';
import { gpuOpen, gpuRunKernel, gpuSession } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, mockgpu_set_era, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset, uvm_gpu_stat, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_hmm_v8_ops } from '../../../drivers/gpu/mockgpu/uvm_hmm_v8.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import type { Process } from '../../../tools/include/nolibc/nolibc.js';

test.before.each(() => mockgpuParamsReset());

function v8boot(): Process {
  const p = boot();
  uvm_gpu_init();
  mockgpu_set_era(uvm_hmm_v8_ops);
  return p;
}

function gpu_ptes(vs: uvm_va_space, start: number, len: number): number[] {
  const out: number[] = [];
  uvm_pt_for_each_valid(vs.pt, start, start + len, (_va, pte) => out.push(pte));
  return out;
}

test('on v8, a GPU fault moves private anonymous pages to VRAM behind SWP_HMM entries; CPU faults bring them back intact', () => {
  const p = v8boot();
  const n = 16;
  const buf = p.mmap(0, n * PAGE_SIZE, RW, ANON);
  p.fill32(buf, n * PAGE_SIZE, 7);
  const r = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(String(g));
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: n * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 128 });
    const w = yield* g.wait(ctx);
    const vs = [...mockgpu_get()!.va_spaces][0]!;
    const onGpu = gpu_ptes(vs, buf, n * PAGE_SIZE).map(mockgpu_pte_aperture);
    const cpu = pte_at(p.mm, buf + 3 * PAGE_SIZE);
    const swp = !pte_present(cpu) && is_hmm_entry(pte_to_swp_entry(cpu));
    const used = mockgpu_get()!.pmm.pages_used;
    const first = yield* p.sys.load(buf + 5 * PAGE_SIZE + 12, 4);      /* a CPU fault on VRAM data */
    const left = gpu_ptes(vs, buf, n * PAGE_SIZE).length;
    return { w, onGpu, swp, used, first, left, stats: yield* g.stats() };
  });
  assert.is(r.w.status, 0);
  assert.ok(r.onGpu.length === n && r.onGpu.every((a) => a === UVM_APERTURE_VID));
  assert.ok(r.swp, 'the CPU PTE is an SWP_HMM entry');
  assert.is(r.used, n);
  assert.is(r.first, (5 * PAGE_SIZE + 12) / 4 + 7 + 1);
  assert.is(r.left, n - 1, 'the CPU fault unmapped that page on the GPU first');
  assert.is(r.stats.migrated_to_vram, n);
  assert.is(r.stats.cpu_faults, 1);
  assert.is(p.check32(buf, n * PAGE_SIZE, 8), -1, 'close brought the rest back; every word is old + 1');
  assert.is(mockgpu_get()!.pmm.pages_used, 0);
});

test('on v8, shared memory is mapped remotely and the CPU sees the GPU\'s stores', () => {
  const p = v8boot();
  const buf = p.mmap(0, 4 * PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
  const r = gpuRunKernel(p, { base: buf, size: 4 * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 0x5a5a, elem: 512 });
  assert.equal([r.status, r.stats.migrated_to_vram, r.stats.mapped_remote], [0, 0, 4]);
  assert.is(p.read32(buf + 2 * PAGE_SIZE + 40), 0x5a5a);
});

test('on v8, an access with no VMA is fatal (-EFAULT) and the launch ends', () => {
  const p = v8boot();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  const r = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(String(g));
    yield* p.sys.munmap(buf + PAGE_SIZE, PAGE_SIZE);
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_READ });
    return yield* g.wait(ctx);
  });
  assert.is(r.status, -EFAULT);
  assert.is(uvm_gpu_stat(mockgpu_get()!, 'fatal_faults'), 1);
});

test('on v8, munmap of VRAM-backed memory clears the GPU page table and frees the chunks (HMM_MUNMAP update)', () => {
  const p = v8boot();
  const buf = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 8 * PAGE_SIZE, 0);
  gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(String(g));
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: 8 * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 1024 });
    yield* g.wait(ctx);
    assert.is(mockgpu_get()!.pmm.pages_used, 8);
    yield* p.sys.munmap(buf, 8 * PAGE_SIZE);
    const vs = [...mockgpu_get()!.va_spaces][0]!;
    assert.is(gpu_ptes(vs, buf, 8 * PAGE_SIZE).length, 0);
    return 0;
  });
  assert.is(mockgpu_get()!.pmm.pages_used, 0);
});

test('the same kernel gives the same bytes under both eras', () => {
  const run = (v8: boolean) => {
    const p = v8 ? v8boot() : (() => { const q = boot(); uvm_gpu_init(); return q; })();
    const buf = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
    p.fill32(buf, 8 * PAGE_SIZE, 3);
    const r = gpuRunKernel(p, { base: buf, size: 8 * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 64, pattern: 2, seed: 9 });
    return { status: r.status, bytes: [...p.read(buf, 8 * PAGE_SIZE)].join(','), vram: r.stats.migrated_to_vram };
  };
  const a = run(false), b = run(true);
  assert.is(a.status, 0);
  assert.is(b.status, 0);
  assert.is(a.bytes, b.bytes);
  assert.is(a.vram, b.vram);
});

test.run();
