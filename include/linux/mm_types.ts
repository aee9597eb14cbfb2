/*
 * include/linux/mm_types.ts - struct page, struct vm_area_struct and
 * struct mm_struct.
 *
 * Models include/linux/mm_types.h. What is simplified:
 *  - struct page is a JS object per frame (created at boot), not a 64-byte
 *    C struct in a vmemmap. A folio is its head page: folio helpers take a
 *    `page` whose `order` says how large it is.
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


/**
 * struct page - one physical page frame (RAM or ZONE_DEVICE).
 *
 * _refcount counts references (page tables count one each, plus GUP,
 * page cache, swap cache, temporary gets); the page is freed when it
 * drops to 0. _mapcount counts PTEs mapping the page, starting at -1 as in
 * Linux (page_mapcount() returns _mapcount + 1).
 */
export class page {
  /* PG_* bits, see include/linux/page-flags.ts; protected by the folio lock for most bits */
  flags = 0;
  /* references; 0 means free (or a ZONE_DEVICE page not in use) */
  _refcount = 0;
  /* number of PTEs mapping this page, minus one */
  _mapcount = -1;
  /* head of a large folio only: PMD/PUD mappings of the whole folio, minus one (mm/huge_memory.ts) */
  _entire_mapcount = -1;
  /* anon_vma for anonymous pages, address_space for page cache, null otherwise */
  mapping: anon_vma | address_space | null = null;
  /* page offset: in the file, or the linear index for anon (vm_pgoff units) */
  index = 0;
  /* owner-private word: swap entry value for swap cache pages, driver data */
  private = 0;
  /* ZONE_DEVICE: the pagemap this page belongs to */
  pgmap: dev_pagemap | null = null;
  /* driver data attached to a device page (zone_device_data) */
  zone_device_data: unknown = null;
  /* the memory cgroup charged for this page, or null */
  memcg: unknown = null;
  /* compound pages: the head page of the folio (self for head and order-0 pages) */
  compound_head: page;
  /* compound order of a head page (0 for a single page); tail pages keep 0 */
  order = 0;
  /* LRU list linkage; protected by the lruvec lock */
  lru_prev: page | null = null;
  lru_next: page | null = null;
  /* pins taken by pin_user_pages (GUP_PIN_COUNTING_BIAS in Linux) */
  _pincount = 0;
  /* waiters on PG_locked (folio_wait_table in Linux), created on demand */
  waitq: wait_queue_head | null = null;

  constructor(readonly pfn: number) {
    this.compound_head = this;
  }
}

/** A folio is represented by its head page. */
export type folio = page;

/** struct vm_operations_struct - what a driver or filesystem mapping does on fault. */
export interface vm_operations_struct {
  /* called with mmap_lock held for read; returns VM_FAULT_* bits and sets vmf.page */
  fault?(vmf: vm_fault): number;
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
