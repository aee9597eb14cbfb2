/*
 * test/drivers/gpu/uvm_perf_prefetch.test.ts - the tree prefetcher
 * (drivers/gpu/mockgpu/uvm_perf_prefetch.ts): which pages of a 2 MiB
 * block it adds to a fault, alone and on the fault path, with the bytes
 * of the buffer checked after each run.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  MOCKGPU_OP_INC, MOCKGPU_OP_READ, MOCKGPU_ADVISE_SET_PREFERRED_LOCATION, MOCKGPU_PROCESSOR_CPU,
} from '../../../include/uapi/linux/mockgpu.js';
import { tracing_on, trace_records } from '../../../lib/sim/trace.js';
import type { Process } from '../../../tools/include/nolibc/nolibc.js';
import { gpuOpen, gpuRunKernel, gpuSession, type GpuStats } from '../../../tools/include/mockgpu.js';
import { uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';
import { PAGES_PER_UVM_VA_BLOCK, uvm_perf_prefetch_compute } from '../../../drivers/gpu/mockgpu/uvm_perf_prefetch.js';

test.before.each(() => { mockgpuParamsReset(); uvmPerfParamsReset(); });

const N = PAGES_PER_UVM_VA_BLOCK;
const BLOCK = N * PAGE_SIZE;

function mask(set: Iterable<number>): Uint8Array {
  const m = new Uint8Array(N);
  for (const i of set) m[i] = 1;
  return m;
}
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
const all = () => mask(range(0, N));
const ones = (m: Uint8Array) => [...m.keys()].filter((i) => m[i]);

function compute(faulted: number[], resident: number[] = [], valid = all(), thrashing: number[] = []): number[] {
  return ones(uvm_perf_prefetch_compute({ valid, resident: mask(resident), faulted: mask(faulted), thrashing: mask(thrashing) }));
}

test('one fault grows to its 64 KiB big page and no further (16 of 32 pages is not over 51%)', () => {
  assert.equal(compute([0]), range(1, 16));
  assert.equal(compute([37]), range(32, 48).filter((i) => i !== 37));
});

test('two big pages fill a 128 KiB subtree; half of 256 KiB is not enough', () => {
  assert.equal(compute([0, 16]), range(1, 32).filter((i) => i !== 16));
});

test('resident pages count: 16 faulted + 32 resident of 64 (75%) fetch the rest of the 256 KiB subtree', () => {
  assert.equal(compute([0], range(32, 64)), range(1, 32));
  /* the largest subtree wins: 16 faulted + 256 resident of 512 is over 51% -> the whole block */
  assert.equal(compute([0], range(256, 512)), range(1, 256));
});

test('a thrashing page keeps its big page from growing; the tree still works on the faulted leaves', () => {
  assert.equal(compute([0], [], all(), [5]), [], 'no growth, and 1 of 2 is not over 51%');
  assert.equal(compute([0, 1, 2], [], all(), [5]), [3], '3 of 4 is over 51%, 3 of 8 is not');
});

test('the threshold, min_faults and the on/off switch change the decision', () => {
  uvm_perf_params.uvm_perf_prefetch_threshold = 40;
  assert.equal(compute([0]), range(1, 32), '16 of 32 (50%) is over 40%, 16 of 64 is not');
  uvm_perf_params.uvm_perf_prefetch_threshold = 51;
  uvm_perf_params.uvm_perf_prefetch_min_faults = 2;
  assert.equal(compute([0]), [], 'one fault is below min_faults');
  assert.equal(compute([0, 16]).length, 30);
  uvm_perf_params.uvm_perf_prefetch_enable = 0;
  assert.equal(compute([0, 16]), []);
});

test('only valid leaves (the VMA) are counted and prefetched', () => {
  assert.equal(compute([0], [], mask(range(0, 8))), range(1, 8));
  assert.equal(compute([3], [], mask(range(2, 12))), range(2, 12).filter((i) => i !== 3));
});

/* a 2 MiB-aligned buffer of @pages pages inside a bigger mapping */
function aligned_buffer(p: Process, pages: number): number {
  const raw = p.mmap(0, 2 * BLOCK + pages * PAGE_SIZE, RW, ANON);
  return raw + (BLOCK - (raw % BLOCK)) % BLOCK;
}

function run_first_page(p: Process, buf: number): GpuStats {
  return gpuRunKernel(p, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 256 }).stats;
}

test('on the fault path: one faulted page brings its big page to VRAM (Migration cause prefetch); bytes intact', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = aligned_buffer(p, 64);
  p.fill32(buf, 64 * PAGE_SIZE, 7);
  tracing_on();
  const s = run_first_page(p, buf);
  assert.is(s.faults_serviced, 1);
  assert.is(s.migrated_to_vram, 16);
  assert.is(s.prefetched_pages, 15);
  const pf = trace_records().filter((e) => e.name === 'Migration' && e.fields.cause === 'prefetch');
  assert.is(pf.length, 1);
  assert.is(pf[0]!.fields.start, buf + PAGE_SIZE);
  assert.is(pf[0]!.fields.end, buf + 16 * PAGE_SIZE);
  const w = new DataView(p.read(buf, 64 * PAGE_SIZE).buffer);
  for (let i = 0; i < 64 * PAGE_SIZE / 4; i++) {
    const want = 7 + i + (i < PAGE_SIZE / 4 ? 1 : 0);     /* the kernel incremented the first page once */
    if (w.getUint32(i * 4, true) !== want >>> 0) assert.unreachable(`word ${i}`);
  }
});

test('prefetch off: only the faulted page moves', () => {
  uvm_perf_params.uvm_perf_prefetch_enable = 0;
  const p = boot();
  uvm_gpu_init();
  const buf = aligned_buffer(p, 64);
  p.fill32(buf, 64 * PAGE_SIZE, 7);
  const s = run_first_page(p, buf);
  assert.is(s.migrated_to_vram, 1);
  assert.is(s.prefetched_pages, 0);
  assert.is(p.check32(buf + PAGE_SIZE, 63 * PAGE_SIZE, 7 + PAGE_SIZE / 4), -1);
});

test('streaming a whole block: prefetch cuts the faults serviced, the bytes are the same', () => {
  const run = (on: number) => {
    uvm_perf_params.uvm_perf_prefetch_enable = on;
    const p = boot();
    uvm_gpu_init();
    const buf = aligned_buffer(p, N);
    p.fill32(buf, BLOCK, 1);
    const r = gpuRunKernel(p, { base: buf, size: BLOCK, op: MOCKGPU_OP_READ, elem: 256 });
    assert.is(r.status, 0);
    assert.is(p.check32(buf, BLOCK, 1), -1);
    return { s: r.stats, sum: r.checksum };
  };
  const off = run(0), on = run(1);
  assert.is(on.sum, off.sum, 'the GPU read the same data');
  assert.is(off.s.faults_serviced, N);
  assert.is(off.s.migrated_to_vram, N);
  assert.is(on.s.migrated_to_vram, N);
  assert.ok(on.s.faults_serviced < N / 4, `prefetch on: ${on.s.faults_serviced} faults`);
  assert.is(on.s.prefetched_pages + on.s.faults_serviced, N);
});

test('no prefetch away from the preferred location: pages preferring the CPU stay in system memory', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = aligned_buffer(p, 16);
  p.fill32(buf, 16 * PAGE_SIZE, 3);
  const s = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open ${g}`);
    assert.is(yield* g.advise(buf + 8 * PAGE_SIZE, 8 * PAGE_SIZE, MOCKGPU_ADVISE_SET_PREFERRED_LOCATION, MOCKGPU_PROCESSOR_CPU), 0);
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 256 });
    yield* g.wait(ctx);
    return yield* g.stats();
  });
  assert.is(s.migrated_to_vram, 8, 'the faulted page and 7 prefetched, none of the CPU-preferred half');
  assert.is(s.prefetched_pages, 7);
  assert.is(p.check32(buf + 8 * PAGE_SIZE, 8 * PAGE_SIZE, 3 + 8 * PAGE_SIZE / 4), -1);
  assert.is(p.read32(buf), 4);
});

test.run();
