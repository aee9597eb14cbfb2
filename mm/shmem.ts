/*
 * mm/shmem.ts - shared memory: the page cache behind MAP_SHARED|MAP_ANONYMOUS.
 *
 * Models the part of mm/shmem.c that shared anonymous mappings use:
 * shmem_zero_setup() gives the VMA an unnamed shmem object whose pages
 * live in a page cache (address_space.i_pages, indexed by page offset),
 * so that fork()ed processes mapping it see the same pages, and
 * shmem_fault() finds or allocates the page for a fault. Named tmpfs
 * files, truncation, swap of shmem pages and writeback come with issue 4.
 */
import type { address_space, vm_area_struct, vm_fault, page, vm_operations_struct } from '../include/linux/mm_types.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_ZERO } from '../include/linux/gfp.js';
import { VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_SHARED } from '../include/linux/mm.js';
import { SetPageSwapBacked, SetPageUptodate } from '../include/linux/page-flags.js';
import { ENOMEM } from '../include/uapi/asm-generic/errno.js';
import { alloc_page, get_page, put_page } from './page_alloc.js';

/** struct shmem_inode_info (in the small): the object a shared mapping maps. */
export interface shmem_object {
  mapping: address_space;
  size_pages: number;
  refs: number;          /* VMAs using it */
}

/**
 * shmem_get_folio() - the page at index of the object, allocated zeroed
 * on first use. Returns it with a reference for the caller, or null on OOM.
 */
export function shmem_get_folio(mapping: address_space, index: number): page | null {
  let p = mapping.i_pages.get(index) ?? null;
  if (p === null) {
    p = alloc_page(GFP_HIGHUSER_MOVABLE | __GFP_ZERO);
    if (p === null) return null;
    SetPageSwapBacked(p);
    SetPageUptodate(p);
    p.mapping = mapping;
    p.index = index;
    mapping.i_pages.set(index, p);     /* the page cache holds the allocation's reference */
  }
  get_page(p);
  return p;
}

/* ->fault for shmem mappings: the page at vmf.pgoff, referenced for the PTE. */
function shmem_fault(vmf: vm_fault): number {
  const obj = vmf.vma.vm_private_data as shmem_object;
  if (vmf.pgoff >= obj.size_pages) return VM_FAULT_SIGBUS;
  const p = shmem_get_folio(obj.mapping, vmf.pgoff);
  if (p === null) return VM_FAULT_OOM;
  vmf.page = p;
  return 0;
}

function shmem_vma_open(vma: vm_area_struct): void {
  const obj = vma.vm_private_data as shmem_object;
  obj.refs++;
  obj.mapping.i_mmap.add(vma);
}

/* Last VMA gone: the object and its page cache go away. */
function shmem_vma_close(vma: vm_area_struct): void {
  const obj = vma.vm_private_data as shmem_object;
  obj.mapping.i_mmap.delete(vma);
  if (--obj.refs > 0) return;
  for (const p of obj.mapping.i_pages.values()) {
    p.mapping = null;
    put_page(p);
  }
  obj.mapping.i_pages.clear();
}

export const shmem_anon_vm_ops: vm_operations_struct = Object.freeze({
  fault: shmem_fault,
  open: shmem_vma_open,
  close: shmem_vma_close,
  name: () => '/dev/zero (deleted)',
});

/**
 * shmem_zero_setup() - back a shared anonymous VMA with a new shmem
 * object as large as the VMA. Return: 0 or -ENOMEM.
 */
export function shmem_zero_setup(vma: vm_area_struct): number {
  if (!(vma.vm_flags & VM_SHARED)) return -ENOMEM;
  const mapping: address_space = { kind: 'file', host: null, i_pages: new Map(), i_mmap: new Set() };
  const obj: shmem_object = { mapping, size_pages: (vma.vm_end - vma.vm_start) / 4096, refs: 0 };
  vma.vm_private_data = obj;
  vma.vm_ops = shmem_anon_vm_ops;
  vma.vm_pgoff = 0;
  shmem_vma_open(vma);
  return 0;
}
