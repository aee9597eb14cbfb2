/*
 * drivers/gpu/mockgpu/uvm_policy.ts - the advice and migration ioctls of
 * /dev/mockgpu0: MOCKGPU_IOCTL_ADVISE, MOCKGPU_IOCTL_MIGRATE,
 * MOCKGPU_IOCTL_GET_ATTR (include/uapi/linux/mockgpu.ts).
 *
 * Follows NVIDIA UVM's uvm_policy.c (uvm_api_set_preferred_location,
 * uvm_api_set_accessed_by, uvm_api_enable/disable_read_duplication: take
 * mmap_lock for write, update the policy of every VA block of the range,
 * splitting policy nodes at the edges) and uvm_migrate.c
 * (uvm_api_migrate), with the range semantics of KFD's AMDKFD_IOC_SVM
 * (kfd_svm.c: attributes on part of a range split it; GET_ATTR returns
 * what every range of the interval agrees on).
 *
 * Effects at the time of the call:
 *  - preferred location, accessed-by, read-mostly: recorded; they steer
 *    the next faults (uvm_va_block_residency.ts); nothing moves now
 *    (UVM also maps accessed-by processors eagerly: not modelled; the
 *    mapping happens at the first fault, without migrating);
 *  - unset read-mostly: the duplicates of the range collapse now;
 *  - migrate: the pages move now (uvm_migrate.ts) and, to the GPU, are
 *    mapped there.
 * Errors: -EINVAL for a length of 0, an unaligned or wrapping range, an
 * unknown advice or processor; -EFAULT when part of the range is not
 * mapped (KFD's svm_range_check_vm) or the argument cannot be copied.
 */
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import {
  MOCKGPU_IOCTL_ADVISE, MOCKGPU_IOCTL_GET_ATTR, MOCKGPU_IOCTL_MIGRATE, MOCKGPU_ADVISE_SIZE, MOCKGPU_ATTR_SIZE,
  MOCKGPU_MIGRATE_SIZE, MOCKGPU_MAX_PROCESSORS, MOCKGPU_PROCESSOR_CPU, MOCKGPU_PROCESSOR_MIXED, MOCKGPU_PROCESSOR_NONE,
  MOCKGPU_ADVISE_SET_READ_MOSTLY, MOCKGPU_ADVISE_UNSET_READ_MOSTLY, MOCKGPU_ADVISE_SET_PREFERRED_LOCATION,
  MOCKGPU_ADVISE_UNSET_PREFERRED_LOCATION, MOCKGPU_ADVISE_SET_ACCESSED_BY, MOCKGPU_ADVISE_UNSET_ACCESSED_BY,
  mockgpu_u64s_decode, mockgpu_u64s_encode,
} from '../../../include/uapi/linux/mockgpu.js';
import { UvmEventMigrationCauseUser } from '../../../include/linux/mockgpu.js';
import { EFAULT, EINVAL } from '../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { vma_lookup } from '../../../mm/vma.js';
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock } from '../../../mm/mmap_lock.js';
import type { mm_struct } from '../../../include/linux/mm_types.js';
import type { uvm_va_space } from './uvm_gpu.js';
import {
  uvmGpuProcessorId, uvm_va_policy_default, uvm_va_policy_ranges, uvm_va_policy_update, type uvm_va_policy,
} from './uvm_va_policy.js';
import { uvm_hmm_read_dup_release, uvm_hmm_read_dup_take } from './uvm_hmm_read_dup.js';
import { uvm_hmm_unmap_gpu } from './uvm_hmm.js';
import { uvm_channel_wait } from './uvm_channel.js';
import { uvm_migrate } from './uvm_migrate.js';
import { copy_in, copy_out } from './uvm.js';

const advice_names: Record<number, string> = {
  [MOCKGPU_ADVISE_SET_READ_MOSTLY]: 'set_read_mostly', [MOCKGPU_ADVISE_UNSET_READ_MOSTLY]: 'unset_read_mostly',
  [MOCKGPU_ADVISE_SET_PREFERRED_LOCATION]: 'set_preferred_location',
  [MOCKGPU_ADVISE_UNSET_PREFERRED_LOCATION]: 'unset_preferred_location',
  [MOCKGPU_ADVISE_SET_ACCESSED_BY]: 'set_accessed_by', [MOCKGPU_ADVISE_UNSET_ACCESSED_BY]: 'unset_accessed_by',
};

/* 0, or -EINVAL for a bad range, or -EFAULT when a page of it has no VMA */
function range_check(mm: mm_struct, base: number, length: number): number {
  if (length <= 0 || base % PAGE_SIZE || length % PAGE_SIZE || base + length > 2 ** 53 || base < 0) return -EINVAL;
  for (let va = base; va < base + length;) {
    const vma = vma_lookup(mm, va);
    if (vma === null) return -EFAULT;
    va = vma.vm_end;
  }
  return 0;
}

const valid_processor = (p: number) => Number.isInteger(p) && p >= 0 && p < MOCKGPU_MAX_PROCESSORS;

/* the policy change of one advice, or null if the advice or its processor is invalid */
function advice_fn(advice: number, proc: number): ((p: uvm_va_policy) => void) | null {
  switch (advice) {
    case MOCKGPU_ADVISE_SET_READ_MOSTLY: return (p) => { p.read_duplication = true; };
    case MOCKGPU_ADVISE_UNSET_READ_MOSTLY: return (p) => { p.read_duplication = false; };
    case MOCKGPU_ADVISE_SET_PREFERRED_LOCATION:
      return valid_processor(proc) ? (p) => { p.preferred_location = proc; } : null;
    case MOCKGPU_ADVISE_UNSET_PREFERRED_LOCATION: return (p) => { p.preferred_location = MOCKGPU_PROCESSOR_NONE; };
    case MOCKGPU_ADVISE_SET_ACCESSED_BY: return valid_processor(proc) ? (p) => { p.accessed_by |= 1 << proc; } : null;
    case MOCKGPU_ADVISE_UNSET_ACCESSED_BY: return valid_processor(proc) ? (p) => { p.accessed_by &= ~(1 << proc); } : null;
    default: return null;
  }
}

/**
 * uvm_api_advise() - MOCKGPU_IOCTL_ADVISE on [base, base + length).
 * Context: process; takes mmap_lock for write, then vs.mutex.
 * Return: 0 or -errno.
 */
export function* uvm_api_advise(vs: uvm_va_space, base: number, length: number, advice: number, proc: number): Sleepable<number> {
  const fn = advice_fn(advice, proc);
  if (fn === null) return -EINVAL;
  const mm = vs.mm, end = base + length;
  yield* mmap_write_lock(mm);
  const ret = range_check(mm, base, length);
  if (ret) { mmap_write_unlock(mm); return ret; }
  yield* mutex_lock(vs.mutex);
  uvm_va_policy_update(vs, base, end, fn);
  const taken = advice === MOCKGPU_ADVISE_UNSET_READ_MOSTLY ? uvm_hmm_read_dup_take(vs, base, end) : [];
  const fence = taken.length > 0 ? yield* uvm_hmm_unmap_gpu(vs, base, end) : 0;
  mutex_unlock(vs.mutex);
  if (fence) yield* uvm_channel_wait(vs.gpu.channel, fence);
  uvm_hmm_read_dup_release(vs, taken, 'unset_read_mostly');
  mmap_write_unlock(mm);
  trace_event('uvm_api_advise', { vs: vs.id, base, length, advice: advice_names[advice]!, proc });
  return 0;
}

/**
 * uvm_api_get_attr() - what every policy range of [base, base + length)
 * agrees on (KFD GET_ATTR). Return: the values, or -errno.
 * Context: process; takes mmap_lock for read.
 */
export function* uvm_api_get_attr(vs: uvm_va_space, base: number, length: number):
    Sleepable<{ preferred: number; accessed_by: number; read_mostly: number; nr_ranges: number } | number> {
  yield* mmap_read_lock(vs.mm);
  const ret = range_check(vs.mm, base, length);
  if (ret) { mmap_read_unlock(vs.mm); return ret; }
  const end = base + length;
  const ranges = uvm_va_policy_ranges(vs, base, end);
  /* the holes between ranges carry the default policy */
  const parts: Readonly<uvm_va_policy>[] = [...ranges];
  let covered = 0;
  for (const r of ranges) covered += Math.min(r.end, end) - Math.max(r.start, base);
  if (covered < length) parts.push(uvm_va_policy_default);
  mmap_read_unlock(vs.mm);
  const prefs = new Set(parts.map((p) => p.preferred_location));
  return {
    preferred: prefs.size === 1 ? [...prefs][0]! : MOCKGPU_PROCESSOR_MIXED,
    accessed_by: parts.reduce((m, p) => m & p.accessed_by, ~0 >>> 0),
    read_mostly: parts.every((p) => p.read_duplication) ? 1 : 0,
    nr_ranges: ranges.length,
  };
}

/**
 * uvm_api_migrate() - MOCKGPU_IOCTL_MIGRATE: make [base, base + length)
 * resident on @proc now. Context: process; takes mmap_lock for read.
 * Return: pages moved, or -errno.
 */
export function* uvm_api_migrate(vs: uvm_va_space, base: number, length: number, proc: number): Sleepable<number> {
  /* this file's GPU or the CPU (UVM_MIGRATE names any registered processor; one device file, one GPU here) */
  if (proc !== MOCKGPU_PROCESSOR_CPU && proc !== uvmGpuProcessorId(vs.gpu)) return -EINVAL;
  yield* mmap_read_lock(vs.mm);
  let ret = range_check(vs.mm, base, length);
  if (ret === 0) ret = yield* uvm_migrate(vs, base, base + length, proc, UvmEventMigrationCauseUser);
  mmap_read_unlock(vs.mm);
  return ret;
}

/**
 * uvm_policy_ioctl() - the advice family of uvm_unlocked_ioctl().
 * Return: 0 or -errno; -EINVAL for a command that is not one of them.
 */
export function* uvm_policy_ioctl(vs: uvm_va_space, cmd: number, arg: number): Sleepable<number> {
  switch (cmd) {
    case MOCKGPU_IOCTL_ADVISE: {
      const raw = yield* copy_in(arg, MOCKGPU_ADVISE_SIZE);
      if (raw === null) return -EFAULT;
      const [base, length, advice, proc] = mockgpu_u64s_decode(raw, 4);
      return yield* uvm_api_advise(vs, base!, length!, advice!, proc!);
    }
    case MOCKGPU_IOCTL_MIGRATE: {
      const raw = yield* copy_in(arg, MOCKGPU_MIGRATE_SIZE);
      if (raw === null) return -EFAULT;
      const [base, length, proc] = mockgpu_u64s_decode(raw, 3);
      const moved = yield* uvm_api_migrate(vs, base!, length!, proc!);
      if (moved < 0) return moved;
      return yield* copy_out(arg, mockgpu_u64s_encode([base!, length!, proc!, moved]));
    }
    case MOCKGPU_IOCTL_GET_ATTR: {
      const raw = yield* copy_in(arg, MOCKGPU_ATTR_SIZE);
      if (raw === null) return -EFAULT;
      const [base, length] = mockgpu_u64s_decode(raw, 2);
      const a = yield* uvm_api_get_attr(vs, base!, length!);
      if (typeof a === 'number') return a;
      return yield* copy_out(arg, mockgpu_u64s_encode([base!, length!, a.preferred, a.accessed_by, a.read_mostly, a.nr_ranges]));
    }
    default:
      return -EINVAL;
  }
}
