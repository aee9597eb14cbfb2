/*
 * drivers/char/hmm_dummy.ts - the dummy HMM device of 2015: a "device" that
 * is the CPU itself, with its own page table and fake device memory, driven
 * from user space by ioctls, so that the HMM v8 API can be tested end to end.
 *
 * Follows drivers/char/hmm_dummy.c of the HMM v9 posting ("[PATCH 15/15]
 * hmm/dummy: dummy driver for testing and showcasing the HMM API", July
 * 2015) with its fake device memory ("HMM/dummy: add fake device memory",
 * August 2015), described in shared/reference/hmm-dummy-catalog.md section
 * 5; the uapi is include/uapi/linux/hmm_dummy.ts.
 *
 *   user process                       this driver                   HMM v8 (mm/hmm_v8/)
 *   ioctl(EXPOSE_MM)  ---------------> dummy_mirror + hmm_mirror_register(current mm)
 *   ioctl(READ/WRITE) ---------------> look up the DEVICE page table (dm.pt)
 *                                        hit: copy through it (sys page or rmem)
 *                                        miss: hmm_mirror_fault(RFAULT/WFAULT) -> ops.update():
 *                                              copy HMM's SELECTed entries into dm.pt
 *   ioctl(MIGRATE_TO) ---------------> reserve rmem, hmm_mirror_fault(COPY_TO_DEVICE)
 *                                        -> ops.copy_to_device(): copy pages into rmem
 *   CPU touches a migrated page ------------------------------------> hmm_handle_cpu_fault
 *                                        <- ops.copy_from_device(): copy rmem back
 *   munmap / mprotect / reclaim / fork --------------------------------> ops.update(MUNMAP, ...)
 *                                        clear dm.pt, free rmem, wait for accesses in flight
 *
 * The device page table is a second hmm_pt whose entries are copies of
 * HMM's mirror entries ("programming the device MMU" is copying an entry).
 * Fake device memory ("rmem") is an array of pages the CPU cannot map; a
 * device address is rmem index << PAGE_SHIFT.
 *
 * Safety without page references: a device access runs inside an "access
 * window" (dummy_mirror_access_start/stop) around the copy of one page;
 * ops.update() for an invalidation first clears the entries, then waits
 * for every window overlapping the range (dummy_mirror_access_wait) before
 * it returns. With HMM's fault/invalidate handshake this is what keeps a
 * device copy from reading a page that munmap freed (stress_anon003).
 *
 * Driver bugs of the 2015 code (catalog 5.10) that this port avoids: READ
 * /WRITE on an unbound minor answer -EINVAL instead of dereferencing NULL;
 * rmem exhaustion is detected (-ENOMEM); a failed user copy gives -EFAULT,
 * not a byte count; the populate check accepts device entries; the write
 * path sets DIRTY; an unknown ioctl leaks nothing; ISDIRTY is handled.
 * Unaligned addresses are honoured (the in-page offset is kept).
 *
 * Lifetimes follow the era the core runs (hmm_v8_config.lifetime): with
 * 'v9' the mirror is freed by ops.free(); with 'v8' close frees it right
 * after hmm_mirror_unregister() returns, which is the use-after-free Mark
 * Hairgrove found when the mm's exit path is still inside the driver.
 */
import type { vm_area_struct } from '../../include/linux/mm_types.js';
import type { file, inode, task_struct } from '../../include/linux/sched.js';
import { PAGE_SIZE, PAGE_ALIGN, VM_WRITE } from '../../include/linux/mm.js';
import {
  HMM_DEVICE_RFAULT, HMM_DEVICE_WFAULT, HMM_COPY_TO_DEVICE, HMM_COPY_FROM_DEVICE, HMM_MIGRATE, HMM_MUNMAP,
  HMM_FORK, HMM_WRITE_PROTECT, HMM_ISDIRTY, HMM_PTE_WRITE, HMM_PTE_DIRTY, hmm_pte_valid, hmm_pte_test_select,
  hmm_pte_test_valid_dev, hmm_pte_test_valid_dma, hmm_pte_test_valid_pfn, hmm_pte_test_dirty, hmm_pte_pfn,
  hmm_pte_dma_addr, hmm_pte_dev_addr, hmm_pte_from_dev_addr, hmm_pte_mask, hmm_pte_clear_write, hmm_pte_clear_dirty,
  hmm_pte_clear_select, type hmm_device, type hmm_device_ops, type hmm_event, type hmm_mirror,
} from '../../include/linux/hmm_v8.js';
import {
  HMM_DUMMY_MAX_DEVICES, HMM_DUMMY_MAX_MIRRORS, HMM_DUMMY_RMEM_SIZE, HMM_DUMMY_STRUCT_SIZE, HMM_DUMMY_EXPOSE_MM,
  HMM_DUMMY_READ, HMM_DUMMY_WRITE, HMM_DUMMY_MIGRATE_TO, hmm_dummy_rw_decode, hmm_dummy_rw_encode,
  hmm_dummy_migrate_decode, hmm_dummy_migrate_encode,
} from '../../include/uapi/linux/hmm_dummy.js';
import { EBUSY, EINVAL, ENOMEM, EFAULT, ENOENT, EACCES, EIO } from '../../include/uapi/asm-generic/errno.js';
import { current, cond_resched, type Sleepable } from '../../lib/sim/sched.js';
import { mutex, mutex_lock, mutex_unlock } from '../../lib/locking/mutex.js';
import { lockdep_set_class } from '../../lib/locking/lockdep.js';
import { spinlock_t, spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { wait_queue_head, wait_event, wake_up_all } from '../../lib/locking/wait.js';
import { device, dma_to_pfn } from '../../lib/dma/mapping.js';
import { charge } from '../../lib/sim/clock.js';
import { PCIE_BW, SYSTEM_MEMCPY_BW, copy_cost_ns } from '../../lib/sim/costs.js';
import { count_event, trace_event } from '../../lib/sim/trace.js';
import { O_EXCL, misc_register } from '../../mm/file.js';
import { kmap_local_page, pfn_to_page } from '../../mm/page_alloc.js';
import { copy_from_user, copy_to_user } from '../../mm/fault.js';
import {
  hmm_device_new, hmm_device_register, hmm_mirror_register, hmm_mirror_unregister, hmm_v8_config,
} from '../../mm/hmm_v8/hmm.js';
import { hmm_mirror_fault } from '../../mm/hmm_v8/fault.js';
import {
  hmm_pt_init, hmm_pt_fini, hmm_pt_iter_init, hmm_pt_iter_fini, hmm_pt_iter_fault, hmm_pt_iter_update,
  hmm_pt_iter_next, hmm_pt_level_next, hmm_pt_directory_lock, hmm_pt_directory_unlock, hmm_pt_load, hmm_pt_store,
  hmm_pt_lookup, hmm_pt_set_dirty, hmm_pt_prune, type hmm_pt,
} from '../../mm/hmm_v8/hmm_pt.js';
import { kfree, kasan_check } from '../../mm/hmm_v8/kasan.js';

/**
 * hmm_dummy_params - module parameters, reset at every boot.
 * @rmem_pages: fake device memory per device (HMM_DUMMY_RMEM_SIZE / PAGE_SIZE)
 * @dma: give the hmm_device a DMA device, so HMM stores bus addresses
 */
export const hmm_dummy_params = { rmem_pages: HMM_DUMMY_RMEM_SIZE / PAGE_SIZE, dma: false };

/** struct dummy_device - one of the four devices. */
export class dummy_device {
  readonly device: hmm_device;
  readonly mutex: mutex;
  /* one mirror slot per minor; protected by mutex */
  readonly dmirrors: (dummy_mirror | null)[] = new Array(HMM_DUMMY_MAX_MIRRORS).fill(null);
  /* fake device memory: page i exists once allocated; protected by mutex */
  readonly rmem_pages: (Uint8Array | null)[];
  readonly rmem_bitmap: Uint8Array;
  rmem_used = 0;
  constructor(readonly id: number, rmem_pages: number, dma: boolean) {
    this.mutex = lockdep_set_class(new mutex(`hmm_dummy_device${id}.mutex`), '&ddevice->mutex');
    this.rmem_pages = new Array(rmem_pages).fill(null);
    this.rmem_bitmap = new Uint8Array(rmem_pages);
    this.device = hmm_device_new(`hmm_dummy_device${id}`, dummy_ops, dma ? new device(`hmm_dummy_device${id}`) : null);
  }
}

/** An access window of one device copy (the driver's list of accesses in flight). */
interface dummy_access { start: number; end: number; backoff: boolean }

/** struct dummy_mirror - one bound minor: the device's view of one mm. */
export class dummy_mirror {
  readonly mirror: hmm_mirror;
  /* the device page table */
  readonly pt: hmm_pt = hmm_pt_init(undefined, 'hmm_dummy_pte_touched');
  /* accesses in flight; protected by lock */
  readonly accesses: dummy_access[] = [];
  naccess = 0;
  readonly lock: spinlock_t;
  readonly wait_queue: wait_queue_head;
  /* ioctls in flight: the structures outlive them (v9 ->free defers to the last one) */
  nworkers = 0;
  free_pending = false;
  dead = false;
  freed = false;
  constructor(readonly ddevice: dummy_device, readonly minor: number, readonly pid: number) {
    this.lock = lockdep_set_class(new spinlock_t(`dummy_mirror${ddevice.id}${minor}.lock`), '&dmirror->lock');
    this.wait_queue = new wait_queue_head(`dummy_mirror${ddevice.id}${minor}.wq`);
    this.mirror = { device: ddevice.device, hmm: null, kref: 0, pt: null, dead: false, driver_data: this };
  }
}

/** struct dummy_event - an hmm_event with the driver's counters and reserved rmem. */
export class dummy_event implements hmm_event {
  pte_mask = 0;
  backoff = false;
  nsys_pages = 0;
  nfaulted_sys_pages = 0;
  ndev_pages = 0;
  nfaulted_dev_pages = 0;
  dpfn: number[] = [];
  constructor(public start: number, public end: number, public etype: number) {}
}

/* ---- fake device memory ---- */

function rmem_reserve(dd: dummy_device, n: number): number[] | null {
  if (dd.rmem_bitmap.length - dd.rmem_used < n) return null;
  const out: number[] = [];
  for (let i = 0; i < dd.rmem_bitmap.length && out.length < n; i++) {
    if (dd.rmem_bitmap[i] === 0) { dd.rmem_bitmap[i] = 1; out.push(i); }
  }
  dd.rmem_used += n;
  return out;
}

function rmem_release(dd: dummy_device, dpfn: number): void {
  if (dd.rmem_bitmap[dpfn] === 0) throw new Error(`hmm_dummy: rmem page ${dpfn} freed twice`);
  dd.rmem_bitmap[dpfn] = 0;
  dd.rmem_used--;
  dd.rmem_pages[dpfn]?.fill(0x6b);             /* poison: a stale device read sees garbage */
}

function rmem_page(dd: dummy_device, dpfn: number): Uint8Array {
  let p = dd.rmem_pages[dpfn];
  if (p === null) { p = new Uint8Array(PAGE_SIZE); dd.rmem_pages[dpfn] = p; }
  return p;
}

/** hmm_dummy_rmem_used() - fake device pages in use on device @d (tests). */
export function hmm_dummy_rmem_used(d: number): number { return state.devices[d].rmem_used; }

/* The bytes an entry of the device table points at. */
function entry_bytes(dm: dummy_mirror, e: number): Uint8Array | null {
  if (hmm_pte_test_valid_dev(e)) return rmem_page(dm.ddevice, hmm_pte_dev_addr(e) / PAGE_SIZE);
  if (hmm_pte_test_valid_dma(e)) return kmap_local_page(pfn_to_page(dma_to_pfn(dm.ddevice.device.dev!, hmm_pte_dma_addr(e))));
  if (hmm_pte_test_valid_pfn(e)) return kmap_local_page(pfn_to_page(hmm_pte_pfn(e)));
  return null;
}

/* ---- the access barrier ---- */

function dummy_mirror_access_start(dm: dummy_mirror, a: dummy_access): void {
  spin_lock(dm.lock);
  dm.accesses.push(a);
  dm.naccess++;
  spin_unlock(dm.lock);
}

function dummy_mirror_access_stop(dm: dummy_mirror, a: dummy_access): void {
  spin_lock(dm.lock);
  const i = dm.accesses.indexOf(a);
  if (i >= 0) { dm.accesses.splice(i, 1); dm.naccess--; }
  spin_unlock(dm.lock);
  wake_up_all(dm.wait_queue);
}

/* Wait until no access window overlaps [start, end). */
function* dummy_mirror_access_wait(dm: dummy_mirror, start: number, end: number): Sleepable {
  for (;;) {
    spin_lock(dm.lock);
    let busy = false;
    for (const a of dm.accesses) if (a.start < end && start < a.end) { a.backoff = true; busy = true; }
    const n = dm.naccess;
    spin_unlock(dm.lock);
    if (!busy) return;
    count_event('hmm_dummy_access_wait');
    yield* wait_event(dm.wait_queue, () => dm.naccess !== n);
  }
}

/* ---- hmm_device_ops ---- */

function dm_of(mirror: hmm_mirror): dummy_mirror {
  const dm = mirror.driver_data as dummy_mirror;
  kasan_check(dm, 'hmm_dummy');
  return dm;
}

/* populate: copy the SELECTed mirror entries of [start, end) into the device table */
function dummy_mirror_populate(dm: dummy_mirror, mirror: hmm_mirror, ev: dummy_event): number {
  const write = ev.etype === HMM_DEVICE_WFAULT;
  const mpt = mirror.pt as hmm_pt;
  const it = hmm_pt_iter_init(dm.pt);
  let ret = 0;
  for (let a = ev.start; a < ev.end; a += PAGE_SIZE) {
    const mp = hmm_pt_lookup(mpt, a);
    const me = mp < 0 ? 0 : hmm_pt_load(mpt, mp);
    if (!hmm_pte_valid(me) || !hmm_pte_test_select(me)) { ret = -ENOENT; break; }
    if (write && !(me & HMM_PTE_WRITE)) { ret = -EACCES; break; }
    const dp = hmm_pt_iter_fault(it, a);
    if (dp < 0) { ret = dp; break; }
    hmm_pt_directory_lock(dm.pt, dp);
    const old = hmm_pt_load(dm.pt, dp);
    hmm_pt_store(dm.pt, dp, hmm_pte_clear_select(me) + (old & HMM_PTE_DIRTY & ~me));
    hmm_pt_directory_unlock(dm.pt, dp);
    if (!hmm_pte_test_valid_dev(me)) ev.nfaulted_sys_pages++;
  }
  hmm_pt_iter_fini(it);
  return ret;
}

/* invalidate: apply the event to the device table, report dirt, free rmem */
function dummy_mirror_invalidate(dm: dummy_mirror, mirror: hmm_mirror, event: hmm_event): void {
  const mpt = mirror.pt as hmm_pt;
  const wp = event.etype === HMM_FORK || event.etype === HMM_WRITE_PROTECT;
  const it = hmm_pt_iter_init(dm.pt);
  for (let a = event.start; a < event.end;) {
    const dp = hmm_pt_iter_update(it, a);
    if (dp < 0) { a = hmm_pt_iter_next(it, a, event.end); continue; }
    const next = hmm_pt_level_next(dm.pt, a, event.end, dm.pt.llevel - 1);
    hmm_pt_directory_lock(dm.pt, dp);
    for (let q = dp; a < next; a += PAGE_SIZE, q++) {
      const e = hmm_pt_load(dm.pt, q);
      if (!hmm_pte_valid(e)) continue;
      if (event.etype === HMM_ISDIRTY) {
        if (hmm_pte_test_dirty(e) && !hmm_pte_test_valid_dev(e)) { mark_mirror_dirty(mpt, a); hmm_pt_store(dm.pt, q, hmm_pte_clear_dirty(e)); }
        continue;
      }
      let n: number;
      if (hmm_pte_test_valid_dev(e)) {
        n = wp ? hmm_pte_clear_write(e) : hmm_pte_mask(e, event.pte_mask);
        if (n === 0) rmem_release(dm.ddevice, hmm_pte_dev_addr(e) / PAGE_SIZE);
      } else {
        if (hmm_pte_test_dirty(e)) mark_mirror_dirty(mpt, a);
        n = hmm_pte_mask(hmm_pte_clear_dirty(e), event.pte_mask);
      }
      if (n !== e) hmm_pt_store(dm.pt, q, n);
    }
    hmm_pt_directory_unlock(dm.pt, dp);
  }
  hmm_pt_iter_fini(it);
  if (event.etype === HMM_MUNMAP) hmm_pt_prune(dm.pt, event.start, event.end);
}

function mark_mirror_dirty(mpt: hmm_pt, addr: number): void {
  const p = hmm_pt_lookup(mpt, addr);
  if (p >= 0) hmm_pt_set_dirty(mpt, p);
}

function* dummy_update(mirror: hmm_mirror, event: hmm_event): Sleepable<number> {
  const dm = dm_of(mirror);
  switch (event.etype) {
    case HMM_DEVICE_RFAULT: case HMM_DEVICE_WFAULT:
      return dummy_mirror_populate(dm, mirror, event as dummy_event);
    case HMM_MIGRATE: case HMM_MUNMAP: case HMM_FORK: case HMM_WRITE_PROTECT: case HMM_ISDIRTY:
      dummy_mirror_invalidate(dm, mirror, event);
      yield* dummy_mirror_access_wait(dm, event.start, event.end);
      return 0;
    default:
      return -EIO;
  }
}

function* dummy_copy_to_device(mirror: hmm_mirror, event: hmm_event, vma: vm_area_struct, dst: Float64Array,
                               start: number, end: number): Sleepable<number> {
  const dm = dm_of(mirror);
  const ev = event as dummy_event;
  const mpt = mirror.pt as hmm_pt;
  yield* dummy_mirror_access_wait(dm, start, end);
  const it = hmm_pt_iter_init(dm.pt);
  let ret = 0;
  for (let a = start, i = 0; a < end; a += PAGE_SIZE, i++) {
    const mp = hmm_pt_lookup(mpt, a);
    const me = mp < 0 ? 0 : hmm_pt_load(mpt, mp);
    if (!hmm_pte_test_select(me) || !(hmm_pte_test_valid_pfn(me) || hmm_pte_test_valid_dma(me))) continue;
    if (ev.dpfn.length === 0) break;                       /* out of reserved rmem: partial */
    const dp = hmm_pt_iter_fault(it, a);
    if (dp < 0) { ret = dp; break; }
    const old = hmm_pt_load(dm.pt, dp);
    if (hmm_pte_test_valid_dev(old)) { ret = -EINVAL; break; }
    const dpfn = ev.dpfn.shift()!;
    rmem_page(dm.ddevice, dpfn).set(entry_bytes(dm, me)!);
    charge(copy_cost_ns(PAGE_SIZE, PCIE_BW));
    dst[i] = hmm_pte_from_dev_addr(dpfn * PAGE_SIZE) + (old & HMM_PTE_DIRTY) + (vma.vm_flags & VM_WRITE ? HMM_PTE_WRITE : 0);
    hmm_pt_directory_lock(dm.pt, dp);
    hmm_pt_store(dm.pt, dp, dst[i]);
    hmm_pt_directory_unlock(dm.pt, dp);
    ev.nfaulted_dev_pages++;
  }
  hmm_pt_iter_fini(it);
  count_event('hmm_dummy_copy_to_device', ev.nfaulted_dev_pages);
  return ret;
}

function* dummy_copy_from_device(mirror: hmm_mirror, event: hmm_event, dst: Float64Array,
                                 start: number, end: number): Sleepable<number> {
  const dm = dm_of(mirror);
  const mpt = mirror.pt as hmm_pt;
  yield* dummy_mirror_access_wait(dm, start, end);
  for (let a = start, i = 0; a < end; a += PAGE_SIZE, i++) {
    if (!hmm_pte_test_select(dst[i])) continue;
    const mp = hmm_pt_lookup(mpt, a);
    if (mp < 0 || !hmm_pte_test_valid_dev(hmm_pt_load(mpt, mp))) continue;
    const dp = hmm_pt_lookup(dm.pt, a);
    const de = dp < 0 ? 0 : hmm_pt_load(dm.pt, dp);
    if (!hmm_pte_test_valid_dev(de)) return -EINVAL;
    const dpfn = hmm_pte_dev_addr(de) / PAGE_SIZE;
    entry_bytes(dm, dst[i])!.set(rmem_page(dm.ddevice, dpfn));
    charge(copy_cost_ns(PAGE_SIZE, PCIE_BW));
    if (hmm_pte_test_dirty(de)) dst[i] += HMM_PTE_DIRTY;
    if (event.etype === HMM_COPY_FROM_DEVICE) {
      rmem_release(dm.ddevice, dpfn);
      hmm_pt_directory_lock(dm.pt, dp);
      hmm_pt_store(dm.pt, dp, hmm_pte_clear_dirty(hmm_pte_clear_select(dst[i])));
      hmm_pt_directory_unlock(dm.pt, dp);
    }
    count_event('hmm_dummy_copy_from_device');
  }
  return 0;
}

/* free the driver's structures; with a worker (an ioctl) in flight, its exit frees them */
function dummy_mirror_free(dm: dummy_mirror): void {
  if (dm.freed) return;
  if (dm.nworkers > 0) { dm.free_pending = true; return; }
  dm.freed = true;
  hmm_pt_fini(dm.pt);
  kfree(dm.mirror, 'struct hmm_mirror');
  kfree(dm, 'struct dummy_mirror');
}

const dummy_ops: hmm_device_ops = Object.freeze({
  *release(mirror: hmm_mirror): Sleepable { dm_of(mirror).dead = true; },
  free(mirror: hmm_mirror): void { dummy_mirror_free(mirror.driver_data as dummy_mirror); },
  update: dummy_update,
  copy_from_device: dummy_copy_from_device,
  copy_to_device: dummy_copy_to_device,
});

/* ---- file operations ---- */

/* an open file of a node; @dm: the mirror its EXPOSE_MM bound, the only one its release may unbind */
interface dummy_file { dd: dummy_device; minor: number; dm: dummy_mirror | null }

function current_task(): task_struct {
  return current().task as task_struct;
}

function* dummy_fops_open(ino: inode, f: file): Sleepable<number> {
  if (f.f_flags & O_EXCL) return -EINVAL;
  const { d, m } = ino.i_private as { d: number; m: number };
  f.private_data = { dd: state.devices[d], minor: m, dm: null } satisfies dummy_file;
  return 0;
}

function* dummy_fops_release(_ino: inode, f: file): Sleepable<number> {
  const fp = f.private_data as dummy_file;
  const { dd, minor } = fp;
  yield* mutex_lock(dd.mutex);
  /* a file that bound no mirror (its EXPOSE_MM got -EBUSY) must not unbind another file's */
  const dm = fp.dm !== null && dd.dmirrors[minor] === fp.dm ? fp.dm : null;
  if (dm !== null) dd.dmirrors[minor] = null;
  fp.dm = null;
  mutex_unlock(dd.mutex);
  if (dm === null) return 0;
  dm.dead = true;
  yield* hmm_mirror_unregister(dm.mirror);
  if (hmm_v8_config.lifetime === 'v8') dummy_mirror_free(dm);   /* the v8 driver frees here */
  return 0;
}

function* dummy_expose_mm(fp: dummy_file): Sleepable<number> {
  const { dd, minor } = fp;
  const t = current_task();
  if (t === null || t.mm === null) return -EINVAL;
  yield* mutex_lock(dd.mutex);
  const busy = dd.dmirrors[minor] !== null;
  mutex_unlock(dd.mutex);
  if (busy) return -EBUSY;
  const dm = new dummy_mirror(dd, minor, t.pid);
  const ret = yield* hmm_mirror_register(dm.mirror, t.mm);
  if (ret) { dm.dead = true; return ret; }
  yield* mutex_lock(dd.mutex);
  if (dd.dmirrors[minor] !== null) {
    mutex_unlock(dd.mutex);
    yield* hmm_mirror_unregister(dm.mirror);
    return -EBUSY;
  }
  dd.dmirrors[minor] = dm;
  fp.dm = dm;
  mutex_unlock(dd.mutex);
  trace_event('hmm_dummy_expose_mm', { device: dd.id, minor, pid: t.pid });
  return 0;
}

/* A device fault on [addr, end): retried while the core says the mmap_lock was dropped. */
function* dummy_mirror_fault(dm: dummy_mirror, ev: dummy_event, addr: number, write: boolean): Sleepable<number> {
  const saved_end = ev.end;
  ev.start = addr - (addr % PAGE_SIZE);
  ev.etype = write ? HMM_DEVICE_WFAULT : HMM_DEVICE_RFAULT;
  let ret: number;
  do ret = yield* hmm_mirror_fault(dm.mirror, ev); while (ret === -16 /* -EBUSY */);
  ev.end = saved_end;
  return ret;
}

/*
 * dummy_fops_rw() - HMM_DUMMY_READ / HMM_DUMMY_WRITE: the device copies
 * between the mirrored address space and the caller's buffer, page by page
 * through its own page table, faulting through HMM on a miss.
 */
function* dummy_fops_rw(dm: dummy_mirror, uarg: number, write: boolean): Sleepable<number> {
  const mm = current_task().mm!;
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  if ((yield* copy_from_user(mm, raw, uarg)) !== 0) return -EFAULT;
  const s = hmm_dummy_rw_decode(raw);
  const ev = new dummy_event(s.address, PAGE_ALIGN(s.address + s.size), write ? HMM_DEVICE_WFAULT : HMM_DEVICE_RFAULT);
  const bounce = new Uint8Array(PAGE_SIZE);
  let addr = s.address, uptr = s.ptr, left = s.size, ret = 0;
  while (ret === 0 && left > 0) {
    while (left > 0) {
      const off = addr % PAGE_SIZE, n = Math.min(left, PAGE_SIZE - off), page = addr - off;
      if (write && (yield* copy_from_user(mm, bounce.subarray(0, n), uptr)) !== 0) { ret = -EFAULT; break; }
      kasan_check(dm, 'dummy_fops_rw');
      const dp = hmm_pt_lookup(dm.pt, page);
      if (dp < 0) break;
      const acc: dummy_access = { start: page, end: page + PAGE_SIZE, backoff: false };
      dummy_mirror_access_start(dm, acc);
      const e = hmm_pt_load(dm.pt, dp);
      const bytes = write && !(e & HMM_PTE_WRITE) ? null : entry_bytes(dm, e);
      if (bytes === null) { dummy_mirror_access_stop(dm, acc); break; }
      if (hmm_pte_test_valid_dev(e)) ev.ndev_pages++; else ev.nsys_pages++;
      yield* cond_resched();                   /* the copy takes time: invalidations may start now */
      if (write) { bytes.set(bounce.subarray(0, n), off); hmm_pt_set_dirty(dm.pt, dp); }
      else bounce.set(bytes.subarray(off, off + n));
      charge(copy_cost_ns(n, hmm_pte_test_valid_dev(e) ? SYSTEM_MEMCPY_BW : PCIE_BW));
      dummy_mirror_access_stop(dm, acc);
      if (!write && (yield* copy_to_user(mm, uptr, bounce.subarray(0, n))) !== 0) { ret = -EFAULT; break; }
      addr += n; uptr += n; left -= n;
    }
    if (ret !== 0 || left === 0) break;
    ret = yield* dummy_mirror_fault(dm, ev, addr, write);
  }
  s.nsys_pages = ev.nsys_pages;
  s.nfaulted_sys_pages = ev.nfaulted_sys_pages;
  s.ndev_pages = ev.ndev_pages;
  s.nfaulted_dev_pages = 0;
  hmm_dummy_rw_encode(raw, s);
  if ((yield* copy_to_user(mm, uarg, raw)) !== 0) return -EFAULT;
  return ret;
}

/* HMM_DUMMY_MIGRATE_TO: move [address, address + size) into fake device memory. */
function* dummy_fops_migrate(dm: dummy_mirror, uarg: number): Sleepable<number> {
  const mm = current_task().mm!;
  const raw = new Uint8Array(HMM_DUMMY_STRUCT_SIZE);
  if ((yield* copy_from_user(mm, raw, uarg)) !== 0) return -EFAULT;
  const s = hmm_dummy_migrate_decode(raw);
  const start = s.address - (s.address % PAGE_SIZE), end = PAGE_ALIGN(s.address + s.size);
  const npages = (end - start) / PAGE_SIZE;
  let ret: number;
  const ev = new dummy_event(start, end, HMM_COPY_TO_DEVICE);
  const dd = dm.ddevice;
  yield* mutex_lock(dd.mutex);
  const dpfn = npages > 0 ? rmem_reserve(dd, npages) : null;
  mutex_unlock(dd.mutex);
  if (npages <= 0) ret = -EINVAL;
  else if (dpfn === null) ret = -ENOMEM;
  else {
    ev.dpfn = dpfn;
    do ret = yield* hmm_mirror_fault(dm.mirror, ev); while (ret === -16 /* -EBUSY */);
    yield* mutex_lock(dd.mutex);
    for (const p of ev.dpfn) { dd.rmem_bitmap[p] = 0; dd.rmem_used--; }    /* reserved but unused */
    mutex_unlock(dd.mutex);
  }
  s.nfaulted_dev_pages = ev.nfaulted_dev_pages;
  hmm_dummy_migrate_encode(raw, s);
  if ((yield* copy_to_user(mm, uarg, raw)) !== 0) return -EFAULT;
  return ret;
}

function* dummy_fops_unlocked_ioctl(f: file, cmd: number, arg: number): Sleepable<number> {
  const fp = f.private_data as dummy_file;
  const { dd, minor } = fp;
  if (cmd === HMM_DUMMY_EXPOSE_MM) return yield* dummy_expose_mm(fp);
  if (cmd !== HMM_DUMMY_READ && cmd !== HMM_DUMMY_WRITE && cmd !== HMM_DUMMY_MIGRATE_TO) return -EINVAL;
  const dm = dd.dmirrors[minor];
  if (dm === null) return -EINVAL;
  dm.nworkers++;
  try {
    if (cmd === HMM_DUMMY_MIGRATE_TO) return yield* dummy_fops_migrate(dm, arg);
    return yield* dummy_fops_rw(dm, arg, cmd === HMM_DUMMY_WRITE);
  } finally {
    if (--dm.nworkers === 0 && dm.free_pending) dummy_mirror_free(dm);
  }
}

const dummy_fops = Object.freeze({
  open: dummy_fops_open,
  release: dummy_fops_release,
  unlocked_ioctl: dummy_fops_unlocked_ioctl,
  mmap: function* (): Sleepable<number> { return -EINVAL; },
  *read(): Sleepable<number> { return -EINVAL; },
  *write(): Sleepable<number> { return -EINVAL; },
});

/* ---- module init: 4 devices, nodes for devices 0 and 1 ---- */

interface dummy_state { devices: dummy_device[] }
let state: dummy_state = { devices: [] };

/** hmm_dummy_init() - module_init with the current hmm_dummy_params: devices and /dev nodes. */
export function hmm_dummy_init(): void {
  state = { devices: [] };
  for (let d = 0; d < HMM_DUMMY_MAX_DEVICES; d++) {
    const dd = new dummy_device(d, hmm_dummy_params.rmem_pages, hmm_dummy_params.dma);
    hmm_device_register(dd.device);
    state.devices.push(dd);
    if (d >= 2) continue;
    for (let m = 0; m < HMM_DUMMY_MAX_MIRRORS; m++) misc_register(`hmm_dummy_device${d}${m}`, d * 16 + m, dummy_fops, { d, m });
  }
}

/** hmmDummyDeviceOf() - the driver state of device @d (tests, tools). */
export function hmmDummyDeviceOf(d: number): dummy_device { return state.devices[d]; }

/**
 * insmodHmmDummy() - load the module with its default parameters after
 * start_kernel(), as `insmod hmm_dummy.ko` does. To load it with other
 * parameters, set hmm_dummy_params and call hmm_dummy_init() again.
 */
export function insmodHmmDummy(): void {
  hmm_dummy_params.rmem_pages = HMM_DUMMY_RMEM_SIZE / PAGE_SIZE;
  hmm_dummy_params.dma = false;
  hmm_dummy_init();
}

export { EFAULT };
