/*
 * lib/test_hmm.ts - the HMM test driver ("dmirror"): a pretend device that
 * mirrors the address space of the process that opened it, for the HMM
 * self-tests (tools/testing/selftests/mm/hmm-tests.ts).
 *
 * Follows lib/test_hmm.c of Linux (the version with device-coherent
 * memory, FLAGS/FAIL_ALLOC and PMD-sized device folios). This file is the
 * front door: the devices, open/release/mmap, the ioctl dispatcher with
 * its checks, the device page table kept coherent by an interval notifier,
 * device faults through hmm_range_fault() (READ, WRITE), SNAPSHOT and
 * device-exclusive access. Device memory lives in lib/test_hmm_devmem.ts,
 * the migrations in lib/test_hmm_migrate.ts; the ABI is
 * include/uapi/linux/test_hmm.ts and the walk-through
 * Documentation/vm/hmm.txt, Part 7.
 *
 * The devices, created at every boot (module_init):
 *
 *   /dev/hmm_dmirror0, /dev/hmm_dmirror1   device-private memory
 *   /dev/hmm_dmirror2, /dev/hmm_dmirror3   device-coherent memory (the
 *                                          simulated machine provides it)
 *
 * Each open file is a struct dmirror bound to the opener's mm by an
 * mmu_interval_notifier over the whole address space. Its device page
 * table maps virtual pages to the pages holding their data; it holds no
 * page references and relies on the notifier to drop entries before a
 * page can go stale. The retry protocol (mmu_interval_read_begin /
 * hmm_range_fault / lock / mmu_interval_read_retry / publish) is in
 * dmirror_range_fault() and is the pattern every HMM driver follows.
 *
 * Lock order: mmap_lock -> dmirror.mutex (never the other way: the mutex
 * is taken inside notifier callbacks, which run under mmap_lock).
 *
 * Simulated time: the 1000 ms budget of dmirror_range_fault() is measured
 * on the running thread's clock (lib/sim/clock.ts); device accesses to a
 * page are charged at PCIe bandwidth (lib/sim/costs.ts).
 */
import type { page, vm_area_struct } from '../include/linux/mm_types.js';
import type { file, file_operations, inode } from '../include/linux/sched.js';
import { PAGE_SIZE, PMD_SHIFT, PUD_SHIFT, PAGE_SHIFT, VM_MIXEDMAP } from '../include/linux/mm.js';
import { is_device_private_page, is_device_coherent_page } from '../include/linux/memremap.js';
import {
  MMU_NOTIFY_MIGRATE, type mmu_interval_notifier, type mmu_interval_notifier_ops, type mmu_notifier_range,
} from '../include/linux/mmu_notifier.js';
import {
  HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE,
  HMM_RANGE_DEFAULT_TIMEOUT_NS, hmm_pfn_flags, hmm_pfn_to_page, hmm_pfn_to_map_order, type hmm_range,
} from '../include/linux/hmm.js';
import {
  HMM_DMIRROR_CMD_SIZE, HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV,
  HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE,
  HMM_DMIRROR_RELEASE, HMM_DMIRROR_FLAGS, HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_READ,
  HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_PMD, HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_ZERO,
  HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL, HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE, HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL,
  HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, HMM_DMIRROR_MEMORY_DEVICE_COHERENT,
  hmm_dmirror_cmd_decode, hmm_dmirror_cmd_encode, hmm_dmirror_cmd_name, type hmm_dmirror_cmd,
} from '../include/uapi/linux/test_hmm.js';
import { GFP_KERNEL, __GFP_ZERO } from '../include/linux/gfp.js';
import { EINVAL, EFAULT, EBUSY, ENOENT, ENOMEM, EPERM } from '../include/uapi/asm-generic/errno.js';
import { runSync, cond_resched, type Sleepable } from './sim/sched.js';
import { now, charge } from './sim/clock.js';
import { copy_cost_ns, PCIE_BW, PTE_UPDATE_NS } from './sim/costs.js';
import { mutex_lock, mutex_trylock, mutex_unlock } from './locking/mutex.js';
import { trace_event, trace_event_begin, count_event } from './sim/trace.js';
import { alloc_page, put_page, __free_pages, is_zero_pfn, kmap_local_page } from '../mm/page_alloc.js';
import { vm_insert_page } from '../mm/memory.js';
import {
  mmu_interval_notifier_insert, mmu_interval_notifier_remove, mmu_interval_read_begin, mmu_interval_read_retry,
  mmu_interval_set_seq, mmu_notifier_range_blockable,
} from '../mm/mmu_notifier.js';
import { mmap_read_lock, mmap_read_unlock } from '../mm/mmap_lock.js';
import { mmget_not_zero, mmput } from '../mm/task.js';
import { copy_from_user, copy_to_user } from '../mm/fault.js';
import { misc_register } from '../mm/file.js';
import { folio_unlock } from '../mm/filemap.js';
import { hmm_range_fault } from '../mm/hmm.js';
import { make_device_exclusive } from '../mm/device_exclusive.js';
import {
  DMIRROR_NDEVICES, DPT_XA_TAG_READ, DPT_XA_TAG_WRITE, DPT_XA_TAG_ATOMIC, dmirror, dmirror_device, dmirror_params,
  dpt_store, dpt_erase_range, dmirror_page_to_device, dmirror_allocate_chunk, dmirror_device_remove_chunks,
  dmirror_device_evict_all, dmirror_bounce_init, dmirror_bounce_copy_out, dmirror_do_read, dmirror_read_back,
  current_mm, BACKING_PAGE, dmirror_cmd_range, type dmirror_bounce,
} from './test_hmm_devmem.js';
import { dmirror_migrate_to_device, dmirror_migrate_to_system } from './test_hmm_migrate.js';
import { WARN_ON } from '../include/asm-generic/bug.js';

export { dmirror, dmirror_device, dmirror_params } from './test_hmm_devmem.js';

/** Pages a device fault or a snapshot handles per hmm_range_fault() call. */
export const DMIRROR_FAULT_WINDOW = 32;
/* the interval notifier covers every user address (Linux: 0 .. ULONG_MAX & PAGE_MASK) */
const DMIRROR_NOTIFIER_LENGTH = 2 ** 53 - PAGE_SIZE;
/* major number of the character devices (Linux allocates one dynamically) */
const DMIRROR_MAJOR = 240;

/** struct dmirror_interval - an interval notifier and the mirror it serves. */
interface dmirror_interval extends mmu_interval_notifier {
  dmirror: dmirror;
}

/* The devices of the running machine; replaced at every boot. */
interface dmirror_state { devices: (dmirror_device | null)[]; next_id: number; }
let ds: dmirror_state = { devices: [], next_id: 0 };

/** dmirror_device_get() - device N of the running machine, or null (for tests and tools). */
export function dmirror_device_get(minor: number): dmirror_device | null {
  return ds.devices[minor] ?? null;
}

/* ---- open and release ---- */

/*
 * dmirror_fops_open() - a new mirror of the caller's address space,
 * subscribed to invalidations of all of it.
 */
function* dmirror_fops_open(ino: inode, filp: file): Sleepable<number> {
  const mdevice = ino.i_private as dmirror_device;
  const mm = current_mm();
  if (mm === null) return -EINVAL;
  const d = new dmirror(mdevice, ds.next_id++);
  const notifier: dmirror_interval = { start: 0, last: 0, ops: dmirror_min_ops, mm, invalidate_seq: 0, dmirror: d };
  const ret = yield* mmu_interval_notifier_insert(notifier, mm, 0, DMIRROR_NOTIFIER_LENGTH, dmirror_min_ops);
  if (ret) return ret;
  d.notifier = notifier;
  filp.private_data = d;
  trace_event('dmirror_open', { dev: mdevice.minor, mm: mm.id });
  return 0;
}

/*
 * dmirror_fops_release() - last close: unsubscribe, then evict all of the
 * device's memory back to RAM (every user of the device is affected).
 */
function* dmirror_fops_release(_ino: inode, filp: file): Sleepable<number> {
  const d = filp.private_data as dmirror;
  yield* mmu_interval_notifier_remove(d.notifier);
  yield* dmirror_device_evict_all(d.mdevice);
  d.pt.clear();
  filp.private_data = null;
  trace_event('dmirror_release', { dev: d.mdevice.minor });
  return 0;
}

/* ---- the device page table follows the CPU page table ---- */

/**
 * dmirror_interval_invalidate() - mmu_interval_notifier_ops.invalidate of
 * a mirror: drop the device page table entries of the range (and the page
 * after it: the bound is inclusive, which is harmless), after publishing
 * the new sequence number under the mutex. Migrations this device started
 * are skipped: the migration code updates the table itself.
 * Context: may sleep if the range is blockable; otherwise only trylock.
 * Return: false only when a non-blockable range finds the mutex taken.
 */
export function* dmirror_interval_invalidate(mni: mmu_interval_notifier, range: mmu_notifier_range,
                                             cur_seq: number): Sleepable<boolean> {
  const d = (mni as dmirror_interval).dmirror;
  if (range.event === MMU_NOTIFY_MIGRATE && range.owner === d.mdevice) return true;
  if (mmu_notifier_range_blockable(range)) yield* mutex_lock(d.mutex);
  else if (!mutex_trylock(d.mutex)) return false;
  mmu_interval_set_seq(mni, cur_seq);
  dpt_erase_range(d, Math.floor(range.start / PAGE_SIZE), Math.floor(range.end / PAGE_SIZE));
  mutex_unlock(d.mutex);
  count_event('dmirror_invalidate');
  return true;
}

const dmirror_min_ops: mmu_interval_notifier_ops = Object.freeze({ invalidate: dmirror_interval_invalidate });

/* ---- device faults ---- */

/*
 * dmirror_do_fault() - publish what hmm_range_fault() returned into the
 * device page table. Caller holds dmirror.mutex and has checked
 * mmu_interval_read_retry(). Return: 0 or -EFAULT when a write fault came
 * back read-only.
 */
function dmirror_do_fault(d: dmirror, range: hmm_range): number {
  const pfns = range.hmm_pfns;
  for (let i = 0, pfn = range.start / PAGE_SIZE; pfn < range.end / PAGE_SIZE; pfn++, i++) {
    const flags = hmm_pfn_flags(pfns[i]);
    WARN_ON((flags & HMM_PFN_ERROR) !== 0, 'fault returned an error entry');
    if (WARN_ON(!(flags & HMM_PFN_VALID), 'fault returned an invalid entry')) return -EFAULT;
    const p = hmm_pfn_to_page(pfns[i]);
    let tag = DPT_XA_TAG_READ;
    if (flags & HMM_PFN_WRITE) tag = DPT_XA_TAG_WRITE;
    else if (WARN_ON((range.default_flags & HMM_PFN_WRITE) !== 0, 'write fault returned read-only')) return -EFAULT;
    dpt_store(d, pfn, p, tag);
  }
  charge(PTE_UPDATE_NS * (range.end - range.start) / PAGE_SIZE);    /* programming the device PTEs */
  return 0;
}

/**
 * dmirror_range_fault() - fault one window into the device page table
 * with the interval-notifier retry protocol.
 * @d: the mirror.
 * @range: the window; notifier, flags and owner filled by the caller.
 *
 * Loop: take a sequence number, run hmm_range_fault() under mmap_lock,
 * then under the mirror mutex publish only if no invalidation hit the
 * range meanwhile; otherwise start over, for at most
 * HMM_RANGE_DEFAULT_TIMEOUT of simulated time.
 * Context: may sleep; takes mmap_lock for read, then dmirror.mutex.
 * Return: 0; -EBUSY on timeout; -EFAULT, -EPERM, -ENOMEM from
 * hmm_range_fault().
 */
export function* dmirror_range_fault(d: dmirror, range: hmm_range): Sleepable<number> {
  const mm = d.notifier.mm;
  const timeout = now() + HMM_RANGE_DEFAULT_TIMEOUT_NS;
  let ret: number;
  for (;;) {
    if (now() > timeout) return -EBUSY;
    range.notifier_seq = yield* mmu_interval_read_begin(range.notifier);
    yield* mmap_read_lock(mm);
    ret = yield* hmm_range_fault(range);
    mmap_read_unlock(mm);
    if (ret) {
      if (ret === -EBUSY) { count_event('dmirror_fault_retry'); continue; }
      return ret;
    }
    yield* cond_resched();    /* the window the retry check closes: an invalidation may run here */
    yield* mutex_lock(d.mutex);
    if (mmu_interval_read_retry(range.notifier, range.notifier_seq) && !dmirror_params.broken_skip_read_retry) {
      mutex_unlock(d.mutex);
      count_event('dmirror_fault_retry');
      continue;
    }
    break;
  }
  ret = dmirror_do_fault(d, range);
  mutex_unlock(d.mutex);
  return ret;
}

/**
 * dmirror_fault() - a device fault round over [start, end): fault every
 * page in, 32 at a time, for read or for write.
 * Context: may sleep. Return: 0 (also when the mm is already gone) or the
 * first window's error.
 */
export function* dmirror_fault(d: dmirror, start: number, end: number, write: boolean): Sleepable<number> {
  const mm = d.notifier.mm;
  const pfns = new Float64Array(DMIRROR_FAULT_WINDOW);
  const range: hmm_range = {
    notifier: d.notifier, notifier_seq: 0, start: 0, end: 0, hmm_pfns: pfns, pfn_flags_mask: 0,
    default_flags: HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0), dev_private_owner: d.mdevice,
  };
  if (!mmget_not_zero(mm)) return 0;
  let ret = 0;
  for (let addr = start; addr < end; addr = range.end) {
    yield* cond_resched();
    range.start = addr;
    range.end = Math.min(addr + DMIRROR_FAULT_WINDOW * PAGE_SIZE, end);
    range.hmm_pfns = pfns.subarray(0, (range.end - range.start) / PAGE_SIZE);
    ret = yield* dmirror_range_fault(d, range);
    if (ret) break;
  }
  yield* mmput(mm);
  trace_event('dmirror_fault', { dev: d.mdevice.minor, start, end, write, ret });
  return ret;
}

/* ---- READ and WRITE ---- */

/*
 * dmirror_do_write() - copy the bounce buffer into the pages of
 * [start, end); only WRITE-tagged entries count as present.
 * Caller holds dmirror.mutex. Return: 0 or -ENOENT at the first miss.
 */
function dmirror_do_write(d: dmirror, start: number, end: number, bounce: dmirror_bounce): number {
  let off = start - bounce.addr - ((start - bounce.addr) % PAGE_SIZE);
  for (let pfn = start / PAGE_SIZE; pfn < end / PAGE_SIZE; pfn++, off += PAGE_SIZE) {
    const e = d.pt.get(pfn);
    if (e === undefined || e.tag !== DPT_XA_TAG_WRITE) return -ENOENT;
    /* own device-private pages: the device writes its own memory (see dmirror_do_read) */
    kmap_local_page(BACKING_PAGE(e.page)).set(bounce.ptr.subarray(off, off + PAGE_SIZE));
    bounce.cpages++;
  }
  return 0;
}

/* Read or write [start, end) through the device page table, faulting the misses in rounds. */
function* dmirror_access(d: dmirror, cmd: hmm_dmirror_cmd, bounce: dmirror_bounce, write: boolean): Sleepable<number> {
  const { start: addr, end } = dmirror_cmd_range(cmd);
  let start = addr, ret: number;
  for (;;) {
    const before = bounce.cpages;
    yield* mutex_lock(d.mutex);
    ret = write ? dmirror_do_write(d, start, end, bounce) : dmirror_do_read(d, start, end, bounce);
    mutex_unlock(d.mutex);
    charge(copy_cost_ns((bounce.cpages - before) * PAGE_SIZE, PCIE_BW));
    if (ret !== -ENOENT) break;
    start = addr + bounce.cpages * PAGE_SIZE;
    ret = yield* dmirror_fault(d, start, end, write);
    if (ret) break;
    cmd.faults++;
  }
  return ret;
}

/**
 * dmirror_read() - HMM_DMIRROR_READ: the device reads the range into
 * cmd.ptr, faulting missing pages in (read access).
 * Context: may sleep. Return: 0, -EFAULT, -EBUSY, -ENOMEM; on error
 * nothing is copied to user space.
 */
export function* dmirror_read(d: dmirror, cmd: hmm_dmirror_cmd): Sleepable<number> {
  const { start, size } = dmirror_cmd_range(cmd);
  const bounce = dmirror_bounce_init(start, size);
  if (bounce === null) return -ENOMEM;
  let ret = yield* dmirror_access(d, cmd, bounce, false);
  if (ret === 0) ret = yield* dmirror_bounce_copy_out(bounce, cmd.ptr);
  cmd.cpages = BigInt(bounce.cpages);
  return ret;
}

/**
 * dmirror_write() - HMM_DMIRROR_WRITE: the device writes cmd.ptr's data
 * into the range, faulting pages in for write (COW, zero-page
 * replacement, migration back from another device).
 * Context: may sleep. Return: 0, -EPERM (VMA not writable), -EFAULT,
 * -EBUSY, -ENOMEM.
 */
export function* dmirror_write(d: dmirror, cmd: hmm_dmirror_cmd): Sleepable<number> {
  const { start, size } = dmirror_cmd_range(cmd);
  const bounce = dmirror_bounce_init(start, size);
  if (bounce === null) return -ENOMEM;
  const mm = current_mm();
  if (mm === null || (yield* copy_from_user(mm, bounce.ptr, Number(cmd.ptr))) !== 0) return -EFAULT;
  const ret = yield* dmirror_access(d, cmd, bounce, true);
  cmd.cpages = BigInt(bounce.cpages);
  return ret;
}

/* ---- device-exclusive (atomic) access ---- */

/* dmirror_check_atomic() - -EPERM if any entry of [start, end) still has the ATOMIC tag. */
function dmirror_check_atomic(d: dmirror, start: number, end: number): number {
  const first = start / PAGE_SIZE, last = end / PAGE_SIZE;
  if (last - first <= d.pt.size) {
    for (let pfn = first; pfn < last; pfn++) if (d.pt.get(pfn)?.tag === DPT_XA_TAG_ATOMIC) return -EPERM;
    return 0;
  }
  for (const [pfn, e] of d.pt) if (pfn >= first && pfn < last && e.tag === DPT_XA_TAG_ATOMIC) return -EPERM;
  return 0;
}

/* dmirror_atomic_map() - record an exclusive page in the device page table. */
function* dmirror_atomic_map(addr: number, p: page, d: dmirror): Sleepable<number> {
  yield* mutex_lock(d.mutex);
  dpt_store(d, addr / PAGE_SIZE, p, DPT_XA_TAG_ATOMIC);
  mutex_unlock(d.mutex);
  return 0;
}

/**
 * dmirror_exclusive() - HMM_DMIRROR_EXCLUSIVE: take device-exclusive
 * access to every page of the range (the CPU entries become
 * device-exclusive swap entries), record them ATOMIC, then read the range
 * into cmd.ptr.
 * Context: may sleep; takes mmap_lock for read.
 * Return: 0, the make_device_exclusive() error, -ENOENT, -EFAULT.
 */
export function* dmirror_exclusive(d: dmirror, cmd: hmm_dmirror_cmd): Sleepable<number> {
  const { start, end } = dmirror_cmd_range(cmd);
  const mm = d.notifier.mm;
  if (!mmget_not_zero(mm)) return -EINVAL;
  let ret = 0;
  yield* mmap_read_lock(mm);
  for (let addr = start; !ret && addr < end; addr += PAGE_SIZE) {
    const r = yield* make_device_exclusive(mm, addr, null);
    if (r.ret < 0 || r.page === null) { ret = r.ret < 0 ? r.ret : -EFAULT; break; }
    ret = yield* dmirror_atomic_map(addr, r.page, d);
    const folio = r.page.compound_head;
    folio_unlock(folio);
    put_page(folio);
  }
  mmap_read_unlock(mm);
  yield* mmput(mm);
  if (ret) return ret;
  return yield* dmirror_read_back(d, start, end, cmd);
}

/* ---- SNAPSHOT ---- */

/**
 * dmirror_mkentry() - the HMM_DMIRROR_PROT_* byte for one hmm_pfns entry:
 * 0xFF for an error, 0x00 when not valid, else a page kind (zero page,
 * local/remote device-private or device-coherent page, plain page) plus
 * READ or WRITE plus PMD or PUD for a huge mapping.
 */
export function dmirror_mkentry(d: dmirror, entry: number): number {
  const flags = hmm_pfn_flags(entry);
  if (flags & HMM_PFN_ERROR) return HMM_DMIRROR_PROT_ERROR;
  if (!(flags & HMM_PFN_VALID)) return HMM_DMIRROR_PROT_NONE;
  const p = hmm_pfn_to_page(entry);
  let perm: number;
  if (is_device_private_page(p)) {
    perm = d.mdevice === dmirror_page_to_device(p) ? HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL : HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
  } else if (is_device_coherent_page(p)) {
    perm = d.mdevice === dmirror_page_to_device(p) ? HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL : HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
  } else if (is_zero_pfn(p.pfn)) {
    perm = HMM_DMIRROR_PROT_ZERO;
  } else {
    perm = HMM_DMIRROR_PROT_NONE;
  }
  perm |= (flags & HMM_PFN_WRITE) ? HMM_DMIRROR_PROT_WRITE : HMM_DMIRROR_PROT_READ;
  const order = hmm_pfn_to_map_order(entry);
  if (order + PAGE_SHIFT === PMD_SHIFT) perm |= HMM_DMIRROR_PROT_PMD;
  else if (order + PAGE_SHIFT === PUD_SHIFT) perm |= HMM_DMIRROR_PROT_PUD;
  return perm;
}

/* A snapshot's own notifier only publishes the sequence: any hit invalidates the whole window. */
function* dmirror_snapshot_invalidate(mni: mmu_interval_notifier, range: mmu_notifier_range,
                                      cur_seq: number): Sleepable<boolean> {
  const d = (mni as dmirror_interval).dmirror;
  if (mmu_notifier_range_blockable(range)) yield* mutex_lock(d.mutex);
  else if (!mutex_trylock(d.mutex)) return false;
  mmu_interval_set_seq(mni, cur_seq);
  mutex_unlock(d.mutex);
  return true;
}

const dmirror_mrn_ops: mmu_interval_notifier_ops = Object.freeze({ invalidate: dmirror_snapshot_invalidate });

/*
 * dmirror_range_snapshot() - look at one window of the CPU page table
 * without faulting, under a temporary notifier of just that window (the
 * mirror's own notifier ignores its device's migrations; a snapshot must
 * not). Fills perm[0 .. n). Return: 0, -EBUSY, -EFAULT.
 */
function* dmirror_range_snapshot(d: dmirror, range: hmm_range, perm: Uint8Array): Sleepable<number> {
  const mm = d.notifier.mm;
  const notifier: dmirror_interval = { start: 0, last: 0, ops: dmirror_mrn_ops, mm, invalidate_seq: 0, dmirror: d };
  range.notifier = notifier;
  let ret = yield* mmu_interval_notifier_insert(notifier, mm, range.start, range.end - range.start, dmirror_mrn_ops);
  if (ret) return ret;
  const timeout = now() + HMM_RANGE_DEFAULT_TIMEOUT_NS;
  let locked = false;
  for (;;) {
    if (now() > timeout) { ret = -EBUSY; break; }
    range.notifier_seq = yield* mmu_interval_read_begin(range.notifier);
    yield* mmap_read_lock(mm);
    ret = yield* hmm_range_fault(range);
    mmap_read_unlock(mm);
    if (ret) {
      if (ret === -EBUSY) continue;
      break;
    }
    yield* mutex_lock(d.mutex);
    if (mmu_interval_read_retry(range.notifier, range.notifier_seq)) { mutex_unlock(d.mutex); continue; }
    locked = true;
    break;
  }
  if (locked) {
    const n = (range.end - range.start) / PAGE_SIZE;
    for (let i = 0; i < n; i++) perm[i] = dmirror_mkentry(d, range.hmm_pfns[i]);
    mutex_unlock(d.mutex);
  }
  yield* mmu_interval_notifier_remove(notifier);
  return ret;
}

/**
 * dmirror_snapshot() - HMM_DMIRROR_SNAPSHOT: one PROT byte per page of the
 * range into cmd.ptr, 32 pages at a time, without faulting anything in.
 * Context: may sleep. Return: 0, -EBUSY, -EFAULT (copy-out), -EINVAL (mm gone).
 */
export function* dmirror_snapshot(d: dmirror, cmd: hmm_dmirror_cmd): Sleepable<number> {
  const mm = d.notifier.mm;
  const { start, end } = dmirror_cmd_range(cmd);
  if (!mmget_not_zero(mm)) return -EINVAL;
  const umm = current_mm();
  const pfns = new Float64Array(DMIRROR_FAULT_WINDOW);
  const perm = new Uint8Array(DMIRROR_FAULT_WINDOW);
  const range: hmm_range = {
    notifier: d.notifier, notifier_seq: 0, start: 0, end: 0, hmm_pfns: pfns, default_flags: 0,
    pfn_flags_mask: 0, dev_private_owner: d.mdevice,
  };
  let ret = 0, uptr = Number(cmd.ptr);
  for (let addr = start; addr < end;) {
    const next = Math.min(addr + DMIRROR_FAULT_WINDOW * PAGE_SIZE, end);
    const n = (next - addr) / PAGE_SIZE;
    range.start = addr;
    range.end = next;
    range.hmm_pfns = pfns.subarray(0, n);
    pfns.fill(0);
    ret = yield* dmirror_range_snapshot(d, range, perm);
    if (ret) break;
    if (umm === null || (yield* copy_to_user(umm, uptr, perm.subarray(0, n))) !== 0) { ret = -EFAULT; break; }
    cmd.cpages += BigInt(n);
    uptr += n;
    addr = next;
  }
  yield* mmput(mm);
  return ret;
}

/* ---- the ioctl front door ---- */

/* -EINVAL unless addr is page aligned and addr + npages pages neither wraps nor is empty (u64 arithmetic) */
function dmirror_check_cmd(cmd: hmm_dmirror_cmd): number {
  if (cmd.addr % BigInt(PAGE_SIZE) !== 0n) return -EINVAL;
  const end = BigInt.asUintN(64, cmd.addr + BigInt.asUintN(64, cmd.npages << BigInt(PAGE_SHIFT)));
  if (cmd.addr >= end) return -EINVAL;
  return 0;
}

/**
 * dmirror_fops_unlocked_ioctl() - the ioctl entry point.
 * @filp: the open device file.
 * @command: HMM_DMIRROR_*.
 * @arg: user address of a struct hmm_dmirror_cmd.
 *
 * Checks, in order: an open mirror (-EINVAL), the copy-in (-EFAULT),
 * page alignment and a non-empty, non-wrapping range (-EINVAL); then
 * cpages and faults are zeroed, the command runs, and only on success is
 * the block copied back (-EFAULT if that fails). Unknown commands: -EINVAL.
 * Context: process context; may sleep.
 */
export function* dmirror_fops_unlocked_ioctl(filp: file, command: number, arg: number): Sleepable<number> {
  const d = filp.private_data as dmirror | null;
  if (d === null) return -EINVAL;
  const umm = current_mm();
  const raw = new Uint8Array(HMM_DMIRROR_CMD_SIZE);
  if (umm === null || (yield* copy_from_user(umm, raw, arg)) !== 0) return -EFAULT;
  const cmd = hmm_dmirror_cmd_decode(raw);
  const bad = dmirror_check_cmd(cmd);
  if (bad) return bad;
  cmd.cpages = 0n;
  cmd.faults = 0n;
  command >>>= 0;
  count_event(`dmirror_ioctl_${hmm_dmirror_cmd_name(command)}`);
  trace_event_begin('dmirror_ioctl', { dev: d.mdevice.minor, cmd: hmm_dmirror_cmd_name(command), addr: cmd.addr, npages: cmd.npages });
  let ret: number;
  switch (command) {
    case HMM_DMIRROR_READ:
    case HMM_DMIRROR_WRITE:
    case HMM_DMIRROR_MIGRATE_TO_DEV:
    case HMM_DMIRROR_MIGRATE_TO_SYS:
    case HMM_DMIRROR_EXCLUSIVE:
    case HMM_DMIRROR_SNAPSHOT:
      ret = yield* dmirror_dispatch(d, command, cmd);
      break;
    case HMM_DMIRROR_CHECK_EXCLUSIVE: {
      const { start, end } = dmirror_cmd_range(cmd);
      ret = dmirror_check_atomic(d, start, end);
      break;
    }
    case HMM_DMIRROR_RELEASE:
      yield* dmirror_device_remove_chunks(d.mdevice);
      ret = 0;
      break;
    case HMM_DMIRROR_FLAGS:
      d.flags = cmd.npages;
      ret = 0;
      break;
    default:
      return -EINVAL;
  }
  trace_event('dmirror_ioctl', { dev: d.mdevice.minor, cmd: hmm_dmirror_cmd_name(command), addr: cmd.addr,
    npages: cmd.npages, cpages: cmd.cpages, faults: cmd.faults, ret });
  if (ret) return ret;
  if ((yield* copy_to_user(umm, arg, hmm_dmirror_cmd_encode(cmd))) !== 0) return -EFAULT;
  return 0;
}

function* dmirror_dispatch(d: dmirror, command: number, cmd: hmm_dmirror_cmd): Sleepable<number> {
  switch (command) {
    case HMM_DMIRROR_READ: return yield* dmirror_read(d, cmd);
    case HMM_DMIRROR_WRITE: return yield* dmirror_write(d, cmd);
    case HMM_DMIRROR_MIGRATE_TO_DEV: return yield* dmirror_migrate_to_device(d, cmd);
    case HMM_DMIRROR_MIGRATE_TO_SYS: return yield* dmirror_migrate_to_system(d, cmd);
    case HMM_DMIRROR_EXCLUSIVE: return yield* dmirror_exclusive(d, cmd);
    case HMM_DMIRROR_SNAPSHOT: return yield* dmirror_snapshot(d, cmd);
    default: return -EINVAL;
  }
}

/* ---- mmap of the device file ---- */

/**
 * dmirror_fops_mmap() - back every page of the new VMA with a zeroed
 * kernel page inserted with vm_insert_page(), which makes the VMA a mixed
 * map (VM_MIXEDMAP is set here, as Linux's vm_insert_page() does). The
 * mapping holds the only reference. A private mapping gets read-only
 * entries (its vm_page_prot is the COW protection).
 * Context: mmap_lock held for write. Return: 0, -ENOMEM, -EBUSY.
 */
export function dmirror_fops_mmap(_filp: file, vma: vm_area_struct): number {
  vma.vm_flags |= VM_MIXEDMAP;
  for (let addr = vma.vm_start; addr < vma.vm_end; addr += PAGE_SIZE) {
    const p = alloc_page(GFP_KERNEL | __GFP_ZERO);
    if (p === null) return -ENOMEM;
    const ret = vm_insert_page(vma, addr, p);
    if (ret) { __free_pages(p, 0); return ret; }
    put_page(p);
  }
  return 0;
}

/** The file_operations of /dev/hmm_dmirror<N>. */
export const dmirror_fops: file_operations = Object.freeze({
  open: dmirror_fops_open,
  release: dmirror_fops_release,
  mmap: dmirror_fops_mmap,
  unlocked_ioctl: dmirror_fops_unlocked_ioctl,
});

/* ---- module init, at every boot ---- */

/* dmirror_device_init() - the first chunk of device memory, then the device node. */
function dmirror_device_init(mdevice: dmirror_device, id: number): number {
  const ret = runSync(dmirror_allocate_chunk(mdevice, null, false));
  if (ret) return ret;
  misc_register(`hmm_dmirror${id}`, DMIRROR_MAJOR * 2 ** 20 + id, dmirror_fops, mdevice);
  return 0;
}

/**
 * hmm_dmirror_init() - module_init: devices 0 and 1 with device-private
 * memory, and, when the machine provides special-purpose memory
 * (dmirror_params.spm, on by default), devices 2 and 3 with
 * device-coherent memory. The caller loads it after start_kernel(), as
 * insmod test_hmm.ko does; calling it again reloads it.
 */
export function hmm_dmirror_init(): void {
  ds = { devices: new Array(DMIRROR_NDEVICES).fill(null), next_id: 0 };
  dmirror_params.broken_skip_read_retry = false;
  const types = [HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE];
  if (dmirror_params.spm) types.push(HMM_DMIRROR_MEMORY_DEVICE_COHERENT, HMM_DMIRROR_MEMORY_DEVICE_COHERENT);
  for (let id = 0; id < types.length; id++) {
    const mdevice = new dmirror_device(id, types[id]);
    const ret = dmirror_device_init(mdevice, id);
    if (ret) { trace_event('dmirror_init_failed', { dev: id, ret }); break; }
    ds.devices[id] = mdevice;
  }
  trace_event('hmm_dmirror_init', { devices: types.length });
}


