/*
 * drivers/infiniband/core/umem_odp_hmm_v8.ts - ODP re-implemented on HMM
 * v8, as patches 29-36 of Jerome Glisse's 2015 series proposed ("IB/mlx5,
 * IB/odp: ODP on HMM"; the cover letter: "long term plan is to have HMM
 * completely replace ODP"). The reviewer asked to keep ODP and HMM side by
 * side; so does this tree (ib_device.odp_design).
 *
 * What changes against the 2014 design (umem_odp_2014.ts):
 *  - the ib_ucontext no longer registers its own mmu_notifier nor keeps
 *    notifiers_count/notifiers_seq: it is an hmm_mirror of the process' mm
 *    (one per context, registered with the first ODP umem), and the
 *    mlx5 device is an hmm_device whose dev is the NIC's DMA device;
 *  - a fault is hmm_mirror_fault(HMM_DEVICE_RFAULT / WFAULT): HMM walks the
 *    CPU page table into its mirror table (hmm_pt on lib/gpt), faults what
 *    is missing with handle_mm_fault(), DMA-maps the pages itself, and
 *    calls our update() with the event while it guarantees that no
 *    invalidation of the range has passed (the fault registers itself, an
 *    overlapping invalidation sets backoff and the fault starts over);
 *  - no get_user_pages(), no page reference at any time;
 *  - invalidations arrive as update() events (HMM_MIGRATE, HMM_MUNMAP,
 *    HMM_FORK, HMM_WRITE_PROTECT), already decoded from the 2015
 *    mmu_event: the driver zaps the MTT of every umem of the context in
 *    the range.
 *
 * Follows the v8 API as mm/hmm_v8/ models it (include/linux/hmm_v8.ts);
 * the ODP patches themselves are known only from the series' cover letter
 * and its review, so the glue below is this model's reading of them.
 * Simplified: the MTT is programmed from dma_list by the caller after
 * hmm_mirror_fault() returns, under umem_mutex (the contract of
 * umem_odp.ts), rather than inside update(); update() writes dma_list
 * under the same mutex, so an invalidation that runs in between clears
 * what it would have zapped. HMM_ISDIRTY is answered by doing nothing (the
 * NIC's dirty state is reported at unmap, with set_page_dirty).
 */
import {
  type ib_umem_odp, type ib_ucontext_odp, ODP_READ_ALLOWED_BIT, ODP_WRITE_ALLOWED_BIT,
  ib_umem_start, ib_umem_end,
} from '../../../include/rdma/ib_umem_odp.js';
import {
  HMM_DEVICE_RFAULT, HMM_DEVICE_WFAULT, HMM_MIGRATE, HMM_MUNMAP, HMM_FORK, HMM_WRITE_PROTECT, HMM_ISDIRTY,
  hmm_pte_test_valid_dma, hmm_pte_dma_addr, type hmm_device, type hmm_event, type hmm_mirror,
} from '../../../include/linux/hmm_v8.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { HMM_RANGE_DEFAULT_TIMEOUT_NS } from '../../../include/linux/hmm.js';
import { EBUSY, EINVAL, EIO, EOPNOTSUPP, EFAULT } from '../../../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../../../lib/sim/sched.js';
import { now, charge } from '../../../lib/sim/clock.js';
import { PAGE_TABLE_WALK_NS, PTE_UPDATE_NS } from '../../../lib/sim/costs.js';
import { mutex_lock, mutex_unlock } from '../../../lib/locking/mutex.js';
import { count_event, trace_event } from '../../../lib/sim/trace.js';
import { device, dma_to_pfn } from '../../../lib/dma/mapping.js';
import { hmm_device_new, hmm_device_register, hmm_mirror_register, hmm_mirror_unregister } from '../../../mm/hmm_v8/hmm.js';
import { hmm_mirror_fault } from '../../../mm/hmm_v8/fault.js';
import { hmm_pt_lookup, hmm_pt_load, type hmm_pt } from '../../../mm/hmm_v8/hmm_pt.js';
import { pfn_to_page } from '../../../mm/page_alloc.js';

/* the fault event carries the umem it is for (container_of in C) */
interface odp_event extends hmm_event { odp: ib_umem_odp | null; }

/* one hmm_device per NIC DMA device */
const hmm_devices = new WeakMap<device, hmm_device>();

function uctx_of(mirror: hmm_mirror): ib_ucontext_odp { return mirror.driver_data as ib_ucontext_odp; }

/*
 * A device fault's update(): copy the entries HMM just made valid (and
 * DMA-mapped) into the umem's dma_list. HMM holds off invalidations of the
 * range until this returns.
 */
function* odp_v8_update_fault(mirror: hmm_mirror, ev: odp_event): Sleepable<number> {
  const odp = ev.odp;
  if (odp === null) return -EINVAL;
  const pt = mirror.pt as hmm_pt;
  const dev = mirror.device.dev!;
  const access = ODP_READ_ALLOWED_BIT | (ev.etype === HMM_DEVICE_WFAULT ? ODP_WRITE_ALLOWED_BIT : 0);
  yield* mutex_lock(odp.umem_mutex);
  for (let a = Math.max(ev.start, ib_umem_start(odp)); a < Math.min(ev.end, ib_umem_end(odp)); a += PAGE_SIZE) {
    const ptr = hmm_pt_lookup(pt, a);
    const e = ptr < 0 ? 0 : hmm_pt_load(pt, ptr);
    if (!hmm_pte_test_valid_dma(e)) break;
    const idx = (a - ib_umem_start(odp)) / PAGE_SIZE;
    const dma = hmm_pte_dma_addr(e);
    const cur = odp.dma_list[idx];
    if (cur !== 0 && cur - (cur % 4) === dma) { odp.dma_list[idx] = dma + ((cur % 4) | access); continue; }
    if (cur === 0) odp.npages++;
    odp.dma_list[idx] = dma + access;
    odp.page_list[idx] = pfn_to_page(dma_to_pfn(dev, dma));
  }
  mutex_unlock(odp.umem_mutex);
  /* HMM walked the CPU table once per PMD into hmm_pt (one entry write per page), the driver copies each entry */
  const n = (ev.end - ev.start) / PAGE_SIZE;
  charge(Math.ceil(n / 512) * PAGE_TABLE_WALK_NS + n * 2 * PTE_UPDATE_NS);
  return 0;
}

/* An invalidation's update(): zap every umem of the context in the range. */
function* odp_v8_update_invalidate(mirror: hmm_mirror, ev: hmm_event): Sleepable<number> {
  const uctx = uctx_of(mirror);
  for (const odp of uctx.umem_tree.overlapping(ev.start, ev.end - 1)) {
    yield* mutex_lock(odp.umem_mutex);
    if (odp.npages > 0) uctx.invalidate_range(odp, ev.start, ev.end);
    mutex_unlock(odp.umem_mutex);
  }
  return 0;
}

function* odp_v8_update(mirror: hmm_mirror, event: hmm_event): Sleepable<number> {
  switch (event.etype) {
    case HMM_DEVICE_RFAULT: case HMM_DEVICE_WFAULT: return yield* odp_v8_update_fault(mirror, event as odp_event);
    case HMM_MIGRATE: case HMM_MUNMAP: case HMM_FORK: case HMM_WRITE_PROTECT: return yield* odp_v8_update_invalidate(mirror, event);
    case HMM_ISDIRTY: return 0;
    default: return -EIO;
  }
}

const odp_v8_ops = Object.freeze({
  *release(mirror: hmm_mirror): Sleepable {
    const uctx = uctx_of(mirror);
    for (const odp of uctx.umem_tree.overlapping(0, Number.MAX_SAFE_INTEGER)) {
      yield* mutex_lock(odp.umem_mutex);
      if (odp.npages > 0) uctx.invalidate_range(odp, ib_umem_start(odp), ib_umem_end(odp));
      odp.dead = true;
      mutex_unlock(odp.umem_mutex);
    }
  },
  free(_mirror: hmm_mirror): void { /* the context owns the mirror */ },
  update: odp_v8_update,
  *copy_from_device(): Sleepable<number> { return -EOPNOTSUPP; },   /* a NIC has no device memory */
  *copy_to_device(): Sleepable<number> { return -EOPNOTSUPP; },
});

function odp_hmm_device(dev: device): hmm_device {
  let hd = hmm_devices.get(dev);
  if (hd === undefined) {
    hd = hmm_device_new(`mlx5_ib(${dev.name})`, odp_v8_ops, dev);
    hmm_device_register(hd);
    hmm_devices.set(dev, hd);
  }
  return hd;
}

/**
 * umem_odp_v8_init() - put the umem in the context's tree; the first one
 * registers the context's mirror. Context: may sleep. Return: 0 or -errno.
 */
export function* umem_odp_v8_init(odp: ib_umem_odp): Sleepable<number> {
  const uctx = odp.uctx;
  if (uctx.mirror === null) {
    const mirror: hmm_mirror = { device: odp_hmm_device(uctx.dma_device as device), hmm: null, kref: 0, pt: null, dead: false, driver_data: uctx };
    const ret = yield* hmm_mirror_register(mirror, uctx.mm);
    if (ret) return ret;
    uctx.mirror = mirror;
  }
  uctx.umem_tree.insert(odp);
  odp.mn_counters_active = true;
  return 0;
}

/** umem_odp_v8_release() - out of the tree; the last umem unregisters the mirror. */
export function* umem_odp_v8_release(odp: ib_umem_odp): Sleepable {
  const uctx = odp.uctx;
  uctx.umem_tree.remove(odp);
  if (uctx.umem_tree.size === 0 && uctx.mirror !== null) {
    const mirror = uctx.mirror as hmm_mirror;
    uctx.mirror = null;
    yield* hmm_mirror_unregister(mirror);
  }
}

/**
 * umem_odp_v8_map_dma_and_lock() - the v8 fault: hmm_mirror_fault() until
 * the first page is in dma_list with the access asked for, then count the
 * valid run under umem_mutex (see umem_odp.ts for the contract).
 * Context: may sleep. Return: pages (umem_mutex held) or -errno: -EFAULT
 * (no VMA), -EACCES (write fault on a VMA without VM_WRITE), -ENODEV (the
 * mirror died with the mm), -EBUSY (kept losing races past the timeout),
 * -EOPNOTSUPP for a no-fault prefetch (v8 has no such mode).
 */
export function* umem_odp_v8_map_dma_and_lock(odp: ib_umem_odp, user_virt: number, bcnt: number,
                                              access_mask: number, fault: boolean): Sleepable<number> {
  if (!fault) return -EOPNOTSUPP;
  const mirror = odp.uctx.mirror as hmm_mirror | null;
  if (mirror === null) return -EINVAL;
  const start = user_virt - (user_virt % PAGE_SIZE);
  const end = Math.min(Math.ceil((user_virt + bcnt) / PAGE_SIZE) * PAGE_SIZE, ib_umem_end(odp));
  const write = (access_mask & ODP_WRITE_ALLOWED_BIT) !== 0;
  const deadline = now() + HMM_RANGE_DEFAULT_TIMEOUT_NS;
  let ret: number;
  for (;;) {
    const ev: odp_event = { start, end, etype: write ? HMM_DEVICE_WFAULT : HMM_DEVICE_RFAULT, pte_mask: 0, backoff: false, odp };
    do ret = yield* hmm_mirror_fault(mirror, ev); while (ret === -EBUSY && now() < deadline);
    if (ret) break;
    yield* mutex_lock(odp.umem_mutex);
    ret = valid_run(odp, start, end, access_mask);
    if (ret > 0) break;
    mutex_unlock(odp.umem_mutex);            /* an invalidation beat us to it: fault again */
    count_event('ib_umem_odp_retry');
    if (now() >= deadline) { ret = -EBUSY; break; }
  }
  trace_event('ib_umem_odp_hmm_fault', { design: 'hmm_v8', start, end, write, ret });
  return ret === 0 ? -EFAULT : ret;
}

/* Pages from @start with at least @access_mask in dma_list; umem_mutex held. */
function valid_run(odp: ib_umem_odp, start: number, end: number, access_mask: number): number {
  let k = 0;
  for (let a = start; a < end; a += PAGE_SIZE, k++) {
    const e = odp.dma_list[(a - ib_umem_start(odp)) / PAGE_SIZE];
    if (e === 0 || ((e % 4) & access_mask) !== access_mask) break;
  }
  return k;
}

