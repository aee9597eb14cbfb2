/*
 * mm/gmem.ts - GMEM, the 2023 RFC's "device contexts in mm_struct"
 * (include/linux/gmem.ts has the structures and the RFC's values).
 *
 * A driver registers its MMU functions (gm_dev_create), a process's mm
 * gets a unified address space (gm_as_create, mm.gm_as) and the device's
 * context is attached to it (gm_as_attach). Memory the device may use is
 * mapped with MAP_PEER_SHARED (VM_PEER_SHARED). From then on core mm, not
 * the driver, decides where each page of such a VMA lives, and keeps it in
 * the mm's logical page table (struct vm_object, on lib/gpt): an entry is
 * GM_PAGE_CPU (the CPU page table maps it) or GM_PAGE_DEVICE (device id and
 * device pfn; the CPU page table has nothing there). A page lives in one
 * place at a time (GM_MMU_MODE_COHERENT_EXCLUSIVE):
 *
 *   device fault  gm_dev_fault(): the CPU page (if any) is unmapped from the
 *                 CPU and handed to peer_map(), which copies it into a
 *                 device page and maps it; entry -> DEVICE
 *   CPU fault     do_peer_shared_anonymous_page() (called by
 *                 do_anonymous_page for VM_PEER_SHARED): a DEVICE entry is
 *                 brought back with peer_unmap(copy) into a new CPU page;
 *                 entry -> CPU
 *   munmap, exit  munmap_in_peer_devices(): peer_unmap() of every DEVICE
 *                 entry of the range, without copy
 *   hmadvise()    mm/gmem_hmadvise.ts: MADV_PREFETCH, MADV_DONTNEED
 *   device full   gm_alloc_page() (mm/gmem_phys.ts) evicts the device's
 *                 oldest pages to CPU memory instead of failing the fault
 *
 * The logical page table is mm/vm_object.ts; devices, hnodes, moving one
 * page and eviction are mm/gmem_phys.ts.
 *
 * No mmu notifier is involved: core mm calls the device's functions
 * itself, from process context, where they may sleep.
 *
 * The places GMEM patches into core mm (counted, as hooks.ts counts v8's):
 *   1. mm/mmap.ts do_mmap(): MAP_PEER_SHARED -> VM_PEER_SHARED
 *      (gm_alloc_va_in_peer_devices: -ENODEV without mm->gm_as)
 *   2. mm/memory.ts do_anonymous_page(): VM_PEER_SHARED ->
 *      do_peer_shared_anonymous_page()
 *   3. mm/mmap.ts do_munmap() and exit_mmap(): munmap_in_peer_devices()
 *   4. mm_struct: gm_as, vm_obj; mm/syscalls.ts: sys_hmadvise()
 *
 * Simplified (the RFC leaves these open or does them otherwise): 4 KiB
 * units instead of HPAGE_SIZE; a peer-shared VMA is VM_DONTCOPY (fork
 * does not copy it) and mremap refuses it (-EINVAL); mprotect and CPU
 * madvise() do not reach pages that live on a device; gm_dev_fault()
 * takes the access (write) and refuses what the VMA forbids; the
 * per-mapping mutex of the RFC is one mutex per vm_object.
 */
import type { mm_struct, page, vm_area_struct, vm_fault } from '../include/linux/mm_types.js';
import {
  GM_RET_SUCCESS, GM_RET_NOMEM, GM_RET_PAGE_EXIST, GM_RET_MIGRATING, GM_RET_FAILURE_UNKNOWN, GM_FAULT_HINT_MARK_HOT,
  GM_PAGE_DEVICE, type gm_as, type gm_context, type gm_dev,
} from '../include/linux/gmem.js';
import { PAGE_SIZE, VM_READ, VM_WRITE, VM_PEER_SHARED, VM_FAULT_OOM, VM_FAULT_SIGBUS } from '../include/linux/mm.js';
import { PROT_READ, PROT_WRITE } from '../include/uapi/asm-generic/mman.js';
import { pte_none, pte_present } from '../include/linux/pgtable.js';
import { EINVAL, ENODEV, ENOMEM } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from '../lib/sim/sched.js';
import { mutex_lock, mutex_unlock } from '../lib/locking/mutex.js';
import { count_event } from '../lib/sim/trace.js';
import { get_page, put_page, kmap_local_page } from './page_alloc.js';
import { pte_offset_map, ptep_get } from './pgtable.js';
import { vma_lookup } from './vma.js';
import { mmap_read_lock, mmap_read_unlock } from './mmap_lock.js';
import { zap_page_range_single } from './zap.js';
import { handle_mm_fault, alloc_anon_folio, vm_normal_page } from './memory.js';
import { gm_entry, gm_entry_dev, gm_entry_flags, vm_object, vm_object_for_each, vm_object_lookup, vm_object_set } from './vm_object.js';
import {
  gm_alloc_page, gm_ctx_of, gm_map_cpu_page, gm_peer_unmap_locked, gmf_make, hnode_activelist_add, mark_gm_page_active,
} from './gmem_phys.js';

/* the RFC's gmem.h declares these with the rest of the KPI */
export { gm_dev_create, gm_dev_register_physmem, gm_hnode_dev, gmem_reset, gm_ctx_of } from './gmem_phys.js';

/** vma_is_peer_shared() - is @vma GMEM memory (mmap with MAP_PEER_SHARED)? */
export function vma_is_peer_shared(vma: vm_area_struct): boolean {
  return (vma.vm_flags & VM_PEER_SHARED) !== 0;
}

/* ---- devices and address spaces ---- */

/**
 * gm_as_create() - a unified address space for [begin, end).
 * Return: GM_RET_SUCCESS, or -EINVAL for an empty range (the RFC: a null out pointer).
 */
export function gm_as_create(begin: number, end: number, out: { as?: gm_as }): number {
  if (end <= begin) return -EINVAL;
  out.as = { start_va: begin, end_va: end, ctx_list: [], hnodes_allowed: new Set() };
  return GM_RET_SUCCESS;
}

/**
 * gm_as_attach() - attach @dev to @as: the device creates its page table
 * for it (pmap_create); @activate makes it the device's current context;
 * the device's hnodes become allowed for hmadvise().
 * Return: GM_RET_SUCCESS, or pmap_create's error.
 */
export function gm_as_attach(as: gm_as, dev: gm_dev, _mode: number, activate: boolean, out: { ctx?: gm_context }): number {
  const p: { pmap: unknown } = { pmap: null };
  const ret = dev.mmu.pmap_create(dev, p);
  if (ret) return ret;
  const ctx: gm_context = { as, dev, pmap: p.pmap };
  dev.ctx_list.push(ctx);
  as.ctx_list.push(ctx);
  if (activate) dev.current_ctx = ctx;
  for (const nid of dev.registered_hnodes) as.hnodes_allowed.add(nid);
  out.ctx = ctx;
  return GM_RET_SUCCESS;
}

/**
 * gm_alloc_va_in_peer_devices() - mmap(MAP_PEER_SHARED): the mm must have
 * an address space; its logical page table is created on first use.
 * Return: 0 or -ENODEV (no device attached to this mm).
 */
export function gm_alloc_va_in_peer_devices(mm: mm_struct): number {
  if (mm.gm_as === null) return -ENODEV;
  mm.vm_obj ??= new vm_object(mm);
  return 0;
}

/* ---- the CPU side ---- */

/**
 * do_peer_shared_anonymous_page() - the CPU touched a page of a
 * VM_PEER_SHARED VMA that its page table does not map (the RFC's hook in
 * do_anonymous_page). A page that lives on a device comes back
 * (peer_unmap with copy); otherwise a zeroed page is mapped.
 * Context: mmap_lock held for read; takes vm_object.lock; may sleep.
 * Return: 0, VM_FAULT_OOM or VM_FAULT_SIGBUS (the device failed).
 */
export function* do_peer_shared_anonymous_page(vmf: vm_fault): Sleepable<number> {
  const vma = vmf.vma, mm = vma.vm_mm, addr = vmf.address - (vmf.address % PAGE_SIZE);
  const obj = mm.vm_obj as vm_object | null;
  if (obj === null) return VM_FAULT_SIGBUS;
  const p = yield* alloc_anon_folio(vma);        /* as do_anonymous_page: may sleep in reclaim */
  if (p === null) return VM_FAULT_OOM;
  yield* mutex_lock(obj.lock);
  const e = vm_object_lookup(obj, addr);
  if (gm_entry_flags(e) === GM_PAGE_DEVICE) {
    const ret = yield* gm_peer_unmap_locked(obj, addr, e, p);
    if (ret !== GM_RET_SUCCESS) { mutex_unlock(obj.lock); put_page(p); return VM_FAULT_SIGBUS; }
    count_event('gmem_host_fault_migrate');
  }
  const ret = gm_map_cpu_page(vma, addr, p);
  mutex_unlock(obj.lock);
  count_event('gmem_host_fault');
  return ret;
}

/* ---- the device side ---- */

/* the CPU page mapped at @addr (null: none or the zero page); faults a swapped page in first */
function* gm_cpu_page(vma: vm_area_struct, addr: number): Sleepable<page | null> {
  const mm = vma.vm_mm;
  for (let tries = 0; tries < 3; tries++) {
    const ptep = pte_offset_map(mm, addr);
    const pte = ptep < 0 ? 0 : ptep_get(mm, ptep);
    if (pte_none(pte)) return null;
    if (pte_present(pte)) return vm_normal_page(vma, addr, pte);
    yield* handle_mm_fault(vma, addr, 0);                  /* swap or migration entry: bring it in */
  }
  return null;
}

/**
 * gm_dev_fault() - the one entry for a device page fault, and for
 * prefetching before a kernel runs (@hint GM_FAULT_HINT_MARK_HOT).
 * @write: the device wants to write (sim: the RFC's call has no access type).
 * The page moves to @dev: a CPU page is unmapped from the CPU and copied
 * by peer_map; an untouched page becomes a zeroed device page.
 * Context: process or bottom-half context; takes mmap_lock for read and
 * vm_object.lock; may sleep.
 * Return: GM_RET_SUCCESS; GM_RET_PAGE_EXIST (prefetch of a page already on
 * @dev); GM_RET_NOMEM (no device page even after eviction; nothing changed);
 * GM_RET_FAILURE_UNKNOWN (no peer-shared VMA, access not allowed, the page
 * is on another device, or peer_map failed).
 */
export function* gm_dev_fault(mm: mm_struct, addr: number, dev: gm_dev, hint: number | null, write = false): Sleepable<number> {
  addr -= addr % PAGE_SIZE;
  yield* mmap_read_lock(mm);
  const ret = yield* gm_dev_fault_locked(mm, addr, dev, hint, write);
  mmap_read_unlock(mm);
  return ret;
}

function* gm_dev_fault_locked(mm: mm_struct, addr: number, dev: gm_dev, hint: number | null, write: boolean): Sleepable<number> {
  const obj = mm.vm_obj as vm_object | null;
  const vma = vma_lookup(mm, addr);
  if (obj === null || vma === null || !vma_is_peer_shared(vma) || gm_ctx_of(mm, dev) === null) return GM_RET_FAILURE_UNKNOWN;
  if (!(vma.vm_flags & VM_READ) || (write && !(vma.vm_flags & VM_WRITE))) return GM_RET_FAILURE_UNKNOWN;
  const prot = PROT_READ | (vma.vm_flags & VM_WRITE ? PROT_WRITE : 0);
  yield* mutex_lock(obj.lock);
  try {
    const e = vm_object_lookup(obj, addr);
    if (gm_entry_flags(e) === GM_PAGE_DEVICE) {
      if (gm_entry_dev(e) !== dev.id) return GM_RET_FAILURE_UNKNOWN;
      if (hint !== GM_FAULT_HINT_MARK_HOT) return GM_RET_SUCCESS;
      mark_gm_page_active(dev, obj, addr);
      return GM_RET_PAGE_EXIST;
    }
    const gmf = gmf_make(mm, dev, addr, prot, hint);
    gmf.pfn = yield* gm_alloc_page(dev, obj);                  /* evicts to CPU memory when the device is full */
    if (gmf.pfn < 0) return GM_RET_NOMEM;
    const p = yield* gm_cpu_page(vma, addr);
    if (p !== null) {
      get_page(p);
      yield* zap_page_range_single(vma, addr, PAGE_SIZE);     /* the CPU loses it before the device copies it */
      gmf.copy = true;
      gmf.dma_page = p;
    }
    let ret = yield* dev.mmu.peer_map(gmf);
    if (ret === GM_RET_MIGRATING) ret = GM_RET_SUCCESS;
    if (ret !== GM_RET_SUCCESS) {
      dev.mmu.free_page(dev, gmf.pfn);
      if (p !== null) yield* gm_cpu_restore(vma, addr, p);
      return GM_RET_FAILURE_UNKNOWN;
    }
    if (p !== null) put_page(p);
    vm_object_set(obj, addr, gm_entry(GM_PAGE_DEVICE, dev.id, gmf.pfn));
    hnode_activelist_add(dev, obj, addr);
    count_event(p !== null ? 'gmem_dev_fault_migrate' : 'gmem_dev_fault_zero');
    return GM_RET_SUCCESS;
  } finally {
    mutex_unlock(obj.lock);
  }
}

/* peer_map failed after the CPU lost @old: map a copy of it again (never lose user data); may sleep */
function* gm_cpu_restore(vma: vm_area_struct, addr: number, old: page): Sleepable {
  const p = yield* alloc_anon_folio(vma, false);
  if (p !== null) {
    kmap_local_page(p).set(kmap_local_page(old));
    gm_map_cpu_page(vma, addr, p);
  }
  put_page(old);
}

/**
 * munmap_in_peer_devices() - [start, end) of @mm goes away: every page of
 * it that lives on a device is unmapped there (no copy) and its device
 * page freed. Called by do_munmap() and exit_mmap().
 * Context: mmap_lock held for write; may sleep. Return: pages unmapped.
 */
export function* munmap_in_peer_devices(mm: mm_struct, start: number, end: number): Sleepable<number> {
  const obj = mm.vm_obj as vm_object | null;
  if (obj === null) return 0;
  yield* mutex_lock(obj.lock);                              /* entries read under the lock: eviction may move them */
  const found: [number, number][] = [];
  vm_object_for_each(obj, start, end, (va, e) => found.push([va, e]));
  let n = 0;
  for (const [va, e] of found) {
    if (gm_entry_flags(e) === GM_PAGE_DEVICE) { if ((yield* gm_peer_unmap_locked(obj, va, e, null)) === GM_RET_SUCCESS) n++; }
    else vm_object_set(obj, va, 0);
  }
  mutex_unlock(obj.lock);
  return n;
}

/**
 * gm_as_detach() - @ctx leaves its address space (the device file is
 * closed): every page that lives on its device comes back to the CPU
 * (peer_unmap with copy), then the device's page table goes.
 * Context: may sleep; takes mmap_lock for read. Return: 0 or -ENOMEM.
 */
export function* gm_as_detach(ctx: gm_context, mm: mm_struct): Sleepable<number> {
  const obj = mm.vm_obj as vm_object | null;
  let ret = 0;
  if (obj !== null && obj.nr_device > 0) {
    yield* mmap_read_lock(mm);
    yield* mutex_lock(obj.lock);
    const found: [number, number][] = [];
    vm_object_for_each(obj, 0, 2 ** 47, (va, e) => {
      if (gm_entry_flags(e) === GM_PAGE_DEVICE && gm_entry_dev(e) === ctx.dev.id) found.push([va, e]);
    });
    for (const [va, e] of found) {
      const vma = vma_lookup(mm, va);
      const p = vma === null ? null : yield* alloc_anon_folio(vma);
      if (vma !== null && p === null) { ret = -ENOMEM; continue; }
      if ((yield* gm_peer_unmap_locked(obj, va, e, p)) === GM_RET_SUCCESS && p !== null) gm_map_cpu_page(vma!, va, p);
    }
    mutex_unlock(obj.lock);
    mmap_read_unlock(mm);
  }
  yield* ctx.dev.mmu.pmap_destroy(ctx.pmap);
  ctx.as.ctx_list.splice(ctx.as.ctx_list.indexOf(ctx), 1);
  ctx.dev.ctx_list.splice(ctx.dev.ctx_list.indexOf(ctx), 1);
  if (ctx.dev.current_ctx === ctx) ctx.dev.current_ctx = null;
  return ret;
}
