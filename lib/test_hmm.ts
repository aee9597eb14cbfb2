/*
 * lib/test_hmm.ts - the HMM test driver ("dmirror"): a pretend device that
 * mirrors the address space of the process that opened it, for the HMM
 * self-tests (tools/testing/selftests/mm/hmm-tests.ts).
 *
 * Follows lib/test_hmm.c of Linux (the version with device-coherent
 * memory, FLAGS/FAIL_ALLOC and PMD-sized device folios). This file is the
 * front door: the devices, open/release/mmap and the ioctl dispatcher with
 * its checks. The device's mirror of the process (its page table, device
 * faults through hmm_range_fault(), SNAPSHOT and device-exclusive access)
 * lives in lib/test_hmm_mirror.ts, device memory in lib/test_hmm_devmem.ts
 * (its eviction in lib/test_hmm_evict.ts), the migrations in
 * lib/test_hmm_migrate.ts; the ABI is
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
 * mmu_interval_notifier over the whole address space (dmirror_min_ops,
 * lib/test_hmm_mirror.ts, which also has the retry protocol every HMM
 * driver follows).
 *
 * Close (dmirror_fops_release) does not evict, as in Linux: a closed
 * mirror's pages stay on the device. Deviation from Linux: a mirror skips
 * only the MMU_NOTIFY_MIGRATE invalidations of migrations done for it
 * (dmirror_migrate_begin(), lib/test_hmm_devmem.ts), not every one of its
 * device, so that a mirror opened after the close, or a second mirror of
 * the same mm, never keeps an entry for a page another mirror moved; and
 * a closed dmirror stays an empty shell for the CPU fault on its pages to
 * find, where Linux frees it (a use-after-free there).
 *
 * Lock order: mmap_lock -> dmirror.mutex (never the other way: the mutex
 * is taken inside notifier callbacks, which run under mmap_lock).
 */
import type { vm_area_struct } from '../include/linux/mm_types.js';
import type { file, file_operations, inode } from '../include/linux/sched.js';
import { PAGE_SIZE, PAGE_SHIFT, VM_MIXEDMAP } from '../include/linux/mm.js';
import {
  HMM_DMIRROR_CMD_SIZE, HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS,
  HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_RELEASE, HMM_DMIRROR_FLAGS,
  HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, HMM_DMIRROR_MEMORY_DEVICE_COHERENT, hmm_dmirror_cmd_decode,
  hmm_dmirror_cmd_encode, hmm_dmirror_cmd_name, type hmm_dmirror_cmd,
} from '../include/uapi/linux/test_hmm.js';
import { GFP_KERNEL, __GFP_ZERO } from '../include/linux/gfp.js';
import { EINVAL, EFAULT, ENOMEM } from '../include/uapi/asm-generic/errno.js';
import { runSync, type Sleepable } from './sim/sched.js';
import { trace_event, trace_event_begin, count_event } from './sim/trace.js';
import { alloc_page_sleepable, put_page, __free_pages } from '../mm/page_alloc.js';
import { vm_insert_page } from '../mm/memory.js';
import { mmu_interval_notifier_insert, mmu_interval_notifier_remove } from '../mm/mmu_notifier.js';
import { copy_from_user, copy_to_user } from '../mm/fault.js';
import { misc_register } from '../mm/file.js';
import {
  DMIRROR_NDEVICES, dmirror, dmirror_device, dmirror_params, dmirror_allocate_chunk,
} from './test_hmm_devmem.js';
import { dmirror_device_remove_chunks } from './test_hmm_evict.js';
import { current_mm, dmirror_cmd_range } from './test_hmm_dpt.js';
import { dmirror_migrate_to_device, dmirror_migrate_to_system } from './test_hmm_migrate.js';
export { dmirror, dmirror_device, dmirror_params } from './test_hmm_devmem.js';
import {
  dmirror_min_ops, dmirror_read, dmirror_write, dmirror_exclusive, dmirror_snapshot, dmirror_check_atomic,
  type dmirror_interval,
} from './test_hmm_mirror.js';
const DMIRROR_NOTIFIER_LENGTH = 2 ** 53 - PAGE_SIZE;
/* major number of the character devices (Linux allocates one dynamically) */
const DMIRROR_MAJOR = 240;

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
 * dmirror_fops_release() - last close: unsubscribe and drop the device
 * page table, as Linux does. Device memory stays where it is: pages this
 * mirror migrated stay device pages of the process until the CPU faults
 * them back, HMM_DMIRROR_RELEASE evicts them or the process unmaps them.
 * Their backing pages still name this mirror, which Linux frees here;
 * the model keeps it as an empty shell (no notifier, no entries, no
 * flags) for dmirror_devmem_fault() to find.
 */
function* dmirror_fops_release(_ino: inode, filp: file): Sleepable<number> {
  const d = filp.private_data as dmirror;
  yield* mmu_interval_notifier_remove(d.notifier);
  d.pt.clear();
  d.flags = 0n;
  filp.private_data = null;
  trace_event('dmirror_release', { dev: d.mdevice.minor });
  return 0;
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
 * Context: mmap_lock held for write; may sleep. Return: 0, -ENOMEM, -EBUSY.
 */
export function* dmirror_fops_mmap(_filp: file, vma: vm_area_struct): Sleepable<number> {
  vma.vm_flags |= VM_MIXEDMAP;
  for (let addr = vma.vm_start; addr < vma.vm_end; addr += PAGE_SIZE) {
    const p = yield* alloc_page_sleepable(GFP_KERNEL | __GFP_ZERO);      /* may sleep in reclaim, as Linux's */
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
