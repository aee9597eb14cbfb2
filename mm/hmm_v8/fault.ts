/*
 * mm/hmm_v8/fault.ts - HMM v8 patches 08 and 19: hmm_mirror_fault(), the
 * device page fault.
 *
 *   [PATCH 08/36] HMM: add device page fault support v3
 *   [PATCH 19/36] HMM: handle HMM device page table entry on mirror page table fault and update
 *
 * A driver whose device missed in its own MMU fills an hmm_event (start,
 * end, etype HMM_DEVICE_RFAULT / HMM_DEVICE_WFAULT, or HMM_COPY_TO_DEVICE
 * for a migration, mm/hmm_v8/migrate.ts) and calls hmm_mirror_fault()
 * without holding any mm lock. The loop (Documentation/vm/hmm.txt, "device
 * fault"):
 *
 *   retry: mirror dead? -ENODEV
 *     mmap_read_lock; the VMA must cover event.start (-EFAULT), end is
 *     clipped to it; VM_IO / VM_PFNMAP / VM_MIXEDMAP / VM_HUGETLB and VMAs
 *     without VM_READ are refused (-EFAULT; the VM_READ test is the
 *     "Fix PROT_NONE case" of v11); a write fault needs VM_WRITE first
 *     (-EACCES, also on a PROT_NONE VMA)
 *     hmm_device_fault_start()   (wait out invalidations, register)
 *     walk the CPU table, filling SELECTed pfn entries in the mirror;
 *       a missing or too weak CPU PTE stops the walk: -ENOENT
 *     backoff? -EAGAIN;  DMA-map the selected entries if the device has a dev
 *     backoff? -EAGAIN;  device->ops->update(mirror, event)
 *     hmm_device_fault_end()
 *     -ENOENT: handle_mm_fault() every page from the miss to the end; success
 *       becomes -EAGAIN
 *     mmap_read_unlock; -EAGAIN: goto retry
 *
 * The guarantee this buys (section 1.7 of the design notes): any
 * invalidation that makes a page exposed by this fault's update() stale
 * calls update() after this one returned. Device entries (VALID_DEV, patch
 * 19) are kept as they are; a write fault only adds WRITE to them.
 */
import type { vm_area_struct } from '../../include/linux/mm_types.js';
import {
  PAGE_SIZE, PMD_SIZE, VM_IO, VM_PFNMAP, VM_MIXEDMAP, VM_HUGETLB, VM_READ, VM_WRITE, FAULT_FLAG_WRITE,
  FAULT_FLAG_REMOTE, FAULT_FLAG_ALLOW_RETRY, VM_FAULT_OOM, VM_FAULT_RETRY, VM_FAULT_ERROR,
} from '../../include/linux/mm.js';
import {
  pte_present, pte_protnone, pte_write, pte_pfn, pmd_trans_huge, pmd_write, pmd_pfn,
} from '../../include/linux/pgtable.js';
import {
  HMM_DEVICE_RFAULT, HMM_DEVICE_WFAULT, HMM_COPY_TO_DEVICE, HMM_PTE_SELECT, HMM_PTE_WRITE, HMM_PTE_DIRTY,
  hmm_etype_names, hmm_pte_test_valid_dev, hmm_pte_test_valid_dma, hmm_pte_test_valid_pfn, hmm_pte_set,
  hmm_pte_from_pfn, hmm_pte_pfn, type hmm_event, type hmm_mirror,
} from '../../include/linux/hmm_v8.js';
import { EFAULT, EACCES, EAGAIN, EINVAL, ENODEV, ENOENT, ENOMEM, EBUSY } from '../../include/uapi/asm-generic/errno.js';
import { cond_resched, type Sleepable } from '../../lib/sim/sched.js';
import { spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { wake_up_all } from '../../lib/locking/wait.js';
import { count_event, trace_event } from '../../lib/sim/trace.js';
import { mmap_read_lock, mmap_read_unlock } from '../mmap_lock.js';
import { find_vma } from '../vma.js';
import { handle_mm_fault } from '../memory.js';
import { pte_offset_map, pte_lockptr, ptep_get } from '../pgtable.js';
import { walk_page_range, PGWALK_RDLOCK, type mm_walk, type mm_walk_ops } from '../pagewalk.js';
import {
  hmm_mirror_ref, hmm_mirror_unref, hmm_mirror_is_dead, hmm_event_init, hmm_device_fault_start,
  hmm_device_fault_end, mirror_hmm, mirror_pt, type hmm,
} from './hmm.js';
import {
  hmm_pt_iter_init, hmm_pt_iter_fini, hmm_pt_iter_fault, hmm_pt_directory_lock, hmm_pt_directory_unlock,
  hmm_pt_load, hmm_pt_store, type hmm_pt, type hmm_pt_iter,
} from './hmm_pt.js';
import { hmm_mirror_dma_map } from './dma.js';
import { hmm_mirror_migrate } from './migrate.js';

/** Per-fault walk state (struct hmm_mirror_fault in the patch). */
interface hmm_mirror_fault_ctx {
  mirror: hmm_mirror;
  pt: hmm_pt;
  iter: hmm_pt_iter;
  event: hmm_event;
  write: boolean;
  /* progress: the first address not yet filled (where -ENOENT stopped) */
  addr: number;
}

/*
 * Fill one mirror entry from a CPU mapping of @pfn. A device entry only
 * gains WRITE; a DMA entry (same page: a replaced page would have been
 * invalidated) is kept. Called with the mirror directory lock held.
 */
function fault_fill(c: hmm_mirror_fault_ctx, hptr: number, pfn: number, cpu_write: boolean): void {
  const old = hmm_pt_load(c.pt, hptr);
  let n: number;
  if (hmm_pte_test_valid_dma(old)) n = old;
  else if (hmm_pte_test_valid_pfn(old) && hmm_pte_pfn(old) === pfn) n = old;
  else n = hmm_pte_from_pfn(pfn) + (old & HMM_PTE_DIRTY);
  n = hmm_pte_set(n, HMM_PTE_SELECT | (cpu_write ? HMM_PTE_WRITE : 0));
  if (n !== old) hmm_pt_store(c.pt, hptr, n);
}

/* Device entries of this mirror need no CPU page; a write fault adds WRITE. */
function fault_dev(c: hmm_mirror_fault_ctx, hptr: number, vma: vm_area_struct): boolean {
  const old = hmm_pt_load(c.pt, hptr);
  if (!hmm_pte_test_valid_dev(old)) return false;
  const bits = HMM_PTE_SELECT | (c.write && (vma.vm_flags & VM_WRITE) ? HMM_PTE_WRITE : 0);
  const n = hmm_pte_set(old, bits);
  if (n !== old) hmm_pt_store(c.pt, hptr, n);
  return true;
}

/*
 * hmm_mirror_fault_hole() - pte_hole: the CPU maps nothing at addr: stop
 * the walk there so the caller faults it in.
 * Return: -ENOENT (c.addr says where), -EAGAIN (backoff).
 */
function* hmm_mirror_fault_hole(addr: number, _next: number, _depth: number,
                                walk: mm_walk<hmm_mirror_fault_ctx>): Sleepable<number> {
  const c = walk.private;
  yield* cond_resched();                 /* a walk is long: invalidations may start meanwhile */
  if (c.event.backoff) return -EAGAIN;
  c.addr = addr;
  return -ENOENT;
}

/*
 * hmm_mirror_fault_pmd() - pmd_entry: fill [addr, next), one PMD's worth.
 * Return: 0, -ENOENT (c.addr says where), -EAGAIN (backoff), -ENOMEM.
 */
function* hmm_mirror_fault_pmd(pmdp: number, addr: number, next: number,
                               walk: mm_walk<hmm_mirror_fault_ctx>): Sleepable<number> {
  const c = walk.private, vma = walk.vma!, mm = walk.mm;
  yield* cond_resched();
  if (c.event.backoff) return -EAGAIN;
  const pmd = mm.pgd.load(pmdp);
  const hptr0 = hmm_pt_iter_fault(c.iter, addr);
  if (hptr0 < 0) return -ENOMEM;
  if (pmd_trans_huge(pmd)) {                         /* hmm_mirror_fault_hpmd: mirror the THP as 512 entries */
    if (c.write && !pmd_write(pmd)) { c.addr = addr; return -ENOENT; }
    const base = pmd_pfn(pmd);
    hmm_pt_directory_lock(c.pt, hptr0);
    for (let a = addr, h = hptr0; a < next; a += PAGE_SIZE, h++) {
      if (!fault_dev(c, h, vma)) fault_fill(c, h, base + Math.floor((a % PMD_SIZE) / PAGE_SIZE), pmd_write(pmd));
    }
    hmm_pt_directory_unlock(c.pt, hptr0);
    c.addr = next;
    return 0;
  }
  const ptep0 = pte_offset_map(mm, addr);
  if (ptep0 < 0) { c.addr = addr; return -ENOENT; }
  const ptl = pte_lockptr(mm, ptep0);
  spin_lock(ptl);
  hmm_pt_directory_lock(c.pt, hptr0);
  let ret = 0;
  let a = addr;
  for (let p = ptep0, h = hptr0; a < next; a += PAGE_SIZE, p++, h++) {
    if (fault_dev(c, h, vma)) continue;
    const pte = ptep_get(mm, p);
    if (!pte_present(pte) || pte_protnone(pte) || (c.write && !pte_write(pte))) { ret = -ENOENT; break; }
    fault_fill(c, h, pte_pfn(pte), pte_write(pte));
  }
  hmm_pt_directory_unlock(c.pt, hptr0);
  spin_unlock(ptl);
  c.addr = a;
  return ret;
}

const hmm_mirror_fault_walk_ops: mm_walk_ops<hmm_mirror_fault_ctx> = Object.freeze({
  pmd_entry: hmm_mirror_fault_pmd,
  pte_hole: hmm_mirror_fault_hole,
  walk_lock: PGWALK_RDLOCK,
});

/* Walk [c.addr, event.end) of the CPU table. Return: 0, -ENOENT, -EAGAIN (backoff), -ENOMEM. */
function* hmm_mirror_fault_walk(c: hmm_mirror_fault_ctx, vma: vm_area_struct): Sleepable<number> {
  if (c.addr < c.event.end) {
    const ret = yield* walk_page_range(vma.vm_mm, c.addr, c.event.end, hmm_mirror_fault_walk_ops, c);
    if (ret) return ret;
  }
  yield* cond_resched();
  return 0;
}

/*
 * hmm_mm_fault() - the CPU side did not have what the device needs:
 * handle_mm_fault() every page of [addr, end) (with FAULT_FLAG_WRITE for a
 * write fault), then let the device fault start over.
 * Return: -EAGAIN on success, -ENOMEM, -EFAULT, -EBUSY (mmap_lock dropped).
 */
function* hmm_mm_fault(vma: vm_area_struct, event: hmm_event, addr: number): Sleepable<number> {
  const flags = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_REMOTE |
    (event.etype === HMM_DEVICE_WFAULT ? FAULT_FLAG_WRITE : 0);
  count_event('hmm_v8_mm_fault');
  for (; addr < event.end; addr += PAGE_SIZE) {
    const r = yield* handle_mm_fault(vma, addr, flags);
    if (r & VM_FAULT_OOM) return -ENOMEM;
    if (r & VM_FAULT_RETRY) return -EBUSY;
    if (r & VM_FAULT_ERROR) return -EFAULT;
  }
  return -EAGAIN;
}

/*
 * hmm_mirror_handle_fault() - a device read or write fault with mmap_lock
 * held for read and the VMA checked.
 */
function* hmm_mirror_handle_fault(h: hmm, mirror: hmm_mirror, event: hmm_event, vma: vm_area_struct): Sleepable<number> {
  const write = event.etype === HMM_DEVICE_WFAULT;
  if (write && !(vma.vm_flags & VM_WRITE)) return -EACCES;
  if (!(vma.vm_flags & VM_READ)) return -EFAULT;
  let ret = yield* hmm_device_fault_start(h, event);
  if (ret) return ret;
  const pt = mirror_pt(mirror);
  const c: hmm_mirror_fault_ctx = { mirror, pt, iter: hmm_pt_iter_init(pt), event, write, addr: event.start };
  ret = yield* hmm_mirror_fault_walk(c, vma);
  if (!ret && event.backoff) ret = -EAGAIN;
  if (!ret && mirror.device.dev !== null) ret = yield* hmm_mirror_dma_map(mirror, c.iter, event.start, event.end);
  if (!ret && event.backoff) ret = -EAGAIN;
  if (!ret) {
    ret = yield* mirror.device.ops.update(mirror, event);
    count_event('hmm_v8_fault_update');
  }
  hmm_device_fault_end(h, event);
  hmm_pt_iter_fini(c.iter);
  if (ret === -ENOENT && c.addr < event.end) ret = yield* hmm_mm_fault(vma, event, c.addr);
  return ret;
}

/* One attempt with mmap_lock held for read. */
function* hmm_mirror_fault_locked(h: hmm, mirror: hmm_mirror, event: hmm_event): Sleepable<number> {
  const vma = find_vma(h.mm, event.start);
  if (vma === null || vma.vm_start > event.start) return -EFAULT;
  if (event.end > vma.vm_end) event.end = vma.vm_end;
  if (vma.vm_flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP | VM_HUGETLB)) return -EFAULT;
  if (event.etype !== HMM_DEVICE_WFAULT && !(vma.vm_flags & VM_READ)) return -EFAULT;
  switch (event.etype) {
    case HMM_DEVICE_RFAULT: case HMM_DEVICE_WFAULT:
      return yield* hmm_mirror_handle_fault(h, mirror, event, vma);
    case HMM_COPY_TO_DEVICE:
      return yield* hmm_mirror_migrate(h, mirror, event, vma);
    default:
      return -EINVAL;
  }
}

/**
 * hmm_mirror_fault() - resolve a device fault (or a migration request) on
 * [event.start, event.end) of @mirror's mm.
 * @event: start, end and etype set by the driver; hmm_event_init() aligns
 *   it, and the end may shrink to the first VMA.
 * Context: may sleep; no mm lock held; must not hold a lock the driver's
 * update() takes.
 * Return: 0; -ENODEV (mirror dead); -EINVAL (start beyond vm_end, empty
 * range, bad etype, migration refused); -EFAULT (no VMA, VM_IO/PFNMAP/
 * MIXEDMAP/HUGETLB, no VM_READ, the CPU fault failed); -EACCES (write to a
 * VMA without VM_WRITE); -ENOMEM; -EBUSY (mmap_lock was dropped: call
 * again); the driver's update() error.
 */
export function* hmm_mirror_fault(mirror: hmm_mirror, event: hmm_event): Sleepable<number> {
  if (hmm_mirror_ref(mirror) === null) return -ENODEV;
  const h = mirror_hmm(mirror);
  if (h === null) { yield* hmm_mirror_unref(mirror); return -ENODEV; }
  if (event.start >= h.vm_end) { yield* hmm_mirror_unref(mirror); return -EINVAL; }
  hmm_event_init(event, h, event.start, event.end, event.etype);
  if (event.start >= event.end) { yield* hmm_mirror_unref(mirror); return -EINVAL; }
  count_event(event.etype === HMM_COPY_TO_DEVICE ? 'hmm_v8_migrate_request' : 'hmm_v8_mirror_fault');
  trace_event('hmm_mirror_fault', { mm: h.mm.id, start: event.start, end: event.end, etype: hmm_etype_names[event.etype] });
  let ret: number;
  for (;;) {
    if (hmm_mirror_is_dead(mirror)) { ret = -ENODEV; break; }
    yield* mmap_read_lock(h.mm);
    ret = yield* hmm_mirror_fault_locked(h, mirror, event);
    mmap_read_unlock(h.mm);
    wake_up_all(h.wait_queue);
    if (ret !== -EAGAIN) break;
    count_event('hmm_v8_fault_retry');
    yield* cond_resched();
  }
  yield* hmm_mirror_unref(mirror);
  return ret;
}
