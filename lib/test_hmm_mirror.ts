/*
 * lib/test_hmm_mirror.ts - the dmirror device's view of its process: the
 * device page table, kept coherent with the CPU's by an interval notifier;
 * device faults through hmm_range_fault() (HMM_DMIRROR_READ and _WRITE);
 * device-exclusive access (HMM_DMIRROR_EXCLUSIVE, _CHECK_EXCLUSIVE); and
 * HMM_DMIRROR_SNAPSHOT.
 *
 * Follows the mirror half of Linux's lib/test_hmm.c:
 * dmirror_interval_invalidate(), dmirror_range_fault(), dmirror_fault(),
 * dmirror_read()/dmirror_write(), dmirror_exclusive() and
 * dmirror_range_snapshot()/dmirror_snapshot(). lib/test_hmm.ts is the front
 * door (devices, open/release/mmap, the ioctl checks) and dispatches here;
 * device memory is lib/test_hmm_devmem.ts, migrations lib/test_hmm_migrate.ts.
 *
 * The retry protocol every HMM driver follows (mmu_interval_read_begin /
 * hmm_range_fault / take the driver lock / mmu_interval_read_retry /
 * publish) is dmirror_range_fault(). The device page table holds no page
 * references: the notifier drops entries before a page can go stale.
 *
 * Lock order: mmap_lock -> dmirror.mutex (the mutex is taken inside the
 * notifier callbacks, which run under mmap_lock). Simulated time: the
 * 1000 ms budget of dmirror_range_fault() is measured on the running
 * thread's clock; device accesses are charged at PCIe bandwidth.
 */
import type { page } from '../include/linux/mm_types.js';
import { PAGE_SIZE, PMD_SHIFT, PUD_SHIFT, PAGE_SHIFT } from '../include/linux/mm.js';
import { is_device_private_page, is_device_coherent_page } from '../include/linux/memremap.js';
import {
  MMU_NOTIFY_MIGRATE, type mmu_interval_notifier, type mmu_interval_notifier_ops, type mmu_notifier_range,
} from '../include/linux/mmu_notifier.js';
import {
  HMM_PFN_VALID, HMM_PFN_WRITE, HMM_PFN_ERROR, HMM_PFN_REQ_FAULT, HMM_PFN_REQ_WRITE, HMM_RANGE_DEFAULT_TIMEOUT_NS,
  hmm_pfn_flags, hmm_pfn_to_page, hmm_pfn_to_map_order, type hmm_range,
} from '../include/linux/hmm.js';
import {
  HMM_DMIRROR_PROT_ERROR, HMM_DMIRROR_PROT_NONE, HMM_DMIRROR_PROT_READ, HMM_DMIRROR_PROT_WRITE, HMM_DMIRROR_PROT_PMD,
  HMM_DMIRROR_PROT_PUD, HMM_DMIRROR_PROT_ZERO, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL,
  HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE, HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL, HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE,
  type hmm_dmirror_cmd,
} from '../include/uapi/linux/test_hmm.js';
import { EINVAL, EFAULT, EBUSY, ENOENT, ENOMEM, EPERM } from '../include/uapi/asm-generic/errno.js';
import { cond_resched, type Sleepable } from './sim/sched.js';
import { now, charge } from './sim/clock.js';
import { copy_cost_ns, PCIE_BW, PTE_UPDATE_NS } from './sim/costs.js';
import { mutex_lock, mutex_trylock, mutex_unlock } from './locking/mutex.js';
import { trace_event, count_event } from './sim/trace.js';
import { put_page, is_zero_pfn, kmap_local_page, pfn_to_page } from '../mm/page_alloc.js';
import { dpt_entry_pfn, dpt_entry_tag } from './test_hmm_pt.js';
import {
  mmu_interval_notifier_insert, mmu_interval_notifier_remove, mmu_interval_read_begin, mmu_interval_read_retry,
  mmu_interval_set_seq, mmu_notifier_range_blockable,
} from '../mm/mmu_notifier.js';
import { mmap_read_lock, mmap_read_unlock } from '../mm/mmap_lock.js';
import { mmget_not_zero, mmput } from '../mm/task.js';
import { copy_from_user, copy_to_user } from '../mm/fault.js';
import { folio_unlock } from '../mm/filemap.js';
import { hmm_range_fault } from '../mm/hmm.js';
import { make_device_exclusive } from '../mm/device_exclusive.js';
import {
  DPT_XA_TAG_READ, DPT_XA_TAG_WRITE, DPT_XA_TAG_ATOMIC, dmirror, dmirror_params, dmirror_page_to_device,
  dmirror_page_data, dmirror_migrating_for,
} from './test_hmm_devmem.js';
import {
  dpt_store, dpt_erase_range, dmirror_bounce_init, dmirror_bounce_fini, dmirror_bounce_copy_out, dmirror_do_read, dmirror_read_back,
  current_mm, dmirror_cmd_range, type dmirror_bounce,
} from './test_hmm_dpt.js';
import { WARN_ON } from '../include/asm-generic/bug.js';

/* ---- the device page table follows the CPU page table ---- */

/** Pages a device fault or a snapshot handles per hmm_range_fault() call. */
export const DMIRROR_FAULT_WINDOW = 32;

/** struct dmirror_interval - an interval notifier and the mirror it serves. */
export interface dmirror_interval extends mmu_interval_notifier {
  dmirror: dmirror;
}

/**
 * dmirror_interval_invalidate() - mmu_interval_notifier_ops.invalidate of
 * a mirror: drop the device page table entries of the range (and the page
 * after it: the bound is inclusive, which is harmless), after publishing
 * the new sequence number under the mutex. A migration this mirror is
 * doing itself is skipped: the migration code updates the table itself.
 * Linux skips every MMU_NOTIFY_MIGRATE whose owner is the mirror's device;
 * the model also checks that the running thread migrates for this mirror
 * (dmirror_migrate_begin()), so that a second mirror of the same mm on the
 * device, or one opened after the page's mirror was closed, drops its
 * entries (the model note in lib/test_hmm.ts).
 * Context: may sleep if the range is blockable; otherwise only trylock.
 * Return: false only when a non-blockable range finds the mutex taken.
 */
export function* dmirror_interval_invalidate(mni: mmu_interval_notifier, range: mmu_notifier_range,
                                             cur_seq: number): Sleepable<boolean> {
  const d = (mni as dmirror_interval).dmirror;
  if (range.event === MMU_NOTIFY_MIGRATE && range.owner === d.mdevice && dmirror_migrating_for(d)) return true;
  if (mmu_notifier_range_blockable(range)) yield* mutex_lock(d.mutex);
  else if (!mutex_trylock(d.mutex)) return false;
  mmu_interval_set_seq(mni, cur_seq);
  dpt_erase_range(d, Math.floor(range.start / PAGE_SIZE), Math.floor(range.end / PAGE_SIZE));
  mutex_unlock(d.mutex);
  count_event('dmirror_invalidate');
  return true;
}

export const dmirror_min_ops: mmu_interval_notifier_ops = Object.freeze({ invalidate: dmirror_interval_invalidate });

/* ---- device faults ---- */

/*
 * dmirror_do_fault() - publish what hmm_range_fault() returned into the
 * device page table. Caller holds dmirror.mutex and has checked
 * mmu_interval_read_retry(). Return: 0, -EFAULT when a write fault came
 * back read-only, -ENOMEM when the table could not grow (xa_store).
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
    const err = dpt_store(d, pfn, p, tag);
    if (err) return err;
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
    const e = d.pt.load(pfn);
    if (e === 0 || dpt_entry_tag(e) !== DPT_XA_TAG_WRITE) return -ENOENT;
    /* own device-private pages: the device writes its own memory (see dmirror_do_read) */
    kmap_local_page(dmirror_page_data(pfn_to_page(dpt_entry_pfn(e)))).set(bounce.ptr.subarray(off, off + PAGE_SIZE));
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
  try {
    let ret = yield* dmirror_access(d, cmd, bounce, false);
    if (ret === 0) ret = yield* dmirror_bounce_copy_out(bounce, cmd.ptr);
    cmd.cpages = BigInt(bounce.cpages);
    return ret;
  } finally {
    dmirror_bounce_fini(bounce);
  }
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
  try {
    const mm = current_mm();
    if (mm === null || (yield* copy_from_user(mm, bounce.ptr, Number(cmd.ptr))) !== 0) return -EFAULT;
    const ret = yield* dmirror_access(d, cmd, bounce, true);
    cmd.cpages = BigInt(bounce.cpages);
    return ret;
  } finally {
    dmirror_bounce_fini(bounce);
  }
}

/* ---- device-exclusive (atomic) access ---- */

/* dmirror_check_atomic() - -EPERM if any entry of [start, end) still has the ATOMIC tag. */
export function dmirror_check_atomic(d: dmirror, start: number, end: number): number {
  return d.pt.for_each(start / PAGE_SIZE, end / PAGE_SIZE,
    (_vpn, e) => dpt_entry_tag(e) === DPT_XA_TAG_ATOMIC ? -EPERM : 0);
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
