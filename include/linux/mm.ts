/*
 * include/linux/mm.ts - page geometry, VMA flags, fault flags and results,
 * GUP flags, and the small inline helpers of include/linux/mm.h.
 *
 * Values are Linux's (x86-64) so that a reader can compare them with a
 * kernel dump. Flags that would need bit 31 or above (VM_MERGEABLE and
 * later) are left out: JS bit operators work on 32-bit integers.
 */
import type { page, vm_area_struct } from './mm_types.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_MASK = ~(PAGE_SIZE - 1);
export const PMD_SHIFT = 21;
export const PMD_SIZE = 2 ** PMD_SHIFT;
export const PUD_SHIFT = 30;
export const PUD_SIZE = 2 ** PUD_SHIFT;
export const PGDIR_SHIFT = 39;
export const PGDIR_SIZE = 2 ** PGDIR_SHIFT;
export const PTRS_PER_PTE = 512;
export const HPAGE_PMD_ORDER = PMD_SHIFT - PAGE_SHIFT;
export const HPAGE_PMD_NR = 1 << HPAGE_PMD_ORDER;
/* user address space: 47 bits, as x86-64 with 4-level paging */
export const TASK_SIZE = 2 ** 47 - PAGE_SIZE;

/* vm_flags */
export const VM_NONE = 0x00000000;
export const VM_READ = 0x00000001;
export const VM_WRITE = 0x00000002;
export const VM_EXEC = 0x00000004;
export const VM_SHARED = 0x00000008;
export const VM_MAYREAD = 0x00000010;
export const VM_MAYWRITE = 0x00000020;
export const VM_MAYEXEC = 0x00000040;
export const VM_MAYSHARE = 0x00000080;
export const VM_GROWSDOWN = 0x00000100;
export const VM_PFNMAP = 0x00000400;
export const VM_LOCKED = 0x00002000;
export const VM_IO = 0x00004000;
export const VM_SEQ_READ = 0x00008000;
export const VM_RAND_READ = 0x00010000;
export const VM_DONTCOPY = 0x00020000;
export const VM_DONTEXPAND = 0x00040000;
export const VM_ACCOUNT = 0x00100000;
export const VM_NORESERVE = 0x00200000;
export const VM_HUGETLB = 0x00400000;
export const VM_PEER_SHARED = 0x01000000;    /* GMEM RFC (mm/gmem.ts): MAP_PEER_SHARED memory */
export const VM_WIPEONFORK = 0x02000000;
export const VM_DONTDUMP = 0x04000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;
/* flags that a VMA merge must find equal on both sides */
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;

/* enum fault_flag */
export const FAULT_FLAG_WRITE = 1 << 0;
export const FAULT_FLAG_MKWRITE = 1 << 1;
export const FAULT_FLAG_ALLOW_RETRY = 1 << 2;
export const FAULT_FLAG_RETRY_NOWAIT = 1 << 3;
export const FAULT_FLAG_KILLABLE = 1 << 4;
export const FAULT_FLAG_TRIED = 1 << 5;
export const FAULT_FLAG_USER = 1 << 6;
export const FAULT_FLAG_REMOTE = 1 << 7;
export const FAULT_FLAG_INSTRUCTION = 1 << 8;
export const FAULT_FLAG_INTERRUPTIBLE = 1 << 9;
export const FAULT_FLAG_UNSHARE = 1 << 10;
export const FAULT_FLAG_ORIG_PTE_VALID = 1 << 11;
export const FAULT_FLAG_DEFAULT = FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_KILLABLE | FAULT_FLAG_INTERRUPTIBLE;

/* vm_fault_t results */
export const VM_FAULT_OOM = 0x000001;
export const VM_FAULT_SIGBUS = 0x000002;
export const VM_FAULT_MAJOR = 0x000004;
export const VM_FAULT_HWPOISON = 0x000010;
export const VM_FAULT_HWPOISON_LARGE = 0x000020;
export const VM_FAULT_SIGSEGV = 0x000040;
export const VM_FAULT_NOPAGE = 0x000100;
export const VM_FAULT_LOCKED = 0x000200;
export const VM_FAULT_RETRY = 0x000400;
export const VM_FAULT_FALLBACK = 0x000800;
export const VM_FAULT_DONE_COW = 0x001000;
export const VM_FAULT_COMPLETED = 0x004000;
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV |
  VM_FAULT_HWPOISON | VM_FAULT_HWPOISON_LARGE | VM_FAULT_FALLBACK;

/* GUP flags (include/linux/mm_types.h enum; FOLL_PIN/FOLL_TOUCH are internal) */
export const FOLL_WRITE = 1 << 0;
export const FOLL_GET = 1 << 1;
export const FOLL_DUMP = 1 << 2;
export const FOLL_FORCE = 1 << 3;
export const FOLL_NOWAIT = 1 << 4;
export const FOLL_NOFAULT = 1 << 5;
export const FOLL_HWPOISON = 1 << 6;
export const FOLL_ANON = 1 << 7;
export const FOLL_LONGTERM = 1 << 8;
export const FOLL_SPLIT_PMD = 1 << 9;
export const FOLL_PIN = 1 << 12;
export const FOLL_TOUCH = 1 << 13;
export const FOLL_REMOTE = 1 << 14;

/** PAGE_ALIGN() - round an address or length up to a page boundary. */
export function PAGE_ALIGN(x: number): number {
  return Math.ceil(x / PAGE_SIZE) * PAGE_SIZE;
}

/** offset_in_page() - byte offset of an address inside its page. */
export function offset_in_page(addr: number): number {
  return addr % PAGE_SIZE;
}

/** PAGE_ALIGNED() - true when addr is a multiple of PAGE_SIZE. */
export function PAGE_ALIGNED(addr: number): boolean {
  return addr % PAGE_SIZE === 0;
}

/** page_mapcount() - how many page-table entries map this page. */
export function page_mapcount(p: page): number {
  return p._mapcount + 1;
}

/** page_count() - the page's reference count. */
export function page_count(p: page): number {
  return p.compound_head._refcount;
}

/**
 * folio_mapcount() - mapcount of a small folio (its one page). A large
 * folio also has PMD/PUD mappings of the whole and PTE mappings of each
 * page: folio_large_mapcount() in mm/huge_memory.ts adds them up.
 */
export function folio_mapcount(f: page): number {
  return f._mapcount + 1;
}

/** folio_entire_mapcount() - PMD/PUD mappings of a large folio as a whole. */
export function folio_entire_mapcount(f: page): number {
  return f._entire_mapcount + 1;
}

/** folio_ref_count() - references held on a folio. */
export function folio_ref_count(f: page): number {
  return f._refcount;
}

/** folio_nr_pages() - number of base pages in a folio. */
export function folio_nr_pages(f: page): number {
  return 1 << f.order;
}

/** page_folio() - the folio (head page) a page belongs to. */
export function page_folio(p: page): page {
  return p.compound_head;
}

/** vma_is_anonymous() - an anonymous VMA has no vm_ops (Linux checks !vma->vm_ops). */
export function vma_is_anonymous(vma: vm_area_struct): boolean {
  return vma.vm_ops === null && vma.vm_file === null;
}

/** vma_pages() - number of pages the VMA spans. */
export function vma_pages(vma: vm_area_struct): number {
  return (vma.vm_end - vma.vm_start) / PAGE_SIZE;
}

/** linear_page_index() - the page offset in the VMA's object for an address. */
export function linear_page_index(vma: vm_area_struct, addr: number): number {
  return (addr - vma.vm_start) / PAGE_SIZE + vma.vm_pgoff;
}

/** is_cow_mapping() - private and may be written: copy on write applies. */
export function is_cow_mapping(flags: number): boolean {
  return (flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}

/** PageTransHuge-style test of a folio order. */
export function folio_order(f: page): number {
  return f.order;
}

/* rss counters (include/linux/mm.h inlines); index is MM_FILEPAGES ... */
import type { mm_struct } from './mm_types.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES } from './mm_types.js';
import { PageSwapBacked } from './page-flags.js';

export function get_mm_counter(mm: mm_struct, member: number): number { return mm.rss_stat[member]; }
export function add_mm_counter(mm: mm_struct, member: number, value: number): void { mm.rss_stat[member] += value; }
export function inc_mm_counter(mm: mm_struct, member: number): void { mm.rss_stat[member]++; }
export function dec_mm_counter(mm: mm_struct, member: number): void { mm.rss_stat[member]--; }
/** get_mm_rss() - resident pages of the mm. */
export function get_mm_rss(mm: mm_struct): number {
  return mm.rss_stat[MM_FILEPAGES] + mm.rss_stat[MM_ANONPAGES] + mm.rss_stat[MM_SHMEMPAGES];
}
/** mm_counter_file() - the rss counter of a mapped non-anonymous folio: shmem or file. */
export function mm_counter_file(f: page): number {
  return PageSwapBacked(f) ? MM_SHMEMPAGES : MM_FILEPAGES;
}
/** mm_counter() - which rss counter a mapped folio is accounted in. */
export function mm_counter(p: page): number {
  const f = p.compound_head;
  if (f.mapping !== null && f.mapping.kind === 'anon') return MM_ANONPAGES;
  return mm_counter_file(f);
}
/**
 * add_mm_rss_vec() - apply a page-table walk's rss changes, collected in
 * a local vector indexed by MM_* (fork's copy and the zap of one PTE page),
 * in one go.
 */
export function add_mm_rss_vec(mm: mm_struct, rss: readonly number[]): void {
  for (let i = 0; i < rss.length; i++) if (rss[i] !== 0) mm.rss_stat[i] += rss[i];
}

/*
 * Zones (include/linux/mmzone.h, enum zone_type, as far as this machine
 * has them). RAM is one node; with the movablecore= boot parameter its top
 * part is ZONE_MOVABLE, memory that must stay migratable (memory hot
 * unplug, and the reason a FOLL_LONGTERM pin migrates a page out of it
 * first: mm/gup_longterm.ts). ZONE_DEVICE is every dev_pagemap range.
 *
 *   pfn 0                zone_movable_pfn          totalram      device ranges
 *   +---------------------+--------------------------+  ....  +--------------+
 *   |     ZONE_NORMAL     |       ZONE_MOVABLE       |        |  ZONE_DEVICE |
 *   +---------------------+--------------------------+  ....  +--------------+
 */
export const ZONE_NORMAL = 0;
export const ZONE_MOVABLE = 1;
export const ZONE_DEVICE = 2;

/* first pfn of ZONE_MOVABLE (set at boot by mm/init.ts from movablecore=); Infinity: no movable zone */
let zone_movable_pfn = Infinity;
/* first pfn above RAM; ZONE_DEVICE pages carry their pgmap instead */
let zone_end_pfn = Infinity;

/** set_zone_movable_pfn() - boot: where ZONE_MOVABLE starts and RAM ends (find_zone_movable_pfns_for_nodes). */
export function set_zone_movable_pfn(start_pfn: number, end_pfn: number): void {
  zone_movable_pfn = start_pfn;
  zone_end_pfn = end_pfn;
}

/** page_zonenum() - the zone a page belongs to. */
export function page_zonenum(p: page): number {
  if (p.pgmap !== null) return ZONE_DEVICE;
  return p.pfn >= zone_movable_pfn && p.pfn < zone_end_pfn ? ZONE_MOVABLE : ZONE_NORMAL;
}

/** folio_is_zone_movable() - the folio lies in ZONE_MOVABLE. */
export function folio_is_zone_movable(f: page): boolean {
  return page_zonenum(f) === ZONE_MOVABLE;
}
