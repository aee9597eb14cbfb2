/*
 * mm/madvise.ts - madvise(): advice about a range.
 *
 * Models mm/madvise.c for the advice this tree implements now:
 * MADV_DONTNEED (zap the range with MMU_NOTIFY_CLEAR: anonymous memory
 * reads back as zeroes), MADV_DONTFORK/MADV_DOFORK (VM_DONTCOPY),
 * MADV_HUGEPAGE/MADV_NOHUGEPAGE (VM_HUGEPAGE/VM_NOHUGEPAGE, used by THP),
 * MADV_NORMAL/RANDOM/SEQUENTIAL/WILLNEED (accepted; no readahead to
 * steer). MADV_FREE and MADV_PAGEOUT are mm/madvise_free.ts, MADV_COLLAPSE
 * is mm/khugepaged.ts; an unknown advice is -EINVAL.
 */
import type { vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, PAGE_ALIGN, VM_LOCKED, VM_PFNMAP, VM_HUGETLB, VM_DONTCOPY, VM_IO, VM_HUGEPAGE, VM_NOHUGEPAGE,
  VM_SEQ_READ, VM_RAND_READ, VM_SPECIAL,
} from '../include/linux/mm.js';
import {
  MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED, MADV_DONTFORK, MADV_DOFORK,
  MADV_HUGEPAGE, MADV_NOHUGEPAGE,
} from '../include/uapi/asm-generic/mman.js';
import { EINVAL, ENOMEM, EAGAIN } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock } from './mmap_lock.js';
import { find_vma, split_vma, vma_merge } from './vma.js';
import { zap_page_range_single } from './zap.js';
import { vma_adjust_trans_huge } from './huge_memory.js';
import { madvise_free_single_vma, madvise_pageout } from './madvise_free.js';
import { madvise_collapse } from './khugepaged.js';
import { MADV_FREE, MADV_PAGEOUT, MADV_COLLAPSE } from '../include/uapi/asm-generic/mman.js';

/* MADV_FREE and MADV_PAGEOUT are mm/madvise_free.ts, MADV_COLLAPSE mm/khugepaged.ts */
function madvise_need_mmap_write(behavior: number): boolean {
  switch (behavior) {
    case MADV_DONTNEED: case MADV_WILLNEED: case MADV_FREE: case MADV_PAGEOUT:
      return false;
    default:
      return true;
  }
}

function madvise_behavior_valid(behavior: number): boolean {
  switch (behavior) {
    case MADV_NORMAL: case MADV_RANDOM: case MADV_SEQUENTIAL: case MADV_WILLNEED: case MADV_DONTNEED:
    case MADV_DONTFORK: case MADV_DOFORK: case MADV_HUGEPAGE: case MADV_NOHUGEPAGE:
    case MADV_FREE: case MADV_PAGEOUT: case MADV_COLLAPSE:
      return true;
    default:
      return false;
  }
}

/* Change VMA flags for [start, end) of vma (split, set, merge). */
function madvise_update_vma(mm: mm_struct, vma: vm_area_struct, start: number, end: number, flags: number): number {
  if (flags === vma.vm_flags) return 0;
  if (start > vma.vm_start && split_vma(mm, vma, start, true) < 0) return -ENOMEM;
  if (end < vma.vm_end && split_vma(mm, vma, end, false) < 0) return -ENOMEM;
  vma.vm_flags = flags;
  vma_merge(mm, vma);
  return 0;
}

function* madvise_vma_behavior(mm: mm_struct, vma: vm_area_struct, start: number, end: number,
                               behavior: number): Sleepable<number> {
  let flags = vma.vm_flags;
  switch (behavior) {
    case MADV_DONTNEED:
      if (vma.vm_flags & (VM_LOCKED | VM_PFNMAP | VM_HUGETLB)) return -EINVAL;
      yield* zap_page_range_single(vma, start, end - start);
      return 0;
    case MADV_WILLNEED:
      return 0;
    case MADV_NORMAL: flags &= ~(VM_SEQ_READ | VM_RAND_READ); break;
    case MADV_RANDOM: flags = (flags & ~VM_SEQ_READ) | VM_RAND_READ; break;
    case MADV_SEQUENTIAL: flags = (flags & ~VM_RAND_READ) | VM_SEQ_READ; break;
    case MADV_DONTFORK: flags |= VM_DONTCOPY; break;
    case MADV_DOFORK:
      if (vma.vm_flags & VM_IO) return -EINVAL;
      flags &= ~VM_DONTCOPY;
      break;
    case MADV_HUGEPAGE:
      if (vma.vm_flags & VM_SPECIAL) return -EINVAL;
      flags = (flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE;
      break;
    case MADV_NOHUGEPAGE: flags = (flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE; break;
    case MADV_FREE: return yield* madvise_free_single_vma(vma, start, end);
    case MADV_PAGEOUT: return yield* madvise_pageout(vma, start, end);
    case MADV_COLLAPSE: return yield* madvise_collapse(vma, start, end);
    default: return -EINVAL;
  }
  if (flags !== vma.vm_flags) yield* vma_adjust_trans_huge(vma, start, end);   /* no huge PMD across the new edges */
  return madvise_update_vma(mm, vma, start, end, flags);
}

/**
 * do_madvise() - madvise(2).
 * Return: 0; -EINVAL for a misaligned start, a wrapping range or unknown
 * advice; -ENOMEM when part of the range is unmapped (the advice is
 * still applied to the mapped parts, as Linux does); -EAGAIN is not
 * produced in this model.
 */
export function* do_madvise(mm: mm_struct, start: number, len_in: number, behavior: number): Sleepable<number> {
  if (!madvise_behavior_valid(behavior)) return -EINVAL;
  if (start % PAGE_SIZE !== 0) return -EINVAL;
  const len = PAGE_ALIGN(len_in);
  if (len_in !== 0 && len === 0) return -EINVAL;
  const end = start + len;
  if (end < start) return -EINVAL;
  if (end === start) return 0;
  const write = madvise_need_mmap_write(behavior);
  if (write) yield* mmap_write_lock(mm); else yield* mmap_read_lock(mm);
  let unmapped_error = 0, error = 0;
  let addr = start;
  while (addr < end) {
    const vma = find_vma(mm, addr);
    if (vma === null) { unmapped_error = -ENOMEM; break; }
    if (vma.vm_start > addr) { unmapped_error = -ENOMEM; addr = vma.vm_start; if (addr >= end) break; }
    const tmp = Math.min(vma.vm_end, end);
    error = yield* madvise_vma_behavior(mm, vma, addr, tmp, behavior);
    if (error) break;
    addr = tmp;
  }
  if (write) mmap_write_unlock(mm); else mmap_read_unlock(mm);
  return error || unmapped_error;
}

export { EAGAIN };
