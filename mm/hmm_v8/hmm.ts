/*
 * mm/hmm_v8/hmm.ts - HMM v8 patches 05, 07 and the core half of 08: struct
 * hmm, devices and mirrors, their lifetimes, and the path from a CPU
 * invalidation to every mirror of the mm.
 *
 *   [PATCH 05/36] HMM: introduce heterogeneous memory management v3
 *   [PATCH 07/36] HMM: add per mirror page table v3
 *   [PATCH 08/36] HMM: add device page fault support v3 (device-fault list, backoff)
 *
 * One struct hmm per mm (mm->hmm, set with mmap_lock held for write),
 * created by the first mirror and registered as a 2015 mmu_notifier
 * listener (mm/hmm_v8/mmu_notifier.ts). Each invalidation reaches
 * hmm_notifier_invalidate(), which turns the mmu_event into an hmm_etype
 * (hmm_event_init() picks the mask), makes overlapping device faults back
 * off and waits for them (hmm_wait_device_fault: the 2015 handshake of
 * Documentation/vm/hmm.txt, "fault vs invalidation"), then updates every
 * mirror (mm/hmm_v8/update.ts). The device-fault side of the handshake,
 * hmm_device_fault_start/end, is here too.
 *
 * Lifetimes, in two eras (hmm_v8_config.lifetime):
 *  - 'v8' (May 2015): the mirror's only reference is the one the mm's
 *    list holds. hmm_mirror_unregister() drops it (the last put calls
 *    ->release) and the driver frees its structures when unregister
 *    returns. Mark Hairgrove's review (June 2015) found the hole: the
 *    mm-exit path (hmm_notifier_release) takes a mirror off the list
 *    WITHOUT a reference and calls into the driver, which may sleep; if the
 *    driver's close runs meanwhile, unregister finds nothing to do, returns,
 *    the driver frees, and the exit path resumes on freed memory.
 *  - 'v9' (the fix): the driver holds a reference of its own; ->release
 *    only says "the mm is gone"; unregister waits for notifier callbacks in
 *    flight (SRCU) before dropping the driver's reference; the last
 *    reference calls the new ->free(), the only place the driver frees.
 * kfree()/kasan_check() (mm/hmm_v8/kasan.ts) make the v8 use-after-free
 * visible; test/mm/hmm_v8/races.test.ts shows it and its fix.
 */
import type { mm_struct, page } from '../../include/linux/mm_types.js';
import { PAGE_SIZE, TASK_SIZE, PAGE_ALIGN, VM_READ, VM_WRITE } from '../../include/linux/mm.js';
import type { mmu_notifier_range } from '../../include/linux/mmu_notifier.js';
import {
  MMU_FORK, MMU_MUNLOCK, MMU_MPROT, MMU_WRITE_BACK, MMU_WRITE_PROTECT, MMU_ISDIRTY, MMU_HSPLIT, MMU_MUNMAP,
  MMU_MIGRATE, HMM_NONE, HMM_FORK, HMM_ISDIRTY, HMM_MIGRATE, HMM_MUNMAP, HMM_WRITE_PROTECT, HMM_DEVICE_RFAULT,
  HMM_DEVICE_WFAULT, HMM_COPY_FROM_DEVICE, HMM_COPY_TO_DEVICE, HMM_PTE_MASK_ALL, HMM_PTE_MASK_NONE, HMM_PTE_WRITE,
  hmm_etype_names, type mmu_event, type mmu_notifier_ops_v8, type mmu_notifier_v8, type hmm_etype, type hmm_event,
  type hmm_device, type hmm_mirror,
} from '../../include/linux/hmm_v8.js';
import { EINVAL, EAGAIN, EBUSY } from '../../include/uapi/asm-generic/errno.js';
import { cond_resched, current, type Sleepable } from '../../lib/sim/sched.js';
import { KernelBugError } from '../../include/asm-generic/bug.js';
import { rw_semaphore, down_read, up_read, down_write, up_write } from '../../lib/locking/rwsem.js';
import { lockdep_set_class } from '../../lib/locking/lockdep.js';
import { mutex, mutex_lock, mutex_unlock } from '../../lib/locking/mutex.js';
import { spinlock_t, spin_lock, spin_unlock } from '../../lib/locking/spinlock.js';
import { wait_queue_head, wait_event, wake_up_all } from '../../lib/locking/wait.js';
import { now } from '../../lib/sim/clock.js';
import { count_event, trace_event } from '../../lib/sim/trace.js';
import { mmap_write_lock, mmap_write_unlock } from '../mmap_lock.js';
import { find_vma } from '../vma.js';
import {
  __mmu_notifier_register_v8, mmu_notifier_unregister_no_release_v8, mmu_notifier_synchronize_v8,
  mmu_notifier_range_wait_valid, mmu_notifier_range_is_valid,
} from './mmu_notifier.js';
import { hmm_pt_init, hmm_pt_fini, type hmm_pt } from './hmm_pt.js';
import { hmm_mirror_update, hmm_mirror_update_pt } from './update.js';
import { kasan_check } from './kasan.js';
import { migrateBackInit } from './migrate_back.js';
import { mmuNotifierV8Init } from './mmu_notifier.js';

/**
 * hmm_v8_config - which era's rules the core follows; reset at every boot.
 * @lifetime: 'v9' (default: the fixed rules the 2015 dummy driver was
 *   written for) or 'v8' (as posted in May 2015, with the teardown race)
 * @no_fault_backoff: debug only, breaks the section 1.7 handshake (an
 *   invalidation neither waits for nor flags device faults) so that the
 *   race checks can show what it protects
 */
export const hmm_v8_config: { lifetime: 'v8' | 'v9'; no_fault_backoff: boolean } = { lifetime: 'v9', no_fault_backoff: false };

/**
 * hmmV8Init() - boot the v8 series: default era rules, and the four places
 * it hooks into core mm filled (hmm_v8_hooks, mm/hmm_v8/hooks.ts).
 * Context: start_kernel().
 */
export function hmmV8Init(): void {
  hmm_v8_config.lifetime = 'v9';
  hmm_v8_config.no_fault_backoff = false;
  mmuNotifierV8Init();
  migrateBackInit();
}

/**
 * struct hmm - HMM's per-mm state.
 * @mm: the mm; @vm_end: TASK_SIZE, nothing above is mirrored
 * @kref: one per registered mirror (and the creator while registering)
 * @mirrors: the mirrors of this mm; protected by @rwsem
 * @mmu_notifier: HMM's 2015 listener on the mm
 * Protected by @lock (a spinlock), the device-fault list of patch 08:
 * @device_faults: hmm_events of device faults / migrations in flight
 * @ndevice_faults: its length; invalidations sleep until it changes
 * @wait_queue: woken when a device fault ends or an update completes
 */
export class hmm {
  mirrors: hmm_mirror[] = [];
  readonly vm_end = TASK_SIZE;
  kref = 1;
  readonly rwsem: rw_semaphore;
  readonly mmu_notifier: hmm_notifier;
  readonly lock: spinlock_t;
  device_faults: hmm_event[] = [];
  ndevice_faults = 0;
  readonly wait_queue: wait_queue_head;
  constructor(readonly mm: mm_struct) {
    this.rwsem = lockdep_set_class(new rw_semaphore(`hmm[mm${mm.id}].rwsem`), '&hmm->rwsem');
    this.lock = lockdep_set_class(new spinlock_t(`hmm[mm${mm.id}].lock`), '&hmm->lock');
    this.wait_queue = new wait_queue_head(`hmm[mm${mm.id}].wait_queue`);
    this.mmu_notifier = { ops: hmm_notifier_ops, mm: null, hmm: this };
  }
}

/** HMM's listener: an mmu_notifier_v8 that knows its struct hmm (container_of). */
export interface hmm_notifier extends mmu_notifier_v8 { readonly hmm: hmm; }

/** hmm_of() - the struct hmm of @mm, or null. */
export function hmm_of(mm: mm_struct): hmm | null {
  return mm.hmm as hmm | null;
}

/** mirror_hmm() / mirror_pt() - typed views of a mirror's core fields. */
export function mirror_hmm(mirror: hmm_mirror): hmm | null { return mirror.hmm as hmm | null; }
export function mirror_pt(mirror: hmm_mirror): hmm_pt { return mirror.pt as hmm_pt; }

/* ---- events ---- */

/**
 * hmm_event_init() - fill @event for [start, end) of @h (page-aligned,
 * clamped to vm_end) and pick its pte_mask: no change for ISDIRTY, device
 * faults and copies; drop WRITE for FORK and WRITE_PROTECT; drop the entry
 * for MIGRATE and MUNMAP.
 */
export function hmm_event_init(event: hmm_event, h: hmm | null, start: number, end: number, etype: hmm_etype): void {
  const vm_end = h !== null ? h.vm_end : TASK_SIZE;
  event.etype = etype;
  event.start = start - (start % PAGE_SIZE);
  event.end = Math.min(PAGE_ALIGN(end), vm_end);
  event.backoff = false;
  switch (etype) {
    case HMM_ISDIRTY: case HMM_DEVICE_RFAULT: case HMM_DEVICE_WFAULT:
    case HMM_COPY_TO_DEVICE: case HMM_COPY_FROM_DEVICE:
      event.pte_mask = HMM_PTE_MASK_ALL; break;
    case HMM_FORK: case HMM_WRITE_PROTECT:
      event.pte_mask = HMM_PTE_MASK_ALL & ~HMM_PTE_WRITE; break;
    case HMM_MIGRATE: case HMM_MUNMAP:
      event.pte_mask = HMM_PTE_MASK_NONE; break;
    default:
      throw new KernelBugError(`hmm_event_init: etype ${etype}`);
  }
}

/** hmm_event_new() - a fresh, initialized event. */
export function hmm_event_new(h: hmm | null, start: number, end: number, etype: hmm_etype): hmm_event {
  const e: hmm_event = { start: 0, end: 0, etype, pte_mask: 0, backoff: false };
  hmm_event_init(e, h, start, end, etype);
  return e;
}

/**
 * mmu_event_to_hmm_etype() - what a 2015 invalidation means for mirrors:
 * FORK -> FORK; MUNLOCK -> nothing; MPROT -> look at the VMA (no VMA or no
 * VM_READ: MUNMAP, no VM_WRITE: WRITE_PROTECT, else nothing); WRITE_BACK,
 * WRITE_PROTECT -> WRITE_PROTECT; ISDIRTY -> ISDIRTY; HSPLIT, MUNMAP ->
 * MUNMAP; MIGRATE and anything else -> MIGRATE.
 * Context: MPROT callers hold mmap_lock (mprotect holds it for write).
 */
export function mmu_event_to_hmm_etype(mm: mm_struct, start: number, event: mmu_event): hmm_etype {
  switch (event) {
    case MMU_FORK: return HMM_FORK;
    case MMU_MUNLOCK: return HMM_NONE;
    case MMU_MPROT: {
      const vma = find_vma(mm, start);
      if (vma === null || vma.vm_start > start || !(vma.vm_flags & VM_READ)) return HMM_MUNMAP;
      if (!(vma.vm_flags & VM_WRITE)) return HMM_WRITE_PROTECT;
      return HMM_NONE;
    }
    case MMU_WRITE_BACK: case MMU_WRITE_PROTECT: return HMM_WRITE_PROTECT;
    case MMU_ISDIRTY: return HMM_ISDIRTY;
    case MMU_HSPLIT: case MMU_MUNMAP: return HMM_MUNMAP;
    case MMU_MIGRATE: default: return HMM_MIGRATE;
  }
}

/* ---- patch 08: the device-fault list and the handshake ---- */

function overlaps(a: hmm_event, start: number, end: number): boolean {
  return a.start < end && start < a.end;
}

/**
 * hmm_device_fault_start() - register @event as a device fault in flight.
 * Waits until no CPU invalidation overlaps, then, under hmm.lock, checks
 * again and links the event with backoff cleared.
 * Context: may sleep; mmap_lock held for read. Return: 0, or -EAGAIN when
 * an invalidation started in between (the caller retries from scratch).
 */
export function* hmm_device_fault_start(h: hmm, event: hmm_event): Sleepable<number> {
  yield* mmu_notifier_range_wait_valid(h.mm, event.start, event.end);
  spin_lock(h.lock);
  let ret = 0;
  if (mmu_notifier_range_is_valid(h.mm, event.start, event.end)) {
    event.backoff = false;
    event.owner = current();
    h.device_faults.push(event);
    h.ndevice_faults++;
  } else {
    ret = -EAGAIN;
  }
  spin_unlock(h.lock);
  return ret;
}

/** hmm_device_fault_end() - unlink @event and wake sleeping invalidations. Context: any. */
export function hmm_device_fault_end(h: hmm, event: hmm_event): void {
  spin_lock(h.lock);
  const i = h.device_faults.indexOf(event);
  if (i >= 0) { h.device_faults.splice(i, 1); h.ndevice_faults--; }
  spin_unlock(h.lock);
  wake_up_all(h.wait_queue);
}

/**
 * hmm_wait_device_fault() - the invalidation side of the handshake: set
 * backoff on every device fault overlapping @event and sleep until they
 * have all left. This is where an invalidation, even from reclaim, waits
 * for a device (the cost the v9 documentation lists as a known problem);
 * the wait is traced with its length. A device fault of the invalidating
 * thread itself (its own direct reclaim, from a hole allocation or a
 * swap-in of mm_hmm_migrate()) is told to back off but not waited for:
 * v8 would wait for itself forever there (a model deviation, counted as
 * hmm_v8_invalidate_own_fault).
 * Context: may sleep; called from a notifier callback.
 */
export function* hmm_wait_device_fault(h: hmm, event: hmm_event): Sleepable {
  if (hmm_v8_config.no_fault_backoff) return;
  const t0 = now();
  let slept = false;
  for (;;) {
    spin_lock(h.lock);
    let busy = false;
    for (const f of h.device_faults) {
      if (!overlaps(f, event.start, event.end)) continue;
      f.backoff = true;
      if (f.owner === current()) count_event('hmm_v8_invalidate_own_fault');
      else busy = true;
    }
    const n = h.ndevice_faults;
    spin_unlock(h.lock);
    if (!busy) break;
    slept = true;
    yield* wait_event(h.wait_queue, () => h.ndevice_faults !== n);
  }
  if (slept) {
    count_event('hmm_v8_invalidate_waited_for_device');
    count_event('hmm_v8_invalidate_wait_ns', now() - t0);
    trace_event('hmm_wait_device_fault', { mm: h.mm.id, start: event.start, end: event.end,
      etype: hmm_etype_names[event.etype], waited_ns: now() - t0 });
  }
}

/**
 * hmm_update() - forward @event to every mirror of @h: wait out device
 * faults, then update() + mirror table update per mirror; a mirror whose
 * driver fails is killed. @p: the page invalidate_page() passed, or null.
 * Context: may sleep; takes hmm.rwsem for read.
 */
export function* hmm_update(h: hmm, event: hmm_event, p: page | null): Sleepable {
  if (h.mm.hmm !== h) return;
  yield* hmm_wait_device_fault(h, event);
  const failed: hmm_mirror[] = [];
  yield* down_read(h.rwsem);
  for (const mirror of h.mirrors.slice()) {
    const ret = yield* hmm_mirror_update(mirror, event, p);
    if (ret) failed.push(mirror);
  }
  up_read(h.rwsem);
  for (const mirror of failed) yield* hmm_mirror_kill(mirror);
  wake_up_all(h.wait_queue);
}

/* The 2015 listener's callbacks. */
function* hmm_notifier_invalidate(h: hmm, p: page | null, start: number, end: number, ev: mmu_event): Sleepable {
  if (start >= h.vm_end) return;
  const etype = mmu_event_to_hmm_etype(h.mm, start, ev);
  if (etype === HMM_NONE) return;
  count_event('hmm_v8_invalidate');
  const event = hmm_event_new(h, start, end, etype);
  trace_event('hmm_notifier_invalidate', { mm: h.mm.id, start: event.start, end: event.end, etype: hmm_etype_names[etype] });
  yield* hmm_update(h, event, p);
  /* the core changes the CPU PTEs after start() returns: on SMP another CPU runs in between */
  yield* cond_resched();
}

const hmm_notifier_ops: mmu_notifier_ops_v8 = Object.freeze({
  *release(mn: mmu_notifier_v8, _mm: mm_struct): Sleepable { yield* hmm_notifier_release((mn as hmm_notifier).hmm); },
  *invalidate_page(mn: mmu_notifier_v8, _mm: mm_struct, addr: number, p: page | null, ev: mmu_event): Sleepable {
    yield* hmm_notifier_invalidate((mn as hmm_notifier).hmm, p, addr, addr + PAGE_SIZE, ev);
  },
  *invalidate_range_start(mn: mmu_notifier_v8, _mm: mm_struct, range: mmu_notifier_range): Sleepable {
    yield* hmm_notifier_invalidate((mn as hmm_notifier).hmm, null, range.start, range.end, range.v8_event ?? MMU_MIGRATE);
  },
  /* v8 does all its work at start: the range stays on the active list until end */
  *invalidate_range_end(): Sleepable { /* nothing */ },
});

/* ---- devices ---- */

/**
 * hmm_device_new() - a struct hmm_device for a driver (the driver owns it).
 * @dev: the DMA device, or null for raw pfns.
 */
export function hmm_device_new(name: string, ops: hmm_device['ops'], dev: hmm_device['dev'] = null): hmm_device {
  return { name, dev, ops, mirrors: [], mutex: lockdep_set_class(new mutex(`hmm_device[${name}].mutex`), '&device->mutex') };
}

/** hmm_device_register() - make @device usable. Return: 0, -EINVAL without ops. */
export function hmm_device_register(device: hmm_device): number {
  if (device.ops === null || device.ops === undefined) return -EINVAL;
  device.mirrors = [];
  return 0;
}

/** hmm_device_unregister() - Return: 0, or -EBUSY while mirrors remain. */
export function hmm_device_unregister(device: hmm_device): number {
  kasan_check(device, 'hmm_device_unregister');
  return device.mirrors.length > 0 ? -EBUSY : 0;
}

/* ---- mirrors ---- */

/**
 * hmm_mirror_register() - start mirroring @mm (current->mm in Linux) on
 * @mirror.device. Creates mm->hmm and its listener on first use.
 * Context: may sleep; takes mmap_lock for write. Return: 0 or -EINVAL.
 */
export function* hmm_mirror_register(mirror: hmm_mirror, mm: mm_struct): Sleepable<number> {
  if (mirror.device === null || mirror.device === undefined || mm.mm_users <= 0) return -EINVAL;
  mirror.kref = hmm_v8_config.lifetime === 'v9' ? 2 : 1;   /* v9: the driver's own + the list's */
  mirror.pt = hmm_pt_init(TASK_SIZE - 1);
  mirror.dead = false;
  yield* mutex_lock(mirror.device.mutex);
  mirror.device.mirrors.push(mirror);
  mutex_unlock(mirror.device.mutex);
  yield* mmap_write_lock(mm);
  let h = hmm_of(mm);
  if (h === null) {
    h = new hmm(mm);
    __mmu_notifier_register_v8(h.mmu_notifier, mm);
    mm.hmm = h;
  } else {
    h.kref++;
  }
  mmap_write_unlock(mm);
  yield* down_write(h.rwsem);
  h.mirrors.push(mirror);
  up_write(h.rwsem);
  mirror.hmm = h;
  trace_event('hmm_mirror_register', { mm: mm.id, device: mirror.device.name, lifetime: hmm_v8_config.lifetime });
  return 0;
}

/** hmm_mirror_ref() - take a reference; null if the mirror is already being destroyed. */
export function hmm_mirror_ref(mirror: hmm_mirror): hmm_mirror | null {
  kasan_check(mirror, 'hmm_mirror_ref');
  if (mirror.kref <= 0) return null;
  mirror.kref++;
  return mirror;
}

/** hmm_mirror_unref() - drop a reference; the last one destroys the mirror. Context: may sleep. */
export function* hmm_mirror_unref(mirror: hmm_mirror): Sleepable {
  kasan_check(mirror, 'hmm_mirror_unref');
  if (mirror.kref <= 0) throw new KernelBugError('hmm_mirror_unref: reference count underflow');
  if (--mirror.kref === 0) yield* hmm_mirror_destroy(mirror);
}

function* hmm_mirror_destroy(mirror: hmm_mirror): Sleepable {
  const device = mirror.device;
  kasan_check(device, 'hmm_mirror_destroy');
  hmm_pt_fini(mirror_pt(mirror));
  yield* mutex_lock(device.mutex);
  const i = device.mirrors.indexOf(mirror);
  if (i >= 0) device.mirrors.splice(i, 1);
  mutex_unlock(device.mutex);
  const h = mirror_hmm(mirror);
  mirror.hmm = null;
  mirror.dead = true;
  if (h !== null) hmm_unref(h);
  trace_event('hmm_mirror_destroy', { device: device.name, lifetime: hmm_v8_config.lifetime });
  if (hmm_v8_config.lifetime === 'v8') yield* device.ops.release(mirror);
  else device.ops.free?.(mirror);
}

function hmm_unref(h: hmm): void {
  if (--h.kref > 0) return;
  if (h.mm.hmm === h) h.mm.hmm = null;
  mmu_notifier_unregister_no_release_v8(h.mmu_notifier, h.mm);
}

/* Remove @mirror from its hmm's list. Return: true if this call removed it. */
function* hmm_mirror_unlink(h: hmm, mirror: hmm_mirror): Sleepable<boolean> {
  yield* down_write(h.rwsem);
  const i = h.mirrors.indexOf(mirror);
  if (i >= 0) h.mirrors.splice(i, 1);
  up_write(h.rwsem);
  return i >= 0;
}

/* Tell the device and the mirror table that everything is gone (an MUNMAP of the whole space). */
function* hmm_mirror_teardown(h: hmm, mirror: hmm_mirror): Sleepable {
  mirror.dead = true;
  const event = hmm_event_new(h, 0, h.vm_end, HMM_MUNMAP);
  kasan_check(mirror, 'hmm_mirror_teardown');
  yield* mirror.device.ops.update(mirror, event);
  yield* cond_resched();
  kasan_check(mirror, 'hmm_mirror_teardown');
  hmm_mirror_update_pt(mirror, event, null);
}

/**
 * hmm_mirror_kill() - stop @mirror for good (a driver error, or the
 * driver's request): an MUNMAP of everything to this mirror only, off the
 * list, drop the list's reference.
 * Context: may sleep; takes hmm.rwsem for write (not held by the caller).
 */
export function* hmm_mirror_kill(mirror: hmm_mirror): Sleepable {
  const h = mirror_hmm(mirror);
  if (h === null) return;
  if (!(yield* hmm_mirror_unlink(h, mirror))) return;
  count_event('hmm_v8_mirror_kill');
  yield* hmm_mirror_teardown(h, mirror);
  yield* hmm_mirror_unref(mirror);
}

/**
 * hmm_mirror_unregister() - the driver is done with @mirror.
 *  v8: if the mirror is still listed, tear it down and drop the list's
 *      reference (the last put calls ->release); the driver frees its
 *      structures when this returns.
 *  v9: the same, then wait for notifier callbacks in flight, then drop the
 *      driver's reference; the last put calls ->free.
 * Context: may sleep; not from a notifier callback.
 */
export function* hmm_mirror_unregister(mirror: hmm_mirror): Sleepable {
  kasan_check(mirror, 'hmm_mirror_unregister');
  const h = mirror_hmm(mirror);
  if (h !== null && (yield* hmm_mirror_unlink(h, mirror))) {
    yield* hmm_mirror_teardown(h, mirror);
    yield* hmm_mirror_unref(mirror);
  }
  if (hmm_v8_config.lifetime === 'v8') return;
  if (h !== null) yield* mmu_notifier_synchronize_v8(h.mm);
  yield* hmm_mirror_unref(mirror);
}

/**
 * hmm_notifier_release() - the mm is being torn down: detach every mirror.
 *  v8: the mirror is taken off the list with no reference of its own,
 *      the device is told (which may sleep), then the list's reference is
 *      dropped: a driver that freed the mirror meanwhile (its close ran
 *      unregister, found nothing listed, and freed) is used after free here.
 *  v9: ->release tells the driver the mm is gone; the references keep the
 *      mirror alive until the driver's own unregister.
 * Context: may sleep (mmu_notifier release).
 */
export function* hmm_notifier_release(h: hmm): Sleepable {
  trace_event('hmm_notifier_release', { mm: h.mm.id, mirrors: h.mirrors.length, lifetime: hmm_v8_config.lifetime });
  yield* down_write(h.rwsem);
  while (h.mirrors.length > 0) {
    const mirror = h.mirrors.shift()!;
    up_write(h.rwsem);
    yield* hmm_mirror_teardown(h, mirror);
    if (hmm_v8_config.lifetime === 'v9') {
      yield* mirror.device.ops.release(mirror);
      kasan_check(mirror, 'hmm_notifier_release');
    }
    yield* hmm_mirror_unref(mirror);
    yield* down_write(h.rwsem);
  }
  up_write(h.rwsem);
  wake_up_all(h.wait_queue);
}

/** hmm_mirror_is_dead() - for drivers: may this mirror still fault? */
export function hmm_mirror_is_dead(mirror: hmm_mirror): boolean {
  return mirror.dead || mirror.hmm === null;
}

