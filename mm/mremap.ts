/*
 * mm/mremap.ts - mremap(): grow, shrink or move a mapping with its pages.
 *
 * Models mm/mremap.c (Linux 6.x): the syscall checks, shrinking in place
 * (an munmap of the tail), growing in place when the space after the VMA
 * is free, and otherwise (MREMAP_MAYMOVE) move_vma(): copy_vma() makes the
 * VMA at the new place, move_page_tables() carries every page-table entry
 * over, and the old range is unmapped (or, with MREMAP_DONTUNMAP, left
 * mapped and empty). MREMAP_FIXED names the new place (whatever is there
 * is unmapped first).
 *
 * Entries move as they are: present PTEs, the zero page, swap entries,
 * migration, device-private, device-exclusive and hwpoison entries. A
 * page's rmap needs no update: the new VMA's vm_pgoff is the old one's at
 * the moved address, so page->index still gives the page's address. A
 * huge PMD (present, or a THP migration or device-private entry) moves
 * whole when both places are 2 MiB aligned and the move covers it
 * (move_huge_pmd); otherwise it is split first and its PTEs move. Secondary MMUs see MMU_NOTIFY_UNMAP over the old range for the
 * move (and MMU_NOTIFY_CLEAR for any split inside it); the new range was
 * empty, so nothing there needs invalidating.
 *
 * hugetlb VMAs move their huge leaves (move_hugetlb_page_tables, inside
 * MMU_NOTIFY_CLEAR as in Linux), must be huge-page aligned and cannot grow.
 *
 * Simplified: no rlimits (RLIMIT_AS, mlock), no userfaultfd events, no
 * mseal, and the whole PTE table is not moved as a unit (move_normal_pmd);
 * entries move one by one.
 */
import type { vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import type { file } from '../include/linux/sched.js';
import {
  PAGE_SIZE, PAGE_ALIGN, VM_SHARED, VM_MAYSHARE, VM_DONTEXPAND, VM_PFNMAP, VM_HUGETLB, VM_PEER_SHARED, vma_is_anonymous,
} from '../include/linux/mm.js';
import { pmd_is_table, pte_none } from '../include/linux/pgtable.js';
import { pmd_is_huge } from '../include/linux/swapops.js';
import { HPAGE_PMD_SIZE } from '../include/linux/huge_mm.js';
import { huge_page_size } from '../include/linux/hugetlb.js';
import { MMU_NOTIFY_UNMAP, MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE } from '../include/linux/mmu_notifier.js';
import { MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP, MAP_SHARED } from '../include/uapi/asm-generic/mman.js';
import { EINVAL, EFAULT, ENOMEM } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import {
  pmd_off, pmd_alloc, pte_offset_map, pte_alloc_map, pte_lockptr, ptep_get, ptep_get_and_clear, set_pte_at,
  flush_tlb_range,
} from './pgtable.js';
import { mmap_write_lock, mmap_write_unlock } from './mmap_lock.js';
import { vma_lookup, find_vma_intersection, vma_link, vm_area_dup, vma_merge } from './vma.js';
import { anon_vma_clone, unlink_anon_vmas } from './rmap.js';
import { do_munmap, mm_get_unmapped_area } from './mmap.js';
import { flush_delayed_fput } from './file.js';
import { __split_huge_pmd } from './huge_memory.js';
import { move_huge_pmd } from './huge_memory_pmd.js';
import { hstate_vma, move_hugetlb_page_tables, clear_vma_resv_huge_pages } from './hugetlb.js';
import {
  mmu_notifier_range_init, mmu_notifier_invalidate_range_start, mmu_notifier_invalidate_range_end,
} from './mmu_notifier.js';

/*
 * move_ptes() - move the PTEs of [old_addr, old_end) (inside one PTE
 * page) to new_addr. Return: bytes moved, less on -ENOMEM for a new table.
 */
function move_ptes(vma: vm_area_struct, old_addr: number, old_end: number, new_addr: number): number {
  const mm = vma.vm_mm;
  let moved = 0;
  const old_ptep = pte_offset_map(mm, old_addr);
  if (old_ptep < 0) return old_end - old_addr;
  for (let a = old_addr; a < old_end; a += PAGE_SIZE, moved += PAGE_SIZE) {
    const op = old_ptep + (a - old_addr) / PAGE_SIZE;
    if (pte_none(ptep_get(mm, op))) continue;
    const np = pte_alloc_map(mm, new_addr + moved);
    if (np < 0) return moved;
    const optl = pte_lockptr(mm, op), nptl = pte_lockptr(mm, np);
    spin_lock(optl);
    if (nptl !== optl) spin_lock(nptl);
    const pte = ptep_get_and_clear(mm, a, op);
    set_pte_at(mm, new_addr + moved, np, pte);     /* move_pte(): present, swap and special entries alike */
    if (nptl !== optl) spin_unlock(nptl);
    spin_unlock(optl);
  }
  flush_tlb_range(vma, old_addr, old_end);
  return moved;
}

/* the PMD slot for new_addr, free for a huge leaf: an empty PTE page there is pruned first */
function get_new_huge_pmd(mm: mm_struct, new_addr: number): number {
  let pmdp = pmd_alloc(mm, new_addr);
  if (pmdp >= 0 && pmd_is_table(mm.pgd.load(pmdp))) {
    mm.pgd.prune(new_addr, new_addr + HPAGE_PMD_SIZE);
    pmdp = pmd_alloc(mm, new_addr);
  }
  return pmdp >= 0 && mm.pgd.load(pmdp) === 0 ? pmdp : -1;
}

/**
 * move_page_tables() - move every entry of [old_addr, old_addr + len) of
 * vma to new_addr (of new_vma, same mm), inside one MMU_NOTIFY_UNMAP of
 * the old range. A huge PMD moves whole when the 2 MiB extent is aligned
 * on both sides, else it is split (MMU_NOTIFY_CLEAR) and its PTEs move.
 * Context: mmap_lock held for write; may sleep.
 * Return: bytes moved (less than len only when a page-table page could
 * not be allocated).
 */
export function* move_page_tables(vma: vm_area_struct, old_addr: number, _new_vma: vm_area_struct, new_addr: number,
                                  len: number): Sleepable<number> {
  const mm = vma.vm_mm;
  if (vma.vm_flags & VM_HUGETLB) {
    const range = mmu_notifier_range_init(MMU_NOTIFY_CLEAR, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, old_addr, old_addr + len);
    yield* mmu_notifier_invalidate_range_start(range);
    const moved = move_hugetlb_page_tables(vma, old_addr, new_addr, len);
    yield* mmu_notifier_invalidate_range_end(range);
    return moved < 0 ? 0 : moved;
  }
  const old_end = old_addr + len;
  const range = mmu_notifier_range_init(MMU_NOTIFY_UNMAP, MMU_NOTIFIER_RANGE_BLOCKABLE, mm, old_addr, old_end);
  yield* mmu_notifier_invalidate_range_start(range);
  let done = 0;
  while (done < len) {
    const o = old_addr + done, n = new_addr + done;
    /* get_extent(): up to the next PMD boundary of either side */
    const extent = Math.min(HPAGE_PMD_SIZE - (o % HPAGE_PMD_SIZE), HPAGE_PMD_SIZE - (n % HPAGE_PMD_SIZE), len - done);
    const old_pmdp = pmd_off(mm, o);
    const pmd = old_pmdp < 0 ? 0 : mm.pgd.load(old_pmdp);
    if (pmd === 0) { done += extent; continue; }
    if (pmd_is_huge(pmd)) {
      const new_pmdp = extent === HPAGE_PMD_SIZE ? get_new_huge_pmd(mm, n) : -1;
      if (new_pmdp >= 0 && move_huge_pmd(vma, o, n, old_pmdp, new_pmdp)) { done += extent; continue; }
      yield* __split_huge_pmd(vma, old_pmdp, o);
    }
    const moved = move_ptes(vma, o, o + extent, n);
    done += moved;
    if (moved < extent) break;
  }
  yield* mmu_notifier_invalidate_range_end(range);
  count_event('mremap_moved_bytes', done);
  return done;
}

/*
 * copy_vma() - the VMA for [addr, addr + len) at page offset pgoff that
 * takes over a part of vma: same flags, file, ops and anon_vma.
 */
function copy_vma(vma: vm_area_struct, addr: number, len: number, pgoff: number): vm_area_struct {
  const mm = vma.vm_mm;
  /* an anonymous VMA never faulted has no pages whose index must stay valid */
  if (vma_is_anonymous(vma) && vma.anon_vma === null) pgoff = addr / PAGE_SIZE;
  const nv = vm_area_dup(vma);
  nv.vm_start = addr;
  nv.vm_end = addr + len;
  nv.vm_pgoff = pgoff;
  anon_vma_clone(nv, vma);
  nv.vm_ops?.open?.(nv);
  vma_link(mm, nv);
  mm.total_vm += len / PAGE_SIZE;
  return nv;
}

/*
 * move_vma() - move [old_addr, old_addr + old_len) of vma to
 * [new_addr, new_addr + new_len): new VMA, entries, then the old range
 * goes (or stays, empty, with MREMAP_DONTUNMAP).
 * Return: new_addr, or -ENOMEM (nothing moved: the entries went back).
 */
function* move_vma(vma: vm_area_struct, old_addr: number, old_len: number, new_len: number, new_addr: number,
                   flags: number): Sleepable<number> {
  const mm = vma.vm_mm;
  const new_pgoff = vma.vm_pgoff + (old_addr - vma.vm_start) / PAGE_SIZE;
  const new_vma = copy_vma(vma, new_addr, new_len, new_pgoff);
  const moved = yield* move_page_tables(vma, old_addr, new_vma, new_addr, old_len);
  if (moved < old_len) {
    /* put back what moved, and unmap the new area instead of the old one */
    yield* move_page_tables(new_vma, new_addr, vma, old_addr, moved);
    yield* do_munmap(mm, new_addr, new_len);
    return -ENOMEM;
  }
  if (vma.vm_flags & VM_HUGETLB) clear_vma_resv_huge_pages(vma);
  if (flags & MREMAP_DONTUNMAP) {
    /* the old range stays mapped, empty: it refaults fresh zero pages (or the file) */
    if (vma.vm_start === old_addr && vma.vm_end === old_addr + old_len) unlink_anon_vmas(vma);
  } else {
    yield* do_munmap(mm, old_addr, old_len);
  }
  vma_merge(mm, new_vma);
  trace_event('move_vma', { mm: mm.id, old_addr, new_addr, len: old_len });
  return new_addr;
}

/*
 * vma_to_resize() - the VMA at addr if [addr, addr + old_len) may become
 * new_len bytes. Return: the VMA, -EFAULT (no VMA, crosses its end, a VMA
 * that may not grow), -EINVAL.
 */
function vma_to_resize(mm: mm_struct, addr: number, old_len: number, new_len: number, flags: number): vm_area_struct | number {
  const vma = vma_lookup(mm, addr);
  if (vma === null) return -EFAULT;
  /* old_len 0 duplicates a shared mapping; for a private one it makes no sense */
  if (old_len === 0 && !(vma.vm_flags & (VM_SHARED | VM_MAYSHARE))) return -EINVAL;
  if ((flags & MREMAP_DONTUNMAP) && (vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP))) return -EINVAL;
  if (old_len > vma.vm_end - addr) return -EFAULT;
  if (new_len === old_len) return vma;
  if (vma.vm_flags & (VM_DONTEXPAND | VM_PFNMAP)) return -EFAULT;
  return vma;
}

/* mremap_to() - MREMAP_FIXED or MREMAP_DONTUNMAP: move to (or near) new_addr */
function* mremap_to(mm: mm_struct, addr: number, old_len: number, new_addr: number, new_len: number,
                    flags: number): Sleepable<number> {
  if (new_addr % PAGE_SIZE !== 0) return -EINVAL;
  if (new_len > mm.task_size || new_addr > mm.task_size - new_len) return -EINVAL;
  if (addr + old_len > new_addr && new_addr + new_len > addr) return -EINVAL;   /* overlap */
  if (flags & MREMAP_FIXED) {
    const ret = yield* do_munmap(mm, new_addr, new_len);
    if (ret < 0) return ret;
  }
  if (old_len > new_len) {
    const ret = yield* do_munmap(mm, addr + new_len, old_len - new_len);
    if (ret < 0) return ret;
    old_len = new_len;
  }
  const vma = vma_to_resize(mm, addr, old_len, new_len, flags);
  if (typeof vma === 'number') return vma;
  if (!(flags & MREMAP_FIXED)) {
    const a = mm_get_unmapped_area(mm, vma.vm_file as file | null, new_addr, new_len,
      vma.vm_pgoff + (addr - vma.vm_start) / PAGE_SIZE, vma.vm_flags & VM_MAYSHARE ? MAP_SHARED : 0);
    if (a < 0) return a;
    new_addr = a;
  }
  return yield* move_vma(vma, addr, old_len, new_len, new_addr, flags);
}

/* vma_expandable() - is [vm_end, vm_end + delta) free and inside the address space? */
function vma_expandable(vma: vm_area_struct, delta: number): boolean {
  const end = vma.vm_end + delta;
  return end <= vma.vm_mm.task_size && find_vma_intersection(vma.vm_mm, vma.vm_end, end) === null;
}

/*
 * mremap_locked() - the body of mremap(2) with mmap_lock held for write.
 */
function* mremap_locked(mm: mm_struct, addr: number, old_len: number, new_len: number, flags: number,
                        new_addr: number): Sleepable<number> {
  let vma = vma_lookup(mm, addr);
  if (vma === null) return -EFAULT;
  if (vma.vm_flags & VM_PEER_SHARED) return -EINVAL;     /* GMEM: the logical page table is by address */
  if (vma.vm_flags & VM_HUGETLB) {
    const size = huge_page_size(hstate_vma(vma));
    old_len = Math.ceil(old_len / size) * size;
    new_len = Math.ceil(new_len / size) * size;
    if (addr % size !== 0 || new_addr % size !== 0) return -EINVAL;
    if (new_len > old_len) return -EINVAL;       /* hugetlb reservations cannot grow in place */
  }
  if (flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) return yield* mremap_to(mm, addr, old_len, new_addr, new_len, flags);
  if (old_len >= new_len) {                      /* shrinking always works: unmap the tail */
    if (old_len === new_len) return addr;
    const ret = yield* do_munmap(mm, addr + new_len, old_len - new_len);
    return ret < 0 ? ret : addr;
  }
  const r = vma_to_resize(mm, addr, old_len, new_len, flags);
  if (typeof r === 'number') return r;
  vma = r;
  if (old_len === vma.vm_end - addr && vma_expandable(vma, new_len - old_len)) {
    mm.total_vm += (new_len - old_len) / PAGE_SIZE;
    vma.vm_end += new_len - old_len;             /* vma_expand(): grow in place */
    vma_merge(mm, vma);
    count_event('mremap_expand');
    return addr;
  }
  if (!(flags & MREMAP_MAYMOVE)) return -ENOMEM;
  const a = mm_get_unmapped_area(mm, vma.vm_file as file | null, 0, new_len,
    vma.vm_pgoff + (addr - vma.vm_start) / PAGE_SIZE, vma.vm_flags & VM_MAYSHARE ? MAP_SHARED : 0);
  if (a < 0) return a;
  return yield* move_vma(vma, addr, old_len, new_len, a, flags);
}

/**
 * do_mremap() - mremap(2).
 * @flags: MREMAP_MAYMOVE, MREMAP_FIXED (with MAYMOVE: new_addr is where
 *   the mapping goes), MREMAP_DONTUNMAP (with MAYMOVE and equal lengths:
 *   the old range stays mapped, empty).
 * Context: takes mmap_lock for write; may sleep.
 * Return: the (new) address; -EINVAL for bad flags, alignment, lengths,
 * overlapping FIXED ranges, hugetlb growth; -EFAULT when addr is not
 * mapped or the range crosses the VMA's end; -ENOMEM when the mapping
 * cannot grow in place and may not move, or no room is left.
 */
export function* do_mremap(mm: mm_struct, addr: number, old_len: number, new_len: number, flags: number,
                           new_addr: number): Sleepable<number> {
  if (flags & ~(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP)) return -EINVAL;
  if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)) return -EINVAL;
  if ((flags & MREMAP_DONTUNMAP) && (!(flags & MREMAP_MAYMOVE) || old_len !== new_len)) return -EINVAL;
  if (addr % PAGE_SIZE !== 0) return -EINVAL;
  old_len = PAGE_ALIGN(old_len);
  new_len = PAGE_ALIGN(new_len);
  if (new_len === 0) return -EINVAL;
  yield* mmap_write_lock(mm);
  const ret = yield* mremap_locked(mm, addr, old_len, new_len, flags, new_addr);
  mmap_write_unlock(mm);
  yield* flush_delayed_fput();
  trace_event('mremap', { mm: mm.id, addr, old_len, new_len, flags, ret });
  return ret;
}
