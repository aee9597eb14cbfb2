/*
 * mm/mmap.ts - mmap() and munmap().
 *
 * Models mm/mmap.c (do_mmap, mmap_region, the syscall checks of
 * ksys_mmap_pgoff) and the munmap half of mm/vma.c (do_vmi_munmap:
 * split at the edges, zap with MMU_NOTIFY_UNMAP, free page tables, drop
 * the VMAs). Errors are the raw syscall's: -EINVAL for bad alignment,
 * length or flags, -ENOMEM when no room is left, -EEXIST for
 * MAP_FIXED_NOREPLACE over a mapping, -EBADF/-EACCES for file problems.
 */
import { vm_area_struct, type mm_struct } from '../include/linux/mm_types.js';
import type { file } from '../include/linux/sched.js';
import {
  PAGE_SIZE, PMD_SIZE, PAGE_ALIGN, VM_READ, VM_WRITE, VM_EXEC, VM_SHARED, VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC,
  VM_MAYSHARE, VM_NORESERVE, VM_HUGETLB, VM_ACCESS_FLAGS, FOLL_WRITE, VM_PEER_SHARED, VM_DONTCOPY,
} from '../include/linux/mm.js';
import { _PAGE_PRESENT, _PAGE_USER, _PAGE_ACCESSED, _PAGE_RW, _PAGE_PROTNONE } from '../include/linux/pgtable.js';
import {
  PROT_READ, PROT_WRITE, PROT_EXEC, PROT_NONE, MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE,
  MAP_FIXED, MAP_ANONYMOUS, MAP_POPULATE, MAP_FIXED_NOREPLACE, MAP_NORESERVE, MAP_HUGETLB, MAP_NONBLOCK,
  MAP_PEER_SHARED,
} from '../include/uapi/asm-generic/mman.js';
import { EINVAL, ENOMEM, EEXIST, EBADF, EACCES, ENODEV, EOVERFLOW } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { trace_event } from '../lib/sim/trace.js';
import { mmap_write_lock, mmap_write_unlock, mmap_assert_write_locked, mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import { find_vma_intersection, vma_link, vma_unlink, vma_merge, vmasInRange, split_vma, get_unmapped_area } from './vma.js';
import { unmap_vmas } from './zap.js';
import { free_pgtables } from './pgtable.js';
import { unlink_anon_vmas } from './rmap.js';
import { fget_ref, fput_ref, flush_delayed_fput, O_ACCMODE, O_RDONLY, O_WRONLY } from './file.js';
import { shmem_zero_setup } from './shmem.js';
import { populate_vma_page_range } from './gup.js';
import { vma_adjust_trans_huge } from './huge_memory.js';
import { thp_get_unmapped_area } from './huge_memory_pmd.js';
import { hugetlb_vm_op_split } from './hugetlb.js';
import { hugetlb_file_setup } from './hugetlbfs.js';
import { gm_alloc_va_in_peer_devices, munmap_in_peer_devices } from './gmem.js';

/**
 * vm_get_page_prot() - the PTE protection bits for a VMA's flags.
 * x86 cannot express write-only or execute-only: any access flag makes
 * the page readable. Private writable mappings get read-only entries so
 * that the first write goes through do_wp_page (copy on write); shared
 * writable ones are mapped writable.
 */
export function vm_get_page_prot(vm_flags: number): number {
  if ((vm_flags & VM_ACCESS_FLAGS) === 0) return _PAGE_PROTNONE | _PAGE_ACCESSED;
  let prot = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
  if ((vm_flags & (VM_WRITE | VM_SHARED)) === (VM_WRITE | VM_SHARED)) prot |= _PAGE_RW;
  return prot;
}

/** calc_vm_prot_bits() - PROT_* to VM_READ/VM_WRITE/VM_EXEC. */
export function calc_vm_prot_bits(prot: number): number {
  return (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0);
}

/** calc_vm_flag_bits() - MAP_* flags that become VM_* flags. */
function calc_vm_flag_bits(flags: number): number {
  return (flags & MAP_NORESERVE ? VM_NORESERVE : 0) | (flags & MAP_HUGETLB ? VM_HUGETLB : 0);
}

/**
 * mmap_region() - create the VMA for [addr, addr + len) and link it,
 * replacing whatever was mapped there (MAP_FIXED did the unmap already).
 * Return: addr, or -errno from the file's ->mmap.
 */
function* mmap_region(mm: mm_struct, f: file | null, addr: number, len: number, vm_flags: number,
                      pgoff: number): Sleepable<number> {
  const vma = new vm_area_struct(mm, addr, addr + len, vm_flags, vm_get_page_prot(vm_flags));
  vma.vm_pgoff = pgoff;
  if (f !== null) {
    vma.vm_file = f;
    fget_ref(f);
    const ret = f.f_op.mmap ? yield* f.f_op.mmap(f, vma) : -ENODEV;
    if (ret < 0) { fput_ref(f); yield* flush_delayed_fput(); return ret; }
    vma.vm_page_prot = vm_get_page_prot(vma.vm_flags);
  } else if (vm_flags & VM_SHARED) {
    const ret = shmem_zero_setup(vma);
    if (ret < 0) return ret;
  } else {
    vma.vm_pgoff = addr / PAGE_SIZE;
  }
  vma_link(mm, vma);
  const merged = vma_merge(mm, vma);
  mm.total_vm += len / PAGE_SIZE;
  trace_event('mmap_region', { mm: mm.id, start: merged.vm_start, end: merged.vm_end, flags: merged.vm_flags });
  return addr;
}

/**
 * mm_get_unmapped_area() - where a new mapping of len bytes goes
 * (__get_unmapped_area): the file's own choice (hugetlbfs aligns to its
 * page size), a PMD-aligned place for an anonymous mapping of a multiple
 * of 2 MiB without a hint (so THPs can map it), or the generic top-down
 * search. Return: the address, or -ENOMEM / -EINVAL.
 */
export function mm_get_unmapped_area(mm: mm_struct, f: file | null, addr: number, len: number, pgoff: number,
                                     flags: number): number {
  if (f !== null && f.f_op.get_unmapped_area !== undefined) return f.f_op.get_unmapped_area(f, mm, addr, len, pgoff, flags);
  if (f === null && addr === 0 && len % PMD_SIZE === 0 && (flags & MAP_TYPE) !== MAP_SHARED) return thp_get_unmapped_area(mm, len);
  return get_unmapped_area(mm, addr, len);
}

/**
 * do_mmap() - the body of mmap(2) with mmap_lock held for write.
 * @f: the file for file mappings, null for MAP_ANONYMOUS.
 * @pgoff: offset in the file, in pages.
 * Return: the mapped address, or -errno.
 */
export function* do_mmap(mm: mm_struct, f: file | null, addr: number, len: number, prot: number,
                         flags: number, pgoff: number): Sleepable<number> {
  mmap_assert_write_locked(mm);
  if (len === 0) return -EINVAL;
  len = PAGE_ALIGN(len);
  if (len === 0 || len > mm.task_size) return -ENOMEM;
  if (pgoff + len / PAGE_SIZE < pgoff) return -EOVERFLOW;
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return -EINVAL;

  let vm_flags = calc_vm_prot_bits(prot) | calc_vm_flag_bits(flags) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  const type = flags & MAP_TYPE;
  if (type === MAP_SHARED || type === MAP_SHARED_VALIDATE) {
    vm_flags |= VM_SHARED | VM_MAYSHARE;
    if (f !== null) {
      const acc = f.f_flags & O_ACCMODE;
      if ((prot & PROT_WRITE) && acc === O_RDONLY) return -EACCES;
      if (acc === O_RDONLY) vm_flags &= ~VM_MAYWRITE;
    }
  } else if (type !== MAP_PRIVATE) {
    return -EINVAL;
  }
  if (f !== null && (f.f_flags & O_ACCMODE) === O_WRONLY) return -EACCES;
  if ((flags & MAP_PEER_SHARED) && !(flags & MAP_HUGETLB)) {     /* GMEM place 1 (mm/gmem.ts) */
    if (f !== null || type !== MAP_PRIVATE) return -EINVAL;
    const ret = gm_alloc_va_in_peer_devices(mm);
    if (ret) return ret;
    vm_flags |= VM_PEER_SHARED | VM_DONTCOPY;
  }

  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    if (addr % PAGE_SIZE !== 0) return -EINVAL;
    if (addr + len > mm.task_size || addr < 0) return -ENOMEM;
    if (find_vma_intersection(mm, addr, addr + len) !== null) {
      if (flags & MAP_FIXED_NOREPLACE) return -EEXIST;
      const ret = yield* do_munmap(mm, addr, len);
      if (ret < 0) return ret;
    }
  } else {
    addr = mm_get_unmapped_area(mm, f, addr, len, pgoff, flags);
    if (addr < 0) return addr;
  }
  return yield* mmap_region(mm, f, addr, len, vm_flags, f !== null ? pgoff : 0);
}

/**
 * ksys_mmap_pgoff() - mmap(2): take mmap_lock, map, and populate the
 * range for MAP_POPULATE (after downgrading, as Linux's mm_populate runs
 * without the write lock).
 * Return: the address, or -errno.
 */
export function* ksys_mmap_pgoff(mm: mm_struct, addr: number, len: number, prot: number, flags: number,
                                 f: file | null, pgoff: number): Sleepable<number> {
  if (!(flags & MAP_ANONYMOUS) && f === null) return -EBADF;
  if (flags & MAP_ANONYMOUS) f = null;
  let hugetlb_file: file | null = null;
  if (f === null && (flags & MAP_HUGETLB)) {
    /* an anonymous MAP_HUGETLB mapping is a mapping of an unlinked hugetlbfs file */
    const r = hugetlb_file_setup(len, flags);
    if (typeof r === 'number') return r;
    f = hugetlb_file = r;
    len = r.f_inode.i_size;
  }
  yield* mmap_write_lock(mm);
  const ret = yield* do_mmap(mm, f, addr, len, prot, flags, pgoff);
  mmap_write_unlock(mm);
  if (hugetlb_file !== null) { fput_ref(hugetlb_file); yield* flush_delayed_fput(); }
  if (ret >= 0 && (flags & (MAP_POPULATE | MAP_NONBLOCK)) === MAP_POPULATE && prot !== PROT_NONE) {
    yield* mm_populate(mm, ret, PAGE_ALIGN(len));
  }
  return ret;
}

/**
 * mm_populate() - fault in [start, start + len) as MAP_POPULATE or
 * mlock do: writable private mappings are write-faulted so COW happens
 * now. Errors are ignored, as in Linux.
 */
export function* mm_populate(mm: mm_struct, start: number, len: number): Sleepable {
  yield* mmap_read_lock(mm);
  for (const vma of vmasInRange(mm, start, start + len)) {
    const s = Math.max(start, vma.vm_start), e = Math.min(start + len, vma.vm_end);
    const gup = (vma.vm_flags & VM_WRITE) && !(vma.vm_flags & VM_SHARED) ? FOLL_WRITE : 0;
    yield* populate_vma_page_range(vma, s, e, gup);
  }
  mmap_read_unlock(mm);
}

/* Remove one VMA that lies entirely inside the unmapped range. */
function remove_vma(mm: mm_struct, vma: vm_area_struct): void {
  vma.vm_ops?.close?.(vma);
  unlink_anon_vmas(vma);
  if (vma.vm_file !== null) fput_ref(vma.vm_file);
  mm.total_vm -= (vma.vm_end - vma.vm_start) / PAGE_SIZE;
  vma_unlink(mm, vma);
}

/**
 * do_munmap() - unmap [start, start + len) with mmap_lock held for write:
 * split the VMAs at the edges, zap the pages (MMU_NOTIFY_UNMAP), free the
 * page tables, remove the VMAs.
 * Return: 0, or -EINVAL for a misaligned start, zero length or a range
 * beyond TASK_SIZE.
 */
export function* do_munmap(mm: mm_struct, start: number, len: number): Sleepable<number> {
  mmap_assert_write_locked(mm);
  if (start % PAGE_SIZE !== 0 || start > mm.task_size || len > mm.task_size - start) return -EINVAL;
  len = PAGE_ALIGN(len);
  if (len === 0) return -EINVAL;
  const end = start + len;
  let vmas = vmasInRange(mm, start, end);
  if (vmas.length === 0) return 0;
  const last = vmas[vmas.length - 1];
  if (hugetlb_vm_op_split(vmas[0], start) < 0 || hugetlb_vm_op_split(last, end) < 0) return -EINVAL;
  yield* vma_adjust_trans_huge(vmas[0], start, end);      /* no huge PMD across the cuts */
  if (last !== vmas[0]) yield* vma_adjust_trans_huge(last, start, end);
  if (vmas[0].vm_start < start) split_vma(mm, vmas[0], start, true);
  if (last.vm_end > end) split_vma(mm, last, end, false);
  vmas = vmasInRange(mm, start, end);
  const zs = Math.max(start, vmas[0].vm_start), ze = Math.min(end, vmas[vmas.length - 1].vm_end);
  yield* munmap_in_peer_devices(mm, zs, ze);       /* GMEM place 3 */
  yield* unmap_vmas(mm, vmas, zs, ze);
  free_pgtables(mm, zs, ze);
  for (const vma of vmas) remove_vma(mm, vma);
  trace_event('munmap', { mm: mm.id, start, end });
  return 0;
}

/**
 * __vm_munmap() - munmap(2): take mmap_lock for write and unmap.
 * Return: 0 or -EINVAL.
 */
export function* __vm_munmap(mm: mm_struct, start: number, len: number): Sleepable<number> {
  yield* mmap_write_lock(mm);
  const ret = yield* do_munmap(mm, start, len);
  mmap_write_unlock(mm);
  yield* flush_delayed_fput();
  return ret;
}

/**
 * exit_mmap() - tear down every mapping of an mm whose last user left:
 * zap everything (MMU_NOTIFY_UNMAP; whole-mm subscribers were already
 * released by mmu_notifier_release), free the page tables, drop the VMAs.
 * Context: may sleep.
 */
export function* exit_mmap(mm: mm_struct): Sleepable {
  yield* mmap_write_lock(mm);
  const vmas = mm.mmap.slice();
  if (vmas.length > 0) {
    const start = vmas[0].vm_start, end = vmas[vmas.length - 1].vm_end;
    yield* munmap_in_peer_devices(mm, start, end);   /* GMEM place 3 */
    yield* unmap_vmas(mm, vmas, start, end);
    free_pgtables(mm, 0, mm.task_size);
    for (const vma of vmas) remove_vma(mm, vma);
  }
  mmap_write_unlock(mm);
  yield* flush_delayed_fput();
}

export { EEXIST };
