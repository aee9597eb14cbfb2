/*
 * include/linux/mm_types.ts - struct page, struct vm_area_struct and
 * struct mm_struct.
 *
 * Models include/linux/mm_types.h. What is simplified:
 *  - struct page is a struct of typed arrays per memory section, read
 *    through small handle objects made on demand (layout below), not a
 *    64-byte C struct in a vmemmap. A folio is its head page: folio
 *    helpers take a `page` whose `order` says how large it is.
 *  - page->mapping is an object reference with a `kind` tag instead of a
 *    pointer with PAGE_MAPPING_ANON in its low bit.
 *  - VMAs live in a sorted array (mm.mmap) searched by bisection instead of
 *    a maple tree; the operations (find_vma, insert, split, merge) are the
 *    ones Linux performs.
 *
 * Lock order (the whole tree; see Documentation/vm/hmm.txt "Locking"):
 *
 *   mmap_lock (rw_semaphore, sleeps)
 *     -> folio lock (PG_locked, sleeps)
 *       -> page-table lock (split PTE lock, one spinlock per PTE page;
 *          mm->page_table_lock for the upper levels)
 *         -> mmu_notifier_subscriptions.lock (spinlock)
 *   driver locks taken inside mmu notifier callbacks nest inside mmap_lock
 *   and must not be held while calling into core mm with mmap_lock taken.
 */
import type { rw_semaphore } from './rwsem.js';
import type { spinlock_t } from './spinlock_types.js';
import type { wait_queue_head } from './wait.js';
import type { gpt } from './gpt.js';
import type { dev_pagemap } from './memremap.js';
import type { Sleepable } from './sched.js';
import { BUG } from '../asm-generic/bug.js';

/** An address_space: the page cache of a file (or of shmem). */
export interface address_space {
  readonly kind: 'file';
  host: unknown;                       /* the inode */
  i_pages: Map<number, page>;          /* page cache, indexed by page offset */
  i_mmap: Set<vm_area_struct>;         /* VMAs mapping this file (rmap for file pages) */
}

/**
 * struct anon_vma - the reverse-map anchor of anonymous pages.
 *
 * Every VMA that may map a page of this anon_vma is in `vmas`; an anon
 * page's address in a VMA is vm_start + ((page->index - vm_pgoff) << PAGE_SHIFT).
 * Linux chains one anon_vma per fork generation (anon_vma_chain); here a
 * forked child's VMA joins its parent's anon_vma, which finds a superset
 * of the mappings and lets rmap_walk check each candidate PTE.
 */
export class anon_vma {
  readonly kind = 'anon';
  /* VMAs (of any process) that may map pages of this anon_vma */
  vmas = new Set<vm_area_struct>();
  refcount = 1;
  /* root->rwsem: rmap walks that sleep hold it for read, linking a fork child's VMA for write */
  rwsem: rw_semaphore | null = null;
}


/*
 * The memory map: struct page as a struct of arrays.
 *
 * Linux keeps one 64-byte struct page per frame in the vmemmap. Here the
 * frames of one memory section (PAGES_PER_SECTION frames, mm/sparse.ts)
 * share one mem_section whose fields are typed arrays indexed by
 * pfn & SECTION_MASK; a `page` is a small handle {pfn, section} whose
 * fields are accessors into those arrays, so kernel code still reads
 * page->_refcount as p._refcount. Bytes per frame:
 *
 *   always, from the section's first use:
 *     flags              Int32Array    4  PG_* bits 0..28 (include/linux/page-flags.ts)
 *     _refcount          Int32Array    4
 *     _mapcount          Int32Array    4  -1 = no PTE maps the page
 *     index              Float64Array  8  page offset; anon indexes pass 2^32
 *     mapping            Array         8  anon_vma | address_space | null
 *     lru_prev, lru_next Int32Array  2x4  pfn of the LRU neighbours, -1 = none; of a free
 *                                         block's first frame (PG_buddy): its buddy free list
 *     order              Uint8Array    1  folio order of a head page; of a PG_buddy frame:
 *                                         its free block's order (buddy_order())
 *                                    ---
 *                                     37
 *   only once a frame of the section stores a value other than the default
 *   (the field reads its default until then):
 *     _entire_mapcount   Int32Array    4  heads of PMD/PUD-mapped folios (default -1)
 *     _pincount          Int32Array    4  pinned pages (0)
 *     private            Float64Array  8  swap entries, driver words (0)
 *     compound_head      Int32Array    4  tails: pfn distance to the head (0 = itself)
 *     memcg              Uint16Array   2  slot in a table of the cgroups charged (0 = none)
 *     zone_device_data, waitq, pgmap (when not the section's)
 *                        Array       8 each
 *   no handle per frame: pfn_to_page() (and a tail's compound_head, an
 *   LRU link) makes a new handle, a JS object of 2 fields that lives as
 *   long as the code holding it, like a pointer in a local variable.
 *
 * So two handles of one frame are two objects: the same struct page is
 * the same pfn, never the same object. Code compares pages by pfn
 * (page_to_pfn(a) == page_to_pfn(b), or a.pfn === b.pfn), keys maps and
 * sets by pfn, and keeps no state of its own on a handle.
 *
 * Object fields stay references in plain arrays (8 B, like a pointer)
 * rather than handles into a table: they need no table that outlives the
 * objects. Every handle has the same two fields from its constructor on,
 * and every field is a typed-array element or an array slot, so no store
 * on the fault path changes a hidden class (a large page index used to
 * turn a Smi field of every page object into a double).
 */

/** PFN_SECTION_SHIFT - log2 of the frames in a memory section (equals MAX_ORDER of mm/page_alloc.ts). */
export const PFN_SECTION_SHIFT = 10;
export const PAGES_PER_SECTION = 1 << PFN_SECTION_SHIFT;
/** SECTION_MASK - a frame's index in its section: pfn & SECTION_MASK. */
export const SECTION_MASK = PAGES_PER_SECTION - 1;

/**
 * struct mem_section - the struct pages of PAGES_PER_SECTION frames from
 * @start_pfn (section aligned), @nr of them (fewer in a range's last
 * section). Created by mm/sparse.ts on the section's first use.
 */
export class mem_section {
  readonly flags: Int32Array;
  readonly _refcount: Int32Array;
  readonly _mapcount: Int32Array;
  readonly index: Float64Array;
  readonly mapping: (anon_vma | address_space | null)[];
  readonly lru_prev: Int32Array;
  readonly lru_next: Int32Array;
  readonly order: Uint8Array;
  /* allocated on the first store of a value other than the default */
  _entire_mapcount: Int32Array | null = null;
  _pincount: Int32Array | null = null;
  private: Float64Array | null = null;
  compound_head: Int32Array | null = null;
  memcg: Uint16Array | null = null;
  zone_device_data: unknown[] | null = null;
  waitq: (wait_queue_head | null)[] | null = null;
  pgmap_of: (dev_pagemap | null)[] | null = null;

  constructor(readonly start_pfn: number, readonly nr: number, readonly pgmap: dev_pagemap | null) {
    this.flags = new Int32Array(nr);
    this._refcount = new Int32Array(nr);
    this._mapcount = new Int32Array(nr).fill(-1);
    this.index = new Float64Array(nr);
    this.mapping = new Array<anon_vma | address_space | null>(nr).fill(null);
    this.lru_prev = new Int32Array(nr).fill(-1);
    this.lru_next = new Int32Array(nr).fill(-1);
    this.order = new Uint8Array(nr);
  }

  /**
   * page_of() - a handle of frame @pfn of this section: the one in the
   * handle cache when it is for this frame of this section, else a new
   * one that takes the cache slot.
   */
  page_of(pfn: number): page {
    const slot = pfn & HANDLE_CACHE_MASK;
    const c = handle_cache[slot];
    if (c !== null && c.pfn === pfn && c.section === this) return c;
    const pg = new page(pfn, this);
    handle_cache[slot] = pg;
    return pg;
  }

  /**
   * page_new() - a new handle of frame @pfn of this section, not put in
   * the handle cache: for loops that use a frame's handle within one
   * iteration and meet each frame once per pass (the migration passes
   * over src[]/dst[], include/linux/migrate.ts). There the cache would
   * only cost a store with its write barrier and keep 4096 handles alive
   * through every minor GC; a handle that does not escape the iteration
   * may even be optimized away. A cached and a new handle read the same
   * struct page (compare pfns).
   */
  page_new(pfn: number): page {
    return new page(pfn, this);
  }
}

/*
 * The handle cache: a direct-mapped table of recently made handles,
 * indexed by pfn & HANDLE_CACHE_MASK, so that the hot loops (zap, fork,
 * the LRU, the buddy allocator) do not make a new object for every frame
 * they touch. A handle is immutable (pfn and section), so a cached one
 * and a new one read the same struct page; nothing compares handles by
 * identity (compare pfns). Fixed size: 4096 handles, about 0.2 MiB, not
 * per frame. A removed section's handles are dropped (set_mem_section).
 */
const HANDLE_CACHE_MASK = 4095;
const handle_cache: (page | null)[] = new Array<page | null>(HANDLE_CACHE_MASK + 1).fill(null);


/*
 * Every section with struct pages, indexed by pfn >> PFN_SECTION_SHIFT
 * (RAM and ZONE_DEVICE ranges alike). mm/sparse.ts owns it.
 */
const sections: (mem_section | undefined)[] = [];

/** __nr_to_section() - the section of number @nr, or undefined if it has no struct pages yet. */
export function __nr_to_section(nr: number): mem_section | undefined { return sections[nr]; }
/**
 * __pfn_to_section() - the section holding frame @pfn, or undefined if it
 * has no struct pages yet (Linux's __pfn_to_section(), include/linux/mmzone.h).
 */
export function __pfn_to_section(pfn: number): mem_section | undefined { return sections[pfn >>> PFN_SECTION_SHIFT]; }
/** set_mem_section() - install (or with undefined remove) section @nr (mm/sparse.ts only). */
export function set_mem_section(nr: number, ms: mem_section | undefined): void {
  const old = sections[nr];
  if (old !== undefined && old !== ms)
    for (let i = 0; i < handle_cache.length; i++) if (handle_cache[i]?.section === old) handle_cache[i] = null;
  sections[nr] = ms;
}
/** clear_mem_sections() - forget every section (a new machine boots; mm/sparse.ts only). */
export function clear_mem_sections(): void {
  sections.length = 0;
  memcg_by_slot.length = 1;
  memcg_slot_of.clear();
  last_memcg = null;
  last_slot = 0;
}

/*
 * page->memcg is a 16-bit slot (Linux's mem_cgroup ids are 16 bits too)
 * into this table of the memory cgroups pages were charged to since boot;
 * slot 0 is null. A removed cgroup keeps its slot until the next boot.
 */
const memcg_by_slot: unknown[] = [null];
const memcg_slot_of = new Map<unknown, number>();
let last_memcg: unknown = null, last_slot = 0;

function memcg_slot(v: unknown): number {
  if (v === null) return 0;                  /* uncharged: no lookup, and the one-entry cache keeps its cgroup */
  if (v === last_memcg) return last_slot;
  let id = memcg_slot_of.get(v);
  if (id === undefined) {
    id = memcg_by_slot.length;
    if (id > 0xffff) BUG('page->memcg: more than 65535 memory cgroups charged since boot');
    memcg_by_slot.push(v);
    memcg_slot_of.set(v, id);
  }
  last_memcg = v;
  last_slot = id;
  return id;
}

/**
 * memcg_of_slot() - the memory cgroup that page->memcg slot @slot names
 * (0: none): page->memcg read straight from a section's memcg array, for
 * the section-array paths (mm/swap.ts, mm/memcontrol.ts).
 * Context: any. Return: the cgroup, or null for slot 0.
 */
export function memcg_of_slot(slot: number): unknown { return memcg_by_slot[slot]; }

/* a handle of the page of @pfn, whose section exists (a link read from another page's fields) */
function linked_page(pfn: number): page {
  return new page(pfn, sections[pfn >>> PFN_SECTION_SHIFT]!);
}

/**
 * struct page - one physical page frame (RAM or ZONE_DEVICE): a handle
 * whose fields live in its mem_section (see the layout above). Obtain
 * one with pfn_to_page(); never construct one elsewhere. Two handles of
 * one frame are different objects: compare pages by pfn.
 *
 * _refcount counts references (page tables count one each, plus GUP,
 * page cache, swap cache, temporary gets); the page is freed when it
 * drops to 0. _mapcount counts PTEs mapping the page, starting at -1 as in
 * Linux (page_mapcount() returns _mapcount + 1).
 */
export class page {
  constructor(readonly pfn: number, readonly section: mem_section) {}

  /* what assertion diffs and JSON dumps print: the frame, not its whole section */
  toJSON(): { pfn: number } { return { pfn: this.pfn }; }

  /* PG_* bits, see include/linux/page-flags.ts; protected by the folio lock for most bits */
  get flags(): number { return this.section.flags[this.pfn & SECTION_MASK]; }
  set flags(v: number) { this.section.flags[this.pfn & SECTION_MASK] = v; }
  /* references; 0 means free (or a ZONE_DEVICE page not in use) */
  get _refcount(): number { return this.section._refcount[this.pfn & SECTION_MASK]; }
  set _refcount(v: number) { this.section._refcount[this.pfn & SECTION_MASK] = v; }
  /* number of PTEs mapping this page, minus one */
  get _mapcount(): number { return this.section._mapcount[this.pfn & SECTION_MASK]; }
  set _mapcount(v: number) { this.section._mapcount[this.pfn & SECTION_MASK] = v; }
  /* head of a large folio only: PMD/PUD mappings of the whole folio, minus one (mm/huge_memory.ts) */
  get _entire_mapcount(): number {
    const a = this.section._entire_mapcount;
    return a === null ? -1 : a[this.pfn & SECTION_MASK];
  }
  set _entire_mapcount(v: number) {
    const ms = this.section;
    if (ms._entire_mapcount === null) {
      if (v === -1) return;
      ms._entire_mapcount = new Int32Array(ms.nr).fill(-1);
    }
    ms._entire_mapcount[this.pfn & SECTION_MASK] = v;
  }
  /* anon_vma for anonymous pages, address_space for page cache, null otherwise */
  get mapping(): anon_vma | address_space | null { return this.section.mapping[this.pfn & SECTION_MASK]; }
  set mapping(v: anon_vma | address_space | null) { this.section.mapping[this.pfn & SECTION_MASK] = v; }
  /* page offset: in the file, or the linear index for anon (vm_pgoff units) */
  get index(): number { return this.section.index[this.pfn & SECTION_MASK]; }
  set index(v: number) { this.section.index[this.pfn & SECTION_MASK] = v; }
  /* owner-private word: swap entry value for swap cache pages, driver data */
  get private(): number {
    const a = this.section.private;
    return a === null ? 0 : a[this.pfn & SECTION_MASK];
  }
  set private(v: number) {
    const ms = this.section;
    if (ms.private === null) {
      if (v === 0) return;
      ms.private = new Float64Array(ms.nr);
    }
    ms.private[this.pfn & SECTION_MASK] = v;
  }
  /* ZONE_DEVICE: the pagemap this page belongs to (its range's, unless set otherwise) */
  get pgmap(): dev_pagemap | null {
    const a = this.section.pgmap_of;
    return a === null ? this.section.pgmap : a[this.pfn & SECTION_MASK];
  }
  set pgmap(v: dev_pagemap | null) {
    const ms = this.section;
    if (ms.pgmap_of === null) {
      if (v === ms.pgmap) return;
      ms.pgmap_of = new Array<dev_pagemap | null>(ms.nr).fill(ms.pgmap);
    }
    ms.pgmap_of[this.pfn & SECTION_MASK] = v;
  }
  /* driver data attached to a device page (zone_device_data) */
  get zone_device_data(): unknown {
    const a = this.section.zone_device_data;
    return a === null ? null : a[this.pfn & SECTION_MASK];
  }
  set zone_device_data(v: unknown) {
    const ms = this.section;
    if (ms.zone_device_data === null) {
      if (v === null) return;
      ms.zone_device_data = new Array<unknown>(ms.nr).fill(null);
    }
    ms.zone_device_data[this.pfn & SECTION_MASK] = v;
  }
  /* the memory cgroup charged for this page, or null */
  get memcg(): unknown {
    const a = this.section.memcg;
    return a === null ? null : memcg_by_slot[a[this.pfn & SECTION_MASK]];
  }
  set memcg(v: unknown) {
    const ms = this.section;
    if (ms.memcg === null) {
      if (v === null) return;
      ms.memcg = new Uint16Array(ms.nr);
    }
    ms.memcg[this.pfn & SECTION_MASK] = memcg_slot(v);
  }
  /* compound pages: the head page of the folio (this handle for head and order-0 pages) */
  get compound_head(): page {
    const a = this.section.compound_head;
    if (a === null) return this;
    const d = a[this.pfn & SECTION_MASK];
    return d === 0 ? this : linked_page(this.pfn - d);
  }
  set compound_head(v: page) {
    const ms = this.section, d = this.pfn - v.pfn;
    if (ms.compound_head === null) {
      if (d === 0) return;
      ms.compound_head = new Int32Array(ms.nr);
    }
    ms.compound_head[this.pfn & SECTION_MASK] = d;
  }
  /* compound order of a head page (0 for a single page); tail pages keep 0 */
  get order(): number { return this.section.order[this.pfn & SECTION_MASK]; }
  set order(v: number) { this.section.order[this.pfn & SECTION_MASK] = v; }
  /* LRU list linkage; protected by the lruvec lock */
  get lru_prev(): page | null {
    const n = this.section.lru_prev[this.pfn & SECTION_MASK];
    return n < 0 ? null : linked_page(n);
  }
  set lru_prev(v: page | null) { this.section.lru_prev[this.pfn & SECTION_MASK] = v === null ? -1 : v.pfn; }
  get lru_next(): page | null {
    const n = this.section.lru_next[this.pfn & SECTION_MASK];
    return n < 0 ? null : linked_page(n);
  }
  set lru_next(v: page | null) { this.section.lru_next[this.pfn & SECTION_MASK] = v === null ? -1 : v.pfn; }
  /* pins taken by pin_user_pages (GUP_PIN_COUNTING_BIAS in Linux) */
  get _pincount(): number {
    const a = this.section._pincount;
    return a === null ? 0 : a[this.pfn & SECTION_MASK];
  }
  set _pincount(v: number) {
    const ms = this.section;
    if (ms._pincount === null) {
      if (v === 0) return;
      ms._pincount = new Int32Array(ms.nr);
    }
    ms._pincount[this.pfn & SECTION_MASK] = v;
  }
  /* waiters on PG_locked (folio_wait_table in Linux), created on demand */
  get waitq(): wait_queue_head | null {
    const a = this.section.waitq;
    return a === null ? null : a[this.pfn & SECTION_MASK];
  }
  set waitq(v: wait_queue_head | null) {
    const ms = this.section;
    if (ms.waitq === null) {
      if (v === null) return;
      ms.waitq = new Array<wait_queue_head | null>(ms.nr).fill(null);
    }
    ms.waitq[this.pfn & SECTION_MASK] = v;
  }
}

/** A folio is represented by its head page. */
export type folio = page;

/** struct vm_operations_struct - what a driver or filesystem mapping does on fault. */
export interface vm_operations_struct {
  /* called with mmap_lock held for read; may sleep; returns VM_FAULT_* bits and sets vmf.page */
  fault?(vmf: vm_fault): Sleepable<number>;
  /* called when the VMA is duplicated (fork) or split */
  open?(vma: vm_area_struct): void;
  /* called when the VMA is unmapped */
  close?(vma: vm_area_struct): void;
  /* human-readable name for /proc/<pid>/maps */
  name?(vma: vm_area_struct): string;
}

/** struct vm_fault - the state of one fault as it walks the fault handlers. */
export interface vm_fault {
  vma: vm_area_struct;
  address: number;        /* faulting address, page aligned */
  real_address: number;   /* faulting address as the access made it */
  flags: number;          /* FAULT_FLAG_* */
  pgoff: number;          /* logical page offset in the VMA's object */
  pmd: number;            /* pointer to the PMD entry */
  pte: number;            /* pointer to the PTE, or -1 when not mapped */
  orig_pte: number;       /* the PTE value read when the fault started */
  orig_pmd?: number;      /* the PMD value read when a PMD-level fault started (huge PMD faults only) */
  page: page | null;      /* the page a ->fault handler returns */
  cow_page: page | null;  /* a page allocated for COW of a file page */
}

/**
 * struct vm_area_struct - one mapping of a process: [vm_start, vm_end).
 * Fields are changed under mmap_lock held for write.
 */
export class vm_area_struct {
  vm_start: number;
  vm_end: number;
  vm_flags: number;          /* VM_*, include/linux/mm.ts */
  vm_page_prot: number;      /* PTE protection bits for this VMA (_PAGE_*) */
  vm_pgoff = 0;              /* offset in vm_file in pages, or vm_start >> PAGE_SHIFT for anon */
  vm_file: unknown = null;   /* struct file, or null */
  vm_ops: vm_operations_struct | null = null;
  vm_private_data: unknown = null;
  anon_vma: anon_vma | null = null;
  constructor(readonly vm_mm: mm_struct, start: number, end: number, flags: number, prot: number) {
    this.vm_start = start;
    this.vm_end = end;
    this.vm_flags = flags;
    this.vm_page_prot = prot;
  }
}

/* rss counter indexes, as enum in Linux */
export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;
export const NR_MM_COUNTERS = 4;

/* mm->flags bits (Linux's MMF_*): the OOM killer is done with this mm (reaped, or not worth it) */
export const MMF_OOM_SKIP = 1 << 21;
/* the mm holds a reference on the huge zero folio (mm/huge_memory.ts mm_get_huge_zero_folio) */
export const MMF_HUGE_ZERO_FOLIO = 1 << 23;

/**
 * struct mm_struct - an address space.
 *
 * mmap_lock protects the VMA list and the VMA fields; the page tables are
 * protected by page-table locks (split per PTE page) and, for their
 * structure, by mmap_lock held for read at least.
 */
export class mm_struct {
  /* protected by mmap_lock: VMAs sorted by vm_start, non-overlapping */
  mmap: vm_area_struct[] = [];
  map_count = 0;
  total_vm = 0;              /* pages mapped */
  mmap_base: number;         /* top of the top-down mmap area */
  task_size: number;

  /* the page table: a lib/gpt instance in the x86-64 format */
  pgd: gpt;
  /* protects the upper page-table levels and the rss counters here */
  page_table_lock: spinlock_t;
  mmap_lock: rw_semaphore;

  mm_users = 1;              /* users of the address space (threads, GUP across processes) */
  mm_count = 1;              /* references to the struct itself */
  rss_stat = new Array<number>(NR_MM_COUNTERS).fill(0);
  flags = 0;                 /* MMF_* */
  owner: unknown = null;     /* the task_struct */
  /* mmu notifier subscriptions (mm/mmu_notifier.ts), null until the first register */
  notifier_subscriptions: unknown = null;
  /* HMM v8: struct hmm of this mm (patch 05), null until a mirror registers */
  hmm: unknown = null;
  /* memory cgroup */
  memcg: unknown = null;
  /* GMEM (mm/gmem.ts): the unified address space and the logical page table, null until used */
  gm_as: unknown = null;
  vm_obj: unknown = null;
  /* a name for traces */
  readonly id: number;

  constructor(id: number, pgd: gpt, page_table_lock: spinlock_t, mmap_lock: rw_semaphore,
              mmap_base: number, task_size: number) {
    this.id = id;
    this.pgd = pgd;
    this.page_table_lock = page_table_lock;
    this.mmap_lock = mmap_lock;
    this.mmap_base = mmap_base;
    this.task_size = task_size;
  }
}
