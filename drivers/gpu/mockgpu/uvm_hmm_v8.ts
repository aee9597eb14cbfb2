/*
 * drivers/gpu/mockgpu/uvm_hmm_v8.ts - the same mock GPU on HMM as Glisse
 * proposed it in 2015 (the v8 series, mm/hmm_v8/): a struct hmm_mirror per
 * address space, device faults through hmm_mirror_fault(), the hmm_pt
 * mirror table read inside ops.update(), and migration to device memory
 * with SWP_HMM entries (HMM_COPY_TO_DEVICE / copy_from_device).
 *
 * No UVM twin (UVM never shipped on the v8 API); it plays the role the
 * 2015 dummy driver (drivers/char/hmm_dummy.ts) played for the series, but
 * with the device core of uvm_hmm.ts unchanged: the SMs, the fault buffer,
 * the bottom half, the channels and the GPU page table are the same; only
 * mockgpu_hmm_ops differs. Select it before open with
 * mockgpu_set_era(uvm_hmm_v8_ops).
 *
 * What the 2015 design changes for the driver, as this file shows:
 *  - no interval notifier and no sequence count: HMM calls ops.update()
 *    for invalidations (HMM_MIGRATE, HMM_MUNMAP, HMM_FORK, ...) and the
 *    fault/invalidate handshake (backoff) replaces mmu_interval_read_retry;
 *  - a device fault's result arrives inside ops.update() as SELECTed
 *    entries of the mirror table, which the driver copies into its own
 *    table (here: GPU PTE writes through the command queue, fence waited
 *    for before update() returns);
 *  - device memory is not struct pages: VRAM chunks come straight from the
 *    PMM, the CPU entry is an SWP_HMM swap entry, and the device address
 *    lives only in the mirror table (VALID_DEV). The driver frees a chunk
 *    when an invalidation drops its entry or when it copies the data back
 *    for HMM_COPY_FROM_DEVICE.
 */
import type { vm_area_struct } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE, TASK_SIZE, VM_READ, VM_WRITE, VM_SHARED, VM_SPECIAL, VM_HUGETLB } from '../../../include/linux/mm.js';
import {
  HMM_DEVICE_RFAULT, HMM_DEVICE_WFAULT, HMM_COPY_TO_DEVICE, HMM_COPY_FROM_DEVICE, HMM_ISDIRTY, HMM_PTE_WRITE,
  HMM_PTE_DIRTY, hmm_pte_valid, hmm_pte_test_select, hmm_pte_test_valid_dev, hmm_pte_test_valid_pfn,
  hmm_pte_test_valid_dma, hmm_pte_pfn, hmm_pte_dev_addr, hmm_pte_from_dev_addr, hmm_pte_mask, hmm_etype_names,
  type hmm_device, type hmm_device_ops, type hmm_event, type hmm_mirror,
} from '../../../include/linux/hmm_v8.js';
import {
  MOCKGPU_FAULT_ACCESS_WRITE, UVM_APERTURE_SYS, UVM_APERTURE_VID, UvmEventTypeMapRemote, UvmEventTypeMigration,
  mockgpu_pte_make,
} from '../../../include/linux/mockgpu.js';
import { EBUSY, EFAULT, EIO, EPERM } from '../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { PCIE_BW } from '../../../lib/sim/costs.js';
import { kmap_local_page, pfn_to_page } from '../../../mm/page_alloc.js';
import { vma_lookup } from '../../../mm/vma.js';
import { mmap_read_lock, mmap_read_unlock } from '../../../mm/mmap_lock.js';
import { mmget_not_zero, mmput } from '../../../mm/task.js';
import {
  hmm_device_new, hmm_device_register, hmm_mirror_register, hmm_mirror_unregister, hmm_event_new, mirror_hmm,
} from '../../../mm/hmm_v8/hmm.js';
import { hmm_migrate_back } from '../../../mm/hmm_v8/migrate_back.js';
import { HMM_MIGRATE_MAX_PAGES } from '../../../mm/hmm_v8/migrate.js';
import { hmm_mirror_fault } from '../../../mm/hmm_v8/fault.js';
import { hmm_pt_lookup, hmm_pt_load, type hmm_pt } from '../../../mm/hmm_v8/hmm_pt.js';
import {
  mockgpu_params, uvm_gpu_stat_add, uvm_tools_record_event, type mockgpu_hmm_ops, type uvm_gpu, type uvm_service_fault,
  type uvm_va_space,
} from './uvm_gpu.js';
import { uvm_pmm_gpu_alloc_page, uvm_pmm_gpu_free_page } from './uvm_pmm_gpu.js';
import { uvm_push_begin, uvm_push_end, uvm_channel_wait } from './uvm_channel.js';
import { uvm_hmm_unmap_gpu } from './uvm_hmm.js';

/* the mirror table entry at @addr, or 0 */
function mirror_entry(mirror: hmm_mirror, addr: number): number {
  const pt = mirror.pt as hmm_pt;
  const p = hmm_pt_lookup(pt, addr);
  return p < 0 ? 0 : hmm_pt_load(pt, p);
}

function vs_of(mirror: hmm_mirror): uvm_va_space {
  return mirror.driver_data as uvm_va_space;
}

/* the GPU PTE for a mirror entry: VALID_DEV -> VRAM, VALID_PFN -> system memory */
function v8_pte(e: number): number {
  const write = (e & HMM_PTE_WRITE) !== 0;
  if (hmm_pte_test_valid_dev(e)) return mockgpu_pte_make(UVM_APERTURE_VID, hmm_pte_dev_addr(e) / PAGE_SIZE, write, write);
  return mockgpu_pte_make(UVM_APERTURE_SYS, hmm_pte_pfn(e), write, write);
}

/*
 * uvm_v8_populate() - a device fault's result: copy the SELECTed mirror
 * entries of the event into the GPU page table and wait for the GPU.
 */
function* uvm_v8_populate(vs: uvm_va_space, mirror: hmm_mirror, event: hmm_event): Sleepable<number> {
  const gpu = vs.gpu;
  const p = uvm_push_begin(gpu.channel, 'map');
  let remote = 0;
  for (let a = event.start; a < event.end; a += PAGE_SIZE) {
    const e = mirror_entry(mirror, a);
    if (!hmm_pte_valid(e) || !hmm_pte_test_select(e)) continue;
    if (hmm_pte_test_valid_dma(e)) return -EIO;              /* the GPU has no DMA device in this model */
    if (!hmm_pte_test_valid_dev(e)) remote++;
    p.cmds.push({ kind: 'pte_write', pt: vs.pt, vs_id: vs.id, va: a, pte: v8_pte(e) });
  }
  yield* uvm_channel_wait(gpu.channel, yield* uvm_push_end(p));
  if (remote > 0) {
    uvm_gpu_stat_add(gpu, 'mapped_remote', remote);
    uvm_tools_record_event(UvmEventTypeMapRemote, { start: event.start, end: event.end, pages: remote });
  }
  return 0;
}

/*
 * uvm_v8_invalidate() - an invalidation: unmap the range on the GPU (and
 * wait), then free the VRAM of device entries the event drops.
 */
function* uvm_v8_invalidate(vs: uvm_va_space, mirror: hmm_mirror, event: hmm_event): Sleepable<number> {
  if (event.etype === HMM_ISDIRTY) return 0;             /* the GPU reports no dirt: entries keep DIRTY */
  trace_event('uvm_hmm_v8_update', { vs: vs.id, etype: hmm_etype_names[event.etype] ?? '?', start: event.start, end: event.end });
  const fence = yield* uvm_hmm_unmap_gpu(vs, event.start, event.end);
  yield* uvm_channel_wait(vs.gpu.channel, fence);
  const pmm = vs.gpu.pmm, mask = event.pte_mask;
  (mirror.pt as hmm_pt).gpt.walk(event.start, event.end, {
    leaf(_ptr: number, _addr: number, _level: number, e: number) {
      if (hmm_pte_test_valid_dev(e) && hmm_pte_mask(e, mask) === 0) uvm_pmm_gpu_free_page(pmm, hmm_pte_dev_addr(e) / PAGE_SIZE);
    },
  });
  return 0;
}

/* hmm_device_ops.update */
function* uvm_v8_update(mirror: hmm_mirror, event: hmm_event): Sleepable<number> {
  const vs = vs_of(mirror);
  if (event.etype === HMM_DEVICE_RFAULT || event.etype === HMM_DEVICE_WFAULT) return yield* uvm_v8_populate(vs, mirror, event);
  return yield* uvm_v8_invalidate(vs, mirror, event);
}

/* hmm_device_ops.copy_to_device: VRAM chunks for the SELECTed system pages, copies on the copy engine */
function* uvm_v8_copy_to_device(mirror: hmm_mirror, _event: hmm_event, vma: vm_area_struct, dst: Float64Array,
                                start: number, end: number): Sleepable<number> {
  const gpu = vs_of(mirror).gpu;
  const p = uvm_push_begin(gpu.ce, 'migrate_to_vram');
  let moved = 0;
  for (let a = start, i = 0; a < end; a += PAGE_SIZE, i++) {
    const e = mirror_entry(mirror, a);
    if (!hmm_pte_test_select(e) || !hmm_pte_test_valid_pfn(e)) continue;
    const vpfn = uvm_pmm_gpu_alloc_page(gpu.pmm);
    if (vpfn < 0) break;                                   /* VRAM full: the rest stays in system memory */
    p.cmds.push({ kind: 'copy', dst: gpu.pmm.vram(vpfn), src: kmap_local_page(pfn_to_page(hmm_pte_pfn(e))), bw: PCIE_BW });
    dst[i] = hmm_pte_from_dev_addr(vpfn * PAGE_SIZE) + (vma.vm_flags & VM_WRITE ? HMM_PTE_WRITE : 0);
    moved++;
  }
  if (moved > 0) {
    yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(p));
    uvm_gpu_stat_add(gpu, 'migrated_to_vram', moved);
    uvm_tools_record_event(UvmEventTypeMigration, { from: 'SYS', to: 'VID', start, end, pages: moved, cause: 'gpu_fault' });
  }
  return 0;
}

/*
 * hmm_device_ops.copy_from_device: copy VRAM back into the system pages
 * of dst[]; for HMM_COPY_FROM_DEVICE (a CPU fault) the GPU is unmapped
 * first and the chunk freed; for HMM_FORK it only copies.
 */
function* uvm_v8_copy_from_device(mirror: hmm_mirror, event: hmm_event, dst: Float64Array,
                                  start: number, end: number): Sleepable<number> {
  const vs = vs_of(mirror), gpu = vs.gpu;
  const back = event.etype === HMM_COPY_FROM_DEVICE;
  if (back) trace_event('uvm_hmm_v8_copy_from_device', { vs: vs.id, start, end });
  if (back) yield* uvm_channel_wait(gpu.channel, yield* uvm_hmm_unmap_gpu(vs, start, end));
  const p = uvm_push_begin(gpu.ce, 'migrate_to_sysmem');
  const freed: number[] = [];
  for (let a = start, i = 0; a < end; a += PAGE_SIZE, i++) {
    if (!hmm_pte_test_select(dst[i]!)) continue;
    const e = mirror_entry(mirror, a);
    if (!hmm_pte_test_valid_dev(e)) continue;
    const vpfn = hmm_pte_dev_addr(e) / PAGE_SIZE;
    p.cmds.push({ kind: 'copy', dst: kmap_local_page(pfn_to_page(hmm_pte_pfn(dst[i]!))), src: gpu.pmm.vram(vpfn), bw: PCIE_BW });
    if (!(dst[i]! & HMM_PTE_DIRTY)) dst[i] = dst[i]! + HMM_PTE_DIRTY;
    if (back) freed.push(vpfn);
  }
  if (p.cmds.length === 0) return 0;
  yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(p));
  for (const vpfn of freed) uvm_pmm_gpu_free_page(gpu.pmm, vpfn);
  if (back) {
    uvm_gpu_stat_add(gpu, 'cpu_faults');
    uvm_gpu_stat_add(gpu, 'migrated_to_sysmem', p.cmds.length);
    uvm_tools_record_event(UvmEventTypeMigration, { from: 'VID', to: 'SYS', start, end, pages: p.cmds.length, cause: 'cpu_fault' });
  }
  return 0;
}

const uvm_v8_device_ops: hmm_device_ops = Object.freeze({
  *release(mirror: hmm_mirror): Sleepable { vs_of(mirror).closed = true; },
  update: uvm_v8_update,
  copy_to_device: uvm_v8_copy_to_device,
  copy_from_device: uvm_v8_copy_from_device,
});

/* one struct hmm_device per GPU */
const v8_devices = new WeakMap<uvm_gpu, hmm_device>();

function* uvm_v8_va_space_init(vs: uvm_va_space): Sleepable<number> {
  let dev = v8_devices.get(vs.gpu);
  if (dev === undefined) {
    dev = hmm_device_new(vs.gpu.name, uvm_v8_device_ops, null);
    const ret = hmm_device_register(dev);
    if (ret) return ret;
    v8_devices.set(vs.gpu, dev);
  }
  const mirror: hmm_mirror = { device: dev, hmm: null, kref: 0, pt: null, dead: false, driver_data: vs };
  const ret = yield* hmm_mirror_register(mirror, vs.mm);
  if (ret === 0) vs.glue_data = mirror;
  return ret;
}

/*
 * uvm_v8_evict_all() - before the mirror goes, bring every page that only
 * VRAM holds back to system memory (hmm_migrate_back, HMM_COPY_FROM_DEVICE):
 * in the 2015 design the SWP_HMM entry is all the CPU has, and an entry
 * whose mirror is gone is poisoned (SIGBUS). Runs of consecutive pages in
 * one VMA, at most HMM_MIGRATE_MAX_PAGES each.
 */
function* uvm_v8_evict_all(vs: uvm_va_space, mirror: hmm_mirror): Sleepable {
  const h = mirror_hmm(mirror);
  if (h === null || !mmget_not_zero(vs.mm)) return;
  const dev: number[] = [];
  (mirror.pt as hmm_pt).gpt.walk(0, TASK_SIZE, {
    leaf(_ptr: number, addr: number, _level: number, e: number) { if (hmm_pte_test_valid_dev(e)) dev.push(addr); },
  });
  yield* mmap_read_lock(vs.mm);
  for (let i = 0; i < dev.length;) {
    const vma = vma_lookup(vs.mm, dev[i]!);
    let j = i + 1;
    while (j < dev.length && j - i < HMM_MIGRATE_MAX_PAGES && dev[j] === dev[j - 1]! + PAGE_SIZE && vma !== null && dev[j]! < vma.vm_end) j++;
    if (vma !== null) {
      const start = dev[i]!, end = dev[j - 1]! + PAGE_SIZE;
      yield* hmm_migrate_back(h, hmm_event_new(h, start, end, HMM_COPY_FROM_DEVICE), vs.mm, vma, start, end);
    }
    i = j;
  }
  mmap_read_unlock(vs.mm);
  yield* mmput(vs.mm);
}

function* uvm_v8_va_space_fini(vs: uvm_va_space): Sleepable {
  const mirror = vs.glue_data as hmm_mirror | null;
  if (mirror === null) return;
  yield* uvm_v8_evict_all(vs, mirror);
  yield* hmm_mirror_unregister(mirror);
  vs.glue_data = null;
}

/* one hmm_mirror_fault() of @etype over [start, end), retried while the core asks (-EBUSY) */
function* uvm_v8_fault(mirror: hmm_mirror, start: number, end: number, etype: number): Sleepable<number> {
  let ret: number;
  for (let tries = 0; ; tries++) {
    const ev = hmm_event_new(null, start, end, etype);
    ret = yield* hmm_mirror_fault(mirror, ev);
    if (ret !== -EBUSY || tries > 1000) break;
  }
  return ret;
}

function must_use_sysmem(vma: vm_area_struct): boolean {
  return vma.vm_file !== null || (vma.vm_flags & (VM_SHARED | VM_SPECIAL | VM_HUGETLB)) !== 0;
}

/**
 * uvm_v8_service_block() - mockgpu_hmm_ops.service_block on HMM v8: per
 * run of consecutive pages, HMM_COPY_TO_DEVICE for private anonymous
 * memory, then HMM_DEVICE_RFAULT / WFAULT, whose update() maps the pages.
 * Context: bottom half; may sleep; takes mmap_lock for read to check VMAs.
 */
function* uvm_v8_service_block(vs: uvm_va_space, faults: uvm_service_fault[]): Sleepable {
  const mirror = vs.glue_data as hmm_mirror | null;
  if (mirror === null || !mmget_not_zero(vs.mm)) { for (const f of faults) f.fatal = -EFAULT; return; }
  yield* mmap_read_lock(vs.mm);
  const runs: { vma: vm_area_struct; faults: uvm_service_fault[] }[] = [];
  for (const f of faults) {
    const vma = vma_lookup(vs.mm, f.va);
    if (vma === null || !(vma.vm_flags & VM_READ)) { f.fatal = -EFAULT; continue; }
    if (f.access >= MOCKGPU_FAULT_ACCESS_WRITE && !(vma.vm_flags & VM_WRITE)) { f.fatal = -EPERM; continue; }
    const last = runs[runs.length - 1];
    const prev = last?.faults[last.faults.length - 1];
    if (last !== undefined && last.vma === vma && prev!.va + PAGE_SIZE === f.va) last.faults.push(f);
    else runs.push({ vma, faults: [f] });
  }
  mmap_read_unlock(vs.mm);
  for (const r of runs) {
    const start = r.faults[0]!.va, end = r.faults[r.faults.length - 1]!.va + PAGE_SIZE;
    if (mockgpu_params.migrate_to_vram && !must_use_sysmem(r.vma)) yield* uvm_v8_fault(mirror, start, end, HMM_COPY_TO_DEVICE);
    const write = r.faults.some((f) => f.access >= MOCKGPU_FAULT_ACCESS_WRITE);
    const ret = yield* uvm_v8_fault(mirror, start, end, write ? HMM_DEVICE_WFAULT : HMM_DEVICE_RFAULT);
    if (ret) for (const f of r.faults) f.fatal = ret === -EBUSY ? -EFAULT : ret;
  }
  yield* mmput(vs.mm);
}

/** The HMM v8 glue of the device core. */
export const uvm_hmm_v8_ops: mockgpu_hmm_ops = Object.freeze({
  name: 'v8' as const,
  va_space_init: uvm_v8_va_space_init,
  va_space_fini: uvm_v8_va_space_fini,
  service_block: uvm_v8_service_block,
});
