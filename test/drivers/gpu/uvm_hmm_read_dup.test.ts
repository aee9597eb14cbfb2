/*
 * test/drivers/gpu/uvm_hmm_read_dup.test.ts - read duplication
 * (drivers/gpu/mockgpu/uvm_hmm_read_dup.ts) and access counters
 * (uvm_gpu_access_counters.ts): when a page is duplicated, when the
 * copies collapse (CPU store, GPU write, munmap, unset advice, close),
 * what the GPU and CPU page tables hold meanwhile; when a region is
 * notified and migrated. Bytes checked after every scenario.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { pte_write, pte_pfn } from '../../../include/linux/pgtable.js';
import {
  MOCKGPU_OP_READ, MOCKGPU_ADVISE_SET_READ_MOSTLY, MOCKGPU_ADVISE_UNSET_READ_MOSTLY, MOCKGPU_ADVISE_SET_ACCESSED_BY,
  MOCKGPU_PROCESSOR_GPU0,
} from '../../../include/uapi/linux/mockgpu.js';
import { UVM_APERTURE_SYS, UVM_APERTURE_VID, mockgpu_pte_aperture, mockgpu_pte_write } from '../../../include/linux/mockgpu.js';
import { tracing_on, trace_records } from '../../../lib/sim/trace.js';
import type { Process } from '../../../tools/include/nolibc/nolibc.js';
import { gpuOpen, gpuSession, type GpuHandle } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';
import { readDupCount, uvm_hmm_read_dup_lookup } from '../../../drivers/gpu/mockgpu/uvm_hmm_read_dup.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import { read_mostly_scenario_run } from '../../../tools/hmm-sim/scenarios/read_mostly.js';

test.before.each(() => { mockgpuParamsReset(); uvmPerfParamsReset(); });

const P = PAGE_SIZE;

function session<T>(p: Process, body: (g: GpuHandle, vs: uvm_va_space) => Generator<any, T, any>): T {
  return gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open: ${g}`);
    return yield* body(g, [...mockgpu_get()!.va_spaces].at(-1)!);
  });
}

function gpu_ptes(vs: uvm_va_space, start: number, len: number): number[] {
  const out: number[] = [];
  uvm_pt_for_each_valid(vs.pt, start, start + len, (_va, pte) => out.push(pte));
  return out;
}

function* read_kernel(g: GpuHandle, base: number, len: number): Generator<any, number, any> {
  const ctx = yield* g.ctxCreate();
  yield* g.launch(ctx, { base, size: len, op: MOCKGPU_OP_READ, elem: 256 });
  const w = yield* g.wait(ctx);
  assert.is(w.status, 0);
  return w.checksum;
}

test('a GPU read of a read-mostly page duplicates it: VID read-only on the GPU, the CPU keeps its page write-protected', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 4 * P, RW, ANON);
  p.fill32(buf, 4 * P, 10);
  const pfn0 = pte_pfn(pte_at(p.mm, buf));
  session(p, function* (g, vs) {
    assert.is(yield* g.advise(buf, 4 * P, MOCKGPU_ADVISE_SET_READ_MOSTLY), 0);
    yield* read_kernel(g, buf, 4 * P);
    const ptes = gpu_ptes(vs, buf, 4 * P);
    assert.equal(ptes.map(mockgpu_pte_aperture), [UVM_APERTURE_VID, UVM_APERTURE_VID, UVM_APERTURE_VID, UVM_APERTURE_VID]);
    assert.ok(ptes.every((e) => !mockgpu_pte_write(e)), 'the copies are read-only');
    assert.is(readDupCount(vs), 4);
    assert.is(mockgpu_get()!.pmm.pages_used, 4);
    const cpte = pte_at(p.mm, buf);
    assert.is(pte_pfn(cpte), pfn0, 'the CPU still maps its own page');
    assert.is(pte_write(cpte), false, 'write-protected while a copy lives');
    assert.is(uvm_hmm_read_dup_lookup(vs, buf)!.page.pfn, pfn0);
    /* the CPU reads without faulting */
    assert.is(yield* p.sys.load(buf + 4, 4), 11);
    assert.is((yield* g.stats()).cpu_faults, 0);
    return yield* g.close();
  });
  assert.is(mockgpu_get()!.pmm.pages_used, 0, 'close released every copy');
  assert.is(p.check32(buf, 4 * P, 10), -1);
  p.write32(buf, 99);
  assert.is(p.read32(buf), 99);
});

test('a CPU store breaks COW: the CLEAR invalidation drops that duplicate only; the next GPU read sees the store', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 4 * P, RW, ANON);
  p.fill32(buf, 4 * P, 0);
  tracing_on();
  session(p, function* (g, vs) {
    assert.is(yield* g.advise(buf, 4 * P, MOCKGPU_ADVISE_SET_READ_MOSTLY), 0);
    const s1 = yield* read_kernel(g, buf, 4 * P);
    yield* p.sys.store(buf + P + 8, 4, 5000);
    assert.is(readDupCount(vs), 3);
    assert.is(uvm_hmm_read_dup_lookup(vs, buf + P), undefined);
    const inv = trace_records().filter((e) => e.name === 'ReadDuplicateInvalidate');
    assert.equal(inv.map((e) => [e.fields.va, e.fields.why]), [[buf + P, 'CLEAR']]);
    assert.ok(pte_write(pte_at(p.mm, buf + P)), 'the CPU got a private writable copy');
    const s2 = yield* read_kernel(g, buf, 4 * P);
    assert.is(s2 >>> 0, (s1 - (P / 4 + 2) + 5000) >>> 0, 'the GPU read the new word');
    assert.is(readDupCount(vs), 4, 'duplicated again on the next read');
    return 0;
  });
  assert.is(p.read32(buf + P + 8), 5000);
});

test('a GPU write collapses the copies, then the page migrates to the writer; munmap and UNSET drop the rest', () => {
  const r = read_mostly_scenario_run(true);
  assert.ok(r.bytes_ok);
  assert.is(r.after_read.read_duplicates, 16);
  assert.is(r.cpu_faults_after_read, 0);
  assert.equal(r.events.filter((e) => e.name === 'ReadDuplicateInvalidate').map((e) => [e.va / P, e.why]),
    [[0, 'CLEAR'], [5, 'gpu_write']]);
  assert.is(r.end.migrated_to_vram, 1, 'only the written page moved');
  const off = read_mostly_scenario_run(false);
  assert.ok(off.bytes_ok);
  assert.is(off.after_read.read_duplicates, 0);
  assert.is(off.cpu_faults_after_read, 16, 'without the advice the CPU read faults every page back');
  const sw = read_mostly_scenario_run(true, 0);
  assert.is(sw.after_read.read_duplicates, 0, 'the switch turns read duplication off');
  assert.ok(sw.bytes_ok);

  uvmPerfParamsReset();
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 8 * P, RW, ANON);
  p.fill32(buf, 8 * P, 3);
  session(p, function* (g, vs) {
    assert.is(yield* g.advise(buf, 8 * P, MOCKGPU_ADVISE_SET_READ_MOSTLY), 0);
    yield* read_kernel(g, buf, 8 * P);
    assert.is(readDupCount(vs), 8, 'dup 8');
    assert.is(yield* g.advise(buf, 2 * P, MOCKGPU_ADVISE_UNSET_READ_MOSTLY), 0, 'unset');
    assert.is(readDupCount(vs), 6, 'dup 6');
    assert.is(gpu_ptes(vs, buf, 2 * P).length, 0, 'unmapped');
    assert.is(yield* p.sys.munmap(buf + 6 * P, 2 * P), 0, 'munmap');
    assert.is(readDupCount(vs), 4, 'dup 4');
    assert.is(mockgpu_get()!.pmm.pages_used, 4, 'vram 4');
    return 0;
  });
  assert.is(p.check32(buf, 6 * P, 3), -1);
});

test('access counters: 256 remote accesses to a 2 MiB region notify, and the region migrates to VRAM (switch on)', () => {
  const run = (enable: number) => {
    uvmPerfParamsReset();
    uvm_perf_params.uvm_perf_access_counter_migration_enable = enable;
    const p = boot();
    uvm_gpu_init();
    const buf = p.mmap(0, 16 * P, RW, ANON);
    p.fill32(buf, 16 * P, 77);
    tracing_on();
    const out = session(p, function* (g, vs) {
      assert.is(yield* g.advise(buf, 16 * P, MOCKGPU_ADVISE_SET_ACCESSED_BY, MOCKGPU_PROCESSOR_GPU0), 0);
      const ctx = yield* g.ctxCreate();
      for (let i = 0; i < 2; i++) {
        yield* g.launch(ctx, { base: buf, size: 16 * P, op: MOCKGPU_OP_READ, elem: 16 });
        assert.is((yield* g.wait(ctx)).status, 0);
      }
      return { s: yield* g.stats(), ap: gpu_ptes(vs, buf, 16 * P).map(mockgpu_pte_aperture) };
    });
    assert.is(p.check32(buf, 16 * P, 77), -1);
    return { ...out, ev: trace_records().filter((e) => e.name === 'AccessCounter' || (e.name === 'Migration' && e.fields.cause === 'access_counters')) };
  };
  const off = run(-1);
  assert.is(off.s.access_counter_notifications, 0, 'default: off (no ATS in this model)');
  assert.is(off.s.migrated_to_vram, 0);
  assert.ok(off.ap.every((a) => a === UVM_APERTURE_SYS));
  const on = run(1);
  assert.ok(on.s.access_counter_notifications >= 1);
  assert.is(on.ev[0]!.name, 'AccessCounter');
  assert.is(on.ev[0]!.fields.count, 256);
  assert.is(on.s.access_counter_migrations, 16);
  assert.is(on.s.migrated_to_vram, 16);
  assert.ok(on.ap.every((a) => a === UVM_APERTURE_VID), 'the second kernel ran from VRAM');
});

test.run();
