/*
 * test/drivers/gpu/uvm_hmm_two_gpus.test.ts - two mock GPUs
 * (/dev/mockgpu0 and /dev/mockgpu1, mockgpu_params.nr_gpus = 2), each with
 * its own VRAM, page tables and fault buffer, on one process's memory:
 * a page moves GPU to GPU through system memory, and the CPU, GPU0 and
 * GPU1 taking turns or running at once on one buffer stay coherent
 * (every word checked).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MOCKGPU_OP_ATOMIC_INC, MOCKGPU_OP_INC } from '../../../include/uapi/linux/mockgpu.js';
import { UVM_APERTURE_VID, mockgpu_pte_aperture } from '../../../include/linux/mockgpu.js';
import { current, sched_yield, type Sleepable } from '../../../lib/sim/sched.js';
import { gpuOpen, gpuSession, type GpuHandle, type GpuStats } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpu_params, mockgpuParamsReset, uvm_gpu_stat } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import type { Process } from '../../../tools/include/nolibc/nolibc.js';

test.before.each(() => mockgpuParamsReset());
test.after.each(() => mockgpuParamsReset());

const N = 16;
const LEN = N * PAGE_SIZE;

function setup(): Process {
  mockgpu_params.nr_gpus = 2;
  mockgpu_params.vram_bytes = 4 << 20;
  const p = boot({ ram_bytes: 64 << 20 });
  uvm_gpu_init();
  return p;
}

function* open2(p: Process): Sleepable<[GpuHandle, GpuHandle]> {
  const g0 = (yield* gpuOpen(p, 0)) as GpuHandle, g1 = (yield* gpuOpen(p, 1)) as GpuHandle;
  assert.type(g0, 'object');
  assert.type(g1, 'object');
  return [g0, g1];
}

function vid_ptes(minor: number, start: number, len: number): number {
  let n = 0;
  const vs = [...mockgpu_get(minor)!.va_spaces][0]!;
  uvm_pt_for_each_valid(vs.pt, start, start + len, (_va, pte) => { if (mockgpu_pte_aperture(pte) === UVM_APERTURE_VID) n++; });
  return n;
}

test('two GPUs: /dev/mockgpu0 and /dev/mockgpu1 with their own VRAM (distinct device pfns) and page tables', () => {
  setup();
  const g0 = mockgpu_get(0)!, g1 = mockgpu_get(1)!;
  assert.ok(g0 !== g1);
  assert.is(g0.pmm.nr_roots, 2);
  assert.is(g1.pmm.nr_roots, 2);
  const r0 = g0.pmm.pgmap.range, r1 = g1.pmm.pgmap.range;
  assert.ok(r0.end < r1.start || r1.end < r0.start, 'VRAM ranges do not overlap');
  assert.is(mockgpu_get(2), null);
});

test('a page moves GPU0 -> GPU1 through system memory: GPU0 migrates it back to RAM, GPU1 migrates it in; bytes intact', () => {
  const p = setup();
  const buf = p.mmap(0, LEN, RW, ANON);
  p.fill32(buf, LEN, 10);
  gpuSession(p, function* () {
    const [g0, g1] = yield* open2(p);
    const c0 = yield* g0.ctxCreate(), c1 = yield* g1.ctxCreate();
    yield* g0.launch(c0, { base: buf, size: LEN, op: MOCKGPU_OP_INC, elem: 512 });
    assert.is((yield* g0.wait(c0)).status, 0);
    assert.is(vid_ptes(0, buf, LEN), N, 'on GPU0');
    yield* g1.launch(c1, { base: buf, size: LEN, op: MOCKGPU_OP_INC, elem: 512 });
    assert.is((yield* g1.wait(c1)).status, 0);
    return 0;
  });
  const g0 = mockgpu_get(0)!, g1 = mockgpu_get(1)!;
  assert.equal([uvm_gpu_stat(g0, 'migrated_to_vram'), uvm_gpu_stat(g0, 'migrated_to_sysmem')], [N, N], 'GPU0: in, then out');
  assert.is(uvm_gpu_stat(g1, 'migrated_to_vram'), N, 'GPU1: in from RAM');
  assert.equal([g0.pmm.pages_used, g1.pmm.pages_used], [0, N]);
  assert.equal([vid_ptes(0, buf, LEN), vid_ptes(1, buf, LEN)], [0, N], 'GPU0 unmapped, GPU1 maps its VRAM');
  assert.is(p.check32(buf, LEN, 12), -1, 'both increments landed');
});

test('CPU, GPU0 and GPU1 taking turns on one buffer, 4 rounds: every word incremented 12 times', () => {
  const p = setup();
  const buf = p.mmap(0, LEN, RW, ANON);
  p.fill32(buf, LEN, 0);
  gpuSession(p, function* () {
    const [g0, g1] = yield* open2(p);
    const c0 = yield* g0.ctxCreate(), c1 = yield* g1.ctxCreate();
    for (let round = 0; round < 4; round++) {
      yield* g0.launch(c0, { base: buf, size: LEN, op: MOCKGPU_OP_INC, elem: 256 });
      assert.is((yield* g0.wait(c0)).status, 0);
      for (let a = buf; a < buf + LEN; a += 4) yield* p.sys.atomic(a, 4, (o) => o + 1);
      yield* g1.launch(c1, { base: buf, size: LEN, op: MOCKGPU_OP_INC, elem: 256 });
      assert.is((yield* g1.wait(c1)).status, 0);
    }
    return 0;
  });
  assert.is(p.check32(buf, LEN, 12), -1);
});

test('CPU, GPU0 and GPU1 at once on one buffer (atomic increments): no update lost while pages bounce between them', () => {
  const p = setup();
  const buf = p.mmap(0, LEN, RW, ANON);
  p.fill32(buf, LEN, 0);
  const ELEM = 64, PASSES = 3;
  const stats = gpuSession(p, function* () {
    const [g0, g1] = yield* open2(p);
    const c0 = yield* g0.ctxCreate(), c1 = yield* g1.ctxCreate();
    for (let i = 0; i < PASSES; i++) {
      yield* g0.launch(c0, { base: buf, size: LEN, op: MOCKGPU_OP_ATOMIC_INC, elem: ELEM });
      yield* g1.launch(c1, { base: buf, size: LEN, op: MOCKGPU_OP_ATOMIC_INC, elem: ELEM });
    }
    const cpu = current().sched!.spawn('cpu', function* () {
      for (let i = 0; i < PASSES; i++) for (let a = buf; a < buf + LEN; a += ELEM) yield* p.sys.atomic(a, 4, (o) => o + 1);
    }, 'user', p.task);
    const w0 = yield* g0.wait(c0), w1 = yield* g1.wait(c1);
    assert.equal([w0.status, w1.status], [0, 0]);
    while (cpu.state !== 'done') yield* sched_yield();
    return [yield* g0.stats(), yield* g1.stats()] as [GpuStats, GpuStats];
  });
  for (let a = buf; a < buf + LEN; a += ELEM) assert.is(p.read32(a), (a - buf) / 4 + 3 * PASSES, `word at +${a - buf}`);
  assert.ok(stats[0].migrated_to_sysmem + stats[1].migrated_to_sysmem > 0, 'pages moved between the GPUs and the CPU');
});

test.run();
