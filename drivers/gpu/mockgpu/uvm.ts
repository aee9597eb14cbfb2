/*
 * drivers/gpu/mockgpu/uvm.ts - /dev/mockgpu0: module init, open, release
 * and the ioctls (contexts, launch, wait, stats).
 *
 * Follows NVIDIA UVM's uvm.c (uvm_open creates a va_space bound to the
 * opener's mm, uvm_release tears it down) and uvm_gpu.c (bring-up: VRAM,
 * channels, fault buffer). The ABI is include/uapi/linux/mockgpu.ts; the
 * user-space side tools/include/mockgpu.ts. Which HMM era the device runs
 * on is chosen per open file (mockgpu_set_era: mainline by default, or the
 * 2015 v8 API through uvm_hmm_v8.ts); the device core is the same.
 *
 * Release (close, or exit with the file open) never hangs and leaks
 * nothing: every context is cancelled (its warps leave their replay wait,
 * queued kernels end at once), the bottom half is waited for, the notifier
 * removed, the GPU page table cleared through the channel. VRAM pages the
 * process still maps stay device-private in its page table and are freed
 * back to the PMM by folio_free when its mm goes away.
 */
import type { file, inode, task_struct } from '../../../include/linux/sched.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  MOCKGPU_IOCTL_CTX_CREATE, MOCKGPU_IOCTL_CTX_DESTROY, MOCKGPU_IOCTL_LAUNCH, MOCKGPU_IOCTL_WAIT, MOCKGPU_IOCTL_STATS,
  MOCKGPU_CTX_ARGS_SIZE, MOCKGPU_LAUNCH_SIZE, MOCKGPU_WAIT_SIZE, mockgpu_launch_decode, mockgpu_launch_encode,
  mockgpu_u64s_decode, mockgpu_u64s_encode, mockgpu_op_names, mockgpu_pattern_names, type mockgpu_stat_name,
} from '../../../include/uapi/linux/mockgpu.js';
import { EAGAIN, EFAULT, EINVAL } from '../../../include/uapi/asm-generic/errno.js';
import { current, schedulerActive, type Sleepable } from '../../../lib/sim/sched.js';
import { wait_event } from '../../../lib/locking/wait.js';
import { mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { misc_register } from '../../../mm/file.js';
import { totalram_pages } from '../../../mm/page_alloc.js';
import { copy_from_user, copy_to_user } from '../../../mm/fault.js';
import {
  gpu_context, mockgpu_params, uvm_gpu, uvm_gpu_stat, uvm_gpu_stat_add, uvm_va_space, type mockgpu_hmm_ops,
} from './uvm_gpu.js';
import { uvm_pmm_gpu, uvm_pmm_gpu_init } from './uvm_pmm_gpu.js';
import { uvm_channel, uvm_channel_wait } from './uvm_channel.js';
import { uvm_tlb, uvm_page_table_alloc } from './uvm_mmu.js';
import { uvm_fault_buffer, uvm_gpu_cancel_context } from './uvm_gpu_replayable_faults.js';
import { mockgpu_kernel_launch, mockgpu_launch_check } from './mockgpu_sm.js';
import { uvm_hmm_ops, uvm_hmm_devmem_ops, uvm_hmm_unmap_gpu } from './uvm_hmm.js';
import { uvm_policy_ioctl } from './uvm_policy.js';
import { uvm_hmm_read_dup_release, uvm_hmm_read_dup_take } from './uvm_hmm_read_dup.js';

const MOCKGPU_MAJOR = 195;          /* the major number of /dev/nvidia* */
const MiB = 1024 * 1024;

/* the GPUs of the running machine (/dev/mockgpu0, 1, ...); replaced at every boot */
let the_gpus: uvm_gpu[] = [];
/* the era new opens use (mockgpu_set_era) */
let next_glue: mockgpu_hmm_ops = uvm_hmm_ops;

/** mockgpu_get() - GPU @minor of the running machine, or null before boot (tests, tools). */
export function mockgpu_get(minor = 0): uvm_gpu | null {
  return the_gpus[minor] ?? null;
}

/** mockgpu_set_era() - the HMM glue the next open() binds its address space with. */
export function mockgpu_set_era(glue: mockgpu_hmm_ops): void {
  next_glue = glue;
}

/** mockgpuVaSpaceOf() - the address space of an open /dev/mockgpu0 file (tests). */
export function mockgpuVaSpaceOf(filp: file): uvm_va_space | null {
  return filp.private_data as uvm_va_space | null;
}

function current_task(): task_struct | null {
  return current().task as task_struct | null;
}

/* ---- open and release ---- */

function* uvm_open(ino: inode, filp: file): Sleepable<number> {
  const gpu = ino.i_private as uvm_gpu;
  const task = current_task();
  if (task === null || task.mm === null) return -EINVAL;
  const vs = new uvm_va_space(gpu.next_va_space++, gpu, task.mm, uvm_page_table_alloc(), next_glue);
  const ret = yield* vs.glue.va_space_init(vs);
  if (ret) return ret;
  gpu.va_spaces.add(vs);
  filp.private_data = vs;
  trace_event('uvm_open', { vs: vs.id, mm: task.mm.id, era: vs.glue.name });
  return 0;
}

/**
 * uvm_va_space_destroy() - cancel every context, wait until no warp and
 * no bottom half works for @vs, unsubscribe, clear the GPU page table.
 * Context: may sleep.
 */
export function* uvm_va_space_destroy(vs: uvm_va_space): Sleepable {
  const gpu = vs.gpu;
  vs.closed = true;
  for (const ctx of vs.contexts.values()) uvm_gpu_cancel_context(gpu, ctx, -EFAULT, 0, false);
  if (schedulerActive() !== null) {
    const fb = gpu.fault_buffer;
    yield* wait_event(fb.idle_wq, () => !fb.bh_running);
    for (const ctx of vs.contexts.values()) yield* wait_event(ctx.done_wq, () => ctx.completed === ctx.submitted);
  }
  yield* vs.glue.va_space_fini(vs);
  yield* mutex_lock(vs.mutex);
  const fence = yield* uvm_hmm_unmap_gpu(vs, 0, 2 ** 48);
  mutex_unlock(vs.mutex);
  yield* uvm_channel_wait(gpu.channel, fence);
  uvm_hmm_read_dup_release(vs, uvm_hmm_read_dup_take(vs, 0, 2 ** 53), 'close');    /* the GPU no longer maps them */
  gpu.va_spaces.delete(vs);
  trace_event('uvm_va_space_destroy', { vs: vs.id });
}

function* uvm_release(_ino: inode, filp: file): Sleepable<number> {
  const vs = filp.private_data as uvm_va_space | null;
  if (vs !== null) yield* uvm_va_space_destroy(vs);
  filp.private_data = null;
  return 0;
}

/* ---- ioctls ---- */

/** copy_in() - @size bytes of the ioctl argument at @arg, or null (-EFAULT). */
export function* copy_in(arg: number, size: number): Sleepable<Uint8Array | null> {
  const mm = current_task()?.mm ?? null;
  const b = new Uint8Array(size);
  if (mm === null || (yield* copy_from_user(mm, b, arg)) !== 0) return null;
  return b;
}

/** copy_out() - write @b back to the ioctl argument. Return: 0 or -EFAULT. */
export function* copy_out(arg: number, b: Uint8Array): Sleepable<number> {
  const mm = current_task()?.mm ?? null;
  return mm !== null && (yield* copy_to_user(mm, arg, b)) === 0 ? 0 : -EFAULT;
}

function* uvm_ioctl_launch(vs: uvm_va_space, arg: number): Sleepable<number> {
  const raw = yield* copy_in(arg, MOCKGPU_LAUNCH_SIZE);
  if (raw === null) return -EFAULT;
  const l = mockgpu_launch_decode(raw);
  const ctx = vs.contexts.get(l.ctx);
  if (ctx === undefined) return -EINVAL;
  const bad = mockgpu_launch_check(l);
  if (bad) return bad;
  if (schedulerActive() === null) return -EAGAIN;   /* the GPU runs only while a Scheduler runs */
  if (ctx.cancelled) return ctx.error;
  uvm_gpu_stat_add(vs.gpu, 'launches');
  l.fence = mockgpu_kernel_launch(vs.gpu, ctx, l);
  trace_event('mockgpu_launch', { ctx: ctx.id, pattern: mockgpu_pattern_names[l.pattern]!, op: mockgpu_op_names[l.op]!,
    base: l.base, size: l.size, count: l.count, seq: l.fence });
  return yield* copy_out(arg, mockgpu_launch_encode(l));
}

function* uvm_ioctl_wait(vs: uvm_va_space, arg: number): Sleepable<number> {
  const raw = yield* copy_in(arg, MOCKGPU_WAIT_SIZE);
  if (raw === null) return -EFAULT;
  const [id] = mockgpu_u64s_decode(raw, 1);
  const ctx = vs.contexts.get(id!);
  if (ctx === undefined) return -EINVAL;
  if (ctx.completed !== ctx.submitted) {
    if (schedulerActive() === null) return -EAGAIN;
    yield* wait_event(ctx.done_wq, () => ctx.completed === ctx.submitted);
  }
  return yield* copy_out(arg, mockgpu_u64s_encode([ctx.id, ctx.error, ctx.checksum]));
}

/** uvm_gpu_stats_sync() - fold the TLB, channel and PMM figures into the counters. */
export function uvm_gpu_stats_sync(gpu: uvm_gpu): void {
  const set = (name: mockgpu_stat_name, v: number) => uvm_gpu_stat_add(gpu, name, v - uvm_gpu_stat(gpu, name));
  set('tlb_hits', gpu.tlb.hits);
  set('tlb_misses', gpu.tlb.misses);
  set('tlb_invalidates', gpu.channel.tlb_invalidates);
  set('pt_updates', gpu.channel.pte_writes);
  set('commands', gpu.channel.commands + gpu.ce.commands);
  set('vram_pages_used', gpu.pmm.pages_used);
}

/**
 * uvm_unlocked_ioctl() - the ioctl entry point of /dev/mockgpu0.
 * Return: 0 or -errno: -EINVAL (unknown command, context or bad launch),
 * -EFAULT (copy), -EAGAIN (LAUNCH/WAIT with no scheduler running), or a
 * cancelled context's launch error from LAUNCH.
 * Context: process context; WAIT sleeps.
 */
export function* uvm_unlocked_ioctl(filp: file, cmd: number, arg: number): Sleepable<number> {
  const vs = filp.private_data as uvm_va_space | null;
  if (vs === null || vs.closed) return -EINVAL;
  switch (cmd >>> 0) {
    case MOCKGPU_IOCTL_CTX_CREATE: {
      const ctx = new gpu_context(vs.next_ctx++, vs);
      vs.contexts.set(ctx.id, ctx);
      return yield* copy_out(arg, mockgpu_u64s_encode([ctx.id]));
    }
    case MOCKGPU_IOCTL_CTX_DESTROY: {
      const raw = yield* copy_in(arg, MOCKGPU_CTX_ARGS_SIZE);
      if (raw === null) return -EFAULT;
      const ctx = vs.contexts.get(mockgpu_u64s_decode(raw, 1)[0]!);
      if (ctx === undefined || ctx.completed !== ctx.submitted) return -EINVAL;
      vs.contexts.delete(ctx.id);
      return 0;
    }
    case MOCKGPU_IOCTL_LAUNCH: return yield* uvm_ioctl_launch(vs, arg);
    case MOCKGPU_IOCTL_WAIT: return yield* uvm_ioctl_wait(vs, arg);
    case MOCKGPU_IOCTL_STATS:
      uvm_gpu_stats_sync(vs.gpu);
      return yield* copy_out(arg, mockgpu_u64s_encode([...vs.gpu.stats]));
    default:
      return yield* uvm_policy_ioctl(vs, cmd >>> 0, arg);     /* ADVISE, MIGRATE, GET_ATTR (uvm_policy.ts) */
  }
}

const uvm_fops = Object.freeze({ open: uvm_open, release: uvm_release, unlocked_ioctl: uvm_unlocked_ioctl });

/* bring up GPU @minor: VRAM, channels, TLB, fault buffer, then /dev/mockgpu<minor> */
function uvm_gpu_create(minor: number, vram: number): uvm_gpu | null {
  const name = `mockgpu${minor}`;
  const gpu = new uvm_gpu(name, new uvm_pmm_gpu(vram), new uvm_channel(`${name}-host`),
    new uvm_channel(`${name}-ce`), new uvm_tlb(mockgpu_params.tlb_entries),
    new uvm_fault_buffer(mockgpu_params.fault_buffer_entries, name));
  const ret = uvm_pmm_gpu_init(gpu.pmm, gpu, uvm_hmm_devmem_ops, name);
  if (ret) { trace_event('uvm_gpu_init_failed', { gpu: name, ret }); return null; }
  misc_register(name, MOCKGPU_MAJOR * 2 ** 20 + minor, uvm_fops, gpu);
  return gpu;
}

/**
 * uvm_gpu_init() - module_init, which the caller runs after start_kernel()
 * (as insmod does; again to reload with new mockgpu_params): for each of
 * mockgpu_params.nr_gpus devices, VRAM (half of RAM, at most 64 MiB,
 * split between the GPUs, unless mockgpu_params.vram_bytes gives the size
 * of each), channels, TLB, fault buffer, then /dev/mockgpu0, 1, ...
 * Each GPU is its own dev_pagemap owner: one GPU's VRAM pages are foreign
 * device-private pages to the other (see uvm_hmm.ts, "two GPUs").
 */
export function uvm_gpu_init(): void {
  const ram = totalram_pages() * PAGE_SIZE;
  const n = Math.max(1, Math.min(2, mockgpu_params.nr_gpus));
  const vram = mockgpu_params.vram_bytes > 0 ? mockgpu_params.vram_bytes : Math.floor(Math.min(64 * MiB, Math.floor(ram / 2)) / n);
  the_gpus = [];
  for (let minor = 0; minor < n; minor++) {
    const gpu = uvm_gpu_create(minor, vram);
    if (gpu === null) { the_gpus = []; return; }
    the_gpus.push(gpu);
  }
  next_glue = uvm_hmm_ops;
  trace_event('uvm_gpu_init', { gpus: n, vram, sms: mockgpu_params.nr_sms, fault_buffer: mockgpu_params.fault_buffer_entries });
}
