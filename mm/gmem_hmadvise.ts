/*
 * mm/gmem_hmadvise.ts - hmadvise(2) of the GMEM RFC (syscall 453; the RFC
 * puts it in mm/gmem.c): advice about GMEM memory naming a heterogeneous
 * NUMA node (hnode, a device's memory, gm_dev_register_physmem).
 *
 *   hmadvise(hnid, start, len, MADV_PREFETCH)  move [start, start + len)
 *       to the device of @hnid now (gm_dev_fault with
 *       GM_FAULT_HINT_MARK_HOT per page), before a kernel runs
 *   hmadvise(-1 or hnid, start, len, MADV_DONTNEED)  drop the pages of the
 *       peer-shared VMAs in the range wherever they live (CPU: zap;
 *       device: peer_unmap without copy); other VMAs are skipped
 *
 * Errors as the RFC's SYSCALL_DEFINE4(hmadvise): -EINVAL for hnid -1 with
 * any advice but MADV_DONTNEED, for a negative hnid, an hnid that is not a
 * device node or not attached to this process, an unknown advice, and a
 * range whose end overflows (check_add_overflow, as openEuler's later
 * version checks it for both advices; simplified: a start or length that
 * is negative or 2^53 or more is refused too, where C would read it as a
 * huge unsigned value that overflows for any start but 0); -EFAULT when
 * a prefetched page could not be moved. An empty prefetch is 0 (openEuler;
 * the RFC's worker would loop). One deviation: the RFC returns
 * GM_RET_FAILURE_UNKNOWN (a positive 4) when the prefetch range is not
 * inside one peer-shared VMA; we return -EINVAL, since a positive value
 * would read as success. The RFC rounds
 * PREFETCH outwards and DONTNEED inwards to HPAGE_SIZE; we round to pages,
 * and prefetch page by page on the caller's thread (the RFC: 4 workers).
 */
import type { task_struct } from '../include/linux/sched.js';
import type { gm_as } from '../include/linux/gmem.js';
import { GM_RET_SUCCESS, GM_RET_PAGE_EXIST, GM_FAULT_HINT_MARK_HOT, GM_PAGE_DEVICE } from '../include/linux/gmem.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import { MADV_DONTNEED, MADV_PREFETCH } from '../include/uapi/asm-generic/mman.js';
import { EINVAL, EFAULT } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { charge } from '../lib/sim/clock.js';
import { SYSCALL_NS } from '../lib/sim/costs.js';
import { count_event } from '../lib/sim/trace.js';
import { find_vma, find_vma_intersection } from './vma.js';
import { mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import { zap_page_range_single } from './zap.js';
import { mutex_lock, mutex_unlock } from '../lib/locking/mutex.js';
import { gm_dev_fault, vma_is_peer_shared } from './gmem.js';
import { gm_hnode_dev, gm_peer_unmap_locked } from './gmem_phys.js';
import { gm_entry_flags, vm_object_lookup, type vm_object } from './vm_object.js';

/* start + len as unsigned long and size_t: false when it overflows (check_add_overflow) */
function hmadvise_range_ok(start: number, len: number): boolean {
  return Number.isSafeInteger(start) && Number.isSafeInteger(len) && start >= 0 && len >= 0 && Number.isSafeInteger(start + len);
}

/* MADV_PREFETCH: every page of [start, end) to @hnid's device */
function* hmadvise_do_prefetch(t: task_struct, hnid: number, start: number, len: number): Sleepable<number> {
  if (!hmadvise_range_ok(start, len)) return -EINVAL;
  const mm = t.mm!, dev = gm_hnode_dev(hnid)!;
  const s = start - (start % PAGE_SIZE), e = Math.ceil((start + len) / PAGE_SIZE) * PAGE_SIZE;
  if (s === e) return 0;
  yield* mmap_read_lock(mm);
  const vma = find_vma(mm, s);
  const inside = vma !== null && s >= vma.vm_start && e <= vma.vm_end && vma_is_peer_shared(vma);
  mmap_read_unlock(mm);
  if (!inside) return -EINVAL;
  let res = 0;
  for (let a = s; a < e; a += PAGE_SIZE) {
    const ret = yield* gm_dev_fault(mm, a, dev, GM_FAULT_HINT_MARK_HOT);
    if (ret === GM_RET_PAGE_EXIST) continue;
    if (ret !== GM_RET_SUCCESS) res = -EFAULT;
    else count_event('gmem_prefetch');
  }
  return res;
}

/* MADV_DONTNEED: drop the pages of the peer-shared VMAs in [start, start + len) */
function* hmadvise_do_eagerfree(t: task_struct, start: number, len: number): Sleepable<number> {
  if (!hmadvise_range_ok(start, len)) return -EINVAL;
  const mm = t.mm!;
  let s = Math.ceil(start / PAGE_SIZE) * PAGE_SIZE;
  const e = Math.floor((start + len) / PAGE_SIZE) * PAGE_SIZE;
  if (s >= e) return 0;
  const obj = mm.vm_obj as vm_object | null;
  yield* mmap_read_lock(mm);
  while (s < e) {
    const vma = find_vma_intersection(mm, s, e);
    if (vma === null) break;
    if (vma_is_peer_shared(vma) && obj !== null) {
      const i_s = Math.max(s, vma.vm_start), i_e = Math.min(e, vma.vm_end);
      yield* mutex_lock(obj.lock);
      for (let a = i_s; a < i_e; a += PAGE_SIZE) {
        const ent = vm_object_lookup(obj, a);
        if (gm_entry_flags(ent) === GM_PAGE_DEVICE) yield* gm_peer_unmap_locked(obj, a, ent, null);
      }
      mutex_unlock(obj.lock);
      yield* zap_page_range_single(vma, i_s, i_e - i_s);    /* the pages the CPU holds */
      count_event('gmem_dontneed_pages', (i_e - i_s) / PAGE_SIZE);
    }
    s = vma.vm_end;
  }
  mmap_read_unlock(mm);
  return 0;
}

/**
 * sys_hmadvise() - hmadvise(2) for task @t.
 * Return: 0 or -errno (see the file header).
 */
export function* sys_hmadvise(t: task_struct, hnid: number, start: number, len: number, behavior: number): Sleepable<number> {
  charge(SYSCALL_NS);
  if (hnid === -1) {
    if (behavior !== MADV_DONTNEED) return -EINVAL;
    return yield* hmadvise_do_eagerfree(t, start, len);
  }
  if (hnid < 0 || t.mm === null) return -EINVAL;
  const as = t.mm.gm_as as gm_as | null;
  if (gm_hnode_dev(hnid) === null || as === null || !as.hnodes_allowed.has(hnid)) return -EINVAL;
  switch (behavior) {
    case MADV_PREFETCH: return yield* hmadvise_do_prefetch(t, hnid, start, len);
    case MADV_DONTNEED: return yield* hmadvise_do_eagerfree(t, start, len);
    default: return -EINVAL;
  }
}
