/*
 * test/drivers/gpu/uvm_va_policy.test.ts - memory advice
 * (drivers/gpu/mockgpu/uvm_va_policy.ts, uvm_policy.ts) and explicit
 * migration (uvm_migrate.ts): ranges split where advice is set, errno
 * for bad arguments, the residency order, accessed-by and preferred
 * location on the fault path, MIGRATE both ways; bytes checked.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import type { vm_area_struct } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { EFAULT, EINVAL } from '../../../include/uapi/asm-generic/errno.js';
import {
  MOCKGPU_OP_INC, MOCKGPU_OP_READ, MOCKGPU_PROCESSOR_CPU, MOCKGPU_PROCESSOR_GPU0, MOCKGPU_PROCESSOR_MIXED,
  MOCKGPU_PROCESSOR_NONE, MOCKGPU_ADVISE_SET_READ_MOSTLY, MOCKGPU_ADVISE_SET_PREFERRED_LOCATION,
  MOCKGPU_ADVISE_UNSET_PREFERRED_LOCATION, MOCKGPU_ADVISE_SET_ACCESSED_BY,
} from '../../../include/uapi/linux/mockgpu.js';
import {
  MOCKGPU_FAULT_ACCESS_READ, MOCKGPU_FAULT_ACCESS_WRITE, UVM_APERTURE_SYS, UVM_APERTURE_VID, mockgpu_pte_aperture,
} from '../../../include/linux/mockgpu.js';
import type { Process } from '../../../tools/include/nolibc/nolibc.js';
import { gpuOpen, gpuSession, type GpuHandle } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';
import { uvm_va_policy_default, uvm_va_policy_ranges } from '../../../drivers/gpu/mockgpu/uvm_va_policy.js';
import { uvm_va_block_select_residency } from '../../../drivers/gpu/mockgpu/uvm_va_block_residency.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';

test.before.each(() => { mockgpuParamsReset(); uvmPerfParamsReset(); });

const P = PAGE_SIZE;

function session<T>(p: Process, body: (g: GpuHandle, vs: uvm_va_space) => Generator<any, T, any>): T {
  return gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open: ${g}`);
    const vs = [...mockgpu_get()!.va_spaces].at(-1)!;
    return yield* body(g, vs);
  });
}

function apertures(vs: uvm_va_space, start: number, len: number): number[] {
  const out: number[] = [];
  uvm_pt_for_each_valid(vs.pt, start, start + len, (_va, pte) => out.push(mockgpu_pte_aperture(pte)));
  return out;
}

test('advice on part of a range splits it; GET_ATTR reports what every range agrees on', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 16 * P, RW, ANON);
  session(p, function* (g, vs) {
    assert.is(yield* g.advise(buf, 16 * P, MOCKGPU_ADVISE_SET_PREFERRED_LOCATION, MOCKGPU_PROCESSOR_GPU0), 0);
    assert.equal(uvm_va_policy_ranges(vs, buf, buf + 16 * P).map((r) => [r.start - buf, r.end - buf]), [[0, 16 * P]]);
    assert.is(yield* g.advise(buf + 4 * P, 4 * P, MOCKGPU_ADVISE_SET_READ_MOSTLY), 0);
    const rs = uvm_va_policy_ranges(vs, buf, buf + 16 * P);
    assert.equal(rs.map((r) => [r.start - buf, r.end - buf, r.read_duplication]),
      [[0, 4 * P, false], [4 * P, 8 * P, true], [8 * P, 16 * P, false]], 'split in three');
    assert.ok(rs.every((r) => r.preferred_location === MOCKGPU_PROCESSOR_GPU0), 'the split pieces keep the old advice');
    assert.is(yield* g.advise(buf + 6 * P, 4 * P, MOCKGPU_ADVISE_SET_ACCESSED_BY, MOCKGPU_PROCESSOR_CPU), 0);
    assert.is(uvm_va_policy_ranges(vs, buf, buf + 16 * P).length, 5);
    assert.equal(yield* g.getAttr(buf + 4 * P, 4 * P),
      { preferred: MOCKGPU_PROCESSOR_GPU0, accessed_by: 0, read_mostly: 1, nr_ranges: 2 });
    assert.equal(yield* g.getAttr(buf + 6 * P, 2 * P),
      { preferred: MOCKGPU_PROCESSOR_GPU0, accessed_by: 1 << MOCKGPU_PROCESSOR_CPU, read_mostly: 1, nr_ranges: 1 });
    assert.is(yield* g.advise(buf, 2 * P, MOCKGPU_ADVISE_UNSET_PREFERRED_LOCATION), 0);
    const a = yield* g.getAttr(buf, 4 * P);
    assert.equal(a, { preferred: MOCKGPU_PROCESSOR_MIXED, accessed_by: 0, read_mostly: 0, nr_ranges: 2 });
    return 0;
  });
});

test('bad advice gets Linux errno: EINVAL for a bad range, advice or processor; EFAULT for unmapped memory', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 8 * P, RW, ANON);
  session(p, function* (g, vs) {
    assert.is(yield* p.sys.munmap(buf + 4 * P, P), 0);
    assert.is(yield* g.advise(buf, 0, MOCKGPU_ADVISE_SET_READ_MOSTLY), -EINVAL);
    assert.is(yield* g.advise(buf + 1, P, MOCKGPU_ADVISE_SET_READ_MOSTLY), -EINVAL);
    assert.is(yield* g.advise(buf, P + 3, MOCKGPU_ADVISE_SET_READ_MOSTLY), -EINVAL);
    assert.is(yield* g.advise(buf, P, 99), -EINVAL);
    assert.is(yield* g.advise(buf, P, MOCKGPU_ADVISE_SET_PREFERRED_LOCATION, 7), -EINVAL);
    assert.is(yield* g.advise(buf, 8 * P, MOCKGPU_ADVISE_SET_READ_MOSTLY), -EFAULT, 'a hole in the middle');
    assert.is(yield* g.migrate(buf, 8 * P, MOCKGPU_PROCESSOR_GPU0), -EFAULT);
    assert.is(yield* g.migrate(buf, P, 5), -EINVAL);
    assert.is(uvm_va_policy_ranges(vs, buf, buf + 8 * P).length, 0, 'a refused call changed nothing');
    return 0;
  });
});

test('munmap drops the advice of the unmapped part', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 8 * P, RW, ANON);
  session(p, function* (g, vs) {
    assert.is(yield* g.advise(buf, 8 * P, MOCKGPU_ADVISE_SET_READ_MOSTLY), 0);
    assert.is(yield* p.sys.munmap(buf + 2 * P, 4 * P), 0);
    assert.equal(uvm_va_policy_ranges(vs, buf, buf + 8 * P).map((r) => [r.start - buf, r.end - buf]),
      [[0, 2 * P], [6 * P, 8 * P]]);
    return 0;
  });
});

test('residency order (UVM block_select_processor_residency): read-mostly > preferred here > pin > accessed-by > preferred elsewhere', () => {
  const vma = { vm_file: null, vm_flags: 0 } as unknown as vm_area_struct;
  const pol = (o: object) => ({ ...uvm_va_policy_default, ...o });
  const R = MOCKGPU_FAULT_ACCESS_READ, W = MOCKGPU_FAULT_ACCESS_WRITE, GPU = 1 << MOCKGPU_PROCESSOR_GPU0;
  assert.is(uvm_va_block_select_residency(vma, uvm_va_policy_default, R, false), 'migrate');
  assert.is(uvm_va_block_select_residency(vma, pol({ read_duplication: true, preferred_location: MOCKGPU_PROCESSOR_GPU0 }), R, false), 'dup');
  assert.is(uvm_va_block_select_residency(vma, pol({ read_duplication: true }), W, false), 'migrate', 'a write never duplicates');
  assert.is(uvm_va_block_select_residency(vma, pol({ preferred_location: MOCKGPU_PROCESSOR_GPU0 }), R, true), 'migrate', 'preferred here beats a pin');
  assert.is(uvm_va_block_select_residency(vma, uvm_va_policy_default, R, true), 'stay');
  assert.is(uvm_va_block_select_residency(vma, pol({ accessed_by: GPU, preferred_location: MOCKGPU_PROCESSOR_GPU0 }), R, false), 'migrate');
  assert.is(uvm_va_block_select_residency(vma, pol({ accessed_by: GPU }), W, false), 'stay');
  assert.is(uvm_va_block_select_residency(vma, pol({ preferred_location: MOCKGPU_PROCESSOR_CPU }), W, false), 'stay');
  assert.is(MOCKGPU_PROCESSOR_NONE, uvm_va_policy_default.preferred_location);
});

function accessed_by_run(p: Process, advice: number, proc: number) {
  const buf = p.mmap(0, 8 * P, RW, ANON);
  p.fill32(buf, 8 * P, 40);
  return session(p, function* (g, vs) {
    assert.is(yield* g.advise(buf, 8 * P, advice, proc), 0);
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: 8 * P, op: MOCKGPU_OP_INC, elem: 64 });
    const w = yield* g.wait(ctx);
    assert.is(w.status, 0);
    const ap = apertures(vs, buf, 8 * P);
    const s = yield* g.stats();
    /* the CPU reads while the GPU still maps: system memory, no CPU fault */
    assert.is(p.read32(buf + 4 * P), 40 + P + 1);
    return { ap, s, buf };
  });
}

test('accessed-by GPU: the GPU maps system memory without migrating; the CPU sees its writes without a fault', () => {
  const p = boot();
  uvm_gpu_init();
  const { ap, s, buf } = accessed_by_run(p, MOCKGPU_ADVISE_SET_ACCESSED_BY, MOCKGPU_PROCESSOR_GPU0);
  assert.equal(ap, new Array(8).fill(UVM_APERTURE_SYS));
  assert.is(s.migrated_to_vram, 0);
  assert.is(s.mapped_remote, 8);
  assert.is(s.cpu_faults, 0);
  assert.is(p.check32(buf, 8 * P, 41), -1);
});

test('preferred location CPU: same, the pages stay in system memory', () => {
  const p = boot();
  uvm_gpu_init();
  const { ap, s, buf } = accessed_by_run(p, MOCKGPU_ADVISE_SET_PREFERRED_LOCATION, MOCKGPU_PROCESSOR_CPU);
  assert.equal(ap, new Array(8).fill(UVM_APERTURE_SYS));
  assert.is(s.migrated_to_vram, 0);
  assert.is(p.check32(buf, 8 * P, 41), -1);
});

test('MIGRATE to the GPU moves and maps the range (no GPU fault after); MIGRATE to the CPU brings every byte back', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 24 * P, RW, ANON);
  p.fill32(buf, 20 * P, 9);            /* the last 4 pages were never touched: migrate allocates them */
  session(p, function* (g, vs) {
    assert.is(yield* g.migrate(buf, 24 * P, MOCKGPU_PROCESSOR_GPU0), 24);
    assert.equal(apertures(vs, buf, 24 * P).join(), new Array(24).fill(UVM_APERTURE_VID).join());
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: 24 * P, op: MOCKGPU_OP_READ, elem: 256 });
    assert.is((yield* g.wait(ctx)).status, 0);
    const s = yield* g.stats();
    assert.is(s.gpu_faults, 0, 'everything was mapped by MIGRATE');
    assert.is(s.vram_pages_used, 24);
    assert.is(yield* g.migrate(buf, 24 * P, MOCKGPU_PROCESSOR_CPU), 24);
    assert.is(mockgpu_get()!.pmm.pages_used, 0);
    assert.is((yield* g.stats()).cpu_faults, 0, 'the CPU never faulted: the pages came back before it looked');
    return 0;
  });
  assert.is(p.check32(buf, 20 * P, 9), -1);
  assert.is(p.read32(buf + 23 * P + 100), 0, 'never-touched memory reads zero');
});

test.run();
