/*
 * mm/device_exclusive.ts - make_device_exclusive(): give a device
 * exclusive access to one anonymous page, for device atomics.
 *
 * Models make_device_exclusive() of mm/rmap.c (Linux 6.15 and later: one
 * page per call, a single SWP_DEVICE_EXCLUSIVE entry type, and the owner
 * in the MMU_NOTIFY_EXCLUSIVE invalidation so the requester can ignore its
 * own event and not livelock). Linux keeps it in mm/rmap.c with the other
 * rmap-level PTE rewriters; it has its own file here because it is an HMM
 * feature with its own section in Documentation/vm/hmm.txt ("Exclusive
 * access").
 *
 * A device that cannot do atomic operations on system memory over its bus
 * asks for exclusive access: the page stays in RAM and keeps its rmap,
 * mapcount and reference, but the CPU PTE becomes a non-present
 * SWP_DEVICE_EXCLUSIVE entry carrying the pfn, so any CPU access faults.
 * The exclusivity ends at the next invalidation of the address, whoever
 * sends it; the CPU side gets its PTE back:
 *   - CPU fault: do_swap_page() -> remove_device_exclusive_entry()
 *     (mm/memory.ts), under the folio lock and an MMU_NOTIFY_EXCLUSIVE
 *     invalidation without owner, so the holder drops its mapping;
 *   - mprotect: change_pte_range() (mm/mprotect.ts) restores the entry
 *     inside its MMU_NOTIFY_PROTECTION_VMA invalidation and applies the
 *     new protection (Linux 5.14-6.14 downgraded a writable exclusive
 *     entry to a readable one instead; either way the device lost it);
 *   - fork: copy_nonpresent_pte() (mm/fork.ts) restores the parent's
 *     entry before copying it as an ordinary COW page;
 *   - munmap/exit: zapped like a mapped page (mm/zap.ts).
 * For core mm the entry is a clean, old mapping of the page.
 */
import type { page, mm_struct } from '../include/linux/mm_types.js';
import { PAGE_SIZE, FOLL_WRITE, FOLL_SPLIT_PMD } from '../include/linux/mm.js';
import { pte_write, pte_dirty, pte_soft_dirty, pte_present } from '../include/linux/pgtable.js';
import { swp_entry_to_pte, make_device_exclusive_entry, _PAGE_SWP_SOFT_DIRTY } from '../include/linux/swapops.js';
import { SetPageDirty, folio_test_anon, folio_test_hugetlb } from '../include/linux/page-flags.js';
import { MMU_NOTIFY_EXCLUSIVE, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import { EOPNOTSUPP, EBUSY, EFAULT } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { put_page } from './page_alloc.js';
import { pte_offset_map, pte_lockptr, ptep_get, ptep_get_and_clear, set_pte_at, flush_tlb_page } from './pgtable.js';
import { get_user_pages_remote } from './gup.js';
import { vma_lookup } from './vma.js';
import { folio_lock, folio_unlock } from './filemap.js';
import { split_huge_pmd_address } from './huge_memory.js';
import {
  mmu_notifier_range_init_owner, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';
import { mmap_assert_locked } from './mmap_lock.js';

/* how often the page may change under us before giving up (Linux retries without bound) */
const MAKE_DEVICE_EXCLUSIVE_TRIES = 16;

/*
 * exclusive_swap() - still the same page mapped writable by a PTE? Then
 * replace the PTE by a device-exclusive entry. Return: true if done.
 */
function exclusive_swap(mm: mm_struct, addr: number, p: page): boolean {
  const vma = vma_lookup(mm, addr);
  const ptep = pte_offset_map(mm, addr);
  if (vma === null || ptep < 0) return false;
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  const pte = ptep_get(mm, ptep);
  if (!pte_present(pte) || Math.floor(pte / PAGE_SIZE) !== p.pfn || !pte_write(pte)) {
    spin_unlock(ptl);
    return false;
  }
  const old = ptep_get_and_clear(mm, addr, ptep);
  flush_tlb_page(vma, addr);
  if (pte_dirty(old)) SetPageDirty(p.compound_head);
  let swp = swp_entry_to_pte(make_device_exclusive_entry(p.pfn));
  if (pte_soft_dirty(old)) swp += _PAGE_SWP_SOFT_DIRTY;
  set_pte_at(mm, addr, ptep, swp);
  spin_unlock(ptl);
  return true;
}

/**
 * make_device_exclusive() - replace the CPU mapping of the page at @addr
 * by a device-exclusive entry.
 * @mm: the address space; @addr: any address in the page.
 * @owner: the requesting driver's cookie, put in the MMU_NOTIFY_EXCLUSIVE
 *         invalidation; the driver's invalidate callback must ignore its
 *         own event, or it would tear down what it is setting up.
 *
 * The page is first faulted in for write (GUP with FOLL_WRITE: this
 * breaks COW, replaces the zero page, migrates a device-private page
 * back, and ends another device's exclusive access). On success the page
 * comes back locked and referenced: the driver maps it in its device page
 * table (inside an mmu_interval_read_begin/read_retry section), then calls
 * folio_unlock() and put_page().
 *
 * Context: mmap_lock held for read; may sleep.
 * Return: { ret: 0, page }, or { ret: -errno, page: null }: the GUP error
 * (-EFAULT for no VMA or no write permission, -ENOMEM), -EOPNOTSUPP for a
 * page that is not anonymous or is a hugetlb page (at once, as Linux 6.15's
 * mm/rmap.c does), -EBUSY if the page kept changing.
 */
export function* make_device_exclusive(mm: mm_struct, addr: number, owner: unknown):
    Sleepable<{ ret: number; page: page | null }> {
  mmap_assert_locked(mm);
  addr -= addr % PAGE_SIZE;
  for (let tries = 0; tries < MAKE_DEVICE_EXCLUSIVE_TRIES; tries++) {
    const pages: page[] = [];
    const got = yield* get_user_pages_remote(mm, addr, 1, FOLL_WRITE | FOLL_SPLIT_PMD, pages);
    if (got < 0) return { ret: got, page: null };
    if (got === 0) return { ret: -EFAULT, page: null };
    const p = pages[0];
    const f = p.compound_head;
    /* only small or THP anonymous folios: a hugetlb page cannot be mapped by a PTE (no retry helps) */
    if (!folio_test_anon(f) || folio_test_hugetlb(f)) { put_page(f); return { ret: -EOPNOTSUPP, page: null }; }
    yield* folio_lock(f);

    const range = mmu_notifier_range_init_owner(MMU_NOTIFY_EXCLUSIVE, MMU_NOTIFIER_RANGE_BLOCKABLE, mm,
      addr, addr + PAGE_SIZE, owner);
    yield* mmu_notifier_invalidate_range_start(range);
    const done = exclusive_swap(mm, addr, p);
    yield* mmu_notifier_invalidate_range_end(range);
    if (done) {
      count_event('make_device_exclusive');
      trace_event('make_device_exclusive', { mm: mm.id, addr, pfn: p.pfn });
      return { ret: 0, page: p };
    }
    folio_unlock(f);
    put_page(f);
    /* a huge PMD maps it: split it so the second walk finds a PTE (FOLL_SPLIT_PMD) */
    const vma = vma_lookup(mm, addr);
    if (vma !== null) yield* split_huge_pmd_address(vma, addr);
    count_event('make_device_exclusive_retry');
  }
  return { ret: -EBUSY, page: null };
}
