/*
 * test/drivers/gpu/uvm_gmem.test.ts - the mock GPU on GMEM
 * (drivers/gpu/mockgpu/uvm_gmem.ts over mm/gmem.ts): MAP_PEER_SHARED,
 * gm_dev_fault moving pages to VRAM, CPU faults and close bringing them
 * back with every byte checked, the logical page table, hmadvise() with
 * its errno, munmap and exit freeing VRAM, fatal faults.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot, RW, ANON, pte_at } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, MAP_SHARED, MAP_ANONYMOUS, MADV_DONTNEED, MREMAP_MAYMOVE } from '../../../include/uapi/asm-generic/mman.js';
import { MAP_PEER_SHARED, MADV_PREFETCH, GM_PAGE_DEVICE, GM_PAGE_CPU } from '../../../include/linux/gmem.js';
import { EFAULT, EINVAL, ENODEV } from '../../../include/uapi/asm-generic/errno.js';
import { MOCKGPU_OP_INC, MOCKGPU_OP_WRITE, MOCKGPU_OP_READ } from '../../../include/uapi/linux/mockgpu.js';
import { UVM_APERTURE_VID, mockgpu_pte_aperture } from '../../../include/linux/mockgpu.js';
import { get_counter, tracing_on, trace_add_listener } from '../../../lib/sim/trace.js';
import { gpuOpen, gpuSession, type GpuHandle } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, mockgpu_set_era, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset, type uvm_va_space } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { uvm_gmem_ops } from '../../../drivers/gpu/mockgpu/uvm_gmem.js';
import { uvm_pt_for_each_valid } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import { vm_object_lookup, gm_entry_flags, type vm_object } from '../../../mm/vm_object.js';
import { Process as Proc, type Process } from '../../../tools/include/nolibc/nolibc.js';
import { UserFault } from '../../../mm/fault.js';
import { cond_resched, schedulerActive, type Sleepable } from '../../../lib/sim/sched.js';

const PS = MAP_PEER_SHARED | ANON;
const HNID = 1;          /* the first device memory registered after boot */

test.before.each(() => mockgpuParamsReset());

function gmboot(): Process {
  const p = boot();
  uvm_gpu_init();
  mockgpu_set_era(uvm_gmem_ops);
  return p;
}

function gpu_ptes(vs: uvm_va_space, start: number, len: number): number[] {
  const out: number[] = [];
  uvm_pt_for_each_valid(vs.pt, start, start + len, (_va, pte) => out.push(pte));
  return out;
}

function lpt(p: Process, va: number): number {
  return gm_entry_flags(vm_object_lookup(p.mm.vm_obj as vm_object, va));
}

/* open the GPU, then run @body with the handle and a context */
function session<T>(p: Process, body: (g: GpuHandle, ctx: number) => Sleepable<T>): T {
  return gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(String(g));
    return yield* body(g, yield* g.ctxCreate());
  });
}

test('on GMEM, gm_dev_fault moves peer-shared pages to VRAM; a CPU fault and close bring them back intact', () => {
  const p = gmboot();
  const n = 16, len = n * PAGE_SIZE;
  const r = session(p, function* (g, ctx) {
    const buf = yield* p.sys.mmap(0, len, RW, PS);
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    for (let i = 0; i < len / 4; i++) v.setUint32(i * 4, i + 7, true);
    yield* p.sys.write(buf, b);
    yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_INC, elem: 128 });
    const w = yield* g.wait(ctx);
    const vs = [...mockgpu_get()!.va_spaces][0]!;
    const onGpu = gpu_ptes(vs, buf, len).map(mockgpu_pte_aperture);
    const cpu_none = pte_at(p.mm, buf + 3 * PAGE_SIZE) === 0;
    const entries = Array.from({ length: n }, (_x, i) => lpt(p, buf + i * PAGE_SIZE));
    const used = mockgpu_get()!.pmm.pages_used;
    const first = yield* p.sys.load(buf + 5 * PAGE_SIZE + 12, 4);      /* a CPU fault on VRAM data */
    const left = gpu_ptes(vs, buf, len).length;
    const back = lpt(p, buf + 5 * PAGE_SIZE);
    const stats = yield* g.stats();
    yield* g.close();
    return { buf, w, onGpu, cpu_none, entries, used, first, left, back, stats };
  });
  assert.is(r.w.status, 0);
  assert.ok(r.onGpu.length === n && r.onGpu.every((a) => a === UVM_APERTURE_VID));
  assert.ok(r.cpu_none, 'the CPU page table has nothing where the device holds the page');
  assert.ok(r.entries.every((e) => e === GM_PAGE_DEVICE), 'the logical page table says DEVICE');
  assert.is(r.used, n);
  assert.is(r.first, (5 * PAGE_SIZE + 12) / 4 + 7 + 1);
  assert.is(r.left, n - 1, 'peer_unmap took that page off the GPU first');
  assert.is(r.back, GM_PAGE_CPU);
  assert.is(r.stats.migrated_to_vram, n);
  assert.is(r.stats.migrated_to_sysmem, 1);
  assert.is(p.check32(r.buf, len, 8), -1, 'close (gm_as_detach) brought the rest back; every word is old + 1');
  assert.is(mockgpu_get()!.pmm.pages_used, 0);
});

test('MAP_PEER_SHARED needs an attached device (-ENODEV) and private anonymous memory (-EINVAL); mremap refuses it', () => {
  const p = gmboot();
  assert.is(p.mmap(0, PAGE_SIZE, RW, PS), -ENODEV);
  const r = session(p, function* () {
    return {
      shared: yield* p.sys.mmap(0, PAGE_SIZE, RW, MAP_PEER_SHARED | MAP_SHARED | MAP_ANONYMOUS),
      ok: yield* p.sys.mmap(0, 2 * PAGE_SIZE, RW, PS),
    };
  });
  assert.is(r.shared, -EINVAL);
  assert.ok(r.ok > 0);
  assert.is(p.mremap(r.ok, 2 * PAGE_SIZE, 4 * PAGE_SIZE, MREMAP_MAYMOVE), -EINVAL);
});

test('untouched peer-shared pages become zeroed VRAM pages; the CPU reads what the GPU wrote', () => {
  const p = gmboot();
  const r = session(p, function* (g, ctx) {
    const buf = yield* p.sys.mmap(0, 4 * PAGE_SIZE, RW, PS);
    yield* g.launch(ctx, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 0xbeef, elem: 256 });
    const w = yield* g.wait(ctx);
    const s = yield* g.stats();
    const v = yield* p.sys.load(buf + PAGE_SIZE + 64, 4);
    const z = yield* p.sys.load(buf + 3 * PAGE_SIZE, 4);
    return { w, s, v, z };
  });
  assert.is(r.w.status, 0);
  assert.is(r.s.migrated_to_vram, 0, 'nothing to copy');
  assert.is(get_counter('gmem_dev_fault_zero'), 2);
  assert.is(r.v, 0xbeef);
  assert.is(r.z, 0);
});

test('a GPU fault outside MAP_PEER_SHARED memory, or a write to a read-only peer-shared VMA, is fatal (-EFAULT); data intact', () => {
  const p = gmboot();
  const r = session(p, function* (g, ctx) {
    const plain = yield* p.sys.mmap(0, PAGE_SIZE, RW, ANON);
    yield* g.launch(ctx, { base: plain, size: PAGE_SIZE, op: MOCKGPU_OP_READ });
    const w1 = yield* g.wait(ctx);
    const ctx2 = yield* g.ctxCreate();
    const ro = yield* p.sys.mmap(0, PAGE_SIZE, RW, PS);
    yield* p.sys.store(ro, 4, 0x1234);
    yield* p.sys.mprotect(ro, PAGE_SIZE, PROT_READ);
    yield* g.launch(ctx2, { base: ro, size: PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 9 });
    const w2 = yield* g.wait(ctx2);
    return { w1, w2, ro, v: yield* p.sys.load(ro, 4) };
  });
  assert.is(r.w1.status, -EFAULT);
  assert.is(r.w2.status, -EFAULT);
  assert.is(r.v, 0x1234);
});

test('hmadvise: errno as in the RFC; MADV_PREFETCH moves pages before the kernel; MADV_DONTNEED drops them wherever they live', () => {
  const p = gmboot();
  const n = 8, len = n * PAGE_SIZE;
  const r = session(p, function* (g, ctx) {
    const buf = yield* p.sys.mmap(0, len, RW, PS);
    const b = new Uint8Array(len).fill(0x11);
    yield* p.sys.write(buf, b);
    const errs = [
      yield* p.sys.hmadvise(-1, buf, len, MADV_PREFETCH),      /* PREFETCH needs an hnid */
      yield* p.sys.hmadvise(-5, buf, len, MADV_PREFETCH),
      yield* p.sys.hmadvise(7, buf, len, MADV_PREFETCH),       /* not a device node */
      yield* p.sys.hmadvise(HNID, buf, len, 99),               /* unknown advice */
      yield* p.sys.hmadvise(HNID, buf, len + PAGE_SIZE, MADV_PREFETCH),   /* beyond the VMA */
      yield* p.sys.hmadvise(-1, 2 ** 53, 2 ** 53, MADV_DONTNEED),         /* overflows */
    ];
    const pre = yield* p.sys.hmadvise(HNID, buf, len, MADV_PREFETCH);
    const used = mockgpu_get()!.pmm.pages_used;
    const again = yield* p.sys.hmadvise(HNID, buf, len, MADV_PREFETCH);   /* PAGE_EXIST: ignored */
    yield* g.launch(ctx, { base: buf, size: len, op: MOCKGPU_OP_READ, elem: 256 });
    const w = yield* g.wait(ctx);
    const s = yield* g.stats();
    const dn = yield* p.sys.hmadvise(-1, buf, len, MADV_DONTNEED);
    const after = mockgpu_get()!.pmm.pages_used;
    const z = yield* p.sys.load(buf + 3 * PAGE_SIZE + 8, 4);
    return { errs, pre, used, again, w, s, dn, after, z };
  });
  assert.equal(r.errs, [-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL]);
  assert.equal([r.pre, r.again, r.used], [0, 0, n]);
  assert.is(r.w.status, 0);
  assert.is(r.s.gpu_faults, 0, 'prefetched: the kernel never faulted');
  assert.is(r.w.checksum, (n * PAGE_SIZE / 4 * 0x11111111) % 2 ** 32, 'the GPU read the CPU\'s bytes');
  assert.equal([r.dn, r.after, r.z], [0, 0, 0]);
});

test('hmadvise with bad ranges (overflow, negative, unmapped, not peer-shared, unaligned DONTNEED): -EINVAL or a no-op, every byte intact', () => {
  const p = gmboot();
  const n = 8, len = n * PAGE_SIZE;
  const r = session(p, function* () {
    const buf = yield* p.sys.mmap(0, len, RW, PS);
    const plain = yield* p.sys.mmap(0, PAGE_SIZE, RW, ANON);
    const hole = yield* p.sys.mmap(0, PAGE_SIZE, RW, ANON);
    yield* p.sys.munmap(hole, PAGE_SIZE);
    p.fill32(buf, len, 3);
    p.fill32(plain, PAGE_SIZE, 11);
    const pre = yield* p.sys.hmadvise(HNID, buf, 4 * PAGE_SIZE, MADV_PREFETCH);     /* half on the device */
    const before = Array.from({ length: n }, (_x, i) => lpt(p, buf + i * PAGE_SIZE));
    const h = (hnid: number, a: number, l: number, adv: number) => p.sys.hmadvise(hnid, a, l, adv);
    const einval = [
      yield* h(HNID, buf, -PAGE_SIZE, MADV_PREFETCH),            /* len 2^64 - 4096: start + len overflows */
      yield* h(HNID, buf, 2 ** 64, MADV_PREFETCH),
      yield* h(HNID, -PAGE_SIZE, 2 * PAGE_SIZE, MADV_PREFETCH),
      yield* h(HNID, plain, PAGE_SIZE, MADV_PREFETCH),           /* not MAP_PEER_SHARED */
      yield* h(HNID, hole, PAGE_SIZE, MADV_PREFETCH),            /* unmapped */
      yield* h(-1, buf, -1, MADV_DONTNEED),
      yield* h(-1, -PAGE_SIZE, 2 * PAGE_SIZE, MADV_DONTNEED),
      yield* h(HNID, buf, len, -1),
    ];
    const noop = [
      yield* h(HNID, hole, 0, MADV_PREFETCH),                    /* empty: 0 before any VMA check */
      yield* h(-1, buf + 1, 2 * PAGE_SIZE - 2, MADV_DONTNEED),   /* rounds inwards to nothing */
      yield* h(-1, plain, PAGE_SIZE, MADV_DONTNEED),             /* skipped: not peer-shared */
      yield* h(-1, hole, PAGE_SIZE, MADV_DONTNEED),
    ];
    const after = Array.from({ length: n }, (_x, i) => lpt(p, buf + i * PAGE_SIZE));
    const used = mockgpu_get()!.pmm.pages_used;
    return { buf, plain, pre, before, einval, noop, after, used };
  });
  assert.is(r.pre, 0);
  assert.equal(r.einval, r.einval.map(() => -EINVAL));
  assert.equal(r.noop, [0, 0, 0, 0]);
  assert.equal(r.after, r.before, 'no page moved');
  assert.is(r.before.filter((e) => e === GM_PAGE_DEVICE).length, 4);
  assert.is(r.used, 4);
  assert.is(p.check32(r.buf, len, 3), -1, 'every word of the peer-shared buffer intact (4 pages come back from VRAM)');
  assert.is(p.check32(r.plain, PAGE_SIZE, 11), -1);
});

test('munmap and exit of device-resident GMEM memory unmap it on the GPU (peer_unmap, from process context) and free VRAM', () => {
  const p = gmboot();
  tracing_on();
  const seen: boolean[] = [];
  const off = trace_add_listener((rec) => { if (rec.name === 'gmem_peer_unmap') seen.push(rec.fields.copy as boolean); });
  const r = session(p, function* (g, ctx) {
    const a = yield* p.sys.mmap(0, 8 * PAGE_SIZE, RW, PS);
    const b = yield* p.sys.mmap(0, 4 * PAGE_SIZE, RW, PS);
    yield* g.launch(ctx, { base: a, size: 8 * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 1 });
    yield* g.launch(ctx, { base: b, size: 4 * PAGE_SIZE, op: MOCKGPU_OP_WRITE, value: 2 });
    yield* g.wait(ctx);
    const before = mockgpu_get()!.pmm.pages_used;
    yield* p.sys.munmap(a, 8 * PAGE_SIZE);
    return { before, after: mockgpu_get()!.pmm.pages_used };
  });
  assert.equal([r.before, r.after], [12, 4]);
  assert.equal(seen.slice(0, 8), Array(8).fill(false), 'munmap: no copy back');
  p.exit(0);
  off();
  assert.is(mockgpu_get()!.pmm.pages_used, 0, 'exit: no VRAM leak');
});

test('fork does not copy a peer-shared VMA (the child faults there); hmadvise from a process with no device attached is -EINVAL', () => {
  const p = gmboot();
  const r = session(p, function* (g, ctx) {
    const buf = yield* p.sys.mmap(0, 2 * PAGE_SIZE, RW, PS);
    yield* p.sys.store(buf, 4, 77);
    yield* g.launch(ctx, { base: buf, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_READ });
    yield* g.wait(ctx);
    return { buf };
  });
  const child = p.fork();
  assert.throws(() => child.read32(r.buf), (e: unknown) => e instanceof UserFault);
  child.exit(0);
  p.wait(child.pid);
  assert.is(p.read32(r.buf), 77, 'a CPU fault brings the parent\'s page back from VRAM');
  const other = Proc.spawn('other');
  const o = other.mmap(0, PAGE_SIZE, RW, ANON);
  assert.is(other.hmadvise(HNID, o, PAGE_SIZE, MADV_PREFETCH), -EINVAL);
  assert.is(other.hmadvise(-1, o, PAGE_SIZE, MADV_DONTNEED), 0, 'DONTNEED without hnid skips non-peer-shared VMAs');
  assert.is(other.read32(o), 0);
});

test('under random interleavings, hmadvise(MADV_PREFETCH) racing CPU loads and stores of the same pages loses no byte', () => {
  const n = 8, len = n * PAGE_SIZE;
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const p = gmboot();
    const r = gpuSession(p, function* () {
      const g = yield* gpuOpen(p);
      if (typeof g === 'number') throw new Error(String(g));
      const buf = yield* p.sys.mmap(0, len, RW, PS);
      const b = new Uint8Array(len), v = new DataView(b.buffer);
      for (let i = 0; i < len / 4; i++) v.setUint32(i * 4, i + 5, true);
      yield* p.sys.write(buf, b);
      let done = false, bad = 0, moved = 0;
      schedulerActive()!.spawn('cpu', function* () {
        for (let round = 0; round < 3; round++) {
          for (let i = 0; i < n; i++) {
            const a = buf + i * PAGE_SIZE + 4 * round, idx = i * (PAGE_SIZE / 4) + round;
            if ((yield* p.sys.load(a, 4)) !== idx + 5) bad++;
            yield* p.sys.store(a, 4, idx + 5 + 1000);
          }
        }
        done = true;
      }, 'user', p.task);
      for (let round = 0; round < 3; round++) {
        if ((yield* p.sys.hmadvise(HNID, buf, len, MADV_PREFETCH)) !== 0) bad++;
        moved = Math.max(moved, mockgpu_get()!.pmm.pages_used);
      }
      while (!done) yield* cond_resched();
      const obj = p.mm.vm_obj as vm_object;
      const consistent = mockgpu_get()!.pmm.pages_used === obj.nr_device;
      const out = new Uint8Array(len);
      yield* p.sys.read(buf, out);
      yield* g.close();
      return { bad, moved, consistent, out };
    }, { mode: 'random', seed });
    const v = new DataView(r.out.buffer);
    let wrong = -1;
    for (let i = 0; i < len / 4 && wrong < 0; i++) {
      const want = i + 5 + (i % (PAGE_SIZE / 4) < 3 ? 1000 : 0);
      if (v.getUint32(i * 4, true) !== want) wrong = i;
    }
    assert.is(r.bad, 0, `seed ${seed}: every load saw the last store, every prefetch succeeded`);
    assert.is(wrong, -1, `seed ${seed}: word ${wrong} lost`);
    assert.ok(r.moved > 0, `seed ${seed}: the prefetch did move pages`);
    assert.ok(r.consistent, `seed ${seed}: VRAM in use = DEVICE entries of the logical page table`);
    assert.is(mockgpu_get()!.pmm.pages_used, 0);
  }
});

test.run();
