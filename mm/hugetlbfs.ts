/*
 * mm/hugetlbfs.ts - the hugetlbfs file behind a MAP_HUGETLB mapping.
 *
 * Models the part of fs/hugetlbfs/inode.c that anonymous MAP_HUGETLB
 * mappings use (the tree has no fs/; mm/file.ts is its VFS):
 * hugetlb_file_setup() makes an unlinked file of the requested huge page
 * size, hugetlbfs_file_mmap() checks the alignment, marks the VMA
 * VM_HUGETLB and reserves its pages in the pool (mm/hugetlb.ts),
 * hugetlb_get_unmapped_area() aligns the address, and the last release
 * of the file returns its page-cache pages and unused reservations to the
 * pool. A shared mapping keeps its pages in this file, which is how a
 * fork child shares them.
 *
 * Simplified: no hugetlbfs mounts, no named files, no fallocate or
 * truncate of hugetlbfs files.
 */
import type { vm_area_struct, mm_struct } from '../include/linux/mm_types.js';
import type { file, file_operations, inode } from '../include/linux/sched.js';
import { VM_HUGETLB, VM_DONTEXPAND, VM_MAYSHARE, VM_NORESERVE } from '../include/linux/mm.js';
import { huge_page_size, pages_per_huge_page, type hstate, type resv_map } from '../include/linux/hugetlb.js';
import { MAP_HUGE_SHIFT, MAP_HUGE_MASK } from '../include/uapi/asm-generic/mman.js';
import { EINVAL } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { put_page } from './page_alloc.js';
import { alloc_file, alloc_ino } from './file.js';
import { get_unmapped_area } from './vma.js';
import {
  default_hstate, size_to_hstate, hugetlb_vm_ops, hugetlb_reserve_pages, hugetlb_unreserve_pages, vma_hugecache_offset,
} from './hugetlb.js';

/** struct hugetlbfs_inode_info - what the hugetlbfs file of a mapping knows. */
export interface hugetlbfs_inode_info {
  hstate: hstate;
  resv: resv_map;                                 /* reservations of shared mappings */
}

/** hugetlb_info() - HUGETLBFS_I(): the hugetlbfs part of an inode. */
export function hugetlb_info(ino: inode): hugetlbfs_inode_info { return ino.i_private as hugetlbfs_inode_info; }

/*
 * hugetlbfs_file_mmap() - f_op->mmap: aligned, VM_HUGETLB, and the pages
 * reserved (unless MAP_NORESERVE). Return: 0, -EINVAL, or -ENOMEM.
 */
function* hugetlbfs_file_mmap(f: file, vma: vm_area_struct): Sleepable<number> {
  const info = hugetlb_info(f.f_inode), h = info.hstate, size = huge_page_size(h);
  if (vma.vm_start % size !== 0 || vma.vm_end % size !== 0 || vma.vm_pgoff % pages_per_huge_page(h) !== 0) return -EINVAL;
  vma.vm_flags |= VM_HUGETLB | VM_DONTEXPAND;
  vma.vm_ops = hugetlb_vm_ops;
  const from = vma_hugecache_offset(h, vma, vma.vm_start), to = vma_hugecache_offset(h, vma, vma.vm_end);
  if (!(vma.vm_flags & VM_NORESERVE)) {
    const shared = (vma.vm_flags & VM_MAYSHARE) !== 0;
    const m: resv_map = shared ? info.resv : { reserved: new Set(), owner: vma.vm_mm, refs: 1 };
    const ret = hugetlb_reserve_pages(h, m, from, to, shared ? f.f_inode.i_mapping!.i_pages : null);
    if (ret < 0) return ret;
    if (!shared) vma.vm_private_data = m;
  }
  f.f_inode.i_size = Math.max(f.f_inode.i_size, to * size);
  f.f_inode.i_mapping!.i_mmap.add(vma);
  return 0;
}

/* the last reference to the file: its pages go back to the pool, its reservations too */
function* hugetlbfs_release(ino: inode, _f: file): Sleepable<number> {
  const info = hugetlb_info(ino), mapping = ino.i_mapping!;
  for (const p of mapping.i_pages.values()) put_page(p);   /* no VMA maps the file any more: only the cache's reference is left */
  mapping.i_pages.clear();
  hugetlb_unreserve_pages(info.hstate, info.resv, 0, Math.max(0, ...info.resv.reserved) + 1);
  return 0;
}

/* hugetlb_get_unmapped_area() - an address aligned to the huge page size */
function hugetlb_get_unmapped_area(f: file, mm: mm_struct, addr: number, len: number): number {
  const size = huge_page_size(hugetlb_info(f.f_inode).hstate);
  if (len % size !== 0) return -EINVAL;
  if (addr !== 0 && addr % size === 0) {
    const a = get_unmapped_area(mm, addr, len);
    if (a === addr) return a;
  }
  const pad = get_unmapped_area(mm, 0, len + size);
  return pad < 0 ? pad : Math.floor((pad + size) / size) * size;   /* the top aligned start inside the padded gap */
}

const hugetlbfs_file_operations: file_operations = Object.freeze({
  mmap: hugetlbfs_file_mmap,
  release: hugetlbfs_release,
  get_unmapped_area: hugetlb_get_unmapped_area,
});

/**
 * hugetlb_file_setup() - the unlinked hugetlbfs file behind an anonymous
 * MAP_HUGETLB mapping (ksys_mmap_pgoff): its size is len rounded up to
 * the huge page size that the MAP_HUGE_* bits of flags name.
 * Return: the file (one reference, which the caller drops after mmap),
 * or -EINVAL for a size this machine has no pool for.
 */
export function hugetlb_file_setup(len: number, flags: number): file | number {
  const log = Math.floor(flags / 2 ** MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
  const h = log === 0 ? default_hstate() : size_to_hstate(2 ** log);
  if (h === null) return -EINVAL;
  const size = huge_page_size(h);
  const ino: inode = {
    i_ino: alloc_ino(), i_mode: 'reg', i_rdev: 0, i_size: Math.ceil(len / size) * size,
    i_fop: hugetlbfs_file_operations, i_mapping: null, i_private: null, i_nlink: 0,
  };
  ino.i_mapping = { kind: 'file', host: ino, i_pages: new Map(), i_mmap: new Set() };
  const info: hugetlbfs_inode_info = { hstate: h, resv: { reserved: new Set(), owner: null, refs: 0 } };
  ino.i_private = info;
  return alloc_file(ino, 0o2 /* O_RDWR */, 'anon_hugepage');
}
