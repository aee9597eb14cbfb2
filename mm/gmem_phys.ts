/*
 * mm/gmem_phys.ts - GMEM's device physical memory: the devices and their
 * heterogeneous NUMA nodes (hnodes), moving one page between a device and
 * a CPU page, and oversubscription: when a device has no free page left,
 * pages it holds are evicted to CPU memory instead of failing the fault.
 *
 * Oversubscription follows openEuler's evolution of the RFC (mm/gmem_phys.c:
 * gm_alloc_page, gm_do_swap, gm_evict_page_locked); the Nov 2023 RFC itself
 * only names the case (peer_map may return GM_RET_MIGRATING "due to
 * overcommit") and leaves eviction to the device's peer OS. What we follow:
 *  - each hnode keeps an active list of the pages mapped on its device, in
 *    the order they were mapped; hmadvise(MADV_PREFETCH) of a page already
 *    there moves it to the tail (mark_gm_page_active)
 *  - gm_alloc_page(): the device's free page, else gm_do_swap() evicts up
 *    to NUM_SWAP_PAGES (16) pages from the head of the active list and
 *    tries again, at most MAX_SWAP_RETRY_TIMES (10) times
 *  - evicting a page (gm_evict_page_locked): a new CPU page, peer_unmap
 *    with copy into it, the entry becomes GM_PAGE_CPU. openEuler keeps the
 *    CPU page in the gm_mapping unmapped; here it is mapped in the CPU page
 *    table at once (our GM_PAGE_CPU means "the CPU page table maps it"),
 *    so it is an ordinary anonymous page from then on (reclaim may swap
 *    it out, a CPU access does not fault)
 *  - a page being faulted is not on the active list, so it is never its
 *    own victim; pages of another mm are evicted only when its mmap_lock
 *    and vm_object.lock are free (trylock; no lock-order inversion)
 * Not modelled: pinned pages (MADV_PINNED), the swapd thread, importing
 * device memory in chunks (import_phys_mem): all VRAM is registered at once.
 */
import type { mm_struct, page, vm_area_struct } from '../include/linux/mm_types.js';
import { MM_ANONPAGES } from '../include/linux/mm_types.js';
import {
  GM_RET_SUCCESS, GM_RET_NOMEM, GM_PAGE_CPU, GM_PAGE_DEVICE, type gm_as, type gm_context, type gm_dev, type gm_fault_t,
  type gm_mmu, type hnode,
} from '../include/linux/gmem.js';
import { PAGE_SIZE, VM_FAULT_OOM, inc_mm_counter } from '../include/linux/mm.js';
import { pte_none, pte_mkdirty } from '../include/linux/pgtable.js';
import { EINVAL } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { mutex_trylock, mutex_unlock } from '../lib/locking/mutex.js';
import { spin_lock, spin_unlock } from '../lib/locking/spinlock.js';
import { count_event, trace_event } from '../lib/sim/trace.js';
import { put_page } from './page_alloc.js';
import { pte_alloc_map, pte_lockptr, ptep_get, set_pte_at } from './pgtable.js';
import { anon_vma_prepare, folio_add_new_anon_rmap } from './rmap.js';
import { folio_add_lru_vma } from './swap.js';
import { vma_lookup } from './vma.js';
import { mmap_read_trylock, mmap_read_unlock } from './mmap_lock.js';
import { maybe_mkwrite, mk_pte, alloc_anon_folio } from './memory.js';
import { gm_entry, gm_entry_dev, gm_entry_flags, gm_entry_pfn, vm_object_lookup, vm_object_set, type vm_object } from './vm_object.js';

export const NUM_SWAP_PAGES = 16;
export const MAX_SWAP_RETRY_TIMES = 10;

/* ---- devices and hnodes ---- */

const gm_devs: gm_dev[] = [];
/* heterogeneous NUMA node ids: node 0 is the CPU's */
const hnodes = new Map<number, hnode>();

/**
 * gm_dev_create() - register a device and its MMU functions.
 * @cap: GM_DEV_CAP_* bits. @out.dev receives the device.
 * Context: any. Return: GM_RET_SUCCESS, or GM_RET_NOMEM when 16 devices exist.
 */
export function gm_dev_create(mmu: gm_mmu, dev_data: unknown, cap: number, out: { dev?: gm_dev }): number {
  if (gm_devs.length >= 16) return GM_RET_NOMEM;
  const dev: gm_dev = { id: gm_devs.length, capability: cap, mmu, dev_data, current_ctx: null, ctx_list: [],
    registered_hnodes: new Set() };
  gm_devs.push(dev);
  out.dev = dev;
  return GM_RET_SUCCESS;
}

/**
 * gm_dev_register_physmem() - the device's memory [begin, end) becomes a
 * heterogeneous NUMA node (hnode) hmadvise() can name; its id is added to
 * dev.registered_hnodes.
 * Return: GM_RET_SUCCESS as in the RFC, or -EINVAL for an empty range.
 */
export function gm_dev_register_physmem(dev: gm_dev, begin: number, end: number): number {
  if (end <= begin) return -EINVAL;
  const nid = hnodes.size + 1;
  hnodes.set(nid, { id: nid, dev, activelist: new Map() });
  dev.registered_hnodes.add(nid);
  return GM_RET_SUCCESS;
}

/** gm_hnode_dev() - the device of hnode @nid, or null. */
export function gm_hnode_dev(nid: number): gm_dev | null {
  return hnodes.get(nid)?.dev ?? null;
}

/* the hnode of @dev's memory (the first it registered), or null */
export function gm_dev_hnode(dev: gm_dev): hnode | null {
  for (const nid of dev.registered_hnodes) return hnodes.get(nid) ?? null;
  return null;
}

/** gmem_reset() - forget every device and hnode (a new boot). */
export function gmem_reset(): void {
  gm_devs.length = 0;
  hnodes.clear();
}

/* the context of @dev in @mm's address space, or null */
export function gm_ctx_of(mm: mm_struct, dev: gm_dev): gm_context | null {
  const as = mm.gm_as as gm_as | null;
  return as?.ctx_list.find((c) => c.dev === dev) ?? null;
}

/* a gm_fault_t for @va of @dev in @mm */
export function gmf_make(mm: mm_struct, dev: gm_dev, va: number, prot: number, hint: number | null): gm_fault_t {
  return { mm, dev, pmap: gm_ctx_of(mm, dev)?.pmap ?? null, va, size: PAGE_SIZE, prot, copy: false, dma_page: null, pfn: -1, hint };
}

/* ---- the active lists ---- */

function active_key(obj: vm_object, va: number): string { return `${obj.mm.id}:${va}`; }

/** hnode_activelist_add() - @va of @obj now lives on @dev: at the tail of its hnode's list. */
export function hnode_activelist_add(dev: gm_dev, obj: vm_object, va: number): void {
  gm_dev_hnode(dev)?.activelist.set(active_key(obj, va), { mm: obj.mm, va });
}

function hnode_activelist_del(dev: gm_dev, obj: vm_object, va: number): void {
  gm_dev_hnode(dev)?.activelist.delete(active_key(obj, va));
}

/** mark_gm_page_active() - @va of @obj was asked for again: last to be evicted. */
export function mark_gm_page_active(dev: gm_dev, obj: vm_object, va: number): void {
  const h = gm_dev_hnode(dev), k = active_key(obj, va), a = h?.activelist.get(k);
  if (a !== undefined) { h!.activelist.delete(k); h!.activelist.set(k, a); }
}

/* ---- moving one page ---- */

/**
 * gm_map_cpu_page() - map the new anonymous page @p at @addr in @vma and
 * make the entry GM_PAGE_CPU. Caller holds mmap_lock and obj.lock.
 * Return: 0 or VM_FAULT_OOM.
 */
export function gm_map_cpu_page(vma: vm_area_struct, addr: number, p: page): number {
  const mm = vma.vm_mm;
  const ptep = pte_alloc_map(mm, addr);
  if (ptep < 0 || anon_vma_prepare(vma) !== 0) return VM_FAULT_OOM;
  const ptl = pte_lockptr(mm, ptep);
  spin_lock(ptl);
  if (!pte_none(ptep_get(mm, ptep))) { spin_unlock(ptl); put_page(p); return 0; }
  inc_mm_counter(mm, MM_ANONPAGES);
  folio_add_new_anon_rmap(p, vma, addr);
  folio_add_lru_vma(p, vma);
  set_pte_at(mm, addr, ptep, maybe_mkwrite(pte_mkdirty(mk_pte(p, vma.vm_page_prot)), vma));
  spin_unlock(ptl);
  const obj = mm.vm_obj as vm_object | null;
  if (obj !== null) vm_object_set(obj, addr, gm_entry(GM_PAGE_CPU, 0, p.pfn));
  return 0;
}

/**
 * gm_peer_unmap_locked() - take the DEVICE entry @e at @va off its device:
 * peer_unmap (copying into @into when given), free the device page, clear
 * the entry. Caller holds obj.lock. Return: GM_RET_*.
 */
export function* gm_peer_unmap_locked(obj: vm_object, va: number, e: number, into: page | null): Sleepable<number> {
  const dev = gm_devs[gm_entry_dev(e)]!;
  const gmf = gmf_make(obj.mm, dev, va, 0, null);
  gmf.pfn = gm_entry_pfn(e);
  gmf.copy = into !== null;
  gmf.dma_page = into;
  const ret = yield* dev.mmu.peer_unmap(gmf);
  trace_event('gmem_peer_unmap', { mm: obj.mm.id, va, dev: dev.id, copy: gmf.copy, ret });
  if (ret !== GM_RET_SUCCESS) return ret;
  dev.mmu.free_page(dev, gmf.pfn);
  hnode_activelist_del(dev, obj, va);
  vm_object_set(obj, va, 0);
  return GM_RET_SUCCESS;
}

/* ---- oversubscription ---- */

/*
 * gm_evict_page_locked() - move @va of @obj from @dev to a new CPU page.
 * Caller holds @obj's mm mmap_lock and obj.lock. Return: true if evicted.
 */
function* gm_evict_page_locked(dev: gm_dev, obj: vm_object, va: number): Sleepable<boolean> {
  const e = vm_object_lookup(obj, va);
  if (gm_entry_flags(e) !== GM_PAGE_DEVICE || gm_entry_dev(e) !== dev.id) return false;   /* raced with unmap */
  const vma = vma_lookup(obj.mm, va);
  const p = vma === null ? null : yield* alloc_anon_folio(vma);   /* may sleep in reclaim */
  if (p === null) return false;
  if ((yield* gm_peer_unmap_locked(obj, va, e, p)) !== GM_RET_SUCCESS) { put_page(p); return false; }
  gm_map_cpu_page(vma!, va, p);
  count_event('gmem_evict');
  trace_event('gmem_evict', { mm: obj.mm.id, va, dev: dev.id });
  return true;
}

/*
 * gm_do_swap() - evict up to NUM_SWAP_PAGES pages from the head of @dev's
 * active list. @held: the vm_object whose lock (and mm's mmap_lock) the
 * caller holds. Return: pages evicted.
 */
function* gm_do_swap(dev: gm_dev, held: vm_object): Sleepable<number> {
  const h = gm_dev_hnode(dev);
  if (h === null) return 0;
  const victims = [...h.activelist.values()].slice(0, NUM_SWAP_PAGES);
  let n = 0;
  for (const { mm, va } of victims) {
    const obj = mm.vm_obj as vm_object;
    if (obj === held) { if (yield* gm_evict_page_locked(dev, obj, va)) n++; continue; }
    if (!mmap_read_trylock(obj.mm)) continue;
    if (mutex_trylock(obj.lock)) {
      if (yield* gm_evict_page_locked(dev, obj, va)) n++;
      mutex_unlock(obj.lock);
    }
    mmap_read_unlock(obj.mm);
  }
  return n;
}

/**
 * gm_alloc_page() - a free page of @dev's memory; when there is none,
 * evict pages to CPU memory and try again.
 * @held: the vm_object the caller holds locked (with its mm's mmap_lock).
 * Context: may sleep. Return: the device pfn, or -1 (nothing to evict).
 */
export function* gm_alloc_page(dev: gm_dev, held: vm_object): Sleepable<number> {
  for (let retry = 0; ; retry++) {
    const pfn = dev.mmu.alloc_page(dev);
    if (pfn >= 0 || retry > MAX_SWAP_RETRY_TIMES) return pfn;
    yield* gm_do_swap(dev, held);
  }
}
