/*
 * test/drivers/gpu/mockgpu_bo.test.ts - /dev/mockgpu_drm0
 * (drivers/gpu/mockgpu/mockgpu_bo.ts): BOs with their own VRAM pages,
 * VM_ALLOC, VM_BIND / VM_UNBIND with device-only PTE attributes, the GPU
 * reading through the bindings, errno, and VRAM given back.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boot } from '../../helpers.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } from '../../../include/uapi/asm-generic/mman.js';
import { EBADF, EFAULT, EINVAL, ENODEV, ENOMEM } from '../../../include/uapi/asm-generic/errno.js';
import { MOCKGPU_OP_READ, mockgpu_u64s_decode, mockgpu_u64s_encode } from '../../../include/uapi/linux/mockgpu.js';
import { MOCKGPU_PTE_KIND_COMPRESSED, MOCKGPU_PTE_UNCACHED, MOCKGPU_PTE_WRITE } from '../../../include/linux/mockgpu.js';
import {
  MOCKGPU_DRM_GEM_CREATE, MOCKGPU_DRM_GEM_PWRITE, MOCKGPU_DRM_GEM_CLOSE, MOCKGPU_DRM_VM_ALLOC, MOCKGPU_DRM_VM_BIND,
  MOCKGPU_DRM_VM_UNBIND, MOCKGPU_BIND_COMPRESSED, MOCKGPU_BIND_UNCACHED, MOCKGPU_BIND_WRITE,
} from '../../../include/uapi/linux/mockgpu_drm.js';
import { O_RDWR } from '../../../mm/file.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { gpuOpen, gpuSession } from '../../../tools/include/mockgpu.js';
import { mockgpu_get, uvm_gpu_init } from '../../../drivers/gpu/mockgpu/uvm.js';
import { mockgpuParamsReset } from '../../../drivers/gpu/mockgpu/uvm_gpu.js';
import { mockgpu_drm_init } from '../../../drivers/gpu/mockgpu/mockgpu_bo.js';
import { uvm_pte_read } from '../../../drivers/gpu/mockgpu/uvm_mmu.js';
import type { Process } from '../../../tools/include/nolibc/nolibc.js';

test.before.each(() => mockgpuParamsReset());

function drmboot(): Process {
  const p = boot();
  uvm_gpu_init();
  mockgpu_drm_init(mockgpu_get()!);
  return p;
}

/* one ioctl with a u64 block at @scratch: [rc, the block after] */
function* drm(p: Process, fd: number, scratch: number, cmd: number, vals: number[]): Sleepable<[number, number[]]> {
  yield* p.sys.write(scratch, mockgpu_u64s_encode(vals));
  const rc = yield* p.sys.ioctl(fd, cmd, scratch);
  const b = new Uint8Array(vals.length * 8);
  yield* p.sys.read(scratch, b);
  return [rc, mockgpu_u64s_decode(b, vals.length)];
}

test('open needs the process\'s /dev/mockgpu0 (-ENODEV without)', () => {
  const p = drmboot();
  assert.is(p.open('/dev/mockgpu_drm0', O_RDWR), -ENODEV);
});

test('BO pages bound page by page into a GPU range: the GPU reads them, PTEs carry device-only bits, errno for bad binds, VRAM back after unbind', () => {
  const p = drmboot();
  const r = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(String(g));
    const fd = yield* p.sys.open('/dev/mockgpu_drm0', O_RDWR);
    const scratch = yield* p.sys.mmap(0, 4 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const [rc1, c] = yield* drm(p, fd, scratch, MOCKGPU_DRM_GEM_CREATE, [2, 0]);
    const h = c[1]!;
    const data = new Uint8Array(2 * PAGE_SIZE).fill(1, 0, PAGE_SIZE).fill(2, PAGE_SIZE);
    yield* p.sys.write(scratch + 2 * PAGE_SIZE, data);
    const [rc2] = yield* drm(p, fd, scratch, MOCKGPU_DRM_GEM_PWRITE, [h, 0, 2 * PAGE_SIZE, scratch + 2 * PAGE_SIZE]);
    const [, a] = yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_ALLOC, [1 << 20, 0]);
    const va = a[1]!;
    /* BO page 1 at va, BO page 0 at va + 4 KiB: a remapping table, not a mirror */
    const [b1] = yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_BIND, [va, h, 1, 1, MOCKGPU_BIND_COMPRESSED]);
    const [b2] = yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_BIND, [va + PAGE_SIZE, h, 0, 1, MOCKGPU_BIND_UNCACHED | MOCKGPU_BIND_WRITE]);
    const errs = [
      (yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_BIND, [va, 99, 0, 1, 0]))[0],             /* no such handle */
      (yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_BIND, [va, h, 1, 2, 0]))[0],              /* past the BO's end */
      (yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_BIND, [va + (1 << 20), h, 0, 1, 0]))[0],  /* outside VM_ALLOC */
      (yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_BIND, [va, h, 0, 1, 1 << 9]))[0],         /* unknown flag */
      (yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_ALLOC, [123, 0]))[0],                     /* not page sized */
    ];
    const vs = [...mockgpu_get()!.va_spaces][0]!;
    const pte0 = uvm_pte_read(vs.pt, va), pte1 = uvm_pte_read(vs.pt, va + PAGE_SIZE);
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: va, size: PAGE_SIZE, op: MOCKGPU_OP_READ, elem: 256 });
    const w = yield* g.wait(ctx);
    const [c2] = yield* drm(p, fd, scratch, MOCKGPU_DRM_GEM_CLOSE, [h]);
    const used_bound = mockgpu_get()!.pmm.pages_used;
    const [u] = yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_UNBIND, [va, 2]);
    const used_after = mockgpu_get()!.pmm.pages_used;
    yield* p.sys.close(fd);
    yield* g.close();
    return { rc: [rc1, rc2, b1, b2, c2, u], errs, pte0, pte1, w, used_bound, used_after };
  });
  assert.equal(r.rc, [0, 0, 0, 0, 0, 0]);
  assert.equal(r.errs, [-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL]);
  assert.ok((r.pte0 & MOCKGPU_PTE_KIND_COMPRESSED) !== 0 && (r.pte0 & MOCKGPU_PTE_WRITE) === 0);
  assert.ok((r.pte1 & MOCKGPU_PTE_UNCACHED) !== 0 && (r.pte1 & MOCKGPU_PTE_WRITE) !== 0);
  assert.is(r.w.status, 0);
  assert.is(r.w.checksum, (PAGE_SIZE / 4) * 0x02020202 % 2 ** 32, 'the GPU read BO page 1 through va');
  assert.is(r.used_bound, 2, 'a closed BO keeps its pages while bound');
  assert.is(r.used_after, 0, 'the last unbind gives them back');
});

test('bad ioctl input (negative u64 fields, overflowing sizes, unaligned, unmapped user memory, bits past 32, wrong fd) gets -EINVAL/-EFAULT/-EBADF and changes no BO byte or PTE', () => {
  const p = drmboot();
  const r = gpuSession(p, function* () {
    const g = yield* gpuOpen(p);
    if (typeof g === 'number') throw new Error(String(g));
    const fd = yield* p.sys.open('/dev/mockgpu_drm0', O_RDWR);
    const scratch = yield* p.sys.mmap(0, 5 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    yield* p.sys.munmap(scratch + 4 * PAGE_SIZE, PAGE_SIZE);
    const src = scratch + 2 * PAGE_SIZE;                 /* 2 pages; the page after them is unmapped */
    const [, c] = yield* drm(p, fd, scratch, MOCKGPU_DRM_GEM_CREATE, [2, 0]);
    const h = c[1]!;
    yield* p.sys.write(src, new Uint8Array(2 * PAGE_SIZE).fill(0x5a));
    const [w0] = yield* drm(p, fd, scratch, MOCKGPU_DRM_GEM_PWRITE, [h, 0, 2 * PAGE_SIZE, src]);
    yield* p.sys.write(src, new Uint8Array(2 * PAGE_SIZE).fill(0xa5));     /* what a bad pwrite must not deliver */
    const [, a] = yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_ALLOC, [2 * PAGE_SIZE, 0]);
    const va = a[1]!;
    const [b0] = yield* drm(p, fd, scratch, MOCKGPU_DRM_VM_BIND, [va, h, 0, 2, MOCKGPU_BIND_WRITE]);
    const vs = [...mockgpu_get()!.va_spaces][0]!;
    const ptes = () => [uvm_pte_read(vs.pt, va), uvm_pte_read(vs.pt, va + PAGE_SIZE)];
    const before = ptes();
    const call = function* (cmd: number, vals: number[]): Sleepable<number> { return (yield* drm(p, fd, scratch, cmd, vals))[0]; };
    const einval = [
      yield* call(MOCKGPU_DRM_GEM_PWRITE, [h, -PAGE_SIZE, PAGE_SIZE, src]),        /* offset 2^64 - 4096 */
      yield* call(MOCKGPU_DRM_GEM_PWRITE, [h, 0, -PAGE_SIZE, src]),                /* size 2^64 - 4096 */
      yield* call(MOCKGPU_DRM_GEM_PWRITE, [h, PAGE_SIZE, 2 * PAGE_SIZE, src]),     /* past the BO's end */
      yield* call(MOCKGPU_DRM_GEM_PWRITE, [h, 1, PAGE_SIZE, src]),                 /* unaligned */
      yield* call(MOCKGPU_DRM_VM_BIND, [va, h, 0, 1, 2 ** 32 + MOCKGPU_BIND_WRITE]),  /* a flag bit past 32 */
      yield* call(MOCKGPU_DRM_VM_BIND, [va, h, 0, 1, -1]),
      yield* call(MOCKGPU_DRM_VM_BIND, [va + 8, h, 0, 1, 0]),                     /* unaligned va */
      yield* call(MOCKGPU_DRM_VM_BIND, [va, h, -1, 1, 0]),
      yield* call(MOCKGPU_DRM_VM_BIND, [va, h, 0, -1, 0]),
      yield* call(MOCKGPU_DRM_VM_BIND, [va, h, 0, 2 ** 40, 0]),
      yield* call(MOCKGPU_DRM_VM_UNBIND, [va - PAGE_SIZE, 2]),                     /* starts outside VM_ALLOC */
      yield* call(MOCKGPU_DRM_VM_UNBIND, [va, -1]),
      yield* call(MOCKGPU_DRM_VM_ALLOC, [-PAGE_SIZE, 0]),
      yield* call(MOCKGPU_DRM_GEM_CREATE, [-1, 0]),
      yield* call(MOCKGPU_DRM_GEM_CREATE, [0, 0]),
      yield* call(0xc0086499, [0]),                                                 /* no such ioctl */
    ];
    const efault = [
      yield* call(MOCKGPU_DRM_GEM_PWRITE, [h, 0, 2 * PAGE_SIZE, src + PAGE_SIZE]),  /* second page of the source unmapped */
      yield* call(MOCKGPU_DRM_GEM_PWRITE, [h, 0, PAGE_SIZE, -PAGE_SIZE]),
      yield* p.sys.ioctl(fd, MOCKGPU_DRM_VM_UNBIND, scratch + 4 * PAGE_SIZE),          /* the block itself unmapped */
    ];
    const enomem = yield* call(MOCKGPU_DRM_VM_ALLOC, [2 ** 47, 0]);
    const ebadf = [yield* p.sys.ioctl(999, MOCKGPU_DRM_VM_UNBIND, scratch), yield* p.sys.ioctl(-1, MOCKGPU_DRM_VM_UNBIND, scratch)];
    const after = ptes();
    const ctx = yield* g.ctxCreate();
    yield* g.launch(ctx, { base: va, size: 2 * PAGE_SIZE, op: MOCKGPU_OP_READ, elem: 256 });
    const w = yield* g.wait(ctx);
    yield* p.sys.close(fd);
    yield* g.close();
    return { ok: [w0, b0], einval, efault, enomem, ebadf, before, after, w };
  });
  assert.equal(r.ok, [0, 0]);
  assert.equal(r.einval, r.einval.map(() => -EINVAL));
  assert.equal(r.efault, [-EFAULT, -EFAULT, -EFAULT]);
  assert.is(r.enomem, -ENOMEM);
  assert.equal(r.ebadf, [-EBADF, -EBADF]);
  assert.equal(r.after, r.before, 'no PTE changed');
  assert.is(r.w.status, 0);
  assert.is(r.w.checksum, (2 * PAGE_SIZE / 4) * 0x5a5a5a5a % 2 ** 32, 'every BO byte is still the first pwrite\'s');
  assert.is(mockgpu_get()!.pmm.pages_used, 0);
});

test.run();
