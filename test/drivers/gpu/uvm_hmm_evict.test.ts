/*
 * test/drivers/gpu/uvm_hmm_evict.test.ts - VRAM oversubscription
 * (drivers/gpu/mockgpu/uvm_hmm_evict.ts, the LRU in uvm_pmm_gpu.ts):
 * working sets of 1.5x and 3x VRAM finish with every byte intact, the
 * victim is the least recently allocated-in root chunk, the GPU keeps a
 * remote mapping to evicted pages (or re-faults them, switch off), and
 * the fault path cannot livelock on a chunk it holds itself.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MOCKGPU_OP_INC, MOCKGPU_OP_READ } from '../../../include/uapi/linux/mockgpu.js';
import { UVM_APERTURE_SYS, UVM_APERTURE_VID, mockgpu_pte_aperture } from '../../../include/linux/mockgpu.js';
import { tracing_on, trace_records, trace_set_buffer_size, get_counter } from '../../../lib/sim/trace.js';
import { gpuOpen, gpuSession, type GpuHandle, type GpuStats } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpu_params, mockgpuParamsReset, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import { pick_root_chunk_to_evict } from '../../../drivers/gpu/mockgpu/uvm_pmm_gpu.js';
import { Process } from '../../../tools/include/nolibc/nolibc.js';
import { sleeping_subscriber } from '../../mm/swap_helpers.js';
import { nr_free_pages } from '../../../mm/page_alloc.js';
import { kmemleak_exempt } from '../../leakcheck/uvu.js';

test.before.each(() => mockgpuParamsReset());
test.after.each(() => mockgpuParamsReset());

const MiB = 1 << 20;
const VRAM = 4 * MiB;                 /* 2 root chunks, 1024 pages */
const VRAM_PAGES = VRAM / PAGE_SIZE;

function setup(): Process {
  mockgpu_params.vram_bytes = VRAM;
  const p = boot({ ram_bytes: 64 * MiB });
  uvm_gpu_init();
  return p;
}

/* run @passes INC kernels over [buf, buf + len) in one session; the stats after each */
function inc_passes(p: Process, buf: number, len: number, passes: number): { status: number[]; stats: GpuStats[] } {
  return gpuSession(p, function* () {
    const g = (yield* gpuOpen(p)) as GpuHandle;
    const ctx = yield* g.ctxCreate();
    const status: number[] = [], stats: GpuStats[] = [];
    for (let i = 0; i < passes; i++) {
      yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 1024 });
      status.push((yield* g.wait(ctx)).status);
      stats.push(yield* g.stats());
    }
    return { status, stats };
  });
}

for (const factor of [1.5, 3]) {
  test(`a working set of ${factor}x VRAM completes with every byte intact; eviction shows in the counters`, () => {
    const p = setup();
    const len = factor * VRAM;
    const buf = p.mmap(0, len, RW, ANON);
    p.fill32(buf, len, 7);
    const r = inc_passes(p, buf, len, 2);
    assert.equal(r.status, [0, 0]);
    const s = r.stats[0]!;
    const overflow = len / PAGE_SIZE - VRAM_PAGES;
    assert.ok(s.evictions >= Math.ceil(overflow / 512), `${s.evictions} root chunks evicted for ${overflow} pages over`);
    assert.is(s.evicted_pages, s.evictions * 512 - 0, 'every evicted root chunk was full');
    assert.is(s.evict_fallbacks, 0);
    assert.is(s.migrated_to_vram, len / PAGE_SIZE, 'every page went to VRAM once in the first pass');
    assert.ok(s.mapped_remote >= s.evicted_pages, 'the evicted pages stay mapped remotely');
    assert.is(mockgpu_get()!.pmm.pages_used, VRAM_PAGES, 'VRAM is full, not leaked beyond');
    assert.is(p.check32(buf, len, 9), -1, 'both passes incremented every word exactly once each');
    assert.is(mockgpu_get()!.pmm.pages_used, 0, 'the CPU reads brought every VRAM page back');
  });
}

test('the victim is the root chunk least recently allocated in: the first one filled is evicted first', () => {
  const p = setup();
  const a = p.mmap(0, 2 * MiB, RW, ANON), b = p.mmap(0, 2 * MiB, RW, ANON), c = p.mmap(0, 2 * MiB, RW, ANON);
  for (const x of [a, b, c]) p.fill32(x, 2 * MiB, x);
  let vs!: uvm_va_space;
  gpuSession(p, function* () {
    const g = (yield* gpuOpen(p)) as GpuHandle;
    const ctx = yield* g.ctxCreate();
    for (const x of [a, b]) { yield* g.launch(ctx, { base: x, size: 2 * MiB, op: MOCKGPU_OP_READ, elem: 4096 }); yield* g.wait(ctx); }
    vs = [...mockgpu_get()!.va_spaces][0]!;
    const pmm = mockgpu_get()!.pmm;
    assert.is(pmm.pages_used, VRAM_PAGES);
    const victim = pick_root_chunk_to_evict(pmm);
    assert.is(victim, pmm.rmap_va[0] === a ? 0 : 1, 'the LRU head backs buffer a');
    trace_set_buffer_size(1 << 16);
    tracing_on();
    yield* g.launch(ctx, { base: c, size: 2 * MiB, op: MOCKGPU_OP_READ, elem: 4096 });
    assert.is((yield* g.wait(ctx)).status, 0);
    return 0;
  });
  const ev = trace_records().filter((e) => e.name === 'uvm_pmm_evict_root_done');
  assert.equal(ev.map((e) => [e.fields.moved, e.fields.ok]), [[512, 1]], 'one root chunk evicted, all 512 pages moved');
  const ap = (base: number) => { const o: number[] = []; uvm_pt_for_each_valid(vs.pt, base, base + 2 * MiB, (_v, pte) => o.push(mockgpu_pte_aperture(pte))); return o; };
  assert.ok(ap(a).every((x) => x === UVM_APERTURE_SYS) && ap(a).length === 512, 'a was evicted and is mapped remotely');
  assert.ok(ap(b).every((x) => x === UVM_APERTURE_VID) && ap(b).length === 512, 'b stayed in VRAM');
  assert.ok(ap(c).every((x) => x === UVM_APERTURE_VID) && ap(c).length === 512, 'c took a\'s root chunk');
  for (const x of [a, b, c]) assert.is(p.check32(x, 2 * MiB, x), -1);
});

test('with evict_remote_map off, evicted pages are unmapped and the next pass re-faults them: the evict/re-fault loop', () => {
  mockgpu_params.evict_remote_map = false;
  const p = setup();
  const len = 1.5 * VRAM;
  const buf = p.mmap(0, len, RW, ANON);
  p.fill32(buf, len, 0);
  trace_set_buffer_size(1 << 18);
  tracing_on();
  const r = inc_passes(p, buf, len, 2);
  assert.equal(r.status, [0, 0]);
  const [s1, s2] = r.stats as [GpuStats, GpuStats];
  assert.is(s1.mapped_remote, 0);
  assert.ok(s2.evictions > s1.evictions, `second pass evicted again (${s1.evictions} -> ${s2.evictions})`);
  assert.ok(s2.migrated_to_vram - s1.migrated_to_vram >= s1.evicted_pages, 'the evicted pages came back on re-fault');
  const kinds = trace_records().filter((e) => e.name === 'Eviction' || e.name === 'Migration').map((e) => e.name);
  assert.ok(kinds.indexOf('Eviction') < kinds.lastIndexOf('Migration'), 'migrations follow evictions in the trace');
  assert.is(p.check32(buf, len, 2), -1);
});

test('with evict off, a full VRAM maps the rest remotely (the old behaviour) and bytes are intact', () => {
  mockgpu_params.evict = false;
  const p = setup();
  const len = 1.5 * VRAM;
  const buf = p.mmap(0, len, RW, ANON);
  p.fill32(buf, len, 0);
  const r = inc_passes(p, buf, len, 1);
  const s = r.stats[0]!;
  assert.equal([r.status[0], s.evictions, s.migrated_to_vram, s.mapped_remote], [0, 0, VRAM_PAGES, len / PAGE_SIZE - VRAM_PAGES]);
  assert.is(p.check32(buf, len, 1), -1);
});

/*
 * VRAM of one root chunk, 100 pages of it used by buffer b, then a kernel
 * over 512 pages of a: a batch's migration fills the root with chunks it
 * holds pinned and finds VRAM full again. Evicting that root would wait
 * for pages the evictor itself holds (UVM issue #1223, a soft lockup).
 */
function one_root_world(): { p: Process; a: number; b: number; run: (opts?: { maxSteps?: number }) => GpuStats } {
  mockgpu_params.vram_bytes = 2 * MiB;
  const p = boot({ ram_bytes: 64 * MiB });
  uvm_gpu_init();
  const a = p.mmap(0, 2 * MiB, RW, ANON), b = p.mmap(0, 100 * PAGE_SIZE, RW, ANON);
  p.fill32(a, 2 * MiB, 1);
  p.fill32(b, 100 * PAGE_SIZE, 5);
  const run = (opts = {}) => gpuSession(p, function* () {
    const g = (yield* gpuOpen(p)) as GpuHandle;
    const ctx = yield* g.ctxCreate();
    for (const [base, size] of [[b, 100 * PAGE_SIZE], [a, 2 * MiB]] as const) {
      yield* g.launch(ctx, { base, size, op: MOCKGPU_OP_INC, elem: 4096 });
      assert.is((yield* g.wait(ctx)).status, 0);
    }
    return yield* g.stats();
  }, opts);
  return { p, a, b, run };
}

test('UVM #1223 shape: a root chunk the migration in flight holds is never picked; the fault falls back to a remote mapping and completes', () => {
  const w = one_root_world();
  const s = w.run({ maxSteps: 5_000_000 });
  assert.ok(s.evict_fallbacks > 0, 'some allocation found only the pinned root');
  assert.is(s.evict_aborts, 0, 'no eviction waited on its own pages');
  assert.ok(s.mapped_remote >= s.evict_fallbacks);
  assert.is(w.p.check32(w.a, 2 * MiB, 2), -1);
  assert.is(w.p.check32(w.b, 100 * PAGE_SIZE, 6), -1);
});

test('with the pinned-root rule broken the evictor spins on its own pages: the step budget catches the livelock', () => {
  kmemleak_exempt('a deliberately broken variant leaves its machine livelocked');
  mockgpu_params.broken_evict_pinned = true;
  const w = one_root_world();
  assert.throws(() => w.run({ maxSteps: 300_000 }), /livelock/);
});

/*
 * evict_pass() allocates the RAM targets of the VRAM -> system copies with
 * GFP_HIGHUSER_MOVABLE from the fault bottom half, which may sleep (no
 * uvm_va_space.mutex held): its direct reclaim sends blockable ranges.
 * Before, it used the plain allocator (reclaim inline with non-blockable
 * ranges, now a might_sleep BUG).
 */
test('eviction under system memory pressure: the RAM targets\' direct reclaim sends blockable ranges, every byte intact', () => {
  mockgpu_params.vram_bytes = VRAM;
  const p = boot({ ram_bytes: 8 * MiB, swap_bytes: 32 * MiB });
  uvm_gpu_init();
  const len = VRAM + VRAM / 2;
  const buf = p.mmap(0, len, RW, ANON);
  p.fill32(buf, len, 7);
  const sp = sleeping_subscriber(p, buf, len);
  const r1 = inc_passes(p, buf, VRAM, 1);          /* VRAM full */
  assert.equal(r1.status, [0]);
  const filler = Process.spawn('filler');
  const n = nr_free_pages() - 8, fa = filler.mmap(0, n * PAGE_SIZE, RW, ANON);
  const sf = sleeping_subscriber(filler, fa, n * PAGE_SIZE);
  filler.fill32(fa, n * PAGE_SIZE, 5);             /* RAM full too */
  const stalls = get_counter('allocstall');
  const r2 = inc_passes(p, buf + VRAM, VRAM / 2, 1);
  assert.equal(r2.status, [0]);
  assert.ok(r2.stats[0]!.evictions >= 1, 'a root chunk was evicted');
  assert.ok(get_counter('allocstall') > stalls, 'the eviction\'s RAM targets reclaimed directly');
  assert.is(sp.refused + sf.refused, 0, 'no non-blockable range reached a subscriber');
  assert.ok(sp.blockable + sf.blockable > 0);
  assert.is(get_counter('reclaim_nosleep'), 0);
  assert.is(p.check32(buf, len, 8), -1, 'every word incremented once, evicted or not');
  assert.is(filler.check32(fa, n * PAGE_SIZE, 5), -1);
});

test.run();
