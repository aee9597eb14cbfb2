/*
 * drivers/gpu/mockgpu/uvm_hmm_read_dup.ts - read duplication
 * (cudaMemAdviseSetReadMostly, UVM_ENABLE_READ_DUPLICATION) on HMM
 * memory: a GPU read fault on a read-mostly page copies it into VRAM and
 * maps the copy read-only on the GPU, while the CPU keeps its own page; a
 * write by either side collapses the copies.
 *
 * UVM implements read duplication for its managed memory, whose CPU page
 * tables it owns: duplicating revokes write permission everywhere and a
 * write fault collapses (uvm_va_block_make_resident_read_duplicate; events
 * ReadDuplicate, ReadDuplicateInvalidate). For HMM memory it does not
 * (uvm_hmm.c: "need to implement HMM read duplication support", NVIDIA bug
 * 3660922): mainline tells a secondary MMU when a CPU mapping changes,
 * but not when the CPU writes through a writable PTE, and a data copy
 * goes stale on that write. This model closes the gap the way KSM makes
 * a write visible: the driver write-protects the CPU PTE, clears the
 * page's anon-exclusive mark and keeps a reference while the duplicate
 * lives, so the next CPU store cannot reuse the page in place: it breaks
 * COW (wp_page_copy), whose MMU_NOTIFY_CLEAR reaches uvm_hmm_invalidate,
 * which drops the duplicate (ReadDuplicateInvalidate). Mainline exports
 * no such write-protect helper to drivers: this is the modelling choice,
 * and the docs say so.
 *
 *  GPU read fault, read-mostly, page in system memory:
 *     take a reference, write-protect the CPU PTE (a CLEAR invalidation,
 *     as KSM's write_protect_page), then under the retry protocol copy the
 *     page to a private VRAM chunk on the copy engine and publish a VID
 *     read-only PTE (ReadDuplicate).
 *  GPU write/atomic fault on a duplicated page: the duplicate is dropped
 *     first (unmap, TLB invalidate, chunk freed, reference put), then the
 *     fault is serviced as any other (UVM: the writer gets the page).
 *  Any CPU-side change (COW break on a CPU store, munmap, MADV_DONTNEED,
 *     mprotect, migration, exit): the invalidation drops the duplicate.
 *
 * Only private anonymous pages are duplicated (file and shared pages can
 * be written without a COW break); others follow the usual policy.
 */
import type { page, vm_area_struct } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_REQ_FAULT, hmm_pfn_flags, hmm_pfn_make, hmm_pfn_to_page, type hmm_range } from '../../../include/linux/hmm.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../../../include/linux/mmu_notifier.js';
import { pte_present, pte_pfn, pte_wrprotect, pte_write } from '../../../include/linux/pgtable.js';
import { PageAnonExclusive, ClearPageAnonExclusive, folio_test_anon } from '../../../include/linux/page-flags.js';
import {
  UVM_APERTURE_VID, UvmEventTypeReadDuplicate, UvmEventTypeReadDuplicateInvalidate, mockgpu_pte_make,
} from '../../../include/linux/mockgpu.js';
import { EBUSY } from '../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';
import { spin_lock, spin_unlock } from '../../../lib/locking/spinlock.js';
import { PCIE_BW } from '../../../lib/sim/costs.js';
import { get_page, put_page, kmap_local_page } from '../../../mm/page_alloc.js';
import { pte_offset_map, pte_lockptr, ptep_get, set_pte_at, flush_tlb_page } from '../../../mm/pgtable.js';
import { hmm_range_fault } from '../../../mm/hmm.js';
import {
  mmu_interval_read_begin, mmu_interval_read_retry, mmu_notifier_range_init, mmu_notifier_invalidate_range_start,
  mmu_notifier_invalidate_range_end,
} from '../../../mm/mmu_notifier.js';
import { uvm_gpu_stat_add, uvm_tools_record_event, type uvm_va_space } from './uvm_gpu.js';
import { uvm_pmm_gpu_alloc_page, uvm_pmm_gpu_free_page, uvm_pmm_gpu_owns } from './uvm_pmm_gpu.js';
import { uvm_push_begin, uvm_push_end, uvm_channel_wait } from './uvm_channel.js';

/** struct uvm_read_dup - one duplicated page: its VRAM copy and the system page it copies. */
export interface uvm_read_dup {
  va: number;
  vpfn: number;
  page: page;                 /* referenced while the duplicate lives */
}

const dups = new WeakMap<uvm_va_space, Map<number, uvm_read_dup>>();
const READ_DUP_TRIES = 8;

function dups_of(vs: uvm_va_space): Map<number, uvm_read_dup> {
  let m = dups.get(vs);
  if (m === undefined) { m = new Map(); dups.set(vs, m); }
  return m;
}

/** uvm_hmm_read_dup_lookup() - the duplicate of @va, if any (tests, residency selection). */
export function uvm_hmm_read_dup_lookup(vs: uvm_va_space, va: number): uvm_read_dup | undefined {
  return dups.get(vs)?.get(Math.floor(va / PAGE_SIZE));
}

/** readDupCount() - duplicates alive in @vs. */
export function readDupCount(vs: uvm_va_space): number {
  return dups.get(vs)?.size ?? 0;
}

/*
 * write-protect the CPU PTE of @va (which maps @pg) and clear the page's
 * anon-exclusive mark, inside a CLEAR invalidation (KSM's
 * write_protect_page, in our words). Return: true if the PTE still mapped @pg.
 */
function* uvm_hmm_read_dup_wrprotect(vma: vm_area_struct, va: number, pg: page): Sleepable<boolean> {
  const mm = vma.vm_mm;
  const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, va, va + PAGE_SIZE);
  yield* mmu_notifier_invalidate_range_start(range);
  let ok = false;
  const ptep = pte_offset_map(mm, va);
  if (ptep >= 0) {
    const ptl = pte_lockptr(mm, ptep);
    spin_lock(ptl);
    const pte = ptep_get(mm, ptep);
    if (pte_present(pte) && pte_pfn(pte) === pg.pfn) {
      if (pte_write(pte)) { set_pte_at(mm, va, ptep, pte_wrprotect(pte)); flush_tlb_page(vma, va); }
      ClearPageAnonExclusive(pg);
      ok = true;
    }
    spin_unlock(ptl);
  }
  yield* mmu_notifier_invalidate_range_end(range);
  return ok;
}

/*
 * duplicate one page. Return: 'dup' (done), 'normal' (not a page to
 * duplicate: let the usual path map it) or a -errno from hmm_range_fault.
 */
function* uvm_hmm_read_dup_page(vs: uvm_va_space, vma: vm_area_struct, va: number): Sleepable<'dup' | 'normal' | number> {
  const gpu = vs.gpu;
  const pfns = new Float64Array(1);
  const range: hmm_range = { notifier: vs.notifier!, notifier_seq: 0, start: va, end: va + PAGE_SIZE, hmm_pfns: pfns,
    default_flags: HMM_PFN_REQ_FAULT, pfn_flags_mask: 0, dev_private_owner: gpu };
  let ref: page | null = null;
  const drop_ref = () => { if (ref !== null) { put_page(ref); ref = null; } };
  for (let tries = 0; tries < READ_DUP_TRIES; tries++) {
    pfns[0] = hmm_pfn_make(0, HMM_PFN_REQ_FAULT);
    range.notifier_seq = yield* mmu_interval_read_begin(range.notifier);
    const ret = yield* hmm_range_fault(range);
    if (ret === -EBUSY) continue;
    if (ret) { drop_ref(); return ret; }
    if (!(hmm_pfn_flags(pfns[0]!) & HMM_PFN_VALID)) { drop_ref(); return 'normal'; }
    const pg = hmm_pfn_to_page(pfns[0]!);
    if (uvm_pmm_gpu_owns(gpu.pmm, pg) || !folio_test_anon(pg)) { drop_ref(); return 'normal'; }
    if (ref?.pfn !== pg.pfn || (hmm_pfn_flags(pfns[0]!) & HMM_PFN_WRITE) || PageAnonExclusive(pg)) {
      /* hold the page first: from here a CPU store must copy (and notify) instead of reusing it */
      drop_ref();
      get_page(pg);
      ref = pg;
      if (!(yield* uvm_hmm_read_dup_wrprotect(vma, va, pg))) drop_ref();
      continue;
    }
    const vpfn = uvm_pmm_gpu_alloc_page(gpu.pmm);
    if (vpfn < 0) { drop_ref(); return 'normal'; }
    const p = uvm_push_begin(gpu.ce, 'read_duplicate');
    p.cmds.push({ kind: 'copy', dst: gpu.pmm.vram(vpfn), src: kmap_local_page(pg), bw: PCIE_BW });
    yield* uvm_channel_wait(gpu.ce, yield* uvm_push_end(p));
    yield* mutex_lock(vs.mutex);
    if (mmu_interval_read_retry(range.notifier, range.notifier_seq)) {
      mutex_unlock(vs.mutex);
      uvm_pmm_gpu_free_page(gpu.pmm, vpfn);
      continue;
    }
    const m = uvm_push_begin(gpu.channel, 'map_read_duplicate');
    m.cmds.push({ kind: 'pte_write', pt: vs.pt, vs_id: vs.id, va, pte: mockgpu_pte_make(UVM_APERTURE_VID, vpfn, false, false) });
    yield* uvm_push_end(m);
    dups_of(vs).set(va / PAGE_SIZE, { va, vpfn, page: pg });
    mutex_unlock(vs.mutex);
    uvm_gpu_stat_add(gpu, 'read_duplicates');
    uvm_tools_record_event(UvmEventTypeReadDuplicate, { va, pfn: pg.pfn, vpfn });
    return 'dup';
  }
  drop_ref();
  return 'normal';
}

/**
 * uvm_hmm_read_dup_service() - service read faults on read-mostly pages
 * by duplication. @vas are page addresses of one VMA.
 * Context: fault bottom half, mmap_lock held for read; may sleep.
 * Return: the addresses the usual path must still service, and per-address errors.
 */
export function* uvm_hmm_read_dup_service(vs: uvm_va_space, vma: vm_area_struct, vas: number[]):
    Sleepable<{ normal: number[]; errors: Map<number, number> }> {
  const normal: number[] = [], errors = new Map<number, number>();
  for (const va of vas) {
    if (uvm_hmm_read_dup_lookup(vs, va) !== undefined) { normal.push(va); continue; }
    const r = yield* uvm_hmm_read_dup_page(vs, vma, va);
    if (r === 'normal') normal.push(va);
    else if (typeof r === 'number') errors.set(va, r);
  }
  return { normal, errors };
}

/**
 * uvm_hmm_read_dup_take() - remove the duplicates of [start, end) from
 * @vs's table; the caller clears their GPU PTEs and, once the GPU has
 * executed that, frees them with uvm_hmm_read_dup_release().
 * Context: vs.mutex held.
 */
export function uvm_hmm_read_dup_take(vs: uvm_va_space, start: number, end: number): uvm_read_dup[] {
  const m = dups.get(vs);
  if (m === undefined || m.size === 0) return [];
  const out: uvm_read_dup[] = [];
  for (const [k, d] of m) if (d.va >= start && d.va < end) { out.push(d); m.delete(k); }
  return out;
}

/**
 * uvm_hmm_read_dup_release() - free taken duplicates: VRAM chunk back to
 * the PMM, page reference dropped (ReadDuplicateInvalidate, @why).
 * Context: after the GPU stopped using them; does not sleep.
 */
export function uvm_hmm_read_dup_release(vs: uvm_va_space, taken: uvm_read_dup[], why: string): void {
  for (const d of taken) {
    uvm_pmm_gpu_free_page(vs.gpu.pmm, d.vpfn);
    put_page(d.page);
    uvm_gpu_stat_add(vs.gpu, 'read_dup_invalidates');
    uvm_tools_record_event(UvmEventTypeReadDuplicateInvalidate, { va: d.va, why });
  }
}
