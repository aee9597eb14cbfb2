/*
 * drivers/gpu/mockgpu/uvm_va_policy.ts - memory advice as attributes of
 * address ranges: preferred location, accessed-by processors, read
 * duplication.
 *
 * Follows NVIDIA UVM's uvm_va_policy.c (uvm_va_policy_t; for HMM memory
 * the policy nodes of uvm_hmm.c, which split when a policy is set on part
 * of one and are dropped when the memory is unmapped) and KFD's svm_range
 * attributes (kfd_svm.c: setting an attribute on part of a range splits
 * it; GET_ATTR reports the intersection). The ioctls that set them are in
 * uvm_policy.ts; who reads them is uvm_va_block_residency.ts.
 *
 * A policy range is [start, end) of one address space with the values
 * set on it; addresses outside every range have the default policy
 * (no preferred location, nobody accessed-by, no read duplication).
 * Ranges are kept sorted and never overlap. Neighbours with equal values
 * are not merged (neither UVM nor KFD merges them).
 *
 * Simplified: a sorted array, not an interval tree (a few ranges per
 * process in every use here).
 */
import { MOCKGPU_PROCESSOR_NONE } from '../../../include/uapi/linux/mockgpu.js';
import type { uvm_gpu, uvm_va_space } from './uvm_gpu.js';

/**
 * struct uvm_va_policy - the advice in force on a range.
 * @preferred_location: a processor id (CPU 0, GPU 1) or MOCKGPU_PROCESSOR_NONE
 * @accessed_by: bit (1 << processor) per processor that maps without migrating
 * @read_duplication: read faults copy instead of migrating
 */
export interface uvm_va_policy {
  preferred_location: number;
  accessed_by: number;
  read_duplication: boolean;
}

/** A policy range: [start, end) and its policy. */
export interface uvm_va_policy_range extends uvm_va_policy {
  start: number;
  end: number;
}

/** The policy of memory nobody advised. */
export const uvm_va_policy_default: Readonly<uvm_va_policy> = Object.freeze({
  preferred_location: MOCKGPU_PROCESSOR_NONE, accessed_by: 0, read_duplication: false,
});

const trees = new WeakMap<uvm_va_space, uvm_va_policy_range[]>();

function tree_of(vs: uvm_va_space): uvm_va_policy_range[] {
  let t = trees.get(vs);
  if (t === undefined) { t = []; trees.set(vs, t); }
  return t;
}

/* split the range containing @addr (if any) so that a range starts at @addr */
function split_at(t: uvm_va_policy_range[], addr: number): void {
  const i = t.findIndex((r) => r.start < addr && addr < r.end);
  if (i < 0) return;
  const r = t[i]!;
  t.splice(i + 1, 0, { ...r, start: addr });
  r.end = addr;
}

/**
 * uvm_va_policy_update() - apply @fn to the policy of every address of
 * [start, end): ranges that straddle an edge are split there, and the
 * holes between ranges become ranges with the default policy first.
 * Context: caller holds mmap_lock (UVM: for write) and vs.mutex.
 */
export function uvm_va_policy_update(vs: uvm_va_space, start: number, end: number, fn: (p: uvm_va_policy) => void): void {
  const t = tree_of(vs);
  split_at(t, start);
  split_at(t, end);
  const out: uvm_va_policy_range[] = [];
  let cur = start;
  for (const r of t) {
    if (r.end <= start || r.start >= end) { out.push(r); continue; }
    if (r.start > cur) out.push({ ...uvm_va_policy_default, start: cur, end: r.start });
    out.push(r);
    cur = r.end;
  }
  if (cur < end) out.push({ ...uvm_va_policy_default, start: cur, end });
  out.sort((a, b) => a.start - b.start);
  for (const r of out) if (r.start >= start && r.end <= end) fn(r);
  trees.set(vs, out);
}

/**
 * uvm_va_policy_get() - the policy in force at @va.
 * Context: any; the result must not be modified.
 */
export function uvm_va_policy_get(vs: uvm_va_space, va: number): Readonly<uvm_va_policy> {
  const t = trees.get(vs);
  if (t === undefined) return uvm_va_policy_default;
  let lo = 0, hi = t.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1, r = t[mid]!;
    if (va < r.start) hi = mid - 1;
    else if (va >= r.end) lo = mid + 1;
    else return r;
  }
  return uvm_va_policy_default;
}

/** uvm_va_policy_ranges() - the ranges that intersect [start, end), in order (GET_ATTR, tests). */
export function uvm_va_policy_ranges(vs: uvm_va_space, start: number, end: number): readonly uvm_va_policy_range[] {
  return (trees.get(vs) ?? []).filter((r) => r.end > start && r.start < end);
}

/**
 * uvm_va_policy_clear() - forget the advice on [start, end): the memory
 * was unmapped (UVM drops HMM policy nodes in its UNMAP invalidation).
 * Context: vs.mutex held.
 */
export function uvm_va_policy_clear(vs: uvm_va_space, start: number, end: number): void {
  const t = trees.get(vs);
  if (t === undefined || !t.some((r) => r.end > start && r.start < end)) return;
  split_at(t, start);
  split_at(t, end);
  trees.set(vs, t.filter((r) => r.end <= start || r.start >= end));
}

/**
 * uvmGpuProcessorId() - the processor id of @gpu in advice and hints:
 * 1 + its minor (mockgpu0 is 1, mockgpu1 is 2); the CPU is 0.
 */
export function uvmGpuProcessorId(gpu: uvm_gpu): number {
  return 1 + (Number.parseInt(gpu.name.replace(/^\D+/, ''), 10) || 0);
}

/** uvm_va_policy_is_default() - does @p carry no advice? */
export function uvm_va_policy_is_default(p: Readonly<uvm_va_policy>): boolean {
  return p.preferred_location === MOCKGPU_PROCESSOR_NONE && p.accessed_by === 0 && !p.read_duplication;
}
