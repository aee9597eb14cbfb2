/*
 * drivers/gpu/mockgpu/mockgpu_bo.ts - /dev/mockgpu_drm0: buffer objects
 * and a GPU VM that does not mirror the CPU, the way graphics drivers
 * manage most GPU memory (DRM GEM objects; drm_gpuvm / amdgpu_vm style
 * VA reservations with bind and unbind). ABI: include/uapi/linux/mockgpu_drm.ts.
 *
 * It is the counter-example to every design of the HMM debate: a BO has
 * its own pages (VRAM chunks from the PMM), no CPU VMA covers the GPU
 * range it is bound into, one ioctl remaps pages one by one with
 * attributes only the GPU's PTE has (compression kind, uncached), and a
 * game does thousands of such remaps per second. The bind writes the GPU
 * page table through the host channel and, when it replaces or removes
 * entries, invalidates the TLB; nothing in core mm is involved.
 * `hmm-sim run bo-remap` measures it against the same remap stream done
 * through a mirrored address space.
 *
 * The GPU VM is the va_space of the process's open /dev/mockgpu0 (its
 * page table is what the SMs walk); open() fails with -ENODEV without
 * one. VA ranges come from a window the CPU does not use (from 2^46).
 * Simplified: one VM per open file; BO pages are 4 KiB VRAM chunks and
 * VRAM is not evicted; binds wait for the channel (synchronous VM_BIND).
 */
import type { file, inode, task_struct } from '../../../include/linux/sched.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  UVM_APERTURE_VID, MOCKGPU_PTE_KIND_COMPRESSED, MOCKGPU_PTE_UNCACHED, mockgpu_pte_make,
} from '../../../include/linux/mockgpu.js';
import {
  MOCKGPU_DRM_GEM_CREATE, MOCKGPU_DRM_GEM_PWRITE, MOCKGPU_DRM_GEM_CLOSE, MOCKGPU_DRM_VM_ALLOC, MOCKGPU_DRM_VM_BIND,
  MOCKGPU_DRM_VM_UNBIND, MOCKGPU_BIND_WRITE, MOCKGPU_BIND_COMPRESSED, MOCKGPU_BIND_UNCACHED, MOCKGPU_BIND_FLAGS,
  mockgpu_drm_fields,
} from '../../../include/uapi/linux/mockgpu_drm.js';
import { mockgpu_u64s_decode, mockgpu_u64s_encode } from '../../../include/uapi/linux/mockgpu.js';
import { EFAULT, EINVAL, ENODEV, ENOMEM } from '../../../include/uapi/asm-generic/errno.js';
import { current, type Sleepable } from '../../../lib/sim/sched.js';
import { PCIE_BW } from '../../../lib/sim/costs.js';
import { count_event, trace_event } from '../../../lib/sim/trace.js';
import { misc_register } from '../../../mm/file.js';
import { copy_from_user, copy_to_user } from '../../../mm/fault.js';
import type { uvm_gpu, uvm_va_space } from './uvm_gpu.js';
import { uvm_pmm_gpu_alloc_page, uvm_pmm_gpu_free_page } from './uvm_pmm_gpu.js';
import { uvm_push_begin, uvm_push_end, uvm_channel_wait } from './uvm_channel.js';

/** The GPU VA window VM_ALLOC hands out: [2^46, 2^47), never a CPU address here. */
export const MOCKGPU_VM_BASE = 2 ** 46;
const MOCKGPU_VM_END = 2 ** 47;

/** A buffer object: its VRAM pages and who still needs them. */
export interface mockgpu_bo { handle: number; pages: number[]; bound: number; open: boolean }

/** What one binding of a GPU page points at. */
interface mockgpu_vm_map { bo: mockgpu_bo; page: number; flags: number }

/** The GPU VM of one open file, with its counters (the bo-remap table). */
export class mockgpu_vm {
  readonly bos = new Map<number, mockgpu_bo>();
  readonly ranges: { start: number; end: number }[] = [];
  readonly map = new Map<number, mockgpu_vm_map>();
  next_handle = 1;
  next_va = MOCKGPU_VM_BASE;
  binds = 0;
  unbinds = 0;
  ptes_written = 0;
  tlb_invalidates = 0;
  constructor(readonly vs: uvm_va_space) {}
}

function current_task(): task_struct | null {
  return current().task as task_struct | null;
}

/* a BO's pages go back to VRAM when no handle and no binding holds it */
function bo_free_if_unused(gpu: uvm_gpu, bo: mockgpu_bo): void {
  if (bo.bound > 0 || bo.open) return;
  for (const p of bo.pages) uvm_pmm_gpu_free_page(gpu.pmm, p);
  bo.pages.length = 0;
}

function bo_unref(gpu: uvm_gpu, bo: mockgpu_bo): void {
  bo.bound--;
  bo_free_if_unused(gpu, bo);
}

function bo_close(gpu: uvm_gpu, bo: mockgpu_bo): void {
  bo.open = false;
  bo_free_if_unused(gpu, bo);
}

function in_range(vm: mockgpu_vm, va: number, len: number): boolean {
  return va % PAGE_SIZE === 0 && len > 0 && vm.ranges.some((r) => va >= r.start && va + len <= r.end);
}

/* the GPU PTE for one bound page: VRAM aperture plus the bind's device-only attributes */
function bo_pte(bo: mockgpu_bo, page: number, flags: number): number {
  const w = (flags & MOCKGPU_BIND_WRITE) !== 0;
  return mockgpu_pte_make(UVM_APERTURE_VID, bo.pages[page]!, w, w)
    + (flags & MOCKGPU_BIND_COMPRESSED ? MOCKGPU_PTE_KIND_COMPRESSED : 0) + (flags & MOCKGPU_BIND_UNCACHED ? MOCKGPU_PTE_UNCACHED : 0);
}

/**
 * mockgpu_vm_bind() - VM_BIND: point [va, va + npages pages) at BO pages
 * [bo_page, bo_page + npages), replacing what was bound there; the PTE
 * writes (and a TLB invalidate if anything was replaced) go through the
 * host channel and are waited for.
 * Return: 0 or -EINVAL.
 */
export function* mockgpu_vm_bind(vm: mockgpu_vm, va: number, handle: number, bo_page: number, npages: number,
                                 flags: number): Sleepable<number> {
  const bo = vm.bos.get(handle);
  if (bo === undefined || !bo.open || flags < 0 || flags > MOCKGPU_BIND_FLAGS || (flags & ~MOCKGPU_BIND_FLAGS) !== 0) return -EINVAL;
  if (bo_page < 0 || npages <= 0 || bo_page + npages > bo.pages.length || !in_range(vm, va, npages * PAGE_SIZE)) return -EINVAL;
  const gpu = vm.vs.gpu, end = va + npages * PAGE_SIZE;
  const p = uvm_push_begin(gpu.channel, 'vm_bind');
  const old: mockgpu_bo[] = [];
  for (let i = 0; i < npages; i++) {
    const a = va + i * PAGE_SIZE, prev = vm.map.get(a);
    if (prev !== undefined) old.push(prev.bo);
    vm.map.set(a, { bo, page: bo_page + i, flags });
    bo.bound++;
    p.cmds.push({ kind: 'pte_write', pt: vm.vs.pt, vs_id: vm.vs.id, va: a, pte: bo_pte(bo, bo_page + i, flags) });
  }
  if (old.length > 0) { p.cmds.push({ kind: 'tlb_invalidate', tlb: gpu.tlb, vs_id: vm.vs.id, start: va, end }); vm.tlb_invalidates++; }
  yield* uvm_channel_wait(gpu.channel, yield* uvm_push_end(p));
  for (const b of old) bo_unref(gpu, b);
  vm.binds++;
  vm.ptes_written += npages;
  count_event('mockgpu_vm_bind');
  return 0;
}

/**
 * mockgpu_vm_unbind() - VM_UNBIND: clear [va, va + npages pages), invalidate
 * the TLB, wait; BOs whose handle is closed lose their pages with their
 * last binding. Return: 0 or -EINVAL.
 */
export function* mockgpu_vm_unbind(vm: mockgpu_vm, va: number, npages: number): Sleepable<number> {
  if (npages <= 0 || !in_range(vm, va, npages * PAGE_SIZE)) return -EINVAL;
  const gpu = vm.vs.gpu, end = va + npages * PAGE_SIZE;
  const p = uvm_push_begin(gpu.channel, 'vm_unbind');
  p.cmds.push({ kind: 'pte_clear', pt: vm.vs.pt, vs_id: vm.vs.id, start: va, end });
  p.cmds.push({ kind: 'tlb_invalidate', tlb: gpu.tlb, vs_id: vm.vs.id, start: va, end });
  yield* uvm_channel_wait(gpu.channel, yield* uvm_push_end(p));
  vm.tlb_invalidates++;
  for (let a = va; a < end; a += PAGE_SIZE) {
    const m = vm.map.get(a);
    if (m === undefined) continue;
    vm.map.delete(a);
    bo_unref(gpu, m.bo);
  }
  vm.unbinds++;
  return 0;
}

/* GEM_CREATE: a BO of @npages VRAM pages (zeroed) */
function gem_create(vm: mockgpu_vm, npages: number): number {
  if (npages <= 0 || npages > 1 << 16) return -EINVAL;
  const pages: number[] = [];
  for (let i = 0; i < npages; i++) {
    const p = uvm_pmm_gpu_alloc_page(vm.vs.gpu.pmm);
    if (p < 0) { for (const q of pages) uvm_pmm_gpu_free_page(vm.vs.gpu.pmm, q); return -ENOMEM; }
    vm.vs.gpu.pmm.vram(p).fill(0);
    pages.push(p);
  }
  const bo: mockgpu_bo = { handle: vm.next_handle++, pages, bound: 0, open: true };
  vm.bos.set(bo.handle, bo);
  return bo.handle;
}

/* GEM_PWRITE: user bytes into the BO, on the copy engine */
function* gem_pwrite(vm: mockgpu_vm, handle: number, offset: number, size: number, uptr: number): Sleepable<number> {
  const bo = vm.bos.get(handle), mm = current_task()?.mm ?? null;
  if (bo === undefined || !bo.open || offset < 0 || size < 0 || offset % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0 ||
      offset + size > bo.pages.length * PAGE_SIZE) return -EINVAL;             /* u64 fields: negative = 2^63 and up */
  const b = new Uint8Array(size);
  if (mm === null || (yield* copy_from_user(mm, b, uptr)) !== 0) return -EFAULT;
  const gpu = vm.vs.gpu, p = uvm_push_begin(gpu.ce, 'gem_pwrite');
  for (let o = 0; o < size; o += PAGE_SIZE) {
    p.cmds.push({ kind: 'copy', dst: gpu.pmm.vram(bo.pages[(offset + o) / PAGE_SIZE]!), src: b.subarray(o, o + PAGE_SIZE), bw: PCIE_BW });
  }
  yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(p));
  return 0;
}

/* VM_ALLOC: reserve @size bytes of GPU VA (first fit upwards) */
function vm_alloc(vm: mockgpu_vm, size: number): number {
  if (size <= 0 || size % PAGE_SIZE !== 0) return -EINVAL;
  if (vm.next_va + size > MOCKGPU_VM_END) return -ENOMEM;
  vm.ranges.push({ start: vm.next_va, end: vm.next_va + size });
  vm.next_va += size;
  return vm.next_va - size;
}

function* mockgpu_drm_open(ino: inode, filp: file): Sleepable<number> {
  const gpu = ino.i_private as uvm_gpu, mm = current_task()?.mm ?? null;
  const vs = [...gpu.va_spaces].find((v) => v.mm === mm && !v.closed);
  if (vs === undefined) return -ENODEV;
  filp.private_data = new mockgpu_vm(vs);
  trace_event('mockgpu_drm_open', { vs: vs.id });
  return 0;
}

function* mockgpu_drm_release(_ino: inode, filp: file): Sleepable<number> {
  const vm = filp.private_data as mockgpu_vm | null;
  if (vm === null) return 0;
  for (const r of vm.ranges) yield* mockgpu_vm_unbind(vm, r.start, (r.end - r.start) / PAGE_SIZE);
  for (const bo of vm.bos.values()) if (bo.open) bo_close(vm.vs.gpu, bo);
  filp.private_data = null;
  return 0;
}

/**
 * mockgpu_drm_ioctl() - the ioctls of include/uapi/linux/mockgpu_drm.ts.
 * Return: 0 or -errno (-EINVAL, -ENOMEM, -EFAULT).
 * Context: process context; binds sleep until the GPU executed them.
 */
export function* mockgpu_drm_ioctl(filp: file, cmd: number, arg: number): Sleepable<number> {
  const vm = filp.private_data as mockgpu_vm | null, mm = current_task()?.mm ?? null;
  const n = mockgpu_drm_fields[cmd >>> 0];
  if (vm === null || mm === null || n === undefined) return -EINVAL;
  const raw = new Uint8Array(n * 8);
  if ((yield* copy_from_user(mm, raw, arg)) !== 0) return -EFAULT;
  const f = mockgpu_u64s_decode(raw, n);
  const out = function* (vals: number[]): Sleepable<number> {
    return (yield* copy_to_user(mm, arg, mockgpu_u64s_encode(vals))) === 0 ? 0 : -EFAULT;
  };
  switch (cmd >>> 0) {
    case MOCKGPU_DRM_GEM_CREATE: { const h = gem_create(vm, f[0]!); return h < 0 ? h : yield* out([f[0]!, h]); }
    case MOCKGPU_DRM_GEM_PWRITE: return yield* gem_pwrite(vm, f[0]!, f[1]!, f[2]!, f[3]!);
    case MOCKGPU_DRM_GEM_CLOSE: {
      const bo = vm.bos.get(f[0]!);
      if (bo === undefined || !bo.open) return -EINVAL;
      bo_close(vm.vs.gpu, bo);
      vm.bos.delete(bo.handle);
      return 0;
    }
    case MOCKGPU_DRM_VM_ALLOC: { const va = vm_alloc(vm, f[0]!); return va < 0 ? va : yield* out([f[0]!, va]); }
    case MOCKGPU_DRM_VM_BIND: return yield* mockgpu_vm_bind(vm, f[0]!, f[1]!, f[2]!, f[3]!, f[4]!);
    case MOCKGPU_DRM_VM_UNBIND: return yield* mockgpu_vm_unbind(vm, f[0]!, f[1]!);
    default: return -EINVAL;
  }
}

/** mockgpu_drm_vm_of() - the GPU VM of an open /dev/mockgpu_drm0 (tools, tests). */
export function mockgpu_drm_vm_of(filp: file): mockgpu_vm | null {
  return filp.private_data as mockgpu_vm | null;
}

/**
 * mockgpu_drm_init() - register /dev/mockgpu_drm0 for @gpu (after
 * uvm_gpu_init, as a second driver would bind to the same device).
 */
export function mockgpu_drm_init(gpu: uvm_gpu): void {
  misc_register('mockgpu_drm0', 226 * 2 ** 20, Object.freeze({
    open: mockgpu_drm_open, release: mockgpu_drm_release, unlocked_ioctl: mockgpu_drm_ioctl,
  }), gpu);
}
