/*
 * test/drivers/gpu/uvm_hmm.test.ts - the mock GPU on mainline HMM
 * (drivers/gpu/mockgpu/uvm_hmm.ts): migration to VRAM on GPU fault and
 * back on CPU fault with every byte checked, remote mapping of shared
 * memory, invalidation through the command queue, fatal faults, exit.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, MAP_SHARED, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { EFAULT, EPERM } from '../../../include/uapi/asm-generic/errno.js';
import { MOCKGPU_OP_INC, MOCKGPU_OP_READ, MOCKGPU_OP_WRITE, MOCKGPU_PROCESSOR_CPU } from '../../../include/uapi/linux/mockgpu.js';
import { UVM_APERTURE_VID, mockgpu_pte_aperture } from '../../../include/linux/mockgpu.js';
import { MMU_NOTIFY_CLEAR, type mmu_notifier_range } from '../../../include/linux/mmu_notifier.js';
import { runSync, sched_yield } from '../../../lib/sim/sched.js';
import { tracing_on, trace_records } from '../../../lib/sim/trace.js';
import { gpuOpen, gpuRunKernel, gpuSession, type GpuHandle } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpu_params, mockgpuParamsReset, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_hmm_invalidate } from '../../../drivers/gpu/mockgpu/uvm_hmm.js';
import { uvm_perf_params, uvmPerfParamsReset } from '../../../drivers/gpu/mockgpu/uvm_perf_module.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import { Process } from '../../../tools/include/nolibc/nolibc.js';
import { sleeping_subscriber } from '../../mm/swap_helpers.js';
import { nr_free_pages } from '../../../mm/page_alloc.js';
import { get_counter } from '../../../lib/sim/trace.js';

test.before.each(() => { mockgpuParamsReset(); uvmPerfParamsReset(); });

const N = 32;

function ptes(vs: uvm_va_space, start: number, len: number): number[] {
  const out: number[] = [];
  uvm_pt_for_each_valid(vs.pt, start, start + len, (_va, pte) => out.push(pte));
  return out;
}

/* open the GPU, run @body with the handle inside a session */
function session<T>(p: Process, body: (g: GpuHandle) => Generator<any, T, any>): T {
  return gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(`open: ${g}`);
    return yield* body(g);
  });
}

test('a kernel over malloc\'d memory migrates it to VRAM, changes every byte, and the CPU reads them back through migrate_to_ram', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, N * PAGE_SIZE, RW, ANON);
  p.fill32(buf, N * PAGE_SIZE, 1000);
  const r = gpuRunKernel(p, { base: buf, size: N * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 64 });
  assert.is(r.status, 0);
  assert.is(r.stats.migrated_to_vram, N);
  assert.is(r.stats.mapped_remote, 0);
  assert.is(r.stats.vram_pages_used, N);
  const gpu = mockgpu_get()!;
  assert.is(gpu.pmm.pages_used, N);
  assert.is(p.check32(buf, N * PAGE_SIZE, 1001), -1, 'every word was incremented once');
  assert.is(gpu.pmm.pages_used, 0, 'the CPU faults brought every page back and freed VRAM');
  assert.is(gpu.stats[10], N, 'one CPU fault per page');
});

test('VRAM pages are mapped with aperture VID; the CPU fault clears the GPU PTE before the page moves', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 4 * PAGE_SIZE, 0);
  let vs!: uvm_va_space;
  session(p, function* (g) {
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: 4 * PAGE_SIZE, op: MOCKGPU_OP_READ });
    const w = yield* g.wait(ctx);
    assert.is(w.status, 0);
    assert.is(w.checksum, (4 * PAGE_SIZE / 4) * (4 * PAGE_SIZE / 4 - 1) / 2 % 2 ** 32, 'the GPU read the CPU\'s data');
    vs = [...mockgpu_get()!.va_spaces][0]!;
    return 0;
  });
  assert.equal(ptes(vs, buf, 4 * PAGE_SIZE).map(mockgpu_pte_aperture), [0, 0, 0, 0].map(() => UVM_APERTURE_VID));
  assert.is(p.read32(buf + PAGE_SIZE), PAGE_SIZE / 4);
  assert.is(ptes(vs, buf, 4 * PAGE_SIZE).length, 3, 'the page the CPU touched is no longer mapped on the GPU');
});

test('shared anonymous memory stays in system memory and is mapped remotely (aperture SYS); the CPU sees the GPU\'s stores at once', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 8 * PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
  p.fill32(buf, 8 * PAGE_SIZE, 0);
  const r = gpuRunKernel(p, { base: buf, size: 8 * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 0xdeadbeef });
  assert.is(r.status, 0);
  assert.is(r.stats.migrated_to_vram, 0);
  assert.is(r.stats.mapped_remote, 8);
  assert.is(p.read32(buf + 5 * PAGE_SIZE + 12), 0xdeadbeef);
  assert.is(mockgpu_get()!.stats[10], 0, 'no CPU fault: the data never left RAM');
});

test('an untouched shared page is faulted in for write by hmm_range_fault, then mapped remotely', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS);
  const r = gpuRunKernel(p, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 77, elem: PAGE_SIZE });
  assert.equal([r.status, r.stats.mapped_remote, r.stats.faults_serviced], [0, 2, 2]);
  assert.is(p.read32(buf + PAGE_SIZE + 4092), 77);
});

test('with migrate_to_vram off, anonymous memory is mapped remotely too', () => {
  mockgpu_params.migrate_to_vram = false;
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 4 * PAGE_SIZE, 0);
  const r = gpuRunKernel(p, { base: buf, size: 4 * PAGE_SIZE, op: MOCKGPU_OP_INC });
  assert.equal([r.status, r.stats.migrated_to_vram, r.stats.mapped_remote], [0, 0, 4]);
  assert.is(p.check32(buf, 4 * PAGE_SIZE, 1), -1);
});

test('munmap of GPU-mapped memory: the notifier pushes the unmap and waits; the GPU update is later, on the channel thread', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 4 * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 4 * PAGE_SIZE, 0);
  tracing_on();
  let vs!: uvm_va_space;
  session(p, function* (g) {
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: 4 * PAGE_SIZE, op: MOCKGPU_OP_INC });
    yield* g.wait(ctx);
    vs = [...mockgpu_get()!.va_spaces][0]!;
    assert.is(ptes(vs, buf, 4 * PAGE_SIZE).length, 4);
    assert.is(yield* p.sys.munmap(buf, 4 * PAGE_SIZE), 0);
    return 0;
  });
  assert.is(ptes(vs, buf, 4 * PAGE_SIZE).length, 0);
  assert.is(mockgpu_get()!.pmm.pages_used, 0, 'the VRAM pages were freed with the mapping');
  const recs = trace_records();
  const inv = recs.find((r) => r.name === 'uvm_hmm_invalidate' && r.fields.event === 'UNMAP')!;
  const clr = recs.find((r) => r.name === 'uvm_pte_clear' && r.ts >= inv.ts)!;
  const done = recs.find((r) => r.name === 'uvm_hmm_invalidate_done' && r.ts >= inv.ts)!;
  assert.is(clr.thread, 'mockgpu0-host', 'the GPU PT changes on the engine thread');
  assert.ok(clr.ts > inv.ts, 'not atomic with the CPU: the GPU PTE clears after the callback started');
  assert.ok(done.ts >= clr.ts, 'the callback returns only after the GPU executed the unmap');
});

test('a non-blockable invalidation returns false (-EAGAIN) while the GPU maps the range, true when it maps nothing', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  let vs!: uvm_va_space;
  uvm_perf_params.uvm_perf_prefetch_enable = 0;    /* the second page must stay unmapped on the GPU */
  gpuRunKernel(p, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 1 });
  vs = [...mockgpu_get()!.va_spaces][0]!;
  const range = (start: number): mmu_notifier_range => ({ mm: p.mm, start, end: start + PAGE_SIZE, flags: 0, event: MMU_NOTIFY_CLEAR, owner: null });
  assert.is(vs, undefined as unknown as uvm_va_space, 'gpuRunKernel closed the device: no address space left');
  session(p, function* (g) {
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 2 });
    yield* g.wait(ctx);
    vs = [...mockgpu_get()!.va_spaces][0]!;
    return 0;
  });
  const seq = vs.notifier!.invalidate_seq;
  assert.is(runSync(uvm_hmm_invalidate(vs.notifier!, range(buf), seq + 2)), false);
  assert.is(ptes(vs, buf, PAGE_SIZE).length, 1, 'nothing was torn down');
  assert.is(runSync(uvm_hmm_invalidate(vs.notifier!, range(buf + PAGE_SIZE), seq + 2)), true);
});

test('a GPU access with no VMA behind it is fatal: the context is cancelled and WAIT reports -EFAULT, no hang', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, 2 * PAGE_SIZE, RW, ANON);
  const r = session(p, function* (g) {
    assert.is(yield* p.sys.munmap(buf + PAGE_SIZE, PAGE_SIZE), 0);
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_READ });
    const w = yield* g.wait(ctx);
    const again = yield* g.launch(ctx, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_READ });
    return { w, again, stats: yield* g.stats() };
  });
  assert.is(r.w.status, -EFAULT);
  assert.is(r.again, -EFAULT, 'a cancelled context refuses new launches with its error');
  assert.is(r.stats.fatal_faults, 1);
});

test('a GPU store to a read-only mapping is fatal with -EPERM and the data is untouched', () => {
  const p = boot();
  uvm_gpu_init();
  const buf = p.mmap(0, PAGE_SIZE, RW, ANON);
  p.write32(buf, 42);
  p.mprotect(buf, PAGE_SIZE, PROT_READ);
  const r = gpuRunKernel(p, { base: buf, size: PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 7 });
  assert.is(r.status, -EPERM);
  assert.is(p.read32(buf), 42);
});

test('exit with VRAM pages and faults pending: no hang, no VRAM leaked, the fault buffer drained', () => {
  const p = boot();
  uvm_gpu_init();
  const n = 256;
  const buf = p.mmap(0, n * PAGE_SIZE, RW, ANON);
  p.fill32(buf, n * PAGE_SIZE, 0);
  session(p, function* (g) {
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: buf, size: n * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 4096 });
    /* let the GPU get going: the first faults are serviced, others pending */
    while (mockgpu_get()!.pmm.pages_used === 0) yield* sched_yield();
    assert.ok(mockgpu_get()!.fault_buffer.bh_running || mockgpu_get()!.sms_running > 0, 'the kernel is still running');
    yield* p.sys.exit(0);
    return 0;
  });
  const gpu = mockgpu_get()!;
  assert.ok(gpu.stats[7]! > 0, 'some pages had moved to VRAM');
  assert.is(gpu.pmm.pages_used, 0, 'every VRAM page came back to the PMM');
  assert.is(gpu.fault_buffer.get, gpu.fault_buffer.put);
  assert.not.ok(gpu.fault_buffer.bh_running);
  assert.is(gpu.va_spaces.size, 0);
  assert.is(gpu.sms_running, 0);
});

/*
 * The RAM targets of the VRAM -> system copies (uvm_hmm_devmem_fault on a
 * CPU fault, uvm_migrate_to_sysmem for MIGRATE to the CPU) are allocated
 * in process context with GFP_HIGHUSER_MOVABLE, as nouveau's
 * migrate_to_ram: direct reclaim may sleep and sends blockable ranges.
 * Before, they used the plain allocator (reclaim inline with
 * non-blockable ranges, now a might_sleep BUG).
 */
test('CPU faults and MIGRATE to the CPU under memory pressure: the RAM targets\' direct reclaim sends blockable ranges, a sleeping subscriber is waited for', () => {
  const p = boot({ ram_bytes: 8 << 20, swap_bytes: 32 << 20 });
  uvm_gpu_init();
  const filler = Process.spawn('filler');
  const fa = filler.mmap(0, 4096 * PAGE_SIZE, RW, ANON);
  const sub = sleeping_subscriber(filler, fa, 4096 * PAGE_SIZE);
  const buf = p.mmap(0, 2 * N * PAGE_SIZE, RW, ANON);
  p.fill32(buf, 2 * N * PAGE_SIZE, 1000);
  const r = gpuRunKernel(p, { base: buf, size: 2 * N * PAGE_SIZE, op: MOCKGPU_OP_INC, elem: 64 });
  assert.is(r.status, 0);
  assert.is(r.stats.migrated_to_vram, 2 * N);
  const used = nr_free_pages() - 8;
  filler.fill32(fa, used * PAGE_SIZE, 5);          /* RAM full of the filler's pages, the oldest on the LRU */
  let stalls = get_counter('allocstall');
  assert.is(p.check32(buf, N * PAGE_SIZE, 1001), -1, 'CPU faults bring the first half back');
  assert.ok(get_counter('allocstall') > stalls, 'the CPU faults\' RAM targets reclaimed directly');
  assert.ok(sub.blockable > 0 && sub.refused === 0, 'blockable ranges only');
  const more = nr_free_pages() - 4;
  filler.fill32(fa + used * PAGE_SIZE, more * PAGE_SIZE, 6);
  const blockable = sub.blockable;
  stalls = get_counter('allocstall');
  const moved = session(p, function* (g) { return yield* g.migrate(buf + N * PAGE_SIZE, N * PAGE_SIZE, MOCKGPU_PROCESSOR_CPU); });
  assert.is(moved, N, 'MIGRATE to the CPU moved the second half');
  assert.ok(get_counter('allocstall') > stalls, 'the migration\'s RAM targets reclaimed directly');
  assert.ok(sub.blockable > blockable && sub.refused === 0 && sub.slept > blockable, 'blockable ranges again, the subscriber slept');
  assert.is(get_counter('reclaim_nosleep'), 0);
  assert.is(mockgpu_get()!.pmm.pages_used, 0, 'no VRAM left in use');
  assert.is(p.check32(buf + N * PAGE_SIZE, N * PAGE_SIZE, 1001 + N * PAGE_SIZE / 4), -1);
  assert.is(filler.check32(fa, used * PAGE_SIZE, 5), -1);
  assert.is(filler.check32(fa + used * PAGE_SIZE, more * PAGE_SIZE, 6), -1);
});

test.run();
