/*
 * mm/sparse.ts - the memory map in sections: struct pages and page bytes
 * that exist only where the machine uses them.
 *
 * Models mm/sparse.c (SPARSEMEM: mem_section[], a section's memmap
 * allocated when the section comes online) and the pfn_to_page() /
 * kmap_local_page() helpers of include/linux/mm.h and highmem.h.
 *
 * Every pfn range (RAM, and each ZONE_DEVICE range registered by
 * mm/memremap.ts) is cut into sections of PAGES_PER_SECTION frames:
 *
 *   pfn:  | section 0          | section 1          | section 2   ...
 *         | 1024 frames, 4 MiB | 1024 frames, 4 MiB |
 *   mem_section[s]    the section's 1024 struct pages: typed arrays of
 *                     their fields (include/linux/mm_types.ts), created
 *                     the first time pfn_to_page() asks for one of them,
 *                     and a page handle per frame asked for, then kept
 *                     (a struct page's identity never changes);
 *   section_bytes[s]  the section's 4 MiB of page contents, allocated the
 *                     first time a page of it is read or written (zeroed,
 *                     like fresh memory), and given back when the buddy
 *                     allocator merges the whole section into one free
 *                     block again (RAM only: sparse_free_section_bytes()),
 *                     except that up to sparse_pool_limit() bytes of freed
 *                     sections are kept, dirty, for the next sections
 *                     used (they are zeroed then): the host's own page
 *                     faults on fresh memory cost more than a simulated
 *                     fault, so a workload that frees and faults again
 *                     reuses resident memory.
 *
 * So a machine of 256 GiB boots without touching 256 GiB of host memory,
 * and host memory grows with the pages the workload uses. A page's
 * contents are contiguous within its section only: code that handles
 * more than one page of bytes at a time goes through zero_pages() and
 * copy_pages(), which walk section by section.
 *
 * Simplified: a section is 4 MiB (the buddy allocator's largest block,
 * MAX_ORDER in mm/page_alloc.ts) instead of x86-64's 128 MiB; no memory
 * hotplug; sections of struct pages are never freed.
 */
import {
  type page, mem_section, __nr_to_section, set_mem_section, clear_mem_sections,
  PFN_SECTION_SHIFT, PAGES_PER_SECTION, SECTION_MASK,
} from '../include/linux/mm_types.js';
import type { dev_pagemap } from '../include/linux/memremap.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import { BUG } from '../include/asm-generic/bug.js';

export { PFN_SECTION_SHIFT, PAGES_PER_SECTION };
/** SECTION_BYTES - bytes of contents of one section (4 MiB). */
export const SECTION_BYTES = PAGES_PER_SECTION * PAGE_SIZE;

/** A pfn range with its own struct pages and bytes (RAM, or a ZONE_DEVICE range). */
export interface pfn_range {
  start_pfn: number;                  /* a multiple of PAGES_PER_SECTION */
  nr_pages: number;
  owner: string;                      /* 'ram' or the pagemap name */
  pgmap: dev_pagemap | null;          /* set in every struct page of a ZONE_DEVICE range */
  mem_section: (mem_section | undefined)[];   /* struct pages per section, created on first use */
  section_bytes: (Uint8Array | undefined)[];  /* contents per section, allocated on first use */
}

interface sparse_state {
  ram: pfn_range;
  ranges: pfn_range[];                /* sorted by start_pfn; ranges[0] is RAM */
  next_device_pfn: number;            /* where the next ZONE_DEVICE range starts */
  content_bytes: number;              /* host bytes of page contents of sections in use */
  sections_freed: number;             /* RAM sections freed whole (bytes pooled or given back) */
  pool: Uint8Array[];                 /* bytes of freed sections kept for reuse, dirty */
}

let sp: sparse_state;
let pool_limit = 64 << 20;            /* bytes of freed sections kept for reuse (sparse_pool_limit) */

/**
 * sparse_pool_limit() - keep up to @bytes of freed sections' bytes for
 * reuse instead of giving them back to the host (default 64 MiB;
 * Infinity keeps all: benchmarks that measure the simulated fault, not
 * the host's). Return: the previous limit.
 */
export function sparse_pool_limit(bytes: number): number {
  const old = pool_limit;
  pool_limit = bytes;
  if (sp !== undefined) while (sp.pool.length * SECTION_BYTES > pool_limit) sp.pool.pop();
  return old;
}

function new_range(start_pfn: number, nr_pages: number, owner: string, pgmap: dev_pagemap | null): pfn_range {
  const n = Math.ceil(nr_pages / PAGES_PER_SECTION);
  return { start_pfn, nr_pages, owner, pgmap, mem_section: new Array(n), section_bytes: new Array(n) };
}

/**
 * sparse_init() - the memory map of a machine with @nr_pages frames of
 * RAM (a multiple of PAGES_PER_SECTION): no struct page and no byte of
 * contents exists yet. ZONE_DEVICE ranges go above RAM, one section of
 * hole past it and past each other.
 */
export function sparse_init(nr_pages: number): void {
  const ram = new_range(0, nr_pages, 'ram', null);
  clear_mem_sections();
  sp = { ram, ranges: [ram], next_device_pfn: nr_pages + PAGES_PER_SECTION * 16, content_bytes: 0, sections_freed: 0, pool: [] };
}

/* sparse_init_section() - the struct pages of section @s of @r, created now (all fields at their defaults) */
function sparse_init_section(r: pfn_range, s: number): mem_section {
  const first = r.start_pfn + s * PAGES_PER_SECTION;
  const n = Math.min(PAGES_PER_SECTION, r.nr_pages - s * PAGES_PER_SECTION);
  const ms = new mem_section(first, n, r.pgmap);
  r.mem_section[s] = ms;
  set_mem_section(first >>> PFN_SECTION_SHIFT, ms);
  return ms;
}

/* The bytes of section @s of @r, allocated (zeroed) now if they are not there. */
function section_bytes(r: pfn_range, s: number): Uint8Array {
  let b = r.section_bytes[s];
  if (b === undefined) {
    b = sp.pool.pop()?.fill(0) ?? new Uint8Array(SECTION_BYTES);
    r.section_bytes[s] = b;
    sp.content_bytes += SECTION_BYTES;
  }
  return b;
}

/**
 * sparse_free_section_bytes() - the buddy allocator made RAM section
 * @pfn >> PFN_SECTION_SHIFT one free block: give its bytes back to the
 * host. The next use of the section starts from zeroed bytes.
 */
export function sparse_free_section_bytes(pfn: number): void {
  const s = pfn >>> PFN_SECTION_SHIFT;
  const b = sp.ram.section_bytes[s];
  if (b === undefined) return;
  if ((sp.pool.length + 1) * SECTION_BYTES <= pool_limit) sp.pool.push(b);
  sp.ram.section_bytes[s] = undefined;
  sp.content_bytes -= SECTION_BYTES;
  sp.sections_freed++;
}

/** ram_content_bytes() - host bytes holding page contents now: sections in use (RAM and device) and the pool. */
export function ram_content_bytes(): number { return sp.content_bytes + sp.pool.length * SECTION_BYTES; }
/**
 * sparse_stats() - sections of RAM with struct pages / with bytes now,
 * sections freed whole so far, and freed sections' bytes kept in the pool.
 */
export function sparse_stats(): { memmap_sections: number; byte_sections: number; sections_freed: number; pooled: number } {
  let m = 0, b = 0;
  for (const x of sp.ram.mem_section) if (x !== undefined) m++;
  for (const x of sp.ram.section_bytes) if (x !== undefined) b++;
  return { memmap_sections: m, byte_sections: b, sections_freed: sp.sections_freed, pooled: sp.pool.length };
}

/**
 * memmap_bytes() - host bytes of the struct page arrays of every section
 * with struct pages (typed arrays by their length, arrays of references
 * at 8 bytes a slot), without the page handle objects themselves.
 */
export function memmap_bytes(): number {
  let n = 0;
  for (const r of sp.ranges) {
    for (const ms of r.mem_section) {
      if (ms === undefined) continue;
      for (const a of [ms.flags, ms._refcount, ms._mapcount, ms.index, ms.lru_prev, ms.lru_next, ms.order,
        ms._entire_mapcount, ms._pincount, ms.private, ms.compound_head, ms.memcg]) n += a?.byteLength ?? 0;
      for (const a of [ms.mapping, ms.pages, ms.zone_device_data, ms.waitq, ms.pgmap_of]) n += 8 * (a?.length ?? 0);
    }
  }
  return n;
}

/** for_each_pfn_range() - RAM (first) and every registered ZONE_DEVICE range (kmemleak, tests). */
export function for_each_pfn_range(): readonly pfn_range[] { return sp.ranges; }

/**
 * for_each_present_page() - call @fn on every struct page of @r that
 * code has asked for (a frame whose page was never asked for by
 * pfn_to_page() was never allocated: every allocation goes through it).
 */
export function for_each_present_page(r: pfn_range, fn: (p: page) => void): void {
  for (const ms of r.mem_section) if (ms !== undefined) for (const p of ms.pages) if (p !== undefined) fn(p);
}

/**
 * register_pfn_range() - add a ZONE_DEVICE range (mm/memremap.ts).
 * @nr_pages: size of the range; its pfns start above RAM, section aligned.
 * @owner: a name for dumps.
 * @pgmap: the pagemap every struct page of the range points to.
 * Return: the range; its struct pages and (zeroed) bytes appear on first use.
 */
export function register_pfn_range(nr_pages: number, owner: string, pgmap: dev_pagemap | null = null): pfn_range {
  const start_pfn = sp.next_device_pfn;
  sp.next_device_pfn += (Math.ceil(nr_pages / PAGES_PER_SECTION) + 1) * PAGES_PER_SECTION;
  const r = new_range(start_pfn, nr_pages, owner, pgmap);
  sp.ranges.push(r);
  return r;
}

/** unregister_pfn_range() - remove a ZONE_DEVICE range (memunmap_pages). */
export function unregister_pfn_range(r: pfn_range): void {
  sp.ranges = sp.ranges.filter((x) => x !== r);
  for (const ms of r.mem_section) if (ms !== undefined) set_mem_section(ms.start_pfn >>> PFN_SECTION_SHIFT, undefined);
  for (const b of r.section_bytes) if (b !== undefined) sp.content_bytes -= SECTION_BYTES;
  r.section_bytes.length = 0;
}

/* The range holding @pfn: RAM directly, device ranges by binary search (sorted, disjoint). */
function find_range(pfn: number): pfn_range | null {
  if (pfn < sp.ram.nr_pages) return sp.ram;
  const rs = sp.ranges;
  let lo = 1, hi = rs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1, r = rs[mid];
    if (pfn < r.start_pfn) hi = mid - 1;
    else if (pfn >= r.start_pfn + r.nr_pages) lo = mid + 1;
    else return r;
  }
  return null;
}

/** pfn_valid() - a struct page exists (or can be created) for this pfn. */
export function pfn_valid(pfn: number): boolean { return pfn >= 0 && find_range(pfn) !== null; }

/** pfn_to_page() - the struct page of a pfn; a BUG if there is none. */
export function pfn_to_page(pfn: number): page {
  const ms = __nr_to_section(pfn >>> PFN_SECTION_SHIFT);
  if (ms !== undefined) {
    const p = ms.pages[pfn & SECTION_MASK];
    if (p !== undefined) return p;
  }
  return pfn_to_page_slow(pfn);
}

/* pfn_to_page() of a frame without a handle yet: its section may not exist yet either */
function pfn_to_page_slow(pfn: number): page {
  const r = pfn < sp.ram.nr_pages ? sp.ram : find_range(pfn);
  if (r === null || !Number.isInteger(pfn)) BUG(`pfn_to_page of invalid pfn ${pfn}`);
  const s = (pfn - r.start_pfn) >>> PFN_SECTION_SHIFT;
  return (r.mem_section[s] ?? sparse_init_section(r, s)).page_of(pfn);
}

/** page_to_pfn() - the frame number of a page. */
export function page_to_pfn(p: page): number { return p.pfn; }

/** is_ram_page() - the page is ordinary RAM (not ZONE_DEVICE). */
export function is_ram_page(p: page): boolean { return p.pfn < sp.ram.nr_pages; }

/**
 * phys_to_bytes() - the section bytes holding physical address @phys; the
 * byte is at phys % SECTION_BYTES in them (ranges are section aligned).
 * For the MMU's load/store path (mm/fault.ts).
 */
export function phys_to_bytes(phys: number): Uint8Array {
  const pfn = Math.floor(phys / PAGE_SIZE);
  const r = pfn < sp.ram.nr_pages ? sp.ram : find_range(pfn);
  if (r === null) BUG(`physical address 0x${phys.toString(16)} is not memory`);
  return section_bytes(r, (pfn - r.start_pfn) >>> PFN_SECTION_SHIFT);
}

/**
 * page_backing() - the byte array that holds a page's contents and the
 * page's offset in it (what kmap returns a pointer to in Linux). Valid
 * for this page and the following pages of its section only.
 */
export function page_backing(p: page): { bytes: Uint8Array; offset: number } {
  return { bytes: phys_to_bytes(p.pfn * PAGE_SIZE), offset: (p.pfn & SECTION_MASK) * PAGE_SIZE };
}

/** kmap_local_page() - a view of the page's 4096 bytes. */
export function kmap_local_page(p: page): Uint8Array {
  const off = (p.pfn & SECTION_MASK) * PAGE_SIZE;
  return phys_to_bytes(p.pfn * PAGE_SIZE).subarray(off, off + PAGE_SIZE);
}

/* Call fn(bytes or undefined, offset, length) for each section piece of [pfn, pfn + nr). */
function each_piece(pfn: number, nr: number, alloc: boolean, fn: (b: Uint8Array | undefined, off: number, len: number) => void): void {
  while (nr > 0) {
    const r = find_range(pfn);
    if (r === null) BUG(`pfn ${pfn} is not memory`);
    const i = pfn - r.start_pfn, s = i >>> PFN_SECTION_SHIFT, first = i & SECTION_MASK;
    const n = Math.min(nr, PAGES_PER_SECTION - first);
    fn(alloc ? section_bytes(r, s) : r.section_bytes[s], first * PAGE_SIZE, n * PAGE_SIZE);
    pfn += n;
    nr -= n;
  }
}

/**
 * zero_pages() - fill @nr pages from @p with zeroes. Sections without
 * bytes are zero already and stay unallocated.
 */
export function zero_pages(p: page, nr: number): void {
  each_piece(p.pfn, nr, false, (b, off, len) => { b?.fill(0, off, off + len); });
}

/** copy_pages() - copy the bytes of @nr pages from @src to @dst (each range contiguous in pfns). */
export function copy_pages(dst: page, src: page, nr: number): void {
  let d = dst.pfn;
  each_piece(src.pfn, nr, true, (b, off, len) => {
    let done = 0;
    while (done < len) {
      const n = len - done;
      const dbytes = phys_to_bytes(d * PAGE_SIZE), doff = (d & SECTION_MASK) * PAGE_SIZE;
      const m = Math.min(n, SECTION_BYTES - doff);
      dbytes.set(b!.subarray(off + done, off + done + m), doff);
      done += m;
      d += m / PAGE_SIZE;
    }
  });
}
