/*
 * mm/hmm_v8/migrate.ts - HMM v8 patches 16, 21, 22 and 28: migrating
 * private anonymous memory to device memory.
 *
 *   [PATCH 16/36] HMM: add special swap filetype for memory migrated to HMM device memory
 *   [PATCH 21/36] HMM: mm add helper to update page table when migrating memory
 *   [PATCH 22/36] HMM: add new callback for copying memory from and to device memory
 *   [PATCH 28/36] HMM: add mirror fault support for system to device memory migration
 *
 * A driver asks with hmm_mirror_fault(HMM_COPY_TO_DEVICE) (mm/hmm_v8/
 * fault.ts), which lands in hmm_mirror_migrate() with mmap_lock held for
 * read. The steps:
 *
 *  1. only private anonymous VMAs; at most HMM_MIGRATE_MAX_PAGES pages
 *     (the 2015 batch had to fit dst[] and save_pte[] in a page each);
 *     register as a device fault, so concurrent invalidations back us off
 *  2. mm_hmm_migrate(): under one MMU_MIGRATE invalidation of the range
 *     that skips HMM itself (patch 04), replace each CPU PTE with the
 *     *locked* SWP_HMM entry, saving the PTE; an empty PTE (or the zero
 *     page) first gets a fresh zeroed, memcg-charged anon page so there is
 *     something to move; a real swap entry stops the pass (-ENOENT: fault it
 *     in, go on from there); THPs were split (PMD, then folio) before
 *     registering (a split's own invalidation would otherwise wait for
 *     us). A backoff seen at the end restores everything (-EAGAIN). Then
 *     the page filter: a
 *     page may move only if its page-table mappings explain every reference
 *     (mapcount + swapcache == refcount: no GUP pin, no other user); the
 *     others get their saved PTE back. The locked entry is how "two threads
 *     never both migrate one page": a second migration (or a CPU fault) finds
 *     a non-present entry it does not own and leaves it alone (or waits)
 *  3. invalidate the *other* mirrors of the mm (HMM_MIGRATE) over the pages
 *     that move: the CPU table holds only special entries there now, so
 *     nobody can refault meanwhile. Only those pages: a page already on
 *     another device has its only copy there, and an HMM_MIGRATE of the
 *     whole range would make that device free it
 *  4. this mirror's table gets SELECTed pfn entries for the pages that move
 *     (WRITE as the saved PTE, or the VMA, allows), DMA-mapped if needed
 *  5. ->copy_to_device() fills dst[] with device entries; partial failure
 *     is fine, an error aborts
 *  6. the device entries go into the mirror table
 *  7. mm_hmm_migrate_cleanup(): moved pages get the *unlocked* SWP_HMM
 *     entry, lose their rmap and rss count and are freed (which uncharges
 *     them: mm/hmm_v8/memcg.ts); the rest get their saved PTE back.
 *
 * The device address of a moved page lives only in the mirror tables
 * (VALID_DEV); the CPU PTE says nothing but "on some device".
 */
import type { mm_struct, page, vm_area_struct } from '../../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../../include/linux/mm_types.js';
import {
  PAGE_SIZE, VM_PFNMAP, VM_MIXEDMAP, VM_SHARED, VM_WRITE, VM_FAULT_OOM, VM_FAULT_ERROR, FAULT_FLAG_REMOTE,
  page_mapcount, page_count, inc_mm_counter, dec_mm_counter,
} from '../../include/linux/mm.js';
import { pte_none, pte_present, pte_write, pte_pfn, pte_special, pte_mkdirty, pmd_is_table, pmd_addr_end, type pte_t } from '../../include/linux/pgtable.js';
import {
  pte_to_swp_entry, swp_entry_to_pte, is_hmm_entry, make_hmm_entry, make_hmm_entry_locked,
} from '../../include/linux/swapops.js';
import { PageSwapCache, folio_mark_uptodate } from '../../include/linux/page-flags.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_ZERO } from '../../include/linux/gfp.js';
import { MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../../include/linux/mmu_notifier.js';
import {
  MMU_MIGRATE, HMM_MIGRATE, HMM_PTE_SELECT, HMM_PTE_WRITE, hmm_pte_test_valid_dev, hmm_pte_test_valid_dma,
  hmm_pte_from_pfn, hmm_pte_set, hmm_pte_clear_select, hmm_pte_dma_addr, hmm_pte_valid, type hmm_event,
  type hmm_mirror, type mmu_notifier_v8,
} from '../../include/linux/hmm_v8.js';
import { EINVAL, ENOENT, ENOMEM, EAGAIN, EFAULT } from '../../include/uapi/asm-generic/errno.js';
import { cond_resched, type Sleepable } from '../../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { down_read, up_read } from '../../lib/locking/rwsem.js';
import { wake_up_all } from '../../lib/locking/wait.js';
import { dma_unmap_page, DMA_BIDIRECTIONAL } from '../../lib/dma/mapping.js';
import { charge } from '../../lib/sim/clock.js';
import { PTE_UPDATE_NS } from '../../lib/sim/costs.js';
import { count_event, trace_event } from '../../lib/sim/trace.js';
import { alloc_page_sleepable, put_page, get_page, pfn_to_page, is_zero_pfn } from '../page_alloc.js';
import { pmd_alloc, pte_alloc_map, pte_offset_map, pte_lockptr, ptep_get, set_pte_at, flush_tlb_range } from '../pgtable.js';
import { anon_vma_prepare, folio_add_new_anon_rmap, folio_remove_rmap_pte } from '../rmap.js';
import { handle_mm_fault, vm_normal_page, mk_pte, maybe_mkwrite } from '../memory.js';
import { folio_add_lru_vma } from '../swap.js';
import { mmu_notifier_range_init } from '../mmu_notifier.js';
import {
  mmu_notifier_invalidate_range_start_excluding, mmu_notifier_invalidate_range_end_excluding,
} from './mmu_notifier.js';
import { hmm_device_fault_start, hmm_device_fault_end, hmm_event_new, hmm_mirror_kill, mirror_pt, type hmm } from './hmm.js';
import { hmm_mirror_update } from './update.js';
import {
  hmm_pt_iter_init, hmm_pt_iter_fini, hmm_pt_iter_fault, hmm_pt_directory_lock, hmm_pt_directory_unlock,
  hmm_pt_load, hmm_pt_store, type hmm_pt_iter,
} from './hmm_pt.js';
import { hmm_mirror_dma_map } from './dma.js';
import { split_huge_pmd_address, split_folio } from '../huge_memory_split.js';
import { walk_page_range, PGWALK_RDLOCK, type mm_walk, type mm_walk_ops } from '../pagewalk.js';
import { folio_lock, folio_unlock } from '../filemap.js';
import { mem_cgroup_try_charge, mem_cgroup_commit_charge } from './memcg.js';

/** One migration moves at most this many pages: PAGE_SIZE / sizeof(dma_addr_t). */
export const HMM_MIGRATE_MAX_PAGES = PAGE_SIZE / 8;

/*
 * a new zeroed, charged anon page to stand in for an empty PTE: patch 21's
 * alloc_zeroed_user_highpage_movable() and GFP_KERNEL charge, which may
 * sleep in direct and memcg reclaim (Context: may sleep)
 */
function* hmm_alloc_hole_page(vma: vm_area_struct): Sleepable<page | null> {
  const p = yield* alloc_page_sleepable(GFP_HIGHUSER_MOVABLE | __GFP_ZERO);
  if (p === null) return null;
  if ((yield* mem_cgroup_try_charge(p, vma.vm_mm)) !== 0) { put_page(p); return null; }
  mem_cgroup_commit_charge(p);
  folio_mark_uptodate(p);
  return p;
}

/*
 * Give each hole the pass locked a new page, as patch 21 does after
 * dropping the PTE lock (the allocation may reclaim or run the OOM
 * killer; the locked entries keep everyone else out). A hole left without
 * a page (-ENOMEM) gets its old entry back.
 */
function* hmm_fill_holes(vma: vm_area_struct, save_pte: Float64Array, start: number, holes: { i: number; pte: pte_t }[],
                         out: { ret: number }): Sleepable {
  const mm = vma.vm_mm;
  for (const { i, pte } of holes) {
    const addr = start + i * PAGE_SIZE;
    const p = out.ret === -ENOMEM ? null : yield* hmm_alloc_hole_page(vma);
    if (p === null) {
      out.ret = -ENOMEM;
      restore_pte(vma, addr, pte);
      continue;
    }
    folio_add_new_anon_rmap(p, vma, addr);
    inc_mm_counter(mm, MM_ANONPAGES);
    folio_add_lru_vma(p, vma);
    save_pte[i] = maybe_mkwrite(pte_mkdirty(mk_pte(p, vma.vm_page_prot)), vma);
    count_event('hmm_v8_migrate_hole');
  }
}

/*
 * One pass over [addr, end): lock entries, save PTEs. Return: the address
 * where it stopped with -ENOENT (a swap entry), or end; ret in ctx.
 */
function* mm_hmm_migrate_pass(vma: vm_area_struct, save_pte: Float64Array, start: number, addr: number,
                              end: number, out: { ret: number }): Sleepable<number> {
  const mm = vma.vm_mm;
  while (addr < end) {
    const next = pmd_addr_end(addr, end);
    const pmdp = pmd_alloc(mm, addr);
    if (pmdp < 0) { out.ret = -ENOMEM; return addr; }
    const pmd = mm.pgd.load(pmdp);
    if (pmd !== 0 && !pmd_is_table(pmd)) { out.ret = -EAGAIN; return addr; }   /* a THP came back: split and retry */
    let ptep = pte_alloc_map(mm, addr);
    if (ptep < 0) { out.ret = -ENOMEM; return addr; }
    const ptl = pte_lockptr(mm, ptep);
    const holes: { i: number; pte: pte_t }[] = [];
    spin_lock(ptl);
    for (; addr < next; addr += PAGE_SIZE, ptep++) {
      const i = (addr - start) / PAGE_SIZE;
      const pte = ptep_get(mm, ptep);
      if (pte_none(pte) || (pte_present(pte) && pte_special(pte) && is_zero_pfn(pte_pfn(pte)))) {
        holes.push({ i, pte });                                     /* a page for it once the lock is dropped */
      } else if (pte_present(pte)) {
        if (vm_normal_page(vma, addr, pte) === null) continue;      /* no struct page: stays */
        save_pte[i] = pte;
      } else {
        if (is_hmm_entry(pte_to_swp_entry(pte))) continue;          /* already on a device, or locked by another thread */
        out.ret = -ENOENT;                                          /* real swap: fault it in first */
        break;
      }
      set_pte_at(mm, addr, ptep, swp_entry_to_pte(make_hmm_entry_locked()));
      charge(PTE_UPDATE_NS);
    }
    spin_unlock(ptl);
    yield* hmm_fill_holes(vma, save_pte, start, holes, out);
    if (out.ret) return addr;
  }
  return addr;
}

/**
 * mm_hmm_migrate() - lock [start, end) of @vma for migration: every PTE
 * that can move becomes the locked SWP_HMM entry, its old value in
 * save_pte[] (0: not moving).
 * @backoff: the event registered on hmm.device_faults
 * @exclude: HMM's own listener, skipped by the invalidation (patch 04)
 * Context: mmap_lock held for read; may sleep.
 * Return: 0, -EAGAIN (a concurrent invalidation: everything restored),
 * -ENOMEM, -EINVAL (a huge PMD), -EFAULT (swap-in failed).
 */
export function* mm_hmm_migrate(mm: mm_struct, vma: vm_area_struct, save_pte: Float64Array, backoff: hmm_event,
                                exclude: mmu_notifier_v8, start: number, end: number): Sleepable<number> {
  if (anon_vma_prepare(vma) !== 0) return -ENOMEM;
  let addr = start;
  let ret = 0;
  while (addr < end) {
    const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, addr, end);
    range.v8_event = MMU_MIGRATE;
    yield* mmu_notifier_invalidate_range_start_excluding(range, exclude);
    yield* cond_resched();                     /* the walk takes time: others run meanwhile */
    const out = { ret: 0 };
    const stop = yield* mm_hmm_migrate_pass(vma, save_pte, start, addr, end, out);
    flush_tlb_range(vma, addr, stop);
    yield* mmu_notifier_invalidate_range_end_excluding(range, exclude);
    ret = out.ret;
    if (ret !== -ENOENT) break;
    /* a swapped-out page: bring it in (outside the invalidation) and go on from it */
    const r = yield* handle_mm_fault(vma, stop, FAULT_FLAG_REMOTE);
    if (r & VM_FAULT_OOM) { ret = -ENOMEM; break; }
    if (r & VM_FAULT_ERROR) { ret = -EFAULT; break; }
    count_event('hmm_v8_migrate_swapin');
    addr = stop;
    ret = 0;
  }
  if (ret === 0 && backoff.backoff) { ret = -EAGAIN; count_event('hmm_v8_migrate_backoff'); }
  if (ret) {
    mm_hmm_migrate_cleanup(mm, vma, save_pte, null, start, end);
    return ret;
  }
  /* only page-table mappings may hold the pages that move */
  for (let i = 0; i < save_pte.length; i++) {
    if (save_pte[i] === 0) continue;
    const p = pfn_to_page(pte_pfn(save_pte[i]));
    if (page_mapcount(p) + (PageSwapCache(p) ? 1 : 0) === page_count(p)) continue;
    restore_pte(vma, start + i * PAGE_SIZE, save_pte[i]);
    save_pte[i] = 0;
    count_event('hmm_v8_migrate_pinned');
  }
  return 0;
}

function restore_pte(vma: vm_area_struct, addr: number, pte: pte_t): void {
  const mm = vma.vm_mm;
  const ptep = pte_offset_map(mm, addr);
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  set_pte_at(mm, addr, ptep, pte);
  spin_unlock(ptl);
}

/**
 * mm_hmm_migrate_cleanup() - finish a migration: entries whose dst[] is a
 * device entry get the unlocked SWP_HMM entry and their page is released;
 * the others get their saved PTE back (no invalidation needed: the entry
 * was not present). @dst null: restore everything.
 * Context: mmap_lock held for read; takes PTE locks; does not sleep.
 * Return: pages moved.
 */
export function mm_hmm_migrate_cleanup(mm: mm_struct, vma: vm_area_struct, save_pte: Float64Array,
                                       dst: Float64Array | null, start: number, _end: number): number {
  const freed: page[] = [];
  for (let i = 0; i < save_pte.length; i++) {
    if (save_pte[i] === 0) continue;
    const addr = start + i * PAGE_SIZE;
    if (dst === null || !hmm_pte_test_valid_dev(dst[i])) { restore_pte(vma, addr, save_pte[i]); continue; }
    const p = pfn_to_page(pte_pfn(save_pte[i]));
    const ptep = pte_offset_map(mm, addr);
    const ptl = pte_lockptr(mm, ptep);
    spin_lock(ptl);
    set_pte_at(mm, addr, ptep, swp_entry_to_pte(make_hmm_entry()));
    folio_remove_rmap_pte(p, vma);
    dec_mm_counter(mm, MM_ANONPAGES);
    spin_unlock(ptl);
    freed.push(p);
  }
  for (const p of freed) put_page(p);     /* frees the page, and uncharges it */
  return freed.length;
}

/* Step 4: SELECT the pages that move in this mirror's table (and only them). */
function hmm_migrate_select(mirror: hmm_mirror, pt_iter: hmm_pt_iter, vma: vm_area_struct, save_pte: Float64Array,
                            start: number): number {
  const pt = pt_iter.pt;
  for (let i = 0; i < save_pte.length; i++) {
    const addr = start + i * PAGE_SIZE;
    const ptr = hmm_pt_iter_fault(pt_iter, addr);
    if (ptr < 0) return ptr;
    hmm_pt_directory_lock(pt, ptr);
    const old = hmm_pt_load(pt, ptr);
    let n: number;
    if (save_pte[i] === 0) {
      n = hmm_pte_valid(old) ? hmm_pte_clear_select(old) : old;
    } else {
      const w = pte_write(save_pte[i]) || (vma.vm_flags & VM_WRITE) !== 0;
      const pfn = pte_pfn(save_pte[i]);
      if (hmm_pte_test_valid_dma(old)) dma_unmap_page(mirror.device.dev!, hmm_pte_dma_addr(old), PAGE_SIZE, DMA_BIDIRECTIONAL);
      n = hmm_pte_set(hmm_pte_from_pfn(pfn), HMM_PTE_SELECT | (w ? HMM_PTE_WRITE : 0));
    }
    if (n !== old) hmm_pt_store(pt, ptr, n);
    hmm_pt_directory_unlock(pt, ptr);
  }
  return 0;
}

/* Step 6: successful copies become device entries of this mirror; failures are deselected. */
function hmm_migrate_install(mirror: hmm_mirror, it: hmm_pt_iter, dst: Float64Array, save_pte: Float64Array,
                             start: number): number {
  const pt = it.pt;
  let moved = 0;
  for (let i = 0; i < dst.length; i++) {
    if (save_pte[i] === 0) continue;
    const ptr = hmm_pt_iter_fault(it, start + i * PAGE_SIZE);
    if (ptr < 0) continue;
    hmm_pt_directory_lock(pt, ptr);
    const old = hmm_pt_load(pt, ptr);
    if (hmm_pte_test_valid_dev(dst[i])) {
      if (hmm_pte_test_valid_dma(old)) dma_unmap_page(mirror.device.dev!, hmm_pte_dma_addr(old), PAGE_SIZE, DMA_BIDIRECTIONAL);
      hmm_pt_store(pt, ptr, hmm_pte_clear_select(dst[i]));
      moved++;
    } else if (hmm_pte_valid(old)) {
      hmm_pt_store(pt, ptr, hmm_pte_clear_select(old));
    }
    hmm_pt_directory_unlock(pt, ptr);
  }
  return moved;
}

/* hmm_migrate_split_pmd() - pmd_entry: a huge PMD becomes a PTE page (its folio is split afterwards) */
function* hmm_migrate_split_pmd(_pmdp: number, addr: number, _next: number, walk: mm_walk<null>): Sleepable<number> {
  yield* split_huge_pmd_address(walk.vma!, addr);
  return 0;
}

const hmm_migrate_split_walk_ops: mm_walk_ops<null> = Object.freeze({
  pmd_entry: hmm_migrate_split_pmd,
  walk_lock: PGWALK_RDLOCK,
});

/*
 * Split the THPs of [start, end) before registering as a device fault:
 * each split sends its own invalidation, which must not find this
 * migration registered (it would wait for it). The PMDs go first, then
 * the folios, so that each 4 KiB page passes the refcount filter on its own.
 */
function* hmm_migrate_split_thp(vma: vm_area_struct, start: number, end: number): Sleepable {
  yield* walk_page_range(vma.vm_mm, start, end, hmm_migrate_split_walk_ops, null);
  for (let addr = start; addr < end; addr += PAGE_SIZE) {
    const ptep = pte_offset_map(vma.vm_mm, addr);
    const pte = ptep < 0 ? 0 : ptep_get(vma.vm_mm, ptep);
    if (!pte_present(pte) || is_zero_pfn(pte_pfn(pte))) continue;
    const f = pfn_to_page(pte_pfn(pte)).compound_head;
    if (f.order === 0) continue;
    get_page(f);
    yield* folio_lock(f);
    if ((yield* split_folio(f)) === 0) count_event('hmm_v8_migrate_thp_split');
    folio_unlock(f);
    put_page(f);
  }
}

/* the [start, end) runs of pages that move (save_pte[i] != 0) */
function moving_runs(save_pte: Float64Array, start: number): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < save_pte.length; i++) {
    if (save_pte[i] === 0) continue;
    const a = start + i * PAGE_SIZE;
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] === a) last[1] = a + PAGE_SIZE;
    else runs.push([a, a + PAGE_SIZE]);
  }
  return runs;
}

/**
 * hmm_mirror_migrate() - migrate [event.start, event.end) of @vma to
 * @mirror's device (HMM_COPY_TO_DEVICE from hmm_mirror_fault()).
 * Context: mmap_lock held for read; may sleep.
 * Return: 0 (some pages may have stayed: the driver counts what it took);
 * -EINVAL (not private anonymous memory, more than HMM_MIGRATE_MAX_PAGES,
 * a huge PMD, or the driver's abort); -EAGAIN (retry); -ENOMEM.
 */
export function* hmm_mirror_migrate(h: hmm, mirror: hmm_mirror, event: hmm_event, vma: vm_area_struct): Sleepable<number> {
  const mm = h.mm;
  if (vma.vm_ops !== null || vma.vm_file !== null || (vma.vm_flags & (VM_PFNMAP | VM_MIXEDMAP | VM_SHARED))) return -EINVAL;
  const npages = (event.end - event.start) / PAGE_SIZE;
  if (npages > HMM_MIGRATE_MAX_PAGES) return -EINVAL;
  yield* hmm_migrate_split_thp(vma, event.start, event.end);
  let ret = yield* hmm_device_fault_start(h, event);
  if (ret) return ret;
  const save_pte = new Float64Array(npages), dst = new Float64Array(npages);
  ret = yield* mm_hmm_migrate(mm, vma, save_pte, event, h.mmu_notifier, event.start, event.end);
  if (ret) { hmm_device_fault_end(h, event); return ret; }
  /* 3: the other mirrors must drop the old pages (only those: a device entry elsewhere is the only copy) */
  const failed: hmm_mirror[] = [];
  yield* down_read(h.rwsem);
  for (const [s, e] of moving_runs(save_pte, event.start)) {
    const other = hmm_event_new(h, s, e, HMM_MIGRATE);
    for (const m of h.mirrors.slice()) if (m !== mirror && (yield* hmm_mirror_update(m, other, null)) && !failed.includes(m)) failed.push(m);
  }
  up_read(h.rwsem);
  /* 4-6 */
  const it = hmm_pt_iter_init(mirror_pt(mirror));
  ret = hmm_migrate_select(mirror, it, vma, save_pte, event.start);
  if (!ret && mirror.device.dev !== null) ret = yield* hmm_mirror_dma_map(mirror, it, event.start, event.end);
  if (!ret) ret = yield* mirror.device.ops.copy_to_device(mirror, event, vma, dst, event.start, event.end);
  if (ret) dst.fill(0);
  const moved = hmm_migrate_install(mirror, it, dst, save_pte, event.start);
  hmm_pt_iter_fini(it);
  /* 7 */
  mm_hmm_migrate_cleanup(mm, vma, save_pte, dst, event.start, event.end);
  hmm_device_fault_end(h, event);
  wake_up_all(h.wait_queue);
  for (const m of failed) yield* hmm_mirror_kill(m);
  count_event('hmm_v8_migrate_to_device', moved);
  trace_event('hmm_mirror_migrate', { mm: mm.id, start: event.start, end: event.end, pages: npages, moved, ret });
  return ret;
}

