/*
 * drivers/gpu/mockgpu/uvm_va_block_residency.ts - where each faulted page
 * of a VA block should live, and what else moves with it: the policies'
 * entry point from the fault path (uvm_hmm.ts calls
 * uvm_va_block_service_policy() before migrating and mapping a block).
 *
 * Follows NVIDIA UVM's block_select_processor_residency() and
 * uvm_va_block_select_residency() (uvm_va_block.c), which decide per page,
 * in this order (the first rule that applies wins):
 *   1. memory that must stay in system memory (file, shared, special
 *      VMAs: uvm_hmm_must_use_sysmem; or migration switched off): stay,
 *      map remotely;
 *   2. read duplication, on a read fault: copy to the reader
 *      (uvm_hmm_read_dup.ts);
 *   3. the faulting processor is the preferred location: migrate to it;
 *   4. thrashing PIN hint: stay where it is, map remotely
 *      (uvm_perf_thrashing.ts);
 *   5. the faulting processor is in accessed-by: stay, map remotely;
 *   6. a preferred location elsewhere (the CPU): stay in system memory;
 *   7. otherwise: migrate to the faulting processor.
 * A THROTTLE hint delays the fault by the nap first (the GPU is kept off
 * the page while the CPU uses it). Then the tree prefetcher
 * (uvm_perf_prefetch.ts) extends the pages that migrate to VRAM, never
 * onto pages whose preferred location is elsewhere, whose policy keeps
 * them off VRAM, or that cannot move.
 *
 * UVM's rule "not resident anywhere -> preferred location" folds into 6
 * and 7 here: under HMM the CPU page table always has the page (or none,
 * and migrate_vma then allocates it zero-filled where it goes).
 */
import type { mm_struct, vm_area_struct } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE, VM_READ } from '../../../include/linux/mm.js';
import {
  MOCKGPU_FAULT_ACCESS_READ, MOCKGPU_FAULT_ACCESS_WRITE, UVM_VA_BLOCK_SIZE, UvmEventMigrationCausePrefetch,
} from '../../../include/linux/mockgpu.js';
import { MOCKGPU_PROCESSOR_CPU, MOCKGPU_PROCESSOR_GPU0, MOCKGPU_PROCESSOR_NONE } from '../../../include/uapi/linux/mockgpu.js';
import { usleep_range, now } from '../../../lib/sim/clock.js';
import { mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { find_vma, vma_lookup } from '../../../mm/vma.js';
import { hmm_range_fault } from '../../../mm/hmm.js';
import { mmu_interval_read_begin } from '../../../mm/mmu_notifier.js';
import {
  HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, hmm_pfn_flags, hmm_pfn_to_page, type hmm_range,
} from '../../../include/linux/hmm.js';
import { uvm_pmm_gpu_owns } from './uvm_pmm_gpu.js';
import { mockgpu_params, uvm_gpu_stat_add, type uvm_gpu, type uvm_service_fault, type uvm_va_space } from './uvm_gpu.js';
import { uvm_channel_wait } from './uvm_channel.js';
import { uvm_perf_params } from './uvm_perf_module.js';
import { uvmGpuProcessorId, uvm_va_policy_clear, uvm_va_policy_get, type uvm_va_policy } from './uvm_va_policy.js';
import { PAGES_PER_UVM_VA_BLOCK, uvm_perf_prefetch_compute, prefetchMaskRuns } from './uvm_perf_prefetch.js';
import {
  uvm_perf_thrashing_clear, uvm_perf_thrashing_event, uvm_perf_thrashing_get_hint, uvm_perf_thrashing_is_thrashing, uvm_perf_thrashing_throttle_end,
} from './uvm_perf_thrashing.js';
import {
  uvm_hmm_read_dup_lookup, uvm_hmm_read_dup_release, uvm_hmm_read_dup_service, uvm_hmm_read_dup_take,
} from './uvm_hmm_read_dup.js';
import { uvm_hmm_must_use_sysmem, uvm_hmm_unmap_gpu } from './uvm_hmm.js';

/** The decision for one page (UVM: the residency chosen, and whether to map remotely). */
export type uvm_residency = 'migrate' | 'stay' | 'dup';

/**
 * uvm_va_block_select_residency() - the rule above, for a fault of the
 * GPU on one page. @pinned: the thrashing hint is PIN.
 * Context: any; pure.
 */
export function uvm_va_block_select_residency(vma: vm_area_struct, policy: Readonly<uvm_va_policy>, access: number,
                                              pinned: boolean, me = MOCKGPU_PROCESSOR_GPU0): uvm_residency {
  if (!mockgpu_params.migrate_to_vram || uvm_hmm_must_use_sysmem(vma)) return 'stay';
  if (policy.read_duplication && uvm_perf_params.read_duplication_enable && access === MOCKGPU_FAULT_ACCESS_READ) return 'dup';
  if (policy.preferred_location === me) return 'migrate';
  if (pinned) return 'stay';
  if (policy.accessed_by & (1 << me)) return 'stay';
  if (policy.preferred_location === MOCKGPU_PROCESSOR_CPU) return 'stay';
  return 'migrate';
}

/**
 * The plan for one block: the faults to map (the faulted pages that the
 * usual path services, plus prefetched pages as READ pseudo-faults, sorted)
 * and the pages to migrate to VRAM first, each with its cause.
 */
export interface uvm_service_plan {
  faults: uvm_service_fault[];
  migrate: Map<number, string>;       /* va -> 'gpu_fault' | 'prefetch' */
}

/* may the prefetcher move page @va to VRAM? */
function prefetchable(vs: uvm_va_space, vma: vm_area_struct, va: number): boolean {
  if (!(vma.vm_flags & VM_READ) || uvm_hmm_must_use_sysmem(vma)) return false;
  const p = uvm_va_policy_get(vs, va);
  const me = uvmGpuProcessorId(vs.gpu);
  if (p.preferred_location !== MOCKGPU_PROCESSOR_NONE && p.preferred_location !== me) return false;
  if (p.read_duplication || (p.accessed_by & (1 << me))) return false;
  return uvm_hmm_read_dup_lookup(vs, va) === undefined;
}

/*
 * the prefetch pages for @faulted (pages of one VMA in one block, all to
 * migrate). The tree spans the block but only @vma's pages are leaves: as
 * in UVM, an HMM VA block never crosses a VMA boundary.
 */
function uvm_va_block_prefetch(vs: uvm_va_space, block: number, vma: vm_area_struct, faulted: number[],
                               resident: Uint8Array): number[] {
  const N = PAGES_PER_UVM_VA_BLOCK;
  const valid = new Uint8Array(N), fmask = new Uint8Array(N), thrash = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    const va = block + i * PAGE_SIZE;
    if (va < vma.vm_start || va >= vma.vm_end) continue;
    valid[i] = prefetchable(vs, vma, va) ? 1 : 0;
    thrash[i] = uvm_perf_thrashing_is_thrashing(vs, va) ? 1 : 0;
  }
  for (const va of faulted) fmask[(va - block) / PAGE_SIZE] = 1;
  const mask = uvm_perf_prefetch_compute({ valid, resident, faulted: fmask, thrashing: thrash });
  const out: number[] = [];
  for (const [a, b] of prefetchMaskRuns(mask)) for (let i = a; i <= b; i++) out.push(block + i * PAGE_SIZE);
  return out;
}

/*
 * which pages of the block are in this GPU's VRAM now: a snapshot of the
 * CPU page table (hmm_range_fault without faulting), VMA by VMA
 */
function* uvm_va_block_vram_resident(vs: uvm_va_space, block: number): Sleepable<{ vram: Uint8Array; ro: Uint8Array }> {
  const out = new Uint8Array(PAGES_PER_UVM_VA_BLOCK), ro = new Uint8Array(PAGES_PER_UVM_VA_BLOCK);
  for (let va = block; va < block + UVM_VA_BLOCK_SIZE;) {
    const vma = find_vma(vs.mm, va);
    if (vma === null || vma.vm_start >= block + UVM_VA_BLOCK_SIZE) break;
    const start = Math.max(va, vma.vm_start), end = Math.min(vma.vm_end, block + UVM_VA_BLOCK_SIZE);
    const pfns = new Float64Array((end - start) / PAGE_SIZE);
    const range: hmm_range = { notifier: vs.notifier!, notifier_seq: 0, start, end, hmm_pfns: pfns, default_flags: 0,
      pfn_flags_mask: 0, dev_private_owner: vs.gpu };
    range.notifier_seq = yield* mmu_interval_read_begin(range.notifier);
    if ((yield* hmm_range_fault(range)) === 0) {
      for (let i = 0; i < pfns.length; i++) {
        const fl = hmm_pfn_flags(pfns[i]!);
        if (!(fl & HMM_PFN_VALID)) continue;
        if (uvm_pmm_gpu_owns(vs.gpu.pmm, hmm_pfn_to_page(pfns[i]!))) out[(start - block) / PAGE_SIZE + i] = 1;
        else if (!(fl & HMM_PFN_WRITE)) ro[(start - block) / PAGE_SIZE + i] = 1;
      }
    }
    va = end;
  }
  return { vram: out, ro };
}

/*
 * a write fault on a page the CPU maps read-only (a COW-shared page, or
 * one write-protected for read duplication): take the CPU write fault
 * first, so that what migrates is a private writable page (hmm_range_fault
 * returns a read-only device-private page as it is, even to a write request)
 */
function* uvm_va_block_break_cow(vs: uvm_va_space, va: number): Sleepable {
  const pfns = new Float64Array(1);
  const range: hmm_range = { notifier: vs.notifier!, notifier_seq: 0, start: va, end: va + PAGE_SIZE, hmm_pfns: pfns,
    default_flags: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, pfn_flags_mask: 0, dev_private_owner: vs.gpu };
  range.notifier_seq = yield* mmu_interval_read_begin(range.notifier);
  yield* hmm_range_fault(range);
}

/* drop the duplicate of @va before a write is serviced (ReadDuplicateInvalidate) */
function* uvm_va_block_collapse(vs: uvm_va_space, va: number): Sleepable {
  yield* mutex_lock(vs.mutex);
  const taken = uvm_hmm_read_dup_take(vs, va, va + PAGE_SIZE);
  const fence = taken.length > 0 ? yield* uvm_hmm_unmap_gpu(vs, va, va + PAGE_SIZE) : 0;
  mutex_unlock(vs.mutex);
  if (fence) yield* uvm_channel_wait(vs.gpu.channel, fence);
  uvm_hmm_read_dup_release(vs, taken, 'gpu_write');
}

/**
 * uvm_va_block_service_policy() - apply the policies to the faults of
 * one VA block (sorted, VMA checks passed): throttle, duplicate, choose
 * residency, prefetch.
 * Context: fault bottom half, mmap_lock held for read; may sleep (the
 * nap of a throttled fault, read duplication, collapse).
 * Return: the plan the caller migrates and maps; a fault absent from it
 * was serviced here (duplicated) or failed (its .fatal is set).
 */
export function* uvm_va_block_service_policy(vs: uvm_va_space, faults: uvm_service_fault[]): Sleepable<uvm_service_plan> {
  const me = uvmGpuProcessorId(vs.gpu);
  const plan: uvm_service_plan = { faults: [], migrate: new Map() };
  if (faults.length === 0) return plan;
  /* THROTTLE first: keep the GPU off its thrashing pages for the nap */
  let until = 0;
  const throttled: number[] = [];
  const pinned = new Set<number>();
  for (const f of faults) {
    const h = uvm_perf_thrashing_get_hint(vs, f.va, me);
    if (h.type === 'throttle') { throttled.push(f.va); until = Math.max(until, h.until); }
    else if (h.type === 'pin') pinned.add(f.va);
  }
  if (until > now()) {
    yield* usleep_range(Math.ceil((until - now()) / 1000), 0);
    for (const va of throttled) uvm_perf_thrashing_throttle_end(va, me);
  }
  /*
   * pages already in VRAM (a stale or duplicate fault): no migration,
   * whose own MIGRATE invalidation would unmap them from the GPU again
   */
  const block = faults[0]!.va - (faults[0]!.va % UVM_VA_BLOCK_SIZE);
  const { vram: on_gpu, ro } = yield* uvm_va_block_vram_resident(vs, block);
  const dup = new Map<vm_area_struct, number[]>();
  for (const f of faults) {
    const vma = vma_lookup(vs.mm, f.va)!;
    const policy = uvm_va_policy_get(vs, f.va);
    if (f.access >= MOCKGPU_FAULT_ACCESS_WRITE && uvm_hmm_read_dup_lookup(vs, f.va) !== undefined) {
      yield* uvm_va_block_collapse(vs, f.va);
    }
    const r = uvm_va_block_select_residency(vma, policy, f.access, pinned.has(f.va), me);
    trace_event('uvm_select_residency', { va: f.va, residency: r });
    if (r === 'dup') { const l = dup.get(vma) ?? []; l.push(f.va); dup.set(vma, l); continue; }
    plan.faults.push(f);
    if (r !== 'migrate' || on_gpu[(f.va - block) / PAGE_SIZE]) continue;
    if (f.access >= MOCKGPU_FAULT_ACCESS_WRITE && ro[(f.va - block) / PAGE_SIZE]) yield* uvm_va_block_break_cow(vs, f.va);
    plan.migrate.set(f.va, 'gpu_fault');
  }
  for (const [vma, vas] of dup) {
    const { normal, errors } = yield* uvm_hmm_read_dup_service(vs, vma, vas);
    for (const f of faults) {
      const err = errors.get(f.va);
      if (err !== undefined) f.fatal = err;
      else if (normal.includes(f.va)) { plan.faults.push(f); plan.migrate.set(f.va, 'gpu_fault'); }
    }
  }
  if (plan.migrate.size > 0) {
    const ctx = faults[0]!.ctx;
    const by_vma = new Map<vm_area_struct, number[]>();
    for (const va of plan.migrate.keys()) {
      const vma = vma_lookup(vs.mm, va)!;
      const l = by_vma.get(vma) ?? [];
      l.push(va);
      by_vma.set(vma, l);
    }
    for (const [vma, vas] of by_vma) {
      for (const va of uvm_va_block_prefetch(vs, block, vma, vas, on_gpu)) {
        if (plan.migrate.has(va)) continue;
        plan.migrate.set(va, UvmEventMigrationCausePrefetch);
        plan.faults.push({ va, access: MOCKGPU_FAULT_ACCESS_READ, ctx, fatal: 0 });
      }
    }
  }
  plan.faults.sort((a, b) => a.va - b.va);
  return plan;
}

/**
 * uvm_va_block_migrate_ranges() - the [start, end) ranges of @run (one
 * run of consecutive pages) to migrate to VRAM, split by cause.
 */
export function uvm_va_block_migrate_ranges(plan: uvm_service_plan, run: uvm_service_fault[]): { start: number; end: number; cause: string }[] {
  const out: { start: number; end: number; cause: string }[] = [];
  for (const f of run) {
    const cause = plan.migrate.get(f.va);
    if (cause === undefined) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.end === f.va && last.cause === cause) last.end += PAGE_SIZE;
    else out.push({ start: f.va, end: f.va + PAGE_SIZE, cause });
  }
  return out;
}

/**
 * uvm_va_block_migrated() - account a migration of [start, end) to VRAM
 * for the policies: prefetched pages, and a residency change per faulted
 * page for thrashing detection.
 */
export function uvm_va_block_migrated(vs: uvm_va_space, r: { start: number; end: number; cause: string }, moved: number): void {
  if (moved === 0) return;
  if (r.cause === UvmEventMigrationCausePrefetch) { uvm_gpu_stat_add(vs.gpu, 'prefetched_pages', moved); return; }
  for (let va = r.start; va < r.end; va += PAGE_SIZE) uvm_perf_thrashing_event(vs, va, uvmGpuProcessorId(vs.gpu));
}

/**
 * uvm_va_block_invalidate() - the policies' part of an invalidation of
 * [start, end) (uvm_hmm_invalidate): take the read duplicates of the range
 * (freed once the GPU has executed the unmap), and forget the advice and
 * the thrashing history of unmapped memory.
 * Context: vs.mutex held. Return: the duplicates to release after the fence.
 */
export function uvm_va_block_invalidate(vs: uvm_va_space, start: number, end: number, unmap: boolean) {
  if (unmap) {
    uvm_va_policy_clear(vs, start, end);
    uvm_perf_thrashing_clear(vs, start, end);
  }
  return uvm_hmm_read_dup_take(vs, start, end);
}

/* the address space of @gpu bound to @mm */
function va_space_of(gpu: uvm_gpu, mm: mm_struct): uvm_va_space | null {
  for (const vs of gpu.va_spaces) if (vs.mm === mm) return vs;
  return null;
}

/**
 * uvm_va_block_cpu_fault_begin() - the policies before a CPU fault on a
 * VRAM page migrates it back: a THROTTLE hint makes the CPU sleep the nap
 * (UVM throttles CPU faults the same way).
 * Context: the CPU fault, mmap_lock held for read; may sleep.
 */
export function* uvm_va_block_cpu_fault_begin(gpu: uvm_gpu, mm: mm_struct, va: number): Sleepable {
  const vs = va_space_of(gpu, mm);
  if (vs === null) return;
  const h = uvm_perf_thrashing_get_hint(vs, va, MOCKGPU_PROCESSOR_CPU);
  if (h.type !== 'throttle' || h.until <= now()) return;
  yield* usleep_range(Math.ceil((h.until - now()) / 1000), 0);
  uvm_perf_thrashing_throttle_end(va, MOCKGPU_PROCESSOR_CPU);
}

/** uvm_va_block_cpu_fault_end() - the CPU fault moved page @va back: a residency change. */
export function uvm_va_block_cpu_fault_end(gpu: uvm_gpu, mm: mm_struct, va: number): void {
  const vs = va_space_of(gpu, mm);
  if (vs !== null) uvm_perf_thrashing_event(vs, va, MOCKGPU_PROCESSOR_CPU);
}
