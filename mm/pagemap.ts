/*
 * mm/pagemap.ts - /proc/self/pagemap and /proc/self/smaps.
 *
 * Models pagemap_read()/pte_to_pagemap_entry()/pagemap_pmd_range() and
 * the smaps walk (smaps_pte_entry, smaps_pmd_entry, show_smap,
 * smaps_rollup) of fs/proc/task_mmu.c. The tree has no fs/; these files
 * are registered as paths of the simulated VFS (mm/file.ts) at boot.
 *
 * pagemap: one 64-bit little-endian entry per virtual page, read at file
 * offset (vaddr / PAGE_SIZE) * 8:
 *
 *    63 62 61 60..58 57 56 55 54                                        0
 *   +--+--+--+------+--+--+--+-------------------------------------------+
 *   |P |S |F |  0   |U |E |SD|  pfn (present)                            |
 *   |  |  |  |      |  |  |  |  swap offset (bits 5..54) | type (0..4)   |
 *   +--+--+--+------+--+--+--+-------------------------------------------+
 *    P  PM_PRESENT         S  PM_SWAP (a swap entry, or a migration or
 *    F  PM_FILE (file page     device entry: its pfn in the offset field)
 *       or shared anon)    E  PM_MMAP_EXCLUSIVE (mapped exactly once)
 *    U  PM_UFFD_WP         SD PM_SOFT_DIRTY
 *
 * Entries are bigint: bit 63 does not fit the 53-bit integers of a JS
 * number. The pfn is shown (the reader is privileged: every simulated
 * process runs as root); pagemap_read() takes show_pfn for the other case.
 *
 * smaps: per VMA, the resident, anonymous, lazily freed, huge and swapped
 * amounts in kB, as Linux prints them; smaps_rollup: the sums.
 */
import type { vm_area_struct, mm_struct, page, address_space } from '../include/linux/mm_types.js';
import type { file, inode } from '../include/linux/sched.js';
import { PAGE_SIZE, PMD_SIZE, page_folio } from '../include/linux/mm.js';
import {
  pte_present, pte_pfn, pte_soft_dirty, pte_dirty, pte_young, pte_none, pmd_is_table, _PAGE_PSE, _PAGE_UFFD_WP,
  type pte_t,
} from '../include/linux/pgtable.js';
import {
  pte_to_swp_entry, non_swap_entry, is_pfn_swap_entry, swp_type, swp_offset, swp_offset_pfn,
  MAX_SWAPFILES_SHIFT, _PAGE_SWP_SOFT_DIRTY, is_swap_pmd,
} from '../include/linux/swapops.js';
import { PageAnon, PageSwapBacked, PageDirty, PageReferenced } from '../include/linux/page-flags.js';
import { EINVAL, ESRCH } from '../include/uapi/asm-generic/errno.js';
import { current, type Sleepable } from '../lib/sim/sched.js';
import { pfn_to_page, pfn_valid } from './page_alloc.js';
import { vm_normal_page } from './memory.js';
import { pte_offset_map } from './pgtable.js';
import { walk_page_range, walk_page_vma, PGWALK_RDLOCK, type mm_walk, type mm_walk_ops } from './pagewalk.js';
import { mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import { register_path, alloc_ino } from './file.js';
import { mmgrab, mmdrop } from './task.js';

export const PM_ENTRY_BYTES = 8;
export const PM_PFRAME_BITS = 55;
export const PM_PFRAME_MASK = (1n << 55n) - 1n;
export const PM_SOFT_DIRTY = 1n << 55n;
export const PM_MMAP_EXCLUSIVE = 1n << 56n;
export const PM_UFFD_WP = 1n << 57n;
export const PM_FILE = 1n << 61n;
export const PM_SWAP = 1n << 62n;
export const PM_PRESENT = 1n << 63n;

/** make_pme() - one pagemap entry from a frame (pfn or swap type|offset) and PM_* flags. */
export function make_pme(frame: number, flags: bigint): bigint {
  return (BigInt(frame) & PM_PFRAME_MASK) | flags;
}

/* How many mappings a page of a folio has: PTEs of this page plus PMD/PUD maps of the whole folio. */
function precise_page_mapcount(p: page): number {
  const f = page_folio(p);
  return p._mapcount + 1 + (f.pfn !== p.pfn || f.order > 0 ? f._entire_mapcount + 1 : 0);
}

/*
 * huge_leaf() - the value of a PMD or PUD entry that maps its whole size
 * itself (a huge leaf, PROT_NONE included), or of a non-present PMD (a THP
 * under migration, a device-private THP: a swap entry for the whole 2 MiB);
 * 0 for anything else.
 */
function huge_leaf(e: number, size: number): number {
  return (e & _PAGE_PSE) !== 0 || (size === PMD_SIZE && is_swap_pmd(e)) ? e : 0;
}

/*
 * pte_range_each() - call fn(addr, entry, size) for each page of [addr,
 * end) under one non-empty PMD entry: its PTEs, or the huge entry itself.
 */
function pte_range_each(mm: mm_struct, pmdp: number, addr: number, end: number,
                        fn: (addr: number, e: number, size: number) => void): void {
  const pmd = mm.pgd.load(pmdp);
  if (!pmd_is_table(pmd)) {
    const leaf = huge_leaf(pmd, PMD_SIZE);
    for (; addr < end; addr += PAGE_SIZE) fn(addr, leaf, PMD_SIZE);
    return;
  }
  for (let ptep = pte_offset_map(mm, addr); addr < end; addr += PAGE_SIZE, ptep++) fn(addr, mm.pgd.load(ptep), PAGE_SIZE);
}

/**
 * pte_to_pagemap_entry() - the pagemap entry of the page at addr mapped
 * by entry pte (a PTE, or a huge leaf covering addr).
 */
export function pte_to_pagemap_entry(vma: vm_area_struct, addr: number, pte: pte_t, size: number,
                                     show_pfn: boolean): bigint {
  let frame = 0, flags = 0n;
  let p: page | null = null;
  if (pte_present(pte)) {
    const idx = Math.floor((addr % size) / PAGE_SIZE);
    if (show_pfn) frame = pte_pfn(pte) + idx;
    flags |= PM_PRESENT;
    if (size === PAGE_SIZE) p = vm_normal_page(vma, addr, pte);
    else if (pfn_valid(pte_pfn(pte) + idx)) p = pfn_to_page(pte_pfn(pte) + idx);
    if (pte_soft_dirty(pte)) flags |= PM_SOFT_DIRTY;
    if (pte & _PAGE_UFFD_WP) flags |= PM_UFFD_WP;
  } else if (!pte_none(pte)) {
    const entry = pte_to_swp_entry(pte);
    if (pte & _PAGE_SWP_SOFT_DIRTY) flags |= PM_SOFT_DIRTY;
    /* a PMD-level entry names the head: page idx of the 2 MiB is offset + idx */
    const idx = size === PAGE_SIZE ? 0 : Math.floor((addr % size) / PAGE_SIZE);
    if (show_pfn) {
      const offset = (is_pfn_swap_entry(entry) ? swp_offset_pfn(entry) : swp_offset(entry)) + idx;
      frame = swp_type(entry) + offset * 2 ** MAX_SWAPFILES_SHIFT;
    }
    flags |= PM_SWAP;
    if (is_pfn_swap_entry(entry)) p = pfn_to_page(swp_offset_pfn(entry) + idx);
  }
  if (p !== null) {
    if (!PageAnon(page_folio(p))) flags |= PM_FILE;
    if ((flags & PM_PRESENT) && precise_page_mapcount(p) === 1) flags |= PM_MMAP_EXCLUSIVE;
  }
  return make_pme(frame, flags);
}

/* struct pagemapread - the walk state of one pagemap_read(): the next entry of the buffer to fill */
interface pagemapread {
  pos: number;
  buffer: DataView;
  show_pfn: boolean;
}

function add_to_pagemap(pme: bigint, pm: pagemapread): void {
  pm.buffer.setBigUint64(pm.pos * PM_ENTRY_BYTES, pme, true);
  pm.pos++;
}

/* pagemap_pte_hole() - nothing mapped (or no VMA) over [start, end): entries of 0 */
function pagemap_pte_hole(start: number, end: number, _depth: number, walk: mm_walk<pagemapread>): number {
  for (let addr = start; addr < end; addr += PAGE_SIZE) add_to_pagemap(0n, walk.private);
  return 0;
}

/* pagemap_pmd_range() - pmd_entry: one entry per page, from its PTE or the huge PMD */
function pagemap_pmd_range(pmdp: number, addr: number, end: number, walk: mm_walk<pagemapread>): number {
  const pm = walk.private, vma = walk.vma!;
  pte_range_each(walk.mm, pmdp, addr, end, (a, e, size) => add_to_pagemap(pte_to_pagemap_entry(vma, a, e, size, pm.show_pfn), pm));
  return 0;
}

/* pagemap_hugetlb_range() - hugetlb_entry: one entry per page of a huge page */
function pagemap_hugetlb_range(ptep: number, hmask: number, addr: number, end: number, walk: mm_walk<pagemapread>): number {
  const pm = walk.private, size = -hmask, leaf = huge_leaf(walk.mm.pgd.load(ptep), size);
  for (; addr < end; addr += PAGE_SIZE) add_to_pagemap(pte_to_pagemap_entry(walk.vma!, addr, leaf, size, pm.show_pfn), pm);
  return 0;
}

const pagemap_ops: mm_walk_ops<pagemapread> = Object.freeze({
  pmd_entry: pagemap_pmd_range,
  pte_hole: pagemap_pte_hole,
  hugetlb_entry: pagemap_hugetlb_range,
  walk_lock: PGWALK_RDLOCK,
});

/**
 * pagemap_read() - fill buf with the entries of the pages starting at
 * virtual page pos / 8 of mm (holes, VM_PFNMAP VMAs and addresses past the
 * last VMA read 0).
 * Return: bytes copied (0 at or past the end of the address space);
 * -EINVAL for a position or length that is not a multiple of 8.
 * Context: may sleep (takes mmap_lock for read).
 */
export function* pagemap_read(mm: mm_struct, buf: Uint8Array, pos: number, show_pfn = true): Sleepable<number> {
  if (pos % PM_ENTRY_BYTES !== 0 || buf.length % PM_ENTRY_BYTES !== 0) return -EINVAL;
  const start = (pos / PM_ENTRY_BYTES) * PAGE_SIZE;
  const end = Math.min(start + (buf.length / PM_ENTRY_BYTES) * PAGE_SIZE, mm.task_size);
  if (start >= end) return 0;
  const pm: pagemapread = { pos: 0, buffer: new DataView(buf.buffer, buf.byteOffset, buf.byteLength), show_pfn };
  yield* mmap_read_lock(mm);
  yield* walk_page_range(mm, start, end, pagemap_ops, pm);
  mmap_read_unlock(mm);
  return pm.pos * PM_ENTRY_BYTES;
}

/** struct mem_size_stats - what one smaps walk adds up, in bytes. */
export interface mem_size_stats {
  size: number;
  resident: number;
  pss: number;
  shared_clean: number;
  shared_dirty: number;
  private_clean: number;
  private_dirty: number;
  referenced: number;
  anonymous: number;
  lazyfree: number;
  anonymous_thp: number;
  swap: number;
}

function empty_mss(): mem_size_stats {
  return { size: 0, resident: 0, pss: 0, shared_clean: 0, shared_dirty: 0, private_clean: 0, private_dirty: 0,
    referenced: 0, anonymous: 0, lazyfree: 0, anonymous_thp: 0, swap: 0 };
}

/* smaps_account() - one resident page of the VMA. */
function smaps_account(mss: mem_size_stats, p: page, dirty: boolean, young: boolean, huge: boolean): void {
  const f = page_folio(p);
  const mapcount = Math.max(1, precise_page_mapcount(p));
  mss.resident += PAGE_SIZE;
  mss.pss += PAGE_SIZE / mapcount;
  if (PageAnon(f)) {
    mss.anonymous += PAGE_SIZE;
    if (!PageSwapBacked(f)) mss.lazyfree += PAGE_SIZE;
    if (huge) mss.anonymous_thp += PAGE_SIZE;
  }
  if (young || PageReferenced(f)) mss.referenced += PAGE_SIZE;
  dirty ||= PageDirty(f);
  if (mapcount >= 2) { if (dirty) mss.shared_dirty += PAGE_SIZE; else mss.shared_clean += PAGE_SIZE; }
  else if (dirty) mss.private_dirty += PAGE_SIZE;
  else mss.private_clean += PAGE_SIZE;
}

/*
 * smaps_pte_entry() - account the page at addr, mapped by entry val (a PTE,
 * or a huge entry of the given size covering addr).
 */
function smaps_pte_entry(mss: mem_size_stats, vma: vm_area_struct, addr: number, val: number, size: number): void {
  if (pte_none(val)) return;
  if (pte_present(val)) {
    const idx = Math.floor((addr % size) / PAGE_SIZE);
    const p = size === PAGE_SIZE ? vm_normal_page(vma, addr, val)
      : pfn_valid(pte_pfn(val) + idx) ? pfn_to_page(pte_pfn(val) + idx) : null;
    if (p !== null) smaps_account(mss, p, pte_dirty(val), pte_young(val), size === PMD_SIZE);
    return;
  }
  const entry = pte_to_swp_entry(val);
  if (!non_swap_entry(entry)) mss.swap += PAGE_SIZE;
  else if (is_pfn_swap_entry(entry)) {
    const idx = Math.floor((addr % size) / PAGE_SIZE);     /* a PMD-level entry names the head */
    smaps_account(mss, pfn_to_page(swp_offset_pfn(entry) + idx), false, false, false);
  }
}

/* smaps_pte_range() - pmd_entry: the pages under one PMD entry (smaps_pmd_entry for a huge one) */
function smaps_pte_range(pmdp: number, addr: number, end: number, walk: mm_walk<mem_size_stats>): number {
  const vma = walk.vma!;
  pte_range_each(walk.mm, pmdp, addr, end, (a, e, size) => smaps_pte_entry(walk.private, vma, a, e, size));
  return 0;
}

/* smaps_hugetlb_range() - hugetlb_entry: the pages of one huge page, accounted as resident pages */
function smaps_hugetlb_range(ptep: number, hmask: number, addr: number, end: number, walk: mm_walk<mem_size_stats>): number {
  const size = -hmask, leaf = huge_leaf(walk.mm.pgd.load(ptep), size);
  for (; addr < end; addr += PAGE_SIZE) smaps_pte_entry(walk.private, walk.vma!, addr, leaf, size);
  return 0;
}

const smaps_walk_ops: mm_walk_ops<mem_size_stats> = Object.freeze({
  pmd_entry: smaps_pte_range,
  hugetlb_entry: smaps_hugetlb_range,
  walk_lock: PGWALK_RDLOCK,
});

/**
 * smaps_vma() - the smaps counters of one VMA (smap_gather_stats).
 * Context: mmap_lock held by the caller.
 */
export function* smaps_vma(vma: vm_area_struct): Sleepable<mem_size_stats> {
  const mss = empty_mss();
  mss.size = vma.vm_end - vma.vm_start;
  yield* walk_page_vma(vma, smaps_walk_ops, mss);
  return mss;
}

/** smaps_rollup() - the sums over every VMA of mm. Context: may sleep (mmap_lock). */
export function* smaps_rollup(mm: mm_struct): Sleepable<mem_size_stats> {
  const total = empty_mss();
  yield* mmap_read_lock(mm);
  for (const vma of mm.mmap) {
    const m = yield* smaps_vma(vma);
    for (const k of Object.keys(total) as (keyof mem_size_stats)[]) total[k] += m[k];
  }
  mmap_read_unlock(mm);
  return total;
}

const kB = (bytes: number) => `${String(Math.floor(bytes / 1024)).padStart(8)} kB`;

function show_smap_fields(m: mem_size_stats, with_size: boolean): string {
  const rows: [string, number][] = [
    ['Rss', m.resident], ['Pss', m.pss], ['Shared_Clean', m.shared_clean], ['Shared_Dirty', m.shared_dirty],
    ['Private_Clean', m.private_clean], ['Private_Dirty', m.private_dirty], ['Referenced', m.referenced],
    ['Anonymous', m.anonymous], ['LazyFree', m.lazyfree], ['AnonHugePages', m.anonymous_thp], ['Swap', m.swap],
  ];
  if (with_size) rows.unshift(['Size', m.size]);
  return rows.map(([k, v]) => `${(k + ':').padEnd(16)}${kB(v)}\n`).join('');
}

function vma_name(vma: vm_area_struct): string {
  if (vma.vm_ops?.name) return vma.vm_ops.name(vma);
  return vma.vm_file !== null ? (vma.vm_file as file).path : '';
}

/** show_smaps() - the text of /proc/self/smaps: a maps line, then the counters, per VMA. */
export function* show_smaps(mm: mm_struct): Sleepable<string> {
  let out = '';
  yield* mmap_read_lock(mm);
  for (const vma of mm.mmap) {
    const perms = ['r', 'w', 'x'].map((c, i) => (vma.vm_flags & (1 << i) ? c : '-')).join('') +
      (vma.vm_flags & 0x8 ? 's' : 'p');
    out += `${vma.vm_start.toString(16)}-${vma.vm_end.toString(16)} ${perms} ${(vma.vm_pgoff * PAGE_SIZE).toString(16).padStart(8, '0')} 00:00 0 ${vma_name(vma)}\n`;
    out += show_smap_fields(yield* smaps_vma(vma), true);
  }
  mmap_read_unlock(mm);
  return out;
}

/** show_smaps_rollup() - the text of /proc/self/smaps_rollup. */
export function* show_smaps_rollup(mm: mm_struct): Sleepable<string> {
  return '[rollup]\n' + show_smap_fields(yield* smaps_rollup(mm), false);
}

/* ---- the /proc/self files ---- */

/* open(): the mm of the opening task, held by the file (proc_mem_open). */
function* proc_mem_open(_ino: inode, f: file): Sleepable<number> {
  const task = current().task as { mm: mm_struct | null } | null;
  if (task === null || task.mm === null) return -ESRCH;
  mmgrab(task.mm);
  f.private_data = task.mm;
  return 0;
}

function* proc_mem_release(_ino: inode, f: file): Sleepable<number> {
  mmdrop(f.private_data as mm_struct);
  return 0;
}

function* pagemap_file_read(f: file, buf: Uint8Array, pos: number): Sleepable<number> {
  const mm = f.private_data as mm_struct;
  if (mm.mm_users <= 0) return 0;
  return yield* pagemap_read(mm, buf, pos);
}

/* A text file generated at each read (seq_file in the small). */
function text_read(gen: (mm: mm_struct) => Sleepable<string>) {
  return function* (f: file, buf: Uint8Array, pos: number): Sleepable<number> {
    const mm = f.private_data as mm_struct;
    if (mm.mm_users <= 0) return 0;
    const bytes = new TextEncoder().encode(yield* gen(mm));
    const n = Math.max(0, Math.min(buf.length, bytes.length - pos));
    buf.set(bytes.subarray(pos, pos + n));
    return n;
  };
}

function proc_file(path: string, read: (f: file, buf: Uint8Array, pos: number) => Sleepable<number>): void {
  const ino: inode = {
    i_ino: alloc_ino(), i_mode: 'reg', i_rdev: 0, i_size: 0, i_mapping: null as address_space | null,
    i_private: null, i_nlink: 1,
    i_fop: Object.freeze({ open: proc_mem_open, release: proc_mem_release, read }),
  };
  register_path(path, ino);
}

/** procPagemapInit() - boot: create /proc/self/pagemap, smaps and smaps_rollup. Context: start_kernel(). */
export function procPagemapInit(): void {
  proc_file('/proc/self/pagemap', pagemap_file_read);
  proc_file('/proc/self/smaps', text_read(show_smaps));
  proc_file('/proc/self/smaps_rollup', text_read(show_smaps_rollup));
}
