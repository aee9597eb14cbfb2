/*
 * lib/test_hmm_migrate.ts - the dmirror driver's migrations: system memory
 * to device memory (HMM_DMIRROR_MIGRATE_TO_DEV), device memory back to
 * system memory (HMM_DMIRROR_MIGRATE_TO_SYS) and the CPU fault on a
 * device-private page (dev_pagemap_ops.migrate_to_ram).
 *
 * Follows lib/test_hmm.c of Linux (dmirror_migrate_alloc_and_copy,
 * dmirror_migrate_finalize_and_map, dmirror_migrate_to_device,
 * dmirror_devmem_fault_alloc_and_copy, dmirror_migrate_to_system,
 * dmirror_devmem_fault), the version with large (PMD-sized) device folios.
 * Each migration is the three-step protocol of mm/migrate_device.ts:
 *
 *   migrate_vma_setup()     core: collect and lock sources, unmap them
 *                           (migration entries), MMU_NOTIFY_MIGRATE
 *   *_alloc_and_copy()      driver: allocate destinations, copy the data
 *   migrate_vma_pages()     core: switch struct page metadata
 *   *_finalize_and_map()    driver: program the device page table
 *   migrate_vma_finalize()  core: map the new pages, unlock, release
 *
 * Differences from Linux, all defensive: dst[] is cleared before every
 * window (Linux reuses the arrays), a failed small allocation inside the
 * huge-allocation fallback skips the page instead of dereferencing NULL,
 * and the device-to-RAM copy takes the folio order only from entries the
 * core marked MIGRATE_PFN_COMPOUND.
 */
import type { page, vm_fault } from '../include/linux/mm_types.js';
import {
  PAGE_SIZE, PTRS_PER_PTE, HPAGE_PMD_NR, VM_READ, VM_FAULT_OOM, VM_FAULT_SIGBUS, folio_order,
} from '../include/linux/mm.js';
import { MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_COHERENT } from '../include/linux/memremap.js';
import {
  MIGRATE_PFN_VALID, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_WRITE, MIGRATE_PFN_COMPOUND, MIGRATE_VMA_SELECT_SYSTEM,
  MIGRATE_VMA_SELECT_DEVICE_PRIVATE, MIGRATE_VMA_SELECT_DEVICE_COHERENT, MIGRATE_VMA_SELECT_COMPOUND,
  migrate_pfn, migrate_pfn_to_page, migrate_pfn_to_pfn, type migrate_vma,
} from '../include/linux/migrate.js';
import { HMM_DMIRROR_FLAG_FAIL_ALLOC, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, type hmm_dmirror_cmd } from '../include/uapi/linux/test_hmm.js';
import { GFP_HIGHUSER_MOVABLE } from '../include/linux/gfp.js';
import { EINVAL, ENOMEM, EIO } from '../include/uapi/asm-generic/errno.js';
import type { Sleepable } from './sim/sched.js';
import { mutex_lock, mutex_unlock } from './locking/mutex.js';
import { fail_dev_copy, should_fail } from './fault-inject.js';
import { count_event, trace_event } from './sim/trace.js';
import { charge } from './sim/clock.js';
import { copy_cost_ns, PCIE_BW } from './sim/costs.js';
import { alloc_pages_sleepable, alloc_pages_fastpath, pfn_to_page, copy_highpages, clear_highpages, put_page } from '../mm/page_alloc.js';
import { folio_lock, folio_unlock, __folio_set_locked } from '../mm/filemap.js';
import { vma_lookup } from '../mm/vma.js';
import { mmap_read_lock, mmap_read_unlock } from '../mm/mmap_lock.js';
import { mmget_not_zero, mmput } from '../mm/task.js';
import { migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize } from '../mm/migrate_device.js';
import {
  type dmirror, dmirror_params, DPT_XA_TAG_READ, DPT_XA_TAG_WRITE, BACKING_PAGE, BACKING_PAGE_PFN, pfn_pgmap, dmirror_devmem_alloc_page,
  dmirror_devmem_alloc_page_fast,
  dmirror_migrate_begin, dmirror_migrate_end,
} from './test_hmm_devmem.js';
import { dmirror_read_back, dmirror_cmd_range } from './test_hmm_dpt.js';
import { dpt_mkentry } from './test_hmm_pt.js';
import { type copy_queue, copy_queue_get, copy_queue_put, copy_queue_add, copy_queue_flush } from './test_hmm_copy.js';
import { WARN, WARN_ON } from '../include/asm-generic/bug.js';

/** dmirror_select_device() - the MIGRATE_VMA_SELECT_* flag for this mirror's kind of device memory. */
export function dmirror_select_device(d: dmirror): number {
  return d.mdevice.zone_device_type === HMM_DMIRROR_MEMORY_DEVICE_PRIVATE
    ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE : MIGRATE_VMA_SELECT_DEVICE_COHERENT;
}

/* take the one-shot FAIL_ALLOC flag if it is set */
function dmirror_take_fail_alloc(d: dmirror): boolean {
  if ((d.flags & HMM_DMIRROR_FLAG_FAIL_ALLOC) === 0n) return false;
  d.flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
  count_event('dmirror_fail_alloc');
  return true;
}

/* a page crossing the bus between system and device memory costs its PCIe transfer */
function charge_copy(nr: number): void {
  charge(copy_cost_ns(nr * PAGE_SIZE, PCIE_BW));
}

/*
 * copy @nr pages starting at frame @from_pfn into @to (queued on @q,
 * lib/test_hmm_copy.ts, or at once when @q is null or
 * dmirror_params.copy_queue is off), or zero @to when there is no source
 * (@from_pfn -1); false when the copy engine failed (fail_dev_copy): @to
 * is untouched
 */
function copy_or_clear(to: page, from_pfn: number, nr: number, q: copy_queue | null): boolean {
  if (from_pfn >= 0 && should_fail(fail_dev_copy, nr * PAGE_SIZE)) return false;
  if (from_pfn < 0) clear_highpages(to, nr);
  else if (q !== null && dmirror_params.copy_queue) copy_queue_add(q, to.pfn, from_pfn, nr);
  else copy_highpages(to, pfn_to_page(from_pfn), nr);
  if (from_pfn >= 0) charge_copy(nr);
  return true;
}

/* a copy to the device failed: give its page back; the source stays in system memory */
function dmirror_release_dpage(args: migrate_vma, i: number, dpage: page): void {
  args.dst[i] = 0;
  folio_unlock(dpage);
  put_page(dpage);
}

/*
 * The huge device allocation failed (or FAIL_ALLOC forced it to): fill
 * up to @nr entries from index @i with small device pages instead. The
 * core then splits the source THP. Returns the index after the last one.
 */
function* dmirror_migrate_fallback(args: migrate_vma, d: dmirror, i: number, nr: number, write: number): Sleepable<number> {
  const spfn = migrate_pfn_to_pfn(args.src[i]);
  const has_src = (args.src[i] & MIGRATE_PFN_VALID) !== 0;
  const last = (args.end - args.start) / PAGE_SIZE;
  for (let k = 0; k < nr && i < last; k++, i++) {
    const dpage = yield* dmirror_devmem_alloc_page(d, false);
    if (dpage === null) continue;
    const rpage = BACKING_PAGE(dpage);
    rpage.zone_device_data = d;
    args.dst[i] = migrate_pfn(dpage.pfn) + write;
    if (!copy_or_clear(rpage, has_src ? spfn + k : -1, 1, null)) dmirror_release_dpage(args, i, dpage);
  }
  return i;
}

/**
 * dmirror_migrate_alloc_and_copy() - allocate device memory for every
 * selected source of a window and copy the data into it (zero-fill
 * sources without a page: holes and the zero page).
 * @args: the window, after migrate_vma_setup().
 * @d: the mirror; its device provides the memory, its flags may force
 *     one allocation failure.
 *
 * A compound source gets a PMD-sized device folio when possible, else it
 * falls back to HPAGE_PMD_NR small device pages. A source that is already
 * device memory is skipped (with a warning), as is a small source whose
 * allocation failed: it stays in system memory.
 * Context: mmap_lock held for read; may sleep.
 */
export function* dmirror_migrate_alloc_and_copy(args: migrate_vma, d: dmirror): Sleepable {
  const src = args.src, dst = args.dst;
  const n = (args.end - args.start) / PAGE_SIZE;
  const q = copy_queue_get();
  for (let i = 0; i < n;) {
    const is_large = (src[i] & MIGRATE_PFN_COMPOUND) !== 0;
    const write = (src[i] & MIGRATE_PFN_WRITE) !== 0 ? MIGRATE_PFN_WRITE : 0;
    if (!(src[i] & MIGRATE_PFN_MIGRATE)) { i++; continue; }
    /* the source's pfn (-1: none, a hole or the zero page); is_zone_device_page() read by pfn, no page handle */
    const spfn = (src[i] & MIGRATE_PFN_VALID) ? migrate_pfn_to_pfn(src[i]) : -1;
    if (spfn >= 0 && pfn_pgmap(spfn) !== null) {
      WARN(true, `page already in device spage pfn: 0x${spfn.toString(16)}`);
      i++;
      continue;
    }
    const dpage = dmirror_take_fail_alloc(d) ? null
      : dmirror_devmem_alloc_page_fast(d, is_large) ?? (yield* dmirror_devmem_alloc_page(d, is_large));
    if (dpage === null) {
      if (!is_large) { i++; continue; }
      const nr = spfn < 0 ? HPAGE_PMD_NR : 1 << folio_order(pfn_to_page(spfn).compound_head);
      copy_queue_flush(q);
      i = yield* dmirror_migrate_fallback(args, d, i, nr, write);
      continue;
    }
    const rpage = BACKING_PAGE(dpage);
    rpage.zone_device_data = d;
    dst[i] = migrate_pfn(dpage.pfn) + write;
    if (is_large && dpage.order > 0) {
      dst[i] += MIGRATE_PFN_COMPOUND;
      if (!copy_or_clear(rpage, spfn, 1 << dpage.order, q)) dmirror_release_dpage(args, i, dpage);
      i += 1 << dpage.order;
      continue;
    }
    if (!copy_or_clear(rpage, spfn, 1, q)) dmirror_release_dpage(args, i, dpage);
    i++;
  }
  copy_queue_flush(q);
  copy_queue_put(q);
}

/**
 * dmirror_migrate_finalize_and_map() - program the device page table for
 * the pages that did migrate: the backing page (private) or the device
 * page (coherent) of each, tagged WRITE when the mapping is writable;
 * HPAGE_PMD_NR consecutive entries for a device folio.
 * Context: takes dmirror.mutex. Return: 0.
 */
export function* dmirror_migrate_finalize_and_map(args: migrate_vma, d: dmirror): Sleepable<number> {
  const start_pfn = args.start / PAGE_SIZE, end_pfn = args.end / PAGE_SIZE;
  const n = end_pfn - start_pfn;
  /* the entries of the window, stored in one pass over the table below (0: leave the entry alone) */
  const entries = n <= dpt_window.length ? dpt_window : new Float64Array(n);
  entries.fill(0, 0, n);
  yield* mutex_lock(d.mutex);
  /*
   * By index; the virtual page number (above 2^31: a double) only where an
   * entry needs it. As a second induction variable V8 kept it boxed: a
   * 16-byte heap number per entry: 8 KiB of garbage per window, a quarter
   * of what a THP round trip allocates (session 9, mig4k2).
   */
  for (let i = 0; i < n; i++) {
    if (!(args.src[i] & MIGRATE_PFN_MIGRATE)) continue;
    if (!(args.dst[i] & MIGRATE_PFN_VALID)) continue;
    const dpfn = migrate_pfn_to_pfn(args.dst[i]);
    const tag = (args.dst[i] & MIGRATE_PFN_WRITE) ? DPT_XA_TAG_WRITE : DPT_XA_TAG_READ;
    const rpage = BACKING_PAGE_PFN(dpfn);
    if (!(args.dst[i] & MIGRATE_PFN_COMPOUND)) {
      entries[i] = dpt_mkentry(rpage.compound_head.pfn, tag);
      continue;
    }
    const nr = 1 << folio_order(pfn_to_page(dpfn).compound_head);
    const first = rpage.compound_head.pfn, pfn = start_pfn + i;
    if (WARN_ON(end_pfn < pfn + nr, 'dmirror_migrate_finalize_and_map: folio runs past the range')) {
      for (let k = n - i; k < nr; k++) d.pt.store(pfn + k, first + k, tag);
    }
    for (let k = 0; k < nr && i + k < n; k++) entries[i + k] = dpt_mkentry(first + k, tag);
  }
  d.pt.store_run(start_pfn, entries, n);
  mutex_unlock(d.mutex);
  return 0;
}

/* scratch entries of dmirror_migrate_finalize_and_map() for a window of up to PTRS_PER_PTE pages */
const dpt_window = new Float64Array(PTRS_PER_PTE);

/* One window of a migration: [addr, next) inside one readable VMA, or -EINVAL. */
function window_end(vma: { vm_end: number }, addr: number, end: number): number {
  return Math.min(end, addr + PTRS_PER_PTE * PAGE_SIZE, vma.vm_end);
}

function new_args(vma: migrate_vma['vma'], d: dmirror, start: number, end: number, flags: number,
                  src: Float64Array, dst: Float64Array): migrate_vma {
  src.fill(0);
  dst.fill(0);
  return { vma, src, dst, cpages: 0, npages: 0, start, end, pgmap_owner: d.mdevice, flags, fault_page: null };
}

/**
 * dmirror_migrate_to_device() - HMM_DMIRROR_MIGRATE_TO_DEV: move the
 * system-memory pages of [addr, addr + npages pages) to this device, then
 * read the whole range back through the device page table into cmd.ptr.
 * @d: the mirror.
 * @cmd: the command block; cpages is set to the pages found mirrored.
 *
 * Context: may sleep; takes mmap_lock for read and dmirror.mutex.
 * Return: 0; -EINVAL when part of the range has no VMA or an unreadable
 * one; -ENOENT when some page is not in this device's page table
 * afterwards (shared memory, another device's page); -ENOMEM; -EFAULT
 * when the read-back cannot be copied out.
 */
export function* dmirror_migrate_to_device(d: dmirror, cmd: hmm_dmirror_cmd): Sleepable<number> {
  const { start, end } = dmirror_cmd_range(cmd);
  let ret = yield* dmirror_migrate_range_to_device(d, start, end);
  if (ret) return ret;

  /* read back what the device now holds, for the test to check */
  ret = yield* dmirror_read_back(d, start, end, cmd);
  trace_event('dmirror_migrate_to_device', { dev: d.mdevice.minor, start, end, cpages: Number(cmd.cpages), ret });
  return ret;
}

/**
 * dmirror_migrate_range_to_device() - the migration half of
 * MIGRATE_TO_DEV (no read-back): one migrate_vma_setup/pages/finalize
 * round per window of [start, end), each page copied once into device
 * memory. Benchmarks time this alone.
 * Context: may sleep; takes mmap_lock for read and dmirror.mutex.
 * Return: 0, -EINVAL (no VMA, unreadable, or the mm is gone), or the
 * migrate_vma_setup() error.
 */
export function* dmirror_migrate_range_to_device(d: dmirror, start: number, end: number): Sleepable<number> {
  const mm = d.notifier.mm;
  if (!mmget_not_zero(mm)) return -EINVAL;
  const src = new Float64Array(PTRS_PER_PTE), dst = new Float64Array(PTRS_PER_PTE);
  yield* mmap_read_lock(mm);
  const prev = dmirror_migrate_begin(d);
  let ret = 0;
  for (let addr = start; addr < end;) {
    const vma = vma_lookup(mm, addr);
    if (vma === null || !(vma.vm_flags & VM_READ)) { ret = -EINVAL; break; }
    const next = window_end(vma, addr, end);
    const args = new_args(vma, d, addr, next, MIGRATE_VMA_SELECT_SYSTEM | MIGRATE_VMA_SELECT_COMPOUND, src, dst);
    ret = yield* migrate_vma_setup(args);
    if (ret) break;
    yield* dmirror_migrate_alloc_and_copy(args, d);
    yield* migrate_vma_pages(args);
    yield* dmirror_migrate_finalize_and_map(args, d);
    yield* migrate_vma_finalize(args);
    addr = next;
  }
  dmirror_migrate_end(prev);
  mmap_read_unlock(mm);
  yield* mmput(mm);
  return ret;
}

/* allocate one locked RAM page, or a folio of @order */
function* alloc_locked_ram(order: number): Sleepable<page | null> {
  const p = yield* alloc_pages_sleepable(GFP_HIGHUSER_MOVABLE, order);
  if (p !== null) yield* folio_lock(p);
  return p;
}

/*
 * alloc_locked_ram() as a plain call when the allocator's fast path is
 * enough, else null (nothing done); folio_lock() of a page nobody else can
 * see yet takes the free lock at once
 */
function alloc_locked_ram_fast(order: number): page | null {
  const p = alloc_pages_fastpath(GFP_HIGHUSER_MOVABLE, order);
  if (p !== null) __folio_set_locked(p);
  return p;
}

/**
 * dmirror_devmem_fault_alloc_and_copy() - allocate system memory for each
 * selected device page of a window, drop its device page table entry
 * (the mirror ignores its own MIGRATE invalidation, so it must do it
 * here) and copy the data back.
 * @args: after migrate_vma_setup() with a DEVICE_PRIVATE/COHERENT select.
 * @d: the mirror.
 *
 * A compound source gets a RAM folio of the same order, or, when that
 * fails or FAIL_ALLOC forces it, one small page per subpage (the core
 * splits the device folio).
 * A copy that fails (fail_dev_copy) gives VM_FAULT_SIGBUS, as nouveau's
 * fault path does when its copy engine fails.
 * Context: may sleep. Return: 0, VM_FAULT_OOM or VM_FAULT_SIGBUS; on
 * either every destination of the window is released and dst cleared,
 * so migrate_vma_finalize() keeps the data on the device.
 */
export function* dmirror_devmem_fault_alloc_and_copy(args: migrate_vma, d: dmirror): Sleepable<number> {
  const src = args.src, dst = args.dst;
  const n = (args.end - args.start) / PAGE_SIZE;
  const q = copy_queue_get();
  const er: erase_run = { vpn: 0, n: 0 };
  let addr = args.start;
  for (let i = 0; i < n;) {
    /* the source's pagemap read by pfn (no page handle): device-private or coherent memory, or skip it */
    const valid = (src[i] & MIGRATE_PFN_VALID) !== 0;
    const spfn = valid ? migrate_pfn_to_pfn(src[i]) : -1;
    const type = valid ? pfn_pgmap(spfn)?.type : undefined;
    if (!valid || !(src[i] & MIGRATE_PFN_MIGRATE) || (type !== MEMORY_DEVICE_PRIVATE && type !== MEMORY_DEVICE_COHERENT)) {
      WARN_ON(valid && (src[i] & MIGRATE_PFN_MIGRATE) !== 0, 'dmirror_devmem_fault_alloc_and_copy: source is not device memory');
      addr += PAGE_SIZE;
      i++;
      continue;
    }
    const spage = BACKING_PAGE_PFN(spfn);
    const order = (src[i] & MIGRATE_PFN_COMPOUND) ? folio_order(spage.compound_head) : 0;
    let flags = (order ? MIGRATE_PFN_COMPOUND : 0) + ((src[i] & MIGRATE_PFN_WRITE) ? MIGRATE_PFN_WRITE : 0);
    let dpage: page | null;
    if (dmirror_take_fail_alloc(d)) {
      flags &= ~MIGRATE_PFN_COMPOUND;
      dpage = null;
    } else {
      dpage = alloc_locked_ram_fast(order);
      if (dpage === null) {
        erase_run_flush(d, er);
        dpage = yield* alloc_locked_ram(order);
      }
    }
    if (dpage === null && !order) return dmirror_fault_abort(args, d, er, q, VM_FAULT_OOM);
    if (dpage === null) flags &= ~MIGRATE_PFN_COMPOUND;     /* small pages, whichever way the folio failed */
    if (dpage !== null) {
      dst[i] = migrate_pfn(dpage.pfn) + flags;
      if (!copy_from_device(dpage, spage, 1 << order, q)) return dmirror_fault_abort(args, d, er, q, VM_FAULT_SIGBUS);
      erase_run_add(d, er, addr / PAGE_SIZE, 1 << order);
      addr += PAGE_SIZE << order;
    } else {
      /* the huge allocation failed: one small page per subpage */
      for (let k = 0; k < 1 << order; k++, addr += PAGE_SIZE) {
        erase_run_flush(d, er);
        const small = yield* alloc_locked_ram(0);
        if (small === null) return dmirror_fault_abort(args, d, er, q, VM_FAULT_OOM);
        dst[i + k] = migrate_pfn(small.pfn) + flags;
        if (!copy_from_device(small, pfn_to_page(spage.pfn + k), 1, q)) return dmirror_fault_abort(args, d, er, q, VM_FAULT_SIGBUS);
        erase_run_add(d, er, addr / PAGE_SIZE, 1);
      }
    }
    i += 1 << order;
  }
  erase_run_flush(d, er);
  copy_queue_flush(q);
  copy_queue_put(q);
  return 0;
}

/*
 * struct erase_run - device page table entries of consecutive virtual
 * pages whose data was copied back, erased in one dmirror_pt.erase_run()
 * (Linux erases them one xa_erase() at a time as the loop goes). The run
 * is flushed before anything that may sleep and before the loop returns,
 * so no other thread can see an entry the per-page loop would have erased.
 */
interface erase_run { vpn: number; n: number }

function erase_run_add(d: dmirror, r: erase_run, vpn: number, nr: number): void {
  if (r.n > 0 && vpn === r.vpn + r.n) {
    r.n += nr;
    return;
  }
  erase_run_flush(d, r);
  r.vpn = vpn;
  r.n = nr;
}

function erase_run_flush(d: dmirror, r: erase_run): void {
  if (r.n > 0) d.pt.erase_run(r.vpn, r.n);
  r.n = 0;
}

/*
 * copy @nr pages of device memory at @from to RAM at @to, queued on @q
 * (at once when dmirror_params.copy_queue is off); false when the copy
 * engine failed (fail_dev_copy). A failure makes the caller release every
 * destination (dmirror_fault_abort), which drops the queued copies with
 * them.
 */
function copy_from_device(to: page, from: page, nr: number, q: copy_queue): boolean {
  if (should_fail(fail_dev_copy, nr * PAGE_SIZE)) return false;
  if (dmirror_params.copy_queue) copy_queue_add(q, to.pfn, from.pfn, nr);
  else copy_highpages(to, from, nr);
  charge_copy(nr);
  return true;
}

/*
 * The window cannot be migrated (no RAM, or a copy failed): erase the
 * device page table entries of the pages copied so far (@er, as the
 * per-page loop would have), release every destination taken so far and
 * clear dst, so that migrate_vma_finalize() restores every source; the
 * data stays in device memory. The copies queued on @q are dropped with
 * their destinations. Returns @ret.
 */
function dmirror_fault_abort(args: migrate_vma, d: dmirror, er: erase_run, q: copy_queue, ret: number): number {
  erase_run_flush(d, er);
  copy_queue_put(q);
  const n = (args.end - args.start) / PAGE_SIZE;
  for (let j = 0; j < n; j++) {
    const f = migrate_pfn_to_page(args.dst[j]);
    if (f !== null) { folio_unlock(f); put_page(f); }
    args.dst[j] = 0;
  }
  return ret;
}

/** dmirror_successful_migrated_pages() - source entries that migrated; a device THP counts once. */
export function dmirror_successful_migrated_pages(m: migrate_vma): number {
  let cpages = 0;
  for (let i = 0; i < m.npages; i++) {
    if ((m.src[i] & MIGRATE_PFN_VALID) && (m.src[i] & MIGRATE_PFN_MIGRATE)) cpages++;
  }
  return cpages;
}

/**
 * dmirror_migrate_to_system() - HMM_DMIRROR_MIGRATE_TO_SYS: move this
 * device's pages of the range back to system memory.
 * @d: the mirror.
 * @cmd: cpages is set to the source entries migrated (a device THP moved
 *       as one unit counts one).
 *
 * Context: may sleep; takes mmap_lock for read.
 * Return: 0, -EINVAL (no VMA or unreadable), -ENOMEM, -EIO when a copy
 * from the device failed (fail_dev_copy; Linux's dmirror copies with the
 * CPU and cannot fail there). Pages of earlier windows stay migrated.
 */
export function* dmirror_migrate_to_system(d: dmirror, cmd: hmm_dmirror_cmd): Sleepable<number> {
  const { start, end } = dmirror_cmd_range(cmd);
  const mm = d.notifier.mm;
  if (!mmget_not_zero(mm)) return -EINVAL;
  const src = new Float64Array(PTRS_PER_PTE), dst = new Float64Array(PTRS_PER_PTE);
  let cpages = 0, ret = 0;
  yield* mmap_read_lock(mm);
  const prev = dmirror_migrate_begin(d);
  for (let addr = start; addr < end;) {
    const vma = vma_lookup(mm, addr);
    if (vma === null || !(vma.vm_flags & VM_READ)) { ret = -EINVAL; break; }
    const next = window_end(vma, addr, end);
    const args = new_args(vma, d, addr, next, dmirror_select_device(d) | MIGRATE_VMA_SELECT_COMPOUND, src, dst);
    ret = yield* migrate_vma_setup(args);
    if (ret) break;
    const vmret = yield* dmirror_devmem_fault_alloc_and_copy(args, d);
    if (vmret !== 0) {
      yield* migrate_vma_finalize(args);
      ret = vmret === VM_FAULT_OOM ? -ENOMEM : -EIO;
      break;
    }
    yield* migrate_vma_pages(args);
    cpages += dmirror_successful_migrated_pages(args);
    yield* migrate_vma_finalize(args);
    addr = next;
  }
  dmirror_migrate_end(prev);
  mmap_read_unlock(mm);
  yield* mmput(mm);
  cmd.cpages = BigInt(cpages);
  trace_event('dmirror_migrate_to_system', { dev: d.mdevice.minor, start, end, cpages, ret });
  return ret;
}

/* the three migration steps of dmirror_devmem_fault(); 0 or its VM_FAULT_* code */
function* dmirror_devmem_fault_migrate(args: migrate_vma, d: dmirror): Sleepable<number> {
  if ((yield* migrate_vma_setup(args)) !== 0) return VM_FAULT_SIGBUS;
  const ret = yield* dmirror_devmem_fault_alloc_and_copy(args, d);
  if (ret === 0) yield* migrate_vma_pages(args);
  yield* migrate_vma_finalize(args);
  return ret;
}

/**
 * dmirror_devmem_fault() - dev_pagemap_ops.migrate_to_ram: the CPU touched
 * one of this driver's device-private pages. Migrate the page (or, when
 * the fault came through a PMD, the whole device THP) back to RAM.
 * @vmf: the fault; vmf.page is the device page, locked and referenced by
 *       do_swap_page.
 *
 * The mirror is found through the ownership chain: device page -> backing
 * page -> dmirror that migrated the page. That mirror may have been closed
 * since (close leaves device memory where it is, as in Linux): it is then
 * an empty shell (no notifier, no entries, no flags; Linux would read the
 * freed dmirror). Only the mirror that migrated the page skips the
 * MMU_NOTIFY_MIGRATE invalidation (dmirror_migrate_begin()): every other
 * live mirror of the mm on this device drops its entry there. No device
 * finalize step is needed: the copy already erased the owner's entries.
 * Context: mmap_lock held for read; may sleep.
 * Return: 0, VM_FAULT_SIGBUS when migrate_vma_setup() refuses the window,
 * VM_FAULT_OOM.
 */
export function* dmirror_devmem_fault(vmf: vm_fault): Sleepable<number> {
  const fpage = vmf.page!;
  const folio = fpage.compound_head;
  const rpage = BACKING_PAGE(folio) as page | null;
  const d = rpage === null ? null : rpage.zone_device_data as dmirror | null;
  if (d === null) return VM_FAULT_SIGBUS;       /* a device page with no mirror behind it: a driver bug */
  /* a fault through a PTE may hit a partly mapped folio: migrate one page */
  const order = vmf.pte >= 0 ? 0 : folio_order(folio);
  const span = PAGE_SIZE * 2 ** order;
  const start = vmf.address - (vmf.address % span);
  const nr = span / PAGE_SIZE;
  const args: migrate_vma = {
    vma: vmf.vma, src: new Float64Array(nr), dst: new Float64Array(nr), cpages: 0, npages: 0,
    start, end: start + span, pgmap_owner: d.mdevice,
    flags: dmirror_select_device(d) | (order ? MIGRATE_VMA_SELECT_COMPOUND : 0), fault_page: fpage,
  };
  const prev = dmirror_migrate_begin(d);
  const ret = yield* dmirror_devmem_fault_migrate(args, d);
  dmirror_migrate_end(prev);
  if (ret) return ret;
  count_event('dmirror_devmem_fault');
  trace_event('dmirror_devmem_fault', { dev: d.mdevice.minor, addr: vmf.address, order });
  return 0;
}

