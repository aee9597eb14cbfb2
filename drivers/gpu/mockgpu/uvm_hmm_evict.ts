/*
 * drivers/gpu/mockgpu/uvm_hmm_evict.ts - VRAM oversubscription: when a
 * migration finds VRAM full, empty a 2 MiB root chunk by migrating its
 * pages back to system memory, then hand it to the faulting block.
 *
 * Follows NVIDIA UVM: uvm_pmm_gpu.c (pick_root_chunk_to_evict: free
 * roots first, then the head of the used-root LRU; evict_root_chunk:
 * free subchunks pinned, resident pages moved out, root merged and given
 * to the allocating caller) and uvm_hmm.c (uvm_hmm_va_block_evict_chunks:
 * for HMM memory the move is Linux's migrate_device_range(), so core mm
 * finds every mapping of each device page through rmap, whichever process
 * it is in). The PMM side (LRU, temp pins, the in-eviction state) is in
 * uvm_pmm_gpu.ts.
 *
 *   alloc fails -> pick root r (free root, else LRU head that is not
 *                  temp-pinned by a migration in flight, not tried yet)
 *   evict r:     free chunks of r taken off the free lists
 *                the GPU unmaps r's pages first, one push per address space
 *                migrate_device_range(r's 512 pfns): every allocated page
 *                that could be locked is unmapped (MMU_NOTIFY_MIGRATE: the
 *                GPU PTE is cleared and the TLB invalidated first)
 *                system page per page, copy VRAM -> RAM on the copy engine
 *                migrate_device_pages(), migrate_device_finalize(): the CPU
 *                PTEs now map the RAM copies; device pages freed into r
 *                pages someone else held locked (a CPU fault migrating it,
 *                another GPU pulling it): sleep, retry, at most
 *                UVM_EVICT_MAX_TRIES passes
 *                remote map (evict_remote_map): the GPU maps the RAM copies
 *                (aperture SYS, MapRemote) so it does not fault on them
 *   success:     r is whole and free; the caller's allocation takes it
 *                (nothing runs in between)
 *   failure:     r goes back to the LRU; the next candidate is tried; when
 *                none is left the page is mapped remotely from RAM instead
 *
 * Why this cannot livelock (UVM issue #1223 is a soft lockup of the fault
 * thread in this path): the evictor never waits for a page lock (it
 * trylocks, through migrate_device_range()), never picks a root holding a
 * chunk of its own migration in flight (temp pins), makes at most
 * UVM_EVICT_MAX_TRIES passes per root and tries each root once per
 * allocation, and the fallback (remote mapping of the system page the
 * fault is about) needs no VRAM. Every fault is therefore serviced in a
 * bounded number of steps; test/drivers/gpu/uvm_hmm_evict*.test.ts proves
 * it for the cases above.
 *
 * Simplified: eviction is per root chunk and synchronous in the fault
 * path (UVM also lets the RM's PMA ask for eviction); the v8 glue does not
 * evict (its chunks are never put on the LRU).
 */
import type { mm_struct, page } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MIGRATE_PFN_MIGRATE, migrate_pfn, migrate_pfn_to_page } from '../../../include/linux/migrate.js';
import { UvmEventTypeEviction, UVM_CHUNK_SIZE_2M } from '../../../include/linux/mockgpu.js';
import { GFP_HIGHUSER_MOVABLE } from '../../../include/linux/gfp.js';
import { schedulerActive, type Sleepable } from '../../../lib/sim/sched.js';
import { mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';
import { schedule_timeout } from '../../../lib/sim/clock.js';
import { count_event, trace_event } from '../../../lib/sim/trace.js';
import { PCIE_BW } from '../../../lib/sim/costs.js';
import { alloc_page_sleepable, kmap_local_page, put_page } from '../../../mm/page_alloc.js';
import { folio_lock, folio_unlock } from '../../../mm/filemap.js';
import { mmap_read_trylock, mmap_read_unlock } from '../../../mm/mmap_lock.js';
import { mmget_not_zero, mmput } from '../../../mm/task.js';
import { migrate_device_range, migrate_device_pages, migrate_device_finalize } from '../../../mm/migrate_device.js';
import { mockgpu_params, uvm_gpu_stat_add, uvm_tools_record_event, type uvm_gpu, type uvm_va_space } from './uvm_gpu.js';
import {
  pick_root_chunk_to_evict, uvm_pmm_gpu_evict_begin, uvm_pmm_gpu_evict_end, uvm_pmm_gpu_page_alloc,
  uvm_pmm_gpu_root_pages_used,
} from './uvm_pmm_gpu.js';
import { uvm_push_begin, uvm_push_end, uvm_push_copy, uvm_channel_wait, type uvm_copy_cmd } from './uvm_channel.js';

const PAGES_PER_ROOT = UVM_CHUNK_SIZE_2M / PAGE_SIZE;
/** Passes over a root before giving up on it (pages held by others). */
export const UVM_EVICT_MAX_TRIES = 4;
/** How long the evictor sleeps before a pass retries pages someone else held (ns). */
export const UVM_EVICT_RETRY_NS = 20_000;

/**
 * uvm_release_dst_page() - the copy engine failed the copy into
 * destination @dpage of migration entry @i: give the page back (locked,
 * one reference, as allocated) and clear @dst[i], so that
 * migrate_*_pages() skips the entry and finalize restores the source:
 * the data stays where it was.
 */
export function uvm_release_dst_page(dst: Float64Array | number[], i: number, dpage: page): void {
  dst[i] = 0;
  folio_unlock(dpage);
  put_page(dpage);
  count_event('mockgpu_copy_failed');
}

/** The remapping work an eviction leaves: per address space, the VAs whose pages moved to RAM. */
type evicted_map = Map<uvm_va_space, number[]>;

/*
 * evict_unmap_gpu() - unmap root @r's pages from the GPU first, one push
 * per address space with one clear + TLB invalidate per run of
 * consecutive VAs (UVM unmaps a VA block from the GPU before it evicts:
 * block_evict_pages_from_gpu). The MIGRATE invalidations that
 * migrate_device_range() then sends find nothing mapped and return at
 * once instead of a GPU round trip per page. The reverse-map hints may be
 * stale; unmapping too much is harmless (the GPU faults again).
 */
function* evict_unmap_gpu(gpu: uvm_gpu, r: number): Sleepable {
  const pmm = gpu.pmm, n = PAGES_PER_ROOT;
  const by_vs = new Map<uvm_va_space, number[]>();
  for (let i = 0; i < n; i++) {
    const vs = pmm.rmap_owner[r * n + i] as uvm_va_space | null;
    if (vs === null || vs.closed) continue;
    let l = by_vs.get(vs);
    if (l === undefined) { l = []; by_vs.set(vs, l); }
    l.push(pmm.rmap_va[r * n + i]!);
  }
  for (const [vs, vas] of by_vs) {
    vas.sort((a, b) => a - b);
    yield* mutex_lock(vs.mutex);
    const p = uvm_push_begin(gpu.channel, 'evict_unmap');
    for (let k = 0; k < vas.length;) {
      let e = k + 1;
      while (e < vas.length && vas[e] === vas[e - 1]! + PAGE_SIZE) e++;
      const start = vas[k]!, end = vas[e - 1]! + PAGE_SIZE;
      p.cmds.push({ kind: 'pte_clear', pt: vs.pt, vs_id: vs.id, start, end });
      p.cmds.push({ kind: 'tlb_invalidate', tlb: gpu.tlb, vs_id: vs.id, start, end });
      k = e;
    }
    const fence = yield* uvm_push_end(p);
    mutex_unlock(vs.mutex);
    yield* uvm_channel_wait(gpu.channel, fence);
  }
}

/*
 * evict_pass() - one migrate_device_range() pass over root @r: copy every
 * page it could collect to a new system page. Return: pages moved.
 */
function* evict_pass(gpu: uvm_gpu, r: number, moved_vas: evicted_map): Sleepable<number> {
  const pmm = gpu.pmm, n = PAGES_PER_ROOT, base = pmm.pgmap.start_pfn! + r * n;
  const src = new Float64Array(n), dst = new Float64Array(n);
  yield* evict_unmap_gpu(gpu, r);
  yield* migrate_device_range(src, base, n);
  const push = uvm_push_begin(gpu.ce, 'evict_to_sysmem');
  const owners: { vs: uvm_va_space; va: number; i: number }[] = [];
  const copies: { i: number; dpage: page; c: uvm_copy_cmd }[] = [];
  for (let i = 0; i < n; i++) {
    const spage = migrate_pfn_to_page(src[i]!);
    if (!(src[i]! & MIGRATE_PFN_MIGRATE) || spage === null) continue;
    const dpage: page | null = yield* alloc_page_sleepable(GFP_HIGHUSER_MOVABLE);   /* may sleep in direct reclaim */
    if (dpage === null) continue;                 /* RAM full: the page stays, the root is not emptied */
    yield* folio_lock(dpage);
    dst[i] = migrate_pfn(dpage.pfn);
    copies.push({ i, dpage, c: uvm_push_copy(push, kmap_local_page(dpage), pmm.vram(r * n + i), PCIE_BW) });
    const vs = pmm.rmap_owner[r * n + i] as uvm_va_space | null;
    if (vs !== null) owners.push({ vs, va: pmm.rmap_va[r * n + i]!, i });
  }
  if (push.cmds.length > 0) yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(push));
  for (const { i, dpage, c } of copies) if (c.status) uvm_release_dst_page(dst, i, dpage);   /* the next pass retries it */
  yield* migrate_device_pages(src, dst, n);
  let moved = 0;
  for (let i = 0; i < n; i++) if ((src[i]! & MIGRATE_PFN_MIGRATE) && dst[i]) moved++;
  for (const o of owners) {
    if (!(src[o.i]! & MIGRATE_PFN_MIGRATE)) continue;
    let l = moved_vas.get(o.vs);
    if (l === undefined) { l = []; moved_vas.set(o.vs, l); }
    l.push(o.va);
  }
  yield* migrate_device_finalize(src, dst, n);
  return moved;
}

/*
 * evict_remote_map() - map the RAM copies on the GPU (aperture SYS), for
 * every address space whose pages moved: the same hmm_range_fault() +
 * retry protocol as a fault, in snapshot mode (nothing is faulted in: a
 * page the CPU has meanwhile changed is simply not mapped, and faults
 * later). Another process's mm is mapped only if its mmap_lock is free.
 */
function* evict_remote_map(moved_vas: evicted_map, locked_mm: mm_struct | null, remap: evict_remap_fn): Sleepable {
  for (const [vs, vas] of moved_vas) {
    if (vs.closed || vs.notifier === null || !mmget_not_zero(vs.mm)) continue;
    const own = vs.mm === locked_mm;
    if (own || mmap_read_trylock(vs.mm)) {
      vas.sort((a, b) => a - b);
      yield* remap(vs, vas);
      if (!own) mmap_read_unlock(vs.mm);
    }
    yield* mmput(vs.mm);
  }
}

/**
 * evict_remap_fn - how the era glue maps pages of @vs at @vas (sorted)
 * from what the CPU page table holds, without faulting anything in.
 * Context: mmap_lock of vs.mm held for read; may sleep.
 */
export type evict_remap_fn = (vs: uvm_va_space, vas: number[]) => Sleepable;

/**
 * uvm_hmm_evict_root_chunk() - empty root chunk @r of @gpu's VRAM.
 * @locked_mm: the mm whose mmap_lock the caller holds for read (or null).
 * @remap: the glue's snapshot mapper (used when evict_remote_map is set).
 * Context: the fault bottom half, mmap_lock of @locked_mm held for read,
 * no uvm_va_space.mutex held (the MIGRATE invalidations take it); may sleep.
 * Return: true if @r is now free (the caller allocates from it at once),
 * false if pages stayed after UVM_EVICT_MAX_TRIES passes (r is back on the LRU).
 */
export function* uvm_hmm_evict_root_chunk(gpu: uvm_gpu, r: number, locked_mm: mm_struct | null,
                                          remap: evict_remap_fn): Sleepable<boolean> {
  const pmm = gpu.pmm;
  const used = uvm_pmm_gpu_root_pages_used(pmm, r);
  uvm_pmm_gpu_evict_begin(pmm, r);
  trace_event('uvm_pmm_evict_root', { gpu: gpu.name, chunk: r, pages: used });
  const moved_vas: evicted_map = new Map();
  let moved = 0;
  const max_tries = mockgpu_params.broken_evict_ignore_busy ? 1 : UVM_EVICT_MAX_TRIES;
  for (let tries = 0; uvm_pmm_gpu_root_pages_used(pmm, r) > 0 && tries < max_tries; tries++) {
    if (tries > 0) {
      uvm_gpu_stat_add(gpu, 'evict_retries');
      if (schedulerActive() !== null) yield* schedule_timeout(UVM_EVICT_RETRY_NS);
    }
    moved += yield* evict_pass(gpu, r, moved_vas);
  }
  if (moved > 0) {
    uvm_gpu_stat_add(gpu, 'evicted_pages', moved);
    uvm_gpu_stat_add(gpu, 'migrated_to_sysmem', moved);
    uvm_tools_record_event(UvmEventTypeEviction, { gpu: gpu.name, chunk: r, pages: moved });
  }
  if (mockgpu_params.evict_remote_map && moved_vas.size > 0) yield* evict_remote_map(moved_vas, locked_mm, remap);
  const left = uvm_pmm_gpu_root_pages_used(pmm, r);
  const ok = uvm_pmm_gpu_evict_end(pmm, r, mockgpu_params.broken_evict_ignore_busy);
  if (ok) uvm_gpu_stat_add(gpu, 'evictions');
  else uvm_gpu_stat_add(gpu, 'evict_aborts');
  trace_event('uvm_pmm_evict_root_done', { gpu: gpu.name, chunk: r, moved, left, ok: ok ? 1 : 0 });
  return ok;
}

/**
 * uvm_hmm_alloc_evict() - a VRAM page for a migration destination when
 * VRAM is full: evict root chunks in LRU order until one is free, then
 * allocate from it (temp-pinned).
 * Context: as uvm_hmm_evict_root_chunk(). Return: the page, or null when
 * no root could be emptied (the caller maps system memory remotely).
 */
export function* uvm_hmm_alloc_evict(gpu: uvm_gpu, locked_mm: mm_struct | null,
                                     remap: evict_remap_fn): Sleepable<page | null> {
  const tried = new Set<number>();
  for (;;) {
    const r = pick_root_chunk_to_evict(gpu.pmm, tried);
    if (r < 0) break;
    tried.add(r);
    if (yield* uvm_hmm_evict_root_chunk(gpu, r, locked_mm, remap)) {
      const pg = uvm_pmm_gpu_page_alloc(gpu.pmm);
      if (pg !== null) return pg;
    }
    if (mockgpu_params.broken_evict_pinned) tried.delete(r);   /* TEST ONLY: retry the same root forever */
  }
  uvm_gpu_stat_add(gpu, 'evict_fallbacks');
  trace_event('uvm_pmm_evict_fallback', { gpu: gpu.name, tried: tried.size });
  return null;
}
