/*
 * test/mm/gmem_phys.test.ts - GMEM oversubscription (mm/gmem_phys.ts):
 * a working set larger than the device's memory runs to completion with
 * every byte checked, pages evicted to CPU memory in active-list order
 * (NUM_SWAP_PAGES at a time, a prefetched page last), and the device, the
 * logical page table and the CPU page table agree afterwards.
 * Driven through the mock GPU's GMEM glue with 2 MiB of VRAM (512 pages).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../helpers.js';
import { PAGE_SIZE } from '../../include/linux/mm.js';
import { MAP_PEER_SHARED, MADV_PREFETCH, GM_PAGE_DEVICE, GM_PAGE_CPU } from '../../include/linux/gmem.js';
import { MOCKGPU_OP_INC } from '../../include/uapi/linux/mockgpu.js';
import { get_counter } from '../../lib/sim/trace.js';
import { gpuOpen, gpuSession, type GpuHandle } from '../../tools/include/mockgpu.js';
import { mockgpu_get, mockgpu_set_era, uvm_gpu_init } from '../../drivers/gpu/mockgpu/uvm.js';
import { mockgpu_params, mockgpuParamsReset } from '../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_gmem_ops } from '../../drivers/gpu/mockgpu/uvm_gmem.js';
import { vm_object_lookup, gm_entry_flags, type vm_object } from '../../mm/vm_object.js';
import { NUM_SWAP_PAGES } from '../../mm/gmem_phys.js';
import { Process } from '../../tools/include/nolibc/nolibc.js';
import { sleeping_subscriber } from './swap_helpers.js';
import { nr_free_pages } from '../../mm/page_alloc.js';
import type { Sleepable } from '../../lib/sim/sched.js';

const PS = MAP_PEER_SHARED | ANON;
const HNID = 1;
const VRAM_PAGES = 512;

test.before.each(() => mockgpuParamsReset());

function gmboot(): Process {
  mockgpu_params.vram_bytes = VRAM_PAGES * PAGE_SIZE;
  const p = boot();
  uvm_gpu_init();
  mockgpu_set_era(uvm_gmem_ops);
  return p;
}

function session<T>(p: Process, body: (g: GpuHandle, ctx: number) => Sleepable<T>): T {
  return gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(String(g));
    return yield* body(g, yield* g.ctxCreate());
  });
}

/* per page of [buf, buf + n pages): GM_PAGE_* of the entry and whether the CPU page table maps it */
function where(p: Process, buf: number, n: number): { flags: number; cpu: boolean }[] {
  const obj = p.mm.vm_obj as vm_object;
  return Array.from({ length: n }, (_x, i) => ({
    flags: gm_entry_flags(vm_object_lookup(obj, buf + i * PAGE_SIZE)),
    cpu: pte_at(p.mm, buf + i * PAGE_SIZE) !== 0,
  }));
}

test('a GPU kernel over 1.5x VRAM completes: pages are evicted to CPU memory, every word incremented twice', () => {
  const p = gmboot();
  const n = VRAM_PAGES * 3 / 2, len = n * PAGE_SIZE;
  const r = session(p, function* (g, ctx) {
    assert.is(mockgpu_get()!.pmm.nr_pages, VRAM_PAGES);
    const buf = yield* p.sys.mmap(0, len, RW, PS);
    p.fill32(buf, len, 7);
    yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 1024 });
    const w1 = yield* g.wait(ctx);
    const ev1 = get_counter('gmem_evict');
    yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 1024 });   /* evicted pages go back */
    const w2 = yield* g.wait(ctx);
    const used = mockgpu_get()!.pmm.pages_used;
    const map = where(p, buf, n);
    const nr_device = (p.mm.vm_obj as vm_object).nr_device;
    const stats = yield* g.stats();
    return { buf, w1, w2, ev1, used, map, nr_device, stats };
  });
  assert.equal([r.w1.status, r.w2.status], [0, 0], 'no fault was fatal (before eviction: -ENOMEM)');
  assert.ok(r.ev1 >= n - VRAM_PAGES, `at least ${n - VRAM_PAGES} evictions in the first run, got ${r.ev1}`);
  assert.ok(get_counter('gmem_evict') > r.ev1, 'the second run evicted again');
  assert.ok(r.used <= VRAM_PAGES && r.used === r.nr_device, `VRAM pages ${r.used} = DEVICE entries ${r.nr_device}`);
  const dev = r.map.filter((m) => m.flags === GM_PAGE_DEVICE), cpu = r.map.filter((m) => m.flags === GM_PAGE_CPU);
  assert.is(dev.length + cpu.length, n, 'every page is somewhere');
  assert.ok(dev.every((m) => !m.cpu), 'a DEVICE page is not in the CPU page table');
  assert.ok(cpu.length > 0 && cpu.every((m) => m.cpu), 'an evicted page is an ordinary mapped CPU page');
  assert.is(r.stats.migrated_to_sysmem, get_counter('gmem_evict'), 'each eviction copied one page back');
  assert.is(p.check32(r.buf, len, 9), -1, 'every word is old + 2, wherever its page ended up');
  assert.is(mockgpu_get()!.pmm.pages_used, 0, 'close brought the rest back');
  assert.is(p.check32(r.buf, len, 9), -1);
});

test('eviction order: oldest first, NUM_SWAP_PAGES at a time; MADV_PREFETCH of a resident page makes it last', () => {
  const p = gmboot();
  const n = VRAM_PAGES + 1, len = n * PAGE_SIZE;
  const r = session(p, function* () {
    const buf = yield* p.sys.mmap(0, len, RW, PS);
    p.fill32(buf, len, 100);
    const fill = yield* p.sys.hmadvise(HNID, buf, VRAM_PAGES * PAGE_SIZE, MADV_PREFETCH);   /* VRAM exactly full */
    const ev0 = get_counter('gmem_evict');
    const hot = yield* p.sys.hmadvise(HNID, buf, PAGE_SIZE, MADV_PREFETCH);                 /* page 0: most recent */
    const last = yield* p.sys.hmadvise(HNID, buf + VRAM_PAGES * PAGE_SIZE, PAGE_SIZE, MADV_PREFETCH);
    const map = where(p, buf, n);
    const used = mockgpu_get()!.pmm.pages_used;
    const v = yield* p.sys.load(buf + 5 * PAGE_SIZE + 40, 4);                               /* evicted: no fault, no copy */
    const back = get_counter('gmem_host_fault_migrate');
    return { buf, fill, ev0, hot, last, map, used, v, back };
  });
  assert.equal([r.fill, r.hot, r.last, r.ev0], [0, 0, 0, 0]);
  assert.is(get_counter('gmem_evict'), NUM_SWAP_PAGES);
  assert.is(r.map[0]!.flags, GM_PAGE_DEVICE, 'page 0 was prefetched again: not evicted');
  for (let i = 1; i <= NUM_SWAP_PAGES; i++) assert.equal(r.map[i], { flags: GM_PAGE_CPU, cpu: true }, `page ${i} evicted`);
  assert.is(r.map[NUM_SWAP_PAGES + 1]!.flags, GM_PAGE_DEVICE, 'the 17th oldest stays');
  assert.is(r.map[VRAM_PAGES]!.flags, GM_PAGE_DEVICE);
  assert.is(r.used, VRAM_PAGES - NUM_SWAP_PAGES + 1);
  assert.is(r.v, (5 * PAGE_SIZE + 40) / 4 + 100);
  assert.is(r.back, 0, 'reading an evicted page is a plain CPU access');
  assert.is(p.check32(r.buf, len, 100), -1);
});

/*
 * The host fault of a VM_PEER_SHARED page (do_peer_shared_anonymous_page)
 * and the pages eviction brings back are allocated like
 * do_anonymous_page's (alloc_anon_folio): direct reclaim may sleep and
 * sends blockable ranges. Before, they used the plain allocator (reclaim
 * inline with non-blockable ranges, now a might_sleep BUG).
 */
test('host faults of a peer-shared VMA under memory pressure: direct reclaim sends blockable ranges, a sleeping subscriber is waited for', () => {
  mockgpu_params.vram_bytes = VRAM_PAGES * PAGE_SIZE;
  const p = boot({ ram_bytes: 8 << 20, swap_bytes: 32 << 20 });
  uvm_gpu_init();
  mockgpu_set_era(uvm_gmem_ops);
  const filler = Process.spawn('filler');
  const fa = filler.mmap(0, 4096 * PAGE_SIZE, RW, ANON);
  const sub = sleeping_subscriber(filler, fa, 4096 * PAGE_SIZE);
  const used = nr_free_pages() - 8;
  filler.fill32(fa, used * PAGE_SIZE, 5);
  const stalls = get_counter('allocstall');
  const n = 64;
  const buf = session(p, function* () {            /* a GMEM context makes the address space peer-shared */
    const b = yield* p.sys.mmap(0, n * PAGE_SIZE, RW, PS);
    p.fill32(b, n * PAGE_SIZE, 7);
    return b;
  });
  assert.is(get_counter('gmem_host_fault'), n);
  assert.ok(get_counter('allocstall') > stalls, 'the host faults reclaimed directly');
  assert.ok(sub.blockable > 0 && sub.refused === 0, 'blockable ranges only');
  assert.is(get_counter('reclaim_nosleep'), 0);
  assert.is(p.check32(buf, n * PAGE_SIZE, 7), -1);
  assert.is(filler.check32(fa, used * PAGE_SIZE, 5), -1);
});

test.run();
