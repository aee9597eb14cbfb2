/*
 * test/drivers/gpu/uvm_gpu_access_counters.test.ts - access counters
 * (drivers/gpu/mockgpu/uvm_gpu_access_counters.ts) under VRAM pressure:
 * a notification migrates into free VRAM only; with VRAM full it starts
 * no migrate round and evicts nothing (issue 16: at 3x oversubscription
 * each notification used to evict a 2 MiB root for a 2 MiB region, 3.95x
 * the time of the run without counters). Bytes checked after each run.
 * Simulated time only. (The switch-on case with free VRAM is in
 * uvm_hmm_read_dup.test.ts.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MOCKGPU_OP_INC, MOCKGPU_OP_READ, MOCKGPU_ADVISE_SET_ACCESSED_BY, MOCKGPU_PROCESSOR_GPU0 } from '../../../include/uapi/linux/mockgpu.js';
import { UVM_APERTURE_SYS, UVM_APERTURE_VID, mockgpu_pte_aperture } from '../../../include/linux/mockgpu.js';
import { get_counter } from '../../../lib/sim/trace.js';
import { gpuOpen, gpuSession, type GpuHandle, type KernelSpec } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpu_params, mockgpuParamsReset, uvm_gpu_stat, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import { WORKLOADS, gpu_policy_run } from '../../../tools/bench/gpu_policies.js';

test.before.each(() => { mockgpuParamsReset(); uvmPerfParamsReset(); });

const P = PAGE_SIZE, MiB = 1 << 20;

function apertures(vs: uvm_va_space, start: number, len: number): number[] {
  const out: number[] = [];
  uvm_pt_for_each_valid(vs.pt, start, start + len, (_va, pte) => out.push(mockgpu_pte_aperture(pte)));
  return out;
}

function* kernel(g: GpuHandle, ctx: number, spec: KernelSpec): Generator<any, void, any> {
  yield* g.launch(ctx, spec);
  assert.is((yield* g.wait(ctx)).status, 0);
}

/*
 * VRAM of @vram_bytes; buffer A (2 MiB) incremented on the GPU first (it
 * fills one root chunk), then buffer B (16 pages, accessed-by GPU0: mapped
 * remotely) read twice with access-counter migration on. Counters are read
 * after the session, when the notification bottom half has drained.
 */
function hot_remote_after_full(vram_bytes: number) {
  mockgpu_params.vram_bytes = vram_bytes;
  uvm_perf_params.uvm_perf_access_counter_migration_enable = 1;
  const p = boot();
  uvm_gpu_init();
  const a = p.mmap(0, 2 * MiB, RW, ANON), b = p.mmap(0, 16 * P, RW, ANON);
  p.fill32(a, 2 * MiB, 5);
  p.fill32(b, 16 * P, 77);
  const skipped0 = get_counter('uvm_access_counter_skipped');
  const vs = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open: ${g}`);
    const ctx = yield* g.ctxCreate();
    yield* kernel(g, ctx, { base: a, size: 2 * MiB, op: MOCKGPU_OP_INC, elem: 1024 });
    assert.is(yield* g.advise(b, 16 * P, MOCKGPU_ADVISE_SET_ACCESSED_BY, MOCKGPU_PROCESSOR_GPU0), 0);
    for (let i = 0; i < 2; i++) yield* kernel(g, ctx, { base: b, size: 16 * P, op: MOCKGPU_OP_READ, elem: 16 });
    return [...mockgpu_get()!.va_spaces].at(-1)!;
  });
  const gpu = mockgpu_get()!;
  const st = (n: Parameters<typeof uvm_gpu_stat>[1]) => uvm_gpu_stat(gpu, n);
  const out = {
    notified: st('access_counter_notifications'), moved: st('access_counter_migrations'), evictions: st('evictions'),
    skipped: get_counter('uvm_access_counter_skipped') - skipped0,
    ap_a: apertures(vs, a, 2 * MiB), ap_b: apertures(vs, b, 16 * P),
  };
  assert.is(p.check32(a, 2 * MiB, 6), -1, 'A incremented once');
  assert.is(p.check32(b, 16 * P, 77), -1, 'B intact');
  return out;
}

test('VRAM full: a notification starts no migrate round, evicts nothing, B stays remote and A resident', () => {
  const r = hot_remote_after_full(2 * MiB);
  assert.ok(r.notified >= 1, 'notified');
  assert.is(r.skipped, r.notified, 'every notification skipped before migrate_vma_setup()');
  assert.is(r.moved, 0);
  assert.is(r.evictions, 0, 'a notification never evicts');
  assert.is(r.ap_b.length, 16);
  assert.ok(r.ap_b.every((x) => x === UVM_APERTURE_SYS), 'B mapped remotely');
  assert.is(r.ap_a.length, 512);
  assert.ok(r.ap_a.every((x) => x === UVM_APERTURE_VID), 'A still in VRAM');
});

test('a free root chunk: the same notification migrates B into it, still without eviction', () => {
  const r = hot_remote_after_full(4 * MiB);
  assert.ok(r.notified >= 1);
  assert.is(r.skipped, 0);
  assert.is(r.moved, 16);
  assert.is(r.evictions, 0);
  assert.ok(r.ap_a.every((x) => x === UVM_APERTURE_VID));
});

test('bench streaming at 3x VRAM: access_counters=1 costs no time and no copies over the defaults (issue 16)', () => {
  const w = WORKLOADS.find((x) => x.name === 'streaming')!;
  const off = gpu_policy_run(w, 3, () => {});
  const on = gpu_policy_run(w, 3, () => { uvm_perf_params.uvm_perf_access_counter_migration_enable = 1; });
  assert.ok(off.ok && on.ok, 'bytes');
  assert.ok(on.stats.access_counter_notifications > 0, 'notified');
  assert.is(on.stats.access_counter_migrations, 0);
  assert.is(on.stats.evictions, off.stats.evictions);
  assert.is(on.stats.migrated_to_vram, off.stats.migrated_to_vram);
  assert.ok(on.ns <= off.ns * 1.05, `time ${on.ns} vs ${off.ns}`);
});

test.run();
