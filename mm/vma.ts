/*
 * mm/vma.ts - the VMA set of an mm: lookup, insert, split, merge.
 *
 * Models mm/vma.c and the lookup helpers of mm/mmap.c. mm.mmap is an
 * array of VMAs sorted by vm_start (Linux: a maple tree); lookups bisect.
 * All changes happen with mmap_lock held for write.
 */
import { vm_area_struct, type mm_struct } from '../include/linux/mm_types.js';
import { PAGE_SIZE, VM_SPECIAL, vma_is_anonymous } from '../include/linux/mm.js';
import { anon_vma_clone, unlink_anon_vmas } from './rmap.js';
import { mmap_assert_write_locked } from './mmap_lock.js';
import { fget_ref, fput_ref } from './file.js';
import { BUG } from '../include/asm-generic/bug.js';

/* index of the first VMA with vm_end > addr (mm.mmap.length if none) */
function vma_index(mm: mm_struct, addr: number): number {
  const v = mm.mmap;
  let lo = 0, hi = v.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (v[mid].vm_end <= addr) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/**
 * find_vma() - the first VMA that ends above addr (it may start above
 * addr too), or null. Context: mmap_lock held.
 */
export function find_vma(mm: mm_struct, addr: number): vm_area_struct | null {
  const i = vma_index(mm, addr);
  return i < mm.mmap.length ? mm.mmap[i] : null;
}

/** vma_lookup() - the VMA containing addr, or null. */
export function vma_lookup(mm: mm_struct, addr: number): vm_area_struct | null {
  const vma = find_vma(mm, addr);
  return vma !== null && vma.vm_start <= addr ? vma : null;
}

/** find_vma_intersection() - the first VMA overlapping [start, end), or null. */
export function find_vma_intersection(mm: mm_struct, start: number, end: number): vm_area_struct | null {
  const vma = find_vma(mm, start);
  return vma !== null && vma.vm_start < end ? vma : null;
}

/** find_vma_prev() - the VMA before find_vma(addr)'s result. */
export function find_vma_prev(mm: mm_struct, addr: number): vm_area_struct | null {
  const i = vma_index(mm, addr);
  return i > 0 ? mm.mmap[i - 1] : null;
}

/** vmasInRange() - the VMAs overlapping [start, end), in address order. */
export function vmasInRange(mm: mm_struct, start: number, end: number): vm_area_struct[] {
  const out: vm_area_struct[] = [];
  for (let i = vma_index(mm, start); i < mm.mmap.length && mm.mmap[i].vm_start < end; i++) out.push(mm.mmap[i]);
  return out;
}

/**
 * vma_link() - insert a VMA into the mm. BUG if it overlaps another one.
 */
export function vma_link(mm: mm_struct, vma: vm_area_struct): void {
  mmap_assert_write_locked(mm);
  const i = vma_index(mm, vma.vm_start);
  if (i < mm.mmap.length && mm.mmap[i].vm_start < vma.vm_end) {
    BUG(`vma_link overlap [${vma.vm_start.toString(16)}, ${vma.vm_end.toString(16)})`);
  }
  mm.mmap.splice(i, 0, vma);
  mm.map_count++;
}

/** vma_unlink() - remove a VMA from the mm (the caller tears down its pages). */
export function vma_unlink(mm: mm_struct, vma: vm_area_struct): void {
  const i = mm.mmap.indexOf(vma);
  if (i < 0) BUG('vma_unlink of unknown VMA');
  mm.mmap.splice(i, 1);
  mm.map_count--;
}

/**
 * vm_area_dup() - a copy of a VMA's description for another range or mm
 * (no pages, no anon_vma link: the caller adds those).
 */
export function vm_area_dup(src: vm_area_struct, mm: mm_struct = src.vm_mm): vm_area_struct {
  const v = new vm_area_struct(mm, src.vm_start, src.vm_end, src.vm_flags, src.vm_page_prot);
  v.vm_pgoff = src.vm_pgoff;
  v.vm_file = src.vm_file;
  v.vm_ops = src.vm_ops;
  v.vm_private_data = src.vm_private_data;
  if (v.vm_file !== null) fget_ref(v.vm_file);
  return v;
}

/**
 * split_vma() - cut a VMA in two at addr. The new VMA takes the part
 * below addr if new_below, else the part above; both share anon_vma,
 * file and ops. Return: 0, or -EINVAL if addr is not inside the VMA.
 */
export function split_vma(mm: mm_struct, vma: vm_area_struct, addr: number, new_below: boolean): number {
  mmap_assert_write_locked(mm);
  if (addr <= vma.vm_start || addr >= vma.vm_end || addr % PAGE_SIZE !== 0) return -22;
  const nv = vm_area_dup(vma);
  if (new_below) {
    nv.vm_end = addr;
    vma.vm_pgoff += (addr - vma.vm_start) / PAGE_SIZE;
    vma.vm_start = addr;
  } else {
    nv.vm_start = addr;
    nv.vm_pgoff += (addr - vma.vm_start) / PAGE_SIZE;
    vma.vm_end = addr;
  }
  anon_vma_clone(nv, vma);
  nv.vm_ops?.open?.(nv);
  const i = mm.mmap.indexOf(vma);
  mm.mmap.splice(new_below ? i : i + 1, 0, nv);
  mm.map_count++;
  return 0;
}

/* Can `a` (below) and `b` (above, adjacent) become one VMA? */
function can_vma_merge(a: vm_area_struct, b: vm_area_struct): boolean {
  if (a.vm_end !== b.vm_start) return false;
  if (a.vm_flags !== b.vm_flags || a.vm_page_prot !== b.vm_page_prot) return false;
  if (a.vm_flags & VM_SPECIAL) return false;
  if (a.vm_file !== b.vm_file || a.vm_ops !== b.vm_ops) return false;
  if (a.vm_private_data !== b.vm_private_data) return false;
  if (a.vm_pgoff + (a.vm_end - a.vm_start) / PAGE_SIZE !== b.vm_pgoff) return false;
  /* anonymous pages remember their anon_vma: only merge when it is shared or absent */
  if (a.anon_vma !== null && b.anon_vma !== null && a.anon_vma !== b.anon_vma) return false;
  if (!vma_is_anonymous(a) && a.vm_ops?.close !== undefined) return false;
  return true;
}

/* Merge b into a (a below b); a keeps the identity. */
function vma_merge_pair(mm: mm_struct, a: vm_area_struct, b: vm_area_struct): void {
  if (a.anon_vma === null && b.anon_vma !== null) {
    a.anon_vma = b.anon_vma;
    b.anon_vma.vmas.add(a);
    b.anon_vma.refcount++;
  }
  a.vm_end = b.vm_end;
  unlink_anon_vmas(b);
  if (b.vm_file !== null) fput_ref(b.vm_file);
  vma_unlink(mm, b);
}

/**
 * vma_merge() - merge a VMA with its neighbours where nothing
 * distinguishes them (flags, protection, file offset, anon_vma), as
 * Linux does after mmap, mprotect and madvise. Return: the VMA that now
 * covers the range (vma itself or its lower neighbour).
 */
export function vma_merge(mm: mm_struct, vma: vm_area_struct): vm_area_struct {
  const i = mm.mmap.indexOf(vma);
  const next = i + 1 < mm.mmap.length ? mm.mmap[i + 1] : null;
  if (next !== null && can_vma_merge(vma, next)) vma_merge_pair(mm, vma, next);
  const prev = i > 0 ? mm.mmap[i - 1] : null;
  if (prev !== null && can_vma_merge(prev, vma)) {
    vma_merge_pair(mm, prev, vma);
    return prev;
  }
  return vma;
}

/* lowest address a mapping may use (vm.mmap_min_addr) */
export const mmap_min_addr = 65536;

/**
 * get_unmapped_area() - pick an address for a new mapping of len bytes:
 * the hint if [addr, addr + len) is free, else the highest gap below
 * mm.mmap_base (top-down, as x86-64 does).
 * Return: the address, or -ENOMEM.
 */
export function get_unmapped_area(mm: mm_struct, addr: number, len: number): number {
  if (len > mm.task_size) return -12;
  if (addr !== 0) {
    addr = Math.ceil(addr / PAGE_SIZE) * PAGE_SIZE;
    if (addr + len <= mm.task_size && find_vma_intersection(mm, addr, addr + len) === null) return addr;
  }
  const v = mm.mmap;
  let gap_end = mm.mmap_base;
  const i = vma_index(mm, gap_end);
  if (i < v.length && v[i].vm_start < gap_end) gap_end = v[i].vm_start;
  for (let j = i - 1; j >= -1; j--) {
    const gap_start = j >= 0 ? v[j].vm_end : mmap_min_addr;
    if (gap_end - gap_start >= len) return gap_end - len;
    if (j >= 0) gap_end = v[j].vm_start;
  }
  return -12;
}
