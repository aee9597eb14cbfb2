/*
 * drivers/gpu/mockgpu/uvm_hmm.ts - the mock GPU on mainline HMM: the
 * interval notifier that keeps the GPU page table coherent, fault
 * servicing per VA block with hmm_range_fault() and migrate_vma_*(), and
 * the CPU fault on a VRAM page (dev_pagemap_ops.migrate_to_ram).
 *
 * Follows NVIDIA UVM's uvm_hmm.c (uvm_hmm_invalidate,
 * uvm_hmm_va_block_service_locked, uvm_hmm_must_use_sysmem,
 * uvm_hmm_devmem_fault_entry / migrate_to_ram, uvm_hmm_gpu_fault) and the
 * Linux driver pattern of mm/hmm.c, mm/migrate_device.c and
 * lib/test_hmm.c (our port: lib/test_hmm*.ts).
 *
 * Residency, as UVM decides it for HMM ranges: a GPU fault on private
 * anonymous memory migrates the faulting pages to VRAM (migrate_vma_setup
 * with MIGRATE_VMA_SELECT_SYSTEM, copies on the copy engine,
 * migrate_vma_pages, migrate_vma_finalize); file-backed, shared and
 * special VMAs stay in system memory and are mapped remotely (aperture
 * SYS), as uvm_hmm_must_use_sysmem() forces; so are pages VRAM has no room
 * for. Either way the mapping step is hmm_range_fault() under the retry
 * protocol, with the GPU as dev_private_owner: VRAM pages come back as
 * this GPU's device-private pages and are mapped with aperture VID.
 *
 * Coherence: the notifier callback takes uvm_va_space.mutex, publishes
 * the new sequence, pushes "clear PTEs + invalidate TLB" on the host
 * channel and, once the mutex is dropped, waits for that fence. Only when
 * the GPU has executed it does the callback return, so the CPU change
 * proceeds after the GPU stopped using the pages; the GPU's own update is
 * visibly later in the trace (uvm_pte_clear runs on the channel thread).
 * A non-blockable invalidation cannot wait for a fence: it returns false
 * (-EAGAIN to the caller) unless the GPU maps nothing in the range and no
 * command is pending.
 */
import type { page, vm_area_struct, vm_fault } from '../../../include/linux/mm_types.js';
import type { mmu_interval_notifier, mmu_notifier_range, mmu_interval_notifier_ops } from '../../../include/linux/mmu_notifier.js';
import { MMU_NOTIFY_UNMAP, mmu_notifier_event_names } from '../../../include/linux/mmu_notifier.js';
import type { dev_pagemap_ops } from '../../../include/linux/memremap.js';
import { is_zone_device_page } from '../../../include/linux/memremap.js';
import {
  PAGE_SIZE, VM_READ, VM_WRITE, VM_SHARED, VM_SPECIAL, VM_HUGETLB, VM_FAULT_OOM, VM_FAULT_SIGBUS,
} from '../../../include/linux/mm.js';
import {
  HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_RANGE_DEFAULT_TIMEOUT_NS,
  hmm_pfn_flags, hmm_pfn_make, hmm_pfn_to_page, type hmm_range,
} from '../../../include/linux/hmm.js';
import {
  MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_VMA_SELECT_SYSTEM, MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
  migrate_pfn, migrate_pfn_to_page, type migrate_vma,
} from '../../../include/linux/migrate.js';
import {
  MOCKGPU_FAULT_ACCESS_READ, MOCKGPU_FAULT_ACCESS_WRITE, UVM_APERTURE_SYS, UVM_APERTURE_VID, UvmEventTypeCpuFault, UvmEventTypeMapRemote,
  UvmEventTypeMigration, UvmEventMigrationCauseAccessCounters, mockgpu_pte_make, mockgpu_pte_valid,
} from '../../../include/linux/mockgpu.js';
import { GFP_HIGHUSER_MOVABLE } from '../../../include/linux/gfp.js';
import { EBUSY, EFAULT, EPERM } from '../../../include/uapi/asm-generic/errno.js';
import { cond_resched, type Sleepable } from '../../../lib/sim/sched.js';
import { mutex_lock, mutex_trylock, mutex_unlock } from '../../../lib/locking/mutex.js';
import { now } from '../../../lib/sim/clock.js';
import { count_event, trace_event } from '../../../lib/sim/trace.js';
import { PCIE_BW } from '../../../lib/sim/costs.js';
import { alloc_page_sleepable, kmap_local_page } from '../../../mm/page_alloc.js';
import { folio_lock } from '../../../mm/filemap.js';
import { vma_lookup } from '../../../mm/vma.js';
import { mmap_read_lock, mmap_read_unlock } from '../../../mm/mmap_lock.js';
import { mmget_not_zero, mmput } from '../../../mm/task.js';
import { hmm_range_fault } from '../../../mm/hmm.js';
import { migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize } from '../../../mm/migrate_device.js';
import {
  mmu_interval_notifier_insert, mmu_interval_notifier_remove, mmu_interval_read_begin, mmu_interval_read_retry,
  mmu_interval_set_seq, mmu_notifier_range_blockable,
} from '../../../mm/mmu_notifier.js';
import {
  mockgpu_params, uvm_gpu_stat_add, uvm_tools_record_event, type mockgpu_hmm_ops, type uvm_gpu, type uvm_service_fault,
  type uvm_va_space,
} from './uvm_gpu.js';
import {
  uvm_pmm_gpu_page_alloc, uvm_pmm_gpu_page_to_vpfn, uvm_pmm_gpu_owns, uvm_pmm_gpu_free_page, uvm_pmm_gpu_unpin,
} from './uvm_pmm_gpu.js';
import { uvm_hmm_alloc_evict, uvm_release_dst_page } from './uvm_hmm_evict.js';
import {
  uvm_push_begin, uvm_push_end, uvm_push_copy, uvm_channel_wait, uvm_channel_idle, type uvm_copy_cmd,
} from './uvm_channel.js';
import { MOCKGPU_VA_BITS, uvm_pt_for_each_valid } from './uvm_mmu.js';
import {
  uvm_va_block_service_policy, uvm_va_block_migrate_ranges, uvm_va_block_migrated, uvm_va_block_invalidate,
  uvm_va_block_cpu_fault_begin, uvm_va_block_cpu_fault_end,
} from './uvm_va_block_residency.js';
import { uvm_hmm_read_dup_release } from './uvm_hmm_read_dup.js';

/* the interval notifier covers every user address */
const UVM_HMM_NOTIFIER_LENGTH = 2 ** 53 - PAGE_SIZE;
const GPU_VA_LIMIT = 2 ** MOCKGPU_VA_BITS;

interface uvm_hmm_notifier extends mmu_interval_notifier { vs: uvm_va_space; }

/* ---- coherence: the invalidate callback ---- */

/* does the GPU map anything in [start, end) of @vs? */
function uvm_pt_has_valid(vs: uvm_va_space, start: number, end: number): boolean {
  let found = false;
  uvm_pt_for_each_valid(vs.pt, start, end, () => { found = true; });
  return found;
}

/**
 * uvm_hmm_unmap_gpu() - push "clear the PTEs of [start, end) + invalidate
 * the TLB" for @vs on the host channel. Caller holds vs.mutex.
 * Context: may sleep (ring full). Return: the fence to wait for.
 */
export function* uvm_hmm_unmap_gpu(vs: uvm_va_space, start: number, end: number): Sleepable<number> {
  const gpu = vs.gpu;
  end = Math.min(end, GPU_VA_LIMIT);
  const p = uvm_push_begin(gpu.channel, 'unmap');
  p.cmds.push({ kind: 'pte_clear', pt: vs.pt, vs_id: vs.id, start, end });
  p.cmds.push({ kind: 'tlb_invalidate', tlb: gpu.tlb, vs_id: vs.id, start, end });
  return yield* uvm_push_end(p);
}

/**
 * uvm_hmm_invalidate() - mmu_interval_notifier_ops.invalidate: stop the
 * GPU using [range.start, range.end) before the CPU changes it.
 * Context: blockable: takes vs.mutex, then waits for the channel fence
 * without it. Not blockable: trylock only, never waits.
 * Return: true when the GPU no longer uses the range; false (-EAGAIN)
 * when the range is not blockable and the GPU would have to be waited for.
 */
export function* uvm_hmm_invalidate(mni: mmu_interval_notifier, range: mmu_notifier_range,
                                    cur_seq: number): Sleepable<boolean> {
  const vs = (mni as uvm_hmm_notifier).vs;
  const start = range.start, end = Math.min(range.end, GPU_VA_LIMIT);
  if (!mmu_notifier_range_blockable(range)) {
    if (!mutex_trylock(vs.mutex)) return false;
    const busy = !uvm_channel_idle(vs.gpu.channel) || uvm_pt_has_valid(vs, start, end);
    if (!busy) mmu_interval_set_seq(mni, cur_seq);
    mutex_unlock(vs.mutex);
    if (busy) count_event('mockgpu_invalidate_eagain');
    return !busy;
  }
  yield* mutex_lock(vs.mutex);
  mmu_interval_set_seq(mni, cur_seq);
  trace_event('uvm_hmm_invalidate', { vs: vs.id, event: mmu_notifier_event_names[range.event] ?? '?', start, end });
  const dups = uvm_va_block_invalidate(vs, start, end, range.event === MMU_NOTIFY_UNMAP);
  let fence = 0;
  if (!uvm_channel_idle(vs.gpu.channel) || uvm_pt_has_valid(vs, start, end)) fence = yield* uvm_hmm_unmap_gpu(vs, start, end);
  mutex_unlock(vs.mutex);
  if (fence) {
    yield* uvm_channel_wait(vs.gpu.channel, fence);
    trace_event('uvm_hmm_invalidate_done', { vs: vs.id, start, end, fence });
  }
  uvm_hmm_read_dup_release(vs, dups, mmu_notifier_event_names[range.event] ?? '?');
  return true;
}

const uvm_hmm_notifier_ops: mmu_interval_notifier_ops = Object.freeze({ invalidate: uvm_hmm_invalidate });

function* uvm_hmm_va_space_init(vs: uvm_va_space): Sleepable<number> {
  const n: uvm_hmm_notifier = { start: 0, last: 0, ops: uvm_hmm_notifier_ops, mm: vs.mm, invalidate_seq: 0, vs };
  const ret = yield* mmu_interval_notifier_insert(n, vs.mm, 0, UVM_HMM_NOTIFIER_LENGTH, uvm_hmm_notifier_ops);
  if (ret === 0) vs.notifier = n;
  return ret;
}

function* uvm_hmm_va_space_fini(vs: uvm_va_space): Sleepable {
  if (vs.notifier !== null) yield* mmu_interval_notifier_remove(vs.notifier);
  vs.notifier = null;
}

/* ---- servicing one VA block ---- */

/** uvm_hmm_must_use_sysmem() - VMAs whose pages stay in system memory (mapped remotely). */
export function uvm_hmm_must_use_sysmem(vma: vm_area_struct): boolean {
  return vma.vm_file !== null || (vma.vm_flags & (VM_SHARED | VM_SPECIAL | VM_HUGETLB)) !== 0;
}

/* the runs of consecutive pages in sorted @faults that lie in one VMA */
function* runs_of(vs: uvm_va_space, faults: uvm_service_fault[]): Generator<uvm_service_fault[]> {
  let run: uvm_service_fault[] = [];
  let vma: vm_area_struct | null = null;
  for (const f of faults) {
    const prev = run[run.length - 1];
    if (prev !== undefined && (f.va !== prev.va + PAGE_SIZE || vma === null || f.va >= vma.vm_end)) { yield run; run = []; }
    if (run.length === 0) vma = vma_lookup(vs.mm, f.va);
    run.push(f);
  }
  if (run.length > 0) yield run;
}

/* record which address space and VA each VRAM page now backs (eviction remaps there) */
function uvm_hmm_chunks_set_owner(vs: uvm_va_space, args: migrate_vma): void {
  const pmm = vs.gpu.pmm;
  for (let i = 0; i < args.npages; i++) {
    const d = migrate_pfn_to_page(args.dst[i]!);
    if (!(args.src[i]! & MIGRATE_PFN_MIGRATE) || d === null) continue;
    const vpfn = uvm_pmm_gpu_page_to_vpfn(pmm, d);
    pmm.rmap_owner[vpfn] = vs;
    pmm.rmap_va[vpfn] = args.start + i * PAGE_SIZE;
  }
}

/*
 * uvm_hmm_migrate_run() - move the system pages of one run to VRAM:
 * allocate 4 KiB chunks, copy on the copy engine, let core mm switch the
 * CPU entries to device-private ones. When VRAM is full a root chunk is
 * evicted (uvm_hmm_evict.ts), except for an access-counter migration
 * (@cause access_counters), which only uses free VRAM; pages no eviction
 * makes room for, or that core mm would not isolate, stay where they are
 * (mapped remotely). A page whose copy the copy engine failed (-EIO)
 * stays in system memory too: its destination is released before
 * migrate_vma_pages(), so core mm restores the source entry untouched.
 * Destination chunks stay temp-pinned (not evictable) until finalize.
 */
export function* uvm_hmm_migrate_run(vs: uvm_va_space, vma: vm_area_struct, start: number, end: number,
                                     cause = 'gpu_fault'): Sleepable<number> {
  const gpu = vs.gpu, n = (end - start) / PAGE_SIZE;
  const args: migrate_vma = { vma, src: new Float64Array(n), dst: new Float64Array(n), cpages: 0, npages: 0, start, end,
    pgmap_owner: gpu, flags: MIGRATE_VMA_SELECT_SYSTEM, fault_page: null };
  if ((yield* migrate_vma_setup(args)) !== 0 || args.cpages === 0) return 0;
  const pinned: page[] = [];
  const copies: { i: number; dpage: page; c: uvm_copy_cmd }[] = [];
  const p = uvm_push_begin(gpu.ce, 'migrate_to_vram');
  for (let i = 0; i < n; i++) {
    if (!(args.src[i]! & MIGRATE_PFN_MIGRATE)) continue;
    const spage = migrate_pfn_to_page(args.src[i]!);
    if (spage !== null && is_zone_device_page(spage)) continue;
    let dpage = uvm_pmm_gpu_page_alloc(gpu.pmm);
    if (dpage === null && mockgpu_params.evict && cause !== UvmEventMigrationCauseAccessCounters) {
      dpage = yield* uvm_hmm_alloc_evict(gpu, vma.vm_mm, uvm_hmm_map_snapshot);
    }
    if (dpage === null) continue;
    pinned.push(dpage);
    args.dst[i] = migrate_pfn(dpage.pfn) + (args.src[i]! & MIGRATE_PFN_WRITE);
    copies.push({ i, dpage, c: uvm_push_copy(p, gpu.pmm.vram(uvm_pmm_gpu_page_to_vpfn(gpu.pmm, dpage)),
      spage === null ? null : kmap_local_page(spage), PCIE_BW) });
  }
  if (p.cmds.length > 0) yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(p));
  for (const { i, dpage, c } of copies) if (c.status) uvm_release_dst_page(args.dst, i, dpage);
  yield* migrate_vma_pages(args);
  let moved = 0;
  for (let i = 0; i < n; i++) if ((args.src[i]! & MIGRATE_PFN_MIGRATE) && args.dst[i]) moved++;
  uvm_hmm_chunks_set_owner(vs, args);
  yield* migrate_vma_finalize(args);
  for (const d of pinned) uvm_pmm_gpu_unpin(gpu.pmm, uvm_pmm_gpu_page_to_vpfn(gpu.pmm, d));
  if (moved > 0) {
    uvm_gpu_stat_add(gpu, 'migrated_to_vram', moved);
    uvm_tools_record_event(UvmEventTypeMigration, { from: 'SYS', to: 'VID', start, end, pages: moved, cause });
  }
  return moved;
}

/* the GPU PTE for one hmm_pfns output */
function uvm_hmm_pte(gpu: uvm_gpu, e: number): number {
  const pg: page = hmm_pfn_to_page(e);
  const write = (hmm_pfn_flags(e) & HMM_PFN_WRITE) !== 0;
  if (uvm_pmm_gpu_owns(gpu.pmm, pg)) return mockgpu_pte_make(UVM_APERTURE_VID, uvm_pmm_gpu_page_to_vpfn(gpu.pmm, pg), write, write);
  return mockgpu_pte_make(UVM_APERTURE_SYS, pg.pfn, write, write);
}

/* a page to map: its VA, the access it needs, and the error if it cannot be mapped */
type uvm_map_request = Pick<uvm_service_fault, 'va' | 'access' | 'fatal'>;

/*
 * uvm_hmm_map_run() - map the faulting pages of one run: hmm_range_fault()
 * under the retry protocol, then, under vs.mutex and only if no
 * invalidation hit the range, push the PTE writes. With @snapshot nothing
 * is faulted in: only what the CPU maps now is mapped.
 * Return: 0, or the hmm_range_fault() error (-EFAULT, -EPERM, -EBUSY on timeout).
 */
export function* uvm_hmm_map_run(vs: uvm_va_space, run: uvm_map_request[], snapshot = false): Sleepable<number> {
  const gpu = vs.gpu, start = run[0]!.va, end = run[run.length - 1]!.va + PAGE_SIZE;
  const pfns = new Float64Array((end - start) / PAGE_SIZE);
  const range: hmm_range = { notifier: vs.notifier!, notifier_seq: 0, start, end, hmm_pfns: pfns, default_flags: 0,
    pfn_flags_mask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, dev_private_owner: gpu };
  const timeout = now() + HMM_RANGE_DEFAULT_TIMEOUT_NS;
  for (;;) {
    if (now() > timeout) return -EBUSY;
    pfns.fill(0);
    for (const f of run) {
      if (!snapshot) pfns[(f.va - start) / PAGE_SIZE] = hmm_pfn_make(0, HMM_PFN_REQ_FAULT | (f.access >= MOCKGPU_FAULT_ACCESS_WRITE ? HMM_PFN_REQ_WRITE : 0));
    }
    range.notifier_seq = yield* mmu_interval_read_begin(range.notifier);
    const ret = yield* hmm_range_fault(range);
    if (ret === -EBUSY) { count_event('mockgpu_fault_retry'); continue; }
    if (ret) return ret;
    yield* cond_resched();    /* the window the retry check closes: an invalidation may run here */
    yield* mutex_lock(vs.mutex);
    if (mmu_interval_read_retry(range.notifier, range.notifier_seq) && !mockgpu_params.broken_skip_read_retry) {
      mutex_unlock(vs.mutex);
      count_event('mockgpu_fault_retry');
      continue;
    }
    const p = uvm_push_begin(gpu.channel, 'map');
    let remote = 0;
    for (let i = 0; i < pfns.length; i++) {
      if (!(hmm_pfn_flags(pfns[i]!) & HMM_PFN_VALID)) continue;
      const pte = uvm_hmm_pte(gpu, pfns[i]!);
      if (!uvm_pmm_gpu_owns(gpu.pmm, hmm_pfn_to_page(pfns[i]!))) remote++;
      p.cmds.push({ kind: 'pte_write', pt: vs.pt, vs_id: vs.id, va: start + i * PAGE_SIZE, pte });
    }
    yield* uvm_push_end(p);
    mutex_unlock(vs.mutex);
    for (const f of run) if (!(hmm_pfn_flags(pfns[(f.va - start) / PAGE_SIZE]!) & HMM_PFN_VALID)) f.fatal = -EFAULT;
    if (remote > 0) {
      uvm_gpu_stat_add(gpu, 'mapped_remote', remote);
      uvm_tools_record_event(UvmEventTypeMapRemote, { start, end, pages: remote });
    }
    return 0;
  }
}

/**
 * uvm_hmm_map_snapshot() - map @vas (sorted) of @vs from the CPU page
 * table as it is, faulting nothing in: after an eviction, the system
 * copies are mapped remotely (aperture SYS). Pages the CPU no longer maps
 * there are left unmapped (the GPU faults on them if it comes back).
 * Context: mmap_lock of vs.mm held for read; takes vs.mutex; may sleep.
 */
export function* uvm_hmm_map_snapshot(vs: uvm_va_space, vas: number[]): Sleepable {
  let run: uvm_map_request[] = [];
  for (let k = 0; k <= vas.length; k++) {
    const va = vas[k];
    const prev = run[run.length - 1];
    if (prev !== undefined && (va === undefined || va !== prev.va + PAGE_SIZE)) {
      yield* uvm_hmm_map_run(vs, run, true);
      run = [];
    }
    if (va !== undefined) run.push({ va, access: MOCKGPU_FAULT_ACCESS_READ, fatal: 0 });
  }
}

/*
 * uvm_hmm_pull_from_peers() - two GPUs: bring pages of @run that sit in
 * the other GPU's VRAM back to system memory first, so that the
 * migration to this GPU (MIGRATE_VMA_SELECT_SYSTEM) collects them. Each
 * GPU is its own pgmap owner, so to this one the other's pages are
 * foreign device-private entries, which hmm_range_fault() faults through
 * their owner's migrate_to_ram (its copy engine, VRAM -> RAM); this GPU's
 * copy engine then moves them RAM -> VRAM: GPU to GPU through system
 * memory, two PCIe copies (no peer copy). Errors are left for the mapping
 * step to report.
 * Context: mmap_lock held for read; may sleep.
 */
function* uvm_hmm_pull_from_peers(vs: uvm_va_space, run: uvm_map_request[]): Sleepable {
  const start = run[0]!.va, end = run[run.length - 1]!.va + PAGE_SIZE;
  const pfns = new Float64Array((end - start) / PAGE_SIZE);
  const range: hmm_range = { notifier: vs.notifier!, notifier_seq: 0, start, end, hmm_pfns: pfns, default_flags: 0,
    pfn_flags_mask: HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, dev_private_owner: vs.gpu };
  const timeout = now() + HMM_RANGE_DEFAULT_TIMEOUT_NS;
  do {
    pfns.fill(0);
    for (const f of run) pfns[(f.va - start) / PAGE_SIZE] = hmm_pfn_make(0, HMM_PFN_REQ_FAULT);
    range.notifier_seq = yield* mmu_interval_read_begin(range.notifier);
  } while ((yield* hmm_range_fault(range)) === -EBUSY && now() <= timeout);
}

/* check one fault against its VMA: 0, -EFAULT (no VMA, unreadable) or -EPERM (write to read-only) */
function uvm_hmm_check_vma(vma: vm_area_struct | null, f: uvm_service_fault): number {
  if (vma === null || !(vma.vm_flags & VM_READ)) return -EFAULT;
  if (f.access >= MOCKGPU_FAULT_ACCESS_WRITE && !(vma.vm_flags & VM_WRITE)) return -EPERM;
  return 0;
}

/**
 * uvm_hmm_service_block() - mockgpu_hmm_ops.service_block on mainline HMM.
 * Context: bottom half; takes mmap_lock for read, vs.mutex; may sleep.
 */
function* uvm_hmm_service_block(vs: uvm_va_space, faults: uvm_service_fault[]): Sleepable {
  const mm = vs.mm;
  if (vs.notifier === null || !mmget_not_zero(mm)) { for (const f of faults) f.fatal = -EFAULT; return; }
  yield* mmap_read_lock(mm);
  const ok: uvm_service_fault[] = [];
  for (const f of faults) {
    f.fatal = uvm_hmm_check_vma(vma_lookup(mm, f.va), f);
    if (!f.fatal) ok.push(f);
  }
  const plan = yield* uvm_va_block_service_policy(vs, ok);    /* uvm_va_block_residency.ts */
  for (const run of runs_of(vs, plan.faults)) {
    const vma = vma_lookup(mm, run[0]!.va)!;
    if (mockgpu_params.migrate_to_vram && !uvm_hmm_must_use_sysmem(vma)) {
      if (mockgpu_params.nr_gpus > 1) yield* uvm_hmm_pull_from_peers(vs, run);
      for (const r of uvm_va_block_migrate_ranges(plan, run)) {
        uvm_va_block_migrated(vs, r, yield* uvm_hmm_migrate_run(vs, vma, r.start, r.end, r.cause));
      }
    }
    const ret = yield* uvm_hmm_map_run(vs, run);
    if (ret) for (const f of run) f.fatal = ret;
  }
  mmap_read_unlock(mm);
  yield* mmput(mm);
}

/** The mainline glue of the device core. */
export const uvm_hmm_ops: mockgpu_hmm_ops = Object.freeze({
  name: 'mainline' as const,
  va_space_init: uvm_hmm_va_space_init,
  va_space_fini: uvm_hmm_va_space_fini,
  service_block: uvm_hmm_service_block,
});

/* ---- VRAM pages as ZONE_DEVICE: free and CPU fault ---- */

/**
 * uvm_hmm_devmem_fault() - dev_pagemap_ops.migrate_to_ram: the CPU touched
 * a VRAM page. Migrate it back: migrate_vma_setup() (whose MIGRATE
 * invalidation clears the GPU PTE and TLB and waits for it), copy on the
 * copy engine, migrate_vma_pages(), migrate_vma_finalize().
 * Context: mmap_lock held for read; may sleep.
 * Return: 0, VM_FAULT_SIGBUS if the page cannot be collected or the copy
 * engine failed the copy (the data stays in VRAM, as nouveau's
 * nouveau_dmem_migrate_to_ram does), VM_FAULT_OOM.
 */
export function* uvm_hmm_devmem_fault(vmf: vm_fault): Sleepable<number> {
  const gpu = vmf.page!.pgmap!.owner as uvm_gpu;
  const start = vmf.address - (vmf.address % PAGE_SIZE);
  const args: migrate_vma = { vma: vmf.vma, src: new Float64Array(1), dst: new Float64Array(1), cpages: 0, npages: 0,
    start, end: start + PAGE_SIZE, pgmap_owner: gpu, flags: MIGRATE_VMA_SELECT_DEVICE_PRIVATE, fault_page: vmf.page };
  uvm_gpu_stat_add(gpu, 'cpu_faults');
  uvm_tools_record_event(UvmEventTypeCpuFault, { va: vmf.address, pfn: vmf.page!.pfn });
  yield* uvm_va_block_cpu_fault_begin(gpu, vmf.vma.vm_mm, start);
  if ((yield* migrate_vma_setup(args)) !== 0) return VM_FAULT_SIGBUS;
  const spage = migrate_pfn_to_page(args.src[0]!);
  if ((args.src[0]! & MIGRATE_PFN_MIGRATE) && spage !== null) {
    const dpage = yield* alloc_page_sleepable(GFP_HIGHUSER_MOVABLE);   /* may sleep in direct reclaim */
    if (dpage === null) { yield* migrate_vma_finalize(args); return VM_FAULT_OOM; }
    yield* folio_lock(dpage);
    const p = uvm_push_begin(gpu.ce, 'migrate_to_sysmem');
    const c = uvm_push_copy(p, kmap_local_page(dpage), gpu.pmm.vram(uvm_pmm_gpu_page_to_vpfn(gpu.pmm, spage)), PCIE_BW);
    yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(p));
    args.dst[0] = migrate_pfn(dpage.pfn) + (args.src[0]! & MIGRATE_PFN_WRITE);
    if (c.status) {
      uvm_release_dst_page(args.dst, 0, dpage);
      yield* migrate_vma_finalize(args);
      return VM_FAULT_SIGBUS;
    }
  }
  yield* migrate_vma_pages(args);
  const moved = args.dst[0] !== 0 && (args.src[0]! & MIGRATE_PFN_MIGRATE) !== 0;
  yield* migrate_vma_finalize(args);
  if (moved) {
    uvm_gpu_stat_add(gpu, 'migrated_to_sysmem');
    uvm_tools_record_event(UvmEventTypeMigration, { from: 'VID', to: 'SYS', start, end: start + PAGE_SIZE, pages: 1, cause: 'cpu_fault' });
    uvm_va_block_cpu_fault_end(gpu, vmf.vma.vm_mm, start);
  }
  return 0;
}

/** uvm_hmm_devmem_free() - dev_pagemap_ops.folio_free: the VRAM chunk goes back to the PMM. */
export function uvm_hmm_devmem_free(f: page): void {
  const gpu = f.pgmap!.owner as uvm_gpu;
  uvm_pmm_gpu_free_page(gpu.pmm, uvm_pmm_gpu_page_to_vpfn(gpu.pmm, f));
}

/** The dev_pagemap_ops of the GPU's VRAM. */
export const uvm_hmm_devmem_ops: dev_pagemap_ops = Object.freeze({
  folio_free: uvm_hmm_devmem_free,
  migrate_to_ram: uvm_hmm_devmem_fault,
});

/** uvm_hmm_pte_is_mapped() - is @va mapped in @vs's GPU page table? (tests) */
export function uvm_hmm_pte_is_mapped(vs: uvm_va_space, va: number): boolean {
  let e = 0;
  uvm_pt_for_each_valid(vs.pt, va, va + PAGE_SIZE, (_a, pte) => { e = pte; });
  return mockgpu_pte_valid(e);
}
