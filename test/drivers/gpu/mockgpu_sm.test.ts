/*
 * test/drivers/gpu/mockgpu_sm.test.ts - kernels as access streams
 * (drivers/gpu/mockgpu/mockgpu_sm.ts): launch checks, the patterns, the
 * order of kernels in one context.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { EINVAL, EAGAIN } from '../../../include/uapi/asm-generic/errno.js';
import {
  MOCKGPU_OP_INC, MOCKGPU_OP_READ, MOCKGPU_OP_WRITE, MOCKGPU_PATTERN_GATHER, MOCKGPU_PATTERN_STRIDED, type mockgpu_launch,
} from '../../../include/uapi/linux/mockgpu.js';
import { gpuOpen, gpuRunKernel, gpuSession } from '../../../tools/include/mockgpu.js';
import { runAs } from '../../../tools/include/nolibc/nolibc.js';
import { uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';
import { mockgpu_launch_check } from '../../../drivers/gpu/mockgpu/mockgpu_sm.js';

test.before.each(() => { mockgpuParamsReset(); uvmPerfParamsReset(); });

const L = (o: Partial<mockgpu_launch>): mockgpu_launch => ({ ctx: 1, pattern: 0, op: 0, base: 0x10000, size: 4096, elem: 4,
  stride: 0, count: 0, aux: 0, seed: 1, write_pct: 0, value: 0, fence: 0, ...o });

test('a launch is checked: pattern, op, element size, alignment, stride, GATHER index array', () => {
  assert.is(mockgpu_launch_check(L({})), 0);
  assert.is(mockgpu_launch_check(L({ pattern: 9 })), -EINVAL);
  assert.is(mockgpu_launch_check(L({ op: 9 })), -EINVAL);
  assert.is(mockgpu_launch_check(L({ elem: 6 })), -EINVAL);
  assert.is(mockgpu_launch_check(L({ elem: 8192 })), -EINVAL);
  assert.is(mockgpu_launch_check(L({ base: 0x10002 })), -EINVAL);
  assert.is(mockgpu_launch_check(L({ size: 0 })), -EINVAL);
  assert.is(mockgpu_launch_check(L({ pattern: MOCKGPU_PATTERN_STRIDED, stride: 0 })), -EINVAL);
  assert.is(mockgpu_launch_check(L({ pattern: MOCKGPU_PATTERN_GATHER, aux: 2 })), -EINVAL);
  assert.is(mockgpu_launch_check(L({ write_pct: 101 })), -EINVAL);
  const l = L({ elem: 16 });
  mockgpu_launch_check(l);
  assert.is(l.count, 4096 / 16, 'count 0 means the whole buffer');
});

test('a bad launch reaches user space as -EINVAL, and with no scheduler running LAUNCH answers -EAGAIN', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  assert.is(gpuRunKernel(p, { base: buf + 2, size: PAGE_SIZE }).status, -EINVAL);
  const r = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(String(g));
    return g;
  });
  const raw = gpuSession(p, function* () { return yield* r.ctxCreate(); });
  assert.ok(raw > 0);
  /* outside any session the GPU cannot run */
  assert.is(runAs(p.task, r.launch(raw, { base: buf, size: PAGE_SIZE })), -EAGAIN);
});

test('GATHER: the GPU reads an index array, then touches only the elements it names', () => {
  const p = boot();
  uvm_gpu_init();
  const data = p.mmap(0, 8 * PAGE_SIZE, RW, ANON);
  const idx = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.fill32(data, 8 * PAGE_SIZE, 0);
  const picks = [5, 1030, 4000, 7];
  uvm_perf_params.uvm_perf_prefetch_enable = 0;     /* count demand migrations only */
  picks.forEach((v, i) => p.write32(idx + 4 * i, v));
  const r = gpuRunKernel(p, { base: data, size: 8 * PAGE_SIZE, elem: 4, op: MOCKGPU_OP_INC, pattern: MOCKGPU_PATTERN_GATHER,
    aux: idx, count: picks.length });
  assert.is(r.status, 0);
  for (const v of picks) assert.is(p.read32(data + 4 * v), v + 1);
  assert.is(p.read32(data + 4 * 6), 6, 'an element not named is untouched');
  assert.is(r.stats.migrated_to_vram, 1 + 3, 'the index page and the 3 data pages named');
});

test('STRIDED: element i at base + (i * stride) mod size', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  const r = gpuRunKernel(p, { base: buf, size: 4 * PAGE_SIZE, elem: 8, op: MOCKGPU_OP_WRITE, value: 0xab,
    pattern: MOCKGPU_PATTERN_STRIDED, stride: PAGE_SIZE + 8, count: 4 });
  assert.is(r.status, 0);
  assert.equal([0, 1, 2, 3].map((i) => p.read32(buf + i * (PAGE_SIZE + 8))), [0xab, 0xab, 0xab, 0xab]);
  assert.is(p.read32(buf + 8), 0);
});

test('kernels of one context run in launch order: a write, then a read sees it', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  const r = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(String(g));
    const ctx = yield* g.ctxCreate();
    const s1 = yield* g.launch(ctx, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 2 });
    const s2 = yield* g.launch(ctx, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_READ });
    return { s1, s2, w: yield* g.wait(ctx) };
  });
  assert.equal([r.s1, r.s2], [1, 2]);
  assert.is(r.w.status, 0);
  assert.is(r.w.checksum, 2 * (2 * PAGE_SIZE / 4), 'the read kernel summed the written words');
});

test.run();
