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
 *                     the first time pfn_to_page() asks for one of them
 *                     (or the buddy allocator takes the section's block);
 *                     page handles are made on demand, none is kept;
 *   section_bytes[s]  the section's 4 MiB of page contents, a slot of a
 *                     slab (below) taken the first time a page of it is
 *                     read or written, and handed back when the buddy
 *                     allocator merges the whole section into one free
 *                     block again (RAM only: sparse_free_section_bytes()).
 *                     A section without bytes reads zero.
 *
 * Slabs. Section bytes are carved out of large host ArrayBuffers:
 *
 *   slab 0 (1 slot)   slab 1 (1)   slab 2 (2)      slab 3 (4)        ... up to 64 slots (256 MiB)
 *   | s0 |            | s7 |       | s3 | free |   | s9 | s1 | - | - |
 *                                                            `fresh: never handed out, zero
 *
 * A new slab is as large as the sections in use now (1 to
 * SLAB_MAX_SECTIONS slots), so host memory grows geometrically in few
 * large buffers: each new ArrayBuffer is external memory that V8 answers
 * with a full GC, and 4 MiB buffers cost one every few hundred faults at
 * 1M pages. A section takes the first slot free in slab order (slots
 * handed back before fresh ones, which the host has not faulted in yet).
 * A slab whose slots are all free is given back to the host, except that
 * up to sparse_pool_limit() bytes of empty slabs are kept for the next
 * sections used: the host's own page faults on fresh memory cost more
 * than a simulated fault, so a workload that frees and faults again
 * reuses resident memory. Free slots of a slab still in use stay with
 * it (at most the slab's size: the cost of few buffers).
 *
 * Stale pages. A slot handed back holds its old bytes. Instead of zeroing
 * 4 MiB when a section takes it again (and then each page once more when
 * the allocator clears it for a fault), the section records its pages as
 * stale; a stale page is zeroed on its first access (phys_to_bytes(),
 * kmap_local_page(), page_backing(), copy_pages() from it), and
 * zero_pages() or copy_pages() onto it write it once and clear the mark.
 *
 * So a machine of 256 GiB boots without touching 256 GiB of host memory,
 * and host memory grows with the pages the workload uses. A page's
 * contents are contiguous within its section only: code that handles
 * more than one page of bytes at a time goes through zero_pages() and
 * copy_pages(), which walk section by section.
 *
 * Simplified: a section is 4 MiB (the buddy allocator's largest block,
 * MAX_ORDER in mm/page_alloc.ts) instead of x86-64's 128 MiB; no memory
 * hotplug; sections of struct pages are never freed. The slabs are the
 * model's host-memory management: Linux's page contents are the RAM.
 */
import {
  type page, mem_section, __pfn_to_section, set_mem_section, clear_mem_sections,
  PFN_SECTION_SHIFT, PAGES_PER_SECTION, SECTION_MASK,
} from '../include/linux/mm_types.js';
import type { dev_pagemap } from '../include/linux/memremap.js';
import { PAGE_SIZE } from '../include/linux/mm.js';
import { BUG } from '../include/asm-generic/bug.js';

export { PFN_SECTION_SHIFT, PAGES_PER_SECTION };
/** SECTION_BYTES - bytes of contents of one section (4 MiB). */
export const SECTION_BYTES = PAGES_PER_SECTION * PAGE_SIZE;
/** SLAB_MAX_SECTIONS - section slots of the largest slab (256 MiB). */
export const SLAB_MAX_SECTIONS = 64;

/* One host ArrayBuffer carved into section-sized slots. */
interface section_slab {
  readonly buf: ArrayBuffer;
  readonly nr: number;                /* slots */
  used: number;                       /* slots holding a section's bytes now */
  fresh: number;                      /* slots [fresh, nr) were never handed out: zero from the host */
  readonly free: number[];            /* slots handed back (stale bytes), reused first */
}

/* The stale pages of a section whose slot was used before: a bit per page, and how many are set. */
interface stale_map { bits: Uint32Array; nr: number }

/** A pfn range with its own struct pages and bytes (RAM, or a ZONE_DEVICE range). */
export interface pfn_range {
  start_pfn: number;                  /* a multiple of PAGES_PER_SECTION */
  nr_pages: number;
  owner: string;                      /* 'ram' or the pagemap name */
  pgmap: dev_pagemap | null;          /* set in every struct page of a ZONE_DEVICE range */
  mem_section: (mem_section | undefined)[];   /* struct pages per section, created on first use */
  section_bytes: (Uint8Array | undefined)[];  /* contents per section, a slab slot taken on first use */
  section_slab: (section_slab | undefined)[]; /* the slab each section's bytes are in */
  section_stale: (stale_map | null | undefined)[];  /* pages not zeroed yet since the slot's last use */
}

interface sparse_state {
  ram: pfn_range;
  ranges: pfn_range[];                /* sorted by start_pfn; ranges[0] is RAM */
  next_device_pfn: number;            /* where the next ZONE_DEVICE range starts */
  content_bytes: number;              /* host bytes of page contents of sections in use */
  sections_freed: number;             /* RAM sections freed whole (slot handed back to its slab) */
  slabs: section_slab[];              /* live slabs, oldest first */
  slab_bytes: number;                 /* host bytes of all live slabs */
}

let sp: sparse_state;
let pool_limit = 64 << 20;            /* bytes of empty slabs kept for reuse (sparse_pool_limit) */

/* bytes of the live slabs that hold no section now */
function empty_slab_bytes(): number {
  let n = 0;
  for (const sl of sp.slabs) if (sl.used === 0) n += sl.buf.byteLength;
  return n;
}

/* Give back empty slabs, newest first, until at most pool_limit bytes of them are left. */
function trim_slabs(): void {
  let keep = empty_slab_bytes();
  for (let i = sp.slabs.length - 1; i >= 0 && keep > pool_limit; i--) {
    const sl = sp.slabs[i];
    if (sl.used !== 0) continue;
    sp.slabs.splice(i, 1);
    sp.slab_bytes -= sl.buf.byteLength;
    keep -= sl.buf.byteLength;
  }
}

/**
 * sparse_pool_limit() - keep up to @bytes of empty slabs for reuse
 * instead of giving them back to the host (default 64 MiB; Infinity
 * keeps all: benchmarks that measure the simulated fault, not the
 * host's). Return: the previous limit.
 */
export function sparse_pool_limit(bytes: number): number {
  const old = pool_limit;
  pool_limit = bytes;
  if (sp !== undefined) trim_slabs();
  return old;
}

function new_range(start_pfn: number, nr_pages: number, owner: string, pgmap: dev_pagemap | null): pfn_range {
  const n = Math.ceil(nr_pages / PAGES_PER_SECTION);
  return {
    start_pfn, nr_pages, owner, pgmap, mem_section: new Array(n), section_bytes: new Array(n),
    section_slab: new Array(n), section_stale: new Array(n),
  };
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
  sp = { ram, ranges: [ram], next_device_pfn: nr_pages + PAGES_PER_SECTION * 16, content_bytes: 0, sections_freed: 0, slabs: [], slab_bytes: 0 };
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

/* A slab with a slot free (the first in slab order), made now if there is none. */
function slab_with_room(): section_slab {
  for (const sl of sp.slabs) if (sl.used < sl.nr) return sl;
  const nr = Math.min(SLAB_MAX_SECTIONS, Math.max(1, sp.content_bytes / SECTION_BYTES));
  const sl: section_slab = { buf: new ArrayBuffer(nr * SECTION_BYTES), nr, used: 0, fresh: 0, free: [] };
  sp.slabs.push(sl);
  sp.slab_bytes += sl.buf.byteLength;
  return sl;
}

/*
 * section_bytes_alloc() - give section @s of @r its bytes: a slot handed
 * back earlier (its pages marked stale, so they read zero) or a fresh
 * one (zero from the host).
 */
function section_bytes_alloc(r: pfn_range, s: number): Uint8Array {
  const sl = slab_with_room();
  let slot = sl.free.pop();
  if (slot === undefined) {
    slot = sl.fresh++;
  } else {
    r.section_stale[s] = { bits: new Uint32Array(PAGES_PER_SECTION >>> 5).fill(~0), nr: PAGES_PER_SECTION };
  }
  sl.used++;
  const b = new Uint8Array(sl.buf, slot * SECTION_BYTES, SECTION_BYTES);
  r.section_bytes[s] = b;
  r.section_slab[s] = sl;
  sp.content_bytes += SECTION_BYTES;
  return b;
}

/* The bytes of section @s of @r, allocated now if they are not there. */
function section_bytes(r: pfn_range, s: number): Uint8Array {
  const b = r.section_bytes[s];
  return b !== undefined ? b : section_bytes_alloc(r, s);
}

/* section_bytes_free() - hand the slot of section @s of @r back to its slab; give back a slab left empty beyond the pool. */
function section_bytes_free(r: pfn_range, s: number): void {
  const b = r.section_bytes[s], sl = r.section_slab[s];
  if (b === undefined || sl === undefined) return;
  sl.free.push(b.byteOffset / SECTION_BYTES);
  sl.used--;
  r.section_bytes[s] = undefined;
  r.section_slab[s] = undefined;
  r.section_stale[s] = null;
  sp.content_bytes -= SECTION_BYTES;
  if (sl.used === 0) trim_slabs();
}

/*
 * Zero the stale pages among @nr pages from index @first of section @s
 * of @r (@write: the caller overwrites them all, so only clear the mark).
 */
function settle(r: pfn_range, s: number, first: number, nr: number, write: boolean): void {
  const st = r.section_stale[s];
  if (st === null || st === undefined) return;
  const b = r.section_bytes[s]!;
  for (let i = first; i < first + nr; i++) {
    const w = i >>> 5, m = 1 << (i & 31);
    if ((st.bits[w] & m) === 0) continue;
    st.bits[w] &= ~m;
    if (!write) b.fill(0, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
    if (--st.nr === 0) { r.section_stale[s] = null; return; }
  }
}

/**
 * sparse_free_section_bytes() - the buddy allocator made RAM section
 * @pfn >> PFN_SECTION_SHIFT one free block: hand its bytes back to
 * their slab (the host gets them back with the slab). The next use of
 * the section reads zero.
 */
export function sparse_free_section_bytes(pfn: number): void {
  const s = pfn >>> PFN_SECTION_SHIFT;
  if (sp.ram.section_bytes[s] === undefined) return;
  section_bytes_free(sp.ram, s);
  sp.sections_freed++;
}

/**
 * sparse_free_slots() - views of the section slots that live slabs hold
 * but no section uses now, and whose bytes a section used before (handed
 * back: the next section to take one treats every page of it as stale
 * and zeroes a page before anyone reads it). Never-used slots are left
 * out: those must stay zero. So writing into these views changes nothing
 * a simulated reader can see: benchmarks use them for host-memory
 * baselines over the simulator's own, already resident, memory.
 */
export function sparse_free_slots(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const sl of sp.slabs) for (const slot of sl.free) out.push(new Uint8Array(sl.buf, slot * SECTION_BYTES, SECTION_BYTES));
  return out;
}

/** ram_content_bytes() - host bytes holding page contents now: every live slab (sections in use, free slots, kept empty slabs). */
export function ram_content_bytes(): number { return sp.slab_bytes; }
/**
 * sparse_stats() - sections of RAM with struct pages / with bytes now,
 * sections freed whole so far, section slots of the live slabs that hold
 * no section (kept for reuse), the live slabs, and the pages of sections
 * in use still stale (not zeroed since their slot's last use).
 */
export function sparse_stats(): {
  memmap_sections: number; byte_sections: number; sections_freed: number; pooled: number; slabs: number; stale_pages: number;
} {
  let m = 0, b = 0, stale = 0;
  for (const x of sp.ram.mem_section) if (x !== undefined) m++;
  for (const x of sp.ram.section_bytes) if (x !== undefined) b++;
  for (const r of sp.ranges) for (const st of r.section_stale) stale += st?.nr ?? 0;
  let pooled = 0;
  for (const sl of sp.slabs) pooled += sl.nr - sl.used;
  return { memmap_sections: m, byte_sections: b, sections_freed: sp.sections_freed, pooled, slabs: sp.slabs.length, stale_pages: stale };
}

/**
 * memmap_bytes() - host bytes of the struct page arrays of every section
 * with struct pages (typed arrays by their length, arrays of references
 * at 8 bytes a slot). Page handles are made on demand and kept by no
 * section.
 */
export function memmap_bytes(): number {
  let n = 0;
  for (const r of sp.ranges) {
    for (const ms of r.mem_section) {
      if (ms === undefined) continue;
      for (const a of [ms.flags, ms._refcount, ms._mapcount, ms.index, ms.lru_prev, ms.lru_next, ms.order,
        ms._entire_mapcount, ms._pincount, ms.private, ms.compound_head, ms.memcg]) n += a?.byteLength ?? 0;
      for (const a of [ms.mapping, ms.zone_device_data, ms.waitq, ms.pgmap_of]) n += 8 * (a?.length ?? 0);
    }
  }
  return n;
}

/** for_each_pfn_range() - RAM (first) and every registered ZONE_DEVICE range (kmemleak, tests). */
export function for_each_pfn_range(): readonly pfn_range[] { return sp.ranges; }

/**
 * for_each_present_page() - call @fn on every struct page of the
 * sections of @r that have struct pages (a frame of a section without
 * them was never allocated: every allocation creates its section).
 */
export function for_each_present_page(r: pfn_range, fn: (p: page) => void): void {
  for (const ms of r.mem_section) {
    if (ms === undefined) continue;
    for (let i = 0; i < ms.nr; i++) fn(ms.page_of(ms.start_pfn + i));
  }
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
  for (let s = 0; s < r.section_bytes.length; s++) section_bytes_free(r, s);
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

/**
 * pfn_to_page() - a handle of the struct page of a pfn (a new object:
 * compare pages by pfn); a BUG if there is none.
 */
export function pfn_to_page(pfn: number): page {
  const ms = __pfn_to_section(pfn);
  if (ms !== undefined) {
    const i = pfn - ms.start_pfn;
    if ((i >>> 0) === i && i < ms.nr) return ms.page_of(pfn);
  }
  return pfn_to_page_slow(pfn);
}

/**
 * sparse_section() - the struct page arrays of the section of @pfn,
 * created now if no frame of it was used yet (the buddy allocator, which
 * threads its free lists through them); a BUG if @pfn is not memory.
 */
export function sparse_section(pfn: number): mem_section {
  const ms = __pfn_to_section(pfn);
  if (ms !== undefined) return ms;
  const r = pfn < sp.ram.nr_pages ? sp.ram : find_range(pfn);
  if (r === null || !Number.isInteger(pfn)) BUG(`no memory section for pfn ${pfn}`);
  return sparse_init_section(r, (pfn - r.start_pfn) >>> PFN_SECTION_SHIFT);
}

/* pfn_to_page() of a frame whose section does not exist yet (or of a pfn that is no memory: a BUG) */
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
  const s = (pfn - r.start_pfn) >>> PFN_SECTION_SHIFT;
  const b = section_bytes(r, s);
  if (r.section_stale[s]) settle(r, s, pfn & SECTION_MASK, 1, false);
  return b;
}

/**
 * page_backing() - the byte array that holds a page's contents and the
 * page's offset in it (what kmap returns a pointer to in Linux). Valid
 * for this page and the following pages of its section only.
 */
export function page_backing(p: page): { bytes: Uint8Array; offset: number } {
  const i = p.pfn & SECTION_MASK, bytes = phys_to_bytes(p.pfn * PAGE_SIZE);
  piece_bytes(p.pfn, PAGES_PER_SECTION - i, true, false);       /* the following pages: no longer stale */
  return { bytes, offset: i * PAGE_SIZE };
}

/** kmap_local_page() - a view of the page's 4096 bytes (zeroed first if stale). */
export function kmap_local_page(p: page): Uint8Array {
  const off = (p.pfn & SECTION_MASK) * PAGE_SIZE;
  return phys_to_bytes(p.pfn * PAGE_SIZE).subarray(off, off + PAGE_SIZE);
}

/*
 * piece_bytes() - the bytes of the section holding @pfn, whose pages
 * [pfn, pfn + nr) the caller is about to use (all in that section):
 * @alloc gives a section without bytes its bytes first (else undefined
 * comes back for it: it reads zero); stale pages among them are zeroed,
 * or only unmarked if @overwrite (the caller writes every byte of them).
 */
function piece_bytes(pfn: number, nr: number, alloc: boolean, overwrite: boolean): Uint8Array | undefined {
  const r = find_range(pfn);
  if (r === null) BUG(`pfn ${pfn} is not memory`);
  const i = pfn - r.start_pfn, s = i >>> PFN_SECTION_SHIFT;
  const b = alloc ? section_bytes(r, s) : r.section_bytes[s];
  if (r.section_stale[s]) settle(r, s, i & SECTION_MASK, nr, overwrite);
  return b;
}

/* pages of [pfn, pfn + nr) in the section of @pfn */
const in_section = (pfn: number, nr: number) => Math.min(nr, PAGES_PER_SECTION - (pfn & SECTION_MASK));

/**
 * zero_pages() - fill @nr pages from @p with zeroes. Sections without
 * bytes are zero already and stay unallocated; stale pages are written
 * once.
 */
export function zero_pages(p: page, nr: number): void {
  for (let pfn = p.pfn; nr > 0;) {
    const n = in_section(pfn, nr), off = (pfn & SECTION_MASK) * PAGE_SIZE;
    piece_bytes(pfn, n, false, true)?.fill(0, off, off + n * PAGE_SIZE);
    pfn += n;
    nr -= n;
  }
}

/** copy_pages() - copy the bytes of @nr pages from @src to @dst (each range contiguous in pfns). */
export function copy_pages(dst: page, src: page, nr: number): void {
  for (let s = src.pfn, d = dst.pfn; nr > 0;) {
    const n = in_section(d, in_section(s, nr));
    const from = piece_bytes(s, n, true, false)!, to = piece_bytes(d, n, true, true)!;
    const soff = (s & SECTION_MASK) * PAGE_SIZE;
    to.set(from.subarray(soff, soff + n * PAGE_SIZE), (d & SECTION_MASK) * PAGE_SIZE);
    s += n;
    d += n;
    nr -= n;
  }
}
