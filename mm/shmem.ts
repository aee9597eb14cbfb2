/*
 * mm/shmem.ts - tmpfs: regular files that live in the page cache, and the
 * shared memory behind MAP_SHARED|MAP_ANONYMOUS.
 *
 * Models mm/shmem.c: a tmpfs inode keeps its data only in its
 * address_space (i_pages: page offset -> folio, each holding one
 * reference for the cache). Pages appear when first written (write(2),
 * or a write fault) or first faulted by a mapping; reading a hole returns
 * zeroes without allocating. shmem_fault() is the vm_ops->fault of every
 * shmem mapping: MAP_SHARED mappings map the cache page itself (stores
 * reach the file, pread sees them), MAP_PRIVATE ones map it read-only and
 * copy it on the first write (do_fault / do_wp_page in mm/memory.ts),
 * so the file never sees a private store. A fault at or beyond i_size is
 * SIGBUS. Truncation (ftruncate, shmem_setattr) unmaps the cut part from
 * every mapping, private copies included, with MMU_NOTIFY_CLEAR
 * (unmap_mapping_range) before dropping the cache pages.
 *
 * The VFS side is mm/file.ts: open with O_CREAT / O_TMPFILE goes through
 * the inode_operations of the tmpfs directories "/tmp" and "/dev/shm"
 * made at boot by shmem_init(); pread/pwrite/ftruncate reach
 * shmem_file_read/shmem_file_write/shmem_setattr.
 *
 * A shared anonymous mapping is a mapping of an unlinked tmpfs file of
 * the VMA's size (shmem_zero_setup -> shmem_file_setup), so fork()ed
 * processes see the same pages through it.
 *
 * Simplified: one flat namespace of paths (no subdirectories, no unlink),
 * no tmpfs size limit, no huge pages in tmpfs (huge=never), and no swap
 * of shmem pages here (the reclaim engineer's shmem_writeout).
 */
import type { address_space, vm_area_struct, vm_fault, page, vm_operations_struct } from '../include/linux/mm_types.js';
import type { file, file_operations, inode, inode_operations, task_struct } from '../include/linux/sched.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_ZERO } from '../include/linux/gfp.js';
import { PAGE_SIZE, VM_FAULT_OOM, VM_FAULT_SIGBUS, VM_SHARED } from '../include/linux/mm.js';
import { SetPageSwapBacked, SetPageUptodate, SetPageDirty } from '../include/linux/page-flags.js';
import { EEXIST, EINVAL, ENOMEM, EFBIG } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { current } from '../lib/sim/sched.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { alloc_page_sleepable, get_page, put_page, kmap_local_page } from './page_alloc.js';
import { alloc_file, alloc_ino, register_path, lookup_path } from './file.js';
import { filemap_get_folio, filemap_add_folio, filemap_remove_folio, unmap_mapping_range } from './filemap.js';
import { mem_cgroup_charge_sleepable } from './memcontrol.js';
import { folio_add_lru } from './swap.js';

/** The largest tmpfs file: what a page index in a double can address (Linux: MAX_LFS_FILESIZE). */
export const MAX_LFS_FILESIZE = 2 ** 52;

/** struct shmem_inode_info (the part kept here): the open files of the inode. */
interface shmem_inode_info {
  files: number;           /* struct files pointing at the inode (fds, mappings hold those files) */
}

function SHMEM_I(ino: inode): shmem_inode_info { return ino.i_private as shmem_inode_info; }

/* ------------------------------------------------------------ page cache */

/*
 * shmem_alloc_and_add_folio() - a new zeroed page at index of the file,
 * charged to the current task's memcg and added to the page cache (which
 * keeps the allocation's reference). The allocation and the charge may
 * sleep (GFP_HIGHUSER_MOVABLE, the mapping's gfp: blockable direct and
 * memcg reclaim, as Linux's shmem_alloc_folio()/mem_cgroup_charge()); a
 * page another thread added meanwhile wins (filemap_add_folio's -EEXIST).
 * Context: may sleep. Return: the page in the cache, or null on OOM.
 */
function* shmem_alloc_and_add_folio(mapping: address_space, index: number): Sleepable<page | null> {
  const p = yield* alloc_page_sleepable(GFP_HIGHUSER_MOVABLE | __GFP_ZERO);
  if (p === null) return null;
  const mm = (current().task as task_struct | null)?.mm ?? null;
  if (mm !== null && (yield* mem_cgroup_charge_sleepable(p, mm, GFP_HIGHUSER_MOVABLE)) !== 0) {
    put_page(p);
    return null;
  }
  const raced = filemap_get_folio(mapping, index);
  if (raced !== null) {              /* added while this thread slept: use that one */
    put_page(p);
    put_page(raced);
    count_event('shmem_alloc_raced');
    return raced;
  }
  SetPageSwapBacked(p);
  SetPageUptodate(p);
  filemap_add_folio(mapping, p, index);
  folio_add_lru(p);
  count_event('shmem_alloc');
  return p;
}

/**
 * shmem_get_folio() - the page at index of the file, allocated (zeroed)
 * if absent (SGP_CACHE / SGP_WRITE).
 * Context: may sleep (the allocation). Return: the page with a reference
 * for the caller, or null on OOM.
 */
export function* shmem_get_folio(mapping: address_space, index: number): Sleepable<page | null> {
  const p = filemap_get_folio(mapping, index);
  if (p !== null) return p;
  const np = yield* shmem_alloc_and_add_folio(mapping, index);
  if (np === null) return null;
  get_page(np);
  return np;
}

/* i_size in pages, rounded up: the first page index a fault may not touch */
function size_pages(ino: inode): number { return Math.ceil(ino.i_size / PAGE_SIZE); }

/* ------------------------------------------------------------ mappings */

/*
 * shmem_fault() - vm_ops->fault of shmem mappings: the cache page at
 * vmf.pgoff, referenced for the PTE (or for do_fault's private copy).
 * Context: mmap_lock held for read; may sleep (the allocation).
 * Return: 0, VM_FAULT_SIGBUS beyond i_size, or VM_FAULT_OOM.
 */
function* shmem_fault(vmf: vm_fault): Sleepable<number> {
  const ino = (vmf.vma.vm_file as file).f_inode;
  if (vmf.pgoff >= size_pages(ino)) return VM_FAULT_SIGBUS;
  const p = yield* shmem_get_folio(ino.i_mapping!, vmf.pgoff);
  if (p === null) return VM_FAULT_OOM;
  if (vmf.pgoff >= size_pages(ino)) {          /* truncated while the allocation slept */
    put_page(p);
    return VM_FAULT_SIGBUS;
  }
  vmf.page = p;
  count_event('shmem_fault');
  return 0;
}

/* the VMA joins (open) or leaves (close) the file's i_mmap: the rmap of file pages */
function shmem_vma_open(vma: vm_area_struct): void { (vma.vm_file as file).f_mapping!.i_mmap.add(vma); }
function shmem_vma_close(vma: vm_area_struct): void { (vma.vm_file as file).f_mapping!.i_mmap.delete(vma); }

export const shmem_vm_ops: vm_operations_struct = Object.freeze({
  fault: shmem_fault,
  open: shmem_vma_open,
  close: shmem_vma_close,
});

export const shmem_anon_vm_ops: vm_operations_struct = Object.freeze({
  fault: shmem_fault,
  open: shmem_vma_open,
  close: shmem_vma_close,
  name: () => '/dev/zero (deleted)',
});

/* f_op->mmap: the VMA faults through shmem_fault() and is in the rmap */
function* shmem_mmap(_f: file, vma: vm_area_struct): Sleepable<number> {
  vma.vm_ops = shmem_vm_ops;
  shmem_vma_open(vma);
  return 0;
}

/* ------------------------------------------------------------ read, write, truncate */

/*
 * shmem_file_read() - f_op->read: copy [pos, pos + buf.length) of the
 * file, stopping at i_size; holes read as zeroes.
 * Return: bytes read (0 at or past the end).
 */
function* shmem_file_read(f: file, buf: Uint8Array, pos: number): Sleepable<number> {
  const ino = f.f_inode, mapping = ino.i_mapping!;
  const end = Math.min(ino.i_size, pos + buf.length);
  let done = 0;
  while (pos + done < end) {
    const off = (pos + done) % PAGE_SIZE, index = Math.floor((pos + done) / PAGE_SIZE);
    const n = Math.min(PAGE_SIZE - off, end - pos - done);
    const p = filemap_get_folio(mapping, index);
    if (p === null) buf.fill(0, done, done + n);
    else { buf.set(kmap_local_page(p).subarray(off, off + n), done); put_page(p); }
    done += n;
  }
  return done;
}

/*
 * shmem_file_write() - f_op->write: copy buf into the file at pos,
 * allocating pages as needed and extending i_size (generic_perform_write
 * with shmem_write_begin/end). Every page written is dirty.
 * Return: bytes written, -EFBIG past the largest file, or -ENOMEM when
 * not a byte could be stored.
 */
function* shmem_file_write(f: file, buf: Uint8Array, pos: number): Sleepable<number> {
  const ino = f.f_inode, mapping = ino.i_mapping!;
  if (pos + buf.length > MAX_LFS_FILESIZE) return -EFBIG;
  let done = 0;
  while (done < buf.length) {
    const off = (pos + done) % PAGE_SIZE, index = Math.floor((pos + done) / PAGE_SIZE);
    const n = Math.min(PAGE_SIZE - off, buf.length - done);
    const p = yield* shmem_get_folio(mapping, index);
    if (p === null) break;
    kmap_local_page(p).set(buf.subarray(done, done + n), off);
    SetPageDirty(p);
    put_page(p);
    done += n;
    if (pos + done > ino.i_size) ino.i_size = pos + done;
  }
  return done > 0 || buf.length === 0 ? done : -ENOMEM;
}

/*
 * shmem_truncate_range() - drop the cache pages at and after index
 * first, and zero the tail of the page that holds the new end
 * (truncate_inode_pages_range, truncate_inode_partial_folio).
 */
function shmem_truncate_range(ino: inode, newsize: number): void {
  const mapping = ino.i_mapping!;
  const first = Math.ceil(newsize / PAGE_SIZE);
  for (const [index, p] of [...mapping.i_pages]) if (index >= first) filemap_remove_folio(p);
  if (newsize % PAGE_SIZE !== 0) {
    const p = mapping.i_pages.get(Math.floor(newsize / PAGE_SIZE));
    if (p !== undefined) kmap_local_page(p).fill(0, newsize % PAGE_SIZE);
  }
}

/**
 * shmem_setattr() - i_op->setattr for the size (truncate, ftruncate). A
 * shrink unmaps the pages past the new end from every mapping (with
 * MMU_NOTIFY_CLEAR, private COW copies too, as truncate_pagecache does),
 * drops them from the cache, and zeroes the rest of the last page; a
 * later access there is SIGBUS. A grow only moves i_size: the new part
 * reads as zeroes.
 * Context: may sleep. Return: 0, -EINVAL for a negative size, -EFBIG.
 */
export function* shmem_setattr(ino: inode, size: number): Sleepable<number> {
  if (size < 0) return -EINVAL;
  if (size > MAX_LFS_FILESIZE) return -EFBIG;
  const old = ino.i_size;
  ino.i_size = size;
  if (size < old) {
    const holebegin = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    yield* unmap_mapping_range(ino.i_mapping!, holebegin, 0);
    shmem_truncate_range(ino, size);
    yield* unmap_mapping_range(ino.i_mapping!, holebegin, 0);
  }
  trace_event('shmem_setattr', { ino: ino.i_ino, old, size });
  return 0;
}

/* ------------------------------------------------------------ inodes and files */

/* f_op->open: the file holds the inode */
function* shmem_open(ino: inode, _f: file): Sleepable<number> {
  SHMEM_I(ino).files++;
  return 0;
}

/* f_op->release: the last file of an unlinked inode evicts it (shmem_evict_inode) */
function* shmem_release(ino: inode, _f: file): Sleepable<number> {
  if (--SHMEM_I(ino).files > 0 || ino.i_nlink > 0) return 0;
  shmem_truncate_range(ino, 0);
  ino.i_size = 0;
  count_event('shmem_evict_inode');
  return 0;
}

export const shmem_file_operations: file_operations = Object.freeze({
  open: shmem_open,
  release: shmem_release,
  mmap: shmem_mmap,
  read: shmem_file_read,
  write: shmem_file_write,
});

const shmem_inode_operations: inode_operations = Object.freeze({ setattr: shmem_setattr });

/**
 * shmem_get_inode() - a new tmpfs regular file of size bytes, not linked
 * into any directory (i_nlink 0).
 */
export function shmem_get_inode(size: number): inode {
  const ino: inode = {
    i_ino: alloc_ino(), i_mode: 'reg', i_rdev: 0, i_size: size, i_fop: shmem_file_operations, i_mapping: null,
    i_private: { files: 0 } satisfies shmem_inode_info, i_nlink: 0, i_op: shmem_inode_operations,
  };
  ino.i_mapping = { kind: 'file', host: ino, i_pages: new Map(), i_mmap: new Set() };
  return ino;
}

/**
 * shmem_file_setup() - an unlinked tmpfs file of size bytes with one open
 * file description (memfd_create, SysV shm, shared anonymous memory).
 * Return: the file; its reference is the caller's.
 */
export function shmem_file_setup(name: string, size: number, flags = 0o2 /* O_RDWR */): file {
  const ino = shmem_get_inode(size);
  SHMEM_I(ino).files++;
  return alloc_file(ino, flags, name);
}

/**
 * shmem_zero_setup() - back a shared anonymous VMA by a new unlinked
 * tmpfs file as large as the VMA ("/dev/zero (deleted)"); the VMA holds
 * the file's reference. Return: 0.
 */
export function shmem_zero_setup(vma: vm_area_struct): number {
  if (!(vma.vm_flags & VM_SHARED)) return -ENOMEM;
  const f = shmem_file_setup('dev/zero', vma.vm_end - vma.vm_start);
  vma.vm_file = f;
  vma.vm_ops = shmem_anon_vm_ops;
  vma.vm_pgoff = 0;
  shmem_vma_open(vma);
  return 0;
}

/* i_op->create of a tmpfs directory: a new file linked at dir/name */
function shmem_create(dir: inode, name: string, _flags: number): inode | number {
  const path = `${dir_path(dir)}/${name}`;
  if (lookup_path(path) !== null) return -EEXIST;
  const ino = shmem_get_inode(0);
  ino.i_nlink = 1;
  register_path(path, ino);
  return ino;
}

/* i_op->tmpfile of a tmpfs directory: an unnamed file, gone with its last close */
function shmem_tmpfile(_dir: inode, _flags: number): inode | number {
  return shmem_get_inode(0);
}

const shmem_dir_inode_operations: inode_operations = Object.freeze({ create: shmem_create, tmpfile: shmem_tmpfile });
const dir_paths = new WeakMap<inode, string>();
function dir_path(dir: inode): string { return dir_paths.get(dir) ?? ''; }

/**
 * shmem_init() - boot: mount tmpfs at /tmp and /dev/shm (called by
 * start_kernel after the file table was reset).
 */
export function shmem_init(): void {
  for (const path of ['/tmp', '/dev/shm']) {
    const dir: inode = { i_ino: alloc_ino(), i_mode: 'dir', i_rdev: 0, i_size: 0, i_fop: Object.freeze({}),
      i_mapping: null, i_private: null, i_nlink: 2, i_op: shmem_dir_inode_operations };
    dir_paths.set(dir, path);
    register_path(path, dir);
  }
}
