/*
 * drivers/gpu/mockgpu/uvm_pmm_gpu.ts - VRAM and its allocator: device
 * memory registered as ZONE_DEVICE MEMORY_DEVICE_PRIVATE pages, carved
 * into 2 MiB root chunks that split into 64 KiB and then 4 KiB chunks.
 *
 * Follows NVIDIA UVM's uvm_pmm_gpu.c: root chunks of UVM_CHUNK_SIZE_MAX
 * (2 MiB), split lazily on demand (2 MiB -> 32 x 64 KiB -> 16 x 4 KiB) and
 * merged eagerly when every subchunk of a parent is free again; free lists
 * per chunk size. And Linux's memremap_pages() use by device drivers
 * (lib/test_hmm.c, nouveau_dmem.c): one struct page per 4 KiB of VRAM, with
 * dev_pagemap_ops.folio_free giving a page back when core mm drops its
 * last reference, and migrate_to_ram bringing data back on a CPU fault.
 *
 * The bytes of VRAM are real: one Uint8Array per root chunk, created on
 * first touch (a 64 MiB VRAM costs nothing until used). A device-private
 * page's pfn maps to VRAM offset (pfn - start_pfn) * 4 KiB; the CPU never
 * maps it (device-private), only the GPU and the copy engine touch it.
 *
 * Eviction bookkeeping (uvm_pmm_gpu.c: root_chunks.va_block_used,
 * pick_root_chunk_to_evict, chunk_free_locked during eviction): a chunk
 * allocated for a migration is "temp pinned" until the VA block has
 * mapped it (uvm_pmm_gpu_unpin); unpinning moves its root chunk to the
 * tail of the LRU of used roots. The victim is a free root if any, else
 * the head of that LRU, skipping roots with pinned chunks or already in
 * eviction. While a root is in eviction its free chunks are off the free
 * lists and chunks freed into it stay off them, so nobody else can take
 * them; uvm_pmm_gpu_evict_end() gives it back whole (success: to the
 * caller's next allocation, since nothing runs in between) or puts its
 * free chunks back on the lists (abort). Moving the data out is
 * uvm_hmm_evict.ts.
 *
 * Simplified: no RM/PMA below the PMM (UVM fetches root chunks from the
 * RM's allocator in batches of 64), no zeroed/non-zeroed free lists and
 * no "unused" list (UVM's va_block_unused), only 4 KiB allocations are
 * handed to HMM (UVM also maps 64 KiB and 2 MiB pages).
 */
import type { page } from '../../../include/linux/mm_types.js';
import { PAGE_SIZE } from '../../../include/linux/mm.js';
import { MEMORY_DEVICE_PRIVATE, type dev_pagemap, type dev_pagemap_ops } from '../../../include/linux/memremap.js';
import { UVM_CHUNK_SIZE_2M, UVM_CHUNK_SIZE_64K } from '../../../include/linux/mockgpu.js';
import { EINVAL } from '../../../include/uapi/asm-generic/errno.js';
import { memremap_pages, request_free_mem_region, zone_device_page_init } from '../../../mm/memremap.js';
import { pfn_to_page } from '../../../mm/page_alloc.js';
import { trace_event } from '../../../lib/sim/trace.js';
import { fail_devmem_alloc, should_fail } from '../../../lib/fault-inject.js';
import { BUG } from '../../../include/asm-generic/bug.js';
import { mockgpu_params } from './uvm_gpu.js';

const PAGES_PER_64K = UVM_CHUNK_SIZE_64K / PAGE_SIZE;            /* 16 */
const BIG_PER_ROOT = UVM_CHUNK_SIZE_2M / UVM_CHUNK_SIZE_64K;     /* 32 */
const PAGES_PER_ROOT = UVM_CHUNK_SIZE_2M / PAGE_SIZE;            /* 512 */

/**
 * struct uvm_pmm_gpu - the VRAM of one GPU.
 *
 * Chunk state, by index (root r, big chunk b = 64 KiB index, page p):
 *   root_used[r]  big chunks of r that are allocated or split (0: r free)
 *   big_used[b]   4 KiB pages of b allocated; -1 when b is allocated whole
 * The free lists hold the chunks whose parent is split and that are free
 * themselves: free_root (whole free roots), free_big, free_4k.
 */
export class uvm_pmm_gpu {
  readonly nr_pages: number;
  readonly nr_roots: number;
  pgmap!: dev_pagemap;
  /* the bytes of VRAM: one array per root chunk, allocated on first touch */
  private readonly bytes = new Map<number, Uint8Array>();
  readonly root_used: Int32Array;
  readonly big_used: Int32Array;
  readonly free_root = new Set<number>();
  readonly free_big = new Set<number>();
  readonly free_4k = new Set<number>();
  /* 4 KiB pages handed out and not yet freed */
  pages_used = 0;
  /* per 4 KiB page: 1 while allocated */
  readonly allocated: Uint8Array;
  /* per root: chunks allocated for a migration and not yet unpinned */
  readonly root_pinned: Int32Array;
  /* per root: 1 while it is being evicted */
  readonly root_evicting: Uint8Array;
  /* used roots, least recently allocated in first (root_chunks.va_block_used) */
  readonly root_lru = new Set<number>();
  /*
   * reverse map hint per 4 KiB page: the address space and VA it was
   * migrated for (eviction remaps there; verified by hmm_range_fault)
   */
  readonly rmap_owner: (object | null)[];
  readonly rmap_va: Float64Array;

  constructor(vram_bytes: number) {
    this.nr_roots = Math.max(1, Math.floor(vram_bytes / UVM_CHUNK_SIZE_2M));
    this.nr_pages = this.nr_roots * PAGES_PER_ROOT;
    this.root_used = new Int32Array(this.nr_roots);
    this.big_used = new Int32Array(this.nr_roots * BIG_PER_ROOT);
    this.allocated = new Uint8Array(this.nr_pages);
    this.root_pinned = new Int32Array(this.nr_roots);
    this.root_evicting = new Uint8Array(this.nr_roots);
    this.rmap_owner = new Array<object | null>(this.nr_pages).fill(null);
    this.rmap_va = new Float64Array(this.nr_pages);
    for (let r = 0; r < this.nr_roots; r++) this.free_root.add(r);
  }

  /** vram() - the bytes of VRAM page @vpfn (offset >> 12), created zeroed on first touch. */
  vram(vpfn: number): Uint8Array {
    const r = Math.floor(vpfn / PAGES_PER_ROOT);
    let b = this.bytes.get(r);
    if (b === undefined) { b = new Uint8Array(UVM_CHUNK_SIZE_2M); this.bytes.set(r, b); }
    const off = (vpfn % PAGES_PER_ROOT) * PAGE_SIZE;
    return b.subarray(off, off + PAGE_SIZE);
  }
}

/**
 * uvm_pmm_gpu_init() - register @pmm's VRAM with core mm as device-private
 * memory owned by @owner, with @ops as its dev_pagemap_ops.
 * Context: boot (module init). Return: 0, or the memremap_pages() error.
 */
export function uvm_pmm_gpu_init(pmm: uvm_pmm_gpu, owner: unknown, ops: dev_pagemap_ops, name = 'mockgpu0'): number {
  const res = request_free_mem_region(pmm.nr_pages * PAGE_SIZE, `${name}-vram`);
  if (res === null) return -EINVAL;
  pmm.pgmap = { type: MEMORY_DEVICE_PRIVATE, range: { start: res.start, end: res.end }, nr_range: 1, ops, owner,
    name: `${name}-vram` };
  const ret = memremap_pages(pmm.pgmap, pmm.nr_pages);
  if (ret === 0) trace_event('uvm_pmm_gpu_init', { roots: pmm.nr_roots, pages: pmm.nr_pages, start_pfn: pmm.pgmap.start_pfn! });
  return ret;
}

/* split a free root chunk into 32 free 64 KiB chunks (lazy split) */
function split_root(pmm: uvm_pmm_gpu, r: number): void {
  pmm.free_root.delete(r);
  for (let b = r * BIG_PER_ROOT; b < (r + 1) * BIG_PER_ROOT; b++) pmm.free_big.add(b);
  trace_event('uvm_pmm_split', { chunk: r, size: UVM_CHUNK_SIZE_2M });
}

/* split a free 64 KiB chunk into 16 free 4 KiB chunks */
function split_big(pmm: uvm_pmm_gpu, b: number): void {
  pmm.free_big.delete(b);
  pmm.root_used[Math.floor(b / BIG_PER_ROOT)]++;
  for (let p = b * PAGES_PER_64K; p < (b + 1) * PAGES_PER_64K; p++) pmm.free_4k.add(p);
}

function first<T>(s: Set<T>): T | undefined {
  for (const x of s) return x;
  return undefined;
}

/**
 * uvm_pmm_gpu_alloc_page() - one free 4 KiB chunk: from the 4 KiB free
 * list, else by splitting a free 64 KiB chunk, else a free root chunk.
 * @pin: temp-pin it (a migration destination): its root cannot be evicted
 *       until uvm_pmm_gpu_unpin(). Unpinned allocations (the v8 glue)
 *       never put their root on the LRU, so they are never evicted.
 * Every caller (HMM migration and eviction, read duplication, the v8
 * glue, GEM BOs, the gmem MMU) already copes with VRAM being full, so the
 * fail_devmem_alloc site (lib/fault-inject.ts) fails here, as PMA
 * running out of memory would.
 * Return: the VRAM page number (offset >> 12), or -1 when VRAM is full
 * (or the injected failure fired).
 * Context: any; does not sleep (callers hold no lock: single CPU model).
 */
export function uvm_pmm_gpu_alloc_page(pmm: uvm_pmm_gpu, pin = false): number {
  if (should_fail(fail_devmem_alloc, PAGE_SIZE)) return -1;
  let p = first(pmm.free_4k);
  if (p === undefined) {
    let b = first(pmm.free_big);
    if (b === undefined) {
      const r = first(pmm.free_root);
      if (r === undefined) return -1;
      split_root(pmm, r);
      b = r * BIG_PER_ROOT;
    }
    split_big(pmm, b);
    p = b * PAGES_PER_64K;
  }
  pmm.free_4k.delete(p);
  pmm.big_used[Math.floor(p / PAGES_PER_64K)]++;
  pmm.pages_used++;
  pmm.allocated[p] = 1;
  if (pin) pmm.root_pinned[Math.floor(p / PAGES_PER_ROOT)]++;
  return p;
}

/**
 * uvm_pmm_gpu_unpin() - the block mapped (or gave up on) page @p allocated
 * with @pin: its root chunk becomes evictable again and moves to the tail
 * of the LRU if it still holds allocated chunks.
 * Context: any; does not sleep.
 */
export function uvm_pmm_gpu_unpin(pmm: uvm_pmm_gpu, p: number): void {
  const r = Math.floor(p / PAGES_PER_ROOT);
  if (pmm.root_pinned[r]! <= 0) BUG(`uvm_pmm_gpu_unpin(${p}): not pinned`);
  pmm.root_pinned[r]--;
  if (pmm.root_used[r]! > 0 && !pmm.root_evicting[r]) { pmm.root_lru.delete(r); pmm.root_lru.add(r); }
}

/**
 * uvm_pmm_gpu_free_page() - give back VRAM page @p; merge its 64 KiB chunk
 * when all 16 pages are free, and the root when all 32 big chunks are
 * (eager merge).
 * Context: any; does not sleep.
 */
export function uvm_pmm_gpu_free_page(pmm: uvm_pmm_gpu, p: number): void {
  const b = Math.floor(p / PAGES_PER_64K), r = Math.floor(b / BIG_PER_ROOT);
  if (!pmm.allocated[p] || pmm.big_used[b]! <= 0) BUG(`uvm_pmm_gpu_free_page(${p}): not allocated`);
  pmm.allocated[p] = 0;
  pmm.rmap_owner[p] = null;
  pmm.pages_used--;
  if (pmm.root_evicting[r]) {            /* stays off the free lists: the evictor owns it */
    if (--pmm.big_used[b] === 0) pmm.root_used[r]--;
    return;
  }
  pmm.free_4k.add(p);
  if (--pmm.big_used[b] !== 0) return;
  for (let q = b * PAGES_PER_64K; q < (b + 1) * PAGES_PER_64K; q++) pmm.free_4k.delete(q);
  pmm.free_big.add(b);
  if (--pmm.root_used[r] !== 0) return;
  for (let c = r * BIG_PER_ROOT; c < (r + 1) * BIG_PER_ROOT; c++) pmm.free_big.delete(c);
  pmm.free_root.add(r);
  pmm.root_lru.delete(r);
  trace_event('uvm_pmm_merge', { chunk: r, size: UVM_CHUNK_SIZE_2M });
}

/* ---- eviction bookkeeping ---- */

/**
 * pick_root_chunk_to_evict() - the root chunk to empty for an allocation:
 * a free root if there is one (nothing to move), else the least recently
 * allocated-in used root that has no pinned chunk, is not already being
 * evicted and is not in @skip (roots an earlier attempt gave up on).
 * Return: the root index, or -1 when no root can be evicted.
 */
export function pick_root_chunk_to_evict(pmm: uvm_pmm_gpu, skip: ReadonlySet<number> = new Set()): number {
  const r = first(pmm.free_root);
  if (r !== undefined) return r;
  for (const c of pmm.root_lru) {
    if (pmm.root_pinned[c]! > 0 && !mockgpu_params.broken_evict_pinned) continue;
    if (!pmm.root_evicting[c] && !skip.has(c)) return c;
  }
  return -1;
}

/**
 * uvm_pmm_gpu_evict_begin() - mark root @r in eviction: its free chunks
 * leave the free lists and chunks freed later stay off them.
 */
export function uvm_pmm_gpu_evict_begin(pmm: uvm_pmm_gpu, r: number): void {
  pmm.root_evicting[r] = 1;
  pmm.root_lru.delete(r);
  pmm.free_root.delete(r);
  for (let b = r * BIG_PER_ROOT; b < (r + 1) * BIG_PER_ROOT; b++) {
    pmm.free_big.delete(b);
    for (let p = b * PAGES_PER_64K; p < (b + 1) * PAGES_PER_64K; p++) pmm.free_4k.delete(p);
  }
}

/** uvm_pmm_gpu_root_pages_used() - 4 KiB chunks of root @r still allocated. */
export function uvm_pmm_gpu_root_pages_used(pmm: uvm_pmm_gpu, r: number): number {
  let n = 0;
  for (let p = r * PAGES_PER_ROOT; p < (r + 1) * PAGES_PER_ROOT; p++) n += pmm.allocated[p]!;
  return n;
}

/**
 * uvm_pmm_gpu_evict_end() - end the eviction of root @r: its free chunks
 * go back on the free lists (the whole root if it is empty, merged), and
 * it rejoins the LRU tail if something is still allocated in it.
 * @forget_busy: TEST ONLY (broken_evict_ignore_busy) - count pages still
 *   allocated as free, as an evictor that does not wait for them would.
 * Return: true if the root is now entirely free.
 */
export function uvm_pmm_gpu_evict_end(pmm: uvm_pmm_gpu, r: number, forget_busy = false): boolean {
  pmm.root_evicting[r] = 0;
  if (forget_busy) {
    for (let p = r * PAGES_PER_ROOT; p < (r + 1) * PAGES_PER_ROOT; p++) if (pmm.allocated[p]) { pmm.allocated[p] = 0; pmm.pages_used--; }
    pmm.big_used.fill(0, r * BIG_PER_ROOT, (r + 1) * BIG_PER_ROOT);
  }
  let used = 0;
  for (let b = r * BIG_PER_ROOT; b < (r + 1) * BIG_PER_ROOT; b++) if (pmm.big_used[b]! > 0) used++;
  pmm.root_used[r] = used;
  if (used === 0) { pmm.free_root.add(r); return true; }
  for (let b = r * BIG_PER_ROOT; b < (r + 1) * BIG_PER_ROOT; b++) {
    if (pmm.big_used[b] === 0) { pmm.free_big.add(b); continue; }
    for (let p = b * PAGES_PER_64K; p < (b + 1) * PAGES_PER_64K; p++) if (!pmm.allocated[p]) pmm.free_4k.add(p);
  }
  pmm.root_lru.add(r);
  return false;
}

/** uvm_pmm_gpu_root_of() - the root chunk index of VRAM page @p. */
export function uvm_pmm_gpu_root_of(p: number): number {
  return Math.floor(p / PAGES_PER_ROOT);
}

/**
 * uvm_pmm_gpu_page_alloc() - a device-private struct page for a migration
 * destination: a 4 KiB chunk, its page handed out with
 * zone_device_page_init() (refcount 1, locked, as migrate_vma_pages()
 * expects), temp-pinned until uvm_pmm_gpu_unpin().
 * Return: the page, or null when VRAM is full.
 */
export function uvm_pmm_gpu_page_alloc(pmm: uvm_pmm_gpu): page | null {
  const p = uvm_pmm_gpu_alloc_page(pmm, true);
  if (p < 0) return null;
  const pg = pfn_to_page(pmm.pgmap.start_pfn! + p);
  zone_device_page_init(pg);
  return pg;
}

/** uvm_pmm_gpu_page_to_vpfn() - the VRAM page number of device page @pg. */
export function uvm_pmm_gpu_page_to_vpfn(pmm: uvm_pmm_gpu, pg: page): number {
  return pg.pfn - pmm.pgmap.start_pfn!;
}

/** uvm_pmm_gpu_vpfn_to_page() - the device page of VRAM page @vpfn. */
export function uvm_pmm_gpu_vpfn_to_page(pmm: uvm_pmm_gpu, vpfn: number): page {
  return pfn_to_page(pmm.pgmap.start_pfn! + vpfn);
}

/** uvm_pmm_gpu_owns() - is @pg one of this GPU's VRAM pages? */
export function uvm_pmm_gpu_owns(pmm: uvm_pmm_gpu, pg: page): boolean {
  return pg.pgmap === pmm.pgmap;
}
