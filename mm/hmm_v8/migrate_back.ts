/*
 * mm/hmm_v8/migrate_back.ts - HMM v8 patches 20, 25, 26 and 27: bringing
 * device memory back to system memory, on a CPU fault and at fork.
 *
 *   [PATCH 20/36] HMM: mm add helper to update page table when migrating memory back
 *   [PATCH 25/36] HMM: add helpers for migration back to system memory
 *   [PATCH 26/36] HMM: fork copy migrated memory into system memory for child process
 *   [PATCH 27/36] HMM: CPU page fault on migrated memory
 *
 * hmm_migrate_back() does it for a range of one mm, in three steps:
 *  1. mm_hmm_migrate_back(): each unlocked SWP_HMM entry becomes the locked
 *     one (an entry someone else locked is skipped: they own it), and gets a
 *     fresh zeroed page charged to the memcg. Out of memory (or over the
 *     memcg limit: the 2015 consequence, mm/hmm_v8/memcg.ts), the entries
 *     not served are unlocked again and the caller gets -ENOMEM.
 *  2. hmm_mirror_migrate_back() for each mirror holding a VALID_DEV entry
 *     there: dst[] gets SELECTed pfn (or DMA) entries for the new pages and
 *     ->copy_from_device() copies; for HMM_COPY_FROM_DEVICE the device also
 *     moves its mapping to the new page and frees its memory, and the
 *     mirror table follows; for HMM_FORK it only copies (the parent keeps
 *     its device page). A failed copy clears the entry; a failing mirror
 *     is killed.
 *  3. mm_hmm_migrate_back_cleanup(): a page some device delivered is mapped
 *     (anon rmap, rss, memcg commit, LRU); one nobody delivered gets the
 *     *poisonous* SWP_HMM entry (its data is lost: SIGBUS on access) and is
 *     freed (charge cancelled).
 *
 * hmm_handle_cpu_fault() is what do_swap_page() calls for an SWP_HMM entry
 * (hmm_v8_hooks.cpu_fault): poisonous -> SIGBUS; locked -> wait for its
 * owner and retry; no struct hmm any more -> poison and SIGBUS; else
 * migrate back exactly this page (the 2015 code left "ask the driver for
 * a bigger range" as a TODO) -> VM_FAULT_MAJOR, or VM_FAULT_OOM on -ENOMEM.
 *
 * hmm_mm_fork() is what copy_page_range() calls after copying a PTE page
 * that held SWP_HMM entries (hmm_v8_hooks.mm_fork): the child's entry is
 * filled by hmm_migrate_back(HMM_FORK) on the child's mm with the parent's
 * mirrors as the source. The child gets a private system copy; the parent
 * keeps its device page. Simplest correct semantics, said the series; a
 * device COW could come later (mainline shares device-private pages COW).
 */
import type { mm_struct, page, vm_area_struct, vm_fault } from '../../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import { PAGE_SIZE, VM_FAULT_MAJOR, VM_FAULT_OOM, VM_FAULT_SIGBUS, inc_mm_counter } from '../../include/linux/mm.js';
import { pte_mkdirty, pte_mkyoung } from '../../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_entry_to_pte, is_hmm_entry, is_hmm_entry_locked, is_hmm_entry_poisonous, make_hmm_entry,
  make_hmm_entry_locked, make_hmm_entry_poisonous, type swp_entry_t,
} from '../../include/linux/swapops.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_ZERO } from '../../include/linux/gfp.js';
import { folio_mark_uptodate } from '../../include/linux/page-flags.js';
import {
  HMM_FORK, HMM_COPY_FROM_DEVICE, HMM_PTE_SELECT, HMM_PTE_WRITE, hmm_pte_test_valid_dev,
  hmm_pte_test_valid_dma, hmm_pte_test_valid_pfn, hmm_pte_from_pfn, hmm_pte_from_dma_addr, hmm_pte_dma_addr,
  hmm_pte_clear_select, hmm_pte_clear_dirty, hmm_etype_names, type hmm_event, type hmm_mirror,
} from '../../include/linux/hmm_v8.js';
import { ENOMEM } from '../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { down_read, up_read } from '../../lib/locking/rwsem.js';
import { wait_event, wake_up_all } from '../../lib/locking/wait.js';
import { dma_map_page, dma_unmap_page, dma_mapping_error, DMA_BIDIRECTIONAL } from '../../lib/dma/mapping.js';
import { count_event, trace_event } from '../../lib/sim/trace.js';
import { alloc_page_sleepable, put_page } from '../page_alloc.js';
import { pte_offset_map, pte_alloc_map, pte_lockptr, ptep_get, set_pte_at } from '../pgtable.js';
import { anon_vma_prepare, folio_add_new_anon_rmap } from '../rmap.js';
import { mk_pte, maybe_mkwrite } from '../memory.js';
import { folio_add_lru_vma } from '../swap.js';
import { hmm_v8_hooks } from './hooks.js';
import { hmm_of, hmm_event_new, hmm_mirror_kill, mirror_pt, type hmm } from './hmm.js';
import {
  hmm_pt_lookup, hmm_pt_directory_lock, hmm_pt_directory_unlock, hmm_pt_load, hmm_pt_store,
} from './hmm_pt.js';
import { mem_cgroup_try_charge, mem_cgroup_commit_charge, mem_cgroup_cancel_charge } from './memcg.js';

/** Per-call state of a migration back: one slot per page of the range. */
export interface hmm_migrate_back_ctx {
  start: number;
  /* the page that will back each locked entry (null: not ours to migrate) */
  pages: (page | null)[];
  /* the PTE each page gets if some device delivers its data */
  new_pte: Float64Array;
  /* some device copied the data in */
  delivered: Uint8Array;
}

function ctx_new(start: number, end: number): hmm_migrate_back_ctx {
  const n = (end - start) / PAGE_SIZE;
  return { start, pages: new Array<page | null>(n).fill(null), new_pte: new Float64Array(n), delivered: new Uint8Array(n) };
}

/* Set the entry at @addr to @to if it is @from; Return: true if it was. */
function pte_swap(mm: mm_struct, addr: number, from: number, to: number): boolean {
  const ptep = pte_offset_map(mm, addr);
  if (ptep < 0) return false;
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  const ok = ptep_get(mm, ptep) === from;
  if (ok) set_pte_at(mm, addr, ptep, to);
  spin_unlock(ptl);
  return ok;
}

const HMM_PTE = () => swp_entry_to_pte(make_hmm_entry());
const HMM_PTE_LOCKED = () => swp_entry_to_pte(make_hmm_entry_locked());

/**
 * mm_hmm_migrate_back() - lock the device entries of [c.start, end) of
 * @vma and give each a new page (patch 20). The pages are allocated and
 * charged with the entries locked and no PTE lock held
 * (GFP_HIGHUSER_MOVABLE | __GFP_ZERO, charged GFP_KERNEL): that may sleep
 * in direct and memcg reclaim, whose invalidations do not wait for this
 * thread (it is no device fault).
 * Context: mmap_lock held (read, or write at fork); may sleep.
 * Return: 0, or -ENOMEM (the entries without a page were unlocked again).
 */
export function* mm_hmm_migrate_back(mm: mm_struct, vma: vm_area_struct, c: hmm_migrate_back_ctx): Sleepable<number> {
  const locked: number[] = [];
  for (let i = 0; i < c.pages.length; i++) {
    if (pte_swap(mm, c.start + i * PAGE_SIZE, HMM_PTE(), HMM_PTE_LOCKED())) locked.push(i);
  }
  if (locked.length > 0 && anon_vma_prepare(vma) !== 0) {
    for (const i of locked) pte_swap(mm, c.start + i * PAGE_SIZE, HMM_PTE_LOCKED(), HMM_PTE());
    return -ENOMEM;
  }
  for (let k = 0; k < locked.length; k++) {
    const i = locked[k];
    let p = yield* alloc_page_sleepable(GFP_HIGHUSER_MOVABLE | __GFP_ZERO);
    if (p !== null && (yield* mem_cgroup_try_charge(p, mm)) !== 0) { put_page(p); p = null; }
    if (p === null) {
      for (let j = k; j < locked.length; j++) pte_swap(mm, c.start + locked[j] * PAGE_SIZE, HMM_PTE_LOCKED(), HMM_PTE());
      count_event('hmm_v8_migrate_back_nomem');
      return -ENOMEM;
    }
    folio_mark_uptodate(p);
    c.pages[i] = p;
    c.new_pte[i] = maybe_mkwrite(pte_mkdirty(pte_mkyoung(mk_pte(p, vma.vm_page_prot))), vma);
  }
  return 0;
}

/* DMA-map one dst entry for a device with a dev; Return: the entry, or 0 on a mapping error. */
function dst_entry(mirror: hmm_mirror, p: page): number {
  const dev = mirror.device.dev;
  if (dev === null) return hmm_pte_from_pfn(p.pfn) + HMM_PTE_SELECT + HMM_PTE_WRITE;
  const dma = dma_map_page(dev, p, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
  if (dma_mapping_error(dev, dma)) return 0;
  return hmm_pte_from_dma_addr(dma) + HMM_PTE_SELECT + HMM_PTE_WRITE;
}

/**
 * hmm_mirror_migrate_back() - copy what @mirror's device holds in the range
 * into the new pages (patch 25).
 * Context: hmm.rwsem held for read; may sleep (the driver copies).
 * Return: 0 or the driver's error (the caller kills the mirror).
 */
export function* hmm_mirror_migrate_back(mirror: hmm_mirror, event: hmm_event, c: hmm_migrate_back_ctx): Sleepable<number> {
  const pt = mirror_pt(mirror);
  const n = c.pages.length;
  const dst = new Float64Array(n);
  const ptrs = new Int32Array(n).fill(-1);
  let any = false;
  for (let i = 0; i < n; i++) {
    const p = c.pages[i];
    if (p === null) continue;
    const ptr = hmm_pt_lookup(pt, c.start + i * PAGE_SIZE);
    if (ptr < 0 || !hmm_pte_test_valid_dev(hmm_pt_load(pt, ptr))) continue;
    ptrs[i] = ptr;
    dst[i] = dst_entry(mirror, p);
    any = true;
  }
  if (!any) return 0;
  const sel = dst.slice();
  const ret = yield* mirror.device.ops.copy_from_device(mirror, event, dst, c.start, c.start + n * PAGE_SIZE);
  for (let i = 0; i < n; i++) {
    if (ptrs[i] < 0) continue;
    const ok = ret === 0 && (hmm_pte_test_valid_pfn(dst[i]) || hmm_pte_test_valid_dma(dst[i]));
    if (ok) c.delivered[i] = 1;
    const keep = ok && event.etype === HMM_COPY_FROM_DEVICE;
    if (hmm_pte_test_valid_dma(sel[i]) && !keep) dma_unmap_page(mirror.device.dev!, hmm_pte_dma_addr(sel[i]), PAGE_SIZE, DMA_BIDIRECTIONAL);
    if (event.etype === HMM_FORK) continue;              /* the parent keeps its device page */
    const ptr = ptrs[i];
    hmm_pt_directory_lock(pt, ptr);
    hmm_pt_store(pt, ptr, keep ? hmm_pte_clear_dirty(hmm_pte_clear_select(dst[i])) : 0);
    hmm_pt_directory_unlock(pt, ptr);
  }
  return ret;
}

/**
 * mm_hmm_migrate_back_cleanup() - map what was delivered, poison the rest
 * (patch 20). Context: mmap_lock held; PTE locks; no sleep.
 * Return: the number of pages poisoned.
 */
export function mm_hmm_migrate_back_cleanup(mm: mm_struct, vma: vm_area_struct, c: hmm_migrate_back_ctx): number {
  let poisoned = 0;
  for (let i = 0; i < c.pages.length; i++) {
    const p = c.pages[i];
    if (p === null) continue;
    const addr = c.start + i * PAGE_SIZE;
    const ptep = pte_offset_map(mm, addr);
    const ptl = pte_lockptr(mm, ptep);
    spin_lock(ptl);
    if (c.delivered[i]) {
      folio_add_new_anon_rmap(p, vma, addr);
      inc_mm_counter(mm, MM_ANONPAGES);
      mem_cgroup_commit_charge(p);
      folio_add_lru_vma(p, vma);
      set_pte_at(mm, addr, ptep, c.new_pte[i]);
    } else {
      set_pte_at(mm, addr, ptep, swp_entry_to_pte(make_hmm_entry_poisonous()));
      poisoned++;
    }
    spin_unlock(ptl);
    if (!c.delivered[i]) { mem_cgroup_cancel_charge(p); put_page(p); }
  }
  if (poisoned > 0) count_event('hmm_v8_poisoned', poisoned);
  return poisoned;
}

/**
 * hmm_migrate_back() - bring [start, end) of @vma (in @mm, which is the
 * child's mm for HMM_FORK) back from the devices of @h (patch 25).
 * Context: mmap_lock of @mm held; may sleep.
 * Return: 0, or -ENOMEM.
 */
export function* hmm_migrate_back(h: hmm, event: hmm_event, mm: mm_struct, vma: vm_area_struct,
                                  start: number, end: number): Sleepable<number> {
  const c = ctx_new(start, end);
  const ret = yield* mm_hmm_migrate_back(mm, vma, c);
  if (ret) return ret;
  const failed: hmm_mirror[] = [];
  yield* down_read(h.rwsem);
  for (const mirror of h.mirrors.slice()) {
    if ((yield* hmm_mirror_migrate_back(mirror, event, c)) !== 0) failed.push(mirror);
  }
  up_read(h.rwsem);
  for (const m of failed) yield* hmm_mirror_kill(m);
  const poisoned = mm_hmm_migrate_back_cleanup(mm, vma, c);
  wake_up_all(h.wait_queue);
  const moved = c.delivered.reduce((a, b) => a + b, 0);
  count_event(event.etype === HMM_FORK ? 'hmm_v8_fork_copy' : 'hmm_v8_migrate_back', moved);
  trace_event('hmm_migrate_back', { mm: mm.id, start, end, etype: hmm_etype_names[event.etype], moved, poisoned });
  return 0;
}

/**
 * hmm_handle_cpu_fault() - do_swap_page() found an SWP_HMM entry (patch 27).
 * Context: mmap_lock held for read; may sleep.
 * Return: 0 (retry), VM_FAULT_MAJOR, VM_FAULT_OOM or VM_FAULT_SIGBUS.
 */
export function* hmm_handle_cpu_fault(vmf: vm_fault, entry: swp_entry_t): Sleepable<number> {
  const vma = vmf.vma, mm = vma.vm_mm;
  if (is_hmm_entry_poisonous(entry)) { count_event('hmm_v8_cpu_fault_poison'); return VM_FAULT_SIGBUS; }
  const h = hmm_of(mm);
  if (is_hmm_entry_locked(entry)) {
    /* someone migrates it: wait until the entry changes, then retry */
    count_event('hmm_v8_cpu_fault_wait');
    if (h !== null) yield* wait_event(h.wait_queue, () => ptep_get(mm, vmf.pte) !== vmf.orig_pte);
    return 0;
  }
  if (h === null) {
    pte_swap(mm, vmf.address, vmf.orig_pte, swp_entry_to_pte(make_hmm_entry_poisonous()));
    return VM_FAULT_SIGBUS;
  }
  count_event('hmm_v8_cpu_fault');
  const event = hmm_event_new(h, vmf.address, vmf.address + PAGE_SIZE, HMM_COPY_FROM_DEVICE);
  const ret = yield* hmm_migrate_back(h, event, mm, vma, event.start, event.end);
  if (ret === -ENOMEM) return VM_FAULT_OOM;
  if (ret) return VM_FAULT_SIGBUS;
  const now_pte = ptep_get(mm, vmf.pte);
  if (is_hmm_entry(pte_to_swp_entry(now_pte)) && is_hmm_entry_poisonous(pte_to_swp_entry(now_pte))) return VM_FAULT_SIGBUS;
  return VM_FAULT_MAJOR;
}

/**
 * hmm_mm_fork() - give the child a system copy of the parent's
 * device-resident page at @addr (patch 26). copy_page_range() left the
 * child's entry empty; it becomes the SWP_HMM entry the 2015 copy made,
 * then hmm_migrate_back(HMM_FORK) fills it.
 * Context: both mmap_locks held for write; may sleep.
 * Return: 0 or -ENOMEM (fork fails).
 */
export function* hmm_mm_fork(src: vm_area_struct, dst: vm_area_struct, addr: number): Sleepable<number> {
  const dst_mm = dst.vm_mm;
  const ptep = pte_alloc_map(dst_mm, addr);
  if (ptep < 0) return -ENOMEM;
  const ptl = pte_lockptr(dst_mm, ptep);
  spin_lock(ptl);
  set_pte_at(dst_mm, addr, ptep, HMM_PTE());
  spin_unlock(ptl);
  const h = hmm_of(src.vm_mm);
  if (h === null) { pte_swap(dst_mm, addr, HMM_PTE(), swp_entry_to_pte(make_hmm_entry_poisonous())); return 0; }
  const event = hmm_event_new(h, addr, addr + PAGE_SIZE, HMM_FORK);
  return yield* hmm_migrate_back(h, event, dst_mm, dst, addr, addr + PAGE_SIZE);
}

/** migrateBackInit() - fill places 3 and 4 of hmm_v8_hooks (mm/hmm_v8/hooks.ts). */
export function migrateBackInit(): void {
  hmm_v8_hooks.cpu_fault = hmm_handle_cpu_fault;
  hmm_v8_hooks.mm_fork = hmm_mm_fork;
}
