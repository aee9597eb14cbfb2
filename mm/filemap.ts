/*
 * mm/filemap.ts - the folio lock, and the page cache of files.
 *
 * Models folio_lock()/folio_unlock()/folio_wait_locked() of mm/filemap.c:
 * PG_locked is a sleeping bit lock; waiters sleep on a per-page wait
 * queue (Linux hashes pages onto a shared folio_wait_table; here each
 * page gets its own queue on first contention). The page cache of files
 * (lookup, insert, remove, unmap a range, the writeback write-protect)
 * follows below; tmpfs (mm/shmem.ts) is its user.
 */
import type { page, address_space } from '../include/linux/mm_types.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import { PageLocked, PG_locked, SetPageDirty, ClearPageDirty, TestClearPageDirty } from '../include/linux/page-flags.js';
import { pte_present, pte_dirty, pte_write, pte_mkclean, pte_wrprotect } from '../include/linux/pgtable.js';
import { MMU_NOTIFY_PROTECTION_PAGE, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock, type spinlock_t } from '../lib/locking/spinlock.js';
import { get_page, put_page } from './page_alloc.js';
import { pte_lockptr, ptep_get, set_pte_at, flush_tlb_page } from './pgtable.js';
import { vma_address, page_vma_mapped } from './rmap.js';
import { zap_page_range_single } from './zap.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { wait_queue_head, wait_event, wake_up_all, waitqueue_active } from '../lib/locking/wait.js';
import { BUG } from '../include/asm-generic/bug.js';
import { fail_folio_trylock, should_fail } from '../lib/fault-inject.js';

function folio_waitqueue(f: page): wait_queue_head {
  if (f.waitq === null) f.waitq = new wait_queue_head(`folio_lock[pfn ${f.pfn}]`);
  return f.waitq;
}

/* take the folio lock if it is free (no fault injection) */
function folio_trylock_flag(h: page): boolean {
  if (PageLocked(h)) return false;
  h.flags |= 1 << PG_locked;
  return true;
}

/**
 * folio_trylock() - take the folio lock if it is free. The
 * fail_folio_trylock site (lib/fault-inject.ts) makes it fail as if
 * another CPU held the lock.
 * Context: any; never sleeps. Return: true if taken.
 */
export function folio_trylock(f: page): boolean {
  const h = f.compound_head;
  if (!PageLocked(h) && should_fail(fail_folio_trylock, 1)) return false;
  return folio_trylock_flag(h);
}

/**
 * __folio_set_locked() - lock a folio nobody else can see yet (a page
 * just allocated as a migration destination, a device page being handed
 * out); the lock cannot be contended, so this never fails.
 * Context: any. BUG if the folio is already locked.
 */
export function __folio_set_locked(f: page): void {
  if (!folio_trylock_flag(f.compound_head)) BUG(`__folio_set_locked: pfn ${f.pfn} is already locked`);
}

/**
 * folio_lock() - take the folio lock, sleeping while someone else holds it.
 * Context: may sleep; must not hold a spinlock.
 */
export function* folio_lock(f: page): Sleepable {
  const h = f.compound_head;
  while (!folio_trylock_flag(h)) yield* wait_event(folio_waitqueue(h), () => !PageLocked(h));
}

/** folio_unlock() - release the folio lock and wake its waiters. */
export function folio_unlock(f: page): void {
  const h = f.compound_head;
  if (!PageLocked(h)) BUG(`folio_unlock of unlocked folio pfn ${h.pfn}`);
  h.flags &= ~(1 << PG_locked);
  if (h.waitq !== null && waitqueue_active(h.waitq)) wake_up_all(h.waitq);
}

/** folio_wait_locked() - sleep until the folio is unlocked (without taking the lock). */
export function* folio_wait_locked(f: page): Sleepable {
  const h = f.compound_head;
  if (PageLocked(h)) yield* wait_event(folio_waitqueue(h), () => !PageLocked(h));
}

/**
 * migration_entry_wait_on_locked() - sleep until the locked folio of a
 * page-table entry (a migration entry, or a device-private entry whose
 * folio someone is migrating) is unlocked, without taking a reference:
 * the caller holds the PTE lock @ptl, which kept the folio alive; this
 * queues on the folio's wait queue, then drops @ptl (in the simulator no
 * thread runs between the two steps, so the order is kept by construction).
 * Context: @ptl held on entry, released on return; may sleep. The caller
 * retries the fault.
 */
export function* migration_entry_wait_on_locked(f: page, ptl: spinlock_t): Sleepable {
  const h = f.compound_head;
  spin_unlock(ptl);
  if (PageLocked(h)) yield* wait_event(folio_waitqueue(h), () => !PageLocked(h));
}

export const lock_page = folio_lock;
export const unlock_page = folio_unlock;
export const trylock_page = folio_trylock;

/* ------------------------------------------------------------------
 * The page cache of files: lookup, insertion and removal in an
 * address_space, unmapping a file range from every mapping, and the
 * write-protect step of writeback. Linux keeps these in mm/filemap.c,
 * mm/truncate.c, mm/memory.c (unmap_mapping_range) and mm/rmap.c
 * (folio_mkclean).
 * ------------------------------------------------------------------ */

/**
 * filemap_get_folio() - the page-cache folio at index, with a reference
 * for the caller, or null when the file has no page there (a hole).
 */
export function filemap_get_folio(mapping: address_space, index: number): page | null {
  const p = mapping.i_pages.get(index);
  if (p === undefined) return null;
  get_page(p);
  return p;
}

/**
 * filemap_add_folio() - insert a new folio at index; the cache takes over
 * the caller's reference. BUG if the slot is taken.
 */
export function filemap_add_folio(mapping: address_space, f: page, index: number): void {
  if (mapping.i_pages.has(index)) BUG(`page cache slot ${index} already used`);
  f.mapping = mapping;
  f.index = index;
  mapping.i_pages.set(index, f);
}

/**
 * filemap_remove_folio() - take a folio out of its file's page cache
 * (truncate, eviction) and drop the cache's reference; a page still
 * mapped somewhere lives on until its last mapping goes.
 */
export function filemap_remove_folio(f: page): void {
  const m = f.mapping;
  if (m === null || m.kind !== 'file' || m.i_pages.get(f.index)?.pfn !== f.pfn) return;
  m.i_pages.delete(f.index);
  f.mapping = null;
  ClearPageDirty(f);
  put_page(f);
}

/**
 * unmap_mapping_range() - zap the pages of file bytes [holebegin,
 * holebegin + holelen) (holelen 0: to the end) from every VMA mapping the
 * file, with MMU_NOTIFY_CLEAR over each VMA's part. Private COW copies of
 * those file pages go too (even_cows = 1, what truncate asks).
 * Context: may sleep; the callers' mmap_locks are not needed (Linux holds
 * i_mmap_rwsem for the walk).
 */
export function* unmap_mapping_range(mapping: address_space, holebegin: number, holelen: number): Sleepable {
  const zba = Math.floor(holebegin / PAGE_SIZE);
  const zea = holelen === 0 ? Infinity : zba + Math.ceil(holelen / PAGE_SIZE) - 1;
  for (const vma of [...mapping.i_mmap]) {
    const vba = vma.vm_pgoff, vea = vba + (vma.vm_end - vma.vm_start) / PAGE_SIZE - 1;
    if (vea < zba || vba > zea) continue;
    const start = vma.vm_start + (Math.max(zba, vba) - vba) * PAGE_SIZE;
    const end = vma.vm_start + (Math.min(zea, vea) - vba + 1) * PAGE_SIZE;
    yield* zap_page_range_single(vma, start, end - start);
  }
}

/**
 * folio_mkclean() - the write-protect step of writeback: make every
 * writable or dirty PTE mapping the file folio clean and read-only, each
 * inside MMU_NOTIFY_PROTECTION_PAGE, so that the next store faults and
 * marks the folio dirty again (page_mkclean_one).
 * Context: may sleep. Return: PTEs that were writable or dirty.
 */
export function* folio_mkclean(f: page): Sleepable<number> {
  const m = f.mapping;
  if (m === null || m.kind !== 'file') return 0;
  let cleaned = 0;
  for (const vma of [...m.i_mmap]) {
    const addr = vma_address(f, vma);
    if (addr < 0 || page_vma_mapped(vma, addr, f) < 0) continue;
    const mm = vma.vm_mm;
    const range = mmu_notifier_range_init(MMU_NOTIFY_PROTECTION_PAGE, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, addr, addr + PAGE_SIZE);
    yield* mmu_notifier_invalidate_range_start(range);
    const ptep = page_vma_mapped(vma, addr, f);
    if (ptep >= 0) {
      const ptl = pte_lockptr(mm, ptep);
      spin_lock(ptl);
      const pte = ptep_get(mm, ptep);
      if (pte_present(pte) && (pte_dirty(pte) || pte_write(pte))) {
        set_pte_at(mm, addr, ptep, pte_mkclean(pte_wrprotect(pte)));
        flush_tlb_page(vma, addr);
        cleaned++;
      }
      spin_unlock(ptl);
    }
    yield* mmu_notifier_invalidate_range_end(range);
  }
  return cleaned;
}

/**
 * folio_clear_dirty_for_io() - writeback is about to write the folio:
 * write-protect its mappings (dirty PTEs make the folio dirty first),
 * then clear PG_dirty. Return: true when the folio was dirty (write it).
 * Context: folio locked; may sleep.
 */
export function* folio_clear_dirty_for_io(f: page): Sleepable<boolean> {
  if ((yield* folio_mkclean(f)) > 0) SetPageDirty(f);
  return TestClearPageDirty(f);
}
